/* SPDX-License-Identifier: Apache-2.0 */
/* registry.c -- the PostgreSQL registry over libpq: the connection, a table of named prepared
 * statements (prepared lazily, once per connection), models and lineage, deployments,
 * LISTEN/NOTIFY, worker heartbeats, metrics windows, and migration primitives.
 *
 * The only file that includes libpq-fe.h. Rules kept throughout: every PGresult is checked
 * against the exact status expected and PQclear'ed in the function that received it;
 * PQfinish runs only in kinfer_registry_destroy(). */
#include "kinfer/registry/registry.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kinfer/core/log.h"
#include "kinfer/core/sha256.h"

/* pg_advisory_xact_lock key of `kinfer migrate` ("kinfer" in ASCII). */
#define REG_MIGRATE_LOCK "119182446896498"

#define REG_MAX_LISTEN 8

/* Connection defaults (a conninfo, URI or service file that sets the same key wins): give up
 * connecting after 5 s, probe an idle connection after 10 s (then every 5 s, 3 times), and
 * drop it when sent data stays unacknowledged for 30 s (a partition). */
#define REG_DEFAULT_KEYS "connect_timeout", "keepalives", "keepalives_idle", \
        "keepalives_interval", "keepalives_count", "tcp_user_timeout", "application_name"
#define REG_DEFAULT_VALS "5", "1", "10", "5", "3", "30000", "kinfer"
/* statement_timeout set on each session whose own is 0 (none from the conninfo's options,
 * PGOPTIONS, ALTER ROLE/DATABASE or the server) */
#define REG_STATEMENT_TIMEOUT_MS 30000
#define REG_STATEMENT_TIMEOUT_MS_STR "30000"
/* The client's own bound on a silent server (a SIGSTOPped or frozen PostgreSQL still ACKs TCP,
 * so neither keepalives nor tcp_user_timeout notice it): a call that receives nothing for the
 * session's statement_timeout + this margin (or REG_IO_TIMEOUT_NONE_MS when it has none)
 * drops the connection and fails. */
#define REG_IO_MARGIN_MS 10000
#define REG_IO_TIMEOUT_NONE_MS 300000

/* ---- prepared statements -------------------------------------------------------------------- */

typedef enum {
        ST_MIG_EXISTS,
        ST_MIG_LIST,
        ST_MIG_GET,
        ST_MIG_RECORD,
        ST_MODEL_BY_SHA,
        ST_MODEL_REGISTER,
        ST_MODEL_LS,
        ST_MODEL_GET,
        ST_MODEL_BYTES,
        ST_LINEAGE_UP,
        ST_LINEAGE_DOWN,
        ST_DEP_CREATE,
        ST_ACTIVATE,
        ST_ROLLBACK,
        ST_DEP_ACTIVE,
        ST_DEP_PREVIOUS,
        ST_DEP_LS,
        ST_WORKER_UPSERT,
        ST_METRICS_INSERT,
        ST_CANARY,
        ST_SHADOW,
        ST_PROMOTE,
        ST_ABORT_CANARY,
        ST_END_SHADOW,
        ST_DEP_CANDIDATE,
        ST_SHADOW_INSERT,
        ST_SHADOW_DIFF,
        ST_SHADOW_PAIRS,
        ST_METRICS_DRIFT,
        ST_DRIFT_TREND,
        ST__COUNT
} reg_stmt_t;

/* Columns of a model row, shared by several statements (order read by reg_model_row). */
#define MODEL_COLS                                                                                 \
        "m.id, m.name, m.version, m.sha256, m.size, m.format, m.method, "                          \
        "coalesce(array_length(m.labels, 1), 0), m.created_by, "                                   \
        "to_char(m.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define MODEL_NCOLS 10

/* Lineage node columns: depth, relation, registered, name, version, sha256, method, format,
 * params. Pre-order by the path of sha256s. Depth is bounded (a cycle cannot exist, since a
 * parent's sha256 is in the child's bytes, but the bound keeps a corrupt table harmless). */
#define LINEAGE_SELECT                                                                             \
        "SELECT t.depth, coalesce(t.relation, ''), (t.id IS NOT NULL), "                           \
        "coalesce(m.name, t.hint_name, ''), coalesce(m.version, t.hint_version, 0), t.sha256, "    \
        "coalesce(m.method, ''), coalesce(m.format, ''), (m.meta #> '{lineage,params}')::text "    \
        "FROM t LEFT JOIN kinfer.models m ON m.id = t.id ORDER BY t.path"

