/* SPDX-License-Identifier: Apache-2.0 */
/* test_model_slot.c -- the worker's model mailbox and applied record (model_slot.h), and the
 * metrics window (metrics.h), without Kafka or PostgreSQL: a newer post replaces one not yet
 * taken; take + publish stamp a generation; a reader's record outlives a later swap; a poster
 * thread racing the taker leaves the last post applied; a window counts, closes, copies and
 * becomes a registry row with the label counts as JSON. Leaks and use-after-free show under
 * the sanitizer build. */
#include <pthread.h>

#include "kinfer/worker/metrics.h"
#include "kinfer/worker/model_slot.h"
#include "model_util.h"
#include "test.h"

static char errstr[256];

static kinfer_model_t *tiny(uint64_t seed, int32_t labels)
{
        size_t len;
        uint8_t *bytes = tm_build(seed, labels, 0, 0, 0, &len);
        kinfer_model_t *m = bytes ? kinfer_model_load_mem(bytes, len, errstr, sizeof(errstr)) : NULL;
        free(bytes);
        TEST_ASSERT(m, "tiny model: %s", errstr);
        return m;
}

static void test_post_take_publish(void)
{
        kinfer_model_slot_t *slot = kinfer_model_slot_new(errstr, sizeof(errstr));
        TEST_ASSERT(slot, "slot: %s", errstr);
        if (!slot)
                return;
        kinfer_model_record_t *rec = NULL;
        TEST_ASSERT(!kinfer_model_slot_pending(slot) && !kinfer_model_slot_take(slot, &rec) && !rec,
                    "a new slot is empty");
        TEST_ASSERT(!kinfer_model_slot_applied(slot), "nothing applied yet");
        TEST_ASSERT(kinfer_model_slot_post(slot, NULL, 0, "x", 1, NULL, NULL, errstr,
                                           sizeof(errstr)) == KINFER_ERR__INVALID_ARG,
                    "a NULL model is refused");

        kinfer_model_t *a = tiny(1, 4), *b = tiny(2, 3);
        if (!a || !b)
                goto out;
        char sha_b[65];
        snprintf(sha_b, sizeof(sha_b), "%s", kinfer_model_sha256_hex(b));
        uint64_t seq_a = 0, seq_b = 0;
        TEST_ASSERT(!kinfer_model_slot_post(slot, a, 7, "first", 1, "dep", &seq_a, errstr,
                                            sizeof(errstr)),
                    "post a: %s", errstr);
        /* b replaces a before the worker took it: a is released (the sanitizer sees a leak
         * otherwise) */
        TEST_ASSERT(!kinfer_model_slot_post(slot, b, 8, NULL, 2, "dep", &seq_b, errstr,
                                            sizeof(errstr)),
                    "post b: %s", errstr);
        TEST_ASSERT(seq_a == 1 && seq_b == 2 && kinfer_model_slot_pending(slot), "seq %llu %llu",
                    (unsigned long long)seq_a, (unsigned long long)seq_b);
        kinfer_model_t *got = kinfer_model_slot_take(slot, &rec);
        TEST_ASSERT(got == b && rec && !kinfer_model_slot_pending(slot), "take gives the newer post");
        if (!got || !rec)
                goto out;
        TEST_ASSERT(rec->id == 8 && rec->version == 2 && rec->post_seq == 2 &&
                        !strcmp(rec->name, "tiny") && !strcmp(rec->deployment, "dep") &&
                        !strcmp(rec->sha256, sha_b) && rec->n_labels == 3 &&
                        !strcmp(rec->labels[2], "gamma") && rec->generation == 0,
                    "record of b: %s v%d labels %d", rec->name, (int)rec->version,
                    (int)rec->n_labels);
        kinfer_model_slot_publish(slot, rec);
        kinfer_model_record_t *seen = kinfer_model_slot_applied(slot);
        TEST_ASSERT(seen && seen->generation == 1 && seen->applied_at_ms > 0 &&
                        seen->applied_mono_us > 0 && seen->version == 2,
                    "published: generation %llu", seen ? (unsigned long long)seen->generation : 0ULL);

        /* a second swap: the reader's record stays valid after it is replaced */
        kinfer_model_t *c = tiny(3, 2);
        if (c)
                kinfer_model_slot_post(slot, c, 0, "third", 3, NULL, NULL, errstr, sizeof(errstr));
        kinfer_model_record_t *rec_c;
        kinfer_model_t *got_c = kinfer_model_slot_take(slot, &rec_c);
        if (got_c) {
                kinfer_model_slot_publish(slot, rec_c);
                kinfer_model_release(got_c);
        }
        kinfer_model_record_t *now = kinfer_model_slot_applied(slot);
        TEST_ASSERT(now && now->generation == 2 && !strcmp(now->name, "third") &&
                        now->deployment[0] == '\0',
                    "second swap");
        TEST_ASSERT(seen && !strcmp(seen->name, "tiny") && seen->version == 2,
                    "an old record stays readable while referenced");
        kinfer_model_record_release(now);
        kinfer_model_record_release(seen);
        kinfer_model_release(got);
        /* a post left in the slot is released with it */
        kinfer_model_slot_post(slot, tiny(4, 2), 0, NULL, 4, NULL, NULL, errstr, sizeof(errstr));
out:
        kinfer_model_slot_destroy(slot);
}

