/* SPDX-License-Identifier: Apache-2.0 */
/* rebuild.c -- a model copied with some tensors replaced: the one way quantize, prune and the
 * training's calibration derive a model from another; and the rewrite of a model's bucket map
 * as the stored rank index (compact_map) that quantize and prune apply to their outputs. */
#include <stdlib.h>
#include <string.h>

#include "kinfer/model/model_write.h"
#include "text/bucket_rank.h"
#include "train/train_int.h"

/* The replacement for tensor kind @p kind (the first unused one), or -1. */
static int repl_find(const kinfer_repl_t *r, int n_r, uint32_t kind)
{
        for (int j = 0; j < n_r; j++)
                if (r[j].kind == kind && !r[j].used)
                        return j;
        return -1;
}

/* Add @p src's tensors (META as @p meta, or kept) with the replacements of @p r, then the
 * entries for kinds @p src lacks. */
static kinfer_err_t add_tensors(kinfer_model_builder_t *mb, const kinfer_model_t *src,
                                kinfer_repl_t *r, int n_r, const char *meta)
{
        kinfer_err_t err = KINFER_OK;
        for (int i = 0; i < src->n_tensors && !err; i++) {
                const kinfer_tensor_view_t *t = &src->tensors[i];
                if (t->kind == KINFER_T_META && meta) {
                        err = kinfer_model_builder_add(mb, KINFER_T_META, KINFER_DTYPE_BYTES, 1,
                                                       (uint32_t)strlen(meta), meta, strlen(meta));
                        continue;
                }
                int j = repl_find(r, n_r, t->kind);
                if (j < 0) {
                        err = kinfer_model_builder_add(mb, t->kind, t->dtype, t->rows, t->cols, t->data,
                                                       t->size);
                        continue;
                }
                r[j].used = 1;
                if (r[j].dtype != KINFER_REPL_DROP)
                        err = kinfer_model_builder_add(mb, r[j].kind, r[j].dtype, r[j].rows, r[j].cols,
                                                       r[j].data, r[j].size);
        }
        for (int j = 0; j < n_r && !err; j++)
                if (!r[j].used && r[j].dtype != KINFER_REPL_DROP)
                        err = kinfer_model_builder_add(mb, r[j].kind, r[j].dtype, r[j].rows, r[j].cols,
                                                       r[j].data, r[j].size);
        return err;
}

kinfer_model_t *kinfer_rebuild(const kinfer_model_t *src, kinfer_repl_t *r, int n_r, const char *meta,
                               char *errstr, size_t errstr_size)
{
        kinfer_model_builder_t *mb = kinfer_model_builder_new();
        if (!mb) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        kinfer_model_t *model = NULL;
        kinfer_err_t err = add_tensors(mb, src, r, n_r, meta);
        if (err) {
                kinfer_seterr(errstr, errstr_size, err, "out of memory while building the model");
        } else {
                model = kinfer_model_builder_load(mb, errstr, errstr_size);
        }
        kinfer_model_builder_destroy(mb);
        return model;
}

void kinfer_repl_free(kinfer_repl_t *r, int n_r)
{
        for (int j = 0; j < n_r; j++)
                free(r[j].data);
}

int32_t kinfer_bucket_row(const kinfer_model_t *m, uint32_t b)
{
        if (m->bucket_map)
                return m->bucket_map[b];
        if (m->rank.bits)
                return kinfer_bucket_rank_row(&m->rank, b);
        return (int32_t)b;
}

/* The embedding rows (and their idf) renumbered into bucket order, the dense map dropped and
 * the rank index @p packed stored (entries appended to @p r; @p packed is theirs). */
