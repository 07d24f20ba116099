/* SPDX-License-Identifier: Apache-2.0 */
/* consumer.h -- the Kafka consumer of the worker: group membership, polling into message
 * views, rebalance, pause/resume, offset store and commit. src/kafka is the only code that
 * includes rdkafka.h.
 *
 * The consumer runs with enable.auto.offset.store=false: an offset is stored only through
 * kinfer_consumer_store(), which the worker calls once everything up to it was delivered.
 * Stored offsets are committed by auto-commit, on every revoke and at close.
 */
#ifndef KINFER_CONSUMER_H
#define KINFER_CONSUMER_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/conf.h"
#include "kinfer/core/err.h"
#include "kinfer/core/header.h"

typedef struct kinfer_consumer_s kinfer_consumer_t;

/** A consumed message: views valid until kinfer_consumer_release(). */
typedef struct kinfer_msg_s {
        const char *topic;
        int32_t partition;
        int64_t offset;
        const void *key; /* NULL = null key */
        size_t key_len;
        const void *value; /* NULL = null value */
        size_t len;
        int64_t timestamp_ms; /* -1 = none */
        void *handle;         /* the rd_kafka_message_t */
} kinfer_msg_t;

/** One partition of a rebalance (borrowed for the callback). */
typedef struct kinfer_topic_partition_s {
        const char *topic;
        int32_t partition;
} kinfer_topic_partition_t;

typedef struct kinfer_consumer_cbs_s {
        /** Called from kinfer_consumer_poll() (the worker's thread) before partitions are taken
         *  away: finish and deliver everything consumed so far and store its offsets; the
         *  consumer commits right after (unless @p lost). @p parts are the @p n partitions
         *  revoked (all of the assignment with the eager protocol, some with the cooperative
         *  one); @p n is -1 when the list could not be copied (out of memory): take it as
         *  every partition. */
        void (*on_revoke)(void *opaque, int lost, const kinfer_topic_partition_t *parts, int n);
        /** Called after partitions were assigned (may be NULL). */
        void (*on_assign)(void *opaque, int n_partitions);
        void *opaque;
} kinfer_consumer_cbs_t;

/**
 * @brief Create the consumer from @p conf (kafka.*, kafka.consumer.*, kafka.group.id) and
 *        subscribe to input.topic.
 * @returns the consumer, or NULL on failure (see @p errstr).
 */
kinfer_consumer_t *kinfer_consumer_new(const kinfer_conf_t *conf, const kinfer_consumer_cbs_t *cbs,
                                       char *errstr, size_t errstr_size);

/** Poll one message.
 *  @returns KINFER_OK with @p msg filled; KINFER_ERR__TIMEOUT if none came within
 *           @p timeout_ms (consumer errors that are not fatal are logged and count as none);
 *           KINFER_ERR__KAFKA on a fatal consumer error (see @p errstr). */
kinfer_err_t kinfer_consumer_poll(kinfer_consumer_t *cons, int timeout_ms, kinfer_msg_t *msg,
                                  char *errstr, size_t errstr_size);
/** Destroy a polled message. */
void kinfer_consumer_release(kinfer_consumer_t *cons, kinfer_msg_t *msg);
/** The message's headers as views (valid until release), the first @p max of them.
 * @returns how many headers the message has (more than @p max when some were not written). */
size_t kinfer_consumer_headers(const kinfer_msg_t *msg, kinfer_header_view_t *out, size_t max);

/** Seek @p msg's partition back to @p msg's offset, so that it is fetched again, and release
 *  @p msg. */
void kinfer_consumer_rewind(kinfer_consumer_t *cons, kinfer_msg_t *msg);

/** Store @p next_offset (last processed + 1) for commit. */
kinfer_err_t kinfer_consumer_store(kinfer_consumer_t *cons, const char *topic, int32_t partition,
                                   int64_t next_offset);
/** Commit the stored offsets now and wait at most @p timeout_ms for the broker's answer (an
 *  answer that comes later is dropped; the offsets it would have committed are not lost, only
 *  their records redone by the partitions' next owner). A rebalance's revoke commits the same
 *  way, within what is left of kinfer_consumer_close() or, outside a close, within
 *  shutdown.timeout.ms.
 *  @returns KINFER_OK (also when there was nothing to commit); KINFER_ERR__KAFKA with the
 *           broker's or librdkafka's reason, "Local: Timed out" when no answer came in time. */
kinfer_err_t kinfer_consumer_commit(kinfer_consumer_t *cons, int timeout_ms, char *errstr,
                                    size_t errstr_size);
/** Pause (1) or resume (0) every assigned partition; partitions assigned while paused are
 *  paused too. Idempotent. */
void kinfer_consumer_set_paused(kinfer_consumer_t *cons, int paused);
int kinfer_consumer_assigned(const kinfer_consumer_t *cons);

/** One assigned partition's consumer lag (kinfer_consumer_lag). */
typedef struct kinfer_consumer_lag_s {
        const char *topic; /* valid until the next kinfer_consumer_lag() call */
        int32_t partition;
        int64_t lag; /* high watermark - position, in records; -1 = not known yet */
} kinfer_consumer_lag_t;

/** The lag of the first @p max assigned partitions into @p out, from librdkafka's cached high
 *  watermarks (updated by fetches: no broker request) and the consumer's positions.
 *  @returns the number of partitions assigned (may be more than @p max). Cost: one copy of
 *  the assignment. */
int kinfer_consumer_lag(kinfer_consumer_t *cons, kinfer_consumer_lag_t *out, int max);

/** Leave the group (runs the revoke callback and commits), then close, within @p timeout_ms
 *  (<= 0: give up at once if it does not finish right away). @returns KINFER_ERR__TIMEOUT
 *  when the leave did not finish in time: the consumer is then destroyed without waiting for
 *  it, and the group reassigns its partitions after session.timeout.ms. */
kinfer_err_t kinfer_consumer_close(kinfer_consumer_t *cons, int timeout_ms, char *errstr,
                                   size_t errstr_size);
void kinfer_consumer_destroy(kinfer_consumer_t *cons);

#endif
