/* SPDX-License-Identifier: Apache-2.0 */
/* model_watch.c -- the worker's registry thread: initial load of the deployment's active
 * model, LISTEN kinfer_deployment, load + verify + warm-up of a newly activated model and
 * its post into the worker's mailbox, worker heartbeats (with what the worker applied), and
 * the bounded metrics ring written with reconnect + exponential backoff. Every PostgreSQL
 * call runs on this thread (or in kinfer_model_watch_new before the worker starts), never on
 * the data path. */
#include "kinfer/worker/model_watch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kinfer/core/log.h"
#include "kinfer/registry/registry.h"
#include "kinfer/runtime/runtime.h"

#define MW_TICK_MS 200 /* longest wait on the socket: bounds stop latency */
#define MW_BACKOFF_MIN_MS 100
#define MW_FAST_TICK_MS 10 /* ... while a post waits to be applied (to report it promptly) */
#define MW_FAST_FOR_MS 5000 /* ... for at most this long after the post */
#define MW_CACHE 2 /* verified models kept: the active one and the one before */

/* A loaded model and its registry identity. */
typedef struct mw_loaded_s {
        kinfer_model_t *model; /* one reference */
        int64_t id;
        char name[129];
        int32_t version;
        char sha256[65];
} mw_loaded_t;

struct kinfer_model_watch_s {
        char *conninfo;
        char deployment[129];
        char worker_id[192];
        char host[128];
        int heartbeat_ms, backoff_max_ms, warmup;
        kinfer_registry_t *reg; /* used by the watch thread only, once started */
        kinfer_runtime_t *rt;   /* warm-up runtime */
        kinfer_model_slot_t *slot; /* the worker's mailbox and its record of what it applied */

        pthread_t thread;
        int started;

        /* Watch thread only (or kinfer_model_watch_new before it starts): */
        /* Models verified and warmed up before (one reference each, by sha256; models are
         * immutable): a rollback to one of them needs no fetch and no verification.
         * cache[0] is the most recent. */
        mw_loaded_t cache[MW_CACHE];
        /* The post made last: what this thread asked for, not what the worker serves */
        char posted_sha256[65];
        uint64_t posted_seq;
        double posted_notify_ms; /* when the notification behind it came; 0: none */
        double posted_at_ms;
        char failed_sha256[65];     /* last refused artifact (retried only after a new
                                       activation: a NOTIFY alone changes nothing) */
        int64_t failed_activation;  /* the deployment's last activation id at that refusal */
        uint64_t error_seq;         /* posted_seq when the last load failure was recorded */
        uint64_t seen_generation;   /* the worker's last applied record already reported */
        uint64_t seen_post_seq;     /* ... and the post it came in */
        int applied_heartbeat_due;  /* ... and not yet written to kinfer.workers */

        int lock_inited;
        pthread_mutex_t lock; /* protects everything below */
        pthread_cond_t done_cond; /* signalled when the thread is about to return */
        int cond_inited;
        int stop;
        int done;
        double stop_deadline_ms; /* monotonic; set with stop */
        kinfer_metrics_window_t *ring; /* closed windows (copies) */
        size_t cap, head, count;
        size_t max_bytes, bytes; /* the ring's byte bound, and what its windows hold */
        kinfer_model_watch_stats_t stats;
};

static double mw_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- loading -------------------------------------------------------------------------------- */

/* Verify the registry's bytes and warm the model up: the one smoke classification a model
 * gets before it serves. Fills @p loaded on success. */
static kinfer_err_t mw_load(kinfer_model_watch_t *w, const kinfer_registry_model_t *m,
                            mw_loaded_t *loaded, char *errstr, size_t errstr_size)
{
        char why[384];
        kinfer_model_t *model = kinfer_model_load_mem(m->bytes, m->len, why, sizeof(why));
        if (!model)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                     "model %s:%d refused: %s", m->name, (int)m->version, why);
        if (strcmp(kinfer_model_sha256_hex(model), m->sha256)) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                              "model %s:%d refused: artifact sha256 %.12s... is not the "
                              "registered %.12s...",
                              m->name, (int)m->version, kinfer_model_sha256_hex(model), m->sha256);
                kinfer_model_release(model);
                return KINFER_ERR__BAD_FORMAT;
        }
        if (w->warmup && w->rt) {
                static const char *texts[] = {"warm up the new model before the swap",
                                              "kinfer model registry"};
                size_t lens[2] = {strlen(texts[0]), strlen(texts[1])};
                kinfer_prediction_t out[2];
                if (kinfer_runtime_classify(w->rt, model, texts, lens, 2, 1, out, why,
                                            sizeof(why)) != KINFER_OK) {
                        kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                      "model %s:%d refused: warm-up classification failed: %s",
                                      m->name, (int)m->version, why);
                        kinfer_model_release(model);
                        return KINFER_ERR__BAD_FORMAT;
                }
        }
        loaded->model = model;
        loaded->id = m->id;
        snprintf(loaded->name, sizeof(loaded->name), "%s", m->name);
        loaded->version = m->version;
        memcpy(loaded->sha256, m->sha256, sizeof(loaded->sha256));
        return KINFER_OK;
}

