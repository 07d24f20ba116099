/* SPDX-License-Identifier: Apache-2.0 */
/* test_offsets.c -- delivery watermarks: out-of-order completions only advance the contiguous
 * prefix; ring growth keeps order; stale tokens after a reset are ignored. */
#include <stdlib.h>

#include "kinfer/worker/offsets.h"
#include "test.h"

static void test_contiguous(void)
{
        kinfer_offsets_t *offs = kinfer_offsets_new(NULL, 0);
        int32_t a = kinfer_offsets_part(offs, "in", 0), b = kinfer_offsets_part(offs, "in", 1);
        TEST_ASSERT(a == 0 && b == 1 && kinfer_offsets_part(offs, "in", 0) == 0, "handles");
        uint64_t t[5];
        for (int i = 0; i < 5; i++)
                t[i] = kinfer_offsets_track(offs, a, 100 + i, i);
        uint64_t tb = kinfer_offsets_track(offs, b, 7, 0);
        TEST_ASSERT(kinfer_offsets_in_flight(offs) == 6, "in flight");
        int32_t it = 0;
        int64_t next;
        int64_t ts;
        TEST_ASSERT(kinfer_offsets_done(offs, t[2], &ts) == 1 && ts == 2, "done 102");
        TEST_ASSERT(kinfer_offsets_next_dirty(offs, &it, &next) == -1, "no prefix yet");
        kinfer_offsets_done(offs, t[0], NULL);
        it = 0;
        TEST_ASSERT(kinfer_offsets_next_dirty(offs, &it, &next) == a && next == 101, "101, got %lld", (long long)next);
        kinfer_offsets_done(offs, t[1], NULL);
        it = 0;
        TEST_ASSERT(kinfer_offsets_next_dirty(offs, &it, &next) == a && next == 103, "103 (102 done earlier)");
        TEST_ASSERT(kinfer_offsets_done(offs, t[1], NULL) == 0, "double completion ignored");
        kinfer_offsets_done(offs, tb, NULL);
        it = 0;
        TEST_ASSERT(kinfer_offsets_next_dirty(offs, &it, &next) == b && next == 8, "part b");
        TEST_ASSERT(kinfer_offsets_in_flight(offs) == 2, "2 left");
        kinfer_offsets_reset(offs, a);
        TEST_ASSERT(kinfer_offsets_in_flight(offs) == 0, "reset drops in-flight");
        TEST_ASSERT(kinfer_offsets_done(offs, t[4], NULL) == 0, "stale token ignored");
        it = 0;
        TEST_ASSERT(kinfer_offsets_next_dirty(offs, &it, &next) == -1, "nothing dirty");
        kinfer_offsets_destroy(offs);
}

static void test_growth_random_order(void)
{
        kinfer_offsets_t *offs = kinfer_offsets_new(NULL, 0);
        int32_t p = kinfer_offsets_part(offs, "t", 3);
        enum { N = 10000 };
        static uint64_t tok[N];
        static int order[N];
        for (int i = 0; i < N; i++) {
                tok[i] = kinfer_offsets_track(offs, p, i * 2, i); /* gaps, like compacted topics */
                order[i] = i;
        }
        srand(7);
        for (int i = N - 1; i > 0; i--) {
                int j = rand() % (i + 1), x = order[i];
                order[i] = order[j];
                order[j] = x;
        }
        int64_t high = -1, next;
        int monotonic = 1, ok = 1;
        for (int i = 0; i < N; i++) {
                ok &= kinfer_offsets_done(offs, tok[order[i]], NULL);
                int32_t it = 0;
                if (kinfer_offsets_next_dirty(offs, &it, &next) == p) {
                        monotonic &= next > high;
                        high = next;
                }
        }
        TEST_ASSERT(ok && monotonic, "every completion accepted, watermark monotonic");
        TEST_ASSERT(high == (N - 1) * 2 + 1, "final watermark %lld", (long long)high);
        TEST_ASSERT(kinfer_offsets_in_flight(offs) == 0, "all done");
        kinfer_offsets_destroy(offs);
}

int main(void)
{
        TEST_RUN(test_contiguous);
        TEST_RUN(test_growth_random_order);
        return TEST_DONE();
}
