/* SPDX-License-Identifier: Apache-2.0 */
/* worker.c -- the composition root of `kinfer serve`: the consume -> decode -> batch ->
 * classify -> encode -> produce -> store-offsets loop, dead letters, backpressure, rebalance
 * drain, shutdown, and applying the model mailbox between batches. The classification
 * threads are in pool.c, the metrics window in metrics.c, the mailbox in model_slot.c. */
#include "kinfer/worker/worker.h"

#include <errno.h>
#include <inttypes.h>
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
#include "kinfer/core/sha256.h"
#include "kinfer/worker/drift.h"
#include "kinfer/worker/offsets.h"
#include "kinfer/worker/prom.h"
#include "kinfer/kafka/producer.h"
#include "kinfer/kafka/txn.h"
#include "kinfer/runtime/runtime.h"
#include "worker/pool.h"
#include "worker/rollout.h"

#define MAX_HEADERS 64
#define MSG_SLACK 512              /* librdkafka's per-message framing (about 40 bytes), rounded up */
#define DLQ_HEADERS_MAX 16384      /* original headers kept in a reduced dead letter (bytes) */
#define PART_CACHE 256
#define IDLE_POLL_MS 50
#define PROM_PUBLISH_US 50000 /* the /metrics counters and gauges: at most this stale */
#define PROM_LAG_US 1000000    /* the consumer lag series: refreshed this often */

/* ---- clocks -------------------------------------------------------------------------------- */

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

/* ---- the worker --------------------------------------------------------------------------- */

struct slot {            /* one batched record, parallel to batch.entries */
        kinfer_msg_t msg;
        uint64_t token;
        int to_candidate;       /* a canary routed it to the candidate (this batch) */
};

struct kinfer_worker_s {
        kinfer_conf_t *conf;
        char worker_id[128];
        const char *deployment;
        /* settings */
        int64_t max_value_bytes, bp_max, bp_resume, bp_pause_us, metrics_interval_us;
        int ready; /* has partitions and a model: the "ready" line was logged */
        atomic_int ready_pub; /* the same, for kinfer_worker_ready() on other threads */
        int topk, shutdown_timeout_ms;
        int no_features_dlq; /* input.no.features=dlq */
        int64_t msg_budget;   /* largest message the producer takes, less framing slack */
        size_t id_max;        /* output.id.max.bytes */
        int refused_fail;     /* delivery.refused.policy=fail */
        int out_json;         /* output.format=json */
        int64_t bp_max_bytes; /* backpressure.max.bytes */
        _Atomic int64_t deadline_us; /* monotonic end of the shutdown; 0 = not stopping */
        /* parts */
        kinfer_codec_t *codec;
        kinfer_consumer_t *cons;
        kinfer_producer_t *prod;
        kinfer_pool_t *pool;
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
        /* the model: the mailbox, and what the worker thread applied from it (written by the
         * worker thread only; other threads read the slot's record) */
        kinfer_model_slot_t *mailbox;
        kinfer_model_t *model;       /* one reference */
        kinfer_model_record_t *cur;  /* its record, as published in the slot (one reference) */
        /* the rollout applied with it (migration 0005; rollout.h): mode NONE, or a canary or
         * shadow candidate (its model and record: one reference each) */
        kinfer_model_rollout_t ro;
        kinfer_shadow_acc_t shadow; /* the shadow's current window */
        struct {                    /* per-batch scratch of a rollout (max_records each) */
                const char **texts;
                size_t *lens;
                int32_t *idx;       /* canary: batch positions, active first, then candidate */
                kinfer_prediction_t *preds;
        } rs;
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
        kinfer_metrics_window_t win;
        kinfer_drift_conf_t drift; /* drift.psi.warn, drift.min.records (drift.h) */
        kinfer_worker_metrics_cb_t *metrics_cb;
        void *metrics_opaque;
        kinfer_worker_shadow_cb_t *shadow_cb;
        void *shadow_opaque;
        void (*drained_cb)(void *opaque);
        void *drained_opaque;
        int64_t total_records, total_dlq, total_batches;
        kinfer_prom_t *prom;     /* /metrics (prom.h): shared with the HTTP thread */
        kinfer_prom_delta_t pd;  /* counted here, handed over by prom_publish() */
        int64_t prom_pub_us, prom_lag_us; /* monotonic: the last publish, lag refresh */
        kinfer_consumer_lag_t *lag_in;    /* KINFER_PROM_PARTITIONS_MAX */
        kinfer_prom_lag_t *lag_out;
        /* exactly-once (processing.guarantee=exactly_once; the "exactly-once" section) */
        int eos;
        int64_t txn_interval_us, txn_start_us; /* monotonic start of the open window */
        int64_t txn_commits, txn_aborts;
        int64_t total_reduced, total_skipped; /* dead letters in a reduced form; records skipped */
        int64_t sr_wait_until_us; /* monotonic end of a wait for the schema registry; 0 = none */
        int64_t sr_waits;         /* records sent back to wait for the registry */
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
        char errstr[128];
        if (kinfer_metrics_window_start(&w->win, w->cur, errstr, sizeof(errstr)))
                kinfer_log(KINFER_LOG_WARN, "METRICS", "%s", errstr);
}

/* Close the shadow's window (rollout.h): the log line and the shadow callback. */
static void shadow_emit(kinfer_worker_t *w)
{
        kinfer_shadow_acc_t *a = &w->shadow;
        if (w->ro.mode == KINFER_ROLLOUT_SHADOW && a->records > 0 && w->cur) {
                int64_t end_us = wall_us();
                kinfer_log(KINFER_LOG_INFO, "SHADOW",
                           "records=%" PRId64 " agree=%" PRId64 " agreement=%.4f pairs=%d other=%" PRId64
                           " mean_score_diff=%.4f active_us_per_record=%.2f candidate_us_per_record=%.2f "
                           "model=%s version=%d candidate=%s candidate_version=%d",
                           a->records, a->agree, (double)a->agree / (double)a->records,
                           (int)a->n_pairs, a->other, a->score_diff_sum / (double)a->records,
                           (double)a->active_us / (double)a->records,
                           (double)a->candidate_us / (double)a->records, w->cur->name,
                           (int)w->cur->version, w->ro.rec->name, (int)w->ro.rec->version);
                /* /metrics first: a reader who saw the window in PostgreSQL sees it counted */
                kinfer_prom_observe_shadow(w->prom, a->records, a->agree);
                kinfer_buf_t conf = {0};
                if (w->shadow_cb &&
                    !kinfer_shadow_acc_confusion_json(a, w->cur, w->ro.rec, &conf)) {
                        kinfer_shadow_window_t sw = {
                            .active = w->cur, .candidate = w->ro.rec, .start_us = a->start_us,
                            .end_us = end_us, .records = a->records, .agree = a->agree,
                            .confusion_other = a->other, .confusion_json = conf.data,
                            .mean_score_diff = a->score_diff_sum / (double)a->records,
                            .active_classify_us = (double)a->active_us / (double)a->records,
                            .candidate_classify_us = (double)a->candidate_us / (double)a->records};
                        w->shadow_cb(&sw, w->shadow_opaque);
                }
                kinfer_buf_free(&conf);
        }
        memset(a, 0, sizeof(*a));
}