static const struct {
        const char *name;
        const char *sql;
        int nparams;
} reg_stmts[ST__COUNT] = {
    [ST_MIG_EXISTS] = {"kinfer_mig_exists",
                       "SELECT to_regclass('kinfer.schema_migrations') IS NOT NULL", 0},
    [ST_MIG_LIST] = {"kinfer_mig_list",
                     "SELECT version, name, sha256, "
                     "to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
                     "applied_by FROM kinfer.schema_migrations ORDER BY version",
                     0},
    [ST_MIG_GET] = {"kinfer_mig_get",
                    "SELECT name, sha256 FROM kinfer.schema_migrations WHERE version = $1::integer",
                    1},
    [ST_MIG_RECORD] = {"kinfer_mig_record",
                       "INSERT INTO kinfer.schema_migrations (version, name, sha256, duration_ms) "
                       "VALUES ($1::integer, $2, $3, $4::double precision)",
                       4},
    [ST_MODEL_BY_SHA] = {"kinfer_model_by_sha",
                         "SELECT m.name, m.version FROM kinfer.models m WHERE m.sha256 = $1", 1},
    [ST_MODEL_REGISTER] = {"kinfer_model_register",
                           "SELECT model_id, version FROM kinfer.register_model($1, $2::bytea, $3, "
                           "$4::text[], $5::jsonb)",
                           5},
    [ST_MODEL_LS] = {"kinfer_model_ls",
                     "SELECT " MODEL_COLS " FROM kinfer.models m "
                     "WHERE $1::text IS NULL OR m.name = $1 ORDER BY m.name, m.version",
                     1},
    [ST_MODEL_GET] = {"kinfer_model_get",
                      "SELECT " MODEL_COLS ", array_to_string(m.labels, ', '), "
                      "jsonb_pretty(m.hyperparameters), jsonb_pretty(m.evaluation), "
                      "(SELECT string_agg(d.name || CASE WHEN d.active_model_id = m.id "
                      "THEN ' (active)' ELSE ' (previous)' END, ', ' ORDER BY d.name) "
                      "FROM kinfer.deployments d "
                      "WHERE m.id IN (d.active_model_id, d.previous_model_id)) "
                      "FROM kinfer.models m WHERE m.name = $1 "
                      "AND ($2::integer = 0 OR m.version = $2::integer) "
                      "ORDER BY m.version DESC LIMIT 1",
                      2},
    [ST_MODEL_BYTES] = {"kinfer_model_bytes",
                        "SELECT m.artifact FROM kinfer.models m WHERE m.id = $1::bigint", 1},
    [ST_LINEAGE_UP] =
        {"kinfer_lineage_up",
         "WITH RECURSIVE t(depth, id, sha256, relation, params, hint_name, "
         "hint_version, path) AS ("
         " SELECT 0, m.id, m.sha256, NULL::text, NULL::jsonb, NULL::text, "
         "  NULL::integer, ARRAY[m.sha256] FROM kinfer.models m "
         "  WHERE m.name = $1 AND m.version = $2::integer"
         " UNION ALL"
         " SELECT t.depth + 1, l.parent_id, l.parent_sha256, l.relation, l.params, "
         "  l.parent_name, l.parent_version, t.path || l.parent_sha256"
         "  FROM t JOIN kinfer.lineage l ON l.child_id = t.id WHERE t.depth < 64) " LINEAGE_SELECT,
         2},
    [ST_LINEAGE_DOWN] =
        {"kinfer_lineage_down",
         "WITH RECURSIVE t(depth, id, sha256, relation, params, hint_name, "
         "hint_version, path) AS ("
         " SELECT 0, m.id, m.sha256, NULL::text, NULL::jsonb, NULL::text, "
         "  NULL::integer, ARRAY[m.sha256] FROM kinfer.models m "
         "  WHERE m.name = $1 AND m.version = $2::integer"
         " UNION ALL"
         " SELECT t.depth + 1, c.id, c.sha256, l.relation, l.params, NULL, NULL, "
         "  t.path || c.sha256"
         "  FROM t JOIN kinfer.lineage l ON l.parent_id = t.id"
         "  JOIN kinfer.models c ON c.id = l.child_id WHERE t.depth < 64) " LINEAGE_SELECT,
         2},
    [ST_DEP_CREATE] = {"kinfer_dep_create", "SELECT kinfer.deployment_create($1, $2, $3)", 3},
    [ST_ACTIVATE] = {"kinfer_activate", "SELECT kinfer.activate($1, $2, $3::integer, $4)", 4},
    [ST_ROLLBACK] = {"kinfer_rollback", "SELECT kinfer.rollback($1, $2)", 2},
    [ST_DEP_ACTIVE] = {"kinfer_dep_active",
                       "SELECT " MODEL_COLS ", (SELECT coalesce(max(a.id), 0) FROM "
                       "kinfer.activations a WHERE a.deployment = d.name) FROM kinfer.deployments d "
                       "JOIN kinfer.models m ON m.id = d.active_model_id WHERE d.name = $1",
                       1},
    [ST_DEP_PREVIOUS] = {"kinfer_dep_previous",
                         "SELECT " MODEL_COLS " FROM kinfer.deployments d "
                         "JOIN kinfer.models m ON m.id = d.previous_model_id WHERE d.name = $1",
                         1},
    [ST_DEP_LS] =
        {"kinfer_dep_ls",
         "SELECT s.deployment, coalesce(s.input_topic, ''), coalesce(s.output_topic, ''), "
         "coalesce(s.active_model || ':' || s.active_version, ''), "
         "coalesce(s.previous_model || ':' || s.previous_version, ''), "
         "to_char(s.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
         "s.updated_by, count(w.worker_id), "
         "coalesce(string_agg(DISTINCT w.model_name || ':' || w.model_version, ', '), ''), "
         "coalesce(s.candidate_mode || ' ' || s.candidate_model || ':' || s.candidate_version "
         "|| coalesce(' ' || s.candidate_percent::text || '%', ''), '') "
         "FROM kinfer.deployment_status s LEFT JOIN kinfer.workers w "
         "ON w.deployment = s.deployment AND w.status <> 'stopped' "
         "AND w.heartbeat_at > now() - interval '30 seconds' "
         "GROUP BY s.deployment, s.input_topic, s.output_topic, s.active_model, "
         "s.active_version, s.previous_model, s.previous_version, s.updated_at, "
         "s.updated_by, s.candidate_mode, s.candidate_model, s.candidate_version, "
         "s.candidate_percent ORDER BY s.deployment",
         0},
    /* workers write only through the registry's functions (migration 0002) */
    [ST_WORKER_UPSERT] = {"kinfer_worker_upsert",
                          "SELECT kinfer.worker_heartbeat($1, $2, $3::integer, $4, $5::bigint, $6, "
                          "$7::integer, $8, $9, $10)",
                          10},
    [ST_METRICS_INSERT] = {"kinfer_metrics_insert",
                           "SELECT kinfer.metrics_insert($1, $2, $3, $4::integer, $5, "
                           "to_timestamp($6::double precision / 1e6), "
                           "to_timestamp($7::double precision / 1e6), $8::bigint, $9::bigint, "
                           "$10::double precision, $11::bigint, $12::double precision, "
                           "$13::double precision, $14::double precision, $15::jsonb, "
                           "$16::double precision)",
                           16},
    /* canary and shadow (migration 0005) */
    [ST_CANARY] = {"kinfer_canary", "SELECT kinfer.canary($1, $2, $3::integer, $4::numeric, $5)", 5},
    [ST_SHADOW] = {"kinfer_shadow", "SELECT kinfer.shadow($1, $2, $3::integer, $4)", 4},
    [ST_PROMOTE] = {"kinfer_promote", "SELECT kinfer.promote($1, $2)", 2},
    [ST_ABORT_CANARY] = {"kinfer_abort_canary", "SELECT kinfer.abort_canary($1, $2)", 2},
    [ST_END_SHADOW] = {"kinfer_end_shadow", "SELECT kinfer.end_shadow($1, $2)", 2},
    [ST_DEP_CANDIDATE] = {"kinfer_dep_candidate",
                          "SELECT " MODEL_COLS ", d.candidate_mode, "
                          "coalesce(round(d.candidate_percent * 100), 0)::integer "
                          "FROM kinfer.deployments d "
                          "JOIN kinfer.models m ON m.id = d.candidate_model_id WHERE d.name = $1",
                          1},
    [ST_SHADOW_INSERT] = {"kinfer_shadow_insert",
                          "SELECT kinfer.shadow_insert($1, $2, $3, $4::integer, $5, $6::integer, "
                          "$7, to_timestamp($8::double precision / 1e6), "
                          "to_timestamp($9::double precision / 1e6), $10::bigint, $11::bigint, "
                          "$12::jsonb, $13::bigint, $14::double precision, "
                          "$15::double precision, $16::double precision)",
                          16},
    /* shadow comparison (migration 0005): per (active, candidate), and the top disagreements */
    [ST_SHADOW_DIFF] =
        {"kinfer_shadow_diff",
         "SELECT active_name || ':' || coalesce(active_version, 0), "
         "candidate_name || ':' || coalesce(candidate_version, 0), count(*), sum(records), "
         "sum(agree), coalesce(sum(mean_score_diff * records) / nullif(sum(records), 0), 0), "
         "coalesce(sum(active_classify_us * records) / nullif(sum(records), 0), 0), "
         "coalesce(sum(candidate_classify_us * records) / nullif(sum(records), 0), 0), "
         "sum(confusion_other) "
         "FROM kinfer.shadow_windows WHERE deployment = $1 "
         "AND window_end >= coalesce($3::timestamptz, now() - $2::interval) "
         "GROUP BY 1, 2 ORDER BY max(window_end) DESC LIMIT 100",
         3},
    [ST_SHADOW_PAIRS] =
        {"kinfer_shadow_pairs",
         "SELECT s.candidate_name || ':' || coalesce(s.candidate_version, 0), p ->> 0, p ->> 1, "
         "sum((p ->> 2)::bigint) AS n FROM kinfer.shadow_windows s, "
         "jsonb_array_elements(s.confusion) p WHERE s.deployment = $1 "
         "AND s.window_end >= coalesce($3::timestamptz, now() - $2::interval) "
         "AND p ->> 0 <> p ->> 1 GROUP BY 1, 2, 3 ORDER BY n DESC, 2, 3 LIMIT $4::integer",
         4},
    /* drift (migration 0006): the window's PSI and confidence histogram, and their trend */
    [ST_METRICS_DRIFT] = {"kinfer_metrics_drift",
                          "SELECT kinfer.metrics_drift($1, to_timestamp($2::double precision / 1e6), "
                          "$3, $4::double precision, $5::double precision, $6::bigint[])",
                          6},
    [ST_DRIFT_TREND] =
        {"kinfer_drift_trend",
         "SELECT to_char(b AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), model, "
         "count(*), sum(records), count(psi_labels), "
         "coalesce(sum(psi_labels * records) / nullif(sum(records) FILTER (WHERE psi_labels IS "
         "NOT NULL), 0), -1), coalesce(max(psi_labels), -1), "
         "coalesce(sum(psi_confidence * records) / nullif(sum(records) FILTER (WHERE "
         "psi_confidence IS NOT NULL), 0), -1), coalesce(max(psi_confidence), -1) "
         "FROM (SELECT CASE WHEN $3 = 'window' THEN window_start "
         "ELSE date_trunc($3, window_start) END AS b, CASE WHEN $3 = 'window' THEN id END AS k, "
         "coalesce(model_name, '?') || ':' || coalesce(model_version, 0) AS model, records, "
         "psi_labels, psi_confidence FROM kinfer.metrics_windows WHERE deployment = $1 "
         "AND window_end >= coalesce($4::timestamptz, now() - $2::interval)) w "
         "GROUP BY b, k, model ORDER BY b, model, k LIMIT 10000",
         4},
};

struct kinfer_registry_s {
        PGconn *conn; /* NULL after a call gave up on a silent server (reconnect) */
        char *conninfo;
        char prepared[ST__COUNT];        /* prepared on the current connection */
        char listen[REG_MAX_LISTEN][64]; /* channels to (re-)LISTEN */
        int n_listen;
        char user[64];
        int io_timeout_ms;     /* silence after which a call gives up (see REG_IO_MARGIN_MS) */
        int wake[2];           /* kinfer_registry_interrupt() writes to wake[1]; never drained */
        char lost_why[256];    /* why conn was dropped */
        int drift_warned;      /* kinfer.metrics_drift refused once on this connection */
};

/* ---- helpers -------------------------------------------------------------------------------- */

static void reg_oneline(char *s);

static double reg_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int reg_interrupted(const kinfer_registry_t *reg)
{
        struct pollfd pfd = {.fd = reg->wake[0], .events = POLLIN};
        return reg->wake[0] >= 0 && poll(&pfd, 1, 0) == 1;
}

/* Close the connection after a call gave up (the server's state is unknown); the next call
 * fails at once and kinfer_registry_connected() says 0, so the caller reconnects. */
static void reg_drop(kinfer_registry_t *reg, const char *why)
{
        snprintf(reg->lost_why, sizeof(reg->lost_why), "%s", why);
        kinfer_log(KINFER_LOG_WARN, "PG", "connection dropped: %s", why);
        if (reg->conn)
                PQfinish(reg->conn); /* non-blocking mode: never waits for the server */
        reg->conn = NULL;
}

/* Wait until the connection's socket is ready for @p events, for at most @p timeout_ms (< 0:
 * no limit). @returns 1 ready, 0 timed out, -1 interrupted (kinfer_registry_interrupt). */
static int reg_poll(kinfer_registry_t *reg, int fd, short events, int timeout_ms)
{
        struct pollfd pfd[2] = {{.fd = fd, .events = events}, {.fd = reg->wake[0], .events = POLLIN}};
        double until = timeout_ms >= 0 ? reg_now_ms() + timeout_ms : 0;
        for (;;) {
                int left = -1;
                if (timeout_ms >= 0) {
                        double d = until - reg_now_ms();
                        left = d <= 0 ? 0 : (int)d + 1;
                }
                int rc = poll(pfd, reg->wake[0] >= 0 ? 2 : 1, left);
                if (rc < 0 && errno == EINTR)
                        continue;
                if (rc < 0)
                        return 1; /* let libpq find out what is wrong with the socket */
                if (rc > 0 && (pfd[1].revents & POLLIN))
                        return -1;
                if (rc > 0)
                        return 1;
                return 0;
        }
}

