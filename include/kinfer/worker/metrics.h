/* SPDX-License-Identifier: Apache-2.0 */
/* metrics.h -- the metrics window, the one struct for "what one worker did with one model over
 * metrics.interval.ms": counters, the consume -> delivery latency histogram, top-1 label
 * counts. The worker fills the open window, closes it (percentiles) and hands it to its
 * metrics callback (kinfer_worker_set_metrics_cb); the registry thread keeps copies of closed
 * windows in its ring until PostgreSQL has them (kinfer_metrics_window_row).
 */
#ifndef KINFER_METRICS_H
#define KINFER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/buf.h"
#include "kinfer/core/err.h"
#include "kinfer/registry/registry.h"
#include "kinfer/runtime/runtime.h"
#include "kinfer/worker/model_slot.h"

/** Latencies in 8 linear sub-buckets per power of two of microseconds: < 12.5% error, fixed
 *  size, no allocation per sample. */
#define KINFER_LATENCY_BUCKETS 512
typedef struct kinfer_latency_hist_s {
        int64_t n;
        int64_t bucket[KINFER_LATENCY_BUCKETS];
} kinfer_latency_hist_t;

/** Count one latency of @p us microseconds (negative counts as 0). */
void kinfer_latency_add(kinfer_latency_hist_t *hist, int64_t us);
/** @returns the @p p quantile (0..1) in ms (a bucket's middle), 0 when empty. */
double kinfer_latency_pct_ms(const kinfer_latency_hist_t *hist, double p);

typedef struct kinfer_metrics_window_s {
        int64_t start_us, end_us; /* wall clock, Unix us; end_us 0 while open */
        int64_t start_mono_us;
        int64_t records;  /* records classified */
        int64_t batches;  /* batches classified */
        int64_t dlq;      /* records sent to the DLQ (or skipped without dlq.topic) */
        int64_t holds;    /* backpressure episodes begun in the window */
        int64_t pauses;   /* ... of which long enough to pause the partitions */
        int64_t skipped;  /* records given up by delivery.refused.policy=skip */
        double conf_sum;  /* sum of the top-1 scores */
        /* consume -> delivery report of the result, over results delivered in the window;
         * the histogram while open (NULL when closed, or when it could not be allocated),
         * the percentiles once closed */
        kinfer_latency_hist_t *latency;
        double latency_p50_ms, latency_p95_ms, latency_p99_ms;
        int32_t n_labels;             /* model->n_labels, or 0 */
        int64_t *label_counts;        /* n_labels top-1 counts (owned) */
        kinfer_model_record_t *model; /* the model counted (a reference); NULL: none yet */
        /* drift (src/worker/drift.c): the top-1 score histogram in the reference's bins, and the
         * PSI against the model's reference once closed (psi_assessed 0: none computed, for no
         * reference or fewer than drift.min.records records) */
        int64_t conf_hist[KINFER_REF_BINS];
        int psi_assessed;
        double psi_labels, psi_confidence;
} kinfer_metrics_window_t;

/**
 * @brief (Re)open @p win for @p model (NULL: no model yet; takes a new reference), dropping
 *        what it held. A zeroed struct is a valid closed window to start from.
 * @returns KINFER_OK, or KINFER_ERR__NOMEM: the window is open but counts no labels or
 *          latencies (see @p errstr).
 */
kinfer_err_t kinfer_metrics_window_start(kinfer_metrics_window_t *win,
                                         kinfer_model_record_t *model, char *errstr,
                                         size_t errstr_size);

/** Count one classified batch of @p n predictions (top-1 label and score of each). */
void kinfer_metrics_window_count(kinfer_metrics_window_t *win, const kinfer_prediction_t *preds,
                                 int32_t n);

/** Close @p win now: the end time and the latency percentiles (the histogram is freed). */
void kinfer_metrics_window_close(kinfer_metrics_window_t *win);

/** records / batches, or 0. */
double kinfer_metrics_window_mean_batch(const kinfer_metrics_window_t *win);
/** Mean top-1 score, or 0. */
double kinfer_metrics_window_mean_confidence(const kinfer_metrics_window_t *win);

/** Copy closed window @p src into @p dst (label counts and record reference included).
 *  @returns KINFER_OK or KINFER_ERR__NOMEM (then @p dst is zeroed). */
kinfer_err_t kinfer_metrics_window_copy(kinfer_metrics_window_t *dst,
                                        const kinfer_metrics_window_t *src);

/** The bytes a copy of closed window @p win holds (the struct and its label counts): what
 *  the registry thread's ring counts against its byte bound. */
size_t kinfer_metrics_window_bytes(const kinfer_metrics_window_t *win);

/** Free what @p win holds and zero it. */
void kinfer_metrics_window_term(kinfer_metrics_window_t *win);

/**
 * @brief The kinfer.metrics_windows row of closed window @p win for @p worker_id and
 *        @p deployment: @p row points into @p win and @p json (the label counts as a JSON
 *        object {"label": count, ...} of the labels counted at least once).
 * @returns KINFER_OK or KINFER_ERR__NOMEM.
 */
kinfer_err_t kinfer_metrics_window_row(const kinfer_metrics_window_t *win, const char *worker_id,
                                       const char *deployment, kinfer_registry_metrics_t *row,
                                       kinfer_buf_t *json);

#endif
