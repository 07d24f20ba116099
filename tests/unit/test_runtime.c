/* SPDX-License-Identifier: Apache-2.0 */
/* test_runtime.c -- the BLAS path against the scalar reference, batch independence, top-k,
 * errors, one model shared by threads, and featurization shared by two models (a shadow). */
#include <math.h>
#include <pthread.h>

#include "kinfer/runtime/runtime.h"
#include "kinfer/train/train.h"
#include "model/model_int.h"
#include "model_util.h"
#include "test.h"

static kinfer_dataset_t *ds;

static kinfer_model_t *build(uint64_t seed, int32_t L, int32_t D, int32_t H, int with_map)
{
        size_t len;
        uint8_t *b = tm_build(seed, L, D, H, with_map, &len);
        char errstr[256];
        kinfer_model_t *m = kinfer_model_load_mem(b, len, errstr, sizeof(errstr));
        TEST_ASSERT(m != NULL, "%s", errstr);
        free(b);
        return m;
}

static void compare_blas_ref(int32_t D, int32_t H, int with_map)
{
        kinfer_model_t *m = build(11, 7, D, H, with_map);
        if (!m)
                return;
        const int32_t n = 200, L = 7;
        kinfer_runtime_t *rt = kinfer_runtime_new(n, NULL, 0), *ref = kinfer_runtime_new(n, NULL, 0);
        kinfer_runtime_set_reference(ref, 1);
        float *a = calloc((size_t)n * L, sizeof(float)), *b = calloc((size_t)n * L, sizeof(float));
        TEST_ASSERT(kinfer_runtime_logits(rt, m, ds->texts, ds->lens, n, a, NULL, 0) == KINFER_OK, "blas");
        TEST_ASSERT(kinfer_runtime_logits(ref, m, ds->texts, ds->lens, n, b, NULL, 0) == KINFER_OK, "ref");
        double worst = 0, mag = 0;
        for (int32_t i = 0; i < n * L; i++) {
                double d = fabs(a[i] - b[i]) / fmax(1.0, fabs(b[i]));
                worst = fmax(worst, d);
                mag = fmax(mag, fabs(b[i]));
        }
        TEST_SAY("D=%d H=%d map=%d: max relative difference %.3g (logits up to %.2f)", D, H, with_map, worst, mag);
        TEST_ASSERT(worst <= 1e-5, "BLAS logits differ from the reference by %.3g", worst);
        TEST_ASSERT(mag > 0.01, "logits are not all zero");
        free(a);
        free(b);
        kinfer_runtime_destroy(rt);
        kinfer_runtime_destroy(ref);
        kinfer_model_release(m);
}

static void test_blas_vs_reference(void)
{
        compare_blas_ref(32, 16, 1);
        compare_blas_ref(48, 0, 0);
        compare_blas_ref(0, 0, 1); /* linear: no dense layer, both paths are the bag */
}

static void test_batch_independence(void)
{
        kinfer_model_t *m = build(5, 6, 24, 12, 1);
        if (!m)
                return;
        const int32_t n = 64, L = 6;
        kinfer_runtime_t *rt = kinfer_runtime_new(n, NULL, 0);
        float *all = calloc((size_t)n * L, sizeof(float)), one[16];
        kinfer_runtime_logits(rt, m, ds->texts, ds->lens, n, all, NULL, 0);
        double worst = 0;
        for (int32_t i = 0; i < n; i++) {
                kinfer_runtime_logits(rt, m, ds->texts + i, ds->lens + i, 1, one, NULL, 0);
                for (int32_t j = 0; j < L; j++)
                        worst = fmax(worst, fabs(one[j] - all[i * L + j]) / fmax(1.0, fabs(one[j])));
        }
        TEST_ASSERT(worst <= 1e-5, "a record's logits depend on its batch: %.3g", worst);
        free(all);
        kinfer_runtime_destroy(rt);
        kinfer_model_release(m);
}

