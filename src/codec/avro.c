/* SPDX-License-Identifier: Apache-2.0 */
/* avro.c -- Avro input and output: the only file besides input.c that includes avro.h.
 *
 * Avro input is decoded by a walker over a compiled copy of the WRITER schema: a flat node
 * array built once per schema with avro-c's schema API. The walker checks every length against
 * the bytes left before touching them (avro-c would malloc an attacker-chosen length first), finds
 * the id and text fields by name, points into the message for strings, and requires the value
 * to end exactly where the record ends. Confluent framing (magic 0 + a 4-byte schema id) selects
 * <schemas_dir>/<id>.avsc, loaded on first use, or, when that file is absent and a Schema
 * Registry is configured, the registry's schema of that id (sr.c). Output Avro is written by hand for the two fixed
 * result schemas (the unit test reads it back with avro-c's generic reader). */
#include "codec/avro_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kinfer/core/log.h"
#include "kinfer/core/utf8.h"

/* ---- compiled writer schemas ------------------------------------------------------------- */

static int prog_node(struct aprog *pg, avro_schema_t s, int depth, char *errstr, size_t errstr_size)
{
        if (depth > 64) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT, "schema nested too deeply");
                return -1;
        }
        while (is_avro_link(s))
                s = avro_schema_link_target(s);
        for (int i = 0; i < pg->n_nodes; i++)
                if (pg->seen[i] == s)
                        return i;
        if (pg->n_nodes == pg->cap_nodes) {
                int cap = pg->cap_nodes ? pg->cap_nodes * 2 : 16;
                struct anode *nn = realloc(pg->nodes, (size_t)cap * sizeof(*nn));
                if (nn)
                        pg->nodes = nn;
                avro_schema_t *ns = realloc(pg->seen, (size_t)cap * sizeof(*ns));
                if (ns)
                        pg->seen = ns;
                if (!nn || !ns) {
                        kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                        return -1;
                }
                pg->cap_nodes = cap;
        }
        int idx = pg->n_nodes++;
        pg->seen[idx] = s;
        pg->nodes[idx] = (struct anode){0};
        int type, n = 0;
        switch (avro_typeof(s)) {
        case AVRO_NULL: type = N_NULL; break;
        case AVRO_BOOLEAN: type = N_BOOL; break;
        case AVRO_INT32: type = N_INT; break;
        case AVRO_INT64: type = N_LONG; break;
        case AVRO_FLOAT: type = N_FLOAT; break;
        case AVRO_DOUBLE: type = N_DOUBLE; break;
        case AVRO_BYTES: type = N_BYTES; break;
        case AVRO_STRING: type = N_STRING; break;
        case AVRO_ENUM: type = N_ENUM; n = (int)avro_schema_enum_number_of_symbols(s); break;
        case AVRO_FIXED: type = N_FIXED; break;
        case AVRO_RECORD: type = N_RECORD; n = (int)avro_schema_record_size(s); break;
        case AVRO_ARRAY: type = N_ARRAY; n = 1; break;
        case AVRO_MAP: type = N_MAP; n = 1; break;
        case AVRO_UNION: type = N_UNION; n = (int)avro_schema_union_size(s); break;
        default:
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT, "unsupported schema type");
                return -1;
        }
        pg->nodes[idx].type = type;
        if (type == N_FIXED)
                pg->nodes[idx].size = avro_schema_fixed_size(s);
        if (type == N_ENUM) {
                pg->nodes[idx].n = n;
                return idx;
        }
        if (n == 0)
                return idx;
        int *kids = calloc((size_t)n, sizeof(int));
        if (!kids) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return -1;
        }
        pg->nodes[idx].kids = kids;
        pg->nodes[idx].n = n;
        for (int i = 0; i < n; i++) {
                avro_schema_t c;
                switch (type) {
                case N_RECORD: c = avro_schema_record_field_get_by_index(s, i); break;
                case N_ARRAY: c = avro_schema_array_items(s); break;
                case N_MAP: c = avro_schema_map_values(s); break;
                default: c = avro_schema_union_branch(s, i); break;
                }
                int k = c ? prog_node(pg, c, depth + 1, errstr, errstr_size) : -1;
                if (k < 0) {
                        if (!c)
                                kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                              "schema child %d missing", i);
                        return -1;
                }
                pg->nodes[idx].kids[i] = k; /* pg->nodes may have moved: index again */
        }
        return idx;
}

