/* SPDX-License-Identifier: Apache-2.0 */
/* http_classify.c -- POST /v1/classify: requests from the HTTP connection threads queued for
 * one classification thread, batched across connections, classified with the slot's current
 * model (the one the worker serves). The format and the errors are in http_classify.h. */
#include "kinfer/worker/http_classify.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kinfer/core/json.h"
#include "kinfer/core/log.h"
#include "kinfer/http/http.h"
#include "kinfer/runtime/runtime.h"

#define IDLE_POLL_MS 50 /* HTTP-only mode: how often an idle thread looks for a posted model */

/* one request, on its connection thread's stack while it waits */
struct creq {
        struct creq *next;
        const char **texts;
        size_t *lens;
        int32_t n, k;
        kinfer_prediction_t *preds; /* n */
        kinfer_model_record_t *rec; /* the model that answered (one reference) */
        int status;                 /* 0 while queued */
        char err[256];
};

struct kinfer_classify_svc_s {
        kinfer_model_slot_t *slot;
        int own_slot;
        /* limits */
        int32_t max_texts, batch_max, k_default;
        size_t max_text_bytes;
        int64_t queue_max;
        int wait_ms;
        /* the queue, under mu */
        pthread_mutex_t mu;
        pthread_cond_t work_cv; /* a request arrived, or stop */
        pthread_cond_t done_cv; /* requests were answered */
        struct creq *head, *tail;
        int64_t queued; /* texts queued */
        int stop;
        int inited, started;
        pthread_t th;
        /* the classification thread's own */
        kinfer_runtime_t *rt;
        int32_t cap; /* texts in one batch: max(batch_max, max_texts) */
        const char **texts;
        size_t *lens;
        kinfer_prediction_t *preds;
        struct creq **batch;
};

static int64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void abs_after_ms(struct timespec *ts, int64_t ms)
{
        clock_gettime(CLOCK_MONOTONIC, ts);
        ts->tv_sec += ms / 1000;
        ts->tv_nsec += (ms % 1000) * 1000000;
        if (ts->tv_nsec >= 1000000000) {
                ts->tv_sec++;
                ts->tv_nsec -= 1000000000;
        }
}

/* HTTP-only mode: apply a posted model (the worker thread's role in Kafka mode) */
static void apply_post(kinfer_classify_svc_t *svc)
{
        if (!svc->own_slot || !kinfer_model_slot_pending(svc->slot))
                return;
        kinfer_model_record_t *rec;
        kinfer_model_t *model = kinfer_model_slot_take(svc->slot, &rec);
        if (!model)
                return;
        kinfer_model_slot_publish_model(svc->slot, model, rec); /* takes rec's reference */
        kinfer_model_release(model);
        kinfer_model_record_t *now = kinfer_model_slot_applied(svc->slot);
        if (now) {
                kinfer_log(KINFER_LOG_NOTICE, "HTTP", "model applied model=%s version=%d "
                           "sha256=%.12s generation=%llu", now->name, (int)now->version,
                           now->sha256, (unsigned long long)now->generation);
                kinfer_model_record_release(now);
        }
}

/* classify the batch's requests (no lock held) and set their status */
static void classify_batch(kinfer_classify_svc_t *svc, int nb)
{
        kinfer_model_record_t *rec = NULL;
        kinfer_model_t *model = kinfer_model_slot_current(svc->slot, &rec);
        int32_t nt = 0, k = 1;
        for (int i = 0; i < nb; i++) {
                struct creq *r = svc->batch[i];
                memcpy(svc->texts + nt, r->texts, (size_t)r->n * sizeof(*svc->texts));
                memcpy(svc->lens + nt, r->lens, (size_t)r->n * sizeof(*svc->lens));
                nt += r->n;
                if (r->k > k)
                        k = r->k;
        }
        char errstr[256] = "no model loaded yet";
        int status = 503;
        if (model) {
                status = kinfer_runtime_classify(svc->rt, model, svc->texts, svc->lens, nt, k,
                                                 svc->preds, errstr, sizeof(errstr))
                             ? 500
                             : 200;
                if (status == 500)
                        kinfer_log(KINFER_LOG_ERR, "HTTP", "/v1/classify: %s", errstr);
        }
        pthread_mutex_lock(&svc->mu);
        nt = 0;
        for (int i = 0; i < nb; i++) {
                struct creq *r = svc->batch[i];
                if (status == 200) {
                        memcpy(r->preds, svc->preds + nt, (size_t)r->n * sizeof(*r->preds));
                        r->rec = kinfer_model_record_keep(rec);
                }
                nt += r->n;
                snprintf(r->err, sizeof(r->err), "%s", errstr);
                r->status = status;
        }
        pthread_cond_broadcast(&svc->done_cv);
        pthread_mutex_unlock(&svc->mu);
        kinfer_model_record_release(rec);
        kinfer_model_release(model);
}

