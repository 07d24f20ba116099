/* SPDX-License-Identifier: Apache-2.0 */
/* codec.c -- the codec's front: format names and dead-letter reasons, kinfer_codec_new and
 * _destroy, and decode/encode dispatched by the configured format (avro.c, json.c; raw text
 * here). Every decoded text is checked to be UTF-8 here (kinfer/core/utf8.h), whatever its
 * format. Includes neither avro.h nor jansson.h. */
#include "codec/codec_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kinfer/core/log.h"
#include "kinfer/core/utf8.h"
#include "kinfer_schemas.h" /* generated: kinfer_classification_avsc[], kinfer_dead_letter_avsc[] */

/* ---- names ---------------------------------------------------------------------------------- */

const char *kinfer_dlq_reason_str(kinfer_dlq_reason_t reason)
{
        switch (reason) {
        case KINFER_DLQ_UNDECODABLE: return "undecodable";
        case KINFER_DLQ_EMPTY: return "empty";
        case KINFER_DLQ_OVERSIZED: return "oversized";
        case KINFER_DLQ_OVER_LIMIT: return "over_limit";
        case KINFER_DLQ_UNDELIVERABLE: return "undeliverable";
        case KINFER_DLQ_NO_FEATURES: return "no_features";
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

/* ---- the codec ---------------------------------------------------------------------------- */

/* Register the result and dead-letter schemas (output.format=avro-confluent) under their
 * subjects and keep the ids the registry returns. A registry that cannot answer is asked again
 * a few times (its backoff, about 3 s in all); after that the codec is not created: nothing has
 * been consumed yet, so a restart loses nothing. */
static kinfer_err_t register_output(kinfer_codec_t *codec, const kinfer_codec_conf_t *cc,
                                    char *errstr, size_t errstr_size)
{
        if (cc->out_format != KINFER_OUT_AVRO_CONFLUENT)
                return KINFER_OK;
        const char *subject[2] = {cc->out_subject, cc->dlq_subject};
        const char *schema[2] = {kinfer_codec_result_schema(), kinfer_codec_dead_letter_schema()};
        int32_t *id[2] = {&codec->cc.out_schema_id, &codec->cc.dlq_schema_id};
        for (int i = 0; i < 2; i++) {
                if (!subject[i] || !*subject[i])
                        continue;
                kinfer_err_t err;
                for (int tries = 0;; tries++) {
                        err = kinfer_sr_register(codec->sr, subject[i], schema[i], id[i], errstr,
                                                 errstr_size);
                        if (err != KINFER_ERR__TIMEOUT || tries == 5)
                                break;
                        struct timespec ts = {0, (long)kinfer_sr_retry_ms(codec->sr) * 1000000L};
                        while (ts.tv_nsec >= 1000000000L) {
                                ts.tv_sec++;
                                ts.tv_nsec -= 1000000000L;
                        }
                        nanosleep(&ts, NULL);
                }
                if (err)
                        return err;
                kinfer_log(KINFER_LOG_INFO, "SREG", "subject=%s registered: schema id %" PRId32,
                           subject[i], *id[i]);
        }
        return KINFER_OK;
}

kinfer_codec_t *kinfer_codec_new(const kinfer_codec_conf_t *cc, char *errstr, size_t errstr_size)
{
        kinfer_codec_t *codec = calloc(1, sizeof(*codec));
        if (!codec) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        codec->cc = *cc;
        if (codec->cc.max_items <= 0)
                codec->cc.max_items = KINFER_CODEC_MAX_ITEMS_DEFAULT;
        if (codec->cc.max_depth <= 0)
                codec->cc.max_depth = KINFER_CODEC_MAX_DEPTH_DEFAULT;
        if (codec->cc.max_depth > KINFER_CODEC_MAX_DEPTH_LIMIT) /* the walkers recurse */
                codec->cc.max_depth = KINFER_CODEC_MAX_DEPTH_LIMIT;
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
        if (cc->sr_url && *cc->sr_url) {
                if (!(codec->sr = kinfer_sr_new(cc, errstr, errstr_size)) ||
                    register_output(codec, cc, errstr, errstr_size)) {
                        kinfer_codec_destroy(codec);
                        return NULL;
                }
        }
        /* the conf's registry strings belong to the caller: sr.c copied what it keeps */
        codec->cc.sr_url = codec->cc.sr_user_info = codec->cc.sr_user_info_file = NULL;
        codec->cc.sr_ca_file = codec->cc.sr_cert_file = codec->cc.sr_key_file = NULL;
        codec->cc.out_subject = codec->cc.dlq_subject = NULL;
        if (cc->in_format == KINFER_IN_AVRO) {
                codec->plain = kinfer_codec_avro_load(codec->schema_path, codec->id_field,
                                                      codec->text_field, errstr, errstr_size);
                if (!codec->plain) {
                        kinfer_codec_destroy(codec);
                        return NULL;
                }
        }
        return codec;
}

void kinfer_codec_destroy(kinfer_codec_t *codec)
{
        if (!codec)
                return;
        kinfer_sr_destroy(codec->sr);
        kinfer_codec_avro_free(codec->plain);
        for (int i = 0; i < codec->n_byid; i++)
                kinfer_codec_avro_free(codec->byid[i]);
        free(codec->schemas_dir);
        free(codec->schema_path);
        free(codec->id_field);
        free(codec->text_field);
        free(codec);
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
                err = kinfer_codec_json_decode(codec, (const char *)p, len, arena, req, errstr,
                                               errstr_size);
                break;
        case KINFER_IN_AVRO:
                if (len == 0) {
                        req->text = "";
                        return KINFER_OK;
                }
                err = kinfer_codec_avro_decode(codec, p, len, arena, req, errstr, errstr_size);
                break;
        case KINFER_IN_AVRO_CONFLUENT:
                if (len == 0) {
                        req->text = "";
                        return KINFER_OK;
                }
                err = kinfer_codec_avro_decode_confluent(codec, p, len, arena, req, errstr,
                                                         errstr_size);
                break;
        default:
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE, "no input format");
        }
        if (err)
                return err;
        if (!req->text)
                req->text = "";
        if (!kinfer_utf8_valid(req->text, req->text_len))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                     "text is not valid UTF-8");
        return KINFER_OK;
}

