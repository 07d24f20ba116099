/* SPDX-License-Identifier: Apache-2.0 */
/* test_worker_api.c -- the worker's library interface as the registry uses it, against a
 * running dev broker: kinfer_worker_run() on its own thread; kinfer_worker_swap_model() from
 * this thread while records flow (a NULL model refused; two hand-overs in a row, the second
 * replacing the first); the slot's record of what the worker applied (one generation per
 * swap); the metrics callback (windows hold every record, label counts sum to records,
 * ordered percentiles); kinfer_worker_model_info(); a clean stop. The wrapper test_swap.sh checks the results' versions afterwards.
 *
 *   test_worker_api BROKERS MODEL_A MODEL_B SECONDS   (input topic "in", output "out";
 *   SECONDS bounds each wait for records of the next version)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kinfer/core/conf.h"
#include "kinfer/model/model.h"
#include "kinfer/worker/worker.h"
#include "test.h"

static atomic_int windows;
static atomic_llong window_records, label_sum_mismatch, bad_latency;
static atomic_llong records_by_version[4]; /* from the windows: versions 1..3, 0 = other */
static kinfer_err_t run_err = KINFER_ERR__STATE;
static char run_errstr[512];

static void on_metrics(const kinfer_metrics_window_t *m, void *opaque)
{
        int32_t version = m->model ? m->model->version : 0;
        atomic_fetch_add(&windows, 1);
        atomic_fetch_add(&window_records, m->records);
        atomic_fetch_add(&records_by_version[version >= 1 && version <= 3 ? version : 0], m->records);
        int64_t sum = 0;
        for (int32_t i = 0; i < m->n_labels; i++)
                sum += m->label_counts[i];
        if (sum != m->records)
                atomic_fetch_add(&label_sum_mismatch, 1);
        if (m->records && !(m->latency_p50_ms <= m->latency_p95_ms && m->latency_p95_ms <= m->latency_p99_ms))
                atomic_fetch_add(&bad_latency, 1);
        fprintf(stderr, "  # window model=%s v%d records=%lld batches=%lld p99=%.2f labels=%d conf=%.3f\n",
                m->model ? m->model->name : "-", (int)version, (long long)m->records,
                (long long)m->batches, m->latency_p99_ms, (int)m->n_labels,
                kinfer_metrics_window_mean_confidence(m));
}

/* The generation of the worker's applied record (one per model applied). */
static uint64_t applied_generation(kinfer_worker_t *w)
{
        kinfer_model_record_t *rec = kinfer_model_slot_applied(kinfer_worker_model_slot(w));
        uint64_t g = rec ? rec->generation : 0;
        kinfer_model_record_release(rec);
        return g;
}

static void *run_thread(void *arg)
{
        run_err = kinfer_worker_run(arg, run_errstr, sizeof(run_errstr));
        return NULL;
}

static const char *brokers, *path_a, *path_b;
static int seconds;

/* Wait (up to the time limit) until the metrics windows show records classified by version v. */
static int wait_version(int v)
{
        for (int i = 0; i < seconds * 100; i++) {
                if (atomic_load(&records_by_version[v]) > 0)
                        return 1;
                usleep(10000);
        }
        return 0;
}

