/* SPDX-License-Identifier: Apache-2.0 */
/* test_model_watch.c -- the worker's registry thread against a real PostgreSQL, without
 * Kafka (the test plays the worker: it applies what the watch posts into the mailbox and
 * publishes the record): initial load, swap on activation (with the notify -> post and
 * notify -> applied times), the workers row showing what was applied, a corrupt active
 * artifact refused while the old model stays, and a PostgreSQL outage (a private cluster
 * stopped and restarted with tests/pg/cluster.sh) during which metrics are buffered in the
 * bounded ring and written after the reconnect. */
#include <pthread.h>

#include "kinfer/worker/model_watch.h"
#include "pg_test_util.h"

static char errstr[512];

/* The worker's side, played by the test thread: the mailbox, and the model applied from it. */
static kinfer_model_slot_t *slot;
static kinfer_model_t *cur_model;
static int n_swaps; /* posts applied since the initial one */

/* As the worker does between two batches: apply the post, if any. @returns 1 if it did. */
static int apply_post(void)
{
        kinfer_model_record_t *rec;
        kinfer_model_t *model = kinfer_model_slot_take(slot, &rec);
        if (!model)
                return 0;
        kinfer_model_release(cur_model);
        cur_model = model;
        kinfer_model_slot_publish(slot, rec);
        n_swaps++;
        return 1;
}

/* The version the "worker" applied last, from the slot's record (0: none). */
static int32_t current_version(void)
{
        kinfer_model_record_t *rec = kinfer_model_slot_applied(slot);
        int32_t v = rec ? rec->version : 0;
        kinfer_model_record_release(rec);
        return v;
}

/* A fresh mailbox (NULL: only drop the old one). */
static void reset_worker(int fresh)
{
        kinfer_model_slot_destroy(slot);
        kinfer_model_release(cur_model);
        slot = NULL;
        cur_model = NULL;
        n_swaps = 0;
        if (fresh) {
                slot = kinfer_model_slot_new(errstr, sizeof(errstr));
                TEST_ASSERT(slot, "slot: %s", errstr);
        }
}

/* The watch posted its initial model into the mailbox: check it is version @p want, verified
 * (its sha256 is the registered one), and apply it. */
static void apply_initial(int32_t want)
{
        kinfer_model_record_t *rec;
        kinfer_model_t *model = kinfer_model_slot_take(slot, &rec);
        TEST_ASSERT(model && rec->version == want && rec->post_seq == 1 &&
                        !strcmp(rec->sha256, kinfer_model_sha256_hex(model)),
                    "initial post: v%d", rec ? rec->version : -1);
        if (!model)
                return;
        cur_model = model;
        kinfer_model_slot_publish(slot, rec);
}

/* Apply posts (as the worker would, between batches) until current_version() == @p want, or
 * the test's patience runs out. The swap's speed is a benchmark's business (the log's
 * notify_to_applied_ms, docs/benchmarks.md), not this test's. */
static int wait_version(int32_t want)
{
        int ok;
        TEST_WAIT_UNTIL(ok, apply_post(), current_version() == want, TEST_PATIENCE_MS);
        return ok;
}

/* The value of @p sql, polled until it equals @p want or the test's patience runs out (the
 * watch writes the workers row from its own thread, at its own time). @returns 1 if equal. */
static int wait_sql(kinfer_registry_t *reg, const char *sql, const char *want, char *v,
                    size_t size)
{
        int ok;
        TEST_WAIT_UNTIL(ok, pgt_exec(reg, sql, v, size), strcmp(v, want) == 0, TEST_PATIENCE_MS);
        return ok;
}

