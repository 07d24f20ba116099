/* SPDX-License-Identifier: Apache-2.0 */
/* pool.c -- the classification pool: helper threads that each classify one part of a batch
 * on their own runtime while the calling thread classifies the first part. */
#include "worker/pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

struct helper {
        pthread_t th;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        kinfer_runtime_t *rt;
        /* the job, set by the calling thread under mu */
        const kinfer_model_t *model;
        const char *const *texts;
        const size_t *lens;
        int32_t n, k;
        kinfer_prediction_t *out;
        kinfer_err_t err;
        char errstr[256];
        int has_job, quit;
        int inited, started; /* mu/cv initialised; thread running */
};

struct kinfer_pool_s {
        kinfer_runtime_t *rt; /* the calling thread's */
        int32_t max_batch;
        struct helper *helpers;
        int n_helpers;
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

kinfer_pool_t *kinfer_pool_new(int n_threads, int32_t max_batch, char *errstr, size_t errstr_size)
{
        kinfer_pool_t *pool = calloc(1, sizeof(*pool));
        if (!pool) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        pool->max_batch = max_batch;
        if (!(pool->rt = kinfer_runtime_new(max_batch, errstr, errstr_size)))
                goto fail;
        int n = n_threads > 1 ? n_threads - 1 : 0;
        if (n > 0 && !(pool->helpers = calloc((size_t)n, sizeof(*pool->helpers)))) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                goto fail;
        }
        pool->n_helpers = n;
        for (int i = 0; i < n; i++) {
                struct helper *h = &pool->helpers[i];
                if (pthread_mutex_init(&h->mu, NULL)) {
                        kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE,
                                      "cannot create a mutex");
                        goto fail;
                }
                if (pthread_cond_init(&h->cv, NULL)) {
                        pthread_mutex_destroy(&h->mu);
                        kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE,
                                      "cannot create a condition variable");
                        goto fail;
                }
                h->inited = 1;
                if (!(h->rt = kinfer_runtime_new(max_batch, errstr, errstr_size)))
                        goto fail;
                int rc = pthread_create(&h->th, NULL, helper_main, h);
                if (rc) {
                        kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE,
                                      "cannot start classification thread %d of %d: error %d",
                                      i + 2, n_threads, rc);
                        goto fail;
                }
                h->started = 1;
        }
        return pool;
fail:
        kinfer_pool_destroy(pool);
        return NULL;
}

kinfer_err_t kinfer_pool_classify(kinfer_pool_t *pool, const kinfer_model_t *model,
                                  const char *const *texts, const size_t *lens, int32_t n,
                                  int32_t k, kinfer_prediction_t *out, char *errstr,
                                  size_t errstr_size)
{
        /* the whole batch against the pool's bound (each part alone would fit its runtime) */
        if (n < 0 || n > pool->max_batch)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "batch of %d records, the pool holds at most %d", n,
                                     pool->max_batch);
        if (k < 1 || k > KINFER_TOPK_MAX)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "k must be in [1, %d] (got %d)", KINFER_TOPK_MAX, k);
        if (pool->n_helpers == 0 || n < KINFER_POOL_SPLIT_MIN)
                return kinfer_runtime_classify(pool->rt, model, texts, lens, n, k, out, errstr,
                                               errstr_size);
        /* n / parts for the calling thread, the rest spread evenly over the helpers (every
         * part >= 4 records: n >= 64, at most 16 threads) */
        int32_t nh = pool->n_helpers, first = n / (nh + 1), rest = n - first;
        int32_t per = rest / nh, extra = rest % nh, from = first;
        for (int32_t i = 0; i < nh; i++) {
                int32_t cnt = per + (i < extra);
                struct helper *h = &pool->helpers[i];
                pthread_mutex_lock(&h->mu);
                h->model = model;
                h->texts = texts + from;
                h->lens = lens + from;
                h->n = cnt;
                h->k = k;
                h->out = out + from;
                h->has_job = 1;
                pthread_cond_broadcast(&h->cv);
                pthread_mutex_unlock(&h->mu);
                from += cnt;
        }
        kinfer_err_t err = kinfer_runtime_classify(pool->rt, model, texts, lens, first, k, out,
                                                   errstr, errstr_size);
        for (int32_t i = 0; i < nh; i++) {
                struct helper *h = &pool->helpers[i];
                pthread_mutex_lock(&h->mu);
                while (h->has_job)
                        pthread_cond_wait(&h->cv, &h->mu);
                if (h->err && !err)
                        err = kinfer_seterr(errstr, errstr_size, h->err, "%s", h->errstr);
                pthread_mutex_unlock(&h->mu);
        }
        return err;
}

void kinfer_pool_set_arena_max(kinfer_pool_t *pool, size_t bytes)
{
        /* helpers read their runtime only while they hold a job, which the caller's thread
         * hands out under h->mu: no job runs now */
        kinfer_runtime_set_arena_max(pool->rt, bytes);
        for (int i = 0; i < pool->n_helpers; i++) {
                pthread_mutex_lock(&pool->helpers[i].mu);
                kinfer_runtime_set_arena_max(pool->helpers[i].rt, bytes);
                pthread_mutex_unlock(&pool->helpers[i].mu);
        }
}

void kinfer_pool_share_features(kinfer_pool_t *pool, int mode)
{
        /* as above: no job runs now; the split of a batch over the threads depends on n
         * alone, so each runtime sees the same records in the recording and the reusing call */
        kinfer_runtime_share_features(pool->rt, mode);
        for (int i = 0; i < pool->n_helpers; i++) {
                pthread_mutex_lock(&pool->helpers[i].mu);
                kinfer_runtime_share_features(pool->helpers[i].rt, mode);
                pthread_mutex_unlock(&pool->helpers[i].mu);
        }
}

uint64_t kinfer_pool_shared(kinfer_pool_t *pool)
{
        uint64_t n = kinfer_runtime_shared(pool->rt);
        for (int i = 0; i < pool->n_helpers; i++) {
                pthread_mutex_lock(&pool->helpers[i].mu);
                n += kinfer_runtime_shared(pool->helpers[i].rt);
                pthread_mutex_unlock(&pool->helpers[i].mu);
        }
        return n;
}

void kinfer_pool_destroy(kinfer_pool_t *pool)
{
        if (!pool)
                return;
        for (int i = 0; i < pool->n_helpers; i++) {
                struct helper *h = &pool->helpers[i];
                if (h->started) {
                        pthread_mutex_lock(&h->mu);
                        h->quit = 1;
                        pthread_cond_broadcast(&h->cv);
                        pthread_mutex_unlock(&h->mu);
                        pthread_join(h->th, NULL);
                }
                kinfer_runtime_destroy(h->rt);
                if (h->inited) {
                        pthread_mutex_destroy(&h->mu);
                        pthread_cond_destroy(&h->cv);
                }
        }
        free(pool->helpers);
        kinfer_runtime_destroy(pool->rt);
        free(pool);
}
