/* SPDX-License-Identifier: Apache-2.0 */
/* test_train.c -- training on the bundled sample reaches a stated accuracy; determinism;
 * lineage metadata; char n-grams where words fail; dataset errors name file and line; a
 * thread that cannot be created fails training and evaluation cleanly. */
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "kinfer/runtime/runtime.h"
#include "kinfer/core/sha256.h"
#include "kinfer/core/utf8.h"
#include "kinfer/train/train.h"
#include "model/model_int.h"
#include "test.h"

static char train_path[512], dev_path[512];

/* The bundled 4000-record sample, evaluated on its 500-record dev sample, with the defaults
 * (2 threads): 0.74 measured; we require 0.70. */
#define SAMPLE_MIN_ACCURACY 0.70

static void test_sample_accuracy(void)
{
        char errstr[256];
        kinfer_dataset_t *tr = kinfer_dataset_load(train_path, 0, errstr, sizeof(errstr));
        kinfer_dataset_t *dv = kinfer_dataset_load(dev_path, 0, errstr, sizeof(errstr));
        TEST_ASSERT(tr && dv, "load: %s", errstr);
        if (!tr || !dv)
                return;
        TEST_ASSERT(tr->n == 4000 && tr->format == KINFER_DATA_TSV, "4000 TSV records, got %d", tr->n);
        kinfer_train_opts_t o;
        kinfer_train_opts_default(&o);
        o.name = "sample";
        kinfer_train_result_t res;
        kinfer_model_t *m = kinfer_train(tr, &o, &res, errstr, sizeof(errstr));
        TEST_ASSERT(m != NULL, "train: %s", errstr);
        if (m) {
                kinfer_eval_t ev;
                TEST_ASSERT(kinfer_eval(m, dv, 2, &ev, errstr, sizeof(errstr)) == KINFER_OK, "eval: %s", errstr);
                TEST_SAY("sample accuracy %.4f, macro-F1 %.4f, %d rows, %.2fs", ev.accuracy, ev.macro_f1, res.n_rows, res.seconds);
                TEST_ASSERT(ev.accuracy >= SAMPLE_MIN_ACCURACY, "accuracy %.4f < %.2f", ev.accuracy, SAMPLE_MIN_ACCURACY);
                TEST_ASSERT(ev.n == 500, "all records evaluated");
                TEST_ASSERT(kinfer_model_n_labels(m) == 51, "51 labels, got %d", kinfer_model_n_labels(m));
                /* labels by frequency: libs is the most common section */
                TEST_ASSERT(!strcmp(kinfer_model_label(m, 0), "libs"), "label 0 is %s", kinfer_model_label(m, 0));
                /* lineage and training data fingerprint */
                char sha[65];
                kinfer_hex(tr->sha256, 32, sha);
                const char *meta = kinfer_model_meta_json(m);
                TEST_ASSERT(strstr(meta, sha) != NULL, "meta carries the training data sha256");
                TEST_ASSERT(strstr(meta, "\"hyperparameters\"") && strstr(meta, "\"lr\""), "hyperparameters");
                TEST_ASSERT(!strcmp(kinfer_model_lineage_method(m), "train") && kinfer_model_n_parents(m) == 0, "lineage");
                TEST_ASSERT(!strcmp(kinfer_model_name(m), "sample"), "name");
                TEST_ASSERT(res.n_rows <= o.max_rows, "max_rows honoured");
                kinfer_eval_term(&ev);
        }
        kinfer_model_release(m);
        kinfer_dataset_destroy(tr);
        kinfer_dataset_destroy(dv);
}

/* Mean top-1 score and accuracy of @p m on @p ds. */
static void conf_acc(const kinfer_model_t *m, const kinfer_dataset_t *ds, double *conf, double *acc)
{
        kinfer_runtime_t *rt = kinfer_runtime_new(100, NULL, 0);
        kinfer_prediction_t out[100];
        double c = 0, a = 0;
        for (int32_t b = 0; b < ds->n; b += 100) {
                int32_t n = ds->n - b < 100 ? ds->n - b : 100;
                kinfer_runtime_classify(rt, m, ds->texts + b, ds->lens + b, n, 1, out, NULL, 0);
                for (int32_t i = 0; i < n; i++) {
                        c += out[i].prob[0];
                        a += !strcmp(kinfer_model_label(m, out[i].label[0]), ds->labels[b + i]);
                }
        }
        *conf = c / ds->n;
        *acc = a / ds->n;
        kinfer_runtime_destroy(rt);
}

