/* SPDX-License-Identifier: Apache-2.0 */
/* model_write.c -- serialise tensors into the model file format (see model.h), and build the
 * META JSON of derived models. */
#include "kinfer/model/model_write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kinfer/core/buf.h"
#include "kinfer/core/json.h"
#include "kinfer/core/sha256.h"
#include "model/model_int.h"

typedef struct mb_tensor_s {
        uint32_t kind, dtype, rows, cols;
        void *data;
        size_t size;
} mb_tensor_t;

struct kinfer_model_builder_s {
        int n;
        mb_tensor_t t[KINFER_MAX_TENSORS];
};

kinfer_model_builder_t *kinfer_model_builder_new(void)
{
        return calloc(1, sizeof(kinfer_model_builder_t));
}

void kinfer_model_builder_destroy(kinfer_model_builder_t *mb)
{
        if (!mb)
                return;
        for (int i = 0; i < mb->n; i++)
                free(mb->t[i].data);
        free(mb);
}

kinfer_err_t kinfer_model_builder_add(kinfer_model_builder_t *mb, uint32_t kind, uint32_t dtype,
                                      uint32_t rows, uint32_t cols, const void *data, size_t size)
{
        if (mb->n >= KINFER_MAX_TENSORS)
                return KINFER_ERR__INVALID_ARG;
        mb_tensor_t *t = &mb->t[mb->n];
        t->data = malloc(size ? size : 1);
        if (!t->data)
                return KINFER_ERR__NOMEM;
        if (size)
                memcpy(t->data, data, size);
        t->kind = kind;
        t->dtype = dtype;
        t->rows = rows;
        t->cols = cols;
        t->size = size;
        mb->n++;
        return KINFER_OK;
}

kinfer_err_t kinfer_model_builder_copy(kinfer_model_builder_t *mb, const kinfer_model_t *model,
                                       const uint32_t *skip, int n_skip)
{
        for (int i = 0; i < model->n_tensors; i++) {
                const kinfer_tensor_view_t *t = &model->tensors[i];
                int skipped = 0;
                for (int j = 0; j < n_skip; j++)
                        skipped |= t->kind == skip[j];
                if (skipped)
                        continue;
                kinfer_err_t err = kinfer_model_builder_add(mb, t->kind, t->dtype, t->rows, t->cols,
                                                            t->data, t->size);
                if (err)
                        return err;
        }
        return KINFER_OK;
}

static void wr32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static void wr64(uint8_t *p, uint64_t v)
{
        wr32(p, (uint32_t)v);
        wr32(p + 4, (uint32_t)(v >> 32));
}

kinfer_err_t kinfer_model_builder_serialize(const kinfer_model_builder_t *mb, uint8_t **bufp,
                                            size_t *lenp, char *errstr, size_t errstr_size)
{
        uint64_t off = (64 + 32 * (uint64_t)mb->n + 63) & ~(uint64_t)63;
        uint64_t offs[KINFER_MAX_TENSORS];
        for (int i = 0; i < mb->n; i++) {
                offs[i] = off;
                off = (off + mb->t[i].size + 63) & ~(uint64_t)63;
        }
        uint8_t *buf = calloc(1, off);
        if (!buf)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM,
                                     "out of memory (%llu bytes)", (unsigned long long)off);
        memcpy(buf, KINFER_MODEL_MAGIC, 4);
        wr32(buf + 4, KINFER_MODEL_VERSION);
        wr32(buf + 8, (uint32_t)mb->n);
        wr64(buf + 16, off);
        for (int i = 0; i < mb->n; i++) {
                uint8_t *e = buf + 64 + 32 * i;
                wr32(e, mb->t[i].kind);
                wr32(e + 4, mb->t[i].dtype);
                wr32(e + 8, mb->t[i].rows);
                wr32(e + 12, mb->t[i].cols);
                wr64(e + 16, offs[i]);
                wr64(e + 24, mb->t[i].size);
                memcpy(buf + offs[i], mb->t[i].data, mb->t[i].size);
        }
        if (kinfer_sha256(buf + 64, off - 64, buf + 24)) {
                free(buf);
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__CRYPTO,
                                     "cannot compute the model's sha256 (libcrypto error)");
        }
        *bufp = buf;
        *lenp = off;
        return KINFER_OK;
}

