/* SPDX-License-Identifier: Apache-2.0 */
/* blas.c -- the only file that includes cblas.h. */
#include "runtime/blas.h"

#include <cblas.h>
#include <pthread.h>

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

/* kinfer parallelises over batches itself (one runtime per thread), so OpenBLAS must not
 * start its own threads on top. */
static void blas_init(void)
{
        openblas_set_num_threads(1);
}

void kinfer_sgemm_nt(int32_t M, int32_t N, int32_t K, const float *A, const float *B, float *C)
{
        pthread_once(&blas_once, blas_init);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K, B, K, 1.0f, C, N);
}
