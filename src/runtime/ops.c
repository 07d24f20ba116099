/* SPDX-License-Identifier: Apache-2.0 */
/* ops.c -- kernels: the f32 embedding bag and the dispatch by dtype, dense layers (BLAS and
 * reference), relu, softmax, top-k. The q8 row and its bag are in ops_q8.c. */
#include "runtime/ops.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "model/model_int.h"
#include "runtime/blas.h"
#include "runtime/ops_q8.h"

#define PREFETCH_AHEAD 20 /* rows ahead: ~80 cache lines in flight covers DRAM latency */

/* Rows are prefetched with temporal locality (T0), not as non-temporal (NTA): the table of a
 * default model (30 MB) fits a server's last-level cache, and an NTA fill keeps a line out of
 * it (Intel's server L3), so every row came from DRAM again. Measured side by side on the
 * 2-core Intel machine (`kinfer bench` batch 256, one thread, medians of 8 alternated runs):
 * default model 6.1 -> 4.4 us per record, the dim-100 fastText import 13.8 -> 11.5 us. */
static inline void prefetch_row(const uint8_t *p, size_t bytes)
{
        for (size_t o = 0; o < bytes; o += 64)
                __builtin_prefetch(p + o, 0, 3);
}

/* ---- the f32 bag ------------------------------------------------------------------------------ */

void kinfer_bag_f32_ref(const uint8_t *embed, size_t stride, int32_t dim, const int32_t *rows,
                        const float *w, const size_t *offs, int32_t n, const float *bias, float *X)
{
        for (int32_t r = 0; r < n; r++) {
                float *x = X + (size_t)r * dim;
                for (int32_t j = 0; j < dim; j++)
                        x[j] = bias ? bias[j] : 0.0f;
                for (size_t i = offs[r]; i < offs[r + 1]; i++) {
                        const float *e = (const float *)(const void *)(embed + (size_t)rows[i] * stride);
                        for (int32_t j = 0; j < dim; j++)
                                x[j] += w[i] * e[j];
                }
        }
}

/* The f32 bag for a width D known at compile time (instantiated below for 1..64): the record's
 * D accumulators stay in vector registers, with an exact-length tail, so no row is read past
 * its end (the generic loop reloads and stores x for every feature). */
static inline __attribute__((always_inline)) void
bag_f32_fixed(const uint8_t *embed, size_t stride, const int32_t D, const int32_t *rows,
              const float *w, const size_t *offs, int32_t n, const float *bias, float *X)
{
        const size_t total = offs[n];
        for (size_t i = 0; i < total && i < PREFETCH_AHEAD; i++)
                prefetch_row(embed + (size_t)rows[i] * stride, (size_t)D * 4);
        size_t i = 0;
        for (int32_t r = 0; r < n; r++) {
                float acc[64];
                for (int32_t j = 0; j < D; j++)
                        acc[j] = bias ? bias[j] : 0.0f;
                for (; i < offs[r + 1]; i++) {
                        if (i + PREFETCH_AHEAD < total)
                                prefetch_row(embed + (size_t)rows[i + PREFETCH_AHEAD] * stride, (size_t)D * 4);
                        const float *e = (const float *)(const void *)(embed + (size_t)rows[i] * stride);
                        const float wi = w[i];
                        for (int32_t j = 0; j < D; j++)
                                acc[j] += wi * e[j];
                }
                memcpy(X + (size_t)r * D, acc, sizeof(float) * (size_t)D);
        }
}

#define BAG_F32_CASE(D)                                                                            \
        case D:                                                                                    \
                bag_f32_fixed(embed, stride, D, rows, w, offs, n, bias, X);                        \
                return KINFER_OK;
#define BAG_F32_CASES8(b)                                                                          \
        BAG_F32_CASE(b + 1) BAG_F32_CASE(b + 2) BAG_F32_CASE(b + 3) BAG_F32_CASE(b + 4)            \
        BAG_F32_CASE(b + 5) BAG_F32_CASE(b + 6) BAG_F32_CASE(b + 7) BAG_F32_CASE(b + 8)

/* Wider than 64: accumulate into X itself. */
static void bag_f32_loop(const uint8_t *embed, size_t stride, int32_t dim, const int32_t *rows,
                         const float *w, const size_t *offs, int32_t n, const float *bias, float *X)
{
        const size_t total = offs[n];
        for (size_t i = 0; i < total && i < PREFETCH_AHEAD; i++)
                prefetch_row(embed + (size_t)rows[i] * stride, (size_t)dim * 4);
        size_t i = 0;
        for (int32_t r = 0; r < n; r++) {
                float *restrict x = X + (size_t)r * dim;
                if (bias)
                        memcpy(x, bias, sizeof(float) * (size_t)dim);
                else
                        memset(x, 0, sizeof(float) * (size_t)dim);
                for (; i < offs[r + 1]; i++) {
                        if (i + PREFETCH_AHEAD < total)
                                prefetch_row(embed + (size_t)rows[i + PREFETCH_AHEAD] * stride, (size_t)dim * 4);
                        const float *restrict e = (const float *)(const void *)(embed + (size_t)rows[i] * stride);
                        const float wi = w[i];
                        for (int32_t j = 0; j < dim; j++)
                                x[j] += wi * e[j];
                }
        }
}