static void test_swap_and_corrupt(void)
{
        char conninfo[128], s[256], v[512];
        kinfer_registry_t *reg = pgt_registry("watch", conninfo, sizeof(conninfo));
        TEST_ASSERT(reg, "registry");
        if (!reg)
                return;
        TEST_ASSERT(pgt_push_versions(reg, "w", 2, 500, errstr, sizeof(errstr)) == 0, "push: %s", errstr);

        kinfer_model_watch_conf_t conf = {
            .conninfo = conninfo, .deployment = "dep", .heartbeat_ms = 200};
        reset_worker(1);
        kinfer_model_watch_t *w = kinfer_model_watch_new(&conf, slot, errstr, sizeof(errstr));
        TEST_ASSERT(!w && strstr(errstr, "dep"), "no active model must fail, naming it: %s",
                    errstr);
        TEST_ASSERT(!kinfer_model_slot_pending(slot), "nothing posted by a failed start");
        kinfer_model_watch_destroy(w, 0);

        kinfer_registry_activate(reg, "dep", "w", 1, NULL, s, sizeof(s), errstr, sizeof(errstr));
        w = kinfer_model_watch_new(&conf, slot, errstr, sizeof(errstr));
        TEST_ASSERT(w, "watch: %s", errstr);
        if (!w)
                goto out;
        apply_initial(1);
        TEST_ASSERT(kinfer_model_watch_start(w, errstr, sizeof(errstr)) == KINFER_OK,
                    "start: %s", errstr);

        TEST_ASSERT(kinfer_registry_activate(reg, "dep", "w", 2, "test", s, sizeof(s), errstr,
                                             sizeof(errstr)) == KINFER_OK,
                    "activate: %s", errstr);
        TEST_ASSERT(wait_version(2), "no swap to v2 (at v%d)", current_version());
        kinfer_model_watch_stats_t st;
        int ok;
        kinfer_model_watch_stats(w, &st);
        TEST_SAY("notify -> posted: %.1f ms", st.last_swap_ms);
        /* counted before the worker could take it (a reader who saw it applied sees it) */
        TEST_ASSERT(st.swaps == 1 && st.last_swap_ms >= 0, "swaps %lld in %.1f ms",
                    (long long)st.swaps, st.last_swap_ms);
        TEST_WAIT_UNTIL(ok, kinfer_model_watch_stats(w, &st),
                        st.version == 2 && st.last_applied_ms > 0, TEST_PATIENCE_MS);
        TEST_SAY("notify -> applied: %.1f ms", st.last_applied_ms);
        TEST_ASSERT(ok, "the watch reads what was applied: v%d after %.1f ms", st.version,
                    st.last_applied_ms);
        TEST_ASSERT(wait_sql(reg,
                             "SELECT model_name || ':' || model_version || ' ' || status FROM "
                             "kinfer.workers",
                             "w:2 running", v, sizeof(v)),
                    "workers row: %s", v);

        /* a NOTIFY that changed nothing (anyone may send one): one look at the deployment,
         * no fetch, no verification */
        int64_t fetches0 = st.fetches, notes0 = st.notifications;
        pgt_exec(reg, "NOTIFY kinfer_deployment, 'dep'", NULL, 0);
        TEST_WAIT_UNTIL(ok, kinfer_model_watch_stats(w, &st), st.notifications != notes0,
                        TEST_PATIENCE_MS);
        TEST_ASSERT(st.notifications == notes0 + 1 && st.fetches == fetches0,
                    "forged NOTIFY: %lld notifications, %lld fetches (before %lld)",
                    (long long)(st.notifications - notes0), (long long)st.fetches,
                    (long long)fetches0);

        /* bytes that the registry takes (META and labels intact, sha256 recomputed) but whose
         * content checksum fails: refused by the watch, the old model stays */
        TEST_ASSERT(pgt_exec(reg, PGT_REGISTER_CORRUPT("junk", "w", 1), NULL, 0) == 0,
                    "register junk");
        kinfer_registry_activate(reg, "dep", "junk", 1, "oops", s, sizeof(s), errstr,
                                 sizeof(errstr));
        TEST_WAIT_UNTIL(ok, kinfer_model_watch_stats(w, &st), st.load_failures, TEST_PATIENCE_MS);
        TEST_ASSERT(st.load_failures == 1, "load failures %lld", (long long)st.load_failures);
        TEST_ASSERT(!apply_post() && current_version() == 2 && n_swaps == 1,
                    "the old model must stay, nothing posted (v%d)", current_version());
        TEST_WAIT_UNTIL(ok,
                        pgt_exec(reg,
                                 "SELECT model_version || ' ' || coalesce(last_error, '-') FROM "
                                 "kinfer.workers",
                                 v, sizeof(v)),
                        strstr(v, "2 model junk:1 refused") != NULL, TEST_PATIENCE_MS);
        TEST_ASSERT(ok, "last_error recorded: %s", v);

        /* forged NOTIFYs while the refused model is still active: no refetch, no re-verify */
        kinfer_model_watch_stats(w, &st);
        fetches0 = st.fetches;
        notes0 = st.notifications;
        pgt_exec(reg, "NOTIFY kinfer_deployment, 'dep'; NOTIFY kinfer_deployment, 'dep'", NULL, 0);
        pgt_exec(reg, "NOTIFY kinfer_deployment, 'dep'", NULL, 0);
        TEST_WAIT_UNTIL(ok, kinfer_model_watch_stats(w, &st), st.notifications >= notes0 + 2,
                        TEST_PATIENCE_MS);
        TEST_ASSERT(st.notifications >= notes0 + 2 && st.fetches == fetches0 &&
                        st.load_failures == 1,
                    "forged NOTIFY refetched a refused model: %lld fetches, %lld failures",
                    (long long)(st.fetches - fetches0), (long long)st.load_failures);

        /* and the next good activation goes through (the error is cleared) */
        kinfer_registry_activate(reg, "dep", "w", 1, "back", s, sizeof(s), errstr, sizeof(errstr));
        TEST_ASSERT(wait_version(1), "no swap back to v1 (at v%d)", current_version());
        TEST_ASSERT(wait_sql(reg, "SELECT coalesce(last_error, '-') FROM kinfer.workers", "-", v,
                             sizeof(v)),
                    "last_error not cleared: %s", v);

        /* the watch's connection dies and an activation happens before it is back: its
         * NOTIFY is lost, so the watch must look at the active model when it reconnects */
        TEST_ASSERT(pgt_exec(reg,
                             "BEGIN; SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                             "WHERE datname = current_database() AND pid <> pg_backend_pid(); "
                             "SELECT kinfer.activate('dep', 'w', 2, 'while away'); COMMIT",
                             NULL, 0) == 0,
                    "terminate + activate");
        TEST_ASSERT(wait_version(2), "activation missed while disconnected (at v%d)",
                    current_version());
        kinfer_model_watch_stats(w, &st);
        TEST_ASSERT(st.reconnects >= 1, "reconnects %lld", (long long)st.reconnects);

        kinfer_model_watch_destroy(w, 1000);
        pgt_exec(reg, "SELECT status FROM kinfer.workers", v, sizeof(v));
        TEST_ASSERT(!strcmp(v, "stopped"), "status after destroy: %s", v);
out:
        reset_worker(0);
        kinfer_registry_destroy(reg);
        pgt_db_drop("watch");
}

