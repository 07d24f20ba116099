/* SPDX-License-Identifier: Apache-2.0 */
/* consumer.c -- the worker's Kafka consumer: group subscription, polling into message views,
 * rebalance (eager or cooperative, following the configured assignor), pause/resume for
 * backpressure, offset store after delivery and commit. src/kafka is the only folder that
 * includes rdkafka.h. */
#include "kinfer/kafka/consumer.h"

#include <ctype.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka/kafka_int.h"
#include "kinfer/core/log.h"

struct kinfer_consumer_s {
        rd_kafka_t *rk;
        kinfer_consumer_cbs_t cbs;
        int paused;
        int assigned; /* partitions currently assigned */
        int close_unfinished; /* a bounded close gave up: destroy must not leave the group */
        int64_t close_deadline_ms; /* monotonic end of kinfer_consumer_close; 0 = not closing */
        int commit_timeout_ms; /* a revoke's commit outside a close: shutdown.timeout.ms */
        rd_kafka_topic_partition_list_t *lag_parts; /* kinfer_consumer_lag's last assignment copy */
        int nudge;          /* librdkafka < 2.2: wake a stalled fetcher (nudge_fetcher) */
        int nudge_next;     /* round-robin position in the assignment */
        int64_t nudge_at_us; /* the last nudge (monotonic) */
        int64_t nudge_gap_us; /* the wait before the next one (NUDGE_MIN_US .. NUDGE_MAX_US) */
        uint64_t nudges;    /* how many, for the close log line */
};

static int64_t mono_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t mono_ms(void)
{
        return mono_us() / 1000;
}

/* Commit the assignment's stored offsets and wait at most @p timeout_ms for the answer.
 * rd_kafka_commit(..., 0) waits without a bound: librdkafka defers a commit until a coordinator
 * is known, and then waits for the request (socket.timeout.ms, and longer for a group in the
 * middle of a rebalance: kafka_group saw a worker's SIGTERM never finish there). The answer
 * comes on a queue of our own instead; one that comes late is dropped with the queue, and the
 * records since the last commit that did land are redone by the partitions' next owner. */
static rd_kafka_resp_err_t commit_bounded(rd_kafka_t *rk, int timeout_ms)
{
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        if (!q)
                return RD_KAFKA_RESP_ERR__FAIL;
        int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
        rd_kafka_resp_err_t err = rd_kafka_commit_queue(rk, NULL, q, NULL, NULL);
        while (!err) {
                int64_t left = deadline - mono_ms();
                rd_kafka_event_t *ev = rd_kafka_queue_poll(q, left > 0 ? (int)left : 0);
                if (!ev) {
                        err = RD_KAFKA_RESP_ERR__TIMED_OUT;
                        break;
                }
                int done = rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OFFSET_COMMIT;
                if (done)
                        err = rd_kafka_event_error(ev);
                rd_kafka_event_destroy(ev);
                if (done)
                        break;
        }
        rd_kafka_queue_destroy(q);
        return err;
}

/* What a revoke's commit may wait: what is left of the close when closing, else
 * shutdown.timeout.ms (the revoke's producer flush has the same bound, worker.c on_revoke) */
static int revoke_commit_timeout_ms(const kinfer_consumer_t *cons)
{
        if (!cons->close_deadline_ms)
                return cons->commit_timeout_ms;
        int64_t left = cons->close_deadline_ms - mono_ms();
        return left > 0 ? (int)left : 0;
}

#define NUDGE_MIN_US 10000    /* at most one nudge per 10 ms */
#define NUDGE_MAX_US 1000000  /* ... and, while they bring nothing, down to one a second */
#define NUDGE_TIMEOUT_MS 5    /* how long one may block the caller */