/* After a PQsend*(): flush, wait for the results (each wait bounded by io_timeout_ms of
 * silence and by an interrupt) and return the last one (what PQexec would). NULL when the
 * wait gave up: the connection is dropped then (reg->lost_why says why). */
static PGresult *reg_finish(kinfer_registry_t *reg, int sent)
{
        if (!sent) /* the send itself failed: libpq has a result with the error */
                return PQgetResult(reg->conn);
        PGresult *last = NULL;
        for (;;) {
                int fl;
                while ((fl = PQflush(reg->conn)) == 1) {
                        int rc = reg_poll(reg, PQsocket(reg->conn), POLLOUT | POLLIN,
                                          reg->io_timeout_ms);
                        if (rc <= 0)
                                goto gave_up;
                        if (!PQconsumeInput(reg->conn))
                                break;
                }
                while (PQisBusy(reg->conn)) {
                        int rc = reg_poll(reg, PQsocket(reg->conn), POLLIN, reg->io_timeout_ms);
                        if (rc <= 0)
                                goto gave_up;
                        if (!PQconsumeInput(reg->conn))
                                break; /* PQgetResult reports the broken connection */
                }
                PGresult *res = PQgetResult(reg->conn);
                if (!res)
                        return last;
                PQclear(last);
                last = res;
                if (PQresultStatus(res) == PGRES_COPY_IN || PQresultStatus(res) == PGRES_COPY_OUT ||
                    PQstatus(reg->conn) == CONNECTION_BAD)
                        return last;
                continue;
        gave_up:
                PQclear(last);
                if (reg_interrupted(reg))
                        reg_drop(reg, "interrupted (shutting down)");
                else {
                        char why[128];
                        snprintf(why, sizeof(why), "no answer from PostgreSQL for %d ms",
                                 reg->io_timeout_ms);
                        reg_drop(reg, why);
                }
                return NULL;
        }
}

/* PQexec, PQprepare and PQexecPrepared, bounded (see reg_finish). */
static PGresult *reg_pq_exec(kinfer_registry_t *reg, const char *sql)
{
        if (!reg->conn)
                return NULL;
        return reg_finish(reg, PQsendQuery(reg->conn, sql));
}

static PGresult *reg_pq_prepare(kinfer_registry_t *reg, const char *name, const char *sql,
                                int nparams)
{
        if (!reg->conn)
                return NULL;
        return reg_finish(reg, PQsendPrepare(reg->conn, name, sql, nparams, NULL));
}

static PGresult *reg_pq_exec_prepared(kinfer_registry_t *reg, const char *name, int nparams,
                                      const char *const *params, const int *lengths,
                                      const int *formats, int result_format)
{
        if (!reg->conn)
                return NULL;
        return reg_finish(reg, PQsendQueryPrepared(reg->conn, name, nparams, params, lengths,
                                                   formats, result_format));
}

static void reg_notice_processor(void *arg, const char *message)
{
        char line[512];
        size_t n = strlen(message);
        (void)arg;
        while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == '\r'))
                n--;
        snprintf(line, sizeof(line), "%.*s", (int)n, message);
        reg_oneline(line);
        kinfer_log(KINFER_LOG_NOTICE, "PG", "server: %s", line);
}

/* libpq messages may span lines ("...failed: ...\n\tIs the server running..."): keep one
 * log line per event. Trims trailing blanks too. */
static void reg_oneline(char *s)
{
        for (char *p = s; *p; p++)
                if (*p == '\n' || *p == '\t' || *p == '\r')
                        *p = ' ';
        size_t n = strlen(s);
        while (n > 0 && s[n - 1] == ' ')
                s[--n] = '\0';
}

/* The primary message of a failed result (or of the connection), without the trailing
 * newline, and an error code from its SQLSTATE. */
static kinfer_err_t reg_result_err(kinfer_registry_t *reg, const PGresult *res, const char *what,
                                   char *errstr, size_t errstr_size)
{
        const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        char buf[512];
        if (!msg)
                msg = reg->conn ? PQerrorMessage(reg->conn) : reg->lost_why;
        snprintf(buf, sizeof(buf), "%s", msg && *msg ? msg : "unknown error");
        reg_oneline(buf);
        kinfer_err_t err = KINFER_ERR__DB;
        if (state && !strcmp(state, "P0002"))
                err = KINFER_ERR__NOENT;
        else if (state && (!strcmp(state, "23505") || !strcmp(state, "55000")))
                err = KINFER_ERR__STATE;
        /* errors the caller expects and reports (missing object, duplicate, no previous
         * model, permission denied) at debug; anything else is worth a warning */
        int expected = err != KINFER_ERR__DB || (state && !strcmp(state, "42501"));
        kinfer_log(expected ? KINFER_LOG_DEBUG : KINFER_LOG_WARN, "PG",
                   "query failed: %s query=%s sqlstate=%s", buf, what, state ? state : "-");
        return kinfer_seterr(errstr, errstr_size, err, "%s", buf);
}

/* Check @p res has exactly status @p want; on mismatch fill errstr (the caller PQclear's). */
static kinfer_err_t reg_check(kinfer_registry_t *reg, const PGresult *res, ExecStatusType want,
                              const char *what, char *errstr, size_t errstr_size)
{
        if (res && PQresultStatus(res) == want)
                return KINFER_OK;
        if (res && PQresultStatus(res) != PGRES_FATAL_ERROR &&
            PQresultStatus(res) != PGRES_NONFATAL_ERROR)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__DB,
                                     "query %s: unexpected result %s", what,
                                     PQresStatus(PQresultStatus(res)));
        return reg_result_err(reg, res, what, errstr, errstr_size);
}

/* Prepare statement @p st on this connection unless done already. */
static kinfer_err_t reg_prepare(kinfer_registry_t *reg, reg_stmt_t st, char *errstr,
                                size_t errstr_size)
{
        if (reg->prepared[st])
                return KINFER_OK;
        PGresult *res = reg_pq_prepare(reg, reg_stmts[st].name, reg_stmts[st].sql,
                                       reg_stmts[st].nparams);
        kinfer_err_t err =
            reg_check(reg, res, PGRES_COMMAND_OK, reg_stmts[st].name, errstr, errstr_size);
        PQclear(res);
        if (err == KINFER_OK)
                reg->prepared[st] = 1;
        return err;
}

/* Run a statement without parameters (BEGIN, COMMIT, LISTEN, the advisory lock) whose
 * result must have status @p want; its rows, if any, are not needed. */
static kinfer_err_t reg_command(kinfer_registry_t *reg, const char *sql, ExecStatusType want,
                                const char *what, char *errstr, size_t errstr_size)
{
        PGresult *res = reg_pq_exec(reg, sql);
        kinfer_err_t err = reg_check(reg, res, want, what, errstr, errstr_size);
        PQclear(res);
        return err;
}

