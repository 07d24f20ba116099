/* SPDX-License-Identifier: Apache-2.0 */
/* test_batch.c -- the batcher: due at the record, byte or wait limit, whichever first; order
 * kept; timeout arithmetic; no growth past the record limit. */
#include "kinfer/worker/batch.h"
#include "test.h"

static kinfer_batch_entry_t ent(int32_t part, int64_t off, size_t len)
{
        return (kinfer_batch_entry_t){.text = "xxxxxxxxxxxxxxxxxxxx", .text_len = len, .part = part,
                                      .offset = off};
}

static void test_records_limit(void)
{
        kinfer_batch_t b;
        char errstr[128];
        TEST_ASSERT(!kinfer_batch_init(&b, 4, 1 << 20, 1000, 64, errstr, sizeof(errstr)), "%s", errstr);
        for (int i = 0; i < 3; i++) {
                kinfer_batch_entry_t e = ent(i % 2, i, 5);
                TEST_ASSERT(!kinfer_batch_add(&b, &e, 100), "add");
                TEST_ASSERT(kinfer_batch_due(&b, 100) == KINFER_BATCH_NOT_DUE, "not due at %d", i);
        }
        kinfer_batch_entry_t e = ent(1, 3, 5);
        TEST_ASSERT(!kinfer_batch_add(&b, &e, 100), "add");
        TEST_ASSERT(kinfer_batch_due(&b, 100) == KINFER_BATCH_DUE_RECORDS, "due on records");
        TEST_ASSERT(kinfer_batch_add(&b, &e, 100) == KINFER_ERR__STATE, "full batch refuses");
        for (int i = 0; i < 4; i++)
                TEST_ASSERT(b.entries[i].offset == i && b.entries[i].part == i % 2, "order at %d", i);
        kinfer_batch_reset(&b);
        TEST_ASSERT(b.n == 0 && b.bytes == 0 && kinfer_batch_due(&b, 1 << 30) == KINFER_BATCH_NOT_DUE,
                    "reset: empty batch never due");
        kinfer_batch_term(&b);
}

static void test_bytes_limit(void)
{
        kinfer_batch_t b;
        TEST_ASSERT(!kinfer_batch_init(&b, 100, 30, 1000, 64, NULL, 0), "init");
        kinfer_batch_entry_t e = ent(0, 0, 20);
        kinfer_batch_add(&b, &e, 0);
        TEST_ASSERT(kinfer_batch_due(&b, 0) == KINFER_BATCH_NOT_DUE, "20 < 30");
        e.offset = 1;
        kinfer_batch_add(&b, &e, 0);
        TEST_ASSERT(kinfer_batch_due(&b, 0) == KINFER_BATCH_DUE_BYTES, "40 >= 30");
        kinfer_batch_term(&b);
}

static void test_wait_limit(void)
{
        kinfer_batch_t b;
        TEST_ASSERT(!kinfer_batch_init(&b, 100, 1 << 20, 5, 64, NULL, 0), "init");
        TEST_ASSERT(kinfer_batch_timeout_ms(&b, 0) == -1, "empty: no timeout");
        kinfer_batch_entry_t e = ent(0, 0, 1);
        kinfer_batch_add(&b, &e, 1000000);
        TEST_ASSERT(kinfer_batch_timeout_ms(&b, 1000000) == 5, "5 ms left, got %d", kinfer_batch_timeout_ms(&b, 1000000));
        kinfer_batch_add(&b, &e, 1003000); /* a later record does not restart the clock */
        TEST_ASSERT(kinfer_batch_timeout_ms(&b, 1003500) == 2, "1.5 ms rounds up to 2");
        TEST_ASSERT(kinfer_batch_due(&b, 1004999) == KINFER_BATCH_NOT_DUE, "not yet");
        TEST_ASSERT(kinfer_batch_due(&b, 1005000) == KINFER_BATCH_DUE_WAIT, "due at 5 ms");
        TEST_ASSERT(kinfer_batch_timeout_ms(&b, 1006000) == 0, "overdue: 0");
        kinfer_batch_term(&b);
        TEST_ASSERT(!kinfer_batch_init(&b, 100, 1 << 20, 0, 64, NULL, 0), "init wait 0");
        kinfer_batch_add(&b, &e, 7);
        TEST_ASSERT(kinfer_batch_due(&b, 7) == KINFER_BATCH_DUE_WAIT, "wait 0: due at once");
        kinfer_batch_term(&b);
        TEST_ASSERT(kinfer_batch_init(&b, 0, 1, 1, 1, NULL, 0) == KINFER_ERR__INVALID_ARG, "0 records refused");
}

int main(void)
{
        TEST_RUN(test_records_limit);
        TEST_RUN(test_bytes_limit);
        TEST_RUN(test_wait_limit);
        return TEST_DONE();
}