/* With --dev the scores are calibrated: the mean top-1 score tracks the accuracy. */
static void test_calibration(void)
{
        char errstr[256];
        kinfer_dataset_t *tr = kinfer_dataset_load(train_path, 0, errstr, sizeof(errstr));
        kinfer_dataset_t *dv = kinfer_dataset_load(dev_path, 0, errstr, sizeof(errstr));
        if (!tr || !dv)
                return;
        kinfer_train_opts_t o;
        kinfer_train_opts_default(&o);
        o.threads = 1;
        kinfer_model_t *raw = kinfer_train(tr, &o, NULL, errstr, sizeof(errstr));
        o.dev = dv;
        kinfer_train_result_t res;
        kinfer_model_t *cal = kinfer_train(tr, &o, &res, errstr, sizeof(errstr));
        TEST_ASSERT(raw && cal, "train: %s", errstr);
        if (raw && cal) {
                double c0, a0, c1, a1;
                conf_acc(raw, dv, &c0, &a0);
                conf_acc(cal, dv, &c1, &a1);
                TEST_SAY("uncalibrated: score %.3f accuracy %.3f; T=%.3f: score %.3f accuracy %.3f", c0, a0,
                         (double)kinfer_model_temperature(cal), c1, a1);
                TEST_ASSERT(kinfer_model_temperature(raw) == 1.0f, "no dev, no temperature");
                TEST_ASSERT(kinfer_model_temperature(cal) == res.temperature && res.temperature > 1.0f,
                            "an overconfident model gets T > 1 (%g)", (double)res.temperature);
                TEST_ASSERT(fabs(c1 - a1) < 0.05, "calibrated score %.3f vs accuracy %.3f", c1, a1);
                TEST_ASSERT(fabs(c1 - a1) < fabs(c0 - a0), "calibration narrows the gap");
        }
        kinfer_model_release(raw);
        kinfer_model_release(cal);
        kinfer_dataset_destroy(tr);
        kinfer_dataset_destroy(dv);
}

/* The two models' embedding tables are the same bytes. */
static int same_embed(const kinfer_model_t *x, const kinfer_model_t *y)
{
        const kinfer_tensor_view_t *ex = kinfer_model_tensor(x, KINFER_T_EMBED);
        const kinfer_tensor_view_t *ey = kinfer_model_tensor(y, KINFER_T_EMBED);
        return ex->size == ey->size && !memcmp(ex->data, ey->data, ex->size);
}

static void test_deterministic(void)
{
        char errstr[256];
        kinfer_dataset_t *tr = kinfer_dataset_load(train_path, 0, errstr, sizeof(errstr));
        if (!tr)
                return;
        kinfer_train_opts_t o;
        kinfer_train_opts_default(&o);
        o.threads = 1;
        o.epochs = 3;
        o.seed = 7;
        kinfer_model_t *a = kinfer_train(tr, &o, NULL, errstr, sizeof(errstr));
        kinfer_model_t *b = kinfer_train(tr, &o, NULL, errstr, sizeof(errstr));
        o.seed = 8;
        kinfer_model_t *c = kinfer_train(tr, &o, NULL, errstr, sizeof(errstr));
        TEST_ASSERT(a && b && c, "train: %s", errstr);
        if (a && b && c) {
                TEST_ASSERT(same_embed(a, b), "same seed, one thread: weights differ");
                TEST_ASSERT(!same_embed(a, c), "another seed gives other weights");
        }
        /* two threads with averaged replicas (the default): also the same weights, whatever the
         * scheduler did; each thread's learning rate follows its own progress */
        o.seed = 7;
        o.threads = 2;
        kinfer_model_t *d = kinfer_train(tr, &o, NULL, errstr, sizeof(errstr));
        kinfer_model_t *e = kinfer_train(tr, &o, NULL, errstr, sizeof(errstr));
        TEST_ASSERT(d && e, "train, 2 threads: %s", errstr);
        if (a && d && e) {
                TEST_ASSERT(same_embed(d, e), "same seed, two threads: weights differ");
                TEST_ASSERT(!same_embed(a, d), "two replicas averaged are not one thread's model");
        }
        kinfer_model_release(d);
        kinfer_model_release(e);
        kinfer_model_release(a);
        kinfer_model_release(b);
        kinfer_model_release(c);
        kinfer_dataset_destroy(tr);
}

