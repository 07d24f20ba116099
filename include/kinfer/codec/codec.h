/* SPDX-License-Identifier: Apache-2.0 */
/* codec.h -- decode input record values (Avro in Confluent framing, plain Avro, JSON, raw text)
 * into (id, text) and encode results and dead letters (Avro or JSON).
 *
 * Input: the id and text fields are read BY NAME from the writer's schema (for Avro: the
 * schema the record was written with, found by Confluent schema id or configured), so producers
 * may add, remove or reorder other fields freely. Avro is decoded by a bounds-checked walker
 * over the writer schema that points into the message (no allocation per record); a length
 * that runs past the end of the value, a bad union branch or trailing bytes make the record
 * undecodable. Text must be valid UTF-8. Work per record is bounded whatever its bytes say:
 * array items and map entries (input.max.items) and nesting (input.max.depth) are capped
 * (an Avro array of null announces any count in a few bytes); the value's size is capped by the
 * caller (input.max.bytes) before decoding.
 *
 * Output: schemas/classification.avsc and schemas/dead_letter.avsc, as plain Avro binary
 * (KINFER_OUT_AVRO: a reader needs the .avsc), Confluent framing (KINFER_OUT_AVRO_CONFLUENT:
 * magic 0 + the configured 4-byte schema id, or the id the Schema Registry gave at start) or
 * one JSON object per record.
 *
 * Schema Registry (sr.c, libcurl): with sr_url set, an avro-confluent writer-schema id is looked
 * up in the schemas folder first (offline use, and an operator's pin), then fetched from the
 * registry; compiled schemas are cached (KINFER_CODEC_SCHEMA_CACHE). A registry response is
 * input: at most KINFER_CODEC_SR_MAX_RESPONSE bytes, read by core's strict JSON reader.
 */
#ifndef KINFER_CODEC_H
#define KINFER_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/arena.h"
#include "kinfer/core/buf.h"
#include "kinfer/core/err.h"
#include "kinfer/core/header.h"

#define KINFER_CODEC_TOPK_MAX 16

typedef enum {
        KINFER_IN_AVRO_CONFLUENT = 0,
        KINFER_IN_AVRO,
        KINFER_IN_JSON,
        KINFER_IN_TEXT,
} kinfer_input_format_t;

typedef enum {
        KINFER_OUT_AVRO = 0,
        KINFER_OUT_AVRO_CONFLUENT,
        KINFER_OUT_JSON,
} kinfer_output_format_t;

/** Dead-letter reasons (the `reason` field; stable strings). */
typedef enum {
        KINFER_DLQ_UNDECODABLE = 0, /* "undecodable" */
        KINFER_DLQ_EMPTY,           /* "empty": null/empty value, or empty text */
        KINFER_DLQ_OVERSIZED,       /* "oversized": value over input.max.bytes */
        KINFER_DLQ_OVER_LIMIT,      /* "over_limit": more items or deeper nesting than
                                       input.max.items / input.max.depth */
        KINFER_DLQ_UNDELIVERABLE,   /* "undeliverable": the broker refused the record's result
                                       for good (the value is the refused result) */
        KINFER_DLQ_NO_FEATURES,     /* "no_features": the text has no feature the model knows
                                     * (input.no.features=dlq) */
} kinfer_dlq_reason_t;

const char *kinfer_dlq_reason_str(kinfer_dlq_reason_t reason);
/** Parse "avro-confluent|avro|json|text"; @returns -1 if unknown. */
int kinfer_input_format_parse(const char *s);
/** Parse "avro|avro-confluent|json"; @returns -1 if unknown. */
int kinfer_output_format_parse(const char *s);

