/* SPDX-License-Identifier: Apache-2.0 */
/* test_kernels.c -- every optimised embedding-bag kernel (f32 and q8: the register kernels up
 * to 64 wide and the loops beyond) against its scalar _ref twin on random inputs: random
 * table sizes, widths 1..130 (odd ones, the 8/64 edges, and past 64), records with 0..48
 * features, random weights and row indexes that include the table's last row, with and
 * without a bias. Each table is malloc'd to the exact byte, so ASan sees any read past its
 * last row; q8 row padding holds garbage, which must not reach the output.
 *
 * Tolerance: |kernel - ref| <= 1e-5 * (|bias| + sum |w * e|) + 1e-30 per output value (a
 * sum of up to 49 terms in f32 is off by at most ~49 * 2^-24 of that; the kernels add in the
 * same order as their twins, so in practice they agree to the bit).
 * The q8 row layout: the struct kinfer_q8_row_t and kinfer_q8_stride() agree. Serving's
 * softmax + top-k (kinfer_softmax_topk) against kinfer_softmax + kinfer_topk.
 * Seed: KINFER_TEST_SEED (default fixed). */
#include <math.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_int.h"
#include "runtime/ops.h"
#include "runtime/ops_q8.h"
#include "test.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(void)
{
        rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
        return (uint32_t)(rng_state >> 33);
}

static uint32_t rnd_below(uint32_t n)
{
        return rnd() % n;
}

/* uniform in [-a, a) */
static float rnd_float(float a)
{
        return a * ((float)(rnd() & 0xffffff) / (float)0x800000 - 1.0f);
}

static const int32_t dims_fixed[] = {1, 2, 3, 5, 7, 8, 9, 13, 15, 16, 17, 31, 32, 33,
                                     47, 51, 57, 63, 64, 65, 66, 77, 96, 100, 129};
#define N_FIXED (int)(sizeof(dims_fixed) / sizeof(dims_fixed[0]))
#define N_RANDOM 40 /* further trials with a random width in 1..130 */
#define MAX_FEAT 48 /* features per record */

/* One random batch over a table of n_rows rows: offs[n+1], rows, w; the first feature of the
 * batch (when there is one) and some others are the last row. */
typedef struct batch_s {
        int32_t n, n_rows;
        size_t *offs;
        int32_t *rows;
        float *w, *bias;
} batch_t;

static void batch_make(batch_t *b, int32_t n_rows, int32_t dim)
{
        b->n_rows = n_rows;
        b->n = 1 + (int32_t)rnd_below(40);
        b->offs = malloc(sizeof(size_t) * ((size_t)b->n + 1));
        b->rows = malloc(sizeof(int32_t) * (size_t)b->n * MAX_FEAT + 1);
        b->w = malloc(sizeof(float) * (size_t)b->n * MAX_FEAT + 1);
        b->bias = malloc(sizeof(float) * (size_t)dim);
        b->offs[0] = 0;
        for (int32_t r = 0; r < b->n; r++) {
                uint32_t nf = rnd_below(5) == 0 ? 0 : rnd_below(MAX_FEAT + 1); /* some empty */
                b->offs[r + 1] = b->offs[r] + nf;
                for (size_t i = b->offs[r]; i < b->offs[r + 1]; i++) {
                        b->rows[i] = rnd_below(8) == 0 ? n_rows - 1 : (int32_t)rnd_below((uint32_t)n_rows);
                        b->w[i] = rnd_float(2.0f);
                }
        }
        if (b->offs[b->n] > 0)
                b->rows[0] = n_rows - 1;
        for (int32_t j = 0; j < dim; j++)
                b->bias[j] = rnd_float(1.0f);
}

static void batch_free(batch_t *b)
{
        free(b->offs);
        free(b->rows);
        free(b->w);
        free(b->bias);
}

