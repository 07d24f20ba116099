/* SPDX-License-Identifier: Apache-2.0 */
/* json.c -- JSON input (one object per record, id and text fields by name, through jansson)
 * and JSON output (results, dead letters with key/value/headers in base64, and input records
 * for `kinfer produce`), written by hand. The only codec file that includes jansson.h. */
#include "codec/codec_int.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "kinfer/core/json.h"

/* ---- decoding ------------------------------------------------------------------------------- */

/* The record's bounds (input.max.items, input.max.depth), checked over the parsed tree. jansson
 * parses in time and memory linear in the value's bytes (already capped by input.max.bytes) and
 * refuses nesting past JSON_PARSER_MAX_DEPTH (2048) by itself; these keep JSON records within
 * the same bounds as Avro ones. @returns NULL, or which bound @p v is over. */
static const char *json_over(json_t *v, int depth, int64_t *items, const kinfer_codec_conf_t *cc)
{
        if (depth > cc->max_depth)
                return "nested deeper than input.max.depth";
        if (json_is_array(v)) {
                size_t n = json_array_size(v);
                if ((int64_t)n > cc->max_items - *items)
                        return "more array items and object members than input.max.items";
                *items += (int64_t)n;
                for (size_t i = 0; i < n; i++) {
                        const char *why = json_over(json_array_get(v, i), depth + 1, items, cc);
                        if (why)
                                return why;
                }
        } else if (json_is_object(v)) {
                size_t n = json_object_size(v);
                if ((int64_t)n > cc->max_items - *items)
                        return "more array items and object members than input.max.items";
                *items += (int64_t)n;
                const char *key;
                json_t *m;
                json_object_foreach(v, key, m) {
                        const char *why = json_over(m, depth + 1, items, cc);
                        if (why)
                                return why;
                }
        }
        return NULL;
}

kinfer_err_t kinfer_codec_json_decode(kinfer_codec_t *codec, const char *p, size_t len,
                                      kinfer_arena_t *arena, kinfer_request_t *req, char *errstr,
                                      size_t errstr_size)
{
        json_error_t jerr;
        /* duplicate names refused: a second "text" would be read by one reader and not another */
        json_t *root = json_loadb(p, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root) {
                if (json_error_code(&jerr) == json_error_stack_overflow)
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__LIMIT,
                                             "JSON nested deeper than %d (input.max.depth=%d)",
                                             JSON_PARSER_MAX_DEPTH, codec->cc.max_depth);
                /* jansson's text quotes the input: keep payload out of logs and headers */
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                     "invalid JSON at line %d column %d (byte %d)%s", jerr.line,
                                     jerr.column, jerr.position,
                                     json_error_code(&jerr) == json_error_duplicate_key
                                         ? ": duplicate object member name" : "");
        }
        kinfer_err_t err = KINFER_OK;
        if (!json_is_object(root)) {
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                    "the JSON value is not an object");
                goto done;
        }
        int64_t items = 0;
        const char *why = json_over(root, 0, &items, &codec->cc);
        if (why) {
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__LIMIT,
                                    "%s (input.max.items=%" PRId64 ", input.max.depth=%d)", why,
                                    codec->cc.max_items, codec->cc.max_depth);
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

/* ---- the writer ----------------------------------------------------------------------------- */

