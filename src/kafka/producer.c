/* SPDX-License-Identifier: Apache-2.0 */
/* producer.c -- the idempotent producer of results and dead letters (delivery reports carry
 * the caller's token), and kinfer_kafka_conf_new() shared with consumer.c. src/kafka is the
 * only folder that includes rdkafka.h. */
#include "kinfer/kafka/producer.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
#define MAX_HEADERS 80          /* headers kept on a deferred message */
#define RETRY_MIN_MS 100        /* backoff of a re-sent message: doubles per failure in a */
#define RETRY_MAX_MS 10000      /* row (reset by a success), at most this */

/* A message whose delivery report failed, copied out of librdkafka: re-sent after a backoff
 * (retriable) or handed to the refused callback (permanent for this message), both outside
 * rd_kafka_poll (kinfer_producer_poll/_flush), so that the callback may produce. */
struct deferred {
        struct deferred *next;
        int topic;
        uint64_t token;
        int refused;
        int64_t due_us; /* monotonic */
        void *key;      /* NULL = null key */
        size_t key_len;
        void *value;
        size_t len;
        kinfer_header_view_t headers[MAX_HEADERS];
        size_t n_headers;
        char *hdr_mem;
        char reason[256];
};

struct kinfer_producer_s {
        rd_kafka_t *rk;
        rd_kafka_topic_t *topics[MAX_TOPICS];
        int n_topics;
        kinfer_producer_dr_cb_t *dr_cb;
        kinfer_producer_refused_cb_t *refused_cb;
        void *opaque;
        int fatal;
        char fatal_reason[512];
        int64_t max_message_bytes; /* librdkafka's message.max.bytes */
        int64_t bytes_in_flight;   /* key + value of sent messages not yet finally reported */
        struct deferred *dq_head, *dq_tail;
        int64_t n_deferred;
        int fail_streak; /* retriable failures in a row */
        int64_t n_retries, n_refused;
        struct kinfer_txn_state txn; /* exactly-once (txn.c) */
};

static int64_t mono_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

kinfer_delivery_class_t kinfer_producer_classify(int rd_err)
{
        switch ((rd_kafka_resp_err_t)rd_err) {
        case RD_KAFKA_RESP_ERR_NO_ERROR:
                return KINFER_DELIVERY_OK;
        /* transient: the broker or the network will come back */
        case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
        case RD_KAFKA_RESP_ERR__TIMED_OUT:
        case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
        case RD_KAFKA_RESP_ERR__TRANSPORT:
        case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
        case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
        case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
        case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
        case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
        case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
        case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
        case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
        case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_REPLICA_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED:
                return KINFER_DELIVERY_RETRY;
        /* this message, as it is, will never be accepted by this topic */
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        case RD_KAFKA_RESP_ERR_INVALID_RECORD:
        case RD_KAFKA_RESP_ERR_INVALID_MSG:
        case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
        case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
        case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR__BAD_MSG:
                return KINFER_DELIVERY_REFUSED;
        default: /* authentication, fencing, unknown topic, anything not listed: stop */
                return KINFER_DELIVERY_FATAL;
        }
}

static void deferred_free(struct deferred *d)
{
        if (!d)
                return;
        free(d->key);
        free(d->value);
        free(d->hdr_mem);
        free(d);
}

/* Copy @p rkm into a deferred entry; NULL when out of memory. */
static struct deferred *deferred_new(kinfer_producer_t *prod, const rd_kafka_message_t *rkm)
{
        struct deferred *d = calloc(1, sizeof(*d));
        if (!d)
                return NULL;
        d->topic = -1;
        for (int i = 0; i < prod->n_topics; i++)
                if (prod->topics[i] == rkm->rkt)
                        d->topic = i;
        d->token = (uint64_t)(uintptr_t)rkm->_private;
        if (rkm->key && !(d->key = malloc(rkm->key_len ? rkm->key_len : 1)))
                goto fail;
        if (rkm->key)
                memcpy(d->key, rkm->key, rkm->key_len);
        d->key_len = rkm->key_len;
        if (rkm->payload && !(d->value = malloc(rkm->len ? rkm->len : 1)))
                goto fail;
        if (rkm->payload)
                memcpy(d->value, rkm->payload, rkm->len);
        d->len = rkm->len;
        rd_kafka_headers_t *hdrs = NULL;
        if (!rd_kafka_message_headers(rkm, &hdrs) && hdrs) {
                size_t total = 0, n = rd_kafka_header_cnt(hdrs);
                const char *name;
                const void *val;
                size_t size;
                for (size_t i = 0; i < n && i < MAX_HEADERS; i++)
                        if (!rd_kafka_header_get_all(hdrs, i, &name, &val, &size))
                                total += strlen(name) + 1 + size;
                if (!(d->hdr_mem = malloc(total ? total : 1)))
                        goto fail;
                char *m = d->hdr_mem;
                for (size_t i = 0; i < n && i < MAX_HEADERS; i++) {
                        if (rd_kafka_header_get_all(hdrs, i, &name, &val, &size))
                                continue;
                        size_t nl = strlen(name) + 1;
                        memcpy(m, name, nl);
                        kinfer_header_view_t *h = &d->headers[d->n_headers++];
                        h->key = m;
                        m += nl;
                        h->value = val ? m : NULL;
                        h->value_len = val ? size : 0;
                        if (val && size)
                                memcpy(m, val, size);
                        m += val ? size : 0;
                }
        }
        snprintf(d->reason, sizeof(d->reason), "%s", rd_kafka_err2str(rkm->err));
        return d;
fail:
        deferred_free(d);
        return NULL;
}

