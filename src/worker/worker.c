/* SPDX-License-Identifier: Apache-2.0 */
/* worker.c -- the composition root of `kinfer serve`: the consume -> decode -> batch ->
 * classify -> encode -> produce -> store-offsets loop, dead letters, backpressure, rebalance
 * drain, shutdown, model hot-swap between batches, and metrics windows. */
#include "kinfer/worker/worker.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kinfer/worker/batch.h"
#include "kinfer/codec/codec.h"
#include "kinfer/kafka/consumer.h"
#include "kinfer/core/log.h"
#include "kinfer/worker/offsets.h"
#include "kinfer/kafka/producer.h"
#include "kinfer/runtime/runtime.h"

#define MAX_HEADERS 64
#define PART_CACHE 256
#define HIST_BUCKETS 512
#define IDLE_POLL_MS 50

/* ---- clocks and the latency histogram ----------------------------------------------------- */

static int64_t mono_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* 8 linear sub-buckets per power of two: < 12.5% error, fixed size. */
static int hist_bucket(uint64_t us)
{
        if (us < 8)
                return (int)us;
        int msb = 63 - __builtin_clzll(us);
        return (msb - 2) * 8 + (int)((us >> (msb - 3)) & 7);
}

static double hist_value_ms(int b)
{
        if (b < 8)
                return b / 1000.0;
        int msb = b / 8 + 2, sub = b % 8;
        double lo = (double)((uint64_t)(8 + sub) << (msb - 3));
        double width = (double)(UINT64_C(1) << (msb - 3));
        return (lo + width / 2) / 1000.0;
}

static double hist_pct(const int64_t *h, int64_t n, double p)
{
        if (n == 0)
                return 0;
        int64_t rank = (int64_t)ceil(p * (double)n), cum = 0;
        if (rank < 1)
                rank = 1;
        for (int b = 0; b < HIST_BUCKETS; b++) {
                cum += h[b];
                if (cum >= rank)
                        return hist_value_ms(b);
        }
        return hist_value_ms(HIST_BUCKETS - 1);
}

/* ---- classification helpers: a batch is split across worker.threads runtimes ------------- */

#define SPLIT_MIN 64 /* smaller batches are classified on the worker thread alone */

struct helper {
        pthread_t th;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        kinfer_runtime_t *rt;
        /* the job, set by the worker thread under mu */
        const kinfer_model_t *model;
        const char *const *texts;
        const size_t *lens;
        int32_t n, k;
        kinfer_prediction_t *out;
        kinfer_err_t err;
        char errstr[256];
        int has_job, quit, started;
};

static void *helper_main(void *arg)
{
        struct helper *h = arg;
        pthread_mutex_lock(&h->mu);
        for (;;) {
                while (!h->has_job && !h->quit)
                        pthread_cond_wait(&h->cv, &h->mu);
                if (h->quit)
                        break;
                pthread_mutex_unlock(&h->mu);
                kinfer_err_t err = kinfer_runtime_classify(h->rt, h->model, h->texts, h->lens, h->n,
                                                           h->k, h->out, h->errstr, sizeof(h->errstr));
                pthread_mutex_lock(&h->mu);
                h->err = err;
                h->has_job = 0;
                pthread_cond_broadcast(&h->cv);
        }
        pthread_mutex_unlock(&h->mu);
        return NULL;
}

/* ---- the worker --------------------------------------------------------------------------- */

struct slot {            /* one batched record, parallel to batch.entries */
        kinfer_msg_t msg;
        uint64_t token;
};

struct window {
        int64_t start_us; /* wall clock */
        int64_t start_mono_us;
        int64_t records, batches, dlq;
        int64_t holds;  /* backpressure episodes begun in the window */
        int64_t pauses; /* ... of which long enough to pause the partitions */
        double conf_sum;
        int64_t *label_counts;
        int32_t n_labels;
        int64_t hist[HIST_BUCKETS];
        int64_t hist_n;
        kinfer_model_t *model; /* reference held for the labels */
        char model_name[128];
        int32_t model_version;
};

struct kinfer_worker_s {
        kinfer_conf_t *conf;
        char worker_id[128];
        const char *deployment;
        /* settings */
        int64_t max_value_bytes, bp_max, bp_resume, bp_pause_us, metrics_interval_us;
        int topk, shutdown_timeout_ms;
        /* parts */
        kinfer_codec_t *codec;
        kinfer_consumer_t *cons;
        kinfer_producer_t *prod;
        kinfer_runtime_t *rt;
        struct helper *helpers; /* worker.threads - 1 */
        int n_helpers;
        kinfer_offsets_t *offs;
        kinfer_batch_t batch;
        struct slot *slots;
        int out_topic, dlq_topic; /* producer topic handles; dlq_topic -1 = none */
        struct {
                const char *topic;
                int32_t partition, part;
        } part_cache[PART_CACHE];
        /* per-batch scratch */
        const char **texts;
        size_t *lens;
        kinfer_prediction_t *preds;
        kinfer_buf_t out;
        /* the model: written only by the worker thread, under lock (read by model_info) */
        pthread_mutex_t lock;
        kinfer_model_t *model;
        char model_name[128];
        int32_t model_version;
        char model_sha[65];
        /* a model handed over by another thread, applied between batches */
        kinfer_model_t *pending;
        char pending_name[128];
        int32_t pending_version;
        atomic_int swap_pending;
        kinfer_worker_swap_cb_t *swap_cb;
        void *swap_opaque;
        /* state */
        atomic_int stop;
        int fatal;
        kinfer_err_t fatal_err;
        char fatal_reason[512];
        int holding;           /* backpressure: not taking records from the consumer */
        int64_t hold_since_us; /* monotonic */
        int paused;            /* backpressure (or no model): partitions paused */
        int64_t dr_now_us; /* wall clock when delivery reports were last served */
        /* metrics */
        struct window win;
        kinfer_worker_metrics_cb_t *metrics_cb;
        void *metrics_opaque;
        int64_t total_records, total_dlq, total_batches;
};