static void *svc_main(void *arg)
{
        kinfer_classify_svc_t *svc = arg;
        pthread_mutex_lock(&svc->mu);
        for (;;) {
                while (!svc->head && !svc->stop) {
                        if (svc->own_slot) {
                                struct timespec ts;
                                abs_after_ms(&ts, IDLE_POLL_MS);
                                pthread_cond_timedwait(&svc->work_cv, &svc->mu, &ts);
                                pthread_mutex_unlock(&svc->mu);
                                apply_post(svc);
                                pthread_mutex_lock(&svc->mu);
                        } else {
                                pthread_cond_wait(&svc->work_cv, &svc->mu);
                        }
                }
                if (!svc->head) /* stopping, nothing left */
                        break;
                if (svc->wait_ms > 0) { /* wait for more, up to the batch or the deadline */
                        struct timespec ts;
                        abs_after_ms(&ts, svc->wait_ms);
                        int64_t end = mono_ms() + svc->wait_ms;
                        while (svc->queued < svc->batch_max && !svc->stop && mono_ms() < end)
                                pthread_cond_timedwait(&svc->work_cv, &svc->mu, &ts);
                }
                int nb = 0;
                int32_t nt = 0;
                while (svc->head && (nb == 0 || nt + svc->head->n <= svc->batch_max)) {
                        struct creq *r = svc->head;
                        svc->head = r->next;
                        if (!svc->head)
                                svc->tail = NULL;
                        svc->batch[nb++] = r;
                        nt += r->n;
                }
                svc->queued -= nt;
                pthread_mutex_unlock(&svc->mu);
                apply_post(svc);
                classify_batch(svc, nb);
                pthread_mutex_lock(&svc->mu);
        }
        pthread_mutex_unlock(&svc->mu);
        return NULL;
}

kinfer_classify_svc_t *kinfer_classify_svc_new(const kinfer_conf_t *conf,
                                               kinfer_model_slot_t *slot, int own_slot,
                                               char *errstr, size_t errstr_size)
{
        kinfer_classify_svc_t *svc = calloc(1, sizeof(*svc));
        if (!svc) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        svc->slot = slot;
        svc->own_slot = own_slot;
        svc->max_texts = (int32_t)kinfer_conf_get_int(conf, "http.classify.max.texts");
        svc->max_text_bytes = (size_t)kinfer_conf_get_int(conf, "http.classify.max.text.bytes");
        svc->batch_max = (int32_t)kinfer_conf_get_int(conf, "http.batch.max.records");
        svc->wait_ms = (int)kinfer_conf_get_int(conf, "http.batch.max.wait.ms");
        svc->queue_max = kinfer_conf_get_int(conf, "http.queue.max.records");
        svc->k_default = (int32_t)kinfer_conf_get_int(conf, "output.topk");
        svc->cap = svc->batch_max > svc->max_texts ? svc->batch_max : svc->max_texts;
        svc->texts = calloc((size_t)svc->cap, sizeof(*svc->texts));
        svc->lens = calloc((size_t)svc->cap, sizeof(*svc->lens));
        svc->preds = calloc((size_t)svc->cap, sizeof(*svc->preds));
        svc->batch = calloc((size_t)svc->cap, sizeof(*svc->batch));
        if (!svc->texts || !svc->lens || !svc->preds || !svc->batch) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                goto fail;
        }
        if (!(svc->rt = kinfer_runtime_new(svc->cap, errstr, errstr_size)))
                goto fail;
        kinfer_runtime_set_arena_max(svc->rt,
                                     (size_t)kinfer_conf_get_int(conf, "worker.arena.max.bytes"));
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        if (pthread_mutex_init(&svc->mu, NULL) || pthread_cond_init(&svc->work_cv, &ca) ||
            pthread_cond_init(&svc->done_cv, &ca)) {
                pthread_condattr_destroy(&ca);
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE, "cannot create a lock");
                goto fail; /* (a partial init leaks nothing the process would miss) */
        }
        pthread_condattr_destroy(&ca);
        svc->inited = 1;
        if (pthread_create(&svc->th, NULL, svc_main, svc)) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE,
                              "cannot create the HTTP classification thread");
                goto fail;
        }
        svc->started = 1;
        return svc;