/* |bias| + sum |w * e| of every output, with e from @p row_value(table, r, j). */
static void magnitudes(const batch_t *b, int32_t dim, const float *bias, const uint8_t *E,
                       size_t stride, int q8, float *mag)
{
        for (int32_t r = 0; r < b->n; r++)
                for (int32_t j = 0; j < dim; j++) {
                        double m = bias ? fabsf(bias[j]) : 0;
                        for (size_t i = b->offs[r]; i < b->offs[r + 1]; i++) {
                                const uint8_t *row = E + (size_t)b->rows[i] * stride;
                                float e;
                                if (q8) {
                                        const kinfer_q8_row_t *qr = (const kinfer_q8_row_t *)(const void *)row;
                                        e = qr->scale * (float)qr->q[j];
                                } else {
                                        memcpy(&e, row + 4 * (size_t)j, 4);
                                }
                                m += fabsf(b->w[i] * e);
                        }
                        mag[(size_t)r * dim + j] = (float)m;
                }
}

/* @returns the worst |got - want| / tolerance (<= 1 passes); checks the sentinel after X. */
static double compare(const float *got, const float *want, const float *mag, size_t count)
{
        double worst = 0;
        for (size_t k = 0; k < count; k++) {
                double tol = 1e-5 * mag[k] + 1e-30;
                double d = fabs((double)got[k] - (double)want[k]) / tol;
                if (!(d <= worst)) /* NaN counts as worst */
                        worst = isnan(d) ? INFINITY : d;
        }
        return worst;
}

typedef void (*bag_fn)(const uint8_t *E, size_t stride, int32_t dim, int32_t n_rows, const batch_t *b,
                       const float *bias, float *X);

static void f32_kernel(const uint8_t *E, size_t stride, int32_t dim, int32_t n_rows, const batch_t *b,
                       const float *bias, float *X)
{
        (void)n_rows;
        kinfer_bag_f32(E, stride, dim, b->rows, b->w, b->offs, b->n, bias, X);
}

static void f32_dispatch(const uint8_t *E, size_t stride, int32_t dim, int32_t n_rows, const batch_t *b,
                         const float *bias, float *X)
{
        kinfer_bag_batch(KINFER_DTYPE_F32, E, stride, dim, n_rows, b->rows, b->w, b->offs, b->n, bias, X);
}

static void q8_kernel(const uint8_t *E, size_t stride, int32_t dim, int32_t n_rows, const batch_t *b,
                      const float *bias, float *X)
{
        kinfer_bag_q8(E, stride, dim, n_rows, b->rows, b->w, b->offs, b->n, bias, X);
}

static void q8_dispatch(const uint8_t *E, size_t stride, int32_t dim, int32_t n_rows, const batch_t *b,
                        const float *bias, float *X)
{
        kinfer_bag_batch(KINFER_DTYPE_Q8, E, stride, dim, n_rows, b->rows, b->w, b->offs, b->n, bias, X);
}

/* The register kernel alone (widths up to 64); it declines wider tables, checked below. */
static void q8_regs(const uint8_t *E, size_t stride, int32_t dim, int32_t n_rows, const batch_t *b,
                    const float *bias, float *X)
{
        kinfer_err_t err = kinfer_bag_q8_regs(E, stride, dim, n_rows, b->rows, b->w, b->offs, b->n, bias, X);
        TEST_ASSERT(err == (dim <= 64 ? KINFER_OK : KINFER_ERR__INVALID_ARG), "dim %d: %d", dim, err);
        if (err) /* declined: nothing written; let the twin's answer stand so the compare passes */
                kinfer_bag_q8_ref(E, stride, dim, n_rows, b->rows, b->w, b->offs, b->n, bias, X);
}

/* One trial: a random table of width dim (f32 or q8), a random batch, each kernel of
 * @p kernels against the twin. */
