/* SPDX-License-Identifier: Apache-2.0 */
/* test_compress.c -- quantize, prune and distill (compress.h): q8 round-trip error bound, q8
 * logits against f32 logits, pruned rows bit-identical to the originals, magnitude pruning
 * into CSR, and lineage after each step and after a chain train -> quantize -> prune ->
 * distill. Models are trained on the bundled 4000-line sample with 2^17 buckets. */
#include <math.h>
#include <stdint.h>
#include <unistd.h>

#include "kinfer/train/compress.h"
#include "kinfer/text/featurize.h"
#include "kinfer/model/model_write.h"
#include "kinfer/runtime/runtime.h"
#include "kinfer/train/train.h"
#include "text/bucket_rank.h"
#include "model/model_int.h"
#include "runtime/ops.h"
#include "runtime/ops_q8.h"
#include "test.h"

static kinfer_dataset_t *train_ds, *dev_ds;
static kinfer_model_t *linear_f32; /* linear (dim = n_labels), 12000 rows */
static kinfer_model_t *dense_f32;  /* dim 16, hidden 16: embedding + two dense layers */

static kinfer_model_t *train_small(int32_t dim, int32_t hidden)
{
        kinfer_train_opts_t o;
        kinfer_train_opts_default(&o);
        o.feat.n_buckets = 1u << 17;
        o.dim = dim;
        o.hidden = hidden;
        o.epochs = dim ? 8 : 5;
        if (dim)
                o.lr = 0.1f; /* embedding models want a far smaller rate than linear ones */
        o.threads = 1;
        o.max_rows = 12000; /* small models keep the test quick under ASan */
        o.name = dim ? "dense" : "linear";
        char errstr[512];
        kinfer_model_t *m = kinfer_train(train_ds, &o, NULL, errstr, sizeof(errstr));
        TEST_ASSERT(m != NULL, "train: %s", errstr);
        return m;
}

static double accuracy(const kinfer_model_t *m)
{
        kinfer_eval_t ev;
        char errstr[256];
        if (kinfer_eval(m, dev_ds, 1, &ev, errstr, sizeof(errstr)))
                return -1;
        double a = ev.accuracy;
        kinfer_eval_term(&ev);
        return a;
}

/* ---- quantization ------------------------------------------------------------------------ */

/* Stated bound: every dequantized weight is within max|row| / 254 (half a quantization step)
 * of the original, plus max|row| * 1e-6 for the float rounding of x / scale and scale * q (a
 * value exactly half-way between two steps may round either way); the scale is
 * max|row| / 127; the row padding is zero. */
#define Q8_BOUND(amax) ((amax) * (1.0f / 254.0f + 1e-6f))
static void test_q8_roundtrip(void)
{
        static const int32_t widths[] = {1, 7, 51, 64, 100};
        uint64_t s = 42;
        for (size_t wi = 0; wi < sizeof(widths) / sizeof(widths[0]); wi++) {
                const int32_t cols = widths[wi];
                const size_t stride = kinfer_q8_stride((uint32_t)cols);
                TEST_ASSERT(stride >= (size_t)cols + 4 && stride % 4 == 0 && stride < (size_t)cols + 8, "stride %zu for %d", stride, cols);
                float x[100], y[100];
                uint8_t row[128];
                for (int trial = 0; trial < 200; trial++) {
                        float mag = powf(10.0f, (float)(trial % 9) - 4.0f);
                        for (int32_t j = 0; j < cols; j++) {
                                s = s * 6364136223846793005ULL + 1442695040888963407ULL;
                                x[j] = mag * ((float)((s >> 40) & 0xffffff) / (float)0x800000 - 1.0f);
                        }
                        if (trial == 0)
                                memset(x, 0, sizeof(x)); /* all-zero row */
                        if (trial == 1)
                                x[cols - 1] = 1e6f; /* one outlier */
                        memset(row, 0xab, sizeof(row));
                        kinfer_q8_row_quant(x, cols, row);
                        kinfer_q8_row_dequant(row, cols, y);
                        float amax = 0, scale;
                        for (int32_t j = 0; j < cols; j++)
                                amax = fmaxf(amax, fabsf(x[j]));
                        memcpy(&scale, row, 4);
                        TEST_ASSERT(fabsf(scale - amax / 127.0f) <= 1e-6f * amax, "scale %g for max %g", scale, amax);
                        float bound = Q8_BOUND(amax);
                        for (int32_t j = 0; j < cols; j++)
                                if (!(fabsf(x[j] - y[j]) <= bound)) {
                                        TEST_ASSERT(fabsf(x[j] - y[j]) <= bound,
                                                    "cols %d trial %d col %d: %g -> %g, bound %g", cols,
                                                    trial, j, x[j], y[j], bound);
                                        break;
                                }
                        for (size_t p = 4 + (size_t)cols; p < stride; p++)
                                if (row[p]) {
                                        TEST_ASSERT(row[p] == 0, "padding byte %zu is %u", p, row[p]);
                                        break;
                                }
                }
        }
}

/* The register-accumulator q8 bag (kinfer_bag_q8_regs) against the plain sum of dequantized
 * rows, for widths with and without a tail, with garbage in the row padding (it must not leak
 * into the output), with and without a bias. Tolerance 1e-5 relative to the sum of |terms|. */
