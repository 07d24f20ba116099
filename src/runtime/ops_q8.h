/* SPDX-License-Identifier: Apache-2.0 */
/* ops_q8.h -- the int8 row (KINFER_DTYPE_Q8 of docs/model-format.md) and its kernels:
 * quantize, dequantize, and the embedding bag over a table of q8 rows.
 *
 * One row of `cols` values, in a table of rows `kinfer_q8_stride(cols)` bytes apart:
 *
 *   offset 0   f32 scale          value[j] = scale * q[j]
 *   offset 4   int8 q[cols]       symmetric, in [-127, 127]
 *   4 + cols   zero bytes up to the stride (a multiple of 4: 56 bytes for 51 labels)
 *
 * Tensors are 64-byte aligned in the file and in memory and the stride is a multiple of 4, so
 * every row is a properly aligned kinfer_q8_row_t (as ggml's block_q8_0, without a fixed
 * block length: a row is one block of cols values). The on-disk format is this struct. */
#ifndef KINFER_OPS_Q8_H
#define KINFER_OPS_Q8_H

#include <assert.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/err.h"

typedef struct kinfer_q8_row_s {
        float scale;  /* value[j] = scale * q[j]; max|x| / 127 */
        int8_t q[];   /* cols values, then zero padding up to the row stride */
} kinfer_q8_row_t;
static_assert(sizeof(kinfer_q8_row_t) == 4, "q8 row header: one f32 scale, no padding");
static_assert(offsetof(kinfer_q8_row_t, q) == 4, "q8 values follow the scale");
static_assert(alignof(kinfer_q8_row_t) == 4, "q8 rows are 4-byte aligned: the stride rounds to 4");

/** Row @p r of a q8 table whose rows are @p stride bytes apart. */
static inline const kinfer_q8_row_t *kinfer_q8_row_at(const uint8_t *table, size_t stride, int32_t r)
{
        return (const kinfer_q8_row_t *)(const void *)(table + (size_t)r * stride);
}

/** Dequantize one Q8 row (4-byte aligned) into out[0..cols). */
void kinfer_q8_row_dequant(const uint8_t *row, int32_t cols, float *out);
/** Quantize one f32 row (symmetric, scale = max|x|/127) into @p row (4-byte aligned,
 * kinfer_q8_stride(cols) bytes: the padding is zeroed). */
void kinfer_q8_row_quant(const float *x, int32_t cols, uint8_t *row);

/** @name Embedding bags over a q8 table of @p n_rows rows, @p stride bytes apart:
 *   X[r][j] = bias[j] + sum over i in [offs[r], offs[r+1]) of w[i] * scale(rows[i]) * q(rows[i])[j]
 * for r < n (bias may be NULL: 0). X is n x dim, row-major.
 * @{ */
/** The scalar reference: the formula above as plain loops. */
void kinfer_bag_q8_ref(const uint8_t *embed, size_t stride, int32_t dim, int32_t n_rows,
                       const int32_t *rows, const float *w, const size_t *offs, int32_t n,
                       const float *bias, float *X);
/** The kernel for tables up to 64 wide: the record's accumulators in vector registers,
 * reading each row's padding too (except the table's last row: no byte past the table).
 * @returns KINFER_OK, or KINFER_ERR__INVALID_ARG when dim is not in 1..64 (nothing done). */
kinfer_err_t kinfer_bag_q8_regs(const uint8_t *embed, size_t stride, int32_t dim, int32_t n_rows,
                                const int32_t *rows, const float *w, const size_t *offs, int32_t n,
                                const float *bias, float *X);
/** Any width: kinfer_bag_q8_regs() up to 64, a prefetching loop over X beyond. */
void kinfer_bag_q8(const uint8_t *embed, size_t stride, int32_t dim, int32_t n_rows,
                   const int32_t *rows, const float *w, const size_t *offs, int32_t n,
                   const float *bias, float *X);
/** @} */

#endif
