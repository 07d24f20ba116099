/* SPDX-License-Identifier: Apache-2.0 */
/* test_log.c -- kinfer_log's logfmt lines: values (key=%s) with spaces, quotes, '=' or control
 * characters are quoted and escaped, quoted values (key="%s") escaped, free text kept on one
 * line, and every other conversion printed as printf prints it. */
#include <inttypes.h>
#include <stdint.h>

#include "kinfer/core/log.h"
#include "test.h"

static char got[4096];

static void sink(int level, const char *fac, const char *line, void *opaque)
{
        (void)level, (void)fac, (void)opaque;
        snprintf(got, sizeof(got), "%s", line);
}

#define LOG_IS(want, ...)                                                                          \
        do {                                                                                       \
                got[0] = '\0';                                                                     \
                kinfer_log(KINFER_LOG_INFO, "TEST", __VA_ARGS__);                                  \
                TEST_ASSERT(!strcmp(got, want), "got  [%s]\n  want [%s]", got, want);              \
        } while (0)

static void test_values(void)
{
        LOG_IS("topic=in n=3", "topic=%s n=%d", "in", 3);
        LOG_IS("reason=\"no such file\"", "reason=%s", "no such file");
        LOG_IS("reason=\"say \\\"hi\\\"\"", "reason=%s", "say \"hi\"");
        LOG_IS("path=\"a\\\\b\"", "path=%s", "a\\b");
        LOG_IS("kv=\"a=b\"", "kv=%s", "a=b");
        LOG_IS("empty=\"\"", "empty=%s", "");
        LOG_IS("err=\"two\\nlines\\ttab\\u0001\"", "err=%s", "two\nlines\ttab\001");
        LOG_IS("q=\"she said \\\"x\\\"\"", "q=\"%s\"", "she said \"x\"");
        LOG_IS("utf8=héllo", "utf8=%s", "héllo");
        LOG_IS("cut=ab", "cut=%.*s", 2, "abc");
}

static void test_free_text(void)
{
        LOG_IS("assigned n=2 partitions=\"in[0] in[1]\"", "%s n=%d partitions=%s", "assigned", 2,
               "in[0] in[1]");
        LOG_IS("line one\\nline two", "%s", "line one\nline two");
        LOG_IS("100% done", "100%% done");
}

static void test_numbers(void)
{
        LOG_IS("a=-5 b=18446744073709551615 c=7 d=1.50 e=2.5e+10 f=ff g=   42 h=x",
               "a=%d b=%llu c=%zu d=%.2f e=%g f=%x g=%5" PRId64 " h=%c", -5,
               18446744073709551615ULL, (size_t)7, 1.5, 2.5e10, 255, (int64_t)42, 'x');
        LOG_IS("w=[  ab]", "w=[%*s]", 4, "ab");
}

static void test_long_line(void)
{
        static char big[5000];
        memset(big, 'x', sizeof(big) - 1);
        got[0] = '\0';
        kinfer_log(KINFER_LOG_INFO, "TEST", "v=%s tail=%d", big, 1);
        TEST_ASSERT(strlen(got) == 2047, "a long line is cut at the buffer: %zu", strlen(got));
}

int main(void)
{
        kinfer_log_set_sink(sink, NULL);
        TEST_RUN(test_values);
        TEST_RUN(test_free_text);
        TEST_RUN(test_numbers);
        TEST_RUN(test_long_line);
        return TEST_DONE();
}
