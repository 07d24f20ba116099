/* SPDX-License-Identifier: Apache-2.0 */
/* compress.c -- the compression steps of compress.h: int8 quantization, row and magnitude
 * pruning (optionally retrained), and distillation from a teacher's soft targets. Each step
 * rebuilds the model file from the input's tensors, replacing only what it changes, and
 * writes a META whose lineage names the input (or the teacher) as parent. */
#include "kinfer/train/compress.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinfer/model/model_write.h"
#include "kinfer/runtime/runtime.h"
#include "kinfer/core/sha256.h"
#include "text/bucket_rank.h"
#include "model/model_int.h"
#include "runtime/ops.h"

/* ---- rebuilding a model with some tensors replaced ------------------------------------------ */

typedef struct repl_s {
        uint32_t kind, dtype, rows, cols; /* dtype REPL_DROP: remove the tensor */
        void *data; /* owned by the caller */
        size_t size;
        int used;
} repl_t;

#define REPL_DROP UINT32_MAX

#define MAX_REPL 16

/* Copy @p src's tensors in order, with META replaced by @p meta and every kind in @p r
 * replaced by its entry (entries whose kind @p src lacks are appended). */
static kinfer_model_t *rebuild(const kinfer_model_t *src, repl_t *r, int n_r, const char *meta,
                               char *errstr, size_t errstr_size)
{
        kinfer_model_builder_t *mb = kinfer_model_builder_new();
        if (!mb) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        kinfer_err_t err = KINFER_OK;
        for (int i = 0; i < src->n_tensors && !err; i++) {
                const kinfer_tensor_view_t *t = &src->tensors[i];
                if (t->kind == KINFER_T_META) {
                        err = kinfer_model_builder_add(mb, KINFER_T_META, KINFER_DTYPE_BYTES, 1,
                                                       (uint32_t)strlen(meta), meta, strlen(meta));
                        continue;
                }
                int j;
                for (j = 0; j < n_r; j++)
                        if (r[j].kind == t->kind && !r[j].used)
                                break;
                if (j < n_r && r[j].dtype == REPL_DROP) {
                        r[j].used = 1;
                } else if (j < n_r) {
                        r[j].used = 1;
                        err = kinfer_model_builder_add(mb, r[j].kind, r[j].dtype, r[j].rows, r[j].cols,
                                                       r[j].data, r[j].size);
                } else {
                        err = kinfer_model_builder_add(mb, t->kind, t->dtype, t->rows, t->cols, t->data,
                                                       t->size);
                }
        }
        for (int j = 0; j < n_r && !err; j++)
                if (!r[j].used && r[j].dtype != REPL_DROP)
                        err = kinfer_model_builder_add(mb, r[j].kind, r[j].dtype, r[j].rows, r[j].cols,
                                                       r[j].data, r[j].size);
        kinfer_model_t *model = NULL;
        if (err) {
                kinfer_seterr(errstr, errstr_size, err, "out of memory while building the model");
        } else {
                uint8_t *buf;
                size_t len;
                if (kinfer_model_builder_serialize(mb, &buf, &len, errstr, errstr_size) == KINFER_OK) {
                        model = kinfer_model_load_mem(buf, len, errstr, errstr_size);
                        free(buf);
                }
        }
        kinfer_model_builder_destroy(mb);
        return model;
}

static void repl_free(repl_t *r, int n_r)
{
        for (int j = 0; j < n_r; j++)
                free(r[j].data);
}

/* The row of bucket @p b: the dense map, else the rank index (derived from a dense map at
 * load, or stored in the file: bucket_rank.h), else the identity. */
static int32_t bucket_row(const kinfer_model_t *m, uint32_t b)
{
        if (m->bucket_map)
                return m->bucket_map[b];
        if (m->rank.bits)
                return kinfer_bucket_rank_row(&m->rank, b);
        return (int32_t)b;
}

/* Rewrite @p m with the rank index stored in the file instead of the dense bucket map (rows
 * renumbered into bucket order, their bytes unchanged) and the same META. A model whose map
 * shares rows between buckets, or that already stores the index, is returned as it is (a new
 * reference). */
