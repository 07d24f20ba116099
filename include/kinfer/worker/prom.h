/* SPDX-License-Identifier: Apache-2.0 */
/* prom.h -- the worker's cumulative metrics in the Prometheus text format (version 0.0.4), for
 * GET /metrics (docs/operations.md lists every series).
 *
 * Two threads meet here and nothing else: the worker thread counts, the HTTP thread renders.
 *
 *   worker thread:  counts into its own kinfer_prom_delta_t (plain integers, no lock) and
 *                   hands it over with kinfer_prom_publish() (one mutex, a few times a second);
 *                   kinfer_prom_observe_batch() once per classified batch (one mutex);
 *                   kinfer_prom_set_lag() about once a second.
 *   HTTP thread:    kinfer_prom_render() (the same mutex) reads only what was handed over, the
 *                   slot's applied record (model_slot.h) and the registry thread's stats.
 *
 * Every count is cumulative since the process started (counters never go down). The number of
 * series is bounded: one per dead-letter reason, one per result label up to
 * KINFER_PROM_LABELS_MAX distinct labels (the labels of the models the process applied; later
 * ones count in kinfer_results_label_overflow_total), one lag series per assigned partition up
 * to KINFER_PROM_PARTITIONS_MAX, and a fixed set of histogram buckets.
 */
#ifndef KINFER_PROM_H
#define KINFER_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/buf.h"
#include "kinfer/core/err.h"
#include "kinfer/runtime/runtime.h"
#include "kinfer/worker/model_slot.h"
#include "kinfer/worker/model_watch.h"

/** Distinct result labels with a series of their own (kinfer_results_by_label_total). */
#define KINFER_PROM_LABELS_MAX 4096
/** Partitions with a kinfer_consumer_lag_records series (the first ones of the assignment). */
#define KINFER_PROM_PARTITIONS_MAX 1024
/** Dead-letter reasons (kinfer_dlq_reason_t, codec.h: undecodable .. no_features). */
#define KINFER_PROM_DLQ_REASONS 6
/** Buckets of the end-to-end latency histogram (kinfer_record_latency_seconds), +Inf apart. */
#define KINFER_PROM_LATENCY_BUCKETS 16

typedef struct kinfer_prom_s kinfer_prom_t;

/** What the worker thread counted since its last kinfer_prom_publish(). Only the worker thread
 *  touches it; publish adds it to the shared state and zeroes it. */
typedef struct kinfer_prom_delta_s {
        int64_t records_in;   /* records consumed from the input topics (every one, bad ones too) */
        int64_t results_out;  /* results handed to the producer */
        int64_t dead_letters[KINFER_PROM_DLQ_REASONS]; /* by kinfer_dlq_reason_t */
        int64_t skipped;      /* records given up (delivery.refused.policy=skip) */
        int64_t holds, pauses; /* backpressure episodes begun; of which partitions were paused */
        int64_t swaps;        /* models applied in place of another one */
        /* consume -> delivery report, per record (kinfer_prom_delta_latency) */
        int64_t latency_bucket[KINFER_PROM_LATENCY_BUCKETS + 1];
        int64_t latency_count;
        double latency_sum; /* seconds */
} kinfer_prom_delta_t;

/** Count one end-to-end latency of @p us microseconds (negative counts as 0). */
void kinfer_prom_delta_latency(kinfer_prom_delta_t *d, int64_t us);

/** The worker's gauges at a publish. */
typedef struct kinfer_prom_gauges_s {
        int64_t in_flight;       /* records consumed, not yet delivered */
        int64_t bytes_in_flight; /* producer bytes not yet delivered */
        int backpressure;        /* 0 flowing, 1 holding (not polling), 2 partitions paused */
        int ready;               /* a model and partitions */
        int partitions;          /* partitions assigned */
} kinfer_prom_gauges_t;

/** One partition's consumer lag: the high watermark less the consumer's position. */
typedef struct kinfer_prom_lag_s {
        char topic[256];
        int32_t partition;
        int64_t lag; /* records; -1 = unknown (nothing fetched or consumed there yet) */
} kinfer_prom_lag_t;

/**
 * @brief The metrics of a worker whose applied model is published in @p slot (borrowed: it
 *        must outlive the metrics; NULL: no model series).
 * @returns the metrics, or NULL (see @p errstr: out of memory).
 */
kinfer_prom_t *kinfer_prom_new(kinfer_model_slot_t *slot, char *errstr, size_t errstr_size);
/** NULL is a no-op. Nothing may render or publish any more. */
void kinfer_prom_destroy(kinfer_prom_t *prom);

/** Add @p d to the shared counters, zero it, and set the gauges to @p g.
 *  @locality the worker thread (one writer of @p d). */
void kinfer_prom_publish(kinfer_prom_t *prom, kinfer_prom_delta_t *d, const kinfer_prom_gauges_t *g);

/**
 * @brief Count one classified batch of @p n records (batch size, classify time @p classify_us,
 *        the top-1 label of each prediction with n >= 1 under the labels of @p rec). A new @p rec
 *        maps its labels to series once (a label seen before keeps its series) and is kept
 *        (one reference) until the next one.
 * @locality the worker thread.
 */
void kinfer_prom_observe_batch(kinfer_prom_t *prom, kinfer_model_record_t *rec,
                               const kinfer_prediction_t *preds, int32_t n, int64_t classify_us);

/** Replace the lag series with the first KINFER_PROM_PARTITIONS_MAX of @p n partitions
 *  (@p n_assigned: how many are assigned, for kinfer_consumer_lag_partitions_omitted). */
void kinfer_prom_set_lag(kinfer_prom_t *prom, const kinfer_prom_lag_t *parts, int n, int n_assigned);

/** A closed shadow window (rollout.h): @p records classified by both models, @p agree of them
 *  with the same top-1 label. Adds to the shadow counters and sets the agreement gauge. */
void kinfer_prom_observe_shadow(kinfer_prom_t *prom, int64_t records, int64_t agree);

/** The drift gauges (drift.h) of the last assessed window: its PSI of labels and of
 *  confidence and whether either was above drift.psi.warn. A negative @p psi_labels clears
 *  them (a new model: the series are absent until its first assessed window).
 *  @locality the worker thread. */
void kinfer_prom_set_drift(kinfer_prom_t *prom, double psi_labels, double psi_confidence,
                           int alert);

/** Render the registry thread's state too (NULL: none; the registry series say "not
 *  configured"). Set it to NULL before the watch is destroyed. @locality any thread. */
void kinfer_prom_set_registry(kinfer_prom_t *prom, kinfer_model_watch_t *watch);

/**
 * @brief Append the exposition (text format 0.0.4) to @p out.
 * @returns KINFER_OK, or KINFER_ERR__NOMEM (see @p errstr; @p out's content is incomplete).
 * @locality any thread.
 */
kinfer_err_t kinfer_prom_render(kinfer_prom_t *prom, kinfer_buf_t *out, char *errstr,
                                size_t errstr_size);

/** kinfer_prom_render with the kinfer_http_metrics_fn signature (@p opaque is the
 *  kinfer_prom_t). */
kinfer_err_t kinfer_prom_metrics_fn(void *opaque, kinfer_buf_t *out, char *errstr,
                                    size_t errstr_size);

/** Append @p s (@p len bytes) to @p out as a label value of the text format: backslash, double
 *  quote and line feed escaped, ill-formed UTF-8 replaced by U+FFFD (kinfer_utf8_seq). */
void kinfer_prom_label_value(kinfer_buf_t *out, const char *s, size_t len);

#endif
