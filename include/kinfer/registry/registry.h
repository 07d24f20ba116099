/* SPDX-License-Identifier: Apache-2.0 */
/* registry.h -- the PostgreSQL model registry (schema `kinfer`, see migrations/): one
 * connection, its named prepared statements, models and lineage, deployments (activate,
 * rollback), LISTEN/NOTIFY, worker heartbeats, metrics windows, and the primitives the
 * migration runner (src/registry/migrate.c) needs.
 *
 * src/registry/registry.c is the only file that includes libpq-fe.h. The registry hands out bytes and
 * metadata, never a kinfer_model_t: callers verify bytes with kinfer_model_load_mem().
 *
 * A registry object is one connection: use it from one thread at a time (except
 * kinfer_registry_interrupt). When a call fails with KINFER_ERR__DB and
 * kinfer_registry_connected() is false, call kinfer_registry_reconnect(); prepared statements
 * and LISTENs are redone on the new connection automatically.
 *
 * No call waits on PostgreSQL without a bound. Connection defaults (a conninfo, URI or service
 * file that sets the same key wins; PGCONNECT_TIMEOUT / PGAPPNAME too): connect_timeout=5,
 * keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3,
 * tcp_user_timeout=30000 (ms), application_name=kinfer. Each session whose statement_timeout
 * is 0 (none set by the conninfo's options, PGOPTIONS, ALTER ROLE/DATABASE or the server)
 * gets statement_timeout=30s. A server that stops answering while the TCP connection stays up
 * (SIGSTOP, a hung host whose kernel still ACKs) is caught by the client: a call that receives
 * nothing for the session's statement_timeout + 10 s (300 s when it has none) drops the
 * connection and fails with KINFER_ERR__DB. */
#ifndef KINFER_REGISTRY_H
#define KINFER_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/err.h"

/** The channel kinfer.activate/kinfer.rollback notify; the payload is the deployment name. */
#define KINFER_REGISTRY_CHANNEL "kinfer_deployment"

typedef struct kinfer_registry_s kinfer_registry_t;

/** @name Connection
 * @{ */

/**
 * @brief Connect. @p conninfo is a libpq connection string or URI; NULL or "" uses libpq's
 * PG* environment variables. connect_timeout defaults to 5 s unless @p conninfo sets it.
 * @returns the registry, or NULL on failure (see @p errstr).
 */
kinfer_registry_t *kinfer_registry_new(const char *conninfo, char *errstr, size_t errstr_size);
/** Close the connection and free @p reg. NULL is a no-op. */
void kinfer_registry_destroy(kinfer_registry_t *reg);
/**
 * @brief Make every call on @p reg in progress, and every later one (connect included), give
 * up at once: the connection is dropped and the call fails (KINFER_ERR__DB, or
 * KINFER_ERR__TIMEOUT from kinfer_registry_wait_notify). Sticky; for a bounded shutdown.
 * @locality any thread (and async-signal-safe); the only call that may overlap another.
 */
void kinfer_registry_interrupt(kinfer_registry_t *reg);
/** @returns 1 when the connection is up (as far as libpq knows), else 0. */
int kinfer_registry_connected(const kinfer_registry_t *reg);
/** Reconnect (same parameters), then re-issue every LISTEN. Blocks up to connect_timeout. */
kinfer_err_t kinfer_registry_reconnect(kinfer_registry_t *reg, char *errstr, size_t errstr_size);
/** The server's idea of the session user (for messages). Borrowed, valid until reconnect. */
const char *kinfer_registry_user(const kinfer_registry_t *reg);
/** @} */

/** @name Migrations (used by src/registry/migrate.c)
 * @{ */
typedef struct kinfer_registry_migration_s {
        int32_t version;
        char name[256];  /* file name, e.g. "0001_registry.sql" */
        char sha256[65]; /* of the file's bytes */
        char applied_at[40];
        char applied_by[64];
} kinfer_registry_migration_t;

/**
 * @brief Run @p sql (one or more statements, no parameters) and copy the first column of the
 * first row of the last result into @p value ("" when there is none).
 * @remark For tests and tooling (CREATE DATABASE, counts); the registry's own operations use
 * named prepared statements.
 */
kinfer_err_t kinfer_registry_exec_value(kinfer_registry_t *reg, const char *sql, char *value,
                                        size_t value_size, char *errstr, size_t errstr_size);

