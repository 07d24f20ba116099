/* SPDX-License-Identifier: Apache-2.0 */
/* sgd.c -- the epochs stage of kinfer_train: softmax cross-entropy SGD with linear
 * learning-rate decay.
 *
 * Data-parallel: K threads each train a replica on their shard; every sync_every records the
 * replicas are averaged (w = 1/K sum_k w_k), only over the embedding rows some replica touched
 * since the last sync, plus the dense layers. With one thread and a fixed seed the result is
 * deterministic. With hogwild, the threads update one shared replica without averaging.
 *
 * Threads: the calling thread is thread 0; threads 1..K-1 wait at a start gate until all of
 * them exist, so that a thread that cannot be created stops the others before any of them
 * waits at the barrier (which needs all K). */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/ops.h"
#include "train/train_int.h"

#define MAX_THREADS 64

typedef struct trainer_s {
        kinfer_train_state_t *st;
        const kinfer_train_opts_t *opts;
        const kinfer_net_t *net;
        int K;
        float **P;          /* K replicas (P[0] is the master) */
        uint8_t **dirty;    /* K dirty-row maps, or NULL */
        kinfer_net_scratch_t scratch[MAX_THREADS];
        int32_t *order;     /* shuffled record order per epoch */
        pthread_mutex_t gate; /* held by the creating thread until every thread exists */
        int abort;          /* under gate: a thread could not be created */
        pthread_barrier_t barrier;
        atomic_llong steps, words;
        int64_t total_steps;
        double last_report;
        double t_epochs;    /* when the epochs began: words/s and the ETA count from here, not
                             * from the start of training (reading and featurizing the data
                             * would make the rate climb every epoch) */
        int32_t epoch, epochs;
        double loss_sum[MAX_THREADS];
        int64_t loss_n[MAX_THREADS];
        int64_t done[MAX_THREADS]; /* records thread k has trained on, all epochs: its learning
                                    * rate follows K times this, not the shared count, so that
                                    * the schedule (and with averaged replicas the model) does
                                    * not depend on how the threads were scheduled */
        double dev_acc, best_acc;
        int32_t best_epoch, bad_epochs;
        float *best;        /* snapshot of the best parameters (dev early stopping) */
        int stop;
        double last_loss;
        int32_t diverged;   /* the epoch whose loss or weights were not finite, or 0 */
        kinfer_train_comm_t *comm; /* one rank of several processes (K is then 1), or NULL */
        kinfer_err_t comm_err;     /* a collective failed: training stopped */
        char comm_errstr[256];
} trainer_t;