static kinfer_model_t *compact_map(kinfer_model_t *m, char *errstr, size_t errstr_size)
{
        const uint32_t nb = (uint32_t)m->n_buckets;
        if (kinfer_model_tensor(m, KINFER_T_BUCKET_RANK))
                return kinfer_model_keep(m);
        repl_t r[4];
        int n_r = 0;
        memset(r, 0, sizeof(r));
        kinfer_model_t *out = NULL;
        const size_t rsize = kinfer_bucket_rank_bytes(nb);
        int32_t *map = malloc(sizeof(int32_t) * nb), *old_of = malloc(sizeof(int32_t) * nb);
        uint8_t *seen = calloc((size_t)m->n_rows + 1, 1);
        uint64_t *packed = malloc(rsize); /* u64: the index wants 8-byte alignment */
        if (!map || !old_of || !seen || !packed)
                goto oom;
        for (uint32_t b = 0; b < nb; b++)
                map[b] = bucket_row(m, b);
        int64_t n = kinfer_bucket_rank_pack(map, nb, packed, old_of, seen);
        if (n != m->n_rows) {
                out = kinfer_model_keep(m); /* rows shared or unreachable: keep the dense map */
                goto done;
        }
        const size_t stride = m->embed_stride;
        uint8_t *E = malloc(stride * (size_t)(n ? n : 1));
        if (!E)
                goto oom;
        r[n_r++] = (repl_t){KINFER_T_EMBED, m->embed_dtype, (uint32_t)n, (uint32_t)m->dim, E, stride * (size_t)n, 0};
        for (int64_t i = 0; i < n; i++)
                memcpy(E + (size_t)i * stride, m->embed + (size_t)old_of[i] * stride, stride);
        if (m->idf) {
                float *idf = malloc(sizeof(float) * (size_t)(n ? n : 1));
                if (!idf)
                        goto oom;
                r[n_r++] = (repl_t){KINFER_T_IDF, KINFER_DTYPE_F32, 1, (uint32_t)n, idf, sizeof(float) * (size_t)n, 0};
                for (int64_t i = 0; i < n; i++)
                        idf[i] = m->idf[old_of[i]];
        }
        r[n_r++] = (repl_t){KINFER_T_BUCKET_MAP, REPL_DROP, 0, 0, NULL, 0, 0};
        r[n_r++] = (repl_t){KINFER_T_BUCKET_RANK, KINFER_DTYPE_I32, 1, (uint32_t)(rsize / 4), packed, rsize, 0};
        packed = NULL;
        out = rebuild(m, r, n_r, m->meta_json, errstr, errstr_size);
        if (!out && strstr(errstr, "unknown kind"))
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                              "this kinfer's model loader cannot read a stored bucket rank index "
                              "(tensor kind %d); write with --dense-map",
                              KINFER_T_BUCKET_RANK);
        goto done;
oom:
        kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory (bucket rank index)");
done:
        repl_free(r, n_r);
        free(map);
        free(old_of);
        free(seen);
        free(packed);
        return out;
}

/* Apply compact_map() when asked, consuming @p m. */
static kinfer_model_t *maybe_compact(kinfer_model_t *m, int on, char *errstr, size_t errstr_size)
{
        if (!m || !on)
                return m;
        kinfer_model_t *c = compact_map(m, errstr, errstr_size);
        kinfer_model_release(m);
        return c;
}

