/* SPDX-License-Identifier: Apache-2.0 */
/* worker_registry.c -- the glue between the streaming worker and the registry thread: the
 * initial model from the deployment, kinfer_worker_swap_model() on activation, the worker's
 * swap reports back to the registry, and its metrics windows into the bounded ring (with the
 * label counts as a JSON object). Nothing here blocks the worker thread on PostgreSQL. */
#include "kinfer/worker/worker_registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinfer/core/conf.h"
#include "kinfer/core/log.h"

struct kinfer_worker_registry_s {
        kinfer_worker_t *worker;
        kinfer_model_watch_t *watch;
};

/* registry thread -> worker */
static kinfer_err_t wr_swap(void *opaque, kinfer_model_watch_loaded_t *loaded, char *errstr,
                            size_t errstr_size)
{
        kinfer_worker_registry_t *wr = opaque;
        /* takes the reference, also on failure */
        return kinfer_worker_swap_model(wr->worker, loaded->model, loaded->name, loaded->version,
                                        errstr, errstr_size);
}

/* worker thread: a swap was applied (or refused) between two batches */
static void wr_swapped(const char *name, int32_t version, kinfer_err_t err, const char *errstr,
                       void *opaque)
{
        kinfer_worker_registry_t *wr = opaque;
        kinfer_model_watch_report_swap(wr->watch, name, version, err, errstr);
}

/* Append @p s as a JSON string (quotes, escapes) at @p p, within @p end. @returns the new end,
 * or NULL when out of room. */
static char *wr_json_str(char *p, char *end, const char *s)
{
        if (p >= end)
                return NULL;
        *p++ = '"';
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                if (end - p < 8)
                        return NULL;
                if (c == '"' || c == '\\') {
                        *p++ = '\\';
                        *p++ = (char)c;
                } else if (c < 0x20) {
                        p += snprintf(p, (size_t)(end - p), "\\u%04x", c);
                } else {
                        *p++ = (char)c;
                }
        }
        if (end - p < 2)
                return NULL;
        *p++ = '"';
        return p;
}

/* worker thread: one metrics window -> the ring (never blocks on the database) */
static void wr_metrics(const kinfer_worker_metrics_t *m, void *opaque)
{
        kinfer_worker_registry_t *wr = opaque;
        size_t cap = 16;
        for (int32_t i = 0; i < m->n_labels; i++)
                cap += 2 * strlen(m->labels[i]) + 32;
        char *json = malloc(cap), *p = json, *end = json + cap;
        if (json) {
                *p++ = '{';
                int first = 1;
                for (int32_t i = 0; p && i < m->n_labels; i++) {
                        if (!m->label_counts[i])
                                continue;
                        if (!first)
                                *p++ = ',';
                        first = 0;
                        p = wr_json_str(p, end, m->labels[i]);
                        if (p)
                                p += snprintf(p, (size_t)(end - p), ":%lld",
                                              (long long)m->label_counts[i]);
                }
                if (p && end - p >= 2) {
                        *p++ = '}';
                        *p = '\0';
                } else {
                        free(json);
                        json = NULL;
                }
        }
        kinfer_registry_metrics_t rm = {
            .worker_id = NULL, /* the watch's */
            .deployment = NULL,
            .model_name = m->model_name,
            .model_version = m->model_version,
            .model_sha256 = m->model_sha256,
            .window_start_us = m->window_start_ms * 1000,
            .window_end_us = m->window_end_ms * 1000,
            .records = m->records,
            .batches = m->batches,
            .dlq = m->dlq,
            .mean_batch_size = m->mean_batch_size,
            .latency_p50_ms = m->latency_p50_ms,
            .latency_p95_ms = m->latency_p95_ms,
            .latency_p99_ms = m->latency_p99_ms,
            .mean_confidence = m->mean_confidence,
            .label_counts_json = json,
        };
        kinfer_model_watch_metrics(wr->watch, &rm);
        free(json);
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
        kinfer_model_watch_loaded_t initial;
        char why[512];
        wr->watch = kinfer_model_watch_new(&wconf, &initial, why, sizeof(why));
        if (!wr->watch) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__DB, "deployment %s: %s", deployment,
                              why);
                free(wr);
                return NULL;
        }
        kinfer_err_t err = kinfer_worker_swap_model(worker, initial.model, initial.name,
                                                    initial.version, why, sizeof(why));
        if (err) {
                kinfer_seterr(errstr, errstr_size, err, "deployment %s: model %s:%d: %s",
                              deployment, initial.name, (int)initial.version, why);
                kinfer_model_watch_destroy(wr->watch, 0);
                free(wr);
                return NULL;
        }
        kinfer_worker_set_swap_cb(worker, wr_swapped, wr);
        kinfer_worker_set_metrics_cb(worker, wr_metrics, wr);
        if ((err = kinfer_model_watch_start(wr->watch, wr_swap, wr, errstr, errstr_size))) {
                kinfer_worker_set_swap_cb(worker, NULL, NULL);
                kinfer_worker_set_metrics_cb(worker, NULL, NULL);
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

void kinfer_worker_registry_detach(kinfer_worker_registry_t *wr, int flush_ms)
{
        if (!wr)
                return;
        kinfer_model_watch_destroy(wr->watch, flush_ms);
        kinfer_worker_set_swap_cb(wr->worker, NULL, NULL);
        kinfer_worker_set_metrics_cb(wr->worker, NULL, NULL);
        free(wr);
}