fail:
        kinfer_classify_svc_destroy(svc);
        return NULL;
}

void kinfer_classify_svc_stop(kinfer_classify_svc_t *svc)
{
        if (!svc || !svc->inited)
                return;
        pthread_mutex_lock(&svc->mu);
        svc->stop = 1;
        pthread_cond_broadcast(&svc->work_cv);
        pthread_mutex_unlock(&svc->mu);
        if (svc->started) {
                pthread_join(svc->th, NULL);
                svc->started = 0;
        }
}

void kinfer_classify_svc_destroy(kinfer_classify_svc_t *svc)
{
        if (!svc)
                return;
        kinfer_classify_svc_stop(svc);
        if (svc->inited) {
                pthread_cond_destroy(&svc->work_cv);
                pthread_cond_destroy(&svc->done_cv);
                pthread_mutex_destroy(&svc->mu);
        }
        kinfer_runtime_destroy(svc->rt);
        free(svc->texts);
        free(svc->lens);
        free(svc->preds);
        free(svc->batch);
        free(svc);
}

int kinfer_classify_svc_ready(void *opaque, char *why, size_t why_size)
{
        kinfer_classify_svc_t *svc = opaque;
        kinfer_model_record_t *rec = kinfer_model_slot_applied(svc->slot);
        if (rec) {
                kinfer_model_record_release(rec);
                return 1;
        }
        snprintf(why, why_size, "no model loaded");
        return 0;
}

/* ---- the request ---------------------------------------------------------------------------- */

