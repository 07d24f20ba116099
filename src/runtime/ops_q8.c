/* SPDX-License-Identifier: Apache-2.0 */
/* ops_q8.c -- the int8 embedding bag of kinfer_bag_batch() for tables up to 64 wide, with the
 * accumulators of a record held in vector registers: the generic loop reloads and stores the
 * record's dim floats for every feature row and converts a scalar tail; this one does neither.
 * Bag-only on debian-sections dev (51 labels): ~400 ns/record vs ~1200 for the generic q8 loop
 * and ~700-1000 for f32 rows (same machine, best of 7). */
#include "runtime/ops_q8.h"

#include <string.h>

#define PREFETCH_AHEAD 20 /* rows ahead, as in ops.c; a q8 row of <= 60 bytes is one line */

/* One kernel per padded width W (a multiple of 8, dim <= W <= stride - 4): the row's padding
 * is read too (it is zero as written by kinfer_q8_row_quant(), and whatever it holds only
 * lands in accumulator lanes >= dim, which are never stored), so the inner loop has a
 * compile-time trip count, no scalar tail, and the compiler keeps acc[] in vector registers. */
#define BAG_Q8(W)                                                                                  \
        static void bag_q8_##W(const uint8_t *embed, size_t stride, int32_t dim, size_t tbytes,    \
                               const int32_t *rows, const float *w, const size_t *offs, int32_t n, \
                               const float *bias, float *X)                                        \
        {                                                                                          \
                const size_t total = offs[n];                                                      \
                for (size_t i = 0; i < total && i < PREFETCH_AHEAD; i++)                           \
                        __builtin_prefetch(embed + (size_t)rows[i] * stride, 0, 0);                \
                size_t i = 0;                                                                      \
                for (int32_t r = 0; r < n; r++) {                                                  \
                        float acc[W];                                                              \
                        for (int j = 0; j < W; j++)                                                \
                                acc[j] = 0;                                                        \
                        if (bias)                                                                  \
                                memcpy(acc, bias, sizeof(float) * (size_t)dim);                    \
                        for (; i < offs[r + 1]; i++) {                                             \
                                if (i + PREFETCH_AHEAD < total)                                    \
                                        __builtin_prefetch(embed + (size_t)rows[i + PREFETCH_AHEAD] * stride, 0, 0); \
                                const uint8_t *row = embed + (size_t)rows[i] * stride;             \
                                float scale;                                                       \
                                memcpy(&scale, row, 4);                                            \
                                const int8_t *q = (const int8_t *)(row + 4);                       \
                                const float wi = w[i] * scale;                                     \
                                if ((size_t)rows[i] * stride + 4 + W <= tbytes) {                  \
                                        for (int j = 0; j < W; j++)                                \
                                                acc[j] += wi * (float)q[j];                        \
                                } else { /* the table's last row: read only its own bytes */       \
                                        for (int j = 0; j < dim; j++)                              \
                                                acc[j] += wi * (float)q[j];                        \
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

int kinfer_bag_batch_q8(const uint8_t *embed, size_t stride, int32_t dim, int32_t n_rows,
                        const int32_t *rows, const float *w, const size_t *offs, int32_t n,
                        const float *bias, float *X)
{
        const size_t width = ((size_t)dim + 7) & ~(size_t)7;
        if (dim < 1 || width > 64)
                return -1;
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
        return 0;
}
