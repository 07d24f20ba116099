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
#include "kinfer/worker/worker.h"

#define MW_TICK_MS 200 /* longest wait on the socket: bounds stop latency */
#define MW_BACKOFF_MIN_MS 100
#define MW_FAST_TICK_MS 10 /* ... while a post waits to be applied (to report it promptly) */
#define MW_FAST_FOR_MS 5000 /* ... for at most this long after the post */
#define MW_CACHE 3 /* verified models kept: the active one, the one before, a candidate */

/* A shadow window waiting for kinfer.shadow_windows (copied: the worker's is borrowed). */
typedef struct mw_shadow_s {
        char active_name[129], candidate_name[129], candidate_sha256[65];
        int32_t active_version, candidate_version;
        int64_t start_us, end_us, records, agree, other;
        double mean_score_diff, active_us, candidate_us;
        char *confusion; /* malloc'd JSON */
} mw_shadow_t;

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
        char posted_cand[160]; /* the candidate posted with it (mw_candidate_key), "" none */
        char failed_cand[160]; /* the last refused candidate, and the activation id then */
        int64_t failed_cand_activation;
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
        mw_shadow_t shadow[KINFER_WATCH_SHADOW_RING]; /* ring of shadow windows */
        size_t shadow_head, shadow_count;
        uint64_t shadow_taken; /* bumped when the producer drops the oldest (see flush) */
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
static kinfer_err_t mw_post(kinfer_model_watch_t *w, mw_loaded_t *loaded,
                            const kinfer_model_rollout_t *candidate, int swap, double t_notify,
                            char *errstr, size_t errstr_size)
{
        uint64_t seq;
        /* The stats lock is held across the post: once the worker can take the model, a
         * reader of the stats (after it saw the model applied) must see the swap counted. */
        pthread_mutex_lock(&w->lock);
        kinfer_err_t err = kinfer_model_slot_post_rollout(w->slot, loaded->model, loaded->id,
                                                          loaded->name, loaded->version,
                                                          w->deployment, candidate, &seq, errstr,
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

/* A verified model for registry row @p m: from the cache, or fetched (into @p m), verified and
 * warmed up. *@p cached says which. @returns KINFER_OK, KINFER_ERR__DB (the fetch failed on a
 * lost connection), or another error with @p errstr (the model is refused). */
static kinfer_err_t mw_obtain(kinfer_model_watch_t *w, kinfer_registry_model_t *m,
                              mw_loaded_t *loaded, int *cached, double *t_load, char *errstr,
                              size_t errstr_size)
{
        *cached = mw_cache_get(w, m->sha256, loaded);
        *t_load = mw_now_ms();
        if (*cached) {
                pthread_mutex_lock(&w->lock);
                w->stats.cache_hits++;
                pthread_mutex_unlock(&w->lock);
                /* verified before; the registry's name/version may be new (same bytes) */
                loaded->id = m->id;
                snprintf(loaded->name, sizeof(loaded->name), "%s", m->name);
                loaded->version = m->version;
                mw_cache_put(w, loaded); /* the most recent again */
                return KINFER_OK;
        }
        pthread_mutex_lock(&w->lock);
        w->stats.fetches++;
        pthread_mutex_unlock(&w->lock);
        kinfer_err_t err = kinfer_registry_model_bytes(w->reg, m->id, m, errstr, errstr_size);
        if (err) {
                kinfer_log(KINFER_LOG_WARN, "REGISTRY", "deployment=%s model=%s:%d fetch failed: %s",
                           w->deployment, m->name, (int)m->version, errstr);
                return kinfer_registry_connected(w->reg) ? KINFER_ERR__STATE : KINFER_ERR__DB;
        }
        *t_load = mw_now_ms();
        err = mw_load(w, m, loaded, errstr, errstr_size);
        if (err == KINFER_OK)
                mw_cache_put(w, loaded);
        return err;
}

/* The deployment's candidate as a key ("" when none): "canary:BP:SHA256" or "shadow:0:SHA256". */
static void mw_candidate_key(char *key, size_t size, int have, int shadow, int32_t bp,
                             const char *sha256)
{
        if (!have)
                key[0] = '\0';
        else
                snprintf(key, size, "%s:%d:%s", shadow ? "shadow" : "canary", shadow ? 0 : (int)bp,
                         sha256);
}

/*
 * Look up the deployment's active model and candidate (two cheap queries); only when they are
 * not the ones posted last, and not refused at the same activation, load them, verify them,
 * warm them up and post them to the worker together (the candidate beside the active model,
 * migration 0005). A candidate that cannot be loaded is refused alone: the active model is
 * posted without it. A notification that changed nothing (anyone may NOTIFY the channel)
 * costs the two queries. @p t0: when the notification was received (ms).
 * @returns KINFER_ERR__DB when the connection failed (the caller reconnects).
 */
static kinfer_err_t mw_check_active(kinfer_model_watch_t *w, double t0)
{
        char errstr[512];
        kinfer_registry_model_t m, c;
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
        int shadow = 0;
        int32_t bp = 0;
        err = kinfer_registry_deployment_candidate(w->reg, w->deployment, &c, &shadow, &bp, errstr,
                                                   sizeof(errstr));
        if (err && err != KINFER_ERR__NOENT) {
                kinfer_registry_model_term(&m);
                return kinfer_registry_connected(w->reg) ? KINFER_OK : KINFER_ERR__DB;
        }
        /* a candidate equal to the active model (a read between two steps) is none */
        int have_cand = err == KINFER_OK && strcmp(c.sha256, m.sha256) != 0;
        char cand_key[sizeof(w->posted_cand)];
        mw_candidate_key(cand_key, sizeof(cand_key), have_cand, shadow, bp, c.sha256);
        if (have_cand && !strcmp(cand_key, w->failed_cand) &&
            m.activation_id == w->failed_cand_activation) {
                have_cand = 0; /* refused at this very step: not again */
                cand_key[0] = '\0';
        }
        int same = !strcmp(m.sha256, w->posted_sha256) && !strcmp(cand_key, w->posted_cand);
        /* refused before, and no activation since: anyone may NOTIFY the channel, so a
         * notification alone is no reason to fetch and verify it again */
        int failed_before =
            !strcmp(m.sha256, w->failed_sha256) && m.activation_id == w->failed_activation;
        if (same || failed_before) {
                kinfer_registry_model_term(&m);
                kinfer_registry_model_term(&c);
                return KINFER_OK;
        }
        double t_fetch = mw_now_ms(), t_load = t_fetch;
        mw_loaded_t loaded = {0}, cand = {0};
        int cached = 0, cand_cached = 0;
        err = mw_obtain(w, &m, &loaded, &cached, &t_load, errstr, sizeof(errstr));
        if (err == KINFER_ERR__DB || err == KINFER_ERR__STATE) {
                kinfer_registry_model_term(&m);
                kinfer_registry_model_term(&c);
                return err == KINFER_ERR__DB ? KINFER_ERR__DB : KINFER_OK;
        }
        if (err == KINFER_OK && have_cand) {
                char cerr[512];
                double t_cl;
                kinfer_err_t cerr_code =
                    mw_obtain(w, &c, &cand, &cand_cached, &t_cl, cerr, sizeof(cerr));
                if (cerr_code == KINFER_ERR__DB) {
                        kinfer_model_release(loaded.model);
                        kinfer_registry_model_term(&m);
                        kinfer_registry_model_term(&c);
                        return KINFER_ERR__DB;
                }
                if (cerr_code) {
                        if (cerr_code != KINFER_ERR__STATE) { /* refused: not again at this step */
                                snprintf(w->failed_cand, sizeof(w->failed_cand), "%s", cand_key);
                                w->failed_cand_activation = m.activation_id;
                                pthread_mutex_lock(&w->lock);
                                w->stats.load_failures++;
                                pthread_mutex_unlock(&w->lock);
                                kinfer_log(KINFER_LOG_ERR, "REGISTRY",
                                           "deployment=%s candidate refused, the active model "
                                           "serves alone: %s",
                                           w->deployment, cerr);
                                mw_heartbeat(w, "running", cerr);
                        }
                        have_cand = 0;
                        cand_key[0] = '\0';
                        if (!strcmp(m.sha256, w->posted_sha256) && !w->posted_cand[0]) {
                                kinfer_model_release(loaded.model); /* nothing changes */
                                kinfer_registry_model_term(&m);
                                kinfer_registry_model_term(&c);
                                return KINFER_OK;
                        }
                }
        }
        double t_ready = mw_now_ms();
        if (err == KINFER_OK) {
                char why[256];
                kinfer_model_rollout_t ro = {0};
                if (have_cand)
                        ro = (kinfer_model_rollout_t){.mode = shadow ? KINFER_ROLLOUT_SHADOW
                                                                     : KINFER_ROLLOUT_CANARY,
                                                      .basis_points = shadow ? 0 : bp,
                                                      .model = cand.model,
                                                      .id = cand.id,
                                                      .name = cand.name,
                                                      .version = cand.version};
                int swap = strcmp(m.sha256, w->posted_sha256) != 0;
                cand.model = NULL; /* its reference goes with the post */
                if ((err = mw_post(w, &loaded, &ro, swap, t0, why, sizeof(why))))
                        snprintf(errstr, sizeof(errstr), "model %.128s:%d refused: %s", m.name,
                                 (int)m.version, why);
                else
                        snprintf(w->posted_cand, sizeof(w->posted_cand), "%s", cand_key);
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
                char cdesc[256] = "";
                if (have_cand)
                        snprintf(cdesc, sizeof(cdesc), " candidate=%s:%d mode=%s share_bp=%d%s",
                                 c.name, (int)c.version, shadow ? "shadow" : "canary",
                                 shadow ? 0 : (int)bp, cand_cached ? " (cached)" : "");
                kinfer_log(KINFER_LOG_INFO, "REGISTRY",
                           "deployment=%s posted model=%s:%d sha256=%.12s%s%s fetch_ms=%.1f "
                           "load_ms=%.1f post_ms=%.1f notify_to_post_ms=%.1f",
                           w->deployment, m.name, (int)m.version, m.sha256,
                           cached ? " (verified before, cached)" : "", cdesc, t_load - t_fetch,
                           t_ready - t_load, t_post - t_ready, t_post - t0);
        }
        kinfer_registry_model_term(&m);
        kinfer_registry_model_term(&c);
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

void kinfer_model_watch_shadow(kinfer_model_watch_t *w, const kinfer_shadow_window_t *win)
{
        mw_shadow_t s = {.active_version = win->active->version,
                         .candidate_version = win->candidate->version,
                         .start_us = win->start_us,
                         .end_us = win->end_us,
                         .records = win->records,
                         .agree = win->agree,
                         .other = win->confusion_other,
                         .mean_score_diff = win->mean_score_diff,
                         .active_us = win->active_classify_us,
                         .candidate_us = win->candidate_classify_us,
                         .confusion = strdup(win->confusion_json ? win->confusion_json : "[]")};
        if (!s.confusion)
                return;
        snprintf(s.active_name, sizeof(s.active_name), "%s", win->active->name);
        snprintf(s.candidate_name, sizeof(s.candidate_name), "%s", win->candidate->name);
        snprintf(s.candidate_sha256, sizeof(s.candidate_sha256), "%s", win->candidate->sha256);
        pthread_mutex_lock(&w->lock);
        if (w->shadow_count == KINFER_WATCH_SHADOW_RING) { /* drop the oldest */
                free(w->shadow[w->shadow_head].confusion);
                w->shadow_head = (w->shadow_head + 1) % KINFER_WATCH_SHADOW_RING;
                w->shadow_count--;
                w->shadow_taken++;
        }
        w->shadow[(w->shadow_head + w->shadow_count) % KINFER_WATCH_SHADOW_RING] = s;
        w->shadow_count++;
        pthread_mutex_unlock(&w->lock);
}

/* Write the buffered shadow windows until none is left or a write fails (kept for after a
 * reconnect when the connection is gone; dropped when the server refuses one).
 * @returns KINFER_ERR__DB when the connection is gone. */
static kinfer_err_t mw_flush_shadow(kinfer_model_watch_t *w)
{
        for (;;) {
                pthread_mutex_lock(&w->lock);
                if (w->shadow_count == 0) {
                        pthread_mutex_unlock(&w->lock);
                        return KINFER_OK;
                }
                mw_shadow_t s = w->shadow[w->shadow_head];
                uint64_t taken = w->shadow_taken;
                s.confusion = strdup(s.confusion);
                pthread_mutex_unlock(&w->lock);
                if (!s.confusion)
                        return KINFER_OK;
                kinfer_registry_shadow_t row = {.worker_id = w->worker_id,
                                                .deployment = w->deployment,
                                                .active_name = s.active_name,
                                                .active_version = s.active_version,
                                                .candidate_name = s.candidate_name,
                                                .candidate_version = s.candidate_version,
                                                .candidate_sha256 = s.candidate_sha256,
                                                .window_start_us = s.start_us,
                                                .window_end_us = s.end_us,
                                                .records = s.records,
                                                .agree = s.agree,
                                                .confusion_other = s.other,
                                                .confusion_json = s.confusion,
                                                .mean_score_diff = s.mean_score_diff,
                                                .active_classify_us = s.active_us,
                                                .candidate_classify_us = s.candidate_us};
                char errstr[256];
                kinfer_err_t err = kinfer_registry_shadow_insert(w->reg, &row, errstr, sizeof(errstr));
                free(s.confusion);
                if (err && !kinfer_registry_connected(w->reg))
                        return KINFER_ERR__DB; /* kept: written after the reconnect */
                if (err)
                        kinfer_log(KINFER_LOG_WARN, "REGISTRY", "shadow window dropped: %s", errstr);
                pthread_mutex_lock(&w->lock);
                if (w->shadow_taken == taken && w->shadow_count > 0) { /* still the head */
                        free(w->shadow[w->shadow_head].confusion);
                        w->shadow_head = (w->shadow_head + 1) % KINFER_WATCH_SHADOW_RING;
                        w->shadow_count--;
                }
                pthread_mutex_unlock(&w->lock);
                if (err)
                        return KINFER_OK;
        }
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
        /* a rollout step between kinfer_model_watch_new() and the start of this thread */
        mw_check_active(w, mw_now_ms());

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

                if (mw_flush_metrics(w) == KINFER_ERR__DB || mw_flush_shadow(w) == KINFER_ERR__DB)
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
        for (size_t i = 0; i < w->shadow_count; i++)
                free(w->shadow[(w->shadow_head + i) % KINFER_WATCH_SHADOW_RING].confusion);
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
                err = mw_post(w, &initial, NULL, 0, 0, errstr, errstr_size);
        }
        if (err) {
                mw_free(w);
                return NULL;
        }
        /* a candidate (canary, shadow): posted with the active model before the first batch */
        mw_check_active(w, mw_now_ms());
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
