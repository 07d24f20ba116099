/* SPDX-License-Identifier: Apache-2.0 */
/* runtime.c -- batch inference over one immutable model; a per-thread scratch arena that only
 * grows when a batch needs more than any batch before it. */
#include "kinfer/runtime/runtime.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinfer/text/fasttext.h"
#include "kinfer/text/featurize.h"
#include "model/model_int.h"
#include "runtime/ops.h"

struct kinfer_runtime_s {
        int32_t max_batch;
        int reference;
        uint32_t *buckets;  /* featurizer output for one record */
        size_t bucket_cap;
        int32_t *rows;      /* weighed features of the whole batch, record r at offs[r] */
        float *w;
        size_t feat_cap;    /* entries in rows/w */
        size_t *offs;       /* max_batch + 1 */
        kinfer_feat_scratch_t fs;
        float *act[2];      /* activations, max_batch x act_width each */
        size_t act_cap;     /* floats in each */
        uint64_t truncated; /* records featurized on their first KINFER_FEATURIZE_MAX buckets */
        size_t arena_max;   /* bytes of features + activations per part of a batch; 0 = any */
        uint64_t splits;    /* extra parts batches were split into */
        int32_t *hs_node;   /* fastText hs: the depth-first search's stack */
        float *hs_score;
        size_t hs_cap;
        /* shared featurization (kinfer_runtime_share_features): the bucket lists of the
         * recorded call's records, record r's at sb[soff[r] .. soff[r + 1]) for r < s_n */
        int share;                     /* 0 off, 1 record, 2 reuse */
        kinfer_featurizer_conf_t s_conf; /* the hashing settings they were made with */
        uint32_t *sb;
        size_t sb_cap;
        size_t *soff;                  /* max_batch + 1 */
        int32_t s_n;
        int32_t s_base;                /* the current part's first record in the call */
        uint64_t s_reused;
};

/* Share recorded bucket lists up to this many buckets (64 MiB); records past it are
 * featurized again. */
#define SHARE_MAX_BUCKETS ((size_t)16 << 20)

kinfer_runtime_t *kinfer_runtime_new(int32_t max_batch, char *errstr, size_t errstr_size)
{
        if (max_batch < 1) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                              "max_batch must be at least 1 (got %d)", max_batch);
                return NULL;
        }
        kinfer_runtime_t *rt = calloc(1, sizeof(*rt));
        if (!rt) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        rt->max_batch = max_batch;
        return rt;
}

void kinfer_runtime_destroy(kinfer_runtime_t *rt)
{
        if (!rt)
                return;
        free(rt->buckets);
        free(rt->rows);
        free(rt->w);
        free(rt->offs);
        kinfer_feat_scratch_term(&rt->fs);
        free(rt->act[0]);
        free(rt->act[1]);
        free(rt->hs_node);
        free(rt->hs_score);
        free(rt->sb);
        free(rt->soff);
        free(rt);
}

void kinfer_runtime_share_features(kinfer_runtime_t *rt, int mode)
{
        rt->share = mode == 1 || mode == 2 ? mode : 0;
        if (rt->share == 1)
                rt->s_n = 0;
}

uint64_t kinfer_runtime_shared(const kinfer_runtime_t *rt)
{
        return rt->s_reused;
}

/* The featurizer settings that decide the buckets of a text (not their weights). */
static int share_same_hashing(const kinfer_featurizer_conf_t *a, const kinfer_featurizer_conf_t *b)
{
        return a->mode == KINFER_FEAT_MODE_KINFER && b->mode == KINFER_FEAT_MODE_KINFER &&
               a->version == b->version && a->n_buckets == b->n_buckets &&
               a->word_ngrams == b->word_ngrams && a->minn == b->minn && a->maxn == b->maxn &&
               a->lowercase == b->lowercase && a->prefix_words == b->prefix_words;
}

/* Record record @p r's buckets (rt->buckets[0..nb)) for a later reuse; records past the bound
 * are not recorded (they are featurized again then). */