/* librdkafka before 2.2 stops fetching a partition for a second once the prefetch queue is over
 * queued.max.messages.kbytes ("it backs off for 1 seconds": its CHANGELOG for 2.2.0, which added
 * fetch.queue.backoff.ms to shorten it). kinfer keeps that queue small (8 MiB) for the memory
 * bound, so a worker draining a backlog empties it in ~150 ms and then waits for nothing most of
 * the second (docs/benchmarks.md). The broker thread decides again whenever it wakes, and any
 * request sent through it wakes it: when a poll found nothing while an assigned partition has
 * records beyond the application's position (the cached high watermark, no request), ask that
 * partition's leader for its latest offset, whose answer is not needed. One partition per nudge,
 * round-robin, so that every leader is reached within a few polls; nothing is sent when the
 * worker is caught up, paused or unassigned. The high watermark can stay beyond the position
 * with nothing to fetch (a transaction's control marker, an open transaction under
 * read_committed, compacted records): nudges that bring no message double their interval up to
 * a second, and the next message brings it back to 10 ms. */
static void nudge_fetcher(kinfer_consumer_t *cons)
{
        int64_t now = mono_us();
        if (now - cons->nudge_at_us < cons->nudge_gap_us)
                return;
        cons->nudge_at_us = now;
        rd_kafka_topic_partition_list_t *cur = NULL;
        if (rd_kafka_assignment(cons->rk, &cur) || !cur)
                return;
        if (cur->cnt > 0 && !rd_kafka_position(cons->rk, cur)) {
                for (int k = 0; k < cur->cnt; k++) {
                        const rd_kafka_topic_partition_t *tp =
                            &cur->elems[(cons->nudge_next + k) % cur->cnt];
                        int64_t lo = -1, hi = -1;
                        if (tp->offset < 0 ||
                            rd_kafka_get_watermark_offsets(cons->rk, tp->topic, tp->partition, &lo,
                                                           &hi) ||
                            hi <= tp->offset)
                                continue;
                        cons->nudge_next = (cons->nudge_next + k + 1) % cur->cnt;
                        /* the leader's latest offset (ListOffsets, timestamp -1). Not
                         * rd_kafka_query_watermark_offsets: before librdkafka 2.2 it waits for
                         * its answer whatever its timeout, so a leader that died with the
                         * request in flight held the worker's loop for socket.timeout.ms and
                         * more (81 s in kafka_fault's leader kill). offsets_for_times returns
                         * at its timeout, and a late answer is dropped with its queue. */
                        rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_new(1);
                        if (q) {
                                rd_kafka_topic_partition_list_add(q, tp->topic, tp->partition)->offset =
                                    RD_KAFKA_OFFSET_END;
                                (void)rd_kafka_offsets_for_times(cons->rk, q, NUDGE_TIMEOUT_MS);
                                rd_kafka_topic_partition_list_destroy(q);
                        }
                        cons->nudges++;
                        if (cons->nudge_gap_us < NUDGE_MAX_US)
                                cons->nudge_gap_us *= 2; /* back to NUDGE_MIN_US by a message */
                        break;
                }
        }
        rd_kafka_topic_partition_list_destroy(cur);
}

static void log_parts(const char *what, const rd_kafka_topic_partition_list_t *parts)
{
        char buf[1024];
        size_t o = 0;
        buf[0] = '\0';
        for (int i = 0; i < parts->cnt && o + 64 < sizeof(buf); i++)
                o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s[%d]", i ? "," : "",
                                      parts->elems[i].topic, (int)parts->elems[i].partition);
        kinfer_log(KINFER_LOG_INFO, "CONSUMER", "%s n=%d partitions=%s", what, parts->cnt, buf);
}

