/* SPDX-License-Identifier: Apache-2.0 */
/* worker_registry.h -- serve a registry deployment: glue between a kinfer_worker_t and the
 * registry thread (model_watch.h). With `deployment` set, the worker's model comes from
 * PostgreSQL (`pg.conninfo`, else PG*): the registry thread posts each activated model into
 * the worker's mailbox (kinfer_worker_model_slot), the worker applies it between two batches,
 * and heartbeats (what the worker applied) and metrics windows go to kinfer.workers /
 * kinfer.metrics_windows. */
#ifndef KINFER_WORKER_REGISTRY_H
#define KINFER_WORKER_REGISTRY_H

#include <stddef.h>

#include "kinfer/core/err.h"
#include "kinfer/worker/model_watch.h"
#include "kinfer/worker/worker.h"

typedef struct kinfer_worker_registry_s kinfer_worker_registry_t;

/**
 * @brief Load the deployment's active model (verified, warmed up), post it into @p worker's
 * mailbox, install the worker's metrics callback, and start the registry thread. Call before
 * kinfer_worker_run(). Blocking (connects to PostgreSQL).
 * @returns the attachment, or NULL (see @p errstr: no deployment configured, PostgreSQL
 *          unreachable, no active model, a corrupt artifact).
 */
kinfer_worker_registry_t *kinfer_worker_registry_attach(kinfer_worker_t *worker, char *errstr,
                                                        size_t errstr_size);

/** The registry thread (for its stats). Borrowed. */
kinfer_model_watch_t *kinfer_worker_registry_watch(kinfer_worker_registry_t *wr);

/** Stop the registry thread (flushing buffered metrics) and free, within @p budget_ms
 * whatever PostgreSQL does (see kinfer_model_watch_destroy). Call after kinfer_worker_run()
 * returned and before kinfer_worker_destroy(). NULL: no-op. */
void kinfer_worker_registry_detach(kinfer_worker_registry_t *wr, int budget_ms);

#endif
