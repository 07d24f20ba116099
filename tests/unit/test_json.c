/* SPDX-License-Identifier: Apache-2.0 */
/* test_json.c -- core text helpers: the growable buffer, UTF-8 validation, the one JSON
 * string escaper (controls, quotes, every class of ill-formed UTF-8 -> one U+FFFD per maximal
 * subpart, valid 2/3/4-byte sequences kept), and the strict JSON reader and its writer (round
 * trip in jansson's indented layout, refusals, a depth bomb, size bounds). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinfer/core/buf.h"
#include "kinfer/core/json.h"
#include "kinfer/core/utf8.h"
#include "test.h"

#define FFFD "\xef\xbf\xbd"

static void test_buf(void)
{
        kinfer_buf_t b = {0};
        TEST_ASSERT(!kinfer_buf_puts(&b, "ab"), "puts");
        TEST_ASSERT(!kinfer_buf_putc(&b, 'c'), "putc");
        TEST_ASSERT(!kinfer_buf_append(&b, "d\0e", 3), "append");
        TEST_ASSERT(b.len == 6 && !memcmp(b.data, "abcd\0e", 7), "content");
        kinfer_buf_reset(&b);
        TEST_ASSERT(b.len == 0 && !b.oom && b.data && !*b.data, "reset");
        for (int i = 0; i < 1000; i++)
                kinfer_buf_printf(&b, "%d,", i);
        TEST_ASSERT(!b.oom && b.len == strlen(b.data), "printf keeps a NUL");
        TEST_ASSERT(!strncmp(b.data, "0,1,2,", 6) && !strcmp(b.data + b.len - 4, "999,"), "printf");
        char big[3000];
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        TEST_ASSERT(!kinfer_buf_printf(&b, "%s", big) && b.len == strlen(b.data), "printf grows");
        TEST_ASSERT(kinfer_buf_reserve(&b, SIZE_MAX) == KINFER_ERR__NOMEM && b.oom, "overflow");
        char *s = kinfer_buf_detach(&b);
        TEST_ASSERT(!s && !b.data && !b.oom, "detach after a failure gives NULL");
        kinfer_buf_puts(&b, "x");
        s = kinfer_buf_detach(&b);
        TEST_ASSERT(s && !strcmp(s, "x") && !b.data, "detach");
        free(s);
        s = kinfer_buf_detach(&b);
        TEST_ASSERT(s && !*s, "detach of an empty buffer");
        free(s);
        kinfer_buf_free(&b);
}

/* the escaper's output for @p len bytes, as a malloc'd string */
static char *esc(const char *s, size_t len)
{
        kinfer_buf_t b = {0};
        if (kinfer_buf_json_str(&b, s, len))
                return NULL;
        return kinfer_buf_detach(&b);
}

#define ESC_EQ(in, want)                                                                           \
        do {                                                                                       \
                char *got_ = esc(in, sizeof(in) - 1);                                              \
                TEST_ASSERT(got_ && !strcmp(got_, want), "escape %s: got %s want %s", #in,          \
                            got_ ? got_ : "(null)", want);                                         \
                TEST_ASSERT(got_ && kinfer_utf8_valid(got_, strlen(got_)), "output is UTF-8");      \
                free(got_);                                                                        \
        } while (0)