void kinfer_codec_avro_free(struct aprog *pg)
{
        if (!pg)
                return;
        for (int i = 0; i < pg->n_nodes; i++)
                free(pg->nodes[i].kids);
        free(pg->nodes);
        free(pg->seen);
        if (pg->has_value)
                avro_value_decref(&pg->value);
        if (pg->iface)
                avro_value_iface_decref(pg->iface);
        if (pg->schema)
                avro_schema_decref(pg->schema);
        free(pg);
}

struct aprog *kinfer_codec_avro_compile(const char *json, size_t len, const char *id_field,
                                        const char *text_field, char *errstr, size_t errstr_size)
{
        struct aprog *pg = calloc(1, sizeof(*pg));
        if (!pg) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        pg->id_field = pg->text_field = -1;
        if (avro_schema_from_json_length(json, len, &pg->schema)) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT, "invalid Avro schema: %s",
                              avro_strerror());
                pg->schema = NULL;
                kinfer_codec_avro_free(pg);
                return NULL;
        }
        if (!is_avro_record(pg->schema)) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                              "the schema must be a record");
                kinfer_codec_avro_free(pg);
                return NULL;
        }
        if (prog_node(pg, pg->schema, 0, errstr, errstr_size) != 0) {
                kinfer_codec_avro_free(pg);
                return NULL;
        }
        pg->id_field = avro_schema_record_field_get_index(pg->schema, id_field);
        pg->text_field = avro_schema_record_field_get_index(pg->schema, text_field);
        if (pg->text_field < 0) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                              "the schema has no field \"%s\" (input.text.field)", text_field);
                kinfer_codec_avro_free(pg);
                return NULL;
        }
        return pg;
}

struct aprog *kinfer_codec_avro_load(const char *path, const char *id_field, const char *text_field,
                                     char *errstr, size_t errstr_size)
{
        FILE *fp = fopen(path, "rb");
        if (!fp) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO, "%s: %s", path, strerror(errno));
                return NULL;
        }
        char *buf = NULL;
        size_t len = 0, cap = 0, n;
        char chunk[4096];
        while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
                if (len + n + 1 > cap) {
                        cap = (len + n + 1) * 2;
                        char *nb = realloc(buf, cap);
                        if (!nb) {
                                free(buf);
                                fclose(fp);
                                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                                return NULL;
                        }
                        buf = nb;
                }
                memcpy(buf + len, chunk, n);
                len += n;
        }
        fclose(fp);
        if (!buf) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT, "%s: empty file", path);
                return NULL;
        }
        buf[len] = '\0';
        char e[256];
        struct aprog *pg = kinfer_codec_avro_compile(buf, len, id_field, text_field, e, sizeof(e));
        free(buf);
        if (!pg)
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT, "%s: %s", path, e);
        else
                pg->schema_id = -1; /* the configured schema; a Confluent id replaces it */
        return pg;
}

/* ---- the walker --------------------------------------------------------------------------- */

struct rd {
        const uint8_t *p, *end;
};

static int rd_long(struct rd *r, int64_t *v)
{
        uint64_t u = 0;
        for (int shift = 0; shift < 64 && r->p < r->end; shift += 7) {
                uint8_t b = *r->p++;
                u |= (uint64_t)(b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
                        return 0;
                }
        }
        return -1;
}

static int rd_skip(struct rd *r, int64_t n)
{
        if (n < 0 || n > r->end - r->p)
                return -1;
        r->p += n;
        return 0;
}

