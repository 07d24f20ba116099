/* SPDX-License-Identifier: Apache-2.0 */
/* test_prom.c -- the /metrics exposition (worker/prom.c) from a synthetic worker state: values
 * (counters added up over publishes, dead letters under their reason, cumulative histogram
 * buckets with _sum and _count, labels of two models mapped to one series each, the lag series
 * and their bound), label values escaped (backslash, quote, line feed, ill-formed UTF-8), the
 * label series' bound, `promtool check metrics` on the result (promtool must be installed:
 * deploy/install-test-deps.sh), and a renderer thread racing the worker's publishes (run under
 * ThreadSanitizer by tests/run.sh). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kinfer/codec/codec.h"
#include "kinfer/model/model.h"
#include "kinfer/worker/prom.h"
#include "model_util.h"
#include "test.h"

static char errstr[256];

static kinfer_model_t *tiny(uint64_t seed, const char *const *labels, int32_t n)
{
        size_t len;
        uint8_t *bytes = tm_build_ex(seed, n, 0, 0, 0, labels, TM_POISON_NONE, &len);
        kinfer_model_t *m = bytes ? kinfer_model_load_mem(bytes, len, errstr, sizeof(errstr)) : NULL;
        free(bytes);
        TEST_ASSERT(m, "tiny model: %s", errstr);
        return m;
}

/* Post @p m into @p slot and apply it as the worker would; @returns the applied record (one
 * reference). */
static kinfer_model_record_t *apply(kinfer_model_slot_t *slot, kinfer_model_t *m, const char *name,
                                    int32_t version)
{
        TEST_ASSERT(!kinfer_model_slot_post(slot, m, 0, name, version, NULL, NULL, errstr,
                                            sizeof(errstr)), "post: %s", errstr);
        kinfer_model_record_t *rec = NULL;
        kinfer_model_t *took = kinfer_model_slot_take(slot, &rec);
        TEST_ASSERT(took && rec, "take");
        kinfer_model_slot_publish(slot, kinfer_model_record_keep(rec));
        kinfer_model_release(took);
        return rec;
}

static int has_line(const char *text, const char *line)
{
        size_t n = strlen(line);
        for (const char *p = text; (p = strstr(p, line)); p += n)
                if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
                        return 1;
        return 0;
}

#define EXPECT_LINE(text, line) TEST_ASSERT(has_line(text, line), "no line \"%s\"", line)

/* promtool check metrics on @p text: @returns its exit status, its output in @p log */
static int promtool(const char *text, char *log, size_t log_size)
{
        char path[] = "/tmp/kinfer-test-prom.XXXXXX";
        int fd = mkstemp(path);
        if (fd < 0)
                return -1;
        size_t len = strlen(text);
        int wrote = write(fd, text, len) == (ssize_t)len;
        close(fd);
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
        FILE *p = wrote ? popen(cmd, "r") : NULL;
        size_t n = 0;
        log[0] = '\0';
        if (p) {
                n = fread(log, 1, log_size - 1, p);
                log[n] = '\0';
        }
        int st = p ? pclose(p) : -1;
        unlink(path);
        return st;
}

