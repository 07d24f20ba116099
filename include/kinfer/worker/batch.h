/* SPDX-License-Identifier: Apache-2.0 */
/* batch.h -- the micro-batcher: plain data, no librdkafka types.
 *
 * Entries are views (text, id) into consumer-owned messages or into the batch's arena, plus
 * the caller's partition handle and offset. A batch is due when it holds max_records entries,
 * or its texts reach max_bytes, or max_wait_ms passed since its first entry arrived -- whichever
 * comes first. Entries keep arrival order, so the order within each partition is the input
 * order. Nothing is allocated after kinfer_batch_init().
 */
#ifndef KINFER_BATCH_H
#define KINFER_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/arena.h"
#include "kinfer/core/err.h"

typedef struct kinfer_batch_entry_s {
        const char *text;
        size_t text_len;
        const char *id; /* NULL: no id field (the worker falls back to the key) */
        size_t id_len;
        int32_t part;        /* caller's partition handle */
        int64_t offset;      /* input offset */
        int64_t consumed_us; /* arrival time (CLOCK_REALTIME, us) */
        void *msg;           /* caller's message handle, released after the batch */
} kinfer_batch_entry_t;

typedef enum {
        KINFER_BATCH_NOT_DUE = 0,
        KINFER_BATCH_DUE_RECORDS,
        KINFER_BATCH_DUE_BYTES,
        KINFER_BATCH_DUE_WAIT,
} kinfer_batch_due_t;

typedef struct kinfer_batch_s {
        kinfer_batch_entry_t *entries; /* max_records */
        int32_t n, max_records;
        size_t bytes, max_bytes;
        int64_t max_wait_us;
        int64_t first_mono_us; /* monotonic arrival of entries[0] */
        kinfer_arena_t arena;  /* decoded strings that are not views into a message */
} kinfer_batch_t;

/** Allocate room for @p max_records entries and an arena of @p arena_bytes. */
kinfer_err_t kinfer_batch_init(kinfer_batch_t *batch, int32_t max_records, size_t max_bytes,
                               int64_t max_wait_ms, size_t arena_bytes, char *errstr,
                               size_t errstr_size);
void kinfer_batch_term(kinfer_batch_t *batch);

/** Append @p entry (copied). @p now_mono_us: monotonic clock. The batch must not be full
 *  (check kinfer_batch_due() after every add). @returns KINFER_ERR__STATE when it is. */
kinfer_err_t kinfer_batch_add(kinfer_batch_t *batch, const kinfer_batch_entry_t *entry,
                              int64_t now_mono_us);
/** @returns why the batch is due now, or KINFER_BATCH_NOT_DUE (always for an empty batch). */
kinfer_batch_due_t kinfer_batch_due(const kinfer_batch_t *batch, int64_t now_mono_us);
/** @returns ms until the wait limit makes the batch due (0 if due), or -1 if it is empty. */
int kinfer_batch_timeout_ms(const kinfer_batch_t *batch, int64_t now_mono_us);
/** Forget all entries and reset the arena (the caller released the messages). */
void kinfer_batch_reset(kinfer_batch_t *batch);
const char *kinfer_batch_due_str(kinfer_batch_due_t due);

#endif