/* "name:version" of the model the worker applied last, for log lines. */
static const char *mw_current_str(kinfer_model_watch_t *w, char *buf, size_t size)
{
        kinfer_model_record_t *rec = kinfer_model_slot_applied(w->slot);
        if (rec)
                snprintf(buf, size, "%s:%d", rec->name, (int)rec->version);
        else
                snprintf(buf, size, "none");
        kinfer_model_record_release(rec);
        return buf;
}

/* ---- cache of verified models (watch thread) ------------------------------------------------ */

/* Remember @p loaded (takes one more reference), most recent first. */
static void mw_cache_put(kinfer_model_watch_t *w, const mw_loaded_t *loaded)
{
        for (int i = 0; i < MW_CACHE; i++)
                if (w->cache[i].model && !strcmp(w->cache[i].sha256, loaded->sha256)) {
                        mw_loaded_t hit = w->cache[i];
                        memmove(&w->cache[1], &w->cache[0], (size_t)i * sizeof(w->cache[0]));
                        w->cache[0] = hit;
                        return;
                }
        kinfer_model_release(w->cache[MW_CACHE - 1].model);
        memmove(&w->cache[1], &w->cache[0], (MW_CACHE - 1) * sizeof(w->cache[0]));
        w->cache[0] = *loaded;
        w->cache[0].model = kinfer_model_keep(loaded->model);
}

/* A cached model with this sha256, with one new reference for the caller, or 0. */
static int mw_cache_get(kinfer_model_watch_t *w, const char *sha256, mw_loaded_t *out)
{
        for (int i = 0; i < MW_CACHE; i++)
                if (w->cache[i].model && !strcmp(w->cache[i].sha256, sha256)) {
                        *out = w->cache[i];
                        out->model = kinfer_model_keep(w->cache[i].model);
                        return 1;
                }
        return 0;
}

/* Upsert the worker row with the model the worker applied last; @p last_error NULL keeps the
 * recorded one, "" clears it. */
static kinfer_err_t mw_heartbeat(kinfer_model_watch_t *w, const char *status,
                                 const char *last_error)
{
        char errstr[256];
        kinfer_model_record_t *rec = kinfer_model_slot_applied(w->slot);
        kinfer_registry_worker_t row = {.worker_id = w->worker_id,
                                        .host = w->host,
                                        .pid = (int32_t)getpid(),
                                        .deployment = w->deployment,
                                        .model_id = rec ? rec->id : 0,
                                        .model_name = rec ? rec->name : NULL,
                                        .model_version = rec ? rec->version : 0,
                                        .model_sha256 = rec ? rec->sha256 : NULL,
                                        .status = status,
                                        .last_error = last_error};
        kinfer_err_t err = kinfer_registry_worker_upsert(w->reg, &row, errstr, sizeof(errstr));
        kinfer_model_record_release(rec);
        if (err)
                kinfer_log(KINFER_LOG_DEBUG, "REGISTRY", "heartbeat failed: %s", errstr);
        return err;
}

/* Post @p loaded (its reference goes with it) into the worker's mailbox; @p swap counts it as
 * a swap (every post but the first model's). */