/* The bounds of one record's walk (input.max.items, input.max.depth): a record over one is
 * refused with KINFER_ERR__LIMIT and dead-lettered as "over_limit", whatever its size (a
 * zero-size item, null or an empty record, takes no byte, so bytes alone bound nothing). */
struct wlim {
        int64_t items, max_items; /* array items + map entries so far, in the whole record */
        int max_depth;
        const char *why;          /* set when a limit (not malformed input) stopped the walk */
};

#define WALK_BAD -1   /* malformed */
#define WALK_LIMIT -2 /* over a limit (lim->why says which) */

static int walk(const struct aprog *pg, int node, struct rd *r, int depth, struct wlim *lim)
{
        const struct anode *nd = &pg->nodes[node];
        int64_t v;
        if (depth > lim->max_depth) {
                lim->why = "nested deeper than input.max.depth";
                return WALK_LIMIT;
        }
        switch (nd->type) {
        case N_NULL: return 0;
        case N_BOOL: return rd_skip(r, 1);
        case N_INT:
        case N_LONG: return rd_long(r, &v);
        case N_FLOAT: return rd_skip(r, 4);
        case N_DOUBLE: return rd_skip(r, 8);
        case N_BYTES:
        case N_STRING: return rd_long(r, &v) || rd_skip(r, v);
        case N_FIXED: return rd_skip(r, nd->size);
        case N_ENUM: return rd_long(r, &v) || v < 0 || v >= nd->n ? -1 : 0;
        case N_RECORD:
                for (int i = 0; i < nd->n; i++) {
                        int rc = walk(pg, nd->kids[i], r, depth + 1, lim);
                        if (rc)
                                return rc;
                }
                return 0;
        case N_UNION:
                if (rd_long(r, &v) || v < 0 || v >= nd->n)
                        return -1;
                return walk(pg, nd->kids[v], r, depth + 1, lim);
        case N_ARRAY:
        case N_MAP:
                for (;;) {
                        int64_t count;
                        if (rd_long(r, &count))
                                return -1;
                        if (count == 0)
                                return 0;
                        if (count < 0) {
                                int64_t bytes;
                                if (count == INT64_MIN || rd_long(r, &bytes))
                                        return -1;
                                count = -count;
                        }
                        /* the count is checked before the loop runs: a block announcing
                         * billions of items costs nothing. Items that take at least a byte
                         * (all but null, records and fixed, which may take none) cannot
                         * outnumber the bytes left: more is a truncated value */
                        int it = pg->nodes[nd->kids[0]].type;
                        if ((nd->type == N_MAP || (it != N_NULL && it != N_RECORD && it != N_FIXED)) &&
                            count > r->end - r->p)
                                return -1;
                        if (count > lim->max_items - lim->items) {
                                lim->why = "more array items and map entries than input.max.items";
                                return WALK_LIMIT;
                        }
                        lim->items += count;
                        for (int64_t i = 0; i < count; i++) {
                                if (nd->type == N_MAP && (rd_long(r, &v) || rd_skip(r, v)))
                                        return -1;
                                int rc = walk(pg, nd->kids[0], r, depth + 1, lim);
                                if (rc)
                                        return rc;
                        }
                }
        }
        return -1;
}

/* Read a top-level field that should hold a string (or bytes, or, for ids, an int/long),
 * through unions. *s = NULL for null. */
