/* SPDX-License-Identifier: Apache-2.0 */
/* fasttext.h -- import a fastText supervised model (.bin, or .ftz: product-quantized) as a kinfer
 * model that gives fastText's predictions (docs/fasttext.md).
 *
 * What the import makes of the file (fastText's src/fasttext.cc loadModel, args.cc,
 * dictionary.cc, densematrix.cc, quantmatrix.cc, productquantizer.cc):
 *   - the featurizer in mode fasttext (kinfer/text/fasttext.h) with fastText's dictionary,
 *     wordNgrams, minn, maxn and bucket;
 *   - the input matrix as the embedding table (f32; a product-quantized matrix is decoded:
 *     row = norm * centroids, exactly the values fastText adds), averaged like fastText;
 *   - a pruned .ftz's n-gram index as the bucket map;
 *   - the output matrix as the output layer (decoded too when qout), and the loss as the
 *     output kind: softmax, hs (the Huffman tree fastText builds from the label counts,
 *     stored in the model), ns and ova (fastText's table sigmoid);
 *   - META: name, hyperparameters, lineage {method "import", parents: [{sha256 of the source
 *     file, its name, relation "imported_from"}]}.
 * Every count is checked against the bytes left in the file before anything is allocated, and
 * the decoded model against opts->max_bytes; a refused file gets a message naming the field and
 * its byte offset.
 */
#ifndef KINFER_TRAIN_FASTTEXT_H
#define KINFER_TRAIN_FASTTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/err.h"
#include "kinfer/model/model.h"

#define KINFER_FT_MAGIC 793712314
#define KINFER_FT_VERSION 12

typedef struct kinfer_ft_import_opts_s {
        const char *name;        /* META name; NULL: "fasttext" */
        const char *source_name; /* the source file as named in messages and lineage; NULL: "model" */
        uint64_t max_bytes;      /* the most bytes the decoded tensors may take; 0: 16 GiB */
        /* called at each stage ("header", "dictionary", "input matrix", ...); may be NULL */
        void (*progress)(void *opaque, const char *stage, uint64_t offset, uint64_t size);
        void *opaque;
} kinfer_ft_import_opts_t;

/** Import the fastText model held in @p buf (@p len bytes: the whole file) and serialise the
 * kinfer model into a malloc'd buffer (*outp, *outlenp; the caller frees it).
 * @returns KINFER_OK, or KINFER_ERR__BAD_FORMAT (the file), __NOMEM, __INVALID_ARG (over
 * max_bytes) with a message in @p errstr. */
kinfer_err_t kinfer_fasttext_import(const void *buf, size_t len, const kinfer_ft_import_opts_t *opts,
                                    uint8_t **outp, size_t *outlenp, char *errstr,
                                    size_t errstr_size);

#endif
