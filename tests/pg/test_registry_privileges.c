/* SPDX-License-Identifier: Apache-2.0 */
/* test_registry_privileges.c -- the registry's privilege model against a real PostgreSQL
 * (migration 0002): every way an operator or a worker could write the registry tables
 * directly, forge history (a trigger on a temp table included), make up a model's evaluation
 * or lineage, or call a function not meant for its role, tried and refused; the functions'
 * SECURITY DEFINER and pinned search_path; and a registry created at 0001, with data in it,
 * upgraded in place and still working. */
#include <sys/stat.h>

#include "pg_test_util.h"

static char errstr[512];

/* Run @p sql on @p reg and expect a refusal whose message contains @p want. */
#define REFUSED(reg, sql, want)                                                                    \
        do {                                                                                       \
                char v_[128];                                                                      \
                kinfer_err_t e_ = kinfer_registry_exec_value(reg, sql, v_, sizeof(v_), errstr,     \
                                                             sizeof(errstr));                      \
                TEST_ASSERT(e_ != KINFER_OK && strstr(errstr, want), "not refused: %s -> %s",      \
                            sql, e_ ? errstr : "ok");                                              \
        } while (0)

static void make_login(const char *role, const char *group)
{
        char sql[256];
        snprintf(sql, sizeof(sql), "DROP ROLE IF EXISTS %s; CREATE ROLE %s LOGIN IN ROLE %s", role,
                 role, group);
        pgt_exec(pgt_admin, sql, NULL, 0);
}

static void drop_login(const char *role)
{
        char sql[128];
        snprintf(sql, sizeof(sql), "DROP ROLE IF EXISTS %s", role);
        pgt_exec(pgt_admin, sql, NULL, 0);
}