static kinfer_err_t write_atomic(const void *buf, size_t len, const char *path, char *errstr,
                                 size_t errstr_size)
{
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
        FILE *fp = fopen(tmp, "wb");
        if (!fp)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO, "%s: %s", tmp, strerror(errno));
        int ok = fwrite(buf, 1, len, fp) == len;
        ok &= fflush(fp) == 0;
        ok &= fsync(fileno(fp)) == 0;
        ok &= fclose(fp) == 0;
        if (!ok || rename(tmp, path)) {
                int e = errno;
                unlink(tmp);
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO, "%s: %s", path, strerror(e));
        }
        return KINFER_OK;
}

kinfer_model_t *kinfer_model_builder_load(const kinfer_model_builder_t *mb, char *errstr,
                                          size_t errstr_size)
{
        uint8_t *buf;
        size_t len;
        if (kinfer_model_builder_serialize(mb, &buf, &len, errstr, errstr_size))
                return NULL;
        kinfer_model_t *model = kinfer_model_load_mem(buf, len, errstr, errstr_size);
        free(buf);
        return model;
}

kinfer_err_t kinfer_model_builder_write(const kinfer_model_builder_t *mb, const char *path,
                                        char *errstr, size_t errstr_size)
{
        uint8_t *buf;
        size_t len;
        kinfer_err_t err = kinfer_model_builder_serialize(mb, &buf, &len, errstr, errstr_size);
        if (err)
                return err;
        err = write_atomic(buf, len, path, errstr, errstr_size);
        free(buf);
        return err;
}

kinfer_err_t kinfer_model_save(const kinfer_model_t *model, const char *path, char *errstr,
                               size_t errstr_size)
{
        size_t len;
        const void *buf = kinfer_model_bytes(model, &len);
        return write_atomic(buf, len, path, errstr, errstr_size);
}

uint8_t *kinfer_labels_pack(const char *const *labels, int32_t n, size_t *sizep)
{
        size_t size = 0;
        for (int32_t i = 0; i < n; i++)
                size += strlen(labels[i]) + 1;
        uint8_t *buf = malloc(size ? size : 1), *p = buf;
        if (!buf)
                return NULL;
        for (int32_t i = 0; i < n; i++) {
                size_t l = strlen(labels[i]) + 1;
                memcpy(p, labels[i], l);
                p += l;
        }
        *sizep = size;
        return buf;
}

/* ---- derived metadata -------------------------------------------------------------------- */

/* Write a ",\n  "-style separator (or nothing before the first member) and the member name. */
static void meta_member(kinfer_buf_t *b, int *first, int level, const char *key)
{
        kinfer_buf_puts(b, *first ? "\n" : ",\n");
        *first = 0;
        for (int i = 0; i < level; i++)
                kinfer_buf_puts(b, "  ");
        kinfer_buf_json_cstr(b, key);
        kinfer_buf_puts(b, ": ");
}

static void meta_close(kinfer_buf_t *b, int first, int level, char close)
{
        if (!first) {
                kinfer_buf_putc(b, '\n');
                for (int i = 0; i < level; i++)
                        kinfer_buf_puts(b, "  ");
        }
        kinfer_buf_putc(b, close);
}

