/* SPDX-License-Identifier: Apache-2.0 */
/* codec_avro.c -- the only file that includes avro.h. Owns input decoding (Avro in Confluent
 * framing, plain Avro, JSON, raw text) into (id, text) views, result and dead-letter encoding
 * (plain Avro, Confluent-framed Avro, JSON), and input encoding for `kinfer produce`.
 *
 * Avro input is decoded by a walker over a compiled copy of the WRITER schema: a flat node
 * array built once per schema with avro-c's schema API. The walker checks every length against
 * the bytes left before touching them (avro-c would malloc an attacker-chosen length first), finds
 * the id and text fields by name, points into the message for strings, and requires the value
 * to end exactly where the record ends. Output Avro is written by hand for the two fixed result
 * schemas (the unit test reads it back with avro-c's generic reader). */
#include "kinfer/codec/codec.h"

#include <avro.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kinfer/core/log.h"
#include "kinfer_schemas.h" /* generated: kinfer_classification_avsc[], kinfer_dead_letter_avsc[] */

/* ---- small buffers ------------------------------------------------------------------------ */

const char *kinfer_dlq_reason_str(kinfer_dlq_reason_t reason)
{
        switch (reason) {
        case KINFER_DLQ_UNDECODABLE: return "undecodable";
        case KINFER_DLQ_EMPTY: return "empty";
        case KINFER_DLQ_OVERSIZED: return "oversized";
        }
        return "undecodable";
}

int kinfer_input_format_parse(const char *s)
{
        if (!strcmp(s, "avro-confluent")) return KINFER_IN_AVRO_CONFLUENT;
        if (!strcmp(s, "avro")) return KINFER_IN_AVRO;
        if (!strcmp(s, "json")) return KINFER_IN_JSON;
        if (!strcmp(s, "text")) return KINFER_IN_TEXT;
        return -1;
}

int kinfer_output_format_parse(const char *s)
{
        if (!strcmp(s, "avro")) return KINFER_OUT_AVRO;
        if (!strcmp(s, "avro-confluent")) return KINFER_OUT_AVRO_CONFLUENT;
        if (!strcmp(s, "json")) return KINFER_OUT_JSON;
        return -1;
}

const char *kinfer_codec_result_schema(void) { return (const char *)kinfer_classification_avsc; }
const char *kinfer_codec_dead_letter_schema(void) { return (const char *)kinfer_dead_letter_avsc; }

/* ---- UTF-8 -------------------------------------------------------------------------------- */

static int utf8_valid(const unsigned char *s, size_t n)
{
        size_t i = 0;
        while (i < n) {
                /* ASCII fast path: 8 bytes at a time */
                while (i + 8 <= n) {
                        uint64_t w;
                        memcpy(&w, s + i, 8);
                        if (w & UINT64_C(0x8080808080808080))
                                break;
                        i += 8;
                }
                if (i >= n)
                        break;
                unsigned c = s[i];
                if (c < 0x80) {
                        i++;
                        continue;
                }
                size_t len;
                unsigned min;
                if ((c & 0xe0) == 0xc0) len = 2, min = 0x80, c &= 0x1f;
                else if ((c & 0xf0) == 0xe0) len = 3, min = 0x800, c &= 0x0f;
                else if ((c & 0xf8) == 0xf0) len = 4, min = 0x10000, c &= 0x07;
                else return 0;
                if (n - i < len)
                        return 0;
                for (size_t j = 1; j < len; j++) {
                        if ((s[i + j] & 0xc0) != 0x80)
                                return 0;
                        c = (c << 6) | (s[i + j] & 0x3f);
                }
                if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
                        return 0;
                i += len;
        }
        return 1;
}

/* ---- compiled writer schemas ------------------------------------------------------------- */

enum { N_NULL, N_BOOL, N_INT, N_LONG, N_FLOAT, N_DOUBLE, N_BYTES, N_STRING, N_RECORD, N_ENUM,
       N_ARRAY, N_MAP, N_UNION, N_FIXED };

struct anode {
        int type;
        int n;        /* children: record fields, union branches, 1 for array/map, enum symbols */
        int *kids;    /* node indexes */
        int64_t size; /* fixed size */
};