static void test_exposition(void)
{
        kinfer_model_slot_t *slot = kinfer_model_slot_new(errstr, sizeof(errstr));
        kinfer_prom_t *prom = kinfer_prom_new(slot, errstr, sizeof(errstr));
        TEST_ASSERT(slot && prom, "new: %s", errstr);
        if (!slot || !prom)
                return;
        kinfer_buf_t out = {0};

        /* before anything: every fixed series is there, no model, no lag */
        TEST_ASSERT(!kinfer_prom_render(prom, &out, errstr, sizeof(errstr)), "%s", errstr);
        EXPECT_LINE(out.data, "kinfer_records_in_total 0");
        EXPECT_LINE(out.data, "kinfer_dead_letters_total{reason=\"undecodable\"} 0");
        EXPECT_LINE(out.data, "kinfer_registry_configured 0");
        TEST_ASSERT(!strstr(out.data, "kinfer_model_info{"), "a model before any was applied");
        TEST_ASSERT(strstr(out.data, "kinfer_build_info{version=\""), "build info");

        static const char *const labels_a[] = {"plain", "quo\"te", "back\\slash"};
        static const char *const labels_b[] = {"back\\slash", "new"};
        kinfer_model_record_t *ra = apply(slot, tiny(1, labels_a, 3), "na\"me\\1", 3);

        kinfer_prom_delta_t d = {0};
        d.records_in = 10;
        d.results_out = 7;
        d.dead_letters[KINFER_DLQ_UNDECODABLE] = 2;
        d.dead_letters[KINFER_DLQ_NO_FEATURES] = 1;
        kinfer_prom_delta_latency(&d, 500);     /* 0.0005 s: le 0.001 */
        kinfer_prom_delta_latency(&d, 3000);    /* 0.003: le 0.005 */
        kinfer_prom_delta_latency(&d, -5);      /* 0: le 0.001 */
        kinfer_prom_delta_latency(&d, 500000000); /* 500 s: +Inf only */
        kinfer_prom_gauges_t g = {.in_flight = 4, .bytes_in_flight = 1234, .backpressure = 2,
                                  .ready = 1, .partitions = 3};
        kinfer_prom_publish(prom, &d, &g);
        TEST_ASSERT(d.records_in == 0 && d.latency_count == 0, "publish zeroes the delta");
        d.records_in = 5; /* a second publish adds up */
        d.dead_letters[KINFER_DLQ_UNDECODABLE] = 1;
        d.swaps = 1;
        kinfer_prom_publish(prom, &d, &g);

        /* a batch of 3 (labels 0, 1, 1) and one of 1 not classified (n = 0) */
        kinfer_prediction_t p[4] = {{.n = 1, .label = {0}}, {.n = 1, .label = {1}},
                                    {.n = 2, .label = {1, 0}}, {.n = 0}};
        kinfer_prom_observe_batch(prom, ra, p, 3, 2000);   /* 0.002 s: le 0.0025 */
        kinfer_prom_observe_batch(prom, ra, p + 3, 1, 50); /* 0.00005: le 0.0001 */
        /* a second model: its "back\slash" is the same series, "new" a new one */
        kinfer_model_record_t *rb = apply(slot, tiny(2, labels_b, 2), "second", 4);
        kinfer_prediction_t q[2] = {{.n = 1, .label = {0}}, {.n = 1, .label = {1}}};
        kinfer_prom_observe_batch(prom, rb, q, 2, 20000000); /* 20 s: +Inf */

        kinfer_prom_lag_t lag[2] = {{"in\"put", 0, 42}, {"input", 1, -1}};
        kinfer_prom_set_lag(prom, lag, 2, 2);

        kinfer_buf_reset(&out);
        TEST_ASSERT(!kinfer_prom_render(prom, &out, errstr, sizeof(errstr)), "%s", errstr);
        const char *t = out.data;
        EXPECT_LINE(t, "kinfer_records_in_total 15");
        EXPECT_LINE(t, "kinfer_results_out_total 7");
        EXPECT_LINE(t, "kinfer_dead_letters_total{reason=\"undecodable\"} 3");
        EXPECT_LINE(t, "kinfer_dead_letters_total{reason=\"no_features\"} 1");
        EXPECT_LINE(t, "kinfer_dead_letters_total{reason=\"oversized\"} 0");
        EXPECT_LINE(t, "kinfer_model_swaps_total 1");
        EXPECT_LINE(t, "kinfer_batches_total 3");
        EXPECT_LINE(t, "kinfer_batch_size_records_bucket{le=\"1\"} 1");
        EXPECT_LINE(t, "kinfer_batch_size_records_bucket{le=\"2\"} 2");
        EXPECT_LINE(t, "kinfer_batch_size_records_bucket{le=\"4\"} 3");
        EXPECT_LINE(t, "kinfer_batch_size_records_bucket{le=\"+Inf\"} 3");
        EXPECT_LINE(t, "kinfer_batch_size_records_sum 6");
        EXPECT_LINE(t, "kinfer_batch_size_records_count 3");
        EXPECT_LINE(t, "kinfer_classify_duration_seconds_bucket{le=\"0.0001\"} 1");
        EXPECT_LINE(t, "kinfer_classify_duration_seconds_bucket{le=\"0.001\"} 1");
        EXPECT_LINE(t, "kinfer_classify_duration_seconds_bucket{le=\"0.0025\"} 2");
        EXPECT_LINE(t, "kinfer_classify_duration_seconds_bucket{le=\"10\"} 2");
        EXPECT_LINE(t, "kinfer_classify_duration_seconds_bucket{le=\"+Inf\"} 3");
        EXPECT_LINE(t, "kinfer_classify_duration_seconds_count 3");
        EXPECT_LINE(t, "kinfer_record_latency_seconds_bucket{le=\"0.001\"} 2");
        EXPECT_LINE(t, "kinfer_record_latency_seconds_bucket{le=\"0.0025\"} 2");
        EXPECT_LINE(t, "kinfer_record_latency_seconds_bucket{le=\"0.005\"} 3");
        EXPECT_LINE(t, "kinfer_record_latency_seconds_bucket{le=\"120\"} 3");
        EXPECT_LINE(t, "kinfer_record_latency_seconds_bucket{le=\"+Inf\"} 4");
        const char *sum = strstr(t, "\nkinfer_record_latency_seconds_sum ");
        double v = sum ? strtod(sum + strlen("\nkinfer_record_latency_seconds_sum "), NULL) : -1;
        TEST_ASSERT(v > 500.0034 && v < 500.0036, "latency sum %.17g, want 500.0035", v);
        EXPECT_LINE(t, "kinfer_record_latency_seconds_count 4");
        EXPECT_LINE(t, "kinfer_records_in_flight 4");
        EXPECT_LINE(t, "kinfer_producer_in_flight_bytes 1234");
        EXPECT_LINE(t, "kinfer_backpressure_state 2");
        EXPECT_LINE(t, "kinfer_ready 1");
        EXPECT_LINE(t, "kinfer_partitions_assigned 3");
        /* the model applied last, its name escaped */
        char line[256];
        snprintf(line, sizeof(line), "kinfer_model_info{name=\"second\",version=\"4\",sha256=\"%s\"} 1",
                 rb->sha256);
        EXPECT_LINE(t, line);
        TEST_ASSERT(!strstr(t, "na\\\"me"), "the first model is not current any more");
        /* labels: escaped, one series each across the two models */
        EXPECT_LINE(t, "kinfer_results_by_label_total{label=\"plain\"} 1");
        EXPECT_LINE(t, "kinfer_results_by_label_total{label=\"quo\\\"te\"} 2");
        EXPECT_LINE(t, "kinfer_results_by_label_total{label=\"back\\\\slash\"} 1");
        EXPECT_LINE(t, "kinfer_results_by_label_total{label=\"new\"} 1");
        EXPECT_LINE(t, "kinfer_results_label_overflow_total 0");
        /* lag: the known one, escaped; the unknown one absent */
        EXPECT_LINE(t, "kinfer_consumer_lag_records{topic=\"in\\\"put\",partition=\"0\"} 42");
        TEST_ASSERT(!strstr(t, "partition=\"1\""), "an unknown lag is not rendered");
        EXPECT_LINE(t, "kinfer_consumer_lag_partitions_omitted 0");
        EXPECT_LINE(t, "kinfer_registry_configured 0");
        EXPECT_LINE(t, "kinfer_registry_connected 0");

        char log[4096];
        int st = promtool(t, log, sizeof(log));
        TEST_ASSERT(st == 0, "promtool check metrics exit %d (is promtool installed? "
                    "deploy/install-test-deps.sh): %s", st, log);
        if (st)
                fprintf(stderr, "%s\n", t);

        kinfer_model_record_release(ra);
        kinfer_model_record_release(rb);
        kinfer_buf_free(&out);
        kinfer_prom_destroy(prom);
        kinfer_model_slot_destroy(slot);
}

