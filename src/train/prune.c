/* SPDX-License-Identifier: Apache-2.0 */
/* prune.c -- pruning (compress.h): drop the least important embedding rows (their buckets then
 * map to no row; the kept rows are copied bit for bit), magnitude-prune the dense layers (CSR
 * when that is smaller), optionally retrain in between; the output records the input as its
 * parent (pruned_from). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kinfer/core/buf.h"
#include "kinfer/core/json.h"
#include "kinfer/core/sha256.h"
#include "kinfer/model/model_write.h"
#include "kinfer/train/compress.h"
#include "runtime/ops.h"
#include "train/train_int.h"

void kinfer_prune_opts_default(kinfer_prune_opts_t *opts)
{
        memset(opts, 0, sizeof(*opts));
        opts->criterion = KINFER_PRUNE_NORM;
        opts->retrain_epochs = 2;
        opts->retrain_lr = 0; /* 0 = 1/10 of the training default */
        opts->threads = 2;
}

static int cmp_absf(const void *a, const void *b)
{
        float x = *(const float *)a, y = *(const float *)b;
        return x < y ? -1 : x > y;
}

/* Importance of every embedding row (see kinfer_prune_criterion_t). */
static int row_importance(const kinfer_model_t *model, kinfer_prune_criterion_t crit, float *imp)
{
        float *tmp = malloc(sizeof(float) * (size_t)model->dim);
        if (!tmp)
                return -1;
        const int use_idf = crit == KINFER_PRUNE_IDF_NORM && model->idf && model->feat.use_idf;
        for (int32_t r = 0; r < model->n_rows; r++) {
                const uint8_t *row = model->embed + (size_t)r * model->embed_stride;
                const float *x = (const float *)row;
                if (model->embed_dtype == KINFER_DTYPE_Q8) {
                        kinfer_q8_row_dequant(row, model->dim, tmp);
                        x = tmp;
                }
                double s = kinfer_row_norm2(x, model->dim);
                imp[r] = (float)(sqrt(s) * (use_idf ? model->idf[r] : 1.0));
        }
        free(tmp);
        return 0;
}

/* Zero the fraction @p sparsity of W's n entries with the smallest magnitude (ties: first
 * in row-major order). @returns the number of non-zeros left, or -1 on out of memory. */
static int64_t magnitude_prune(float *W, size_t n, double sparsity)
{
        size_t k = (size_t)floor(sparsity * (double)n + 0.5);
        if (k > n)
                k = n;
        if (k > 0) {
                float *mag = malloc(sizeof(float) * n);
                if (!mag)
                        return -1;
                for (size_t i = 0; i < n; i++)
                        mag[i] = fabsf(W[i]);
                qsort(mag, n, sizeof(float), cmp_absf);
                float thr = mag[k - 1];
                size_t below = 0;
                for (size_t i = 0; i < n; i++)
                        below += mag[i] < thr;
                free(mag);
                size_t ties = k - below; /* entries equal to thr that must go too */
                for (size_t i = 0; i < n; i++) {
                        float a = fabsf(W[i]);
                        if (a < thr)
                                W[i] = 0;
                        else if (a == thr && ties > 0)
                                W[i] = 0, ties--;
                }
        }
        int64_t nnz = 0;
        for (size_t i = 0; i < n; i++)
                nnz += W[i] != 0;
        return nnz;
}

static size_t csr_bytes(uint32_t rows, size_t nnz)
{
        return 4 + 4 * ((size_t)rows + 1) + 8 * nnz;
}

/* Pack f32 (rows x cols) into CSR bytes (see model.h), keeping the non-zeros. */
static uint8_t *csr_pack(const float *W, uint32_t rows, uint32_t cols, size_t *sizep)
{
        size_t nnz = 0;
        for (size_t i = 0; i < (size_t)rows * cols; i++)
                nnz += W[i] != 0;
        size_t size = csr_bytes(rows, nnz);
        uint8_t *buf = malloc(size);
        if (!buf)
                return NULL;
        uint32_t n32 = (uint32_t)nnz;
        memcpy(buf, &n32, 4);
        uint32_t *ptr = (uint32_t *)(buf + 4), *col = ptr + rows + 1;
        float *val = (float *)(col + nnz);
        uint32_t p = 0;
        for (uint32_t r = 0; r < rows; r++) {
                ptr[r] = p;
                for (uint32_t c = 0; c < cols; c++) {
                        float v = W[(size_t)r * cols + c];
                        if (v != 0) {
                                col[p] = c;
                                val[p++] = v;
                        }
                }
        }
        ptr[rows] = p;
        *sizep = size;
        return buf;
}

