/* SPDX-License-Identifier: Apache-2.0 */
/* test_drift.c -- the drift signal's parts without a broker: the PSI arithmetic on known
 * distributions (equal, a hand-computed pair, the epsilon of an empty bin, empty sides), the
 * window assessment (fewer than drift.min.records: no PSI; a training-data reference: no
 * confidence PSI; above drift.psi.warn: an alert), the model loader's validation of META
 * "drift_reference" (a valid one read back; wrong label count, bins, negative values, a zero
 * sum, a non-array refused), kinfer_ref_bin's edges, and the /metrics drift gauges (present
 * only once assessed, cleared by a new model, `promtool check metrics` passes). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kinfer/model/model_write.h"
#include "kinfer/worker/drift.h"
#include "kinfer/worker/prom.h"
#include "model_util.h"
#include "test.h"

static char errstr[512];

#define NEAR(a, b) (fabs((a) - (b)) < 1e-9)

static void test_psi(void)
{
        int64_t live[2] = {50, 50};
        double ref[2] = {50, 50};
        TEST_ASSERT(NEAR(kinfer_drift_psi(live, ref, 2), 0), "equal distributions");
        /* p = (0.5, 0.5), q = (0.25, 0.75): 0.25 ln 2 + (-0.25) ln(2/3) */
        double q[2] = {1, 3};
        double want = 0.25 * log(2.0) - 0.25 * log(0.5 / 0.75);
        double got = kinfer_drift_psi(live, q, 2);
        TEST_ASSERT(NEAR(got, want), "psi %.12f, want %.12f", got, want);
        /* proportions scale away: counts x10 give the same PSI */
        int64_t live10[2] = {500, 500};
        TEST_ASSERT(NEAR(kinfer_drift_psi(live10, q, 2), want), "scale");
        /* an empty live bin counts as KINFER_DRIFT_EPSILON, not as -infinity */
        int64_t one_sided[2] = {100, 0};
        double half[2] = {1, 1};
        double e = KINFER_DRIFT_EPSILON;
        want = (1 - 0.5) * log(1 / 0.5) + (e - 0.5) * log(e / 0.5);
        got = kinfer_drift_psi(one_sided, half, 2);
        TEST_ASSERT(isfinite(got) && NEAR(got, want), "epsilon: %.12f, want %.12f", got, want);
        /* an empty reference bin likewise */
        int64_t both[2] = {1, 1};
        double ref_one[2] = {1, 0};
        want = (0.5 - 1) * log(0.5 / 1) + (0.5 - e) * log(0.5 / e);
        got = kinfer_drift_psi(both, ref_one, 2);
        TEST_ASSERT(NEAR(got, want), "empty reference bin: %.12f, want %.12f", got, want);
        /* nothing on a side: no PSI */
        int64_t zero[2] = {0, 0};
        double zref[2] = {0, 0};
        TEST_ASSERT(kinfer_drift_psi(zero, half, 2) < 0, "empty live side");
        TEST_ASSERT(kinfer_drift_psi(live, zref, 2) < 0, "empty reference");
        TEST_ASSERT(kinfer_drift_psi(live, half, 0) < 0, "no bins");
}

static void test_bins(void)
{
        TEST_ASSERT(kinfer_ref_bin(0) == 0 && kinfer_ref_bin(-1) == 0 && kinfer_ref_bin(NAN) == 0,
                    "low edge");
        TEST_ASSERT(kinfer_ref_bin(0.0999) == 0 && kinfer_ref_bin(0.1) == 1, "0.1 starts bin 1");
        TEST_ASSERT(kinfer_ref_bin(0.95) == KINFER_REF_BINS - 1, "0.95");
        TEST_ASSERT(kinfer_ref_bin(1.0) == KINFER_REF_BINS - 1 && kinfer_ref_bin(7) == KINFER_REF_BINS - 1,
                    "1.0 and above in the last bin");
}

/* A 3-label model whose META is the tiny model's with "drift_reference" = @p ref_json (NULL:
 * none); @returns it, or NULL with the loader's message in errstr. */
