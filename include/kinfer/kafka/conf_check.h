/* SPDX-License-Identifier: Apache-2.0 */
/* conf_check.h -- the kafka.* properties of a configuration checked by librdkafka itself,
 * before anything is loaded or connected: `kinfer serve` exits 2 on a misspelt or invalid
 * property instead of failing later with the model already loaded. */
#ifndef KINFER_KAFKA_CONF_CHECK_H
#define KINFER_KAFKA_CONF_CHECK_H

#include <stddef.h>

#include "kinfer/core/conf.h"
#include "kinfer/core/err.h"

/**
 * @brief Build both clients' librdkafka configurations from @p conf (as the consumer and the
 *        producer will) and throw them away.
 * @returns KINFER_OK, or KINFER_ERR__INVALID_ARG with @p errstr naming the property and
 *          librdkafka's reason ("kafka.bootstrap.server: No such configuration property").
 * @locality any thread; touches no network.
 */
kinfer_err_t kinfer_kafka_conf_check(const kinfer_conf_t *conf, char *errstr, size_t errstr_size);

#endif