/* Text without spaces: every record is one long "word", so word features cannot generalise
 * to unseen records; char n-grams can. */
static void test_char_ngrams_unspaced(void)
{
        static const char *sets[2][4] = {{"山", "川", "木", "林"}, {"火", "炎", "灯", "光"}};
        static const char *shared[4] = {"の", "は", "を", "に"};
        char tpath[] = "/tmp/kinfer-unspaced.XXXXXX";
        int fd = mkstemp(tpath);
        FILE *fp = fdopen(fd, "w");
        uint64_t s = 42;
        char line[400];
        for (int i = 0; i < 600; i++) {
                int y = i % 2;
                size_t p = (size_t)snprintf(line, sizeof(line), "%s\t", y ? "fire" : "forest");
                for (int j = 0; j < 12; j++) {
                        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
                        const char *ch = (s >> 33) % 3 ? shared[(s >> 40) % 4] : sets[y][(s >> 45) % 4];
                        p += (size_t)snprintf(line + p, sizeof(line) - p, "%s", ch);
                }
                fprintf(fp, "%s\n", line);
        }
        fclose(fp);
        char errstr[256];
        kinfer_dataset_t *ds = kinfer_dataset_load(tpath, 0, errstr, sizeof(errstr));
        TEST_ASSERT(ds != NULL, "%s", errstr);
        if (!ds)
                return;
        /* train on the first 400, test on the last 200 (a view of the same dataset) */
        int32_t n_all = ds->n;
        double acc[2];
        for (int withchar = 0; withchar < 2; withchar++) {
                kinfer_train_opts_t o;
                kinfer_train_opts_default(&o);
                o.threads = 1;
                o.min_count = 1;
                o.feat.prefix_words = 0;
                if (withchar) {
                        o.feat.minn = 1;
                        o.feat.maxn = 2;
                }
                ds->n = 400;
                kinfer_model_t *m = kinfer_train(ds, &o, NULL, errstr, sizeof(errstr));
                ds->n = n_all;
                TEST_ASSERT(m != NULL, "%s", errstr);
                if (!m)
                        return;
                kinfer_runtime_t *rt = kinfer_runtime_new(200, NULL, 0);
                kinfer_prediction_t out[200];
                kinfer_runtime_classify(rt, m, ds->texts + 400, ds->lens + 400, 200, 1, out, NULL, 0);
                int ok = 0;
                for (int i = 0; i < 200; i++)
                        ok += !strcmp(kinfer_model_label(m, out[i].label[0]), ds->labels[400 + i]);
                acc[withchar] = ok / 200.0;
                kinfer_runtime_destroy(rt);
                kinfer_model_release(m);
        }
        TEST_SAY("unspaced text: words only %.3f, with char n-grams %.3f", acc[0], acc[1]);
        TEST_ASSERT(acc[0] < 0.7, "word features should fail here (%.3f)", acc[0]);
        TEST_ASSERT(acc[1] >= 0.9, "char n-grams should carry it (%.3f)", acc[1]);
        kinfer_dataset_destroy(ds);
        unlink(tpath);
}

static void expect_data_error(const char *content, int allow_unlabelled, const char *want)
{
        char tpath[] = "/tmp/kinfer-data.XXXXXX";
        int fd = mkstemp(tpath);
        if (write(fd, content, strlen(content)) < 0) {
        }
        close(fd);
        char errstr[512] = "";
        kinfer_dataset_t *ds = kinfer_dataset_load(tpath, allow_unlabelled, errstr, sizeof(errstr));
        TEST_ASSERT(ds == NULL, "accepted: %s", content);
        TEST_ASSERT(strstr(errstr, tpath) && strstr(errstr, want), "message \"%s\" lacks file and \"%s\"", errstr, want);
        kinfer_dataset_destroy(ds);
        unlink(tpath);
}