static kinfer_err_t mw_post(kinfer_model_watch_t *w, mw_loaded_t *loaded, int swap,
                            double t_notify, char *errstr, size_t errstr_size)
{
        uint64_t seq;
        /* The stats lock is held across the post: once the worker can take the model, a
         * reader of the stats (after it saw the model applied) must see the swap counted. */
        pthread_mutex_lock(&w->lock);
        kinfer_err_t err = kinfer_model_slot_post(w->slot, loaded->model, loaded->id, loaded->name,
                                                  loaded->version, w->deployment, &seq, errstr,
                                                  errstr_size);
        if (!err && swap) {
                w->stats.swaps++;
                w->stats.last_swap_ms = mw_now_ms() - t_notify;
        }
        pthread_mutex_unlock(&w->lock);
        loaded->model = NULL;
        if (err)
                return err;
        memcpy(w->posted_sha256, loaded->sha256, sizeof(w->posted_sha256));
        w->posted_seq = seq;
        w->posted_notify_ms = t_notify;
        w->posted_at_ms = mw_now_ms();
        w->failed_sha256[0] = '\0';
        return KINFER_OK;
}

/* Report a model the worker applied since the last look (its record in the slot): the stats,
 * the log line, and a heartbeat that clears last_error (written by the loop). */
static void mw_note_applied(kinfer_model_watch_t *w)
{
        kinfer_model_record_t *rec = kinfer_model_slot_applied(w->slot);
        if (!rec || rec->generation == w->seen_generation) {
                kinfer_model_record_release(rec);
                return;
        }
        w->seen_generation = rec->generation;
        w->seen_post_seq = rec->post_seq;
        w->applied_heartbeat_due = 1;
        double ms = 0;
        if (rec->post_seq && rec->post_seq == w->posted_seq && w->posted_notify_ms > 0)
                ms = (double)rec->applied_mono_us / 1e3 - w->posted_notify_ms;
        pthread_mutex_lock(&w->lock);
        w->stats.version = rec->version;
        if (ms > 0)
                w->stats.last_applied_ms = ms;
        pthread_mutex_unlock(&w->lock);
        if (ms > 0)
                kinfer_log(KINFER_LOG_INFO, "REGISTRY",
                           "deployment=%s model=%s:%d applied notify_to_applied_ms=%.1f",
                           w->deployment, rec->name, (int)rec->version, ms);
        else
                kinfer_log(KINFER_LOG_INFO, "REGISTRY", "deployment=%s model=%s:%d applied",
                           w->deployment, rec->name, (int)rec->version);
        kinfer_model_record_release(rec);
}

/* A post waits to be applied (recently enough to be worth a quick look). */
static int mw_waiting_for_apply(kinfer_model_watch_t *w)
{
        if (!w->posted_seq || mw_now_ms() - w->posted_at_ms > MW_FAST_FOR_MS)
                return 0;
        kinfer_model_record_t *rec = kinfer_model_slot_applied(w->slot);
        int waiting = !rec || rec->post_seq < w->posted_seq;
        kinfer_model_record_release(rec);
        return waiting;
}

/*
 * Look up the deployment's active model (one cheap query); only when it is not the one posted
 * last, and not one refused at the same activation, load it, verify it, warm it up and post
 * it to the worker. A notification that changed nothing (anyone may NOTIFY the channel) costs
 * that one query. @p t0: when the notification was received (ms).
 * @returns KINFER_ERR__DB when the connection failed (the caller reconnects).
 */