static void test_bag_q8_kernel(void)
{
        static const int32_t dims[] = {1, 7, 8, 13, 51, 60, 64};
        uint64_t s = 99;
        for (size_t di = 0; di < sizeof(dims) / sizeof(dims[0]); di++) {
                const int32_t dim = dims[di], n_rows = 300, n = 37;
                const size_t stride = kinfer_q8_stride((uint32_t)dim);
                uint8_t *E = malloc(stride * n_rows);
                float x[64], deq[64], bias[64], ref[64 * 37], mag[64 * 37];
                for (int32_t r = 0; r < n_rows; r++) {
                        for (int32_t j = 0; j < dim; j++) {
                                s = s * 6364136223846793005ULL + 1442695040888963407ULL;
                                x[j] = (float)((s >> 40) & 0xffffff) / (float)0x800000 - 1.0f;
                        }
                        kinfer_q8_row_quant(x, dim, E + (size_t)r * stride);
                        for (size_t p = 4 + (size_t)dim; p < stride; p++)
                                E[(size_t)r * stride + p] = (uint8_t)(0x5a + p); /* garbage padding */
                }
                for (int32_t j = 0; j < dim; j++)
                        bias[j] = 0.01f * (float)j;
                size_t offs[38];
                int32_t rows[37 * 12];
                float w[37 * 12];
                offs[0] = 0;
                for (int32_t r = 0; r < n; r++) {
                        offs[r + 1] = offs[r] + (size_t)(r % 12); /* some records empty */
                        for (size_t i = offs[r]; i < offs[r + 1]; i++) {
                                s = s * 6364136223846793005ULL + 1442695040888963407ULL;
                                rows[i] = (int32_t)((s >> 33) % n_rows);
                                w[i] = (float)((s >> 20) & 0xfff) / 4096.0f;
                        }
                }
                rows[0] = n_rows - 1; /* record 1's feature: the table's last row */
                for (int with_bias = 0; with_bias < 2; with_bias++) {
                        float *X = malloc(sizeof(float) * (size_t)(n * dim + 1));
                        X[n * dim] = 12345.0f; /* sentinel after the last record */
                        /* the table is exactly n_rows * stride bytes (malloc'd so): ASan checks
                         * that the last row is read without running past the table */
                        kinfer_err_t rc = kinfer_bag_q8_regs(E, stride, dim, n_rows, rows, w, offs, n, with_bias ? bias : NULL, X);
                        TEST_ASSERT(rc == KINFER_OK, "dim %d: rc %d", dim, rc);
                        if (rc) {
                                free(X);
                                continue;
                        }
                        for (int32_t r = 0; r < n; r++)
                                for (int32_t j = 0; j < dim; j++) {
                                        ref[r * dim + j] = with_bias ? bias[j] : 0;
                                        mag[r * dim + j] = fabsf(ref[r * dim + j]);
                                }
                        for (int32_t r = 0; r < n; r++)
                                for (size_t i = offs[r]; i < offs[r + 1]; i++) {
                                        kinfer_q8_row_dequant(E + (size_t)rows[i] * stride, dim, deq);
                                        for (int32_t j = 0; j < dim; j++) {
                                                ref[r * dim + j] += w[i] * deq[j];
                                                mag[r * dim + j] += fabsf(w[i] * deq[j]);
                                        }
                                }
                        double worst = 0;
                        for (int32_t k = 0; k < n * dim; k++)
                                worst = fmax(worst, fabs(X[k] - ref[k]) / (1e-5 * (mag[k] + 1e-6)));
                        TEST_ASSERT(worst <= 1.0, "dim %d bias %d: off by %.3g x tolerance", dim, with_bias, worst);
                        TEST_ASSERT(X[n * dim] == 12345.0f, "dim %d: wrote past the last record", dim);
                        free(X);
                }
                free(E);
        }
        /* wider than 64: declined, the generic loop of kinfer_bag_q8() handles it */
        TEST_ASSERT(kinfer_bag_q8_regs(NULL, kinfer_q8_stride(65), 65, 0, NULL, NULL, (size_t[]){0}, 0, NULL, NULL) ==
                        KINFER_ERR__INVALID_ARG,
                    "dim 65 accepted");
}

/* The row of bucket @p b: dense map, else the rank index (stored or derived), else b. */
static int32_t row_of(const kinfer_model_t *m, uint32_t b)
{
        if (m->bucket_map)
                return m->bucket_map[b];
        if (m->rank.bits)
                return kinfer_bucket_rank_row(&m->rank, b);
        return (int32_t)b;
}

/* Every bucket reaches, in the quantized model, a row that dequantizes to within Q8_BOUND of
 * the f32 row it reaches in @p f, with the same idf; unmapped buckets stay unmapped. */
static void check_rows_close(const kinfer_model_t *f, const kinfer_model_t *q)
{
        TEST_ASSERT(q->embed_dtype == KINFER_DTYPE_Q8, "embedding dtype %u", q->embed_dtype);
        TEST_ASSERT(q->n_rows == f->n_rows && q->dim == f->dim, "shape");
        TEST_ASSERT(q->embed_stride == kinfer_q8_stride((uint32_t)q->dim), "stride %zu", q->embed_stride);
        float *y = malloc(sizeof(float) * (size_t)f->dim);
        int bad = 0;
        int64_t mapped = 0;
        for (uint32_t b = 0; b < (uint32_t)f->n_buckets && !bad; b++) {
                int32_t rf = row_of(f, b), rq = row_of(q, b);
                if (rf < 0 || rq < 0) {
                        TEST_ASSERT(rf < 0 && rq < 0, "bucket %u: row %d in f32, %d in q8", b, rf, rq);
                        bad |= (rf < 0) != (rq < 0);
                        continue;
                }
                mapped++;
                if (f->idf && memcmp(&f->idf[rf], &q->idf[rq], 4)) {
                        TEST_ASSERT(0, "bucket %u: idf %g -> %g", b, f->idf[rf], q->idf[rq]);
                        bad = 1;
                }
                const float *x = (const float *)(f->embed + (size_t)rf * f->embed_stride);
                kinfer_q8_row_dequant(q->embed + (size_t)rq * q->embed_stride, f->dim, y);
                float amax = 0;
                for (int32_t j = 0; j < f->dim; j++)
                        amax = fmaxf(amax, fabsf(x[j]));
                for (int32_t j = 0; j < f->dim && !bad; j++)
                        if (!(fabsf(x[j] - y[j]) <= Q8_BOUND(amax))) {
                                TEST_ASSERT(0, "bucket %u col %d: %g -> %g (max %g)", b, j, x[j], y[j], amax);
                                bad = 1;
                        }
        }
        TEST_ASSERT(mapped == f->n_rows, "%lld buckets mapped for %d rows", (long long)mapped, f->n_rows);
        free(y);
}

