/* SPDX-License-Identifier: Apache-2.0 */
/* select.c -- the automatic feature choice of kinfer_train (opts->auto_features): before the
 * real training, train a short model per candidate feature setting on most of a fixed-seed
 * shuffle of the training data and score it on the rest (the held-out slice); the winner's
 * settings are then used for the real training on all the data, and the trial's figures go
 * into the model's hyperparameters ("auto_features") and to the note callback.
 *
 * The candidates are the caller's settings (word n-grams, no char n-grams) and the same plus
 * char n-grams AUTO_MINN..AUTO_MAXN. Char n-grams cost featurizing and serving time (several
 * times the features of word n-grams on long text), so they must win by AUTO_MARGIN.
 * The trial's size is bounded whatever the data: at most AUTO_HOLDOUT_MAX held-out records and
 * AUTO_HOLDOUT_BYTES of their text, AUTO_TRIAL_MAX trial records and AUTO_TRIAL_BYTES of their
 * text, AUTO_TRIAL_EPOCHS epochs: a fixed cost on big data (long texts stop at the byte bounds,
 * short ones at the record bounds). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinfer/core/buf.h"
#include "kinfer/runtime/runtime.h"
#include "train/train_int.h"

#define AUTO_MIN_RECORDS 1000      /* fewer labelled records: no trial, the caller's settings */
#define AUTO_HOLDOUT_MAX 5000      /* held-out records: 10% of the data, at most this */
#define AUTO_TRIAL_MAX 20000       /* trial training records, at most */
#define AUTO_TRIAL_BYTES (2u << 20) /* and at most this much of their text */
#define AUTO_HOLDOUT_BYTES (1u << 20) /* held-out text, at most */
#define AUTO_TRIAL_EPOCHS 3
#define AUTO_MINN 1
#define AUTO_MAXN 4
#define AUTO_MARGIN 0.005          /* held-out accuracy char n-grams must gain to be chosen */

/* A dataset of some records of @p ds (views: no buffer of its own). */
static kinfer_dataset_t *subset(const kinfer_dataset_t *ds, const int32_t *idx, int32_t n,
                                const char *what)
{
        kinfer_dataset_t *s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        size_t m = (size_t)(n ? n : 1);
        s->texts = malloc(m * sizeof(*s->texts));
        s->lens = malloc(m * sizeof(*s->lens));
        s->labels = malloc(m * sizeof(*s->labels));
        s->line_no = malloc(m * sizeof(*s->line_no));
        s->words = malloc(m * sizeof(*s->words));
        if (!s->texts || !s->lens || !s->labels || !s->line_no || !s->words) {
                kinfer_dataset_destroy(s);
                return NULL;
        }
        /* the path, cut to leave room for what the subset is */
        int room = (int)(sizeof(s->path) - strlen(what) - 4);
        snprintf(s->path, sizeof(s->path), "%.*s (%s)", room, ds->path, what);
        s->format = ds->format;
        s->n = n;
        memcpy(s->sha256, ds->sha256, sizeof(s->sha256));
        for (int32_t i = 0; i < n; i++) {
                int32_t j = idx[i];
                s->texts[i] = ds->texts[j];
                s->lens[i] = ds->lens[j];
                s->labels[i] = ds->labels[j];
                s->line_no[i] = ds->line_no[j];
                s->words[i] = ds->words[j];
        }
        return s;
}

typedef struct cand_s {
        kinfer_featurizer_conf_t feat;
        double acc;
        double seconds;
        uint8_t *right; /* per held-out record: the top-1 label is the record's */
} cand_t;

/* Classify the held-out records with @p m: c->right and c->acc. */
static kinfer_err_t score(const kinfer_model_t *m, const kinfer_dataset_t *ho, cand_t *c,
                          char *errstr, size_t errstr_size)
{
        enum { B = 256 };
        kinfer_prediction_t pred[B];
        kinfer_runtime_t *rt = kinfer_runtime_new(B, errstr, errstr_size);
        if (!rt)
                return KINFER_ERR__NOMEM;
        kinfer_err_t err = KINFER_OK;
        int64_t right = 0;
        for (int32_t b = 0; b < ho->n && !err; b += B) {
                int32_t n = ho->n - b < B ? ho->n - b : B;
                err = kinfer_runtime_classify(rt, m, ho->texts + b, ho->lens + b, n, 1, pred, errstr,
                                              errstr_size);
                for (int32_t i = 0; i < n && !err; i++) {
                        c->right[b + i] = pred[i].n > 0 &&
                                          !strcmp(m->labels[pred[i].label[0]], ho->labels[b + i]);
                        right += c->right[b + i];
                }
        }
        kinfer_runtime_destroy(rt);
        c->acc = ho->n ? (double)right / ho->n : 0;
        return err;
}

