/* SPDX-License-Identifier: Apache-2.0 */
/* assemble.c -- the assemble stage of kinfer_train: the model file from the trained
 * parameters (the max_rows largest rows by norm, renumbered in their original order), its
 * META (hyperparameters, training data, evaluation, lineage), and the score temperature
 * fitted on the dev data. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kinfer/core/buf.h"
#include "kinfer/core/json.h"
#include "kinfer/core/sha256.h"
#include "kinfer/model/model_write.h"
#include "kinfer/runtime/runtime.h"
#include "train/train_int.h"

/* The kept rows: the bucket map onto them, their weights and idf. */
typedef struct kept_s {
        int64_t n;
        int32_t *map; /* (n_buckets) */
        float *E;     /* (n x D) */
        float *idf;   /* (n) */
} kept_t;

static void kept_free(kept_t *k)
{
        free(k->map);
        free(k->E);
        free(k->idf);
}

/* Keep all rows, or the max_rows largest by L2 norm (ranked by the squared norm). */
static kinfer_err_t keep_rows(const kinfer_train_state_t *st, kept_t *k)
{
        const kinfer_net_t *net = &st->net;
        const uint32_t nb = st->opts->feat.n_buckets;
        const int64_t n_rows = net->n_rows;
        const int32_t max_rows = st->opts->max_rows;
        k->n = max_rows > 0 && max_rows < n_rows ? max_rows : n_rows;
        k->map = malloc(nb * sizeof(int32_t));
        k->E = malloc((size_t)(k->n ? k->n : 1) * (size_t)net->D * sizeof(float));
        k->idf = malloc((size_t)(k->n ? k->n : 1) * sizeof(float));
        float *norms = malloc((size_t)(n_rows ? n_rows : 1) * sizeof(float));
        int32_t *newidx = malloc((size_t)(n_rows ? n_rows : 1) * sizeof(int32_t));
        kinfer_err_t err = KINFER_ERR__NOMEM;
        if (!k->map || !k->E || !k->idf || !norms || !newidx)
                goto done;
        for (int64_t r = 0; r < n_rows; r++)
                norms[r] = (float)kinfer_row_norm2(st->params + (size_t)r * net->D, net->D);
        if ((err = kinfer_keep_top_rows(norms, n_rows, k->n, newidx, NULL)))
                goto done;
        for (uint32_t b = 0; b < nb; b++)
                k->map[b] = st->map[b] >= 0 ? newidx[st->map[b]] : -1;
        for (int64_t r = 0; r < n_rows; r++) {
                int32_t i = newidx[r];
                if (i < 0)
                        continue;
                memcpy(k->E + (size_t)i * net->D, st->params + (size_t)r * net->D,
                       sizeof(float) * (size_t)net->D);
                k->idf[i] = st->idf[r];
        }
done:
        free(norms);
        free(newidx);
        return err;
}

/* The hyperparameters as a JSON object. */
static void hyper_json(kinfer_buf_t *b, const kinfer_train_state_t *st)
{
        const kinfer_train_opts_t *o = st->opts;
        kinfer_buf_printf(b,
                          "{\"dim\": %d, \"hidden\": %d, \"epochs\": %d, \"epochs_run\": %d, "
                          "\"lr\": %g, \"l2\": %g, \"min_count\": %d, \"max_rows\": %d, "
                          "\"threads\": %d, \"sync_every\": %d, \"hogwild\": %s, \"seed\": %llu, "
                          "\"patience\": %d, \"buckets\": %u, \"word_ngrams\": %d, \"minn\": %d, "
                          "\"maxn\": %d, \"sublinear_tf\": %s, \"idf\": %s, \"l2_norm\": %s",
                          o->dim, o->hidden, o->epochs, st->epochs_run, o->lr, o->l2, o->min_count,
                          o->max_rows, st->K, o->sync_every, o->hogwild ? "true" : "false",
                          (unsigned long long)o->seed, o->patience, o->feat.n_buckets,
                          o->feat.word_ngrams, o->feat.minn, o->feat.maxn,
                          o->feat.sublinear_tf ? "true" : "false", o->feat.use_idf ? "true" : "false",
                          o->feat.l2_norm ? "true" : "false");
        if (o->soft_targets)
                kinfer_buf_printf(b, ", \"temperature\": %g, \"alpha\": %g", o->temperature, o->alpha);
        if (st->auto_json)
                kinfer_buf_printf(b, ", \"auto_features\": %s", st->auto_json);
        kinfer_buf_puts(b, "}");
}

