/* SPDX-License-Identifier: Apache-2.0 */
/* model.c -- load a model file (mmap) or buffer, verify every byte of it, and set up the
 * weight views. A bad file is input, not a programmer error: every check returns a message
 * that names the problem. */
#include "model/model_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "text/bucket_rank.h"
#include "kinfer/core/json.h"
#include "kinfer/core/sha256.h"
#include "kinfer/core/utf8.h"

static uint32_t rd32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p)
{
        return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* Drop this process's resident pages of a mapped range that serving does not read again: the
 * dense bucket map once the rank index has been derived from it (8 MiB of a default model,
 * docs/benchmarks.md "Peak RSS"). The mapping is private and read-only, so a later read (prune,
 * quantize) faults the same page-cache bytes back in; nothing is lost but residency. Only the
 * whole pages inside the range are dropped. */
static void release_pages(const void *p, size_t n)
{
        long pg = sysconf(_SC_PAGESIZE);
        if (pg <= 0)
                return;
        uintptr_t mask = (uintptr_t)pg - 1;
        uintptr_t a = ((uintptr_t)p + mask) & ~mask, e = ((uintptr_t)p + n) & ~mask;
        if (e > a)
                (void)madvise((void *)a, e - a, MADV_DONTNEED); /* advice: failing costs only RSS */
}

static void model_free(kinfer_model_t *model)
{
        if (!model)
                return;
        if (model->blob) {
                if (model->mapped)
                        munmap(model->blob, model->size);
                else
                        free(model->blob);
        }
        if (model->rank_owned)
                kinfer_bucket_rank_term(&model->rank);
        free(model->labels);
        free(model->meta_json);
        free(model->parents);
        free(model->ref_labels);
        free(model);
}

const kinfer_tensor_view_t *kinfer_model_tensor(const kinfer_model_t *model, uint32_t kind)
{
        for (int i = 0; i < model->n_tensors; i++)
                if (model->tensors[i].kind == kind)
                        return &model->tensors[i];
        return NULL;
}

static int kind_known(uint32_t kind)
{
        switch (kind) {
        case KINFER_T_META: case KINFER_T_LABELS: case KINFER_T_FEATURIZER: case KINFER_T_ARCH:
        case KINFER_T_BUCKET_MAP: case KINFER_T_IDF: case KINFER_T_EMBED: case KINFER_T_BIAS:
        case KINFER_T_BUCKET_RANK: case KINFER_T_CALIB:
        case KINFER_T_FT_DICT: case KINFER_T_FT_TREE:
        case KINFER_T_OUT_W: case KINFER_T_OUT_B:
                return 1;
        default:
                return kind >= KINFER_T_HIDDEN_W && kind < KINFER_T_HIDDEN_W + 2 * KINFER_MAX_HIDDEN;
        }
}

/* Expected byte size of a tensor, or 0 when the dtype does not say (BYTES, CSR). */
static uint64_t dtype_size(uint32_t dtype, uint32_t rows, uint32_t cols)
{
        switch (dtype) {
        case KINFER_DTYPE_F32: case KINFER_DTYPE_I32: return (uint64_t)rows * cols * 4;
        case KINFER_DTYPE_Q8: return (uint64_t)rows * kinfer_q8_stride(cols);
        default: return 0;
        }
}

#define FAIL(...) do { kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT, __VA_ARGS__); return -1; } while (0)

static int setup_dense(kinfer_dense_t *d, const kinfer_tensor_view_t *w,
                       const kinfer_tensor_view_t *b, const char *what, char *errstr,
                       size_t errstr_size)
{
        if (!w)
                FAIL("%s weights are missing", what);
        d->out = (int32_t)w->rows;
        d->in = (int32_t)w->cols;
        d->dtype = w->dtype;
        if (w->dtype == KINFER_DTYPE_F32) {
                d->w = (const float *)w->data;
        } else if (w->dtype == KINFER_DTYPE_Q8) {
                d->q8 = w->data;
        } else if (w->dtype == KINFER_DTYPE_CSR) {
                if (w->size < 4)
                        FAIL("%s: sparse weights truncated", what);
                uint32_t nnz = rd32(w->data);
                uint64_t need = 4 + 4 * ((uint64_t)w->rows + 1) + 8 * (uint64_t)nnz;
                if (need != w->size)
                        FAIL("%s: sparse weights are %llu bytes, nnz=%u needs %llu", what,
                             (unsigned long long)w->size, nnz, (unsigned long long)need);
                d->csr_ptr = (const uint32_t *)(w->data + 4);
                d->csr_col = d->csr_ptr + w->rows + 1;
                d->csr_val = (const float *)(d->csr_col + nnz);
                if (d->csr_ptr[0] != 0 || d->csr_ptr[w->rows] != nnz)
                        FAIL("%s: sparse row pointers are inconsistent", what);
                for (uint32_t r = 0; r < w->rows; r++)
                        if (d->csr_ptr[r] > d->csr_ptr[r + 1])
                                FAIL("%s: sparse row pointers decrease at row %u", what, r);
                for (uint32_t i = 0; i < nnz; i++)
                        if (d->csr_col[i] >= w->cols)
                                FAIL("%s: sparse column index %u out of range", what, d->csr_col[i]);
        } else {
                FAIL("%s: unsupported dtype %u", what, w->dtype);
        }
        if (b) {
                if (b->dtype != KINFER_DTYPE_F32 || b->rows * b->cols != w->rows)
                        FAIL("%s bias has %u values, expected %u", what, b->rows * b->cols, w->rows);
                d->b = (const float *)b->data;
        }
        return 0;
}

/* The first f32 of @p n at @p p (4-byte aligned, @p stride bytes apart) that is NaN or +-Inf,
 * or -1. Bit test: no libm, vectorisable. */
static int64_t first_nonfinite(const uint8_t *p, uint64_t n, size_t stride)
{
        for (uint64_t i = 0; i < n; i++) {
                uint32_t bits;
                memcpy(&bits, p + i * stride, 4);
                if ((bits & 0x7f800000u) == 0x7f800000u)
                        return (int64_t)i;
        }
        return -1;
}

/* Refuse a tensor holding a number that is not finite (NaN, +-Inf): f32 values, q8 row scales,
 * CSR values. @p what names it in the message. */
static int check_finite(const kinfer_tensor_view_t *t, const char *what, char *errstr,
                        size_t errstr_size)
{
        if (!t)
                return 0;
        int64_t bad = -1;
        if (t->dtype == KINFER_DTYPE_F32) {
                bad = first_nonfinite(t->data, t->size / 4, 4);
                if (bad >= 0 && t->cols)
                        FAIL("%s: the value at row %lld, column %lld is not a finite number", what,
                             (long long)(bad / t->cols), (long long)(bad % t->cols));
        } else if (t->dtype == KINFER_DTYPE_Q8) {
                bad = first_nonfinite(t->data, t->rows, kinfer_q8_stride(t->cols));
                if (bad >= 0)
                        FAIL("%s: the scale of row %lld is not a finite number", what, (long long)bad);
        } else if (t->dtype == KINFER_DTYPE_CSR) {
                uint32_t nnz = rd32(t->data);
                bad = first_nonfinite(t->data + 4 + 4 * ((uint64_t)t->rows + 1) + 4 * (uint64_t)nnz, nnz, 4);
                if (bad >= 0)
                        FAIL("%s: sparse value %lld is not a finite number", what, (long long)bad);
        }
        return 0;
}

/* fastText's Huffman tree: internal node L + i has two children below it, and every node but
 * the root (2L - 2) is the child of exactly one node (so the depth-first search ends). */
static int check_tree(const int32_t *tree, int32_t L, char *errstr, size_t errstr_size)
{
        if (L < 2)
                return 0;
        uint8_t *seen = calloc((size_t)(2 * L - 1), 1);
        if (!seen)
                FAIL("out of memory");
        for (int32_t i = 0; i < L - 1; i++)
                for (int c = 0; c < 2; c++) {
                        int32_t ch = tree[2 * i + c];
                        if (ch < 0 || ch >= L + i || seen[ch]++) {
                                free(seen);
                                FAIL("hierarchical softmax: node %d has child %d (children must be "
                                     "earlier nodes, each with one parent)", L + i, ch);
                        }
                }
        free(seen);
        return 0;
}

/* One histogram of the drift reference: exactly @p n finite numbers >= 0 with a positive sum
 * (the JSON reader has refused NaN and infinities already). */
static int ref_hist(const kinfer_json_t *arr, int32_t n, double *out, const char *what,
                    char *errstr, size_t errstr_size)
{
        if (kinfer_json_type(arr) != KINFER_JSON_ARRAY)
                FAIL("metadata: drift_reference.%s is missing or not an array", what);
        if (kinfer_json_size(arr) != (size_t)n)
                FAIL("metadata: drift_reference.%s has %zu values, expected %d", what,
                     kinfer_json_size(arr), (int)n);
        double sum = 0;
        for (int32_t i = 0; i < n; i++) {
                const kinfer_json_t *v = kinfer_json_at(arr, (size_t)i);
                kinfer_json_type_t ty = kinfer_json_type(v);
                double d = kinfer_json_number(v);
                if ((ty != KINFER_JSON_INT && ty != KINFER_JSON_REAL) || !(d >= 0) || d > 1e18)
                        FAIL("metadata: drift_reference.%s[%d] is not a number in [0, 1e18]", what,
                             (int)i);
                out[i] = d;
                sum += d;
        }
        if (!(sum > 0))
                FAIL("metadata: drift_reference.%s sums to 0", what);
        return 0;
}

/* META "drift_reference" (model.h): absent is fine; present must be valid. */
static int parse_reference(kinfer_model_t *model, const kinfer_json_t *ref, char *errstr,
                           size_t errstr_size)
{
        if (!ref)
                return 0;
        if (kinfer_json_type(ref) != KINFER_JSON_OBJECT)
                FAIL("metadata: drift_reference is not an object");
        int64_t bins = 0, records = 0;
        if (!kinfer_json_int(kinfer_json_get(ref, "bins"), &bins) || bins != KINFER_REF_BINS)
                FAIL("metadata: drift_reference.bins must be %d", KINFER_REF_BINS);
        if (!kinfer_json_int(kinfer_json_get(ref, "records"), &records) || records < 0)
                FAIL("metadata: drift_reference.records is not an integer >= 0");
        model->ref_labels = malloc((size_t)(model->n_labels > 0 ? model->n_labels : 1) * sizeof(double));
        if (!model->ref_labels)
                FAIL("out of memory");
        if (ref_hist(kinfer_json_get(ref, "labels"), model->n_labels, model->ref_labels, "labels",
                     errstr, errstr_size) ||
            ref_hist(kinfer_json_get(ref, "confidence"), KINFER_REF_BINS, model->ref.confidence,
                     "confidence", errstr, errstr_size))
                return -1;
        const char *s = kinfer_json_str(kinfer_json_get(ref, "data"), NULL);
        snprintf(model->ref.data, sizeof(model->ref.data), "%s", s ? s : "");
        s = kinfer_json_str(kinfer_json_get(ref, "file"), NULL);
        snprintf(model->ref.file, sizeof(model->ref.file), "%s", s ? s : "");
        model->ref.records = records;
        model->ref.n_labels = model->n_labels;
        model->ref.labels = model->ref_labels;
        model->has_ref = 1;
        return 0;
}

static int parse_meta(kinfer_model_t *model, const kinfer_tensor_view_t *t, char *errstr,
                      size_t errstr_size)
{
        model->meta_json = malloc(t->size + 1);
        if (!model->meta_json)
                FAIL("out of memory");
        memcpy(model->meta_json, t->data, t->size);
        model->meta_json[t->size] = '\0';
        char jerr[160];
        kinfer_json_doc_t *doc = NULL;
        kinfer_err_t err = kinfer_json_parse((const char *)t->data, t->size, &doc, jerr, sizeof(jerr));
        if (err == KINFER_ERR__NOMEM)
                FAIL("out of memory");
        const kinfer_json_t *root = kinfer_json_root(doc);
        if (err || kinfer_json_type(root) != KINFER_JSON_OBJECT) {
                kinfer_json_free(doc);
                FAIL("metadata is not a JSON object (%s)", err ? jerr : "another JSON value");
        }
        if (parse_reference(model, kinfer_json_get(root, "drift_reference"), errstr, errstr_size)) {
                kinfer_json_free(doc);
                return -1;
        }
        const char *s = kinfer_json_str(kinfer_json_get(root, "name"), NULL);
        snprintf(model->name, sizeof(model->name), "%s", s ? s : "");
        const kinfer_json_t *lin = kinfer_json_get(root, "lineage");
        s = kinfer_json_str(kinfer_json_get(lin, "method"), NULL);
        snprintf(model->method, sizeof(model->method), "%s", s ? s : "");
        /* pruned: said by `kinfer prune` (kinfer_meta_derive) and kept by every model derived
         * from it (quantize keeps the parent's members); files from before the flag say it by
         * their lineage method only */
        model->pruned = kinfer_json_type(kinfer_json_get(root, "pruned")) == KINFER_JSON_TRUE ||
                        !strcmp(model->method, "prune");
        const kinfer_json_t *parents = kinfer_json_get(lin, "parents");
        size_t n = kinfer_json_type(parents) == KINFER_JSON_ARRAY ? kinfer_json_size(parents) : 0;
        if (n > 0) {
                model->parents = calloc(n, sizeof(*model->parents));
                if (!model->parents) {
                        kinfer_json_free(doc);
                        FAIL("out of memory");
                }
                for (size_t i = 0; i < n; i++) {
                        const kinfer_json_t *p = kinfer_json_at(parents, i);
                        kinfer_model_parent_t *mp = &model->parents[model->n_parents];
                        size_t sha_len;
                        const char *sha = kinfer_json_str(kinfer_json_get(p, "sha256"), &sha_len);
                        if (!sha || sha_len != 64)
                                continue;
                        snprintf(mp->sha256, sizeof(mp->sha256), "%s", sha);
                        s = kinfer_json_str(kinfer_json_get(p, "name"), NULL);
                        snprintf(mp->name, sizeof(mp->name), "%s", s ? s : "");
                        int64_t version;
                        kinfer_json_int(kinfer_json_get(p, "version"), &version);
                        mp->version = (int32_t)version;
                        s = kinfer_json_str(kinfer_json_get(p, "relation"), NULL);
                        snprintf(mp->relation, sizeof(mp->relation), "%s", s ? s : "");
                        model->n_parents++;
                }
        }
        kinfer_json_free(doc);
        return 0;
}

/* Verify the blob and set up every view. */
static int model_setup(kinfer_model_t *model, char *errstr, size_t errstr_size)
{
        const uint8_t *b = model->blob;
        size_t size = model->size;
        if (size < 64)
                FAIL("truncated: %zu bytes, shorter than the 64-byte header", size);
        if (memcmp(b, KINFER_MODEL_MAGIC, 4))
                FAIL("not a kinfer model: bad magic bytes (expected \"KINF\")");
        uint32_t version = rd32(b + 4);
        if (version != KINFER_MODEL_VERSION)
                FAIL("unsupported format version %u (this kinfer reads version %d)", version,
                     KINFER_MODEL_VERSION);
        uint32_t n_tensors = rd32(b + 8);
        uint64_t file_size = rd64(b + 16);
        if (file_size > size)
                FAIL("truncated: header says %llu bytes, only %zu present",
                     (unsigned long long)file_size, size);
        if (file_size < size)
                FAIL("trailing data: header says %llu bytes, file has %zu",
                     (unsigned long long)file_size, size);
        if (n_tensors == 0 || n_tensors > KINFER_MAX_TENSORS || 64 + 32 * (uint64_t)n_tensors > size)
                FAIL("bad tensor count %u", n_tensors);
        uint8_t digest[32];
        if (kinfer_sha256_pair(b, size, 64, digest, model->sha_hex))
                FAIL("cannot compute sha256 (libcrypto error)");
        if (memcmp(digest, b + 24, 32)) {
                char want[65], got[65];
                kinfer_hex(b + 24, 32, want);
                kinfer_hex(digest, 32, got);
                FAIL("checksum mismatch: content sha256 is %.12s..., header says %.12s... (file corrupt)",
                     got, want);
        }

        model->n_tensors = (int)n_tensors;
        for (uint32_t i = 0; i < n_tensors; i++) {
                const uint8_t *e = b + 64 + 32 * i;
                kinfer_tensor_view_t *t = &model->tensors[i];
                t->kind = rd32(e);
                t->dtype = rd32(e + 4);
                t->rows = rd32(e + 8);
                t->cols = rd32(e + 12);
                uint64_t off = rd64(e + 16);
                t->size = rd64(e + 24);
                if (!kind_known(t->kind))
                        FAIL("tensor %u has unknown kind %u", i, t->kind);
                if (off % 64 || off < 64 + 32 * (uint64_t)n_tensors || off > size || t->size > size - off)
                        FAIL("tensor %u (kind %u) lies outside the file (offset %llu, size %llu)",
                             i, t->kind, (unsigned long long)off, (unsigned long long)t->size);
                uint64_t want = dtype_size(t->dtype, t->rows, t->cols);
                if (t->dtype > KINFER_DTYPE_CSR)
                        FAIL("tensor %u (kind %u) has unknown dtype %u", i, t->kind, t->dtype);
                if (want && want != t->size)
                        FAIL("tensor %u (kind %u) is %llu bytes, its shape %ux%u needs %llu", i,
                             t->kind, (unsigned long long)t->size, t->rows, t->cols,
                             (unsigned long long)want);
                t->data = b + off;
        }

        const kinfer_tensor_view_t *t;
        if (!(t = kinfer_model_tensor(model, KINFER_T_FEATURIZER)) || t->size != sizeof(model->feat))
                FAIL("featurizer settings are missing or the wrong size");
        memcpy(&model->feat, t->data, sizeof(model->feat));
        const char *why = kinfer_featurizer_conf_check(&model->feat);
        if (why)
                FAIL("featurizer settings: %s", why);
        model->n_buckets = (int32_t)model->feat.n_buckets;

        if (!(t = kinfer_model_tensor(model, KINFER_T_ARCH)) || t->dtype != KINFER_DTYPE_I32 ||
            t->rows * t->cols < 3)
                FAIL("architecture record is missing");
        const int32_t *arch = (const int32_t *)t->data;
        model->dim = arch[0];
        model->n_hidden = arch[1];
        model->n_labels = arch[2];
        /* widths size the runtime's buffers: bound them, so a crafted header cannot make a
         * loader or runtime allocate gigabytes (found by tests/fuzz/fuzz_model.c) */
        if (model->dim < 1 || model->dim > KINFER_MAX_WIDTH || model->n_labels < 1 ||
            model->n_labels > KINFER_MAX_WIDTH || model->n_hidden < 0 ||
            model->n_hidden > KINFER_MAX_HIDDEN)
                FAIL("architecture out of range (dim %d, hidden layers %d, labels %d; widths up to %d)",
                     model->dim, model->n_hidden, model->n_labels, KINFER_MAX_WIDTH);
        model->out_kind = t->rows * t->cols >= 5 ? arch[4] : KINFER_OUT_SOFTMAX;
        if (model->out_kind < KINFER_OUT_SOFTMAX || model->out_kind > KINFER_OUT_FT_SIGMOID)
                FAIL("architecture: output kind %d is unknown (0 softmax, 1 fastText hs, 2 fastText "
                     "sigmoid)", model->out_kind);
        if ((t = kinfer_model_tensor(model, KINFER_T_FT_DICT))) {
                if (model->feat.mode != KINFER_FEAT_MODE_FASTTEXT || t->dtype != KINFER_DTYPE_BYTES)
                        FAIL("a fastText dictionary in a model whose featurizer is not fasttext");
                const char *bad = kinfer_ft_dict_view(&model->ft, &model->feat, t->data, t->size);
                if (bad)
                        FAIL("%s", bad);
        } else if (model->feat.mode == KINFER_FEAT_MODE_FASTTEXT) {
                FAIL("featurizer mode fasttext without its dictionary (tensor kind %d)", KINFER_T_FT_DICT);
        }
        if (model->out_kind == KINFER_OUT_FT_HS) {
                t = kinfer_model_tensor(model, KINFER_T_FT_TREE);
                if (!t || t->dtype != KINFER_DTYPE_I32 || t->rows != (uint32_t)model->n_labels - 1 ||
                    (model->n_labels > 1 && t->cols != 2))
                        FAIL("hierarchical softmax: the tree is missing or not %d x 2", model->n_labels - 1);
                if (check_tree((const int32_t *)t->data, model->n_labels, errstr, errstr_size))
                        return -1;
                model->ft_tree = (const int32_t *)t->data;
        }

        if (!(t = kinfer_model_tensor(model, KINFER_T_LABELS)) || t->dtype != KINFER_DTYPE_BYTES)
                FAIL("labels are missing");
        if ((uint64_t)model->n_labels > t->size)
                FAIL("labels: %d labels declared in %llu bytes", model->n_labels,
                     (unsigned long long)t->size);
        model->labels = calloc((size_t)model->n_labels, sizeof(char *));
        if (!model->labels)
                FAIL("out of memory");
        {
                const char *p = (const char *)t->data, *end = p + t->size;
                for (int32_t i = 0; i < model->n_labels; i++) {
                        const char *z = memchr(p, '\0', (size_t)(end - p));
                        if (!z)
                                FAIL("labels: %d labels declared, only %d present", model->n_labels, i);
                        const char *bad = kinfer_label_check(p, (size_t)(z - p));
                        if (bad)
                                FAIL("labels: label %d: %s", i, bad);
                        model->labels[i] = (char *)p;
                        p = z + 1;
                }
        }

        if (!(t = kinfer_model_tensor(model, KINFER_T_EMBED)))
                FAIL("embedding table is missing");
        if (t->dtype != KINFER_DTYPE_F32 && t->dtype != KINFER_DTYPE_Q8)
                FAIL("embedding table has unsupported dtype %u", t->dtype);
        if ((int32_t)t->cols != model->dim)
                FAIL("embedding table is %u wide, architecture says %d", t->cols, model->dim);
        model->embed_dtype = t->dtype;
        model->embed = t->data;
        model->n_rows = (int32_t)t->rows;
        model->embed_stride = t->dtype == KINFER_DTYPE_F32 ? (size_t)t->cols * 4 : kinfer_q8_stride(t->cols);

        if ((t = kinfer_model_tensor(model, KINFER_T_BUCKET_RANK))) {
                if (t->dtype != KINFER_DTYPE_I32 ||
                    kinfer_bucket_rank_view(&model->rank, t->data, t->size, (uint32_t)model->n_buckets))
                        FAIL("bucket rank index is %llu bytes, %d buckets need %zu",
                             (unsigned long long)t->size, model->n_buckets,
                             kinfer_bucket_rank_bytes((uint32_t)model->n_buckets));
                const char *bad = kinfer_bucket_rank_check(&model->rank, (uint32_t)model->n_buckets,
                                                           model->n_rows);
                if (bad)
                        FAIL("%s", bad);
        }
        if ((t = kinfer_model_tensor(model, KINFER_T_BUCKET_MAP))) {
                if (t->dtype != KINFER_DTYPE_I32 || t->rows * t->cols != (uint32_t)model->n_buckets)
                        FAIL("bucket map has %u entries, featurizer has %d buckets", t->rows * t->cols,
                             model->n_buckets);
                model->bucket_map = (const int32_t *)t->data;
                for (int32_t i = 0; i < model->n_buckets; i++)
                        if (model->bucket_map[i] < -1 || model->bucket_map[i] >= model->n_rows)
                                FAIL("bucket map entry %d points at row %d of %d", i,
                                     model->bucket_map[i], model->n_rows);
                if (!model->rank.bits) {
                        int rc = kinfer_bucket_rank_build(&model->rank, model->bucket_map,
                                                          (uint32_t)model->n_buckets);
                        if (rc < 0)
                                FAIL("out of memory (bucket rank index)");
                        model->rank_owned = rc == 0;
                        if (rc == 0 && model->mapped)
                                release_pages(model->bucket_map, sizeof(int32_t) * (size_t)model->n_buckets);
                }
        } else if (!model->rank.bits && model->n_rows != model->n_buckets) {
                FAIL("embedding table has %d rows for %d buckets and no bucket map", model->n_rows,
                     model->n_buckets);
        }
        if ((t = kinfer_model_tensor(model, KINFER_T_IDF))) {
                if (t->dtype != KINFER_DTYPE_F32 || t->rows * t->cols != (uint32_t)model->n_rows)
                        FAIL("idf has %u values for %d rows", t->rows * t->cols, model->n_rows);
                model->idf = (const float *)t->data;
        }
        if ((t = kinfer_model_tensor(model, KINFER_T_BIAS))) {
                if (t->dtype != KINFER_DTYPE_F32 || t->rows * t->cols != (uint32_t)model->dim)
                        FAIL("bias has %u values for width %d", t->rows * t->cols, model->dim);
                model->bias = (const float *)t->data;
        }
        int32_t width = model->dim;
        for (int i = 0; i < model->n_hidden; i++) {
                char what[32];
                snprintf(what, sizeof(what), "hidden layer %d", i);
                if (setup_dense(&model->hidden[i], kinfer_model_tensor(model, KINFER_T_HIDDEN_W + 2 * i),
                                kinfer_model_tensor(model, KINFER_T_HIDDEN_B + 2 * i), what, errstr,
                                errstr_size))
                        return -1;
                if (model->hidden[i].out < 1 || model->hidden[i].out > KINFER_MAX_WIDTH)
                        FAIL("%s is %d wide (1 to %d)", what, model->hidden[i].out, KINFER_MAX_WIDTH);
                if (model->hidden[i].in != width)
                        FAIL("%s takes %d inputs, previous width is %d", what, model->hidden[i].in, width);
                width = model->hidden[i].out;
        }
        if ((t = kinfer_model_tensor(model, KINFER_T_OUT_W))) {
                if (setup_dense(&model->out, t, kinfer_model_tensor(model, KINFER_T_OUT_B),
                                "output layer", errstr, errstr_size))
                        return -1;
                if (model->out.in != width || model->out.out != model->n_labels)
                        FAIL("output layer is %dx%d, expected %dx%d", model->out.out, model->out.in,
                             model->n_labels, width);
        } else if (width != model->n_labels) {
                FAIL("no output layer, but the last width %d is not the %d labels", width,
                     model->n_labels);
        }

        /* every weight a finite number (a diverged training run wrote NaN weights once) */
        if (check_finite(kinfer_model_tensor(model, KINFER_T_EMBED), "embedding table", errstr, errstr_size) ||
            check_finite(kinfer_model_tensor(model, KINFER_T_IDF), "idf", errstr, errstr_size) ||
            check_finite(kinfer_model_tensor(model, KINFER_T_BIAS), "bias", errstr, errstr_size) ||
            check_finite(kinfer_model_tensor(model, KINFER_T_OUT_W), "output layer", errstr, errstr_size) ||
            check_finite(kinfer_model_tensor(model, KINFER_T_OUT_B), "output layer bias", errstr, errstr_size))
                return -1;
        for (int i = 0; i < model->n_hidden; i++) {
                char what[48];
                snprintf(what, sizeof(what), "hidden layer %d", i);
                if (check_finite(kinfer_model_tensor(model, KINFER_T_HIDDEN_W + 2 * i), what, errstr, errstr_size))
                        return -1;
                snprintf(what, sizeof(what), "hidden layer %d bias", i);
                if (check_finite(kinfer_model_tensor(model, KINFER_T_HIDDEN_B + 2 * i), what, errstr, errstr_size))
                        return -1;
        }

        model->temperature = 1.0f;
        if ((t = kinfer_model_tensor(model, KINFER_T_CALIB))) {
                if (t->dtype != KINFER_DTYPE_F32 || t->rows * t->cols != 1)
                        FAIL("calibration record is not one f32");
                memcpy(&model->temperature, t->data, 4);
                if (!(model->temperature > 0.01f && model->temperature < 100.0f))
                        FAIL("calibration temperature %g is out of range (0.01, 100)",
                             (double)model->temperature);
        }
        if (!(t = kinfer_model_tensor(model, KINFER_T_META)))
                FAIL("metadata is missing");
        if (parse_meta(model, t, errstr, errstr_size))
                return -1;
        snprintf(model->format, sizeof(model->format), "%s%s",
                 model->embed_dtype == KINFER_DTYPE_Q8 ? "q8" : "f32",
                 model->pruned ? "+pruned" : "");
        return 0;
}

kinfer_model_t *kinfer_model_load_mem(const void *buf, size_t len, char *errstr, size_t errstr_size)
{
        kinfer_model_t *model = calloc(1, sizeof(*model));
        if (!model) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        atomic_init(&model->refcnt, 1);
        model->blob = aligned_alloc(64, (len + 63) & ~(size_t)63);
        if (!model->blob && len) {
                free(model);
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory (%zu bytes)", len);
                return NULL;
        }
        if (len)
                memcpy(model->blob, buf, len);
        model->size = len;
        if (model_setup(model, errstr, errstr_size)) {
                model_free(model);
                return NULL;
        }
        return model;
}

kinfer_model_t *kinfer_model_load_file(const char *path, char *errstr, size_t errstr_size)
{
        char why[400];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO, "%s: %s", path, strerror(errno));
                return NULL;
        }
        struct stat st;
        if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO, "%s: not a regular file", path);
                close(fd);
                return NULL;
        }
        kinfer_model_t *model = calloc(1, sizeof(*model));
        if (!model) {
                close(fd);
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        atomic_init(&model->refcnt, 1);
        model->size = (size_t)st.st_size;
        if (model->size > 0) {
                void *p = mmap(NULL, model->size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
                if (p == MAP_FAILED) {
                        kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO, "%s: mmap: %s", path,
                                      strerror(errno));
                        close(fd);
                        free(model);
                        return NULL;
                }
                model->blob = p;
                model->mapped = 1;
        }
        close(fd);
        if (model_setup(model, why, sizeof(why))) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT, "%s: %s", path, why);
                model_free(model);
                return NULL;
        }
        return model;
}