static void set_fatal(kinfer_worker_t *w, kinfer_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_fatal(kinfer_worker_t *w, kinfer_err_t err, const char *fmt, ...)
{
        if (w->fatal)
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->fatal_reason, sizeof(w->fatal_reason), fmt, ap);
        va_end(ap);
        w->fatal = 1;
        w->fatal_err = err;
        kinfer_log(KINFER_LOG_ERR, "WORKER", "fatal: %s", w->fatal_reason);
}

/* ---- metrics windows ---------------------------------------------------------------------- */

static void window_start(kinfer_worker_t *w)
{
        struct window *win = &w->win;
        kinfer_model_release(win->model);
        free(win->label_counts);
        memset(win, 0, sizeof(*win));
        win->start_us = wall_us();
        win->start_mono_us = mono_us();
        if (w->model) {
                win->model = kinfer_model_keep(w->model);
                win->n_labels = kinfer_model_n_labels(w->model);
                win->label_counts = calloc((size_t)win->n_labels, sizeof(int64_t));
                if (!win->label_counts)
                        win->n_labels = 0;
                snprintf(win->model_name, sizeof(win->model_name), "%s", w->model_name);
                win->model_version = w->model_version;
        }
}

static void window_emit(kinfer_worker_t *w)
{
        struct window *win = &w->win;
        int64_t end = wall_us();
        const char *labels[1024];
        int32_t nl = win->n_labels < 1024 ? win->n_labels : 1024;
        for (int32_t i = 0; i < nl; i++)
                labels[i] = kinfer_model_label(win->model, i);
        kinfer_worker_metrics_t m = {
            .window_start_ms = win->start_us / 1000,
            .window_end_ms = end / 1000,
            .records = win->records,
            .batches = win->batches,
            .mean_batch_size = win->batches ? (double)win->records / (double)win->batches : 0,
            .dlq = win->dlq,
            .latency_p50_ms = hist_pct(win->hist, win->hist_n, 0.50),
            .latency_p95_ms = hist_pct(win->hist, win->hist_n, 0.95),
            .latency_p99_ms = hist_pct(win->hist, win->hist_n, 0.99),
            .n_labels = nl,
            .labels = labels,
            .label_counts = win->label_counts,
            .mean_confidence = win->records ? win->conf_sum / (double)win->records : 0,
            .model_name = win->model_name,
            .model_version = win->model_version,
            .model_sha256 = win->model ? kinfer_model_sha256_hex(win->model) : "",
            .worker_id = w->worker_id,
            .deployment = w->deployment,
        };
        double secs = (double)(end - win->start_us) / 1e6;
        kinfer_log(KINFER_LOG_INFO, "METRICS",
                   "window_s=%.1f records=%" PRId64 " rps=%.0f batches=%" PRId64
                   " mean_batch=%.1f dlq=%" PRId64 " p50_ms=%.2f p95_ms=%.2f p99_ms=%.2f "
                   "mean_conf=%.3f model=%s version=%d in_flight=%" PRId64 " backpressure=%" PRId64
                   " pauses=%" PRId64,
                   secs, m.records, secs > 0 ? (double)m.records / secs : 0, m.batches,
                   m.mean_batch_size, m.dlq, m.latency_p50_ms, m.latency_p95_ms, m.latency_p99_ms,
                   m.mean_confidence, m.model_name, (int)m.model_version,
                   kinfer_offsets_in_flight(w->offs), win->holds, win->pauses);
        if (w->metrics_cb)
                w->metrics_cb(&m, w->metrics_opaque);
        window_start(w);
}

/* ---- delivery reports and offsets ------------------------------------------------------- */

static void on_delivery(void *opaque, uint64_t token, kinfer_err_t err, const char *reason)
{
        kinfer_worker_t *w = opaque;
        if (err) {
                /* Never store past an undelivered record: stop, and let a restart redo it. */
                set_fatal(w, KINFER_ERR__KAFKA, "delivery failed: %s", reason ? reason : "?");
                return;
        }
        int64_t t_us;
        if (kinfer_offsets_done(w->offs, token, &t_us)) {
                int64_t lat = w->dr_now_us - t_us; /* clock read once per poll, not per report */
                w->win.hist[hist_bucket(lat < 0 ? 0 : (uint64_t)lat)]++;
                w->win.hist_n++;
        }
}

