/* SPDX-License-Identifier: Apache-2.0 */
/* eval.c -- accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix,
 * classifying with the serving runtime in batches over several threads. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kinfer/core/buf.h"
#include "kinfer/core/json.h"
#include "kinfer/runtime/runtime.h"
#include "kinfer/train/train.h"

#define EVAL_BATCH 256
#define MAX_THREADS 64

typedef struct eval_job_s {
        const kinfer_model_t *model;
        const kinfer_dataset_t *ds;
        int32_t begin, end;
        int32_t *pred;
        float *conf;
        kinfer_err_t err;
        char errstr[256];
        atomic_int *stop;     /* set when a thread could not be started */
} eval_job_t;

static void *eval_thread(void *arg)
{
        eval_job_t *j = arg;
        kinfer_runtime_t *rt = kinfer_runtime_new(EVAL_BATCH, j->errstr, sizeof(j->errstr));
        if (!rt) {
                j->err = KINFER_ERR__NOMEM;
                return NULL;
        }
        kinfer_prediction_t out[EVAL_BATCH];
        for (int32_t b = j->begin; b < j->end && !atomic_load(j->stop); b += EVAL_BATCH) {
                int32_t n = j->end - b < EVAL_BATCH ? j->end - b : EVAL_BATCH;
                j->err = kinfer_runtime_classify(rt, j->model, j->ds->texts + b, j->ds->lens + b, n, 1,
                                                 out, j->errstr, sizeof(j->errstr));
                if (j->err)
                        break;
                for (int32_t i = 0; i < n; i++) {
                        j->pred[b + i] = out[i].label[0];
                        j->conf[b + i] = out[i].prob[0];
                }
        }
        kinfer_runtime_destroy(rt);
        return NULL;
}

void kinfer_eval_term(kinfer_eval_t *ev)
{
        free(ev->precision);
        free(ev->recall);
        free(ev->f1);
        free(ev->support);
        free(ev->confusion);
        memset(ev, 0, sizeof(*ev));
}

/* The top label and its score of every record of @p ds, with @p threads threads (the calling
 * thread is one). If a thread cannot start, the started ones stop after their batch. */
static kinfer_err_t classify_all(const kinfer_model_t *model, const kinfer_dataset_t *ds,
                                 int threads, int32_t *pred, float *conf, char *errstr,
                                 size_t errstr_size)
{
        eval_job_t jobs[MAX_THREADS];
        pthread_t tids[MAX_THREADS];
        atomic_int stop;
        atomic_init(&stop, 0);
        for (int t = 0; t < threads; t++)
                jobs[t] = (eval_job_t){.model = model, .ds = ds, .pred = pred, .conf = conf,
                                       .begin = (int32_t)((int64_t)ds->n * t / threads),
                                       .end = (int32_t)((int64_t)ds->n * (t + 1) / threads),
                                       .stop = &stop};
        int started = 1, rc = 0;
        for (; started < threads; started++)
                if ((rc = pthread_create(&tids[started], NULL, eval_thread, &jobs[started])))
                        break;
        if (rc)
                atomic_store(&stop, 1);
        else
                eval_thread(&jobs[0]);
        for (int t = 1; t < started; t++)
                pthread_join(tids[t], NULL);
        if (rc)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE,
                                     "cannot start an evaluation thread: %s", strerror(rc));
        for (int t = 0; t < threads; t++)
                if (jobs[t].err)
                        return kinfer_seterr(errstr, errstr_size, jobs[t].err, "%s", jobs[t].errstr);
        return KINFER_OK;
}

/* Counts, the confusion matrix, accuracy, mean confidence and the calibration error. */
static void tally(kinfer_eval_t *ev, const kinfer_model_t *model, const kinfer_dataset_t *ds,
                  const int32_t *pred, const float *conf)
{
        const int32_t L = ev->n_labels;
        double bin_n[10] = {0}, bin_conf[10] = {0}, bin_ok[10] = {0};
        for (int32_t i = 0; i < ds->n; i++) {
                int32_t y = kinfer_model_label_index(model, ds->labels[i]);
                /* the runtime's scores are finite probabilities; a NaN must still never
                 * become an index (it segfaulted kinfer eval once) */
                int bin = conf[i] >= 1.0f ? 9 : conf[i] > 0.0f ? (int)(conf[i] * 10) : 0;
                bin_n[bin]++;
                bin_conf[bin] += conf[i];
                bin_ok[bin] += y == pred[i];
                ev->mean_confidence += conf[i];
                if (y < 0)
                        y = L; /* not a label of the model: always wrong */
                ev->support[y]++;
                ev->confusion[(size_t)y * L + pred[i]]++;
                ev->correct += y == pred[i];
                ev->n++;
        }
        ev->accuracy = ev->n ? (double)ev->correct / (double)ev->n : 0;
        if (ev->n) {
                ev->mean_confidence /= (double)ev->n;
                for (int b = 0; b < 10; b++)
                        if (bin_n[b] > 0)
                                ev->ece += fabs(bin_conf[b] - bin_ok[b]) / (double)ev->n;
        }
}