/* The previous model is verified at start, so the first rollback needs no fetch. */
static void test_prefetch_previous(void)
{
        char conninfo[128], s[256];
        kinfer_registry_t *reg = pgt_registry("prefetch", conninfo, sizeof(conninfo));
        TEST_ASSERT(reg, "registry");
        if (!reg)
                return;
        TEST_ASSERT(pgt_push_versions(reg, "p", 2, 500, errstr, sizeof(errstr)) == 0, "push: %s", errstr);
        kinfer_registry_activate(reg, "dep", "p", 1, NULL, s, sizeof(s), errstr, sizeof(errstr));
        kinfer_registry_activate(reg, "dep", "p", 2, NULL, s, sizeof(s), errstr, sizeof(errstr));
        kinfer_model_watch_conf_t conf = {.conninfo = conninfo, .deployment = "dep"};
        reset_worker(1);
        kinfer_model_watch_t *w = kinfer_model_watch_new(&conf, slot, errstr, sizeof(errstr));
        TEST_ASSERT(w, "watch: %s", errstr);
        if (!w)
                goto out;
        apply_initial(2);
        TEST_ASSERT(kinfer_model_watch_start(w, errstr, sizeof(errstr)) == KINFER_OK, "start: %s",
                    errstr);
        kinfer_model_watch_stats_t st;
        int ok;
        TEST_WAIT_UNTIL(ok, kinfer_model_watch_stats(w, &st), st.prefetched, TEST_PATIENCE_MS);
        TEST_ASSERT(st.prefetched == 1, "previous model not prefetched");
        kinfer_registry_rollback(reg, "dep", NULL, s, sizeof(s), errstr, sizeof(errstr));
        TEST_ASSERT(wait_version(1), "no rollback swap (v%d)", current_version());
        kinfer_model_watch_stats(w, &st);
        TEST_ASSERT(st.swaps == 1 && st.cache_hits == 1, "swaps %lld cache hits %lld",
                    (long long)st.swaps, (long long)st.cache_hits);
        kinfer_model_watch_destroy(w, 1000);
out:
        reset_worker(0);
        kinfer_registry_destroy(reg);
        pgt_db_drop("prefetch");
}