static kinfer_model_t *with_reference(const char *ref_json)
{
        size_t len;
        uint8_t *bytes = tm_build(7, 3, 0, 0, 0, &len);
        kinfer_model_t *base = bytes ? kinfer_model_load_mem(bytes, len, errstr, sizeof(errstr)) : NULL;
        free(bytes);
        TEST_ASSERT(base, "tiny model: %s", errstr);
        if (!base)
                return NULL;
        if (!ref_json)
                return base;
        char *meta = kinfer_meta_set(kinfer_model_meta_json(base), "drift_reference", ref_json);
        kinfer_model_t *m = NULL;
        if (!meta) {
                /* not JSON: splice it in by hand, so the loader sees it */
                const char *mj = kinfer_model_meta_json(base);
                size_t n = strlen(mj);
                meta = malloc(n + strlen(ref_json) + 32);
                memcpy(meta, mj, n);
                while (n && meta[n - 1] != '}')
                        n--;
                sprintf(meta + n - 1, ", \"drift_reference\": %s}", ref_json);
        }
        kinfer_model_builder_t *mb = kinfer_model_builder_new();
        uint32_t skip = KINFER_T_META;
        if (mb && !kinfer_model_builder_copy(mb, base, &skip, 1) &&
            !kinfer_model_builder_add(mb, KINFER_T_META, KINFER_DTYPE_BYTES, 1, (uint32_t)strlen(meta),
                                      meta, strlen(meta)))
                m = kinfer_model_builder_load(mb, errstr, sizeof(errstr));
        kinfer_model_builder_destroy(mb);
        kinfer_model_release(base);
        free(meta);
        return m;
}

#define REF_OK "{\"data\": \"dev\", \"file\": \"dev.tsv\", \"records\": 100, \"bins\": 10, " \
               "\"labels\": [50, 30, 20], \"confidence\": [0, 0, 0, 0, 10, 10, 10, 20, 20, 30]}"

