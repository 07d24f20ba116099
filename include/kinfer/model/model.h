/* SPDX-License-Identifier: Apache-2.0 */
/* model.h -- the kinfer model file: load (mmap or memory), verify, inspect, release.
 *
 * A model is ONE blob (mmap'd file or a malloc'd copy); every tensor is a view into it.
 * Models are immutable once loaded and refcounted, so one model may be shared by any
 * number of threads and swapped under a worker without touching a running batch.
 *
 * ---- File format, version 1 (all integers little-endian) ---------------------------------
 *
 *   offset size  field
 *   0      4     magic "KINF"
 *   4      4     u32 format version (1)
 *   8      4     u32 n_tensors           (entries in the tensor table)
 *   12     4     u32 flags               (reserved, 0)
 *   16     8     u64 file_size           (total bytes, including this header)
 *   24     32    sha256 of bytes [64, file_size)  -- the content checksum
 *   56     8     reserved (0)
 *   64     32*n  tensor table, one entry per tensor:
 *                  u32 kind   (enum kinfer_tensor_kind; unknown kinds are refused)
 *                  u32 dtype  (enum kinfer_dtype)
 *                  u32 rows, u32 cols
 *                  u64 offset (from file start, multiple of 64)
 *                  u64 size   (bytes)
 *   ...          tensor data, each starting on a 64-byte boundary, zero padding between.
 *
 * The model's identity is the sha256 of the whole file (kinfer_model_sha256_hex); the header
 * checksum covers everything after the first 64 bytes, so any flipped bit is detected.
 * docs/model-format.md describes every tensor kind.
 */
#ifndef KINFER_MODEL_H
#define KINFER_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/err.h"

#define KINFER_MODEL_MAGIC "KINF"
#define KINFER_MODEL_VERSION 1

/** On-disk tensor kinds: never renumber or reuse. */
enum kinfer_tensor_kind {
        KINFER_T_META = 1,       /* BYTES: UTF-8 JSON (name, hyperparameters, train data, lineage, eval) */
        KINFER_T_LABELS = 2,     /* BYTES: n_labels NUL-terminated UTF-8 strings, back to back */
        KINFER_T_FEATURIZER = 3, /* BYTES: struct kinfer_featurizer_conf (see featurize.h) */
        KINFER_T_ARCH = 4,       /* I32 (1 x 8): dim, n_hidden, n_labels, bag_mode, output kind
                                  * (enum kinfer_output_kind; 0 in files before it), 0... */
        KINFER_T_BUCKET_MAP = 5, /* I32 (1 x n_buckets): bucket -> embedding row, -1 = no row */
        KINFER_T_IDF = 6,        /* F32 (1 x n_rows): per-row idf weight */
        KINFER_T_EMBED = 7,      /* F32 or Q8 (n_rows x dim): the embedding table */
        KINFER_T_BIAS = 8,       /* F32 (1 x dim): bias added to the bag (linear models) */
        KINFER_T_BUCKET_RANK = 9,/* I32 (1 x 3W): bucket -> row as a rank index, rows in bucket
                                  * order: u64 bits[W], u32 base[W], W = ceil(n_buckets / 64)
                                  * (src/text/bucket_rank.h); replaces BUCKET_MAP in compact models */
        KINFER_T_CALIB = 10,     /* F32 (1 x 1): softmax temperature T of the reported scores,
                                  * p = softmax(logits / T), fitted on dev data (absent: T = 1) */
        KINFER_T_FT_DICT = 11,   /* BYTES: the fastText dictionary of featurizer mode fasttext
                                  * (kinfer/text/fasttext.h); required in that mode only */
        KINFER_T_FT_TREE = 12,   /* I32 ((n_labels - 1) x 2): fastText's hierarchical softmax
                                  * tree, left and right child of internal node n_labels + i
                                  * (leaves are labels 0..n_labels-1; output row i scores node
                                  * n_labels + i); required with output kind FT_HS */
        KINFER_T_HIDDEN_W = 16,  /* 16 + 2*i: F32 (out x in), layer i */
        KINFER_T_HIDDEN_B = 17,  /* 17 + 2*i: F32 (1 x out) */
        KINFER_T_OUT_W = 48,     /* F32 or Q8 or CSR (n_labels x last width) */
        KINFER_T_OUT_B = 49,     /* F32 (1 x n_labels) */
};

