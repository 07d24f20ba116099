/* SPDX-License-Identifier: Apache-2.0 */
/* features.c -- the features stage of kinfer_train: document frequencies -> the rows a bucket
 * gets (min_count) -> idf, then the weighed features of every train and dev record, computed
 * by featurize.c's kinfer_featurize + kinfer_feat_weigh, the very functions the runtime uses. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "text/bucket_rank.h"
#include "train/train_int.h"

#define MAX_THREADS 64

void kinfer_feats_free(kinfer_feats_t *f)
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
        atomic_int *stop;    /* set when the run fails elsewhere */
} feat_job_t;

/* Append @p nf features to the job's CSR. @returns 0, or -1 on out of memory. */
static int job_append(feat_job_t *job, const int32_t *rows, const float *w, size_t nf)
{
        if (nf == 0) /* a record with no feature (kept): nothing to copy, and the arrays may
                      * still be NULL (memcpy from or to NULL is undefined even for 0 bytes) */
                return 0;
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
                if (!nr || !nw)
                        return -1;
                job->cap = nc;
        }
        memcpy(job->rows + job->len, rows, nf * 4);
        memcpy(job->w + job->len, w, nf * 4);
        job->len += nf;
        return 0;
}

static void *feat_thread(void *arg)
{
        feat_job_t *job = arg;
        kinfer_feat_scratch_t fs = {0};
        uint32_t *buckets = NULL;
        int32_t *rows = NULL;
        float *w = NULL;
        size_t cap = 0;
        for (int32_t i = job->begin; i < job->end && !job->oom && !atomic_load(job->stop); i++) {
                /* the buffers' capacity goes to the featurizer, which never writes past it and
                 * counts what the text needs: grow to that (at most KINFER_FEATURIZE_MAX, where
                 * the runtime stops too) and featurize again */
                size_t want = kinfer_featurize_estimate(job->conf, job->ds->lens[i]), nb = 0;
                for (int pass = 0; pass < 2; pass++) {
                        if (want > KINFER_FEATURIZE_MAX)
                                want = KINFER_FEATURIZE_MAX;
                        if (want > cap) {
                                cap = want * 2 < KINFER_FEATURIZE_MAX ? want * 2 : KINFER_FEATURIZE_MAX;
                                free(buckets); free(rows); free(w);
                                buckets = malloc(cap * 4);
                                rows = malloc(cap * 4);
                                w = malloc(cap * 4);
                                if (!buckets || !rows || !w || kinfer_feat_scratch_reserve(&fs, cap)) {
                                        cap = 0;
                                        job->oom = 1;
                                        break;
                                }
                        }
                        nb = kinfer_featurize(job->conf, job->ds->texts[i], job->ds->lens[i], buckets, cap);
                        if (nb <= cap)
                                break;
                        want = nb;
                }
                if (job->oom)
                        break;
                if (nb > cap) /* over KINFER_FEATURIZE_MAX: the leading features, as served */
                        nb = cap;
                size_t nf = kinfer_feat_weigh(job->conf, buckets, nb, NULL, job->map, job->idf, &fs, rows, w);
                if (!job->map) {
                        for (size_t j = 0; j < nf; j++)
                                job->df[rows[j]]++;
                        continue;
                }
                if (job_append(job, rows, w, nf)) {
                        job->oom = 1;
                        break;
                }
                job->ptr[i - job->begin + 1] = (int64_t)job->len;
        }
        free(buckets);
        free(rows);
        free(w);
        kinfer_feat_scratch_term(&fs);
        return NULL;
}

/* Concatenate the jobs' private CSRs into @p out. @returns 0, or -1 on out of memory. */
static int gather(const feat_job_t *jobs, int threads, int32_t n, kinfer_feats_t *out)
{
        size_t total = 0;
        for (int t = 0; t < threads; t++)
                total += jobs[t].len;
        memset(out, 0, sizeof(*out));
        out->n = n;
        out->ptr = malloc(((size_t)n + 1) * sizeof(int64_t));
        out->rows = malloc((total ? total : 1) * 4);
        out->w = malloc((total ? total : 1) * 4);
        if (!out->ptr || !out->rows || !out->w) {
                kinfer_feats_free(out);
                return -1;
        }
        size_t base = 0;
        out->ptr[0] = 0;
        for (int t = 0; t < threads; t++) {
                const feat_job_t *j = &jobs[t];
                if (j->len) { /* a job whose records have no feature has no arrays */
                        memcpy(out->rows + base, j->rows, j->len * 4);
                        memcpy(out->w + base, j->w, j->len * 4);
                }
                for (int32_t i = j->begin; i < j->end; i++)
                        out->ptr[i + 1] = (int64_t)base + j->ptr[i - j->begin + 1];
                base += j->len;
        }
        return 0;
}