static void share_record(kinfer_runtime_t *rt, const kinfer_model_t *model, int32_t r, size_t nb)
{
        if (r == 0) {
                rt->s_conf = model->feat;
                rt->s_n = 0;
                if (!rt->soff && !(rt->soff = malloc(((size_t)rt->max_batch + 1) * sizeof(size_t))))
                        return;
                rt->soff[0] = 0;
        }
        if (r != rt->s_n && r != rt->s_n - 1) /* a gap (the bound was hit): stop */
                return;
        size_t at = rt->soff[r];
        if (at + nb > SHARE_MAX_BUCKETS)
                return;
        if (at + nb > rt->sb_cap) {
                size_t cap = rt->sb_cap ? rt->sb_cap : 1 << 16;
                while (cap < at + nb)
                        cap *= 2;
                uint32_t *sb = realloc(rt->sb, cap * sizeof(uint32_t));
                if (!sb)
                        return;
                rt->sb = sb;
                rt->sb_cap = cap;
        }
        memcpy(rt->sb + at, rt->buckets, nb * sizeof(uint32_t));
        rt->soff[r + 1] = at + nb;
        rt->s_n = r + 1;
}

void kinfer_runtime_set_reference(kinfer_runtime_t *rt, int on)
{
        rt->reference = on;
}

uint64_t kinfer_runtime_truncated(const kinfer_runtime_t *rt)
{
        return rt->truncated;
}

void kinfer_runtime_set_arena_max(kinfer_runtime_t *rt, size_t bytes)
{
        rt->arena_max = bytes;
}

size_t kinfer_runtime_arena_bytes(const kinfer_runtime_t *rt)
{
        return rt->feat_cap * (sizeof(int32_t) + sizeof(float)) + 2 * rt->act_cap * sizeof(float);
}

uint64_t kinfer_runtime_splits(const kinfer_runtime_t *rt)
{
        return rt->splits;
}

/* Room for one record's buckets (n <= KINFER_FEATURIZE_MAX, a power of two) and their
 * de-duplication table. @returns KINFER_OK or KINFER_ERR__NOMEM. */
static kinfer_err_t reserve_buckets(kinfer_runtime_t *rt, size_t n)
{
        if (n > rt->bucket_cap) {
                size_t cap = rt->bucket_cap ? rt->bucket_cap : 1024;
                while (cap < n)
                        cap *= 2;
                free(rt->buckets);
                rt->buckets = malloc(cap * sizeof(uint32_t));
                rt->bucket_cap = rt->buckets ? cap : 0;
                if (!rt->buckets || kinfer_feat_scratch_reserve(&rt->fs, cap))
                        return KINFER_ERR__NOMEM;
        }
        return KINFER_OK;
}

/* Hash record @p text into rt->buckets, never past their capacity: sized first by the
 * estimate, grown once to what the text turns out to need (text whose normalisation
 * expands), never beyond KINFER_FEATURIZE_MAX (the record is then featurized on its first
 * KINFER_FEATURIZE_MAX buckets and *truncated set: the caller counts it in rt->truncated once
 * the record stays in the part, not when it moves to the next part and is featurized again).
 * @returns KINFER_OK with *nb set, or KINFER_ERR__NOMEM. */
static size_t featurize_any(const kinfer_model_t *model, const char *text, size_t len,
                            uint32_t *buckets, size_t cap)
{
        if (model->feat.mode == KINFER_FEAT_MODE_FASTTEXT)
                return kinfer_ft_featurize(&model->ft, text, len, buckets, cap);
        return kinfer_featurize(&model->feat, text, len, buckets, cap);
}