static void store_offsets(kinfer_worker_t *w)
{
        if (w->fatal)
                return;
        int32_t it = 0, part;
        int64_t next;
        while ((part = kinfer_offsets_next_dirty(w->offs, &it, &next)) >= 0)
                kinfer_consumer_store(w->cons, kinfer_offsets_topic(w->offs, part),
                                      kinfer_offsets_partition(w->offs, part), next);
}

static int32_t part_of(kinfer_worker_t *w, const kinfer_msg_t *msg)
{
        size_t h = ((uintptr_t)msg->topic >> 4) * 31 + (size_t)msg->partition;
        h %= PART_CACHE;
        /* the pointer may be reused by another topic after a rebalance: confirm by name */
        if (w->part_cache[h].topic == msg->topic && w->part_cache[h].partition == msg->partition &&
            !strcmp(kinfer_offsets_topic(w->offs, w->part_cache[h].part), msg->topic))
                return w->part_cache[h].part;
        int32_t part = kinfer_offsets_part(w->offs, msg->topic, msg->partition);
        if (part >= 0) {
                w->part_cache[h].topic = msg->topic;
                w->part_cache[h].partition = msg->partition;
                w->part_cache[h].part = part;
        }
        return part;
}

/* ---- model swap ---------------------------------------------------------------------------- */

static void set_model_locked(kinfer_worker_t *w, kinfer_model_t *model, const char *name,
                             int32_t version)
{
        w->model = model;
        snprintf(w->model_name, sizeof(w->model_name), "%s",
                 name && *name ? name : *kinfer_model_name(model) ? kinfer_model_name(model) : "model");
        w->model_version = version;
        snprintf(w->model_sha, sizeof(w->model_sha), "%s", kinfer_model_sha256_hex(model));
}

static void apply_swap(kinfer_worker_t *w)
{
        if (!atomic_load(&w->swap_pending))
                return;
        pthread_mutex_lock(&w->lock);
        kinfer_model_t *model = w->pending;
        char name[128];
        snprintf(name, sizeof(name), "%s", w->pending_name);
        int32_t version = w->pending_version;
        w->pending = NULL;
        atomic_store(&w->swap_pending, 0);
        pthread_mutex_unlock(&w->lock);
        if (!model)
                return;

        /* smoke test on this thread's runtime before it serves a record */
        char errstr[256];
        static const char *smoke = "kinfer smoke test: a library for parsing text";
        size_t slen = strlen(smoke);
        kinfer_prediction_t pred;
        kinfer_err_t err = kinfer_model_n_labels(model) < 1
                               ? kinfer_seterr(errstr, sizeof(errstr), KINFER_ERR__BAD_FORMAT, "no labels")
                               : kinfer_runtime_classify(w->rt, model, &smoke, &slen, 1, 1, &pred,
                                                         errstr, sizeof(errstr));
        if (err) {
                kinfer_log(KINFER_LOG_ERR, "WORKER", "model=%s version=%d rejected (smoke test): %s",
                           name, (int)version, errstr);
                kinfer_model_release(model);
                if (w->swap_cb)
                        w->swap_cb(name, version, err, errstr, w->swap_opaque);
                return;
        }
        if (w->model && (w->win.records || w->win.dlq || w->win.hist_n))
                window_emit(w); /* close the old model's window */
        pthread_mutex_lock(&w->lock);
        kinfer_model_t *old = w->model;
        char old_name[128];
        int32_t old_version = w->model_version;
        snprintf(old_name, sizeof(old_name), "%s", old ? w->model_name : "-");
        set_model_locked(w, model, name, version);
        pthread_mutex_unlock(&w->lock);
        window_start(w);
        kinfer_model_release(old);
        kinfer_log(KINFER_LOG_NOTICE, "WORKER",
                   "model swapped from=%s:%d to=%s:%d sha256=%.12s", old_name, (int)old_version,
                   w->model_name, (int)w->model_version, w->model_sha);
        if (w->swap_cb)
                w->swap_cb(w->model_name, w->model_version, KINFER_OK, NULL, w->swap_opaque);
}

kinfer_err_t kinfer_worker_swap_model(kinfer_worker_t *w, kinfer_model_t *model, const char *name,
                                      int32_t version, char *errstr, size_t errstr_size)
{
        if (!model)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG, "no model");
        pthread_mutex_lock(&w->lock);
        kinfer_model_t *replaced = w->pending;
        w->pending = model;
        snprintf(w->pending_name, sizeof(w->pending_name), "%s", name ? name : "");
        w->pending_version = version;
        atomic_store(&w->swap_pending, 1);
        pthread_mutex_unlock(&w->lock);
        kinfer_model_release(replaced);
        return KINFER_OK;
}

kinfer_err_t kinfer_worker_model_info(kinfer_worker_t *w, char *name, size_t name_size,
                                      int32_t *version, char *sha256)
{
        kinfer_err_t err = KINFER_OK;
        pthread_mutex_lock(&w->lock);
        if (!w->model) {
                err = KINFER_ERR__NOENT;
        } else {
                if (name && name_size)
                        snprintf(name, name_size, "%s", w->model_name);
                if (version)
                        *version = w->model_version;
                if (sha256)
                        memcpy(sha256, w->model_sha, 65);
        }
        pthread_mutex_unlock(&w->lock);
        return err;
}