static void reg_copy(char *dst, size_t size, const PGresult *res, int row, int col)
{
        snprintf(dst, size, "%s", PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

static char *reg_dup(const PGresult *res, int row, int col)
{
        if (PQgetisnull(res, row, col))
                return NULL;
        return strdup(PQgetvalue(res, row, col));
}

/* Fill the MODEL_COLS part of @p out from row @p row. */
static void reg_model_row(const PGresult *res, int row, kinfer_registry_model_t *out)
{
        out->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
        reg_copy(out->name, sizeof(out->name), res, row, 1);
        out->version = (int32_t)strtol(PQgetvalue(res, row, 2), NULL, 10);
        reg_copy(out->sha256, sizeof(out->sha256), res, row, 3);
        out->size = strtoll(PQgetvalue(res, row, 4), NULL, 10);
        reg_copy(out->format, sizeof(out->format), res, row, 5);
        reg_copy(out->method, sizeof(out->method), res, row, 6);
        out->n_labels = (int32_t)strtol(PQgetvalue(res, row, 7), NULL, 10);
        reg_copy(out->created_by, sizeof(out->created_by), res, row, 8);
        reg_copy(out->created_at, sizeof(out->created_at), res, row, 9);
}

/* Prepare statement @p st (once per connection), execute it and check the result status
 * against @p want. *resp receives the result, NULL when the statement could not be
 * prepared; the caller owns it and PQclears it. */
static kinfer_err_t reg_exec(kinfer_registry_t *reg, reg_stmt_t st, int nparams,
                             const char *const *params, const int *lengths, const int *formats,
                             int result_format, ExecStatusType want, PGresult **resp,
                             char *errstr, size_t errstr_size)
{
        *resp = NULL;
        kinfer_err_t err = reg_prepare(reg, st, errstr, errstr_size);
        if (err)
                return err;
        *resp = reg_pq_exec_prepared(reg, reg_stmts[st].name, nparams, params, lengths, formats,
                                     result_format);
        return reg_check(reg, *resp, want, reg_stmts[st].name, errstr, errstr_size);
}

/* Run prepared statement @p st; on success *outp is a calloc'd array of one @p elem-byte
 * element per row, filled by @p fn (NULL and 0 when no row). The result is cleared here. */
typedef void(reg_row_fn)(const PGresult *res, int row, void *out);

static kinfer_err_t reg_fetch_rows(kinfer_registry_t *reg, reg_stmt_t st, int nparams,
                                   const char *const *params, size_t elem, reg_row_fn *fn,
                                   void **outp, size_t *np, char *errstr, size_t errstr_size)
{
        *outp = NULL;
        *np = 0;
        PGresult *res;
        kinfer_err_t err = reg_exec(reg, st, nparams, params, NULL, NULL, 0, PGRES_TUPLES_OK, &res,
                                    errstr, errstr_size);
        int n = err == KINFER_OK ? PQntuples(res) : 0;
        if (n > 0) {
                uint8_t *out = calloc((size_t)n, elem);
                if (!out) {
                        err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                } else {
                        for (int i = 0; i < n; i++)
                                fn(res, i, out + (size_t)i * elem);
                        *outp = out;
                        *np = (size_t)n;
                }
        }
        PQclear(res);
        return err;
}

static int reg_connection_lost(kinfer_registry_t *reg)
{
        return PQstatus(reg->conn) != CONNECTION_OK;
}

/* After a fresh connection: forget prepared statements, read the user, set the default
 * statement_timeout (unless the session has one) and derive io_timeout_ms from it, re-LISTEN. */
static kinfer_err_t reg_session_init(kinfer_registry_t *reg, char *errstr, size_t errstr_size)
{
        memset(reg->prepared, 0, sizeof(reg->prepared));
        reg->drift_warned = 0;
        PQsetNoticeProcessor(reg->conn, reg_notice_processor, reg);
        snprintf(reg->user, sizeof(reg->user), "%s", PQuser(reg->conn) ? PQuser(reg->conn) : "");
        reg->io_timeout_ms = REG_STATEMENT_TIMEOUT_MS + REG_IO_MARGIN_MS; /* for this query */
        char value[32];
        kinfer_err_t err = kinfer_registry_exec_value(
            reg,
            "SELECT pg_catalog.set_config('statement_timeout', '" REG_STATEMENT_TIMEOUT_MS_STR
            "', false) "
            "WHERE pg_catalog.current_setting('statement_timeout') = '0';"
            "SELECT setting FROM pg_catalog.pg_settings WHERE name = 'statement_timeout'",
            value, sizeof(value), errstr, errstr_size);
        if (err)
                return err;
        long st = strtol(value, NULL, 10);
        reg->io_timeout_ms = st <= 0 || st > INT32_MAX / 2 ? REG_IO_TIMEOUT_NONE_MS
                                                          : (int)st + REG_IO_MARGIN_MS;
        for (int i = 0; i < reg->n_listen; i++) {
                char *ident = PQescapeIdentifier(reg->conn, reg->listen[i], strlen(reg->listen[i]));
                char sql[160];
                if (!ident)
                        return reg_result_err(reg, NULL, "LISTEN", errstr, errstr_size);
                snprintf(sql, sizeof(sql), "LISTEN %s", ident);
                PQfreemem(ident);
                err = reg_command(reg, sql, PGRES_COMMAND_OK, "LISTEN", errstr, errstr_size);
                if (err)
                        return err;
        }
        return KINFER_OK;
}

/* ---- connection ----------------------------------------------------------------------------- */

/* The connect_timeout (seconds) the connection uses, as a wait bound in ms (-1: none). */
static int reg_connect_wait_ms(PGconn *conn)
{
        int ms = -1;
        PQconninfoOption *opts = PQconninfo(conn);
        for (PQconninfoOption *o = opts; o && o->keyword; o++)
                if (!strcmp(o->keyword, "connect_timeout") && o->val && *o->val) {
                        long s = strtol(o->val, NULL, 10);
                        ms = s <= 0 ? -1 : s < 2 ? 2000 : s > 3600 ? 3600000 : (int)s * 1000;
                }
        PQconninfoFree(opts);
        return ms;
}

/* Open reg->conn: kinfer's defaults (REG_DEFAULT_KEYS, each left out when its PG* variable is
 * set), then the conninfo, which wins. Non-blocking, and every wait is bounded by
 * connect_timeout and by an interrupt. */
static kinfer_err_t reg_connect(kinfer_registry_t *reg, const char *what, char *errstr,
                                size_t errstr_size)
{
        static const char *const dkeys[] = {REG_DEFAULT_KEYS};
        static const char *const dvals[] = {REG_DEFAULT_VALS};
        const size_t nd = sizeof(dkeys) / sizeof(dkeys[0]);
        const char *keys[sizeof(dkeys) / sizeof(dkeys[0]) + 2], *vals[sizeof(keys) / sizeof(keys[0])];
        size_t n = 0;
        for (size_t i = 0; i < nd; i++) {
                if ((!strcmp(dkeys[i], "connect_timeout") && getenv("PGCONNECT_TIMEOUT")) ||
                    (!strcmp(dkeys[i], "application_name") && getenv("PGAPPNAME")))
                        continue;
                keys[n] = dkeys[i];
                vals[n++] = dvals[i];
        }
        keys[n] = "dbname"; /* later entries win: the conninfo overrides the defaults */
        vals[n++] = reg->conninfo && *reg->conninfo ? reg->conninfo : NULL;
        keys[n] = NULL;
        vals[n] = NULL;
        if (reg->conn)
                PQfinish(reg->conn);
        reg->conn = PQconnectStartParams(keys, vals, 1);
        const char *why = NULL;
        if (!reg->conn) {
                why = "out of memory";
        } else if (reg_interrupted(reg)) {
                why = "interrupted (shutting down)";
        } else if (PQstatus(reg->conn) != CONNECTION_BAD) {
                int wait_ms = reg_connect_wait_ms(reg->conn);
                PostgresPollingStatusType st = PGRES_POLLING_WRITING;
                while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
                        int rc = reg_poll(reg, PQsocket(reg->conn),
                                          st == PGRES_POLLING_READING ? POLLIN : POLLOUT, wait_ms);
                        if (rc < 0) {
                                why = "interrupted (shutting down)";
                                break;
                        }
                        if (rc == 0) {
                                why = "timeout expired (connect_timeout)";
                                break;
                        }
                        st = PQconnectPoll(reg->conn);
                }
        }
        if (!why && PQstatus(reg->conn) == CONNECTION_OK && PQsetnonblocking(reg->conn, 1) != 0)
                why = "cannot make the connection non-blocking";
        if (why || PQstatus(reg->conn) != CONNECTION_OK) {
                char buf[512];
                snprintf(buf, sizeof(buf), "%s", why ? why : PQerrorMessage(reg->conn));
                reg_oneline(buf);
                if (reg->conn)
                        PQfinish(reg->conn);
                reg->conn = NULL;
                snprintf(reg->lost_why, sizeof(reg->lost_why), "not connected: %.200s", buf);
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__DB,
                                     "cannot %s to PostgreSQL: %s", what, buf);
        }
        return reg_session_init(reg, errstr, errstr_size);
}

kinfer_registry_t *kinfer_registry_new(const char *conninfo, char *errstr, size_t errstr_size)
{
        kinfer_registry_t *reg = calloc(1, sizeof(*reg));
        if (!reg) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        reg->wake[0] = reg->wake[1] = -1;
        if ((conninfo && !(reg->conninfo = strdup(conninfo))) ||
            pipe2(reg->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM,
                              "cannot set up a connection: %s", strerror(errno));
                kinfer_registry_destroy(reg);
                return NULL;
        }
        if (reg_connect(reg, "connect", errstr, errstr_size) != KINFER_OK) {
                kinfer_registry_destroy(reg);
                return NULL;
        }
        return reg;
}

void kinfer_registry_destroy(kinfer_registry_t *reg)
{
        if (!reg)
                return;
        if (reg->conn)
                PQfinish(reg->conn);
        for (int i = 0; i < 2; i++)
                if (reg->wake[i] >= 0)
                        close(reg->wake[i]);
        free(reg->conninfo);
        free(reg);
}

void kinfer_registry_interrupt(kinfer_registry_t *reg)
{
        if (reg && reg->wake[1] >= 0) {
                ssize_t rc = write(reg->wake[1], "x", 1);
                (void)rc; /* a full pipe is already a pending interrupt */
        }
}

int kinfer_registry_connected(const kinfer_registry_t *reg)
{
        return reg && reg->conn && PQstatus(reg->conn) == CONNECTION_OK;
}

const char *kinfer_registry_user(const kinfer_registry_t *reg)
{
        return reg->user;
}

kinfer_err_t kinfer_registry_reconnect(kinfer_registry_t *reg, char *errstr, size_t errstr_size)
{
        return reg_connect(reg, "reconnect", errstr, errstr_size);
}

/* ---- migrations ----------------------------------------------------------------------------- */

/* Does kinfer.schema_migrations exist? */
static kinfer_err_t reg_migrations_exist(kinfer_registry_t *reg, int *existsp, char *errstr,
                                         size_t errstr_size)
{
        *existsp = 0;
        PGresult *res;
        kinfer_err_t err = reg_exec(reg, ST_MIG_EXISTS, 0, NULL, NULL, NULL, 0, PGRES_TUPLES_OK,
                                    &res, errstr, errstr_size);
        *existsp = err == KINFER_OK && PQntuples(res) == 1 && !strcmp(PQgetvalue(res, 0, 0), "t");
        PQclear(res);
        return err;
}

