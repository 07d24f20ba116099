/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_codec.c -- libFuzzer target for the codec on arbitrary record values. The first byte
 * picks a decoder:
 *   0..4  plain Avro with one writer schema each: schemas/text_record.avsc,
 *         text_record_v2.avsc, classification.avsc (text field "label"), dead_letter.avsc
 *         (text field "detail", id field "topic") and tests/data/hostile_record.avsc (arrays
 *         and maps of null, empty records and unions, a recursive record);
 *   5     Confluent framing (magic byte, 4-byte schema id) over a schemas dir holding those
 *         five as ids 1..5 (ids 3 and 4 have no "text" field: their load fails);
 *   6     JSON;  7  text.
 * Whatever the bytes: decoding refuses or accepts within its bounds (input.max.items and
 * input.max.depth at their defaults), never crashes; an accepted text is valid UTF-8; a result
 * carrying the decoded id and a dead letter carrying the raw bytes as key, header name and
 * detail encode in every output format, and the JSON ones are valid UTF-8. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kinfer/codec/codec.h"
#include "kinfer/core/utf8.h"

#ifndef KINFER_SOURCE_DIR
#error "built by CMake with -DKINFER_SOURCE_DIR"
#endif

static const struct {
        const char *file, *id, *text;
} schemas[5] = {
    {"schemas/text_record.avsc", "id", "text"},
    {"schemas/text_record_v2.avsc", "id", "text"},
    {"schemas/classification.avsc", "id", "label"},
    {"schemas/dead_letter.avsc", "topic", "detail"},
    {"tests/data/hostile_record.avsc", "id", "text"},
};

static kinfer_codec_t *dec[8];
static kinfer_codec_t *enc[3];
static char dir[64];
static char arena_mem[1 << 20];

static void check(int ok)
{
        if (!ok)
                __builtin_trap();
}

static void cleanup(void)
{
        char path[128];
        for (int i = 1; i <= 5; i++) {
                snprintf(path, sizeof(path), "%s/%d.avsc", dir, i);
                unlink(path);
        }
        rmdir(dir);
}

static kinfer_codec_t *mk(kinfer_input_format_t in, kinfer_output_format_t out, const char *schema,
                          const char *id, const char *text)
{
        char errstr[512];
        kinfer_codec_conf_t cc = {.in_format = in, .schemas_dir = dir, .schema_path = schema,
                                  .id_field = id, .text_field = text, .out_format = out,
                                  .out_schema_id = 7, .dlq_schema_id = 8};
        kinfer_codec_t *codec = kinfer_codec_new(&cc, errstr, sizeof(errstr));
        if (!codec) {
                fprintf(stderr, "fuzz_codec: %s\n", errstr);
                abort();
        }
        return codec;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc, (void)argv;
        snprintf(dir, sizeof(dir), "/tmp/kinfer-fuzz-codec.%d", (int)getpid());
        char cmd[1024];
        snprintf(cmd, sizeof(cmd), "mkdir -p %s", dir);
        check(system(cmd) == 0);
        atexit(cleanup);
        for (int i = 0; i < 5; i++) {
                char src[512];
                snprintf(src, sizeof(src), "%s/%s", KINFER_SOURCE_DIR, schemas[i].file);
                snprintf(cmd, sizeof(cmd), "cp '%s' %s/%d.avsc", src, dir, i + 1);
                check(system(cmd) == 0);
                dec[i] = mk(KINFER_IN_AVRO, KINFER_OUT_AVRO, src, schemas[i].id, schemas[i].text);
        }
        dec[5] = mk(KINFER_IN_AVRO_CONFLUENT, KINFER_OUT_AVRO, NULL, "id", "text");
        dec[6] = mk(KINFER_IN_JSON, KINFER_OUT_AVRO, NULL, "id", "text");
        dec[7] = mk(KINFER_IN_TEXT, KINFER_OUT_AVRO, NULL, "id", "text");
        enc[0] = mk(KINFER_IN_TEXT, KINFER_OUT_AVRO, NULL, "id", "text");
        enc[1] = mk(KINFER_IN_TEXT, KINFER_OUT_AVRO_CONFLUENT, NULL, "id", "text");
        enc[2] = mk(KINFER_IN_TEXT, KINFER_OUT_JSON, NULL, "id", "text");
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        kinfer_codec_t *codec = dec[data[0] % 8];
        const char *value = (const char *)data + 1;
        size_t len = size - 1;
        kinfer_arena_t arena = {arena_mem, 0, sizeof(arena_mem)};
        kinfer_request_t req;
        char errstr[512];
        kinfer_err_t err = kinfer_codec_decode(codec, value, len, &arena, &req, errstr, sizeof(errstr));
        check(err == KINFER_OK || err == KINFER_ERR__BAD_FORMAT || err == KINFER_ERR__NOENT ||
              err == KINFER_ERR__LIMIT);
        check(strlen(errstr) < sizeof(errstr));
        if (err == KINFER_OK) {
                check(req.text && kinfer_utf8_valid(req.text, req.text_len));
                check(!req.id || req.id_len <= len + 24);
        }
        char name[64];
        size_t nl = len < sizeof(name) - 1 ? len : sizeof(name) - 1;
        memcpy(name, value, nl);
        name[nl] = '\0';
        kinfer_result_t res = {.id = err ? value : req.id, .id_len = err ? len : req.id_len, .k = 2,
                               .model_name = name, .model_version = 1, .model_sha256 = "00",
                               .topic = name, .partition = 0, .offset = 1, .timestamp_ms = -1,
                               .worker_id = name};
        res.label[0] = name;
        res.label[1] = "b";
        res.score[0] = 0.5f;
        res.score[1] = 0.25f;
        kinfer_header_view_t hdr = {name, value, len};
        kinfer_dead_letter_t dl = {.reason = KINFER_DLQ_UNDECODABLE, .detail = err ? errstr : name,
                                   .topic = name, .key = value, .key_len = len, .value = value,
                                   .value_len = len, .headers = &hdr, .n_headers = 1,
                                   .worker_id = name};
        for (int f = 0; f < 3; f++) {
                kinfer_buf_t out = {0};
                check(kinfer_codec_encode_result(enc[f], &res, &out) == KINFER_OK);
                if (f == 2)
                        check(kinfer_utf8_valid(out.data, out.len));
                out.len = 0;
                check(kinfer_codec_encode_dead_letter(enc[f], &dl, &out) == KINFER_OK);
                if (f == 2)
                        check(kinfer_utf8_valid(out.data, out.len));
                kinfer_buf_free(&out);
        }
        return 0;
}