/* ---- dead letters -------------------------------------------------------------------------- */

static void dead_letter(kinfer_worker_t *w, kinfer_msg_t *msg, uint64_t token,
                        kinfer_dlq_reason_t reason, const char *detail)
{
        w->win.dlq++;
        w->total_dlq++;
        kinfer_log(KINFER_LOG_WARN, "DLQ", "topic=%s partition=%d offset=%" PRId64 " reason=%s detail=\"%s\"",
                   msg->topic, (int)msg->partition, msg->offset, kinfer_dlq_reason_str(reason), detail);
        if (w->dlq_topic < 0) {
                kinfer_offsets_done(w->offs, token, NULL); /* skipped: processed */
                kinfer_consumer_release(w->cons, msg);
                return;
        }
        kinfer_header_view_t hdrs[MAX_HEADERS + 5];
        size_t nh = kinfer_consumer_headers(msg, hdrs, MAX_HEADERS);
        kinfer_dead_letter_t dl = {
            .reason = reason, .detail = detail, .topic = msg->topic, .partition = msg->partition,
            .offset = msg->offset, .timestamp_ms = msg->timestamp_ms, .key = msg->key,
            .key_len = msg->key_len, .value = msg->value, .value_len = msg->len, .headers = hdrs,
            .n_headers = nh, .worker_id = w->worker_id, .dead_at_ms = wall_us() / 1000};
        w->out.len = 0;
        if (kinfer_codec_encode_dead_letter(w->codec, &dl, &w->out)) {
                set_fatal(w, KINFER_ERR__NOMEM, "cannot encode a dead letter");
                kinfer_consumer_release(w->cons, msg);
                return;
        }
        char part[16], off[24];
        snprintf(part, sizeof(part), "%d", (int)msg->partition);
        snprintf(off, sizeof(off), "%" PRId64, msg->offset);
        const char *rs = kinfer_dlq_reason_str(reason);
        hdrs[nh++] = (kinfer_header_view_t){"kinfer.dlq.reason", rs, strlen(rs)};
        hdrs[nh++] = (kinfer_header_view_t){"kinfer.dlq.detail", detail, strlen(detail)};
        hdrs[nh++] = (kinfer_header_view_t){"kinfer.dlq.topic", msg->topic, strlen(msg->topic)};
        hdrs[nh++] = (kinfer_header_view_t){"kinfer.dlq.partition", part, strlen(part)};
        hdrs[nh++] = (kinfer_header_view_t){"kinfer.dlq.offset", off, strlen(off)};
        char errstr[512];
        if (kinfer_producer_send(w->prod, w->dlq_topic, msg->key, msg->key_len, w->out.data, w->out.len,
                                 hdrs, nh, token, errstr, sizeof(errstr)))
                set_fatal(w, KINFER_ERR__KAFKA, "%s", errstr);
        kinfer_consumer_release(w->cons, msg);
}

/* ---- the batch ---------------------------------------------------------------------------- */

/* Classify n texts, splitting across the helpers when the batch is large enough. */
static kinfer_err_t classify(kinfer_worker_t *w, const kinfer_model_t *model, int32_t n,
                             char *errstr, size_t errstr_size)
{
        int parts = 1 + w->n_helpers;
        if (w->n_helpers == 0 || n < SPLIT_MIN)
                return kinfer_runtime_classify(w->rt, model, w->texts, w->lens, n, w->topk, w->preds,
                                               errstr, errstr_size);
        int32_t chunk = (n + parts - 1) / parts, first = n - chunk * (parts - 1);
        int used = 0;
        for (int i = 0; i < w->n_helpers; i++) {
                int32_t from = first + chunk * i, cnt = from + chunk <= n ? chunk : n - from;
                if (cnt <= 0)
                        break;
                struct helper *h = &w->helpers[i];
                pthread_mutex_lock(&h->mu);
                h->model = model;
                h->texts = w->texts + from;
                h->lens = w->lens + from;
                h->n = cnt;
                h->k = w->topk;
                h->out = w->preds + from;
                h->has_job = 1;
                pthread_cond_broadcast(&h->cv);
                pthread_mutex_unlock(&h->mu);
                used++;
        }
        kinfer_err_t err = kinfer_runtime_classify(w->rt, model, w->texts, w->lens, first, w->topk,
                                                   w->preds, errstr, errstr_size);
        for (int i = 0; i < used; i++) {
                struct helper *h = &w->helpers[i];
                pthread_mutex_lock(&h->mu);
                while (h->has_job)
                        pthread_cond_wait(&h->cv, &h->mu);
                if (h->err && !err)
                        err = kinfer_seterr(errstr, errstr_size, h->err, "%s", h->errstr);
                pthread_mutex_unlock(&h->mu);
        }
        return err;
}

static void release_batch(kinfer_worker_t *w)
{
        for (int32_t i = 0; i < w->batch.n; i++)
                kinfer_consumer_release(w->cons, &w->slots[i].msg);
        kinfer_batch_reset(&w->batch);
}