static void deferred_push(kinfer_producer_t *prod, struct deferred *d)
{
        if (prod->dq_tail)
                prod->dq_tail->next = d;
        else
                prod->dq_head = d;
        prod->dq_tail = d;
        prod->n_deferred++;
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
        (void)rk;
        kinfer_producer_t *prod = opaque;
        uint64_t token = (uint64_t)(uintptr_t)rkm->_private;
        kinfer_delivery_class_t cls = kinfer_producer_classify(rkm->err);
        if (cls == KINFER_DELIVERY_OK) {
                prod->bytes_in_flight -= (int64_t)(rkm->len + rkm->key_len);
                prod->fail_streak = 0;
                prod->dr_cb(prod->opaque, token, KINFER_OK, NULL);
                return;
        }
        if (prod->txn.enabled) {
                /* exactly-once: nothing is sent again on its own; the window's transaction is
                 * aborted and redone from the committed offsets (txn.h). A message the topic
                 * refuses for good would fail every redo: fatal. Purged messages belong to an
                 * aborted transaction. */
                prod->bytes_in_flight -= (int64_t)(rkm->len + rkm->key_len);
                if (rkm->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
                    rkm->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
                        return;
                if (cls == KINFER_DELIVERY_REFUSED && !prod->fatal) {
                        snprintf(prod->fatal_reason, sizeof(prod->fatal_reason),
                                 "topic %s refused a message of a transaction: %s",
                                 rd_kafka_topic_name(rkm->rkt), rd_kafka_err2str(rkm->err));
                        prod->fatal = 1;
                } else if (!prod->txn.failed) {
                        snprintf(prod->txn.reason, sizeof(prod->txn.reason), "delivery to %s: %s (%s)",
                                 rd_kafka_topic_name(rkm->rkt), rd_kafka_err2str(rkm->err),
                                 rd_kafka_err2name(rkm->err));
                        prod->txn.failed = 1;
                }
                return;
        }
        if (cls == KINFER_DELIVERY_RETRY || (cls == KINFER_DELIVERY_REFUSED && prod->refused_cb)) {
                struct deferred *d = deferred_new(prod, rkm);
                if (d && d->topic >= 0) {
                        d->refused = cls == KINFER_DELIVERY_REFUSED;
                        if (!d->refused) {
                                int64_t ms = (int64_t)RETRY_MIN_MS << (prod->fail_streak < 7 ? prod->fail_streak : 7);
                                d->due_us = mono_us() + (ms < RETRY_MAX_MS ? ms : RETRY_MAX_MS) * 1000;
                                prod->fail_streak++;
                                kinfer_log(KINFER_LOG_WARN, "PRODUCER",
                                           "topic=%s error=%s: sending again in %lld ms",
                                           rd_kafka_topic_name(rkm->rkt), rd_kafka_err2name(rkm->err),
                                           (long long)ms);
                        }
                        deferred_push(prod, d);
                        return; /* still in flight */
                }
                deferred_free(d);
                prod->bytes_in_flight -= (int64_t)(rkm->len + rkm->key_len);
                prod->dr_cb(prod->opaque, token, KINFER_ERR__NOMEM,
                            "out of memory keeping a failed message");
                return;
        }
        prod->bytes_in_flight -= (int64_t)(rkm->len + rkm->key_len);
        char reason[300];
        snprintf(reason, sizeof(reason), "topic %s: %s (%s)", rd_kafka_topic_name(rkm->rkt),
                 rd_kafka_err2str(rkm->err), rd_kafka_err2name(rkm->err));
        prod->dr_cb(prod->opaque, token, KINFER_ERR__KAFKA, reason);
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
        /* the local queue is bounded in bytes too (librdkafka's default is 1 GiB) */
        const char *defaults[] = {"linger.ms", "5", "queue.buffering.max.messages", qmax,
                                  "queue.buffering.max.kbytes", KINFER_PRODUCER_QUEUE_KBYTES,
                                  "client.id", "kinfer-producer", NULL};
        const char *forced[] = {"enable.idempotence", "true", NULL};
        /* exactly-once: a transactional.id stable across restarts of this worker id (kafka.
         * producer.transactional.id overrides it) */
        char txn_id[320];
        const char *txn_defaults[] = {"linger.ms", "5", "queue.buffering.max.messages", qmax,
                                      "queue.buffering.max.kbytes", KINFER_PRODUCER_QUEUE_KBYTES,
                                      "client.id", "kinfer-producer", "transactional.id", txn_id,
                                      NULL};
        if (kinfer_kafka_exactly_once(conf)) {
                snprintf(txn_id, sizeof(txn_id), "kinfer.%s.%s", kinfer_conf_get(conf, "kafka.group.id"),
                         kinfer_conf_get(conf, "worker.id"));
                prod->txn.enabled = 1;
        }
        rd_kafka_conf_t *rkconf = kinfer_kafka_conf_new(conf, "producer",
                                                        prod->txn.enabled ? txn_defaults : defaults,
                                                        forced, errstr, errstr_size);
        if (!rkconf) {
                free(prod);
                return NULL;
        }
        char mmb[32];
        size_t mmb_size = sizeof(mmb);
        prod->max_message_bytes = 1000000;
        if (rd_kafka_conf_get(rkconf, "message.max.bytes", mmb, &mmb_size) == RD_KAFKA_CONF_OK)
                prod->max_message_bytes = strtoll(mmb, NULL, 10);
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
        if (prod->txn.enabled) {
                if (prod->txn.failed)
                        return KINFER_OK; /* the window is aborted and redone: no use sending */
                if (!prod->txn.open) {
                        rd_kafka_error_t *error = rd_kafka_begin_transaction(prod->rk);
                        if (error) {
                                kinfer_err_t e = kinfer_seterr(errstr, errstr_size, KINFER_ERR__KAFKA,
                                                               "begin transaction: %s",
                                                               rd_kafka_error_string(error));
                                rd_kafka_error_destroy(error);
                                return e;
                        }
                        prod->txn.open = 1;
                }
        }
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
                if (!err) {
                        prod->bytes_in_flight += (int64_t)(len + (key ? key_len : 0));
                        return KINFER_OK; /* the headers belong to the message now */
                }
                if (hdrs)
                        rd_kafka_headers_destroy(hdrs);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        return kinfer_seterr(errstr, errstr_size,
                                             kinfer_producer_classify(err) == KINFER_DELIVERY_REFUSED
                                                 ? KINFER_ERR__BAD_FORMAT : KINFER_ERR__KAFKA,
                                             "produce to %s: %s (%s)",
                                             rd_kafka_topic_name(prod->topics[topic]),
                                             rd_kafka_err2str(err), rd_kafka_err2name(err));
                rd_kafka_poll(prod->rk, 10); /* local queue full: serve delivery reports */
        }
}

