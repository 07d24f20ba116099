/* SPDX-License-Identifier: Apache-2.0 */
/* runtime.h -- batch inference. Knows nothing of Kafka, Avro or PostgreSQL.
 *
 *   texts --featurize--> (bucket, weight) lists --embedding bag--> X (n x dim)
 *         --[dense + ReLU]*--> --dense--> logits (n x n_labels) --softmax--> top-k
 *
 * Dense layers run as one cblas_sgemm over the whole batch. A kinfer_runtime_t is a
 * per-thread scratch arena: create one per thread; the model is shared, read-only. The arena
 * grows only when a batch is larger than any before (never per record in steady state).
 */
#ifndef KINFER_RUNTIME_H
#define KINFER_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/err.h"
#include "kinfer/model/model.h"

#define KINFER_TOPK_MAX 16

typedef struct kinfer_prediction_s {
        int32_t n;                      /* number of valid entries in label/prob (= k) */
        int32_t label[KINFER_TOPK_MAX]; /* label indexes, best first */
        float prob[KINFER_TOPK_MAX];    /* softmax probabilities (always finite) */
        int32_t n_features;             /* the text's features with a row in the model; 0: no
                                         * feature at all, the answer is the bias alone */
} kinfer_prediction_t;

typedef struct kinfer_runtime_s kinfer_runtime_t;

/**
 * @brief Create a runtime (scratch arena) for batches of up to @p max_batch records.
 * @returns the runtime, or NULL on failure (see @p errstr).
 * @locality the runtime must be used by one thread at a time.
 */
kinfer_runtime_t *kinfer_runtime_new(int32_t max_batch, char *errstr, size_t errstr_size);
void kinfer_runtime_destroy(kinfer_runtime_t *rt);

/** Use the scalar reference twins of the kernels (bag and dense layers) instead of the
 * optimised ones and BLAS (for tests). */
void kinfer_runtime_set_reference(kinfer_runtime_t *rt, int on);

/** Records this runtime classified on their first KINFER_FEATURIZE_MAX features only (text
 * that yields more: very long, or whose Unicode normalisation expands), since it was created.
 * Such a record still gets a prediction, from its leading text. */
uint64_t kinfer_runtime_truncated(const kinfer_runtime_t *rt);

/**
 * @brief Bound the arena a batch takes to @p bytes: its features (8 bytes per bucket, in 3/4
 *        of the bound) and activations (2 x 4 bytes per record per unit of the widest layer,
 *        in 1/4). A batch that would pass either share is classified in parts, each as large
 *        as fits, with the answers of one go (a record's features and bag are its own; the
 *        dense layers' sums may differ in the last float bits, as between batch sizes). A
 *        part holds at least one record, so one record with more features than 3/4 of the
 *        bound takes what it needs: at most KINFER_FEATURIZE_MAX buckets (8 MiB). 0 (the
 *        default) = no bound. The featurizer's buffers for one record (at most 4 MiB of
 *        buckets and a 24 MiB table) come on top.
 */
void kinfer_runtime_set_arena_max(kinfer_runtime_t *rt, size_t bytes);

/** Bytes of the arena now (features and activations, as bounded above). */
size_t kinfer_runtime_arena_bytes(const kinfer_runtime_t *rt);

/** Extra parts batches were split into by the arena bound, since the runtime was created. */
uint64_t kinfer_runtime_splits(const kinfer_runtime_t *rt);

/**
 * @brief Share one batch's featurization between two models (a shadow: the same texts
 *        classified by the active model and a candidate). @p mode 1: the next classify calls
 *        record each record's bucket list (the text's hashes, before the model's own weights);
 *        @p mode 2: a classify of the very same texts (the caller's promise: same order, same
 *        bytes) reuses them when its model hashes text the same way (kinfer_featurizer_conf_t's
 *        version, n_buckets, word_ngrams, minn, maxn, lowercase and prefix_words equal, both
 *        kinfer's mode), and featurizes otherwise; 0: off (the default). At most 16 Mi
 *        buckets (64 MiB) of a batch are recorded; records past that are featurized again.
 *        Weights, bags, dense layers and top-k stay each model's own, so the answers are the
 *        ones of a plain classify.
 */
void kinfer_runtime_share_features(kinfer_runtime_t *rt, int mode);
/** Records whose featurization was reused (mode 2) since the runtime was created. */
uint64_t kinfer_runtime_shared(const kinfer_runtime_t *rt);

/**
 * @brief Classify @p n texts (UTF-8, not necessarily NUL-terminated) with @p model.
 * @param k     number of top labels per record, 1..KINFER_TOPK_MAX (clamped to n_labels)
 * @param out   n predictions
 * @returns KINFER_OK, or an error with @p errstr (n > max_batch, k out of range, no memory).
 */
kinfer_err_t kinfer_runtime_classify(kinfer_runtime_t *rt, const kinfer_model_t *model,
                                     const char *const *texts, const size_t *lens, int32_t n,
                                     int32_t k, kinfer_prediction_t *out, char *errstr,
                                     size_t errstr_size);

/**
 * @brief Like classify, but write the raw logits (n x n_labels, row-major) to @p logits.
 * Used by the tests, eval and distillation.
 */
kinfer_err_t kinfer_runtime_logits(kinfer_runtime_t *rt, const kinfer_model_t *model,
                                   const char *const *texts, const size_t *lens, int32_t n,
                                   float *logits, char *errstr, size_t errstr_size);

#endif