static void flush_batch(kinfer_worker_t *w)
{
        kinfer_batch_t *b = &w->batch;
        if (b->n == 0)
                return;
        if (w->fatal) {
                release_batch(w);
                return;
        }
        apply_swap(w); /* between two batches */
        kinfer_model_t *model = kinfer_model_keep(w->model); /* pinned for this batch */
        for (int32_t i = 0; i < b->n; i++) {
                w->texts[i] = b->entries[i].text;
                w->lens[i] = b->entries[i].text_len;
        }
        char errstr[512];
        kinfer_err_t err = classify(w, model, b->n, errstr, sizeof(errstr));
        if (err) {
                set_fatal(w, err, "classify: %s", errstr);
                kinfer_model_release(model);
                release_batch(w);
                return;
        }
        int64_t classified_ms = wall_us() / 1000;
        kinfer_result_t res = {.model_name = w->model_name, .model_version = w->model_version,
                               .model_sha256 = w->model_sha, .classified_at_ms = classified_ms,
                               .batch_size = b->n, .worker_id = w->worker_id};
        int labels_ok = w->win.model == model;
        for (int32_t i = 0; i < b->n && !w->fatal; i++) {
                const kinfer_batch_entry_t *e = &b->entries[i];
                const kinfer_msg_t *msg = &w->slots[i].msg;
                const kinfer_prediction_t *p = &w->preds[i];
                char idbuf[320];
                if (e->id) {
                        res.id = e->id;
                        res.id_len = e->id_len;
                } else if (msg->key) {
                        res.id = msg->key;
                        res.id_len = msg->key_len;
                } else {
                        res.id_len = (size_t)snprintf(idbuf, sizeof(idbuf), "%.256s:%d:%" PRId64,
                                                      msg->topic, (int)msg->partition, msg->offset);
                        res.id = idbuf;
                }
                res.k = p->n < 1 ? 1 : p->n;
                for (int j = 0; j < res.k && j < KINFER_CODEC_TOPK_MAX; j++) {
                        res.label[j] = p->n > j ? kinfer_model_label(model, p->label[j]) : "";
                        res.score[j] = p->n > j ? p->prob[j] : 0.0f;
                }
                res.topic = msg->topic;
                res.partition = msg->partition;
                res.offset = msg->offset;
                res.timestamp_ms = msg->timestamp_ms;
                res.consumed_at_ms = e->consumed_us / 1000;
                w->out.len = 0;
                if (kinfer_codec_encode_result(w->codec, &res, &w->out)) {
                        set_fatal(w, KINFER_ERR__NOMEM, "cannot encode a result");
                        break;
                }
                if (kinfer_producer_send(w->prod, w->out_topic, msg->key, msg->key_len, w->out.data,
                                         w->out.len, NULL, 0, w->slots[i].token, errstr,
                                         sizeof(errstr))) {
                        set_fatal(w, KINFER_ERR__KAFKA, "%s", errstr);
                        break;
                }
                if (p->n > 0) {
                        if (labels_ok && p->label[0] >= 0 && p->label[0] < w->win.n_labels)
                                w->win.label_counts[p->label[0]]++;
                        w->win.conf_sum += p->prob[0];
                }
        }
        w->win.records += b->n;
        w->win.batches++;
        w->total_records += b->n;
        w->total_batches++;
        kinfer_model_release(model);
        release_batch(w);
}

/* ---- one consumed message ------------------------------------------------------------------ */

static void handle_msg(kinfer_worker_t *w, kinfer_msg_t *msg, int64_t now_mono)
{
        int32_t part = part_of(w, msg);
        int64_t now_us = wall_us();
        uint64_t token = part >= 0 ? kinfer_offsets_track(w->offs, part, msg->offset, now_us) : 0;
        if (!token) {
                set_fatal(w, KINFER_ERR__NOMEM, "cannot track offsets (out of memory)");
                kinfer_consumer_release(w->cons, msg);
                return;
        }
        char detail[512];
        if (!msg->value || msg->len == 0) {
                dead_letter(w, msg, token, KINFER_DLQ_EMPTY, msg->value ? "empty value" : "null value");
                return;
        }
        if ((int64_t)msg->len > w->max_value_bytes) {
                snprintf(detail, sizeof(detail), "value of %zu bytes > input.max.bytes=%" PRId64,
                         msg->len, w->max_value_bytes);
                dead_letter(w, msg, token, KINFER_DLQ_OVERSIZED, detail);
                return;
        }
        kinfer_request_t req;
        kinfer_err_t err = kinfer_codec_decode(w->codec, msg->value, msg->len, &w->batch.arena, &req,
                                               detail, sizeof(detail));
        if (err == KINFER_ERR__NOMEM) { /* the arena is full: classify what it holds, retry */
                flush_batch(w);
                err = kinfer_codec_decode(w->codec, msg->value, msg->len, &w->batch.arena, &req,
                                          detail, sizeof(detail));
        }
        if (err) {
                if (err == KINFER_ERR__NOMEM)
                        snprintf(detail, sizeof(detail), "decoded record larger than the batch arena");
                dead_letter(w, msg, token, KINFER_DLQ_UNDECODABLE, detail);
                return;
        }
        if (req.text_len == 0) {
                dead_letter(w, msg, token, KINFER_DLQ_EMPTY, "empty text");
                return;
        }
        kinfer_batch_entry_t e = {.text = req.text, .text_len = req.text_len, .id = req.id,
                                  .id_len = req.id_len, .part = part, .offset = msg->offset,
                                  .consumed_us = now_us};
        w->slots[w->batch.n].msg = *msg;
        w->slots[w->batch.n].token = token;
        kinfer_batch_add(&w->batch, &e, now_mono);
}