static void test_escape(void)
{
        ESC_EQ("", "\"\"");
        ESC_EQ("plain / text", "\"plain / text\"");
        ESC_EQ("a\"b\\c", "\"a\\\"b\\\\c\"");
        ESC_EQ("\n\r\t", "\"\\n\\r\\t\"");
        ESC_EQ("\x01\x08\x0c\x1f\x7f", "\"\\u0001\\u0008\\u000c\\u001f\\u007f\"");
        ESC_EQ("a\0b", "\"a\\u0000b\"");
        /* every control character */
        for (int c = 0; c < 0x80; c++) {
                char in = (char)c;
                char *got = esc(&in, 1);
                int ctl = c < 0x20 || c == 0x7f;
                TEST_ASSERT(got && (ctl ? got[1] == '\\' : (c == '"' || c == '\\') ? got[1] == '\\'
                                                                                 : got[1] == c && got[2] == '"'),
                            "byte %#x: %s", c, got ? got : "(null)");
                free(got);
        }
        /* valid 2-, 3-, 4-byte sequences are kept */
        ESC_EQ("\xc2\x80 \xc3\xa9 \xdf\xbf", "\"\xc2\x80 \xc3\xa9 \xdf\xbf\"");
        ESC_EQ("\xe0\xa0\x80 \xe2\x82\xac \xed\x9f\xbf \xee\x80\x80 \xef\xbf\xbf",
               "\"\xe0\xa0\x80 \xe2\x82\xac \xed\x9f\xbf \xee\x80\x80 \xef\xbf\xbf\"");
        ESC_EQ("\xf0\x90\x80\x80 \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf",
               "\"\xf0\x90\x80\x80 \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"");
        /* stray continuation bytes: one U+FFFD each */
        ESC_EQ("a\x80\xbf" "b", "\"a" FFFD FFFD "b\"");
        /* bytes that never start a sequence */
        ESC_EQ("\xc0\xc1\xf5\xff", "\"" FFFD FFFD FFFD FFFD "\"");
        /* overlong forms: C0 80 is two subparts; E0 80 80 three; F0 80 80 80 four */
        ESC_EQ("\xc0\x80", "\"" FFFD FFFD "\"");
        ESC_EQ("\xe0\x80\x80", "\"" FFFD FFFD FFFD "\"");
        ESC_EQ("\xf0\x80\x80\x80", "\"" FFFD FFFD FFFD FFFD "\"");
        /* surrogates (ED A0 80 = U+D800, ED BF BF = U+DFFF) */
        ESC_EQ("\xed\xa0\x80", "\"" FFFD FFFD FFFD "\"");
        ESC_EQ("\xed\xbf\xbf" "x", "\"" FFFD FFFD FFFD "x\"");
        /* above U+10FFFF */
        ESC_EQ("\xf4\x90\x80\x80", "\"" FFFD FFFD FFFD FFFD "\"");
        /* truncated: a maximal subpart is one U+FFFD */
        ESC_EQ("\xe2\x82", "\"" FFFD "\"");
        ESC_EQ("\xe2\x82" "x", "\"" FFFD "x\"");
        ESC_EQ("\xf0\x9f\x98", "\"" FFFD "\"");
        ESC_EQ("\xf0\x9f\x98\xe2\x82\xac", "\"" FFFD "\xe2\x82\xac\"");
        ESC_EQ("\xc3", "\"" FFFD "\"");
        ESC_EQ("\xc3\xc3\xa9", "\"" FFFD "\xc3\xa9\"");
        /* the Unicode standard's own example (Table 3-8): 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64 */
        ESC_EQ("\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64",
               "\"a" FFFD FFFD FFFD "b" FFFD "c" FFFD FFFD "d\"");
        /* appends to what is there, keeps the NUL, C-string form */
        kinfer_buf_t b = {0};
        kinfer_buf_puts(&b, "{\"k\": ");
        kinfer_buf_json_cstr(&b, "v\"");
        kinfer_buf_putc(&b, '}');
        kinfer_buf_json_cstr(&b, NULL);
        TEST_ASSERT(!b.oom && !strcmp(b.data, "{\"k\": \"v\\\"\"}\"\""), "%s", b.data);
        kinfer_buf_free(&b);
        /* random bytes always give valid UTF-8 without raw controls */
        uint32_t x = 12345;
        for (int round = 0; round < 2000; round++) {
                char in[16];
                size_t n = (size_t)(round % 16);
                for (size_t i = 0; i < n; i++) {
                        x = x * 1664525u + 1013904223u;
                        in[i] = (char)(x >> 24);
                }
                char *got = esc(in, n);
                int ok = got && kinfer_utf8_valid(got, strlen(got));
                for (const char *p = got; ok && *p; p++)
                        ok = (unsigned char)*p >= 0x20 && *p != 0x7f;
                TEST_ASSERT(ok, "random round %d", round);
                free(got);
        }
}

static void test_utf8(void)
{
        TEST_ASSERT(kinfer_utf8_valid("", 0), "empty");
        TEST_ASSERT(kinfer_utf8_valid("hello, world and more ascii", 27), "ascii");
        TEST_ASSERT(kinfer_utf8_valid("a\0b", 3), "NUL is valid UTF-8");
        TEST_ASSERT(kinfer_utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9), "2/3/4 bytes");
        static const char *bad[] = {"\x80", "\xc0\x80", "\xc1\xbf", "\xe0\x9f\xbf", "\xed\xa0\x80",
                                    "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
                                    "\xff", "\xe2\x82", "\xf0\x9f\x98", "\xc3"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char buf[32];
                snprintf(buf, sizeof(buf), "abcdefgh%s", bad[i]);
                TEST_ASSERT(!kinfer_utf8_valid(buf, strlen(buf)), "bad[%zu] refused", i);
                TEST_ASSERT(!kinfer_utf8_valid(bad[i], strlen(bad[i])), "bad[%zu] refused alone", i);
        }
        int valid;
        TEST_ASSERT(kinfer_utf8_seq("\xe2\x82\xac", 3, &valid) == 3 && valid, "seq valid");
        TEST_ASSERT(kinfer_utf8_seq("\xe2\x82\xac", 2, &valid) == 2 && !valid, "seq cut by len");
        TEST_ASSERT(kinfer_utf8_seq("\xed\xa0\x80", 3, &valid) == 1 && !valid, "seq surrogate");
}