static void test_quantize_model(void)
{
        char errstr[512];
        kinfer_model_t *q = kinfer_quantize(linear_f32, NULL, errstr, sizeof(errstr));
        TEST_ASSERT(q != NULL, "quantize: %s", errstr);
        if (!q)
                return;
        check_rows_close(linear_f32, q);
        TEST_ASSERT(!strcmp(kinfer_model_format(q), "q8"), "format %s (never pruned)", kinfer_model_format(q));
        const kinfer_tensor_view_t *e = kinfer_model_tensor(q, KINFER_T_EMBED);
        TEST_ASSERT(e->size == (size_t)q->n_rows * kinfer_q8_stride((uint32_t)q->dim), "embed size %llu",
                    (unsigned long long)e->size);
        /* by default the rank index replaces the int32 bucket map in the file */
        const kinfer_tensor_view_t *rt = kinfer_model_tensor(q, KINFER_T_BUCKET_RANK);
        TEST_ASSERT(rt && !kinfer_model_tensor(q, KINFER_T_BUCKET_MAP), "stored rank index expected");
        TEST_ASSERT(rt && rt->size == kinfer_bucket_rank_bytes((uint32_t)q->n_buckets), "rank index size");
        /* with dense_map the int32 map is kept; both reach identical row bytes from every bucket */
        kinfer_model_t *qm = kinfer_quantize(linear_f32, &(kinfer_quantize_opts_t){.dense_map = 1},
                                             errstr, sizeof(errstr));
        TEST_ASSERT(qm && qm->bucket_map && !kinfer_model_tensor(qm, KINFER_T_BUCKET_RANK), "dense_map: %s", errstr);
        if (qm) {
                check_rows_close(linear_f32, qm);
                int64_t wrong = 0;
                for (uint32_t b = 0; b < (uint32_t)q->n_buckets; b++) {
                        int32_t a = row_of(qm, b), c = row_of(q, b);
                        if ((a < 0) != (c < 0) || (a >= 0 && memcmp(qm->embed + (size_t)a * qm->embed_stride,
                                                                  q->embed + (size_t)c * q->embed_stride, q->embed_stride)))
                                wrong++;
                }
                TEST_ASSERT(wrong == 0, "%lld buckets differ between the two maps", (long long)wrong);
                TEST_ASSERT(kinfer_model_size(q) < kinfer_model_size(qm), "the rank index did not shrink the file (%zu vs %zu)",
                            kinfer_model_size(q), kinfer_model_size(qm));
                kinfer_model_release(qm);
        }
        /* quantizing again is refused, naming the reason */
        errstr[0] = 0;
        kinfer_model_t *qq = kinfer_quantize(q, NULL, errstr, sizeof(errstr));
        TEST_ASSERT(qq == NULL && strstr(errstr, "already quantized"), "re-quantize: %s", errstr);
        kinfer_model_release(qq);

        /* dense model: embedding and both dense layers become q8, rows within the bound */
        kinfer_model_t *qd = kinfer_quantize(dense_f32, NULL, errstr, sizeof(errstr));
        TEST_ASSERT(qd != NULL, "quantize dense: %s", errstr);
        if (qd) {
                check_rows_close(dense_f32, qd);
                TEST_ASSERT(qd->hidden[0].dtype == KINFER_DTYPE_Q8 && qd->out.dtype == KINFER_DTYPE_Q8,
                            "dense dtypes %u %u", qd->hidden[0].dtype, qd->out.dtype);
                kinfer_model_t *qk = kinfer_quantize(dense_f32, &(kinfer_quantize_opts_t){.keep_dense_f32 = 1},
                                                     errstr, sizeof(errstr));
                TEST_ASSERT(qk && qk->out.dtype == KINFER_DTYPE_F32 && qk->embed_dtype == KINFER_DTYPE_Q8,
                            "keep_dense_f32");
                kinfer_model_release(qk);
        }
        kinfer_model_release(qd);
        kinfer_model_release(q);
}

/* q8 logits against f32 logits on the dev sample.
 * Linear model, per record: logit_j differs by at most sum_i |w_i| * Q8_BOUND(max|row_i|)
 * (the feature weights w_i times each row's half-step), plus 1e-4 for summation order.
 * Dense model (both layers q8 too): within 3% of the record's largest |logit| + 0.01, and the
 * top label agrees on >= 97% of records. */