static kinfer_err_t mw_check_active(kinfer_model_watch_t *w, double t0)
{
        char errstr[512];
        kinfer_registry_model_t m;
        kinfer_err_t err =
            kinfer_registry_deployment_active(w->reg, w->deployment, &m, errstr, sizeof(errstr));
        if (err == KINFER_ERR__NOENT) {
                char cur[160];
                kinfer_log(KINFER_LOG_WARN, "REGISTRY",
                           "deployment=%s has no active model; keeping %s", w->deployment,
                           mw_current_str(w, cur, sizeof(cur)));
                return KINFER_OK;
        }
        if (err)
                return kinfer_registry_connected(w->reg) ? KINFER_OK : KINFER_ERR__DB;
        int same = !strcmp(m.sha256, w->posted_sha256);
        /* refused before, and no activation since: anyone may NOTIFY the channel, so a
         * notification alone is no reason to fetch and verify it again */
        int failed_before =
            !strcmp(m.sha256, w->failed_sha256) && m.activation_id == w->failed_activation;
        if (same || failed_before) {
                kinfer_registry_model_term(&m);
                return KINFER_OK;
        }
        double t_fetch = mw_now_ms(), t_load = t_fetch;
        mw_loaded_t loaded = {0};
        int cached = mw_cache_get(w, m.sha256, &loaded);
        if (cached) {
                pthread_mutex_lock(&w->lock);
                w->stats.cache_hits++;
                pthread_mutex_unlock(&w->lock);
                /* verified before; the registry's name/version may be new (same bytes) */
                loaded.id = m.id;
                snprintf(loaded.name, sizeof(loaded.name), "%s", m.name);
                loaded.version = m.version;
                err = KINFER_OK;
        } else {
                pthread_mutex_lock(&w->lock);
                w->stats.fetches++;
                pthread_mutex_unlock(&w->lock);
                err = kinfer_registry_model_bytes(w->reg, m.id, &m, errstr, sizeof(errstr));
                if (err) {
                        kinfer_log(KINFER_LOG_WARN, "REGISTRY",
                                   "deployment=%s model=%s:%d fetch failed: %s", w->deployment,
                                   m.name, (int)m.version, errstr);
                        kinfer_registry_model_term(&m);
                        return kinfer_registry_connected(w->reg) ? KINFER_OK : KINFER_ERR__DB;
                }
                t_load = mw_now_ms();
                err = mw_load(w, &m, &loaded, errstr, sizeof(errstr));
        }
        double t_ready = mw_now_ms();
        if (err == KINFER_OK) {
                mw_cache_put(w, &loaded);
                char why[256];
                if ((err = mw_post(w, &loaded, 1, t0, why, sizeof(why))))
                        snprintf(errstr, sizeof(errstr), "model %.128s:%d refused: %s", m.name,
                                 (int)m.version, why);
        }
        double t_post = mw_now_ms();
        if (err) {
                char cur[160];
                kinfer_log(KINFER_LOG_ERR, "REGISTRY", "deployment=%s keeping model=%s: %s",
                           w->deployment, mw_current_str(w, cur, sizeof(cur)), errstr);
                memcpy(w->failed_sha256, m.sha256, sizeof(w->failed_sha256));
                w->failed_activation = m.activation_id;
                w->error_seq = w->posted_seq;
                pthread_mutex_lock(&w->lock);
                w->stats.load_failures++;
                pthread_mutex_unlock(&w->lock);
                mw_heartbeat(w, "running", errstr);
        } else {
                kinfer_log(KINFER_LOG_INFO, "REGISTRY",
                           "deployment=%s posted model=%s:%d sha256=%.12s%s fetch_ms=%.1f "
                           "load_ms=%.1f post_ms=%.1f notify_to_post_ms=%.1f",
                           w->deployment, m.name, (int)m.version, m.sha256,
                           cached ? " (verified before, cached)" : "", t_load - t_fetch,
                           t_ready - t_load, t_post - t_ready, t_post - t0);
        }
        kinfer_registry_model_term(&m);
        return KINFER_OK;
}

/* Load, verify and warm up the deployment's previous model into the cache (no swap), so that
 * a rollback right after start is as quick as any later one. Best effort. */
static void mw_prefetch_previous(kinfer_model_watch_t *w)
{
        char errstr[512];
        kinfer_registry_model_t m;
        if (kinfer_registry_deployment_previous(w->reg, w->deployment, &m, errstr,
                                                sizeof(errstr)) != KINFER_OK)
                return; /* none, or the connection failed: the loop deals with that */
        mw_loaded_t loaded = {0};
        if (mw_cache_get(w, m.sha256, &loaded)) {
                kinfer_model_release(loaded.model);
                kinfer_registry_model_term(&m);
                return;
        }
        double t0 = mw_now_ms();
        kinfer_err_t err = kinfer_registry_model_bytes(w->reg, m.id, &m, errstr, sizeof(errstr));
        if (err == KINFER_OK)
                err = mw_load(w, &m, &loaded, errstr, sizeof(errstr));
        if (err == KINFER_OK) {
                /* behind the active model: the active one stays the most recent */
                mw_cache_put(w, &loaded);
                mw_loaded_t active = w->cache[1];
                w->cache[1] = w->cache[0];
                w->cache[0] = active;
                kinfer_model_release(loaded.model);
                pthread_mutex_lock(&w->lock);
                w->stats.prefetched++;
                pthread_mutex_unlock(&w->lock);
                kinfer_log(KINFER_LOG_INFO, "REGISTRY",
                           "deployment=%s previous model=%s:%d verified and kept for a rollback "
                           "(%.0f ms)",
                           w->deployment, m.name, (int)m.version, mw_now_ms() - t0);
        } else {
                kinfer_log(KINFER_LOG_WARN, "REGISTRY",
                           "deployment=%s previous model=%s:%d not prefetched: %s", w->deployment,
                           m.name, (int)m.version, errstr);
        }
        kinfer_registry_model_term(&m);
}

