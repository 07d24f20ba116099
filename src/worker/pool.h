/* SPDX-License-Identifier: Apache-2.0 */
/* pool.h -- (private to src/worker) the classification pool: a batch is split over
 * worker.threads runtimes, the calling thread classifying the first part itself and one
 * helper thread each of the others. Batches smaller than KINFER_POOL_SPLIT_MIN records stay
 * on the calling thread. */
#ifndef KINFER_WORKER_POOL_H
#define KINFER_WORKER_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/err.h"
#include "kinfer/model/model.h"
#include "kinfer/runtime/runtime.h"

#define KINFER_POOL_SPLIT_MIN 64

typedef struct kinfer_pool_s kinfer_pool_t;

/**
 * @brief Create @p n_threads runtimes for batches of up to @p max_batch records and start
 *        n_threads - 1 helper threads.
 * @returns the pool, or NULL (see @p errstr: out of memory, a thread that cannot start; what
 *          was started is stopped again).
 */
kinfer_pool_t *kinfer_pool_new(int n_threads, int32_t max_batch, char *errstr,
                               size_t errstr_size);

/**
 * @brief Classify @p n texts with @p model into @p out (top @p k each), as
 *        kinfer_runtime_classify() does, split over the pool's threads.
 * @locality one thread at a time (the one that owns the pool).
 */
kinfer_err_t kinfer_pool_classify(kinfer_pool_t *pool, const kinfer_model_t *model,
                                  const char *const *texts, const size_t *lens, int32_t n,
                                  int32_t k, kinfer_prediction_t *out, char *errstr,
                                  size_t errstr_size);

/** Bound each runtime's arena to @p bytes (kinfer_runtime_set_arena_max; the worker's
 *  worker.arena.max.bytes): a share of a batch whose features would pass it is classified
 *  in parts. */
void kinfer_pool_set_arena_max(kinfer_pool_t *pool, size_t bytes);

/** kinfer_runtime_share_features(@p mode) on every runtime of the pool (a shadow: record the
 *  active model's call, reuse in the candidate's, off after). */
void kinfer_pool_share_features(kinfer_pool_t *pool, int mode);
/** Records whose featurization was reused, over the pool's runtimes. */
uint64_t kinfer_pool_shared(kinfer_pool_t *pool);
/** Stop and join the helpers and free. NULL is a no-op. */
void kinfer_pool_destroy(kinfer_pool_t *pool);

#endif