/* parse, expecting success */
static kinfer_json_doc_t *parse_ok(const char *text)
{
        kinfer_json_doc_t *doc = NULL;
        char errstr[256] = "";
        kinfer_err_t err = kinfer_json_parse(text, strlen(text), &doc, errstr, sizeof(errstr));
        TEST_ASSERT(!err && doc, "parse %s: %s", text, errstr);
        return doc;
}

/* parse @p len bytes, expecting a refusal whose message holds @p want */
static void parse_bad(const char *text, size_t len, const char *want)
{
        kinfer_json_doc_t *doc = NULL;
        char errstr[256] = "";
        kinfer_err_t err = kinfer_json_parse(text, len, &doc, errstr, sizeof(errstr));
        TEST_ASSERT(err == KINFER_ERR__BAD_FORMAT && !doc && strstr(errstr, want),
                    "refuse %.60s: err %d, \"%s\" (want \"%s\")", text, err, errstr, want);
        kinfer_json_free(doc);
}
#define BAD(text, want) parse_bad(text, sizeof(text) - 1, want)

static void test_read(void)
{
        kinfer_json_doc_t *doc = parse_ok(
            " {\"name\": \"m\\u00e9\\ud83d\\ude00\\n\\/\", \"n\": -12, \"big\": 9223372036854775807,"
            " \"r\": 1.5e-3, \"t\": true, \"f\": false, \"z\": null,"
            " \"lineage\": {\"method\": \"quantize\", \"parents\": [{\"version\": 3}, 2, \"x\"]},"
            " \"e\": {}, \"a\": []}\r\n\t");
        const kinfer_json_t *root = kinfer_json_root(doc);
        TEST_ASSERT(kinfer_json_type(root) == KINFER_JSON_OBJECT && kinfer_json_size(root) == 10,
                    "root object of 10");
        size_t len;
        const char *s = kinfer_json_str(kinfer_json_get(root, "name"), &len);
        TEST_ASSERT(s && len == 9 && !strcmp(s, "m\xc3\xa9\xf0\x9f\x98\x80\n/"), "escapes decoded: %s", s);
        int64_t i;
        TEST_ASSERT(kinfer_json_int(kinfer_json_get(root, "n"), &i) && i == -12, "int");
        TEST_ASSERT(kinfer_json_int(kinfer_json_get(root, "big"), &i) && i == INT64_MAX, "int64 max");
        TEST_ASSERT(!kinfer_json_int(kinfer_json_get(root, "r"), &i) && i == 0, "a real is no int");
        TEST_ASSERT(kinfer_json_type(kinfer_json_get(root, "r")) == KINFER_JSON_REAL &&
                        kinfer_json_number(kinfer_json_get(root, "r")) == 1.5e-3, "real");
        TEST_ASSERT(kinfer_json_type(kinfer_json_get(root, "t")) == KINFER_JSON_TRUE, "true");
        TEST_ASSERT(kinfer_json_type(kinfer_json_get(root, "f")) == KINFER_JSON_FALSE, "false");
        const kinfer_json_t *z = kinfer_json_get(root, "z");
        TEST_ASSERT(z && kinfer_json_type(z) == KINFER_JSON_NULL, "null is present");
        TEST_ASSERT(!kinfer_json_get(root, "missing") && !kinfer_json_get(root, "nam"), "absent");
        const kinfer_json_t *lin = kinfer_json_get(root, "lineage");
        TEST_ASSERT(!strcmp(kinfer_json_str(kinfer_json_get(lin, "method"), NULL), "quantize"), "path");
        const kinfer_json_t *par = kinfer_json_get(lin, "parents");
        TEST_ASSERT(kinfer_json_size(par) == 3 && kinfer_json_int(kinfer_json_get(kinfer_json_at(par, 0), "version"), &i) &&
                        i == 3, "array of objects");
        TEST_ASSERT(!kinfer_json_at(par, 3) && !kinfer_json_key(par, 0), "past the end, no keys in arrays");
        TEST_ASSERT(!strcmp(kinfer_json_key(root, 7), "lineage") && kinfer_json_at(root, 7) == lin, "member order");
        TEST_ASSERT(kinfer_json_size(kinfer_json_get(root, "e")) == 0 && kinfer_json_size(kinfer_json_get(root, "a")) == 0 &&
                        kinfer_json_type(kinfer_json_get(root, "a")) == KINFER_JSON_ARRAY, "empty containers");
        /* NULL-safe accessors */
        TEST_ASSERT(!kinfer_json_get(NULL, "x") && !kinfer_json_at(NULL, 0) && !kinfer_json_str(NULL, &len) &&
                        len == 0 && kinfer_json_size(NULL) == 0 && !kinfer_json_get(kinfer_json_get(root, "n"), "x"),
                    "NULL-safe");
        kinfer_json_free(doc);
        /* scalars at the top */
        doc = parse_ok("\"just a string\"");
        TEST_ASSERT(kinfer_json_type(kinfer_json_root(doc)) == KINFER_JSON_STRING, "top-level string");
        kinfer_json_free(doc);
        doc = parse_ok("-0");
        TEST_ASSERT(kinfer_json_int(kinfer_json_root(doc), &i) && i == 0, "-0 is an integer");
        kinfer_json_free(doc);
        /* 64 levels are fine */
        char deep[200];
        memset(deep, '[', 64);
        memset(deep + 64, ']', 64);
        deep[128] = '\0';
        kinfer_json_free(parse_ok(deep));
        /* many members: the duplicate check takes the sorted path */
        kinfer_buf_t b = {0};
        kinfer_buf_putc(&b, '{');
        for (int k = 0; k < 5000; k++)
                kinfer_buf_printf(&b, "%s\"k%d\": %d", k ? ", " : "", (k * 7919) % 5000, k);
        kinfer_buf_putc(&b, '}');
        doc = parse_ok(b.data);
        TEST_ASSERT(kinfer_json_size(kinfer_json_root(doc)) == 5000, "5000 members");
        TEST_ASSERT(kinfer_json_int(kinfer_json_get(kinfer_json_root(doc), "k4999"), &i), "lookup");
        kinfer_json_free(doc);
        b.len -= 1;
        kinfer_buf_puts(&b, ", \"k17\": 0}");
        parse_bad(b.data, b.len, "duplicate member name \"k17\"");
        kinfer_buf_free(&b);
}

