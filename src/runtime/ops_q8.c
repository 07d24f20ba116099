/* SPDX-License-Identifier: Apache-2.0 */
/* ops_q8.c -- the int8 row (see ops_q8.h): quantize, dequantize, and the embedding bag.
 *
 * The bag for tables up to 64 wide holds the accumulators of a record in vector registers: the
 * generic loop reloads and stores the record's dim floats for every feature row and converts a
 * scalar tail; this one does neither. Bag-only on debian-sections dev (51 labels): ~400
 * ns/record vs ~1200 for the generic q8 loop and ~700-1000 for f32 rows (same machine, best
 * of 7). */
#include "runtime/ops_q8.h"

#include <math.h>
#include <string.h>

#include "model/model_int.h"

#define PREFETCH_AHEAD 20 /* rows ahead, as in ops.c; a q8 row of <= 60 bytes is one line */

/* T0, not NTA: see prefetch_row in ops.c */
static inline void prefetch_row(const uint8_t *p, size_t bytes)
{
        for (size_t o = 0; o < bytes; o += 64)
                __builtin_prefetch(p + o, 0, 3);
}

/* ---- one row ------------------------------------------------------------------------------- */

void kinfer_q8_row_dequant(const uint8_t *row, int32_t cols, float *out)
{
        const kinfer_q8_row_t *r = (const kinfer_q8_row_t *)(const void *)row;
        for (int32_t j = 0; j < cols; j++)
                out[j] = r->scale * (float)r->q[j];
}

void kinfer_q8_row_quant(const float *x, int32_t cols, uint8_t *row)
{
        kinfer_q8_row_t *r = (kinfer_q8_row_t *)(void *)row;
        float amax = 0;
        for (int32_t j = 0; j < cols; j++)
                amax = fmaxf(amax, fabsf(x[j]));
        r->scale = amax / 127.0f;
        const float inv = r->scale > 0 ? 1.0f / r->scale : 0.0f;
        for (int32_t j = 0; j < cols; j++) {
                long v = lrintf(x[j] * inv);
                r->q[j] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
        }
        const size_t stride = kinfer_q8_stride((uint32_t)cols);
        memset(row + sizeof(*r) + cols, 0, stride - sizeof(*r) - (size_t)cols);
}

/* ---- the bag: reference ---------------------------------------------------------------------- */

void kinfer_bag_q8_ref(const uint8_t *embed, size_t stride, int32_t dim, int32_t n_rows,
                       const int32_t *rows, const float *w, const size_t *offs, int32_t n,
                       const float *bias, float *X)
{
        (void)n_rows;
        for (int32_t r = 0; r < n; r++) {
                float *x = X + (size_t)r * dim;
                for (int32_t j = 0; j < dim; j++)
                        x[j] = bias ? bias[j] : 0.0f;
                for (size_t i = offs[r]; i < offs[r + 1]; i++) {
                        const kinfer_q8_row_t *e = kinfer_q8_row_at(embed, stride, rows[i]);
                        for (int32_t j = 0; j < dim; j++)
                                x[j] += w[i] * e->scale * (float)e->q[j];
                }
        }
}

/* ---- the bag: accumulators in registers, up to 64 wide ------------------------------------ */

/* One kernel per padded width W (a multiple of 8, dim <= W): the inner loop has a
 * compile-time trip count and no scalar tail, so the compiler keeps acc[] in vector registers.
 * Lanes j >= dim read the row's padding (zero as written by kinfer_q8_row_quant()) and, when
 * W > stride - 4, the first bytes of the next row; whatever they hold only lands in lanes that
 * are never stored. The table's last row takes an exact-length loop: no byte past the table
 * is read. */