/* ---- rebalance ---------------------------------------------------------------------------- */

static void on_revoke(void *opaque, int lost)
{
        kinfer_worker_t *w = opaque;
        char errstr[512];
        /* Finish everything consumed so far, so that the commit that follows covers it. */
        flush_batch(w);
        w->dr_now_us = wall_us();
        if (kinfer_producer_flush(w->prod, w->shutdown_timeout_ms, errstr, sizeof(errstr)))
                /* Records of revoked partitions are undelivered: storing any later offset of a
                 * partition we keep could skip them, so stop (a restart redoes them). */
                set_fatal(w, KINFER_ERR__TIMEOUT, "on revoke: %s", errstr);
        kinfer_producer_poll(w->prod, 0);
        store_offsets(w);
        kinfer_log(KINFER_LOG_INFO, "WORKER", "partitions %s: drained, in_flight=%" PRId64,
                   lost ? "lost" : "revoked", kinfer_offsets_in_flight(w->offs));
}

/* ---- life cycle --------------------------------------------------------------------------- */

kinfer_worker_t *kinfer_worker_new(kinfer_conf_t *conf, char *errstr, size_t errstr_size)
{
        if (kinfer_conf_check(conf, errstr, errstr_size))
                return NULL;
        kinfer_worker_t *w = calloc(1, sizeof(*w));
        if (!w) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        pthread_mutex_init(&w->lock, NULL);
        w->dlq_topic = -1;
        const char *wid = kinfer_conf_get(conf, "worker.id");
        if (*wid) {
                snprintf(w->worker_id, sizeof(w->worker_id), "%s", wid);
        } else {
                char host[64] = "host";
                gethostname(host, sizeof(host) - 1);
                snprintf(w->worker_id, sizeof(w->worker_id), "%s-%d", host, (int)getpid());
        }
        w->max_value_bytes = kinfer_conf_get_int(conf, "input.max.bytes");
        w->bp_max = kinfer_conf_get_int(conf, "backpressure.max.records");
        w->bp_resume = kinfer_conf_get_int(conf, "backpressure.resume.records");
        w->bp_pause_us = kinfer_conf_get_int(conf, "backpressure.pause.ms") * 1000;
        w->metrics_interval_us = kinfer_conf_get_int(conf, "metrics.interval.ms") * 1000;
        w->topk = (int)kinfer_conf_get_int(conf, "output.topk");
        w->shutdown_timeout_ms = (int)kinfer_conf_get_int(conf, "shutdown.timeout.ms");
        int32_t max_records = (int32_t)kinfer_conf_get_int(conf, "batch.max.records");

        kinfer_codec_conf_t cc = {
            .in_format = (kinfer_input_format_t)kinfer_input_format_parse(kinfer_conf_get(conf, "input.format")),
            .schemas_dir = kinfer_conf_get(conf, "input.schemas.dir"),
            .schema_path = kinfer_conf_get(conf, "input.schema"),
            .id_field = kinfer_conf_get(conf, "input.id.field"),
            .text_field = kinfer_conf_get(conf, "input.text.field"),
            .out_format = (kinfer_output_format_t)kinfer_output_format_parse(kinfer_conf_get(conf, "output.format")),
            .out_schema_id = (int32_t)kinfer_conf_get_int(conf, "output.schema.id"),
            .dlq_schema_id = (int32_t)kinfer_conf_get_int(conf, "output.dlq.schema.id"),
        };
        size_t arena = (size_t)w->max_value_bytes * 2 + 65536;
        if (!(w->codec = kinfer_codec_new(&cc, errstr, errstr_size)) ||
            !(w->offs = kinfer_offsets_new(errstr, errstr_size)) ||
            kinfer_batch_init(&w->batch, max_records, (size_t)kinfer_conf_get_int(conf, "batch.max.bytes"),
                              kinfer_conf_get_int(conf, "batch.max.wait.ms"), arena, errstr, errstr_size) ||
            !(w->rt = kinfer_runtime_new(max_records, errstr, errstr_size)))
                goto fail;
        w->n_helpers = (int)kinfer_conf_get_int(conf, "worker.threads") - 1;
        if (w->n_helpers > 0 && !(w->helpers = calloc((size_t)w->n_helpers, sizeof(*w->helpers)))) {
                w->n_helpers = 0;
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                goto fail;
        }
        for (int i = 0; i < w->n_helpers; i++) {
                struct helper *h = &w->helpers[i];
                pthread_mutex_init(&h->mu, NULL);
                pthread_cond_init(&h->cv, NULL);
                if (!(h->rt = kinfer_runtime_new(max_records, errstr, errstr_size)))
                        goto fail;
                if (pthread_create(&h->th, NULL, helper_main, h)) {
                        kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE,
                                      "cannot start a classification thread");
                        goto fail;
                }
                h->started = 1;
        }
        w->slots = calloc((size_t)max_records, sizeof(*w->slots));
        w->texts = calloc((size_t)max_records, sizeof(*w->texts));
        w->lens = calloc((size_t)max_records, sizeof(*w->lens));
        w->preds = calloc((size_t)max_records, sizeof(*w->preds));
        if (!w->slots || !w->texts || !w->lens || !w->preds ||
            kinfer_buf_reserve(&w->out, 4096)) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                goto fail;
        }
        const char *path = kinfer_conf_get(conf, "model.path");
        if (*path) {
                kinfer_model_t *model = kinfer_model_load_file(path, errstr, errstr_size);
                if (!model)
                        goto fail;
                set_model_locked(w, model, kinfer_conf_get(conf, "model.name"),
                                 (int32_t)kinfer_conf_get_int(conf, "model.version"));
                kinfer_log(KINFER_LOG_INFO, "WORKER", "model=%s version=%d sha256=%.12s labels=%d path=%s",
                           w->model_name, (int)w->model_version, w->model_sha,
                           (int)kinfer_model_n_labels(model), path);
        }
        w->prod = kinfer_producer_new(conf, w->bp_max + 2 * max_records + 1000, on_delivery, w,
                                      errstr, errstr_size);
        if (!w->prod)
                goto fail;
        if ((w->out_topic = kinfer_producer_topic(w->prod, kinfer_conf_get(conf, "output.topic"),
                                                  errstr, errstr_size)) < 0)
                goto fail;
        if (*kinfer_conf_get(conf, "dlq.topic") &&
            (w->dlq_topic = kinfer_producer_topic(w->prod, kinfer_conf_get(conf, "dlq.topic"), errstr,
                                                  errstr_size)) < 0)
                goto fail;
        kinfer_consumer_cbs_t cbs = {.on_revoke = on_revoke, .opaque = w};
        if (!(w->cons = kinfer_consumer_new(conf, &cbs, errstr, errstr_size)))
                goto fail;
        w->conf = conf;
        w->deployment = kinfer_conf_get(conf, "deployment");
        window_start(w);
        return w;