static kinfer_err_t featurize_record(kinfer_runtime_t *rt, const kinfer_model_t *model,
                                     const char *text, size_t len, size_t *nb, int *truncated)
{
        size_t want = model->feat.mode == KINFER_FEAT_MODE_FASTTEXT
                          ? kinfer_ft_featurize_estimate(&model->ft, len)
                          : kinfer_featurize_estimate(&model->feat, len);
        if (reserve_buckets(rt, want < KINFER_FEATURIZE_MAX ? want : KINFER_FEATURIZE_MAX))
                return KINFER_ERR__NOMEM;
        size_t cap = rt->bucket_cap < KINFER_FEATURIZE_MAX ? rt->bucket_cap : KINFER_FEATURIZE_MAX;
        size_t n = featurize_any(model, text, len, rt->buckets, cap);
        if (n > cap && cap < KINFER_FEATURIZE_MAX) {
                if (reserve_buckets(rt, n < KINFER_FEATURIZE_MAX ? n : KINFER_FEATURIZE_MAX))
                        return KINFER_ERR__NOMEM;
                cap = rt->bucket_cap < KINFER_FEATURIZE_MAX ? rt->bucket_cap : KINFER_FEATURIZE_MAX;
                n = featurize_any(model, text, len, rt->buckets, cap);
        }
        *truncated = n > cap;
        if (n > cap)
                n = cap;
        *nb = n;
        return KINFER_OK;
}

/* Room for the batch's features so far (@p used) plus @p n; doubling, but not past the arena
 * bound (@p limit entries; SIZE_MAX: none) unless used + n needs it. @returns KINFER_OK or
 * KINFER_ERR__NOMEM. */
static kinfer_err_t reserve_feat(kinfer_runtime_t *rt, size_t used, size_t n, size_t limit)
{
        if (used + n > rt->feat_cap) {
                size_t cap = rt->feat_cap ? rt->feat_cap : 1 << 14;
                while (cap < used + n)
                        cap *= 2;
                if (cap > limit)
                        cap = used + n > limit ? used + n : limit;
                int32_t *rows = realloc(rt->rows, cap * sizeof(int32_t));
                if (rows)
                        rt->rows = rows;
                float *w = realloc(rt->w, cap * sizeof(float));
                if (w)
                        rt->w = w;
                if (!rows || !w)
                        return KINFER_ERR__NOMEM;
                rt->feat_cap = cap;
        }
        return KINFER_OK;
}

/* Room for n floats in each activation buffer. @returns KINFER_OK or KINFER_ERR__NOMEM. */
static kinfer_err_t reserve_act(kinfer_runtime_t *rt, size_t n)
{
        if (n <= rt->act_cap)
                return KINFER_OK;
        for (int i = 0; i < 2; i++) {
                free(rt->act[i]);
                rt->act[i] = aligned_alloc(64, ((n * sizeof(float)) + 63) & ~(size_t)63);
        }
        rt->act_cap = rt->act[0] && rt->act[1] ? n : 0;
        return rt->act_cap ? KINFER_OK : KINFER_ERR__NOMEM;
}

/* Featurize and bag the leading texts into X (*done x dim), as many as the arena bound lets
 * in (at least one); then run the dense layers. On success *outp points at the logits
 * (*done x n_labels) inside the arena. */