static void test_q8_logits(void)
{
        char errstr[512];
        kinfer_model_t *q = kinfer_quantize(linear_f32, NULL, errstr, sizeof(errstr));
        kinfer_model_t *qd = kinfer_quantize(dense_f32, NULL, errstr, sizeof(errstr));
        TEST_ASSERT(q && qd, "quantize: %s", errstr);
        if (!q || !qd) {
                kinfer_model_release(q);
                kinfer_model_release(qd);
                return;
        }
        const int32_t n = dev_ds->n < 500 ? dev_ds->n : 500, L = linear_f32->n_labels;
        kinfer_runtime_t *rt = kinfer_runtime_new(n, errstr, sizeof(errstr));
        float *a = malloc(sizeof(float) * (size_t)n * L), *b = malloc(sizeof(float) * (size_t)n * L);
        TEST_ASSERT(kinfer_runtime_logits(rt, linear_f32, dev_ds->texts, dev_ds->lens, n, a, errstr, sizeof(errstr)) == 0, "%s", errstr);
        TEST_ASSERT(kinfer_runtime_logits(rt, q, dev_ds->texts, dev_ds->lens, n, b, errstr, sizeof(errstr)) == 0, "%s", errstr);

        /* the exact per-record bound from the record's own features */
        const kinfer_model_t *f = linear_f32;
        kinfer_feat_scratch_t fs = {0};
        double worst_ratio = 0, worst_abs = 0;
        int agree = 0;
        for (int32_t r = 0; r < n; r++) {
                size_t cap = kinfer_featurize(&f->feat, dev_ds->texts[r], dev_ds->lens[r], NULL, 0);
                uint32_t *bk = malloc(sizeof(uint32_t) * (cap ? cap : 1));
                int32_t *rows = malloc(sizeof(int32_t) * (cap ? cap : 1));
                float *w = malloc(sizeof(float) * (cap ? cap : 1));
                kinfer_feat_scratch_reserve(&fs, cap);
                size_t nb = kinfer_featurize(&f->feat, dev_ds->texts[r], dev_ds->lens[r], bk, cap);
                size_t nf = kinfer_feat_weigh(&f->feat, bk, nb, NULL, f->bucket_map, f->idf, &fs, rows, w);
                double bound = 1e-4;
                for (size_t i = 0; i < nf; i++) {
                        const float *e = (const float *)(f->embed + (size_t)rows[i] * f->embed_stride);
                        float amax = 0;
                        for (int32_t j = 0; j < f->dim; j++)
                                amax = fmaxf(amax, fabsf(e[j]));
                        bound += fabs(w[i]) * Q8_BOUND(amax);
                }
                int32_t ba = 0, bb = 0;
                for (int32_t j = 0; j < L; j++) {
                        double d = fabs((double)a[(size_t)r * L + j] - b[(size_t)r * L + j]);
                        worst_abs = fmax(worst_abs, d);
                        worst_ratio = fmax(worst_ratio, d / bound);
                        if (a[(size_t)r * L + j] > a[(size_t)r * L + ba])
                                ba = j;
                        if (b[(size_t)r * L + j] > b[(size_t)r * L + bb])
                                bb = j;
                }
                agree += ba == bb;
                free(bk);
                free(rows);
                free(w);
        }
        kinfer_feat_scratch_term(&fs);
        TEST_SAY("linear: max |logit diff| %.3g, at most %.2f of the per-record bound; top-1 agrees %d/%d",
                 worst_abs, worst_ratio, agree, n);
        TEST_ASSERT(worst_ratio <= 1.0, "q8 logits exceed the bound by a factor %.3f", worst_ratio);
        TEST_ASSERT(agree >= n * 97 / 100, "top-1 agreement %d/%d", agree, n);

        /* dense model */
        TEST_ASSERT(kinfer_runtime_logits(rt, dense_f32, dev_ds->texts, dev_ds->lens, n, a, errstr, sizeof(errstr)) == 0, "%s", errstr);
        TEST_ASSERT(kinfer_runtime_logits(rt, qd, dev_ds->texts, dev_ds->lens, n, b, errstr, sizeof(errstr)) == 0, "%s", errstr);
        double worst_rel = 0;
        agree = 0;
        for (int32_t r = 0; r < n; r++) {
                float mx = 0;
                int32_t ba = 0, bb = 0;
                for (int32_t j = 0; j < L; j++) {
                        mx = fmaxf(mx, fabsf(a[(size_t)r * L + j]));
                        if (a[(size_t)r * L + j] > a[(size_t)r * L + ba])
                                ba = j;
                        if (b[(size_t)r * L + j] > b[(size_t)r * L + bb])
                                bb = j;
                }
                for (int32_t j = 0; j < L; j++)
                        worst_rel = fmax(worst_rel, fabs(a[(size_t)r * L + j] - b[(size_t)r * L + j]) / (0.03 * mx + 0.01));
                agree += ba == bb;
        }
        TEST_SAY("dense: max |logit diff| at most %.2f of (3%% of max|logit| + 0.01); top-1 agrees %d/%d",
                 worst_rel, agree, n);
        TEST_ASSERT(worst_rel <= 1.0, "dense q8 logits off by %.3f x tolerance", worst_rel);
        TEST_ASSERT(agree >= n * 97 / 100, "dense top-1 agreement %d/%d", agree, n);
        double af = accuracy(linear_f32), aq = accuracy(q);
        TEST_SAY("dev accuracy linear f32 %.4f q8 %.4f", af, aq);
        TEST_ASSERT(aq >= af - 0.01, "q8 accuracy %.4f vs f32 %.4f", aq, af);
        free(a);
        free(b);
        kinfer_runtime_destroy(rt);
        kinfer_model_release(q);
        kinfer_model_release(qd);
}

/* ---- compact bucket map ------------------------------------------------------------------- */

/* The stored rank index answers exactly what the dense map answers, and its check catches a
 * corrupted word. (Loading models that carry it needs the loader wiring of docs/compression.md;
 * this tests the format itself.) */
