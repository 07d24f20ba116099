/* SPDX-License-Identifier: Apache-2.0 */
/* train.h -- datasets, SGD training (data-parallel with replica averaging), evaluation.
 * Training uses the same featurizer and feature weighting as serving, so the two cannot
 * drift apart. */
#ifndef KINFER_TRAIN_H
#define KINFER_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/err.h"
#include "kinfer/text/featurize.h"
#include "kinfer/model/model.h"

/** @name Datasets
 * @{ */
typedef enum { KINFER_DATA_TSV = 1, KINFER_DATA_FASTTEXT = 2, KINFER_DATA_LINES = 3 } kinfer_data_format_t;

typedef struct kinfer_dataset_s {
        char path[1024];
        kinfer_data_format_t format;
        int32_t n;            /* records */
        const char **texts;   /* views into buf (not NUL-terminated) */
        size_t *lens;
        const char **labels;  /* label strings (NUL-terminated, in buf); NULL when unlabelled */
        int32_t *line_no;     /* 1-based source line of each record */
        int32_t *words;       /* whitespace-separated words per record */
        uint8_t sha256[32];   /* of the file's bytes: the training data fingerprint */
        int32_t header_line;  /* the line of column names skipped ("label<TAB>text"), or 0 */
        char *buf;
} kinfer_dataset_t;

/**
 * @brief Read a TSV (label<TAB>text) or fastText (__label__X text) file; the format is
 * detected from the first non-empty line. With @p allow_unlabelled, a file of plain lines is
 * accepted too (labels NULL). A first TSV line of column names (label|labels|class|category|
 * target, then text|sentence|document|content|body, any case) is skipped and its number
 * kept in header_line, for the caller's notice. Errors name the file and the line.
 */
kinfer_dataset_t *kinfer_dataset_load(const char *path, int allow_unlabelled, char *errstr,
                                      size_t errstr_size);
void kinfer_dataset_destroy(kinfer_dataset_t *ds);
/** @} */

/** @name Training
 * @{ */
typedef struct kinfer_train_progress_s {
        int32_t epoch, epochs;   /* 1-based current epoch */
        double progress;         /* 0..1 over all epochs */
        double loss;             /* mean loss since the last report */
        double words_per_sec;    /* over the whole run, all threads */
        double eta_sec;
        double lr;
        double dev_accuracy;     /* last dev accuracy, or -1 */
        int epoch_done;          /* 1 on the report at the end of an epoch */
} kinfer_train_progress_t;

typedef void(kinfer_train_progress_cb_t)(const kinfer_train_progress_t *p, void *opaque);
/** One line of text about a decision the trainer made (the automatic feature choice). */
typedef void(kinfer_train_note_cb_t)(const char *line, void *opaque);

/** @name Distributed training (data-parallel over processes)
 * kinfer_train talks to the other processes only through these collectives; the MPI binding
 * is kinfer/train/mpi.h (src/train/mpi.c, built when CMake finds MPI). Every call is
 * collective: each rank makes the same calls in the same order with the same sizes.
 * @{ */
typedef enum { KINFER_COMM_U8 = 1, KINFER_COMM_U32, KINFER_COMM_I64, KINFER_COMM_F32 } kinfer_comm_type_t;
typedef enum { KINFER_COMM_SUM = 1, KINFER_COMM_MAX, KINFER_COMM_MIN, KINFER_COMM_BOR } kinfer_comm_op_t;

typedef struct kinfer_train_comm_s kinfer_train_comm_t;
struct kinfer_train_comm_s {
        int rank, size;
        /** In place over all ranks, the same result on every rank. */
        kinfer_err_t (*allreduce)(kinfer_train_comm_t *c, void *buf, size_t n, kinfer_comm_type_t type,
                                  kinfer_comm_op_t op, char *errstr, size_t errstr_size);
        /** @p bytes from rank 0 to every rank. */
        kinfer_err_t (*bcast)(kinfer_train_comm_t *c, void *buf, size_t bytes, char *errstr,
                              size_t errstr_size);
        void *ctx;
        /* set by the caller before kinfer_train */
        int64_t n_records;       /* records over all shards (idf, META) */
        int32_t syncs_per_epoch; /* parameter averagings per epoch (the same on every rank) */
        /* counted by kinfer_train */
        uint64_t sync_bytes;     /* payload of the averaging collectives, per rank, whole run */
        int64_t syncs, sparse_syncs;
        uint64_t dense_bytes;    /* what one dense averaging sends (all parameters) */
        double epochs_seconds;   /* wall time of the epochs stage */
};
/** @} */