/* ---- metrics ring --------------------------------------------------------------------------- */

void kinfer_model_watch_metrics(kinfer_model_watch_t *w, const kinfer_metrics_window_t *win)
{
        kinfer_metrics_window_t copy;
        if (kinfer_metrics_window_copy(&copy, win)) {
                pthread_mutex_lock(&w->lock);
                w->stats.metrics_dropped++;
                pthread_mutex_unlock(&w->lock);
                kinfer_log(KINFER_LOG_WARN, "REGISTRY", "metrics window dropped: out of memory");
                return;
        }
        size_t bytes = kinfer_metrics_window_bytes(&copy);
        pthread_mutex_lock(&w->lock);
        /* full, in windows or in bytes: drop the oldest (the newest is always kept) */
        while (w->count > 0 && (w->count == w->cap || w->bytes + bytes > w->max_bytes)) {
                kinfer_metrics_window_t old = w->ring[w->head];
                w->head = (w->head + 1) % w->cap;
                w->count--;
                w->bytes -= kinfer_metrics_window_bytes(&old);
                w->stats.metrics_dropped++;
                if (w->stats.metrics_dropped == 1 || w->stats.metrics_dropped % 100 == 0)
                        kinfer_log(KINFER_LOG_WARN, "REGISTRY",
                                   "metrics ring full (%zu windows, %zu of %zu bytes): dropped "
                                   "%lld so far", w->count + 1, w->bytes + bytes, w->max_bytes,
                                   (long long)w->stats.metrics_dropped);
                /* freed under the lock: its label counts and a reference to a model record,
                 * whose release is an atomic decrement and at most one free() */
                kinfer_metrics_window_term(&old);
        }
        w->ring[(w->head + w->count) % w->cap] = copy;
        w->count++;
        w->bytes += bytes;
        w->stats.metrics_buffered = (int64_t)w->count;
        w->stats.metrics_buffered_bytes = (int64_t)w->bytes;
        pthread_mutex_unlock(&w->lock);
}

/* Write buffered windows until the ring is empty or a write fails.
 * @returns KINFER_ERR__DB when the connection is gone. */
static kinfer_err_t mw_flush_metrics(kinfer_model_watch_t *w)
{
        kinfer_buf_t json = {0};
        kinfer_err_t ret = KINFER_OK;
        for (;;) {
                kinfer_metrics_window_t win;
                pthread_mutex_lock(&w->lock);
                if (w->count == 0) {
                        pthread_mutex_unlock(&w->lock);
                        break;
                }
                win = w->ring[w->head]; /* take it over */
                w->head = (w->head + 1) % w->cap;
                w->count--;
                w->bytes -= kinfer_metrics_window_bytes(&win);
                pthread_mutex_unlock(&w->lock);

                char errstr[256];
                kinfer_registry_metrics_t row;
                kinfer_err_t err = kinfer_metrics_window_row(&win, w->worker_id, w->deployment,
                                                             &row, &json);
                if (err)
                        kinfer_seterr(errstr, sizeof(errstr), err, "out of memory");
                else
                        err = kinfer_registry_metrics_insert(w->reg, &row, errstr,
                                                             sizeof(errstr));
                int requeue = 0;
                pthread_mutex_lock(&w->lock);
                if (err == KINFER_OK) {
                        w->stats.metrics_written++;
                } else if (!kinfer_registry_connected(w->reg) && w->count < w->cap &&
                           w->bytes + kinfer_metrics_window_bytes(&win) <= w->max_bytes) {
                        /* put it back in front: it goes out after the reconnect */
                        w->head = (w->head + w->cap - 1) % w->cap;
                        w->ring[w->head] = win;
                        w->count++;
                        w->bytes += kinfer_metrics_window_bytes(&win);
                        requeue = 1;
                } else {
                        /* refused by the server (not an outage), or no room: drop it */
                        kinfer_log(KINFER_LOG_WARN, "REGISTRY", "metrics window dropped: %s",
                                   errstr);
                        w->stats.metrics_dropped++;
                }
                w->stats.metrics_buffered = (int64_t)w->count;
                w->stats.metrics_buffered_bytes = (int64_t)w->bytes;
                pthread_mutex_unlock(&w->lock);
                if (!requeue)
                        kinfer_metrics_window_term(&win);
                if (err) {
                        ret = kinfer_registry_connected(w->reg) ? KINFER_OK : KINFER_ERR__DB;
                        break;
                }
        }
        kinfer_buf_free(&json);
        return ret;
}