static void test_rank_map(void)
{
        const uint32_t nb = (1u << 16) + 40; /* a partial last word too */
        int32_t *map = malloc(sizeof(int32_t) * nb), *old_of = malloc(sizeof(int32_t) * nb);
        uint64_t *buf = malloc(kinfer_bucket_rank_bytes(nb));
        uint8_t *seen = calloc(nb, 1);
        uint64_t s = 7;
        int32_t n_rows = 0;
        for (uint32_t b = 0; b < nb; b++) {
                s = s * 6364136223846793005ULL + 1442695040888963407ULL;
                map[b] = (s >> 33) % 5 == 0 || b == nb - 1 ? n_rows++ : -1; /* ~20% kept */
        }
        /* an injective map whose rows do not follow bucket order: reverse them */
        for (uint32_t b = 0; b < nb; b++)
                if (map[b] >= 0)
                        map[b] = n_rows - 1 - map[b];
        int64_t n = kinfer_bucket_rank_pack(map, nb, buf, old_of, seen);
        TEST_ASSERT(n == n_rows, "rank index holds %lld rows, want %d", (long long)n, n_rows);
        kinfer_bucket_rank_t r;
        TEST_ASSERT(!kinfer_bucket_rank_view(&r, buf, kinfer_bucket_rank_bytes(nb), nb), "view");
        TEST_ASSERT(kinfer_bucket_rank_view(&r, buf, kinfer_bucket_rank_bytes(nb) - 4, nb) == -1, "short view accepted");
        kinfer_bucket_rank_view(&r, buf, kinfer_bucket_rank_bytes(nb), nb);
        TEST_ASSERT(kinfer_bucket_rank_check(&r, nb, n_rows) == NULL, "check: %s", kinfer_bucket_rank_check(&r, nb, n_rows));
        int64_t wrong = 0;
        for (uint32_t b = 0; b < nb; b++) {
                int32_t row = kinfer_bucket_rank_row(&r, b);
                if (map[b] < 0 ? row != -1 : (row < 0 || old_of[row] != map[b]))
                        wrong++;
        }
        TEST_ASSERT(wrong == 0, "%lld buckets map differently", (long long)wrong);
        TEST_SAY("%d of %u buckets mapped: %zu bytes instead of %zu", n_rows, nb,
                 kinfer_bucket_rank_bytes(nb), sizeof(int32_t) * (size_t)nb);
        r.bits[100] ^= 1; /* one bucket more or less: the bases no longer add up */
        TEST_ASSERT(kinfer_bucket_rank_check(&r, nb, n_rows) != NULL, "corrupt word not detected");
        r.bits[100] ^= 1;
        r.base[5]++;
        TEST_ASSERT(kinfer_bucket_rank_check(&r, nb, n_rows) != NULL, "corrupt base not detected");
        r.base[5]--;
        r.bits[nb / 64] |= (uint64_t)1 << 63; /* past the last bucket */
        TEST_ASSERT(kinfer_bucket_rank_check(&r, nb, n_rows + 1) != NULL, "bit past the end not detected");
        /* a row shared by two buckets cannot be expressed */
        memset(seen, 0, nb);
        map[0] = map[nb - 1];
        TEST_ASSERT(kinfer_bucket_rank_pack(map, nb, buf, old_of, seen) == -1, "shared row accepted");
        free(map);
        free(old_of);
        free(buf);
        free(seen);
}

/* ---- pruning ------------------------------------------------------------------------------ */

static double row_norm(const kinfer_model_t *m, int32_t r)
{
        float tmp[256];
        const uint8_t *row = m->embed + (size_t)r * m->embed_stride;
        const float *x = (const float *)row;
        if (m->embed_dtype == KINFER_DTYPE_Q8) {
                kinfer_q8_row_dequant(row, m->dim, tmp);
                x = tmp;
        }
        double s = 0;
        for (int32_t j = 0; j < m->dim; j++)
                s += (double)x[j] * x[j];
        return sqrt(s);
}

/* Every bucket of @p p maps to a row whose bytes equal the row @p m maps it to; dropped
 * buckets map nowhere; exactly @p keep rows are left and they are the largest by norm. */
static void check_pruned_rows(const kinfer_model_t *m, const kinfer_model_t *p, int32_t keep)
{
        TEST_ASSERT(p->n_rows == keep, "rows %d, want %d", p->n_rows, keep);
        TEST_ASSERT(p->embed_dtype == m->embed_dtype && p->embed_stride == m->embed_stride, "dtype/stride");
        TEST_ASSERT(p->bucket_map || p->rank.bits, "no bucket map");
        if ((!p->bucket_map && !p->rank.bits) || p->n_rows != keep)
                return;
        uint8_t *seen = calloc((size_t)p->n_rows, 1);
        int32_t *old_of = malloc(sizeof(int32_t) * (size_t)p->n_rows);
        int64_t mismatched = 0, idf_diff = 0, resurrected = 0, mapped = 0;
        for (int32_t b = 0; b < m->n_buckets; b++) {
                int32_t o = row_of(m, (uint32_t)b), n = row_of(p, (uint32_t)b);
                if (n < 0)
                        continue;
                mapped++;
                if (o < 0) {
                        resurrected++;
                        continue;
                }
                if (memcmp(p->embed + (size_t)n * p->embed_stride, m->embed + (size_t)o * m->embed_stride,
                           m->embed_stride))
                        mismatched++;
                if (p->idf && memcmp(&p->idf[n], &m->idf[o], 4))
                        idf_diff++;
                seen[n] = 1;
                old_of[n] = o;
        }
        TEST_ASSERT(mismatched == 0, "%lld kept rows differ from the originals", (long long)mismatched);
        TEST_ASSERT(idf_diff == 0, "%lld idf values differ", (long long)idf_diff);
        TEST_ASSERT(resurrected == 0, "%lld buckets without a row got one", (long long)resurrected);
        int32_t used = 0;
        double min_kept = INFINITY;
        for (int32_t r = 0; r < p->n_rows; r++) {
                used += seen[r];
                if (seen[r])
                        min_kept = fmin(min_kept, row_norm(m, old_of[r]));
        }
        TEST_ASSERT(used == p->n_rows, "%d of %d rows are reachable", used, p->n_rows);
        /* kept rows keep their original order (monotone old index) */
        int ordered = 1;
        for (int32_t r = 1; r < p->n_rows; r++)
                if (seen[r] && seen[r - 1] && old_of[r] <= old_of[r - 1])
                        ordered = 0;
        TEST_ASSERT(ordered, "kept rows are not in their original order");
        /* every dropped row is no larger than the smallest kept one */
        uint8_t *kept = calloc((size_t)m->n_rows, 1);
        for (int32_t r = 0; r < p->n_rows; r++)
                if (seen[r])
                        kept[old_of[r]] = 1;
        double max_dropped = 0;
        for (int32_t r = 0; r < m->n_rows; r++)
                if (!kept[r])
                        max_dropped = fmax(max_dropped, row_norm(m, r));
        TEST_ASSERT(max_dropped <= min_kept, "a dropped row (norm %g) outranks a kept one (%g)", max_dropped, min_kept);
        TEST_SAY("kept %d of %d rows (%lld buckets mapped), min kept norm %.4g >= max dropped %.4g",
                 p->n_rows, m->n_rows, (long long)mapped, min_kept, max_dropped);
        free(kept);
        free(seen);
        free(old_of);
}