/** Create schema kinfer and kinfer.schema_migrations when missing (under the lock). */
kinfer_err_t kinfer_registry_migrations_bootstrap(kinfer_registry_t *reg, char *errstr,
                                                  size_t errstr_size);
/** The applied migrations, by version (none when kinfer.schema_migrations does not exist). *@p outp
 * is malloc'd (free() it); may be NULL if 0. */
kinfer_err_t kinfer_registry_migrations_applied(kinfer_registry_t *reg,
                                                kinfer_registry_migration_t **outp, size_t *np,
                                                char *errstr, size_t errstr_size);
/**
 * @brief Apply one migration: BEGIN; pg_advisory_xact_lock; if @p version is already recorded,
 * compare checksums (*@p appliedp = 0, an error naming the file if they differ); else run
 * @p sql, record (version, name, sha256) and COMMIT (*@p appliedp = 1). Any error rolls the
 * whole file back.
 */
kinfer_err_t kinfer_registry_migration_apply(kinfer_registry_t *reg, int32_t version,
                                             const char *name, const char *sha256, const char *sql,
                                             int *appliedp, char *errstr, size_t errstr_size);
/** @} */

/** @name Models
 * @{ */

/** What `model push` registers. All pointers are borrowed for the duration of the call. */
typedef struct kinfer_registry_push_s {
        const char *name;  /* registry name; the version is assigned */
        const void *bytes; /* the whole model file */
        size_t len;
        const char *sha256;        /* hex sha256 of bytes, as the model reports it: checked */
        const char *format;        /* kinfer_model_format() */
        const char *const *labels; /* n_labels strings */
        int32_t n_labels;
        const char *meta_json; /* the META JSON object; lineage parents come from it */
} kinfer_registry_push_t;

/** A registered model. Strings marked (malloc'd) may be NULL; see kinfer_registry_model_term. */
typedef struct kinfer_registry_model_s {
        int64_t id;
        char name[129];
        int32_t version;
        char sha256[65];
        int64_t size;
        char format[32];
        char method[32]; /* train, quantize, prune, distill, or "" */
        int32_t n_labels;
        char created_by[64];
        char created_at[40];   /* ISO 8601, UTC */
        char *labels;          /* (malloc'd) "a, b, c" -- model_get only */
        char *hyperparameters; /* (malloc'd) pretty JSON -- model_get only */
        char *evaluation;      /* (malloc'd) pretty JSON or NULL -- model_get only */
        char *deployments;     /* (malloc'd) "name (active), ..." or NULL -- model_get only */
        void *bytes;           /* (malloc'd) the artifact, when requested */
        size_t len;
        int64_t activation_id; /* deployment_active only: the deployment's last history row
                                  (kinfer.activations.id), 0 when none */
} kinfer_registry_model_t;

/** Free the malloc'd members of @p model (not @p model itself) and zero it. */
void kinfer_registry_model_term(kinfer_registry_model_t *model);
/** Free an array from kinfer_registry_model_ls(). */
void kinfer_registry_models_free(kinfer_registry_model_t *models, size_t n);

/**
 * @brief Register a model: checks the bytes against @p push->sha256, assigns the next version
 * of @p push->name atomically, records lineage edges from meta.lineage.parents (parents are
 * resolved by sha256; unknown parents are kept by sha256 and resolved when registered).
 * @returns KINFER_OK with *@p idp / *@p versionp set; KINFER_ERR__BAD_FORMAT when the bytes
 *          do not match the sha256; KINFER_ERR__STATE when the same bytes are already
 *          registered (errstr names NAME:VERSION; *@p versionp = that version when the name
 *          is the same, else 0).
 */
kinfer_err_t kinfer_registry_model_push(kinfer_registry_t *reg, const kinfer_registry_push_t *push,
                                        int64_t *idp, int32_t *versionp, char *errstr,
                                        size_t errstr_size);

/** List models (every name when @p name is NULL), by name then version. *@p outp: free with
 * kinfer_registry_models_free(). */
kinfer_err_t kinfer_registry_model_ls(kinfer_registry_t *reg, const char *name,
                                      kinfer_registry_model_t **outp, size_t *np, char *errstr,
                                      size_t errstr_size);