struct aprog {
        int32_t schema_id; /* avro-confluent id; -1 for the configured schema */
        avro_schema_t schema;
        struct anode *nodes;
        int n_nodes, cap_nodes;
        avro_schema_t *seen; /* schema pointer of each node, for recursive schemas */
        int id_field, text_field; /* top-level field index, -1 if absent */
        int64_t failed_at;        /* avro-confluent: last failed load (monotonic ms), 0 = loaded */
        char error[400];
        /* input encoding (kinfer produce) */
        avro_value_iface_t *iface;
        avro_value_t value;
        int has_value;
};

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

static void prog_free(struct aprog *pg)
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

static struct aprog *prog_from_json(const char *json, size_t len, const char *id_field,
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
                prog_free(pg);
                return NULL;
        }
        if (!is_avro_record(pg->schema)) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                              "the schema must be a record");
                prog_free(pg);
                return NULL;
        }
        if (prog_node(pg, pg->schema, 0, errstr, errstr_size) != 0) {
                prog_free(pg);
                return NULL;
        }
        pg->id_field = avro_schema_record_field_get_index(pg->schema, id_field);
        pg->text_field = avro_schema_record_field_get_index(pg->schema, text_field);
        if (pg->text_field < 0) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                              "the schema has no field \"%s\" (input.text.field)", text_field);
                prog_free(pg);
                return NULL;
        }
        return pg;
}

static struct aprog *prog_from_file(const char *path, const char *id_field, const char *text_field,
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
        struct aprog *pg = prog_from_json(buf, len, id_field, text_field, e, sizeof(e));
        free(buf);
        if (!pg)
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT, "%s: %s", path, e);
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

static int walk(const struct aprog *pg, int node, struct rd *r, int depth)
{
        const struct anode *nd = &pg->nodes[node];
        int64_t v;
        if (depth > 64)
                return -1;
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
                for (int i = 0; i < nd->n; i++)
                        if (walk(pg, nd->kids[i], r, depth + 1))
                                return -1;
                return 0;
        case N_UNION:
                if (rd_long(r, &v) || v < 0 || v >= nd->n)
                        return -1;
                return walk(pg, nd->kids[v], r, depth + 1);
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
                        /* every item but a zero-size one takes a byte: bound the loop */
                        if (count > (r->end - r->p) + 1024)
                                return -1;
                        for (int64_t i = 0; i < count; i++) {
                                if (nd->type == N_MAP && (rd_long(r, &v) || rd_skip(r, v)))
                                        return -1;
                                if (walk(pg, nd->kids[0], r, depth + 1))
                                        return -1;
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

/* ---- the codec ---------------------------------------------------------------------------- */

#define MAX_CONFLUENT_SCHEMAS 64

struct kinfer_codec_s {
        kinfer_codec_conf_t cc;
        char *schemas_dir, *schema_path, *id_field, *text_field;
        struct aprog *plain;                         /* input.format=avro */
        struct aprog *byid[MAX_CONFLUENT_SCHEMAS];   /* avro-confluent, by first use */
        int n_byid;
        char *json_tmp; /* JSON escaping scratch */
};

static int64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

kinfer_codec_t *kinfer_codec_new(const kinfer_codec_conf_t *cc, char *errstr, size_t errstr_size)
{
        kinfer_codec_t *codec = calloc(1, sizeof(*codec));
        if (!codec) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        codec->cc = *cc;
        codec->schemas_dir = strdup(cc->schemas_dir ? cc->schemas_dir : "");
        codec->schema_path = strdup(cc->schema_path ? cc->schema_path : "");
        codec->id_field = strdup(cc->id_field && *cc->id_field ? cc->id_field : "id");
        codec->text_field = strdup(cc->text_field && *cc->text_field ? cc->text_field : "text");
        if (!codec->schemas_dir || !codec->schema_path || !codec->id_field || !codec->text_field) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                kinfer_codec_destroy(codec);
                return NULL;
        }
        codec->cc.schemas_dir = codec->schemas_dir;
        codec->cc.schema_path = codec->schema_path;
        codec->cc.id_field = codec->id_field;
        codec->cc.text_field = codec->text_field;
        if (cc->in_format == KINFER_IN_AVRO) {
                codec->plain = prog_from_file(codec->schema_path, codec->id_field, codec->text_field,
                                              errstr, errstr_size);
                if (!codec->plain) {
                        kinfer_codec_destroy(codec);
                        return NULL;
                }
                codec->plain->schema_id = -1;
        }
        return codec;
}

void kinfer_codec_destroy(kinfer_codec_t *codec)
{
        if (!codec)
                return;
        prog_free(codec->plain);
        for (int i = 0; i < codec->n_byid; i++)
                prog_free(codec->byid[i]);
        free(codec->schemas_dir);
        free(codec->schema_path);
        free(codec->id_field);
        free(codec->text_field);
        free(codec->json_tmp);
        free(codec);
}

/* The compiled schema for a Confluent schema id; loads <dir>/<id>.avsc on first use and retries
 * a failed load at most once a second. */
static struct aprog *schema_by_id(kinfer_codec_t *codec, int32_t id, char *errstr, size_t errstr_size)
{
        struct aprog *pg = NULL;
        int slot = -1;
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
        char path[4096], e[256];
        snprintf(path, sizeof(path), "%s/%" PRId32 ".avsc", codec->schemas_dir, id);
        struct aprog *npg = prog_from_file(path, codec->id_field, codec->text_field, e, sizeof(e));
        if (!npg) {
                npg = calloc(1, sizeof(*npg));
                if (!npg) {
                        kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                        return NULL;
                }
                npg->failed_at = mono_ms();
                snprintf(npg->error, sizeof(npg->error), "schema id %" PRId32 ": %s", id, e);
                kinfer_log(KINFER_LOG_WARN, "CODEC", "schema_id=%" PRId32 " load failed: %s", id, e);
        } else {
                kinfer_log(KINFER_LOG_INFO, "CODEC", "schema_id=%" PRId32 " loaded from %s", id, path);
        }
        npg->schema_id = id;
        if (slot >= 0) {
                prog_free(codec->byid[slot]);
                codec->byid[slot] = npg;
        } else if (codec->n_byid < MAX_CONFLUENT_SCHEMAS) {
                codec->byid[codec->n_byid++] = npg;
        } else {
                /* A flood of distinct ids: forget the oldest. */
                prog_free(codec->byid[0]);
                memmove(codec->byid, codec->byid + 1, sizeof(codec->byid[0]) * (MAX_CONFLUENT_SCHEMAS - 1));
                codec->byid[MAX_CONFLUENT_SCHEMAS - 1] = npg;
        }
        if (npg->failed_at) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT, "%s", npg->error);
                return NULL;
        }
        return npg;
}

