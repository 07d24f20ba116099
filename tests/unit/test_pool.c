/* SPDX-License-Identifier: Apache-2.0 */
/* test_pool.c -- the classification pool splits every batch size over every thread count
 * correctly (issue 16): worker.threads 1..16 (its documented range) x every batch size
 * 1..1024, plus large sizes up to batch.max.records' maximum (65536), each at a moving offset
 * into the texts. Every record's prediction must equal the single-thread runtime's answer for
 * the same text, every output slot must be written, and the slots around the batch must stay
 * untouched (ASan catches the rest). A tiny linear model and one-word texts keep the 16k
 * calls fast. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinfer/runtime/runtime.h"
#include "model_util.h"
#include "test.h"
#include "worker/pool.h"

#define THREADS_MAX 16     /* worker.threads' documented maximum */
#define EXHAUSTIVE_MAX 1024
#define LARGE_MAX 65536    /* batch.max.records' documented maximum */
#define N_TEXTS (LARGE_MAX + 1024)
#define GUARD 8

static char words[N_TEXTS][16];
static const char *texts[N_TEXTS];
static size_t lens[N_TEXTS];
static kinfer_prediction_t ref[N_TEXTS];
static kinfer_prediction_t outbuf[GUARD + LARGE_MAX + GUARD];

static kinfer_model_t *model;

/* KINFER_TEST_QUICK=1 (the ThreadSanitizer stage of tests/run.sh, where every pool call costs
 * 10-50x more): every thread count still, but batch sizes 1..64, then every 61st, then the
 * bound; large sizes on 1, 2, 7 and 16 threads. The full sweep runs in the other builds. */
static int quick;
static int32_t next_size(int32_t n)
{
        return !quick || n < 64 ? n + 1 : n + 61 < EXHAUSTIVE_MAX ? n + 61 : n < EXHAUSTIVE_MAX ? EXHAUSTIVE_MAX : n + 1;
}

static int same(const kinfer_prediction_t *a, const kinfer_prediction_t *b)
{
        if (a->n != b->n || a->n_features != b->n_features)
                return 0;
        for (int32_t j = 0; j < a->n; j++)
                if (a->label[j] != b->label[j] || a->prob[j] != b->prob[j])
                        return 0;
        return 1;
}

/* classify texts[off .. off+n) through the pool and check every slot; returns failures */
static int check_batch(kinfer_pool_t *pool, int threads, int32_t off, int32_t n, int32_t k)
{
        char errstr[256] = "";
        memset(outbuf, 0xa5, sizeof(kinfer_prediction_t) * (size_t)(GUARD + n + GUARD));
        kinfer_prediction_t *out = outbuf + GUARD;
        for (int32_t i = 0; i < n; i++)
                out[i].n = -1;
        kinfer_err_t err = kinfer_pool_classify(pool, model, texts + off, lens + off, n, k, out,
                                                errstr, sizeof(errstr));
        if (err) {
                TEST_ASSERT(!err, "threads %d, batch %d: %s", threads, n, errstr);
                return 1;
        }
        kinfer_prediction_t guard;
        memset(&guard, 0xa5, sizeof(guard));
        for (int g = 0; g < GUARD; g++)
                if (memcmp(&outbuf[g], &guard, sizeof(guard)) ||
                    memcmp(&out[n + g], &guard, sizeof(guard))) {
                        TEST_ASSERT(0, "threads %d, batch %d: a slot outside the batch was written", threads, n);
                        return 1;
                }
        for (int32_t i = 0; i < n; i++)
                if (!same(&out[i], &ref[off + i])) {
                        TEST_ASSERT(0, "threads %d, batch %d, record %d: label %d (n %d) differs from the single-thread %d",
                                    threads, n, i, out[i].label[0], out[i].n, ref[off + i].label[0]);
                        return 1;
                }
        return 0;
}

static void test_exhaustive(void)
{
        int32_t k = 3;
        for (int threads = 1; threads <= THREADS_MAX; threads++) {
                char errstr[256];
                kinfer_pool_t *pool = kinfer_pool_new(threads, EXHAUSTIVE_MAX, errstr, sizeof(errstr));
                TEST_ASSERT(pool, "pool of %d: %s", threads, errstr);
                if (!pool)
                        continue;
                int fails = 0;
                for (int32_t n = 1; n <= EXHAUSTIVE_MAX && fails < 3; n = next_size(n))
                        fails += check_batch(pool, threads, (n * 37) % 1024, n, k);
                /* one over the pool's bound is an error, not an overflow */
                char e2[256] = "";
                TEST_ASSERT(kinfer_pool_classify(pool, model, texts, lens, EXHAUSTIVE_MAX + 1, k,
                                                 outbuf, e2, sizeof(e2)) == KINFER_ERR__INVALID_ARG,
                            "threads %d: batch over the bound accepted", threads);
                TEST_ASSERT(kinfer_pool_classify(pool, model, texts, lens, -10, k, outbuf, e2,
                                                 sizeof(e2)) == KINFER_ERR__INVALID_ARG,
                            "threads %d: negative batch accepted", threads);
                kinfer_pool_destroy(pool);
        }
}