/**
 * @brief One model by NAME and VERSION (0 = the latest version of NAME), with its details;
 * with the artifact bytes too when @p with_bytes. @p out is filled; release it with
 * kinfer_registry_model_term(). @returns KINFER_ERR__NOENT (errstr names it) when missing.
 */
kinfer_err_t kinfer_registry_model_get(kinfer_registry_t *reg, const char *name, int32_t version,
                                       int with_bytes, kinfer_registry_model_t *out, char *errstr,
                                       size_t errstr_size);

/** The artifact bytes of model @p id into @p out->bytes / @p out->len. */
kinfer_err_t kinfer_registry_model_bytes(kinfer_registry_t *reg, int64_t id,
                                         kinfer_registry_model_t *out, char *errstr,
                                         size_t errstr_size);

/** One node of a lineage tree, in depth-first pre-order. */
typedef struct kinfer_registry_lineage_node_s {
        int32_t depth;     /* 0 = the model asked about */
        char relation[32]; /* edge to the node above it ("" at depth 0) */
        int registered;    /* 0: a parent known only by its sha256 */
        char name[129];    /* registry name, or the name written in the file, or "" */
        int32_t version;   /* registry version, or the file's hint, or 0 */
        char sha256[65];
        char method[32];
        char format[32];
        char *params; /* (malloc'd) this model's own meta.lineage.params (how it was
                         made from its parents) as JSON text, or NULL */
} kinfer_registry_lineage_node_t;

void kinfer_registry_lineage_free(kinfer_registry_lineage_node_t *nodes, size_t n);

/**
 * @brief The lineage of NAME:VERSION: its ancestors (@p descendants = 0: parents, their
 * parents, ...) or the models derived from it (@p descendants = 1).
 * *@p outp: free with kinfer_registry_lineage_free(). KINFER_ERR__NOENT when missing.
 */
kinfer_err_t kinfer_registry_model_lineage(kinfer_registry_t *reg, const char *name,
                                           int32_t version, int descendants,
                                           kinfer_registry_lineage_node_t **outp, size_t *np,
                                           char *errstr, size_t errstr_size);
/** @} */

/** @name Deployments
 * @{ */

/** Create DEPLOYMENT (or set its topics; NULL keeps them). */
kinfer_err_t kinfer_registry_deployment_create(kinfer_registry_t *reg, const char *deployment,
                                               const char *input_topic, const char *output_topic,
                                               char *errstr, size_t errstr_size);
/** SELECT kinfer.activate(...). @p summary receives its one-line result ("" if NULL). */
kinfer_err_t kinfer_registry_activate(kinfer_registry_t *reg, const char *deployment,
                                      const char *name, int32_t version, const char *reason,
                                      char *summary, size_t summary_size, char *errstr,
                                      size_t errstr_size);
/** SELECT kinfer.rollback(...). */
kinfer_err_t kinfer_registry_rollback(kinfer_registry_t *reg, const char *deployment,
                                      const char *reason, char *summary, size_t summary_size,
                                      char *errstr, size_t errstr_size);
/** One deployment, as `kinfer deployment ls` shows it. */
typedef struct kinfer_registry_deployment_s {
        char name[129];
        char input_topic[256];
        char output_topic[256];
        char active[160]; /* "name:version", or "" */
        char previous[160];
        char updated_at[40];
        char updated_by[64];
        int32_t workers;   /* workers not stopped, heard of in the last 30 s */
        char serving[256]; /* the versions those workers report, e.g. "sections:2" */
        char candidate[200]; /* "canary sections:3 10.00%", "shadow sections:3", or "" */
} kinfer_registry_deployment_t;

/** Every deployment, by name. *@p outp is malloc'd (free() it); NULL when none. */
kinfer_err_t kinfer_registry_deployment_ls(kinfer_registry_t *reg,
                                           kinfer_registry_deployment_t **outp, size_t *np,
                                           char *errstr, size_t errstr_size);

/**
 * @brief The active model of @p deployment (metadata only: no details, no bytes).
 * @returns KINFER_ERR__NOENT when the deployment does not exist or has no active model.
 */
kinfer_err_t kinfer_registry_deployment_active(kinfer_registry_t *reg, const char *deployment,
                                               kinfer_registry_model_t *out, char *errstr,
                                               size_t errstr_size);
