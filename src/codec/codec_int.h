/* SPDX-License-Identifier: Apache-2.0 */
/* codec_int.h -- what the codec's files share: the codec object and the entry points of each
 * format (avro.c: Avro and Confluent framing; json.c: JSON in and out; input.c: input records
 * for `kinfer produce`). Declared without Avro or jansson types: avro.c and input.c include
 * avro.h (through avro_int.h), json.c includes jansson.h, codec.c neither. */
#ifndef KINFER_CODEC_INT_H
#define KINFER_CODEC_INT_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/codec/codec.h"

#define MAX_CONFLUENT_SCHEMAS KINFER_CODEC_SCHEMA_CACHE

struct aprog; /* a compiled writer schema (avro_int.h) */
typedef struct kinfer_sr_s kinfer_sr_t; /* the Schema Registry client (sr.c) */

struct kinfer_codec_s {
        kinfer_codec_conf_t cc; /* its strings point at the copies below */
        char *schemas_dir, *schema_path, *id_field, *text_field;
        struct aprog *plain;                         /* input.format=avro */
        struct aprog *byid[MAX_CONFLUENT_SCHEMAS];   /* avro-confluent, by first use */
        int n_byid;
        kinfer_sr_t *sr;                             /* schema.registry.url, or NULL */
};

/** @name sr.c: the Confluent Schema Registry client (libcurl)
 * @{ */
kinfer_sr_t *kinfer_sr_new(const kinfer_codec_conf_t *cc, char *errstr, size_t errstr_size);
void kinfer_sr_destroy(kinfer_sr_t *sr);
/** GET /schemas/ids/{id}. @returns KINFER_OK and *@p schema (malloc'd, NUL-terminated, the
 *  Avro schema's JSON text); KINFER_ERR__NOENT (404); KINFER_ERR__BAD_FORMAT (not an Avro
 *  schema); KINFER_ERR__TIMEOUT (not now: try again after kinfer_sr_retry_ms()). */
kinfer_err_t kinfer_sr_get_schema(kinfer_sr_t *sr, int32_t id, char **schema, size_t *len,
                                  char *errstr, size_t errstr_size);
/** POST /subjects/{subject}/versions. @returns KINFER_OK and *@p id; KINFER_ERR__TIMEOUT
 *  (not now); KINFER_ERR__BAD_FORMAT (refused, e.g. 409 incompatible, or a bad answer). */
kinfer_err_t kinfer_sr_register(kinfer_sr_t *sr, const char *subject, const char *schema,
                                int32_t *id, char *errstr, size_t errstr_size);
/** Milliseconds of backoff left before the registry is asked again. */
int kinfer_sr_retry_ms(const kinfer_sr_t *sr);
/** @} */

/** @name avro.c: Avro input (plain and Confluent-framed) and output
 * @{ */
/** Compile the writer schema in the @p len bytes of JSON at @p json (a record with a field
 *  named @p text_field). @returns NULL on failure (see @p errstr). */
struct aprog *kinfer_codec_avro_compile(const char *json, size_t len, const char *id_field,
                                        const char *text_field, char *errstr, size_t errstr_size);
/** Compile the writer schema in the file @p path. @returns NULL on failure (see @p errstr). */
struct aprog *kinfer_codec_avro_load(const char *path, const char *id_field,
                                     const char *text_field, char *errstr, size_t errstr_size);
void kinfer_codec_avro_free(struct aprog *pg);
/** Decode a plain Avro value with the configured writer schema (codec->plain). */
kinfer_err_t kinfer_codec_avro_decode(kinfer_codec_t *codec, const uint8_t *p, size_t len,
                                      kinfer_arena_t *arena, kinfer_request_t *req, char *errstr,
                                      size_t errstr_size);
/** Decode an Avro value in Confluent framing (magic 0, 4-byte big-endian schema id, value). */
kinfer_err_t kinfer_codec_avro_decode_confluent(kinfer_codec_t *codec, const uint8_t *p,
                                                size_t len, kinfer_arena_t *arena,
                                                kinfer_request_t *req, char *errstr,
                                                size_t errstr_size);
/** Append a result / a dead letter as Avro (framed when out_format is avro-confluent). */
kinfer_err_t kinfer_codec_avro_encode_result(kinfer_codec_t *codec, const kinfer_result_t *res,
                                             int k, kinfer_buf_t *out);
kinfer_err_t kinfer_codec_avro_encode_dead_letter(kinfer_codec_t *codec,
                                                  const kinfer_dead_letter_t *dl,
                                                  kinfer_buf_t *out);
/** @} */

/** @name json.c: JSON input and output
 * @{ */
kinfer_err_t kinfer_codec_json_decode(kinfer_codec_t *codec, const char *p, size_t len,
                                      kinfer_arena_t *arena, kinfer_request_t *req, char *errstr,
                                      size_t errstr_size);
/** Append a result (its first @p k labels) / a dead letter as one JSON object. */
kinfer_err_t kinfer_codec_json_encode_result(const kinfer_result_t *res, int k, kinfer_buf_t *out);
kinfer_err_t kinfer_codec_json_encode_dead_letter(const kinfer_dead_letter_t *dl,
                                                  kinfer_buf_t *out);
/** Append {"<id_field>":"<id>","<text_field>":"<text>"} (no id member when @p id is NULL). */
kinfer_err_t kinfer_codec_json_encode_input(kinfer_codec_t *codec, const char *id,
                                            const char *text, size_t text_len, kinfer_buf_t *out);
/** @} */

#endif
