/* SPDX-License-Identifier: Apache-2.0 */
/* ops.h -- numeric kernels of the runtime and trainer. Every kernel has a scalar reference
 * twin (_ref) that says what it computes; tests/unit/test_kernels.c and test_runtime.c hold
 * the kernels to their twins. The q8 row and its kernels are in ops_q8.h (included here: the
 * trainer quantizes and dequantizes rows with the same code). */
#ifndef KINFER_OPS_H
#define KINFER_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "model/model_int.h"
#include "runtime/ops_q8.h"

/** @name Embedding bags over an f32 table, rows @p stride bytes apart:
 *   X[r][j] = bias[j] + sum over i in [offs[r], offs[r+1]) of w[i] * E[rows[i]][j]
 * for r < n (bias may be NULL: 0). X is n x dim, row-major.
 * @{ */
/** The scalar reference: the formula above as plain loops. */
void kinfer_bag_f32_ref(const uint8_t *embed, size_t stride, int32_t dim, const int32_t *rows,
                        const float *w, const size_t *offs, int32_t n, const float *bias, float *X);
/** The kernel: up to 64 wide with the record's accumulators in registers (one instance per
 * width), a loop over X beyond; prefetching runs across record boundaries, so the
 * memory-bound gathers overlap. Reads no byte of a row past its dim floats. */
void kinfer_bag_f32(const uint8_t *embed, size_t stride, int32_t dim, const int32_t *rows,
                    const float *w, const size_t *offs, int32_t n, const float *bias, float *X);
/** @} */

/** Bag a whole batch from a table of @p dtype (F32: kinfer_bag_f32(), Q8: kinfer_bag_q8()). */
void kinfer_bag_batch(uint32_t dtype, const uint8_t *embed, size_t stride, int32_t dim,
                      int32_t n_rows, const int32_t *rows, const float *w, const size_t *offs,
                      int32_t n, const float *bias, float *X);
/** The same with the reference twins. */
void kinfer_bag_batch_ref(uint32_t dtype, const uint8_t *embed, size_t stride, int32_t dim,
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
/** The k most probable labels of softmax(x[0..n)) and their probabilities, best first (ties to
 * the lower index); x is not modified. Same answer as kinfer_softmax + kinfer_topk within a few
 * 1e-7 of each probability, without n expf calls. */
void kinfer_softmax_topk(const float *x, int32_t n, int32_t k, int32_t *idx, float *val);

#endif