#define BAG_Q8(W)                                                                                  \
        static void bag_q8_##W(const uint8_t *embed, size_t stride, int32_t dim, size_t tbytes,    \
                               const int32_t *rows, const float *w, const size_t *offs, int32_t n, \
                               const float *bias, float *X)                                        \
        {                                                                                          \
                const size_t total = offs[n];                                                      \
                for (size_t i = 0; i < total && i < PREFETCH_AHEAD; i++)                           \
                        __builtin_prefetch(embed + (size_t)rows[i] * stride, 0, 3);                \
                size_t i = 0;                                                                      \
                for (int32_t r = 0; r < n; r++) {                                                  \
                        float acc[W];                                                              \
                        for (int j = 0; j < W; j++)                                                \
                                acc[j] = 0;                                                        \
                        if (bias)                                                                  \
                                memcpy(acc, bias, sizeof(float) * (size_t)dim);                    \
                        for (; i < offs[r + 1]; i++) {                                             \
                                if (i + PREFETCH_AHEAD < total)                                    \
                                        __builtin_prefetch(embed + (size_t)rows[i + PREFETCH_AHEAD] * stride, 0, 3); \
                                const kinfer_q8_row_t *e = kinfer_q8_row_at(embed, stride, rows[i]); \
                                const float wi = w[i] * e->scale;                                  \
                                if ((size_t)rows[i] * stride + sizeof(*e) + W <= tbytes) {         \
                                        for (int j = 0; j < W; j++)                                \
                                                acc[j] += wi * (float)e->q[j];                     \
                                } else { /* the table's last row: read only its own bytes */       \
                                        for (int j = 0; j < dim; j++)                              \
                                                acc[j] += wi * (float)e->q[j];                     \
                                }                                                                  \
                        }                                                                          \
                        memcpy(X + (size_t)r * dim, acc, sizeof(float) * (size_t)dim);             \
                }                                                                                  \
        }

BAG_Q8(8)
BAG_Q8(16)
BAG_Q8(24)
BAG_Q8(32)
BAG_Q8(40)
BAG_Q8(48)
BAG_Q8(56)
BAG_Q8(64)

kinfer_err_t kinfer_bag_q8_regs(const uint8_t *embed, size_t stride, int32_t dim, int32_t n_rows,
                                const int32_t *rows, const float *w, const size_t *offs, int32_t n,
                                const float *bias, float *X)
{
        if (dim < 1 || dim > 64)
                return KINFER_ERR__INVALID_ARG;
        const size_t width = ((size_t)dim + 7) & ~(size_t)7;
        const size_t tb = (size_t)n_rows * stride;
        switch (width) {
        case 8: bag_q8_8(embed, stride, dim, tb, rows, w, offs, n, bias, X); break;
        case 16: bag_q8_16(embed, stride, dim, tb, rows, w, offs, n, bias, X); break;
        case 24: bag_q8_24(embed, stride, dim, tb, rows, w, offs, n, bias, X); break;
        case 32: bag_q8_32(embed, stride, dim, tb, rows, w, offs, n, bias, X); break;
        case 40: bag_q8_40(embed, stride, dim, tb, rows, w, offs, n, bias, X); break;
        case 48: bag_q8_48(embed, stride, dim, tb, rows, w, offs, n, bias, X); break;
        case 56: bag_q8_56(embed, stride, dim, tb, rows, w, offs, n, bias, X); break;
        default: bag_q8_64(embed, stride, dim, tb, rows, w, offs, n, bias, X); break;
        }
        return KINFER_OK;
}

/* ---- the bag: any width ------------------------------------------------------------------------ */

void kinfer_bag_q8(const uint8_t *embed, size_t stride, int32_t dim, int32_t n_rows,
                   const int32_t *rows, const float *w, const size_t *offs, int32_t n,
                   const float *bias, float *X)
{
        if (kinfer_bag_q8_regs(embed, stride, dim, n_rows, rows, w, offs, n, bias, X) == KINFER_OK)
                return;
        /* wider than 64: accumulate into X itself, prefetching whole rows across records */
        const size_t total = offs[n];
        for (size_t i = 0; i < total && i < PREFETCH_AHEAD; i++)
                prefetch_row(embed + (size_t)rows[i] * stride, stride);
        size_t i = 0;
        for (int32_t r = 0; r < n; r++) {
                float *restrict x = X + (size_t)r * dim;
                if (bias)
                        memcpy(x, bias, sizeof(float) * (size_t)dim);
                else
                        memset(x, 0, sizeof(float) * (size_t)dim);
                for (; i < offs[r + 1]; i++) {
                        if (i + PREFETCH_AHEAD < total)
                                prefetch_row(embed + (size_t)rows[i + PREFETCH_AHEAD] * stride, stride);
                        const kinfer_q8_row_t *e = kinfer_q8_row_at(embed, stride, rows[i]);
                        const int8_t *restrict q = e->q;
                        const float wi = w[i] * e->scale;
                        for (int32_t j = 0; j < dim; j++)
                                x[j] += wi * (float)q[j];
                }
        }
}