static void test_refuse(void)
{
        BAD("", "unexpected end of text");
        BAD("   ", "unexpected end of text");
        BAD("{\"a\": 1} x", "trailing characters");
        BAD("{\"a\": 1}}", "trailing characters");
        BAD("[1, 2] [3]", "trailing characters");
        BAD("{\"a\": 1,}", "expected a member name");
        BAD("[1, 2,]", "unexpected character");
        BAD("[1 2]", "expected ',' or ']'");
        BAD("{\"a\" 1}", "expected ':'");
        BAD("{'a': 1}", "expected a member name");
        BAD("{\"a\": 1", "unterminated object");
        BAD("[1", "unterminated array");
        BAD("\"abc", "unterminated string");
        BAD("\"abc\\", "unterminated string");
        BAD("tru", "unexpected character");
        BAD("nul", "unexpected character");
        BAD("True", "unexpected character");
        BAD("\xef\xbb\xbf{}", "unexpected character"); /* a byte-order mark */
        BAD("{\"a\": 1, \"a\": 2}", "duplicate member name \"a\"");
        /* escapes */
        BAD("\"\\x41\"", "bad escape");
        BAD("\"\\'\"", "bad escape");
        BAD("\"\\u12\"", "bad \\u escape");
        BAD("\"\\u12g4\"", "bad \\u escape");
        BAD("\"\\ud800\"", "lone high surrogate");
        BAD("\"\\ud800x\\udc00\"", "lone high surrogate");
        BAD("\"\\ud800\\u0041\"", "lone high surrogate");
        BAD("\"\\ud800\\ud800\"", "lone high surrogate");
        BAD("\"\\udc00\"", "lone low surrogate");
        BAD("\"\\u0000\"", "NUL");
        /* raw bytes in strings */
        BAD("\"a\nb\"", "control character");
        BAD("\"a\tb\"", "control character");
        BAD("\"a\0b\"", "control character");
        BAD("{\"a\": 1}\0", "trailing characters");
        BAD("\"\x80\"", "invalid UTF-8");
        BAD("\"\xc0\xaf\"", "invalid UTF-8");
        BAD("\"\xed\xa0\x80\"", "invalid UTF-8");
        BAD("\"\xf4\x90\x80\x80\"", "invalid UTF-8");
        BAD("\"\xe2\x82\"", "invalid UTF-8");
        BAD("\"\xff\"", "invalid UTF-8");
        BAD("{\"\xc3\": 1}", "invalid UTF-8");
        /* numbers */
        BAD("01", "trailing characters");
        BAD("+1", "unexpected character");
        BAD(".5", "unexpected character");
        BAD("1.", "no digit after '.'");
        BAD("1.e5", "no digit after '.'");
        BAD("1e", "no digit in the exponent");
        BAD("1e+", "no digit in the exponent");
        BAD("-", "bad number");
        BAD("-a", "bad number");
        BAD("0x10", "trailing characters");
        BAD("NaN", "unexpected character");
        BAD("Infinity", "unexpected character");
        BAD("-Infinity", "bad number");
        BAD("9223372036854775808", "integer out of range");
        BAD("-9223372036854775809", "integer out of range");
        BAD("1e309", "number out of range");
        BAD("-1e309", "number out of range");
        BAD("[1.00000000000000000000000000000000000000000000000000000000000000000001]", "longer than 64");
        kinfer_json_doc_t *doc = parse_ok("[-9223372036854775808, 1e-400]");
        int64_t i;
        TEST_ASSERT(kinfer_json_int(kinfer_json_at(kinfer_json_root(doc), 0), &i) && i == INT64_MIN, "int64 min");
        TEST_ASSERT(kinfer_json_number(kinfer_json_at(kinfer_json_root(doc), 1)) == 0, "underflow is 0");
        kinfer_json_free(doc);
        /* the line and column of the problem */
        char errstr[128];
        TEST_ASSERT(kinfer_json_parse("{\n  \"a\": tru\n}", 15, &doc, errstr, sizeof(errstr)) &&
                        strstr(errstr, "line 2, column 8"), "%s", errstr);
}