/* The kept rows of @p src (newidx: old row -> new row or -1), their bucket map and idf as
 * replacements in @p r. @returns 0, or -1 on out of memory. */
static int replace_rows(const kinfer_model_t *src, const int32_t *newidx, int32_t keep_rows,
                        kinfer_repl_t *r, int *n_r)
{
        const int32_t n_rows = src->n_rows;
        const uint32_t nb = (uint32_t)src->n_buckets;
        const size_t stride = src->embed_stride;
        uint8_t *E = malloc(stride * (size_t)keep_rows);
        if (!E)
                return -1;
        for (int32_t i = 0; i < n_rows; i++)
                if (newidx[i] >= 0)
                        memcpy(E + (size_t)newidx[i] * stride, src->embed + (size_t)i * stride, stride);
        r[(*n_r)++] = (kinfer_repl_t){KINFER_T_EMBED, src->embed_dtype, (uint32_t)keep_rows,
                                      (uint32_t)src->dim, E, stride * (size_t)keep_rows, 0};
        int32_t *map = malloc(sizeof(int32_t) * nb);
        if (!map)
                return -1;
        r[(*n_r)++] = (kinfer_repl_t){KINFER_T_BUCKET_MAP, KINFER_DTYPE_I32, 1, nb, map, sizeof(int32_t) * nb, 0};
        for (uint32_t b = 0; b < nb; b++) {
                int32_t old = kinfer_bucket_row(src, b);
                map[b] = old >= 0 ? newidx[old] : -1;
        }
        if (kinfer_model_tensor(src, KINFER_T_BUCKET_RANK)) /* the output has a dense map */
                r[(*n_r)++] = (kinfer_repl_t){KINFER_T_BUCKET_RANK, KINFER_REPL_DROP, 0, 0, NULL, 0, 0};
        if (src->idf) {
                float *idf = malloc(sizeof(float) * (size_t)keep_rows);
                if (!idf)
                        return -1;
                for (int32_t i = 0; i < n_rows; i++)
                        if (newidx[i] >= 0)
                                idf[newidx[i]] = src->idf[i];
                r[(*n_r)++] = (kinfer_repl_t){KINFER_T_IDF, KINFER_DTYPE_F32, 1, (uint32_t)keep_rows, idf,
                                              sizeof(float) * (size_t)keep_rows, 0};
        }
        return 0;
}

/* One dense layer @p d, magnitude-pruned, stored in the smaller of CSR and its own dtype. */
static int prune_layer(const kinfer_model_t *src, const kinfer_dense_t *d, uint32_t kind,
                       double sparsity, kinfer_repl_t *rp, int64_t *nnzp)
{
        const uint32_t rows = (uint32_t)d->out, cols = (uint32_t)d->in;
        const size_t n = (size_t)rows * cols;
        float *W = malloc(sizeof(float) * n);
        if (!W)
                return -1;
        kinfer_dense_to_f32(d, W);
        int64_t nnz = magnitude_prune(W, n, sparsity);
        if (nnz < 0) {
                free(W);
                return -1;
        }
        size_t in_size = kinfer_model_tensor(src, kind)->size;
        uint32_t dtype;
        uint8_t *buf;
        size_t size;
        if (csr_bytes(rows, (size_t)nnz) < in_size || d->dtype == KINFER_DTYPE_CSR) {
                dtype = KINFER_DTYPE_CSR;
                buf = csr_pack(W, rows, cols, &size);
        } else if (d->dtype == KINFER_DTYPE_Q8) {
                /* zero the pruned int8 values in place: the kept ones stay exact */
                dtype = KINFER_DTYPE_Q8;
                size = in_size;
                buf = malloc(size);
                if (buf) {
                        memcpy(buf, d->q8, size);
                        size_t stride = kinfer_q8_stride(cols);
                        for (uint32_t o = 0; o < rows; o++)
                                for (uint32_t c = 0; c < cols; c++)
                                        if (W[(size_t)o * cols + c] == 0)
                                                buf[(size_t)o * stride + 4 + c] = 0;
                }
        } else {
                dtype = KINFER_DTYPE_F32;
                size = sizeof(float) * n;
                buf = (uint8_t *)W;
                W = NULL;
        }
        free(W);
        if (!buf)
                return -1;
        *rp = (kinfer_repl_t){kind, dtype, rows, cols, buf, size, 0};
        *nnzp = nnz;
        return 0;
}