static void test_dataset_formats(void)
{
        expect_data_error("libs\tfirst ok\ndoc\tsecond ok\nthis line has no tab\n", 0, ":3: no tab");
        expect_data_error("libs\tok\n\tempty label\n", 0, ":2: empty label");
        expect_data_error("__label__a one\nnot fasttext\n", 0, ":2: expected __label__LABEL");
        expect_data_error("just text\n", 0, ":1: neither TSV");
        expect_data_error("\n\n", 0, "no records");
        /* labels are names (issue 16): file and line named */
        expect_data_error("libs\tok\nbad\x1b[31m\ttext\n", 0, ":2: the label holds a control character");
        expect_data_error("libs\tok\nx\xff\ttext\n", 0, ":2: the label is not valid UTF-8");
        expect_data_error("__label__ok a\n__label__a\x7f b\n", 0, ":2: the label holds a control character");
        char longl[300];
        memset(longl, 'x', 257);
        snprintf(longl + 257, sizeof(longl) - 257, "\ttoo long\n");
        expect_data_error(longl, 0, ":1: the label is longer than 256 bytes");
        longl[256] = '\0';
        TEST_ASSERT(!kinfer_label_check(longl, 256), "256 bytes is a label");
        char tpath[] = "/tmp/kinfer-data.XXXXXX";
        int fd = mkstemp(tpath);
        const char *ft = "__label__games a fun game\r\n\n__label__libs __label__x shared library\n";
        if (write(fd, ft, strlen(ft)) < 0) {
        }
        close(fd);
        char errstr[256];
        kinfer_dataset_t *ds = kinfer_dataset_load(tpath, 0, errstr, sizeof(errstr));
        TEST_ASSERT(ds && ds->format == KINFER_DATA_FASTTEXT && ds->n == 2, "fastText detected");
        if (ds) {
                TEST_ASSERT(!strcmp(ds->labels[0], "games") && ds->lens[0] == 10 && !memcmp(ds->texts[0], "a fun game", 10), "CRLF stripped");
                TEST_ASSERT(!strcmp(ds->labels[1], "libs") && !memcmp(ds->texts[1], "shared library", 14), "first label wins");
                TEST_ASSERT(ds->line_no[1] == 3, "line numbers count blank lines");
        }
        kinfer_dataset_destroy(ds);
        unlink(tpath);
}

/* ---- pthread_create failures ------------------------------------------------------------------
 * This executable defines pthread_create, so the kinfer code linked into it calls this one
 * (ELF interposition; libraries' own threads, such as OpenBLAS's, pass straight through). It
 * forwards to the next definition (libc's, or the sanitizer's interceptor) and, when armed,
 * fails with EAGAIN once create_ok creations of threads running this executable's code have
 * succeeded. Nothing in the library knows about it. */

static int create_armed, create_ok, create_count;

int pthread_create(pthread_t *tid, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
        static int (*next)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
        if (!next)
                *(void **)&next = dlsym(RTLD_NEXT, "pthread_create");
        Dl_info in_fn, in_test;
        if (create_armed && dladdr((void *)fn, &in_fn) && dladdr((void *)&create_armed, &in_test) &&
            in_fn.dli_fbase == in_test.dli_fbase) {
                if (create_count >= create_ok)
                        return EAGAIN;
                create_count++;
        }
        return next(tid, attr, fn, arg);
}

static void arm_create(int ok)
{
        create_armed = 1;
        create_ok = ok;
        create_count = 0;
}

/* Training with 3 threads starts threads in three places (document frequencies, features,
 * the epochs, where they meet at a barrier); failing each creation in turn, training returns
 * an error and never hangs or leaks; with every creation allowed it succeeds. The same for
 * evaluation. */