static void test_swap_under_load(void)
{
        char errstr[512];
        kinfer_conf_t *conf = kinfer_conf_new(errstr, sizeof(errstr));
        TEST_ASSERT(conf, "kinfer_conf_new: %s", errstr);
        if (!conf)
                return;
        const char *kv[][2] = {
            {"kafka.bootstrap.servers", brokers}, {"input.topic", "in"}, {"output.topic", "out"},
            {"output.format", "json"}, {"model.path", path_a}, {"model.name", "sections"},
            {"model.version", "1"}, {"metrics.interval.ms", "300"}, {"kafka.group.id", "api"},
            {"batch.max.records", "64"}, {"batch.max.wait.ms", "5"}, {"worker.id", "api"},
            {"kafka.consumer.session.timeout.ms", "6000"}, {"kafka.consumer.heartbeat.interval.ms", "500"},
        };
        for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
                TEST_ASSERT(!kinfer_conf_set(conf, kv[i][0], kv[i][1], "test", errstr, sizeof(errstr)),
                            "%s", errstr);
        kinfer_worker_t *w = kinfer_worker_new(conf, errstr, sizeof(errstr));
        TEST_ASSERT(w, "kinfer_worker_new: %s", errstr);
        if (!w) {
                kinfer_conf_destroy(conf);
                return;
        }
        kinfer_worker_set_metrics_cb(w, on_metrics, NULL);
        uint64_t gen0 = applied_generation(w);
        char name[128], sha_a[65], sha[65];
        int32_t version = -1;
        TEST_ASSERT(!kinfer_worker_model_info(w, name, sizeof(name), &version, sha_a) &&
                        !strcmp(name, "sections") && version == 1, "model_info at start: %s v%d", name, version);
        TEST_ASSERT(kinfer_worker_swap_model(w, NULL, "x", 9, errstr, sizeof(errstr)) == KINFER_ERR__INVALID_ARG,
                    "a NULL model is refused");

        pthread_t th;
        if (pthread_create(&th, NULL, run_thread, w)) {
                TEST_ASSERT(0, "cannot start the worker thread");
                kinfer_worker_destroy(w);
                return;
        }
        TEST_ASSERT(wait_version(1), "no record classified by version 1");
        /* version 2 = model B, handed over from this thread */
        kinfer_model_t *b = kinfer_model_load_file(path_b, errstr, sizeof(errstr));
        TEST_ASSERT(b, "load B: %s", errstr);
        if (b)
                TEST_ASSERT(!kinfer_worker_swap_model(w, b, "sections", 2, errstr, sizeof(errstr)), "%s", errstr);
        TEST_ASSERT(wait_version(2), "no record classified by version 2");
        TEST_ASSERT(!kinfer_worker_model_info(w, name, sizeof(name), &version, sha) && version == 2 &&
                        strcmp(sha, sha_a) != 0, "model_info after the first swap: v%d", version);
        /* version 3 = model A again; two hand-overs in a row: the second replaces the first */
        kinfer_model_t *a1 = kinfer_model_load_file(path_a, errstr, sizeof(errstr));
        kinfer_model_t *a2 = kinfer_model_load_file(path_a, errstr, sizeof(errstr));
        if (a1 && a2) {
                kinfer_worker_swap_model(w, a1, "sections", 99, errstr, sizeof(errstr));
                kinfer_worker_swap_model(w, a2, "sections", 3, errstr, sizeof(errstr));
        }
        TEST_ASSERT(wait_version(3), "no record classified by version 3");
        TEST_ASSERT(!kinfer_worker_model_info(w, name, sizeof(name), &version, sha) && version == 3 &&
                        !strcmp(sha, sha_a), "model_info after the second swap: v%d", version);
        kinfer_worker_stop(w);
        pthread_join(th, NULL);
        TEST_ASSERT(run_err == KINFER_OK, "run: %s", run_errstr);
        /* two swaps, or three when the replaced hand-over was applied before the second came */
        uint64_t swaps = applied_generation(w) - gen0;
        TEST_ASSERT(gen0 == 1 && swaps >= 2 && swaps <= 3, "swaps applied %llu (from generation %llu)",
                    (unsigned long long)swaps, (unsigned long long)gen0);
        TEST_ASSERT(atomic_load(&windows) >= 3, "metrics windows: %d", atomic_load(&windows));
        int64_t records = 0;
        kinfer_worker_totals(w, &records, NULL, NULL);
        TEST_ASSERT(records > 0 && atomic_load(&window_records) == records,
                    "windows hold every record: %lld vs %lld", (long long)atomic_load(&window_records),
                    (long long)records);
        TEST_ASSERT(!atomic_load(&label_sum_mismatch), "label counts sum to records in every window");
        TEST_ASSERT(!atomic_load(&bad_latency), "p50 <= p95 <= p99 in every window");
        printf("records %lld\n", (long long)records);
        kinfer_worker_destroy(w);
}

int main(int argc, char **argv)
{
        if (argc != 5) {
                fprintf(stderr, "usage: %s BROKERS MODEL_A MODEL_B SECONDS\n", argv[0]);
                return 2;
        }
        brokers = argv[1];
        path_a = argv[2];
        path_b = argv[3];
        seconds = atoi(argv[4]);
        TEST_RUN(test_swap_under_load);
        return TEST_DONE();
}
