/* SPDX-License-Identifier: Apache-2.0 */
/* model_write.c -- serialise tensors into the model file format (see model.h), and build the
 * META JSON of derived models. */
#include "kinfer/model/model_write.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
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
        kinfer_sha256(buf + 64, off - 64, buf + 24);
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

/* ---- string building -------------------------------------------------------------------- */

/* Deprecated wrappers over kinfer_buf_t (see model_write.h). */
static kinfer_buf_t strbuf_get(const kinfer_strbuf_t *sb)
{
        return (kinfer_buf_t){.data = sb->s, .len = sb->len, .cap = sb->cap, .oom = sb->oom};
}

static void strbuf_put(kinfer_strbuf_t *sb, const kinfer_buf_t *b)
{
        sb->s = b->data;
        sb->len = b->len;
        sb->cap = b->cap;
        sb->oom = b->oom;
}

void kinfer_strbuf_printf(kinfer_strbuf_t *sb, const char *fmt, ...)
{
        if (sb->oom)
                return;
        kinfer_buf_t b = strbuf_get(sb);
        va_list ap;
        va_start(ap, fmt);
        kinfer_buf_vprintf(&b, fmt, ap);
        va_end(ap);
        strbuf_put(sb, &b);
}

void kinfer_strbuf_json_str(kinfer_strbuf_t *sb, const char *s)
{
        if (sb->oom)
                return;
        kinfer_buf_t b = strbuf_get(sb);
        kinfer_buf_json_cstr(&b, s);
        strbuf_put(sb, &b);
}

void kinfer_strbuf_free(kinfer_strbuf_t *sb)
{
        free(sb->s);
        memset(sb, 0, sizeof(*sb));
}

/* ---- derived metadata -------------------------------------------------------------------- */

static json_t *parent_ref(const kinfer_model_t *m, const char *relation)
{
        json_t *p = json_object();
        json_object_set_new(p, "sha256", json_string(kinfer_model_sha256_hex(m)));
        json_object_set_new(p, "name", json_string(kinfer_model_name(m)));
        json_t *meta = json_loads(kinfer_model_meta_json(m), 0, NULL);
        json_t *v = json_object_get(meta, "version");
        json_object_set_new(p, "version", json_integer(json_is_integer(v) ? json_integer_value(v) : 0));
        json_decref(meta);
        json_object_set_new(p, "relation", json_string(relation));
        return p;
}

char *kinfer_meta_derive(const kinfer_model_t *parent, const char *name, const char *method,
                         const char *relation, const char *params_json,
                         const kinfer_model_t *const *more_parents, int n_more,
                         const char *evaluation_json)
{
        json_t *root = parent ? json_loads(kinfer_model_meta_json(parent), 0, NULL) : NULL;
        if (!json_is_object(root)) {
                json_decref(root);
                root = json_object();
        }
        json_object_del(root, "version");
        json_object_del(root, "evaluation");
        if (name)
                json_object_set_new(root, "name", json_string(name));
        time_t now = time(NULL);
        struct tm tm;
        char ts[32];
        gmtime_r(&now, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_object_set_new(root, "created_at", json_string(ts));
        json_t *lin = json_object();
        json_object_set_new(lin, "method", json_string(method));
        json_t *params = params_json ? json_loads(params_json, 0, NULL) : NULL;
        json_object_set_new(lin, "params", params ? params : json_object());
        json_t *parents = json_array();
        if (parent)
                json_array_append_new(parents, parent_ref(parent, relation));
        for (int i = 0; i < n_more; i++)
                json_array_append_new(parents, parent_ref(more_parents[i], relation));
        json_object_set_new(lin, "parents", parents);
        json_object_set_new(root, "lineage", lin);
        if (evaluation_json) {
                json_t *ev = json_loads(evaluation_json, 0, NULL);
                if (ev)
                        json_object_set_new(root, "evaluation", ev);
        }
        char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(root);
        return s;
}