kinfer_err_t kinfer_registry_migrations_bootstrap(kinfer_registry_t *reg, char *errstr,
                                                  size_t errstr_size)
{
        int exists;
        kinfer_err_t err = reg_migrations_exist(reg, &exists, errstr, errstr_size);
        if (err || exists)
                return err;

        err = reg_command(reg,
                          "BEGIN;"
                          "SELECT pg_advisory_xact_lock(" REG_MIGRATE_LOCK ");"
                          "CREATE SCHEMA IF NOT EXISTS kinfer;"
                          "CREATE TABLE IF NOT EXISTS kinfer.schema_migrations ("
                          " version integer PRIMARY KEY,"
                          " name text NOT NULL,"
                          " sha256 text NOT NULL,"
                          " applied_at timestamptz NOT NULL DEFAULT now(),"
                          " applied_by text NOT NULL DEFAULT current_user,"
                          " duration_ms double precision);"
                          "COMMIT",
                          PGRES_COMMAND_OK, "migrations_bootstrap", errstr, errstr_size);
        if (err && !reg_connection_lost(reg)) {
                char ignore[64];
                reg_command(reg, "ROLLBACK", PGRES_COMMAND_OK, "ROLLBACK", ignore, sizeof(ignore));
        }
        return err;
}

static void reg_migration_row(const PGresult *res, int i, void *p)
{
        kinfer_registry_migration_t *out = p;
        out->version = (int32_t)strtol(PQgetvalue(res, i, 0), NULL, 10);
        reg_copy(out->name, sizeof(out->name), res, i, 1);
        reg_copy(out->sha256, sizeof(out->sha256), res, i, 2);
        reg_copy(out->applied_at, sizeof(out->applied_at), res, i, 3);
        reg_copy(out->applied_by, sizeof(out->applied_by), res, i, 4);
}

kinfer_err_t kinfer_registry_migrations_applied(kinfer_registry_t *reg,
                                                kinfer_registry_migration_t **outp, size_t *np,
                                                char *errstr, size_t errstr_size)
{
        int exists;
        *outp = NULL;
        *np = 0;
        kinfer_err_t err = reg_migrations_exist(reg, &exists, errstr, errstr_size);
        if (err || !exists)
                return err; /* nothing applied yet */
        return reg_fetch_rows(reg, ST_MIG_LIST, 0, NULL, sizeof(**outp), reg_migration_row,
                              (void **)outp, np, errstr, errstr_size);
}

/* The body of one migration, inside BEGIN ... COMMIT under the advisory lock. */
static kinfer_err_t reg_migration_txn(kinfer_registry_t *reg, int32_t version, const char *name,
                                      const char *sha256, const char *sql, int *appliedp,
                                      char *errstr, size_t errstr_size)
{
        char vbuf[16];
        snprintf(vbuf, sizeof(vbuf), "%d", (int)version);
        kinfer_err_t err = reg_command(reg, "SELECT pg_advisory_xact_lock(" REG_MIGRATE_LOCK ")",
                                       PGRES_TUPLES_OK, "migrate_lock", errstr, errstr_size);
        if (err)
                return err;

        /* Under the lock: applied meanwhile by another `kinfer migrate`? */
        const char *p1[] = {vbuf};
        PGresult *res;
        err = reg_exec(reg, ST_MIG_GET, 1, p1, NULL, NULL, 0, PGRES_TUPLES_OK, &res, errstr,
                       errstr_size);
        if (err == KINFER_OK && PQntuples(res) == 1) {
                if (strcmp(PQgetvalue(res, 0, 1), sha256))
                        err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE,
                                            "migration %s was changed after it was applied "
                                            "(recorded sha256 %.12s..., file %.12s...)",
                                            name, PQgetvalue(res, 0, 1), sha256);
                PQclear(res);
                return err;
        }
        PQclear(res);
        if (err)
                return err;

        double t0 = reg_now_ms();
        res = reg_pq_exec(reg, sql);
        if (!res ||
            (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)) {
                char why[400];
                reg_check(reg, res, PGRES_COMMAND_OK, name, why, sizeof(why));
                const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
                int line = 0;
                if (pos) {
                        long off = strtol(pos, NULL, 10); /* 1-based character offset */
                        line = 1;
                        for (long i = 0; i < off - 1 && sql[i]; i++)
                                line += sql[i] == '\n';
                }
                PQclear(res);
                if (line)
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__DB,
                                             "migration %s failed at line %d: %s", name, line, why);
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__DB, "migration %s failed: %s",
                                     name, why);
        }
        PQclear(res);

        char dbuf[32];
        snprintf(dbuf, sizeof(dbuf), "%.3f", reg_now_ms() - t0);
        const char *p4[] = {vbuf, name, sha256, dbuf};
        err = reg_exec(reg, ST_MIG_RECORD, 4, p4, NULL, NULL, 0, PGRES_COMMAND_OK, &res, errstr,
                       errstr_size);
        PQclear(res);
        if (err == KINFER_OK)
                *appliedp = 1;
        return err;
}

kinfer_err_t kinfer_registry_migration_apply(kinfer_registry_t *reg, int32_t version,
                                             const char *name, const char *sha256, const char *sql,
                                             int *appliedp, char *errstr, size_t errstr_size)
{
        *appliedp = 0;
        kinfer_err_t err =
            reg_command(reg, "BEGIN", PGRES_COMMAND_OK, "BEGIN", errstr, errstr_size);
        if (err)
                return err;
        err = reg_migration_txn(reg, version, name, sha256, sql, appliedp, errstr, errstr_size);
        if (err == KINFER_OK && *appliedp) {
                /* COMMIT of a transaction that cannot commit (a deferred constraint) succeeds
                 * with the tag ROLLBACK: that is a failure of this migration too. */
                char why[400];
                PGresult *res = reg_pq_exec(reg, "COMMIT");
                err = reg_check(reg, res, PGRES_COMMAND_OK, "COMMIT", why, sizeof(why));
                if (err == KINFER_OK && strcmp(PQcmdStatus(res), "COMMIT"))
                        err = kinfer_seterr(why, sizeof(why), KINFER_ERR__DB, "rolled back");
                PQclear(res);
                if (err)
                        kinfer_seterr(errstr, errstr_size, err, "migration %s failed at COMMIT: %s",
                                      name, why);
                if (err)
                        *appliedp = 0;
                return err;
        }
        /* Nothing to do, or failed: leave no trace. */
        if (!reg_connection_lost(reg)) {
                char ignore[128];
                reg_command(reg, "ROLLBACK", PGRES_COMMAND_OK, "ROLLBACK", ignore, sizeof(ignore));
        }
        return err;
}

kinfer_err_t kinfer_registry_exec_value(kinfer_registry_t *reg, const char *sql, char *value,
                                        size_t value_size, char *errstr, size_t errstr_size)
{
        if (value && value_size)
                value[0] = '\0';
        PGresult *res = reg_pq_exec(reg, sql);
        kinfer_err_t err = KINFER_OK;
        if (!res ||
            (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK))
                err = reg_check(reg, res, PGRES_TUPLES_OK, "exec_value", errstr, errstr_size);
        else if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 &&
                 PQnfields(res) > 0 && value && value_size)
                reg_copy(value, value_size, res, 0, 0);
        PQclear(res);
        return err;
}

/* ---- models --------------------------------------------------------------------------------- */

void kinfer_registry_model_term(kinfer_registry_model_t *model)
{
        if (!model)
                return;
        free(model->labels);
        free(model->hyperparameters);
        free(model->evaluation);
        free(model->deployments);
        free(model->bytes);
        memset(model, 0, sizeof(*model));
}

void kinfer_registry_models_free(kinfer_registry_model_t *models, size_t n)
{
        for (size_t i = 0; models && i < n; i++)
                kinfer_registry_model_term(&models[i]);
        free(models);
}

/* A PostgreSQL array literal {"a","b\"c"} for @p n strings (malloc'd), or NULL. */
static char *reg_text_array(const char *const *v, int32_t n)
{
        size_t cap = 3;
        for (int32_t i = 0; i < n; i++)
                cap += 2 * strlen(v[i]) + 3;
        char *s = malloc(cap), *p = s;
        if (!s)
                return NULL;
        *p++ = '{';
        for (int32_t i = 0; i < n; i++) {
                if (i)
                        *p++ = ',';
                *p++ = '"';
                for (const char *c = v[i]; *c; c++) {
                        if (*c == '"' || *c == '\\')
                                *p++ = '\\';
                        *p++ = *c;
                }
                *p++ = '"';
        }
        *p++ = '}';
        *p = '\0';
        return s;
}