/* The dense layers of a model, with their tensor kinds, in forward order. */
static int dense_layers(const kinfer_model_t *model, const kinfer_dense_t **d, uint32_t *kind,
                        const char **what)
{
        static const char *hidden_names[KINFER_MAX_HIDDEN] = {"hidden0", "hidden1", "hidden2", "hidden3"};
        int n = 0;
        for (int i = 0; i < model->n_hidden; i++) {
                d[n] = &model->hidden[i];
                kind[n] = KINFER_T_HIDDEN_W + 2 * (uint32_t)i;
                what[n++] = hidden_names[i];
        }
        if (model->out.out) {
                d[n] = &model->out;
                kind[n] = KINFER_T_OUT_W;
                what[n++] = "out";
        }
        return n;
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

/* Quantize f32 (rows x cols) into q8 rows; *max_err gets the largest |x - dequant(q(x))|
 * relative to its row's max|x|. */
static uint8_t *q8_pack(const float *W, uint32_t rows, uint32_t cols, size_t *sizep, double *max_rel)
{
        size_t stride = kinfer_q8_stride(cols);
        uint8_t *buf = malloc(stride * (rows ? rows : 1));
        float *tmp = malloc(sizeof(float) * (cols ? cols : 1));
        if (!buf || !tmp) {
                free(buf);
                free(tmp);
                return NULL;
        }
        for (uint32_t r = 0; r < rows; r++) {
                const float *x = W + (size_t)r * cols;
                uint8_t *row = buf + (size_t)r * stride;
                kinfer_q8_row_quant(x, (int32_t)cols, row);
                kinfer_q8_row_dequant(row, (int32_t)cols, tmp);
                float amax = 0, emax = 0;
                for (uint32_t c = 0; c < cols; c++) {
                        amax = fmaxf(amax, fabsf(x[c]));
                        emax = fmaxf(emax, fabsf(x[c] - tmp[c]));
                }
                if (amax > 0 && emax / amax > *max_rel)
                        *max_rel = emax / amax;
        }
        free(tmp);
        *sizep = stride * rows;
        return buf;
}

static const char *dtype_name(uint32_t dtype)
{
        switch (dtype) {
        case KINFER_DTYPE_F32: return "f32";
        case KINFER_DTYPE_Q8: return "q8";
        case KINFER_DTYPE_CSR: return "csr";
        default: return "?";
        }
}

/* ---- quantize ----------------------------------------------------------------------------- */

kinfer_model_t *kinfer_quantize(const kinfer_model_t *model, const kinfer_quantize_opts_t *opts,
                                char *errstr, size_t errstr_size)
{
        kinfer_quantize_opts_t dflt = {0};
        if (!opts)
                opts = &dflt;
        const kinfer_dense_t *d[KINFER_MAX_HIDDEN + 1];
        uint32_t kinds[KINFER_MAX_HIDDEN + 1];
        const char *what[KINFER_MAX_HIDDEN + 1];
        int nd = dense_layers(model, d, kinds, what);
        int q8_in = model->embed_dtype == KINFER_DTYPE_Q8;
        for (int i = 0; i < nd; i++)
                q8_in |= d[i]->dtype == KINFER_DTYPE_Q8;
        if (q8_in) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                              "model is already quantized (format %s, lineage method \"%s\"): "
                              "quantizing again cannot shrink it; quantize its f32 parent instead",
                              model->format, model->method);
                return NULL;
        }
        repl_t r[MAX_REPL];
        int n_r = 0;
        memset(r, 0, sizeof(r));
        double err_embed = 0, err_dense = 0;
        kinfer_strbuf_t params = {0};
        char *meta = NULL;
        kinfer_model_t *out = NULL;

        /* the embedding table */
        size_t size;
        uint8_t *q = q8_pack((const float *)model->embed, (uint32_t)model->n_rows,
                             (uint32_t)model->dim, &size, &err_embed);
        if (!q)
                goto oom;
        r[n_r++] = (repl_t){KINFER_T_EMBED, KINFER_DTYPE_Q8, (uint32_t)model->n_rows,
                            (uint32_t)model->dim, q, size, 0};

        kinfer_strbuf_printf(&params, "{\"scheme\": \"q8 per-row symmetric, scale = max|row| / 127\", "
                                      "\"embed\": {\"dtype\": \"q8\", \"rows\": %d, \"row_stride\": %zu, "
                                      "\"max_rel_error\": %.6g}, \"dense\": [",
                             model->n_rows, kinfer_q8_stride((uint32_t)model->dim), err_embed);
        for (int i = 0; i < nd; i++) {
                uint32_t dt = d[i]->dtype;
                size_t q8size = (size_t)d[i]->out * kinfer_q8_stride((uint32_t)d[i]->in);
                const kinfer_tensor_view_t *t = kinfer_model_tensor(model, kinds[i]);
                int convert = !opts->keep_dense_f32 && (dt == KINFER_DTYPE_F32 || q8size < t->size);
                if (convert) {
                        float *W = malloc(sizeof(float) * (size_t)d[i]->out * (size_t)d[i]->in);
                        if (!W)
                                goto oom;
                        kinfer_dense_to_f32(d[i], W);
                        double e = 0;
                        q = q8_pack(W, (uint32_t)d[i]->out, (uint32_t)d[i]->in, &size, &e);
                        free(W);
                        if (!q)
                                goto oom;
                        err_dense = fmax(err_dense, e);
                        r[n_r++] = (repl_t){kinds[i], KINFER_DTYPE_Q8, (uint32_t)d[i]->out,
                                            (uint32_t)d[i]->in, q, size, 0};
                }
                kinfer_strbuf_printf(&params, "%s{\"layer\": \"%s\", \"from\": \"%s\", \"dtype\": \"%s\"%s}",
                                     i ? ", " : "", what[i], dtype_name(dt),
                                     convert ? "q8" : dtype_name(dt),
                                     convert || dt == KINFER_DTYPE_F32 ? ""
                                     : opts->keep_dense_f32          ? ", \"why\": \"keep_dense_f32\""
                                                                     : ", \"why\": \"csr is smaller\"");
        }
        kinfer_strbuf_printf(&params, "], \"dense_max_rel_error\": %.6g, \"keep_dense_f32\": %s, "
                                      "\"compact_map\": %s}",
                             err_dense, opts->keep_dense_f32 ? "true" : "false",
                             opts->dense_map ? "false" : "true");
        if (params.oom)
                goto oom;
        meta = kinfer_meta_derive(model, opts->name, "quantize", "quantized_from", params.s, NULL, 0, NULL);
        if (!meta)
                goto oom;
        out = maybe_compact(rebuild(model, r, n_r, meta, errstr, errstr_size), !opts->dense_map,
                            errstr, errstr_size);
        goto done;
