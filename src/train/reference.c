/* SPDX-License-Identifier: Apache-2.0 */
/* reference.c -- the drift reference of a model (META "drift_reference", model.h): classify a
 * data set with the finished model and count its top-1 labels and top-1 scores, which a
 * serving worker later compares with its live windows (src/worker/drift.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kinfer/core/buf.h"
#include "kinfer/core/json.h"
#include "kinfer/model/model_write.h"
#include "kinfer/runtime/runtime.h"
#include "train/train_int.h"

#define REF_BATCH 256

static const char *base_name(const char *path)
{
        const char *s = strrchr(path, '/');
        return s ? s + 1 : path;
}

kinfer_model_t *kinfer_reference_attach(kinfer_model_t *model, const kinfer_dataset_t *ds,
                                        const char *which, kinfer_train_comm_t *comm,
                                        char *errstr, size_t errstr_size)
{
        const int32_t L = model->n_labels;
        int64_t *counts = calloc((size_t)L + KINFER_REF_BINS + 1, sizeof(int64_t));
        kinfer_prediction_t *preds = malloc(REF_BATCH * sizeof(*preds));
        const char **texts = malloc(REF_BATCH * sizeof(*texts));
        size_t *lens = malloc(REF_BATCH * sizeof(*lens));
        kinfer_runtime_t *rt = kinfer_runtime_new(REF_BATCH, errstr, errstr_size);
        kinfer_buf_t b = {0};
        char *meta = NULL;
        kinfer_model_t *out = NULL;
        if (!counts || !preds || !texts || !lens) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM,
                              "out of memory (drift reference)");
                goto done;
        }
        if (!rt)
                goto done;
        /* at most KINFER_REF_MAX_RECORDS records: every step-th one */
        int32_t step = ds->n > KINFER_REF_MAX_RECORDS
                           ? (ds->n + KINFER_REF_MAX_RECORDS - 1) / KINFER_REF_MAX_RECORDS
                           : 1;
        int64_t *lab = counts, *conf = counts + L, *n_rec = counts + L + KINFER_REF_BINS;
        for (int32_t i = 0; i < ds->n;) {
                int32_t n = 0;
                for (; n < REF_BATCH && i < ds->n; i += step, n++) {
                        texts[n] = ds->texts[i];
                        lens[n] = ds->lens[i];
                }
                if (kinfer_runtime_classify(rt, model, texts, lens, n, 1, preds, errstr,
                                            errstr_size))
                        goto done;
                for (int32_t j = 0; j < n; j++) {
                        if (preds[j].n < 1)
                                continue;
                        if (preds[j].label[0] >= 0 && preds[j].label[0] < L)
                                lab[preds[j].label[0]]++;
                        conf[kinfer_ref_bin(preds[j].prob[0])]++;
                        (*n_rec)++;
                }
        }
        /* ranks of a distributed run without dev data: each counted its shard; add them up, so
         * that every rank writes the same META */
        if (comm && comm->allreduce &&
            comm->allreduce(comm, counts, (size_t)L + KINFER_REF_BINS + 1, KINFER_COMM_I64,
                            KINFER_COMM_SUM, errstr, errstr_size))
                goto done;
        if (*n_rec == 0) { /* nothing classified: no reference rather than an invalid one */
                out = kinfer_model_keep(model);
                goto done;
        }
        kinfer_buf_puts(&b, "{\"data\": ");
        kinfer_buf_json_cstr(&b, which);
        kinfer_buf_puts(&b, ", \"file\": ");
        kinfer_buf_json_cstr(&b, base_name(ds->path));
        kinfer_buf_printf(&b, ", \"records\": %lld, \"bins\": %d, \"labels\": [", (long long)*n_rec,
                          KINFER_REF_BINS);
        for (int32_t l = 0; l < L; l++)
                kinfer_buf_printf(&b, "%s%lld", l ? ", " : "", (long long)lab[l]);
        kinfer_buf_puts(&b, "], \"confidence\": [");
        for (int k = 0; k < KINFER_REF_BINS; k++)
                kinfer_buf_printf(&b, "%s%lld", k ? ", " : "", (long long)conf[k]);
        kinfer_buf_puts(&b, "]}");
        if (b.oom || !(meta = kinfer_meta_set(kinfer_model_meta_json(model), "drift_reference", b.data))) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM,
                              "out of memory (drift reference)");
                goto done;
        }
        out = kinfer_rebuild(model, NULL, 0, meta, errstr, errstr_size);
done:
        kinfer_runtime_destroy(rt);
        kinfer_buf_free(&b);
        free(meta);
        free(counts);
        free(preds);
        free(texts);
        free(lens);
        return out;
}
