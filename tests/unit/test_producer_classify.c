/* SPDX-License-Identifier: Apache-2.0 */
/* test_producer_classify.c -- kinfer_producer_classify sorts every librdkafka error code into
 * the class docs/streaming.md ("Refused deliveries") promises: the transient ones are sent
 * again, the ones permanent for one message get the refused path (a reduced dead letter, then
 * delivery.refused.policy), and everything else (authentication, fencing, unknown topic, codes
 * not listed, codes librdkafka may add later) is systemic: fatal. */
#include <librdkafka/rdkafka.h>

#include "kinfer/kafka/producer.h"
#include "test.h"

static const rd_kafka_resp_err_t transient[] = {
    RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,
    RD_KAFKA_RESP_ERR__TIMED_OUT,
    RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE,
    RD_KAFKA_RESP_ERR__TRANSPORT,
    RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN,
    RD_KAFKA_RESP_ERR__QUEUE_FULL,
    RD_KAFKA_RESP_ERR__PURGE_QUEUE,
    RD_KAFKA_RESP_ERR__PURGE_INFLIGHT,
    RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
    RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
    RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
    RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
    RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION,
    RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR,
    RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE,
    RD_KAFKA_RESP_ERR_REPLICA_NOT_AVAILABLE,
    RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED,
};

static const rd_kafka_resp_err_t refused[] = {
    RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,     RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE,
    RD_KAFKA_RESP_ERR_INVALID_RECORD,         RD_KAFKA_RESP_ERR_INVALID_MSG,
    RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP,      RD_KAFKA_RESP_ERR_POLICY_VIOLATION,
    RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR__BAD_MSG,
};

/* systemic: a sample the docs name, each of which must stop the worker */
static const rd_kafka_resp_err_t systemic[] = {
    RD_KAFKA_RESP_ERR__AUTHENTICATION,
    RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED,
    RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED,
    RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    RD_KAFKA_RESP_ERR__FENCED,
    RD_KAFKA_RESP_ERR_PRODUCER_FENCED,
    RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH,
    RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
    RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID,
    RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC,
    RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION,
    RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
    RD_KAFKA_RESP_ERR__FATAL,
    RD_KAFKA_RESP_ERR__SSL,
    RD_KAFKA_RESP_ERR__FAIL,
    RD_KAFKA_RESP_ERR_UNKNOWN,
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static int listed(const rd_kafka_resp_err_t *list, size_t n, rd_kafka_resp_err_t e)
{
        for (size_t i = 0; i < n; i++)
                if (list[i] == e)
                        return 1;
        return 0;
}

static void test_listed_classes(void)
{
        TEST_ASSERT(kinfer_producer_classify(RD_KAFKA_RESP_ERR_NO_ERROR) == KINFER_DELIVERY_OK,
                    "no error: delivered");
        for (size_t i = 0; i < N(transient); i++)
                TEST_ASSERT(kinfer_producer_classify(transient[i]) == KINFER_DELIVERY_RETRY,
                            "%s must be transient", rd_kafka_err2name(transient[i]));
        for (size_t i = 0; i < N(refused); i++)
                TEST_ASSERT(kinfer_producer_classify(refused[i]) == KINFER_DELIVERY_REFUSED,
                            "%s must be refused for this message", rd_kafka_err2name(refused[i]));
        for (size_t i = 0; i < N(systemic); i++)
                TEST_ASSERT(kinfer_producer_classify(systemic[i]) == KINFER_DELIVERY_FATAL,
                            "%s must be systemic", rd_kafka_err2name(systemic[i]));
}

/* Every code librdkafka knows, and codes it does not know yet: only the two lists above are
 * anything but fatal. */
static void test_everything_else_is_fatal(void)
{
        const struct rd_kafka_err_desc *descs;
        size_t n, named = 0;
        rd_kafka_get_err_descs(&descs, &n);
        for (size_t i = 0; i < n; i++) {
                if (!descs[i].name)
                        continue;
                named++;
                rd_kafka_resp_err_t e = descs[i].code;
                kinfer_delivery_class_t want =
                    e == RD_KAFKA_RESP_ERR_NO_ERROR   ? KINFER_DELIVERY_OK
                    : listed(transient, N(transient), e) ? KINFER_DELIVERY_RETRY
                    : listed(refused, N(refused), e)     ? KINFER_DELIVERY_REFUSED
                                                         : KINFER_DELIVERY_FATAL;
                TEST_ASSERT(kinfer_producer_classify(e) == want, "%s (%d): class %d, want %d",
                            descs[i].name, (int)e, (int)kinfer_producer_classify(e), (int)want);
        }
        TEST_ASSERT(named > 100, "librdkafka lists its error codes (%zu)", named);
        static const int unknown[] = {-1000, -2, 9999, 100000, -100000};
        for (size_t i = 0; i < N(unknown); i++)
                TEST_ASSERT(kinfer_producer_classify(unknown[i]) == KINFER_DELIVERY_FATAL,
                            "unknown code %d must be systemic", unknown[i]);
}

int main(void)
{
        TEST_RUN(test_listed_classes);
        TEST_RUN(test_everything_else_is_fatal);
        return TEST_DONE();
}
