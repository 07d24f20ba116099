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

/**
 * @brief Enqueue one message (key, value and headers are copied). Waits, serving delivery
 *        reports, while the local queue is full.
 */
kinfer_err_t kinfer_producer_send(kinfer_producer_t *prod, int topic, const void *key,
                                  size_t key_len, const void *value, size_t len,
                                  const kinfer_header_view_t *headers, size_t n_headers,
                                  uint64_t token, char *errstr, size_t errstr_size);

/** Serve delivery reports. @returns how many were served. */
int kinfer_producer_poll(kinfer_producer_t *prod, int timeout_ms);
/** Messages not yet acknowledged (queued or in flight). */
int kinfer_producer_outq_len(kinfer_producer_t *prod);
/** Wait up to @p timeout_ms for every message's delivery report. */
kinfer_err_t kinfer_producer_flush(kinfer_producer_t *prod, int timeout_ms, char *errstr,
                                   size_t errstr_size);
/** @returns 1 (with the reason) once the producer hit a fatal error (idempotence broken). */
int kinfer_producer_fatal(kinfer_producer_t *prod, char *errstr, size_t errstr_size);
void kinfer_producer_destroy(kinfer_producer_t *prod);

#endif