/* ---- a poster racing the taker ---------------------------------------------------------- */

#define RACE_POSTS 200
static kinfer_model_t *race_models[4];

static void *poster(void *arg)
{
        kinfer_model_slot_t *slot = arg;
        char e[128];
        for (int i = 1; i <= RACE_POSTS; i++)
                kinfer_model_slot_post(slot, kinfer_model_keep(race_models[i % 4]), 0, NULL, i,
                                       NULL, NULL, e, sizeof(e));
        return NULL;
}

static void test_race(void)
{
        kinfer_model_slot_t *slot = kinfer_model_slot_new(errstr, sizeof(errstr));
        for (int i = 0; i < 4; i++)
                race_models[i] = tiny(10 + (uint64_t)i, 2 + i);
        if (!slot || !race_models[3])
                goto out;
        pthread_t th;
        if (pthread_create(&th, NULL, poster, slot)) {
                TEST_ASSERT(0, "cannot start the poster");
                goto out;
        }
        kinfer_model_t *cur = NULL;
        int32_t last = 0, backwards = 0;
        uint64_t applied = 0;
        for (int spins = 0; spins < 1000000 && last != RACE_POSTS; spins++) {
                kinfer_model_record_t *rec;
                kinfer_model_t *m = kinfer_model_slot_take(slot, &rec);
                if (!m)
                        continue;
                if (rec->version < last)
                        backwards++;
                last = rec->version;
                kinfer_model_slot_publish(slot, rec);
                kinfer_model_release(cur);
                cur = m;
                applied++;
        }
        pthread_join(th, NULL);
        kinfer_model_record_t *rec;
        kinfer_model_t *m = kinfer_model_slot_take(slot, &rec);
        if (m) {
                last = rec->version;
                kinfer_model_slot_publish(slot, rec);
                kinfer_model_release(cur);
                cur = m;
                applied++;
        }
        kinfer_model_record_t *fin = kinfer_model_slot_applied(slot);
        TEST_SAY("%d posts, %llu applied", RACE_POSTS, (unsigned long long)applied);
        TEST_ASSERT(fin && fin->version == RACE_POSTS && fin->generation == applied && !backwards,
                    "the last post is applied, versions never go back (v%d, %d backwards)",
                    fin ? (int)fin->version : -1, (int)backwards);
        TEST_ASSERT(cur && !strcmp(kinfer_model_sha256_hex(cur), fin->sha256),
                    "the record names the model applied");
        kinfer_model_record_release(fin);
        kinfer_model_release(cur);
out:
        kinfer_model_slot_destroy(slot);
        for (int i = 0; i < 4; i++)
                kinfer_model_release(race_models[i]);
}

/* ---- the metrics window ------------------------------------------------------------------ */