/* ---- the thread ----------------------------------------------------------------------------- */

static void *mw_main(void *arg)
{
        kinfer_model_watch_t *w = arg;
        double next_heartbeat = mw_now_ms() + w->heartbeat_ms;
        double next_attempt = 0;
        int backoff = MW_BACKOFF_MIN_MS, connected = 1;
        double stop_deadline = 0;

        mw_prefetch_previous(w);

        for (;;) {
                pthread_mutex_lock(&w->lock);
                int stop = w->stop;
                int pending = w->count > 0;
                if (stop)
                        stop_deadline = w->stop_deadline_ms;
                pthread_mutex_unlock(&w->lock);
                if (stop && (!pending || mw_now_ms() >= stop_deadline))
                        break;
                mw_note_applied(w);

                if (!connected) {
                        double now = mw_now_ms();
                        if (stop) /* no reconnect while stopping: the deadline is near */
                                break;
                        if (now < next_attempt) {
                                struct timespec ts = {0, 20 * 1000000L};
                                nanosleep(&ts, NULL);
                                continue;
                        }
                        char errstr[512];
                        if (kinfer_registry_reconnect(w->reg, errstr, sizeof(errstr)) !=
                            KINFER_OK) {
                                kinfer_log(KINFER_LOG_WARN, "REGISTRY",
                                           "PostgreSQL unreachable, retry in %d ms: %s", backoff,
                                           errstr);
                                next_attempt = mw_now_ms() + backoff;
                                backoff = backoff * 2 > w->backoff_max_ms ? w->backoff_max_ms
                                                                          : backoff * 2;
                                continue;
                        }
                        kinfer_log(KINFER_LOG_NOTICE, "REGISTRY", "reconnected to PostgreSQL");
                        connected = 1;
                        backoff = MW_BACKOFF_MIN_MS;
                        pthread_mutex_lock(&w->lock);
                        w->stats.reconnects++;
                        w->stats.connected = 1;
                        pthread_mutex_unlock(&w->lock);
                        /* an activation may have happened while we were away */
                        if (!stop && mw_check_active(w, mw_now_ms()) == KINFER_ERR__DB)
                                goto lost;
                        if (mw_heartbeat(w, "running", NULL) != KINFER_OK &&
                            !kinfer_registry_connected(w->reg))
                                goto lost;
                }

                if (mw_flush_metrics(w) == KINFER_ERR__DB)
                        goto lost;
                if (w->applied_heartbeat_due) {
                        /* the worker applied a model: say so, and clear an error older than
                         * its post */
                        uint64_t seq = w->seen_post_seq;
                        if (mw_heartbeat(w, "running", seq > w->error_seq ? "" : NULL) ==
                            KINFER_OK)
                                w->applied_heartbeat_due = 0;
                        else if (!kinfer_registry_connected(w->reg))
                                goto lost;
                }
                if (mw_now_ms() >= next_heartbeat) {
                        next_heartbeat = mw_now_ms() + w->heartbeat_ms;
                        if (mw_heartbeat(w, stop ? "stopping" : "running", NULL) != KINFER_OK &&
                            !kinfer_registry_connected(w->reg))
                                goto lost;
                }
                if (stop) /* flushing only */
                        continue;

                char channel[64], payload[256], errstr[256];
                int tick = mw_waiting_for_apply(w) ? MW_FAST_TICK_MS : MW_TICK_MS;
                kinfer_err_t err =
                    kinfer_registry_wait_notify(w->reg, tick, channel, sizeof(channel), payload,
                                                sizeof(payload), errstr, sizeof(errstr));
                if (err == KINFER_OK) {
                        double t0 = mw_now_ms();
                        if (!strcmp(channel, KINFER_REGISTRY_CHANNEL) &&
                            !strcmp(payload, w->deployment)) {
                                kinfer_err_t cerr = mw_check_active(w, t0);
                                pthread_mutex_lock(&w->lock);
                                w->stats.notifications++;
                                pthread_mutex_unlock(&w->lock);
                                if (cerr == KINFER_ERR__DB)
                                        goto lost;
                        }
                        continue;
                }
                if (err != KINFER_ERR__DB)
                        continue;
        lost:
                if (connected) {
                        char cur[160];
                        kinfer_log(KINFER_LOG_WARN, "REGISTRY",
                                   "lost the PostgreSQL connection; serving goes on with model=%s",
                                   mw_current_str(w, cur, sizeof(cur)));
                }
                connected = 0;
                next_attempt = mw_now_ms() + backoff;
                pthread_mutex_lock(&w->lock);
                w->stats.connected = 0;
                pthread_mutex_unlock(&w->lock);
        }
        if (connected)
                mw_heartbeat(w, "stopped", NULL);
        pthread_mutex_lock(&w->lock);
        size_t unsent = w->count;
        pthread_mutex_unlock(&w->lock);
        if (unsent)
                kinfer_log(KINFER_LOG_WARN, "REGISTRY",
                           "stopping with %zu metrics windows unsent (PostgreSQL unreachable)",
                           unsent);
        pthread_mutex_lock(&w->lock);
        w->done = 1;
        pthread_cond_signal(&w->done_cond);
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static void mw_free(kinfer_model_watch_t *w)
{
        if (!w)
                return;
        for (size_t i = 0; w->ring && i < w->count; i++)
                kinfer_metrics_window_term(&w->ring[(w->head + i) % w->cap]);
        for (int i = 0; i < MW_CACHE; i++)
                kinfer_model_release(w->cache[i].model);
        free(w->ring);
        kinfer_registry_destroy(w->reg);
        kinfer_runtime_destroy(w->rt);
        if (w->cond_inited)
                pthread_cond_destroy(&w->done_cond);
        if (w->lock_inited)
                pthread_mutex_destroy(&w->lock);
        free(w->conninfo);
        free(w);
}

kinfer_model_watch_t *kinfer_model_watch_new(const kinfer_model_watch_conf_t *conf,
                                             kinfer_model_slot_t *slot, char *errstr,
                                             size_t errstr_size)
{
        if (!conf->deployment || !*conf->deployment) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                              "no deployment configured");
                return NULL;
        }
        kinfer_model_watch_t *w = calloc(1, sizeof(*w));
        if (!w) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        if (pthread_mutex_init(&w->lock, NULL)) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE, "cannot create a mutex");
                mw_free(w);
                return NULL;
        }
        w->lock_inited = 1;
        pthread_condattr_t ca;
        if (pthread_condattr_init(&ca) || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) ||
            pthread_cond_init(&w->done_cond, &ca)) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE,
                              "cannot create a condition variable");
                mw_free(w);
                return NULL;
        }
        pthread_condattr_destroy(&ca);
        w->cond_inited = 1;
        w->slot = slot;
        if (conf->conninfo && !(w->conninfo = strdup(conf->conninfo))) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                mw_free(w);
                return NULL;
        }
        snprintf(w->deployment, sizeof(w->deployment), "%s", conf->deployment);
        if (gethostname(w->host, sizeof(w->host)) != 0)
                snprintf(w->host, sizeof(w->host), "unknown");
        w->host[sizeof(w->host) - 1] = '\0';
        if (conf->worker_id && *conf->worker_id)
                snprintf(w->worker_id, sizeof(w->worker_id), "%s", conf->worker_id);
        else
                snprintf(w->worker_id, sizeof(w->worker_id), "%s:%d:%lld", w->host, (int)getpid(),
                         (long long)time(NULL));
        w->heartbeat_ms = conf->heartbeat_ms > 0 ? conf->heartbeat_ms : 5000;
        w->backoff_max_ms = conf->backoff_max_ms > 0 ? conf->backoff_max_ms : 10000;
        w->warmup = conf->warmup >= 0;
        w->cap = conf->metrics_capacity ? conf->metrics_capacity : 4096;
        w->max_bytes = conf->metrics_max_bytes ? conf->metrics_max_bytes
                                               : KINFER_MODEL_WATCH_METRICS_BYTES;
        w->ring = calloc(w->cap, sizeof(*w->ring));
        if (!w->ring) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                mw_free(w);
                return NULL;
        }
        if (w->warmup && !(w->rt = kinfer_runtime_new(4, errstr, errstr_size))) {
                mw_free(w);
                return NULL;
        }
        if (!(w->reg = kinfer_registry_new(w->conninfo, errstr, errstr_size))) {
                mw_free(w);
                return NULL;
        }
        /* LISTEN before reading the active model: no activation can fall in between. */
        char why[512];
        kinfer_registry_model_t m;
        if (kinfer_registry_listen(w->reg, KINFER_REGISTRY_CHANNEL, errstr, errstr_size)) {
                mw_free(w);
                return NULL;
        }
        kinfer_err_t err =
            kinfer_registry_deployment_active(w->reg, w->deployment, &m, why, sizeof(why));
        if (err) {
                kinfer_seterr(errstr, errstr_size, err, "%s%s", why,
                              err == KINFER_ERR__NOENT
                                  ? " (activate one: kinfer activate DEPLOYMENT "
                                    "NAME VERSION)"
                                  : "");
                mw_free(w);
                return NULL;
        }
        mw_loaded_t initial = {0};
        err = kinfer_registry_model_bytes(w->reg, m.id, &m, errstr, errstr_size);
        if (err == KINFER_OK)
                err = mw_load(w, &m, &initial, errstr, errstr_size);
        kinfer_registry_model_term(&m);
        if (err == KINFER_OK) {
                mw_cache_put(w, &initial);
                err = mw_post(w, &initial, 0, 0, errstr, errstr_size);
        }
        if (err) {
                mw_free(w);
                return NULL;
        }
        w->stats.connected = 1;
        mw_heartbeat(w, "starting", "");
        kinfer_log(KINFER_LOG_INFO, "REGISTRY", "deployment=%s worker=%s model=%s:%d sha256=%.12s",
                   w->deployment, w->worker_id, initial.name, (int)initial.version,
                   initial.sha256);
        return w;
}

