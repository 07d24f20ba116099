/* SPDX-License-Identifier: Apache-2.0 */
/* worker_registry.c -- the glue between the streaming worker and the registry thread: the
 * watch posts into the worker's mailbox (its slot), and the worker's closed metrics windows
 * go to the watch's ring. Nothing here blocks the worker thread on PostgreSQL. */
#include "kinfer/worker/worker_registry.h"

#include <stdlib.h>

#include "kinfer/core/conf.h"

struct kinfer_worker_registry_s {
        kinfer_worker_t *worker;
        kinfer_model_watch_t *watch;
};

/* worker thread: one closed metrics window -> the ring (never blocks on the database) */
static void wr_metrics(const kinfer_metrics_window_t *win, void *opaque)
{
        kinfer_worker_registry_t *wr = opaque;
        kinfer_model_watch_metrics(wr->watch, win);
}

/* worker thread: one closed shadow window -> the watch's shadow ring */
static void wr_shadow(const kinfer_shadow_window_t *win, void *opaque)
{
        kinfer_worker_registry_t *wr = opaque;
        kinfer_model_watch_shadow(wr->watch, win);
}

kinfer_worker_registry_t *kinfer_worker_registry_attach(kinfer_worker_t *worker, char *errstr,
                                                        size_t errstr_size)
{
        const kinfer_conf_t *conf = kinfer_worker_conf(worker);
        const char *deployment = kinfer_conf_get(conf, "deployment");
        const char *conninfo = kinfer_conf_get(conf, "pg.conninfo");
        if (!deployment || !*deployment) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                              "no deployment configured");
                return NULL;
        }
        kinfer_worker_registry_t *wr = calloc(1, sizeof(*wr));
        if (!wr) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        wr->worker = worker;
        kinfer_model_watch_conf_t wconf = {
            .conninfo = conninfo && *conninfo ? conninfo : NULL,
            .deployment = deployment,
            .worker_id = kinfer_worker_id(worker),
        };
        char why[512];
        /* posts the deployment's active model: the worker applies it before its first batch */
        wr->watch = kinfer_model_watch_new(&wconf, kinfer_worker_model_slot(worker), why,
                                           sizeof(why));
        if (!wr->watch) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__DB, "deployment %s: %s", deployment,
                              why);
                free(wr);
                return NULL;
        }
        kinfer_worker_set_metrics_cb(worker, wr_metrics, wr);
        kinfer_worker_set_shadow_cb(worker, wr_shadow, wr);
        kinfer_err_t err = kinfer_model_watch_start(wr->watch, errstr, errstr_size);
        if (err) {
                kinfer_worker_set_metrics_cb(worker, NULL, NULL);
                kinfer_worker_set_shadow_cb(worker, NULL, NULL);
                kinfer_model_watch_destroy(wr->watch, 0);
                free(wr);
                return NULL;
        }
        return wr;
}

kinfer_model_watch_t *kinfer_worker_registry_watch(kinfer_worker_registry_t *wr)
{
        return wr->watch;
}

void kinfer_worker_registry_detach(kinfer_worker_registry_t *wr, int budget_ms)
{
        if (!wr)
                return;
        kinfer_model_watch_destroy(wr->watch, budget_ms);
        kinfer_worker_set_metrics_cb(wr->worker, NULL, NULL);
        kinfer_worker_set_shadow_cb(wr->worker, NULL, NULL);
        free(wr);
}
