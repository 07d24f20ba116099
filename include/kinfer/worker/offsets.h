/* SPDX-License-Identifier: Apache-2.0 */
/* offsets.h -- per-partition delivery watermarks for at-least-once: plain data, no librdkafka.
 *
 * Every consumed record is tracked (kinfer_offsets_track) before anything is produced for it,
 * and gets exactly one completion (kinfer_offsets_done) when the producer reports delivery of
 * its result or dead letter -- in any order. A partition's committable offset is one past the
 * longest completed prefix of its tracked offsets, so an offset is stored only after every
 * record before it was delivered. Tokens identify (partition, sequence) and fit a pointer, so
 * they ride on produce calls as the message opaque; a token from before a partition's reset is
 * ignored.
 */
#ifndef KINFER_OFFSETS_H
#define KINFER_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/err.h"

typedef struct kinfer_offsets_s kinfer_offsets_t;

kinfer_offsets_t *kinfer_offsets_new(char *errstr, size_t errstr_size);
void kinfer_offsets_destroy(kinfer_offsets_t *offs);

/** @returns the handle (>= 0) of (topic, partition), creating it; -1 when out of memory or
 *  past 65535 partitions. */
int32_t kinfer_offsets_part(kinfer_offsets_t *offs, const char *topic, int32_t partition);
const char *kinfer_offsets_topic(const kinfer_offsets_t *offs, int32_t part);
int32_t kinfer_offsets_partition(const kinfer_offsets_t *offs, int32_t part);
/** How many partition handles exist (handles are 0 .. count - 1). */
int32_t kinfer_offsets_count(const kinfer_offsets_t *offs);

/** Track @p offset (increasing within a partition). @p t_us is an opaque timestamp given back
 *  by kinfer_offsets_done. @returns the token, or 0 when out of memory (0 is never a token). */
uint64_t kinfer_offsets_track(kinfer_offsets_t *offs, int32_t part, int64_t offset, int64_t t_us);
/** Complete @p token. @returns 1 if it was in flight (then *t_us is its timestamp), 0 if stale. */
int kinfer_offsets_done(kinfer_offsets_t *offs, uint64_t token, int64_t *t_us);

/** The partition handle and offset of in-flight @p token. @returns 0 if it is stale or done. */
int kinfer_offsets_lookup(const kinfer_offsets_t *offs, uint64_t token, int32_t *part,
                          int64_t *offset);
/** Records tracked and not yet done, in all partitions. */
int64_t kinfer_offsets_in_flight(const kinfer_offsets_t *offs);
/** @returns the next partition (from *iter, start at 0) whose committable offset advanced
 *  since the last call, with that offset (last completed + 1) in *next_offset; -1 at the end. */
int32_t kinfer_offsets_next_dirty(kinfer_offsets_t *offs, int32_t *iter, int64_t *next_offset);
/** Forget what is in flight for @p part (after a revoke). Its later tokens are stale. */
void kinfer_offsets_reset(kinfer_offsets_t *offs, int32_t part);

#endif