static void test_bounds(void)
{
        /* a depth bomb: 65 levels refused, and a million without exhausting the stack */
        char deep[200];
        memset(deep, '[', 65);
        memset(deep + 65, ']', 65);
        deep[130] = '\0';
        BAD(deep, "nested deeper than");
        size_t n = KINFER_JSON_MAX_BYTES / 2;
        char *bomb = malloc(2 * n);
        TEST_ASSERT(bomb, "malloc");
        if (!bomb)
                return;
        for (size_t k = 0; k < n; k++)
                bomb[k] = '[', bomb[n + k] = ']';
        parse_bad(bomb, 2 * n, "nested deeper than");
        for (size_t k = 0; k < n; k++)
                memcpy(bomb + 4 * (k / 4), "{\"\":", 4); /* {"": {"": ... */
        parse_bad(bomb, n, "nested deeper than");
        free(bomb);
        /* size: KINFER_JSON_MAX_BYTES and no more */
        size_t max = KINFER_JSON_MAX_BYTES;
        char *big = malloc(max + 1);
        TEST_ASSERT(big, "malloc");
        if (!big)
                return;
        big[0] = '"';
        memset(big + 1, 'a', max - 2);
        big[max - 1] = '"';
        big[max] = '"';
        kinfer_json_doc_t *doc = NULL;
        char errstr[128];
        TEST_ASSERT(!kinfer_json_parse(big, max, &doc, errstr, sizeof(errstr)), "%s", errstr);
        size_t len;
        TEST_ASSERT(kinfer_json_str(kinfer_json_root(doc), &len) && len == max - 2, "a 1 MiB string");
        kinfer_json_free(doc);
        TEST_ASSERT(kinfer_json_parse(big, max + 1, &doc, errstr, sizeof(errstr)) == KINFER_ERR__BAD_FORMAT &&
                        strstr(errstr, "more than"), "%s", errstr);
        /* the widest tree per byte: [0,0,...,0] */
        size_t L = max - 1;
        big[0] = '[';
        for (size_t k = 1; k + 1 < L; k++)
                big[k] = k % 2 ? '0' : ',';
        big[L - 1] = ']';
        TEST_ASSERT(!kinfer_json_parse(big, L, &doc, errstr, sizeof(errstr)), "%s", errstr);
        TEST_ASSERT(kinfer_json_size(kinfer_json_root(doc)) == (L - 1) / 2, "%zu elements",
                    kinfer_json_size(kinfer_json_root(doc)));
        kinfer_json_free(doc);
        free(big);
}

