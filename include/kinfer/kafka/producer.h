/* SPDX-License-Identifier: Apache-2.0 */
/* producer.h -- the idempotent Kafka producer of results and dead letters, with a delivery
 * callback per message carrying the caller's 64-bit token. src/kafka is the only code that
 * includes rdkafka.h. */
#ifndef KINFER_PRODUCER_H
#define KINFER_PRODUCER_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/conf.h"
#include "kinfer/core/err.h"
#include "kinfer/core/header.h"

typedef struct kinfer_producer_s kinfer_producer_t;

/** Delivery report: @p err is KINFER_OK when the broker acknowledged the message.
 *  @locality called from kinfer_producer_poll()/_flush() in the caller's thread. */
typedef void(kinfer_producer_dr_cb_t)(void *opaque, uint64_t token, kinfer_err_t err,
                                      const char *reason);

/** librdkafka's queue.buffering.max.kbytes unless kafka.[producer.]queue.buffering.max.kbytes
 *  says otherwise: the local queue of results and dead letters is bounded in bytes (64 MiB). */
#define KINFER_PRODUCER_QUEUE_KBYTES "65536"

/** How a delivery error is handled (kinfer_producer_classify). */
typedef enum {
        KINFER_DELIVERY_OK = 0,
        KINFER_DELIVERY_RETRY,   /* transient (timeouts, leader moves, brokers down): the producer
                                    sends the message again after a backoff, by itself */
        KINFER_DELIVERY_REFUSED, /* permanent for this message (too large, invalid record, topic
                                    policy, not authorized on this topic): the refused callback */
        KINFER_DELIVERY_FATAL,   /* systemic (authentication, fencing, unknown topic, anything
                                    else): the delivery callback with an error */
} kinfer_delivery_class_t;

/** Sort librdkafka error code @p rd_err (rd_kafka_resp_err_t) into a class. */
kinfer_delivery_class_t kinfer_producer_classify(int rd_err);

/** A message the broker (or librdkafka) refused for good, as it was sent. */
typedef struct kinfer_producer_msg_s {
        int topic; /* kinfer_producer_topic() handle */
        uint64_t token;
        const void *key; /* NULL = null key */
        size_t key_len;
        const void *value;
        size_t len;
        const kinfer_header_view_t *headers;
        size_t n_headers;
        const char *reason;
} kinfer_producer_msg_t;

/** Called (from kinfer_producer_poll/_flush, outside librdkafka's callbacks: it may send) for
 *  a message refused for good; that message gets no delivery report. The views live for the
 *  call. */
typedef void(kinfer_producer_refused_cb_t)(void *opaque, const kinfer_producer_msg_t *m);

/**
 * @brief Create the producer from @p conf (kafka.*, kafka.producer.*), with
 *        enable.idempotence=true.
 * @param queue_records room in the local queue (>= the records the caller keeps in flight).
 * @returns the producer, or NULL on failure (see @p errstr).
 */
kinfer_producer_t *kinfer_producer_new(const kinfer_conf_t *conf, int64_t queue_records,
                                       kinfer_producer_dr_cb_t *dr_cb, void *opaque, char *errstr,
                                       size_t errstr_size);

/** @returns a handle for @p topic (cached), or -1 (see @p errstr). */
int kinfer_producer_topic(kinfer_producer_t *prod, const char *topic, char *errstr,
                          size_t errstr_size);

/** Refused messages (KINFER_DELIVERY_REFUSED) go to @p cb instead of the delivery callback
 *  (which then gets KINFER_ERR__KAFKA for them). */
void kinfer_producer_set_refused_cb(kinfer_producer_t *prod, kinfer_producer_refused_cb_t *cb);

/**
 * @brief Enqueue one message (key, value and headers are copied). Waits, serving delivery
 *        reports, while the local queue is full.
 * @returns KINFER_ERR__BAD_FORMAT when this message can never be produced as it is (larger
 *          than message.max.bytes): permanent for this message, nothing was sent;
 *          KINFER_ERR__KAFKA otherwise (systemic).
 */
kinfer_err_t kinfer_producer_send(kinfer_producer_t *prod, int topic, const void *key,
                                  size_t key_len, const void *value, size_t len,
                                  const kinfer_header_view_t *headers, size_t n_headers,
                                  uint64_t token, char *errstr, size_t errstr_size);

/** Serve delivery reports. @returns how many were served. */
int kinfer_producer_poll(kinfer_producer_t *prod, int timeout_ms);
/** Messages not yet acknowledged (queued, in flight, or waiting to be sent again). */
int kinfer_producer_outq_len(kinfer_producer_t *prod);
/** Bytes (key + value) of the messages sent and not yet finally reported. */
int64_t kinfer_producer_bytes_in_flight(const kinfer_producer_t *prod);
/** librdkafka's message.max.bytes for this producer: the largest message (value + key +
 *  headers + about 40 bytes of framing) it accepts. */
int64_t kinfer_producer_max_message_bytes(const kinfer_producer_t *prod);
/** Messages sent again after a transient error, and messages refused for good, so far. */
void kinfer_producer_counts(const kinfer_producer_t *prod, int64_t *retries, int64_t *refused);
/** Wait up to @p timeout_ms for every message's delivery report (messages waiting to be sent
 *  again included); @p timeout_ms bounds the whole call. */
kinfer_err_t kinfer_producer_flush(kinfer_producer_t *prod, int timeout_ms, char *errstr,
                                   size_t errstr_size);
/** @returns 1 (with the reason) once the producer hit a fatal error (idempotence broken). */
int kinfer_producer_fatal(kinfer_producer_t *prod, char *errstr, size_t errstr_size);
void kinfer_producer_destroy(kinfer_producer_t *prod);

#endif
