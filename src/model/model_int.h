/* SPDX-License-Identifier: Apache-2.0 */
/* model_int.h -- the loaded model's views into its blob (internal to model/runtime/train). */
#ifndef KINFER_MODEL_INT_H
#define KINFER_MODEL_INT_H

#include <stdatomic.h>

#include "kinfer/text/fasttext.h"
#include "kinfer/text/featurize.h"
#include "kinfer/model/model.h"

#define KINFER_MAX_HIDDEN 4
#define KINFER_MAX_TENSORS 64
#define KINFER_MAX_WIDTH 65536 /* labels, embedding and hidden widths */

/* Q8 row layout: f32 scale, then cols int8; the row stride rounds 4 + cols up to 4 bytes
 * (56 bytes for 51 labels: the int8 table is a quarter of the f32 one plus the scales). */
static inline size_t kinfer_q8_stride(uint32_t cols)
{
        return ((size_t)cols + 4 + 3) & ~(size_t)3;
}

typedef struct kinfer_tensor_view_s {
        uint32_t kind, dtype, rows, cols;
        const uint8_t *data;
        uint64_t size;
} kinfer_tensor_view_t;

typedef struct kinfer_dense_s {
        int32_t in, out;
        uint32_t dtype;           /* F32, Q8 or CSR */
        const float *w;           /* F32: (out x in) row-major */
        const uint8_t *q8;        /* Q8 rows */
        const uint32_t *csr_ptr;  /* CSR: row_ptr[out+1] */
        const uint32_t *csr_col;
        const float *csr_val;
        const float *b;           /* (out) */
} kinfer_dense_t;

struct kinfer_model_s {
        atomic_int refcnt;
        uint8_t *blob;
        size_t size;
        int mapped; /* blob is mmap'd (else malloc'd) */
        char sha_hex[65];

        kinfer_featurizer_conf_t feat;
        int32_t n_labels, dim, n_hidden, n_buckets, n_rows;
        char **labels;            /* pointers into the LABELS tensor */

        const int32_t *bucket_map; /* (n_buckets) or NULL */
        kinfer_bucket_rank_t rank; /* a view of the stored BUCKET_RANK tensor, or derived at
                                    * load from bucket_map when its rows follow bucket order
                                    * (rank.bits NULL otherwise) */
        int rank_owned;            /* rank was derived (malloc'd), not a view into the blob */
        const float *idf;          /* (n_rows) or NULL */
        uint32_t embed_dtype;      /* F32 or Q8 */
        const uint8_t *embed;      /* n_rows rows of embed_stride bytes */
        size_t embed_stride;
        const float *bias;         /* (dim) or NULL: added to the bag */
        kinfer_dense_t hidden[KINFER_MAX_HIDDEN];
        kinfer_dense_t out;        /* out.out == 0: no output layer (dim == n_labels) */
        float temperature;         /* scores = softmax(logits / temperature); 1 = none */
        int32_t out_kind;          /* enum kinfer_output_kind */
        kinfer_ft_dict_t ft;       /* featurizer mode fasttext: the dictionary (a view) */
        const int32_t *ft_tree;    /* FT_HS: (n_labels - 1) x 2 children */

        int n_tensors;
        kinfer_tensor_view_t tensors[KINFER_MAX_TENSORS];

        char *meta_json;           /* NUL-terminated copy */
        char name[128];
        char method[32];
        int pruned; /* META "pruned": true (kept by every later derivation), or method prune */
        char format[32];
        int32_t n_parents;
        kinfer_model_parent_t *parents;
        int has_ref;                   /* META "drift_reference" present (validated) */
        kinfer_model_reference_t ref;  /* its labels array is ref_labels */
        double *ref_labels;            /* (n_labels), owned */
};

/** @returns the view of the first tensor of @p kind, or NULL. */
const kinfer_tensor_view_t *kinfer_model_tensor(const kinfer_model_t *model, uint32_t kind);

#endif
