/* SPDX-License-Identifier: Apache-2.0 */
/* distill.c -- knowledge distillation (compress.h): a student trained by kinfer_train on the
 * teacher's softened probabilities mixed with the labels; the student records the teacher as
 * its parent (distilled_from). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinfer/core/buf.h"
#include "kinfer/core/json.h"
#include "kinfer/core/sha256.h"
#include "kinfer/runtime/runtime.h"
#include "kinfer/train/compress.h"
#include "runtime/ops.h"
#include "train/train_int.h"

#define DISTILL_BATCH 256

kinfer_err_t kinfer_distill_soft_targets(const kinfer_model_t *teacher, const kinfer_dataset_t *ds,
                                         float temperature, float **out, char *errstr,
                                         size_t errstr_size)
{
        *out = NULL;
        if (!(temperature > 0))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "temperature must be > 0 (got %g)", temperature);
        const int32_t L = teacher->n_labels;
        float *q = malloc(sizeof(float) * (size_t)(ds->n ? ds->n : 1) * (size_t)L);
        if (!q)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory (soft targets)");
        kinfer_runtime_t *rt = kinfer_runtime_new(DISTILL_BATCH, errstr, errstr_size);
        kinfer_err_t err = rt ? KINFER_OK : KINFER_ERR__NOMEM;
        for (int32_t i = 0; i < ds->n && !err; i += DISTILL_BATCH) {
                int32_t n = ds->n - i < DISTILL_BATCH ? ds->n - i : DISTILL_BATCH;
                float *z = q + (size_t)i * L;
                err = kinfer_runtime_logits(rt, teacher, ds->texts + i, ds->lens + i, n, z, errstr,
                                            errstr_size);
                for (int32_t r = 0; r < n && !err; r++) {
                        float *p = z + (size_t)r * L;
                        for (int32_t j = 0; j < L; j++)
                                p[j] /= temperature;
                        kinfer_softmax(p, L);
                }
        }
        kinfer_runtime_destroy(rt);
        if (err)
                free(q);
        else
                *out = q;
        return err;
}

/* One dataset over both files: views into their buffers, labels NULL for plain text. */
static kinfer_err_t concat(const kinfer_dataset_t *labelled, const kinfer_dataset_t *unlabelled,
                           kinfer_dataset_t *all, char *errstr, size_t errstr_size)
{
        const int32_t n1 = labelled ? labelled->n : 0, n2 = unlabelled ? unlabelled->n : 0;
        const int32_t n = n1 + n2;
        const size_t m = (size_t)(n ? n : 1);
        memset(all, 0, sizeof(*all));
        const kinfer_dataset_t *first = labelled ? labelled : unlabelled;
        snprintf(all->path, sizeof(all->path), "%s", first->path);
        all->format = first->format;
        memcpy(all->sha256, first->sha256, 32);
        all->n = n;
        all->texts = malloc(sizeof(char *) * m);
        all->lens = malloc(sizeof(size_t) * m);
        all->labels = calloc(m, sizeof(char *));
        all->line_no = malloc(sizeof(int32_t) * m);
        all->words = malloc(sizeof(int32_t) * m);
        if (!all->texts || !all->lens || !all->labels || !all->line_no || !all->words)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
        for (int32_t i = 0; i < n; i++) {
                const kinfer_dataset_t *ds = i < n1 ? labelled : unlabelled;
                int32_t k = i < n1 ? i : i - n1;
                all->texts[i] = ds->texts[k];
                all->lens[i] = ds->lens[k];
                all->labels[i] = ds->labels ? ds->labels[k] : NULL;
                all->line_no[i] = ds->line_no[k];
                all->words[i] = ds->words[k];
        }
        return KINFER_OK;
}

static void concat_free(kinfer_dataset_t *all)
{
        free(all->texts);
        free(all->lens);
        free(all->labels);
        free(all->line_no);
        free(all->words);
}

/* {"file": ..., "sha256": ..., "records": n} of @p ds, or null. */
static void data_json(kinfer_buf_t *b, const kinfer_dataset_t *ds)
{
        if (!ds) {
                kinfer_buf_puts(b, "null");
                return;
        }
        const char *base = strrchr(ds->path, '/');
        char sha[65];
        kinfer_hex(ds->sha256, 32, sha);
        kinfer_buf_puts(b, "{\"file\": ");
        kinfer_buf_json_cstr(b, base ? base + 1 : ds->path);
        kinfer_buf_printf(b, ", \"sha256\": \"%s\", \"records\": %d}", sha, ds->n);
}

kinfer_model_t *kinfer_distill(const kinfer_model_t *teacher, const kinfer_dataset_t *labelled,
                               const kinfer_dataset_t *unlabelled,
                               const kinfer_train_opts_t *student, float temperature, float alpha,
                               kinfer_train_result_t *res, char *errstr, size_t errstr_size)
{
        if (!labelled && !unlabelled) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG, "no data to distill on");
                return NULL;
        }
        if (!(alpha >= 0 && alpha <= 1)) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                              "alpha must be in [0, 1] (got %g)", alpha);
                return NULL;
        }
        kinfer_dataset_t all;
        kinfer_model_t *model = NULL;
        float *q = NULL;
        kinfer_buf_t params = {0};
        if (concat(labelled, unlabelled, &all, errstr, errstr_size) ||
            kinfer_distill_soft_targets(teacher, &all, temperature, &q, errstr, errstr_size))
                goto out;
        kinfer_buf_printf(&params, "{\"teacher\": \"%s\", \"data\": ", teacher->sha_hex);
        data_json(&params, labelled);
        kinfer_buf_puts(&params, ", \"unlabelled\": ");
        data_json(&params, unlabelled);
        kinfer_buf_puts(&params, "}");
        if (params.oom) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                goto out;
        }
        kinfer_train_opts_t o = *student;
        o.soft_targets = q;
        o.temperature = temperature;
        o.alpha = alpha;
        o.label_order = (const char *const *)teacher->labels;
        o.n_label_order = teacher->n_labels;
        o.init_model = NULL;
        o.lineage_method = "distill";
        o.lineage_relation = "distilled_from";
        o.lineage_params_json = params.data;
        o.parents = (const kinfer_model_t *const *)&teacher;
        o.n_parents = 1;
        model = kinfer_train(&all, &o, res, errstr, errstr_size);
out:
        kinfer_buf_free(&params);
        free(q);
        concat_free(&all);
        return model;
}
