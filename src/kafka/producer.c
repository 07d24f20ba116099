/* SPDX-License-Identifier: Apache-2.0 */
/* producer.c -- the idempotent producer of results and dead letters (delivery reports carry
 * the caller's token), and kinfer_kafka_conf_new() shared with consumer.c. src/kafka is the
 * only folder that includes rdkafka.h. */
#include "kinfer/kafka/producer.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/kafka_int.h"
#include "kinfer/core/log.h"

/* ---- configuration shared with consumer.c ------------------------------------------------- */

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
        int lvl = level <= 3 ? KINFER_LOG_ERR : level == 4 ? KINFER_LOG_WARN
                : level == 5 ? KINFER_LOG_NOTICE : level == 6 ? KINFER_LOG_INFO : KINFER_LOG_DEBUG;
        kinfer_log(lvl, "RDKAFKA", "client=%s fac=%s %s", rd_kafka_name(rk), fac, buf);
}

static int conf_set(rd_kafka_conf_t *rkconf, const char *name, const char *value, char *errstr,
                    size_t errstr_size)
{
        char e[512];
        if (rd_kafka_conf_set(rkconf, name, value, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG, "kafka.%s: %s", name, e);
                return -1;
        }
        return 0;
}

struct rd_kafka_conf_s *kinfer_kafka_conf_new(const kinfer_conf_t *conf, const char *scope,
                                              const char *const *defaults,
                                              const char *const *forced, char *errstr,
                                              size_t errstr_size)
{
        rd_kafka_conf_t *rkconf = rd_kafka_conf_new();
        rd_kafka_conf_set_log_cb(rkconf, kafka_log_cb);
        for (const char *const *d = defaults; d && d[0]; d += 2)
                if (conf_set(rkconf, d[0], d[1], errstr, errstr_size))
                        goto fail;
        if (conf_set(rkconf, "bootstrap.servers", kinfer_conf_get(conf, "kafka.bootstrap.servers"),
                     errstr, errstr_size))
                goto fail;
        /* both clients first, then this client's scope, so kafka.consumer.x beats kafka.x */
        for (int pass = 0; pass < 2; pass++) {
                for (size_t i = 0; i < kinfer_conf_kafka_count(conf); i++) {
                        const char *sc, *name, *value;
                        kinfer_conf_kafka_get(conf, i, &sc, &name, &value);
                        if (pass == 0 ? *sc != '\0' : strcmp(sc, scope) != 0)
                                continue;
                        if (conf_set(rkconf, name, value, errstr, errstr_size))
                                goto fail;
                }
        }
        for (const char *const *f = forced; f && f[0]; f += 2)
                if (conf_set(rkconf, f[0], f[1], errstr, errstr_size))
                        goto fail;
        return rkconf;
fail:
        rd_kafka_conf_destroy(rkconf);
        return NULL;
}

/* ---- the producer ------------------------------------------------------------------------- */

#define MAX_TOPICS 8

struct kinfer_producer_s {
        rd_kafka_t *rk;
        rd_kafka_topic_t *topics[MAX_TOPICS];
        int n_topics;
        kinfer_producer_dr_cb_t *dr_cb;
        void *opaque;
        int fatal;
        char fatal_reason[512];
};

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
        kinfer_producer_t *prod = opaque;
        uint64_t token = (uint64_t)(uintptr_t)rkm->_private;
        if (rkm->err)
                prod->dr_cb(prod->opaque, token, KINFER_ERR__KAFKA, rd_kafka_err2str(rkm->err));
        else
                prod->dr_cb(prod->opaque, token, KINFER_OK, NULL);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
        kinfer_producer_t *prod = opaque;
        if (err == RD_KAFKA_RESP_ERR__FATAL) {
                char fatal[400];
                rd_kafka_resp_err_t ferr = rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
                snprintf(prod->fatal_reason, sizeof(prod->fatal_reason), "%s: %s",
                         rd_kafka_err2name(ferr), fatal);
                prod->fatal = 1;
                kinfer_log(KINFER_LOG_ERR, "PRODUCER", "fatal error: %s", prod->fatal_reason);
                return;
        }
        kinfer_log(KINFER_LOG_WARN, "PRODUCER", "error=%s %s", rd_kafka_err2name(err), reason);
}

