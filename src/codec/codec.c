/* SPDX-License-Identifier: Apache-2.0 */
/* codec.c -- the codec's front: format names and dead-letter reasons, kinfer_codec_new and
 * _destroy, and decode/encode dispatched by the configured format (avro.c, json.c; raw text
 * here). Every decoded text is checked to be UTF-8 here (kinfer/core/utf8.h), whatever its
 * format. Includes neither avro.h nor jansson.h. */
#include "codec/codec_int.h"

#include <stdlib.h>
#include <string.h>

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
