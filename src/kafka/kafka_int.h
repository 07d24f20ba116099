/* SPDX-License-Identifier: Apache-2.0 */
/* kafka_int.h -- what consumer.c and producer.c share: building a librdkafka configuration
 * from kinfer's (kafka.* pass-through) and routing librdkafka's log into kinfer_log. Declared
 * with forward types so that this header does not include rdkafka.h. */
#ifndef KINFER_KAFKA_INT_H
#define KINFER_KAFKA_INT_H

#include <stddef.h>

#include "kinfer/core/conf.h"
#include "kinfer/core/err.h"

struct rd_kafka_conf_s;

/**
 * @brief Create a librdkafka configuration with kinfer's defaults @p defaults (NULL-terminated
 *        name, value pairs, applied first), then kafka.bootstrap.servers, then every kafka.*
 *        and kafka.<scope>.* property, then @p forced pairs (applied last: at-least-once
 *        depends on them). Routes the client's log into kinfer_log.
 * @returns the configuration, or NULL on failure naming the property (see @p errstr).
 */
struct rd_kafka_conf_s *kinfer_kafka_conf_new(const kinfer_conf_t *conf, const char *scope,
                                              const char *const *defaults,
                                              const char *const *forced, char *errstr,
                                              size_t errstr_size);

/* Exactly-once (processing.guarantee=exactly_once): the producer's transaction state, kept by
 * producer.c (begin on the first send of a window, failed deliveries) and txn.c (commit,
 * abort). */
struct kinfer_txn_state {
        int enabled; /* a transactional producer */
        int open;    /* a transaction was begun and not yet committed or aborted */
        int failed;  /* a delivery of this transaction failed: it must be aborted */
        char reason[300];
};

struct rd_kafka_s;
struct kinfer_producer_s;
struct kinfer_consumer_s;
struct rd_kafka_s *kinfer_producer_rk_(struct kinfer_producer_s *prod);
struct kinfer_txn_state *kinfer_producer_txn_(struct kinfer_producer_s *prod);
struct rd_kafka_s *kinfer_consumer_rk_(struct kinfer_consumer_s *cons);

/** The conf says processing.guarantee=exactly_once. */
int kinfer_kafka_exactly_once(const kinfer_conf_t *conf);

#endif