static kinfer_err_t decode_avro(const struct aprog *pg, const uint8_t *p, size_t len,
                                kinfer_arena_t *arena, kinfer_request_t *req, char *errstr,
                                size_t errstr_size)
{
        struct rd r = {p, p + len};
        const struct anode *root = &pg->nodes[0];
        int have_text = 0, arena_full = 0;
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
                } else if (walk(pg, root->kids[i], &r, 1)) {
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

static kinfer_err_t decode_json(kinfer_codec_t *codec, const char *p, size_t len,
                                kinfer_arena_t *arena, kinfer_request_t *req, char *errstr,
                                size_t errstr_size)
{
        json_error_t jerr;
        json_t *root = json_loadb(p, len, 0, &jerr);
        if (!root)
                /* jansson's text quotes the input: keep payload out of logs and headers */
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                     "invalid JSON at line %d column %d (byte %d)", jerr.line,
                                     jerr.column, jerr.position);
        kinfer_err_t err = KINFER_OK;
        if (!json_is_object(root)) {
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                    "the JSON value is not an object");
                goto done;
        }
        json_t *text = json_object_get(root, codec->text_field);
        if (!text || json_is_null(text)) {
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOENT, "no \"%s\" field",
                                    codec->text_field);
                goto done;
        }
        if (!json_is_string(text)) {
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                    "field \"%s\" is not a string", codec->text_field);
                goto done;
        }
        json_t *id = json_object_get(root, codec->id_field);
        char idbuf[32];
        const char *ids = NULL;
        size_t idlen = 0;
        if (json_is_string(id)) {
                ids = json_string_value(id);
                idlen = json_string_length(id);
        } else if (json_is_integer(id)) {
                idlen = (size_t)snprintf(idbuf, sizeof(idbuf), "%" JSON_INTEGER_FORMAT,
                                         json_integer_value(id));
                ids = idbuf;
        } else if (id && !json_is_null(id)) {
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                    "field \"%s\" is not a string or an integer", codec->id_field);
                goto done;
        }
        size_t tlen = json_string_length(text);
        char *d = kinfer_arena_alloc(arena, tlen + idlen + 2);
        if (!d) {
                err = KINFER_ERR__NOMEM;
                goto done;
        }
        memcpy(d, json_string_value(text), tlen);
        d[tlen] = '\0';
        req->text = d;
        req->text_len = tlen;
        if (ids) {
                memcpy(d + tlen + 1, ids, idlen);
                d[tlen + 1 + idlen] = '\0';
                req->id = d + tlen + 1;
                req->id_len = idlen;
        } else {
                req->id = NULL;
                req->id_len = 0;
        }