typedef struct kinfer_train_opts_s {
        kinfer_featurizer_conf_t feat;
        int32_t dim;        /* 0 = linear model (one weight per label per row), else embedding width */
        int32_t hidden;     /* width of one ReLU hidden layer (dim > 0 only), 0 = none */
        int32_t epochs;
        float lr;           /* initial learning rate, decays linearly to 0 */
        float l2;           /* L2 regularisation per update (0 = none) */
        int32_t min_count;  /* buckets seen in fewer documents get no row */
        int32_t max_rows;   /* keep at most this many rows, the largest by norm (0 = all) */
        int32_t threads;
        int32_t sync_every; /* records per thread between replica averaging */
        int hogwild;        /* threads update one shared model without averaging */
        uint64_t seed;
        int32_t patience;   /* epochs without dev improvement before stopping (only in the
                             * second half of the schedule, while the rate is low) */
        const kinfer_dataset_t *dev; /* optional: early stopping, and the score temperature
                                      * (KINFER_T_CALIB) is fitted on it */
        const char *name;   /* model name stored in the metadata */
        /* distillation: soft targets (n_train x n_labels teacher probabilities at temperature),
         * mixed with the hard labels: alpha * soft + (1 - alpha) * hard. Records without a
         * label use the soft targets alone. */
        const float *soft_targets;
        float temperature, alpha;
        /* continue from this model: its featurizer, labels, bucket map, idf, shape and weights
         * (q8 and sparse weights are expanded to f32); min_count and feat are ignored. Used by
         * prune --retrain. */
        const kinfer_model_t *init_model;
        const char *const *label_order; /* fix the label set and order (n_label_order), or NULL */
        int32_t n_label_order;
        /* lineage: method, relation and parents recorded in the metadata */
        const char *lineage_method;       /* default "train" */
        const char *lineage_relation;     /* for parents */
        const char *lineage_params_json;  /* extra params (JSON object text) */
        const kinfer_model_t *const *parents;
        int32_t n_parents;
        /* how the file maps buckets to rows: KINFER_MAP_AUTO (default) stores the compact rank
         * index when the dense map (4 bytes per bucket) would outweigh the embedding rows, as
         * for a small model over 2^21 buckets, and the dense map otherwise (its lookups are
         * the fastest); KINFER_MAP_DENSE or KINFER_MAP_RANK force one */
        int bucket_map;
        /* train one shard of the data as one rank of comm->size processes (NULL: alone): each
         * rank trains one replica on its shard, replicas are averaged syncs_per_epoch times per
         * epoch (only the rows some rank touched, when that is cheaper), and every rank ends
         * with the same parameters; threads then only featurize */
        kinfer_train_comm_t *comm;
        /* 1: choose the char n-grams before training (select.c): a short trial per candidate
         * (the settings of feat as given, and the same plus char n-grams 1..4) on a fixed-seed
         * shuffle of the training data, scored on a held-out 10% of it (at most 5,000
         * records); char n-grams are used when they gain at least 0.5 points there and win by
         * two standard deviations in a paired count (McNemar) of the held-out records. The
         * trial's figures go to the hyperparameters ("auto_features") and to note. Skipped
         * (recorded as not run) with fewer than 1,000 labelled records, when feat.maxn is set,
         * and with init_model, soft_targets, label_order or comm. Off in
         * kinfer_train_opts_default; `kinfer train` turns it on unless --minn/--maxn or
         * --no-auto-features is given. */
        int auto_features;
        kinfer_train_note_cb_t *note; /* optional */
        kinfer_train_progress_cb_t *progress;
        void *opaque;                 /* for progress and note */
} kinfer_train_opts_t;

enum { KINFER_MAP_AUTO = 0, KINFER_MAP_DENSE = 1, KINFER_MAP_RANK = 2 };

/** The defaults (a linear model: 0.848 on debian-sections dev with no flags). */
void kinfer_train_opts_default(kinfer_train_opts_t *opts);
/** The default learning rate for a shape: 10 for linear models (dim 0), 0.2 for embedding
 * models, 0.1 with a hidden layer (the linear rate makes those diverge). */
float kinfer_train_default_lr(int32_t dim, int32_t hidden);

typedef struct kinfer_train_result_s {
        double seconds;
        int32_t epochs_run, best_epoch;
        double dev_accuracy; /* -1 without dev */
        int32_t n_rows;
        double final_loss;
        float temperature;   /* score temperature fitted on dev (1 without dev) */
        double select_seconds; /* of seconds: the automatic feature choice's trial */
} kinfer_train_result_t;

/**
 * @brief Train a model on @p train.
 * @returns the model (in memory; write it with kinfer_model_bytes()), or NULL (see errstr).
 */
kinfer_model_t *kinfer_train(const kinfer_dataset_t *train, const kinfer_train_opts_t *opts,
                             kinfer_train_result_t *res, char *errstr, size_t errstr_size);
/** @} */

/** @name Evaluation
 * @{ */
typedef struct kinfer_eval_s {
        int32_t n_labels;     /* the model's labels; index n_labels = "(not in model)" */
        int64_t n, correct, skipped;
        double accuracy, macro_f1;
        double mean_confidence; /* mean top-1 score */
        double ece;             /* expected calibration error, 10 equal-width score bins */
        double *precision, *recall, *f1; /* n_labels */
        int64_t *support;                /* n_labels + 1 */
        int64_t *confusion;              /* (n_labels + 1) x n_labels: [true][predicted] */
} kinfer_eval_t;

/** Classify every labelled record of @p ds with @p threads threads. */
kinfer_err_t kinfer_eval(const kinfer_model_t *model, const kinfer_dataset_t *ds, int32_t threads,
                         kinfer_eval_t *ev, char *errstr, size_t errstr_size);
void kinfer_eval_term(kinfer_eval_t *ev);
/** The report as a JSON object (n, correct, accuracy, macro_f1, mean_confidence, ece,
 * unknown_labels, per_class, and confusion when @p with_confusion) into *@p out, a malloc'd
 * string (the caller frees it).
 * @returns KINFER_OK, or KINFER_ERR__NOMEM (*@p out is then NULL). */
kinfer_err_t kinfer_eval_json(const kinfer_model_t *model, const kinfer_eval_t *ev, int with_confusion,
                              char **out, char *errstr, size_t errstr_size);
/** @} */

#endif