fail:
        kinfer_worker_destroy(w);
        return NULL;
}

void kinfer_worker_set_metrics_cb(kinfer_worker_t *w, kinfer_worker_metrics_cb_t *cb, void *opaque)
{
        w->metrics_cb = cb;
        w->metrics_opaque = opaque;
}

void kinfer_worker_set_swap_cb(kinfer_worker_t *w, kinfer_worker_swap_cb_t *cb, void *opaque)
{
        w->swap_cb = cb;
        w->swap_opaque = opaque;
}

const char *kinfer_worker_id(const kinfer_worker_t *w)
{
        return w->worker_id;
}

const kinfer_conf_t *kinfer_worker_conf(const kinfer_worker_t *w)
{
        return w->conf;
}

void kinfer_worker_totals(const kinfer_worker_t *w, int64_t *records, int64_t *dlq, int64_t *batches)
{
        if (records)
                *records = w->total_records;
        if (dlq)
                *dlq = w->total_dlq;
        if (batches)
                *batches = w->total_batches;
}

void kinfer_worker_stop(kinfer_worker_t *w)
{
        atomic_store(&w->stop, 1);
}

kinfer_err_t kinfer_worker_run(kinfer_worker_t *w, char *errstr, size_t errstr_size)
{
        char e[512];
        int64_t last_poll_us = 0;
        while (!atomic_load(&w->stop) && !w->fatal) {
                if (w->batch.n == 0)
                        apply_swap(w); /* idle: no batch to wait for */
                /* Backpressure, while too much is consumed but not yet delivered: first stop
                 * taking records from the consumer (librdkafka's prefetch queue is bounded by
                 * queued.max.messages.kbytes); if that lasts backpressure.pause.ms, pause the
                 * partitions too, so that the consumer can be polled (rebalances) without
                 * fetching. A pause costs a refetch on resume, a hold costs nothing. */
                int64_t in_flight = kinfer_offsets_in_flight(w->offs);
                int64_t now = mono_us();
                if (in_flight >= w->bp_max) {
                        if (!w->holding) {
                                w->holding = 1;
                                w->hold_since_us = now;
                                w->win.holds++;
                                kinfer_log(KINFER_LOG_DEBUG, "WORKER", "hold in_flight=%" PRId64, in_flight);
                        }
                        if (!w->paused && now - w->hold_since_us >= w->bp_pause_us) {
                                w->paused = 1;
                                w->win.pauses++;
                                kinfer_log(KINFER_LOG_DEBUG, "WORKER", "pause in_flight=%" PRId64, in_flight);
                        }
                } else if (w->holding && in_flight <= w->bp_resume) {
                        w->holding = 0;
                        w->paused = 0;
                        kinfer_log(KINFER_LOG_DEBUG, "WORKER", "resume in_flight=%" PRId64, in_flight);
                }
                kinfer_consumer_set_paused(w->cons, w->paused || !w->model);

                int timeout = kinfer_batch_timeout_ms(&w->batch, now);
                if (timeout < 0 || timeout > IDLE_POLL_MS)
                        timeout = IDLE_POLL_MS;
                if (in_flight > 0 && timeout > 1)
                        timeout = 1; /* delivery reports are waiting: serve them promptly */
                if (w->paused || !w->model)
                        timeout = 0;
                kinfer_msg_t msg;
                int r = 0;
                if (!w->holding || w->paused)
                        r = kinfer_consumer_poll(w->cons, timeout, &msg, e, sizeof(e));
                if (r < 0) {
                        set_fatal(w, KINFER_ERR__KAFKA, "%s", e);
                        break;
                }
                now = mono_us();
                if (r == 1) {
                        if (w->model)
                                handle_msg(w, &msg, now);
                        else /* no model yet (partitions are paused): fetch it again later */
                                kinfer_consumer_rewind(w->cons, &msg);
                }
                /* holding back takes no more records: waiting longer could not fill the batch */
                if (kinfer_batch_due(&w->batch, now) || (w->holding && w->batch.n > 0))
                        flush_batch(w);
                /* serve delivery reports: after each batch, while idle, and at least every ms */
                if (r == 0 || w->batch.n == 0 || now - last_poll_us > 1000) {
                        w->dr_now_us = wall_us();
                        kinfer_producer_poll(w->prod, (w->holding || !w->model) ? 10 : 0);
                        last_poll_us = now;
                        store_offsets(w);
                }
                if (kinfer_producer_fatal(w->prod, e, sizeof(e)))
                        set_fatal(w, KINFER_ERR__KAFKA, "producer: %s", e);
                if (w->metrics_interval_us > 0 && now - w->win.start_mono_us >= w->metrics_interval_us)
                        window_emit(w);
        }

        /* ---- shutdown: finish the batch in flight, deliver, commit, leave the group ---- */
        kinfer_err_t ret = KINFER_OK;
        if (w->fatal) {
                release_batch(w);
                kinfer_seterr(errstr, errstr_size, w->fatal_err, "%s", w->fatal_reason);
                ret = w->fatal_err;
        } else {
                kinfer_log(KINFER_LOG_INFO, "WORKER", "stopping: batch=%d in_flight=%" PRId64,
                           (int)w->batch.n, kinfer_offsets_in_flight(w->offs));
                flush_batch(w);
        }
        w->dr_now_us = wall_us();
        if (kinfer_producer_flush(w->prod, w->shutdown_timeout_ms, e, sizeof(e))) {
                kinfer_log(KINFER_LOG_ERR, "WORKER", "shutdown: %s", e);
                if (!ret) {
                        kinfer_seterr(errstr, errstr_size, KINFER_ERR__TIMEOUT, "%s", e);
                        ret = KINFER_ERR__TIMEOUT;
                }
        }
        kinfer_producer_poll(w->prod, 0);
        store_offsets(w);
        if (!w->fatal && kinfer_consumer_commit(w->cons, e, sizeof(e)))
                kinfer_log(KINFER_LOG_WARN, "WORKER", "final commit: %s", e);
        if (kinfer_consumer_close(w->cons, e, sizeof(e)))
                kinfer_log(KINFER_LOG_WARN, "WORKER", "%s", e);
        if (w->metrics_interval_us > 0 && (w->win.records || w->win.dlq))
                window_emit(w);
        kinfer_log(KINFER_LOG_INFO, "WORKER",
                   "stopped records=%" PRId64 " dlq=%" PRId64 " batches=%" PRId64 " in_flight=%" PRId64,
                   w->total_records, w->total_dlq, w->total_batches, kinfer_offsets_in_flight(w->offs));
        return ret;
}

