/* SPDX-License-Identifier: Apache-2.0 */
/* test_codec.c -- the codec: decode of every input format (Avro with Confluent framing and
 * schema evolution, plain Avro, JSON, text), malformed inputs of each kind, and result /
 * dead-letter encodings read back with avro-c's generic reader (so the hand-written writer
 * is checked against schemas/ *.avsc) and with jansson. */
#include <avro.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kinfer/codec/codec.h"
#include "kinfer/core/utf8.h"
#include "test.h"

static char schemas_dir[256];
static char arena_mem[1 << 16];

static void copy_file(const char *src_rel, const char *dst)
{
        char path[1024];
        test_src_path(src_rel, path, sizeof(path));
        FILE *in = fopen(path, "rb"), *out = fopen(dst, "wb");
        if (!in || !out) {
                fprintf(stderr, "cannot copy %s to %s\n", path, dst);
                exit(1);
        }
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
                fwrite(buf, 1, n, out);
        fclose(in);
        fclose(out);
}

static void setup(void)
{
        snprintf(schemas_dir, sizeof(schemas_dir), "/tmp/kinfer-test-codec.%d", (int)getpid());
        if (mkdir(schemas_dir, 0700) != 0) {
                perror(schemas_dir);
                exit(1);
        }
        char dst[512];
        snprintf(dst, sizeof(dst), "%s/1.avsc", schemas_dir);
        copy_file("schemas/text_record.avsc", dst);
        snprintf(dst, sizeof(dst), "%s/2.avsc", schemas_dir);
        copy_file("schemas/text_record_v2.avsc", dst);
        snprintf(dst, sizeof(dst), "%s/3.avsc", schemas_dir);
        FILE *fp = fopen(dst, "w");
        fputs("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"id\",\"type\":\"long\"},"
              "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"int\"}},"
              "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}},"
              "{\"name\":\"f\",\"type\":{\"type\":\"fixed\",\"name\":\"F\",\"size\":3}},"
              "{\"name\":\"d\",\"type\":\"double\"},{\"name\":\"text\",\"type\":\"string\"}]}",
              fp);
        fclose(fp);
        snprintf(dst, sizeof(dst), "%s/5.avsc", schemas_dir);
        copy_file("tests/data/hostile_record.avsc", dst);
        snprintf(dst, sizeof(dst), "%s/4.avsc", schemas_dir);
        fp = fopen(dst, "w");
        fputs("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"body\",\"type\":\"string\"}]}", fp);
        fclose(fp);
}

static void teardown(void)
{
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", schemas_dir);
        if (system(cmd) != 0)
                fprintf(stderr, "cannot remove %s\n", schemas_dir);
}

static kinfer_codec_t *mk(kinfer_input_format_t in, kinfer_output_format_t out, const char *schema)
{
        char errstr[512], path[512];
        kinfer_codec_conf_t cc = {.in_format = in, .schemas_dir = schemas_dir, .id_field = "id",
                                  .text_field = "text", .out_format = out, .out_schema_id = 7,
                                  .dlq_schema_id = 8};
        if (schema)
                cc.schema_path = test_src_path(schema, path, sizeof(path));
        kinfer_codec_t *codec = kinfer_codec_new(&cc, errstr, sizeof(errstr));
        TEST_ASSERT(codec, "kinfer_codec_new: %s", errstr);
        return codec;
}

static kinfer_err_t dec(kinfer_codec_t *codec, const void *v, size_t len, kinfer_request_t *req,
                        char *errstr)
{
        kinfer_arena_t arena = {arena_mem, 0, sizeof(arena_mem)};
        return kinfer_codec_decode(codec, v, len, &arena, req, errstr, 256);
}

static int req_is(const kinfer_request_t *req, const char *id, const char *text)
{
        if (id ? !req->id || req->id_len != strlen(id) || memcmp(req->id, id, req->id_len) : req->id != NULL)
                return 0;
        return req->text_len == strlen(text) && !memcmp(req->text, text, req->text_len);
}