static void test_large(void)
{
        static const int32_t sizes[] = {1025, 2047, 4096, 4097, 10007, 65535, 65536};
        for (int threads = 1; threads <= THREADS_MAX; threads++) {
                if (quick && threads != 1 && threads != 2 && threads != 7 && threads != THREADS_MAX)
                        continue;
                char errstr[256];
                kinfer_pool_t *pool = kinfer_pool_new(threads, LARGE_MAX, errstr, sizeof(errstr));
                TEST_ASSERT(pool, "pool of %d: %s", threads, errstr);
                if (!pool)
                        continue;
                for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
                        check_batch(pool, threads, (int32_t)(s * 101), sizes[s], 3);
                kinfer_pool_destroy(pool);
        }
}

/* top-k over its documented range 1..16 (output.topk), on a pool split over 16 threads */
static void test_topk_range(void)
{
        char errstr[256];
        kinfer_runtime_t *rt = kinfer_runtime_new(256, errstr, sizeof(errstr));
        kinfer_pool_t *pool = kinfer_pool_new(THREADS_MAX, 256, errstr, sizeof(errstr));
        TEST_ASSERT(rt && pool, "%s", errstr);
        if (!rt || !pool)
                goto out;
        for (int32_t k = 1; k <= KINFER_TOPK_MAX; k++) {
                kinfer_err_t e = kinfer_runtime_classify(rt, model, texts, lens, 256, k, ref, errstr, sizeof(errstr));
                TEST_ASSERT(!e, "k=%d: %s", k, errstr);
                for (int32_t i = 0; i < 256; i++) {
                        TEST_ASSERT(ref[i].n == (k < 16 ? k : 16), "k=%d: n=%d", k, ref[i].n);
                        for (int32_t j = 1; j < ref[i].n; j++)
                                TEST_ASSERT(ref[i].prob[j] <= ref[i].prob[j - 1], "k=%d: not sorted", k);
                }
                check_batch(pool, THREADS_MAX, 0, 256, k);
        }
        TEST_ASSERT(kinfer_pool_classify(pool, model, texts, lens, 100, 0, outbuf, errstr, sizeof(errstr)) ==
                        KINFER_ERR__INVALID_ARG, "k=0 accepted");
        TEST_ASSERT(kinfer_pool_classify(pool, model, texts, lens, 100, 17, outbuf, errstr, sizeof(errstr)) ==
                        KINFER_ERR__INVALID_ARG, "k=17 accepted");
out:
        kinfer_pool_destroy(pool);
        kinfer_runtime_destroy(rt);
}

int main(void)
{
        const char *q = getenv("KINFER_TEST_QUICK");
        quick = q && *q && strcmp(q, "0") != 0;
        size_t len;
        uint8_t *b = tm_build(7, 16, 0, 0, 1, &len);
        char errstr[256];
        model = kinfer_model_load_mem(b, len, errstr, sizeof(errstr));
        free(b);
        if (!model) {
                fprintf(stderr, "model: %s\n", errstr);
                return 1;
        }
        uint64_t s = 1;
        for (int i = 0; i < N_TEXTS; i++) {
                s = s * 6364136223846793005ULL + 1442695040888963407ULL;
                /* every 97th text has no word at all: no feature, the bias alone */
                if (i % 97 == 5)
                        snprintf(words[i], sizeof(words[i]), " .,;");
                else
                        snprintf(words[i], sizeof(words[i]), "w%u", (unsigned)(s >> 40) % 5000);
                texts[i] = words[i];
                lens[i] = strlen(words[i]);
        }
        /* the single-thread answers, record by record */
        kinfer_runtime_t *rt = kinfer_runtime_new(LARGE_MAX, errstr, sizeof(errstr));
        if (!rt || kinfer_runtime_classify(rt, model, texts, lens, LARGE_MAX, 3, ref, errstr, sizeof(errstr)) ||
            kinfer_runtime_classify(rt, model, texts + LARGE_MAX, lens + LARGE_MAX, N_TEXTS - LARGE_MAX, 3,
                                    ref + LARGE_MAX, errstr, sizeof(errstr))) {
                fprintf(stderr, "reference: %s\n", errstr);
                return 1;
        }
        kinfer_prediction_t one;
        for (int i = 0; i < 50; i++) {
                kinfer_runtime_classify(rt, model, texts + i, lens + i, 1, 3, &one, errstr, sizeof(errstr));
                TEST_ASSERT(same(&one, &ref[i]), "record %d alone differs from its answer in a batch", i);
        }
        TEST_ASSERT(ref[5].n_features == 0 && ref[6].n_features > 0, "n_features %d %d", ref[5].n_features,
                    ref[6].n_features);
        kinfer_runtime_destroy(rt);
        TEST_RUN(test_exhaustive);
        TEST_RUN(test_large);
        TEST_RUN(test_topk_range);
        kinfer_model_release(model);
        return TEST_DONE();
}