static void test_window(void)
{
        kinfer_model_t *m = tiny(5, 4);
        kinfer_model_record_t *rec =
            m ? kinfer_model_record_new(m, 3, "sections", 9, "dep", errstr, sizeof(errstr)) : NULL;
        TEST_ASSERT(rec, "record: %s", errstr);
        if (!rec) {
                kinfer_model_release(m);
                return;
        }
        kinfer_metrics_window_t win = {0};
        TEST_ASSERT(!kinfer_metrics_window_start(&win, rec, errstr, sizeof(errstr)), "start: %s",
                    errstr);
        TEST_ASSERT(win.model == rec && win.n_labels == 4 && win.latency && win.start_us > 0,
                    "open window");
        kinfer_prediction_t p[4] = {0};
        int32_t top[4] = {0, 2, 2, 3};
        for (int i = 0; i < 4; i++) {
                p[i].n = 1;
                p[i].label[0] = top[i];
                p[i].prob[0] = 0.5f;
        }
        kinfer_metrics_window_count(&win, p, 4);
        kinfer_metrics_window_count(&win, p + 1, 2);
        kinfer_prediction_t unclassified = {0}; /* n = 0: a no_features dead letter */
        kinfer_metrics_window_count(&win, &unclassified, 1);
        for (int i = 0; i < 100; i++)
                kinfer_latency_add(win.latency, i < 50 ? 1000 : 20000); /* 1 ms, 20 ms */
        kinfer_metrics_window_close(&win);
        TEST_ASSERT(!win.latency && win.end_us >= win.start_us, "closed");
        TEST_ASSERT(win.records == 6 && win.batches == 3 &&
                        kinfer_metrics_window_mean_batch(&win) == 2.0 &&
                        kinfer_metrics_window_mean_confidence(&win) == 0.5,
                    "counters: %lld records %lld batches", (long long)win.records,
                    (long long)win.batches);
        TEST_ASSERT(win.latency_p50_ms > 0.9 && win.latency_p50_ms < 1.2 &&
                        win.latency_p95_ms > 18 && win.latency_p95_ms < 23 &&
                        win.latency_p99_ms >= win.latency_p95_ms,
                    "percentiles %.2f %.2f %.2f", win.latency_p50_ms, win.latency_p95_ms,
                    win.latency_p99_ms);

        kinfer_metrics_window_t copy;
        TEST_ASSERT(!kinfer_metrics_window_copy(&copy, &win), "copy");
        kinfer_metrics_window_term(&win); /* the copy owns its counts and its reference */
        kinfer_model_record_release(rec);
        kinfer_model_release(m);
        kinfer_registry_metrics_t row;
        kinfer_buf_t json = {0};
        TEST_ASSERT(!kinfer_metrics_window_row(&copy, "w1", "dep", &row, &json), "row");
        TEST_ASSERT(!strcmp(row.label_counts_json, "{\"alpha\":1,\"gamma\":4,\"delta\":1}"),
                    "label counts: %s", row.label_counts_json);
        TEST_ASSERT(!strcmp(row.model_name, "sections") && row.model_version == 9 &&
                        strlen(row.model_sha256) == 64 && !strcmp(row.worker_id, "w1") &&
                        !strcmp(row.deployment, "dep") && row.records == 6 &&
                        row.window_start_us == copy.start_us,
                    "row: %s v%d", row.model_name, (int)row.model_version);
        kinfer_buf_free(&json);
        kinfer_metrics_window_term(&copy);

        /* before any model: an empty window, an empty object */
        kinfer_metrics_window_t none = {0};
        kinfer_metrics_window_start(&none, NULL, errstr, sizeof(errstr));
        kinfer_metrics_window_close(&none);
        TEST_ASSERT(!kinfer_metrics_window_row(&none, "w1", "dep", &row, &json) &&
                        !strcmp(row.label_counts_json, "{}") && !row.model_name,
                    "no model: %s", row.label_counts_json);
        kinfer_buf_free(&json);
        kinfer_metrics_window_term(&none);
}

int main(void)
{
        TEST_RUN(test_post_take_publish);
        TEST_RUN(test_race);
        TEST_RUN(test_window);
        return TEST_DONE();
}