/* Serve the deferred messages: refused ones go to the refused callback, retriable ones whose
 * backoff is over are sent again (a send that fails now is reported as failed). Only entries
 * present on entry are served: what the callbacks defer waits for the next call.
 * @returns the time in ms until the next retry is due (-1: none left). */
static int serve_deferred(kinfer_producer_t *prod)
{
        int64_t now = mono_us(), next = -1;
        struct deferred *keep_head = NULL, *keep_tail = NULL;
        struct deferred *d = prod->dq_head;
        prod->dq_head = prod->dq_tail = NULL;
        int64_t n = prod->n_deferred;
        prod->n_deferred = 0;
        while (d && n-- > 0) {
                struct deferred *nx = d->next;
                d->next = NULL;
                if (!d->refused && d->due_us > now) {
                        if (next < 0 || d->due_us < next)
                                next = d->due_us;
                        if (keep_tail)
                                keep_tail->next = d;
                        else
                                keep_head = d;
                        keep_tail = d;
                        d = nx;
                        continue;
                }
                prod->bytes_in_flight -= (int64_t)(d->len + d->key_len);
                if (d->refused) {
                        prod->n_refused++;
                        kinfer_producer_msg_t m = {
                            .topic = d->topic, .token = d->token, .key = d->key,
                            .key_len = d->key_len, .value = d->value, .len = d->len,
                            .headers = d->headers, .n_headers = d->n_headers, .reason = d->reason};
                        prod->refused_cb(prod->opaque, &m);
                } else {
                        char e[512];
                        prod->n_retries++;
                        if (kinfer_producer_send(prod, d->topic, d->key, d->key_len, d->value, d->len,
                                                 d->headers, d->n_headers, d->token, e, sizeof(e)))
                                prod->dr_cb(prod->opaque, d->token, KINFER_ERR__KAFKA, e);
                }
                deferred_free(d);
                d = nx;
        }
        /* put back what waits, ahead of what the callbacks deferred meanwhile */
        if (keep_head) {
                int64_t k = 0;
                for (struct deferred *x = keep_head; x; x = x->next)
                        k++;
                keep_tail->next = prod->dq_head;
                if (!prod->dq_head)
                        prod->dq_tail = keep_tail;
                prod->dq_head = keep_head;
                prod->n_deferred += k;
        }
        if (next < 0)
                return prod->dq_head ? 0 : -1;
        int64_t ms = (next - now + 999) / 1000;
        return ms > 0 ? (int)ms : 0;
}