static void test_topk(void)
{
        kinfer_model_t *m = build(9, 9, 0, 0, 0);
        if (!m)
                return;
        const int32_t n = 50, L = 9;
        kinfer_runtime_t *rt = kinfer_runtime_new(n, NULL, 0);
        kinfer_prediction_t out[50];
        float logits[50 * 9];
        TEST_ASSERT(kinfer_runtime_classify(rt, m, ds->texts, ds->lens, n, L, out, NULL, 0) == KINFER_OK, "classify");
        kinfer_runtime_logits(rt, m, ds->texts, ds->lens, n, logits, NULL, 0);
        for (int32_t i = 0; i < n; i++) {
                double sum = 0;
                int32_t best = 0;
                for (int32_t j = 0; j < L; j++) {
                        sum += out[i].prob[j];
                        if (logits[i * L + j] > logits[i * L + best])
                                best = j;
                        if (j)
                                TEST_ASSERT(out[i].prob[j] <= out[i].prob[j - 1], "record %d not sorted", i);
                }
                TEST_ASSERT(fabs(sum - 1) < 1e-4, "record %d: probabilities sum to %f", i, sum);
                TEST_ASSERT(out[i].label[0] == best, "record %d: top-1 %d is not the argmax %d", i, out[i].label[0], best);
                TEST_ASSERT(out[i].n == L, "n");
        }
        /* k larger than the label count is clamped */
        TEST_ASSERT(kinfer_runtime_classify(rt, m, ds->texts, ds->lens, 1, 16, out, NULL, 0) == KINFER_OK && out[0].n == L, "clamp");
        char errstr[128];
        TEST_ASSERT(kinfer_runtime_classify(rt, m, ds->texts, ds->lens, 1, 0, out, errstr, sizeof(errstr)) == KINFER_ERR__INVALID_ARG, "k=0");
        TEST_ASSERT(kinfer_runtime_classify(rt, m, ds->texts, ds->lens, 51, 1, out, errstr, sizeof(errstr)) == KINFER_ERR__INVALID_ARG &&
                    strstr(errstr, "at most 50"), "batch too large: %s", errstr);
        /* an empty text gets the prior (bias) and no crash */
        const char *empty = "";
        size_t zero = 0;
        TEST_ASSERT(kinfer_runtime_classify(rt, m, &empty, &zero, 1, 1, out, NULL, 0) == KINFER_OK, "empty text");
        kinfer_runtime_destroy(rt);
        kinfer_model_release(m);
}

typedef struct th_s {
        const kinfer_model_t *m;
        int32_t labels[400];
} th_t;

static void *th_run(void *arg)
{
        th_t *t = arg;
        kinfer_runtime_t *rt = kinfer_runtime_new(100, NULL, 0);
        kinfer_prediction_t out[100];
        for (int32_t b = 0; b < 400; b += 100) {
                kinfer_runtime_classify(rt, t->m, ds->texts + b, ds->lens + b, 100, 1, out, NULL, 0);
                for (int i = 0; i < 100; i++)
                        t->labels[b + i] = out[i].label[0];
        }
        kinfer_runtime_destroy(rt);
        return NULL;
}

static void test_threads_share_model(void)
{
        kinfer_model_t *m = build(13, 8, 16, 0, 1);
        if (!m)
                return;
        th_t t[3];
        pthread_t tid[3];
        for (int i = 0; i < 3; i++) {
                t[i].m = m;
                pthread_create(&tid[i], NULL, th_run, &t[i]);
        }
        for (int i = 0; i < 3; i++)
                pthread_join(tid[i], NULL);
        TEST_ASSERT(!memcmp(t[0].labels, t[1].labels, sizeof(t[0].labels)) &&
                    !memcmp(t[0].labels, t[2].labels, sizeof(t[0].labels)), "threads disagree");
        kinfer_model_release(m);
}

/* A batch whose features would pass the arena bound is classified in parts: the answers are
 * the ones of one go (features exactly, logits within 1e-5 as between batch sizes), the arena
 * stays within the bound (or one record's buckets plus a quarter of it, when a record alone
 * needs more), and a bound no batch reaches splits nothing. Texts of every length in the
 * sample, and a 64 KB one. */
