/* SPDX-License-Identifier: Apache-2.0 */
/* txn.c -- exactly-once: init, commit (with the input offsets and the consumer group's
 * metadata) and abort of the worker producer's transactions, and rewinding the consumer to the
 * committed offsets after an abort (see txn.h; librdkafka's examples/transactions.c shows the
 * same pattern). src/kafka is the only folder that includes rdkafka.h. */
#include "kinfer/kafka/txn.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kafka/kafka_int.h"
#include "kinfer/core/log.h"

static int64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int left_ms(int64_t deadline)
{
        int64_t l = deadline - mono_ms();
        return l > 0 ? (int)l : 0;
}

/* Sort @p error (consumed) into OK / retry (1) / abort (KINFER_ERR__STATE) / fatal. */
static kinfer_err_t classify(rd_kafka_error_t *error, const char *what, int *retry, char *errstr,
                             size_t errstr_size)
{
        *retry = 0;
        if (!error)
                return KINFER_OK;
        kinfer_err_t ret;
        if (rd_kafka_error_is_fatal(error)) {
                ret = kinfer_seterr(errstr, errstr_size, KINFER_ERR__KAFKA, "%s: fatal: %s", what,
                                    rd_kafka_error_string(error));
        } else if (rd_kafka_error_txn_requires_abort(error)) {
                ret = kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE, "%s: abortable: %s",
                                    what, rd_kafka_error_string(error));
        } else if (rd_kafka_error_is_retriable(error)) {
                *retry = 1;
                ret = kinfer_seterr(errstr, errstr_size, KINFER_ERR__TIMEOUT, "%s: %s", what,
                                    rd_kafka_error_string(error));
        } else {
                /* neither retriable nor abortable nor fatal (a state error): abort the window */
                ret = kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE, "%s: %s", what,
                                    rd_kafka_error_string(error));
        }
        rd_kafka_error_destroy(error);
        return ret;
}

int kinfer_txn_enabled(kinfer_producer_t *prod)
{
        return kinfer_producer_txn_(prod)->enabled;
}

int kinfer_txn_open(kinfer_producer_t *prod)
{
        return kinfer_producer_txn_(prod)->open;
}

int kinfer_txn_failed(kinfer_producer_t *prod, char *errstr, size_t errstr_size)
{
        struct kinfer_txn_state *t = kinfer_producer_txn_(prod);
        if (t->failed)
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE, "%s", t->reason);
        return t->failed;
}

kinfer_err_t kinfer_txn_init(kinfer_producer_t *prod, int timeout_ms, char *errstr,
                             size_t errstr_size)
{
        rd_kafka_t *rk = kinfer_producer_rk_(prod);
        int64_t deadline = mono_ms() + timeout_ms;
        for (;;) {
                int retry;
                kinfer_err_t err = classify(rd_kafka_init_transactions(rk, left_ms(deadline)),
                                            "init transactions", &retry, errstr, errstr_size);
                if (!err)
                        return KINFER_OK;
                if (!retry || left_ms(deadline) == 0)
                        return err == KINFER_ERR__STATE ? KINFER_ERR__KAFKA : err;
                kinfer_log(KINFER_LOG_WARN, "TXN", "%s: retrying", errstr);
        }
}

kinfer_err_t kinfer_txn_commit(kinfer_producer_t *prod, kinfer_consumer_t *cons,
                               const kinfer_txn_offset_t *offsets, size_t n_offsets,
                               int timeout_ms, char *errstr, size_t errstr_size)
{
        struct kinfer_txn_state *t = kinfer_producer_txn_(prod);
        rd_kafka_t *rk = kinfer_producer_rk_(prod);
        if (t->failed)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE, "%s", t->reason);
        if (!t->open && n_offsets == 0)
                return KINFER_OK;
        int64_t deadline = mono_ms() + timeout_ms;
        int retry;
        kinfer_err_t err;
        if (!t->open) {
                err = classify(rd_kafka_begin_transaction(rk), "begin transaction", &retry, errstr,
                               errstr_size);
                if (err)
                        return err == KINFER_ERR__TIMEOUT ? KINFER_ERR__STATE : err;
                t->open = 1;
        }
        if (n_offsets) {
                rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n_offsets);
                for (size_t i = 0; i < n_offsets; i++)
                        rd_kafka_topic_partition_list_add(l, offsets[i].topic, offsets[i].partition)
                            ->offset = offsets[i].offset;
                rd_kafka_consumer_group_metadata_t *cgmd =
                    rd_kafka_consumer_group_metadata(kinfer_consumer_rk_(cons));
                do {
                        err = classify(rd_kafka_send_offsets_to_transaction(rk, l, cgmd, left_ms(deadline)),
                                       "send offsets to transaction", &retry, errstr, errstr_size);
                } while (err && retry && left_ms(deadline) > 0);
                rd_kafka_consumer_group_metadata_destroy(cgmd);
                rd_kafka_topic_partition_list_destroy(l);
                if (err)
                        return err == KINFER_ERR__TIMEOUT ? KINFER_ERR__STATE : err;
        }
        do {
                err = classify(rd_kafka_commit_transaction(rk, left_ms(deadline)), "commit transaction",
                               &retry, errstr, errstr_size);
        } while (err && retry && left_ms(deadline) > 0);
        if (err)
                return err == KINFER_ERR__TIMEOUT ? KINFER_ERR__STATE : err;
        t->open = 0;
        return KINFER_OK;
}

