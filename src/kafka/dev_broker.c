/* SPDX-License-Identifier: Apache-2.0 */
/* dev_broker.c -- librdkafka's mock cluster behind kinfer/kafka/dev_broker.h: a client handle
 * that hosts N brokers on loopback; with kinfer_dev_broker_listen, a bootstrap port of the
 * caller's choosing forwarded to the first broker (librdkafka 2.0's mock brokers bind random
 * ports, and clients learn the brokers' own addresses from the metadata anyway). */
#include "kinfer/kafka/dev_broker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* connections through the bootstrap port at a time (each client keeps one) */
#define FWD_MAX_CONNS 256

typedef struct fwd_conn_s {
        int client, broker;
        int done;            /* pumps finished (0..2), under fwd_lock */
        pthread_t pump[2];
        struct fwd_conn_s *next;
} fwd_conn_t;

struct kinfer_dev_broker_s {
        rd_kafka_t *rk; /* the handle the mock cluster lives in */
        rd_kafka_mock_cluster_t *mcluster;
        int n_brokers;
        /* the bootstrap port (kinfer_dev_broker_listen) */
        int listen_fd;
        struct sockaddr_in target; /* the first mock broker */
        char bootstraps[64];
        pthread_t acceptor;
        int acceptor_started;
        pthread_mutex_t fwd_lock;
        int stopping;        /* under fwd_lock */
        int n_conns;
        fwd_conn_t *conns;
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
        broker->listen_fd = -1;
        pthread_mutex_init(&broker->fwd_lock, NULL);
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

/* ---- the bootstrap port: a byte pump each way per connection ------------------------------- */

typedef struct {
        kinfer_dev_broker_t *broker;
        fwd_conn_t *c;
        int from, to;
} pump_arg_t;

static void *pump(void *arg)
{
        pump_arg_t a = *(pump_arg_t *)arg;
        free(arg);
        char buf[65536];
        for (;;) {
                ssize_t n = read(a.from, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                ssize_t off = 0;
                while (off < n) {
                        ssize_t w = send(a.to, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w <= 0)
                                goto out;
                        off += w;
                }
        }
out:
        shutdown(a.to, SHUT_WR);
        shutdown(a.from, SHUT_RD);
        pthread_mutex_lock(&a.broker->fwd_lock);
        a.c->done++;
        pthread_mutex_unlock(&a.broker->fwd_lock);
        return NULL;
}

/* Join and free the connections whose pumps both ended (all of them with @p all, after they
 * were shut down). Called by the acceptor, and by destroy once the acceptor is gone. */
static void reap(kinfer_dev_broker_t *b, int all)
{
        pthread_mutex_lock(&b->fwd_lock);
        fwd_conn_t **pp = &b->conns;
        while (*pp) {
                fwd_conn_t *c = *pp;
                if (!all && c->done < 2) {
                        pp = &c->next;
                        continue;
                }
                *pp = c->next;
                b->n_conns--;
                pthread_mutex_unlock(&b->fwd_lock);
                pthread_join(c->pump[0], NULL);
                pthread_join(c->pump[1], NULL);
                close(c->client);
                close(c->broker);
                free(c);
                pthread_mutex_lock(&b->fwd_lock);
                pp = &b->conns;
        }
        pthread_mutex_unlock(&b->fwd_lock);
}

static int start_pump(kinfer_dev_broker_t *b, fwd_conn_t *c, int i, int from, int to)
{
        pump_arg_t *a = malloc(sizeof(*a));
        if (!a)
                return -1;
        *a = (pump_arg_t){b, c, from, to};
        if (pthread_create(&c->pump[i], NULL, pump, a)) {
                free(a);
                return -1;
        }
        return 0;
}

static void *acceptor(void *arg)
{
        kinfer_dev_broker_t *b = arg;
        for (;;) {
                int fd = accept4(b->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                pthread_mutex_lock(&b->fwd_lock);
                int stopping = b->stopping;
                pthread_mutex_unlock(&b->fwd_lock);
                if (stopping) {
                        if (fd >= 0)
                                close(fd);
                        return NULL;
                }
                if (fd < 0) {
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                                usleep(100000); /* do not spin while out of descriptors */
                        continue;
                }
                reap(b, 0);
                int up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                fwd_conn_t *c = calloc(1, sizeof(*c));
                pthread_mutex_lock(&b->fwd_lock);
                int full = b->n_conns >= FWD_MAX_CONNS;
                pthread_mutex_unlock(&b->fwd_lock);
                if (full || up < 0 || !c ||
                    connect(up, (const struct sockaddr *)&b->target, sizeof(b->target))) {
                        close(fd); /* the client retries, as with a broker that is down */
                        if (up >= 0)
                                close(up);
                        free(c);
                        continue;
                }
                c->client = fd;
                c->broker = up;
                if (start_pump(b, c, 0, fd, up)) {
                        close(fd);
                        close(up);
                        free(c);
                        continue;
                }
                if (start_pump(b, c, 1, up, fd)) { /* the first pump ends once both are shut */
                        shutdown(fd, SHUT_RDWR);
                        shutdown(up, SHUT_RDWR);
                        pthread_join(c->pump[0], NULL);
                        close(fd);
                        close(up);
                        free(c);
                        continue;
                }
                pthread_mutex_lock(&b->fwd_lock);
                c->next = b->conns;
                b->conns = c;
                b->n_conns++;
                pthread_mutex_unlock(&b->fwd_lock);
        }
}

kinfer_err_t kinfer_dev_broker_listen(kinfer_dev_broker_t *b, int port, char *errstr,
                                      size_t errstr_size)
{
        if (b->listen_fd >= 0)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE,
                                     "the dev broker already listens on %s", b->bootstraps);
        if (port < 1 || port > 65535)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "port %d is not in 1..65535", port);
        /* the first broker's address: the head of the mock cluster's "127.0.0.1:P1,..." list */
        const char *list = rd_kafka_mock_cluster_bootstraps(b->mcluster);
        const char *colon = strchr(list, ':');
        long bport = colon ? strtol(colon + 1, NULL, 10) : 0;
        if (bport < 1 || bport > 65535)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__KAFKA,
                                     "unexpected bootstrap list from the mock cluster: %s", list);
        memset(&b->target, 0, sizeof(b->target));
        b->target.sin_family = AF_INET;
        b->target.sin_port = htons((uint16_t)bport);
        b->target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO, "socket: %s",
                                     strerror(errno));
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64)) {
                int e = errno;
                close(fd);
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO, "127.0.0.1:%d: %s%s", port,
                                     strerror(e),
                                     e == EADDRINUSE ? " (another dev broker or Kafka? choose "
                                                       "another port, or port 0 for any free one)"
                                                     : "");
        }
        b->listen_fd = fd;
        snprintf(b->bootstraps, sizeof(b->bootstraps), "127.0.0.1:%d", port);
        if (pthread_create(&b->acceptor, NULL, acceptor, b)) {
                close(fd);
                b->listen_fd = -1;
                b->bootstraps[0] = '\0';
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE,
                                     "cannot start the bootstrap port's thread");
        }
        b->acceptor_started = 1;
        return KINFER_OK;
}