static void update_assigned(kinfer_consumer_t *cons)
{
        rd_kafka_topic_partition_list_t *cur = NULL;
        if (!rd_kafka_assignment(cons->rk, &cur) && cur) {
                cons->assigned = cur->cnt;
                rd_kafka_topic_partition_list_destroy(cur);
        }
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
        kinfer_consumer_t *cons = opaque;
        int coop = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
        rd_kafka_error_t *error = NULL;
        rd_kafka_resp_err_t rerr = RD_KAFKA_RESP_ERR_NO_ERROR;
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                log_parts("assigned", parts);
                if (coop)
                        error = rd_kafka_incremental_assign(rk, parts);
                else
                        rerr = rd_kafka_assign(rk, parts);
                if (cons->paused)
                        rd_kafka_pause_partitions(rk, parts);
                update_assigned(cons);
                if (cons->cbs.on_assign)
                        cons->cbs.on_assign(cons->cbs.opaque, parts->cnt);
        } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
                int lost = rd_kafka_assignment_lost(rk);
                log_parts(lost ? "lost" : "revoked", parts);
                if (cons->cbs.on_revoke) {
                        kinfer_topic_partition_t *tp = malloc((size_t)parts->cnt * sizeof(*tp) + 1);
                        for (int i = 0; tp && i < parts->cnt; i++)
                                tp[i] = (kinfer_topic_partition_t){parts->elems[i].topic,
                                                                   parts->elems[i].partition};
                        cons->cbs.on_revoke(cons->cbs.opaque, lost, tp, tp ? parts->cnt : -1);
                        free(tp);
                }
                if (!lost) {
                        rd_kafka_resp_err_t cerr =
                            commit_bounded(rk, revoke_commit_timeout_ms(cons));
                        if (cerr && cerr != RD_KAFKA_RESP_ERR__NO_OFFSET)
                                kinfer_log(KINFER_LOG_WARN, "CONSUMER", "commit on revoke failed: %s",
                                           rd_kafka_err2str(cerr));
                }
                if (coop)
                        error = rd_kafka_incremental_unassign(rk, parts);
                else
                        rerr = rd_kafka_assign(rk, NULL);
                update_assigned(cons);
                if (!coop)
                        cons->assigned = 0;
        } else {
                kinfer_log(KINFER_LOG_ERR, "CONSUMER", "rebalance error: %s", rd_kafka_err2str(err));
                rd_kafka_assign(rk, NULL);
                cons->assigned = 0;
        }
        if (error) {
                kinfer_log(KINFER_LOG_ERR, "CONSUMER", "incremental (un)assign failed: %s",
                           rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
        if (rerr)
                kinfer_log(KINFER_LOG_ERR, "CONSUMER", "(un)assign failed: %s", rd_kafka_err2str(rerr));
}

kinfer_consumer_t *kinfer_consumer_new(const kinfer_conf_t *conf, const kinfer_consumer_cbs_t *cbs,
                                       char *errstr, size_t errstr_size)
{
        kinfer_consumer_t *cons = calloc(1, sizeof(*cons));
        if (!cons) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        if (cbs)
                cons->cbs = *cbs;
        cons->commit_timeout_ms = (int)kinfer_conf_get_int(conf, "shutdown.timeout.ms");
        const char *defaults[] = {"group.id", kinfer_conf_get(conf, "kafka.group.id"),
                                  "enable.auto.commit", "true",
                                  "auto.commit.interval.ms", "1000",
                                  "auto.offset.reset", "earliest",
                                  "fetch.wait.max.ms", "10",
                                  /* librdkafka's 64 MiB prefetch queue was half of a worker's
                                   * peak RSS (docs/benchmarks.md, issue 12): 8 MiB is still
                                   * ~100 ms of input at 200k records/s of 420 bytes, and it
                                   * also caps fetch.max.bytes (librdkafka derives it) */
                                  "queued.max.messages.kbytes", "8192",
                                  "client.id", "kinfer-consumer",
                                  /* librdkafka >= 2.2: a full queue pauses a partition's fetch
                                   * for this long instead of a second (below: nudge_fetcher
                                   * does that job before 2.2); the list ends here before */
                                  rd_kafka_version() >= 0x02020000 ? "fetch.queue.backoff.ms"
                                                                   : NULL,
                                  "10",
                                  NULL};
        const char *forced[] = {"enable.auto.offset.store", "false", NULL};
        /* exactly-once: offsets are committed only inside the producer's transactions (txn.c),
         * and only committed input is read */
        const char *forced_eos[] = {"enable.auto.offset.store", "false", "enable.auto.commit", "false",
                                    "isolation.level", "read_committed", NULL};
        rd_kafka_conf_t *rkconf = kinfer_kafka_conf_new(conf, "consumer", defaults,
                                                        kinfer_kafka_exactly_once(conf) ? forced_eos
                                                                                        : forced,
                                                        errstr, errstr_size);
        if (!rkconf) {
                free(cons);
                return NULL;
        }
        rd_kafka_conf_set_rebalance_cb(rkconf, rebalance_cb);
        rd_kafka_conf_set_opaque(rkconf, cons);
        char e[512];
        cons->rk = rd_kafka_new(RD_KAFKA_CONSUMER, rkconf, e, sizeof(e));
        if (!cons->rk) {
                rd_kafka_conf_destroy(rkconf);
                free(cons);
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__KAFKA, "cannot create the consumer: %s", e);
                return NULL;
        }
        rd_kafka_poll_set_consumer(cons->rk);
        cons->nudge = rd_kafka_version() < 0x02020000;
        cons->nudge_gap_us = NUDGE_MIN_US;

        /* subscribe to input.topic (comma-separated) */
        const char *topics = kinfer_conf_get(conf, "input.topic");
        rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(4);
        for (const char *p = topics; *p;) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t)(comma - p) : strlen(p);
                char name[256];
                while (len && isspace((unsigned char)*p))
                        p++, len--;
                while (len && isspace((unsigned char)p[len - 1]))
                        len--;
                if (len && len < sizeof(name)) {
                        memcpy(name, p, len);
                        name[len] = '\0';
                        rd_kafka_topic_partition_list_add(sub, name, RD_KAFKA_PARTITION_UA);
                }
                p = comma ? comma + 1 : p + strlen(p);
        }
        rd_kafka_resp_err_t err = sub->cnt ? rd_kafka_subscribe(cons->rk, sub)
                                           : RD_KAFKA_RESP_ERR__INVALID_ARG;
        rd_kafka_topic_partition_list_destroy(sub);
        if (err) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__KAFKA, "subscribe to \"%s\": %s", topics,
                              rd_kafka_err2str(err));
                kinfer_consumer_destroy(cons);
                return NULL;
        }
        kinfer_log(KINFER_LOG_INFO, "CONSUMER", "subscribed topics=%s group=%s", topics,
                   kinfer_conf_get(conf, "kafka.group.id"));
        return cons;
}

