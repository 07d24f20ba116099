/* SPDX-License-Identifier: Apache-2.0 */
/* metrics.c -- the metrics window: latency histogram, counters, label counts, and the
 * kinfer.metrics_windows row built from a closed window. */
#include "kinfer/worker/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kinfer/core/json.h"

/* ---- the latency histogram ------------------------------------------------------------------ */

static int latency_bucket(uint64_t us)
{
        if (us < 8)
                return (int)us;
        int msb = 63 - __builtin_clzll(us);
        int b = (msb - 2) * 8 + (int)((us >> (msb - 3)) & 7);
        return b < KINFER_LATENCY_BUCKETS ? b : KINFER_LATENCY_BUCKETS - 1;
}

static double latency_bucket_ms(int b)
{
        if (b < 8)
                return b / 1000.0;
        int msb = b / 8 + 2, sub = b % 8;
        double lo = (double)((uint64_t)(8 + sub) << (msb - 3));
        double width = (double)(UINT64_C(1) << (msb - 3));
        return (lo + width / 2) / 1000.0;
}

void kinfer_latency_add(kinfer_latency_hist_t *hist, int64_t us)
{
        hist->bucket[latency_bucket(us < 0 ? 0 : (uint64_t)us)]++;
        hist->n++;
}

double kinfer_latency_pct_ms(const kinfer_latency_hist_t *hist, double p)
{
        if (hist->n == 0)
                return 0;
        int64_t rank = (int64_t)ceil(p * (double)hist->n), cum = 0;
        if (rank < 1)
                rank = 1;
        for (int b = 0; b < KINFER_LATENCY_BUCKETS; b++) {
                cum += hist->bucket[b];
                if (cum >= rank)
                        return latency_bucket_ms(b);
        }
        return latency_bucket_ms(KINFER_LATENCY_BUCKETS - 1);
}

/* ---- the window ----------------------------------------------------------------------------- */

static int64_t clock_us(clockid_t clock)
{
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void kinfer_metrics_window_term(kinfer_metrics_window_t *win)
{
        kinfer_model_record_release(win->model);
        free(win->label_counts);
        free(win->latency);
        memset(win, 0, sizeof(*win));
}

kinfer_err_t kinfer_metrics_window_start(kinfer_metrics_window_t *win,
                                         kinfer_model_record_t *model, char *errstr,
                                         size_t errstr_size)
{
        kinfer_metrics_window_term(win);
        win->start_us = clock_us(CLOCK_REALTIME);
        win->start_mono_us = clock_us(CLOCK_MONOTONIC);
        win->model = kinfer_model_record_keep(model);
        win->latency = calloc(1, sizeof(*win->latency));
        if (model && model->n_labels > 0) {
                win->label_counts = calloc((size_t)model->n_labels, sizeof(int64_t));
                if (win->label_counts)
                        win->n_labels = model->n_labels;
        }
        if (!win->latency || (model && model->n_labels > 0 && !win->label_counts))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM,
                                     "out of memory: the metrics window counts no %s",
                                     win->latency ? "labels" : "latencies");
        return KINFER_OK;
}

void kinfer_metrics_window_count(kinfer_metrics_window_t *win, const kinfer_prediction_t *preds,
                                 int32_t n)
{
        for (int32_t i = 0; i < n; i++) {
                const kinfer_prediction_t *p = &preds[i];
                if (p->n < 1) /* not classified (a no_features dead letter): counted in dlq */
                        continue;
                if (p->label[0] >= 0 && p->label[0] < win->n_labels)
                        win->label_counts[p->label[0]]++;
                win->conf_sum += p->prob[0];
                win->conf_hist[kinfer_ref_bin(p->prob[0])]++;
                win->records++;
        }
        win->batches++;
}

void kinfer_metrics_window_close(kinfer_metrics_window_t *win)
{
        win->end_us = clock_us(CLOCK_REALTIME);
        if (win->latency) {
                win->latency_p50_ms = kinfer_latency_pct_ms(win->latency, 0.50);
                win->latency_p95_ms = kinfer_latency_pct_ms(win->latency, 0.95);
                win->latency_p99_ms = kinfer_latency_pct_ms(win->latency, 0.99);
                free(win->latency);
                win->latency = NULL;
        }
}

double kinfer_metrics_window_mean_batch(const kinfer_metrics_window_t *win)
{
        return win->batches ? (double)win->records / (double)win->batches : 0;
}

double kinfer_metrics_window_mean_confidence(const kinfer_metrics_window_t *win)
{
        return win->records ? win->conf_sum / (double)win->records : 0;
}

kinfer_err_t kinfer_metrics_window_copy(kinfer_metrics_window_t *dst,
                                        const kinfer_metrics_window_t *src)
{
        *dst = *src;
        dst->latency = NULL; /* closed windows only */
        dst->label_counts = NULL;
        if (src->n_labels > 0) {
                dst->label_counts = malloc((size_t)src->n_labels * sizeof(int64_t));
                if (!dst->label_counts) {
                        memset(dst, 0, sizeof(*dst));
                        return KINFER_ERR__NOMEM;
                }
                memcpy(dst->label_counts, src->label_counts,
                       (size_t)src->n_labels * sizeof(int64_t));
        }
        kinfer_model_record_keep(dst->model);
        return KINFER_OK;
}

size_t kinfer_metrics_window_bytes(const kinfer_metrics_window_t *win)
{
        return sizeof(*win) + (win->n_labels > 0 ? (size_t)win->n_labels * sizeof(int64_t) : 0);
}

kinfer_err_t kinfer_metrics_window_row(const kinfer_metrics_window_t *win, const char *worker_id,
                                       const char *deployment, kinfer_registry_metrics_t *row,
                                       kinfer_buf_t *json)
{
        const kinfer_model_record_t *m = win->model;
        kinfer_buf_reset(json);
        kinfer_buf_putc(json, '{');
        int first = 1;
        for (int32_t i = 0; m && i < win->n_labels && i < m->n_labels; i++) {
                if (!win->label_counts[i])
                        continue;
                if (!first)
                        kinfer_buf_putc(json, ',');
                first = 0;
                kinfer_buf_json_cstr(json, m->labels[i]);
                kinfer_buf_printf(json, ":%lld", (long long)win->label_counts[i]);
        }
        kinfer_buf_putc(json, '}');
        if (json->oom)
                return KINFER_ERR__NOMEM;
        *row = (kinfer_registry_metrics_t){
            .worker_id = worker_id,
            .deployment = deployment,
            .model_name = m ? m->name : NULL,
            .model_version = m ? m->version : 0,
            .model_sha256 = m ? m->sha256 : NULL,
            .window_start_us = win->start_us,
            .window_end_us = win->end_us,
            .records = win->records,
            .batches = win->batches,
            .dlq = win->dlq,
            .mean_batch_size = kinfer_metrics_window_mean_batch(win),
            .latency_p50_ms = win->latency_p50_ms,
            .latency_p95_ms = win->latency_p95_ms,
            .latency_p99_ms = win->latency_p99_ms,
            .mean_confidence = kinfer_metrics_window_mean_confidence(win),
            .label_counts_json = json->data,
            .confidence_hist = win->records > 0 ? win->conf_hist : NULL,
            .n_confidence_hist = KINFER_REF_BINS,
            .psi_labels = win->psi_assessed ? win->psi_labels : -1,
            .psi_confidence = win->psi_assessed ? win->psi_confidence : -1,
        };
        return KINFER_OK;
}
