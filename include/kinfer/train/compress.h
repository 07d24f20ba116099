/* SPDX-License-Identifier: Apache-2.0 */
/* compress.h -- model compression: int8 quantization, pruning and distillation. Each step
 * reads a model and returns a NEW model whose META records the step as its lineage:
 *
 *   step       lineage.method  parent relation   lineage.params (besides the step's options)
 *   quantize   "quantize"      quantized_from    scheme, embed/dense dtypes
 *   prune      "prune"         pruned_from       rows kept/dropped, criterion, dense nnz
 *   distill    "distill"       distilled_from    temperature, alpha, data files, student shape
 *
 * Inputs are never modified; outputs live in memory (save them with kinfer_model_save()).
 *
 * ---- int8 ("q8") scheme -----------------------------------------------------------------------
 * Per row, symmetric: scale = max|x| / 127, q = round(x / scale) clamped to [-127, 127], stored
 * as KINFER_DTYPE_Q8 rows (f32 scale, then the int8 columns, stride kinfer_q8_stride(): 64 bytes
 * for the 51-label linear model, one cache line per row). Dequantized value = scale * q, so the
 * error of every weight is at most scale / 2 = max|row| / 254.
 *
 * ---- bucket map ----------------------------------------------------------------------------------
 * Outputs store the bucket rank index (KINFER_T_BUCKET_RANK, src/text/bucket_rank.h: one bit per
 * bucket plus a count per 64, 384 KB at 2^21 buckets) instead of the int32-per-bucket map
 * (8 MB), the rows renumbered into bucket order (their bytes unchanged); dense_map keeps the
 * int32 map (for kinfer builds older than the stored index).
 *
 * ---- recommended order --------------------------------------------------------------------------
 * train -> prune [--retrain] -> quantize. Pruning a q8 model works too (rows are copied as
 * they are), but retraining always produces f32 weights, so quantize last.
 */
#ifndef KINFER_COMPRESS_H
#define KINFER_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/err.h"
#include "kinfer/model/model.h"
#include "kinfer/train/train.h"

/** @name Quantize
 * @{ */
typedef struct kinfer_quantize_opts_s {
        int keep_dense_f32; /* 1 = quantize the embedding table only (dense layers keep BLAS) */
        int dense_map;      /* 1 = keep the int32 bucket map (default: store the rank index) */
        const char *name;   /* model name for the output's meta; NULL = the input's */
} kinfer_quantize_opts_t;

/**
 * @brief Quantize @p model's embedding table and dense layers to int8 with per-row scales.
 * A CSR (pruned) dense layer becomes q8 only when that is smaller than the CSR storage.
 * @returns the quantized model, or NULL (see @p errstr). A model that already holds q8
 *          tensors is refused (KINFER_ERR__INVALID_ARG): re-quantizing cannot shrink it and
 *          the user should quantize the f32 parent instead.
 */
kinfer_model_t *kinfer_quantize(const kinfer_model_t *model, const kinfer_quantize_opts_t *opts,
                                char *errstr, size_t errstr_size);
/** @} */

/** @name Prune
 * @{ */
typedef enum {
        KINFER_PRUNE_NORM = 0,     /* importance of a row = L2 norm (fastText's -cutoff) */
        KINFER_PRUNE_IDF_NORM = 1, /* L2 norm times the row's idf: the scale it enters the bag with */
} kinfer_prune_criterion_t;

typedef struct kinfer_prune_opts_s {
        int32_t keep_rows;   /* keep this many embedding rows (0 = decided by sparsity) */
        double sparsity;     /* 0..1: fraction of embedding rows to drop when keep_rows is 0,
                              * and fraction of every dense layer's weights to zero */
        kinfer_prune_criterion_t criterion;
        /* optional retraining: epochs over retrain_data starting from the pruned weights; the
         * dropped rows stay dropped and the dense layers are re-pruned to the same sparsity. */
        const kinfer_dataset_t *retrain_data;
        int32_t retrain_epochs; /* default 2 */
        float retrain_lr;       /* default: 1/10 of the training default */
        int32_t threads;
        int dense_map;          /* 1 = keep the int32 bucket map (default: store the rank index) */
        const char *name;       /* NULL = the input's */
        kinfer_train_progress_cb_t *progress;
        void *opaque;
} kinfer_prune_opts_t;

void kinfer_prune_opts_default(kinfer_prune_opts_t *opts);

/**
 * @brief Drop the least important embedding rows (the bucket map then sends their buckets to
 * no row; the kept rows, and their idf, are copied bit for bit, in their original order) and
 * magnitude-prune the dense layers (stored as CSR when that is smaller than the input dtype).
 * @returns the pruned model, or NULL (see @p errstr).
 */
kinfer_model_t *kinfer_prune(const kinfer_model_t *model, const kinfer_prune_opts_t *opts,
                             char *errstr, size_t errstr_size);
/** @} */

/** @name Distill
 * @{ */

/**
 * @brief The teacher's softened probabilities softmax(logits / @p temperature) for every record
 * of @p ds, in the teacher's label order, into *@p out: a malloc'd (ds->n x n_labels) array
 * (the caller frees it).
 * @returns KINFER_OK, or an error (see @p errstr; *@p out is then NULL).
 */
kinfer_err_t kinfer_distill_soft_targets(const kinfer_model_t *teacher, const kinfer_dataset_t *ds,
                                         float temperature, float **out, char *errstr,
                                         size_t errstr_size);

/**
 * @brief Train a student on @p labelled (may be NULL) plus @p unlabelled (may be NULL) text
 * with the teacher's soft targets: loss = alpha * KL(teacher_T || student_T) * T^2 +
 * (1 - alpha) * CE(label); unlabelled records (and labels the teacher does not know) use the
 * soft part alone. @p student holds the student's shape and schedule (dim, hidden, epochs,
 * features, ...); its soft_targets, label_order and lineage fields are set here.
 * @returns the student, or NULL (see @p errstr).
 */
kinfer_model_t *kinfer_distill(const kinfer_model_t *teacher, const kinfer_dataset_t *labelled,
                               const kinfer_dataset_t *unlabelled,
                               const kinfer_train_opts_t *student, float temperature, float alpha,
                               kinfer_train_result_t *res, char *errstr, size_t errstr_size);
/** @} */

#endif