/** How logits become scores (ARCH[4]; never renumber). SOFTMAX: softmax(logits / T).
 * FT_HS: fastText's hierarchical softmax, predicted by its depth-first search over the tree:
 * score(leaf) = exp(sum over the path of log(f + 1e-5)), f = sigmoid(logit of the node) or
 * 1 - it (left). FT_SIGMOID: fastText's ns and ova losses: each label's score is fastText's
 * table sigmoid of its logit (512 steps over [-8, 8]); scores do not sum to 1. */
enum kinfer_output_kind {
        KINFER_OUT_SOFTMAX = 0,
        KINFER_OUT_FT_HS = 1,
        KINFER_OUT_FT_SIGMOID = 2,
};

/** On-disk dtypes: never renumber or reuse. */
enum kinfer_dtype {
        KINFER_DTYPE_F32 = 0,   /* rows*cols floats */
        KINFER_DTYPE_Q8 = 1,    /* per row: f32 scale, then cols int8, row padded to 4 bytes */
        KINFER_DTYPE_I32 = 2,   /* rows*cols int32 */
        KINFER_DTYPE_BYTES = 3, /* opaque bytes (rows = 1, cols = size) */
        KINFER_DTYPE_CSR = 4,   /* sparse f32: u32 nnz, u32 row_ptr[rows+1], u32 col[nnz], f32 val[nnz] */
};

typedef struct kinfer_model_s kinfer_model_t;

/** One parent in the model's lineage (from the META "lineage.parents" array). */
typedef struct kinfer_model_parent_s {
        char sha256[65];  /* hex */
        char name[128];   /* "" when unknown */
        int32_t version;  /* 0 when unknown */
        char relation[32];/* trained_from, quantized_from, pruned_from, distilled_from */
} kinfer_model_parent_t;

/** @name Load and release
 * @{ */

/**
 * @brief Map a model file read-only and verify it (magic, version, sizes, checksum, shapes).
 * @returns the model with refcount 1, or NULL with a message in @p errstr naming the file and
 *          the problem (truncated, bad magic, unsupported version, checksum mismatch, ...).
 */
kinfer_model_t *kinfer_model_load_file(const char *path, char *errstr, size_t errstr_size);

/**
 * @brief Verify a model held in memory (e.g. bytes from the registry) and take a private copy.
 * @p buf is not referenced after the call returns.
 */
kinfer_model_t *kinfer_model_load_mem(const void *buf, size_t len, char *errstr, size_t errstr_size);

/** @returns @p model with one more reference. @locality any thread. */
kinfer_model_t *kinfer_model_keep(kinfer_model_t *model);
/** Drop one reference; the last one unmaps/frees the blob. NULL is a no-op. @locality any thread. */
void kinfer_model_release(kinfer_model_t *model);

/** @} */

/** @name Inspect (all returned pointers are borrowed: valid while the model is held)
 * @{ */
int32_t kinfer_model_n_labels(const kinfer_model_t *model);
const char *kinfer_model_label(const kinfer_model_t *model, int32_t i);
/** @returns the label index, or -1. */
int32_t kinfer_model_label_index(const kinfer_model_t *model, const char *label);
int32_t kinfer_model_n_buckets(const kinfer_model_t *model);
int32_t kinfer_model_n_rows(const kinfer_model_t *model);   /* rows of the embedding table */
int32_t kinfer_model_dim(const kinfer_model_t *model);      /* embedding width */
int32_t kinfer_model_n_hidden(const kinfer_model_t *model); /* hidden layers */
/** The score temperature (1 when the model carries no calibration). */
float kinfer_model_temperature(const kinfer_model_t *model);
/** "f32" or "q8" for the embedding table, with "+pruned" when the model was pruned (`kinfer
 *  prune`, or derived from a pruned model: its META says "pruned": true). */