kinfer_err_t kinfer_consumer_poll(kinfer_consumer_t *cons, int timeout_ms, kinfer_msg_t *msg,
                                  char *errstr, size_t errstr_size)
{
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(cons->rk, timeout_ms);
        if (!rkm) {
                if (cons->nudge && !cons->paused && cons->assigned > 0)
                        nudge_fetcher(cons);
                return KINFER_ERR__TIMEOUT;
        }
        cons->nudge_gap_us = NUDGE_MIN_US;
        if (rkm->err) {
                int fatal = rkm->err == RD_KAFKA_RESP_ERR__FATAL;
                if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        kinfer_log(fatal ? KINFER_LOG_ERR : KINFER_LOG_WARN, "CONSUMER",
                                   "topic=%s partition=%d error=%s",
                                   rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "-", (int)rkm->partition,
                                   rd_kafka_message_errstr(rkm));
                kinfer_err_t err = KINFER_ERR__TIMEOUT;
                if (fatal)
                        err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__KAFKA, "consumer: %s",
                                            rd_kafka_message_errstr(rkm));
                rd_kafka_message_destroy(rkm);
                return err;
        }
        rd_kafka_timestamp_type_t tstype;
        int64_t ts = rd_kafka_message_timestamp(rkm, &tstype);
        *msg = (kinfer_msg_t){
            .topic = rd_kafka_topic_name(rkm->rkt),
            .partition = rkm->partition,
            .offset = rkm->offset,
            .key = rkm->key,
            .key_len = rkm->key_len,
            .value = rkm->payload,
            .len = rkm->len,
            .timestamp_ms = tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : ts,
            .handle = rkm,
        };
        return KINFER_OK;
}

