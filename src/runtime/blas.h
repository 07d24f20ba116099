/* SPDX-License-Identifier: Apache-2.0 */
/* blas.h -- the BLAS wrapper (blas.c, the only file that includes cblas.h); private to the
 * runtime. */
#ifndef KINFER_BLAS_H
#define KINFER_BLAS_H

#include <stdint.h>

/** C (M x N) += A (M x K) * B (N x K)^T, all row-major f32; single-threaded OpenBLAS
 * (kinfer runs one runtime per thread itself). */
void kinfer_sgemm_nt(int32_t M, int32_t N, int32_t K, const float *A, const float *B, float *C);

#endif