static void test_arena_bound(void)
{
        kinfer_model_t *m = build(7, 9, 32, 16, 1);
        if (!m)
                return;
        const int32_t n = 300, k = 3, L = 9, width = 32; /* dim 32 > hidden 16 > 9 labels */
        const char *texts[300];
        size_t lens[300], nb_max = 0;
        char *big = malloc(65536);
        for (size_t i = 0; i < 65536; i++)
                big[i] = (char)('a' + (i * 7 + i / 5) % 26);
        for (size_t i = 5; i < 65536; i += 6)
                big[i] = ' ';
        for (int32_t i = 0; i < n; i++) {
                texts[i] = ds->texts[i % ds->n];
                lens[i] = ds->lens[i % ds->n];
        }
        texts[17] = big; /* one record larger than the smallest bounds below */
        lens[17] = 65536;
        for (int32_t i = 0; i < n; i++) {
                size_t nb = kinfer_featurize(&m->feat, texts[i], lens[i], NULL, 0);
                nb_max = nb > nb_max ? nb : nb_max;
        }
        kinfer_prediction_t *want = calloc((size_t)n, sizeof(*want)),
                            *got = calloc((size_t)n, sizeof(*got));
        float *lw = calloc((size_t)n * L, sizeof(float)), *lg = calloc((size_t)n * L, sizeof(float));
        kinfer_runtime_t *one = kinfer_runtime_new(n, NULL, 0);
        TEST_ASSERT(kinfer_runtime_classify(one, m, texts, lens, n, k, want, NULL, 0) == KINFER_OK &&
                        kinfer_runtime_logits(one, m, texts, lens, n, lw, NULL, 0) == KINFER_OK,
                    "unbounded");
        TEST_ASSERT(kinfer_runtime_splits(one) == 0, "no bound, no split");
        size_t unbounded = kinfer_runtime_arena_bytes(one);
        TEST_SAY("unbounded arena %zu bytes; the largest record has %zu buckets", unbounded, nb_max);
        static const size_t bounds[] = {1, 4096, 65536, 200000, 1 << 20, (size_t)1 << 30};
        for (size_t b = 0; b < sizeof(bounds) / sizeof(bounds[0]); b++) {
                kinfer_runtime_t *rt = kinfer_runtime_new(n, NULL, 0);
                kinfer_runtime_set_arena_max(rt, bounds[b]);
                char errstr[256] = "";
                memset(got, 0, (size_t)n * sizeof(*got));
                TEST_ASSERT(kinfer_runtime_classify(rt, m, texts, lens, n, k, got, errstr,
                                                    sizeof(errstr)) == KINFER_OK &&
                                kinfer_runtime_logits(rt, m, texts, lens, n, lg, errstr,
                                                      sizeof(errstr)) == KINFER_OK,
                            "bound %zu: %s", bounds[b], errstr);
                int same = 1;
                for (int32_t i = 0; i < n; i++)
                        same &= got[i].n == want[i].n && got[i].n_features == want[i].n_features;
                double worst = 0;
                for (int32_t i = 0; i < n * L; i++)
                        worst = fmax(worst, fabs(lg[i] - lw[i]) / fmax(1.0, fabs(lw[i])));
                TEST_ASSERT(same && worst <= 1e-5, "bound %zu: answers differ from one go (%.3g)",
                            bounds[b], worst);
                size_t arena = kinfer_runtime_arena_bytes(rt);
                size_t one_record = nb_max * 8 + bounds[b] / 4 + 8 * (size_t)width;
                size_t allowed = bounds[b] > one_record ? bounds[b] : one_record;
                TEST_ASSERT(arena <= allowed, "bound %zu: arena %zu > %zu", bounds[b], arena, allowed);
                uint64_t splits = kinfer_runtime_splits(rt);
                TEST_SAY("bound %zu: arena %zu bytes, %llu extra parts", bounds[b], arena,
                         (unsigned long long)splits);
                if (bounds[b] >= 4 * unbounded)
                        TEST_ASSERT(splits == 0, "bound %zu over the batch split it", bounds[b]);
                else if (bounds[b] < unbounded)
                        TEST_ASSERT(splits > 0, "bound %zu under the batch did not split it", bounds[b]);
                if (bounds[b] == 1) /* a part of one record, in each of the two calls */
                        TEST_ASSERT(splits == 2 * ((uint64_t)n - 1), "bound 1: one record a part (%llu)",
                                    (unsigned long long)splits);
                kinfer_runtime_destroy(rt);
        }
        free(want);
        free(got);
        free(lw);
        free(lg);
        free(big);
        kinfer_runtime_destroy(one);
        kinfer_model_release(m);
}

/* Records past KINFER_FEATURIZE_MAX buckets are counted once each in kinfer_runtime_truncated,
 * also when the arena bound moves one to the next part, where it is featurized again. */
