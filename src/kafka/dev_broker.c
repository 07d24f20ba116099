/* SPDX-License-Identifier: Apache-2.0 */
/* dev_broker.c -- librdkafka's mock cluster behind kinfer/kafka/dev_broker.h: a client handle
 * that hosts N brokers on loopback. */
#include "kinfer/kafka/dev_broker.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdlib.h>

struct kinfer_dev_broker_s {
        rd_kafka_t *rk; /* the handle the mock cluster lives in */
        rd_kafka_mock_cluster_t *mcluster;
        int n_brokers;
};

kinfer_dev_broker_t *kinfer_dev_broker_new(int n_brokers, int verbose, char *errstr,
                                           size_t errstr_size)
{
        char e[512];
        kinfer_dev_broker_t *broker = calloc(1, sizeof(*broker));
        if (!broker) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        broker->n_brokers = n_brokers;
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        if ((verbose && rd_kafka_conf_set(conf, "debug", "mock,broker", e, sizeof(e)) !=
                            RD_KAFKA_CONF_OK) ||
            rd_kafka_conf_set(conf, "log_level", verbose ? "7" : "4", e, sizeof(e)) !=
                RD_KAFKA_CONF_OK) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__KAFKA, "%s", e);
                rd_kafka_conf_destroy(conf);
                free(broker);
                return NULL;
        }
        /* on success rd_kafka_new() owns conf; on failure it is still ours */
        broker->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
        if (!broker->rk) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__KAFKA,
                              "cannot create the client handle: %s", e);
                rd_kafka_conf_destroy(conf);
                free(broker);
                return NULL;
        }
        broker->mcluster = rd_kafka_mock_cluster_new(broker->rk, n_brokers);
        if (!broker->mcluster) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__KAFKA,
                              "cannot create the mock cluster");
                kinfer_dev_broker_destroy(broker);
                return NULL;
        }
        return broker;
}

kinfer_err_t kinfer_dev_broker_create_topic(kinfer_dev_broker_t *broker, const char *name,
                                            int partitions, char *errstr, size_t errstr_size)
{
        int replication = broker->n_brokers < 3 ? broker->n_brokers : 3;
        rd_kafka_resp_err_t err =
            rd_kafka_mock_topic_create(broker->mcluster, name, partitions, replication);
        if (err)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__KAFKA,
                                     "cannot create topic %s: %s", name, rd_kafka_err2str(err));
        return KINFER_OK;
}

const char *kinfer_dev_broker_bootstraps(const kinfer_dev_broker_t *broker)
{
        return rd_kafka_mock_cluster_bootstraps(broker->mcluster);
}

void kinfer_dev_broker_destroy(kinfer_dev_broker_t *broker)
{
        if (!broker)
                return;
        if (broker->mcluster)
                rd_kafka_mock_cluster_destroy(broker->mcluster);
        if (broker->rk)
                rd_kafka_destroy(broker->rk);
        free(broker);
}
