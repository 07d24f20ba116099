/* SPDX-License-Identifier: Apache-2.0 */
/* txn.h -- exactly-once (processing.guarantee=exactly_once): the worker's producer is
 * transactional (transactional.id = <kafka.group.id>.<worker.id>, stable across restarts of the
 * same worker id, so that a restarted worker aborts what its previous incarnation left open at
 * once). A transaction is begun by the first kinfer_producer_send() of a window; results, dead
 * letters and the input offsets of the window are committed together by kinfer_txn_commit()
 * (send_offsets_to_transaction with the consumer's group metadata, so that a zombie whose
 * partitions were reassigned is fenced). A failed delivery does not reach the delivery callback:
 * it marks the transaction failed (kinfer_txn_failed), and the caller aborts it and rewinds the
 * consumer to the committed offsets. src/kafka is the only code that includes rdkafka.h. */
#ifndef KINFER_TXN_H
#define KINFER_TXN_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/err.h"
#include "kinfer/kafka/consumer.h"
#include "kinfer/kafka/producer.h"

/** An input offset to commit with the transaction: the next offset to read. */
typedef struct kinfer_txn_offset_s {
        const char *topic;
        int32_t partition;
        int64_t offset;
} kinfer_txn_offset_t;

/** @returns 1 if @p prod is transactional (processing.guarantee=exactly_once). */
int kinfer_txn_enabled(kinfer_producer_t *prod);

/** init_transactions: fences (and aborts the open transaction of) an earlier producer with the
 *  same transactional.id. Bounded by @p timeout_ms. */
kinfer_err_t kinfer_txn_init(kinfer_producer_t *prod, int timeout_ms, char *errstr,
                             size_t errstr_size);

/** @returns 1 (with the reason) when a delivery of the open transaction failed: abort it. */
int kinfer_txn_failed(kinfer_producer_t *prod, char *errstr, size_t errstr_size);

/** @returns 1 while a transaction is open (something was sent since the last commit/abort). */
int kinfer_txn_open(kinfer_producer_t *prod);

/**
 * @brief Commit the open transaction with @p offsets (may be empty) as the consumer group's
 *        offsets of @p cons. Begins one first when only offsets advanced (records that
 *        produced nothing). Retriable errors are retried within @p timeout_ms.
 * @returns KINFER_OK when committed (or nothing to commit); KINFER_ERR__STATE when the
 *          transaction must be aborted (a failed delivery, a timeout, fencing of the consumer
 *          group generation): the caller calls kinfer_txn_abort and rewinds; KINFER_ERR__KAFKA
 *          when the producer hit a fatal error (fenced by a newer instance, ...): exit.
 */
kinfer_err_t kinfer_txn_commit(kinfer_producer_t *prod, kinfer_consumer_t *cons,
                               const kinfer_txn_offset_t *offsets, size_t n_offsets,
                               int timeout_ms, char *errstr, size_t errstr_size);

/** Abort the open transaction (its messages are purged: their delivery reports are dropped).
 *  @returns KINFER_ERR__KAFKA when the producer is in a fatal state. */
kinfer_err_t kinfer_txn_abort(kinfer_producer_t *prod, int timeout_ms, char *errstr,
                              size_t errstr_size);

/** Seek every assigned partition of @p cons back to its committed offset (the beginning when
 *  none), so that what an aborted transaction held is consumed again. A coordinator that
 *  is moving or loading (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, a timeout) is asked
 *  again until @p timeout_ms has passed. */
kinfer_err_t kinfer_consumer_rewind_committed(kinfer_consumer_t *cons, int timeout_ms,
                                              char *errstr, size_t errstr_size);

#endif