static int read_field(const struct aprog *pg, int node, struct rd *r, const char **s, size_t *len,
                      int allow_num, kinfer_arena_t *arena, int *arena_full)
{
        const struct anode *nd = &pg->nodes[node];
        int64_t v;
        switch (nd->type) {
        case N_UNION:
                if (rd_long(r, &v) || v < 0 || v >= nd->n)
                        return -1;
                return read_field(pg, nd->kids[v], r, s, len, allow_num, arena, arena_full);
        case N_NULL:
                *s = NULL;
                *len = 0;
                return 0;
        case N_STRING:
        case N_BYTES:
                if (rd_long(r, &v) || v < 0 || v > r->end - r->p)
                        return -1;
                *s = (const char *)r->p;
                *len = (size_t)v;
                r->p += v;
                return 0;
        case N_INT:
        case N_LONG: {
                if (!allow_num || rd_long(r, &v))
                        return -1;
                char *d = kinfer_arena_alloc(arena, 24);
                if (!d) {
                        *arena_full = 1;
                        return -1;
                }
                *len = (size_t)snprintf(d, 24, "%" PRId64, v);
                *s = d;
                return 0;
        }
        default:
                return -1;
        }
}

/* ---- schemas by Confluent id ---------------------------------------------------------------- */

static int64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Load schema @p id: from <schemas_dir>/<id>.avsc when that file exists (the folder comes
 * first: offline use, and an operator's pin), else from the Schema Registry when one is
 * configured. @returns the compiled schema, or NULL with the cause in @p e; *@p retry = 1 when
 * the registry could not answer now (nothing is cached then). */
static struct aprog *load_by_id(kinfer_codec_t *codec, int32_t id, int *retry, char *e,
                                size_t e_size)
{
        char path[4096];
        const char *from = path;
        snprintf(path, sizeof(path), "%s/%" PRId32 ".avsc", codec->schemas_dir, id);
        struct aprog *pg = NULL;
        if (!codec->sr || (*codec->schemas_dir && access(path, F_OK) == 0)) {
                pg = kinfer_codec_avro_load(path, codec->id_field, codec->text_field, e, e_size);
        } else {
                char *json = NULL;
                size_t len = 0;
                char se[512];
                kinfer_err_t err = kinfer_sr_get_schema(codec->sr, id, &json, &len, se, sizeof(se));
                if (err == KINFER_ERR__TIMEOUT || err == KINFER_ERR__NOMEM) {
                        *retry = 1;
                        snprintf(e, e_size, "schema id %" PRId32 ": %.300s", id, se);
                        return NULL;
                }
                if (err) {
                        snprintf(e, e_size, "%.360s", se);
                        return NULL;
                }
                from = "the schema registry";
                pg = kinfer_codec_avro_compile(json, len, codec->id_field, codec->text_field, se,
                                               sizeof(se));
                free(json);
                if (!pg)
                        snprintf(e, e_size, "the schema registry's schema: %.300s", se);
        }
        if (pg)
                kinfer_log(KINFER_LOG_INFO, "CODEC", "schema_id=%" PRId32 " loaded from %s", id, from);
        return pg;
}

struct aprog *kinfer_codec_avro_schema_by_id(kinfer_codec_t *codec, int32_t id, int *retry,
                                             char *errstr, size_t errstr_size)
{
        struct aprog *pg = NULL;
        int slot = -1, dummy = 0;
        if (!retry)
                retry = &dummy;
        *retry = 0;
        for (int i = 0; i < codec->n_byid; i++)
                if (codec->byid[i]->schema_id == id) {
                        pg = codec->byid[i];
                        slot = i;
                        break;
                }
        if (pg && !pg->failed_at)
                return pg;
        if (pg && mono_ms() - pg->failed_at < 1000) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT, "%s", pg->error);
                return NULL;
        }
        char e[400];
        struct aprog *npg = load_by_id(codec, id, retry, e, sizeof(e));
        if (!npg && *retry) { /* not now: cache nothing, the caller keeps its record */
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__TIMEOUT, "%s", e);
                return NULL;
        }
        if (!npg) {
                npg = calloc(1, sizeof(*npg));
                if (!npg) {
                        kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                        return NULL;
                }
                npg->failed_at = mono_ms();
                if (!strncmp(e, "schema id ", 10))
                        snprintf(npg->error, sizeof(npg->error), "%.380s", e);
                else
                        snprintf(npg->error, sizeof(npg->error), "schema id %" PRId32 ": %.360s", id, e);
                kinfer_log(KINFER_LOG_WARN, "CODEC", "schema_id=%" PRId32 " load failed: %s", id, e);
        }
        npg->schema_id = id;
        if (slot >= 0) {
                kinfer_codec_avro_free(codec->byid[slot]);
                codec->byid[slot] = npg;
        } else if (codec->n_byid < MAX_CONFLUENT_SCHEMAS) {
                codec->byid[codec->n_byid++] = npg;
        } else {
                /* A flood of distinct ids: forget the oldest. */
                kinfer_codec_avro_free(codec->byid[0]);
                memmove(codec->byid, codec->byid + 1, sizeof(codec->byid[0]) * (MAX_CONFLUENT_SCHEMAS - 1));
                codec->byid[MAX_CONFLUENT_SCHEMAS - 1] = npg;
        }
        if (npg->failed_at) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT, "%s", npg->error);
                return NULL;
        }
        return npg;
}