static void test_truncated_counted_once(void)
{
        kinfer_model_t *m = build(7, 9, 32, 16, 1);
        if (!m)
                return;
        const size_t len = 3u << 20; /* ~1.5M words: more buckets than KINFER_FEATURIZE_MAX */
        char *big = malloc(len);
        for (size_t i = 0; i < len; i++)
                big[i] = i % 2 ? ' ' : (char)('a' + (i / 2) % 26);
        TEST_ASSERT(kinfer_featurize(&m->feat, big, len, NULL, 0) > KINFER_FEATURIZE_MAX,
                    "the test record does not pass KINFER_FEATURIZE_MAX");
        /* under the bound, each big record comes after one in its part: it is featurized,
         * then moved to the next part and featurized again */
        const char *texts[3] = {ds->texts[0], big, big};
        size_t lens[3] = {ds->lens[0], len, len};
        kinfer_prediction_t got[3];
        static const size_t bounds[] = {0, 4096};
        for (size_t b = 0; b < 2; b++) {
                kinfer_runtime_t *rt = kinfer_runtime_new(3, NULL, 0);
                kinfer_runtime_set_arena_max(rt, bounds[b]);
                char errstr[256] = "";
                TEST_ASSERT(kinfer_runtime_classify(rt, m, texts, lens, 3, 1, got, errstr,
                                                    sizeof(errstr)) == KINFER_OK,
                            "bound %zu: %s", bounds[b], errstr);
                TEST_ASSERT(kinfer_runtime_truncated(rt) == 2,
                            "bound %zu: %llu records counted truncated, want 2 (splits %llu)",
                            bounds[b], (unsigned long long)kinfer_runtime_truncated(rt),
                            (unsigned long long)kinfer_runtime_splits(rt));
                if (bounds[b])
                        TEST_ASSERT(kinfer_runtime_splits(rt) == 2, "bound %zu: %llu splits, want "
                                    "2 (one part a record)", bounds[b],
                                    (unsigned long long)kinfer_runtime_splits(rt));
                kinfer_runtime_destroy(rt);
        }
        free(big);
        kinfer_model_release(m);
}

/* A shadow's shared featurization (kinfer_runtime_share_features): model B classifying from
 * the buckets recorded while model A classified the same texts gives exactly the answers of a
 * plain classify with B, with and without an arena bound that splits the batch in parts. */
static void test_shared_features(void)
{
        kinfer_model_t *a = build(21, 7, 32, 16, 1), *b = build(22, 7, 24, 0, 1);
        if (!a || !b)
                return;
        const int32_t n = 300;
        kinfer_prediction_t *pa = calloc(n, sizeof(*pa)), *plain = calloc(n, sizeof(*plain)),
                            *shared = calloc(n, sizeof(*shared));
        static const size_t bounds[] = {0, 8192};
        for (size_t i = 0; i < 2; i++) {
                kinfer_runtime_t *rt = kinfer_runtime_new(n, NULL, 0);
                kinfer_runtime_set_arena_max(rt, bounds[i]);
                TEST_ASSERT(kinfer_runtime_classify(rt, b, ds->texts, ds->lens, n, 3, plain, NULL, 0) == KINFER_OK, "plain");
                kinfer_runtime_share_features(rt, 1);
                TEST_ASSERT(kinfer_runtime_classify(rt, a, ds->texts, ds->lens, n, 3, pa, NULL, 0) == KINFER_OK, "record");
                kinfer_runtime_share_features(rt, 2);
                TEST_ASSERT(kinfer_runtime_classify(rt, b, ds->texts, ds->lens, n, 3, shared, NULL, 0) == KINFER_OK, "reuse");
                kinfer_runtime_share_features(rt, 0);
                TEST_ASSERT(kinfer_runtime_shared(rt) == (uint64_t)n, "bound %zu: %llu records reused, want %d",
                            bounds[i], (unsigned long long)kinfer_runtime_shared(rt), (int)n);
                int differ = 0;
                for (int32_t r = 0; r < n; r++)
                        differ += memcmp(&plain[r], &shared[r], sizeof(plain[r])) != 0;
                TEST_ASSERT(differ == 0, "bound %zu: %d of %d answers differ from a plain classify",
                            bounds[i], differ, (int)n);
                kinfer_runtime_destroy(rt);
        }
        free(pa);
        free(plain);
        free(shared);
        kinfer_model_release(a);
        kinfer_model_release(b);
}

int main(void)
{
        char path[512], errstr[256];
        ds = kinfer_dataset_load(test_src_path("tests/data/sections-dev.tsv", path, sizeof(path)), 0, errstr, sizeof(errstr));
        if (!ds) {
                fprintf(stderr, "%s\n", errstr);
                return 1;
        }
        TEST_RUN(test_blas_vs_reference);
        TEST_RUN(test_batch_independence);
        TEST_RUN(test_topk);
        TEST_RUN(test_threads_share_model);
        TEST_RUN(test_arena_bound);
        TEST_RUN(test_truncated_counted_once);
        TEST_RUN(test_shared_features);
        kinfer_dataset_destroy(ds);
        return TEST_DONE();
}