static const char *base_name(const char *path)
{
        const char *s = strrchr(path, '/');
        return s ? s + 1 : path;
}

/* The lineage: method and parents from the options, params = the hyperparameters merged with
 * the caller's lineage_params_json. @returns its fields ("\"lineage\": ...", without the
 * braces of the object kinfer_meta_derive writes), or NULL on out of memory. */
static char *lineage_json(const kinfer_train_state_t *st, const char *params)
{
        const kinfer_train_opts_t *o = st->opts;
        const char *method = o->lineage_method ? o->lineage_method : "train";
        const char *rel = o->lineage_relation ? o->lineage_relation : "trained_from";
        kinfer_buf_t lp = {0};
        kinfer_buf_puts(&lp, params);
        if (o->lineage_params_json && !lp.oom && lp.len > 1) {
                lp.data[--lp.len] = '\0'; /* drop '}' and merge the extra object */
                const char *extra = o->lineage_params_json;
                while (*extra == ' ' || *extra == '{')
                        extra++;
                if (*extra != '}')
                        kinfer_buf_printf(&lp, ", %s", extra);
                else
                        kinfer_buf_puts(&lp, "}");
        }
        char *meta = lp.oom ? NULL
                            : kinfer_meta_derive(NULL, NULL, method, rel, lp.data, o->parents,
                                                 o->n_parents, NULL);
        kinfer_buf_free(&lp);
        return meta;
}

/* META: name, hyperparameters, training data, evaluation, then the lineage and created_at
 * fields of kinfer_meta_derive. @returns a malloc'd string, or NULL on out of memory. */
static char *meta_json(const kinfer_train_state_t *st)
{
        const kinfer_train_opts_t *o = st->opts;
        kinfer_buf_t params = {0}, m = {0};
        hyper_json(&params, st);
        char sha[65];
        kinfer_hex(st->ds->sha256, 32, sha);
        kinfer_buf_puts(&m, "{\"name\": ");
        kinfer_buf_json_cstr(&m, o->name ? o->name : "model");
        kinfer_buf_printf(&m, ", \"hyperparameters\": %s, \"train_data\": {\"file\": ",
                          params.oom ? "" : params.data);
        kinfer_buf_json_cstr(&m, base_name(st->ds->path));
        kinfer_buf_printf(&m, ", \"sha256\": \"%s\", \"records\": %lld, \"labels\": %d}", sha,
                          o->comm ? (long long)o->comm->n_records : (long long)st->ds->n, st->net.L);
        if (st->dev.n) {
                kinfer_buf_puts(&m, ", \"evaluation\": {\"dev_file\": ");
                kinfer_buf_json_cstr(&m, base_name(o->dev->path));
                kinfer_buf_printf(&m, ", \"dev_accuracy\": %.6f, \"best_epoch\": %d}", st->best_acc,
                                  st->best_epoch);
        }
        kinfer_buf_puts(&m, "}");
        char *lineage = params.oom || m.oom ? NULL : lineage_json(st, params.data);
        char *all = NULL;
        if (lineage) { /* splice: our object minus its closing brace + the lineage fields */
                kinfer_buf_t a = {0};
                kinfer_buf_printf(&a, "%.*s,%s", (int)(m.len - 1), m.data, strchr(lineage, '{') + 1);
                all = kinfer_buf_detach(&a);
        }
        free(lineage);
        kinfer_buf_free(&params);
        kinfer_buf_free(&m);
        return all;
}

