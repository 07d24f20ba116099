/* SPDX-License-Identifier: Apache-2.0 */
/* model_watch.h -- a worker's link to the registry: load the deployment's active model at
 * start, then a thread that LISTENs for kinfer.activate/rollback, fetches, verifies and warms
 * up the new model off the hot path and posts it into the worker's mailbox (model_slot.h; the
 * worker applies it between two batches); heartbeats into kinfer.workers; metrics windows
 * buffered in a bounded ring and written with reconnect + exponential backoff.
 *
 * Which model is current is the worker's to say: heartbeats ("loaded model"), the "applied"
 * log line and the stats read the record the worker publishes in the slot when it applied a
 * model. Nothing here sets it, guesses it or reverts it.
 *
 * The last two models verified (the active one and the one before it) stay referenced, so a
 * rollback needs no fetch and no verification: memory holds one extra model. At start the
 * thread prefetches the deployment's previous model for the same reason.
 *
 * Nothing here ever blocks the caller's data path on PostgreSQL: kinfer_model_watch_metrics()
 * only copies into the ring, and every database call runs on the watch thread. When
 * PostgreSQL is away, serving goes on with the loaded model.
 *
 *   watch = kinfer_model_watch_new(&conf, kinfer_worker_model_slot(worker), errstr, ...);
 *   kinfer_model_watch_start(watch, errstr, sizeof(errstr));
 *   ... kinfer_model_watch_metrics(watch, window) from the metrics callback ...
 *   kinfer_model_watch_destroy(watch, budget_ms);  // bounded: the rest of the shutdown deadline
 */
#ifndef KINFER_MODEL_WATCH_H
#define KINFER_MODEL_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/err.h"
#include "kinfer/worker/metrics.h"
#include "kinfer/worker/model_slot.h"

struct kinfer_shadow_window_s; /* worker.h */

typedef struct kinfer_model_watch_s kinfer_model_watch_t;

/** The metrics ring's default byte bound (16 MiB): 4096 windows of a 51-label model take
 *  about 2.2 MiB, so it binds only for models with thousands of labels (a window holds one
 *  8-byte count per label). The oldest window is dropped first; one window is always kept. */
#define KINFER_MODEL_WATCH_METRICS_BYTES ((size_t)16 << 20)

typedef struct kinfer_model_watch_conf_s {
        const char *conninfo;    /* libpq conninfo; NULL or "" = PG* environment */
        const char *deployment;  /* required */
        const char *worker_id;   /* NULL = "host:pid:start-time" */
        int heartbeat_ms;        /* kinfer.workers heartbeat; 0 = 5000 */
        int backoff_max_ms;      /* reconnect backoff cap; 0 = 10000 (starts at 100) */
        size_t metrics_capacity; /* windows kept while PostgreSQL is away; 0 = 4096 */
        size_t metrics_max_bytes; /* ... and their bytes (kinfer_metrics_window_bytes);
                                     0 = KINFER_MODEL_WATCH_METRICS_BYTES */
        int warmup;              /* the smoke classification before a post; default on (-1 = off) */
} kinfer_model_watch_conf_t;

/**
 * @brief Connect, load the deployment's active model (sha256 verified, warmed up), post it
 *        into @p slot and register the worker in kinfer.workers. Blocking.
 * @param slot  the worker's mailbox (borrowed; must outlive the watch)
 * @returns the watch (its thread not started), or NULL (see @p errstr: PostgreSQL
 *          unreachable, no such deployment / no active model, a corrupt artifact).
 */
kinfer_model_watch_t *kinfer_model_watch_new(const kinfer_model_watch_conf_t *conf,
                                             kinfer_model_slot_t *slot, char *errstr,
                                             size_t errstr_size);

/** Start the watch thread. @returns KINFER_OK, or KINFER_ERR__STATE (already started, or the
 *  thread cannot be created: nothing runs then, destroy the watch). */
kinfer_err_t kinfer_model_watch_start(kinfer_model_watch_t *watch, char *errstr,
                                      size_t errstr_size);

/**
 * @brief Queue a copy of closed window @p win for kinfer.metrics_windows (under the watch's
 * worker id and deployment). Never blocks on the database: the window is copied into the
 * ring (the oldest window is dropped, and counted, when full).
 * @locality any thread.
 */
void kinfer_model_watch_metrics(kinfer_model_watch_t *watch, const kinfer_metrics_window_t *win);

/** Queue a copy of a closed shadow window for kinfer.shadow_windows (migration 0005): a ring
 *  of KINFER_WATCH_SHADOW_RING windows (the oldest dropped when full), written by the registry
 *  thread beside the metrics windows. Never blocks on PostgreSQL. @locality any thread. */
#define KINFER_WATCH_SHADOW_RING 64
void kinfer_model_watch_shadow(kinfer_model_watch_t *watch,
                               const struct kinfer_shadow_window_s *win);

/** The worker id used in kinfer.workers and kinfer.metrics_windows. */
const char *kinfer_model_watch_worker_id(const kinfer_model_watch_t *watch);

typedef struct kinfer_model_watch_stats_s {
        int connected;            /* the watch connection is up */
        int64_t swaps;            /* models posted to the worker after an activation */
        int64_t cache_hits;       /* of those, models verified before (no fetch, no load) */
        int64_t prefetched;       /* previous models loaded at start for a quick rollback */
        int64_t load_failures;    /* new active models refused (corrupt, sha mismatch, ...) */
        int64_t reconnects;       /* successful reconnects */
        int64_t notifications;    /* notifications for this deployment received */
        int64_t fetches;          /* artifacts fetched from the registry (and verified) */
        int64_t metrics_written;  /* windows written */
        int64_t metrics_dropped;  /* windows dropped because the ring was full */
        int64_t metrics_buffered; /* windows waiting in the ring */
        int64_t metrics_buffered_bytes; /* ... their bytes (kinfer_metrics_window_bytes) */
        int32_t version;          /* the version the worker applied last (its record), or 0 */
        double last_swap_ms;      /* notification received -> model posted */
        double last_applied_ms;   /* notification received -> the worker applied it (the time
                                     in its record), or 0 */
} kinfer_model_watch_stats_t;

/** A snapshot of the counters. @locality any thread. */
void kinfer_model_watch_stats(kinfer_model_watch_t *watch, kinfer_model_watch_stats_t *stats);

/**
 * @brief Stop the thread, flushing buffered metrics and marking the worker stopped, and free.
 * Returns within @p budget_ms (plus a few ms), whatever PostgreSQL does: when the thread has
 * not finished by then (a frozen or partitioned server), its connection is interrupted
 * (kinfer_registry_interrupt) and what is left unsent is dropped with a warning. The caller
 * passes what remains of its shutdown deadline (shutdown.timeout.ms minus the Kafka drain).
 * NULL is a no-op.
 */
void kinfer_model_watch_destroy(kinfer_model_watch_t *watch, int budget_ms);

#endif