static void trial(int q8, int32_t dim, const bag_fn *kernels, const char *const *names, int n_kernels,
                  double *worst_seen)
{
        const int32_t n_rows = 1 + (int32_t)rnd_below(rnd_below(4) ? 300 : 3);
        const size_t stride = q8 ? kinfer_q8_stride((uint32_t)dim) : (size_t)dim * 4;
        uint8_t *E = malloc((size_t)n_rows * stride); /* to the exact byte */
        float *x = malloc(sizeof(float) * (size_t)dim);
        for (int32_t r = 0; r < n_rows; r++) {
                float scale = rnd_below(10) == 0 ? 0.0f : rnd_float(3.0f); /* some all-zero rows */
                for (int32_t j = 0; j < dim; j++)
                        x[j] = scale * rnd_float(1.0f);
                uint8_t *row = E + (size_t)r * stride;
                if (q8) {
                        kinfer_q8_row_quant(x, dim, row);
                        for (size_t p = sizeof(kinfer_q8_row_t) + (size_t)dim; p < stride; p++)
                                row[p] = (uint8_t)(0xa5 ^ p); /* garbage padding */
                } else {
                        memcpy(row, x, sizeof(float) * (size_t)dim);
                }
        }
        batch_t b;
        batch_make(&b, n_rows, dim);
        const size_t count = (size_t)b.n * (size_t)dim;
        float *want = malloc(sizeof(float) * count), *mag = malloc(sizeof(float) * count);
        float *got = malloc(sizeof(float) * (count + 1));
        for (int with_bias = 0; with_bias < 2; with_bias++) {
                const float *bias = with_bias ? b.bias : NULL;
                if (q8)
                        kinfer_bag_q8_ref(E, stride, dim, n_rows, b.rows, b.w, b.offs, b.n, bias, want);
                else
                        kinfer_bag_f32_ref(E, stride, dim, b.rows, b.w, b.offs, b.n, bias, want);
                magnitudes(&b, dim, bias, E, stride, q8, mag);
                for (int k = 0; k < n_kernels; k++) {
                        for (size_t i = 0; i < count; i++)
                                got[i] = NAN;
                        got[count] = 12345.0f; /* sentinel after the last record */
                        kernels[k](E, stride, dim, n_rows, &b, bias, got);
                        double worst = compare(got, want, mag, count);
                        if (worst > *worst_seen)
                                *worst_seen = worst;
                        TEST_ASSERT(worst <= 1.0, "%s dim %d rows %d records %d bias %d: off by %.3g x tolerance",
                                    names[k], dim, n_rows, b.n, with_bias, worst);
                        TEST_ASSERT(got[count] == 12345.0f, "%s dim %d: wrote past the last record", names[k], dim);
                }
        }
        free(want);
        free(mag);
        free(got);
        batch_free(&b);
        free(x);
        free(E);
}

static void run_trials(int q8, const bag_fn *kernels, const char *const *names, int n_kernels)
{
        double worst = 0;
        for (int t = 0; t < N_FIXED + N_RANDOM; t++) {
                int32_t dim = t < N_FIXED ? dims_fixed[t] : 1 + (int32_t)rnd_below(130);
                trial(q8, dim, kernels, names, n_kernels, &worst);
        }
        TEST_SAY("%s: %d widths, worst difference %.3g x tolerance", q8 ? "q8" : "f32", N_FIXED + N_RANDOM, worst);
}

static void test_bag_f32(void)
{
        static const bag_fn k[] = {f32_kernel, f32_dispatch};
        static const char *const names[] = {"kinfer_bag_f32", "kinfer_bag_batch(F32)"};
        run_trials(0, k, names, 2);
}

static void test_bag_q8(void)
{
        static const bag_fn k[] = {q8_regs, q8_kernel, q8_dispatch};
        static const char *const names[] = {"kinfer_bag_q8_regs", "kinfer_bag_q8", "kinfer_bag_batch(Q8)"};
        run_trials(1, k, names, 3);
}

/* The row struct and the stride of model_int.h describe the same bytes (docs/model-format.md:
 * f32 scale, cols int8, padded to 4 bytes). */