/* The loss of record @p i into *loss, and its gradient at the logits into s->g. */
static void targets(const trainer_t *T, int32_t i, kinfer_net_scratch_t *s, double *loss)
{
        const kinfer_train_opts_t *o = T->opts;
        const int32_t L = T->net->L;
        const int32_t y = T->st->y[i];
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

static double dev_accuracy(const trainer_t *T, const float *P, kinfer_net_scratch_t *s)
{
        const kinfer_feats_t *dev = &T->st->dev;
        const int32_t *ydev = T->st->ydev;
        int64_t ok = 0, n = 0;
        for (int32_t i = 0; i < dev->n; i++) {
                if (ydev[i] < 0 && ydev[i] != -2)
                        continue;
                int64_t b = dev->ptr[i], e = dev->ptr[i + 1];
                kinfer_net_forward(T->net, P, dev->rows + b, dev->w + b, e - b, s);
                int32_t best = 0;
                for (int32_t j = 1; j < T->net->L; j++)
                        if (s->z[j] > s->z[best])
                                best = j;
                ok += best == ydev[i];
                n++;
        }
        return n ? (double)ok / (double)n : 0;
}

static void report(trainer_t *T, int epoch_done)
{
        const kinfer_train_opts_t *o = T->opts;
        if (!o->progress)
                return;
        double t = kinfer_now_sec(), t0 = T->t_epochs;
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
        p.words_per_sec = (double)atomic_load(&T->words) / (t - t0 + 1e-9);
        p.eta_sec = p.progress > 0 ? (t - t0) * (1 - p.progress) / p.progress : 0;
        p.lr = o->lr * (1 - p.progress);
        p.dev_accuracy = T->dev_acc;
        p.epoch_done = epoch_done;
        o->progress(&p, o->opaque);
        T->last_report = t;
}

/* Up to AVG_BLOCK rows of [*scan, r1) that some replica touched, into @p rows, each row's copies
 * prefetched; *scan moves past them. @returns how many. */
#define AVG_BLOCK 16
static int dirty_block(const trainer_t *T, int64_t *scan, int64_t r1, int64_t *rows)
{
        const int K = T->K;
        const size_t row_bytes = sizeof(float) * (size_t)T->net->D;
        int n = 0;
        int64_t r = *scan;
        for (; r < r1 && n < AVG_BLOCK; r++) {
                int d = 0;
                for (int j = 0; j < K; j++)
                        d |= T->dirty[j][r];
                if (!d)
                        continue;
                rows[n++] = r;
                for (int j = 0; j < K; j++) {
                        const char *e = (const char *)(T->P[j] + (size_t)r * T->net->D);
                        for (size_t off = 0; off < row_bytes; off += 64)
                                __builtin_prefetch(e + off, 1, 3);
                        __builtin_prefetch(e + row_bytes - 1, 1, 3);
                }
        }
        *scan = r;
        return n;
}

/* Average the replicas over this thread's slice of the embedding rows (the dirty ones) and
 * of the dense parameters. */
static void average_slice(trainer_t *T, int k)
{
        const kinfer_net_t *net = T->net;
        const int K = T->K;
        const float inv = 1.0f / (float)K;
        int64_t r0 = net->n_rows * k / K, r1 = net->n_rows * (k + 1) / K;
        /* the touched rows are scattered: the next block's rows are prefetched while this block
         * is averaged (the hardware prefetcher does not follow them; docs/benchmarks.md) */
        int64_t blk[2][AVG_BLOCK], scan = r0;
        int cur = 0, n = dirty_block(T, &scan, r1, blk[0]);
        while (n > 0) {
                int n_next = dirty_block(T, &scan, r1, blk[!cur]);
                for (int b = 0; b < n; b++) {
                        const int64_t r = blk[cur][b];
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
                cur = !cur;
                n = n_next;
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

/* Thread 0 shuffles the order of epoch @p epoch (each thread then takes its shard). */
static void shuffle(trainer_t *T, int32_t epoch)
{
        uint64_t r2 = T->opts->seed * 0x2545f4914f6cdd1dULL + (uint64_t)epoch * 7919 + 13;
        if (T->comm) /* each rank its own order of its own shard */
                r2 += (uint64_t)T->comm->rank * 0x9e3779b97f4a7c15ULL;
        for (int32_t i = T->st->tr.n - 1; i > 0; i--) {
                int32_t j = (int32_t)(kinfer_rng_next(&r2) % (uint64_t)(i + 1));
                int32_t t = T->order[i];
                T->order[i] = T->order[j];
                T->order[j] = t;
        }
}

/* SGD over the records order[cb..ce) with replica @p P (thread @p k). */
static void train_chunk(trainer_t *T, int k, float *P, uint8_t *dirty, int32_t cb, int32_t ce)
{
        const kinfer_train_opts_t *o = T->opts;
        const kinfer_train_state_t *st = T->st;
        kinfer_net_scratch_t *s = &T->scratch[k];
        int64_t local_steps = 0, local_words = 0;
        for (int32_t ii = cb; ii < ce; ii++) {
                int32_t i = T->order[ii];
                if (st->y[i] < 0 && !o->soft_targets)
                        continue;
                int64_t step = T->done[k]++ * T->K;
                float lr = o->lr * (1.0f - (float)step / (float)T->total_steps);
                if (lr < o->lr * 1e-4f)
                        lr = o->lr * 1e-4f;
                int64_t b = st->tr.ptr[i], e = st->tr.ptr[i + 1];
                kinfer_net_forward(T->net, P, st->tr.rows + b, st->tr.w + b, e - b, s);
                double loss = 0;
                targets(T, i, s, &loss);
                T->loss_sum[k] += loss;
                T->loss_n[k]++;
                kinfer_net_backward(T->net, P, st->tr.rows + b, st->tr.w + b, e - b, s, lr, o->l2, dirty);
                local_steps++;
                local_words += st->ds->words[i];
                if (local_steps == 256) {
                        atomic_fetch_add(&T->steps, local_steps);
                        atomic_fetch_add(&T->words, local_words);
                        local_steps = local_words = 0;
                        if (k == 0 && kinfer_now_sec() - T->last_report > 0.2)
                                report(T, 0);
                }
        }
        atomic_fetch_add(&T->steps, local_steps);
        atomic_fetch_add(&T->words, local_words);
}

/* Thread 0, between epochs: the epoch's loss, dev accuracy, the best snapshot, early stop. */
static void end_epoch(trainer_t *T, int32_t epoch)
{
        double ls = 0;
        int64_t ln = 0;
        for (int j = 0; j < T->K; j++) {
                ls += T->loss_sum[j], ln += T->loss_n[j];
                T->loss_sum[j] = 0, T->loss_n[j] = 0;
        }
        T->last_loss = ln ? ls / (double)ln : 0;
        T->epoch = epoch + 1;
        /* divergence (a learning rate too high): a non-finite loss or weight stops training;
         * kinfer_train_stage_epochs turns it into an error and no model is written */
        int finite = isfinite(T->last_loss);
        for (size_t j = 0; finite && j < T->net->n_params; j++)
                finite = isfinite(T->P[0][j]);
        if (!finite) {
                T->diverged = epoch + 1;
                T->stop = 1;
                report(T, 1);
                return;
        }
        if (T->st->dev.n) {
                T->dev_acc = dev_accuracy(T, T->P[0], &T->scratch[0]);
                if (T->dev_acc > T->best_acc) {
                        T->best_acc = T->dev_acc;
                        T->best_epoch = epoch + 1;
                        T->bad_epochs = 0;
                        if (T->best)
                                memcpy(T->best, T->P[0], T->net->n_params * sizeof(float));
                } else if (++T->bad_epochs >= T->opts->patience && 2 * (epoch + 1) >= T->epochs) {
                        /* with a decaying rate the dev score is noisy early on: only the
                         * second half of the schedule stops */
                        T->stop = 1;
                }
        } else {
                T->best_epoch = epoch + 1;
        }
        report(T, 1);
}

typedef struct worker_arg_s {
        trainer_t *T;
        int k;
} worker_arg_t;

static void *train_thread(void *arg)
{
        worker_arg_t *wa = arg;
        trainer_t *T = wa->T;
        const int k = wa->k, K = T->K;
        if (k > 0) { /* the start gate */
                pthread_mutex_lock(&T->gate);
                int abort = T->abort;
                pthread_mutex_unlock(&T->gate);
                if (abort)
                        return NULL;
        }
        const int avg = K > 1 && !T->opts->hogwild;
        float *P = avg ? T->P[k] : T->P[0];
        uint8_t *dirty = avg || T->comm ? T->dirty[k] : NULL;
        const int32_t n = T->st->tr.n;
        const int32_t sb = (int32_t)((int64_t)n * k / K), se = (int32_t)((int64_t)n * (k + 1) / K);
        const int32_t shard_max = (n + K - 1) / K;
        const int32_t sync_every = T->opts->sync_every > 0 ? T->opts->sync_every : shard_max;
        int32_t n_chunks = avg ? (shard_max + sync_every - 1) / sync_every : 1;
        if (T->comm) /* ranks: the same number of syncs on every rank, whatever its shard */
                n_chunks = T->comm->syncs_per_epoch > 0 ? T->comm->syncs_per_epoch : 1;
        for (int32_t epoch = 0; epoch < T->epochs && !T->stop; epoch++) {
                if (k == 0)
                        shuffle(T, epoch);
                if (K > 1)
                        pthread_barrier_wait(&T->barrier);
                const int32_t len = se - sb;
                for (int32_t c = 0; c < n_chunks; c++) {
                        train_chunk(T, k, P, dirty, sb + (int32_t)((int64_t)len * c / n_chunks),
                                    sb + (int32_t)((int64_t)len * (c + 1) / n_chunks));
                        if (avg) {
                                pthread_barrier_wait(&T->barrier);
                                average_slice(T, k);
                                pthread_barrier_wait(&T->barrier);
                        }
                        if (T->comm && (T->comm_err = kinfer_dist_sync(T->comm, T->net, P, dirty,
                                                                       T->comm_errstr,
                                                                       sizeof(T->comm_errstr))))
                                return NULL; /* K is 1 with comm: no thread waits for this one */
                }
                if (K > 1)
                        pthread_barrier_wait(&T->barrier);
                if (k == 0)
                        end_epoch(T, epoch);
                if (T->comm) { /* rank 0 decides: every rank stops at the same epoch */
                        int32_t dec[2] = {T->stop, T->diverged};
                        if ((T->comm_err = T->comm->bcast(T->comm, dec, sizeof(dec), T->comm_errstr,
                                                          sizeof(T->comm_errstr))))
                                return NULL;
                        T->stop = dec[0], T->diverged = dec[1];
                }
                if (K > 1)
                        pthread_barrier_wait(&T->barrier);
        }
        return NULL;
}

/* Start threads 1..K-1, run thread 0 here, join. @returns 0, or the pthread_create error
 * (then no thread ran: the started ones left at the gate). */
static int run_threads(trainer_t *T)
{
        const int K = T->K;
        worker_arg_t args[MAX_THREADS];
        pthread_t tids[MAX_THREADS];
        for (int k = 0; k < K; k++)
                args[k] = (worker_arg_t){T, k};
        if (K > 1)
                pthread_barrier_init(&T->barrier, NULL, (unsigned)K);
        pthread_mutex_lock(&T->gate);
        int started = 1, rc = 0;
        for (; started < K; started++)
                if ((rc = pthread_create(&tids[started], NULL, train_thread, &args[started])))
                        break;
        T->abort = rc != 0;
        pthread_mutex_unlock(&T->gate);
        if (!rc)
                train_thread(&args[0]);
        for (int k = 1; k < started; k++)
                pthread_join(tids[k], NULL);
        if (K > 1)
                pthread_barrier_destroy(&T->barrier);
        return rc;
}

/* The network's shape: the options', or the shape of the model training continues from. */
static void net_shape(kinfer_net_t *net, const kinfer_train_state_t *st)
{
        const kinfer_train_opts_t *o = st->opts;
        const kinfer_model_t *im = o->init_model;
        memset(net, 0, sizeof(*net));
        net->L = st->L;
        net->linear = im ? im->out.out == 0 : o->dim == 0;
        net->D = im ? im->dim : net->linear ? st->L : o->dim;
        net->H = im ? (im->n_hidden ? im->hidden[0].out : 0) : o->hidden;
        net->n_rows = st->n_rows;
        kinfer_net_layout(net);
}

/* Replicas (P[0] initialised, copied into the others), dirty maps, the best snapshot, the
 * record order and the threads' scratch. @returns 0, or -1 on out of memory. */
static int trainer_alloc(trainer_t *T)
{
        const kinfer_net_t *net = T->net;
        const int K = T->K, avg = K > 1 && !T->opts->hogwild;
        const size_t n_params = net->n_params ? net->n_params : 1;
        T->P = calloc((size_t)K, sizeof(float *));
        T->dirty = calloc((size_t)K, sizeof(uint8_t *));
        T->order = malloc((size_t)(T->st->tr.n ? T->st->tr.n : 1) * sizeof(int32_t));
        if (!T->P || !T->dirty || !T->order || !(T->P[0] = malloc(n_params * sizeof(float))))
                return -1;
        for (int k = 0; k < K; k++)
                if (kinfer_net_scratch_init(&T->scratch[k], net))
                        return -1;
        for (int k = 1; k < K && avg; k++)
                if (!(T->P[k] = malloc(n_params * sizeof(float))))
                        return -1;
        for (int k = 0; k < K && (avg || T->comm); k++)
                if (!(T->dirty[k] = calloc((size_t)(net->n_rows ? net->n_rows : 1), 1)))
                        return -1;
        if (T->opts->dev && !(T->best = malloc(n_params * sizeof(float))))
                return -1;
        for (int32_t i = 0; i < T->st->tr.n; i++)
                T->order[i] = i;
        return 0;
}

/* Free everything but the parameters kept in st->params. */
static void trainer_free(trainer_t *T)
{
        for (int k = 0; k < T->K; k++) {
                if (T->P && T->P[k] != T->st->params)
                        free(T->P[k]);
                if (T->dirty)
                        free(T->dirty[k]);
                kinfer_net_scratch_term(&T->scratch[k]);
        }
        if (T->best != T->st->params)
                free(T->best);
        free(T->P);
        free(T->dirty);
        free(T->order);
        pthread_mutex_destroy(&T->gate);
}

kinfer_err_t kinfer_train_stage_epochs(kinfer_train_state_t *st, char *errstr, size_t errstr_size)
{
        net_shape(&st->net, st);
        trainer_t T;
        memset(&T, 0, sizeof(T));
        T.st = st;
        T.opts = st->opts;
        T.net = &st->net;
        T.comm = st->opts->comm;
        T.K = T.comm ? 1 : st->K;
        T.epochs = st->opts->epochs;
        T.dev_acc = -1;
        T.best_acc = -1;
        T.total_steps = st->labelled * st->opts->epochs;
        atomic_init(&T.steps, 0);
        atomic_init(&T.words, 0);
        pthread_mutex_init(&T.gate, NULL);
        kinfer_err_t err = KINFER_OK;
        int rc;
        if (trainer_alloc(&T)) {
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory while training");
        } else if (kinfer_net_init(&st->net, st->opts->seed, st->opts->init_model, T.P[0])) {
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                    "cannot continue training from this model's layers");
        } else {
                for (int k = 1; k < T.K && T.P[k]; k++)
                        memcpy(T.P[k], T.P[0], st->net.n_params * sizeof(float));
                T.last_report = T.t_epochs = kinfer_now_sec();
                if ((rc = run_threads(&T)))
                        err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE,
                                            "cannot start a training thread: %s", strerror(rc));
                else if (T.comm_err)
                        err = kinfer_seterr(errstr, errstr_size, T.comm_err, "%s", T.comm_errstr);
                if (T.comm)
                        T.comm->epochs_seconds = kinfer_now_sec() - T.t_epochs;
        }
        if (!err && T.diverged)
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                    "training diverged in epoch %d of %d with learning rate %g (%s): "
                                    "no model written; try --lr %g",
                                    T.diverged, T.epochs, (double)st->opts->lr,
                                    isfinite(T.last_loss) ? "a weight is not a finite number"
                                                          : "the loss is not a finite number",
                                    (double)st->opts->lr / 10);
        if (!err) {
                st->params = T.best && T.best_epoch > 0 ? T.best : T.P[0];
                st->epochs_run = T.epoch;
                st->best_epoch = T.best_epoch;
                st->best_acc = T.best_acc;
                st->last_loss = T.last_loss;
        }
        trainer_free(&T);
        return err;
}