/* Magnitude-prune every dense layer into @p r, describing each in @p params. */
static int prune_dense(const kinfer_model_t *src, double sparsity, kinfer_repl_t *r, int *n_r,
                       kinfer_buf_t *params)
{
        const kinfer_dense_t *d[KINFER_MAX_HIDDEN + 1];
        uint32_t kinds[KINFER_MAX_HIDDEN + 1];
        const char *what[KINFER_MAX_HIDDEN + 1];
        int nd = kinfer_dense_layers(src, d, kinds, what);
        for (int i = 0; i < nd && sparsity > 0; i++) {
                int64_t nnz;
                if (prune_layer(src, d[i], kinds[i], sparsity, &r[*n_r], &nnz))
                        return -1;
                kinfer_buf_printf(params, "%s{\"layer\": \"%s\", \"nnz\": %lld, \"of\": %zu, \"dtype\": \"%s\"}",
                                  i ? ", " : "", what[i], (long long)nnz,
                                  (size_t)d[i]->out * (size_t)d[i]->in, kinfer_dtype_name(r[*n_r].dtype));
                (*n_r)++;
        }
        return 0;
}

/* The pruning itself: rows of @p src (keep_rows of them) and dense layers (dense_sparsity);
 * lineage parent @p parent (the user's input, also when @p src is a retrained intermediate). */
static kinfer_model_t *prune_build(const kinfer_model_t *src, const kinfer_model_t *parent,
                                   int32_t keep_rows, double dense_sparsity,
                                   kinfer_prune_criterion_t crit, int compact, const char *name,
                                   const char *extra_params, char *errstr, size_t errstr_size)
{
        const int32_t n_rows = src->n_rows;
        if (keep_rows > n_rows)
                keep_rows = n_rows;
        if (keep_rows < 1) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                              "pruning would keep no embedding row (model has %d)", n_rows);
                return NULL;
        }
        kinfer_repl_t r[KINFER_MAX_REPL];
        int n_r = 0;
        kinfer_buf_t params = {0};
        char *meta = NULL;
        kinfer_model_t *out = NULL;
        float *imp = malloc(sizeof(float) * (size_t)n_rows), min_kept = 0;
        int32_t *newidx = malloc(sizeof(int32_t) * (size_t)n_rows);
        /* rows to keep: the keep_rows most important, in their original order */
        if (!imp || !newidx || row_importance(src, crit, imp) ||
            kinfer_keep_top_rows(imp, n_rows, keep_rows, newidx, &min_kept) ||
            replace_rows(src, newidx, keep_rows, r, &n_r))
                goto oom;
        kinfer_buf_printf(&params, "{\"rows_before\": %d, \"rows_kept\": %d, \"criterion\": \"%s\", "
                                   "\"min_kept_importance\": %.6g, \"dense_sparsity\": %g, \"dense\": [",
                          n_rows, keep_rows, crit == KINFER_PRUNE_IDF_NORM ? "idf*l2norm" : "l2norm",
                          min_kept, dense_sparsity);
        if (prune_dense(src, dense_sparsity, r, &n_r, &params))
                goto oom;
        kinfer_buf_printf(&params, "], \"compact_map\": %s%s%s}", compact ? "true" : "false",
                          extra_params ? ", " : "", extra_params ? extra_params : "");
        if (params.oom)
                goto oom;
        meta = kinfer_meta_derive(parent, name, "prune", "pruned_from", params.data, NULL, 0, NULL);
        if (!meta)
                goto oom;
        out = kinfer_maybe_compact(kinfer_rebuild(src, r, n_r, meta, errstr, errstr_size), compact,
                                   errstr, errstr_size);
        goto done;
oom:
        kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory while pruning");
done:
        kinfer_repl_free(r, n_r);
        kinfer_buf_free(&params);
        free(meta);
        free(imp);
        free(newidx);
        return out;
}