kinfer_err_t kinfer_model_watch_start(kinfer_model_watch_t *w, char *errstr, size_t errstr_size)
{
        if (w->started)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE, "already started");
        int rc = pthread_create(&w->thread, NULL, mw_main, w);
        if (rc != 0)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE,
                                     "cannot start the registry thread: %s", strerror(rc));
        w->started = 1;
        return KINFER_OK;
}

const char *kinfer_model_watch_worker_id(const kinfer_model_watch_t *w)
{
        return w->worker_id;
}

void kinfer_model_watch_stats(kinfer_model_watch_t *w, kinfer_model_watch_stats_t *stats)
{
        pthread_mutex_lock(&w->lock);
        *stats = w->stats;
        stats->metrics_buffered = (int64_t)w->count;
        stats->metrics_buffered_bytes = (int64_t)w->bytes;
        pthread_mutex_unlock(&w->lock);
}

void kinfer_model_watch_destroy(kinfer_model_watch_t *w, int budget_ms)
{
        if (!w)
                return;
        if (budget_ms < 0)
                budget_ms = 0;
        double deadline = mw_now_ms() + budget_ms;
        if (w->started) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_sec += budget_ms / 1000;
                ts.tv_nsec += (long)(budget_ms % 1000) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                pthread_mutex_lock(&w->lock);
                w->stop = 1;
                w->stop_deadline_ms = deadline;
                while (!w->done)
                        if (pthread_cond_timedwait(&w->done_cond, &w->lock, &ts) != 0)
                                break; /* the deadline passed */
                int done = w->done;
                pthread_mutex_unlock(&w->lock);
                if (!done) {
                        /* a call waits on PostgreSQL (frozen, partitioned): make it and every
                         * later one give up at once; the thread then returns promptly */
                        kinfer_log(KINFER_LOG_WARN, "REGISTRY",
                                   "PostgreSQL did not answer within the shutdown budget "
                                   "(%d ms): giving up on it",
                                   budget_ms);
                        kinfer_registry_interrupt(w->reg);
                }
                pthread_join(w->thread, NULL);
        } else if (kinfer_registry_connected(w->reg)) {
                /* no thread to wait for: bound our own calls the same way */
                if (budget_ms == 0)
                        kinfer_registry_interrupt(w->reg);
                mw_flush_metrics(w);
                mw_heartbeat(w, "stopped", NULL);
        }
        mw_free(w);
}
