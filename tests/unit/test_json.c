/* SPDX-License-Identifier: Apache-2.0 */
/* test_json.c -- core text helpers: the growable buffer, UTF-8 validation, the one JSON
 * string escaper (controls, quotes, every class of ill-formed UTF-8 -> one U+FFFD per maximal
 * subpart, valid 2/3/4-byte sequences kept). */
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

int main(void)
{
        TEST_RUN(test_buf);
        TEST_RUN(test_escape);
        TEST_RUN(test_utf8);
        return TEST_DONE();
}