kinfer_err_t kinfer_registry_model_push(kinfer_registry_t *reg, const kinfer_registry_push_t *push,
                                        int64_t *idp, int32_t *versionp, char *errstr,
                                        size_t errstr_size)
{
        char sha[65];
        *idp = 0;
        *versionp = 0;
        if (!push->name || !*push->name)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "a model name is required");
        if (kinfer_sha256_hex(push->bytes, push->len, sha))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__CRYPTO,
                                     "model %s: cannot compute sha256 (libcrypto error)", push->name);
        if (!push->sha256 || strcmp(sha, push->sha256))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                     "model %s: artifact sha256 %s does not match the expected %s",
                                     push->name, sha, push->sha256 ? push->sha256 : "(none)");

        /* Already registered? Say under which name and version. */
        const char *p1[] = {sha};
        PGresult *res;
        kinfer_err_t err = reg_exec(reg, ST_MODEL_BY_SHA, 1, p1, NULL, NULL, 0, PGRES_TUPLES_OK,
                                    &res, errstr, errstr_size);
        if (err == KINFER_OK && PQntuples(res) == 1) {
                const char *name = PQgetvalue(res, 0, 0);
                int32_t version = (int32_t)strtol(PQgetvalue(res, 0, 1), NULL, 10);
                if (!strcmp(name, push->name))
                        *versionp = version;
                err =
                    kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE,
                                  "this artifact (sha256 %.12s...) is already registered as %s:%d",
                                  sha, name, (int)version);
        }
        PQclear(res);
        if (err)
                return err;

        char *labels = reg_text_array(push->labels, push->n_labels);
        if (!labels)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
        const char *vals[5] = {push->name, push->bytes, push->format ? push->format : "", labels,
                               push->meta_json ? push->meta_json : "{}"};
        int lens[5] = {0, (int)push->len, 0, 0, 0};
        int fmts[5] = {0, 1, 0, 0, 0}; /* the artifact goes as binary */
        if (push->len > (size_t)0x7fffffff) {
                free(labels);
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "model %s: artifact of %zu bytes is too large", push->name,
                                     push->len);
        }
        err = reg_exec(reg, ST_MODEL_REGISTER, 5, vals, lens, fmts, 0, PGRES_TUPLES_OK, &res, errstr,
                       errstr_size);
        free(labels);
        if (err == KINFER_OK && PQntuples(res) == 1) {
                *idp = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
                *versionp = (int32_t)strtol(PQgetvalue(res, 0, 1), NULL, 10);
        } else if (err == KINFER_OK) {
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__DB,
                                    "model %s: register_model returned no row", push->name);
        }
        PQclear(res);
        return err;
}

static void reg_model_row_v(const PGresult *res, int i, void *out)
{
        reg_model_row(res, i, out);
}

kinfer_err_t kinfer_registry_model_ls(kinfer_registry_t *reg, const char *name,
                                      kinfer_registry_model_t **outp, size_t *np, char *errstr,
                                      size_t errstr_size)
{
        const char *p1[] = {name};
        return reg_fetch_rows(reg, ST_MODEL_LS, 1, p1, sizeof(**outp), reg_model_row_v,
                              (void **)outp, np, errstr, errstr_size);
}

kinfer_err_t kinfer_registry_model_bytes(kinfer_registry_t *reg, int64_t id,
                                         kinfer_registry_model_t *out, char *errstr,
                                         size_t errstr_size)
{
        char idbuf[24];
        snprintf(idbuf, sizeof(idbuf), "%" PRId64, id);
        const char *p1[] = {idbuf};
        PGresult *res; /* binary result: a bytea arrives as its raw bytes */
        kinfer_err_t err = reg_exec(reg, ST_MODEL_BYTES, 1, p1, NULL, NULL, 1, PGRES_TUPLES_OK,
                                    &res, errstr, errstr_size);
        if (err == KINFER_OK && PQntuples(res) != 1) {
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOENT,
                                    "model id %" PRId64 " is not registered", id);
        } else if (err == KINFER_OK) {
                size_t len = (size_t)PQgetlength(res, 0, 0);
                void *bytes = malloc(len ? len : 1);
                if (!bytes) {
                        err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM,
                                            "out of memory for %zu bytes", len);
                } else {
                        memcpy(bytes, PQgetvalue(res, 0, 0), len);
                        free(out->bytes);
                        out->bytes = bytes;
                        out->len = len;
                }
        }
        PQclear(res);
        return err;
}

kinfer_err_t kinfer_registry_model_get(kinfer_registry_t *reg, const char *name, int32_t version,
                                       int with_bytes, kinfer_registry_model_t *out, char *errstr,
                                       size_t errstr_size)
{
        char vbuf[16];
        memset(out, 0, sizeof(*out));
        snprintf(vbuf, sizeof(vbuf), "%d", (int)version);
        const char *p2[] = {name, vbuf};
        PGresult *res;
        kinfer_err_t err = reg_exec(reg, ST_MODEL_GET, 2, p2, NULL, NULL, 0, PGRES_TUPLES_OK, &res,
                                    errstr, errstr_size);
        if (err == KINFER_OK && PQntuples(res) != 1) {
                if (version)
                        err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOENT,
                                            "model %s:%d is not registered", name, (int)version);
                else
                        err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOENT,
                                            "model %s is not registered", name);
        } else if (err == KINFER_OK) {
                reg_model_row(res, 0, out);
                out->labels = reg_dup(res, 0, MODEL_NCOLS + 0);
                out->hyperparameters = reg_dup(res, 0, MODEL_NCOLS + 1);
                out->evaluation = reg_dup(res, 0, MODEL_NCOLS + 2);
                out->deployments = reg_dup(res, 0, MODEL_NCOLS + 3);
        }
        PQclear(res);
        if (err == KINFER_OK && with_bytes)
                err = kinfer_registry_model_bytes(reg, out->id, out, errstr, errstr_size);
        if (err)
                kinfer_registry_model_term(out);
        return err;
}

void kinfer_registry_lineage_free(kinfer_registry_lineage_node_t *nodes, size_t n)
{
        for (size_t i = 0; nodes && i < n; i++)
                free(nodes[i].params);
        free(nodes);
}

static void reg_lineage_row(const PGresult *res, int i, void *p)
{
        kinfer_registry_lineage_node_t *out = p;
        out->depth = (int32_t)strtol(PQgetvalue(res, i, 0), NULL, 10);
        reg_copy(out->relation, sizeof(out->relation), res, i, 1);
        out->registered = !strcmp(PQgetvalue(res, i, 2), "t");
        reg_copy(out->name, sizeof(out->name), res, i, 3);
        out->version = (int32_t)strtol(PQgetvalue(res, i, 4), NULL, 10);
        reg_copy(out->sha256, sizeof(out->sha256), res, i, 5);
        reg_copy(out->method, sizeof(out->method), res, i, 6);
        reg_copy(out->format, sizeof(out->format), res, i, 7);
        out->params = reg_dup(res, i, 8);
}

kinfer_err_t kinfer_registry_model_lineage(kinfer_registry_t *reg, const char *name,
                                           int32_t version, int descendants,
                                           kinfer_registry_lineage_node_t **outp, size_t *np,
                                           char *errstr, size_t errstr_size)
{
        char vbuf[16];
        snprintf(vbuf, sizeof(vbuf), "%d", (int)version);
        const char *p2[] = {name, vbuf};
        kinfer_err_t err = reg_fetch_rows(reg, descendants ? ST_LINEAGE_DOWN : ST_LINEAGE_UP, 2, p2,
                                          sizeof(**outp), reg_lineage_row, (void **)outp, np,
                                          errstr, errstr_size);
        if (err == KINFER_OK && *np == 0)
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOENT,
                                    "model %s:%d is not registered", name, (int)version);
        return err;
}

/* ---- deployments ---------------------------------------------------------------------------- */

kinfer_err_t kinfer_registry_deployment_create(kinfer_registry_t *reg, const char *deployment,
                                               const char *input_topic, const char *output_topic,
                                               char *errstr, size_t errstr_size)
{
        const char *p3[] = {deployment, input_topic, output_topic};
        PGresult *res;
        kinfer_err_t err = reg_exec(reg, ST_DEP_CREATE, 3, p3, NULL, NULL, 0, PGRES_TUPLES_OK, &res,
                                    errstr, errstr_size);
        PQclear(res);
        return err;
}

/* Run a statement returning one text value (activate / rollback) into @p summary. */
static kinfer_err_t reg_summary_call(kinfer_registry_t *reg, reg_stmt_t st, int n,
                                     const char *const *params, char *summary, size_t summary_size,
                                     char *errstr, size_t errstr_size)
{
        if (summary && summary_size)
                summary[0] = '\0';
        PGresult *res;
        kinfer_err_t err = reg_exec(reg, st, n, params, NULL, NULL, 0, PGRES_TUPLES_OK, &res, errstr,
                                    errstr_size);
        if (err == KINFER_OK && PQntuples(res) == 1 && summary && summary_size)
                reg_copy(summary, summary_size, res, 0, 0);
        PQclear(res);
        return err;
}

kinfer_err_t kinfer_registry_activate(kinfer_registry_t *reg, const char *deployment,
                                      const char *name, int32_t version, const char *reason,
                                      char *summary, size_t summary_size, char *errstr,
                                      size_t errstr_size)
{
        char vbuf[16];
        snprintf(vbuf, sizeof(vbuf), "%d", (int)version);
        const char *p4[] = {deployment, name, vbuf, reason};
        return reg_summary_call(reg, ST_ACTIVATE, 4, p4, summary, summary_size, errstr,
                                errstr_size);
}

kinfer_err_t kinfer_registry_rollback(kinfer_registry_t *reg, const char *deployment,
                                      const char *reason, char *summary, size_t summary_size,
                                      char *errstr, size_t errstr_size)
{
        const char *p2[] = {deployment, reason};
        return reg_summary_call(reg, ST_ROLLBACK, 2, p2, summary, summary_size, errstr,
                                errstr_size);
}