/* Train on @p tr with @p c->feat and the trial schedule, score on @p ho. */
static kinfer_err_t trial(const kinfer_dataset_t *tr, const kinfer_dataset_t *ho,
                          const kinfer_train_opts_t *opts, cand_t *c, char *errstr,
                          size_t errstr_size)
{
        kinfer_train_opts_t o = *opts;
        o.auto_features = 0;
        o.feat = c->feat;
        o.epochs = opts->epochs < AUTO_TRIAL_EPOCHS ? opts->epochs : AUTO_TRIAL_EPOCHS;
        o.dev = NULL;
        o.progress = NULL;
        o.note = NULL;
        o.comm = NULL;
        o.name = "auto-features-trial";
        o.bucket_map = KINFER_MAP_DENSE; /* no compaction: the model is thrown away */
        double t0 = kinfer_now_sec();
        kinfer_model_t *m = kinfer_train(tr, &o, NULL, errstr, errstr_size);
        if (!m)
                return KINFER_ERR__STATE;
        kinfer_err_t err = score(m, ho, c, errstr, errstr_size);
        kinfer_model_release(m);
        c->seconds = kinfer_now_sec() - t0;
        return err;
}

static void feat_name(const kinfer_featurizer_conf_t *f, char *out, size_t size)
{
        if (f->maxn)
                snprintf(out, size, "word n-grams 1..%d + char n-grams %d..%d", f->word_ngrams,
                         f->minn, f->maxn);
        else
                snprintf(out, size, "word n-grams 1..%d", f->word_ngrams);
}