static void test_escape(void)
{
        kinfer_buf_t b = {0};
        const char in[] = "a\\b\"c\nd\xff" "e\xe2\x82" "f\xc3\xa9";
        kinfer_prom_label_value(&b, in, sizeof(in) - 1);
        kinfer_buf_putc(&b, '\0');
        const char want[] = "a\\\\b\\\"c\\nd\xef\xbf\xbd" "e\xef\xbf\xbd" "f\xc3\xa9";
        TEST_ASSERT(b.data && !strcmp(b.data, want), "escaped: \"%s\"", b.data ? b.data : "");
        kinfer_buf_free(&b);
}

/* More labels than KINFER_PROM_LABELS_MAX over many models: the series stop there, the rest
 * counts as overflow, and the whole still passes promtool. */
static void test_label_bound(void)
{
        kinfer_model_slot_t *slot = kinfer_model_slot_new(errstr, sizeof(errstr));
        kinfer_prom_t *prom = kinfer_prom_new(slot, errstr, sizeof(errstr));
        TEST_ASSERT(slot && prom, "new: %s", errstr);
        if (!slot || !prom)
                return;
        enum { PER = 64, MODELS = KINFER_PROM_LABELS_MAX / PER + 2 }; /* model_util.h: up to 64 labels */
        static char names[PER][32];
        const char *np[PER];
        kinfer_prediction_t *p = calloc(PER, sizeof(*p));
        for (int m = 0; m < MODELS && p; m++) {
                for (int i = 0; i < PER; i++) {
                        snprintf(names[i], sizeof(names[i]), "m%d_l%d", m, i);
                        np[i] = names[i];
                        p[i] = (kinfer_prediction_t){.n = 1, .label = {i}};
                }
                kinfer_model_record_t *rec = apply(slot, tiny((uint64_t)m + 10, np, PER), "many", m);
                kinfer_prom_observe_batch(prom, rec, p, PER, 10);
                kinfer_model_record_release(rec);
        }
        kinfer_buf_t out = {0};
        TEST_ASSERT(!kinfer_prom_render(prom, &out, errstr, sizeof(errstr)), "%s", errstr);
        size_t series = 0;
        for (const char *s = out.data; (s = strstr(s, "\nkinfer_results_by_label_total{")); s++)
                series++;
        TEST_ASSERT(series == KINFER_PROM_LABELS_MAX, "%zu label series", series);
        snprintf(errstr, sizeof(errstr), "kinfer_results_label_overflow_total %d",
                 MODELS * PER - KINFER_PROM_LABELS_MAX);
        EXPECT_LINE(out.data, errstr);
        char log[4096];
        int st = promtool(out.data, log, sizeof(log));
        TEST_ASSERT(st == 0, "promtool check metrics exit %d: %s", st, log);
        free(p);
        kinfer_buf_free(&out);
        kinfer_prom_destroy(prom);
        kinfer_model_slot_destroy(slot);
}