static kinfer_err_t add_tensors(kinfer_model_builder_t *mb, const kinfer_train_state_t *st,
                                const kept_t *k, const char *meta)
{
        const kinfer_net_t *net = &st->net;
        const kinfer_featurizer_conf_t *feat = &st->opts->feat;
        const uint32_t nb = feat->n_buckets, D = (uint32_t)net->D, H = (uint32_t)net->H;
        const uint32_t L = (uint32_t)net->L, Wd = (uint32_t)net->Wd, n = (uint32_t)k->n;
        const float *P = st->params;
        int32_t arch[8] = {net->D, net->H ? 1 : 0, net->L, 0, 0, 0, 0, 0};
        size_t lsize;
        uint8_t *labels = kinfer_labels_pack(st->names, net->L, &lsize);
        if (!labels)
                return KINFER_ERR__NOMEM;
        kinfer_err_t err = KINFER_OK;
        err |= kinfer_model_builder_add(mb, KINFER_T_META, KINFER_DTYPE_BYTES, 1, (uint32_t)strlen(meta), meta, strlen(meta));
        err |= kinfer_model_builder_add(mb, KINFER_T_LABELS, KINFER_DTYPE_BYTES, 1, (uint32_t)lsize, labels, lsize);
        err |= kinfer_model_builder_add(mb, KINFER_T_FEATURIZER, KINFER_DTYPE_BYTES, 1, sizeof(*feat), feat, sizeof(*feat));
        err |= kinfer_model_builder_add(mb, KINFER_T_ARCH, KINFER_DTYPE_I32, 1, 8, arch, sizeof(arch));
        err |= kinfer_model_builder_add(mb, KINFER_T_BUCKET_MAP, KINFER_DTYPE_I32, 1, nb, k->map, nb * sizeof(int32_t));
        err |= kinfer_model_builder_add(mb, KINFER_T_IDF, KINFER_DTYPE_F32, 1, n, k->idf, (size_t)n * 4);
        err |= kinfer_model_builder_add(mb, KINFER_T_EMBED, KINFER_DTYPE_F32, n, D, k->E, (size_t)n * D * 4);
        err |= kinfer_model_builder_add(mb, KINFER_T_BIAS, KINFER_DTYPE_F32, 1, D, P + net->off_be, (size_t)D * 4);
        if (H) {
                err |= kinfer_model_builder_add(mb, KINFER_T_HIDDEN_W, KINFER_DTYPE_F32, H, D, P + net->off_w1, (size_t)H * D * 4);
                err |= kinfer_model_builder_add(mb, KINFER_T_HIDDEN_B, KINFER_DTYPE_F32, 1, H, P + net->off_b1, (size_t)H * 4);
        }
        if (!net->linear) {
                err |= kinfer_model_builder_add(mb, KINFER_T_OUT_W, KINFER_DTYPE_F32, L, Wd, P + net->off_wo, (size_t)L * Wd * 4);
                err |= kinfer_model_builder_add(mb, KINFER_T_OUT_B, KINFER_DTYPE_F32, 1, L, P + net->off_bo, (size_t)L * 4);
        }
        free(labels);
        return err ? KINFER_ERR__NOMEM : KINFER_OK;
}

/* The model of the trained parameters, uncalibrated. */
static kinfer_model_t *build(const kinfer_train_state_t *st, int32_t *n_rows, char *errstr,
                             size_t errstr_size)
{
        kept_t k = {0};
        kinfer_model_builder_t *mb = kinfer_model_builder_new();
        char *meta = NULL;
        kinfer_model_t *model = NULL;
        if (!mb || keep_rows(st, &k) || !(meta = meta_json(st)) || add_tensors(mb, st, &k, meta)) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM,
                              "out of memory while writing the model");
        } else {
                *n_rows = (int32_t)k.n;
                model = kinfer_model_builder_load(mb, errstr, errstr_size);
        }
        kept_free(&k);
        free(meta);
        kinfer_model_builder_destroy(mb);
        return model;
}

/* ---- score calibration ------------------------------------------------------------------ */

static double dev_nll(const float *logits, const int32_t *y, int32_t n, int32_t L, double inv_t)
{
        double sum = 0;
        int64_t m = 0;
        for (int32_t i = 0; i < n; i++) {
                if (y[i] < 0)
                        continue;
                const float *z = logits + (size_t)i * L;
                double mx = z[0];
                for (int32_t j = 1; j < L; j++)
                        mx = z[j] > mx ? z[j] : mx;
                double se = 0;
                for (int32_t j = 0; j < L; j++)
                        se += exp((z[j] - mx) * inv_t);
                sum += log(se) - (z[y[i]] - mx) * inv_t;
                m++;
        }
        return m ? sum / (double)m : 0;
}