done:
        json_decref(root);
        return err;
}

kinfer_err_t kinfer_codec_decode(kinfer_codec_t *codec, const void *value, size_t len,
                                 kinfer_arena_t *arena, kinfer_request_t *req, char *errstr,
                                 size_t errstr_size)
{
        const uint8_t *p = value;
        kinfer_err_t err;
        *req = (kinfer_request_t){0};
        if (!p)
                len = 0;
        switch (codec->cc.in_format) {
        case KINFER_IN_TEXT:
                req->text = (const char *)p;
                req->text_len = len;
                err = KINFER_OK;
                break;
        case KINFER_IN_JSON:
                if (len == 0) {
                        req->text = "";
                        return KINFER_OK;
                }
                err = decode_json(codec, (const char *)p, len, arena, req, errstr, errstr_size);
                break;
        case KINFER_IN_AVRO:
                if (len == 0) {
                        req->text = "";
                        return KINFER_OK;
                }
                err = decode_avro(codec->plain, p, len, arena, req, errstr, errstr_size);
                break;
        case KINFER_IN_AVRO_CONFLUENT: {
                if (len == 0) {
                        req->text = "";
                        return KINFER_OK;
                }
                if (len < 5 || p[0] != 0)
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                             len < 5 ? "shorter than the 5-byte Confluent header"
                                                     : "bad magic byte %u (expected 0)",
                                             (unsigned)p[0]);
                int32_t id = (int32_t)((uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 |
                                       (uint32_t)p[3] << 8 | p[4]);
                struct aprog *pg = schema_by_id(codec, id, errstr, errstr_size);
                if (!pg)
                        return KINFER_ERR__BAD_FORMAT;
                err = decode_avro(pg, p + 5, len - 5, arena, req, errstr, errstr_size);
                break;
        }
        default:
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE, "no input format");
        }
        if (err)
                return err;
        if (!req->text)
                req->text = "";
        if (!utf8_valid((const unsigned char *)req->text, req->text_len))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                     "text is not valid UTF-8");
        return KINFER_OK;
}

/* ---- hand-written Avro and JSON writers -------------------------------------------------- */

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

static inline kinfer_err_t w_str(kinfer_buf_t *b, const char *s)
{
        return w_bytes(b, s ? s : "", s ? strlen(s) : 0);
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

static kinfer_err_t w_confluent(kinfer_buf_t *b, int32_t id)
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

static kinfer_err_t j_raw(kinfer_buf_t *b, const char *s, size_t n)
{
        if (kinfer_buf_reserve(b, n))
                return KINFER_ERR__NOMEM;
        memcpy(b->data + b->len, s, n);
        b->len += n;
        return KINFER_OK;
}

static kinfer_err_t j_fmt(kinfer_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static kinfer_err_t j_fmt(kinfer_buf_t *b, const char *fmt, ...)
{
        va_list ap;
        if (kinfer_buf_reserve(b, 128))
                return KINFER_ERR__NOMEM;
        va_start(ap, fmt);
        int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
                return KINFER_ERR__BAD_FORMAT;
        if ((size_t)n >= b->cap - b->len) {
                if (kinfer_buf_reserve(b, (size_t)n + 1))
                        return KINFER_ERR__NOMEM;
                va_start(ap, fmt);
                vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
                va_end(ap);
        }
        b->len += (size_t)n;
        return KINFER_OK;
}

/* A JSON string (quoted). Invalid UTF-8 bytes become U+FFFD so the output stays valid JSON. */
static kinfer_err_t j_str(kinfer_buf_t *b, const char *s, size_t n)
{
        if (kinfer_buf_reserve(b, n * 6 + 2))
                return KINFER_ERR__NOMEM;
        char *o = b->data + b->len;
        *o++ = '"';
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c == '"' || c == '\\') {
                        *o++ = '\\';
                        *o++ = (char)c;
                } else if (c < 0x20) {
                        static const char hex[] = "0123456789abcdef";
                        switch (c) {
                        case '\n': *o++ = '\\'; *o++ = 'n'; break;
                        case '\t': *o++ = '\\'; *o++ = 't'; break;
                        case '\r': *o++ = '\\'; *o++ = 'r'; break;
                        default:
                                memcpy(o, "\\u00", 4);
                                o += 4;
                                *o++ = hex[c >> 4];
                                *o++ = hex[c & 15];
                        }
                } else if (c < 0x80) {
                        *o++ = (char)c;
                } else {
                        size_t len = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
                        if (len && i + len <= n && utf8_valid((const unsigned char *)s + i, len)) {
                                memcpy(o, s + i, len);
                                o += len;
                                i += len - 1;
                        } else {
                                memcpy(o, "\xef\xbf\xbd", 3);
                                o += 3;
                        }
                }
        }
        *o++ = '"';
        b->len = (size_t)(o - b->data);
        return KINFER_OK;
}