int kinfer_producer_poll(kinfer_producer_t *prod, int timeout_ms)
{
        int n = rd_kafka_poll(prod->rk, timeout_ms);
        if (prod->dq_head)
                serve_deferred(prod);
        return n;
}

int kinfer_producer_outq_len(kinfer_producer_t *prod)
{
        return rd_kafka_outq_len(prod->rk) + (int)prod->n_deferred;
}

int64_t kinfer_producer_bytes_in_flight(const kinfer_producer_t *prod)
{
        return prod->bytes_in_flight;
}

int64_t kinfer_producer_max_message_bytes(const kinfer_producer_t *prod)
{
        return prod->max_message_bytes;
}

void kinfer_producer_set_refused_cb(kinfer_producer_t *prod, kinfer_producer_refused_cb_t *cb)
{
        prod->refused_cb = cb;
}

void kinfer_producer_counts(const kinfer_producer_t *prod, int64_t *retries, int64_t *refused)
{
        if (retries)
                *retries = prod->n_retries;
        if (refused)
                *refused = prod->n_refused;
}

kinfer_err_t kinfer_producer_flush(kinfer_producer_t *prod, int timeout_ms, char *errstr,
                                   size_t errstr_size)
{
        int64_t deadline = mono_us() + (int64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000;
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        for (;;) {
                int64_t left_ms = (deadline - mono_us()) / 1000;
                if (left_ms < 0)
                        left_ms = 0;
                int wait = (int)left_ms;
                if (prod->dq_head) {
                        int due = serve_deferred(prod);
                        if (due >= 0 && due < wait)
                                wait = due;
                }
                err = rd_kafka_flush(prod->rk, wait);
                if (prod->dq_head)
                        serve_deferred(prod);
                if (rd_kafka_outq_len(prod->rk) == 0 && !prod->dq_head) {
                        err = RD_KAFKA_RESP_ERR_NO_ERROR;
                        break;
                }
                if (mono_us() >= deadline) {
                        if (!err)
                                err = RD_KAFKA_RESP_ERR__TIMED_OUT;
                        break;
                }
                if (err && err != RD_KAFKA_RESP_ERR__TIMED_OUT)
                        break;
        }
        if (err)
                return kinfer_seterr(errstr, errstr_size, err == RD_KAFKA_RESP_ERR__TIMED_OUT
                                                             ? KINFER_ERR__TIMEOUT : KINFER_ERR__KAFKA,
                                     "flush: %s (%d messages not delivered)", rd_kafka_err2str(err),
                                     kinfer_producer_outq_len(prod));
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
        while (prod->dq_head) {
                struct deferred *d = prod->dq_head;
                prod->dq_head = d->next;
                deferred_free(d);
        }
        free(prod);
}

/* ---- for txn.c ---------------------------------------------------------------------------- */

struct rd_kafka_s *kinfer_producer_rk_(struct kinfer_producer_s *prod)
{
        return prod->rk;
}

struct kinfer_txn_state *kinfer_producer_txn_(struct kinfer_producer_s *prod)
{
        return &prod->txn;
}

int kinfer_kafka_exactly_once(const kinfer_conf_t *conf)
{
        return !strcmp(kinfer_conf_get(conf, "processing.guarantee"), "exactly_once");
}