oom:
        kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory while quantizing");
done:
        repl_free(r, n_r);
        kinfer_strbuf_free(&params);
        free(meta);
        return out;
}

/* ---- prune -------------------------------------------------------------------------------- */

void kinfer_prune_opts_default(kinfer_prune_opts_t *opts)
{
        memset(opts, 0, sizeof(*opts));
        opts->criterion = KINFER_PRUNE_NORM;
        opts->retrain_epochs = 2;
        opts->retrain_lr = 0; /* 0 = 1/10 of the training default */
        opts->threads = 2;
}

typedef struct rank_s {
        float imp;
        int32_t row;
} rank_t;

static int cmp_rank(const void *a, const void *b)
{
        const rank_t *x = a, *y = b;
        if (x->imp != y->imp)
                return x->imp > y->imp ? -1 : 1; /* most important first */
        return x->row < y->row ? -1 : x->row > y->row;
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
                double s = 0;
                for (int32_t j = 0; j < model->dim; j++)
                        s += (double)x[j] * x[j];
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

/* The pruning itself: rows of @p src (keep_rows of them) and dense layers (dense_sparsity);
 * lineage parent @p parent (the user's input, also when @p src is a retrained intermediate). */
static kinfer_model_t *prune_build(const kinfer_model_t *src, const kinfer_model_t *parent,
                                   int32_t keep_rows, double dense_sparsity,
                                   kinfer_prune_criterion_t crit, int compact, const char *name,
                                   const char *extra_params, char *errstr, size_t errstr_size)
{
        repl_t r[MAX_REPL];
        int n_r = 0;
        memset(r, 0, sizeof(r));
        kinfer_strbuf_t params = {0};
        char *meta = NULL;
        kinfer_model_t *out = NULL;
        rank_t *rank = NULL;
        int32_t *newidx = NULL;
        float *imp = NULL;
        const int32_t n_rows = src->n_rows;
        const uint32_t nb = (uint32_t)src->n_buckets;
        if (keep_rows > n_rows)
                keep_rows = n_rows;
        if (keep_rows < 1) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                              "pruning would keep no embedding row (model has %d)", n_rows);
                return NULL;
        }

        /* rows to keep: the keep_rows most important, in their original order */
        imp = malloc(sizeof(float) * (size_t)n_rows);
        rank = malloc(sizeof(rank_t) * (size_t)n_rows);
        newidx = malloc(sizeof(int32_t) * (size_t)n_rows);
        if (!imp || !rank || !newidx || row_importance(src, crit, imp))
                goto oom;
        for (int32_t i = 0; i < n_rows; i++)
                rank[i] = (rank_t){imp[i], i};
        qsort(rank, (size_t)n_rows, sizeof(rank_t), cmp_rank);
        float min_kept = rank[keep_rows - 1].imp;
        for (int32_t i = 0; i < n_rows; i++)
                newidx[i] = -1;
        for (int32_t i = 0; i < keep_rows; i++)
                newidx[rank[i].row] = 0;
        int32_t nr = 0;
        for (int32_t i = 0; i < n_rows; i++)
                if (newidx[i] == 0)
                        newidx[i] = nr++;
        /* keep_rows distinct rows were flagged, and each got one new index */
        assert(nr == keep_rows);

        {
                const size_t stride = src->embed_stride;
                uint8_t *E = malloc(stride * (size_t)keep_rows);
                if (!E)
                        goto oom;
                for (int32_t i = 0; i < n_rows; i++)
                        if (newidx[i] >= 0)
                                memcpy(E + (size_t)newidx[i] * stride, src->embed + (size_t)i * stride, stride);
                r[n_r++] = (repl_t){KINFER_T_EMBED, src->embed_dtype, (uint32_t)keep_rows,
                                    (uint32_t)src->dim, E, stride * (size_t)keep_rows, 0};
                int32_t *map = malloc(sizeof(int32_t) * nb);
                if (!map)
                        goto oom;
                r[n_r++] = (repl_t){KINFER_T_BUCKET_MAP, KINFER_DTYPE_I32, 1, nb, map, sizeof(int32_t) * nb, 0};
                for (uint32_t b = 0; b < nb; b++) {
                        int32_t old = bucket_row(src, b);
                        map[b] = old >= 0 ? newidx[old] : -1;
                }
                if (kinfer_model_tensor(src, KINFER_T_BUCKET_RANK)) /* the output has a dense map */
                        r[n_r++] = (repl_t){KINFER_T_BUCKET_RANK, REPL_DROP, 0, 0, NULL, 0, 0};
                if (src->idf) {
                        float *idf = malloc(sizeof(float) * (size_t)keep_rows);
                        if (!idf)
                                goto oom;
                        for (int32_t i = 0; i < n_rows; i++)
                                if (newidx[i] >= 0)
                                        idf[newidx[i]] = src->idf[i];
                        r[n_r++] = (repl_t){KINFER_T_IDF, KINFER_DTYPE_F32, 1, (uint32_t)keep_rows, idf,
                                            sizeof(float) * (size_t)keep_rows, 0};
                }
        }
        kinfer_strbuf_printf(&params, "{\"rows_before\": %d, \"rows_kept\": %d, \"criterion\": \"%s\", "
                                      "\"min_kept_importance\": %.6g, \"dense_sparsity\": %g, \"dense\": [",
                             n_rows, keep_rows, crit == KINFER_PRUNE_IDF_NORM ? "idf*l2norm" : "l2norm",
                             min_kept, dense_sparsity);

        /* dense layers: magnitude pruning, stored in the smaller of CSR and the input dtype */
        const kinfer_dense_t *d[KINFER_MAX_HIDDEN + 1];
        uint32_t kinds[KINFER_MAX_HIDDEN + 1];
        const char *what[KINFER_MAX_HIDDEN + 1];
        int nd = dense_layers(src, d, kinds, what);
        for (int i = 0; i < nd && dense_sparsity > 0; i++) {
                const uint32_t rows = (uint32_t)d[i]->out, cols = (uint32_t)d[i]->in;
                const size_t n = (size_t)rows * cols;
                float *W = malloc(sizeof(float) * n);
                if (!W)
                        goto oom;
                kinfer_dense_to_f32(d[i], W);
                int64_t nnz = magnitude_prune(W, n, dense_sparsity);
                if (nnz < 0) {
                        free(W);
                        goto oom;
                }
                size_t in_size = kinfer_model_tensor(src, kinds[i])->size;
                size_t csr_size = csr_bytes(rows, (size_t)nnz);
                uint32_t dtype;
                uint8_t *buf;
                size_t size;
                if (csr_size < in_size || d[i]->dtype == KINFER_DTYPE_CSR) {
                        dtype = KINFER_DTYPE_CSR;
                        buf = csr_pack(W, rows, cols, &size);
                } else if (d[i]->dtype == KINFER_DTYPE_Q8) {
                        /* zero the pruned int8 values in place: the kept ones stay exact */
                        dtype = KINFER_DTYPE_Q8;
                        size = in_size;
                        buf = malloc(size);
                        if (buf) {
                                memcpy(buf, d[i]->q8, size);
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
                        goto oom;
                r[n_r++] = (repl_t){kinds[i], dtype, rows, cols, buf, size, 0};
                kinfer_strbuf_printf(&params, "%s{\"layer\": \"%s\", \"nnz\": %lld, \"of\": %zu, \"dtype\": \"%s\"}",
                                     i ? ", " : "", what[i], (long long)nnz, n, dtype_name(dtype));
        }
        kinfer_strbuf_printf(&params, "], \"compact_map\": %s%s%s}", compact ? "true" : "false",
                             extra_params ? ", " : "", extra_params ? extra_params : "");
        if (params.oom)
                goto oom;
        meta = kinfer_meta_derive(parent, name, "prune", "pruned_from", params.s, NULL, 0, NULL);
        if (!meta)
                goto oom;
        out = maybe_compact(rebuild(src, r, n_r, meta, errstr, errstr_size), compact, errstr, errstr_size);
        goto done;
oom:
        kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory while pruning");
done:
        repl_free(r, n_r);
        kinfer_strbuf_free(&params);
        free(meta);
        free(imp);
        free(rank);
        free(newidx);
        return out;
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

        /* prune, retrain from the pruned weights (dropped rows stay dropped: their buckets map
         * to no row), then re-prune the dense layers, which retraining made dense again */
        kinfer_model_t *pruned = prune_build(model, model, keep, opts->sparsity, opts->criterion,
                                             0, opts->name, NULL, errstr, errstr_size);
        if (!pruned)
                return NULL;
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
        kinfer_model_release(pruned);
        if (!retrained)
                return NULL;
        kinfer_strbuf_t extra = {0};
        const char *base = strrchr(opts->retrain_data->path, '/');
        char sha[65];
        kinfer_hex(opts->retrain_data->sha256, 32, sha);
        kinfer_strbuf_printf(&extra, "\"retrain\": {\"file\": ");
        kinfer_strbuf_json_str(&extra, base ? base + 1 : opts->retrain_data->path);
        kinfer_strbuf_printf(&extra, ", \"sha256\": \"%s\", \"epochs\": %d, \"lr\": %g, \"final_loss\": %.6g}",
                             sha, to.epochs, to.lr, res.final_loss);
        kinfer_model_t *out = NULL;
        if (extra.oom)
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
        else
                out = prune_build(retrained, model, retrained->n_rows, opts->sparsity, opts->criterion,
                                  !opts->dense_map, opts->name, extra.s, errstr, errstr_size);
        kinfer_strbuf_free(&extra);
        kinfer_model_release(retrained);
        return out;
}

/* ---- distill ------------------------------------------------------------------------------ */

#define DISTILL_BATCH 256

float *kinfer_distill_soft_targets(const kinfer_model_t *teacher, const kinfer_dataset_t *ds,
                                   float temperature, char *errstr, size_t errstr_size)
{
        if (!(temperature > 0)) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                              "temperature must be > 0 (got %g)", temperature);
                return NULL;
        }
        const int32_t L = teacher->n_labels;
        float *q = malloc(sizeof(float) * (size_t)(ds->n ? ds->n : 1) * (size_t)L);
        kinfer_runtime_t *rt = kinfer_runtime_new(DISTILL_BATCH, errstr, errstr_size);
        if (!q || !rt) {
                if (!q)
                        kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory (soft targets)");
                free(q);
                kinfer_runtime_destroy(rt);
                return NULL;
        }
        for (int32_t i = 0; i < ds->n; i += DISTILL_BATCH) {
                int32_t n = ds->n - i < DISTILL_BATCH ? ds->n - i : DISTILL_BATCH;
                float *z = q + (size_t)i * L;
                if (kinfer_runtime_logits(rt, teacher, ds->texts + i, ds->lens + i, n, z, errstr,
                                          errstr_size)) {
                        free(q);
                        kinfer_runtime_destroy(rt);
                        return NULL;
                }
                for (int32_t r = 0; r < n; r++) {
                        float *p = z + (size_t)r * L;
                        for (int32_t j = 0; j < L; j++)
                                p[j] /= temperature;
                        kinfer_softmax(p, L);
                }
        }
        kinfer_runtime_destroy(rt);
        return q;
}