static kinfer_err_t j_cstr(kinfer_buf_t *b, const char *s)
{
        return j_str(b, s ? s : "", s ? strlen(s) : 0);
}

static kinfer_err_t j_base64(kinfer_buf_t *b, const void *data, size_t n)
{
        static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        if (!data)
                return j_raw(b, "null", 4);
        if (kinfer_buf_reserve(b, (n + 2) / 3 * 4 + 2))
                return KINFER_ERR__NOMEM;
        const uint8_t *s = data;
        char *o = b->data + b->len;
        *o++ = '"';
        size_t i = 0;
        for (; i + 2 < n; i += 3) {
                uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
                *o++ = tab[v >> 18];
                *o++ = tab[(v >> 12) & 63];
                *o++ = tab[(v >> 6) & 63];
                *o++ = tab[v & 63];
        }
        if (i < n) {
                uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
                *o++ = tab[v >> 18];
                *o++ = tab[(v >> 12) & 63];
                *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
                *o++ = '=';
        }
        *o++ = '"';
        b->len = (size_t)(o - b->data);
        return KINFER_OK;
}

kinfer_err_t kinfer_codec_encode_result(kinfer_codec_t *codec, const kinfer_result_t *res,
                                        kinfer_buf_t *out)
{
        kinfer_err_t err = KINFER_OK;
        int k = res->k < 1 ? 1 : res->k > KINFER_CODEC_TOPK_MAX ? KINFER_CODEC_TOPK_MAX : res->k;
        if (codec->cc.out_format == KINFER_OUT_JSON) {
                err |= j_raw(out, "{\"id\":", 6);
                err |= j_str(out, res->id, res->id_len);
                err |= j_raw(out, ",\"label\":", 9);
                err |= j_cstr(out, res->label[0]);
                err |= j_fmt(out, ",\"score\":%.6g,\"topk\":[", (double)res->score[0]);
                for (int i = 0; i < k; i++) {
                        err |= j_raw(out, i ? ",{\"label\":" : "{\"label\":", i ? 10 : 9);
                        err |= j_cstr(out, res->label[i]);
                        err |= j_fmt(out, ",\"score\":%.6g}", (double)res->score[i]);
                }
                err |= j_raw(out, "],\"model_name\":", 15);
                err |= j_cstr(out, res->model_name);
                err |= j_fmt(out, ",\"model_version\":%" PRId32 ",\"model_sha256\":", res->model_version);
                err |= j_cstr(out, res->model_sha256);
                err |= j_raw(out, ",\"input_topic\":", 15);
                err |= j_cstr(out, res->topic);
                err |= j_fmt(out,
                             ",\"input_partition\":%" PRId32 ",\"input_offset\":%" PRId64
                             ",\"input_timestamp_ms\":%" PRId64 ",\"consumed_at_ms\":%" PRId64
                             ",\"classified_at_ms\":%" PRId64 ",\"batch_size\":%" PRId32
                             ",\"worker_id\":",
                             res->partition, res->offset, res->timestamp_ms, res->consumed_at_ms,
                             res->classified_at_ms, res->batch_size);
                err |= j_cstr(out, res->worker_id);
                err |= j_raw(out, "}", 1);
                return err ? KINFER_ERR__NOMEM : KINFER_OK;
        }
        if (codec->cc.out_format == KINFER_OUT_AVRO_CONFLUENT)
                err |= w_confluent(out, codec->cc.out_schema_id);
        err |= w_bytes(out, res->id, res->id_len);
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

kinfer_err_t kinfer_codec_encode_dead_letter(kinfer_codec_t *codec, const kinfer_dead_letter_t *dl,
                                             kinfer_buf_t *out)
{
        kinfer_err_t err = KINFER_OK;
        if (codec->cc.out_format == KINFER_OUT_JSON) {
                err |= j_raw(out, "{\"reason\":", 10);
                err |= j_cstr(out, kinfer_dlq_reason_str(dl->reason));
                err |= j_raw(out, ",\"detail\":", 10);
                err |= j_cstr(out, dl->detail);
                err |= j_raw(out, ",\"topic\":", 9);
                err |= j_cstr(out, dl->topic);
                err |= j_fmt(out,
                             ",\"partition\":%" PRId32 ",\"offset\":%" PRId64
                             ",\"timestamp_ms\":%" PRId64 ",\"key_base64\":",
                             dl->partition, dl->offset, dl->timestamp_ms);
                err |= j_base64(out, dl->key, dl->key_len);
                err |= j_raw(out, ",\"value_base64\":", 16);
                err |= j_base64(out, dl->value, dl->value_len);
                err |= j_raw(out, ",\"headers\":[", 12);
                for (size_t i = 0; i < dl->n_headers; i++) {
                        err |= j_raw(out, i ? ",{\"key\":" : "{\"key\":", i ? 8 : 7);
                        err |= j_cstr(out, dl->headers[i].key);
                        err |= j_raw(out, ",\"value_base64\":", 16);
                        err |= j_base64(out, dl->headers[i].value, dl->headers[i].value_len);
                        err |= j_raw(out, "}", 1);
                }
                err |= j_raw(out, "],\"worker_id\":", 14);
                err |= j_cstr(out, dl->worker_id);
                err |= j_fmt(out, ",\"dead_at_ms\":%" PRId64 "}", dl->dead_at_ms);
                return err ? KINFER_ERR__NOMEM : KINFER_OK;
        }
        if (codec->cc.out_format == KINFER_OUT_AVRO_CONFLUENT)
                err |= w_confluent(out, codec->cc.dlq_schema_id);
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
        return err ? KINFER_ERR__NOMEM : KINFER_OK;
}

/* ---- input encoding (kinfer produce) ------------------------------------------------------ */

/* Give every union its first branch (the one a default must match) and fixed values zeros, so
 * that a generic value with only id/text set can be written. */
static int init_zero(avro_value_t *v, int depth)
{
        avro_value_t c;
        if (depth > 32)
                return -1;
        switch (avro_value_get_type(v)) {
        case AVRO_UNION:
                if (avro_value_set_branch(v, 0, &c))
                        return -1;
                return init_zero(&c, depth + 1);
        case AVRO_RECORD: {
                size_t n = 0;
                avro_value_get_size(v, &n);
                for (size_t i = 0; i < n; i++)
                        if (avro_value_get_by_index(v, i, &c, NULL) || init_zero(&c, depth + 1))
                                return -1;
                return 0;
        }
        case AVRO_FIXED: {
                avro_schema_t s = avro_value_get_schema(v);
                int64_t size = avro_schema_fixed_size(s);
                char *z = calloc(1, (size_t)size + 1);
                if (!z)
                        return -1;
                int rc = avro_value_set_fixed(v, z, (size_t)size);
                free(z);
                return rc;
        }
        default:
                return 0;
        }
}

/* Set a string field (through a union: the first string branch; NULL: the null branch). */
static int set_str_field(avro_value_t *f, const char *s, size_t len)
{
        if (avro_value_get_type(f) == AVRO_UNION) {
                avro_schema_t us = avro_value_get_schema(f);
                size_t n = avro_schema_union_size(us);
                for (size_t i = 0; i < n; i++) {
                        avro_schema_t b = avro_schema_union_branch(us, (int)i);
                        if ((s && (is_avro_string(b) || is_avro_bytes(b) || is_avro_int64(b) ||
                                   is_avro_int32(b))) ||
                            (!s && is_avro_null(b))) {
                                avro_value_t c;
                                if (avro_value_set_branch(f, (int)i, &c))
                                        return -1;
                                return s ? set_str_field(&c, s, len) : avro_value_set_null(&c);
                        }
                }
                return -1;
        }
        if (!s)
                return avro_value_get_type(f) == AVRO_NULL ? 0 : -1;
        char tmp[32];
        switch (avro_value_get_type(f)) {
        case AVRO_STRING: return avro_value_set_string_len(f, s, len + 1); /* size counts the NUL */
        case AVRO_BYTES: return avro_value_set_bytes(f, (void *)s, len);
        case AVRO_INT64:
        case AVRO_INT32:
                if (len >= sizeof(tmp))
                        return -1;
                memcpy(tmp, s, len);
                tmp[len] = '\0';
                {
                        char *end;
                        long long v = strtoll(tmp, &end, 10);
                        if (*end || end == tmp)
                                return -1;
                        return avro_value_get_type(f) == AVRO_INT64 ? avro_value_set_long(f, v)
                                                                    : avro_value_set_int(f, (int32_t)v);
                }
        default: return -1;
        }
}

kinfer_err_t kinfer_codec_encode_input(kinfer_codec_t *codec, int32_t schema_id, const char *id,
                                       const char *text, size_t text_len, kinfer_buf_t *out,
                                       char *errstr, size_t errstr_size)
{
        switch (codec->cc.in_format) {
        case KINFER_IN_TEXT:
                return j_raw(out, text, text_len) ? KINFER_ERR__NOMEM : KINFER_OK;
        case KINFER_IN_JSON: {
                kinfer_err_t err = KINFER_OK;
                err |= j_raw(out, "{", 1);
                if (id) {
                        err |= j_cstr(out, codec->id_field);
                        err |= j_raw(out, ":", 1);
                        err |= j_cstr(out, id);
                        err |= j_raw(out, ",", 1);
                }
                err |= j_cstr(out, codec->text_field);
                err |= j_raw(out, ":", 1);
                err |= j_str(out, text, text_len);
                err |= j_raw(out, "}", 1);
                return err ? KINFER_ERR__NOMEM : KINFER_OK;
        }
        default:
                break;
        }
        struct aprog *pg = codec->plain;
        if (codec->cc.in_format == KINFER_IN_AVRO_CONFLUENT) {
                pg = schema_by_id(codec, schema_id, errstr, errstr_size);
                if (!pg)
                        return KINFER_ERR__BAD_FORMAT;
                if (w_confluent(out, schema_id))
                        return KINFER_ERR__NOMEM;
        }
        if (!pg->has_value) {
                pg->iface = avro_generic_class_from_schema(pg->schema);
                if (!pg->iface || avro_generic_value_new(pg->iface, &pg->value))
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM,
                                             "cannot create an Avro value: %s", avro_strerror());
                pg->has_value = 1;
        }
        avro_value_t *v = &pg->value, f;
        avro_value_reset(v);
        if (init_zero(v, 0))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                     "cannot initialise the record: %s", avro_strerror());
        if (pg->id_field >= 0) {
                if (avro_value_get_by_index(v, (size_t)pg->id_field, &f, NULL) ||
                    set_str_field(&f, id, id ? strlen(id) : 0))
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                             "cannot set field %s to %s", codec->id_field,
                                             id ? id : "null");
        }
        /* avro_value_set_string_len reads len+1 bytes: give it a terminated copy */
        char *t = malloc(text_len + 1);
        if (!t)
                return KINFER_ERR__NOMEM;
        memcpy(t, text, text_len);
        t[text_len] = '\0';
        int rc = avro_value_get_by_index(v, (size_t)pg->text_field, &f, NULL) ||
                 set_str_field(&f, t, text_len);
        if (rc) {
                free(t);
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                     "cannot set field %s", codec->text_field);
        }
        size_t size = 0;
        avro_value_sizeof(v, &size);
        if (kinfer_buf_reserve(out, size)) {
                free(t);
                return KINFER_ERR__NOMEM;
        }
        avro_writer_t w = avro_writer_memory(out->data + out->len, (int64_t)size);
        rc = avro_value_write(w, v);
        avro_writer_free(w);
        free(t);
        if (rc)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                     "cannot write the record: %s", avro_strerror());
        out->len += size;
        return KINFER_OK;
}