typedef struct kinfer_codec_conf_s {
        kinfer_input_format_t in_format;
        const char *schemas_dir;    /* avro-confluent: <dir>/<id>.avsc */
        const char *schema_path;    /* avro: the writer schema */
        const char *id_field;       /* "id" */
        const char *text_field;     /* "text" */
        kinfer_output_format_t out_format;
        int32_t out_schema_id;      /* avro-confluent output: result schema id */
        int32_t dlq_schema_id;      /* avro-confluent output: dead-letter schema id */
        /* Bounds of one input record (avro, json); 0 = the default. A record over one is
         * refused with KINFER_ERR__LIMIT (the worker dead-letters it as "over_limit"). */
        int64_t max_items;          /* array items + map entries (json: + object members),
                                     * summed over the whole record: input.max.items (100000) */
        int32_t max_depth;          /* nesting below the top-level record or object, 1..64:
                                     * input.max.depth (32) */
        /* The Confluent Schema Registry (sr.c; NULL or "" url = none). Input: a writer-schema
         * id not in schemas_dir is fetched (GET /schemas/ids/{id}). Output (avro-confluent):
         * the result and dead-letter schemas are registered under out_subject / dlq_subject
         * (POST /subjects/{subject}/versions) by kinfer_codec_new, and the ids it returns
         * replace out_schema_id / dlq_schema_id. */
        const char *sr_url;          /* schema.registry.url */
        const char *sr_user_info;    /* "user:password" for basic auth, or NULL */
        const char *sr_user_info_file; /* file whose first line is user:password, or NULL */
        const char *sr_ca_file;      /* PEM CA bundle for https, NULL = the system's */
        const char *sr_cert_file;    /* client certificate (PEM), NULL = none */
        const char *sr_key_file;     /* its private key (PEM) */
        int32_t sr_timeout_ms;       /* one request, connect included (0 = 5000) */
        int32_t sr_backoff_max_ms;   /* longest wait between tries of an unreachable
                                      * registry (0 = 10000) */
        const char *out_subject;     /* NULL = do not register the result schema */
        const char *dlq_subject;     /* NULL = do not register the dead-letter schema */
} kinfer_codec_conf_t;

/** Most writer schemas a codec keeps compiled (avro-confluent; the least recently loaded
 *  is dropped first: a flood of distinct ids costs a reload each, never more memory). */
#define KINFER_CODEC_SCHEMA_CACHE 64
/** Largest Schema Registry response read (bytes); a longer one is an error. */
#define KINFER_CODEC_SR_MAX_RESPONSE ((size_t)1 << 20)

#define KINFER_CODEC_MAX_ITEMS_DEFAULT 100000
#define KINFER_CODEC_MAX_DEPTH_DEFAULT 32
#define KINFER_CODEC_MAX_DEPTH_LIMIT 64

/** A decoded request. Strings are views into the message value or into the arena. */
typedef struct kinfer_request_s {
        const char *id;   /* NULL: the record has no id field (or it is null) */
        size_t id_len;
        const char *text;
        size_t text_len;
} kinfer_request_t;

typedef struct kinfer_codec_s kinfer_codec_t;

/**
 * @brief Create a codec; loads and checks the configured writer schema (avro) and the output
 *        schemas. The strings in @p cc are copied.
 * @returns the codec, or NULL on failure (see @p errstr).
 * @locality one thread at a time.
 */
kinfer_codec_t *kinfer_codec_new(const kinfer_codec_conf_t *cc, char *errstr, size_t errstr_size);
void kinfer_codec_destroy(kinfer_codec_t *codec);

/**
 * @brief Decode one record value.
 * @returns KINFER_OK with @p req filled (views valid while @p value and the arena live);
 *          KINFER_ERR__BAD_FORMAT (undecodable, with the cause in errstr);
 *          KINFER_ERR__NOENT when the text field is missing (undecodable too);
 *          KINFER_ERR__NOMEM when @p arena is full: reset it (after using what it holds) and retry.
 * An empty text is returned as text_len 0; the caller dead-letters it as "empty".
 */
kinfer_err_t kinfer_codec_decode(kinfer_codec_t *codec, const void *value, size_t len,
                                 kinfer_arena_t *arena, kinfer_request_t *req, char *errstr,
                                 size_t errstr_size);