static void test_prune_rows(void)
{
        char errstr[512];
        kinfer_prune_opts_t po;
        kinfer_prune_opts_default(&po);
        po.keep_rows = linear_f32->n_rows / 3;
        kinfer_model_t *p = kinfer_prune(linear_f32, &po, errstr, sizeof(errstr));
        TEST_ASSERT(p != NULL, "prune: %s", errstr);
        if (p) {
                check_pruned_rows(linear_f32, p, po.keep_rows);
                TEST_ASSERT(kinfer_model_size(p) < kinfer_model_size(linear_f32), "size did not shrink");
                TEST_SAY("dev accuracy f32 %.4f, pruned to a third of the rows %.4f", accuracy(linear_f32), accuracy(p));
        }
        /* by sparsity, on a q8 model: q8 rows are copied as they are */
        kinfer_model_t *q = kinfer_quantize(linear_f32, NULL, errstr, sizeof(errstr));
        po.keep_rows = 0;
        po.sparsity = 0.75;
        kinfer_model_t *pq = q ? kinfer_prune(q, &po, errstr, sizeof(errstr)) : NULL;
        TEST_ASSERT(pq != NULL, "prune q8: %s", errstr);
        if (pq)
                check_pruned_rows(q, pq, (int32_t)floor(0.25 * q->n_rows + 0.5));
        /* pruning a pruned model composes: its map still points at identical rows */
        po.sparsity = 0.5;
        kinfer_model_t *pp = p ? kinfer_prune(p, &po, errstr, sizeof(errstr)) : NULL;
        TEST_ASSERT(pp != NULL, "prune twice: %s", errstr);
        if (pp)
                check_pruned_rows(p, pp, (int32_t)floor(0.5 * p->n_rows + 0.5));
        kinfer_model_release(pp);
        kinfer_model_release(pq);
        kinfer_model_release(q);
        kinfer_model_release(p);
}

/* Dense layers: the smallest-magnitude fraction goes, the kept weights are exact, CSR. */
static void test_prune_dense(void)
{
        char errstr[512];
        kinfer_prune_opts_t po;
        kinfer_prune_opts_default(&po);
        po.sparsity = 0.8;
        po.keep_rows = dense_f32->n_rows; /* rows untouched: only the dense layers */
        kinfer_model_t *p = kinfer_prune(dense_f32, &po, errstr, sizeof(errstr));
        TEST_ASSERT(p != NULL, "prune: %s", errstr);
        if (!p)
                return;
        const kinfer_dense_t *layers[2][2] = {{&dense_f32->hidden[0], &p->hidden[0]}, {&dense_f32->out, &p->out}};
        for (int l = 0; l < 2; l++) {
                const kinfer_dense_t *a = layers[l][0], *b = layers[l][1];
                TEST_ASSERT(b->dtype == KINFER_DTYPE_CSR, "layer %d dtype %u", l, b->dtype);
                if (b->dtype != KINFER_DTYPE_CSR)
                        continue;
                size_t n = (size_t)a->out * a->in;
                uint32_t nnz = b->csr_ptr[b->out];
                size_t want = n - (size_t)floor(0.8 * (double)n + 0.5);
                TEST_ASSERT(nnz == want, "layer %d nnz %u, want %zu", l, nnz, want);
                float min_kept = INFINITY, max_dropped = 0;
                int exact = 1;
                uint8_t *k = calloc(n, 1);
                for (int32_t o = 0; o < b->out; o++)
                        for (uint32_t q = b->csr_ptr[o]; q < b->csr_ptr[o + 1]; q++) {
                                size_t i = (size_t)o * a->in + b->csr_col[q];
                                k[i] = 1;
                                exact &= !memcmp(&b->csr_val[q], &a->w[i], 4);
                                min_kept = fminf(min_kept, fabsf(a->w[i]));
                        }
                for (size_t i = 0; i < n; i++)
                        if (!k[i])
                                max_dropped = fmaxf(max_dropped, fabsf(a->w[i]));
                free(k);
                TEST_ASSERT(exact, "layer %d: kept weights changed", l);
                TEST_ASSERT(max_dropped <= min_kept, "layer %d: dropped %g > kept %g", l, max_dropped, min_kept);
                size_t csr = kinfer_model_tensor(p, l ? KINFER_T_OUT_W : KINFER_T_HIDDEN_W)->size;
                TEST_ASSERT(csr < n * 4, "layer %d: CSR %zu bytes is not smaller than f32 %zu", l, csr, n * 4);
        }
        /* the runtime runs the sparse model: logits equal a dense evaluation of the same weights
         * up to summation order, checked through the reference path of the same model */
        kinfer_runtime_t *rt = kinfer_runtime_new(64, NULL, 0), *ref = kinfer_runtime_new(64, NULL, 0);
        kinfer_runtime_set_reference(ref, 1);
        const int32_t L = p->n_labels;
        float *x = malloc(sizeof(float) * 64 * (size_t)L), *y = malloc(sizeof(float) * 64 * (size_t)L);
        TEST_ASSERT(!kinfer_runtime_logits(rt, p, dev_ds->texts, dev_ds->lens, 64, x, errstr, sizeof(errstr)), "%s", errstr);
        TEST_ASSERT(!kinfer_runtime_logits(ref, p, dev_ds->texts, dev_ds->lens, 64, y, errstr, sizeof(errstr)), "%s", errstr);
        double worst = 0;
        for (int32_t i = 0; i < 64 * L; i++)
                worst = fmax(worst, fabs(x[i] - y[i]));
        TEST_ASSERT(worst < 1e-4, "sparse logits differ by %g", worst);
        TEST_SAY("dev accuracy dense f32 %.4f, 80%% sparse %.4f", accuracy(dense_f32), accuracy(p));
        free(x);
        free(y);
        kinfer_runtime_destroy(rt);
        kinfer_runtime_destroy(ref);
        kinfer_model_release(p);
}

