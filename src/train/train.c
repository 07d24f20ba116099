/* SPDX-License-Identifier: Apache-2.0 */
/* train.c -- kinfer_train: the options, then the data stage (labels and the label id of every
 * record), and the run of the four stages of train_int.h over one kinfer_train_state_t:
 *
 *   data -> features (features.c) -> epochs (sgd.c) -> assemble (assemble.c)
 */
#include <stdlib.h>
#include <string.h>

#include "train/train_int.h"

void kinfer_train_opts_default(kinfer_train_opts_t *opts)
{
        memset(opts, 0, sizeof(*opts));
        kinfer_featurizer_conf_default(&opts->feat);
        opts->dim = 0;
        opts->hidden = 0;
        opts->feat.prefix_words = 6;
        opts->epochs = 25; /* 15 -> 25: +0.3 points held out of debian-sections train (docs/training.md) */
        opts->lr = kinfer_train_default_lr(0, 0);
        opts->l2 = 0;
        opts->min_count = 2;
        opts->max_rows = 150000;
        opts->threads = 2;
        opts->sync_every = 2000;
        opts->seed = 1;
        opts->patience = 3;
        opts->temperature = 1.0f;
        opts->alpha = 0.5f;
}

float kinfer_train_default_lr(int32_t dim, int32_t hidden)
{
        return dim == 0 ? 10.0f : hidden > 0 ? 0.1f : 0.2f;
}

/* ---- labels ---------------------------------------------------------------------------- */

typedef struct lab_s {
        const char *name;
        int64_t count;
} lab_t;

static int cmp_name(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}
static int cmp_lab(const void *a, const void *b)
{
        const lab_t *x = a, *y = b;
        if (x->count != y->count)
                return x->count > y->count ? -1 : 1;
        return strcmp(x->name, y->name);
}

/* Label set by frequency (desc), then name. */
static lab_t *label_set(const kinfer_dataset_t *ds, int32_t *n_out)
{
        const char **names = malloc((size_t)ds->n * sizeof(char *));
        lab_t *labs = malloc((size_t)ds->n * sizeof(lab_t));
        if (!names || !labs) {
                free(names);
                free(labs);
                return NULL;
        }
        int32_t m = 0;
        for (int32_t i = 0; i < ds->n; i++)
                if (ds->labels && ds->labels[i])
                        names[m++] = ds->labels[i];
        qsort(names, (size_t)m, sizeof(char *), cmp_name);
        int32_t u = 0;
        for (int32_t i = 0; i < m; i++) {
                if (u && !strcmp(labs[u - 1].name, names[i]))
                        labs[u - 1].count++;
                else
                        labs[u].name = names[i], labs[u].count = 1, u++;
        }
        free(names);
        qsort(labs, (size_t)u, sizeof(lab_t), cmp_lab);
        *n_out = u;
        return labs;
}

static int32_t find_label(const char *const *names, int32_t n, const char *s)
{
        if (!s)
                return -1;
        for (int32_t i = 0; i < n; i++)
                if (!strcmp(names[i], s))
                        return i;
        return -1;
}

/* The label names: the fixed order of the options, else the dataset's labels by frequency. */
static kinfer_err_t label_names(kinfer_train_state_t *st, char *errstr, size_t errstr_size)
{
        const kinfer_train_opts_t *o = st->opts;
        lab_t *labs = NULL;
        if (o->label_order) {
                st->L = o->n_label_order;
        } else if (!(labs = label_set(st->ds, &st->L))) {
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
        }
        st->names = malloc((size_t)(st->L ? st->L : 1) * sizeof(char *));
        if (st->names)
                for (int32_t i = 0; i < st->L; i++)
                        st->names[i] = labs ? labs[i].name : o->label_order[i];
        free(labs);
        if (!st->names)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
        if (st->L < 2)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                     "%s: need at least 2 distinct labels, found %d", st->ds->path,
                                     st->L);
        return KINFER_OK;
}

/* The data stage: the effective options, the label names, and the label id of every train
 * and dev record. */