/* Declared in codec.h: make the writer schema of a framed value available (sr.c may fetch it). */
kinfer_err_t kinfer_codec_prepare(kinfer_codec_t *codec, const void *value, size_t len,
                                  char *errstr, size_t errstr_size)
{
        const uint8_t *p = value;
        /* without a registry nothing can be "not now": decode finds (or refuses) the schema */
        if (!codec->sr || codec->cc.in_format != KINFER_IN_AVRO_CONFLUENT || !p || len < 5 ||
            p[0] != 0)
                return KINFER_OK;
        int32_t id = (int32_t)((uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 |
                               p[4]);
        int retry = 0;
        if (!kinfer_codec_avro_schema_by_id(codec, id, &retry, errstr, errstr_size) && retry)
                return KINFER_ERR__TIMEOUT;
        return KINFER_OK; /* found, or undecodable for good: decode says which */
}

/* ---- decoding ------------------------------------------------------------------------------- */

static kinfer_err_t decode_avro(const kinfer_codec_t *codec, const struct aprog *pg,
                                const uint8_t *p, size_t len, kinfer_arena_t *arena,
                                kinfer_request_t *req, char *errstr, size_t errstr_size)
{
        struct rd r = {p, p + len};
        struct wlim lim = {.max_items = codec->cc.max_items, .max_depth = codec->cc.max_depth};
        const struct anode *root = &pg->nodes[0];
        int have_text = 0, arena_full = 0, rc;
        req->id = NULL;
        req->id_len = 0;
        for (int i = 0; i < root->n; i++) {
                const uint8_t *at = r.p;
                if (i == pg->text_field) {
                        if (read_field(pg, root->kids[i], &r, &req->text, &req->text_len, 0, arena,
                                       &arena_full))
                                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                                     "field \"%s\" at byte %zu: malformed or not a string",
                                                     avro_schema_record_field_name(pg->schema, i),
                                                     (size_t)(at - p));
                        have_text = req->text != NULL;
                } else if (i == pg->id_field) {
                        if (read_field(pg, root->kids[i], &r, &req->id, &req->id_len, 1, arena,
                                       &arena_full)) {
                                if (arena_full)
                                        return KINFER_ERR__NOMEM;
                                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                                     "field \"%s\" at byte %zu: malformed or not a "
                                                     "string/int/long",
                                                     avro_schema_record_field_name(pg->schema, i),
                                                     (size_t)(at - p));
                        }
                } else if ((rc = walk(pg, root->kids[i], &r, 1, &lim))) {
                        if (rc == WALK_LIMIT)
                                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__LIMIT,
                                                     "field \"%s\": %s (input.max.items=%" PRId64
                                                     ", input.max.depth=%d)",
                                                     avro_schema_record_field_name(pg->schema, i),
                                                     lim.why, lim.max_items, lim.max_depth);
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                             "field \"%s\" at byte %zu: malformed (truncated or bad "
                                             "length/branch)",
                                             avro_schema_record_field_name(pg->schema, i),
                                             (size_t)(at - p));
                }
        }
        if (r.p != r.end)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                     "%zu trailing bytes after the record", (size_t)(r.end - r.p));
        if (!have_text)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOENT, "text field is null");
        return KINFER_OK;
}