static void test_forgery_refused(void)
{
        char conninfo[128], oconn[256], wconn[256], s[256], v[256], hist0[64], orole[64],
            wrole[64];
        kinfer_registry_t *reg = pgt_registry("forge", conninfo, sizeof(conninfo));
        TEST_ASSERT(reg, "registry");
        if (!reg)
                return;
        TEST_ASSERT(pgt_push_versions(reg, "r", 2, 300, errstr, sizeof(errstr)) == 0, "push: %s",
                    errstr);
        kinfer_registry_activate(reg, "dep", "r", 1, NULL, s, sizeof(s), errstr, sizeof(errstr));
        kinfer_registry_activate(reg, "dep", "r", 2, NULL, s, sizeof(s), errstr, sizeof(errstr));
        pgt_exec(reg, "SELECT count(*) FROM kinfer.activations", hist0, sizeof(hist0));
        snprintf(orole, sizeof(orole), "kinfer_t_%d_op", (int)getpid());
        snprintf(wrole, sizeof(wrole), "kinfer_t_%d_wk", (int)getpid());
        make_login(orole, "kinfer_operator");
        make_login(wrole, "kinfer_worker");
        snprintf(oconn, sizeof(oconn), "%s user=%s", conninfo, orole);
        snprintf(wconn, sizeof(wconn), "%s user=%s", conninfo, wrole);

        kinfer_registry_t *o = kinfer_registry_new(oconn, errstr, sizeof(errstr));
        TEST_ASSERT(o, "connect as operator: %s", errstr);
        if (o) {
                /* history, directly and through a trigger on the operator's own temp table
                 * (it reaches pg_trigger_depth() = 2, which 0001's guard trusted) */
                REFUSED(o,
                        "INSERT INTO kinfer.activations (deployment, action, who, at) "
                        "VALUES ('dep', 'activate', 'someone', now())",
                        "permission denied");
                REFUSED(o,
                        "CREATE TEMP TABLE t (x int);"
                        "CREATE FUNCTION pg_temp.forge() RETURNS trigger LANGUAGE plpgsql AS "
                        "$$BEGIN INSERT INTO kinfer.activations (deployment, action, who, at) "
                        "VALUES ('dep', 'rollback', 'someone', now()); RETURN NEW; END$$;"
                        "CREATE TRIGGER forge BEFORE INSERT ON t FOR EACH ROW "
                        "EXECUTE FUNCTION pg_temp.forge();"
                        "INSERT INTO t VALUES (1)",
                        "permission denied");
                REFUSED(o, "UPDATE kinfer.activations SET reason = 'x'", "permission denied");
                REFUSED(o, "DELETE FROM kinfer.activations", "permission denied");
                REFUSED(o, "TRUNCATE kinfer.activations", "permission denied");
                /* lineage, deployments, models */
                REFUSED(o,
                        "INSERT INTO kinfer.lineage (child_id, parent_sha256, relation) "
                        "SELECT id, repeat('a', 64), 'trained_from' FROM kinfer.models LIMIT 1",
                        "permission denied");
                REFUSED(o, "UPDATE kinfer.lineage SET parent_id = NULL", "permission denied");
                REFUSED(o,
                        "UPDATE kinfer.deployments SET previous_model_id = "
                        "(SELECT min(id) FROM kinfer.models)",
                        "permission denied");
                REFUSED(o, "UPDATE kinfer.deployments SET active_model_id = NULL",
                        "permission denied");
                REFUSED(o, "INSERT INTO kinfer.deployments (name) VALUES ('x')",
                        "permission denied");
                REFUSED(o, "UPDATE kinfer.models SET evaluation = '{\"accuracy\": 1}'",
                        "permission denied");
                REFUSED(o,
                        "INSERT INTO kinfer.models (name, version, sha256, size, format, labels, "
                        "meta, artifact) SELECT 'x', 1, sha256, size, format, labels, meta, "
                        "artifact FROM kinfer.models LIMIT 1",
                        "permission denied");
                REFUSED(o, "DELETE FROM kinfer.models", "permission denied");
                REFUSED(o, "INSERT INTO kinfer.workers (worker_id, host, pid) VALUES ('a','b',1)",
                        "permission denied");
                REFUSED(o,
                        "SELECT kinfer.worker_heartbeat('a', 'b', 1, 'dep', 0, NULL, 0, NULL, "
                        "'running', NULL)",
                        "permission denied");
                /* a made-up evaluation (or labels) for real bytes: the registry reads them
                 * from the artifact */
                char sha[65];
                size_t len;
                uint8_t *bytes = pgt_model_bytes("r", 333, "train", NULL, NULL, &len, sha);
                kinfer_model_t *model = bytes ? kinfer_model_load_mem(bytes, len, errstr,
                                                                      sizeof(errstr))
                                              : NULL;
                TEST_ASSERT(model, "model: %s", errstr);
                if (model) {
                        char meta[8192];
                        snprintf(meta, sizeof(meta), "%s", kinfer_model_meta_json(model));
                        char *acc = strstr(meta, "\"accuracy\":0.5");
                        TEST_ASSERT(acc, "no accuracy in %s", meta);
                        if (acc)
                                memcpy(acc, "\"accuracy\":0.9", 14);
                        const char *labels[] = {"a", "b", "c"}, *forged_labels[] = {"a", "b", "x"};
                        kinfer_registry_push_t push = {.name = "r",
                                                       .bytes = bytes,
                                                       .len = len,
                                                       .sha256 = sha,
                                                       .format = "f32",
                                                       .labels = labels,
                                                       .n_labels = 3,
                                                       .meta_json = meta};
                        int64_t id;
                        int32_t ver;
                        kinfer_err_t err =
                            kinfer_registry_model_push(o, &push, &id, &ver, errstr, sizeof(errstr));
                        TEST_ASSERT(err != KINFER_OK && strstr(errstr, "meta does not match"),
                                    "forged evaluation accepted: %s", err ? errstr : "ok");
                        push.meta_json = kinfer_model_meta_json(model);
                        push.labels = forged_labels;
                        err = kinfer_registry_model_push(o, &push, &id, &ver, errstr,
                                                         sizeof(errstr));
                        TEST_ASSERT(err != KINFER_OK && strstr(errstr, "labels do not match"),
                                    "forged labels accepted: %s", err ? errstr : "ok");
                        push.labels = labels;
                        err = kinfer_registry_model_push(o, &push, &id, &ver, errstr,
                                                         sizeof(errstr));
                        TEST_ASSERT(err == KINFER_OK && ver == 3, "honest push: %s v%d",
                                    err ? errstr : "ok", (int)ver);
                        kinfer_model_release(model);
                }
                free(bytes);
                REFUSED(o,
                        "SELECT kinfer.register_model('junk', '\\x4b494e46deadbeef'::bytea, "
                        "'f32', '{a}', '{}')",
                        "not a kinfer model");
                /* what an operator may do, and history says it was this operator */
                TEST_ASSERT(kinfer_registry_rollback(o, "dep", "op", s, sizeof(s), errstr,
                                                     sizeof(errstr)) == KINFER_OK,
                            "operator rollback: %s", errstr);
                kinfer_registry_destroy(o);
        }
        pgt_exec(reg,
                 "SELECT count(*) || ' ' || (SELECT who FROM kinfer.activations ORDER BY id DESC "
                 "LIMIT 1) || ' ' || (SELECT updated_by FROM kinfer.deployments WHERE name = "
                 "'dep') FROM kinfer.activations",
                 v, sizeof(v));
        char want[256];
        snprintf(want, sizeof(want), "%d %s %s", atoi(hist0) + 1, orole, orole);
        TEST_ASSERT(!strcmp(v, want), "history after the attempts: '%s', want '%s'", v, want);
        pgt_exec(reg, "SELECT count(*) FROM kinfer.models WHERE evaluation->>'accuracy' = '0.9'",
                 v, sizeof(v));
        TEST_ASSERT(!strcmp(v, "0"), "%s models with a forged evaluation", v);

        kinfer_registry_t *w = kinfer_registry_new(wconn, errstr, sizeof(errstr));
        TEST_ASSERT(w, "connect as worker: %s", errstr);
        if (w) {
                REFUSED(w, "INSERT INTO kinfer.workers (worker_id, host, pid) VALUES ('a','b',1)",
                        "permission denied");
                REFUSED(w, "UPDATE kinfer.metrics_windows SET records = 0", "permission denied");
                REFUSED(w, "DELETE FROM kinfer.workers", "permission denied");
                REFUSED(w, "SELECT kinfer.activate('dep', 'r', 1)", "permission denied");
                REFUSED(w, "SELECT kinfer.deployment_create('x')", "permission denied");
                REFUSED(w,
                        "SELECT kinfer.metrics_insert('a', 'dep', 'r', 1, 'x', now(), now(), 1, "
                        "1, 1, 0, 1, 1, 1, '[1]', 1)",
                        "label_counts");
                kinfer_registry_worker_t wk = {.worker_id = "h:1:1",
                                               .host = "h",
                                               .pid = 1,
                                               .deployment = "dep",
                                               .status = "running",
                                               .last_error = "boom"};
                TEST_ASSERT(kinfer_registry_worker_upsert(w, &wk, errstr, sizeof(errstr)) ==
                                KINFER_OK,
                            "heartbeat through the function: %s", errstr);
                kinfer_registry_destroy(w);
        }
        pgt_exec(reg, "SELECT worker_id || ' ' || last_error FROM kinfer.workers", v, sizeof(v));
        TEST_ASSERT(!strcmp(v, "h:1:1 boom"), "workers row: %s", v);

        /* every function: search_path pinned (pg_catalog first, pg_temp last); the ones
         * that write (not IMMUTABLE, not triggers) SECURITY DEFINER; and nothing but pure
         * helpers executable by a role outside kinfer's */
        pgt_exec(reg,
                 "SELECT string_agg(p.proname, ',' ORDER BY p.proname) FROM pg_proc p "
                 "WHERE p.pronamespace = 'kinfer'::regnamespace AND NOT ("
                 " EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c ~ "
                 "  '^search_path=pg_catalog(, [a-z_]+)*, pg_temp$')"
                 " AND (p.prosecdef OR p.provolatile = 'i' OR "
                 "      p.prorettype = 'trigger'::regtype))",
                 v, sizeof(v));
        TEST_ASSERT(v[0] == '\0', "functions not SECURITY DEFINER with a pinned search_path: %s",
                    v);
        pgt_exec(reg,
                 "SELECT string_agg(p.proname, ',' ORDER BY p.proname) FROM pg_proc p "
                 "WHERE p.pronamespace = 'kinfer'::regnamespace AND p.prosecdef AND NOT "
                 "(p.proconfig @> ARRAY['search_path=pg_catalog, kinfer, pg_temp'])",
                 v, sizeof(v));
        TEST_ASSERT(v[0] == '\0', "SECURITY DEFINER without search_path pg_catalog, kinfer, "
                                  "pg_temp: %s", v);
        pgt_exec(pgt_admin, "DROP ROLE IF EXISTS kinfer_t_nobody; CREATE ROLE kinfer_t_nobody",
                 NULL, 0);
        pgt_exec(reg,
                 "SELECT string_agg(p.proname, ',') FROM pg_proc p WHERE p.pronamespace = "
                 "'kinfer'::regnamespace AND p.prorettype <> 'trigger'::regtype AND "
                 "p.provolatile <> 'i' AND "
                 "has_function_privilege('kinfer_t_nobody', p.oid, 'EXECUTE')",
                 v, sizeof(v));
        TEST_ASSERT(v[0] == '\0', "functions executable by anyone: %s", v);
        pgt_exec(reg,
                 "SELECT string_agg(DISTINCT c.relname || ':' || x.privilege_type, ',') "
                 "FROM pg_class c, LATERAL aclexplode(c.relacl) x "
                 "WHERE c.relnamespace = 'kinfer'::regnamespace AND x.privilege_type <> 'SELECT' "
                 "AND x.grantee <> c.relowner",
                 v, sizeof(v));
        TEST_ASSERT(v[0] == '\0', "write privileges granted on tables: %s", v);
        pgt_exec(pgt_admin, "DROP ROLE IF EXISTS kinfer_t_nobody", NULL, 0);

        kinfer_registry_destroy(reg);
        pgt_db_drop("forge");
        drop_login(orole);
        drop_login(wrole);
}

