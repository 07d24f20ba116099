/* SPDX-License-Identifier: Apache-2.0 */
/* train.c -- softmax cross-entropy SGD with linear learning-rate decay.
 *
 * Data-parallel: K threads each train a replica on their shard; every sync_every records the
 * replicas are averaged (w = 1/K sum_k w_k), only over the embedding rows some replica touched
 * since the last sync, plus the dense layers. With one thread and a fixed seed the result is
 * deterministic. Features come from featurize.c's kinfer_featurize + kinfer_feat_weigh, the
 * very functions the runtime uses.
 *
 * Parameters live in one float vector per replica:
 *   [ E (n_rows x D) | be (D) | W1 (H x D) | b1 (H) | Wo (L x Wd) | bo (L) ]
 * Linear models (dim 0): D = L, no W1/Wo: logits = be + sum_i w_i E[r_i].
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kinfer/model/model_write.h"
#include "kinfer/runtime/runtime.h"
#include "kinfer/core/sha256.h"
#include "kinfer/train/train.h"
#include "model/model_int.h"
#include "runtime/ops.h"

void kinfer_train_opts_default(kinfer_train_opts_t *opts)
{
        memset(opts, 0, sizeof(*opts));
        kinfer_featurizer_conf_default(&opts->feat);
        opts->dim = 0;
        opts->hidden = 0;
        opts->feat.prefix_words = 6;
        opts->epochs = 15;
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

static double now_sec(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng_next(uint64_t *s)
{
        uint64_t x = *s;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *s = x;
        return x * 0x2545f4914f6cdd1dULL;
}

static float rng_uniform(uint64_t *s) /* [-1, 1) */
{
        return (float)((double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

/* ---- features ------------------------------------------------------------------------- */

typedef struct feats_s {
        int32_t n;
        int64_t *ptr; /* n + 1 */
        int32_t *rows;
        float *w;
} feats_t;

static void feats_free(feats_t *f)
{
        free(f->ptr);
        free(f->rows);
        free(f->w);
        memset(f, 0, sizeof(*f));
}

typedef struct feat_job_s {
        const kinfer_featurizer_conf_t *conf;
        const kinfer_dataset_t *ds;
        int32_t begin, end;
        const int32_t *map;  /* NULL: count document frequencies */
        const float *idf;
        uint32_t *df;        /* out when map == NULL: per-thread df (n_buckets) */
        /* out when map != NULL: per-record features, in a private CSR */
        int64_t *ptr;
        int32_t *rows;
        float *w;
        size_t cap, len;
        int oom;
} feat_job_t;

static void *feat_thread(void *arg)
{
        feat_job_t *job = arg;
        kinfer_feat_scratch_t fs = {0};
        uint32_t *buckets = NULL;
        int32_t *rows = NULL;
        float *w = NULL;
        size_t cap = 0;
        for (int32_t i = job->begin; i < job->end && !job->oom; i++) {
                size_t bound = kinfer_featurize_bound(job->conf, job->ds->lens[i]);
                if (bound > cap) {
                        cap = bound * 2;
                        free(buckets); free(rows); free(w);
                        buckets = malloc(cap * 4);
                        rows = malloc(cap * 4);
                        w = malloc(cap * 4);
                        if (!buckets || !rows || !w || kinfer_feat_scratch_reserve(&fs, cap)) {
                                job->oom = 1;
                                break;
                        }
                }
                size_t nb = kinfer_featurize(job->conf, job->ds->texts[i], job->ds->lens[i], buckets);
                size_t nf = kinfer_feat_weigh(job->conf, buckets, nb, NULL, job->map, job->idf, &fs, rows, w);
                if (!job->map) {
                        for (size_t j = 0; j < nf; j++)
                                job->df[rows[j]]++;
                        continue;
                }
                if (job->len + nf > job->cap) {
                        size_t nc = (job->cap ? job->cap : 1 << 16);
                        while (nc < job->len + nf)
                                nc *= 2;
                        int32_t *nr = realloc(job->rows, nc * 4);
                        if (nr)
                                job->rows = nr;
                        float *nw = realloc(job->w, nc * 4);
                        if (nw)
                                job->w = nw;
                        if (!nr || !nw) {
                                job->oom = 1;
                                break;
                        }
                        job->cap = nc;
                }
                memcpy(job->rows + job->len, rows, nf * 4);
                memcpy(job->w + job->len, w, nf * 4);
                job->len += nf;
                job->ptr[i - job->begin + 1] = (int64_t)job->len;
        }
        free(buckets);
        free(rows);
        free(w);
        kinfer_feat_scratch_term(&fs);
        return NULL;
}

/* Featurize @p ds with @p threads threads: document frequencies (map == NULL) or the weighed
 * features of every record into @p out. */
static int featurize_all(const kinfer_featurizer_conf_t *conf, const kinfer_dataset_t *ds,
                         int threads, const int32_t *map, const float *idf, uint32_t *df,
                         feats_t *out)
{
        feat_job_t jobs[64];
        pthread_t tids[64];
        if (threads > 64)
                threads = 64;
        if (threads > ds->n)
                threads = ds->n;
        int rc = 0;
        for (int t = 0; t < threads; t++) {
                feat_job_t *j = &jobs[t];
                memset(j, 0, sizeof(*j));
                j->conf = conf;
                j->ds = ds;
                j->begin = (int32_t)((int64_t)ds->n * t / threads);
                j->end = (int32_t)((int64_t)ds->n * (t + 1) / threads);
                j->map = map;
                j->idf = idf;
                if (!map) {
                        j->df = calloc(conf->n_buckets, sizeof(uint32_t));
                        if (!j->df)
                                j->oom = 1;
                } else {
                        j->ptr = calloc((size_t)(j->end - j->begin) + 1, sizeof(int64_t));
                        if (!j->ptr)
                                j->oom = 1;
                }
        }
        for (int t = 0; t < threads; t++)
                if (pthread_create(&tids[t], NULL, feat_thread, &jobs[t]))
                        feat_thread(&jobs[t]), tids[t] = 0;
        for (int t = 0; t < threads; t++)
                if (tids[t])
                        pthread_join(tids[t], NULL);
        for (int t = 0; t < threads; t++)
                rc |= jobs[t].oom;
        if (!map) {
                for (int t = 0; t < threads; t++) {
                        if (!rc)
                                for (uint32_t b = 0; b < conf->n_buckets; b++)
                                        df[b] += jobs[t].df[b];
                        free(jobs[t].df);
                }
                return rc ? -1 : 0;
        }
        size_t total = 0;
        for (int t = 0; t < threads; t++)
                total += jobs[t].len;
        memset(out, 0, sizeof(*out));
        out->n = ds->n;
        out->ptr = malloc(((size_t)ds->n + 1) * sizeof(int64_t));
        out->rows = malloc((total ? total : 1) * 4);
        out->w = malloc((total ? total : 1) * 4);
        if (!out->ptr || !out->rows || !out->w)
                rc = 1;
        size_t base = 0;
        if (!rc) {
                out->ptr[0] = 0;
                for (int t = 0; t < threads; t++) {
                        feat_job_t *j = &jobs[t];
                        memcpy(out->rows + base, j->rows, j->len * 4);
                        memcpy(out->w + base, j->w, j->len * 4);
                        for (int32_t i = j->begin; i < j->end; i++)
                                out->ptr[i + 1] = (int64_t)base + j->ptr[i - j->begin + 1];
                        base += j->len;
                }
        }
        for (int t = 0; t < threads; t++) {
                free(jobs[t].ptr);
                free(jobs[t].rows);
                free(jobs[t].w);
        }
        if (rc)
                feats_free(out);
        return rc ? -1 : 0;
}

/* ---- the model being trained ---------------------------------------------------------- */

typedef struct net_s {
        int32_t L, D, H, Wd; /* labels, bag width, hidden width, width before the output */
        int linear;
        int64_t n_rows;
        size_t off_be, off_w1, off_b1, off_wo, off_bo, n_params;
} net_t;

typedef struct scratch_s {
        float *h0, *h1, *z, *g, *gh, *gh0;
} scratch_t;

static int scratch_init(scratch_t *s, const net_t *net)
{
        size_t m = (size_t)(net->D > net->L ? net->D : net->L);
        if ((size_t)net->H > m)
                m = (size_t)net->H;
        float *blk = calloc(6 * m, sizeof(float));
        if (!blk)
                return -1;
        s->h0 = blk;
        s->h1 = blk + m;
        s->z = blk + 2 * m;
        s->g = blk + 3 * m;
        s->gh = blk + 4 * m;
        s->gh0 = blk + 5 * m;
        return 0;
}

/* Forward one record; logits into s->z. */
static void net_forward(const net_t *net, const float *P, const int32_t *rows, const float *w,
                        int64_t nf, scratch_t *s)
{
        const int32_t D = net->D;
        memcpy(s->h0, P + net->off_be, sizeof(float) * (size_t)D);
        for (int64_t i = 0; i < nf; i++) {
                const float *e = P + (size_t)rows[i] * D;
                const float wi = w[i];
                for (int32_t j = 0; j < D; j++)
                        s->h0[j] += wi * e[j];
        }
        if (net->linear) {
                memcpy(s->z, s->h0, sizeof(float) * (size_t)D);
                return;
        }
        const float *h = s->h0;
        if (net->H) {
                const float *W1 = P + net->off_w1, *b1 = P + net->off_b1;
                for (int32_t o = 0; o < net->H; o++) {
                        float a = b1[o];
                        for (int32_t j = 0; j < D; j++)
                                a += W1[(size_t)o * D + j] * s->h0[j];
                        s->h1[o] = a > 0 ? a : 0;
                }
                h = s->h1;
        }
        const float *Wo = P + net->off_wo, *bo = P + net->off_bo;
        for (int32_t o = 0; o < net->L; o++) {
                float a = bo[o];
                for (int32_t j = 0; j < net->Wd; j++)
                        a += Wo[(size_t)o * net->Wd + j] * h[j];
                s->z[o] = a;
        }
}

/* Backward one record with output gradient s->g (dLoss/dz); SGD update with rate lr.
 * dirty (optional) marks touched rows. */
static void net_backward(const net_t *net, float *P, const int32_t *rows, const float *w,
                         int64_t nf, scratch_t *s, float lr, float l2, uint8_t *dirty)
{
        const int32_t D = net->D;
        const float *gh0 = s->g;
        if (!net->linear) {
                const float *h = net->H ? s->h1 : s->h0;
                float *Wo = P + net->off_wo, *bo = P + net->off_bo;
                memset(s->gh, 0, sizeof(float) * (size_t)net->Wd);
                for (int32_t o = 0; o < net->L; o++) {
                        const float go = s->g[o];
                        float *wr = Wo + (size_t)o * net->Wd;
                        for (int32_t j = 0; j < net->Wd; j++) {
                                s->gh[j] += go * wr[j];
                                wr[j] -= lr * go * h[j];
                        }
                        bo[o] -= lr * go;
                }
                if (net->H) {
                        float *W1 = P + net->off_w1, *b1 = P + net->off_b1;
                        memset(s->gh0, 0, sizeof(float) * (size_t)D);
                        for (int32_t o = 0; o < net->H; o++) {
                                if (s->h1[o] <= 0)
                                        continue;
                                const float go = s->gh[o];
                                float *wr = W1 + (size_t)o * D;
                                for (int32_t j = 0; j < D; j++) {
                                        s->gh0[j] += go * wr[j];
                                        wr[j] -= lr * go * s->h0[j];
                                }
                                b1[o] -= lr * go;
                        }
                        gh0 = s->gh0;
                } else {
                        gh0 = s->gh;
                }
        }
        float *be = P + net->off_be;
        for (int32_t j = 0; j < D; j++)
                be[j] -= lr * gh0[j];
        const float decay = 1.0f - lr * l2;
        for (int64_t i = 0; i < nf; i++) {
                float *e = P + (size_t)rows[i] * D;
                const float a = lr * w[i];
                if (l2 > 0)
                        for (int32_t j = 0; j < D; j++)
                                e[j] = e[j] * decay - a * gh0[j];
                else
                        for (int32_t j = 0; j < D; j++)
                                e[j] -= a * gh0[j];
                if (dirty)
                        dirty[rows[i]] = 1;
        }
}

/* ---- the training loop ---------------------------------------------------------------- */

typedef struct trainer_s {
        const kinfer_train_opts_t *opts;
        const kinfer_dataset_t *ds;
        net_t net;
        int K;
        float **P;          /* K replicas (P[0] is the master) */
        uint8_t **dirty;    /* K dirty-row maps, or NULL */
        feats_t tr, dev;
        const int32_t *y;   /* label per train record, -1 = none */
        const int32_t *ydev;
        int32_t *order;     /* shuffled record order per epoch */
        pthread_barrier_t barrier;
        atomic_llong steps, words;
        int64_t total_steps;
        double t0, last_report;
        int32_t epoch, epochs;
        double loss_sum[64];
        int64_t loss_n[64];
        double dev_acc, best_acc;
        int32_t best_epoch, bad_epochs;
        float *best;        /* snapshot of the best parameters (dev early stopping) */
        int stop, oom;
        double last_loss;
} trainer_t;

static void targets(const trainer_t *T, int32_t i, scratch_t *s, double *loss)
{
        const net_t *net = &T->net;
        const kinfer_train_opts_t *o = T->opts;
        const int32_t L = net->L;
        const int32_t y = T->y[i];
        if (o->soft_targets) {
                const float *q = o->soft_targets + (size_t)i * L;
                const float tau = o->temperature > 0 ? o->temperature : 1.0f;
                const float alpha = y < 0 ? 1.0f : o->alpha;
                /* soft part: tau * (softmax(z/tau) - q), the usual tau^2-scaled KL gradient */
                for (int32_t j = 0; j < L; j++)
                        s->gh[j] = s->z[j] / tau;
                kinfer_softmax(s->gh, L);
                double l = 0;
                for (int32_t j = 0; j < L; j++)
                        if (q[j] > 0)
                                l -= q[j] * log(fmax(s->gh[j], 1e-30));
                memcpy(s->g, s->z, sizeof(float) * (size_t)L);
                float lse = kinfer_softmax(s->g, L);
                double hard = y >= 0 ? lse - s->z[y] : 0;
                for (int32_t j = 0; j < L; j++) {
                        float soft = tau * (s->gh[j] - q[j]);
                        float h = s->g[j] - (j == y ? 1.0f : 0.0f);
                        s->g[j] = alpha * soft + (1 - alpha) * (y >= 0 ? h : 0);
                }
                *loss += alpha * l + (1 - alpha) * hard;
                return;
        }
        memcpy(s->g, s->z, sizeof(float) * (size_t)L);
        float lse = kinfer_softmax(s->g, L);
        *loss += lse - s->z[y];
        s->g[y] -= 1.0f;
}

static double dev_accuracy(trainer_t *T, const float *P, scratch_t *s)
{
        int64_t ok = 0, n = 0;
        for (int32_t i = 0; i < T->dev.n; i++) {
                if (T->ydev[i] < 0 && T->ydev[i] != -2)
                        continue;
                int64_t b = T->dev.ptr[i], e = T->dev.ptr[i + 1];
                net_forward(&T->net, P, T->dev.rows + b, T->dev.w + b, e - b, s);
                int32_t best = 0;
                for (int32_t j = 1; j < T->net.L; j++)
                        if (s->z[j] > s->z[best])
                                best = j;
                ok += best == T->ydev[i];
                n++;
        }
        return n ? (double)ok / (double)n : 0;
}

static void report(trainer_t *T, int epoch_done)
{
        const kinfer_train_opts_t *o = T->opts;
        if (!o->progress)
                return;
        double t = now_sec();
        kinfer_train_progress_t p = {0};
        p.epoch = epoch_done ? T->epoch : (T->epoch + 1 > T->epochs ? T->epochs : T->epoch + 1);
        p.epochs = T->epochs;
        long long steps = atomic_load(&T->steps);
        p.progress = T->total_steps ? (double)steps / (double)T->total_steps : 1;
        /* thread 0 reports its own running loss: the other threads' accumulators are theirs
         * until the next barrier (reading them here would be a data race) */
        p.loss = T->loss_n[0] ? T->loss_sum[0] / (double)T->loss_n[0] : T->last_loss;
        if (epoch_done)
                p.loss = T->last_loss;
        p.words_per_sec = (double)atomic_load(&T->words) / (t - T->t0 + 1e-9);
        p.eta_sec = p.progress > 0 ? (t - T->t0) * (1 - p.progress) / p.progress : 0;
        p.lr = o->lr * (1 - p.progress);
        p.dev_accuracy = T->dev_acc;
        p.epoch_done = epoch_done;
        o->progress(&p, o->opaque);
        T->last_report = t;
}

typedef struct worker_arg_s {
        trainer_t *T;
        int k;
} worker_arg_t;

/* Average replicas over rows [r0, r1) of the embedding (dirty ones) and this thread's slice of
 * the dense parameters. */
static void average_slice(trainer_t *T, int k)
{
        const net_t *net = &T->net;
        const int K = T->K;
        const float inv = 1.0f / (float)K;
        int64_t r0 = net->n_rows * k / K, r1 = net->n_rows * (k + 1) / K;
        for (int64_t r = r0; r < r1; r++) {
                int d = 0;
                for (int j = 0; j < K; j++)
                        d |= T->dirty[j][r];
                if (!d)
                        continue;
                float *e0 = T->P[0] + (size_t)r * net->D;
                for (int j = 1; j < K; j++) {
                        const float *ej = T->P[j] + (size_t)r * net->D;
                        for (int32_t c = 0; c < net->D; c++)
                                e0[c] += ej[c];
                }
                for (int32_t c = 0; c < net->D; c++)
                        e0[c] *= inv;
                for (int j = 1; j < K; j++)
                        memcpy(T->P[j] + (size_t)r * net->D, e0, sizeof(float) * (size_t)net->D);
                for (int j = 0; j < K; j++)
                        T->dirty[j][r] = 0;
        }
        size_t base = net->off_be, nd = net->n_params - base;
        size_t a0 = base + nd * (size_t)k / (size_t)K, a1 = base + nd * (size_t)(k + 1) / (size_t)K;
        for (size_t i = a0; i < a1; i++) {
                float s = 0;
                for (int j = 0; j < K; j++)
                        s += T->P[j][i];
                s *= inv;
                for (int j = 0; j < K; j++)
                        T->P[j][i] = s;
        }
}

static void *train_thread(void *arg)
{
        worker_arg_t *wa = arg;
        trainer_t *T = wa->T;
        const int k = wa->k, K = T->K;
        const kinfer_train_opts_t *o = T->opts;
        const int avg = K > 1 && !o->hogwild;
        float *P = avg ? T->P[k] : T->P[0];
        uint8_t *dirty = avg ? T->dirty[k] : NULL;
        scratch_t s;
        if (scratch_init(&s, &T->net)) {
                T->oom = 1;
                return NULL;
        }
        const int32_t n = T->tr.n;
        const int32_t sb = (int32_t)((int64_t)n * k / K), se = (int32_t)((int64_t)n * (k + 1) / K);
        const int32_t shard_max = (n + K - 1) / K;
        const int32_t sync_every = o->sync_every > 0 ? o->sync_every : shard_max;
        const int32_t n_chunks = avg ? (shard_max + sync_every - 1) / sync_every : 1;

        for (int32_t epoch = 0; epoch < T->epochs && !T->stop; epoch++) {
                if (k == 0) {
                        /* shuffle this epoch's order (each thread then takes its shard) */
                        uint64_t r2 = o->seed * 0x2545f4914f6cdd1dULL + (uint64_t)epoch * 7919 + 13;
                        for (int32_t i = n - 1; i > 0; i--) {
                                int32_t j = (int32_t)(rng_next(&r2) % (uint64_t)(i + 1));
                                int32_t t = T->order[i];
                                T->order[i] = T->order[j];
                                T->order[j] = t;
                        }
                }
                if (K > 1)
                        pthread_barrier_wait(&T->barrier);
                const int32_t len = se - sb;
                for (int32_t c = 0; c < n_chunks; c++) {
                        int32_t cb = sb + (int32_t)((int64_t)len * c / n_chunks);
                        int32_t ce = sb + (int32_t)((int64_t)len * (c + 1) / n_chunks);
                        int64_t local_steps = 0, local_words = 0;
                        for (int32_t ii = cb; ii < ce; ii++) {
                                int32_t i = T->order[ii];
                                if (T->y[i] < 0 && !o->soft_targets)
                                        continue;
                                long long st = atomic_load_explicit(&T->steps, memory_order_relaxed) + local_steps;
                                float lr = o->lr * (1.0f - (float)st / (float)T->total_steps);
                                if (lr < o->lr * 1e-4f)
                                        lr = o->lr * 1e-4f;
                                int64_t b = T->tr.ptr[i], e = T->tr.ptr[i + 1];
                                net_forward(&T->net, P, T->tr.rows + b, T->tr.w + b, e - b, &s);
                                double loss = 0;
                                targets(T, i, &s, &loss);
                                T->loss_sum[k] += loss;
                                T->loss_n[k]++;
                                net_backward(&T->net, P, T->tr.rows + b, T->tr.w + b, e - b, &s, lr,
                                             o->l2, dirty);
                                local_steps++;
                                local_words += T->ds->words[i];
                                if (local_steps == 256) {
                                        atomic_fetch_add(&T->steps, local_steps);
                                        atomic_fetch_add(&T->words, local_words);
                                        local_steps = local_words = 0;
                                        if (k == 0 && now_sec() - T->last_report > 0.2)
                                                report(T, 0);
                                }
                        }
                        atomic_fetch_add(&T->steps, local_steps);
                        atomic_fetch_add(&T->words, local_words);
                        if (avg) {
                                pthread_barrier_wait(&T->barrier);
                                average_slice(T, k);
                                pthread_barrier_wait(&T->barrier);
                        }
                }
                if (K > 1)
                        pthread_barrier_wait(&T->barrier);
                if (k == 0) {
                        double ls = 0;
                        int64_t ln = 0;
                        for (int j = 0; j < K; j++) {
                                ls += T->loss_sum[j], ln += T->loss_n[j];
                                T->loss_sum[j] = 0, T->loss_n[j] = 0;
                        }
                        T->last_loss = ln ? ls / (double)ln : 0;
                        T->epoch = epoch + 1;
                        if (T->dev.n) {
                                T->dev_acc = dev_accuracy(T, T->P[0], &s);
                                if (T->dev_acc > T->best_acc) {
                                        T->best_acc = T->dev_acc;
                                        T->best_epoch = epoch + 1;
                                        T->bad_epochs = 0;
                                        if (T->best)
                                                memcpy(T->best, T->P[0], T->net.n_params * sizeof(float));
                                } else if (++T->bad_epochs >= o->patience &&
                                           2 * (epoch + 1) >= T->epochs) {
                                        /* with a decaying rate the dev score is noisy early
                                         * on: only the second half of the schedule stops */
                                        T->stop = 1;
                                }
                        } else {
                                T->best_epoch = epoch + 1;
                        }
                        report(T, 1);
                }
                if (K > 1)
                        pthread_barrier_wait(&T->barrier);
        }
        free(s.h0);
        return NULL;
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

/* ---- assemble the model file ---------------------------------------------------------- */

static int cmp_rownorm(const void *a, const void *b, void *arg)
{
        const float *norms = arg;
        float x = norms[*(const int32_t *)a], y = norms[*(const int32_t *)b];
        return x > y ? -1 : x < y ? 1 : *(const int32_t *)a - *(const int32_t *)b;
}

static kinfer_model_t *assemble(trainer_t *T, const float *P, const char *const *label_names,
                                const int32_t *map, const float *idf, char *errstr, size_t errstr_size,
                                kinfer_train_result_t *res)
{
        const kinfer_train_opts_t *o = T->opts;
        const net_t *net = &T->net;
        const uint32_t nb = o->feat.n_buckets;
        int32_t *newmap = malloc(nb * sizeof(int32_t));
        int32_t *keep = malloc((size_t)(net->n_rows ? net->n_rows : 1) * sizeof(int32_t));
        float *norms = malloc((size_t)(net->n_rows ? net->n_rows : 1) * sizeof(float));
        kinfer_model_builder_t *mb = kinfer_model_builder_new();
        float *E = NULL, *idf2 = NULL;
        uint8_t *labels = NULL;
        char *meta = NULL;
        kinfer_model_t *model = NULL;
        kinfer_strbuf_t params = {0};
        if (!newmap || !keep || !norms || !mb)
                goto oom;
        /* rows to keep: all, or the max_rows largest by L2 norm */
        int64_t n_keep = net->n_rows;
        for (int64_t r = 0; r < net->n_rows; r++) {
                const float *e = P + (size_t)r * net->D;
                double s = 0;
                for (int32_t j = 0; j < net->D; j++)
                        s += (double)e[j] * e[j];
                norms[r] = (float)s;
                keep[r] = (int32_t)r;
        }
        if (o->max_rows > 0 && o->max_rows < n_keep) {
                qsort_r(keep, (size_t)n_keep, sizeof(int32_t), cmp_rownorm, norms);
                n_keep = o->max_rows;
                /* keep the original row order among the kept rows (memory locality) */
                int32_t *flag = (int32_t *)norms; /* reuse: flag[r] = new row or -1 */
                for (int64_t r = 0; r < net->n_rows; r++)
                        flag[r] = -1;
                for (int64_t i = 0; i < n_keep; i++)
                        flag[keep[i]] = 0;
                int64_t nr = 0;
                for (int64_t r = 0; r < net->n_rows; r++)
                        if (flag[r] == 0)
                                keep[nr] = (int32_t)r, flag[r] = (int32_t)nr++;
                for (uint32_t b = 0; b < nb; b++)
                        newmap[b] = map[b] >= 0 ? flag[map[b]] : -1;
        } else {
                memcpy(newmap, map, nb * sizeof(int32_t));
        }
        E = malloc((size_t)(n_keep ? n_keep : 1) * (size_t)net->D * sizeof(float));
        idf2 = malloc((size_t)(n_keep ? n_keep : 1) * sizeof(float));
        if (!E || !idf2)
                goto oom;
        for (int64_t i = 0; i < n_keep; i++) {
                memcpy(E + (size_t)i * net->D, P + (size_t)keep[i] * net->D, sizeof(float) * (size_t)net->D);
                idf2[i] = idf[keep[i]];
        }
        res->n_rows = (int32_t)n_keep;

        size_t lsize;
        labels = kinfer_labels_pack(label_names, net->L, &lsize);
        if (!labels)
                goto oom;
        int32_t arch[8] = {net->D, net->H ? 1 : 0, net->L, 0, 0, 0, 0, 0};
        kinfer_strbuf_printf(&params,
                             "{\"dim\": %d, \"hidden\": %d, \"epochs\": %d, \"epochs_run\": %d, "
                             "\"lr\": %g, \"l2\": %g, \"min_count\": %d, \"max_rows\": %d, "
                             "\"threads\": %d, \"sync_every\": %d, \"hogwild\": %s, \"seed\": %llu, "
                             "\"patience\": %d, \"buckets\": %u, \"word_ngrams\": %d, \"minn\": %d, "
                             "\"maxn\": %d, \"sublinear_tf\": %s, \"idf\": %s, \"l2_norm\": %s",
                             o->dim, o->hidden, o->epochs, T->epoch, o->lr, o->l2, o->min_count,
                             o->max_rows, T->K, o->sync_every, o->hogwild ? "true" : "false",
                             (unsigned long long)o->seed, o->patience, nb, o->feat.word_ngrams,
                             o->feat.minn, o->feat.maxn, o->feat.sublinear_tf ? "true" : "false",
                             o->feat.use_idf ? "true" : "false", o->feat.l2_norm ? "true" : "false");
        if (o->soft_targets)
                kinfer_strbuf_printf(&params, ", \"temperature\": %g, \"alpha\": %g", o->temperature, o->alpha);
        kinfer_strbuf_printf(&params, "}");
        char sha[65];
        kinfer_hex(T->ds->sha256, 32, sha);
        const char *base = strrchr(T->ds->path, '/');
        kinfer_strbuf_t m = {0};
        kinfer_strbuf_printf(&m, "{\"name\": ");
        kinfer_strbuf_json_str(&m, o->name ? o->name : "model");
        kinfer_strbuf_printf(&m, ", \"hyperparameters\": %s, \"train_data\": {\"file\": ", params.s);
        kinfer_strbuf_json_str(&m, base ? base + 1 : T->ds->path);
        kinfer_strbuf_printf(&m, ", \"sha256\": \"%s\", \"records\": %d, \"labels\": %d}", sha,
                             T->ds->n, net->L);
        if (T->dev.n) {
                const char *db = strrchr(o->dev->path, '/');
                kinfer_strbuf_printf(&m, ", \"evaluation\": {\"dev_file\": ");
                kinfer_strbuf_json_str(&m, db ? db + 1 : o->dev->path);
                kinfer_strbuf_printf(&m, ", \"dev_accuracy\": %.6f, \"best_epoch\": %d}", T->best_acc,
                                     T->best_epoch);
        }
        kinfer_strbuf_printf(&m, "}");
        if (m.oom || params.oom) {
                kinfer_strbuf_free(&m);
                goto oom;
        }
        /* lineage via the shared helper: method train (or the caller's), parents if any */
        {
                const char *method = o->lineage_method ? o->lineage_method : "train";
                const char *rel = o->lineage_relation ? o->lineage_relation : "trained_from";
                kinfer_strbuf_t lp = {0};
                kinfer_strbuf_printf(&lp, "%s", params.s);
                if (o->lineage_params_json && lp.len > 1) {
                        lp.s[lp.len - 1] = '\0'; /* drop '}' and merge the extra object */
                        lp.len--;
                        const char *extra = o->lineage_params_json;
                        while (*extra == ' ' || *extra == '{')
                                extra++;
                        if (*extra != '}')
                                kinfer_strbuf_printf(&lp, ", %s", extra);
                        else
                                kinfer_strbuf_printf(&lp, "}");
                }
                /* kinfer_meta_derive takes the name etc. from a parent model's meta; here the
                 * "parent" meta is ours, so build a temporary view via a JSON merge. */
                meta = kinfer_meta_derive(NULL, NULL, method, rel, lp.s, o->parents, o->n_parents, NULL);
                kinfer_strbuf_free(&lp);
                if (!meta) {
                        kinfer_strbuf_free(&m);
                        goto oom;
                }
                /* splice: our object minus its closing brace + the lineage/created_at fields */
                const char *p = strchr(meta, '{');
                kinfer_strbuf_t all = {0};
                kinfer_strbuf_printf(&all, "%.*s,%s", (int)(m.len - 1), m.s, p + 1);
                kinfer_strbuf_free(&m);
                free(meta);
                meta = all.s;
                if (all.oom)
                        goto oom;
        }
        kinfer_err_t err = KINFER_OK;
        err |= kinfer_model_builder_add(mb, KINFER_T_META, KINFER_DTYPE_BYTES, 1, (uint32_t)strlen(meta), meta, strlen(meta));
        err |= kinfer_model_builder_add(mb, KINFER_T_LABELS, KINFER_DTYPE_BYTES, 1, (uint32_t)lsize, labels, lsize);
        err |= kinfer_model_builder_add(mb, KINFER_T_FEATURIZER, KINFER_DTYPE_BYTES, 1, sizeof(o->feat), &o->feat, sizeof(o->feat));
        err |= kinfer_model_builder_add(mb, KINFER_T_ARCH, KINFER_DTYPE_I32, 1, 8, arch, sizeof(arch));
        err |= kinfer_model_builder_add(mb, KINFER_T_BUCKET_MAP, KINFER_DTYPE_I32, 1, nb, newmap, nb * sizeof(int32_t));
        err |= kinfer_model_builder_add(mb, KINFER_T_IDF, KINFER_DTYPE_F32, 1, (uint32_t)n_keep, idf2, (size_t)n_keep * 4);
        err |= kinfer_model_builder_add(mb, KINFER_T_EMBED, KINFER_DTYPE_F32, (uint32_t)n_keep, (uint32_t)net->D, E, (size_t)n_keep * net->D * 4);
        err |= kinfer_model_builder_add(mb, KINFER_T_BIAS, KINFER_DTYPE_F32, 1, (uint32_t)net->D, P + net->off_be, (size_t)net->D * 4);
        if (net->H) {
                err |= kinfer_model_builder_add(mb, KINFER_T_HIDDEN_W, KINFER_DTYPE_F32, (uint32_t)net->H, (uint32_t)net->D, P + net->off_w1, (size_t)net->H * net->D * 4);
                err |= kinfer_model_builder_add(mb, KINFER_T_HIDDEN_B, KINFER_DTYPE_F32, 1, (uint32_t)net->H, P + net->off_b1, (size_t)net->H * 4);
        }
        if (!net->linear) {
                err |= kinfer_model_builder_add(mb, KINFER_T_OUT_W, KINFER_DTYPE_F32, (uint32_t)net->L, (uint32_t)net->Wd, P + net->off_wo, (size_t)net->L * net->Wd * 4);
                err |= kinfer_model_builder_add(mb, KINFER_T_OUT_B, KINFER_DTYPE_F32, 1, (uint32_t)net->L, P + net->off_bo, (size_t)net->L * 4);
        }
        if (err)
                goto oom;
        uint8_t *buf;
        size_t len;
        if (kinfer_model_builder_serialize(mb, &buf, &len, errstr, errstr_size) == KINFER_OK) {
                model = kinfer_model_load_mem(buf, len, errstr, errstr_size);
                free(buf);
        }
        goto done;
oom:
        kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory while writing the model");
done:
        kinfer_strbuf_free(&params);
        free(newmap);
        free(keep);
        free(norms);
        free(E);
        free(idf2);
        free(labels);
        free(meta);
        kinfer_model_builder_destroy(mb);
        return model;
}

/* Initial parameters from a model (prune --retrain and friends). */
static int init_from_model(const net_t *net, const kinfer_model_t *im, float *P)
{
        for (int64_t r = 0; r < net->n_rows; r++) {
                const uint8_t *row = im->embed + (size_t)r * im->embed_stride;
                if (im->embed_dtype == KINFER_DTYPE_Q8)
                        kinfer_q8_row_dequant(row, net->D, P + (size_t)r * net->D);
                else
                        memcpy(P + (size_t)r * net->D, row, sizeof(float) * (size_t)net->D);
        }
        if (im->bias)
                memcpy(P + net->off_be, im->bias, sizeof(float) * (size_t)net->D);
        if (net->H) {
                kinfer_dense_to_f32(&im->hidden[0], P + net->off_w1);
                if (im->hidden[0].b)
                        memcpy(P + net->off_b1, im->hidden[0].b, sizeof(float) * (size_t)net->H);
        }
        if (!net->linear) {
                if (im->out.in != net->Wd)
                        return -1;
                kinfer_dense_to_f32(&im->out, P + net->off_wo);
                if (im->out.b)
                        memcpy(P + net->off_bo, im->out.b, sizeof(float) * (size_t)net->L);
        }
        return 0;
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

/* Fit the temperature T that minimises the log-loss of softmax(logits / T) on @p dev (a
 * convex 1-D problem in 1/T: golden-section search over ln T), and return the model with a
 * CALIB tensor holding it. Linear models trained to a tiny training loss are overconfident;
 * this makes their scores mean what they say. The argmax does not change. */
static kinfer_model_t *calibrate(kinfer_model_t *model, const kinfer_dataset_t *dev, float *Tout,
                                 char *errstr, size_t errstr_size)
{
        const int32_t L = model->n_labels, B = 256;
        float *logits = malloc((size_t)dev->n * L * sizeof(float));
        int32_t *y = malloc((size_t)dev->n * sizeof(int32_t));
        kinfer_runtime_t *rt = kinfer_runtime_new(B, errstr, errstr_size);
        kinfer_model_builder_t *mb = kinfer_model_builder_new();
        kinfer_model_t *out = NULL;
        if (!logits || !y || !rt || !mb)
                goto done;
        for (int32_t b = 0; b < dev->n; b += B) {
                int32_t n = dev->n - b < B ? dev->n - b : B;
                if (kinfer_runtime_logits(rt, model, dev->texts + b, dev->lens + b, n,
                                          logits + (size_t)b * L, errstr, errstr_size))
                        goto done;
        }
        for (int32_t i = 0; i < dev->n; i++)
                y[i] = dev->labels ? kinfer_model_label_index(model, dev->labels[i]) : -1;
        double lo = log(0.05), hi = log(20.0);
        const double g = (sqrt(5.0) - 1) / 2;
        double a = hi - g * (hi - lo), c = lo + g * (hi - lo);
        double fa = dev_nll(logits, y, dev->n, L, exp(-a)), fc = dev_nll(logits, y, dev->n, L, exp(-c));
        for (int it = 0; it < 60; it++) {
                if (fa < fc) {
                        hi = c, c = a, fc = fa;
                        a = hi - g * (hi - lo);
                        fa = dev_nll(logits, y, dev->n, L, exp(-a));
                } else {
                        lo = a, a = c, fa = fc;
                        c = lo + g * (hi - lo);
                        fc = dev_nll(logits, y, dev->n, L, exp(-c));
                }
        }
        float T = (float)exp((lo + hi) / 2);
        uint32_t skip = KINFER_T_CALIB;
        if (kinfer_model_builder_copy(mb, model, &skip, 1) ||
            kinfer_model_builder_add(mb, KINFER_T_CALIB, KINFER_DTYPE_F32, 1, 1, &T, sizeof(T))) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory (calibration)");
                goto done;
        }
        uint8_t *buf;
        size_t len;
        if (kinfer_model_builder_serialize(mb, &buf, &len, errstr, errstr_size) == KINFER_OK) {
                out = kinfer_model_load_mem(buf, len, errstr, errstr_size);
                free(buf);
        }
        *Tout = T;
done:
        free(logits);
        free(y);
        kinfer_runtime_destroy(rt);
        kinfer_model_builder_destroy(mb);
        return out;
}

/* ---- entry point ----------------------------------------------------------------------- */

kinfer_model_t *kinfer_train(const kinfer_dataset_t *ds, const kinfer_train_opts_t *opts,
                             kinfer_train_result_t *res, char *errstr, size_t errstr_size)
{
        kinfer_train_result_t dummy;
        if (!res)
                res = &dummy;
        memset(res, 0, sizeof(*res));
        res->dev_accuracy = -1;
        const char *why = kinfer_featurizer_conf_check(&opts->feat);
        if (why) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG, "featurizer: %s", why);
                return NULL;
        }
        if (opts->epochs < 1 || !(opts->lr > 0) || opts->threads < 1 || opts->threads > 64 ||
            opts->dim < 0 || opts->hidden < 0 || (opts->hidden && !opts->dim)) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                              "invalid hyperparameters (epochs >= 1, lr > 0, threads 1..64, "
                              "hidden needs dim)");
                return NULL;
        }
        double t0 = now_sec();
        trainer_t T;
        memset(&T, 0, sizeof(T));
        T.opts = opts;
        T.ds = ds;
        T.t0 = t0;
        T.epochs = opts->epochs;
        T.dev_acc = -1;
        T.best_acc = -1;
        kinfer_model_t *model = NULL;
        lab_t *labs = NULL;
        const char **names = NULL;
        int32_t *y = NULL, *ydev = NULL, *map = NULL;
        uint32_t *df = NULL;
        float *idf = NULL;
        const int K = opts->threads;

        /* labels */
        int32_t L = 0;
        const kinfer_model_t *im = opts->init_model;
        kinfer_train_opts_t o2;
        if (im) {
                /* the model fixes the featurizer: train with a copy of the options using it */
                o2 = *opts;
                o2.feat = im->feat;
                opts = &o2;
                T.opts = opts;
                o2.label_order = (const char *const *)im->labels;
                o2.n_label_order = im->n_labels;
        }
        if (opts->label_order) {
                L = opts->n_label_order;
                names = malloc((size_t)(L ? L : 1) * sizeof(char *));
                if (names)
                        memcpy(names, opts->label_order, (size_t)L * sizeof(char *));
        } else {
                labs = label_set(ds, &L);
                names = malloc((size_t)(L ? L : 1) * sizeof(char *));
                if (labs && names)
                        for (int32_t i = 0; i < L; i++)
                                names[i] = labs[i].name;
        }
        if (!names) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                goto out;
        }
        if (L < 2) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                              "%s: need at least 2 distinct labels, found %d", ds->path, L);
                goto out;
        }
        y = malloc((size_t)ds->n * sizeof(int32_t));
        if (!y)
                goto oom;
        for (int32_t i = 0; i < ds->n; i++)
                y[i] = ds->labels ? find_label(names, L, ds->labels[i]) : -1;
        T.y = y;

        /* document frequencies -> rows -> idf */
        const uint32_t nb = opts->feat.n_buckets;
        df = calloc(nb, sizeof(uint32_t));
        map = malloc(nb * sizeof(int32_t));
        if (!df || !map)
                goto oom;
        int64_t n_rows = 0;
        if (im) {
                n_rows = im->n_rows;
                for (uint32_t b = 0; b < nb; b++)
                        map[b] = im->rank.bits     ? kinfer_bucket_rank_row(&im->rank, b)
                                 : im->bucket_map ? im->bucket_map[b]
                                                  : (int32_t)b;
                idf = malloc((size_t)(n_rows ? n_rows : 1) * sizeof(float));
                if (!idf)
                        goto oom;
                for (int64_t r = 0; r < n_rows; r++)
                        idf[r] = im->idf ? im->idf[r] : 1.0f;
        } else {
                if (featurize_all(&opts->feat, ds, K, NULL, NULL, df, NULL))
                        goto oom;
                const uint32_t minc = opts->min_count > 1 ? (uint32_t)opts->min_count : 1;
                for (uint32_t b = 0; b < nb; b++)
                        map[b] = df[b] >= minc ? (int32_t)n_rows++ : -1;
                idf = malloc((size_t)(n_rows ? n_rows : 1) * sizeof(float));
                if (!idf)
                        goto oom;
                for (uint32_t b = 0; b < nb; b++)
                        if (map[b] >= 0)
                                idf[map[b]] = (float)(log((1.0 + ds->n) / (1.0 + df[b])) + 1.0);
        }
        free(df);
        df = NULL;
        if (featurize_all(&opts->feat, ds, K, map, idf, NULL, &T.tr))
                goto oom;
        if (opts->dev) {
                if (featurize_all(&opts->feat, opts->dev, K, map, idf, NULL, &T.dev))
                        goto oom;
                ydev = malloc((size_t)opts->dev->n * sizeof(int32_t));
                if (!ydev)
                        goto oom;
                for (int32_t i = 0; i < opts->dev->n; i++) {
                        ydev[i] = opts->dev->labels ? find_label(names, L, opts->dev->labels[i]) : -1;
                        if (ydev[i] < 0 && opts->dev->labels)
                                ydev[i] = -2; /* a label the model cannot predict: counts as wrong */
                }
                T.ydev = ydev;
        }

        /* network layout */
        net_t *net = &T.net;
        net->L = L;
        net->linear = im ? im->out.out == 0 : opts->dim == 0;
        net->D = im ? im->dim : net->linear ? L : opts->dim;
        net->H = im ? (im->n_hidden ? im->hidden[0].out : 0) : opts->hidden;
        if (im && im->n_hidden > 1) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                              "training continues models with at most one hidden layer");
                goto out;
        }
        net->Wd = net->H ? net->H : net->D;
        net->n_rows = n_rows;
        net->off_be = (size_t)n_rows * net->D;
        net->off_w1 = net->off_be + (size_t)net->D;
        net->off_b1 = net->off_w1 + (size_t)net->H * net->D;
        net->off_wo = net->off_b1 + (size_t)net->H;
        net->off_bo = net->off_wo + (net->linear ? 0 : (size_t)L * net->Wd);
        net->n_params = net->off_bo + (net->linear ? 0 : (size_t)L);

        T.K = K;
        const int avg = K > 1 && !opts->hogwild;
        T.P = calloc((size_t)K, sizeof(float *));
        T.dirty = calloc((size_t)K, sizeof(uint8_t *));
        if (!T.P || !T.dirty)
                goto oom;
        T.P[0] = calloc(net->n_params ? net->n_params : 1, sizeof(float));
        if (!T.P[0])
                goto oom;
        if (!net->linear) {
                uint64_t rs = opts->seed * 0x9e3779b97f4a7c15ULL + 77;
                float a = 1.0f / (float)net->D;
                for (size_t i = 0; i < (size_t)n_rows * net->D; i++)
                        T.P[0][i] = a * rng_uniform(&rs);
                float b1 = net->H ? sqrtf(6.0f / (float)net->D) : 0;
                for (size_t i = 0; i < (size_t)net->H * net->D; i++)
                        T.P[0][net->off_w1 + i] = b1 * rng_uniform(&rs);
        }
        if (im && init_from_model(net, im, T.P[0])) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                              "cannot continue training from this model's layers");
                goto out;
        }
        if (avg) {
                for (int k = 1; k < K; k++) {
                        T.P[k] = malloc(net->n_params * sizeof(float));
                        if (!T.P[k])
                                goto oom;
                        memcpy(T.P[k], T.P[0], net->n_params * sizeof(float));
                }
                for (int k = 0; k < K; k++)
                        if (!(T.dirty[k] = calloc((size_t)(n_rows ? n_rows : 1), 1)))
                                goto oom;
        }
        if (opts->dev && !(T.best = malloc(net->n_params * sizeof(float))))
                goto oom;
        T.order = malloc((size_t)ds->n * sizeof(int32_t));
        if (!T.order)
                goto oom;
        for (int32_t i = 0; i < ds->n; i++)
                T.order[i] = i;
        int64_t labelled = 0;
        for (int32_t i = 0; i < ds->n; i++)
                labelled += y[i] >= 0 || opts->soft_targets;
        if (!labelled) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                              "%s: no record has a label the model knows", ds->path);
                goto out;
        }
        T.total_steps = labelled * opts->epochs;
        atomic_init(&T.steps, 0);
        atomic_init(&T.words, 0);
        T.last_report = now_sec();

        worker_arg_t args[64];
        pthread_t tids[64];
        if (K > 1)
                pthread_barrier_init(&T.barrier, NULL, (unsigned)K);
        for (int k = 0; k < K; k++)
                args[k] = (worker_arg_t){&T, k};
        for (int k = 1; k < K; k++)
                pthread_create(&tids[k], NULL, train_thread, &args[k]);
        train_thread(&args[0]);
        for (int k = 1; k < K; k++)
                pthread_join(tids[k], NULL);
        if (K > 1)
                pthread_barrier_destroy(&T.barrier);
        if (T.oom)
                goto oom;

        const float *final = T.best && T.best_epoch > 0 ? T.best : T.P[0];
        res->epochs_run = T.epoch;
        res->best_epoch = T.best_epoch;
        res->dev_accuracy = T.dev.n ? T.best_acc : -1;
        res->final_loss = T.last_loss;
        model = assemble(&T, final, names, map, idf, errstr, errstr_size, res);
        res->temperature = 1.0f;
        if (model && opts->dev && opts->dev->labels) {
                kinfer_model_t *cal = calibrate(model, opts->dev, &res->temperature, errstr, errstr_size);
                kinfer_model_release(model);
                model = cal;
        }
        res->seconds = now_sec() - t0;
        goto out;
oom:
        kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory while training");
out:
        if (T.P)
                for (int k = 0; k < K; k++)
                        free(T.P[k]);
        if (T.dirty)
                for (int k = 0; k < K; k++)
                        free(T.dirty[k]);
        free(T.P);
        free(T.dirty);
        free(T.best);
        free(T.order);
        feats_free(&T.tr);
        feats_free(&T.dev);
        free(labs);
        free(names);
        free(y);
        free(ydev);
        free(map);
        free(df);
        free(idf);
        return model;
}