kinfer_err_t kinfer_codec_encode_result(kinfer_codec_t *codec, const kinfer_result_t *res,
                                        kinfer_buf_t *out)
{
        int k = res->k < 1 ? 1 : res->k > KINFER_CODEC_TOPK_MAX ? KINFER_CODEC_TOPK_MAX : res->k;
        if (codec->cc.out_format == KINFER_OUT_JSON)
                return kinfer_codec_json_encode_result(res, k, out);
        return kinfer_codec_avro_encode_result(codec, res, k, out);
}

kinfer_err_t kinfer_codec_encode_dead_letter(kinfer_codec_t *codec, const kinfer_dead_letter_t *dl,
                                             kinfer_buf_t *out)
{
        if (codec->cc.out_format == KINFER_OUT_JSON)
                return kinfer_codec_json_encode_dead_letter(dl, out);
        return kinfer_codec_avro_encode_dead_letter(codec, dl, out);
}

/* ---- the Schema Registry -------------------------------------------------------------------- */

int kinfer_codec_retry_ms(const kinfer_codec_t *codec)
{
        return codec->sr ? kinfer_sr_retry_ms(codec->sr) : 0;
}

void kinfer_codec_output_ids(const kinfer_codec_t *codec, int32_t *out_id, int32_t *dlq_id)
{
        if (out_id)
                *out_id = codec->cc.out_schema_id;
        if (dlq_id)
                *dlq_id = codec->cc.dlq_schema_id;
}