/* The T minimising the mean log-loss of softmax(logits / T): golden-section search over ln T
 * in [ln 0.05, ln 20] (a convex 1-D problem in 1/T). */
static float fit_temperature(const float *logits, const int32_t *y, int32_t n, int32_t L)
{
        double lo = log(0.05), hi = log(20.0);
        const double g = (sqrt(5.0) - 1) / 2;
        double a = hi - g * (hi - lo), c = lo + g * (hi - lo);
        double fa = dev_nll(logits, y, n, L, exp(-a)), fc = dev_nll(logits, y, n, L, exp(-c));
        for (int it = 0; it < 60; it++) {
                if (fa < fc) {
                        hi = c, c = a, fc = fa;
                        a = hi - g * (hi - lo);
                        fa = dev_nll(logits, y, n, L, exp(-a));
                } else {
                        lo = a, a = c, fa = fc;
                        c = lo + g * (hi - lo);
                        fc = dev_nll(logits, y, n, L, exp(-c));
                }
        }
        return (float)exp((lo + hi) / 2);
}

/* Fit the temperature on @p dev and return the model with a CALIB tensor holding it. Linear
 * models trained to a tiny training loss are overconfident; this makes their scores mean what
 * they say. The argmax does not change. */
static kinfer_model_t *calibrate(const kinfer_model_t *model, const kinfer_dataset_t *dev,
                                 float *Tout, char *errstr, size_t errstr_size)
{
        const int32_t L = model->n_labels, B = 256;
        float *logits = malloc((size_t)(dev->n ? dev->n : 1) * L * sizeof(float));
        int32_t *y = malloc((size_t)(dev->n ? dev->n : 1) * sizeof(int32_t));
        kinfer_runtime_t *rt = kinfer_runtime_new(B, errstr, errstr_size);
        kinfer_model_t *out = NULL;
        if (!logits || !y) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory (calibration)");
                goto done;
        }
        if (!rt)
                goto done;
        for (int32_t b = 0; b < dev->n; b += B) {
                int32_t n = dev->n - b < B ? dev->n - b : B;
                if (kinfer_runtime_logits(rt, model, dev->texts + b, dev->lens + b, n,
                                          logits + (size_t)b * L, errstr, errstr_size))
                        goto done;
        }
        for (int32_t i = 0; i < dev->n; i++)
                y[i] = dev->labels ? kinfer_model_label_index(model, dev->labels[i]) : -1;
        float T = fit_temperature(logits, y, dev->n, L);
        kinfer_repl_t calib = {KINFER_T_CALIB, KINFER_DTYPE_F32, 1, 1, &T, sizeof(T), 0};
        out = kinfer_rebuild(model, &calib, 1, NULL, errstr, errstr_size);
        *Tout = T;
done:
        free(logits);
        free(y);
        kinfer_runtime_destroy(rt);
        return out;
}

kinfer_model_t *kinfer_train_stage_assemble(kinfer_train_state_t *st, kinfer_train_result_t *res,
                                            char *errstr, size_t errstr_size)
{
        kinfer_model_t *model = build(st, &res->n_rows, errstr, errstr_size);
        res->temperature = 1.0f;
        const kinfer_dataset_t *dev = st->opts->dev;
        if (model && dev && dev->labels) {
                kinfer_model_t *cal = calibrate(model, dev, &res->temperature, errstr, errstr_size);
                kinfer_model_release(model);
                model = cal;
        }
        /* the drift reference of the finished (calibrated) model: on the dev data when given
         * (every rank holds all of it), else on the training data (each rank its shard,
         * summed over the ranks) */
        if (model) {
                kinfer_model_t *ref = dev && dev->n
                                          ? kinfer_reference_attach(model, dev, "dev", NULL, errstr, errstr_size)
                                          : kinfer_reference_attach(model, st->ds, "train", st->opts->comm,
                                                                    errstr, errstr_size);
                kinfer_model_release(model);
                model = ref;
        }
        return model;
}
