/* SPDX-License-Identifier: Apache-2.0 */
/* ops.h -- numeric kernels of the runtime and trainer. Each dense kernel has a scalar
 * reference twin (_ref) that the tests compare the BLAS path against. */
#ifndef KINFER_OPS_H
#define KINFER_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "model/model_int.h"

/** Bag a whole batch: X[r] = bias + sum over rows[offs[r]..offs[r+1]) of w * row, for r < n.
 * Prefetching runs across record boundaries, so the memory-bound gathers overlap. */
void kinfer_bag_batch(uint32_t dtype, const uint8_t *embed, size_t stride, int32_t dim,
                      int32_t n_rows, const int32_t *rows, const float *w, const size_t *offs,
                      int32_t n, const float *bias, float *X);

/** Y (batch x d->out) = X (batch x d->in) * W^T + b, any dtype. BLAS for F32. */
void kinfer_dense(const kinfer_dense_t *d, const float *X, int32_t batch, float *Y);
/** The same with plain loops (reference). */
void kinfer_dense_ref(const kinfer_dense_t *d, const float *X, int32_t batch, float *Y);
/** Expand a dense layer of any dtype (F32, Q8, CSR) into f32 (out x in) at @p W. */
void kinfer_dense_to_f32(const kinfer_dense_t *d, float *W);

void kinfer_relu(float *x, size_t n);
/** In-place softmax of n values; @returns log-sum-exp (for the loss). */
float kinfer_softmax(float *x, int32_t n);
/** The k largest of p[0..n), best first. */
void kinfer_topk(const float *p, int32_t n, int32_t k, int32_t *idx, float *val);

/** Dequantize one Q8 row into out[0..cols). */
void kinfer_q8_row_dequant(const uint8_t *row, int32_t cols, float *out);
/** Quantize one f32 row (symmetric, scale = max|x|/127). */
void kinfer_q8_row_quant(const float *x, int32_t cols, uint8_t *row);

/* blas.c: the only file that includes cblas.h. C (MxN) = A (MxK) * B(NxK)^T + C */
void kinfer_sgemm_nt(int32_t M, int32_t N, int32_t K, const float *A, const float *B, float *C);

#endif