kinfer_err_t kinfer_registry_canary(kinfer_registry_t *reg, const char *deployment,
                                    const char *name, int32_t version, const char *percent,
                                    const char *reason, char *summary, size_t summary_size,
                                    char *errstr, size_t errstr_size)
{
        char vbuf[16];
        snprintf(vbuf, sizeof(vbuf), "%d", (int)version);
        const char *p5[] = {deployment, name, vbuf, percent, reason};
        return reg_summary_call(reg, ST_CANARY, 5, p5, summary, summary_size, errstr, errstr_size);
}

kinfer_err_t kinfer_registry_shadow(kinfer_registry_t *reg, const char *deployment,
                                    const char *name, int32_t version, const char *reason,
                                    char *summary, size_t summary_size, char *errstr,
                                    size_t errstr_size)
{
        char vbuf[16];
        snprintf(vbuf, sizeof(vbuf), "%d", (int)version);
        const char *p4[] = {deployment, name, vbuf, reason};
        return reg_summary_call(reg, ST_SHADOW, 4, p4, summary, summary_size, errstr, errstr_size);
}

kinfer_err_t kinfer_registry_rollout_end(kinfer_registry_t *reg, const char *deployment,
                                         const char *action, const char *reason, char *summary,
                                         size_t summary_size, char *errstr, size_t errstr_size)
{
        reg_stmt_t st = !strcmp(action, "promote")  ? ST_PROMOTE
                        : !strcmp(action, "abort")  ? ST_ABORT_CANARY
                        : !strcmp(action, "end_shadow") ? ST_END_SHADOW
                                                        : ST__COUNT;
        if (st == ST__COUNT)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "rollout action %s is not promote, abort or end_shadow", action);
        const char *p2[] = {deployment, reason};
        return reg_summary_call(reg, st, 2, p2, summary, summary_size, errstr, errstr_size);
}

kinfer_err_t kinfer_registry_deployment_candidate(kinfer_registry_t *reg, const char *deployment,
                                                  kinfer_registry_model_t *out, int *shadow,
                                                  int32_t *basis_points, char *errstr,
                                                  size_t errstr_size)
{
        memset(out, 0, sizeof(*out));
        *shadow = 0;
        *basis_points = 0;
        const char *p1[] = {deployment};
        PGresult *res;
        kinfer_err_t err = reg_exec(reg, ST_DEP_CANDIDATE, 1, p1, NULL, NULL, 0, PGRES_TUPLES_OK,
                                    &res, errstr, errstr_size);
        if (err == KINFER_OK && PQntuples(res) != 1)
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOENT,
                                    "deployment %s does not exist or has no candidate", deployment);
        else if (err == KINFER_OK) {
                reg_model_row(res, 0, out);
                *shadow = !strcmp(PQgetvalue(res, 0, MODEL_NCOLS), "shadow");
                *basis_points = (int32_t)strtol(PQgetvalue(res, 0, MODEL_NCOLS + 1), NULL, 10);
        }
        PQclear(res);
        return err;
}

kinfer_err_t kinfer_registry_shadow_insert(kinfer_registry_t *reg,
                                           const kinfer_registry_shadow_t *s, char *errstr,
                                           size_t errstr_size)
{
        char av[16], cv[16], ws[24], we[24], rec[24], agree[24], other[24], diff[32], aus[32],
            cus[32];
        snprintf(av, sizeof(av), "%d", (int)s->active_version);
        snprintf(cv, sizeof(cv), "%d", (int)s->candidate_version);
        snprintf(ws, sizeof(ws), "%" PRId64, s->window_start_us);
        snprintf(we, sizeof(we), "%" PRId64, s->window_end_us);
        snprintf(rec, sizeof(rec), "%" PRId64, s->records);
        snprintf(agree, sizeof(agree), "%" PRId64, s->agree);
        snprintf(other, sizeof(other), "%" PRId64, s->confusion_other);
        snprintf(diff, sizeof(diff), "%.6g", s->mean_score_diff);
        snprintf(aus, sizeof(aus), "%.6g", s->active_classify_us);
        snprintf(cus, sizeof(cus), "%.6g", s->candidate_classify_us);
        const char *p[16] = {s->worker_id, s->deployment, s->active_name, av, s->candidate_name,
                             cv, s->candidate_sha256, ws, we, rec, agree, s->confusion_json,
                             other, diff, aus, cus};
        PGresult *res;
        kinfer_err_t err = reg_exec(reg, ST_SHADOW_INSERT, 16, p, NULL, NULL, 0, PGRES_TUPLES_OK,
                                    &res, errstr, errstr_size);
        PQclear(res);
        return err;
}

static void reg_shadow_diff_row(const PGresult *res, int i, void *p)
{
        kinfer_registry_shadow_diff_t *out = p;
        reg_copy(out->active, sizeof(out->active), res, i, 0);
        reg_copy(out->candidate, sizeof(out->candidate), res, i, 1);
        out->windows = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        out->records = strtoll(PQgetvalue(res, i, 3), NULL, 10);
        out->agree = strtoll(PQgetvalue(res, i, 4), NULL, 10);
        out->mean_score_diff = strtod(PQgetvalue(res, i, 5), NULL);
        out->active_classify_us = strtod(PQgetvalue(res, i, 6), NULL);
        out->candidate_classify_us = strtod(PQgetvalue(res, i, 7), NULL);
        out->confusion_other = strtoll(PQgetvalue(res, i, 8), NULL, 10);
}

static void reg_shadow_pair_row(const PGresult *res, int i, void *p)
{
        kinfer_registry_shadow_pair_t *out = p;
        reg_copy(out->candidate, sizeof(out->candidate), res, i, 0);
        reg_copy(out->active_label, sizeof(out->active_label), res, i, 1);
        reg_copy(out->candidate_label, sizeof(out->candidate_label), res, i, 2);
        out->count = strtoll(PQgetvalue(res, i, 3), NULL, 10);
}

kinfer_err_t kinfer_registry_shadow_diff(kinfer_registry_t *reg, const char *deployment,
                                         const char *since_interval, const char *since_time,
                                         int32_t max_pairs, kinfer_registry_shadow_diff_t **diffp,
                                         size_t *n_diff, kinfer_registry_shadow_pair_t **pairsp,
                                         size_t *n_pairs, char *errstr, size_t errstr_size)
{
        char lim[16];
        snprintf(lim, sizeof(lim), "%d", (int)max_pairs);
        const char *p[4] = {deployment, since_interval ? since_interval : "1 hour", since_time,
                            lim};
        *pairsp = NULL;
        *n_pairs = 0;
        kinfer_err_t err = reg_fetch_rows(reg, ST_SHADOW_DIFF, 3, p, sizeof(**diffp),
                                          reg_shadow_diff_row, (void **)diffp, n_diff, errstr,
                                          errstr_size);
        if (err)
                return err;
        err = reg_fetch_rows(reg, ST_SHADOW_PAIRS, 4, p, sizeof(**pairsp), reg_shadow_pair_row,
                             (void **)pairsp, n_pairs, errstr, errstr_size);
        if (err) {
                free(*diffp);
                *diffp = NULL;
                *n_diff = 0;
        }
        return err;
}

/* The active (ST_DEP_ACTIVE) or previous (ST_DEP_PREVIOUS) model of a deployment. */
static kinfer_err_t reg_deployment_model(kinfer_registry_t *reg, reg_stmt_t st,
                                         const char *deployment, kinfer_registry_model_t *out,
                                         char *errstr, size_t errstr_size)
{
        memset(out, 0, sizeof(*out));
        const char *p1[] = {deployment};
        PGresult *res;
        kinfer_err_t err = reg_exec(reg, st, 1, p1, NULL, NULL, 0, PGRES_TUPLES_OK, &res, errstr,
                                    errstr_size);
        if (err == KINFER_OK && PQntuples(res) != 1)
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOENT,
                                    "deployment %s does not exist or has no %s model", deployment,
                                    st == ST_DEP_ACTIVE ? "active" : "previous");
        else if (err == KINFER_OK) {
                reg_model_row(res, 0, out);
                if (st == ST_DEP_ACTIVE)
                        out->activation_id = strtoll(PQgetvalue(res, 0, MODEL_NCOLS), NULL, 10);
        }
        PQclear(res);
        return err;
}

kinfer_err_t kinfer_registry_deployment_active(kinfer_registry_t *reg, const char *deployment,
                                               kinfer_registry_model_t *out, char *errstr,
                                               size_t errstr_size)
{
        return reg_deployment_model(reg, ST_DEP_ACTIVE, deployment, out, errstr, errstr_size);
}

kinfer_err_t kinfer_registry_deployment_previous(kinfer_registry_t *reg, const char *deployment,
                                                 kinfer_registry_model_t *out, char *errstr,
                                                 size_t errstr_size)
{
        return reg_deployment_model(reg, ST_DEP_PREVIOUS, deployment, out, errstr, errstr_size);
}

static void reg_deployment_row(const PGresult *res, int i, void *p)
{
        kinfer_registry_deployment_t *out = p;
        reg_copy(out->name, sizeof(out->name), res, i, 0);
        reg_copy(out->input_topic, sizeof(out->input_topic), res, i, 1);
        reg_copy(out->output_topic, sizeof(out->output_topic), res, i, 2);
        reg_copy(out->active, sizeof(out->active), res, i, 3);
        reg_copy(out->previous, sizeof(out->previous), res, i, 4);
        reg_copy(out->updated_at, sizeof(out->updated_at), res, i, 5);
        reg_copy(out->updated_by, sizeof(out->updated_by), res, i, 6);
        out->workers = (int32_t)strtol(PQgetvalue(res, i, 7), NULL, 10);
        reg_copy(out->serving, sizeof(out->serving), res, i, 8);
        reg_copy(out->candidate, sizeof(out->candidate), res, i, 9);
}