static void window_emit(kinfer_worker_t *w)
{
        kinfer_metrics_window_t *win = &w->win;
        kinfer_metrics_window_close(win);
        double secs = (double)(win->end_us - win->start_us) / 1e6;
        int drift = kinfer_drift_assess(&w->drift, win);
        if (drift > 0) {
                char pc[32] = "none"; /* none: a training-data reference (drift.h) */
                if (win->psi_confidence >= 0)
                        snprintf(pc, sizeof(pc), "%.4f", win->psi_confidence);
                kinfer_log(KINFER_LOG_WARN, "DRIFT",
                           "drift above drift.psi.warn=%g: %s%s%s psi_labels=%.4f "
                           "psi_confidence=%s records=%" PRId64 " window_s=%.1f model=%s version=%d",
                           w->drift.psi_warn, win->psi_labels > w->drift.psi_warn ? "labels" : "",
                           win->psi_labels > w->drift.psi_warn &&
                                   win->psi_confidence > w->drift.psi_warn ? "," : "",
                           win->psi_confidence > w->drift.psi_warn ? "confidence" : "",
                           win->psi_labels, pc, win->records, secs,
                           win->model ? win->model->name : "", win->model ? (int)win->model->version : 0);
        }
        if (drift >= 0)
                kinfer_prom_set_drift(w->prom, win->psi_labels, win->psi_confidence, drift > 0);
        kinfer_log(KINFER_LOG_INFO, "METRICS",
                   "window_s=%.1f records=%" PRId64 " rps=%.0f batches=%" PRId64
                   " mean_batch=%.1f dlq=%" PRId64 " p50_ms=%.2f p95_ms=%.2f p99_ms=%.2f "
                   "mean_conf=%.3f model=%s version=%d in_flight=%" PRId64 " backpressure=%" PRId64
                   " pauses=%" PRId64 " skipped=%" PRId64 " in_flight_bytes=%" PRId64,
                   secs, win->records, secs > 0 ? (double)win->records / secs : 0, win->batches,
                   kinfer_metrics_window_mean_batch(win), win->dlq, win->latency_p50_ms,
                   win->latency_p95_ms, win->latency_p99_ms,
                   kinfer_metrics_window_mean_confidence(win), win->model ? win->model->name : "",
                   win->model ? (int)win->model->version : 0, kinfer_offsets_in_flight(w->offs),
                   win->holds, win->pauses, win->skipped,
                   kinfer_producer_bytes_in_flight(w->prod));
        if (w->metrics_cb)
                w->metrics_cb(win, w->metrics_opaque);
        shadow_emit(w);
        window_start(w);
}

/* Hand the counts over to /metrics (prom.h) with the gauges; the lag every PROM_LAG_US. */
static void prom_publish(kinfer_worker_t *w, int64_t now)
{
        kinfer_prom_gauges_t g = {
            .in_flight = kinfer_offsets_in_flight(w->offs),
            .bytes_in_flight = kinfer_producer_bytes_in_flight(w->prod),
            .backpressure = w->paused ? 2 : w->holding ? 1 : 0,
            .ready = w->ready,
            .partitions = kinfer_consumer_assigned(w->cons),
        };
        kinfer_prom_publish(w->prom, &w->pd, &g);
        w->prom_pub_us = now;
        if (now - w->prom_lag_us >= PROM_LAG_US) {
                w->prom_lag_us = now;
                int n = kinfer_consumer_lag(w->cons, w->lag_in, KINFER_PROM_PARTITIONS_MAX);
                int k = n < KINFER_PROM_PARTITIONS_MAX ? n : KINFER_PROM_PARTITIONS_MAX;
                for (int i = 0; i < k; i++) {
                        snprintf(w->lag_out[i].topic, sizeof(w->lag_out[i].topic), "%s",
                                 w->lag_in[i].topic);
                        w->lag_out[i].partition = w->lag_in[i].partition;
                        w->lag_out[i].lag = w->lag_in[i].lag;
                }
                kinfer_prom_set_lag(w->prom, w->lag_out, k, n);
        }
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
        /* the clock is read once per poll, not per report */
        if (kinfer_offsets_done(w->offs, token, &t_us)) {
                if (w->win.latency)
                        kinfer_latency_add(w->win.latency, w->dr_now_us - t_us);
                kinfer_prom_delta_latency(&w->pd, w->dr_now_us - t_us);
        }
}

