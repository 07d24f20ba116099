/* SPDX-License-Identifier: Apache-2.0 */
/* test.h -- the whole C test harness: TEST_ASSERT, TEST_SAY, and a closing
 * "N passed, N failed" line. Select sub-tests with SUBTESTS=name1,name2. */
#ifndef KINFER_TEST_H
#define KINFER_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int test_passed, test_failed, test_cur_failed;

#define TEST_SAY(...) (fprintf(stderr, "  # " __VA_ARGS__), fprintf(stderr, "\n"))

/* Checks a condition; on failure prints file:line, the expression and the reason, and marks
 * the current sub-test failed (it keeps running so one run shows every failure). */
#define TEST_ASSERT(expr, ...)                                                                     \
        do {                                                                                       \
                if (!(expr)) {                                                                     \
                        fprintf(stderr, "%s:%d: FAIL: %s: ", __FILE__, __LINE__, #expr);           \
                        fprintf(stderr, __VA_ARGS__);                                              \
                        fprintf(stderr, "\n");                                                     \
                        test_cur_failed++;                                                         \
                }                                                                                  \
        } while (0)

static inline int test_selected(const char *name)
{
        const char *sel = getenv("SUBTESTS");
        if (!sel || !*sel)
                return 1;
        size_t n = strlen(name);
        for (const char *p = sel; (p = strstr(p, name)); p += n)
                if ((p == sel || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
                        return 1;
        return 0;
}

#define TEST_RUN(fn)                                                                               \
        do {                                                                                       \
                if (!test_selected(#fn))                                                           \
                        break;                                                                     \
                test_cur_failed = 0;                                                               \
                fprintf(stderr, "== %s\n", #fn);                                                   \
                fn();                                                                              \
                if (test_cur_failed) {                                                             \
                        test_failed++;                                                             \
                        fprintf(stderr, "== %s: FAILED\n", #fn);                                   \
                } else {                                                                           \
                        test_passed++;                                                             \
                        fprintf(stderr, "== %s: ok\n", #fn);                                       \
                }                                                                                  \
        } while (0)

#define TEST_DONE()                                                                                \
        (printf("%d passed, %d failed\n", test_passed, test_failed), test_failed ? 1 : 0)

static inline double test_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static inline void test_sleep_ms(int ms)
{
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

/* How long a test waits for something the product guarantees will happen (a thread noticing
 * a post, a heartbeat written): long enough for a loaded CI machine under a sanitizer. A
 * guarantee about time itself belongs in a benchmark, not in a test. */
#define TEST_PATIENCE_MS 30000

/* Re-evaluates @p cond every 10 ms until it holds or @p ms of wall-clock time went by, and
 * stores its last value in the int @p ok. @p step runs before each evaluation (a refresh, such
 * as reading stats). */
#define TEST_WAIT_UNTIL(ok, step, cond, ms)                                                        \
        do {                                                                                       \
                double test_deadline_ = test_now_ms() + (ms);                                      \
                for (;;) {                                                                         \
                        step;                                                                      \
                        if (((ok) = !!(cond)) || test_now_ms() > test_deadline_)                   \
                                break;                                                             \
                        test_sleep_ms(10);                                                         \
                }                                                                                  \
        } while (0)

/* Path of a file in the source tree (tests get KINFER_SOURCE_DIR from ctest). */
static inline const char *test_src_path(const char *rel, char *buf, size_t size)
{
        const char *dir = getenv("KINFER_SOURCE_DIR");
        snprintf(buf, size, "%s/%s", dir ? dir : ".", rel);
        return buf;
}

#endif