kinfer_err_t kinfer_train_select_features(const kinfer_dataset_t *ds,
                                          const kinfer_train_opts_t *opts,
                                          kinfer_featurizer_conf_t *chosen, char **json,
                                          char *errstr, size_t errstr_size)
{
        *chosen = opts->feat;
        *json = NULL;
        int32_t n = 0;
        for (int32_t i = 0; ds->labels && i < ds->n; i++)
                n += ds->labels[i] != NULL;
        if (n < AUTO_MIN_RECORDS || opts->init_model || opts->soft_targets || opts->label_order ||
            opts->comm || opts->feat.maxn) {
                kinfer_buf_t b = {0};
                kinfer_buf_printf(&b, "{\"ran\": false, \"why\": \"%s\"}",
                                  n < AUTO_MIN_RECORDS ? "fewer than 1000 labelled records"
                                  : opts->feat.maxn    ? "char n-grams set by the caller"
                                  : opts->comm         ? "distributed training"
                                                       : "continued or distilled training");
                *json = b.oom ? NULL : kinfer_buf_detach(&b);
                kinfer_buf_free(&b);
                return KINFER_OK;
        }
        /* a fixed-seed shuffle of the labelled records: the first 10% (at most
         * AUTO_HOLDOUT_MAX) are held out, the trial trains on the next ones up to its bounds */
        int32_t *idx = malloc((size_t)n * sizeof(int32_t));
        if (!idx)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
        n = 0;
        for (int32_t i = 0; i < ds->n; i++)
                if (ds->labels[i])
                        idx[n++] = i;
        uint64_t rng = opts->seed ^ 0x6a09e667f3bcc909ull;
        for (int32_t i = n - 1; i > 0; i--) {
                int32_t j = (int32_t)(kinfer_rng_next(&rng) % (uint64_t)(i + 1));
                int32_t t = idx[i];
                idx[i] = idx[j];
                idx[j] = t;
        }
        int32_t n_ho = 0, n_tr = 0;
        size_t bytes = 0;
        while (n_ho < n / 10 && n_ho < AUTO_HOLDOUT_MAX && bytes < AUTO_HOLDOUT_BYTES)
                bytes += ds->lens[idx[n_ho++]];
        bytes = 0;
        while (n_ho + n_tr < n && n_tr < AUTO_TRIAL_MAX && bytes < AUTO_TRIAL_BYTES)
                bytes += ds->lens[idx[n_ho + n_tr++]];
        kinfer_dataset_t *ho = subset(ds, idx, n_ho, "held out for the feature choice");
        kinfer_dataset_t *tr = subset(ds, idx + n_ho, n_tr, "feature choice trial");
        free(idx);
        kinfer_err_t err = KINFER_OK;
        cand_t c[2];
        memset(c, 0, sizeof(c));
        c[0].feat = opts->feat;
        c[1].feat = opts->feat;
        c[1].feat.minn = AUTO_MINN;
        c[1].feat.maxn = AUTO_MAXN;
        c[0].right = calloc((size_t)(n_ho ? n_ho : 1), 1);
        c[1].right = calloc((size_t)(n_ho ? n_ho : 1), 1);
        if (!ho || !tr || !c[0].right || !c[1].right)
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
        for (int k = 0; k < 2 && !err; k++)
                err = trial(tr, ho, opts, &c[k], errstr, errstr_size);
        /* paired: the held-out records only char n-grams get right (gain) and only words get
         * right (loss); char n-grams must gain AUTO_MARGIN and win by two standard deviations
         * of gain - loss under the hypothesis that neither is better (McNemar), so that a
         * small held-out slice does not choose by chance */
        int64_t gain = 0, loss = 0;
        for (int32_t i = 0; i < n_ho && !err; i++) {
                gain += c[1].right[i] && !c[0].right[i];
                loss += c[0].right[i] && !c[1].right[i];
        }
        free(c[0].right);
        free(c[1].right);
        kinfer_dataset_destroy(ho);
        kinfer_dataset_destroy(tr);
        if (err)
                return err;
        int best = c[1].acc >= c[0].acc + AUTO_MARGIN &&
                   (double)(gain - loss) >= 2.0 * sqrt((double)(gain + loss));
        *chosen = c[best].feat;
        kinfer_buf_t b = {0};
        kinfer_buf_printf(&b,
                          "{\"ran\": true, \"held_out\": %d, \"trial_records\": %d, "
                          "\"trial_epochs\": %d, \"margin\": %g, \"only_char_right\": %lld, "
                          "\"only_words_right\": %lld, \"candidates\": [",
                          n_ho, n_tr, opts->epochs < AUTO_TRIAL_EPOCHS ? opts->epochs : AUTO_TRIAL_EPOCHS,
                          AUTO_MARGIN, (long long)gain, (long long)loss);
        /* a reproducible model (SOURCE_DATE_EPOCH, as model_write.c's created_at) leaves out the
         * trial's wall-clock times: the rest of the file depends only on the input and options */
        const int timed = getenv("SOURCE_DATE_EPOCH") == NULL;
        for (int k = 0; k < 2; k++) {
                kinfer_buf_printf(&b,
                                  "%s{\"word_ngrams\": %d, \"minn\": %d, \"maxn\": %d, "
                                  "\"held_out_accuracy\": %.4f",
                                  k ? ", " : "", c[k].feat.word_ngrams, c[k].feat.minn,
                                  c[k].feat.maxn, c[k].acc);
                if (timed)
                        kinfer_buf_printf(&b, ", \"seconds\": %.2f", c[k].seconds);
                kinfer_buf_printf(&b, "}");
        }
        kinfer_buf_printf(&b, "], \"chosen\": %d}", best);
        *json = b.oom ? NULL : kinfer_buf_detach(&b);
        kinfer_buf_free(&b);
        if (opts->note) {
                char a[96], w[96], line[512];
                feat_name(&c[best].feat, a, sizeof(a));
                feat_name(&c[!best].feat, w, sizeof(w));
                snprintf(line, sizeof(line),
                         "Features: %s (held-out accuracy %.4f; %s: %.4f) on %d held-out records, "
                         "trained on %d for %d epochs",
                         a, c[best].acc, w, c[!best].acc, n_ho, n_tr,
                         opts->epochs < AUTO_TRIAL_EPOCHS ? opts->epochs : AUTO_TRIAL_EPOCHS);
                opts->note(line, opts->opaque);
        }
        return KINFER_OK;
}