void kinfer_worker_destroy(kinfer_worker_t *w)
{
        if (!w)
                return;
        if (w->batch.entries && w->slots)
                release_batch(w);
        kinfer_consumer_destroy(w->cons);
        kinfer_producer_destroy(w->prod);
        kinfer_codec_destroy(w->codec);
        kinfer_offsets_destroy(w->offs);
        kinfer_batch_term(&w->batch);
        kinfer_runtime_destroy(w->rt);
        for (int i = 0; i < w->n_helpers; i++) {
                struct helper *h = &w->helpers[i];
                if (h->started) {
                        pthread_mutex_lock(&h->mu);
                        h->quit = 1;
                        pthread_cond_broadcast(&h->cv);
                        pthread_mutex_unlock(&h->mu);
                        pthread_join(h->th, NULL);
                }
                kinfer_runtime_destroy(h->rt);
                pthread_mutex_destroy(&h->mu);
                pthread_cond_destroy(&h->cv);
        }
        free(w->helpers);
        free(w->slots);
        free(w->texts);
        free(w->lens);
        free(w->preds);
        kinfer_buf_free(&w->out);
        kinfer_model_release(w->win.model);
        free(w->win.label_counts);
        kinfer_model_release(w->model);
        kinfer_model_release(w->pending);
        pthread_mutex_destroy(&w->lock);
        kinfer_conf_destroy(w->conf);
        free(w);
}