void kinfer_consumer_release(kinfer_consumer_t *cons, kinfer_msg_t *msg)
{
        if (msg->handle)
                rd_kafka_message_destroy(msg->handle);
        msg->handle = NULL;
}

void kinfer_consumer_rewind(kinfer_consumer_t *cons, kinfer_msg_t *msg)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, msg->topic, msg->partition)->offset = msg->offset;
        rd_kafka_error_t *error = rd_kafka_seek_partitions(cons->rk, l, 0 /* async */);
        if (error) {
                kinfer_log(KINFER_LOG_ERR, "CONSUMER", "rewind topic=%s partition=%d offset=%lld: %s",
                           msg->topic, (int)msg->partition, (long long)msg->offset,
                           rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
        rd_kafka_topic_partition_list_destroy(l);
        kinfer_consumer_release(cons, msg);
}

size_t kinfer_consumer_headers(const kinfer_msg_t *msg, kinfer_header_view_t *out, size_t max)
{
        rd_kafka_headers_t *hdrs = NULL;
        if (!msg->handle || rd_kafka_message_headers(msg->handle, &hdrs) || !hdrs)
                return 0;
        size_t n = 0;
        const char *name;
        const void *val;
        size_t size;
        while (n < max && !rd_kafka_header_get_all(hdrs, n, &name, &val, &size)) {
                out[n] = (kinfer_header_view_t){.key = name, .value = val, .value_len = size};
                n++;
        }
        size_t all = rd_kafka_header_cnt(hdrs);
        return all > n ? all : n;
}

kinfer_err_t kinfer_consumer_store(kinfer_consumer_t *cons, const char *topic, int32_t partition,
                                   int64_t next_offset)
{
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, topic, partition)->offset = next_offset;
        rd_kafka_resp_err_t err = rd_kafka_offsets_store(cons->rk, l);
        if (!err)
                err = l->elems[0].err;
        rd_kafka_topic_partition_list_destroy(l);
        if (err) {
                kinfer_log(KINFER_LOG_DEBUG, "CONSUMER", "store topic=%s partition=%d offset=%lld: %s",
                           topic, (int)partition, (long long)next_offset, rd_kafka_err2str(err));
                return KINFER_ERR__KAFKA;
        }
        return KINFER_OK;
}

kinfer_err_t kinfer_consumer_commit(kinfer_consumer_t *cons, int timeout_ms, char *errstr,
                                    size_t errstr_size)
{
        rd_kafka_resp_err_t err = commit_bounded(cons->rk, timeout_ms);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__KAFKA, "commit: %s",
                                     rd_kafka_err2str(err));
        return KINFER_OK;
}

void kinfer_consumer_set_paused(kinfer_consumer_t *cons, int paused)
{
        paused = !!paused;
        if (cons->paused == paused)
                return;
        cons->paused = paused;
        rd_kafka_topic_partition_list_t *cur = NULL;
        if (rd_kafka_assignment(cons->rk, &cur) || !cur)
                return;
        if (cur->cnt) {
                if (paused)
                        rd_kafka_pause_partitions(cons->rk, cur);
                else
                        rd_kafka_resume_partitions(cons->rk, cur);
        }
        rd_kafka_topic_partition_list_destroy(cur);
}

int kinfer_consumer_assigned(const kinfer_consumer_t *cons)
{
        return cons->assigned;
}