/* @returns KINFER_OK when a fixed-width kernel handled the batch, KINFER_ERR__INVALID_ARG for
 * a width past 64. Keep this shape (a static function whose switch returns a code): written as
 * one void function with the fallback loop in the default case, GCC 12 kept the accumulators
 * of the instances on the stack and the bag ran 4-5x slower (bag-only loop, 51 wide). */
static kinfer_err_t bag_f32_fixed_dispatch(const uint8_t *embed, size_t stride, int32_t dim,
                                           const int32_t *rows, const float *w, const size_t *offs,
                                           int32_t n, const float *bias, float *X)
{
        switch (dim) {
                BAG_F32_CASES8(0) BAG_F32_CASES8(8) BAG_F32_CASES8(16) BAG_F32_CASES8(24)
                BAG_F32_CASES8(32) BAG_F32_CASES8(40) BAG_F32_CASES8(48) BAG_F32_CASES8(56)
        default:
                return KINFER_ERR__INVALID_ARG;
        }
}

void kinfer_bag_f32(const uint8_t *embed, size_t stride, int32_t dim, const int32_t *rows,
                    const float *w, const size_t *offs, int32_t n, const float *bias, float *X)
{
        if (bag_f32_fixed_dispatch(embed, stride, dim, rows, w, offs, n, bias, X) == KINFER_OK)
                return;
        bag_f32_loop(embed, stride, dim, rows, w, offs, n, bias, X);
}

/* ---- dispatch by dtype ------------------------------------------------------------------------ */

void kinfer_bag_batch(uint32_t dtype, const uint8_t *embed, size_t stride, int32_t dim,
                      int32_t n_rows, const int32_t *rows, const float *w, const size_t *offs,
                      int32_t n, const float *bias, float *X)
{
        if (dtype == KINFER_DTYPE_Q8)
                kinfer_bag_q8(embed, stride, dim, n_rows, rows, w, offs, n, bias, X);
        else
                kinfer_bag_f32(embed, stride, dim, rows, w, offs, n, bias, X);
}

void kinfer_bag_batch_ref(uint32_t dtype, const uint8_t *embed, size_t stride, int32_t dim,
                          int32_t n_rows, const int32_t *rows, const float *w, const size_t *offs,
                          int32_t n, const float *bias, float *X)
{
        if (dtype == KINFER_DTYPE_Q8)
                kinfer_bag_q8_ref(embed, stride, dim, n_rows, rows, w, offs, n, bias, X);
        else
                kinfer_bag_f32_ref(embed, stride, dim, rows, w, offs, n, bias, X);
}

/* ---- dense layers --------------------------------------------------------------------------- */

void kinfer_dense_to_f32(const kinfer_dense_t *d, float *W)
{
        for (int32_t o = 0; o < d->out; o++) {
                float *w = W + (size_t)o * d->in;
                if (d->dtype == KINFER_DTYPE_F32) {
                        memcpy(w, d->w + (size_t)o * d->in, sizeof(float) * (size_t)d->in);
                } else if (d->dtype == KINFER_DTYPE_Q8) {
                        kinfer_q8_row_dequant(d->q8 + (size_t)o * kinfer_q8_stride((uint32_t)d->in), d->in, w);
                } else {
                        memset(w, 0, sizeof(float) * (size_t)d->in);
                        for (uint32_t p = d->csr_ptr[o]; p < d->csr_ptr[o + 1]; p++)
                                w[d->csr_col[p]] = d->csr_val[p];
                }
        }
}

static void dense_bias(const kinfer_dense_t *d, int32_t batch, float *Y)
{
        for (int32_t b = 0; b < batch; b++) {
                float *y = Y + (size_t)b * d->out;
                if (d->b)
                        memcpy(y, d->b, sizeof(float) * (size_t)d->out);
                else
                        memset(y, 0, sizeof(float) * (size_t)d->out);
        }
}

/* Q8 and CSR weights, and the reference path: plain loops. */
static void dense_loops(const kinfer_dense_t *d, const float *X, int32_t batch, float *Y)
{
        for (int32_t b = 0; b < batch; b++) {
                const float *x = X + (size_t)b * d->in;
                float *y = Y + (size_t)b * d->out;
                for (int32_t o = 0; o < d->out; o++) {
                        float acc = 0;
                        if (d->dtype == KINFER_DTYPE_F32) {
                                const float *wr = d->w + (size_t)o * d->in;
                                for (int32_t i = 0; i < d->in; i++)
                                        acc += wr[i] * x[i];
                        } else if (d->dtype == KINFER_DTYPE_Q8) {
                                const kinfer_q8_row_t *row =
                                    kinfer_q8_row_at(d->q8, kinfer_q8_stride((uint32_t)d->in), o);
                                for (int32_t i = 0; i < d->in; i++)
                                        acc += (float)row->q[i] * x[i];
                                acc *= row->scale;
                        } else { /* CSR */
                                for (uint32_t p = d->csr_ptr[o]; p < d->csr_ptr[o + 1]; p++)
                                        acc += d->csr_val[p] * x[d->csr_col[p]];
                        }
                        y[o] += acc;
                }
        }
}