static kinfer_err_t j_base64(kinfer_buf_t *b, const void *data, size_t n)
{
        static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        if (!data)
                return kinfer_buf_puts(b, "null");
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

kinfer_err_t kinfer_codec_json_encode_result(const kinfer_result_t *res, int k, kinfer_buf_t *out)
{
        kinfer_err_t err = KINFER_OK;
        err |= kinfer_buf_puts(out, "{\"id\":");
        err |= kinfer_buf_json_str(out, res->id, res->id_len);
        err |= kinfer_buf_puts(out, ",\"label\":");
        err |= kinfer_buf_json_cstr(out, res->label[0]);
        err |= kinfer_buf_printf(out, ",\"score\":%.6g,\"topk\":[", (double)res->score[0]);
        for (int i = 0; i < k; i++) {
                err |= kinfer_buf_puts(out, i ? ",{\"label\":" : "{\"label\":");
                err |= kinfer_buf_json_cstr(out, res->label[i]);
                err |= kinfer_buf_printf(out, ",\"score\":%.6g}", (double)res->score[i]);
        }
        err |= kinfer_buf_puts(out, "],\"model_name\":");
        err |= kinfer_buf_json_cstr(out, res->model_name);
        err |= kinfer_buf_printf(out, ",\"model_version\":%" PRId32 ",\"model_sha256\":",
                                 res->model_version);
        err |= kinfer_buf_json_cstr(out, res->model_sha256);
        err |= kinfer_buf_puts(out, ",\"input_topic\":");
        err |= kinfer_buf_json_cstr(out, res->topic);
        err |= kinfer_buf_printf(out,
                                 ",\"input_partition\":%" PRId32 ",\"input_offset\":%" PRId64
                                 ",\"input_timestamp_ms\":%" PRId64 ",\"consumed_at_ms\":%" PRId64
                                 ",\"classified_at_ms\":%" PRId64 ",\"batch_size\":%" PRId32
                                 ",\"worker_id\":",
                                 res->partition, res->offset, res->timestamp_ms,
                                 res->consumed_at_ms, res->classified_at_ms, res->batch_size);
        err |= kinfer_buf_json_cstr(out, res->worker_id);
        err |= kinfer_buf_puts(out, "}");
        return err ? KINFER_ERR__NOMEM : KINFER_OK;
}

kinfer_err_t kinfer_codec_json_encode_dead_letter(const kinfer_dead_letter_t *dl,
                                                  kinfer_buf_t *out)
{
        kinfer_err_t err = KINFER_OK;
        err |= kinfer_buf_puts(out, "{\"reason\":");
        err |= kinfer_buf_json_cstr(out, kinfer_dlq_reason_str(dl->reason));
        err |= kinfer_buf_puts(out, ",\"detail\":");
        err |= kinfer_buf_json_cstr(out, dl->detail);
        err |= kinfer_buf_puts(out, ",\"topic\":");
        err |= kinfer_buf_json_cstr(out, dl->topic);
        err |= kinfer_buf_printf(out,
                                 ",\"partition\":%" PRId32 ",\"offset\":%" PRId64
                                 ",\"timestamp_ms\":%" PRId64 ",\"key_base64\":",
                                 dl->partition, dl->offset, dl->timestamp_ms);
        err |= j_base64(out, dl->key, dl->key_len);
        err |= kinfer_buf_puts(out, ",\"value_base64\":");
        err |= j_base64(out, dl->value, dl->value_len);
        err |= kinfer_buf_puts(out, ",\"headers\":[");
        for (size_t i = 0; i < dl->n_headers; i++) {
                err |= kinfer_buf_puts(out, i ? ",{\"key\":" : "{\"key\":");
                err |= kinfer_buf_json_cstr(out, dl->headers[i].key);
                err |= kinfer_buf_puts(out, ",\"value_base64\":");
                err |= j_base64(out, dl->headers[i].value, dl->headers[i].value_len);
                err |= kinfer_buf_puts(out, "}");
        }
        err |= kinfer_buf_puts(out, "],\"worker_id\":");
        err |= kinfer_buf_json_cstr(out, dl->worker_id);
        err |= kinfer_buf_printf(out, ",\"dead_at_ms\":%" PRId64 ",\"value_size\":%" PRId64
                                 ",\"value_sha256\":",
                                 dl->dead_at_ms,
                                 !dl->value ? -1 : dl->truncated ? (int64_t)dl->value_size
                                                                 : (int64_t)dl->value_len);
        if (dl->value_sha256)
                err |= kinfer_buf_json_cstr(out, dl->value_sha256);
        else
                err |= kinfer_buf_puts(out, "null");
        err |= kinfer_buf_puts(out, dl->truncated ? ",\"truncated\":true}" : ",\"truncated\":false}");
        return err ? KINFER_ERR__NOMEM : KINFER_OK;
}

kinfer_err_t kinfer_codec_json_encode_input(kinfer_codec_t *codec, const char *id,
                                            const char *text, size_t text_len, kinfer_buf_t *out)
{
        kinfer_err_t err = KINFER_OK;
        err |= kinfer_buf_puts(out, "{");
        if (id) {
                err |= kinfer_buf_json_cstr(out, codec->id_field);
                err |= kinfer_buf_puts(out, ":");
                err |= kinfer_buf_json_cstr(out, id);
                err |= kinfer_buf_puts(out, ",");
        }
        err |= kinfer_buf_json_cstr(out, codec->text_field);
        err |= kinfer_buf_puts(out, ":");
        err |= kinfer_buf_json_str(out, text, text_len);
        err |= kinfer_buf_puts(out, "}");
        return err ? KINFER_ERR__NOMEM : KINFER_OK;
}