/** The previous model of @p deployment (what kinfer.rollback() would activate); metadata
 * only. @returns KINFER_ERR__NOENT when there is none. */
kinfer_err_t kinfer_registry_deployment_previous(kinfer_registry_t *reg, const char *deployment,
                                                 kinfer_registry_model_t *out, char *errstr,
                                                 size_t errstr_size);

/** SELECT kinfer.canary(...): route @p percent (text, as PostgreSQL reads a numeric: 0 < p <
 *  100, two decimals) of the deployment's keys to NAME:VERSION. */
kinfer_err_t kinfer_registry_canary(kinfer_registry_t *reg, const char *deployment,
                                    const char *name, int32_t version, const char *percent,
                                    const char *reason, char *summary, size_t summary_size,
                                    char *errstr, size_t errstr_size);
/** SELECT kinfer.shadow(...). */
kinfer_err_t kinfer_registry_shadow(kinfer_registry_t *reg, const char *deployment,
                                    const char *name, int32_t version, const char *reason,
                                    char *summary, size_t summary_size, char *errstr,
                                    size_t errstr_size);
/** SELECT kinfer.promote / kinfer.abort_canary / kinfer.end_shadow (@p action "promote",
 *  "abort" or "end_shadow"). */
kinfer_err_t kinfer_registry_rollout_end(kinfer_registry_t *reg, const char *deployment,
                                         const char *action, const char *reason, char *summary,
                                         size_t summary_size, char *errstr, size_t errstr_size);
/**
 * @brief The candidate model of @p deployment (metadata only), *@p shadow = 1 for a shadow,
 *        0 for a canary, whose share is *@p basis_points (percent x 100: 1..9999).
 * @returns KINFER_ERR__NOENT when the deployment has no candidate.
 */
kinfer_err_t kinfer_registry_deployment_candidate(kinfer_registry_t *reg, const char *deployment,
                                                  kinfer_registry_model_t *out, int *shadow,
                                                  int32_t *basis_points, char *errstr,
                                                  size_t errstr_size);

/** The shadow comparison of one (active, candidate) pair over a time range. */
typedef struct kinfer_registry_shadow_diff_s {
        char active[160], candidate[160]; /* "name:version" */
        int64_t windows, records, agree, confusion_other;
        double mean_score_diff;          /* candidate - active top-1 score, records-weighted */
        double active_classify_us, candidate_classify_us; /* per record */
} kinfer_registry_shadow_diff_t;

/** One (active label, candidate label) disagreement and its records. */
typedef struct kinfer_registry_shadow_pair_s {
        char candidate[160];
        char active_label[257], candidate_label[257];
        int64_t count;
} kinfer_registry_shadow_pair_t;

/**
 * @brief `kinfer deployment diff`: kinfer.shadow_windows of @p deployment that ended in the
 *        last @p since_interval (a PostgreSQL interval; NULL: 1 hour), or since @p since_time
 *        when set: per (active, candidate) (*@p diffp, newest first, at most 100) and the
 *        @p max_pairs most frequent disagreements (*@p pairsp). Both malloc'd (free()).
 */
kinfer_err_t kinfer_registry_shadow_diff(kinfer_registry_t *reg, const char *deployment,
                                         const char *since_interval, const char *since_time,
                                         int32_t max_pairs, kinfer_registry_shadow_diff_t **diffp,
                                         size_t *n_diff, kinfer_registry_shadow_pair_t **pairsp,
                                         size_t *n_pairs, char *errstr, size_t errstr_size);
/** @} */

/** @name LISTEN / NOTIFY
 * @{ */

/** LISTEN on @p channel (remembered: re-issued after a reconnect). */
kinfer_err_t kinfer_registry_listen(kinfer_registry_t *reg, const char *channel, char *errstr,
                                    size_t errstr_size);
/**
 * @brief Wait up to @p timeout_ms for one notification (polls the connection's socket).
 * @returns KINFER_OK with @p channel / @p payload filled, KINFER_ERR__TIMEOUT when none
 *          arrived, KINFER_ERR__DB when the connection failed (then reconnect).
 */
kinfer_err_t kinfer_registry_wait_notify(kinfer_registry_t *reg, int timeout_ms, char *channel,
                                         size_t channel_size, char *payload, size_t payload_size,
                                         char *errstr, size_t errstr_size);
