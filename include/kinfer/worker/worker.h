/* SPDX-License-Identifier: Apache-2.0 */
/* worker.h -- the streaming worker, the composition root:
 *
 *   consumer -> codec_decode -> batch -> runtime_classify -> codec_encode -> producer
 *            -> (delivery report) -> offsets -> consumer_store
 *
 * One thread runs kinfer_worker_run(). Bad records (undecodable, empty, oversized) go to the
 * dead-letter topic and count as processed. An input offset is stored only after the producer
 * reported delivery of every result and dead letter up to it (at-least-once). Models arrive in
 * the worker's mailbox (model_slot.h) and are applied between two batches: a batch runs with
 * the model pinned at its start, and the slot's record says which model the worker applied.
 */
#ifndef KINFER_WORKER_H
#define KINFER_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/conf.h"
#include "kinfer/core/err.h"
#include "kinfer/model/model.h"
#include "kinfer/worker/metrics.h"
#include "kinfer/worker/model_slot.h"
#include "kinfer/worker/prom.h"

typedef struct kinfer_worker_s kinfer_worker_t;

/** Called from the worker thread with each closed metrics window, every metrics.interval.ms and
 *  when a model is swapped out (the window and what it points to are borrowed for the call).
 *  Must not block: copy what you need (kinfer_metrics_window_copy) and return. */
typedef void(kinfer_worker_metrics_cb_t)(const kinfer_metrics_window_t *win, void *opaque);

/** One closed shadow window (issue 15, docs/registry.md): how the shadow candidate compared
 *  with the active model on the same records. Borrowed for the callback's duration. */
typedef struct kinfer_shadow_window_s {
        const kinfer_model_record_t *active, *candidate;
        int64_t start_us, end_us; /* wall clock, Unix us */
        int64_t records, agree;   /* records both classified; the same top-1 label */
        int64_t confusion_other;  /* records beyond the 64 (active, candidate) label pairs */
        const char *confusion_json; /* [[active label, candidate label, count], ...] */
        double mean_score_diff;   /* candidate top-1 score - active top-1 score, mean */
        double active_classify_us, candidate_classify_us; /* per record */
} kinfer_shadow_window_t;

/** Called from the worker thread with each closed shadow window (with the metrics window, and
 *  when the rollout changes). Must not block: copy and return. */
typedef void(kinfer_worker_shadow_cb_t)(const kinfer_shadow_window_t *win, void *opaque);

/**
 * @brief Create the worker: codec, consumer (subscribed to input.topic), producer, runtime,
 *        and the model from model.path when set.
 * On success @p conf is owned by the worker and must not be used or destroyed by the caller.
 * Without model.path (registry deployments) the worker consumes nothing until a model is
 * posted into its slot (kinfer_worker_swap_model, kinfer_worker_model_slot).
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
/** Milliseconds left of the shutdown's waits: they end kinfer_shutdown_reserve_ms() before
 *  shutdown.timeout.ms from the first kinfer_worker_stop() (or from the end of the loop after a
 *  fatal error); 0 once over; shutdown.timeout.ms while not stopping. The whole shutdown (Kafka
 *  drain, commit, group leave, the registry's last flush) shares it. */
int kinfer_worker_shutdown_left_ms(kinfer_worker_t *w);
/** What a shutdown of @p timeout_ms (shutdown.timeout.ms) keeps for the process's own teardown
 *  (librdkafka's destroy, freeing) after kinfer's waits: a quarter of it, at most 1000 ms.
 *  `kinfer serve` exits at @p timeout_ms from the signal whether that teardown finished or not
 *  (docs/streaming.md, "Shutdown"). */
int kinfer_shutdown_reserve_ms(int timeout_ms);

/**
 * @brief Post a new model into the worker's mailbox: the worker applies it between two batches
 *        (within one batch.max.wait.ms, or 50 ms when idle), as it is: check it first (the
 *        registry thread verifies and warms up every model it posts).
 * Takes ownership of one reference of @p model (also on failure). A model posted before the
 * previous one was applied replaces it. Same as kinfer_model_slot_post() on
 * kinfer_worker_model_slot() with no registry id.
 * @param name     model name written in results (NULL: the model's own name)
 * @param version  registry version written in results
 * @locality any thread.
 */
kinfer_err_t kinfer_worker_swap_model(kinfer_worker_t *w, kinfer_model_t *model, const char *name,
                                      int32_t version, char *errstr, size_t errstr_size);

/** 1 while the worker has a model and assigned partitions (GET /readyz), else 0.
 *  @locality any thread. */
int kinfer_worker_ready(kinfer_worker_t *w);

/** The worker's mailbox and the record of the model it applied (borrowed; lives as long as the
 *  worker). @locality any thread. */
kinfer_model_slot_t *kinfer_worker_model_slot(kinfer_worker_t *w);

/** The model classifying now (from the slot's record). Copies into the caller's buffers;
 *  @p sha256 needs 65 bytes. @returns KINFER_ERR__NOENT when there is no model yet.
 *  @locality any thread. */
kinfer_err_t kinfer_worker_model_info(kinfer_worker_t *w, char *name, size_t name_size,
                                      int32_t *version, char *sha256);

/** The worker's cumulative metrics for GET /metrics (prom.h: kinfer_prom_render,
 *  kinfer_prom_metrics_fn). Borrowed; lives as long as the worker: stop every reader (the
 *  HTTP server) before kinfer_worker_destroy(). @locality any thread. */
kinfer_prom_t *kinfer_worker_prom(kinfer_worker_t *w);

/** Set the metrics callback (NULL: none; windows are still logged). Call before run. */
void kinfer_worker_set_metrics_cb(kinfer_worker_t *w, kinfer_worker_metrics_cb_t *cb, void *opaque);

/** Set the shadow window callback (NULL: none; shadow windows are still logged). Call before run. */
void kinfer_worker_set_shadow_cb(kinfer_worker_t *w, kinfer_worker_shadow_cb_t *cb, void *opaque);

/** Set the drained callback (NULL: none): kinfer_worker_run() calls it on its own thread once
 *  a clean stop has delivered every record consumed and committed their offsets (or given up
 *  committing them: they are then redone), before it leaves the group. `kinfer serve`'s
 *  teardown watchdog reads it for the exit status. Call before run. */
void kinfer_worker_set_drained_cb(kinfer_worker_t *w, void (*cb)(void *opaque), void *opaque);

/** This worker's id (worker.id or <hostname>-<pid>). */
const char *kinfer_worker_id(const kinfer_worker_t *w);
/** The worker's configuration (borrowed, read-only). */
const kinfer_conf_t *kinfer_worker_conf(const kinfer_worker_t *w);

/** Totals since start. @locality the worker thread, or after run returned. */
void kinfer_worker_totals(const kinfer_worker_t *w, int64_t *records, int64_t *dlq,
                          int64_t *batches);

void kinfer_worker_destroy(kinfer_worker_t *w);

#endif