static kinfer_err_t forward(kinfer_runtime_t *rt, const kinfer_model_t *model,
                            const char *const *texts, const size_t *lens, int32_t n,
                            int32_t *done, float **outp, char *errstr, size_t errstr_size)
{
        if (n < 0 || n > rt->max_batch)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "batch of %d records, runtime holds at most %d", n, rt->max_batch);
        int32_t width = model->dim > model->n_labels ? model->dim : model->n_labels;
        for (int i = 0; i < model->n_hidden; i++)
                if (model->hidden[i].out > width)
                        width = model->hidden[i].out;
        /* the arena bound: a quarter for the activations (8 bytes per record per unit of
         * width: a part's records), the rest for the features (8 bytes each) */
        const size_t fbytes = sizeof(int32_t) + sizeof(float), abytes = 2 * sizeof(float) * (size_t)width;
        size_t flimit = SIZE_MAX, rlimit = (size_t)n;
        if (rt->arena_max) {
                flimit = (rt->arena_max - rt->arena_max / 4) / fbytes;
                rlimit = rt->arena_max / 4 / abytes;
                if (rlimit < 1)
                        rlimit = 1;
        }
        if (!rt->arena_max && reserve_act(rt, (size_t)rt->max_batch * (size_t)width))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory (activations)");

        if (!rt->offs && !(rt->offs = malloc(((size_t)rt->max_batch + 1) * sizeof(size_t))))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
        /* Phase 1: featurize and weigh every record (compute-bound), up to the arena bound. */
        size_t used = 0;
        rt->offs[0] = 0;
        for (int32_t r = 0; r < n; r++) {
                size_t nb;
                int truncated;
                if ((size_t)r >= rlimit) {
                        n = r; /* the rest goes in the next part */
                        rt->splits++;
                        break;
                }
                int32_t abs_r = rt->s_base + r;
                if (rt->share == 2 && abs_r < rt->s_n && share_same_hashing(&rt->s_conf, &model->feat)) {
                        /* the very text, hashed the same way before: its buckets again */
                        nb = rt->soff[abs_r + 1] - rt->soff[abs_r];
                        if (reserve_buckets(rt, nb ? nb : 1))
                                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM,
                                                     "out of memory (features of a %zu-byte record)", lens[r]);
                        memcpy(rt->buckets, rt->sb + rt->soff[abs_r], nb * sizeof(uint32_t));
                        truncated = 0; /* counted when it was featurized */
                        rt->s_reused++;
                } else {
                        if (featurize_record(rt, model, texts[r], lens[r], &nb, &truncated))
                                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM,
                                                     "out of memory (features of a %zu-byte record)", lens[r]);
                        if (rt->share == 1)
                                share_record(rt, model, abs_r, nb);
                }
                if (rt->arena_max && r > 0 && used + nb > flimit) {
                        n = r; /* the rest goes in the next part (this record featurized again) */
                        rt->splits++;
                        break;
                }
                rt->truncated += (uint64_t)truncated;
                if (reserve_feat(rt, used, nb, flimit))
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM,
                                             "out of memory (features of a %zu-byte record)", lens[r]);
                used += kinfer_feat_weigh(&model->feat, rt->buckets, nb,
                                          model->rank.bits ? &model->rank : NULL, model->bucket_map,
                                          model->idf, &rt->fs, rt->rows + used, rt->w + used);
                rt->offs[r + 1] = used;
        }
        *done = n;
        if (rt->arena_max && reserve_act(rt, (size_t)n * (size_t)width))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory (activations)");
        /* Phase 2: the embedding bags (memory-bound; prefetches run across records). */
        (rt->reference ? kinfer_bag_batch_ref : kinfer_bag_batch)(
            model->embed_dtype, model->embed, model->embed_stride, model->dim, model->n_rows,
            rt->rows, rt->w, rt->offs, n, model->bias, rt->act[0]);
        int cur = 0;
        for (int i = 0; i < model->n_hidden; i++) {
                const kinfer_dense_t *d = &model->hidden[i];
                float *Y = rt->act[cur ^ 1];
                if (rt->reference)
                        kinfer_dense_ref(d, rt->act[cur], n, Y);
                else
                        kinfer_dense(d, rt->act[cur], n, Y);
                kinfer_relu(Y, (size_t)n * (size_t)d->out);
                cur ^= 1;
        }
        if (model->out.out) {
                float *Y = rt->act[cur ^ 1];
                if (rt->reference)
                        kinfer_dense_ref(&model->out, rt->act[cur], n, Y);
                else
                        kinfer_dense(&model->out, rt->act[cur], n, Y);
                cur ^= 1;
        }
        *outp = rt->act[cur];
        return KINFER_OK;
}

kinfer_err_t kinfer_runtime_logits(kinfer_runtime_t *rt, const kinfer_model_t *model,
                                   const char *const *texts, const size_t *lens, int32_t n,
                                   float *logits, char *errstr, size_t errstr_size)
{
        if (n < 0 || n > rt->max_batch)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "batch of %d records, runtime holds at most %d", n, rt->max_batch);
        for (int32_t r0 = 0; r0 < n;) {
                float *L;
                int32_t m;
                rt->s_base = r0;
                kinfer_err_t err = forward(rt, model, texts + r0, lens + r0, n - r0, &m, &L,
                                           errstr, errstr_size);
                if (err)
                        return err;
                memcpy(logits + (size_t)r0 * (size_t)model->n_labels, L,
                       sizeof(float) * (size_t)m * (size_t)model->n_labels);
                r0 += m;
        }
        return KINFER_OK;
}