/* ---- lineage ------------------------------------------------------------------------------ */

static void check_parent(const kinfer_model_t *child, const kinfer_model_t *parent, const char *method,
                         const char *relation)
{
        TEST_ASSERT(!strcmp(kinfer_model_lineage_method(child), method), "method \"%s\", want %s",
                    kinfer_model_lineage_method(child), method);
        TEST_ASSERT(kinfer_model_n_parents(child) == 1, "%s: %d parents", method, kinfer_model_n_parents(child));
        const kinfer_model_parent_t *p = kinfer_model_parent(child, 0);
        if (!p)
                return;
        TEST_ASSERT(!strcmp(p->sha256, kinfer_model_sha256_hex(parent)), "%s: parent sha %.12s, want %.12s",
                    method, p->sha256, kinfer_model_sha256_hex(parent));
        TEST_ASSERT(!strcmp(p->relation, relation), "%s: relation %s, want %s", method, p->relation, relation);
        TEST_ASSERT(!strcmp(p->name, kinfer_model_name(parent)), "%s: parent name %s", method, p->name);
}

/* A saved file's identity is the same sha256 its children name. */
static kinfer_model_t *save_load(const kinfer_model_t *m, const char *tag)
{
        char path[256], errstr[512];
        snprintf(path, sizeof(path), "/tmp/kinfer-test-compress-%d-%s.kinf", (int)getpid(), tag);
        TEST_ASSERT(kinfer_model_save(m, path, errstr, sizeof(errstr)) == 0, "%s", errstr);
        kinfer_model_t *l = kinfer_model_load_file(path, errstr, sizeof(errstr));
        TEST_ASSERT(l != NULL, "%s", errstr);
        unlink(path);
        if (l)
                TEST_ASSERT(!strcmp(kinfer_model_sha256_hex(l), kinfer_model_sha256_hex(m)), "sha changed on save");
        return l;
}

static void test_lineage_chain(void)
{
        char errstr[512];
        kinfer_model_t *t = save_load(linear_f32, "train");
        TEST_ASSERT(t && !strcmp(kinfer_model_lineage_method(t), "train"), "train method");
        kinfer_model_t *q = t ? kinfer_quantize(t, NULL, errstr, sizeof(errstr)) : NULL;
        TEST_ASSERT(q != NULL, "quantize: %s", errstr);
        kinfer_model_t *ql = q ? save_load(q, "q8") : NULL;
        if (ql) {
                check_parent(ql, t, "quantize", "quantized_from");
                TEST_ASSERT(strstr(kinfer_model_meta_json(ql), "\"scheme\"") != NULL, "quantize params");
                TEST_ASSERT(strstr(kinfer_model_meta_json(ql), "\"hyperparameters\"") != NULL,
                            "the training hyperparameters are carried over");
        }
        kinfer_prune_opts_t po;
        kinfer_prune_opts_default(&po);
        po.keep_rows = 3000;
        kinfer_model_t *p = ql ? kinfer_prune(ql, &po, errstr, sizeof(errstr)) : NULL;
        TEST_ASSERT(p != NULL, "prune: %s", errstr);
        kinfer_model_t *pl = p ? save_load(p, "pruned") : NULL;
        if (pl) {
                check_parent(pl, ql, "prune", "pruned_from");
                TEST_ASSERT(strstr(kinfer_model_meta_json(pl), "\"rows_kept\": 3000") != NULL, "prune params: %s",
                            kinfer_model_meta_json(pl));
        }
        /* distill from the pruned q8 model into a small dense student */
        kinfer_train_opts_t so;
        kinfer_train_opts_default(&so);
        so.feat.n_buckets = 1u << 16;
        so.dim = 8;
        so.epochs = 3;
        so.lr = 0.1f;
        so.threads = 1;
        so.name = "student";
        kinfer_model_t *d = pl ? kinfer_distill(pl, train_ds, NULL, &so, 2.0f, 0.5f, NULL, errstr, sizeof(errstr)) : NULL;
        TEST_ASSERT(d != NULL, "distill: %s", errstr);
        kinfer_model_t *dl = d ? save_load(d, "student") : NULL;
        if (dl) {
                check_parent(dl, pl, "distill", "distilled_from");
                const char *mj = kinfer_model_meta_json(dl);
                TEST_ASSERT(strstr(mj, "\"temperature\": 2") && strstr(mj, "\"alpha\": 0.5"), "distill params: %s", mj);
                TEST_ASSERT(strstr(mj, kinfer_model_sha256_hex(pl)) != NULL, "teacher sha in params");
                for (int32_t i = 0; i < dl->n_labels; i++)
                        TEST_ASSERT(!strcmp(kinfer_model_label(dl, i), kinfer_model_label(pl, i)), "label order %d", i);
                TEST_SAY("chain accuracies: train %.4f quantize %.4f prune %.4f distill %.4f", accuracy(t),
                         accuracy(ql), accuracy(pl), accuracy(dl));
        }
        /* prune --retrain: the parent is the input, not the internal intermediate */
        po.keep_rows = 0;
        po.sparsity = 0.5;
        po.retrain_data = train_ds;
        po.retrain_epochs = 1;
        po.threads = 1;
        kinfer_model_t *r = t ? kinfer_prune(t, &po, errstr, sizeof(errstr)) : NULL;
        TEST_ASSERT(r != NULL, "prune --retrain: %s", errstr);
        if (r) {
                check_parent(r, t, "prune", "pruned_from");
                TEST_ASSERT(strstr(kinfer_model_meta_json(r), "\"retrain\"") != NULL, "retrain params");
                TEST_ASSERT(r->n_rows == (int32_t)floor(0.5 * t->n_rows + 0.5), "retrain kept %d rows", r->n_rows);
        }
        kinfer_model_release(r);
        kinfer_model_release(d);
        kinfer_model_release(dl);
        kinfer_model_release(p);
        kinfer_model_release(pl);
        kinfer_model_release(q);
        kinfer_model_release(ql);
        kinfer_model_release(t);
}