/**
 * @brief Make sure the writer schema of a Confluent-framed @p value is at hand before it is
 *        decoded (input.format=avro-confluent; a no-op for other formats and for values too
 *        short to hold a schema id): from the cache, the schemas folder, or the Schema
 *        Registry.
 * @returns KINFER_OK when kinfer_codec_decode() can now decide the record (decoded, or
 *          undecodable for good: an id that neither the folder nor the registry knows (the
 *          registry's 404), an answer over KINFER_CODEC_SR_MAX_RESPONSE, a schema type other
 *          than AVRO, or a schema that does not compile);
 *          KINFER_ERR__TIMEOUT when the registry cannot answer now (unreachable, timed out,
 *          5xx, 401/403/408/429, an answer that is not JSON): keep the record and try again
 *          after kinfer_codec_retry_ms(); errstr says why.
 */
kinfer_err_t kinfer_codec_prepare(kinfer_codec_t *codec, const void *value, size_t len,
                                  char *errstr, size_t errstr_size);
/** Milliseconds until the registry is tried again after a failure (0 = now). */
int kinfer_codec_retry_ms(const kinfer_codec_t *codec);
/** The schema ids the codec writes (registered or configured), for logs. */
void kinfer_codec_output_ids(const kinfer_codec_t *codec, int32_t *out_id, int32_t *dlq_id);

/** One classification result to encode. */
typedef struct kinfer_result_s {
        const char *id;
        size_t id_len;
        int32_t k;                                  /* entries in label/score, >= 1 */
        const char *label[KINFER_CODEC_TOPK_MAX];   /* best first */
        float score[KINFER_CODEC_TOPK_MAX];
        const char *model_name;
        int32_t model_version;
        const char *model_sha256;
        const char *topic;
        int32_t partition;
        int64_t offset;
        int64_t timestamp_ms; /* input record's timestamp, -1 if none */
        int64_t consumed_at_ms;
        int64_t classified_at_ms;
        int32_t batch_size;
        const char *worker_id;
} kinfer_result_t;

/** Append the encoding of @p res to @p out (which is not cleared). */
kinfer_err_t kinfer_codec_encode_result(kinfer_codec_t *codec, const kinfer_result_t *res,
                                        kinfer_buf_t *out);

typedef struct kinfer_dead_letter_s {
        kinfer_dlq_reason_t reason;
        const char *detail;
        const char *topic;
        int32_t partition;
        int64_t offset;
        int64_t timestamp_ms;
        const void *key; /* NULL = null key */
        size_t key_len;
        const void *value; /* NULL = null value */
        size_t value_len;
        const kinfer_header_view_t *headers;
        size_t n_headers;
        const char *worker_id;
        int64_t dead_at_ms;
        /* The reduced form (a dead letter too large to produce as it is): value, key and
         * headers above are what is kept (a prefix of the value, a prefix of the key, the
         * leading headers) and @c truncated is 1. @c value_size is the original value's size
         * when truncated (else value_len is written); @c value_sha256 (hex, NULL = none) the
         * original value's digest. */
        int truncated;
        size_t value_size;
        const char *value_sha256;
} kinfer_dead_letter_t;

/** Append the encoding of @p dl to @p out. */
kinfer_err_t kinfer_codec_encode_dead_letter(kinfer_codec_t *codec, const kinfer_dead_letter_t *dl,
                                             kinfer_buf_t *out);

/** @name Helpers for producers of input records (`kinfer produce`, tests, benchmarks)
 * @{ */
/**
 * @brief Encode an input record holding @p id and @p text in the codec's input format.
 * Avro uses the configured writer schema (avro) or <schemas_dir>/<schema_id>.avsc
 * (avro-confluent); fields other than id/text get their default, or a zero value.
 * @p id NULL writes null (for a nullable id) or omits it (json).
 */
kinfer_err_t kinfer_codec_encode_input(kinfer_codec_t *codec, int32_t schema_id, const char *id,
                                       const char *text, size_t text_len, kinfer_buf_t *out,
                                       char *errstr, size_t errstr_size);
/** @} */

/** The embedded result / dead-letter schemas (JSON text, same as schemas/ *.avsc). */
const char *kinfer_codec_result_schema(void);
const char *kinfer_codec_dead_letter_schema(void);

#endif