/* fastText's table sigmoid (loss.cc: 512 steps over [-8, 8], 0 and 1 outside). */
static float ft_sigmoid(float x)
{
        /* NaN too: a model with non-finite weights (an imported fastText file can hold them)
         * must not reach the cast below, which is undefined for NaN (fuzz_fasttext found it) */
        if (!(x >= -8))
                return 0.0f;
        if (x > 8)
                return 1.0f;
        /* the table entry, computed where fastText fills its table */
        int64_t i = (int64_t)((x + 8) * 512 / 8 / 2);
        float v = (float)(i * 2 * 8) / 512 - 8;
        return (float)(1.0 / (1.0 + expf(-v)));
}

/* fastText's std_log */
static inline float ft_log(float x)
{
        return (float)log((double)x + 1e-5);
}

/* fastText keeps its k best in a std::vector heap (push_heap/pop_heap, then sort_heap, with
 * comparePairs: a.score > b.score); equal scores (the table sigmoid makes many) come out in the
 * order those algorithms leave them. These are libstdc++'s algorithms, step for step, so that
 * ties are ranked as fastText ranks them. */
typedef struct ft_pair_s {
        float score;
        int32_t label;
} ft_pair_t;

static inline int ft_comp(const ft_pair_t *a, const ft_pair_t *b)
{
        return a->score > b->score;
}

static void ft_push_hole(ft_pair_t *h, long hole, long top, ft_pair_t v)
{
        long parent = (hole - 1) / 2;
        while (hole > top && ft_comp(&h[parent], &v)) {
                h[hole] = h[parent];
                hole = parent;
                parent = (hole - 1) / 2;
        }
        h[hole] = v;
}

static void ft_adjust(ft_pair_t *h, long hole, long len, ft_pair_t v)
{
        const long top = hole;
        long child = hole;
        while (child < (len - 1) / 2) {
                child = 2 * (child + 1);
                if (ft_comp(&h[child], &h[child - 1]))
                        child--;
                h[hole] = h[child];
                hole = child;
        }
        if ((len & 1) == 0 && child == (len - 2) / 2) {
                child = 2 * (child + 1);
                h[hole] = h[child - 1];
                hole = child - 1;
        }
        ft_push_hole(h, hole, top, v);
}

/* pop_heap over h[0..n): the front moves to h[n-1] */
static void ft_pop(ft_pair_t *h, long n)
{
        if (n > 1) {
                ft_pair_t v = h[n - 1];
                h[n - 1] = h[0];
                ft_adjust(h, 0, n - 1, v);
        }
}

/* heap.push_back(v); push_heap; if (size > k) { pop_heap; pop_back } */
static void ft_heap_add(ft_pair_t *h, int32_t *n, int32_t k, float score, int32_t label)
{
        h[*n] = (ft_pair_t){score, label};
        ft_push_hole(h, *n, 0, h[*n]);
        (*n)++;
        if (*n > k) {
                ft_pop(h, *n);
                (*n)--;
        }
}

/* The scores of fastText's hs and sigmoid outputs from the logits @p z (one per output row),
 * as fastText's predict computes them: log-scores, ranked, reported as exp(score). */