/* ---- outage --------------------------------------------------------------------------------- */

static int cluster(const char *cmd, const char *dir, char *out, size_t size)
{
        char path[2048], line[4096];
        snprintf(line, sizeof(line), "bash %s %s %s",
                 test_src_path("tests/pg/cluster.sh", path, sizeof(path)), cmd, dir);
        FILE *fp = popen(line, "r");
        if (!fp)
                return -1;
        size_t n = out ? fread(out, 1, size - 1, fp) : 0;
        if (out)
                out[n] = '\0';
        else
                while (fgets(line, sizeof(line), fp))
                        ;
        return pclose(fp) == 0 ? 0 : -1;
}

static void window(kinfer_model_watch_t *w, int i)
{
        int64_t counts[1] = {1};
        kinfer_metrics_window_t m = {.start_us = 1000000LL * (1000 + i),
                                     .end_us = 1000000LL * (1001 + i),
                                     .records = 10 + i,
                                     .batches = 1,
                                     .dlq = 0,
                                     .conf_sum = 0.9 * (10 + i),
                                     .latency_p50_ms = 1,
                                     .latency_p95_ms = 2,
                                     .latency_p99_ms = 3,
                                     .n_labels = 1,
                                     .label_counts = counts,
                                     .model = kinfer_model_slot_applied(slot)};
        kinfer_model_watch_metrics(w, &m);
        kinfer_model_record_release(m.model);
}