static void test_reference_load(void)
{
        kinfer_model_t *m = with_reference(REF_OK);
        TEST_ASSERT(m, "valid reference refused: %s", errstr);
        const kinfer_model_reference_t *r = m ? kinfer_model_reference(m) : NULL;
        TEST_ASSERT(r, "no reference read");
        if (r) {
                TEST_ASSERT(!strcmp(r->data, "dev") && !strcmp(r->file, "dev.tsv") && r->records == 100,
                            "data %s file %s records %lld", r->data, r->file, (long long)r->records);
                TEST_ASSERT(r->n_labels == 3 && r->labels[0] == 50 && r->labels[2] == 20, "labels");
                TEST_ASSERT(r->confidence[9] == 30 && r->confidence[0] == 0, "confidence");
        }
        kinfer_model_release(m);
        m = with_reference(NULL);
        TEST_ASSERT(m && !kinfer_model_reference(m), "a model without one has none");
        kinfer_model_release(m);

        static const struct {
                const char *json, *why;
        } bad[] = {
            {"{\"records\": 1, \"bins\": 10, \"labels\": [1, 2], \"confidence\": [1,0,0,0,0,0,0,0,0,0]}",
             "labels has 2 values, expected 3"},
            {"{\"records\": 1, \"bins\": 20, \"labels\": [1, 2, 3], \"confidence\": [1,0,0,0,0,0,0,0,0,0]}",
             "bins must be 10"},
            {"{\"records\": 1, \"labels\": [1, 2, 3], \"confidence\": [1,0,0,0,0,0,0,0,0,0]}",
             "bins must be 10"},
            {"{\"records\": 1, \"bins\": 10, \"labels\": [1, 2, 3], \"confidence\": [1,0,0,0,0,0,0,0,0]}",
             "confidence has 9 values"},
            {"{\"records\": 1, \"bins\": 10, \"labels\": [1, -2, 3], \"confidence\": [1,0,0,0,0,0,0,0,0,0]}",
             "labels[1] is not a number"},
            {"{\"records\": 1, \"bins\": 10, \"labels\": [1, \"x\", 3], \"confidence\": [1,0,0,0,0,0,0,0,0,0]}",
             "labels[1] is not a number"},
            {"{\"records\": 1, \"bins\": 10, \"labels\": [0, 0, 0], \"confidence\": [1,0,0,0,0,0,0,0,0,0]}",
             "labels sums to 0"},
            {"{\"records\": 1, \"bins\": 10, \"labels\": [1, 2, 3], \"confidence\": [1e300,0,0,0,0,0,0,0,0,0]}",
             "confidence[0] is not a number"},
            {"{\"records\": -1, \"bins\": 10, \"labels\": [1, 2, 3], \"confidence\": [1,0,0,0,0,0,0,0,0,0]}",
             "records is not an integer"},
            {"{\"records\": 1, \"bins\": 10, \"labels\": {}, \"confidence\": [1,0,0,0,0,0,0,0,0,0]}",
             "labels is missing or not an array"},
            {"[1, 2]", "drift_reference is not an object"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                errstr[0] = '\0';
                m = with_reference(bad[i].json);
                TEST_ASSERT(!m && strstr(errstr, bad[i].why), "case %zu accepted or wrong message: %s",
                            i, errstr);
                kinfer_model_release(m);
        }
}

/* A closed window of @p model's record with @p n records: label counts @p lab, scores in
 * bin @p bin. */
static void fill(kinfer_metrics_window_t *win, kinfer_model_record_t *rec, const int64_t *lab,
                 int bin)
{
        TEST_ASSERT(!kinfer_metrics_window_start(win, rec, errstr, sizeof(errstr)), "%s", errstr);
        int64_t n = 0;
        for (int32_t i = 0; i < win->n_labels; i++)
                n += win->label_counts[i] = lab[i];
        win->conf_hist[bin] = n;
        win->records = n;
        kinfer_metrics_window_close(win);
}

static void test_assess(void)
{
        kinfer_drift_conf_t dc = {.psi_warn = 0.2, .min_records = 100};
        kinfer_model_t *m = with_reference(REF_OK);
        kinfer_model_record_t *rec = m ? kinfer_model_record_new(m, 0, "m", 1, "d", errstr, sizeof(errstr)) : NULL;
        TEST_ASSERT(rec && rec->has_ref, "record with reference: %s", errstr);
        if (!rec) {
                kinfer_model_release(m);
                return;
        }
        kinfer_metrics_window_t win = {0};
        /* like the reference: assessed, below */
        int64_t like[3] = {500, 300, 200};
        fill(&win, rec, like, 9);
        win.conf_hist[9] = 0; /* scores spread like the reference's */
        win.conf_hist[4] = win.conf_hist[5] = win.conf_hist[6] = 100;
        win.conf_hist[7] = win.conf_hist[8] = 200;
        win.conf_hist[9] = 300;
        TEST_ASSERT(kinfer_drift_assess(&dc, &win) == 0 && win.psi_assessed, "like the reference");
        TEST_ASSERT(NEAR(win.psi_labels, 0) && NEAR(win.psi_confidence, 0), "psi %g %g",
                    win.psi_labels, win.psi_confidence);
        /* all in one label and the lowest bin: assessed, above */
        int64_t skew[3] = {0, 0, 1000};
        fill(&win, rec, skew, 0);
        TEST_ASSERT(kinfer_drift_assess(&dc, &win) == 1 && win.psi_labels > 0.2 && win.psi_confidence > 0.2,
                    "skewed window: psi %g %g", win.psi_labels, win.psi_confidence);
        /* fewer than min_records: not assessed, however skewed */
        int64_t few[3] = {0, 0, 99};
        fill(&win, rec, few, 0);
        TEST_ASSERT(kinfer_drift_assess(&dc, &win) == -1 && !win.psi_assessed, "99 < 100 records");
        int64_t enough[3] = {0, 0, 100};
        fill(&win, rec, enough, 0);
        TEST_ASSERT(kinfer_drift_assess(&dc, &win) == 1, "100 records");
        kinfer_metrics_window_term(&win);
        kinfer_model_record_release(rec);
        kinfer_model_release(m);

        /* a training-data reference: labels only */
        m = with_reference("{\"data\": \"train\", \"records\": 10, \"bins\": 10, \"labels\": [5, 3, 2], "
                           "\"confidence\": [0, 0, 0, 0, 0, 0, 0, 0, 0, 10]}");
        rec = m ? kinfer_model_record_new(m, 0, "m", 1, "d", errstr, sizeof(errstr)) : NULL;
        TEST_ASSERT(rec, "%s", errstr);
        if (rec) {
                fill(&win, rec, like, 0);
                int r = kinfer_drift_assess(&dc, &win);
                TEST_ASSERT(r == 0 && win.psi_confidence < 0, "train reference: %d conf %g", r,
                            win.psi_confidence);
                kinfer_metrics_window_term(&win);
        }
        kinfer_model_record_release(rec);
        kinfer_model_release(m);

        /* no reference: never assessed */
        m = with_reference(NULL);
        rec = m ? kinfer_model_record_new(m, 0, "m", 1, "d", errstr, sizeof(errstr)) : NULL;
        if (rec) {
                fill(&win, rec, skew, 0);
                TEST_ASSERT(kinfer_drift_assess(&dc, &win) == -1, "no reference");
                kinfer_metrics_window_term(&win);
        }
        kinfer_model_record_release(rec);
        kinfer_model_release(m);

        double v;
        TEST_ASSERT(!kinfer_drift_parse_psi("0.2", &v) && v == 0.2, "0.2");
        TEST_ASSERT(kinfer_drift_parse_psi("0", &v) && kinfer_drift_parse_psi("nan", &v) &&
                        kinfer_drift_parse_psi("inf", &v) && kinfer_drift_parse_psi("0.2x", &v) &&
                        kinfer_drift_parse_psi("", &v) && kinfer_drift_parse_psi("101", &v),
                    "bad thresholds refused");
}

static int has_line(const char *text, const char *line)
{
        size_t n = strlen(line);
        for (const char *p = text; (p = strstr(p, line)); p += n)
                if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
                        return 1;
        return 0;
}

static void test_gauges(void)
{
        kinfer_prom_t *prom = kinfer_prom_new(NULL, errstr, sizeof(errstr));
        TEST_ASSERT(prom, "%s", errstr);
        if (!prom)
                return;
        kinfer_buf_t out = {0};
        TEST_ASSERT(!kinfer_prom_render(prom, &out, errstr, sizeof(errstr)), "%s", errstr);
        TEST_ASSERT(has_line(out.data, "kinfer_drift_alert 0") && !strstr(out.data, "kinfer_drift_psi{"),
                    "before any assessed window");
        kinfer_prom_set_drift(prom, 0.31, 0.05, 1);
        kinfer_buf_reset(&out);
        TEST_ASSERT(!kinfer_prom_render(prom, &out, errstr, sizeof(errstr)), "%s", errstr);
        TEST_ASSERT(has_line(out.data, "kinfer_drift_psi{kind=\"labels\"} 0.31") &&
                        has_line(out.data, "kinfer_drift_psi{kind=\"confidence\"} 0.05") &&
                        has_line(out.data, "kinfer_drift_alert 1"),
                    "after an alert:\n%s", out.data);
        char path[] = "/tmp/kinfer-test-drift.XXXXXX";
        int fd = mkstemp(path);
        TEST_ASSERT(fd >= 0 && write(fd, out.data, out.len) == (ssize_t)out.len, "temp file");
        if (fd >= 0)
                close(fd);
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
        TEST_ASSERT(system(cmd) == 0, "promtool check metrics failed (is promtool installed?)");
        unlink(path);
        kinfer_prom_set_drift(prom, 0.1, -1, 0); /* a training-data reference: no confidence */
        kinfer_buf_reset(&out);
        TEST_ASSERT(!kinfer_prom_render(prom, &out, errstr, sizeof(errstr)), "%s", errstr);
        TEST_ASSERT(has_line(out.data, "kinfer_drift_psi{kind=\"labels\"} 0.1") &&
                        !strstr(out.data, "kinfer_drift_psi{kind=\"confidence\"}") &&
                        has_line(out.data, "kinfer_drift_alert 0"),
                    "labels only");
        kinfer_prom_set_drift(prom, -1, -1, 1); /* a new model: cleared */
        kinfer_buf_reset(&out);
        TEST_ASSERT(!kinfer_prom_render(prom, &out, errstr, sizeof(errstr)), "%s", errstr);
        TEST_ASSERT(!strstr(out.data, "kinfer_drift_psi{") && has_line(out.data, "kinfer_drift_alert 0"),
                    "cleared");
        kinfer_buf_free(&out);
        kinfer_prom_destroy(prom);
}

int main(void)
{
        TEST_RUN(test_psi);
        TEST_RUN(test_bins);
        TEST_RUN(test_reference_load);
        TEST_RUN(test_assess);
        TEST_RUN(test_gauges);
        return TEST_DONE();
}