kinfer_err_t kinfer_codec_avro_decode(kinfer_codec_t *codec, const uint8_t *p, size_t len,
                                      kinfer_arena_t *arena, kinfer_request_t *req, char *errstr,
                                      size_t errstr_size)
{
        return decode_avro(codec, codec->plain, p, len, arena, req, errstr, errstr_size);
}

kinfer_err_t kinfer_codec_avro_decode_confluent(kinfer_codec_t *codec, const uint8_t *p,
                                                size_t len, kinfer_arena_t *arena,
                                                kinfer_request_t *req, char *errstr,
                                                size_t errstr_size)
{
        if (len < 5 || p[0] != 0)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                     len < 5 ? "shorter than the 5-byte Confluent header"
                                             : "bad magic byte %u (expected 0)",
                                     (unsigned)p[0]);
        int32_t id = (int32_t)((uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 |
                               p[4]);
        int retry = 0;
        struct aprog *pg = kinfer_codec_avro_schema_by_id(codec, id, &retry, errstr, errstr_size);
        if (!pg)
                return retry ? KINFER_ERR__TIMEOUT : KINFER_ERR__BAD_FORMAT;
        return decode_avro(codec, pg, p + 5, len - 5, arena, req, errstr, errstr_size);
}

/* ---- the hand-written writer ---------------------------------------------------------------- */

static inline void w_long(kinfer_buf_t *b, int64_t v)
{
        uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
        while (u >= 0x80) {
                b->data[b->len++] = (char)(u | 0x80);
                u >>= 7;
        }
        b->data[b->len++] = (char)u;
}

static inline kinfer_err_t w_bytes(kinfer_buf_t *b, const void *s, size_t n)
{
        if (kinfer_buf_reserve(b, n + 10))
                return KINFER_ERR__NOMEM;
        w_long(b, (int64_t)n);
        if (n)
                memcpy(b->data + b->len, s, n);
        b->len += n;
        return KINFER_OK;
}

/* An Avro string: always valid UTF-8, whatever the bytes (an id from a Kafka key, a header
 * name, a detail quoting input): ill-formed parts become U+FFFD (kinfer_utf8_repair, the rule
 * of core's JSON escaper). Bytes fields are written with w_bytes, as they are. */
static kinfer_err_t w_strn(kinfer_buf_t *b, const char *s, size_t n)
{
        if (!s)
                n = 0;
        if (!n || kinfer_utf8_valid(s, n))
                return w_bytes(b, s, n);
        size_t m = kinfer_utf8_repair(s, n, NULL);
        if (kinfer_buf_reserve(b, m + 10))
                return KINFER_ERR__NOMEM;
        w_long(b, (int64_t)m);
        b->len += kinfer_utf8_repair(s, n, b->data + b->len);
        return KINFER_OK;
}

static inline kinfer_err_t w_str(kinfer_buf_t *b, const char *s)
{
        return w_strn(b, s, s ? strlen(s) : 0);
}

static inline kinfer_err_t w_num(kinfer_buf_t *b, int64_t v)
{
        if (kinfer_buf_reserve(b, 10))
                return KINFER_ERR__NOMEM;
        w_long(b, v);
        return KINFER_OK;
}

static inline kinfer_err_t w_float(kinfer_buf_t *b, float f)
{
        if (kinfer_buf_reserve(b, 4))
                return KINFER_ERR__NOMEM;
        memcpy(b->data + b->len, &f, 4); /* Avro floats are little-endian IEEE 754 */
        b->len += 4;
        return KINFER_OK;
}