/* Precision, recall and F1 per class from the confusion matrix, and their macro average. */
static void per_class(kinfer_eval_t *ev)
{
        const int32_t L = ev->n_labels;
        int32_t classes = 0;
        for (int32_t c = 0; c < L; c++) {
                int64_t tp = ev->confusion[(size_t)c * L + c], pp = 0;
                for (int32_t r = 0; r <= L; r++)
                        pp += ev->confusion[(size_t)r * L + c];
                ev->precision[c] = pp ? (double)tp / (double)pp : 0;
                ev->recall[c] = ev->support[c] ? (double)tp / (double)ev->support[c] : 0;
                double s = ev->precision[c] + ev->recall[c];
                ev->f1[c] = s > 0 ? 2 * ev->precision[c] * ev->recall[c] / s : 0;
                if (ev->support[c] || pp) {
                        ev->macro_f1 += ev->f1[c];
                        classes++;
                }
        }
        ev->macro_f1 = classes ? ev->macro_f1 / classes : 0;
}

kinfer_err_t kinfer_eval(const kinfer_model_t *model, const kinfer_dataset_t *ds, int32_t threads,
                         kinfer_eval_t *ev, char *errstr, size_t errstr_size)
{
        memset(ev, 0, sizeof(*ev));
        if (!ds->labels)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                     "%s: has no labels to evaluate against", ds->path);
        const int32_t L = kinfer_model_n_labels(model);
        int32_t *pred = malloc((size_t)(ds->n ? ds->n : 1) * sizeof(int32_t));
        float *conf = malloc((size_t)(ds->n ? ds->n : 1) * sizeof(float));
        ev->n_labels = L;
        ev->precision = calloc((size_t)L, sizeof(double));
        ev->recall = calloc((size_t)L, sizeof(double));
        ev->f1 = calloc((size_t)L, sizeof(double));
        ev->support = calloc((size_t)L + 1, sizeof(int64_t));
        ev->confusion = calloc((size_t)(L + 1) * (size_t)L, sizeof(int64_t));
        kinfer_err_t err = KINFER_OK;
        if (!pred || !conf || !ev->precision || !ev->recall || !ev->f1 || !ev->support || !ev->confusion)
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
        else
                err = classify_all(model, ds, threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads,
                                   pred, conf, errstr, errstr_size);
        if (!err) {
                tally(ev, model, ds, pred, conf);
                per_class(ev);
        } else {
                kinfer_eval_term(ev);
        }
        free(pred);
        free(conf);
        return err;
}

kinfer_err_t kinfer_eval_json(const kinfer_model_t *model, const kinfer_eval_t *ev, int with_confusion,
                              char **out, char *errstr, size_t errstr_size)
{
        kinfer_buf_t b = {0};
        const int32_t L = ev->n_labels;
        kinfer_buf_printf(&b, "{\"n\": %lld, \"correct\": %lld, \"accuracy\": %.6f, \"macro_f1\": %.6f, "
                              "\"mean_confidence\": %.6f, \"ece\": %.6f, "
                              "\"unknown_labels\": %lld, \"per_class\": [",
                          (long long)ev->n, (long long)ev->correct, ev->accuracy, ev->macro_f1,
                          ev->mean_confidence, ev->ece, (long long)ev->support[L]);
        for (int32_t c = 0; c < L; c++) {
                kinfer_buf_puts(&b, c ? ", {\"label\": " : "{\"label\": ");
                kinfer_buf_json_cstr(&b, kinfer_model_label(model, c));
                kinfer_buf_printf(&b, ", \"precision\": %.6f, \"recall\": %.6f, \"f1\": %.6f, \"support\": %lld}",
                                  ev->precision[c], ev->recall[c], ev->f1[c], (long long)ev->support[c]);
        }
        kinfer_buf_puts(&b, "]");
        if (with_confusion) {
                kinfer_buf_puts(&b, ", \"confusion\": [");
                for (int32_t r = 0; r <= L; r++) {
                        kinfer_buf_puts(&b, r ? ", [" : "[");
                        for (int32_t c = 0; c < L; c++)
                                kinfer_buf_printf(&b, "%s%lld", c ? ", " : "",
                                                  (long long)ev->confusion[(size_t)r * L + c]);
                        kinfer_buf_puts(&b, "]");
                }
                kinfer_buf_puts(&b, "]");
        }
        kinfer_buf_puts(&b, "}");
        if (!(*out = kinfer_buf_detach(&b)))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM,
                                     "out of memory (evaluation report)");
        return KINFER_OK;
}