static int renumber(const kinfer_model_t *m, const int32_t *old_of, int64_t n, uint64_t *packed,
                    size_t rsize, kinfer_repl_t *r, int *n_r)
{
        const size_t stride = m->embed_stride;
        r[(*n_r)++] = (kinfer_repl_t){KINFER_T_BUCKET_RANK, KINFER_DTYPE_I32, 1, (uint32_t)(rsize / 4),
                                      packed, rsize, 0};
        r[(*n_r)++] = (kinfer_repl_t){KINFER_T_BUCKET_MAP, KINFER_REPL_DROP, 0, 0, NULL, 0, 0};
        uint8_t *E = malloc(stride * (size_t)(n ? n : 1));
        if (!E)
                return -1;
        r[(*n_r)++] = (kinfer_repl_t){KINFER_T_EMBED, m->embed_dtype, (uint32_t)n, (uint32_t)m->dim, E,
                                      stride * (size_t)n, 0};
        for (int64_t i = 0; i < n; i++)
                memcpy(E + (size_t)i * stride, m->embed + (size_t)old_of[i] * stride, stride);
        if (m->idf) {
                float *idf = malloc(sizeof(float) * (size_t)(n ? n : 1));
                if (!idf)
                        return -1;
                r[(*n_r)++] = (kinfer_repl_t){KINFER_T_IDF, KINFER_DTYPE_F32, 1, (uint32_t)n, idf,
                                              sizeof(float) * (size_t)n, 0};
                for (int64_t i = 0; i < n; i++)
                        idf[i] = m->idf[old_of[i]];
        }
        return 0;
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
        kinfer_repl_t r[4];
        int n_r = 0;
        kinfer_model_t *out = NULL;
        const size_t rsize = kinfer_bucket_rank_bytes(nb);
        int32_t *map = malloc(sizeof(int32_t) * nb), *old_of = malloc(sizeof(int32_t) * nb);
        uint8_t *seen = calloc((size_t)m->n_rows + 1, 1);
        uint64_t *packed = malloc(rsize); /* u64: the index wants 8-byte alignment */
        if (!map || !old_of || !seen || !packed)
                goto oom;
        for (uint32_t b = 0; b < nb; b++)
                map[b] = kinfer_bucket_row(m, b);
        int64_t n = kinfer_bucket_rank_pack(map, nb, packed, old_of, seen);
        if (n != m->n_rows) {
                out = kinfer_model_keep(m); /* rows shared or unreachable: keep the dense map */
                goto done;
        }
        int failed = renumber(m, old_of, n, packed, rsize, r, &n_r);
        packed = NULL; /* r's now */
        if (failed)
                goto oom;
        out = kinfer_rebuild(m, r, n_r, m->meta_json, errstr, errstr_size);
        if (!out && strstr(errstr, "unknown kind"))
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                              "this kinfer's model loader cannot read a stored bucket rank index "
                              "(tensor kind %d); write with --dense-map",
                              KINFER_T_BUCKET_RANK);
        goto done;
oom:
        kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory (bucket rank index)");
done:
        kinfer_repl_free(r, n_r);
        free(map);
        free(old_of);
        free(seen);
        free(packed);
        return out;
}

/* Rewrite @p m with the dense int32 bucket map instead of a stored rank index (the rows keep
 * their order: the index numbers them in bucket order). A model without a stored index is
 * returned as it is (a new reference). */
static kinfer_model_t *dense_map(kinfer_model_t *m, char *errstr, size_t errstr_size)
{
        if (!kinfer_model_tensor(m, KINFER_T_BUCKET_RANK))
                return kinfer_model_keep(m);
        const uint32_t nb = (uint32_t)m->n_buckets;
        int32_t *map = malloc(sizeof(int32_t) * (nb ? nb : 1));
        if (!map) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory (bucket map)");
                return NULL;
        }
        for (uint32_t b = 0; b < nb; b++)
                map[b] = kinfer_bucket_row(m, b);
        kinfer_repl_t r[2] = {{KINFER_T_BUCKET_MAP, KINFER_DTYPE_I32, 1, nb, map, sizeof(int32_t) * nb, 0},
                              {KINFER_T_BUCKET_RANK, KINFER_REPL_DROP, 0, 0, NULL, 0, 0}};
        kinfer_model_t *out = kinfer_rebuild(m, r, 2, m->meta_json, errstr, errstr_size);
        kinfer_repl_free(r, 2);
        return out;
}

kinfer_model_t *kinfer_maybe_compact(kinfer_model_t *m, int on, char *errstr, size_t errstr_size)
{
        if (!m)
                return m;
        kinfer_model_t *c = on ? compact_map(m, errstr, errstr_size) : dense_map(m, errstr, errstr_size);
        kinfer_model_release(m);
        return c;
}

int kinfer_dense_layers(const kinfer_model_t *model, const kinfer_dense_t **d, uint32_t *kind,
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

const char *kinfer_dtype_name(uint32_t dtype)
{
        switch (dtype) {
        case KINFER_DTYPE_F32: return "f32";
        case KINFER_DTYPE_Q8: return "q8";
        case KINFER_DTYPE_CSR: return "csr";
        default: return "?";
        }
}
