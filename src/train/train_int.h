/* SPDX-License-Identifier: Apache-2.0 */
/* train_int.h -- what the files of src/train share (private to the module).
 *
 * kinfer_train() runs four stages over one kinfer_train_state_t, each filling its part:
 *
 *   stage      file          fills
 *   data       train.c       the effective options, label names, the label id of every record
 *   features   features.c    document frequencies -> bucket map and idf; the weighed features
 *                            of every train and dev record (CSR)
 *   epochs     sgd.c, net.c  SGD over K replicas -> the trained parameters
 *   assemble   assemble.c    the model: the top rows by norm, META with lineage, calibration
 *
 * and train.c frees whatever the stages built. The compression steps (quantize.c, prune.c,
 * distill.c) share two files with the assemble stage: rows.c (keep the top rows by importance)
 * and rebuild.c (a model copied with some tensors replaced).
 */
#ifndef KINFER_TRAIN_INT_H
#define KINFER_TRAIN_INT_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/err.h"
#include "kinfer/model/model.h"
#include "kinfer/train/train.h"
#include "model/model_int.h"

/* ---- the state passed between the stages of kinfer_train ------------------------------------ */

/** Weighed features of n records, CSR: record i has rows/w[ptr[i] .. ptr[i + 1]). */
typedef struct kinfer_feats_s {
        int32_t n;
        int64_t *ptr; /* n + 1 */
        int32_t *rows;
        float *w;
} kinfer_feats_t;

void kinfer_feats_free(kinfer_feats_t *f);

/** The network's shape and where each block lives in its one parameter vector:
 *   [ E (n_rows x D) | be (D) | W1 (H x D) | b1 (H) | Wo (L x Wd) | bo (L) ]
 * Linear models (dim 0): D = L, no W1/Wo: logits = be + sum_i w_i E[r_i]. */
typedef struct kinfer_net_s {
        int32_t L, D, H, Wd; /* labels, bag width, hidden width, width before the output */
        int linear;
        int64_t n_rows;
        size_t off_be, off_w1, off_b1, off_wo, off_bo, n_params;
} kinfer_net_t;

typedef struct kinfer_train_state_s {
        const kinfer_train_opts_t *opts; /* the caller's, or &own */
        kinfer_train_opts_t own;         /* with init_model: the options with its featurizer
                                          * and its labels */
        const kinfer_dataset_t *ds;
        int K;                           /* threads */
        double t0;
        /* data */
        int32_t L;
        const char **names;              /* L label names (views into the dataset or options) */
        int32_t *y;                      /* label id per train record, -1 = none */
        int32_t *ydev;                   /* per dev record; -2 = a label the model lacks */
        int64_t labelled;                /* train records with a target */
        /* features */
        int64_t n_rows;
        int32_t *map;                    /* bucket -> row or -1 (n_buckets) */
        float *idf;                      /* (n_rows) */
        kinfer_feats_t tr, dev;
        /* epochs */
        kinfer_net_t net;
        float *params;                   /* the trained parameters (the best epoch's with dev) */
        int32_t epochs_run, best_epoch;
        double best_acc, last_loss;
        const char *auto_json;           /* the automatic feature choice (JSON object), or NULL */
} kinfer_train_state_t;

kinfer_err_t kinfer_train_stage_features(kinfer_train_state_t *st, char *errstr,
                                         size_t errstr_size);
kinfer_err_t kinfer_train_stage_epochs(kinfer_train_state_t *st, char *errstr, size_t errstr_size);
/** @returns the model (calibrated on the dev data when it has labels), or NULL (see errstr). */
kinfer_model_t *kinfer_train_stage_assemble(kinfer_train_state_t *st, kinfer_train_result_t *res,
                                            char *errstr, size_t errstr_size);

/* ---- select.c: the automatic feature choice (opts->auto_features) ------------------------------ */

/** Run the trial of train.h's auto_features on @p ds: *@p chosen = the settings to train with,
 * *@p json = what was tried and found (a JSON object, malloc'd; NULL on out of memory).
 * Returns without a trial (chosen = opts->feat, json says why) when it does not apply. */
kinfer_err_t kinfer_train_select_features(const kinfer_dataset_t *ds,
                                          const kinfer_train_opts_t *opts,
                                          kinfer_featurizer_conf_t *chosen, char **json,
                                          char *errstr, size_t errstr_size);

/* ---- features.c -------------------------------------------------------------------------------- */

/** Featurize @p ds with @p threads threads: add the document frequency of every bucket to
 * @p df (map == NULL), or the weighed features of every record into @p out. */
kinfer_err_t kinfer_featurize_all(const kinfer_featurizer_conf_t *conf, const kinfer_dataset_t *ds,
                                  int threads, const int32_t *map, const float *idf, uint32_t *df,
                                  kinfer_feats_t *out, char *errstr, size_t errstr_size);

/* ---- net.c: one record forward and backward ---------------------------------------------------- */

typedef struct kinfer_net_scratch_s {
        float *h0, *h1, *z, *g, *gh, *gh0;
} kinfer_net_scratch_t;

/** Lay the parameter vector out (n_params and the offsets) from L, D, H, linear, n_rows. */
void kinfer_net_layout(kinfer_net_t *net);
int kinfer_net_scratch_init(kinfer_net_scratch_t *s, const kinfer_net_t *net);
void kinfer_net_scratch_term(kinfer_net_scratch_t *s);
/** Forward one record; logits into s->z. */
void kinfer_net_forward(const kinfer_net_t *net, const float *P, const int32_t *rows, const float *w,
                        int64_t nf, kinfer_net_scratch_t *s);