const char *kinfer_model_format(const kinfer_model_t *model);
/** How the file maps hash buckets to embedding rows: "dense" (an int32 per bucket), "rank
 *  index" (the compact index, about 1.5 bits per bucket) or "none" (row = bucket); @p bytes
 *  (may be NULL) gets its size in the file. It says nothing about how the model was made
 *  (training keeps only the rows it saw, so trained models have a map too). */
const char *kinfer_model_bucket_map_kind(const kinfer_model_t *model, size_t *bytes);
/** 1 for a linear model (no output layer: an embedding row holds a weight per label, so
 *  kinfer_model_dim() = the number of labels and the hyperparameter dim is 0), else 0. */
int kinfer_model_is_linear(const kinfer_model_t *model);
/** enum kinfer_output_kind: how the logits become scores (softmax unless imported from fastText
 *  with hs, ns or ova). */
int kinfer_model_output_kind(const kinfer_model_t *model);
/** sha256 of the whole file, 64 lowercase hex chars: the model's identity. */
const char *kinfer_model_sha256_hex(const kinfer_model_t *model);
/** The whole file as bytes (for pushing to the registry). */
const void *kinfer_model_bytes(const kinfer_model_t *model, size_t *sizep);
/** The META JSON text (always a JSON object). */
const char *kinfer_model_meta_json(const kinfer_model_t *model);
/** meta.name, or "" */
const char *kinfer_model_name(const kinfer_model_t *model);
/** meta.lineage.method: "train", "quantize", "prune", "distill", or "". */
const char *kinfer_model_lineage_method(const kinfer_model_t *model);
int32_t kinfer_model_n_parents(const kinfer_model_t *model);
const kinfer_model_parent_t *kinfer_model_parent(const kinfer_model_t *model, int32_t i);
/** Bytes of memory the loaded model keeps resident (the blob). */
size_t kinfer_model_size(const kinfer_model_t *model);
/** @} */

/** @name The drift reference (META "drift_reference", docs/model-format.md)
 * What the model predicted on data like its training data: the count of each top-1 label and
 * a histogram of the top-1 score in KINFER_REF_BINS equal-width bins over [0, 1] (bin b holds
 * scores in [b / BINS, (b + 1) / BINS), the last bin also 1.0). A serving worker compares its
 * live windows with it (src/worker/drift.c). Validated on load: as many label counts as the
 * model has labels, exactly KINFER_REF_BINS bins, every value a finite number >= 0, and each
 * histogram with a positive sum; anything else refuses the model.
 * @{ */
#define KINFER_REF_BINS 10

/** The confidence bin of top-1 score @p p (NaN and values <= 0 in bin 0, >= 1 in the last). */
static inline int kinfer_ref_bin(double p)
{
        if (!(p > 0))
                return 0;
        if (p >= 1)
                return KINFER_REF_BINS - 1;
        int b = (int)(p * KINFER_REF_BINS);
        return b < KINFER_REF_BINS ? b : KINFER_REF_BINS - 1;
}

typedef struct kinfer_model_reference_s {
        char data[16];        /* which data: "dev" or "train" ("" when not said) */
        char file[128];       /* its file name ("" when not said; truncated) */
        int64_t records;      /* records classified for it */
        int32_t n_labels;     /* = the model's labels */
        const double *labels; /* n_labels: top-1 count per label, in the model's label order */
        double confidence[KINFER_REF_BINS]; /* top-1 score histogram */
} kinfer_model_reference_t;

/** @returns the model's drift reference (borrowed, valid while the model is held), or NULL
 *  when META has none (fastText imports, models trained before it). */
const kinfer_model_reference_t *kinfer_model_reference(const kinfer_model_t *model);
/** @} */

#endif