/* The worker thread publishes while another thread renders: totals add up (and TSan sees no
 * race). */
static atomic_int render_stop;
static void *renderer(void *arg)
{
        kinfer_buf_t b = {0};
        char e[128];
        long renders = 0;
        while (!atomic_load(&render_stop)) {
                kinfer_buf_reset(&b);
                kinfer_prom_render(arg, &b, e, sizeof(e));
                renders++;
        }
        kinfer_buf_free(&b);
        return (void *)renders;
}

static void test_threads(void)
{
        kinfer_model_slot_t *slot = kinfer_model_slot_new(errstr, sizeof(errstr));
        kinfer_prom_t *prom = kinfer_prom_new(slot, errstr, sizeof(errstr));
        static const char *const labels[] = {"x", "y"};
        kinfer_model_record_t *rec = apply(slot, tiny(3, labels, 2), NULL, 1);
        pthread_t th;
        TEST_ASSERT(!pthread_create(&th, NULL, renderer, prom), "thread");
        kinfer_prom_delta_t d = {0};
        kinfer_prediction_t p[2] = {{.n = 1, .label = {0}}, {.n = 1, .label = {1}}};
        for (int i = 0; i < 20000; i++) {
                d.records_in += 2;
                kinfer_prom_delta_latency(&d, i);
                kinfer_prom_observe_batch(prom, rec, p, 2, i);
                if (i % 10 == 0) {
                        kinfer_prom_gauges_t g = {.in_flight = i};
                        kinfer_prom_publish(prom, &d, &g);
                }
        }
        kinfer_prom_publish(prom, &d, NULL);
        atomic_store(&render_stop, 1);
        void *renders;
        pthread_join(th, &renders);
        TEST_SAY("%ld renders during 20000 batches", (long)renders);
        kinfer_buf_t out = {0};
        kinfer_prom_render(prom, &out, errstr, sizeof(errstr));
        EXPECT_LINE(out.data, "kinfer_records_in_total 40000");
        EXPECT_LINE(out.data, "kinfer_batches_total 20000");
        EXPECT_LINE(out.data, "kinfer_record_latency_seconds_count 20000");
        EXPECT_LINE(out.data, "kinfer_results_by_label_total{label=\"x\"} 20000");
        kinfer_buf_free(&out);
        kinfer_model_record_release(rec);
        kinfer_prom_destroy(prom);
        kinfer_model_slot_destroy(slot);
}

int main(void)
{
        TEST_RUN(test_escape);
        TEST_RUN(test_exposition);
        TEST_RUN(test_label_bound);
        TEST_RUN(test_threads);
        return TEST_DONE();
}
