/* SPDX-License-Identifier: Apache-2.0 */
/* conf_check.c -- kinfer_kafka_conf_check: the clients' configurations built and discarded. */
#include "kinfer/kafka/conf_check.h"

#include <librdkafka/rdkafka.h>

#include "kafka/kafka_int.h"

kinfer_err_t kinfer_kafka_conf_check(const kinfer_conf_t *conf, char *errstr, size_t errstr_size)
{
        static const char *const scopes[] = {"consumer", "producer"};
        for (size_t i = 0; i < sizeof(scopes) / sizeof(scopes[0]); i++) {
                rd_kafka_conf_t *rk = kinfer_kafka_conf_new(conf, scopes[i], NULL, NULL, errstr,
                                                            errstr_size);
                if (!rk)
                        return KINFER_ERR__INVALID_ARG;
                rd_kafka_conf_destroy(rk);
        }
        return KINFER_OK;
}