kinfer_err_t kinfer_txn_abort(kinfer_producer_t *prod, int timeout_ms, char *errstr,
                              size_t errstr_size)
{
        struct kinfer_txn_state *t = kinfer_producer_txn_(prod);
        rd_kafka_t *rk = kinfer_producer_rk_(prod);
        int64_t deadline = mono_ms() + timeout_ms;
        if (t->open) {
                int retry;
                kinfer_err_t err;
                do {
                        err = classify(rd_kafka_abort_transaction(rk, left_ms(deadline)),
                                       "abort transaction", &retry, errstr, errstr_size);
                } while (err && retry && left_ms(deadline) > 0);
                if (err)
                        return KINFER_ERR__KAFKA; /* an abort that cannot complete: start over */
        }
        /* the reports of the purged messages belong to the aborted transaction */
        rd_kafka_poll(rk, 0);
        t->open = 0;
        t->failed = 0;
        t->reason[0] = '\0';
        return KINFER_OK;
}

/* Answers to an OffsetFetch that say "not now" rather than "no". */
static int committed_retriable(rd_kafka_resp_err_t err)
{
        switch (err) {
        case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
        case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
        case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
        case RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT:
        case RD_KAFKA_RESP_ERR__TIMED_OUT:
        case RD_KAFKA_RESP_ERR__TRANSPORT:
        case RD_KAFKA_RESP_ERR__WAIT_COORD:
        case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
                return 1;
        default:
                return 0;
        }
}

kinfer_err_t kinfer_consumer_rewind_committed(kinfer_consumer_t *cons, int timeout_ms,
                                              char *errstr, size_t errstr_size)
{
        rd_kafka_t *rk = kinfer_consumer_rk_(cons);
        rd_kafka_topic_partition_list_t *l = NULL;
        rd_kafka_resp_err_t rerr = rd_kafka_assignment(rk, &l);
        if (rerr || !l)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__KAFKA, "assignment: %s",
                                     rd_kafka_err2str(rerr));
        kinfer_err_t ret = KINFER_OK;
        int64_t deadline = mono_ms() + timeout_ms;
        if (l->cnt) {
                /* The group coordinator may be moving or loading (a broker restarted, the whole
                 * cluster back): those answers are retried until the deadline, the way
                 * librdkafka retries a transactional call; anything else fails at once. */
                int backoff_ms = 100;
                while ((rerr = rd_kafka_committed(rk, l, left_ms(deadline) > 0 ? left_ms(deadline)
                                                                              : 1)) &&
                       committed_retriable(rerr) && left_ms(deadline) > 0) {
                        kinfer_log(KINFER_LOG_WARN, "TXN", "rewind: committed offsets: %s (retried)",
                                   rd_kafka_err2str(rerr));
                        struct timespec ts = {.tv_sec = backoff_ms / 1000,
                                              .tv_nsec = (long)(backoff_ms % 1000) * 1000000L};
                        nanosleep(&ts, NULL);
                        if (backoff_ms < 1000)
                                backoff_ms *= 2;
                }
                if (rerr) {
                        ret = kinfer_seterr(errstr, errstr_size, KINFER_ERR__KAFKA,
                                            "committed offsets: %s", rd_kafka_err2str(rerr));
                        goto done;
                }
                for (int i = 0; i < l->cnt; i++)
                        if (l->elems[i].offset < 0)
                                l->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
                rd_kafka_error_t *error =
                    rd_kafka_seek_partitions(rk, l, left_ms(deadline) > 0 ? left_ms(deadline) : 1);
                if (error) {
                        ret = kinfer_seterr(errstr, errstr_size, KINFER_ERR__KAFKA, "seek: %s",
                                            rd_kafka_error_string(error));
                        rd_kafka_error_destroy(error);
                        goto done;
                }
                for (int i = 0; i < l->cnt; i++)
                        if (l->elems[i].err)
                                kinfer_log(KINFER_LOG_WARN, "TXN", "rewind topic=%s partition=%d: %s",
                                           l->elems[i].topic, (int)l->elems[i].partition,
                                           rd_kafka_err2str(l->elems[i].err));
        }
done:
        rd_kafka_topic_partition_list_destroy(l);
        return ret;
}