static void store_offsets(kinfer_worker_t *w)
{
        /* exactly-once: offsets go into the transaction instead (eos_commit) */
        if (w->fatal || w->eos)
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

/* ---- the model mailbox --------------------------------------------------------------------- */

/* Make @p rec (with @p model) what the worker serves from the next batch on, and publish it. */
static void set_model(kinfer_worker_t *w, kinfer_model_t *model, kinfer_model_record_t *rec)
{
        kinfer_model_t *old = w->model;
        kinfer_model_record_t *old_rec = w->cur;
        w->model = model;
        w->cur = kinfer_model_record_keep(rec);
        kinfer_model_slot_publish_model(w->mailbox, model, rec); /* HTTP serves it too */
        kinfer_model_release(old);
        kinfer_model_record_release(old_rec);
}

/* Between two batches: apply the model waiting in the mailbox, if any. */
static void apply_post(kinfer_worker_t *w)
{
        if (!kinfer_model_slot_pending(w->mailbox))
                return;
        kinfer_model_record_t *rec;
        kinfer_model_rollout_t ro;
        kinfer_model_t *model = kinfer_model_slot_take_rollout(w->mailbox, &rec, &ro);
        if (!model) {
                kinfer_model_rollout_release(&ro);
                return;
        }
        if (w->ro.mode != ro.mode || w->ro.basis_points != ro.basis_points ||
            strcmp(w->ro.rec ? w->ro.rec->sha256 : "", ro.rec ? ro.rec->sha256 : "")) {
                shadow_emit(w); /* the shadow's window ends with it */
                kinfer_log(KINFER_LOG_NOTICE, "WORKER", "rollout applied mode=%s candidate=%s:%d share_bp=%d",
                           ro.mode == KINFER_ROLLOUT_CANARY ? "canary" : ro.mode == KINFER_ROLLOUT_SHADOW ? "shadow" : "none",
                           ro.rec ? ro.rec->name : "-", ro.rec ? (int)ro.rec->version : 0, (int)ro.basis_points);
        }
        kinfer_model_rollout_release(&w->ro);
        w->ro = ro;
        if (w->cur && !strcmp(w->cur->sha256, rec->sha256)) { /* only the candidate changed */
                set_model(w, model, rec);
                return;
        }
        if (w->model && (w->win.records || w->win.dlq || (w->win.latency && w->win.latency->n)))
                window_emit(w); /* close the old model's window */
        char from[160];
        snprintf(from, sizeof(from), "%s:%d", w->cur ? w->cur->name : "-",
                 w->cur ? (int)w->cur->version : 0);
        if (w->cur)
                w->pd.swaps++;
        set_model(w, model, rec);
        kinfer_prom_set_drift(w->prom, -1, -1, 0); /* the old model's PSI is not this one's */
        if (!rec->has_ref)
                kinfer_log(KINFER_LOG_NOTICE, "DRIFT",
                           "model %s:%d carries no drift reference: no drift PSI for it",
                           rec->name, (int)rec->version);
        window_start(w);
        kinfer_log(KINFER_LOG_NOTICE, "WORKER", "model swapped from=%s to=%s:%d sha256=%.12s",
                   from, w->cur->name, (int)w->cur->version, w->cur->sha256);
}

kinfer_err_t kinfer_worker_swap_model(kinfer_worker_t *w, kinfer_model_t *model, const char *name,
                                      int32_t version, char *errstr, size_t errstr_size)
{
        return kinfer_model_slot_post(w->mailbox, model, 0, name, version, w->deployment, NULL,
                                      errstr, errstr_size);
}

int kinfer_worker_ready(kinfer_worker_t *w)
{
        return atomic_load(&w->ready_pub);
}

kinfer_model_slot_t *kinfer_worker_model_slot(kinfer_worker_t *w)
{
        return w->mailbox;
}

kinfer_err_t kinfer_worker_model_info(kinfer_worker_t *w, char *name, size_t name_size,
                                      int32_t *version, char *sha256)
{
        kinfer_model_record_t *rec = kinfer_model_slot_applied(w->mailbox);
        if (!rec)
                return KINFER_ERR__NOENT;
        if (name && name_size)
                snprintf(name, name_size, "%s", rec->name);
        if (version)
                *version = rec->version;
        if (sha256)
                memcpy(sha256, rec->sha256, 65);
        kinfer_model_record_release(rec);
        return KINFER_OK;
}

/* ---- dead letters -------------------------------------------------------------------------- */

/* The form of a dead letter (header kinfer.dlq.form): whole, reduced to fit (a prefix of the
 * value, a capped key, the leading original headers), or minimal (none of them: the reason,
 * the source, the original size and sha256 only). A refused form is followed by the next. */
enum dl_form { DL_FULL = 0, DL_REDUCED, DL_MINIMAL };
static const char *const dl_form_str[] = {"full", "reduced", "minimal"};

static size_t hdr_bytes(const kinfer_header_view_t *h, size_t n)
{
        size_t t = 0;
        for (size_t i = 0; i < n; i++)
                t += strlen(h[i].key) + h[i].value_len + 12; /* + varints */
        return t;
}

/* A record whose result or dead letter cannot be produced even in the smallest form: skip it
 * (counted, logged, its offset processed) or stop, by delivery.refused.policy. */
static void give_up(kinfer_worker_t *w, uint64_t token, const char *what, const char *topic,
                    int32_t partition, int64_t offset, const char *reason)
{
        if (w->refused_fail) {
                set_fatal(w, KINFER_ERR__KAFKA,
                          "%s for topic=%s partition=%d offset=%" PRId64 " refused: %s "
                          "(delivery.refused.policy=fail)", what, topic, (int)partition, offset,
                          reason);
                return;
        }
        w->total_skipped++;
        w->win.skipped++;
        w->pd.skipped++;
        kinfer_log(KINFER_LOG_ERR, "DLQ",
                   "skipped topic=%s partition=%d offset=%" PRId64 ": %s refused: %s "
                   "(delivery.refused.policy=skip)", topic, (int)partition, offset, what, reason);
        kinfer_offsets_done(w->offs, token, NULL);
}

/* Encode @p dl in form @p form into w->out with its Kafka headers in @p hdrs (room for
 * MAX_HEADERS + 8) and key; @returns the message's size as the producer counts it. */
static size_t encode_dl(kinfer_worker_t *w, kinfer_dead_letter_t dl, enum dl_form form,
                        kinfer_header_view_t *hdrs, size_t *nh, const void **key, size_t *key_len,
                        char *part, char *off, char *vsize, size_t n_orig, char *dropped, int *err)
{
        *key = dl.key;
        *key_len = dl.key_len;
        if (form >= DL_REDUCED) {
                if (!dl.truncated) {
                        dl.truncated = 1;
                        dl.value_size = dl.value_len;
                }
                if (*key_len > w->id_max)
                        *key_len = w->id_max; /* the Kafka key; the body's key too */
                dl.key_len = *key_len;
                size_t keep = 0, total = 0;
                while (form == DL_REDUCED && keep < dl.n_headers &&
                       (total += hdr_bytes(&dl.headers[keep], 1)) <= DLQ_HEADERS_MAX)
                        keep++;
                dl.n_headers = keep;
                if (form == DL_MINIMAL) {
                        *key = NULL;
                        *key_len = 0;
                        dl.key = NULL;
                        dl.key_len = 0;
                }
                if (dl.value) {
                        size_t orig = dl.value_len;
                        dl.value_len = 0;
                        if (form == DL_REDUCED) {
                                /* what is left for the value once everything else is encoded */
                                w->out.len = 0;
                                *err |= kinfer_codec_encode_dead_letter(w->codec, &dl, &w->out);
                                int64_t room = w->msg_budget - (int64_t)w->out.len - (int64_t)*key_len -
                                               2 * (int64_t)hdr_bytes(dl.headers, dl.n_headers) - 1024;
                                if (room > 0) {
                                        /* JSON carries the value in base64: 4 characters per 3 bytes */
                                        size_t v = (size_t)room;
                                        if (w->out_json)
                                                v = v / 4 * 3;
                                        dl.value_len = v < orig ? v : orig;
                                }
                        }
                }
        }
        *nh = 0;
        for (size_t i = 0; i < dl.n_headers; i++)
                hdrs[(*nh)++] = dl.headers[i];
        const char *rs = kinfer_dlq_reason_str(dl.reason);
        hdrs[(*nh)++] = (kinfer_header_view_t){"kinfer.dlq.reason", rs, strlen(rs)};
        hdrs[(*nh)++] = (kinfer_header_view_t){"kinfer.dlq.detail", dl.detail, strlen(dl.detail)};
        hdrs[(*nh)++] = (kinfer_header_view_t){"kinfer.dlq.topic", dl.topic, strlen(dl.topic)};
        hdrs[(*nh)++] = (kinfer_header_view_t){"kinfer.dlq.partition", part, strlen(part)};
        hdrs[(*nh)++] = (kinfer_header_view_t){"kinfer.dlq.offset", off, strlen(off)};
        hdrs[(*nh)++] = (kinfer_header_view_t){"kinfer.dlq.form", dl_form_str[form],
                                               strlen(dl_form_str[form])};
        hdrs[(*nh)++] = (kinfer_header_view_t){"kinfer.dlq.value.size", vsize, strlen(vsize)};
        if (dl.value_sha256)
                hdrs[(*nh)++] = (kinfer_header_view_t){"kinfer.dlq.value.sha256", dl.value_sha256,
                                                       strlen(dl.value_sha256)};
        /* the original headers not kept (over MAX_HEADERS, or left out of a reduced form) are
         * counted, never dropped silently */
        if (n_orig > dl.n_headers) {
                snprintf(dropped, 24, "%zu", n_orig - dl.n_headers);
                hdrs[(*nh)++] = (kinfer_header_view_t){"kinfer.dlq.headers.dropped", dropped,
                                                       strlen(dropped)};
        }
        w->out.len = 0;
        *err |= kinfer_codec_encode_dead_letter(w->codec, &dl, &w->out);
        return w->out.len + *key_len + hdr_bytes(hdrs, *nh);
}

/* Produce dead letter @p dl for @p token, starting at form @p form and going down to the
 * minimal one while it does not fit; the last resort is give_up(). */
static void send_dead_letter(kinfer_worker_t *w, kinfer_dead_letter_t dl, size_t n_orig,
                             uint64_t token, enum dl_form form)
{
        if (w->dlq_topic < 0) {
                give_up(w, token, "record (no dlq.topic)", dl.topic, dl.partition, dl.offset,
                        dl.detail);
                return;
        }
        char sha[65], vsize[24];
        if (dl.value && !dl.value_sha256 && !dl.truncated) {
                if (kinfer_sha256_hex(dl.value, dl.value_len, sha) == KINFER_OK)
                        dl.value_sha256 = sha;
        }
        if (dl.n_headers > MAX_HEADERS)
                dl.n_headers = MAX_HEADERS;
        char part[16], off[24];
        snprintf(part, sizeof(part), "%d", (int)dl.partition);
        snprintf(off, sizeof(off), "%" PRId64, dl.offset);
        snprintf(vsize, sizeof(vsize), "%" PRId64,
                 !dl.value ? (int64_t)-1 : (int64_t)(dl.truncated ? dl.value_size : dl.value_len));
        kinfer_header_view_t hdrs[MAX_HEADERS + 9];
        char dropped[24];
        size_t nh;
        const void *key;
        size_t key_len;
        for (; form <= DL_MINIMAL; form++) {
                int err = 0;
                size_t size = encode_dl(w, dl, form, hdrs, &nh, &key, &key_len, part, off, vsize,
                                        n_orig, dropped, &err);
                if (err) {
                        set_fatal(w, KINFER_ERR__NOMEM, "cannot encode a dead letter");
                        return;
                }
                if ((int64_t)size > w->msg_budget && form < DL_MINIMAL)
                        continue;
                char errstr[512];
                kinfer_err_t e = kinfer_producer_send(w->prod, w->dlq_topic, key, key_len, w->out.data,
                                                      w->out.len, hdrs, nh, token, errstr,
                                                      sizeof(errstr));
                if (e == KINFER_OK) {
                        if (form > DL_FULL) {
                                w->total_reduced++;
                                kinfer_log(KINFER_LOG_WARN, "DLQ",
                                           "topic=%s partition=%d offset=%" PRId64 " dead letter "
                                           "sent %s (value %zu bytes, sha256 %.16s...)",
                                           dl.topic, (int)dl.partition, dl.offset, dl_form_str[form],
                                           dl.value_len, dl.value_sha256 ? dl.value_sha256 : "-");
                        }
                        return;
                }
                if (e != KINFER_ERR__BAD_FORMAT) { /* systemic */
                        set_fatal(w, e, "%s", errstr);
                        return;
                }
                if (form == DL_MINIMAL)
                        give_up(w, token, "dead letter", dl.topic, dl.partition, dl.offset, errstr);
        }
}

/* Dead-letter @p msg (which the caller still owns and releases). */
static void dead_letter_keep(kinfer_worker_t *w, kinfer_msg_t *msg, uint64_t token,
                             kinfer_dlq_reason_t reason, const char *detail)
{
        w->win.dlq++;
        w->total_dlq++;
        w->pd.dead_letters[reason]++;
        kinfer_log(KINFER_LOG_WARN, "DLQ", "topic=%s partition=%d offset=%" PRId64 " reason=%s detail=\"%s\"",
                   msg->topic, (int)msg->partition, msg->offset, kinfer_dlq_reason_str(reason), detail);
        kinfer_header_view_t hdrs[MAX_HEADERS];
        size_t n_orig = w->dlq_topic < 0 ? 0 : kinfer_consumer_headers(msg, hdrs, MAX_HEADERS);
        size_t nh = n_orig < MAX_HEADERS ? n_orig : MAX_HEADERS;
        kinfer_dead_letter_t dl = {
            .reason = reason, .detail = detail, .topic = msg->topic, .partition = msg->partition,
            .offset = msg->offset, .timestamp_ms = msg->timestamp_ms, .key = msg->key,
            .key_len = msg->key_len, .value = msg->value, .value_len = msg->len, .headers = hdrs,
            .n_headers = nh, .worker_id = w->worker_id, .dead_at_ms = wall_us() / 1000};
        if (w->dlq_topic < 0) {
                kinfer_offsets_done(w->offs, token, NULL); /* skipped: processed */
                return;
        }
        send_dead_letter(w, dl, n_orig, token, DL_FULL);
}

static void dead_letter(kinfer_worker_t *w, kinfer_msg_t *msg, uint64_t token,
                        kinfer_dlq_reason_t reason, const char *detail)
{
        dead_letter_keep(w, msg, token, reason, detail);
        kinfer_consumer_release(w->cons, msg);
}

/* The producer could not take a result or dead letter as it was, for good (too large, the
 * topic's policy, not authorized): its record gets the next smaller form. */
static void on_refused(void *opaque, const kinfer_producer_msg_t *m)
{
        kinfer_worker_t *w = opaque;
        int32_t part;
        int64_t offset;
        if (!kinfer_offsets_lookup(w->offs, m->token, &part, &offset))
                return; /* stale: its partition was revoked */
        const char *topic = kinfer_offsets_topic(w->offs, part);
        int32_t partition = kinfer_offsets_partition(w->offs, part);
        kinfer_log(KINFER_LOG_WARN, "PRODUCER",
                   "topic=%s partition=%d offset=%" PRId64 ": %s of %zu bytes refused: %s", topic,
                   (int)partition, offset, m->topic == w->out_topic ? "result" : "dead letter",
                   m->len, m->reason);
        if (m->topic == w->out_topic) {
                char detail[512];
                snprintf(detail, sizeof(detail), "the result was refused: %s", m->reason);
                w->win.dlq++;
                w->total_dlq++;
                w->pd.dead_letters[KINFER_DLQ_UNDELIVERABLE]++;
                w->pd.results_out--; /* counted when handed over; it went to the DLQ instead */
                kinfer_dead_letter_t dl = {
                    .reason = KINFER_DLQ_UNDELIVERABLE, .detail = detail, .topic = topic,
                    .partition = partition, .offset = offset, .timestamp_ms = -1, .key = m->key,
                    .key_len = m->key_len, .value = m->value, .value_len = m->len,
                    .worker_id = w->worker_id, .dead_at_ms = wall_us() / 1000};
                send_dead_letter(w, dl, 0, m->token, DL_FULL);
                return;
        }
        /* a refused dead letter: again in the next form, from what it carried */
        enum dl_form form = DL_FULL;
        for (size_t i = 0; i < m->n_headers; i++)
                if (!strcmp(m->headers[i].key, "kinfer.dlq.form"))
                        for (int f = DL_FULL; f <= DL_MINIMAL; f++)
                                if (m->headers[i].value_len == strlen(dl_form_str[f]) &&
                                    !memcmp(m->headers[i].value, dl_form_str[f], m->headers[i].value_len))
                                        form = (enum dl_form)f;
        if (form == DL_MINIMAL) {
                give_up(w, m->token, "dead letter", topic, partition, offset, m->reason);
                return;
        }
        /* the refused one is encoded: resend its source as a minimal dead letter (no value,
         * key or headers; reason and detail from its headers) */
        const char *reason = "undeliverable", *detail = m->reason;
        size_t reason_len = strlen(reason), detail_len = strlen(detail);
        char sha[65] = "", size[24] = "";
        for (size_t i = 0; i < m->n_headers; i++) {
                const kinfer_header_view_t *h = &m->headers[i];
                if (!strcmp(h->key, "kinfer.dlq.value.sha256") && h->value && h->value_len == 64)
                        snprintf(sha, sizeof(sha), "%.*s", 64, (const char *)h->value);
                else if (!strcmp(h->key, "kinfer.dlq.value.size") && h->value && h->value_len < 24)
                        snprintf(size, sizeof(size), "%.*s", (int)h->value_len, (const char *)h->value);
                if (!strcmp(m->headers[i].key, "kinfer.dlq.reason") && m->headers[i].value) {
                        reason = m->headers[i].value;
                        reason_len = m->headers[i].value_len;
                } else if (!strcmp(m->headers[i].key, "kinfer.dlq.detail") && m->headers[i].value) {
                        detail = m->headers[i].value;
                        detail_len = m->headers[i].value_len;
                }
        }
        kinfer_dlq_reason_t r = KINFER_DLQ_UNDELIVERABLE;
        for (int i = KINFER_DLQ_UNDECODABLE; i <= KINFER_DLQ_NO_FEATURES; i++)
                if (strlen(kinfer_dlq_reason_str((kinfer_dlq_reason_t)i)) == reason_len &&
                    !memcmp(kinfer_dlq_reason_str((kinfer_dlq_reason_t)i), reason, reason_len))
                        r = (kinfer_dlq_reason_t)i;
        char dbuf[512];
        snprintf(dbuf, sizeof(dbuf), "%.*s; the dead letter was refused: %s",
                 (int)(detail_len < 200 ? detail_len : 200), detail, m->reason);
        long long vs = *size ? strtoll(size, NULL, 10) : -1;
        kinfer_dead_letter_t dl = {
            .reason = r, .detail = dbuf, .topic = topic, .partition = partition, .offset = offset,
            .timestamp_ms = -1, .value = vs < 0 ? NULL : "", .value_len = 0,
            .worker_id = w->worker_id, .dead_at_ms = wall_us() / 1000, .truncated = 1,
            .value_size = vs < 0 ? 0 : (size_t)vs, .value_sha256 = *sha ? sha : NULL};
        send_dead_letter(w, dl, 0, m->token, DL_MINIMAL);
}

/* ---- the batch ---------------------------------------------------------------------------- */

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
        apply_post(w); /* between two batches */
        /* pinned for this batch */
        kinfer_model_t *model = kinfer_model_keep(w->model);
        kinfer_model_record_t *rec = kinfer_model_record_keep(w->cur);
        for (int32_t i = 0; i < b->n; i++) {
                w->texts[i] = b->entries[i].text;
                w->lens[i] = b->entries[i].text_len;
        }
        char errstr[512];
        int64_t classify_start_us = mono_us();
        /* the rollout (rollout.h): borrowed from w->ro, which changes only in apply_post */
        const kinfer_rollout_mode_t mode = w->ro.mode;
        const kinfer_model_t *cmodel = w->ro.model;
        const kinfer_model_record_t *crec = w->ro.rec;
        int32_t n_a = b->n, n_c = 0; /* canary: the active's and the candidate's records */
        int64_t cand_us = 0;
        kinfer_err_t err;
        if (mode == KINFER_ROLLOUT_CANARY) {
                /* active records compact in w->texts (positions rs.idx[0..n_a)), the
                 * candidate's in rs.texts (positions rs.idx[n - 1 - j]) */
                n_a = 0;
                for (int32_t i = 0; i < b->n; i++) {
                        const kinfer_batch_entry_t *e = &b->entries[i];
                        const kinfer_msg_t *msg = &w->slots[i].msg;
                        int32_t bucket = msg->key && msg->key_len
                                             ? kinfer_rollout_bucket(msg->key, msg->key_len)
                                         : e->id ? kinfer_rollout_bucket(e->id, e->id_len)
                                                 : kinfer_rollout_bucket(e->text, e->text_len);
                        w->slots[i].to_candidate = bucket < w->ro.basis_points;
                        if (w->slots[i].to_candidate) {
                                w->rs.texts[n_c] = e->text;
                                w->rs.lens[n_c] = e->text_len;
                                w->rs.idx[b->n - 1 - n_c++] = i;
                        } else {
                                w->texts[n_a] = e->text;
                                w->lens[n_a] = e->text_len;
                                w->rs.idx[n_a++] = i;
                        }
                }
                err = kinfer_pool_classify(w->pool, model, w->texts, w->lens, n_a, w->topk,
                                           w->rs.preds, errstr, sizeof(errstr));
                int64_t t1 = mono_us();
                if (!err && n_c)
                        err = kinfer_pool_classify(w->pool, cmodel, w->rs.texts, w->rs.lens, n_c,
                                                   w->topk, w->rs.preds + n_a, errstr,
                                                   sizeof(errstr));
                cand_us = mono_us() - t1;
                for (int32_t j = 0; !err && j < n_a; j++)
                        w->preds[w->rs.idx[j]] = w->rs.preds[j];
                for (int32_t j = 0; !err && j < n_c; j++)
                        w->preds[w->rs.idx[b->n - 1 - j]] = w->rs.preds[n_a + j];
                classify_start_us += cand_us; /* classify_us: the active's share */
        } else {
                for (int32_t i = 0; i < b->n; i++)
                        w->slots[i].to_candidate = 0;
                if (mode == KINFER_ROLLOUT_SHADOW) /* featurize once for both models */
                        kinfer_pool_share_features(w->pool, 1);
                err = kinfer_pool_classify(w->pool, model, w->texts, w->lens, b->n, w->topk,
                                           w->preds, errstr, sizeof(errstr));
                if (!err && mode == KINFER_ROLLOUT_SHADOW) {
                        /* every record again with the candidate, from the same features when
                         * it hashes text the same way; only the active's results go out */
                        int64_t t1 = mono_us();
                        kinfer_pool_share_features(w->pool, 2);
                        err = kinfer_pool_classify(w->pool, cmodel, w->texts, w->lens, b->n,
                                                   w->topk, w->rs.preds, errstr, sizeof(errstr));
                        kinfer_pool_share_features(w->pool, 0);
                        cand_us = mono_us() - t1;
                        classify_start_us += cand_us;
                        if (!err) {
                                if (!w->shadow.start_us)
                                        w->shadow.start_us = wall_us();
                                kinfer_shadow_acc_add(&w->shadow, rec, crec, w->preds, w->rs.preds,
                                                      b->n, t1 - (classify_start_us - cand_us),
                                                      cand_us);
                        }
                }
        }
        int64_t classify_us = mono_us() - classify_start_us;
        if (err) {
                set_fatal(w, err, "classify: %s", errstr);
                kinfer_model_record_release(rec);
                kinfer_model_release(model);
                release_batch(w);
                return;
        }
        int64_t classified_ms = wall_us() / 1000;
        kinfer_result_t res = {.model_name = rec->name, .model_version = rec->version,
                               .model_sha256 = rec->sha256, .classified_at_ms = classified_ms,
                               .batch_size = b->n, .worker_id = w->worker_id};
        for (int32_t i = 0; i < b->n && !w->fatal; i++) {
                const kinfer_batch_entry_t *e = &b->entries[i];
                const kinfer_msg_t *msg = &w->slots[i].msg;
                const kinfer_prediction_t *p = &w->preds[i];
                if (p->n_features == 0 && w->no_features_dlq) {
                        /* no feature: the answer would be the bias alone (input.no.features) */
                        w->preds[i].n = 0; /* and no label in the metrics window */
                        dead_letter_keep(w, &w->slots[i].msg, w->slots[i].token, KINFER_DLQ_NO_FEATURES,
                                         "the text has no feature the model knows");
                        continue;
                }
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
                if (res.id_len > w->id_max) { /* cut at a UTF-8 character boundary */
                        size_t n = w->id_max;
                        while (n > 0 && ((unsigned char)res.id[n] & 0xC0) == 0x80)
                                n--;
                        res.id_len = n;
                }
                res.k = p->n < 1 ? 1 : p->n;
                /* every result names the version that produced it (a canary's: the candidate) */
                const int cand = w->slots[i].to_candidate;
                const kinfer_model_t *pm = cand ? cmodel : model;
                res.model_name = cand ? crec->name : rec->name;
                res.model_version = cand ? crec->version : rec->version;
                res.model_sha256 = cand ? crec->sha256 : rec->sha256;
                for (int j = 0; j < res.k && j < KINFER_CODEC_TOPK_MAX; j++) {
                        res.label[j] = p->n > j ? kinfer_model_label(pm, p->label[j]) : "";
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
                size_t key_len = msg->key_len > w->id_max ? w->id_max : msg->key_len;
                kinfer_err_t serr = KINFER_ERR__BAD_FORMAT;
                if ((int64_t)(w->out.len + key_len) > w->msg_budget)
                        snprintf(errstr, sizeof(errstr), "result of %zu bytes over message.max.bytes",
                                 w->out.len);
                else
                        serr = kinfer_producer_send(w->prod, w->out_topic, msg->key, key_len,
                                                 w->out.data, w->out.len, NULL, 0,
                                                 w->slots[i].token, errstr, sizeof(errstr));
                if (serr == KINFER_OK || serr == KINFER_ERR__BAD_FORMAT)
                        w->pd.results_out++; /* on_refused takes a refused one back */
                if (serr == KINFER_ERR__BAD_FORMAT) { /* this result can never go: dead-letter it */
                        kinfer_producer_msg_t m = {
                            .topic = w->out_topic, .token = w->slots[i].token, .key = msg->key,
                            .key_len = key_len, .value = w->out.data, .len = w->out.len,
                            .reason = errstr};
                        kinfer_buf_t keep = w->out; /* send_dead_letter encodes into w->out */
                        w->out = (kinfer_buf_t){0};
                        on_refused(w, &m);
                        kinfer_buf_free(&w->out);
                        w->out = keep;
                } else if (serr) {
                        set_fatal(w, serr, "%s", errstr);
                        break;
                }
        }
        if (mode == KINFER_ROLLOUT_CANARY) {
                /* the window counts the active model's records (its labels); /metrics both */
                for (int32_t j = 0; j < n_a; j++)
                        w->rs.preds[j] = w->preds[w->rs.idx[j]];
                for (int32_t j = 0; j < n_c; j++)
                        w->rs.preds[n_a + j] = w->preds[w->rs.idx[b->n - 1 - j]];
                kinfer_metrics_window_count(&w->win, w->rs.preds, n_a);
                kinfer_prom_observe_batch(w->prom, rec, w->rs.preds, n_a, classify_us);
                if (n_c)
                        kinfer_prom_observe_batch(w->prom, w->ro.rec, w->rs.preds + n_a, n_c,
                                                  cand_us);
        } else {
                kinfer_metrics_window_count(&w->win, w->preds, b->n); /* opened at the last swap */
                kinfer_prom_observe_batch(w->prom, rec, w->preds, b->n, classify_us);
        }
        w->total_records += b->n;
        w->total_batches++;
        kinfer_model_record_release(rec);
        kinfer_model_release(model);
        release_batch(w);
}

/* ---- one consumed message ------------------------------------------------------------------ */

/* A record whose writer schema the Schema Registry cannot give now (unreachable, 5xx) is not
 * taken: the consumer goes back to it and every partition waits until the registry's backoff
 * is over (the loop pauses them); records before it are classified and delivered as usual. */
static int sr_wait(kinfer_worker_t *w, kinfer_msg_t *msg)
{
        char why[512];
        if (!w->sr_wait_until_us) {
                if (!msg->value || (int64_t)msg->len > w->max_value_bytes ||
                    kinfer_codec_prepare(w->codec, msg->value, msg->len, why, sizeof(why)) !=
                        KINFER_ERR__TIMEOUT)
                        return 0;
                int ms = kinfer_codec_retry_ms(w->codec);
                w->sr_wait_until_us = mono_us() + (int64_t)(ms > 50 ? ms : 50) * 1000;
                w->sr_waits++;
                kinfer_log(KINFER_LOG_WARN, "WORKER", "waiting for the schema registry: topic=%s "
                           "partition=%d offset=%" PRId64 ": %s", msg->topic, (int)msg->partition,
                           msg->offset, why);
        }
        kinfer_consumer_rewind(w->cons, msg); /* fetched again when the wait is over */
        return 1;
}

static void handle_msg(kinfer_worker_t *w, kinfer_msg_t *msg, int64_t now_mono)
{
        if (sr_wait(w, msg))
                return;
        w->pd.records_in++;
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
                dead_letter(w, msg, token,
                            err == KINFER_ERR__LIMIT ? KINFER_DLQ_OVER_LIMIT : KINFER_DLQ_UNDECODABLE,
                            detail);
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

/* ---- exactly-once ------------------------------------------------------------------------- */
/* One transaction per window of transaction.interval.ms: the producer begins it with the first
 * result or dead letter sent (producer.c); eos_commit delivers everything sent, takes the
 * offsets whose records are all delivered (the same watermarks as at-least-once) and commits
 * them with the transaction. Records still in the batch are not in it: their offsets are not
 * either. On an abortable error the window is dropped and the consumer rewound to the committed
 * offsets; on a fatal one (fenced by a newer instance of this worker id) the worker stops. */

#define EOS_OP_TIMEOUT_MS 120000 /* one commit or abort while running (brokers down: retried) */

/* Abort the window; @p rewind: the partitions stay ours, so the consumer goes back to their
 * committed offsets (when they are being lost, their next owner starts from there anyway, and
 * the coordinator may not answer while the group moves). */
static void eos_abort_(kinfer_worker_t *w, const char *why, int rewind)
{
        char errstr[512];
        release_batch(w); /* consumed, not produced: consumed again after the rewind */
        for (int32_t i = 0; i < kinfer_offsets_count(w->offs); i++)
                kinfer_offsets_reset(w->offs, i);
        w->txn_aborts++;
        kinfer_log(KINFER_LOG_WARN, "TXN", "aborting the window: %s", why);
        if (kinfer_txn_abort(w->prod, EOS_OP_TIMEOUT_MS, errstr, sizeof(errstr))) {
                set_fatal(w, KINFER_ERR__KAFKA, "exactly-once: %s", errstr);
                return;
        }
        if (rewind &&
            kinfer_consumer_rewind_committed(w->cons, EOS_OP_TIMEOUT_MS, errstr, sizeof(errstr)))
                set_fatal(w, KINFER_ERR__KAFKA, "exactly-once: rewind: %s", errstr);
        w->txn_start_us = mono_us();
}

static void eos_abort(kinfer_worker_t *w, const char *why)
{
        eos_abort_(w, why, 1);
}

/* Commit the window. @returns 0 when committed (or aborted and rewound), -1 when fatal. */
static int eos_commit(kinfer_worker_t *w, int timeout_ms)
{
        char errstr[512];
        w->txn_start_us = mono_us();
        if (w->fatal)
                return -1;
        if (kinfer_txn_failed(w->prod, errstr, sizeof(errstr))) {
                eos_abort(w, errstr);
                return w->fatal ? -1 : 0;
        }
        w->dr_now_us = wall_us();
        if (kinfer_producer_flush(w->prod, timeout_ms, errstr, sizeof(errstr)) ||
            kinfer_txn_failed(w->prod, errstr, sizeof(errstr))) {
                eos_abort(w, errstr);
                return w->fatal ? -1 : 0;
        }
        int32_t it = 0, part, n = 0;
        int64_t next;
        kinfer_txn_offset_t offs[256];
        kinfer_txn_offset_t *o = offs;
        if (kinfer_offsets_count(w->offs) > 256 &&
            !(o = malloc((size_t)kinfer_offsets_count(w->offs) * sizeof(*o)))) {
                set_fatal(w, KINFER_ERR__NOMEM, "exactly-once: out of memory");
                return -1;
        }
        while ((part = kinfer_offsets_next_dirty(w->offs, &it, &next)) >= 0)
                o[n++] = (kinfer_txn_offset_t){kinfer_offsets_topic(w->offs, part),
                                               kinfer_offsets_partition(w->offs, part), next};
        kinfer_err_t err = kinfer_txn_commit(w->prod, w->cons, o, (size_t)n, timeout_ms, errstr,
                                             sizeof(errstr));
        if (o != offs)
                free(o);
        if (err == KINFER_ERR__KAFKA) {
                set_fatal(w, err, "exactly-once: %s", errstr);
                return -1;
        }
        if (err) {
                eos_abort(w, errstr);
                return w->fatal ? -1 : 0;
        }
        if (n)
                w->txn_commits++;
        return 0;
}

/* In the loop: abort at once after a failed delivery, commit when the window is over. */
static void eos_tick(kinfer_worker_t *w, int64_t now)
{
        char errstr[512];
        if (kinfer_txn_failed(w->prod, errstr, sizeof(errstr)))
                eos_abort(w, errstr);
        else if (now - w->txn_start_us >= w->txn_interval_us)
                eos_commit(w, EOS_OP_TIMEOUT_MS);
}

/* Before partitions are given up: commit the open transaction (everything consumed so far,
 * classified and delivered), or abort it when they are lost (another member may own them
 * already: its offsets would be fenced). */
static void eos_revoke(kinfer_worker_t *w, int lost)
{
        if (lost) {
                eos_abort_(w, "partitions lost", 0);
        } else {
                flush_batch(w);
                eos_commit(w, kinfer_worker_shutdown_left_ms(w));
        }
        /* nothing is in flight now: forget the partitions' watermarks */
        for (int32_t i = 0; i < kinfer_offsets_count(w->offs); i++)
                kinfer_offsets_reset(w->offs, i);
        kinfer_log(KINFER_LOG_INFO, "TXN", "partitions %s: window %s, commits=%" PRId64
                   " aborts=%" PRId64, lost ? "lost" : "revoked", lost ? "aborted" : "committed",
                   w->txn_commits, w->txn_aborts);
}

/* ---- rebalance ---------------------------------------------------------------------------- */

static void on_revoke(void *opaque, int lost, const kinfer_topic_partition_t *parts, int n)
{
        kinfer_worker_t *w = opaque;
        char errstr[512];
        if (w->eos) {
                eos_revoke(w, lost);
                return;
        }
        /* Finish everything consumed so far, so that the commit that follows covers it. */
        flush_batch(w);
        w->dr_now_us = wall_us();
        /* bounded by what is left of the shutdown when stopping (consumer close revokes), by
         * shutdown.timeout.ms otherwise */
        int undelivered = 0;
        if (kinfer_producer_flush(w->prod, kinfer_worker_shutdown_left_ms(w), errstr, sizeof(errstr)))
                undelivered = 1;
        kinfer_producer_poll(w->prod, 0);
        store_offsets(w);
        if (undelivered) {
                /* The brokers did not take every result in time (a cluster outage). The stored
                 * offsets stop before the first undelivered record of each partition, so the
                 * partitions' next owner -- this worker again, or another -- consumes those
                 * records again: at-least-once, never a gap. Forget what is in flight for the
                 * revoked partitions (their late delivery reports are stale tokens: a result
                 * delivered late is a duplicate); partitions kept (cooperative protocol) keep
                 * tracking theirs. Stopping the worker instead would only make a restart do
                 * the same, and a whole group would stop on a broker outage. */
                int64_t before = kinfer_offsets_in_flight(w->offs);
                if (n < 0) {
                        for (int32_t i = 0; i < kinfer_offsets_count(w->offs); i++)
                                kinfer_offsets_reset(w->offs, i);
                } else {
                        for (int i = 0; i < n; i++) {
                                int32_t part = kinfer_offsets_part(w->offs, parts[i].topic,
                                                                   parts[i].partition);
                                if (part >= 0)
                                        kinfer_offsets_reset(w->offs, part);
                        }
                }
                kinfer_log(KINFER_LOG_WARN, "WORKER",
                           "partitions %s before %" PRId64 " results were delivered (%s): their "
                           "records will be consumed again by the partitions' next owner",
                           lost ? "lost" : "revoked",
                           before - kinfer_offsets_in_flight(w->offs), errstr);
        }
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
        w->dlq_topic = -1;
        w->deployment = kinfer_conf_get(conf, "deployment");
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
        if (kinfer_drift_conf_init(&w->drift, conf, errstr, errstr_size))
                goto fail;
        w->topk = (int)kinfer_conf_get_int(conf, "output.topk");
        w->no_features_dlq = !strcmp(kinfer_conf_get(conf, "input.no.features"), "dlq");
        w->shutdown_timeout_ms = (int)kinfer_conf_get_int(conf, "shutdown.timeout.ms");
        w->id_max = (size_t)kinfer_conf_get_int(conf, "output.id.max.bytes");
        w->refused_fail = !strcmp(kinfer_conf_get(conf, "delivery.refused.policy"), "fail");
        w->out_json = !strcmp(kinfer_conf_get(conf, "output.format"), "json");
        w->bp_max_bytes = kinfer_conf_get_int(conf, "backpressure.max.bytes");
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
            .max_items = kinfer_conf_get_int(conf, "input.max.items"),
            .max_depth = (int32_t)kinfer_conf_get_int(conf, "input.max.depth"),
            .sr_url = kinfer_conf_get(conf, "schema.registry.url"),
            .sr_user_info = kinfer_conf_get(conf, "schema.registry.basic.auth.user.info"),
            .sr_user_info_file = kinfer_conf_get(conf, "schema.registry.basic.auth.user.info.file"),
            .sr_ca_file = kinfer_conf_get(conf, "schema.registry.ssl.ca.location"),
            .sr_cert_file = kinfer_conf_get(conf, "schema.registry.ssl.certificate.location"),
            .sr_key_file = kinfer_conf_get(conf, "schema.registry.ssl.key.location"),
            .sr_timeout_ms = (int32_t)kinfer_conf_get_int(conf, "schema.registry.timeout.ms"),
            .sr_backoff_max_ms = (int32_t)kinfer_conf_get_int(conf, "schema.registry.backoff.max.ms"),
        };
        char out_subject[300], dlq_subject[300]; /* TopicNameStrategy: <topic>-value */
        snprintf(out_subject, sizeof(out_subject), "%s-value", kinfer_conf_get(conf, "output.topic"));
        snprintf(dlq_subject, sizeof(dlq_subject), "%s-value", kinfer_conf_get(conf, "dlq.topic"));
        cc.out_subject = out_subject;
        cc.dlq_subject = *kinfer_conf_get(conf, "dlq.topic") ? dlq_subject : NULL;
        size_t arena = (size_t)w->max_value_bytes * 2 + 65536;
        if (!(w->codec = kinfer_codec_new(&cc, errstr, errstr_size)) ||
            !(w->offs = kinfer_offsets_new(errstr, errstr_size)) ||
            kinfer_batch_init(&w->batch, max_records, (size_t)kinfer_conf_get_int(conf, "batch.max.bytes"),
                              kinfer_conf_get_int(conf, "batch.max.wait.ms"), arena, errstr, errstr_size) ||
            !(w->pool = kinfer_pool_new((int)kinfer_conf_get_int(conf, "worker.threads"), max_records,
                                        errstr, errstr_size)) ||
            !(w->mailbox = kinfer_model_slot_new(errstr, errstr_size)) ||
            !(w->prom = kinfer_prom_new(w->mailbox, errstr, errstr_size)))
                goto fail;
        kinfer_pool_set_arena_max(w->pool, (size_t)kinfer_conf_get_int(conf, "worker.arena.max.bytes"));
        w->slots = calloc((size_t)max_records, sizeof(*w->slots));
        w->texts = calloc((size_t)max_records, sizeof(*w->texts));
        w->lens = calloc((size_t)max_records, sizeof(*w->lens));
        w->preds = calloc((size_t)max_records, sizeof(*w->preds));
        w->rs.texts = calloc((size_t)max_records, sizeof(*w->rs.texts));
        w->rs.lens = calloc((size_t)max_records, sizeof(*w->rs.lens));
        w->rs.idx = calloc((size_t)max_records, sizeof(*w->rs.idx));
        w->rs.preds = calloc((size_t)max_records, sizeof(*w->rs.preds));
        w->lag_in = calloc(KINFER_PROM_PARTITIONS_MAX, sizeof(*w->lag_in));
        w->lag_out = calloc(KINFER_PROM_PARTITIONS_MAX, sizeof(*w->lag_out));
        if (!w->slots || !w->texts || !w->lens || !w->preds || !w->rs.texts || !w->rs.lens ||
            !w->rs.idx || !w->rs.preds || !w->lag_in || !w->lag_out ||
            kinfer_buf_reserve(&w->out, 4096)) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                goto fail;
        }
        const char *path = kinfer_conf_get(conf, "model.path");
        if (*path) {
                kinfer_model_t *model = kinfer_model_load_file(path, errstr, errstr_size);
                if (!model)
                        goto fail;
                kinfer_model_record_t *rec = kinfer_model_record_new(
                    model, 0, kinfer_conf_get(conf, "model.name"),
                    (int32_t)kinfer_conf_get_int(conf, "model.version"), w->deployment, errstr,
                    errstr_size);
                if (!rec) {
                        kinfer_model_release(model);
                        goto fail;
                }
                set_model(w, model, rec);
                kinfer_log(KINFER_LOG_INFO, "WORKER", "model=%s version=%d sha256=%.12s labels=%d path=%s",
                           rec->name, (int)rec->version, rec->sha256, (int)rec->n_labels, path);
        }
        w->prod = kinfer_producer_new(conf, w->bp_max + 2 * max_records + 1000, on_delivery, w,
                                      errstr, errstr_size);
        if (!w->prod)
                goto fail;
        if ((w->eos = kinfer_txn_enabled(w->prod))) {
                w->txn_interval_us = kinfer_conf_get_int(conf, "transaction.interval.ms") * 1000;
                w->txn_start_us = mono_us();
                if (kinfer_txn_init(w->prod, w->shutdown_timeout_ms > 10000 ? w->shutdown_timeout_ms : 10000,
                                    errstr, errstr_size))
                        goto fail;
                kinfer_log(KINFER_LOG_INFO, "TXN", "exactly-once: transactional producer ready, "
                           "window %lld ms", (long long)(w->txn_interval_us / 1000));
        }
        kinfer_producer_set_refused_cb(w->prod, on_refused);
        w->msg_budget = kinfer_producer_max_message_bytes(w->prod) - MSG_SLACK;
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
        window_start(w);
        return w;
fail:
        kinfer_worker_destroy(w);
        return NULL;
}