static void ft_scores(kinfer_runtime_t *rt, const kinfer_model_t *model, const float *z, int32_t k,
                      kinfer_prediction_t *o)
{
        const int32_t L = model->n_labels;
        ft_pair_t h[KINFER_TOPK_MAX + 1];
        int32_t n = 0;
        if (model->out_kind == KINFER_OUT_FT_SIGMOID) {
                for (int32_t j = 0; j < L; j++) { /* Loss::findKBest */
                        float s = ft_log(ft_sigmoid(z[j]));
                        if (n == k && s < h[0].score)
                                continue;
                        ft_heap_add(h, &n, k, s, j);
                }
        } else {
                /* HierarchicalSoftmaxLoss::dfs: depth-first, left child first, pruned once k
                 * leaves score higher (no 1e-5 threshold: kinfer always answers k labels) */
                int32_t sp = 0;
                rt->hs_node[sp] = 2 * L - 2;
                rt->hs_score[sp++] = 0.0f;
                while (sp > 0) {
                        sp--;
                        int32_t node = rt->hs_node[sp];
                        float score = rt->hs_score[sp];
                        if (n == k && score < h[0].score)
                                continue;
                        if (node < L) {
                                ft_heap_add(h, &n, k, score, node);
                                continue;
                        }
                        float f = (float)(1.0 / (1.0 + expf(-z[node - L])));
                        const int32_t *ch = &model->ft_tree[2 * (node - L)];
                        /* right is pushed first so that left is searched first */
                        rt->hs_node[sp] = ch[1];
                        rt->hs_score[sp++] = score + ft_log(f);
                        rt->hs_node[sp] = ch[0];
                        rt->hs_score[sp++] = score + ft_log(1.0f - f);
                }
        }
        for (long m = n; m > 1; m--) /* sort_heap: best first */
                ft_pop(h, m);
        o->n = n;
        for (int32_t i = 0; i < n; i++) {
                o->label[i] = h[i].label;
                o->prob[i] = expf(h[i].score);
        }
}

kinfer_err_t kinfer_runtime_classify(kinfer_runtime_t *rt, const kinfer_model_t *model,
                                     const char *const *texts, const size_t *lens, int32_t n,
                                     int32_t k, kinfer_prediction_t *out, char *errstr,
                                     size_t errstr_size)
{
        if (k < 1 || k > KINFER_TOPK_MAX)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "k must be in [1, %d] (got %d)", KINFER_TOPK_MAX, k);
        if (k > model->n_labels)
                k = model->n_labels;
        if (n < 0 || n > rt->max_batch)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "batch of %d records, runtime holds at most %d", n, rt->max_batch);
        const float inv_t = 1.0f / model->temperature;
        if (model->out_kind == KINFER_OUT_FT_HS && (size_t)model->n_labels > rt->hs_cap) {
                free(rt->hs_node);
                free(rt->hs_score);
                rt->hs_node = malloc(2 * (size_t)model->n_labels * sizeof(int32_t));
                rt->hs_score = malloc(2 * (size_t)model->n_labels * sizeof(float));
                rt->hs_cap = rt->hs_node && rt->hs_score ? (size_t)model->n_labels : 0;
                if (!rt->hs_cap)
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
        }
        for (int32_t r0 = 0; r0 < n;) { /* one part, or more under the arena bound */
                float *L;
                int32_t m;
                rt->s_base = r0;
                kinfer_err_t err = forward(rt, model, texts + r0, lens + r0, n - r0, &m, &L,
                                           errstr, errstr_size);
                if (err)
                        return err;
                for (int32_t r = 0; r < m; r++) {
                        float *p = L + (size_t)r * model->n_labels;
                        kinfer_prediction_t *o = &out[r0 + r];
                        if (model->out_kind != KINFER_OUT_SOFTMAX) {
                                ft_scores(rt, model, p, k, o);
                                o->n_features = (int32_t)(rt->offs[r + 1] - rt->offs[r]);
                                continue;
                        }
                        if (inv_t != 1.0f)
                                for (int32_t j = 0; j < model->n_labels; j++)
                                        p[j] *= inv_t;
                        /* the loader refuses non-finite weights, but finite weights can still
                         * overflow a logit: scores stay finite (NaN ranks last, +-Inf as the
                         * largest float) */
                        for (int32_t j = 0; j < model->n_labels; j++)
                                if (!isfinite(p[j]))
                                        p[j] = isnan(p[j]) ? -FLT_MAX : p[j] > 0 ? FLT_MAX : -FLT_MAX;
                        o->n = k;
                        o->n_features = (int32_t)(rt->offs[r + 1] - rt->offs[r]);
                        if (rt->reference) {
                                kinfer_softmax(p, model->n_labels);
                                kinfer_topk(p, model->n_labels, k, o->label, o->prob);
                        } else { /* the k winners' probabilities only (ops.c) */
                                kinfer_softmax_topk(p, model->n_labels, k, o->label, o->prob);
                        }
                }
                r0 += m;
        }
        return KINFER_OK;
}