kinfer_producer_t *kinfer_producer_new(const kinfer_conf_t *conf, int64_t queue_records,
                                       kinfer_producer_dr_cb_t *dr_cb, void *opaque, char *errstr,
                                       size_t errstr_size)
{
        kinfer_producer_t *prod = calloc(1, sizeof(*prod));
        if (!prod) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        prod->dr_cb = dr_cb;
        prod->opaque = opaque;
        char qmax[32];
        snprintf(qmax, sizeof(qmax), "%lld", (long long)(queue_records < 1000 ? 1000 : queue_records));
        const char *defaults[] = {"linger.ms", "5", "queue.buffering.max.messages", qmax,
                                  "client.id", "kinfer-producer", NULL};
        const char *forced[] = {"enable.idempotence", "true", NULL};
        rd_kafka_conf_t *rkconf = kinfer_kafka_conf_new(conf, "producer", defaults, forced, errstr,
                                                        errstr_size);
        if (!rkconf) {
                free(prod);
                return NULL;
        }
        rd_kafka_conf_set_dr_msg_cb(rkconf, dr_msg_cb);
        rd_kafka_conf_set_error_cb(rkconf, error_cb);
        rd_kafka_conf_set_opaque(rkconf, prod);
        char e[512];
        prod->rk = rd_kafka_new(RD_KAFKA_PRODUCER, rkconf, e, sizeof(e));
        if (!prod->rk) {
                rd_kafka_conf_destroy(rkconf);
                free(prod);
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__KAFKA, "cannot create the producer: %s", e);
                return NULL;
        }
        return prod;
}

int kinfer_producer_topic(kinfer_producer_t *prod, const char *topic, char *errstr,
                          size_t errstr_size)
{
        for (int i = 0; i < prod->n_topics; i++)
                if (!strcmp(rd_kafka_topic_name(prod->topics[i]), topic))
                        return i;
        if (prod->n_topics == MAX_TOPICS) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE, "too many output topics");
                return -1;
        }
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(prod->rk, topic, NULL);
        if (!rkt) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__KAFKA, "topic %s: %s", topic,
                              rd_kafka_err2str(rd_kafka_last_error()));
                return -1;
        }
        prod->topics[prod->n_topics] = rkt;
        return prod->n_topics++;
}

kinfer_err_t kinfer_producer_send(kinfer_producer_t *prod, int topic, const void *key,
                                  size_t key_len, const void *value, size_t len,
                                  const kinfer_header_view_t *headers, size_t n_headers,
                                  uint64_t token, char *errstr, size_t errstr_size)
{
        if (prod->fatal)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__KAFKA, "producer: %s",
                                     prod->fatal_reason);
        for (;;) {
                rd_kafka_headers_t *hdrs = NULL;
                if (n_headers) {
                        hdrs = rd_kafka_headers_new(n_headers);
                        for (size_t i = 0; i < n_headers; i++)
                                rd_kafka_header_add(hdrs, headers[i].key, -1, headers[i].value,
                                                    headers[i].value ? (ssize_t)headers[i].value_len : 0);
                }
                rd_kafka_resp_err_t err = rd_kafka_producev(
                    prod->rk, RD_KAFKA_V_RKT(prod->topics[topic]),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_KEY(key, key ? key_len : 0), RD_KAFKA_V_VALUE((void *)value, len),
                    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE((void *)(uintptr_t)token),
                    RD_KAFKA_V_END);
                if (!err)
                        return KINFER_OK; /* the headers belong to the message now */
                if (hdrs)
                        rd_kafka_headers_destroy(hdrs);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__KAFKA, "produce to %s: %s",
                                             rd_kafka_topic_name(prod->topics[topic]),
                                             rd_kafka_err2str(err));
                rd_kafka_poll(prod->rk, 10); /* local queue full: serve delivery reports */
        }
}

int kinfer_producer_poll(kinfer_producer_t *prod, int timeout_ms)
{
        return rd_kafka_poll(prod->rk, timeout_ms);
}

int kinfer_producer_outq_len(kinfer_producer_t *prod)
{
        return rd_kafka_outq_len(prod->rk);
}

kinfer_err_t kinfer_producer_flush(kinfer_producer_t *prod, int timeout_ms, char *errstr,
                                   size_t errstr_size)
{
        rd_kafka_resp_err_t err = rd_kafka_flush(prod->rk, timeout_ms);
        if (err)
                return kinfer_seterr(errstr, errstr_size, err == RD_KAFKA_RESP_ERR__TIMED_OUT
                                                             ? KINFER_ERR__TIMEOUT : KINFER_ERR__KAFKA,
                                     "flush: %s (%d messages not delivered)", rd_kafka_err2str(err),
                                     rd_kafka_outq_len(prod->rk));
        return KINFER_OK;
}

int kinfer_producer_fatal(kinfer_producer_t *prod, char *errstr, size_t errstr_size)
{
        if (prod->fatal)
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__KAFKA, "%s", prod->fatal_reason);
        return prod->fatal;
}

void kinfer_producer_destroy(kinfer_producer_t *prod)
{
        if (!prod)
                return;
        for (int i = 0; i < prod->n_topics; i++)
                rd_kafka_topic_destroy(prod->topics[i]);
        if (prod->rk)
                rd_kafka_destroy(prod->rk);
        free(prod);
}