static int fail(kinfer_buf_t *out, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(kinfer_buf_t *out, int status, const char *fmt, ...)
{
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        kinfer_http_error_body(out, status, msg);
        return status;
}

static void write_pred(kinfer_buf_t *out, const kinfer_model_record_t *rec,
                       const kinfer_prediction_t *p, int32_t k)
{
        int32_t n = p->n < k ? p->n : k;
        kinfer_buf_puts(out, "\"label\": ");
        kinfer_buf_json_cstr(out, n > 0 && p->label[0] < rec->n_labels ? rec->labels[p->label[0]]
                                                                        : "");
        kinfer_buf_printf(out, ", \"score\": %.9g, \"topk\": [", n > 0 ? (double)p->prob[0] : 0.0);
        for (int32_t j = 0; j < n; j++) {
                kinfer_buf_puts(out, j ? ", {\"label\": " : "{\"label\": ");
                kinfer_buf_json_cstr(out, p->label[j] < rec->n_labels ? rec->labels[p->label[j]]
                                                                      : "");
                kinfer_buf_printf(out, ", \"score\": %.9g}", (double)p->prob[j]);
        }
        kinfer_buf_puts(out, "]");
}

int kinfer_classify_svc_http(void *opaque, const char *body, size_t len, kinfer_buf_t *out)
{
        kinfer_classify_svc_t *svc = opaque;
        char errstr[256];
        kinfer_json_doc_t *doc = NULL;
        if (kinfer_json_parse(body, len, &doc, errstr, sizeof(errstr)))
                return fail(out, 400, "the body is not valid JSON: %s", errstr);
        const kinfer_json_t *root = kinfer_json_root(doc);
        int status = 0;
        struct creq r = {0};
        if (kinfer_json_type(root) != KINFER_JSON_OBJECT) {
                status = fail(out, 400, "expected a JSON object {\"text\": ...} or "
                                        "{\"texts\": [...]}");
                goto done;
        }
        for (size_t i = 0; i < kinfer_json_size(root); i++) {
                const char *key = kinfer_json_key(root, i);
                if (strcmp(key, "text") && strcmp(key, "texts") && strcmp(key, "k")) {
                        status = fail(out, 400, "unknown member \"%.64s\" (expected text, texts, k)",
                                      key);
                        goto done;
                }
        }
        const kinfer_json_t *text = kinfer_json_get(root, "text");
        const kinfer_json_t *texts = kinfer_json_get(root, "texts");
        const kinfer_json_t *kv = kinfer_json_get(root, "k");
        if (!text == !texts) {
                status = fail(out, 400, "give either \"text\" (a string) or \"texts\" (an array "
                                        "of strings)");
                goto done;
        }
        r.k = svc->k_default;
        if (kv) {
                int64_t k;
                if (!kinfer_json_int(kv, &k) || k < 1 || k > KINFER_TOPK_MAX) {
                        status = fail(out, 400, "\"k\" must be a whole number in [1, %d]",
                                      KINFER_TOPK_MAX);
                        goto done;
                }
                r.k = (int32_t)k;
        }
        if (texts) {
                if (kinfer_json_type(texts) != KINFER_JSON_ARRAY) {
                        status = fail(out, 400, "\"texts\" must be an array of strings");
                        goto done;
                }
                size_t n = kinfer_json_size(texts);
                if (n == 0) {
                        status = fail(out, 400, "\"texts\" is empty");
                        goto done;
                }
                if (n > (size_t)svc->max_texts) {
                        status = fail(out, 413, "%zu texts, more than http.classify.max.texts=%d",
                                      n, (int)svc->max_texts);
                        goto done;
                }
                r.n = (int32_t)n;
        } else {
                r.n = 1;
        }
        r.texts = calloc((size_t)r.n, sizeof(*r.texts));
        r.lens = calloc((size_t)r.n, sizeof(*r.lens));
        r.preds = calloc((size_t)r.n, sizeof(*r.preds));
        if (!r.texts || !r.lens || !r.preds) {
                status = fail(out, 500, "out of memory");
                goto done;
        }
        for (int32_t i = 0; i < r.n; i++) {
                const kinfer_json_t *t = texts ? kinfer_json_at(texts, (size_t)i) : text;
                size_t tl;
                const char *s = kinfer_json_str(t, &tl);
                if (!s) {
                        status = texts ? fail(out, 400, "texts[%d] is not a string", (int)i)
                                       : fail(out, 400, "\"text\" is not a string");
                        goto done;
                }
                if (tl > svc->max_text_bytes) {
                        status = texts ? fail(out, 413, "texts[%d] has %zu bytes, more than "
                                                        "http.classify.max.text.bytes=%zu",
                                              (int)i, tl, svc->max_text_bytes)
                                       : fail(out, 413, "\"text\" has %zu bytes, more than "
                                                        "http.classify.max.text.bytes=%zu",
                                              tl, svc->max_text_bytes);
                        goto done;
                }
                r.texts[i] = s;
                r.lens[i] = tl;
        }

        /* queue, and wait for the classification thread's answer */
        pthread_mutex_lock(&svc->mu);
        if (svc->stop) {
                pthread_mutex_unlock(&svc->mu);
                status = fail(out, 503, "shutting down");
                goto done;
        }
        if (svc->queued + r.n > svc->queue_max) {
                pthread_mutex_unlock(&svc->mu);
                status = fail(out, 503, "overloaded: %lld texts queued (http.queue.max.records=%lld)",
                              (long long)svc->queued, (long long)svc->queue_max);
                goto done;
        }
        if (svc->tail)
                svc->tail->next = &r;
        else
                svc->head = &r;
        svc->tail = &r;
        svc->queued += r.n;
        pthread_cond_signal(&svc->work_cv);
        while (!r.status)
                pthread_cond_wait(&svc->done_cv, &svc->mu);
        pthread_mutex_unlock(&svc->mu);

        if (r.status != 200) {
                status = fail(out, r.status, "%s", r.err);
                goto done;
        }
        kinfer_buf_puts(out, "{\"model\": {\"name\": ");
        kinfer_buf_json_cstr(out, r.rec->name);
        kinfer_buf_printf(out, ", \"version\": %d, \"sha256\": ", (int)r.rec->version);
        kinfer_buf_json_cstr(out, r.rec->sha256);
        kinfer_buf_puts(out, "}, ");
        if (texts) {
                kinfer_buf_puts(out, "\"results\": [");
                for (int32_t i = 0; i < r.n; i++) {
                        kinfer_buf_puts(out, i ? ", {" : "{");
                        write_pred(out, r.rec, &r.preds[i], r.k);
                        kinfer_buf_puts(out, "}");
                }
                kinfer_buf_puts(out, "]}\n");
        } else {
                write_pred(out, r.rec, &r.preds[0], r.k);
                kinfer_buf_puts(out, "}\n");
        }
        status = 200;
done:
        kinfer_model_record_release(r.rec);
        free(r.texts);
        free(r.lens);
        free(r.preds);
        kinfer_json_free(doc);
        return status;
}