static kinfer_err_t stage_data(kinfer_train_state_t *st, char *errstr, size_t errstr_size)
{
        const kinfer_model_t *im = st->opts->init_model;
        if (im) {
                /* the model fixes the featurizer and the labels: train with a copy of the
                 * options using them */
                st->own = *st->opts;
                st->own.feat = im->feat;
                st->own.label_order = (const char *const *)im->labels;
                st->own.n_label_order = im->n_labels;
                st->opts = &st->own;
                if (im->n_hidden > 1)
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                             "training continues models with at most one hidden layer");
        }
        const kinfer_train_opts_t *o = st->opts;
        const kinfer_dataset_t *ds = st->ds, *dev = o->dev;
        kinfer_err_t err = label_names(st, errstr, errstr_size);
        if (err)
                return err;
        st->y = malloc((size_t)(ds->n ? ds->n : 1) * sizeof(int32_t));
        st->ydev = dev ? malloc((size_t)(dev->n ? dev->n : 1) * sizeof(int32_t)) : NULL;
        if (!st->y || (dev && !st->ydev))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory while training");
        for (int32_t i = 0; i < ds->n; i++) {
                st->y[i] = ds->labels ? find_label(st->names, st->L, ds->labels[i]) : -1;
                st->labelled += st->y[i] >= 0 || o->soft_targets;
        }
        for (int32_t i = 0; dev && i < dev->n; i++) {
                st->ydev[i] = dev->labels ? find_label(st->names, st->L, dev->labels[i]) : -1;
                if (st->ydev[i] < 0 && dev->labels)
                        st->ydev[i] = -2; /* a label the model cannot predict: counts as wrong */
        }
        if (!st->labelled)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                     "%s: no record has a label the model knows", ds->path);
        return KINFER_OK;
}

static void state_free(kinfer_train_state_t *st)
{
        free(st->names);
        free(st->y);
        free(st->ydev);
        free(st->map);
        free(st->idf);
        kinfer_feats_free(&st->tr);
        kinfer_feats_free(&st->dev);
        free(st->params);
}

#define TRAIN_BUCKETS_MAX (1u << 24) /* the most hash buckets training takes */

static kinfer_err_t check_opts(const kinfer_train_opts_t *opts, char *errstr, size_t errstr_size)
{
        const char *why = kinfer_featurizer_conf_check(&opts->feat);
        if (why)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG, "featurizer: %s", why);
        /* training keeps about 20 bytes per bucket (document frequencies, the row map, per-thread
         * counts): 2^30 buckets took 21 GB and 4 minutes on a 4-record file; 2^24 is 0.3 GB */
        if (opts->feat.n_buckets > TRAIN_BUCKETS_MAX)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "--buckets %u is over %u (2^24): training needs about 20 bytes "
                                     "per bucket", opts->feat.n_buckets, TRAIN_BUCKETS_MAX);
        if (opts->epochs < 1 || !(opts->lr > 0) || opts->threads < 1 || opts->threads > 64 ||
            opts->dim < 0 || opts->hidden < 0 || (opts->hidden && !opts->dim))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "invalid hyperparameters (epochs >= 1, lr > 0, threads 1..64, "
                                     "hidden needs dim)");
        return KINFER_OK;
}

kinfer_model_t *kinfer_train(const kinfer_dataset_t *ds, const kinfer_train_opts_t *opts,
                             kinfer_train_result_t *res, char *errstr, size_t errstr_size)
{
        kinfer_train_result_t dummy;
        if (!res)
                res = &dummy;
        memset(res, 0, sizeof(*res));
        res->dev_accuracy = -1;
        if (check_opts(opts, errstr, errstr_size))
                return NULL;
        /* the automatic feature choice: a trial first, then train with its winner */
        kinfer_train_opts_t chosen;
        char *auto_json = NULL;
        if (opts->auto_features && !opts->comm) { /* ranks: not run (each would try its own
                                                     * shard and choose alone); docs/training.md */
                double t0 = kinfer_now_sec();
                chosen = *opts;
                chosen.auto_features = 0;
                if (kinfer_train_select_features(ds, opts, &chosen.feat, &auto_json, errstr,
                                                 errstr_size))
                        return NULL;
                opts = &chosen;
                res->select_seconds = kinfer_now_sec() - t0;
        }
        kinfer_train_state_t st;
        memset(&st, 0, sizeof(st));
        st.auto_json = auto_json;
        st.opts = opts;
        st.ds = ds;
        st.K = opts->threads;
        st.t0 = kinfer_now_sec();
        kinfer_model_t *model = NULL;
        if (!stage_data(&st, errstr, errstr_size) &&
            !kinfer_train_stage_features(&st, errstr, errstr_size) &&
            !kinfer_train_stage_epochs(&st, errstr, errstr_size)) {
                res->epochs_run = st.epochs_run;
                res->best_epoch = st.best_epoch;
                res->dev_accuracy = st.dev.n ? st.best_acc : -1;
                res->final_loss = st.last_loss;
                model = kinfer_train_stage_assemble(&st, res, errstr, errstr_size);
                if (model && opts->bucket_map != KINFER_MAP_DENSE) {
                        /* the map sized to what the model uses (train.h: bucket_map) */
                        size_t map_bytes = sizeof(int32_t) * (size_t)model->n_buckets;
                        size_t row_bytes = model->embed_stride * (size_t)model->n_rows;
                        if (opts->bucket_map == KINFER_MAP_RANK || map_bytes > row_bytes)
                                model = kinfer_maybe_compact(model, 1, errstr, errstr_size);
                }
                res->seconds = kinfer_now_sec() - st.t0 + res->select_seconds;
        }
        state_free(&st);
        free(auto_json);
        return model;
}
