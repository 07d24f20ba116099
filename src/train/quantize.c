/* SPDX-License-Identifier: Apache-2.0 */
/* quantize.c -- int8 quantization (compress.h): the embedding table and the dense layers as q8
 * rows with per-row scales; the output records the input as its parent (quantized_from). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kinfer/core/buf.h"
#include "kinfer/model/model_write.h"
#include "kinfer/train/compress.h"
#include "runtime/ops.h"
#include "train/train_int.h"

/* Quantize f32 (rows x cols) into q8 rows; *max_rel gets the largest |x - dequant(q(x))|
 * relative to its row's max|x|. */
static uint8_t *q8_pack(const float *W, uint32_t rows, uint32_t cols, size_t *sizep, double *max_rel)
{
        size_t stride = kinfer_q8_stride(cols);
        uint8_t *buf = malloc(stride * (rows ? rows : 1));
        float *tmp = malloc(sizeof(float) * (cols ? cols : 1));
        if (!buf || !tmp) {
                free(buf);
                free(tmp);
                return NULL;
        }
        for (uint32_t r = 0; r < rows; r++) {
                const float *x = W + (size_t)r * cols;
                uint8_t *row = buf + (size_t)r * stride;
                kinfer_q8_row_quant(x, (int32_t)cols, row);
                kinfer_q8_row_dequant(row, (int32_t)cols, tmp);
                float amax = 0, emax = 0;
                for (uint32_t c = 0; c < cols; c++) {
                        amax = fmaxf(amax, fabsf(x[c]));
                        emax = fmaxf(emax, fabsf(x[c] - tmp[c]));
                }
                if (amax > 0 && emax / amax > *max_rel)
                        *max_rel = emax / amax;
        }
        free(tmp);
        *sizep = stride * rows;
        return buf;
}

/* Quantize the dense layers (those that get smaller) into @p r, describing each in @p params.
 * @returns 0, or -1 on out of memory. */
static int quantize_dense(const kinfer_model_t *model, const kinfer_quantize_opts_t *opts,
                          kinfer_repl_t *r, int *n_r, kinfer_buf_t *params, double *err_dense)
{
        const kinfer_dense_t *d[KINFER_MAX_HIDDEN + 1];
        uint32_t kinds[KINFER_MAX_HIDDEN + 1];
        const char *what[KINFER_MAX_HIDDEN + 1];
        int nd = kinfer_dense_layers(model, d, kinds, what);
        for (int i = 0; i < nd; i++) {
                uint32_t dt = d[i]->dtype;
                size_t q8size = (size_t)d[i]->out * kinfer_q8_stride((uint32_t)d[i]->in);
                const kinfer_tensor_view_t *t = kinfer_model_tensor(model, kinds[i]);
                int convert = !opts->keep_dense_f32 && (dt == KINFER_DTYPE_F32 || q8size < t->size);
                if (convert) {
                        float *W = malloc(sizeof(float) * (size_t)d[i]->out * (size_t)d[i]->in);
                        if (!W)
                                return -1;
                        kinfer_dense_to_f32(d[i], W);
                        double e = 0;
                        size_t size;
                        uint8_t *q = q8_pack(W, (uint32_t)d[i]->out, (uint32_t)d[i]->in, &size, &e);
                        free(W);
                        if (!q)
                                return -1;
                        *err_dense = fmax(*err_dense, e);
                        r[(*n_r)++] = (kinfer_repl_t){kinds[i], KINFER_DTYPE_Q8, (uint32_t)d[i]->out,
                                                      (uint32_t)d[i]->in, q, size, 0};
                }
                kinfer_buf_printf(params, "%s{\"layer\": \"%s\", \"from\": \"%s\", \"dtype\": \"%s\"%s}",
                                  i ? ", " : "", what[i], kinfer_dtype_name(dt),
                                  convert ? "q8" : kinfer_dtype_name(dt),
                                  convert || dt == KINFER_DTYPE_F32 ? ""
                                  : opts->keep_dense_f32          ? ", \"why\": \"keep_dense_f32\""
                                                                  : ", \"why\": \"csr is smaller\"");
        }
        return 0;
}

static int is_quantized(const kinfer_model_t *model)
{
        int q8 = model->embed_dtype == KINFER_DTYPE_Q8;
        for (int i = 0; i < model->n_hidden; i++)
                q8 |= model->hidden[i].dtype == KINFER_DTYPE_Q8;
        return q8 || (model->out.out && model->out.dtype == KINFER_DTYPE_Q8);
}

kinfer_model_t *kinfer_quantize(const kinfer_model_t *model, const kinfer_quantize_opts_t *opts,
                                char *errstr, size_t errstr_size)
{
        kinfer_quantize_opts_t dflt = {0};
        if (!opts)
                opts = &dflt;
        if (is_quantized(model)) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                              "model is already quantized (format %s, lineage method \"%s\"): "
                              "quantizing again cannot shrink it; quantize its f32 parent instead",
                              model->format, model->method);
                return NULL;
        }
        kinfer_repl_t r[KINFER_MAX_REPL];
        int n_r = 0;
        double err_embed = 0, err_dense = 0;
        kinfer_buf_t params = {0};
        char *meta = NULL;
        kinfer_model_t *out = NULL;

        /* the embedding table */
        size_t size;
        uint8_t *q = q8_pack((const float *)model->embed, (uint32_t)model->n_rows,
                             (uint32_t)model->dim, &size, &err_embed);
        if (!q)
                goto oom;
        r[n_r++] = (kinfer_repl_t){KINFER_T_EMBED, KINFER_DTYPE_Q8, (uint32_t)model->n_rows,
                                   (uint32_t)model->dim, q, size, 0};
        kinfer_buf_printf(&params, "{\"scheme\": \"q8 per-row symmetric, scale = max|row| / 127\", "
                                   "\"embed\": {\"dtype\": \"q8\", \"rows\": %d, \"row_stride\": %zu, "
                                   "\"max_rel_error\": %.6g}, \"dense\": [",
                          model->n_rows, kinfer_q8_stride((uint32_t)model->dim), err_embed);
        if (quantize_dense(model, opts, r, &n_r, &params, &err_dense))
                goto oom;
        kinfer_buf_printf(&params, "], \"dense_max_rel_error\": %.6g, \"keep_dense_f32\": %s, "
                                   "\"compact_map\": %s}",
                          err_dense, opts->keep_dense_f32 ? "true" : "false",
                          opts->dense_map ? "false" : "true");
        if (params.oom)
                goto oom;
        meta = kinfer_meta_derive(model, opts->name, "quantize", "quantized_from", params.data, NULL, 0, NULL);
        if (!meta)
                goto oom;
        out = kinfer_maybe_compact(kinfer_rebuild(model, r, n_r, meta, errstr, errstr_size),
                                   !opts->dense_map, errstr, errstr_size);
        goto done;
oom:
        kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory while quantizing");
done:
        kinfer_repl_free(r, n_r);
        kinfer_buf_free(&params);
        free(meta);
        return out;
}