kinfer_model_t *kinfer_model_keep(kinfer_model_t *model)
{
        atomic_fetch_add(&model->refcnt, 1);
        return model;
}

void kinfer_model_release(kinfer_model_t *model)
{
        if (model && atomic_fetch_sub(&model->refcnt, 1) == 1)
                model_free(model);
}

int32_t kinfer_model_n_labels(const kinfer_model_t *model) { return model->n_labels; }
const char *kinfer_model_label(const kinfer_model_t *model, int32_t i)
{
        return i >= 0 && i < model->n_labels ? model->labels[i] : NULL;
}
int32_t kinfer_model_label_index(const kinfer_model_t *model, const char *label)
{
        for (int32_t i = 0; i < model->n_labels; i++)
                if (!strcmp(model->labels[i], label))
                        return i;
        return -1;
}
int32_t kinfer_model_n_buckets(const kinfer_model_t *model) { return model->n_buckets; }
int32_t kinfer_model_n_rows(const kinfer_model_t *model) { return model->n_rows; }
int32_t kinfer_model_dim(const kinfer_model_t *model) { return model->dim; }
int32_t kinfer_model_n_hidden(const kinfer_model_t *model) { return model->n_hidden; }
float kinfer_model_temperature(const kinfer_model_t *model) { return model->temperature; }
const char *kinfer_model_format(const kinfer_model_t *model) { return model->format; }
const char *kinfer_model_bucket_map_kind(const kinfer_model_t *model, size_t *bytes)
{
        const kinfer_tensor_view_t *t;
        const char *kind = "none";
        size_t size = 0;
        if ((t = kinfer_model_tensor(model, KINFER_T_BUCKET_MAP)))
                kind = "dense", size = t->size;
        else if ((t = kinfer_model_tensor(model, KINFER_T_BUCKET_RANK)))
                kind = "rank index", size = t->size;
        if (bytes)
                *bytes = size;
        return kind;
}
int kinfer_model_output_kind(const kinfer_model_t *model)
{
        return model->out_kind;
}

int kinfer_model_is_linear(const kinfer_model_t *model)
{
        return model->n_hidden == 0 && !kinfer_model_tensor(model, KINFER_T_OUT_W);
}
const char *kinfer_model_sha256_hex(const kinfer_model_t *model) { return model->sha_hex; }
const void *kinfer_model_bytes(const kinfer_model_t *model, size_t *sizep)
{
        *sizep = model->size;
        return model->blob;
}
const char *kinfer_model_meta_json(const kinfer_model_t *model) { return model->meta_json; }
const kinfer_model_reference_t *kinfer_model_reference(const kinfer_model_t *model)
{
        return model->has_ref ? &model->ref : NULL;
}
const char *kinfer_model_name(const kinfer_model_t *model) { return model->name; }
const char *kinfer_model_lineage_method(const kinfer_model_t *model) { return model->method; }
int32_t kinfer_model_n_parents(const kinfer_model_t *model) { return model->n_parents; }
const kinfer_model_parent_t *kinfer_model_parent(const kinfer_model_t *model, int32_t i)
{
        return i >= 0 && i < model->n_parents ? &model->parents[i] : NULL;
}
size_t kinfer_model_size(const kinfer_model_t *model) { return model->size; }
