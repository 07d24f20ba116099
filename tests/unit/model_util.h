/* SPDX-License-Identifier: Apache-2.0 */
/* model_util.h -- build small random models with the model builder, for tests. */
#ifndef KINFER_TEST_MODEL_UTIL_H
#define KINFER_TEST_MODEL_UTIL_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kinfer/text/featurize.h"
#include "kinfer/model/model_write.h"

static float tm_rand(uint64_t *s)
{
        *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
        return (float)((*s >> 40) & 0xffffff) / (float)0x800000 - 1.0f;
}

enum { TM_POISON_NONE, TM_POISON_EMBED_NAN, TM_POISON_BIAS_INF, TM_POISON_HIDDEN_NAN, TM_POISON_OUT_B_INF };

/* tm_build() with label names of its own (@p label_names: NULL for the Greek letters) and one
 * non-finite number planted in a tensor (@p poison, TM_POISON_*), for the loader's checks. */
static uint8_t *tm_build_ex(uint64_t seed, int32_t L, int32_t D, int32_t H, int with_map,
                            const char *const *label_names, int poison, size_t *lenp);
/* tm_build_ex() over @p n_buckets buckets (a power of two; 1024 for the others). */
static uint8_t *tm_build_sized(uint64_t seed, int32_t L, int32_t D, int32_t H, int with_map,
                               const char *const *label_names, int poison, int32_t n_buckets,
                               size_t *lenp);

/* A model over 1024 buckets with n_labels labels: linear (dim 0) or embedding dim D with an
 * optional hidden layer H; with_map keeps every other bucket. Returns malloc'd file bytes. */
static inline uint8_t *tm_build(uint64_t seed, int32_t L, int32_t D, int32_t H, int with_map, size_t *lenp)
{
        return tm_build_ex(seed, L, D, H, with_map, NULL, TM_POISON_NONE, lenp);
}

static uint8_t *tm_build_ex(uint64_t seed, int32_t L, int32_t D, int32_t H, int with_map,
                            const char *const *label_names, int poison, size_t *lenp)
{
        return tm_build_sized(seed, L, D, H, with_map, label_names, poison, 1024, lenp);
}

static uint8_t *tm_build_sized(uint64_t seed, int32_t L, int32_t D, int32_t H, int with_map,
                               const char *const *label_names, int poison, int32_t n_buckets,
                               size_t *lenp)
{
        kinfer_model_builder_t *mb = kinfer_model_builder_new();
        kinfer_featurizer_conf_t fc;
        kinfer_featurizer_conf_default(&fc);
        fc.n_buckets = n_buckets;
        int linear = D == 0;
        int32_t dim = linear ? L : D;
        int32_t n_rows = with_map ? n_buckets / 2 : n_buckets;
        const char *names[16] = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
                                 "iota", "kappa", "lambda", "mu", "nu", "xi", "omicron", "pi"};
        size_t lsize;
        uint8_t *labels = kinfer_labels_pack(label_names ? label_names : (const char *const *)names, L, &lsize);
        const char *meta = "{\"name\": \"tiny\", \"lineage\": {\"method\": \"train\", \"params\": {}, \"parents\": []}}";
        int32_t arch[8] = {dim, H ? 1 : 0, L, 0, 0, 0, 0, 0};
        kinfer_model_builder_add(mb, KINFER_T_META, KINFER_DTYPE_BYTES, 1, (uint32_t)strlen(meta), meta, strlen(meta));
        kinfer_model_builder_add(mb, KINFER_T_LABELS, KINFER_DTYPE_BYTES, 1, (uint32_t)lsize, labels, lsize);
        kinfer_model_builder_add(mb, KINFER_T_FEATURIZER, KINFER_DTYPE_BYTES, 1, sizeof(fc), &fc, sizeof(fc));
        kinfer_model_builder_add(mb, KINFER_T_ARCH, KINFER_DTYPE_I32, 1, 8, arch, sizeof(arch));
        if (with_map) {
                int32_t *map = malloc(sizeof(int32_t) * (size_t)n_buckets);
                for (int32_t i = 0; i < n_buckets; i++)
                        map[i] = i % 2 ? -1 : i / 2;
                kinfer_model_builder_add(mb, KINFER_T_BUCKET_MAP, KINFER_DTYPE_I32, 1, (uint32_t)n_buckets,
                                         map, sizeof(int32_t) * (size_t)n_buckets);
                free(map);
        }
        float *idf = malloc(sizeof(float) * (size_t)n_rows);
        for (int i = 0; i < n_rows; i++)
                idf[i] = 1.0f + (float)(i % 7) / 3.0f;
        kinfer_model_builder_add(mb, KINFER_T_IDF, KINFER_DTYPE_F32, 1, (uint32_t)n_rows, idf, sizeof(float) * (size_t)n_rows);
        float *E = malloc(sizeof(float) * (size_t)n_rows * dim);
        for (size_t i = 0; i < (size_t)n_rows * dim; i++)
                E[i] = tm_rand(&seed);
        if (poison == TM_POISON_EMBED_NAN)
                E[(size_t)3 * dim + 1] = NAN;
        kinfer_model_builder_add(mb, KINFER_T_EMBED, KINFER_DTYPE_F32, (uint32_t)n_rows, (uint32_t)dim, E, sizeof(float) * (size_t)n_rows * dim);
        float bias[64];
        for (int i = 0; i < dim; i++)
                bias[i] = 0.1f * tm_rand(&seed);
        if (poison == TM_POISON_BIAS_INF)
                bias[dim - 1] = INFINITY;
        kinfer_model_builder_add(mb, KINFER_T_BIAS, KINFER_DTYPE_F32, 1, (uint32_t)dim, bias, sizeof(float) * (size_t)dim);
        int32_t width = dim;
        float *W = malloc(sizeof(float) * 64 * 64), b[64];
        if (H) {
                for (int i = 0; i < H * dim; i++)
                        W[i] = tm_rand(&seed);
                if (poison == TM_POISON_HIDDEN_NAN)
                        W[dim + 2] = NAN;
                for (int i = 0; i < H; i++)
                        b[i] = 0.1f * tm_rand(&seed);
                kinfer_model_builder_add(mb, KINFER_T_HIDDEN_W, KINFER_DTYPE_F32, (uint32_t)H, (uint32_t)dim, W, sizeof(float) * (size_t)H * dim);
                kinfer_model_builder_add(mb, KINFER_T_HIDDEN_B, KINFER_DTYPE_F32, 1, (uint32_t)H, b, sizeof(float) * (size_t)H);
                width = H;
        }
        if (!linear) {
                for (int i = 0; i < L * width; i++)
                        W[i] = tm_rand(&seed);
                for (int i = 0; i < L; i++)
                        b[i] = 0.1f * tm_rand(&seed);
                if (poison == TM_POISON_OUT_B_INF)
                        b[0] = -INFINITY;
                kinfer_model_builder_add(mb, KINFER_T_OUT_W, KINFER_DTYPE_F32, (uint32_t)L, (uint32_t)width, W, sizeof(float) * (size_t)L * width);
                kinfer_model_builder_add(mb, KINFER_T_OUT_B, KINFER_DTYPE_F32, 1, (uint32_t)L, b, sizeof(float) * (size_t)L);
        }
        uint8_t *buf = NULL;
        char errstr[256];
        kinfer_model_builder_serialize(mb, &buf, lenp, errstr, sizeof(errstr));
        kinfer_model_builder_destroy(mb);
        free(labels);
        free(idf);
        free(E);
        free(W);
        return buf;
}

#endif