static void test_outage(void)
{
        char dir[] = "/tmp/kinfer-outage-XXXXXX", env[1024], conninfo[256], s[256], v[128];
        int n;
        TEST_ASSERT(mkdtemp(dir), "mkdtemp");
        if (cluster("start", dir, env, sizeof(env))) {
                TEST_ASSERT(0, "cannot start a private cluster in %s", dir);
                return;
        }
        const char *port = strstr(env, "PGPORT=");
        TEST_ASSERT(port, "no port in: %s", env);
        if (!port)
                goto out;
        snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d user=postgres dbname=postgres",
                 atoi(port + 7));
        kinfer_registry_t *reg = kinfer_registry_new(conninfo, errstr, sizeof(errstr));
        TEST_ASSERT(reg, "connect: %s", errstr);
        if (!reg)
                goto out;
        TEST_ASSERT(kinfer_migrate_run(reg, pgt_migrations_dir(), &n, errstr, sizeof(errstr)) ==
                        KINFER_OK,
                    "migrate: %s", errstr);
        TEST_ASSERT(pgt_push_versions(reg, "o", 2, 500, errstr, sizeof(errstr)) == 0, "push: %s", errstr);
        kinfer_registry_activate(reg, "dep", "o", 1, NULL, s, sizeof(s), errstr, sizeof(errstr));

        /* the ring holds 4 windows by its byte bound (window() makes 1-label windows), not
         * by its count (64): the bound that binds is the one in bytes */
        kinfer_metrics_window_t one = {.n_labels = 1};
        kinfer_model_watch_conf_t conf = {.conninfo = conninfo,
                                          .deployment = "dep",
                                          .heartbeat_ms = 200,
                                          .backoff_max_ms = 400,
                                          .metrics_capacity = 64,
                                          .metrics_max_bytes = 4 * kinfer_metrics_window_bytes(&one)};
        reset_worker(1);
        kinfer_model_watch_t *w = kinfer_model_watch_new(&conf, slot, errstr, sizeof(errstr));
        TEST_ASSERT(w, "watch: %s", errstr);
        if (!w) {
                kinfer_registry_destroy(reg);
                goto out;
        }
        apply_initial(1);
        TEST_ASSERT(kinfer_model_watch_start(w, errstr, sizeof(errstr)) == KINFER_OK, "start: %s",
                    errstr);
        for (int i = 0; i < 2; i++)
                window(w, i);
        kinfer_model_watch_stats_t st;
        int ok;
        TEST_WAIT_UNTIL(ok, kinfer_model_watch_stats(w, &st), st.metrics_written == 2,
                        TEST_PATIENCE_MS);
        TEST_ASSERT(st.metrics_written == 2, "written before the outage: %lld",
                    (long long)st.metrics_written);

        TEST_ASSERT(cluster("stop", dir, NULL, 0) == 0, "stop");
        kinfer_registry_destroy(reg); /* its connection died with the server */
        reg = NULL;
        /* the watch notices (its socket closes) */
        TEST_WAIT_UNTIL(ok, kinfer_model_watch_stats(w, &st), !st.connected, TEST_PATIENCE_MS);
        TEST_ASSERT(!st.connected, "the watch did not notice the outage");
        /* 6 windows into a ring of 4: 2 dropped (that queuing never blocks on the server is
         * test_frozen's business: a stopped server refuses at once) */
        for (int i = 2; i < 8; i++)
                window(w, i);
        test_sleep_ms(600); /* reconnect attempts go on; none may drain the ring */
        kinfer_model_watch_stats(w, &st);
        TEST_ASSERT(st.metrics_buffered == 4 && st.metrics_dropped == 2 &&
                        st.metrics_buffered_bytes == (int64_t)conf.metrics_max_bytes,
                    "buffered %lld (%lld bytes) dropped %lld", (long long)st.metrics_buffered,
                    (long long)st.metrics_buffered_bytes, (long long)st.metrics_dropped);
        TEST_ASSERT(current_version() == 1, "model lost during the outage");

        TEST_ASSERT(cluster("restart-stopped", dir, NULL, 0) == 0, "restart");
        TEST_WAIT_UNTIL(ok, kinfer_model_watch_stats(w, &st),
                        st.connected && st.metrics_buffered == 0 && st.metrics_written == 6,
                        TEST_PATIENCE_MS);
        TEST_ASSERT(st.connected && st.reconnects >= 1, "not reconnected");
        TEST_ASSERT(st.metrics_written == 6 && st.metrics_buffered == 0,
                    "after the outage: written %lld buffered %lld", (long long)st.metrics_written,
                    (long long)st.metrics_buffered);
        reg = kinfer_registry_new(conninfo, errstr, sizeof(errstr));
        TEST_ASSERT(reg, "reconnect: %s", errstr);
        if (reg) {
                pgt_exec(reg,
                         "SELECT count(*) || ' ' || min(records) || ' ' || max(records) FROM "
                         "kinfer.metrics_windows",
                         v, sizeof(v));
                TEST_ASSERT(!strcmp(v, "6 10 17"), "windows in the table (count min max): %s", v);
                /* LISTEN survived the reconnect */
                kinfer_registry_activate(reg, "dep", "o", 2, NULL, s, sizeof(s), errstr,
                                         sizeof(errstr));
                TEST_ASSERT(wait_version(2), "no swap after the reconnect (v%d)",
                            current_version());
        }
        kinfer_model_watch_destroy(w, 1000);
        kinfer_registry_destroy(reg);
