/* SPDX-License-Identifier: Apache-2.0 */
/* input.c -- input records for `kinfer produce`, tests and benchmarks: (id, text) encoded in
 * the codec's input format. Avro records are built with avro-c's generic value API from the
 * writer schema (fields other than id/text get their default or a zero value). */
#include "codec/avro_int.h"

#include <stdlib.h>
#include <string.h>

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
                return kinfer_buf_append(out, text, text_len) ? KINFER_ERR__NOMEM : KINFER_OK;
        case KINFER_IN_JSON:
                return kinfer_codec_json_encode_input(codec, id, text, text_len, out);
        default:
                break;
        }
        struct aprog *pg = codec->plain;
        if (codec->cc.in_format == KINFER_IN_AVRO_CONFLUENT) {
                pg = kinfer_codec_avro_schema_by_id(codec, schema_id, NULL, errstr, errstr_size);
                if (!pg)
                        return KINFER_ERR__BAD_FORMAT;
                if (kinfer_codec_avro_confluent_header(out, schema_id))
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
