/* SPDX-License-Identifier: Apache-2.0 */
/* batch.c -- accumulate decoded requests until a record, byte or time limit; owns no Kafka
 * types and allocates nothing after init. */
#include "kinfer/worker/batch.h"

#include <stdlib.h>
#include <string.h>

kinfer_err_t kinfer_batch_init(kinfer_batch_t *batch, int32_t max_records, size_t max_bytes,
                               int64_t max_wait_ms, size_t arena_bytes, char *errstr,
                               size_t errstr_size)
{
        memset(batch, 0, sizeof(*batch));
        if (max_records < 1 || max_bytes < 1 || max_wait_ms < 0)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "batch limits must be positive");
        batch->entries = calloc((size_t)max_records, sizeof(*batch->entries));
        batch->arena.base = malloc(arena_bytes ? arena_bytes : 1);
        if (!batch->entries || !batch->arena.base) {
                kinfer_batch_term(batch);
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM,
                                     "cannot allocate a batch of %d records", (int)max_records);
        }
        batch->arena.cap = arena_bytes;
        batch->max_records = max_records;
        batch->max_bytes = max_bytes;
        batch->max_wait_us = max_wait_ms * 1000;
        return KINFER_OK;
}

void kinfer_batch_term(kinfer_batch_t *batch)
{
        free(batch->entries);
        free(batch->arena.base);
        memset(batch, 0, sizeof(*batch));
}

kinfer_err_t kinfer_batch_add(kinfer_batch_t *batch, const kinfer_batch_entry_t *entry,
                              int64_t now_mono_us)
{
        if (batch->n >= batch->max_records)
                return KINFER_ERR__STATE;
        if (batch->n == 0)
                batch->first_mono_us = now_mono_us;
        batch->entries[batch->n++] = *entry;
        batch->bytes += entry->text_len;
        return KINFER_OK;
}

kinfer_batch_due_t kinfer_batch_due(const kinfer_batch_t *batch, int64_t now_mono_us)
{
        if (batch->n == 0)
                return KINFER_BATCH_NOT_DUE;
        if (batch->n >= batch->max_records)
                return KINFER_BATCH_DUE_RECORDS;
        if (batch->bytes >= batch->max_bytes)
                return KINFER_BATCH_DUE_BYTES;
        if (now_mono_us - batch->first_mono_us >= batch->max_wait_us)
                return KINFER_BATCH_DUE_WAIT;
        return KINFER_BATCH_NOT_DUE;
}

int kinfer_batch_timeout_ms(const kinfer_batch_t *batch, int64_t now_mono_us)
{
        if (batch->n == 0)
                return -1;
        int64_t left = batch->first_mono_us + batch->max_wait_us - now_mono_us;
        if (left <= 0)
                return 0;
        return (int)((left + 999) / 1000);
}

void kinfer_batch_reset(kinfer_batch_t *batch)
{
        batch->n = 0;
        batch->bytes = 0;
        batch->arena.used = 0;
}

const char *kinfer_batch_due_str(kinfer_batch_due_t due)
{
        switch (due) {
        case KINFER_BATCH_NOT_DUE: return "not_due";
        case KINFER_BATCH_DUE_RECORDS: return "records";
        case KINFER_BATCH_DUE_BYTES: return "bytes";
        case KINFER_BATCH_DUE_WAIT: return "wait";
        }
        return "?";
}