static void test_avro_confluent(void)
{
        kinfer_codec_t *codec = mk(KINFER_IN_AVRO_CONFLUENT, KINFER_OUT_AVRO, NULL);
        kinfer_buf_t buf = {0};
        char errstr[256];
        kinfer_request_t req;
        TEST_ASSERT(!kinfer_codec_encode_input(codec, 1, "a-1", "hello world", 11, &buf, errstr, 256),
                    "%s", errstr);
        TEST_ASSERT(buf.len > 5 && buf.data[0] == 0 && buf.data[4] == 1, "framing");
        TEST_ASSERT(!dec(codec, buf.data, buf.len, &req, errstr), "%s", errstr);
        TEST_ASSERT(req_is(&req, "a-1", "hello world"), "decoded %.*s", (int)req.text_len, req.text);
        /* evolved schema: fields before and after, nullable id */
        buf.len = 0;
        TEST_ASSERT(!kinfer_codec_encode_input(codec, 2, "b-2", "évolution ok", strlen("évolution ok"),
                                               &buf, errstr, 256), "%s", errstr);
        TEST_ASSERT(!dec(codec, buf.data, buf.len, &req, errstr), "%s", errstr);
        TEST_ASSERT(req_is(&req, "b-2", "évolution ok"), "v2 decode");
        buf.len = 0;
        TEST_ASSERT(!kinfer_codec_encode_input(codec, 2, NULL, "no id", 5, &buf, errstr, 256), "%s", errstr);
        TEST_ASSERT(!dec(codec, buf.data, buf.len, &req, errstr), "%s", errstr);
        TEST_ASSERT(req_is(&req, NULL, "no id"), "null id -> NULL");
        /* long id, map, enum, fixed, double skipped */
        buf.len = 0;
        TEST_ASSERT(!kinfer_codec_encode_input(codec, 3, "-42", "typed", 5, &buf, errstr, 256), "%s", errstr);
        TEST_ASSERT(!dec(codec, buf.data, buf.len, &req, errstr), "%s", errstr);
        TEST_ASSERT(req_is(&req, "-42", "typed"), "long id");
        /* schema without the text field: undecodable, and the error says why */
        const unsigned char no_text[] = {0, 0, 0, 0, 4, 2, 'x'};
        TEST_ASSERT(dec(codec, no_text, sizeof(no_text), &req, errstr) == KINFER_ERR__BAD_FORMAT &&
                        strstr(errstr, "text"), "schema 4: %s", errstr);
        kinfer_buf_free(&buf);
        kinfer_codec_destroy(codec);
}

static void test_avro_malformed(void)
{
        kinfer_codec_t *codec = mk(KINFER_IN_AVRO_CONFLUENT, KINFER_OUT_AVRO, NULL);
        kinfer_buf_t buf = {0};
        char errstr[256];
        kinfer_request_t req;
        TEST_ASSERT(!kinfer_codec_encode_input(codec, 2, "id", "some text", 9, &buf, errstr, 256), "%s", errstr);
        /* every strict prefix is undecodable (truncation anywhere) */
        int bad = 0;
        for (size_t n = 0; n < buf.len; n++) {
                kinfer_err_t err = dec(codec, buf.data, n, &req, errstr);
                if (n == 0 ? err != KINFER_OK || req.text_len != 0 : err == KINFER_OK)
                        bad++;
        }
        TEST_ASSERT(bad == 0, "%d prefixes decoded", bad);
        /* trailing garbage */
        char tmp[256];
        memcpy(tmp, buf.data, buf.len);
        tmp[buf.len] = 0x55;
        TEST_ASSERT(dec(codec, tmp, buf.len + 1, &req, errstr) == KINFER_ERR__BAD_FORMAT &&
                        strstr(errstr, "trailing"), "trailing: %s", errstr);
        /* bad magic, short header, unknown schema id */
        tmp[0] = 1;
        TEST_ASSERT(dec(codec, tmp, buf.len, &req, errstr) == KINFER_ERR__BAD_FORMAT &&
                        strstr(errstr, "magic"), "magic: %s", errstr);
        TEST_ASSERT(dec(codec, "\0\0\0", 3, &req, errstr) == KINFER_ERR__BAD_FORMAT, "short");
        const unsigned char unknown[] = {0, 0, 0, 0x30, 0x39, 2, 'a', 2, 'b'};
        TEST_ASSERT(dec(codec, unknown, sizeof(unknown), &req, errstr) == KINFER_ERR__BAD_FORMAT &&
                        strstr(errstr, "12345"), "unknown id: %s", errstr);
        /* schema 1: string id, string text. Huge length, negative length, overlong varint. */
        const unsigned char huge[] = {0, 0, 0, 0, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f, 'a'};
        TEST_ASSERT(dec(codec, huge, sizeof(huge), &req, errstr) == KINFER_ERR__BAD_FORMAT, "huge len");
        const unsigned char neg[] = {0, 0, 0, 0, 1, 0x01, 2, 'a'};
        TEST_ASSERT(dec(codec, neg, sizeof(neg), &req, errstr) == KINFER_ERR__BAD_FORMAT, "neg len");
        const unsigned char longvar[] = {0, 0, 0, 0, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                         0x80, 0x80, 0x80, 0x80, 0x01};
        TEST_ASSERT(dec(codec, longvar, sizeof(longvar), &req, errstr) == KINFER_ERR__BAD_FORMAT, "varint");
        /* schema 2: bad union branch for id (index 5 of 2) */
        const unsigned char branch[] = {0, 0, 0, 0, 2, 0, 10, 2, 'x'};
        TEST_ASSERT(dec(codec, branch, sizeof(branch), &req, errstr) == KINFER_ERR__BAD_FORMAT, "branch");
        /* schema 1: invalid UTF-8 text */
        const unsigned char badutf[] = {0, 0, 0, 0, 1, 2, 'i', 8, 0xc3, 0x28, 'a', 'b'};
        TEST_ASSERT(dec(codec, badutf, sizeof(badutf), &req, errstr) == KINFER_ERR__BAD_FORMAT &&
                        strstr(errstr, "UTF-8"), "utf8: %s", errstr);
        /* schema 3: a map claiming 2^40 entries */
        const unsigned char bigmap[] = {0, 0, 0, 0, 3, 2, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 0};
        TEST_ASSERT(dec(codec, bigmap, sizeof(bigmap), &req, errstr) == KINFER_ERR__BAD_FORMAT, "map");
        /* random bytes never crash (and under ASan never read out of bounds) */
        srand(1);
        for (int i = 0; i < 20000; i++) {
                unsigned char r[64];
                size_t n = (size_t)(rand() % (int)sizeof(r));
                for (size_t j = 0; j < n; j++)
                        r[j] = (unsigned char)rand();
                if (n > 5) {
                        r[0] = r[1] = r[2] = r[3] = 0;
                        r[4] = (unsigned char)(1 + rand() % 3);
                }
                (void)dec(codec, r, n, &req, errstr);
        }
        /* arena too small for an int id: NOMEM so the caller can flush and retry */
        buf.len = 0;
        TEST_ASSERT(!kinfer_codec_encode_input(codec, 3, "7", "t", 1, &buf, errstr, 256), "%s", errstr);
        char small[8];
        kinfer_arena_t arena = {small, 0, sizeof(small)};
        TEST_ASSERT(kinfer_codec_decode(codec, buf.data, buf.len, &arena, &req, errstr, 256) ==
                        KINFER_ERR__NOMEM, "arena full");
        kinfer_buf_free(&buf);
        kinfer_codec_destroy(codec);
}

