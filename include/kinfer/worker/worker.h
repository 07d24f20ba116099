/* SPDX-License-Identifier: Apache-2.0 */
/* worker.h -- the streaming worker, the composition root:
 *
 *   consumer -> codec_decode -> batch -> runtime_classify -> codec_encode -> producer
 *            -> (delivery report) -> offsets -> consumer_store
 *
 * One thread runs kinfer_worker_run(). Bad records (undecodable, empty, oversized) go to the
 * dead-letter topic and count as processed. An input offset is stored only after the producer
 * reported delivery of every result and dead letter up to it (at-least-once). Models are
 * swapped between two batches: a batch runs with the model pinned at its start.
 */
#ifndef KINFER_WORKER_H
#define KINFER_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/conf.h"
#include "kinfer/core/err.h"
#include "kinfer/model/model.h"

typedef struct kinfer_worker_s kinfer_worker_t;

/** One metrics window (all pointers borrowed for the duration of the callback). */
typedef struct kinfer_worker_metrics_s {
        int64_t window_start_ms, window_end_ms; /* Unix ms */
        int64_t records;        /* records classified in the window */
        int64_t batches;        /* batches classified */
        double mean_batch_size; /* records / batches (0 when no batch) */
        int64_t dlq;            /* records sent to the DLQ (or skipped without dlq.topic) */
        /* consume -> delivery report of the result, over results delivered in the window */
        double latency_p50_ms, latency_p95_ms, latency_p99_ms;
        int32_t n_labels;
        const char *const *labels;   /* n_labels names */
        const int64_t *label_counts; /* n_labels counts of the top-1 label */
        double mean_confidence;      /* mean top-1 score */
        const char *model_name;
        int32_t model_version;
        const char *model_sha256;
        const char *worker_id;
        const char *deployment; /* conf "deployment", "" if unset */
} kinfer_worker_metrics_t;

/** Called from the worker thread every metrics.interval.ms (and when a model is swapped out).
 *  Must not block: copy what you need and return. */
typedef void(kinfer_worker_metrics_cb_t)(const kinfer_worker_metrics_t *m, void *opaque);

/** Called from the worker thread after each swap attempt: @p err KINFER_OK when @p name
 *  / @p version now classifies, else the old model stays and @p errstr says why. */
typedef void(kinfer_worker_swap_cb_t)(const char *name, int32_t version, kinfer_err_t err,
                                      const char *errstr, void *opaque);

/**
 * @brief Create the worker: codec, consumer (subscribed to input.topic), producer, runtime,
 *        and the model from model.path when set.
 * On success @p conf is owned by the worker and must not be used or destroyed by the caller.
 * Without model.path (registry deployments) the worker consumes nothing until
 * kinfer_worker_swap_model() gives it a model.
 * @returns the worker, or NULL on failure (see @p errstr; @p conf stays the caller's).
 */
kinfer_worker_t *kinfer_worker_new(kinfer_conf_t *conf, char *errstr, size_t errstr_size);

/**
 * @brief Run until kinfer_worker_stop() or a fatal error. On stop: classify and produce the
 *        batch in flight, flush the producer (shutdown.timeout.ms), store and commit offsets,
 *        leave the group.
 * @returns KINFER_OK after a clean stop, or the fatal error (delivery failed, producer fenced,
 *          runtime error) with @p errstr; offsets past undelivered records are never stored.
 * @locality one thread.
 */
kinfer_err_t kinfer_worker_run(kinfer_worker_t *w, char *errstr, size_t errstr_size);

/** Ask kinfer_worker_run() to stop. @locality any thread; async-signal-safe. */
void kinfer_worker_stop(kinfer_worker_t *w);

/**
 * @brief Hand the worker a new model; it is smoke-tested and swapped in between two batches
 *        (within one batch.max.wait.ms or 50 ms when idle).
 * Takes ownership of one reference of @p model (also on failure). A model handed over before
 * the previous one was applied replaces it.
 * @param name     model name written in results (NULL: the model's own name)
 * @param version  registry version written in results
 * @locality any thread.
 */
kinfer_err_t kinfer_worker_swap_model(kinfer_worker_t *w, kinfer_model_t *model, const char *name,
                                      int32_t version, char *errstr, size_t errstr_size);

/** The model classifying now (for heartbeats). Copies into the caller's buffers; @p sha256
 *  needs 65 bytes. @returns KINFER_ERR__NOENT when there is no model yet. @locality any thread. */
kinfer_err_t kinfer_worker_model_info(kinfer_worker_t *w, char *name, size_t name_size,
                                      int32_t *version, char *sha256);

/** Set the metrics callback (NULL: none; windows are still logged). Call before run. */
void kinfer_worker_set_metrics_cb(kinfer_worker_t *w, kinfer_worker_metrics_cb_t *cb, void *opaque);
/** Set the swap callback (NULL: none). Call before run. */
void kinfer_worker_set_swap_cb(kinfer_worker_t *w, kinfer_worker_swap_cb_t *cb, void *opaque);

/** This worker's id (worker.id or <hostname>-<pid>). */
const char *kinfer_worker_id(const kinfer_worker_t *w);
/** The worker's configuration (borrowed, read-only). */
const kinfer_conf_t *kinfer_worker_conf(const kinfer_worker_t *w);

/** Totals since start. @locality the worker thread, or after run returned. */
void kinfer_worker_totals(const kinfer_worker_t *w, int64_t *records, int64_t *dlq,
                          int64_t *batches);

void kinfer_worker_destroy(kinfer_worker_t *w);

#endif