kinfer_model_t *kinfer_distill(const kinfer_model_t *teacher, const kinfer_dataset_t *labelled,
                               const kinfer_dataset_t *unlabelled,
                               const kinfer_train_opts_t *student, float temperature, float alpha,
                               kinfer_train_result_t *res, char *errstr, size_t errstr_size)
{
        if (!labelled && !unlabelled) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG, "no data to distill on");
                return NULL;
        }
        if (!(alpha >= 0 && alpha <= 1)) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                              "alpha must be in [0, 1] (got %g)", alpha);
                return NULL;
        }
        /* one dataset over both files: views into their buffers, labels NULL for plain text */
        const int32_t n1 = labelled ? labelled->n : 0, n2 = unlabelled ? unlabelled->n : 0;
        const int32_t n = n1 + n2;
        kinfer_dataset_t all;
        memset(&all, 0, sizeof(all));
        const kinfer_dataset_t *first = labelled ? labelled : unlabelled;
        snprintf(all.path, sizeof(all.path), "%s", first->path);
        all.format = first->format;
        memcpy(all.sha256, first->sha256, 32);
        all.n = n;
        all.texts = malloc(sizeof(char *) * (size_t)(n ? n : 1));
        all.lens = malloc(sizeof(size_t) * (size_t)(n ? n : 1));
        all.labels = calloc((size_t)(n ? n : 1), sizeof(char *));
        all.line_no = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
        all.words = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
        kinfer_model_t *model = NULL;
        float *q = NULL;
        kinfer_strbuf_t params = {0};
        if (!all.texts || !all.lens || !all.labels || !all.line_no || !all.words) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                goto out;
        }
        for (int32_t i = 0; i < n; i++) {
                const kinfer_dataset_t *ds = i < n1 ? labelled : unlabelled;
                int32_t k = i < n1 ? i : i - n1;
                all.texts[i] = ds->texts[k];
                all.lens[i] = ds->lens[k];
                all.labels[i] = ds->labels ? ds->labels[k] : NULL;
                all.line_no[i] = ds->line_no[k];
                all.words[i] = ds->words[k];
        }
        q = kinfer_distill_soft_targets(teacher, &all, temperature, errstr, errstr_size);
        if (!q)
                goto out;

        char sha[65];
        kinfer_strbuf_printf(&params, "{\"teacher\": \"%s\", \"data\": ", teacher->sha_hex);
        if (labelled) {
                const char *b = strrchr(labelled->path, '/');
                kinfer_hex(labelled->sha256, 32, sha);
                kinfer_strbuf_printf(&params, "{\"file\": ");
                kinfer_strbuf_json_str(&params, b ? b + 1 : labelled->path);
                kinfer_strbuf_printf(&params, ", \"sha256\": \"%s\", \"records\": %d}", sha, n1);
        } else {
                kinfer_strbuf_printf(&params, "null");
        }
        kinfer_strbuf_printf(&params, ", \"unlabelled\": ");
        if (unlabelled) {
                const char *b = strrchr(unlabelled->path, '/');
                kinfer_hex(unlabelled->sha256, 32, sha);
                kinfer_strbuf_printf(&params, "{\"file\": ");
                kinfer_strbuf_json_str(&params, b ? b + 1 : unlabelled->path);
                kinfer_strbuf_printf(&params, ", \"sha256\": \"%s\", \"records\": %d}", sha, n2);
        } else {
                kinfer_strbuf_printf(&params, "null");
        }
        kinfer_strbuf_printf(&params, "}");
        if (params.oom) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                goto out;
        }
        kinfer_train_opts_t o = *student;
        o.soft_targets = q;
        o.temperature = temperature;
        o.alpha = alpha;
        o.label_order = (const char *const *)teacher->labels;
        o.n_label_order = teacher->n_labels;
        o.init_model = NULL;
        o.lineage_method = "distill";
        o.lineage_relation = "distilled_from";
        o.lineage_params_json = params.s;
        o.parents = (const kinfer_model_t *const *)&teacher;
        o.n_parents = 1;
        model = kinfer_train(&all, &o, res, errstr, errstr_size);
out:
        kinfer_strbuf_free(&params);
        free(q);
        free(all.texts);
        free(all.lens);
        free(all.labels);
        free(all.line_no);
        free(all.words);
        return model;
}