kinfer_prom_t *kinfer_worker_prom(kinfer_worker_t *w)
{
        return w->prom;
}

void kinfer_worker_set_metrics_cb(kinfer_worker_t *w, kinfer_worker_metrics_cb_t *cb, void *opaque)
{
        w->metrics_cb = cb;
        w->metrics_opaque = opaque;
}

void kinfer_worker_set_shadow_cb(kinfer_worker_t *w, kinfer_worker_shadow_cb_t *cb, void *opaque)
{
        w->shadow_cb = cb;
        w->shadow_opaque = opaque;
}

void kinfer_worker_set_drained_cb(kinfer_worker_t *w, void (*cb)(void *opaque), void *opaque)
{
        w->drained_cb = cb;
        w->drained_opaque = opaque;
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

/* Start the shutdown clock once (async-signal-safe: a lock-free atomic and clock_gettime). */
static void set_deadline(kinfer_worker_t *w)
{
        int64_t none = 0;
        int waits_ms = w->shutdown_timeout_ms - kinfer_shutdown_reserve_ms(w->shutdown_timeout_ms);
        atomic_compare_exchange_strong(&w->deadline_us, &none,
                                       mono_us() + (int64_t)waits_ms * 1000);
}

int kinfer_shutdown_reserve_ms(int timeout_ms)
{
        int r = timeout_ms / 4;
        return r < 1000 ? (r > 0 ? r : 0) : 1000;
}

void kinfer_worker_stop(kinfer_worker_t *w)
{
        set_deadline(w);
        atomic_store(&w->stop, 1);
}

int kinfer_worker_shutdown_left_ms(kinfer_worker_t *w)
{
        int64_t d = atomic_load(&w->deadline_us);
        if (!d)
                return w->shutdown_timeout_ms;
        int64_t left = (d - mono_us()) / 1000;
        return left > 0 ? (int)left : 0;
}

kinfer_err_t kinfer_worker_run(kinfer_worker_t *w, char *errstr, size_t errstr_size)
{
        char e[512];
        int64_t last_poll_us = 0;
        while (!atomic_load(&w->stop) && !w->fatal) {
                if (w->batch.n == 0)
                        apply_post(w); /* idle: no batch to wait for */
                /* Backpressure, while too much is consumed but not yet delivered: first stop
                 * taking records from the consumer (librdkafka's prefetch queue is bounded by
                 * queued.max.messages.kbytes); if that lasts backpressure.pause.ms, pause the
                 * partitions too, so that the consumer can be polled (rebalances) without
                 * fetching. A pause costs a refetch on resume, a hold costs nothing. */
                int64_t in_flight = kinfer_offsets_in_flight(w->offs);
                int64_t bytes = kinfer_producer_bytes_in_flight(w->prod);
                int64_t now = mono_us();
                if (in_flight >= w->bp_max || bytes >= w->bp_max_bytes) {
                        if (!w->holding) {
                                w->holding = 1;
                                w->hold_since_us = now;
                                w->win.holds++;
                                w->pd.holds++;
                                kinfer_log(KINFER_LOG_DEBUG, "WORKER", "hold in_flight=%" PRId64, in_flight);
                        }
                        if (!w->paused && now - w->hold_since_us >= w->bp_pause_us) {
                                w->paused = 1;
                                w->win.pauses++;
                                w->pd.pauses++;
                                kinfer_log(KINFER_LOG_DEBUG, "WORKER", "pause in_flight=%" PRId64, in_flight);
                        }
                } else if (w->holding && in_flight <= w->bp_resume && bytes <= w->bp_max_bytes / 2) {
                        w->holding = 0;
                        w->paused = 0;
                        kinfer_log(KINFER_LOG_DEBUG, "WORKER", "resume in_flight=%" PRId64, in_flight);
                }
                if (w->sr_wait_until_us && now >= w->sr_wait_until_us)
                        w->sr_wait_until_us = 0; /* the record waiting comes again */
                kinfer_consumer_set_paused(w->cons, w->paused || !w->model || w->sr_wait_until_us);
                /* readiness, for people and scripts (docs/streaming.md's quick start waits for
                 * it): logged when the worker gets both partitions and a model, and when it
                 * loses either */
                int ready = w->model && kinfer_consumer_assigned(w->cons) > 0;
                if (ready != w->ready) {
                        w->ready = ready;
                        atomic_store(&w->ready_pub, ready);
                        kinfer_log(KINFER_LOG_NOTICE, "WORKER", "%s partitions=%d model=%s",
                                   ready ? "ready" : "not ready", kinfer_consumer_assigned(w->cons),
                                   w->model ? kinfer_model_name(w->model) : "none");
                }

                int timeout = kinfer_batch_timeout_ms(&w->batch, now);
                if (timeout < 0 || timeout > IDLE_POLL_MS)
                        timeout = IDLE_POLL_MS;
                if (in_flight > 0 && timeout > 1)
                        timeout = 1; /* delivery reports are waiting: serve them promptly */
                if (w->paused || !w->model || w->sr_wait_until_us)
                        timeout = 0;
                kinfer_msg_t msg;
                kinfer_err_t perr = KINFER_ERR__TIMEOUT; /* no message */
                if (!w->holding || w->paused)
                        perr = kinfer_consumer_poll(w->cons, timeout, &msg, e, sizeof(e));
                if (perr != KINFER_OK && perr != KINFER_ERR__TIMEOUT) {
                        set_fatal(w, perr, "%s", e);
                        break;
                }
                int r = perr == KINFER_OK; /* messages polled */
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
                        kinfer_producer_poll(w->prod,
                                             (w->holding || !w->model || w->sr_wait_until_us) ? 10 : 0);
                        last_poll_us = now;
                        store_offsets(w);
                }
                if (kinfer_producer_fatal(w->prod, e, sizeof(e)))
                        set_fatal(w, KINFER_ERR__KAFKA, "producer: %s", e);
                if (w->eos && !w->fatal)
                        eos_tick(w, now);
                if (w->metrics_interval_us > 0 && now - w->win.start_mono_us >= w->metrics_interval_us)
                        window_emit(w);
                if (now - w->prom_pub_us >= PROM_PUBLISH_US)
                        prom_publish(w, now);
        }

        /* ---- shutdown: finish the batch in flight, deliver, commit, leave the group, all
         * within shutdown.timeout.ms from the stop (kinfer_worker_shutdown_left_ms) ---- */
        set_deadline(w);
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
        if (kinfer_producer_flush(w->prod, kinfer_worker_shutdown_left_ms(w), e, sizeof(e))) {
                kinfer_log(KINFER_LOG_ERR, "WORKER", "shutdown: %s", e);
                if (!ret) {
                        kinfer_seterr(errstr, errstr_size, KINFER_ERR__TIMEOUT, "%s", e);
                        ret = KINFER_ERR__TIMEOUT;
                }
        }
        kinfer_producer_poll(w->prod, 0);
        if (w->eos && !w->fatal)
                eos_commit(w, kinfer_worker_shutdown_left_ms(w)); /* the last window */
        else if (w->eos && kinfer_txn_open(w->prod))
                kinfer_txn_abort(w->prod, kinfer_worker_shutdown_left_ms(w), e, sizeof(e));
        store_offsets(w);
        if (!w->fatal &&
            kinfer_consumer_commit(w->cons, kinfer_worker_shutdown_left_ms(w), e, sizeof(e)))
                kinfer_log(KINFER_LOG_WARN, "WORKER", "final commit: %s", e);
        /* every record consumed is delivered (or dead-lettered, or skipped by policy) and its
         * offset committed or left to be redone: what remains is the group leave */
        if (!ret && !w->fatal && w->drained_cb)
                w->drained_cb(w->drained_opaque);
        if (kinfer_consumer_close(w->cons, kinfer_worker_shutdown_left_ms(w), e, sizeof(e)))
                kinfer_log(KINFER_LOG_WARN, "WORKER", "%s", e);
        if (w->metrics_interval_us > 0 && (w->win.records || w->win.dlq))
                window_emit(w);
        w->prom_lag_us = 0; /* partitions are gone: the lag series too */
        prom_publish(w, mono_us());
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
        kinfer_pool_destroy(w->pool);
        free(w->slots);
        free(w->texts);
        free(w->lens);
        free(w->preds);
        free(w->rs.texts);
        free(w->rs.lens);
        free(w->rs.idx);
        free(w->rs.preds);
        kinfer_model_rollout_release(&w->ro);
        kinfer_buf_free(&w->out);
        kinfer_metrics_window_term(&w->win);
        kinfer_model_record_release(w->cur);
        kinfer_model_release(w->model);
        kinfer_prom_destroy(w->prom);
        free(w->lag_in);
        free(w->lag_out);
        kinfer_model_slot_destroy(w->mailbox);
        kinfer_conf_destroy(w->conf);
        free(w);
}