/** @} */

/** @name Workers and metrics
 * @{ */
typedef struct kinfer_registry_worker_s {
        const char *worker_id; /* unique per process, e.g. host:pid:start */
        const char *host;
        int32_t pid;
        const char *deployment; /* or NULL */
        int64_t model_id;       /* 0: none */
        const char *model_name; /* or NULL */
        int32_t model_version;
        const char *model_sha256;
        const char *status;     /* "running", "stopping", ... */
        const char *last_error; /* NULL keeps the recorded one; "" clears it */
} kinfer_registry_worker_t;

/** Insert or update the worker's row and set heartbeat_at = now(). */
kinfer_err_t kinfer_registry_worker_upsert(kinfer_registry_t *reg,
                                           const kinfer_registry_worker_t *worker, char *errstr,
                                           size_t errstr_size);

typedef struct kinfer_registry_metrics_s {
        const char *worker_id;
        const char *deployment;
        const char *model_name;
        int32_t model_version;
        const char *model_sha256;
        int64_t window_start_us; /* Unix epoch, microseconds */
        int64_t window_end_us;
        int64_t records, batches, dlq;
        double mean_batch_size;
        double latency_p50_ms, latency_p95_ms, latency_p99_ms;
        double mean_confidence;
        const char *label_counts_json; /* a JSON object {"label": count, ...}; NULL = {} */
        /* drift (migration 0006; kinfer.metrics_drift after the insert): the top-1 score
         * histogram (NULL or 0 bins: the drift columns are not written) and the PSIs (< 0: none) */
        const int64_t *confidence_hist;
        int n_confidence_hist; /* at most 100 */
        double psi_labels, psi_confidence;
} kinfer_registry_metrics_t;

/** One shadow window (kinfer.shadow_windows, migration 0005). */
typedef struct kinfer_registry_shadow_s {
        const char *worker_id;
        const char *deployment;
        const char *active_name;
        int32_t active_version;
        const char *candidate_name;
        int32_t candidate_version;
        const char *candidate_sha256;
        int64_t window_start_us, window_end_us; /* Unix epoch, microseconds */
        int64_t records, agree, confusion_other;
        const char *confusion_json; /* [[active, candidate, count], ...], at most 64; NULL = [] */
        double mean_score_diff, active_classify_us, candidate_classify_us;
} kinfer_registry_shadow_t;

/** Insert one shadow window (re-inserting the same worker, start and candidate is a no-op). */
kinfer_err_t kinfer_registry_shadow_insert(kinfer_registry_t *reg,
                                           const kinfer_registry_shadow_t *shadow, char *errstr,
                                           size_t errstr_size);

/** Insert one window. Re-inserting the same (worker, window start, model) is a no-op, so a
 * buffered window may be re-sent after a reconnect. */
kinfer_err_t kinfer_registry_metrics_insert(kinfer_registry_t *reg,
                                            const kinfer_registry_metrics_t *metrics, char *errstr,
                                            size_t errstr_size);

/** One row of the drift trend: a time bucket (or one window) of one model version. */
typedef struct kinfer_registry_drift_row_s {
        char bucket[32];          /* its start, UTC, ISO 8601 */
        char model[160];          /* name:version */
        int64_t windows, records; /* metrics windows and their records */
        int64_t assessed;         /* windows with a PSI */
        double psi_labels, psi_labels_max;         /* records-weighted mean, max; -1 = none */
        double psi_confidence, psi_confidence_max; /* the same for the confidence PSI */
} kinfer_registry_drift_row_t;

/**
 * @brief The drift trend of @p deployment from kinfer.metrics_windows: windows that ended
 *        after now() - @p since_interval (a PostgreSQL interval; NULL: "1 hour"), or after
 *        @p since_time (a timestamp; wins when given), grouped per @p bucket ("window": one
 *        row per window, or a date_trunc unit: "minute", "hour", "day") and model version, in
 *        time order, at most 10000 rows. *@p outp is malloc'd (the caller frees it).
 */
kinfer_err_t kinfer_registry_drift_trend(kinfer_registry_t *reg, const char *deployment,
                                         const char *since_interval, const char *since_time,
                                         const char *bucket, kinfer_registry_drift_row_t **outp,
                                         size_t *np, char *errstr, size_t errstr_size);
/** @} */

#endif