const char *kinfer_dev_broker_bootstraps(const kinfer_dev_broker_t *broker)
{
        if (broker->bootstraps[0])
                return broker->bootstraps;
        return rd_kafka_mock_cluster_bootstraps(broker->mcluster);
}

/* The Kafka protocol's ApiKey of a request type by name, or a number; -1 if unknown. */
static int api_key(const char *api)
{
        static const struct {
                const char *name;
                int key;
        } apis[] = {{"produce", 0},       {"fetch", 1},         {"listoffsets", 2},
                    {"metadata", 3},      {"offsetcommit", 8},  {"offsetfetch", 9},
                    {"findcoordinator", 10}, {"joingroup", 11}, {"heartbeat", 12},
                    {"leavegroup", 13},   {"syncgroup", 14},    {"initproducerid", 22}};
        for (size_t i = 0; i < sizeof(apis) / sizeof(apis[0]); i++)
                if (!strcasecmp(api, apis[i].name))
                        return apis[i].key;
        char *end;
        long k = strtol(api, &end, 10);
        return (*api && !*end && k >= 0 && k <= 1000) ? (int)k : -1;
}

/* librdkafka's error code named @p name (rd_kafka_err2name spelling, prefix optional, any
 * case). @returns 0 when found. */
static int err_by_name(const char *name, rd_kafka_resp_err_t *err)
{
        const struct rd_kafka_err_desc *descs;
        size_t n;
        if (!strncasecmp(name, "RD_KAFKA_RESP_ERR_", 18))
                name += 18;
        rd_kafka_get_err_descs(&descs, &n);
        for (size_t i = 0; i < n; i++)
                if (descs[i].name && !strcasecmp(descs[i].name, name)) {
                        *err = descs[i].code;
                        return 0;
                }
        return -1;
}