/* Unlabelled text: the teacher labels it; the student learns the teacher's decisions. */
static void test_distill_unlabelled(void)
{
        char path[256], errstr[512];
        snprintf(path, sizeof(path), "/tmp/kinfer-test-compress-%d-plain.txt", (int)getpid());
        FILE *fp = fopen(path, "w");
        TEST_ASSERT(fp != NULL, "%s", path);
        if (!fp)
                return;
        for (int32_t i = 0; i < train_ds->n; i++) {
                /* a record's text without its label, no tabs */
                for (size_t j = 0; j < train_ds->lens[i]; j++)
                        fputc(train_ds->texts[i][j] == '\t' ? ' ' : train_ds->texts[i][j], fp);
                fputc('\n', fp);
        }
        fclose(fp);
        kinfer_dataset_t *u = kinfer_dataset_load(path, 1, errstr, sizeof(errstr));
        unlink(path);
        TEST_ASSERT(u != NULL && u->n == train_ds->n, "load plain lines: %s", u ? "count" : errstr);
        if (!u)
                return;
        kinfer_train_opts_t so;
        kinfer_train_opts_default(&so);
        so.feat.n_buckets = 1u << 17;
        so.epochs = 4;
        so.threads = 1;
        so.max_rows = 0;
        so.name = "unlabelled-student";
        kinfer_model_t *s = kinfer_distill(linear_f32, NULL, u, &so, 1.0f, 0.5f, NULL, errstr, sizeof(errstr));
        TEST_ASSERT(s != NULL, "distill unlabelled: %s", errstr);
        if (s) {
                check_parent(s, linear_f32, "distill", "distilled_from");
                TEST_ASSERT(strstr(kinfer_model_meta_json(s), "\"unlabelled\": {") != NULL, "unlabelled in params");
                /* agreement with the teacher on dev */
                const int32_t n = dev_ds->n < 500 ? dev_ds->n : 500;
                kinfer_runtime_t *rt = kinfer_runtime_new(n, NULL, 0);
                kinfer_prediction_t *pa = malloc(sizeof(*pa) * (size_t)n), *pb = malloc(sizeof(*pb) * (size_t)n);
                kinfer_runtime_classify(rt, linear_f32, dev_ds->texts, dev_ds->lens, n, 1, pa, NULL, 0);
                kinfer_runtime_classify(rt, s, dev_ds->texts, dev_ds->lens, n, 1, pb, NULL, 0);
                int agree = 0;
                for (int32_t i = 0; i < n; i++)
                        agree += pa[i].label[0] == pb[i].label[0];
                TEST_SAY("student from unlabelled text agrees with the teacher on %d/%d dev records, accuracy %.4f",
                         agree, n, accuracy(s));
                TEST_ASSERT(agree >= n * 80 / 100, "agreement %d/%d", agree, n);
                free(pa);
                free(pb);
                kinfer_runtime_destroy(rt);
        }
        kinfer_model_release(s);
        kinfer_dataset_destroy(u);
}

int main(void)
{
        char p1[1024], p2[1024], errstr[512];
        train_ds = kinfer_dataset_load(test_src_path("tests/data/sections-train.tsv", p1, sizeof(p1)), 0,
                                       errstr, sizeof(errstr));
        dev_ds = kinfer_dataset_load(test_src_path("tests/data/sections-dev.tsv", p2, sizeof(p2)), 0,
                                     errstr, sizeof(errstr));
        if (!train_ds || !dev_ds) {
                fprintf(stderr, "cannot load the sample data: %s\n", errstr);
                return 1;
        }
        TEST_RUN(test_q8_roundtrip);
        TEST_RUN(test_rank_map);
        TEST_RUN(test_bag_q8_kernel);
        linear_f32 = train_small(0, 0);
        dense_f32 = train_small(16, 16);
        if (linear_f32 && dense_f32) {
                TEST_RUN(test_quantize_model);
                TEST_RUN(test_q8_logits);
                TEST_RUN(test_prune_rows);
                TEST_RUN(test_prune_dense);
                TEST_RUN(test_lineage_chain);
                TEST_RUN(test_distill_unlabelled);
        } else {
                test_failed++;
        }
        kinfer_model_release(linear_f32);
        kinfer_model_release(dense_f32);
        kinfer_dataset_destroy(train_ds);
        kinfer_dataset_destroy(dev_ds);
        return TEST_DONE();
}