/* parse + write at level 0 must give back @p text exactly */
static void round_trip(const char *text)
{
        kinfer_json_doc_t *doc = parse_ok(text);
        kinfer_buf_t b = {0};
        TEST_ASSERT(!kinfer_json_write(&b, kinfer_json_root(doc), 0), "write");
        TEST_ASSERT(b.data && !strcmp(b.data, text), "round trip:\n%s\n---- gave\n%s", text, b.data);
        kinfer_buf_free(&b);
        kinfer_json_free(doc);
}

static void test_write(void)
{
        /* jansson's JSON_INDENT(2) | JSON_PRESERVE_ORDER layout, as META holds it */
        round_trip("{\n"
                   "  \"name\": \"m\",\n"
                   "  \"hyperparameters\": {\n"
                   "    \"dim\": 0,\n"
                   "    \"lr\": 0.20000000000000001,\n"
                   "    \"hogwild\": false,\n"
                   "    \"idf\": true,\n"
                   "    \"seed\": 18446744073\n"
                   "  },\n"
                   "  \"lineage\": {\n"
                   "    \"method\": \"prune\",\n"
                   "    \"params\": {\n"
                   "      \"rows_kept\": 3000,\n"
                   "      \"dense\": [],\n"
                   "      \"empty\": {},\n"
                   "      \"nothing\": null\n"
                   "    },\n"
                   "    \"parents\": [\n"
                   "      {\n"
                   "        \"sha256\": \"ab\",\n"
                   "        \"version\": -3\n"
                   "      },\n"
                   "      [\n"
                   "        1,\n"
                   "        \"caf\xc3\xa9 \\\"q\\\" \\\\ \\n\"\n"
                   "      ]\n"
                   "    ]\n"
                   "  }\n"
                   "}");
        round_trip("[]");
        round_trip("{}");
        round_trip("\"s\"");
        round_trip("-7");
        /* reals as jansson prints them (%.17g, ".0" when integral, exponent without + and 0s) */
        static const struct { const char *in, *out; } reals[] = {
            {"0.848000", "0.84799999999999998"}, {"1.0", "1.0"},        {"1e5", "100000.0"},
            {"1E+20", "1e20"},                   {"1e-06", "9.9999999999999995e-7"},
            {"-2.5", "-2.5"},                     {"1e-400", "0.0"},     {"123456789012345678.0", "1.2345678901234568e17"},
            {"5e-324", "4.9406564584124654e-324"}, {"-0.0", "-0.0"},
        };
        for (size_t k = 0; k < sizeof(reals) / sizeof(reals[0]); k++) {
                kinfer_json_doc_t *doc = parse_ok(reals[k].in);
                kinfer_buf_t b = {0};
                kinfer_json_write(&b, kinfer_json_root(doc), 0);
                TEST_ASSERT(b.data && !strcmp(b.data, reals[k].out), "%s -> %s, want %s", reals[k].in,
                            b.data ? b.data : "(null)", reals[k].out);
                kinfer_buf_free(&b);
                kinfer_json_free(doc);
        }
        /* a compact text comes out indented, and that parses to the same again */
        kinfer_json_doc_t *doc = parse_ok("{\"a\":[1,{\"b\":[]},\"\\u0001\\u007f\"],\"c\":{\"d\":1.5}}");
        kinfer_buf_t b = {0};
        kinfer_json_write(&b, kinfer_json_root(doc), 0);
        const char *want = "{\n  \"a\": [\n    1,\n    {\n      \"b\": []\n    },\n    \"\\u0001\\u007f\"\n  ],\n"
                           "  \"c\": {\n    \"d\": 1.5\n  }\n}";
        TEST_ASSERT(b.data && !strcmp(b.data, want), "indented:\n%s", b.data);
        kinfer_json_free(doc);
        if (b.data)
                round_trip(b.data);
        kinfer_buf_free(&b);
        /* nested at a level */
        doc = parse_ok("{\"x\": [1]}");
        kinfer_buf_puts(&b, "[");
        kinfer_json_write(&b, kinfer_json_root(doc), 2);
        TEST_ASSERT(b.data && !strcmp(b.data, "[{\n      \"x\": [\n        1\n      ]\n    }"), "level 2: %s", b.data);
        kinfer_buf_free(&b);
        kinfer_json_free(doc);
}