kinfer_err_t kinfer_dev_broker_push_request_errors(kinfer_dev_broker_t *broker, int broker_id,
                                                   const char *api, const char *error,
                                                   int count, int rtt_ms, char *errstr,
                                                   size_t errstr_size)
{
        int key = api_key(api);
        rd_kafka_resp_err_t err;
        if (key < 0)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "unknown request type \"%s\"", api);
        if (err_by_name(error, &err) || (err == RD_KAFKA_RESP_ERR_NO_ERROR && rtt_ms <= 0))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "unknown error \"%s\" (librdkafka's names, e.g. "
                                     "MSG_SIZE_TOO_LARGE)", error);
        if (count < 1 || count > 100000)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "count %d out of 1..100000", count);
        if (broker_id < 0 || broker_id > broker->n_brokers)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "broker %d out of 0..%d", broker_id, broker->n_brokers);
        if (rtt_ms < 0 || (rtt_ms > 0 && broker_id == 0))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "a delay needs a broker id (1..%d)", broker->n_brokers);
        for (int i = 0; i < count; i++) {
                if (broker_id == 0) {
                        rd_kafka_mock_push_request_errors(broker->mcluster, (int16_t)key, 1, err);
                        continue;
                }
                rd_kafka_resp_err_t e = rd_kafka_mock_broker_push_request_error_rtts(
                    broker->mcluster, broker_id, (int16_t)key, 1, err, rtt_ms);
                if (e)
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                             "broker %d: %s", broker_id, rd_kafka_err2str(e));
        }
        return KINFER_OK;
}

kinfer_err_t kinfer_dev_broker_request_errors_left(kinfer_dev_broker_t *broker, int broker_id,
                                                   const char *api, long *left, char *errstr,
                                                   size_t errstr_size)
{
        int key = api_key(api);
        size_t cnt = 0;
        if (key < 0)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "unknown request type \"%s\"", api);
        rd_kafka_resp_err_t e =
            rd_kafka_mock_broker_error_stack_cnt(broker->mcluster, broker_id, (int16_t)key, &cnt);
        if (e)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG, "broker %d: %s",
                                     broker_id, rd_kafka_err2str(e));
        *left = (long)cnt;
        return KINFER_OK;
}

kinfer_err_t kinfer_dev_broker_set_leader(kinfer_dev_broker_t *broker, const char *topic,
                                          int partition, int broker_id, char *errstr,
                                          size_t errstr_size)
{
        rd_kafka_resp_err_t e =
            rd_kafka_mock_partition_set_leader(broker->mcluster, topic, partition, broker_id);
        if (e)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__KAFKA,
                                     "leader of %s [%d] := broker %d: %s", topic, partition,
                                     broker_id, rd_kafka_err2str(e));
        return KINFER_OK;
}

kinfer_err_t kinfer_dev_broker_set_rtt(kinfer_dev_broker_t *broker, int broker_id, int rtt_ms,
                                       char *errstr, size_t errstr_size)
{
        rd_kafka_resp_err_t e = rd_kafka_mock_broker_set_rtt(broker->mcluster, broker_id, rtt_ms);
        if (e)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__KAFKA,
                                     "round trip of broker %d := %d ms: %s", broker_id, rtt_ms,
                                     rd_kafka_err2str(e));
        return KINFER_OK;
}

kinfer_err_t kinfer_dev_broker_set_coordinator(kinfer_dev_broker_t *broker, const char *key_type,
                                               const char *key, int broker_id, char *errstr,
                                               size_t errstr_size)
{
        if (strcmp(key_type, "group") && strcmp(key_type, "transaction"))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "coordinator type is group or transaction, not %s", key_type);
        rd_kafka_resp_err_t e =
            rd_kafka_mock_coordinator_set(broker->mcluster, key_type, key, broker_id);
        if (e)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__KAFKA,
                                     "%s coordinator of %s := broker %d: %s", key_type, key,
                                     broker_id, rd_kafka_err2str(e));
        return KINFER_OK;
}

void kinfer_dev_broker_destroy(kinfer_dev_broker_t *broker)
{
        if (!broker)
                return;
        if (broker->acceptor_started) {
                pthread_mutex_lock(&broker->fwd_lock);
                broker->stopping = 1;
                for (fwd_conn_t *c = broker->conns; c; c = c->next) {
                        shutdown(c->client, SHUT_RDWR);
                        shutdown(c->broker, SHUT_RDWR);
                }
                pthread_mutex_unlock(&broker->fwd_lock);
                shutdown(broker->listen_fd, SHUT_RDWR); /* wakes accept() */
                pthread_join(broker->acceptor, NULL);
                /* connections accepted after the shutdowns above */
                pthread_mutex_lock(&broker->fwd_lock);
                for (fwd_conn_t *c = broker->conns; c; c = c->next) {
                        shutdown(c->client, SHUT_RDWR);
                        shutdown(c->broker, SHUT_RDWR);
                }
                pthread_mutex_unlock(&broker->fwd_lock);
                reap(broker, 1);
        }
        if (broker->listen_fd >= 0)
                close(broker->listen_fd);
        if (broker->mcluster)
                rd_kafka_mock_cluster_destroy(broker->mcluster);
        if (broker->rk)
                rd_kafka_destroy(broker->rk);
        pthread_mutex_destroy(&broker->fwd_lock);
        free(broker);
}