/* The "retrain" object of the lineage params: data file, its sha256, epochs, rate, loss. */
static char *retrain_json(const kinfer_dataset_t *ds, const kinfer_train_opts_t *to,
                          const kinfer_train_result_t *res)
{
        kinfer_buf_t extra = {0};
        const char *base = strrchr(ds->path, '/');
        char sha[65];
        kinfer_hex(ds->sha256, 32, sha);
        kinfer_buf_puts(&extra, "\"retrain\": {\"file\": ");
        kinfer_buf_json_cstr(&extra, base ? base + 1 : ds->path);
        kinfer_buf_printf(&extra, ", \"sha256\": \"%s\", \"epochs\": %d, \"lr\": %g, \"final_loss\": %.6g}",
                          sha, to->epochs, to->lr, res->final_loss);
        return kinfer_buf_detach(&extra);
}

/* Train @p pruned further on the options' retrain data (the dropped rows stay dropped: their
 * buckets map to no row). */
static kinfer_model_t *retrain(const kinfer_model_t *model, const kinfer_model_t *pruned,
                               const kinfer_prune_opts_t *opts, char **extra, char *errstr,
                               size_t errstr_size)
{
        kinfer_train_opts_t to;
        kinfer_train_opts_default(&to);
        to.init_model = pruned;
        to.epochs = opts->retrain_epochs > 0 ? opts->retrain_epochs : 2;
        if (opts->retrain_lr > 0)
                to.lr = opts->retrain_lr;
        else /* a tenth of the shape's training rate */
                to.lr = kinfer_train_default_lr(pruned->out.out ? pruned->dim : 0,
                                                pruned->n_hidden ? pruned->hidden[0].out : 0) / 10;
        to.threads = opts->threads > 0 ? opts->threads : 1;
        to.max_rows = 0; /* keep every row the pruned model has */
        to.name = opts->name ? opts->name : model->name;
        to.lineage_method = "prune";
        to.lineage_relation = "pruned_from";
        to.parents = (const kinfer_model_t *const *)&model;
        to.n_parents = 1;
        to.progress = opts->progress;
        to.opaque = opts->opaque;
        kinfer_train_result_t res;
        kinfer_model_t *retrained = kinfer_train(opts->retrain_data, &to, &res, errstr, errstr_size);
        if (retrained && !(*extra = retrain_json(opts->retrain_data, &to, &res))) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                kinfer_model_release(retrained);
                retrained = NULL;
        }
        return retrained;
}

kinfer_model_t *kinfer_prune(const kinfer_model_t *model, const kinfer_prune_opts_t *opts,
                             char *errstr, size_t errstr_size)
{
        if (opts->sparsity < 0 || opts->sparsity >= 1 || opts->keep_rows < 0) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                              "sparsity must be in [0, 1) and keep_rows >= 0");
                return NULL;
        }
        int32_t keep = opts->keep_rows;
        if (!keep)
                keep = (int32_t)floor((1.0 - opts->sparsity) * model->n_rows + 0.5);
        if (!opts->retrain_data)
                return prune_build(model, model, keep, opts->sparsity, opts->criterion,
                                   !opts->dense_map, opts->name, NULL, errstr, errstr_size);

        /* prune, retrain from the pruned weights, then re-prune the dense layers, which
         * retraining made dense again */
        kinfer_model_t *pruned = prune_build(model, model, keep, opts->sparsity, opts->criterion,
                                             0, opts->name, NULL, errstr, errstr_size);
        if (!pruned)
                return NULL;
        char *extra = NULL;
        kinfer_model_t *retrained = retrain(model, pruned, opts, &extra, errstr, errstr_size);
        kinfer_model_release(pruned);
        if (!retrained)
                return NULL;
        kinfer_model_t *out = prune_build(retrained, model, retrained->n_rows, opts->sparsity,
                                          opts->criterion, !opts->dense_map, opts->name, extra,
                                          errstr, errstr_size);
        free(extra);
        kinfer_model_release(retrained);
        if (out) { /* the drift reference of what was retrained, not the parent's */
                kinfer_model_t *ref = kinfer_reference_attach(out, opts->retrain_data, "train",
                                                              NULL, errstr, errstr_size);
                kinfer_model_release(out);
                out = ref;
        }
        return out;
}