out:
        reset_worker(0);
        cluster("stop", dir, NULL, 0);
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
                TEST_SAY("could not remove %s", dir);
}

/* ---- a frozen server -------------------------------------------------------------------------- */

/* PostgreSQL stopped with SIGSTOP (its kernel still ACKs TCP, so nothing on the socket says it
 * is gone) while the watch has metrics to write: queuing them never blocks, the worker keeps
 * its model, and destroy returns within its budget (it used to join a thread blocked in a
 * query for as long as the server stayed frozen). */
static void test_frozen(void)
{
        char dir[] = "/tmp/kinfer-frozen-XXXXXX", env[1024], conninfo[256], s[256];
        int n, frozen = 0;
        TEST_ASSERT(mkdtemp(dir), "mkdtemp");
        if (cluster("start", dir, env, sizeof(env))) {
                TEST_ASSERT(0, "cannot start a private cluster in %s", dir);
                return;
        }
        const char *port = strstr(env, "PGPORT=");
        kinfer_registry_t *reg = NULL;
        kinfer_model_watch_t *w = NULL;
        TEST_ASSERT(port, "no port in: %s", env);
        if (!port)
                goto out;
        snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d user=postgres dbname=postgres",
                 atoi(port + 7));
        reg = kinfer_registry_new(conninfo, errstr, sizeof(errstr));
        TEST_ASSERT(reg, "connect: %s", errstr);
        if (!reg)
                goto out;
        TEST_ASSERT(kinfer_migrate_run(reg, pgt_migrations_dir(), &n, errstr, sizeof(errstr)) ==
                        KINFER_OK,
                    "migrate: %s", errstr);
        TEST_ASSERT(pgt_push_versions(reg, "f", 1, 700, errstr, sizeof(errstr)) == 0, "push: %s",
                    errstr);
        kinfer_registry_activate(reg, "dep", "f", 1, NULL, s, sizeof(s), errstr, sizeof(errstr));
        kinfer_model_watch_conf_t conf = {.conninfo = conninfo, .deployment = "dep",
                                          .heartbeat_ms = 100};
        reset_worker(1);
        w = kinfer_model_watch_new(&conf, slot, errstr, sizeof(errstr));
        TEST_ASSERT(w, "watch: %s", errstr);
        if (!w)
                goto out;
        apply_initial(1);
        TEST_ASSERT(kinfer_model_watch_start(w, errstr, sizeof(errstr)) == KINFER_OK, "start: %s",
                    errstr);

        TEST_ASSERT(cluster("freeze", dir, NULL, 0) == 0, "freeze");
        frozen = 1;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < 3; i++)
                window(w, i);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        /* blocked, it would wait as long as the server stays frozen: the bound only absorbs a
         * loaded machine */
        TEST_ASSERT(ms < 10000, "queuing metrics blocked for %.1f ms on a frozen server", ms);
        TEST_ASSERT(!apply_post() && current_version() == 1, "the model must stay (v%d)",
                    current_version());
        /* heartbeats every 100 ms: the thread is now waiting on the frozen server */
        test_sleep_ms(300);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        kinfer_model_watch_destroy(w, 1000);
        w = NULL;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        TEST_SAY("destroy with a 1000 ms budget on a frozen server: %.0f ms", ms);
        /* the guarantee is the budget; the slack only absorbs a loaded machine */
        TEST_ASSERT(ms < 1000 + 4000, "destroy took %.0f ms with a 1000 ms budget", ms);
out:
        if (frozen)
                TEST_ASSERT(cluster("thaw", dir, NULL, 0) == 0, "thaw");
        kinfer_model_watch_destroy(w, 0);
        kinfer_registry_destroy(reg);
        reset_worker(0);
        cluster("stop", dir, NULL, 0);
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
                TEST_SAY("could not remove %s", dir);
}

int main(void)
{
        TEST_RUN(test_swap_and_corrupt);
        TEST_RUN(test_prefetch_previous);
        TEST_RUN(test_outage);
        TEST_RUN(test_frozen);
        kinfer_registry_destroy(pgt_admin);
        return TEST_DONE();
}
