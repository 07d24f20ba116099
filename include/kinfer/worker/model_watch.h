/* SPDX-License-Identifier: Apache-2.0 */
/* model_watch.h -- a worker's link to the registry: load the deployment's active model at
 * start, then a thread that LISTENs for kinfer.activate/rollback, loads + verifies + warms
 * the new model off the hot path and hands it to a swap callback (the worker applies it
 * between two batches); heartbeats into kinfer.workers; metrics windows buffered in a
 * bounded ring and written with reconnect + exponential backoff.
 *
 * The last two models verified (the active one and the one before it) stay referenced, so a
 * rollback needs no fetch and no verification: memory holds one extra model. At start the
 * thread prefetches the deployment's previous model for the same reason.
 *
 * Nothing here ever blocks the caller's data path on PostgreSQL: kinfer_model_watch_metrics()
 * only copies into the ring, and every database call runs on the watch thread. When
 * PostgreSQL is away, serving goes on with the loaded model.
 *
 *   watch = kinfer_model_watch_new(&conf, &initial, errstr, sizeof(errstr));  // blocking
 *   worker = ...(initial.model)...;
 *   kinfer_model_watch_start(watch, swap_cb, worker, errstr, sizeof(errstr));
 *   ... kinfer_model_watch_metrics(watch, &window) from the metrics callback ...
 *   kinfer_model_watch_destroy(watch);
 */
#ifndef KINFER_MODEL_WATCH_H
#define KINFER_MODEL_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/err.h"
#include "kinfer/model/model.h"
#include "kinfer/registry/registry.h"

typedef struct kinfer_model_watch_s kinfer_model_watch_t;

typedef struct kinfer_model_watch_conf_s {
        const char *conninfo;    /* libpq conninfo; NULL or "" = PG* environment */
        const char *deployment;  /* required */
        const char *worker_id;   /* NULL = "host:pid:start-time" */
        int heartbeat_ms;        /* kinfer.workers heartbeat; 0 = 5000 */
        int backoff_max_ms;      /* reconnect backoff cap; 0 = 10000 (starts at 100) */
        size_t metrics_capacity; /* windows kept while PostgreSQL is away; 0 = 4096 */
        int warmup;              /* classify a few texts before a swap; default on (-1 = off) */
} kinfer_model_watch_conf_t;

/** A loaded model and its registry identity. */
typedef struct kinfer_model_watch_loaded_s {
        kinfer_model_t *model; /* one reference, owned by whoever receives this struct */
        int64_t id;
        char name[129];
        int32_t version;
        char sha256[65];
} kinfer_model_watch_loaded_t;

/**
 * @brief Swap callback: make @p loaded the model of the worker, effective from the next batch.
 * The callback always takes over @p loaded->model's reference (also when it fails, like
 * kinfer_worker_swap_model()); on failure the watch records the error and keeps reporting
 * the old model.
 * @locality called on the watch thread.
 */
typedef kinfer_err_t(kinfer_model_watch_swap_cb)(void *opaque, kinfer_model_watch_loaded_t *loaded,
                                                 char *errstr, size_t errstr_size);

/**
 * @brief Connect, load the deployment's active model (sha256 verified, warmed up) into
 * @p initial, and register the worker in kinfer.workers. Blocking.
 * @returns the watch (its thread not started), or NULL (see @p errstr: PostgreSQL
 *          unreachable, no such deployment / no active model, a corrupt artifact).
 */
kinfer_model_watch_t *kinfer_model_watch_new(const kinfer_model_watch_conf_t *conf,
                                             kinfer_model_watch_loaded_t *initial, char *errstr,
                                             size_t errstr_size);

/** Start the watch thread; @p swap is called for each new active model. */
kinfer_err_t kinfer_model_watch_start(kinfer_model_watch_t *watch, kinfer_model_watch_swap_cb *swap,
                                      void *opaque, char *errstr, size_t errstr_size);

/**
 * @brief Queue one metrics window for kinfer.metrics_windows. Never blocks on the database:
 * the window is copied into the ring (the oldest window is dropped, and counted, when full).
 * worker_id / deployment in @p metrics may be NULL: the watch's own are used.
 * @locality any thread.
 */
void kinfer_model_watch_metrics(kinfer_model_watch_t *watch,
                                const kinfer_registry_metrics_t *metrics);

/**
 * @brief Tell the watch how a hand-over ended in the worker (which may still refuse a model,
 * e.g. its smoke test failed, or apply it a little later, between two batches).
 * On failure the old model is reported again and @p errstr is recorded in
 * kinfer.workers.last_error. Never blocks on the database.
 * @locality any thread.
 */
void kinfer_model_watch_report_swap(kinfer_model_watch_t *watch, const char *name, int32_t version,
                                    kinfer_err_t err, const char *errstr);

/** The worker id used in kinfer.workers and kinfer.metrics_windows. */
const char *kinfer_model_watch_worker_id(const kinfer_model_watch_t *watch);

typedef struct kinfer_model_watch_stats_s {
        int connected;            /* the watch connection is up */
        int64_t swaps;            /* models handed to the swap callback successfully */
        int64_t cache_hits;       /* of those, models verified before (no fetch, no load) */
        int64_t prefetched;       /* previous models loaded at start for a quick rollback */
        int64_t load_failures;    /* new active models refused (corrupt, sha mismatch, ...) */
        int64_t reconnects;       /* successful reconnects */
        int64_t metrics_written;  /* windows written */
        int64_t metrics_dropped;  /* windows dropped because the ring was full */
        int64_t metrics_buffered; /* windows waiting in the ring */
        int32_t version;          /* the model version last handed over */
        double last_swap_ms;      /* notification received -> swap callback returned */
        double last_applied_ms;   /* notification received -> the worker reported it applied
                                     (kinfer_model_watch_report_swap), or 0 */
} kinfer_model_watch_stats_t;

/** A snapshot of the counters. @locality any thread. */
void kinfer_model_watch_stats(kinfer_model_watch_t *watch, kinfer_model_watch_stats_t *stats);

/** Stop the thread (flushing buffered metrics for up to @p flush_ms), mark the worker
 * stopped, disconnect and free. NULL is a no-op. */
void kinfer_model_watch_destroy(kinfer_model_watch_t *watch, int flush_ms);

#endif