kinfer_err_t kinfer_codec_avro_confluent_header(kinfer_buf_t *b, int32_t id)
{
        if (kinfer_buf_reserve(b, 5))
                return KINFER_ERR__NOMEM;
        uint32_t u = (uint32_t)id;
        b->data[b->len++] = 0;
        b->data[b->len++] = (char)(u >> 24);
        b->data[b->len++] = (char)(u >> 16);
        b->data[b->len++] = (char)(u >> 8);
        b->data[b->len++] = (char)u;
        return KINFER_OK;
}

kinfer_err_t kinfer_codec_avro_encode_result(kinfer_codec_t *codec, const kinfer_result_t *res,
                                             int k, kinfer_buf_t *out)
{
        kinfer_err_t err = KINFER_OK;
        if (codec->cc.out_format == KINFER_OUT_AVRO_CONFLUENT)
                err |= kinfer_codec_avro_confluent_header(out, codec->cc.out_schema_id);
        err |= w_strn(out, res->id, res->id_len);
        err |= w_str(out, res->label[0]);
        err |= w_float(out, res->score[0]);
        err |= w_num(out, k);
        for (int i = 0; i < k; i++) {
                err |= w_str(out, res->label[i]);
                err |= w_float(out, res->score[i]);
        }
        err |= w_num(out, 0);
        err |= w_str(out, res->model_name);
        err |= w_num(out, res->model_version);
        err |= w_str(out, res->model_sha256);
        err |= w_str(out, res->topic);
        err |= w_num(out, res->partition);
        err |= w_num(out, res->offset);
        err |= w_num(out, res->timestamp_ms);
        err |= w_num(out, res->consumed_at_ms);
        err |= w_num(out, res->classified_at_ms);
        err |= w_num(out, res->batch_size);
        err |= w_str(out, res->worker_id);
        return err ? KINFER_ERR__NOMEM : KINFER_OK;
}

kinfer_err_t kinfer_codec_avro_encode_dead_letter(kinfer_codec_t *codec,
                                                  const kinfer_dead_letter_t *dl,
                                                  kinfer_buf_t *out)
{
        kinfer_err_t err = KINFER_OK;
        if (codec->cc.out_format == KINFER_OUT_AVRO_CONFLUENT)
                err |= kinfer_codec_avro_confluent_header(out, codec->cc.dlq_schema_id);
        err |= w_str(out, kinfer_dlq_reason_str(dl->reason));
        err |= w_str(out, dl->detail);
        err |= w_str(out, dl->topic);
        err |= w_num(out, dl->partition);
        err |= w_num(out, dl->offset);
        err |= w_num(out, dl->timestamp_ms);
        err |= w_num(out, dl->key ? 1 : 0);
        if (dl->key)
                err |= w_bytes(out, dl->key, dl->key_len);
        err |= w_num(out, dl->value ? 1 : 0);
        if (dl->value)
                err |= w_bytes(out, dl->value, dl->value_len);
        if (dl->n_headers) {
                err |= w_num(out, (int64_t)dl->n_headers);
                for (size_t i = 0; i < dl->n_headers; i++) {
                        err |= w_str(out, dl->headers[i].key);
                        err |= w_num(out, dl->headers[i].value ? 1 : 0);
                        if (dl->headers[i].value)
                                err |= w_bytes(out, dl->headers[i].value, dl->headers[i].value_len);
                }
        }
        err |= w_num(out, 0);
        err |= w_str(out, dl->worker_id);
        err |= w_num(out, dl->dead_at_ms);
        /* value_size, value_sha256, truncated (appended fields with defaults) */
        err |= w_num(out, !dl->value ? -1 : dl->truncated ? (int64_t)dl->value_size
                                                          : (int64_t)dl->value_len);
        err |= w_num(out, dl->value_sha256 ? 1 : 0);
        if (dl->value_sha256)
                err |= w_str(out, dl->value_sha256);
        err |= kinfer_buf_putc(out, dl->truncated ? 1 : 0);
        return err ? KINFER_ERR__NOMEM : KINFER_OK;
}