void kinfer_dense_ref(const kinfer_dense_t *d, const float *X, int32_t batch, float *Y)
{
        dense_bias(d, batch, Y);
        dense_loops(d, X, batch, Y);
}

void kinfer_dense(const kinfer_dense_t *d, const float *X, int32_t batch, float *Y)
{
        dense_bias(d, batch, Y);
        if (d->dtype == KINFER_DTYPE_F32)
                kinfer_sgemm_nt(batch, d->out, d->in, X, d->w, Y);
        else
                dense_loops(d, X, batch, Y);
}

void kinfer_relu(float *x, size_t n)
{
        for (size_t i = 0; i < n; i++)
                x[i] = x[i] > 0 ? x[i] : 0;
}

float kinfer_softmax(float *x, int32_t n)
{
        float mx = x[0];
        for (int32_t i = 1; i < n; i++)
                mx = x[i] > mx ? x[i] : mx; /* not fmaxf: that is a libm call without -ffast-math */
        float sum = 0;
        for (int32_t i = 0; i < n; i++) {
                x[i] = expf(x[i] - mx);
                sum += x[i];
        }
        float inv = 1.0f / sum;
        for (int32_t i = 0; i < n; i++)
                x[i] *= inv;
        return mx + logf(sum);
}

/* ---- softmax + top-k for serving ---------------------------------------------------------------
 * Serving needs the k best labels and their probabilities, not all n probabilities: rank the
 * logits (softmax is monotone, so the order is the logits' order, ties to the lower index), sum
 * exp(x - max) over all n with an 8-wide exp, and take libm's expf for the k winners only. The
 * 8-wide exp is Cephes' expf (range reduction by ln 2, degree-5 polynomial, about 2 ulp), and is
 * 0 below -87 (where expf is subnormal or 0): it only feeds the sum, whose relative error it
 * moves by about 1e-7. kinfer_softmax + kinfer_topk is the reference (tests/unit/test_kernels.c). */

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define AVX2_FMA_FN __attribute__((target("avx2,fma")))

AVX2_FMA_FN static inline __m256 exp8(__m256 x)
{
        const __m256 lo = _mm256_set1_ps(-87.0f);
        const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ); /* -inf too */
        x = _mm256_max_ps(x, lo);
        x = _mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f));
        __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
        fx = _mm256_floor_ps(fx);
        x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
        x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
        __m256 y = _mm256_set1_ps(1.9875691500E-4f);
        y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
        y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
        y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
        y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
        y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
        y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
        __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
        y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
        return _mm256_andnot_ps(under, y);
}

/* sum of exp(x[i] - mx), i < n */
AVX2_FMA_FN static float sum_exp_avx2(const float *x, int32_t n, float mx)
{
        const __m256 m = _mm256_set1_ps(mx);
        __m256 acc = _mm256_setzero_ps();
        int32_t i = 0;
        for (; i + 8 <= n; i += 8)
                acc = _mm256_add_ps(acc, exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), m)));
        if (i < n) {
                float t[8];
                for (int32_t j = 0; j < 8; j++)
                        t[j] = i + j < n ? x[i + j] : -INFINITY;
                acc = _mm256_add_ps(acc, exp8(_mm256_sub_ps(_mm256_loadu_ps(t), m)));
        }
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        return _mm_cvtss_f32(s);
}

static int have_avx2_fma(void)
{
        static _Atomic int cached = -1; /* threads ask at once: an atomic, as in featurize.c */
        int c = cached;
        if (c < 0)
                cached = c = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        return c;
}
#else
static float sum_exp_avx2(const float *x, int32_t n, float mx)
{
        (void)x, (void)n, (void)mx;
        return 0;
}
static int have_avx2_fma(void)
{
        return 0;
}
#endif

void kinfer_softmax_topk(const float *x, int32_t n, int32_t k, int32_t *idx, float *val)
{
        kinfer_topk(x, n, k, idx, val); /* val: the k largest logits, val[0] the max */
        const float mx = val[0];
        float sum = 0;
        if (have_avx2_fma()) {
                sum = sum_exp_avx2(x, n, mx);
        } else {
                for (int32_t i = 0; i < n; i++)
                        sum += expf(x[i] - mx);
        }
        const float inv = 1.0f / sum;
        for (int32_t j = 0; j < k; j++)
                val[j] = expf(val[j] - mx) * inv;
}

void kinfer_topk(const float *p, int32_t n, int32_t k, int32_t *idx, float *val)
{
        int32_t m = 0;
        for (int32_t i = 0; i < n; i++) {
                if (m == k && p[i] <= val[k - 1])
                        continue;
                int32_t j = m < k ? m++ : k - 1;
                while (j > 0 && val[j - 1] < p[i]) {
                        val[j] = val[j - 1];
                        idx[j] = idx[j - 1];
                        j--;
                }
                val[j] = p[i];
                idx[j] = i;
        }
}