/* One lineage.parents entry, as an element of an array at indentation level 3. */
static void parent_ref(kinfer_buf_t *b, const kinfer_model_t *m, const char *relation)
{
        const char *meta = kinfer_model_meta_json(m);
        kinfer_json_doc_t *doc = NULL;
        int64_t version = 0;
        if (meta && !kinfer_json_parse(meta, strlen(meta), &doc, NULL, 0))
                kinfer_json_int(kinfer_json_get(kinfer_json_root(doc), "version"), &version);
        kinfer_json_free(doc);
        int first = 1;
        kinfer_buf_putc(b, '{');
        meta_member(b, &first, 4, "sha256");
        kinfer_buf_json_cstr(b, kinfer_model_sha256_hex(m));
        meta_member(b, &first, 4, "name");
        kinfer_buf_json_cstr(b, kinfer_model_name(m));
        meta_member(b, &first, 4, "version");
        kinfer_buf_printf(b, "%lld", (long long)version);
        if (relation) {
                meta_member(b, &first, 4, "relation");
                kinfer_buf_json_cstr(b, relation);
        }
        meta_close(b, first, 3, '}');
}

/* A JSON object or array text (as json_loads() without JSON_DECODE_ANY took it), or NULL. */
static kinfer_json_doc_t *parse_container(const char *text)
{
        kinfer_json_doc_t *doc = NULL;
        if (!text || kinfer_json_parse(text, strlen(text), &doc, NULL, 0))
                return NULL;
        kinfer_json_type_t t = kinfer_json_type(kinfer_json_root(doc));
        if (t != KINFER_JSON_OBJECT && t != KINFER_JSON_ARRAY) {
                kinfer_json_free(doc);
                return NULL;
        }
        return doc;
}

/* The "lineage" member's value, at indentation level 1. */
static void meta_lineage(kinfer_buf_t *b, const char *method, const char *relation,
                         const char *params_json, const kinfer_model_t *parent,
                         const kinfer_model_t *const *more_parents, int n_more)
{
        int first = 1;
        kinfer_buf_putc(b, '{');
        if (method) {
                meta_member(b, &first, 2, "method");
                kinfer_buf_json_cstr(b, method);
        }
        meta_member(b, &first, 2, "params");
        kinfer_json_doc_t *params = parse_container(params_json);
        if (params)
                kinfer_json_write(b, kinfer_json_root(params), 2);
        else
                kinfer_buf_puts(b, "{}");
        kinfer_json_free(params);
        meta_member(b, &first, 2, "parents");
        int n = (parent ? 1 : 0) + n_more;
        if (n == 0) {
                kinfer_buf_puts(b, "[]");
        } else {
                kinfer_buf_putc(b, '[');
                for (int i = 0; i < n; i++) {
                        kinfer_buf_puts(b, i ? ",\n      " : "\n      ");
                        const kinfer_model_t *m = parent ? (i ? more_parents[i - 1] : parent) : more_parents[i];
                        parent_ref(b, m, relation);
                }
                kinfer_buf_puts(b, "\n    ]");
        }
        meta_close(b, first, 1, '}');
}

/* The META is written as jansson's json_dumps(JSON_INDENT(2) | JSON_PRESERVE_ORDER) wrote it
 * when it built this object: the parent's members in their order, "version" and "evaluation"
 * dropped, "name" (when given), "created_at" and "lineage" replaced in place or appended in
 * that order, then "evaluation" (when given) last. */