static void test_q8_layout(void)
{
        for (uint32_t cols = 1; cols <= 300; cols++) {
                size_t want = (sizeof(kinfer_q8_row_t) + cols + alignof(kinfer_q8_row_t) - 1) &
                              ~(alignof(kinfer_q8_row_t) - 1);
                TEST_ASSERT(kinfer_q8_stride(cols) == want, "cols %u: stride %zu, struct says %zu", cols,
                            kinfer_q8_stride(cols), want);
        }
        TEST_ASSERT(kinfer_q8_stride(51) == 56, "51 labels: %zu bytes", kinfer_q8_stride(51));
        /* the struct's scale is the file's first 4 bytes of the row (f32, host = little endian) */
        alignas(4) uint8_t row[64];
        float x[7] = {0.5f, -1.0f, 0.25f, 0, 1.0f, -0.75f, 0.125f};
        kinfer_q8_row_quant(x, 7, row);
        float scale;
        memcpy(&scale, row, 4);
        const kinfer_q8_row_t *r = (const kinfer_q8_row_t *)(const void *)row;
        TEST_ASSERT(scale == r->scale && scale == 1.0f / 127.0f, "scale %g / %g", scale, r->scale);
        TEST_ASSERT(r->q[1] == -127 && r->q[4] == 127 && (int8_t)row[4 + 2] == r->q[2], "values %d %d %d", r->q[1],
                    r->q[4], r->q[2]);
        TEST_ASSERT(row[4 + 7] == 0, "padding not zeroed");
}

/* kinfer_softmax_topk (serving: rank the logits, 8-wide exp for the sum, expf for the winners)
 * against kinfer_softmax + kinfer_topk: the same labels wherever the reference's probabilities
 * are not tied, probabilities within 1e-6 absolute and 1e-5 relative, on random logits of
 * 1..300 labels (spreads from 1e-3 to 200: sums dominated by one label, and terms under the
 * 8-wide exp's cut at -87) and k up to 16. */
static void test_softmax_topk(void)
{
        float x[300], p[300], rv[16], v[16];
        int32_t ri[16], ix[16];
        double worst = 0;
        for (int t = 0; t < 3000; t++) {
                int32_t n = 1 + (int32_t)rnd_below(300), k = 1 + (int32_t)rnd_below(16);
                if (k > n)
                        k = n;
                float spread = t % 3 == 0 ? 1e-3f : t % 3 == 1 ? 10.0f : 200.0f;
                for (int32_t i = 0; i < n; i++)
                        x[i] = p[i] = rnd_float(spread) + (t % 5 == 0 ? 1e4f : 0.0f);
                kinfer_softmax(p, n);
                kinfer_topk(p, n, k, ri, rv);
                kinfer_softmax_topk(x, n, k, ix, v);
                for (int32_t j = 0; j < k; j++) {
                        double d = fabs((double)v[j] - rv[j]);
                        TEST_ASSERT(d <= 1e-6 + 1e-5 * rv[j], "n=%d k=%d: probability %d is %.9g, reference %.9g",
                                    n, k, j, v[j], rv[j]);
                        worst = fmax(worst, d);
                        int tied = (j > 0 && rv[j - 1] == rv[j]) || (j + 1 < k && rv[j + 1] == rv[j]) ||
                                   (j == k - 1 && k < n); /* the k-th may tie with the (k+1)-th */
                        TEST_ASSERT(ix[j] == ri[j] || tied || x[ix[j]] == x[ri[j]],
                                    "n=%d k=%d: label %d is %d, reference %d", n, k, j, ix[j], ri[j]);
                        TEST_ASSERT(j == 0 || v[j] <= v[j - 1], "n=%d k=%d: not sorted at %d", n, k, j);
                }
        }
        TEST_SAY("softmax_topk: worst probability difference %.3g", worst);
}

int main(void)
{
        const char *seed = getenv("KINFER_TEST_SEED");
        if (seed && *seed)
                rng_state = strtoull(seed, NULL, 0);
        TEST_SAY("seed %llu", (unsigned long long)rng_state);
        TEST_RUN(test_q8_layout);
        TEST_RUN(test_bag_f32);
        TEST_RUN(test_bag_q8);
        TEST_RUN(test_softmax_topk);
        return TEST_DONE();
}