static void test_avro_plain(void)
{
        kinfer_codec_t *codec = mk(KINFER_IN_AVRO, KINFER_OUT_AVRO, "schemas/text_record_v2.avsc");
        if (!codec)
                return;
        kinfer_buf_t buf = {0};
        char errstr[256];
        kinfer_request_t req;
        TEST_ASSERT(!kinfer_codec_encode_input(codec, 0, "p1", "plain avro", 10, &buf, errstr, 256), "%s", errstr);
        TEST_ASSERT(buf.data[0] != 0 || buf.len < 5 || buf.data[4] != 0, "no framing expected");
        TEST_ASSERT(!dec(codec, buf.data, buf.len, &req, errstr), "%s", errstr);
        TEST_ASSERT(req_is(&req, "p1", "plain avro"), "plain");
        kinfer_buf_free(&buf);
        kinfer_codec_destroy(codec);
        char path[512];
        kinfer_codec_conf_t cc = {.in_format = KINFER_IN_AVRO,
                                  .schema_path = test_src_path("schemas/nope.avsc", path, sizeof(path))};
        TEST_ASSERT(!kinfer_codec_new(&cc, errstr, sizeof(errstr)) && strstr(errstr, "nope.avsc"),
                    "missing schema: %s", errstr);
}

static void test_json_text(void)
{
        kinfer_codec_t *codec = mk(KINFER_IN_JSON, KINFER_OUT_JSON, NULL);
        char errstr[256];
        kinfer_request_t req;
        const char *ok1 = "{\"id\":\"j1\",\"text\":\"caf\\u00e9 \\\"q\\\"\",\"extra\":[1,2]}";
        TEST_ASSERT(!dec(codec, ok1, strlen(ok1), &req, errstr), "%s", errstr);
        TEST_ASSERT(req_is(&req, "j1", "café \"q\""), "json string id");
        const char *ok2 = "{\"text\":\"t\",\"id\":123}";
        TEST_ASSERT(!dec(codec, ok2, strlen(ok2), &req, errstr) && req_is(&req, "123", "t"), "int id");
        const char *ok3 = "{\"text\":\"t\"}";
        TEST_ASSERT(!dec(codec, ok3, strlen(ok3), &req, errstr) && req_is(&req, NULL, "t"), "no id");
        const char *bad[] = {"{\"text\":", "[1,2]", "{\"id\":\"x\"}", "{\"text\":5}", "{\"text\":\"a\",\"id\":{}}", "nul"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                TEST_ASSERT(dec(codec, bad[i], strlen(bad[i]), &req, errstr) != KINFER_OK, "accepted %s", bad[i]);
        TEST_ASSERT(!dec(codec, "", 0, &req, errstr) && req.text_len == 0, "empty value = empty text");
        kinfer_codec_destroy(codec);

        codec = mk(KINFER_IN_TEXT, KINFER_OUT_JSON, NULL);
        TEST_ASSERT(!dec(codec, "raw text", 8, &req, errstr) && req_is(&req, NULL, "raw text"), "text");
        TEST_ASSERT(dec(codec, "\xff\xfe", 2, &req, errstr) == KINFER_ERR__BAD_FORMAT, "invalid utf8");
        TEST_ASSERT(dec(codec, "\xed\xa0\x80", 3, &req, errstr) == KINFER_ERR__BAD_FORMAT, "surrogate");
        TEST_ASSERT(dec(codec, "\xc0\x80", 2, &req, errstr) == KINFER_ERR__BAD_FORMAT, "overlong");
        kinfer_codec_destroy(codec);
}

static kinfer_result_t sample_result(void)
{
        kinfer_result_t res = {.id = "r\"1", .id_len = 3, .k = 2, .model_name = "sections",
                               .model_version = 3, .model_sha256 = "ab12", .topic = "in",
                               .partition = 2, .offset = 12345678901LL, .timestamp_ms = -1,
                               .consumed_at_ms = 1700000000000LL, .classified_at_ms = 1700000000005LL,
                               .batch_size = 64, .worker_id = "w1"};
        res.label[0] = "libs";
        res.score[0] = 0.75f;
        res.label[1] = "devel";
        res.score[1] = 0.125f;
        return res;
}

/* ---- bounded decoding: items and depth (input.max.items, input.max.depth) ----------------- */

static void zz(kinfer_buf_t *b, int64_t v)
{
        uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
        while (u >= 0x80) {
                kinfer_buf_putc(b, (char)(u | 0x80));
                u >>= 7;
        }
        kinfer_buf_putc(b, (char)u);
}

/* A Hostile record (tests/data/hostile_record.avsc) in Confluent framing with schema id 5:
 * @p blocks blocks of @p per_block nulls, a chain of @p chain Nodes, text "ok". */
static void hostile(kinfer_buf_t *b, int64_t blocks, int64_t per_block, int chain)
{
        b->len = 0;
        kinfer_buf_putc(b, 0);
        kinfer_buf_putc(b, 0);
        kinfer_buf_putc(b, 0);
        kinfer_buf_putc(b, 0);
        kinfer_buf_putc(b, 5);
        zz(b, 0); /* id: null */
        for (int64_t i = 0; i < blocks; i++)
                zz(b, per_block); /* nulls: a block of per_block items, zero bytes each */
        zz(b, 0);
        zz(b, 0); /* empties: none */
        for (int i = 0; i < chain; i++) {
                zz(b, 1); /* tree / next: branch Node */
                zz(b, 0); /* kids: none */
        }
        zz(b, 0); /* null: the chain ends */
        zz(b, 0); /* attrs: none */
        zz(b, 1); /* text: branch string */
        zz(b, 2);
        kinfer_buf_puts(b, "ok");
}

static kinfer_codec_t *mk_lim(kinfer_input_format_t in, int64_t items, int32_t depth)
{
        char errstr[512];
        kinfer_codec_conf_t cc = {.in_format = in, .schemas_dir = schemas_dir, .id_field = "id",
                                  .text_field = "text", .max_items = items, .max_depth = depth};
        kinfer_codec_t *codec = kinfer_codec_new(&cc, errstr, sizeof(errstr));
        TEST_ASSERT(codec, "kinfer_codec_new: %s", errstr);
        return codec;
}

static void test_avro_limits(void)
{
        kinfer_codec_t *codec = mk_lim(KINFER_IN_AVRO_CONFLUENT, 0, 0); /* the defaults */
        kinfer_buf_t b = {0};
        char errstr[256];
        kinfer_request_t req;
        /* within the defaults: decoded */
        hostile(&b, 1, 100000, 0);
        TEST_ASSERT(!dec(codec, b.data, b.len, &req, errstr) && req_is(&req, NULL, "ok"),
                    "100000 nulls: %s", errstr);
        hostile(&b, 0, 0, 15); /* depth 2 per Node: 30 levels */
        TEST_ASSERT(!dec(codec, b.data, b.len, &req, errstr) && req_is(&req, NULL, "ok"),
                    "15 nested Nodes: %s", errstr);
        /* one more item: over */
        hostile(&b, 1, 100001, 0);
        TEST_ASSERT(dec(codec, b.data, b.len, &req, errstr) == KINFER_ERR__LIMIT &&
                        strstr(errstr, "input.max.items") && strstr(errstr, "nulls"),
                    "100001 nulls: %s", errstr);
        /* a 17-byte record announcing 2^62 zero-size items: refused before the loop */
        hostile(&b, 1, (int64_t)1 << 62, 0);
        TEST_ASSERT(b.len < 32 && dec(codec, b.data, b.len, &req, errstr) == KINFER_ERR__LIMIT,
                    "2^62 nulls: %s", errstr);
        /* many blocks, each small: the total counts (this once took minutes: blocks of up to
         * the bytes left + 1024 items each, a thousand times) */
        hostile(&b, 5000, 1000, 0);
        TEST_ASSERT(dec(codec, b.data, b.len, &req, errstr) == KINFER_ERR__LIMIT,
                    "5000 blocks of 1000 nulls: %s", errstr);
        /* recursion: a chain of 40 Nodes is 80 levels */
        hostile(&b, 0, 0, 40);
        TEST_ASSERT(dec(codec, b.data, b.len, &req, errstr) == KINFER_ERR__LIMIT &&
                        strstr(errstr, "input.max.depth"), "40 nested Nodes: %s", errstr);
        kinfer_codec_destroy(codec);
        /* the keys move the bounds */
        codec = mk_lim(KINFER_IN_AVRO_CONFLUENT, 10, 64);
        hostile(&b, 1, 11, 0);
        TEST_ASSERT(dec(codec, b.data, b.len, &req, errstr) == KINFER_ERR__LIMIT, "11 > 10: %s", errstr);
        hostile(&b, 2, 5, 0);
        TEST_ASSERT(!dec(codec, b.data, b.len, &req, errstr), "10 in two blocks: %s", errstr);
        hostile(&b, 0, 0, 31);
        TEST_ASSERT(!dec(codec, b.data, b.len, &req, errstr), "62 levels under depth 64: %s", errstr);
        hostile(&b, 0, 0, 33);
        TEST_ASSERT(dec(codec, b.data, b.len, &req, errstr) == KINFER_ERR__LIMIT, "66 levels: %s", errstr);
        kinfer_codec_destroy(codec);
        kinfer_buf_free(&b);
        TEST_ASSERT(!strcmp(kinfer_dlq_reason_str(KINFER_DLQ_OVER_LIMIT), "over_limit"), "reason");
}

static void test_json_limits(void)
{
        kinfer_codec_t *codec = mk_lim(KINFER_IN_JSON, 0, 0);
        kinfer_buf_t b = {0};
        char errstr[256];
        kinfer_request_t req;
        /* 33 nested arrays beside the text: over input.max.depth=32; 32 are fine */
        for (int d = 32; d <= 33; d++) {
                b.len = 0;
                kinfer_buf_puts(&b, "{\"text\":\"ok\",\"x\":");
                for (int i = 0; i < d; i++)
                        kinfer_buf_putc(&b, '[');
                for (int i = 0; i < d; i++)
                        kinfer_buf_putc(&b, ']');
                kinfer_buf_putc(&b, '}');
                kinfer_err_t err = dec(codec, b.data, b.len, &req, errstr);
                TEST_ASSERT(d == 32 ? err == KINFER_OK : err == KINFER_ERR__LIMIT, "depth %d: %d %s", d, err, errstr);
        }
        /* past jansson's own parser depth (2048): over_limit too, not "invalid JSON" */
        b.len = 0;
        kinfer_buf_puts(&b, "{\"text\":\"ok\",\"x\":");
        for (int i = 0; i < 5000; i++)
                kinfer_buf_putc(&b, '[');
        TEST_ASSERT(dec(codec, b.data, b.len, &req, errstr) == KINFER_ERR__LIMIT, "5000 deep: %s", errstr);
        /* 100000 items in all (the top-level object's 2 members count), then one more */
        for (int extra = 0; extra <= 1; extra++) {
                b.len = 0;
                kinfer_buf_puts(&b, "{\"text\":\"ok\",\"x\":[0");
                for (int i = 1; i < 100000 - 2 + extra; i++)
                        kinfer_buf_puts(&b, ",0");
                kinfer_buf_puts(&b, "]}");
                kinfer_err_t err = dec(codec, b.data, b.len, &req, errstr);
                TEST_ASSERT(extra ? err == KINFER_ERR__LIMIT && strstr(errstr, "input.max.items") : err == KINFER_OK,
                            "%d items: %d %s", 100000 + extra, err, errstr);
        }
        /* a second "text" member: refused, not read one way here and another downstream */
        const char *dup = "{\"text\":\"a\",\"text\":\"b\"}";
        TEST_ASSERT(dec(codec, dup, strlen(dup), &req, errstr) == KINFER_ERR__BAD_FORMAT &&
                        strstr(errstr, "duplicate"), "duplicate: %s", errstr);
        kinfer_codec_destroy(codec);
        kinfer_buf_free(&b);
}

/* ---- valid output: every string kinfer writes is valid UTF-8 -------------------------------- */

/* Each ill-formed UTF-8 kind once: a stray continuation, FF, an overlong '/', a surrogate, a
 * code point above U+10FFFF, a sequence cut short by the end; between valid characters. */
static const char bad_utf8[] = "a\x80" "b\xff" "c\xc0\xaf" "d\xed\xa0\x80" "e\xf4\x90\x80\x80" "f\xc3\xa9\xf0\x9f";
/* ... each maximal subpart replaced by one U+FFFD (as core's JSON escaper does) */
static const char bad_utf8_fixed[] =
    "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbd" "d\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
    "e\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "f\xc3\xa9\xef\xbf\xbd";

/* Visit every string in @p v (records, arrays, maps, unions): count them, count invalid ones. */
static void avro_strings(avro_value_t *v, int *n, int *bad)
{
        size_t count, len;
        const char *s;
        avro_value_t c;
        switch (avro_value_get_type(v)) {
        case AVRO_STRING:
                avro_value_get_string(v, &s, &len); /* len counts the NUL avro-c appends */
                (*n)++;
                *bad += len == 0 || !kinfer_utf8_valid(s, len - 1);
                break;
        case AVRO_RECORD:
        case AVRO_ARRAY:
        case AVRO_MAP:
                avro_value_get_size(v, &count);
                for (size_t i = 0; i < count; i++) {
                        avro_value_get_by_index(v, i, &c, NULL);
                        avro_strings(&c, n, bad);
                }
                break;
        case AVRO_UNION:
                avro_value_get_current_branch(v, &c);
                avro_strings(&c, n, bad);
                break;
        default:
                break;
        }
}

/* Read @p data with avro-c's generic reader under @p schema_json; @returns the number of
 * strings, and *bad the invalid ones; the id field (if any) into @p id. */
static int read_back(const char *schema_json, const char *data, size_t len, int *bad, char *id,
                     size_t id_size)
{
        avro_schema_t schema;
        TEST_ASSERT(!avro_schema_from_json_length(schema_json, strlen(schema_json), &schema), "schema");
        avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
        avro_value_t v, f;
        avro_generic_value_new(iface, &v);
        avro_reader_t rd = avro_reader_memory(data, (int64_t)len);
        int n = 0;
        *bad = 0;
        TEST_ASSERT(!avro_value_read(rd, &v), "avro-c read: %s", avro_strerror());
        avro_strings(&v, &n, bad);
        if (id && !avro_value_get_by_name(&v, "id", &f, NULL)) {
                const char *s;
                size_t sl;
                avro_value_get_string(&f, &s, &sl);
                snprintf(id, id_size, "%s", s);
        }
        avro_reader_free(rd);
        avro_value_decref(&v);
        avro_value_iface_decref(iface);
        avro_schema_decref(schema);
        return n;
}

static void test_output_utf8(void)
{
        TEST_ASSERT(!kinfer_utf8_valid(bad_utf8, sizeof(bad_utf8) - 1) &&
                        kinfer_utf8_valid(bad_utf8_fixed, sizeof(bad_utf8_fixed) - 1), "fixtures");
        char fixed[256];
        size_t m = kinfer_utf8_repair(bad_utf8, sizeof(bad_utf8) - 1, fixed);
        TEST_ASSERT(m == sizeof(bad_utf8_fixed) - 1 && !memcmp(fixed, bad_utf8_fixed, m) &&
                        kinfer_utf8_repair(bad_utf8, sizeof(bad_utf8) - 1, NULL) == m, "repair: %zu bytes", m);
        /* a result whose id came from a Kafka key, and every other string of it, ill-formed */
        kinfer_result_t res = sample_result();
        res.id = bad_utf8;
        res.id_len = sizeof(bad_utf8) - 1;
        res.label[0] = res.label[1] = res.model_name = res.topic = res.worker_id = bad_utf8;
        res.model_sha256 = bad_utf8;
        kinfer_header_view_t hdrs[2] = {{bad_utf8, bad_utf8, sizeof(bad_utf8) - 1}, {"h2", NULL, 0}};
        kinfer_dead_letter_t dl = {.reason = KINFER_DLQ_UNDECODABLE, .detail = bad_utf8, .topic = bad_utf8,
                                   .partition = 1, .offset = 9, .timestamp_ms = 5, .key = bad_utf8,
                                   .key_len = sizeof(bad_utf8) - 1, .value = bad_utf8,
                                   .value_len = sizeof(bad_utf8) - 1, .headers = hdrs, .n_headers = 2,
                                   .worker_id = bad_utf8, .dead_at_ms = 77};
        kinfer_output_format_t fmts[3] = {KINFER_OUT_AVRO, KINFER_OUT_AVRO_CONFLUENT, KINFER_OUT_JSON};
        for (int f = 0; f < 3; f++) {
                kinfer_codec_t *codec = mk(KINFER_IN_TEXT, fmts[f], NULL);
                kinfer_buf_t buf = {0};
                size_t skip = fmts[f] == KINFER_OUT_AVRO_CONFLUENT ? 5 : 0;
                TEST_ASSERT(!kinfer_codec_encode_result(codec, &res, &buf), "encode result");
                if (fmts[f] == KINFER_OUT_JSON) {
                        json_error_t jerr;
                        json_t *j = json_loadb(buf.data, buf.len, 0, &jerr); /* jansson refuses bad UTF-8 */
                        TEST_ASSERT(j, "result JSON: %s", jerr.text);
                        const char *id = json_string_value(json_object_get(j, "id"));
                        TEST_ASSERT(id && !strcmp(id, bad_utf8_fixed), "JSON id repaired");
                        json_decref(j);
                } else {
                        int bad;
                        char id[256] = "";
                        int n = read_back(kinfer_codec_result_schema(), buf.data + skip, buf.len - skip, &bad,
                                          id, sizeof(id));
                        TEST_ASSERT(n >= 8 && bad == 0, "format %d: %d of %d result strings invalid", f, bad, n);
                        TEST_ASSERT(!strcmp(id, bad_utf8_fixed), "format %d: id repaired by the one rule", f);
                }
                buf.len = 0;
                TEST_ASSERT(!kinfer_codec_encode_dead_letter(codec, &dl, &buf), "encode dead letter");
                if (fmts[f] == KINFER_OUT_JSON) {
                        json_error_t jerr;
                        json_t *j = json_loadb(buf.data, buf.len, 0, &jerr);
                        TEST_ASSERT(j, "dead letter JSON: %s", jerr.text);
                        json_decref(j);
                } else {
                        int bad;
                        int n = read_back(kinfer_codec_dead_letter_schema(), buf.data + skip,
                                          buf.len - skip, &bad, NULL, 0);
                        TEST_ASSERT(n >= 6 && bad == 0, "format %d: %d of %d dead-letter strings invalid", f, bad, n);
                }
                kinfer_buf_free(&buf);
                kinfer_codec_destroy(codec);
        }
}

static void test_encode_result_avro(void)
{
        kinfer_codec_t *codec = mk(KINFER_IN_TEXT, KINFER_OUT_AVRO_CONFLUENT, NULL);
        kinfer_result_t res = sample_result();
        kinfer_buf_t buf = {0};
        TEST_ASSERT(!kinfer_codec_encode_result(codec, &res, &buf), "encode");
        TEST_ASSERT(buf.len > 5 && buf.data[0] == 0 && buf.data[4] == 7, "confluent framing, id 7");
        /* read back with avro-c's generic reader and the schema file */
        char path[512];
        FILE *fp = fopen(test_src_path("schemas/classification.avsc", path, sizeof(path)), "rb");
        char json[8192];
        size_t n = fread(json, 1, sizeof(json) - 1, fp);
        fclose(fp);
        json[n] = '\0';
        avro_schema_t schema, embedded;
        TEST_ASSERT(!avro_schema_from_json_length(json, n, &schema), "%s", avro_strerror());
        const char *emb = kinfer_codec_result_schema();
        TEST_ASSERT(!avro_schema_from_json_length(emb, strlen(emb), &embedded), "embedded");
        TEST_ASSERT(avro_schema_equal(schema, embedded), "embedded result schema = schemas/classification.avsc");
        avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
        avro_value_t v, f, item, sub;
        avro_generic_value_new(iface, &v);
        avro_reader_t rd = avro_reader_memory(buf.data + 5, (int64_t)buf.len - 5);
        TEST_ASSERT(!avro_value_read(rd, &v), "avro-c read: %s", avro_strerror());
        const char *s;
        size_t sl;
        float fl;
        int32_t i32;
        int64_t i64;
        avro_value_get_by_name(&v, "id", &f, NULL);
        avro_value_get_string(&f, &s, &sl);
        TEST_ASSERT(!strcmp(s, "r\"1"), "id %s", s);
        avro_value_get_by_name(&v, "label", &f, NULL);
        avro_value_get_string(&f, &s, &sl);
        TEST_ASSERT(!strcmp(s, "libs"), "label %s", s);
        avro_value_get_by_name(&v, "score", &f, NULL);
        avro_value_get_float(&f, &fl);
        TEST_ASSERT(fl == 0.75f, "score %g", (double)fl);
        avro_value_get_by_name(&v, "topk", &f, NULL);
        avro_value_get_size(&f, &sl);
        TEST_ASSERT(sl == 2, "topk size %zu", sl);
        avro_value_get_by_index(&f, 1, &item, NULL);
        avro_value_get_by_name(&item, "label", &sub, NULL);
        avro_value_get_string(&sub, &s, &sl);
        TEST_ASSERT(!strcmp(s, "devel"), "topk[1] %s", s);
        avro_value_get_by_name(&v, "model_version", &f, NULL);
        avro_value_get_int(&f, &i32);
        TEST_ASSERT(i32 == 3, "version %d", i32);
        avro_value_get_by_name(&v, "input_offset", &f, NULL);
        avro_value_get_long(&f, &i64);
        TEST_ASSERT(i64 == 12345678901LL, "offset");
        avro_value_get_by_name(&v, "input_timestamp_ms", &f, NULL);
        avro_value_get_long(&f, &i64);
        TEST_ASSERT(i64 == -1, "ts");
        avro_value_get_by_name(&v, "worker_id", &f, NULL);
        avro_value_get_string(&f, &s, &sl);
        TEST_ASSERT(!strcmp(s, "w1"), "worker_id %s", s);
        avro_value_sizeof(&v, &sl);
        TEST_ASSERT(sl == buf.len - 5, "whole buffer consumed: %zu of %zu", sl, buf.len - 5);
        avro_reader_free(rd);
        avro_value_decref(&v);
        avro_value_iface_decref(iface);
        avro_schema_decref(schema);
        avro_schema_decref(embedded);
        kinfer_buf_free(&buf);
        kinfer_codec_destroy(codec);
}

static void test_encode_dead_letter(void)
{
        kinfer_codec_t *codec = mk(KINFER_IN_TEXT, KINFER_OUT_AVRO, NULL);
        kinfer_header_view_t hdrs[2] = {{"h1", "v1", 2}, {"h2", NULL, 0}};
        kinfer_dead_letter_t dl = {.reason = KINFER_DLQ_OVERSIZED, .detail = "too big", .topic = "in",
                                   .partition = 1, .offset = 9, .timestamp_ms = 5, .key = NULL,
                                   .value = "\x00\x01", .value_len = 2, .headers = hdrs,
                                   .n_headers = 2, .worker_id = "w", .dead_at_ms = 77};
        kinfer_buf_t buf = {0};
        TEST_ASSERT(!kinfer_codec_encode_dead_letter(codec, &dl, &buf), "encode");
        const char *emb = kinfer_codec_dead_letter_schema();
        avro_schema_t schema;
        TEST_ASSERT(!avro_schema_from_json_length(emb, strlen(emb), &schema), "schema");
        avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
        avro_value_t v, f, br, item;
        avro_generic_value_new(iface, &v);
        avro_reader_t rd = avro_reader_memory(buf.data, (int64_t)buf.len);
        TEST_ASSERT(!avro_value_read(rd, &v), "avro-c read: %s", avro_strerror());
        const char *s;
        size_t sl;
        const void *bytes;
        int disc;
        avro_value_get_by_name(&v, "reason", &f, NULL);
        avro_value_get_string(&f, &s, &sl);
        TEST_ASSERT(!strcmp(s, "oversized"), "reason %s", s);
        avro_value_get_by_name(&v, "key", &f, NULL);
        avro_value_get_discriminant(&f, &disc);
        TEST_ASSERT(disc == 0, "null key");
        avro_value_get_by_name(&v, "value", &f, NULL);
        avro_value_get_current_branch(&f, &br);
        avro_value_get_bytes(&br, &bytes, &sl);
        TEST_ASSERT(sl == 2 && !memcmp(bytes, "\x00\x01", 2), "value bytes");
        avro_value_get_by_name(&v, "headers", &f, NULL);
        avro_value_get_size(&f, &sl);
        TEST_ASSERT(sl == 2, "headers %zu", sl);
        avro_value_get_by_index(&f, 0, &item, NULL);
        avro_value_get_by_name(&item, "key", &br, NULL);
        avro_value_get_string(&br, &s, &sl);
        TEST_ASSERT(!strcmp(s, "h1"), "header key %s", s);
        avro_value_sizeof(&v, &sl);
        TEST_ASSERT(sl == buf.len, "whole buffer consumed: %zu of %zu", sl, buf.len);
        avro_reader_free(rd);
        avro_value_decref(&v);
        avro_value_iface_decref(iface);
        avro_schema_decref(schema);
        kinfer_codec_destroy(codec);

        codec = mk(KINFER_IN_TEXT, KINFER_OUT_JSON, NULL);
        buf.len = 0;
        TEST_ASSERT(!kinfer_codec_encode_dead_letter(codec, &dl, &buf), "encode json");
        json_error_t jerr;
        json_t *j = json_loadb(buf.data, buf.len, 0, &jerr);
        TEST_ASSERT(j, "json dl: %s", jerr.text);
        TEST_ASSERT(j && !strcmp(json_string_value(json_object_get(j, "reason")), "oversized"), "reason");
        TEST_ASSERT(j && !strcmp(json_string_value(json_object_get(j, "value_base64")), "AAE="), "b64");
        TEST_ASSERT(j && json_is_null(json_object_get(j, "key_base64")), "null key");
        json_decref(j);
        kinfer_buf_free(&buf);
        kinfer_codec_destroy(codec);
}

static void test_encode_result_json(void)
{
        kinfer_codec_t *codec = mk(KINFER_IN_TEXT, KINFER_OUT_JSON, NULL);
        kinfer_result_t res = sample_result();
        res.id = "bad\xff\n";
        res.id_len = 5;
        kinfer_buf_t buf = {0};
        TEST_ASSERT(!kinfer_codec_encode_result(codec, &res, &buf), "encode");
        json_error_t jerr;
        json_t *j = json_loadb(buf.data, buf.len, 0, &jerr);
        TEST_ASSERT(j, "json: %s in %.*s", jerr.text, (int)buf.len, buf.data);
        if (j) {
                TEST_ASSERT(!strcmp(json_string_value(json_object_get(j, "label")), "libs"), "label");
                TEST_ASSERT(json_real_value(json_object_get(j, "score")) == 0.75, "score");
                TEST_ASSERT(json_integer_value(json_object_get(j, "model_version")) == 3, "version");
                TEST_ASSERT(json_array_size(json_object_get(j, "topk")) == 2, "topk");
                TEST_ASSERT(!strcmp(json_string_value(json_object_get(j, "id")), "bad\xef\xbf\xbd\n"), "id");
                TEST_ASSERT(json_integer_value(json_object_get(j, "input_offset")) == 12345678901LL, "offset");
        }
        json_decref(j);
        kinfer_buf_free(&buf);
        kinfer_codec_destroy(codec);
}

int main(void)
{
        setup();
        TEST_RUN(test_avro_confluent);
        TEST_RUN(test_avro_malformed);
        TEST_RUN(test_avro_plain);
        TEST_RUN(test_json_text);
        TEST_RUN(test_encode_result_avro);
        TEST_RUN(test_encode_dead_letter);
        TEST_RUN(test_encode_result_json);
        TEST_RUN(test_avro_limits);
        TEST_RUN(test_json_limits);
        TEST_RUN(test_output_utf8);
        teardown();
        return TEST_DONE();
}