static void test_thread_create_fails(void)
{
        char errstr[256];
        kinfer_dataset_t *tr = kinfer_dataset_load(train_path, 0, errstr, sizeof(errstr));
        TEST_ASSERT(tr != NULL, "load: %s", errstr);
        if (!tr)
                return;
        alarm(300); /* a thread left waiting at the barrier hangs training: fail, do not hang */
        int32_t n_all = tr->n;
        tr->n = 1000;
        kinfer_train_opts_t o;
        kinfer_train_opts_default(&o);
        o.threads = 3;
        o.epochs = 2;
        o.sync_every = 100;
        arm_create(1 << 30);
        kinfer_model_t *m = kinfer_train(tr, &o, NULL, errstr, sizeof(errstr));
        const int needed = create_count;
        TEST_ASSERT(m != NULL, "train: %s", errstr);
        TEST_ASSERT(needed >= 6, "3 threads in 3 places: %d creations", needed);
        TEST_SAY("a run with 3 threads creates %d threads", needed);
        for (int ok = 0; ok < needed; ok++) {
                arm_create(ok);
                errstr[0] = '\0';
                kinfer_model_t *f = kinfer_train(tr, &o, NULL, errstr, sizeof(errstr));
                TEST_ASSERT(f == NULL && strstr(errstr, "cannot start") && strstr(errstr, "thread"),
                            "creation %d of %d fails: model %p, \"%s\"", ok + 1, needed, (void *)f, errstr);
                TEST_ASSERT(create_count == ok, "no creation retried after the failure (%d)", create_count);
                kinfer_model_release(f);
        }
        kinfer_eval_t ev;
        for (int ok = 0; m && ok < 2; ok++) {
                arm_create(ok);
                errstr[0] = '\0';
                kinfer_err_t err = kinfer_eval(m, tr, 3, &ev, errstr, sizeof(errstr));
                TEST_ASSERT(err != KINFER_OK && strstr(errstr, "cannot start"),
                            "eval creation %d fails: %d \"%s\"", ok + 1, err, errstr);
        }
        arm_create(2);
        if (m) {
                TEST_ASSERT(kinfer_eval(m, tr, 3, &ev, errstr, sizeof(errstr)) == KINFER_OK, "%s", errstr);
                kinfer_eval_term(&ev);
        }
        create_armed = 0;
        kinfer_model_release(m);
        tr->n = n_all;
        kinfer_dataset_destroy(tr);
        alarm(0);
}

/* A learning rate far too high makes training diverge (the loss and the weights become NaN):
 * kinfer_train stops in that epoch with an error naming it and a smaller rate, and returns no
 * model (issue 16: it used to exit 0 and write the NaN model). */
static void test_divergence(void)
{
        char errstr[256];
        kinfer_dataset_t *tr = kinfer_dataset_load(train_path, 0, errstr, sizeof(errstr));
        TEST_ASSERT(tr != NULL, "load: %s", errstr);
        if (!tr)
                return;
        int32_t n_all = tr->n;
        tr->n = 500;
        kinfer_train_opts_t o;
        kinfer_train_opts_default(&o);
        o.threads = 1;
        o.epochs = 3;
        o.dim = 16;
        o.lr = 1000;
        errstr[0] = '\0';
        kinfer_model_t *m = kinfer_train(tr, &o, NULL, errstr, sizeof(errstr));
        TEST_SAY("%s", errstr);
        TEST_ASSERT(m == NULL && strstr(errstr, "diverged in epoch 1 of 3") && strstr(errstr, "try --lr 100"),
                    "lr 1000: model %p, \"%s\"", (void *)m, errstr);
        kinfer_model_release(m);
        /* the same data at a sane rate trains */
        o.lr = 0.5f;
        m = kinfer_train(tr, &o, NULL, errstr, sizeof(errstr));
        TEST_ASSERT(m != NULL, "lr 0.5: %s", errstr);
        kinfer_model_release(m);
        tr->n = n_all;
        kinfer_dataset_destroy(tr);
}

int main(void)
{
        test_src_path("tests/data/sections-train.tsv", train_path, sizeof(train_path));
        test_src_path("tests/data/sections-dev.tsv", dev_path, sizeof(dev_path));
        TEST_RUN(test_sample_accuracy);
        TEST_RUN(test_deterministic);
        TEST_RUN(test_calibration);
        TEST_RUN(test_char_ngrams_unspaced);
        TEST_RUN(test_dataset_formats);
        TEST_RUN(test_thread_create_fails);
        TEST_RUN(test_divergence);
        return TEST_DONE();
}