int kinfer_consumer_lag(kinfer_consumer_t *cons, kinfer_consumer_lag_t *out, int max)
{
        if (cons->lag_parts)
                rd_kafka_topic_partition_list_destroy(cons->lag_parts);
        cons->lag_parts = NULL;
        rd_kafka_topic_partition_list_t *cur = NULL;
        if (rd_kafka_assignment(cons->rk, &cur) || !cur)
                return 0;
        cons->lag_parts = cur;
        rd_kafka_position(cons->rk, cur); /* the application's position: last consumed + 1 */
        for (int i = 0; i < cur->cnt && i < max; i++) {
                const rd_kafka_topic_partition_t *tp = &cur->elems[i];
                int64_t lo = -1, hi = -1;
                out[i].topic = tp->topic;
                out[i].partition = tp->partition;
                out[i].lag = -1;
                if (rd_kafka_get_watermark_offsets(cons->rk, tp->topic, tp->partition, &lo, &hi) ||
                    hi < 0)
                        continue;
                if (tp->offset >= 0)
                        out[i].lag = hi > tp->offset ? hi - tp->offset : 0;
                else if (lo >= 0 && hi == lo)
                        out[i].lag = 0; /* nothing consumed because there is nothing */
        }
        return cur->cnt;
}

kinfer_err_t kinfer_consumer_close(kinfer_consumer_t *cons, int timeout_ms, char *errstr,
                                   size_t errstr_size)
{
        /* rd_kafka_consumer_close() waits for the group leave as long as librdkafka likes
         * (up to session.timeout.ms); the queue form lets us serve its rebalance events and
         * stop waiting at our deadline */
        int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
        cons->close_deadline_ms = deadline > 0 ? deadline : 1;
        rd_kafka_queue_t *q = rd_kafka_queue_new(cons->rk);
        if (!q)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "close: out of memory");
        rd_kafka_error_t *error = rd_kafka_consumer_close_queue(cons->rk, q);
        if (error) {
                kinfer_err_t e = kinfer_seterr(errstr, errstr_size, KINFER_ERR__KAFKA, "close: %s",
                                               rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
                rd_kafka_queue_destroy(q);
                cons->close_unfinished = 1;
                return e;
        }
        while (!rd_kafka_consumer_closed(cons->rk)) {
                int64_t left = deadline - mono_ms();
                if (left <= 0)
                        break;
                rd_kafka_event_t *ev = rd_kafka_queue_poll(q, left < 100 ? (int)left : 100);
                if (!ev)
                        continue;
                if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
                        rebalance_cb(cons->rk, rd_kafka_event_error(ev),
                                     rd_kafka_event_topic_partition_list(ev), cons);
                rd_kafka_event_destroy(ev);
        }
        int closed = rd_kafka_consumer_closed(cons->rk);
        rd_kafka_queue_destroy(q);
        if (!closed) {
                cons->close_unfinished = 1;
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__TIMEOUT,
                                     "close: the group leave did not finish within %d ms (the "
                                     "group rebalances after session.timeout.ms instead)",
                                     timeout_ms > 0 ? timeout_ms : 0);
        }
        return KINFER_OK;
}

void kinfer_consumer_destroy(kinfer_consumer_t *cons)
{
        if (!cons)
                return;
        if (cons->nudge)
                kinfer_log(KINFER_LOG_INFO, "CONSUMER", "fetch_nudges=%llu (librdkafka %s)",
                           (unsigned long long)cons->nudges, rd_kafka_version_str());
        else
                kinfer_log(KINFER_LOG_INFO, "CONSUMER",
                           "fetch_nudges=off (librdkafka %s: fetch.queue.backoff.ms)",
                           rd_kafka_version_str());
        /* after a close that gave up, rd_kafka_destroy() would wait for the leave itself */
        if (cons->rk)
                rd_kafka_destroy_flags(cons->rk, cons->close_unfinished
                                                     ? RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE : 0);
        if (cons->lag_parts)
                rd_kafka_topic_partition_list_destroy(cons->lag_parts);
        free(cons);
}

struct rd_kafka_s *kinfer_consumer_rk_(struct kinfer_consumer_s *cons)
{
        return cons->rk;
}