kinfer_err_t kinfer_featurize_all(const kinfer_featurizer_conf_t *conf, const kinfer_dataset_t *ds,
                                  int threads, const int32_t *map, const float *idf, uint32_t *df,
                                  kinfer_feats_t *out, char *errstr, size_t errstr_size)
{
        feat_job_t jobs[MAX_THREADS];
        pthread_t tids[MAX_THREADS];
        atomic_int stop;
        atomic_init(&stop, 0);
        if (threads > MAX_THREADS)
                threads = MAX_THREADS;
        if (threads > ds->n)
                threads = ds->n;
        if (threads < 1)
                threads = 1;
        int oom = 0;
        for (int t = 0; t < threads; t++) {
                feat_job_t *j = &jobs[t];
                memset(j, 0, sizeof(*j));
                j->conf = conf;
                j->ds = ds;
                j->begin = (int32_t)((int64_t)ds->n * t / threads);
                j->end = (int32_t)((int64_t)ds->n * (t + 1) / threads);
                j->map = map;
                j->idf = idf;
                j->stop = &stop;
                if (!map) {
                        j->df = calloc(conf->n_buckets, sizeof(uint32_t));
                        oom |= !j->df;
                } else {
                        j->ptr = calloc((size_t)(j->end - j->begin) + 1, sizeof(int64_t));
                        oom |= !j->ptr;
                }
        }
        /* job 0 runs in the calling thread; if a thread cannot start, the started ones stop
         * at their next record and the run fails */
        int started = 1, rc = 0;
        if (!oom)
                for (; started < threads; started++)
                        if ((rc = pthread_create(&tids[started], NULL, feat_thread, &jobs[started])))
                                break;
        if (rc)
                atomic_store(&stop, 1);
        else if (!oom)
                feat_thread(&jobs[0]);
        for (int t = 1; t < started; t++)
                pthread_join(tids[t], NULL);
        for (int t = 0; t < threads; t++)
                oom |= jobs[t].oom;
        if (!rc && !oom) {
                if (!map) {
                        for (int t = 0; t < threads; t++)
                                for (uint32_t b = 0; b < conf->n_buckets; b++)
                                        df[b] += jobs[t].df[b];
                } else {
                        oom = gather(jobs, threads, ds->n, out);
                }
        }
        for (int t = 0; t < threads; t++) {
                free(jobs[t].df);
                free(jobs[t].ptr);
                free(jobs[t].rows);
                free(jobs[t].w);
        }
        if (rc)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE,
                                     "cannot start a featurizer thread: %s", strerror(rc));
        if (oom)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM,
                                     "out of memory while training");
        return KINFER_OK;
}

/* Rows and idf of a new model: a row for every bucket seen in at least min_count documents. */
static kinfer_err_t rows_from_data(kinfer_train_state_t *st, char *errstr, size_t errstr_size)
{
        const kinfer_train_opts_t *o = st->opts;
        const uint32_t nb = o->feat.n_buckets;
        uint32_t *df = calloc(nb, sizeof(uint32_t));
        if (!df)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory while training");
        kinfer_err_t err = kinfer_featurize_all(&o->feat, st->ds, st->K, NULL, NULL, df, NULL, errstr,
                                                errstr_size);
        kinfer_train_comm_t *comm = o->comm;
        if (!err && comm) /* ranks: the document frequencies of the whole data */
                err = comm->allreduce(comm, df, nb, KINFER_COMM_U32, KINFER_COMM_SUM, errstr, errstr_size);
        if (err) {
                free(df);
                return err;
        }
        const double n_docs = comm ? (double)comm->n_records : (double)st->ds->n;
        const uint32_t minc = o->min_count > 1 ? (uint32_t)o->min_count : 1;
        int64_t n_rows = 0;
        for (uint32_t b = 0; b < nb; b++)
                st->map[b] = df[b] >= minc ? (int32_t)n_rows++ : -1;
        st->n_rows = n_rows;
        st->idf = malloc((size_t)(n_rows ? n_rows : 1) * sizeof(float));
        if (st->idf)
                for (uint32_t b = 0; b < nb; b++)
                        if (st->map[b] >= 0)
                                st->idf[st->map[b]] = (float)(log((1.0 + n_docs) / (1.0 + df[b])) + 1.0);
        free(df);
        if (!st->idf)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory while training");
        return KINFER_OK;
}

/* Rows and idf of the model training continues from. */
static kinfer_err_t rows_from_model(kinfer_train_state_t *st, const kinfer_model_t *im, char *errstr,
                                    size_t errstr_size)
{
        const uint32_t nb = st->opts->feat.n_buckets;
        st->n_rows = im->n_rows;
        for (uint32_t b = 0; b < nb; b++)
                st->map[b] = im->rank.bits    ? kinfer_bucket_rank_row(&im->rank, b)
                             : im->bucket_map ? im->bucket_map[b]
                                              : (int32_t)b;
        st->idf = malloc((size_t)(st->n_rows ? st->n_rows : 1) * sizeof(float));
        if (!st->idf)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory while training");
        for (int64_t r = 0; r < st->n_rows; r++)
                st->idf[r] = im->idf ? im->idf[r] : 1.0f;
        return KINFER_OK;
}

kinfer_err_t kinfer_train_stage_features(kinfer_train_state_t *st, char *errstr, size_t errstr_size)
{
        const kinfer_train_opts_t *o = st->opts;
        st->map = malloc(o->feat.n_buckets * sizeof(int32_t));
        if (!st->map)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory while training");
        kinfer_err_t err = o->init_model ? rows_from_model(st, o->init_model, errstr, errstr_size)
                                         : rows_from_data(st, errstr, errstr_size);
        if (!err)
                err = kinfer_featurize_all(&o->feat, st->ds, st->K, st->map, st->idf, NULL, &st->tr,
                                           errstr, errstr_size);
        if (!err && o->dev)
                err = kinfer_featurize_all(&o->feat, o->dev, st->K, st->map, st->idf, NULL, &st->dev,
                                           errstr, errstr_size);
        return err;
}