/** Backward one record with output gradient s->g (dLoss/dz); SGD update with rate lr.
 * @p dirty (optional) marks touched rows. */
void kinfer_net_backward(const kinfer_net_t *net, float *P, const int32_t *rows, const float *w,
                         int64_t nf, kinfer_net_scratch_t *s, float lr, float l2, uint8_t *dirty);
/** Initial parameters: random (seeded) for embedding models, zero for linear ones, or those of
 * @p im (may be NULL; q8 and sparse tensors expanded to f32).
 * @returns KINFER_OK, or KINFER_ERR__INVALID_ARG when @p im's layers do not fit @p net. */
kinfer_err_t kinfer_net_init(const kinfer_net_t *net, uint64_t seed, const kinfer_model_t *im,
                             float *P);

double kinfer_now_sec(void);
uint64_t kinfer_rng_next(uint64_t *s);

/* ---- dataset.c ------------------------------------------------------------------------------- */

/** Parse @p ds->buf (@p len bytes + room for a NUL; a calloc'd @p ds, consumed: destroyed on
 * failure) as the lines of @p path from line @p line0 + 1 on; ds->sha256 is @p sha256, or
 * that of the buffer when NULL. kinfer_dataset_load is this over the whole file; a rank's
 * shard (mpi.c) is this over its byte range. */
kinfer_dataset_t *kinfer_dataset_from_buf(kinfer_dataset_t *ds, const char *path, size_t len,
                                          int allow_unlabelled, int32_t line0,
                                          const uint8_t sha256[32], char *errstr, size_t errstr_size);

/* ---- dist.c: averaging the ranks' replicas (opts->comm) ------------------------------------ */

/** Average @p P over the ranks of @p c: the rows marked in @p dirty on any rank (or all of P,
 * when that is smaller to send) and the dense layers; clears @p dirty. Collective. */
kinfer_err_t kinfer_dist_sync(kinfer_train_comm_t *c, const kinfer_net_t *net, float *P,
                              uint8_t *dirty, char *errstr, size_t errstr_size);

/* ---- rows.c: keep the top rows --------------------------------------------------------------- */

/** The squared L2 norm of the @p d floats at @p x, summed in double. */
double kinfer_row_norm2(const float *x, int32_t d);

/**
 * @brief Choose the @p keep rows of largest importance @p imp among @p n (ties: the lower row
 * first; keep >= n keeps them all) and number them in their original order (memory locality):
 * newidx[r] = the new index of row r, or -1 when it is dropped.
 * @p min_kept (optional) gets the smallest kept importance.
 * @returns KINFER_OK, or KINFER_ERR__NOMEM.
 */
kinfer_err_t kinfer_keep_top_rows(const float *imp, int64_t n, int64_t keep, int32_t *newidx,
                                  float *min_kept);

/* ---- rebuild.c: a model copied with some tensors replaced ------------------------------------ */

#define KINFER_REPL_DROP UINT32_MAX /* as a kinfer_repl_t dtype: remove the tensor */

typedef struct kinfer_repl_s {
        uint32_t kind, dtype, rows, cols;
        void *data; /* owned by the caller (kinfer_repl_free frees it) */
        size_t size;
        int used;
} kinfer_repl_t;

#define KINFER_MAX_REPL 16

/**
 * @brief A new model with @p src's tensors in their order, META replaced by @p meta (NULL:
 * kept) and every kind in @p r replaced by its entry (or dropped); entries whose kind @p src
 * lacks are appended in order.
 * @returns the model, or NULL (see errstr).
 */
kinfer_model_t *kinfer_rebuild(const kinfer_model_t *src, kinfer_repl_t *r, int n_r, const char *meta,
                               char *errstr, size_t errstr_size);
void kinfer_repl_free(kinfer_repl_t *r, int n_r);

/* ---- the drift reference (reference.c) ------------------------------------------------------ */

/** Records a reference classifies at most: every ceil(n / max)-th record of a larger set. */
#define KINFER_REF_MAX_RECORDS 20000

/** @p model with META "drift_reference" (model.h) computed on @p ds (named @p which: "dev" or
 *  "train"); with @p comm (ranks of a distributed run, each holding its shard) the counts are
 *  summed over the ranks (a collective call). A set of which nothing was classified gives
 *  @p model itself (one more reference) without a reference.
 *  @returns a new model, or NULL (see @p errstr). @p model is not released. */
kinfer_model_t *kinfer_reference_attach(kinfer_model_t *model, const kinfer_dataset_t *ds,
                                        const char *which, kinfer_train_comm_t *comm,
                                        char *errstr, size_t errstr_size);

/** Store the rank index instead of the dense bucket map when @p on, and the dense map instead
 * of a stored rank index when not (consumes @p m, which may be NULL: then NULL is returned). */
kinfer_model_t *kinfer_maybe_compact(kinfer_model_t *m, int on, char *errstr, size_t errstr_size);

/** The row of bucket @p b: the dense map, else the rank index, else the identity. */
int32_t kinfer_bucket_row(const kinfer_model_t *m, uint32_t b);

/** The dense layers of a model, with their tensor kinds and names, in forward order. */
int kinfer_dense_layers(const kinfer_model_t *model, const kinfer_dense_t **d, uint32_t *kind,
                        const char **what);

const char *kinfer_dtype_name(uint32_t dtype);

#endif