kinfer_err_t kinfer_registry_deployment_ls(kinfer_registry_t *reg,
                                           kinfer_registry_deployment_t **outp, size_t *np,
                                           char *errstr, size_t errstr_size)
{
        return reg_fetch_rows(reg, ST_DEP_LS, 0, NULL, sizeof(**outp), reg_deployment_row,
                              (void **)outp, np, errstr, errstr_size);
}

/* ---- LISTEN / NOTIFY ------------------------------------------------------------------------ */

kinfer_err_t kinfer_registry_listen(kinfer_registry_t *reg, const char *channel, char *errstr,
                                    size_t errstr_size)
{
        for (int i = 0; i < reg->n_listen; i++)
                if (!strcmp(reg->listen[i], channel))
                        return KINFER_OK;
        if (reg->n_listen == REG_MAX_LISTEN || strlen(channel) >= sizeof(reg->listen[0]))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "cannot LISTEN on channel %s (too many or too long)", channel);
        char *ident = PQescapeIdentifier(reg->conn, channel, strlen(channel));
        if (!ident)
                return reg_result_err(reg, NULL, "LISTEN", errstr, errstr_size);
        char sql[160];
        snprintf(sql, sizeof(sql), "LISTEN %s", ident);
        PQfreemem(ident);
        kinfer_err_t err = reg_command(reg, sql, PGRES_COMMAND_OK, "LISTEN", errstr, errstr_size);
        if (err == KINFER_OK)
                snprintf(reg->listen[reg->n_listen++], sizeof(reg->listen[0]), "%s", channel);
        return err;
}

kinfer_err_t kinfer_registry_wait_notify(kinfer_registry_t *reg, int timeout_ms, char *channel,
                                         size_t channel_size, char *payload, size_t payload_size,
                                         char *errstr, size_t errstr_size)
{
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
                if (!reg->conn || !PQconsumeInput(reg->conn))
                        return reg_result_err(reg, NULL, "wait_notify", errstr, errstr_size);
                PGnotify *nt = PQnotifies(reg->conn);
                if (nt) {
                        snprintf(channel, channel_size, "%s", nt->relname);
                        snprintf(payload, payload_size, "%s", nt->extra ? nt->extra : "");
                        PQfreemem(nt);
                        return KINFER_OK;
                }
                struct timespec now;
                clock_gettime(CLOCK_MONOTONIC, &now);
                long elapsed = (long)(now.tv_sec - t0.tv_sec) * 1000 +
                               (long)(now.tv_nsec - t0.tv_nsec) / 1000000;
                if (elapsed >= timeout_ms)
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__TIMEOUT,
                                             "no notification within %d ms", timeout_ms);
                int fd = PQsocket(reg->conn);
                if (fd < 0)
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__DB,
                                             "PostgreSQL connection is closed");
                if (reg_poll(reg, fd, POLLIN, (int)(timeout_ms - elapsed)) < 0)
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__TIMEOUT,
                                             "interrupted (shutting down)");
        }
}

/* ---- workers and metrics -------------------------------------------------------------------- */

kinfer_err_t kinfer_registry_worker_upsert(kinfer_registry_t *reg,
                                           const kinfer_registry_worker_t *worker, char *errstr,
                                           size_t errstr_size)
{
        char pid[16], mid[24], ver[16];
        snprintf(pid, sizeof(pid), "%d", (int)worker->pid);
        snprintf(mid, sizeof(mid), "%" PRId64, worker->model_id);
        snprintf(ver, sizeof(ver), "%d", (int)worker->model_version);
        const char *p[10] = {worker->worker_id,
                             worker->host,
                             pid,
                             worker->deployment,
                             mid,
                             worker->model_name,
                             ver,
                             worker->model_sha256,
                             worker->status ? worker->status : "running",
                             worker->last_error};
        PGresult *res;
        kinfer_err_t err = reg_exec(reg, ST_WORKER_UPSERT, 10, p, NULL, NULL, 0, PGRES_TUPLES_OK,
                                    &res, errstr, errstr_size);
        PQclear(res);
        return err;
}

kinfer_err_t kinfer_registry_metrics_insert(kinfer_registry_t *reg,
                                            const kinfer_registry_metrics_t *m, char *errstr,
                                            size_t errstr_size)
{
        char ver[16], ws[24], we[24], rec[24], bat[24], mbs[32], dlq[24], p50[32], p95[32], p99[32],
            conf[32];
        snprintf(ver, sizeof(ver), "%d", (int)m->model_version);
        snprintf(ws, sizeof(ws), "%" PRId64, m->window_start_us);
        snprintf(we, sizeof(we), "%" PRId64, m->window_end_us);
        snprintf(rec, sizeof(rec), "%" PRId64, m->records);
        snprintf(bat, sizeof(bat), "%" PRId64, m->batches);
        snprintf(mbs, sizeof(mbs), "%.6g", m->mean_batch_size);
        snprintf(dlq, sizeof(dlq), "%" PRId64, m->dlq);
        snprintf(p50, sizeof(p50), "%.6g", m->latency_p50_ms);
        snprintf(p95, sizeof(p95), "%.6g", m->latency_p95_ms);
        snprintf(p99, sizeof(p99), "%.6g", m->latency_p99_ms);
        snprintf(conf, sizeof(conf), "%.6g", m->mean_confidence);
        const char *p[16] = {m->worker_id,
                             m->deployment,
                             m->model_name,
                             ver,
                             m->model_sha256,
                             ws,
                             we,
                             rec,
                             bat,
                             mbs,
                             dlq,
                             p50,
                             p95,
                             p99,
                             m->label_counts_json,
                             conf};
        PGresult *res;
        kinfer_err_t err = reg_exec(reg, ST_METRICS_INSERT, 16, p, NULL, NULL, 0, PGRES_TUPLES_OK,
                                    &res, errstr, errstr_size);
        PQclear(res);
        if (err || !m->confidence_hist || m->n_confidence_hist < 1 || m->n_confidence_hist > 100)
                return err;
        /* the drift columns (migration 0006), after the row exists: both calls are idempotent */
        char pl[32], pc[32], hist[100 * 21 + 3];
        size_t o = 0;
        snprintf(pl, sizeof(pl), "%.9g", m->psi_labels);
        snprintf(pc, sizeof(pc), "%.9g", m->psi_confidence);
        hist[o++] = '{';
        for (int i = 0; i < m->n_confidence_hist; i++)
                o += (size_t)snprintf(hist + o, sizeof(hist) - o, "%s%" PRId64, i ? "," : "",
                                      m->confidence_hist[i]);
        snprintf(hist + o, sizeof(hist) - o, "}");
        const char *d[6] = {m->worker_id, ws, m->model_sha256, m->psi_labels >= 0 ? pl : NULL,
                            m->psi_confidence >= 0 ? pc : NULL, hist};
        err = reg_exec(reg, ST_METRICS_DRIFT, 6, d, NULL, NULL, 0, PGRES_TUPLES_OK, &res, errstr,
                       errstr_size);
        PQclear(res);
        if (err && reg->conn && !reg_connection_lost(reg)) {
                /* refused (a registry not migrated to 0006 yet): the window's row is written;
                 * only its drift columns stay NULL. Said once per connection. */
                if (!reg->drift_warned)
                        kinfer_log(KINFER_LOG_WARN, "REGISTRY",
                                   "metrics windows are written without their drift columns: %s "
                                   "(run kinfer migrate: migrations/0006_drift.sql)", errstr);
                reg->drift_warned = 1;
                return KINFER_OK;
        }
        return err;
}

static void reg_drift_row(const PGresult *res, int i, void *p)
{
        kinfer_registry_drift_row_t *out = p;
        reg_copy(out->bucket, sizeof(out->bucket), res, i, 0);
        reg_copy(out->model, sizeof(out->model), res, i, 1);
        out->windows = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        out->records = strtoll(PQgetvalue(res, i, 3), NULL, 10);
        out->assessed = strtoll(PQgetvalue(res, i, 4), NULL, 10);
        out->psi_labels = strtod(PQgetvalue(res, i, 5), NULL);
        out->psi_labels_max = strtod(PQgetvalue(res, i, 6), NULL);
        out->psi_confidence = strtod(PQgetvalue(res, i, 7), NULL);
        out->psi_confidence_max = strtod(PQgetvalue(res, i, 8), NULL);
}

kinfer_err_t kinfer_registry_drift_trend(kinfer_registry_t *reg, const char *deployment,
                                         const char *since_interval, const char *since_time,
                                         const char *bucket, kinfer_registry_drift_row_t **outp,
                                         size_t *np, char *errstr, size_t errstr_size)
{
        const char *p[4] = {deployment, since_interval ? since_interval : "1 hour", bucket,
                            since_time};
        return reg_fetch_rows(reg, ST_DRIFT_TREND, 4, p, sizeof(**outp), reg_drift_row,
                              (void **)outp, np, errstr, errstr_size);
}