char *kinfer_meta_derive(const kinfer_model_t *parent, const char *name, const char *method,
                         const char *relation, const char *params_json,
                         const kinfer_model_t *const *more_parents, int n_more,
                         const char *evaluation_json)
{
        const char *pmeta = parent ? kinfer_model_meta_json(parent) : NULL;
        kinfer_json_doc_t *pdoc = NULL;
        if (pmeta && kinfer_json_parse(pmeta, strlen(pmeta), &pdoc, NULL, 0))
                pdoc = NULL;
        const kinfer_json_t *proot = kinfer_json_root(pdoc);
        if (kinfer_json_type(proot) != KINFER_JSON_OBJECT)
                proot = NULL;
        time_t now = time(NULL);
        /* reproducible models (reproducible-builds.org's SOURCE_DATE_EPOCH): the ranks of an MPI
         * training run share one timestamp, and two runs with one seed give one sha256 */
        const char *sde = getenv("SOURCE_DATE_EPOCH");
        if (sde && *sde && strspn(sde, "0123456789") == strlen(sde) && strlen(sde) <= 12)
                now = (time_t)strtoll(sde, NULL, 10);
        struct tm tm;
        char ts[32];
        gmtime_r(&now, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
        kinfer_json_doc_t *ev = parse_container(evaluation_json);

        kinfer_buf_t b = {0};
        int first = 1, name_done = !name, ts_done = 0, lin_done = 0;
        kinfer_buf_putc(&b, '{');
        for (size_t i = 0; i < kinfer_json_size(proot); i++) {
                const char *key = kinfer_json_key(proot, i);
                if (!strcmp(key, "version") || !strcmp(key, "evaluation"))
                        continue;
                meta_member(&b, &first, 1, key);
                if (!strcmp(key, "name") && name) {
                        kinfer_buf_json_cstr(&b, name);
                        name_done = 1;
                } else if (!strcmp(key, "created_at")) {
                        kinfer_buf_json_cstr(&b, ts);
                        ts_done = 1;
                } else if (!strcmp(key, "lineage")) {
                        meta_lineage(&b, method, relation, params_json, parent, more_parents, n_more);
                        lin_done = 1;
                } else {
                        kinfer_json_write(&b, kinfer_json_at(proot, i), 1);
                }
        }
        if (!name_done) {
                meta_member(&b, &first, 1, "name");
                kinfer_buf_json_cstr(&b, name);
        }
        if (!ts_done) {
                meta_member(&b, &first, 1, "created_at");
                kinfer_buf_json_cstr(&b, ts);
        }
        if (!lin_done) {
                meta_member(&b, &first, 1, "lineage");
                meta_lineage(&b, method, relation, params_json, parent, more_parents, n_more);
        }
        /* a pruned model says so for good: every later derivation keeps this member */
        if (method && !strcmp(method, "prune") && !kinfer_json_get(proot, "pruned")) {
                meta_member(&b, &first, 1, "pruned");
                kinfer_buf_puts(&b, "true");
        }
        if (ev) {
                meta_member(&b, &first, 1, "evaluation");
                kinfer_json_write(&b, kinfer_json_root(ev), 1);
        }
        meta_close(&b, first, 0, '}');
        kinfer_json_free(ev);
        kinfer_json_free(pdoc);
        return kinfer_buf_detach(&b);
}

char *kinfer_meta_set(const char *meta, const char *key, const char *value_json)
{
        kinfer_json_doc_t *doc = parse_container(meta), *val = parse_container(value_json);
        const kinfer_json_t *root = kinfer_json_root(doc);
        char *out = NULL;
        if (!doc || !val || kinfer_json_type(root) != KINFER_JSON_OBJECT)
                goto done;
        kinfer_buf_t b = {0};
        if (!kinfer_json_get(root, key)) {
                /* append: the text up to its closing brace, trailing blanks dropped */
                size_t end = strlen(meta);
                while (end > 0 && meta[end - 1] != '}')
                        end--;
                end = end ? end - 1 : 0;
                while (end > 0 && (meta[end - 1] == ' ' || meta[end - 1] == '\n' ||
                                   meta[end - 1] == '\t' || meta[end - 1] == '\r'))
                        end--;
                kinfer_buf_append(&b, meta, end);
                int first = kinfer_json_size(root) == 0;
                meta_member(&b, &first, 1, key);
                kinfer_json_write(&b, kinfer_json_root(val), 1);
                meta_close(&b, 0, 0, '}');
        } else {
                int first = 1;
                kinfer_buf_putc(&b, '{');
                for (size_t i = 0; i < kinfer_json_size(root); i++) {
                        const char *k = kinfer_json_key(root, i);
                        meta_member(&b, &first, 1, k);
                        kinfer_json_write(&b, strcmp(k, key) ? kinfer_json_at(root, i)
                                                             : kinfer_json_root(val), 1);
                }
                meta_close(&b, first, 0, '}');
        }
        out = b.oom ? NULL : kinfer_buf_detach(&b);
        kinfer_buf_free(&b);
done:
        kinfer_json_free(doc);
        kinfer_json_free(val);
        return out;
}