/* A registry created at 0001 with models, lineage, a deployment, history and a worker row,
 * then upgraded to the latest migrations: the data stays, and it keeps working. */
static void test_upgrade_from_0001(void)
{
        char conninfo[128], dir[] = "/tmp/kinfer-mig-XXXXXX", path[4200], src[4200], s[256],
                             v[512], before[512];
        int applied;
        TEST_ASSERT(mkdtemp(dir), "mkdtemp");
        snprintf(src, sizeof(src), "%s/0001_registry.sql", pgt_migrations_dir());
        snprintf(path, sizeof(path), "%s/0001_registry.sql", dir);
        FILE *in = fopen(src, "rb"), *out = fopen(path, "wb");
        TEST_ASSERT(in && out, "copy %s", src);
        if (in && out) {
                char buf[8192];
                size_t r;
                while ((r = fread(buf, 1, sizeof(buf), in)) > 0)
                        fwrite(buf, 1, r, out);
        }
        if (in)
                fclose(in);
        if (out)
                fclose(out);
        TEST_ASSERT(pgt_db_create("upgrade", conninfo, sizeof(conninfo)) == 0, "db");
        kinfer_registry_t *reg = kinfer_registry_new(conninfo, errstr, sizeof(errstr));
        TEST_ASSERT(reg, "connect: %s", errstr);
        if (!reg)
                goto out;
        TEST_ASSERT(kinfer_migrate_run(reg, dir, &applied, errstr, sizeof(errstr)) == KINFER_OK &&
                        applied == 1,
                    "0001 alone: %s", errstr);
        /* data at 0001: a chain with lineage, activations, a worker row, a metrics window */
        char sha1[65], sha2[65], parents[256];
        size_t len1, len2;
        int32_t ver;
        uint8_t *b1 = pgt_model_bytes("u", 1, "train", NULL, NULL, &len1, sha1);
        TEST_ASSERT(b1 && pgt_push(reg, "u", b1, len1, &ver, errstr, sizeof(errstr)) == KINFER_OK,
                    "push u:1 at 0001: %s", errstr);
        snprintf(parents, sizeof(parents),
                 "[{\"sha256\":\"%s\",\"name\":\"u\",\"version\":1,\"relation\":\"quantized_from\"}]",
                 sha1);
        uint8_t *b2 = pgt_model_bytes("u-q", 2, "quantize", "{\"bits\":8}", parents, &len2, sha2);
        TEST_ASSERT(b2 && pgt_push(reg, "u-q", b2, len2, &ver, errstr, sizeof(errstr)) == KINFER_OK,
                    "push u-q:1 at 0001: %s", errstr);
        free(b1);
        free(b2);
        kinfer_registry_activate(reg, "dep", "u", 1, "first", s, sizeof(s), errstr, sizeof(errstr));
        kinfer_registry_activate(reg, "dep", "u-q", 1, "smaller", s, sizeof(s), errstr,
                                 sizeof(errstr));
        pgt_exec(reg,
                 "INSERT INTO kinfer.workers (worker_id, host, pid, deployment) "
                 "VALUES ('old:1:1', 'old', 1, 'dep');"
                 "INSERT INTO kinfer.metrics_windows (worker_id, window_start, window_end, "
                 "records, batches, dlq, model_sha256) VALUES ('old:1:1', now(), now(), 5, 1, 0, "
                 "'x')",
                 NULL, 0);
        const char *fingerprint =
            "SELECT (SELECT string_agg(name || ':' || version || ':' || sha256 || ':' || "
            "coalesce(evaluation::text, '') || ':' || created_by, ',' ORDER BY id) FROM "
            "kinfer.models) || ' ' || (SELECT string_agg(relation || ':' || parent_id, ',') FROM "
            "kinfer.lineage) || ' ' || (SELECT string_agg(action || ':' || to_model_id || ':' || "
            "who || ':' || reason, ',' ORDER BY id) FROM kinfer.activations) || ' ' || (SELECT "
            "count(*) FROM kinfer.workers) || ' ' || (SELECT sum(records) FROM "
            "kinfer.metrics_windows)";
        pgt_exec(reg, fingerprint, before, sizeof(before));

        TEST_ASSERT(kinfer_migrate_run(reg, pgt_migrations_dir(), &applied, errstr,
                                       sizeof(errstr)) == KINFER_OK &&
                        applied >= 1,
                    "upgrade: %s (applied %d)", errstr, applied);
        pgt_exec(reg, fingerprint, v, sizeof(v));
        TEST_ASSERT(before[0] && !strcmp(before, v), "data changed by the upgrade:\n  %s\n  %s",
                    before, v);
        /* and it works: rollback, a new version, a heartbeat through the new function, the
         * operator's direct writes refused */
        TEST_ASSERT(kinfer_registry_rollback(reg, "dep", "after upgrade", s, sizeof(s), errstr,
                                             sizeof(errstr)) == KINFER_OK,
                    "rollback: %s", errstr);
        TEST_ASSERT(pgt_push_versions(reg, "u", 1, 50, errstr, sizeof(errstr)) == 0,
                    "push after upgrade: %s", errstr);
        TEST_ASSERT(kinfer_registry_activate(reg, "dep", "u", 2, NULL, s, sizeof(s), errstr,
                                             sizeof(errstr)) == KINFER_OK,
                    "activate u:2: %s", errstr);
        kinfer_registry_worker_t wk = {
            .worker_id = "old:1:1", .host = "new", .pid = 2, .status = "running"};
        TEST_ASSERT(kinfer_registry_worker_upsert(reg, &wk, errstr, sizeof(errstr)) == KINFER_OK,
                    "heartbeat: %s", errstr);
        pgt_exec(reg,
                 "SELECT string_agg(action, ',' ORDER BY id) || ' ' || (SELECT host FROM "
                 "kinfer.workers) FROM kinfer.activations",
                 v, sizeof(v));
        TEST_ASSERT(!strcmp(v, "activate,activate,rollback,activate new"), "after upgrade: %s", v);
        char orole[64], oconn[256];
        snprintf(orole, sizeof(orole), "kinfer_t_%d_upop", (int)getpid());
        make_login(orole, "kinfer_operator");
        snprintf(oconn, sizeof(oconn), "%s user=%s", conninfo, orole);
        kinfer_registry_t *o = kinfer_registry_new(oconn, errstr, sizeof(errstr));
        TEST_ASSERT(o, "operator: %s", errstr);
        if (o) {
                REFUSED(o, "UPDATE kinfer.deployments SET previous_model_id = NULL",
                        "permission denied");
                REFUSED(o, "INSERT INTO kinfer.activations (deployment, action, who, at) "
                           "VALUES ('dep', 'activate', 'x', now())",
                        "permission denied");
                TEST_ASSERT(kinfer_registry_rollback(o, "dep", NULL, s, sizeof(s), errstr,
                                                     sizeof(errstr)) == KINFER_OK,
                            "operator rollback after upgrade: %s", errstr);
                kinfer_registry_destroy(o);
        }
        drop_login(orole);
        kinfer_registry_destroy(reg);
out:
        pgt_db_drop("upgrade");
        unlink(path);
        rmdir(dir);
}

int main(void)
{
        TEST_RUN(test_forgery_refused);
        TEST_RUN(test_upgrade_from_0001);
        kinfer_registry_destroy(pgt_admin);
        return TEST_DONE();
}
