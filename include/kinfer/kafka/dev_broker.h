/* SPDX-License-Identifier: Apache-2.0 */
/* dev_broker.h -- a Kafka-protocol broker in this process for tests and the demo: librdkafka's
 * mock cluster, listening on loopback (`kinfer dev-broker` hosts it).
 *
 * Separate client processes (kcat, python, kinfer serve) connect to its bootstrap list. The
 * mock cluster's limits (librdkafka 2.0): about 5 MiB / 100k messages kept per partition
 * (older data is dropped silently), no read_committed isolation, and a live consumer needs a
 * low fetch.wait.max.ms. Topics not created with kinfer_dev_broker_create_topic() are
 * auto-created on first use. */
#ifndef KINFER_DEV_BROKER_H
#define KINFER_DEV_BROKER_H

#include <stddef.h>

#include "kinfer/core/err.h"

typedef struct kinfer_dev_broker_s kinfer_dev_broker_t;

/**
 * @brief Start a mock cluster of @p n_brokers brokers on loopback.
 * @param verbose 1: librdkafka logs the brokers' debug output (mock, broker) to stderr;
 *        0: warnings and errors only.
 * @returns the broker, or NULL on failure (see @p errstr).
 * @remark The broker's threads start here and inherit the caller's signal mask: a program that
 *         waits for signals with sigwait() blocks them before this call.
 */
kinfer_dev_broker_t *kinfer_dev_broker_new(int n_brokers, int verbose, char *errstr,
                                           size_t errstr_size);

/**
 * @brief Create topic @p name with @p partitions partitions (replication factor: the number of
 *        brokers, at most 3).
 * @returns KINFER_OK, or KINFER_ERR__KAFKA (see @p errstr).
 */
kinfer_err_t kinfer_dev_broker_create_topic(kinfer_dev_broker_t *broker, const char *name,
                                            int partitions, char *errstr, size_t errstr_size);

/**
 * @brief Also accept clients on 127.0.0.1:@p port (1..65535), forwarded to the first broker;
 *        the bootstrap list becomes "127.0.0.1:port". Clients learn the brokers' own
 *        addresses from the metadata, so only bootstrap connections pass through the port (at
 *        most 256 at a time; more are closed and the client retries).
 * @returns KINFER_OK, KINFER_ERR__IO (the port cannot be bound: errstr names it and why),
 *          or KINFER_ERR__STATE.
 * @remark Call once, after kinfer_dev_broker_new(); threads inherit the caller's signal mask.
 */
kinfer_err_t kinfer_dev_broker_listen(kinfer_dev_broker_t *broker, int port, char *errstr,
                                      size_t errstr_size);

/** @returns the bootstrap list ("127.0.0.1:port,..."). Borrowed: valid until destroy. */
const char *kinfer_dev_broker_bootstraps(const kinfer_dev_broker_t *broker);

/**
 * @brief Make the next @p count requests of type @p api fail with error @p error (fault
 *        injection for tests: a broker refusing a delivery, dropping a connection, ...).
 * @param broker_id 0: every broker of the cluster (one shared stack); 1..N: that broker only
 *        (its stack is served first), e.g. the leader of the output topic alone.
 * @param api the Kafka request type: "produce", "fetch", "offsetcommit", "joingroup",
 *        "heartbeat", "syncgroup", "initproducerid", "metadata", or its ApiKey number.
 * @param error librdkafka's name of the error, as rd_kafka_err2name() spells it
 *        ("MSG_SIZE_TOO_LARGE", "POLICY_VIOLATION", "_TRANSPORT": disconnect), with or without
 *        the RD_KAFKA_RESP_ERR_ prefix, any case.
 *        "NO_ERROR" with @p rtt_ms > 0: the requests succeed, late.
 * @param count 1 .. 100000 requests.
 * @param rtt_ms delay of each response (broker_id 1..N only; 0: none).
 * @returns KINFER_OK, or KINFER_ERR__INVALID_ARG (unknown api, error or broker; see @p errstr).
 */
kinfer_err_t kinfer_dev_broker_push_request_errors(kinfer_dev_broker_t *broker, int broker_id,
                                                   const char *api, const char *error,
                                                   int count, int rtt_ms, char *errstr,
                                                   size_t errstr_size);

/**
 * @brief How many injected errors broker @p broker_id (1..N) has left for @p api.
 * @returns KINFER_OK with *@p left set, or KINFER_ERR__INVALID_ARG.
 */
kinfer_err_t kinfer_dev_broker_request_errors_left(kinfer_dev_broker_t *broker, int broker_id,
                                                   const char *api, long *left, char *errstr,
                                                   size_t errstr_size);

/**
 * @brief Make broker @p broker_id (1..N) the leader of @p topic's partition @p partition
 *        (clients learn it from their next metadata; set it before they connect).
 * @returns KINFER_OK, or KINFER_ERR__KAFKA (see @p errstr).
 */
kinfer_err_t kinfer_dev_broker_set_leader(kinfer_dev_broker_t *broker, const char *topic,
                                          int partition, int broker_id, char *errstr,
                                          size_t errstr_size);

/** Answer every request to broker @p broker_id (1..N) @p rtt_ms late, until set back to 0 (a
 *  broker that holds everything back, as in an outage, without closing connections).
 *  @returns KINFER_OK, or KINFER_ERR__KAFKA (see @p errstr). */
kinfer_err_t kinfer_dev_broker_set_rtt(kinfer_dev_broker_t *broker, int broker_id, int rtt_ms,
                                       char *errstr, size_t errstr_size);

/** Make broker @p broker_id the coordinator of group (@p key_type "group") or transactional id
 *  ("transaction") @p key; set it before clients look the coordinator up.
 *  @returns KINFER_OK, KINFER_ERR__INVALID_ARG or KINFER_ERR__KAFKA (see @p errstr). */
kinfer_err_t kinfer_dev_broker_set_coordinator(kinfer_dev_broker_t *broker, const char *key_type,
                                               const char *key, int broker_id, char *errstr,
                                               size_t errstr_size);

/** Stop the brokers and free everything. NULL is allowed. */
void kinfer_dev_broker_destroy(kinfer_dev_broker_t *broker);

#endif