/* Labels are names: kinfer_label_check (issue 16) */
static void test_label_check(void)
{
        static const char *good[] = {"libs", "a\"b\\c", "caf\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac",
                                     "two words", "\xc2\xa0nbsp", "\xf0\x9f\x98\x80"};
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
                TEST_ASSERT(!kinfer_label_check(good[i], strlen(good[i])), "\"%s\" refused: %s", good[i],
                            kinfer_label_check(good[i], strlen(good[i])));
        static const struct { const char *s; size_t len; const char *why; } bad[] = {
            {"", 0, "empty"},
            {"a\nb", 3, "control"},
            {"a\tb", 3, "control"},
            {"\x1b[31mred", 8, "control"},
            {"a\x7f", 2, "control"},
            {"a\xc2\x85", 3, "control"},            /* U+0085 NEL */
            {"a\0b", 3, "control"},
            {"\xe2\x80\xa8", 3, "separator"},        /* U+2028 */
            {"\xff", 1, "UTF-8"},
            {"\xc3", 1, "UTF-8"},
            {"\xed\xa0\x80", 3, "UTF-8"},            /* a surrogate */
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                const char *why = kinfer_label_check(bad[i].s, bad[i].len);
                TEST_ASSERT(why && strstr(why, bad[i].why), "bad label %zu: %s", i, why ? why : "accepted");
        }
        char big[KINFER_LABEL_MAX_BYTES + 1];
        memset(big, 'x', sizeof(big));
        TEST_ASSERT(!kinfer_label_check(big, KINFER_LABEL_MAX_BYTES), "256 bytes refused");
        TEST_ASSERT(kinfer_label_check(big, KINFER_LABEL_MAX_BYTES + 1), "257 bytes accepted");
}

int main(void)
{
        TEST_RUN(test_buf);
        TEST_RUN(test_escape);
        TEST_RUN(test_utf8);
        TEST_RUN(test_read);
        TEST_RUN(test_refuse);
        TEST_RUN(test_bounds);
        TEST_RUN(test_write);
        TEST_RUN(test_label_check);
        return TEST_DONE();
}
