/* SPDX-License-Identifier: Apache-2.0 */
/* ops_q8.h -- the int8 embedding bag for tables up to 64 wide (see ops_q8.c). */
#ifndef KINFER_OPS_Q8_H
#define KINFER_OPS_Q8_H
#include <stddef.h>
#include <stdint.h>
/** kinfer_bag_batch() for a Q8 table of @p n_rows rows: X[r] = bias + sum w * dequant(row).
 *  @returns 0, or -1 when the table is wider than 64 (nothing done). */
int kinfer_bag_batch_q8(const uint8_t *embed, size_t stride, int32_t dim, int32_t n_rows,
                        const int32_t *rows, const float *w, const size_t *offs, int32_t n,
                        const float *bias, float *X);
#endif
