/* SPDX-License-Identifier: Apache-2.0 */
/* test_registry.c -- the registry and migrations against a real PostgreSQL (PG* environment,
 * started by tests/run.sh): migrations from empty and re-run, a changed or failing migration,
 * push + lineage round trip of a trained -> quantized -> pruned -> distilled chain, atomic
 * versions, corrupt artifacts, activate/rollback and their history, LISTEN/NOTIFY, the
 * worker and operator roles, metrics windows. Each sub-test uses a database of its own. */
#include <pthread.h>
#include <sys/stat.h>

#include "pg_test_util.h"

static char errstr[512];

/* ---- migrations ----------------------------------------------------------------------------- */

/* A fingerprint of everything in schema kinfer plus the migration records. */
static void schema_fingerprint(kinfer_registry_t *reg, char *out, size_t size)
{
        pgt_exec(reg,
                 "SELECT md5(coalesce((SELECT string_agg(c.relname::text || c.relkind::text, ',' "
                 "ORDER BY "
                 "c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
                 "n.nspname = 'kinfer'), '') || coalesce((SELECT string_agg(p.proname::text || "
                 "md5(p.prosrc), ',' ORDER BY p.proname) FROM pg_proc p JOIN pg_namespace n ON "
                 "n.oid = p.pronamespace WHERE n.nspname = 'kinfer'), '') || coalesce((SELECT "
                 "string_agg(version || sha256 || applied_at::text, ',' ORDER BY version) FROM "
                 "kinfer.schema_migrations), ''))",
                 out, size);
}

static void test_migrate_fresh_and_rerun(void)
{
        char conninfo[128], fp1[64] = "", fp2[64] = "", v[64];
        TEST_ASSERT(pgt_db_create("fresh", conninfo, sizeof(conninfo)) == 0, "create db");
        kinfer_registry_t *reg = kinfer_registry_new(conninfo, errstr, sizeof(errstr));
        TEST_ASSERT(reg, "connect: %s", errstr);
        if (!reg)
                return;
        kinfer_migration_status_t *st;
        size_t n;
        TEST_ASSERT(kinfer_migrate_status(reg, pgt_migrations_dir(), &st, &n, errstr,
                                          sizeof(errstr)) == KINFER_OK,
                    "status: %s", errstr);
        TEST_ASSERT(n >= 1 && st[0].state == KINFER_MIGRATION_PENDING, "fresh db: pending");
        free(st);
        pgt_exec(reg, "SELECT count(*) FROM pg_namespace WHERE nspname = 'kinfer'", v, sizeof(v));
        TEST_ASSERT(!strcmp(v, "0"), "--status created schema kinfer (count %s)", v);

        int applied = -1;
        TEST_ASSERT(kinfer_migrate_run(reg, pgt_migrations_dir(), &applied, errstr,
                                       sizeof(errstr)) == KINFER_OK,
                    "migrate: %s", errstr);
        TEST_ASSERT(applied >= 1, "applied %d", applied);
        schema_fingerprint(reg, fp1, sizeof(fp1));
        TEST_ASSERT(kinfer_migrate_run(reg, pgt_migrations_dir(), &applied, errstr,
                                       sizeof(errstr)) == KINFER_OK,
                    "re-run: %s", errstr);
        TEST_ASSERT(applied == 0, "re-run applied %d", applied);
        schema_fingerprint(reg, fp2, sizeof(fp2));
        TEST_ASSERT(fp1[0] && !strcmp(fp1, fp2), "re-run changed the schema: %s vs %s", fp1, fp2);
        pgt_exec(reg, "SELECT count(*) FROM kinfer.schema_migrations", v, sizeof(v));
        TEST_ASSERT(atoi(v) >= 1, "schema_migrations has %s rows", v);
        TEST_ASSERT(kinfer_migrate_status(reg, pgt_migrations_dir(), &st, &n, errstr,
                                          sizeof(errstr)) == KINFER_OK,
                    "status: %s", errstr);
        for (size_t i = 0; i < n; i++)
                TEST_ASSERT(st[i].state == KINFER_MIGRATION_APPLIED, "%s is %s", st[i].name,
                            kinfer_migration_state2str(st[i].state));
        free(st);
        kinfer_registry_destroy(reg);
        pgt_db_drop("fresh");
}

/* Two `kinfer migrate` at once on an empty database: the advisory lock makes one apply each
 * file and the other find it applied. */
static char mc_conninfo[128];
static int mc_applied[2], mc_err[2];
static void *mc_migrate(void *arg)
{
        int i = (int)(intptr_t)arg;
        char e[512];
        kinfer_registry_t *reg = kinfer_registry_new(mc_conninfo, e, sizeof(e));
        if (!reg) {
                mc_err[i] = 1;
                return NULL;
        }
        if (kinfer_migrate_run(reg, pgt_migrations_dir(), &mc_applied[i], e, sizeof(e))) {
                fprintf(stderr, "  # migrate %d: %s\n", i, e);
                mc_err[i] = 1;
        }
        kinfer_registry_destroy(reg);
        return NULL;
}

static void test_migrate_concurrent(void)
{
        char v[64];
        TEST_ASSERT(pgt_db_create("mconc", mc_conninfo, sizeof(mc_conninfo)) == 0, "create db");
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
                pthread_create(&th[i], NULL, mc_migrate, (void *)(intptr_t)i);
        for (int i = 0; i < 2; i++)
                pthread_join(th[i], NULL);
        TEST_ASSERT(!mc_err[0] && !mc_err[1], "a concurrent migrate failed");
        kinfer_registry_t *reg = kinfer_registry_new(mc_conninfo, errstr, sizeof(errstr));
        TEST_ASSERT(reg, "connect: %s", errstr);
        if (reg) {
                pgt_exec(reg, "SELECT count(*) FROM kinfer.schema_migrations", v, sizeof(v));
                TEST_ASSERT(mc_applied[0] + mc_applied[1] == atoi(v) && atoi(v) >= 1,
                            "applied %d + %d, recorded %s", mc_applied[0], mc_applied[1], v);
                kinfer_registry_destroy(reg);
        }
        pgt_db_drop("mconc");
}

static int copy_file(const char *from, const char *to, const char *append)
{
        FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
        char buf[8192];
        size_t r;
        if (!in || !out) {
                if (in)
                        fclose(in);
                if (out)
                        fclose(out);
                return -1;
        }
        while ((r = fread(buf, 1, sizeof(buf), in)) > 0)
                fwrite(buf, 1, r, out);
        if (append)
                fputs(append, out);
        fclose(in);
        return fclose(out);
}

static int write_file(const char *path, const char *text)
{
        FILE *fp = fopen(path, "wb");
        if (!fp)
                return -1;
        fputs(text, fp);
        return fclose(fp);
}

static void test_migrate_changed_refused(void)
{
        char conninfo[128], dir[] = "/tmp/kinfer-mig-XXXXXX", src[4200], dst[4200], v[64];
        TEST_ASSERT(mkdtemp(dir), "mkdtemp");
        snprintf(src, sizeof(src), "%s/0001_registry.sql", pgt_migrations_dir());
        snprintf(dst, sizeof(dst), "%s/0001_registry.sql", dir);
        TEST_ASSERT(copy_file(src, dst, NULL) == 0, "copy %s", src);
        TEST_ASSERT(pgt_db_create("changed", conninfo, sizeof(conninfo)) == 0, "create db");
        kinfer_registry_t *reg = kinfer_registry_new(conninfo, errstr, sizeof(errstr));
        TEST_ASSERT(reg, "connect: %s", errstr);
        if (!reg)
                return;
        int applied;
        TEST_ASSERT(kinfer_migrate_run(reg, dir, &applied, errstr, sizeof(errstr)) == KINFER_OK,
                    "migrate: %s", errstr);

        /* A failing new migration is rolled back entirely and named with its line. */
        snprintf(dst, sizeof(dst), "%s/0002_bad.sql", dir);
        write_file(dst, "CREATE TABLE kinfer.half_done (x int);\n\nSELECT no_such_column FROM "
                        "kinfer.models;\n");
        kinfer_err_t err = kinfer_migrate_run(reg, dir, &applied, errstr, sizeof(errstr));
        TEST_ASSERT(err == KINFER_ERR__DB, "failing migration: got %s", kinfer_err2str(err));
        TEST_ASSERT(strstr(errstr, "0002_bad.sql") && strstr(errstr, "line 3"),
                    "error should name the file and line: %s", errstr);
        pgt_exec(reg, "SELECT to_regclass('kinfer.half_done') IS NULL", v, sizeof(v));
        TEST_ASSERT(!strcmp(v, "t"), "failed migration left kinfer.half_done behind");
        pgt_exec(reg, "SELECT count(*) FROM kinfer.schema_migrations WHERE version = 2", v,
                 sizeof(v));
        TEST_ASSERT(!strcmp(v, "0"), "failed migration recorded");
        unlink(dst);

        /* ... also when it fails only at COMMIT (a deferred constraint) */
        write_file(
            dst, "CREATE TABLE kinfer.deferred (m bigint REFERENCES kinfer.models (id) "
                 "DEFERRABLE INITIALLY DEFERRED);\nINSERT INTO kinfer.deferred VALUES (424242);\n");
        err = kinfer_migrate_run(reg, dir, &applied, errstr, sizeof(errstr));
        TEST_ASSERT(err == KINFER_ERR__DB && strstr(errstr, "0002_bad.sql") &&
                        strstr(errstr, "COMMIT"),
                    "failing at COMMIT: %s %s", kinfer_err2str(err), errstr);
        pgt_exec(reg,
                 "SELECT (to_regclass('kinfer.deferred') IS NULL) || ' ' || count(*) FROM "
                 "kinfer.schema_migrations WHERE version = 2",
                 v, sizeof(v));
        TEST_ASSERT(!strcmp(v, "true 0"), "failed at COMMIT but left: %s", v);
        unlink(dst);

        /* Editing an applied migration: refused, naming the file; a new one is not applied. */
        snprintf(src, sizeof(src), "%s/0001_registry.sql", pgt_migrations_dir());
        snprintf(dst, sizeof(dst), "%s/0001_registry.sql", dir);
        TEST_ASSERT(copy_file(src, dst, "\n-- an innocent-looking edit\n") == 0, "edit");
        snprintf(dst, sizeof(dst), "%s/0002_more.sql", dir);
        write_file(dst, "CREATE TABLE kinfer.more (x int);\n");
        err = kinfer_migrate_run(reg, dir, &applied, errstr, sizeof(errstr));
        TEST_ASSERT(err == KINFER_ERR__STATE, "changed migration: got %s", kinfer_err2str(err));
        TEST_ASSERT(strstr(errstr, "0001_registry.sql") != NULL, "error names the file: %s",
                    errstr);
        pgt_exec(reg, "SELECT to_regclass('kinfer.more') IS NULL", v, sizeof(v));
        TEST_ASSERT(!strcmp(v, "t"), "0002 applied despite a changed 0001");
        kinfer_migration_status_t *st;
        size_t n;
        TEST_ASSERT(kinfer_migrate_status(reg, dir, &st, &n, errstr, sizeof(errstr)) == KINFER_OK,
                    "status: %s", errstr);
        TEST_ASSERT(n == 2 && st[0].state == KINFER_MIGRATION_CHANGED &&
                        st[1].state == KINFER_MIGRATION_PENDING,
                    "status: n=%zu %s", n, n ? kinfer_migration_state2str(st[0].state) : "");
        free(st);
        unlink(dst);
        snprintf(dst, sizeof(dst), "%s/0001_registry.sql", dir);
        unlink(dst);
        rmdir(dir);
        kinfer_registry_destroy(reg);
        pgt_db_drop("changed");
}

/* ---- models and lineage --------------------------------------------------------------------- */

static void parent_json(char *out, size_t size, const char *sha, const char *name, int version,
                        const char *relation)
{
        snprintf(out, size,
                 "[{\"sha256\":\"%s\",\"name\":\"%s\",\"version\":%d,\"relation\":\"%s\"}]", sha,
                 name, version, relation);
}

static void test_push_lineage_chain(void)
{
        char conninfo[128], pj[512];
        char sha_a[65], sha_b[65], sha_c[65], sha_d[65];
        size_t la, lb, lc, ld;
        kinfer_registry_t *reg = pgt_registry("lineage", conninfo, sizeof(conninfo));
        TEST_ASSERT(reg, "registry");
        if (!reg)
                return;
        uint8_t *a = pgt_model_bytes("sections", 1, "train", NULL, NULL, &la, sha_a);
        parent_json(pj, sizeof(pj), sha_a, "sections", 1, "quantized_from");
        uint8_t *b =
            pgt_model_bytes("sections-int8", 2, "quantize", "{\"block\":32}", pj, &lb, sha_b);
        parent_json(pj, sizeof(pj), sha_b, "sections-int8", 1, "pruned_from");
        uint8_t *c =
            pgt_model_bytes("sections-pruned", 3, "prune", "{\"keep_buckets\":8}", pj, &lc, sha_c);
        parent_json(pj, sizeof(pj), sha_c, "sections-pruned", 1, "distilled_from");
        uint8_t *d = pgt_model_bytes("sections-student", 4, "distill", "{\"temperature\":2}", pj,
                                     &ld, sha_d);
        TEST_ASSERT(a && b && c && d, "models built");
        if (!(a && b && c && d))
                goto out;

        int32_t v = 0;
        /* the distilled child first: its parent is unknown until pushed */
        TEST_ASSERT(pgt_push(reg, "sections-student", d, ld, &v, errstr, sizeof(errstr)) ==
                        KINFER_OK,
                    "push d: %s", errstr);
        TEST_ASSERT(v == 1, "d version %d", v);
        kinfer_registry_lineage_node_t *nodes;
        size_t n;
        TEST_ASSERT(kinfer_registry_model_lineage(reg, "sections-student", 1, 0, &nodes, &n, errstr,
                                                  sizeof(errstr)) == KINFER_OK,
                    "lineage: %s", errstr);
        TEST_ASSERT(n == 2 && !nodes[1].registered && !strcmp(nodes[1].sha256, sha_c) &&
                        !strcmp(nodes[1].name, "sections-pruned"),
                    "unresolved parent expected, n=%zu", n);
        kinfer_registry_lineage_free(nodes, n);

        TEST_ASSERT(pgt_push(reg, "sections", a, la, &v, errstr, sizeof(errstr)) == KINFER_OK,
                    "push a: %s", errstr);
        TEST_ASSERT(v == 1, "a version %d", v);
        TEST_ASSERT(pgt_push(reg, "sections-int8", b, lb, &v, errstr, sizeof(errstr)) == KINFER_OK,
                    "push b: %s", errstr);
        TEST_ASSERT(pgt_push(reg, "sections-pruned", c, lc, &v, errstr, sizeof(errstr)) ==
                        KINFER_OK,
                    "push c: %s", errstr);

        /* the whole chain, from the student up */
        TEST_ASSERT(kinfer_registry_model_lineage(reg, "sections-student", 1, 0, &nodes, &n, errstr,
                                                  sizeof(errstr)) == KINFER_OK,
                    "lineage: %s", errstr);
        static const struct {
                const char *rel, *name, *method;
                const char *sha;
        } want[4] = {{"", "sections-student", "distill", NULL},
                     {"distilled_from", "sections-pruned", "prune", NULL},
                     {"pruned_from", "sections-int8", "quantize", NULL},
                     {"quantized_from", "sections", "train", NULL}};
        const char *shas[4] = {sha_d, sha_c, sha_b, sha_a};
        TEST_ASSERT(n == 4, "chain has %zu nodes, want 4", n);
        for (size_t i = 0; i < n && i < 4; i++) {
                TEST_ASSERT(nodes[i].depth == (int)i && nodes[i].registered &&
                                !strcmp(nodes[i].relation, want[i].rel) &&
                                !strcmp(nodes[i].name, want[i].name) && nodes[i].version == 1 &&
                                !strcmp(nodes[i].method, want[i].method) &&
                                !strcmp(nodes[i].sha256, shas[i]),
                            "node %zu: depth %d %s %s:%d %s", i, nodes[i].depth, nodes[i].relation,
                            nodes[i].name, nodes[i].version, nodes[i].method);
        }
        TEST_ASSERT(n >= 2 && nodes[0].params && strstr(nodes[0].params, "temperature") &&
                        nodes[1].params && strstr(nodes[1].params, "keep_buckets"),
                    "method params: %s", n >= 2 && nodes[0].params ? nodes[0].params : "(null)");
        kinfer_registry_lineage_free(nodes, n);

        /* and down from the trained root */
        TEST_ASSERT(kinfer_registry_model_lineage(reg, "sections", 1, 1, &nodes, &n, errstr,
                                                  sizeof(errstr)) == KINFER_OK,
                    "descendants: %s", errstr);
        TEST_ASSERT(n == 4 && !strcmp(nodes[3].name, "sections-student") && nodes[3].depth == 3,
                    "descendants: %zu", n);
        kinfer_registry_lineage_free(nodes, n);

        /* pull returns the very bytes; show returns the metadata */
        kinfer_registry_model_t m;
        TEST_ASSERT(kinfer_registry_model_get(reg, "sections-int8", 1, 1, &m, errstr,
                                              sizeof(errstr)) == KINFER_OK,
                    "get: %s", errstr);
        TEST_ASSERT(m.len == lb && !memcmp(m.bytes, b, lb) && !strcmp(m.sha256, sha_b),
                    "pulled bytes differ");
        TEST_ASSERT(!strcmp(m.method, "quantize") && m.n_labels == 3 && !strcmp(m.format, "f32"),
                    "metadata: %s %d %s", m.method, m.n_labels, m.format);
        TEST_ASSERT(m.hyperparameters && strstr(m.hyperparameters, "seed"), "hyperparameters");
        TEST_ASSERT(m.evaluation && strstr(m.evaluation, "accuracy"), "evaluation");
        kinfer_registry_model_term(&m);

        /* the same bytes twice: refused, naming where they are */
        kinfer_err_t err = pgt_push(reg, "other", a, la, &v, errstr, sizeof(errstr));
        TEST_ASSERT(err == KINFER_ERR__STATE && strstr(errstr, "sections:1"), "duplicate: %s %s",
                    kinfer_err2str(err), errstr);
        /* unknown model */
        err = kinfer_registry_model_get(reg, "nope", 3, 0, &m, errstr, sizeof(errstr));
        TEST_ASSERT(err == KINFER_ERR__NOENT && strstr(errstr, "nope:3"), "missing: %s", errstr);

        kinfer_registry_model_t *models;
        TEST_ASSERT(kinfer_registry_model_ls(reg, NULL, &models, &n, errstr, sizeof(errstr)) ==
                            KINFER_OK &&
                        n == 4,
                    "ls: %zu", n);
        kinfer_registry_models_free(models, n);
out:
        free(a);
        free(b);
        free(c);
        free(d);
        kinfer_registry_destroy(reg);
        pgt_db_drop("lineage");
}

/* Versions are assigned atomically per name: concurrent pushes get 1..N, no gaps or clashes. */
#define CONC_THREADS 4
#define CONC_PUSHES 5
static char conc_conninfo[128];
static int conc_fail;
static void *conc_pusher(void *arg)
{
        int t = (int)(intptr_t)arg;
        char e[512], sha[65];
        kinfer_registry_t *reg = kinfer_registry_new(conc_conninfo, e, sizeof(e));
        if (!reg) {
                __atomic_add_fetch(&conc_fail, 1, __ATOMIC_SEQ_CST);
                return NULL;
        }
        for (int i = 0; i < CONC_PUSHES; i++) {
                size_t len;
                int32_t v;
                uint8_t *bytes =
                    pgt_model_bytes("conc", 100 + t * 100 + i, "train", NULL, NULL, &len, sha);
                if (!bytes || pgt_push(reg, "conc", bytes, len, &v, e, sizeof(e)) != KINFER_OK) {
                        fprintf(stderr, "  # push: %s\n", e);
                        __atomic_add_fetch(&conc_fail, 1, __ATOMIC_SEQ_CST);
                }
                free(bytes);
        }
        kinfer_registry_destroy(reg);
        return NULL;
}

static void test_versions_atomic(void)
{
        kinfer_registry_t *reg = pgt_registry("conc", conc_conninfo, sizeof(conc_conninfo));
        TEST_ASSERT(reg, "registry");
        if (!reg)
                return;
        pthread_t th[CONC_THREADS];
        for (int i = 0; i < CONC_THREADS; i++)
                pthread_create(&th[i], NULL, conc_pusher, (void *)(intptr_t)i);
        for (int i = 0; i < CONC_THREADS; i++)
                pthread_join(th[i], NULL);
        TEST_ASSERT(conc_fail == 0, "%d pushes failed", conc_fail);
        char v[128];
        pgt_exec(reg,
                 "SELECT count(*) || ':' || min(version) || ':' || max(version) || ':' || "
                 "count(DISTINCT version) FROM kinfer.models WHERE name = 'conc'",
                 v, sizeof(v));
        TEST_ASSERT(!strcmp(v, "20:1:20:20"), "count:min:max:distinct = %s", v);
        kinfer_registry_destroy(reg);
        pgt_db_drop("conc");
}

static void test_corrupt_artifact_refused(void)
{
        char conninfo[128], sha[65], v[512];
        size_t len;
        kinfer_registry_t *reg = pgt_registry("corrupt", conninfo, sizeof(conninfo));
        TEST_ASSERT(reg, "registry");
        if (!reg)
                return;
        uint8_t *bytes = pgt_model_bytes("m", 7, "train", NULL, NULL, &len, sha);
        TEST_ASSERT(bytes, "model");
        if (!bytes)
                goto out;
        /* one flipped bit in the weights: the model loader refuses it */
        bytes[len - 5] ^= 0x10;
        int32_t ver;
        kinfer_err_t err = pgt_push(reg, "m", bytes, len, &ver, errstr, sizeof(errstr));
        TEST_ASSERT(err == KINFER_ERR__BAD_FORMAT, "flipped bit accepted: %s", kinfer_err2str(err));
        TEST_SAY("refused: %s", errstr);
        /* bytes that do not match the sha256 they are pushed under: the registry refuses */
        kinfer_registry_push_t push = {.name = "m",
                                       .bytes = bytes,
                                       .len = len,
                                       .sha256 = sha,
                                       .format = "f32",
                                       .n_labels = 0,
                                       .meta_json = "{}"};
        int64_t id;
        err = kinfer_registry_model_push(reg, &push, &id, &ver, errstr, sizeof(errstr));
        TEST_ASSERT(err == KINFER_ERR__BAD_FORMAT && strstr(errstr, "does not match"),
                    "sha mismatch accepted: %s %s", kinfer_err2str(err), errstr);
        /* and so does PostgreSQL, whatever the client */
        err = kinfer_registry_exec_value(
            reg,
            "INSERT INTO kinfer.models (name, version, sha256, size, format, labels, meta, "
            "artifact) "
            "VALUES ('m', 1, repeat('ab', 32), 3, 'f32', '{a}', '{}', 'abc'::bytea)",
            v, sizeof(v), errstr, sizeof(errstr));
        TEST_ASSERT(err != KINFER_OK && strstr(errstr, "models_artifact_sha256"),
                    "table accepted a wrong sha256: %s", errstr);
        pgt_exec(reg, "SELECT count(*) FROM kinfer.models", v, sizeof(v));
        TEST_ASSERT(!strcmp(v, "0"), "%s models registered", v);
out:
        free(bytes);
        kinfer_registry_destroy(reg);
        pgt_db_drop("corrupt");
}

/* ---- deployments ---------------------------------------------------------------------------- */


static void active_of(kinfer_registry_t *reg, const char *dep, char *out, size_t size)
{
        kinfer_registry_model_t m;
        if (kinfer_registry_deployment_active(reg, dep, &m, errstr, sizeof(errstr)) == KINFER_OK)
                snprintf(out, size, "%s:%d", m.name, (int)m.version);
        else
                snprintf(out, size, "(none)");
}

static void test_activate_rollback(void)
{
        char conninfo[128], s[256], v[512];
        kinfer_registry_t *reg = pgt_registry("deploy", conninfo, sizeof(conninfo));
        TEST_ASSERT(reg, "registry");
        if (!reg)
                return;
        TEST_ASSERT(pgt_push_versions(reg, "sec", 2, 20, errstr, sizeof(errstr)) == 0, "push: %s", errstr);
        kinfer_err_t err =
            kinfer_registry_rollback(reg, "sections", NULL, s, sizeof(s), errstr, sizeof(errstr));
        TEST_ASSERT(err == KINFER_ERR__NOENT && strstr(errstr, "sections"),
                    "rollback of nothing: %s", errstr);
        TEST_ASSERT(kinfer_registry_activate(reg, "sections", "sec", 1, "first", s, sizeof(s),
                                             errstr, sizeof(errstr)) == KINFER_OK,
                    "activate: %s", errstr);
        TEST_ASSERT(!strcmp(s, "sections: (none) -> sec:1"), "summary: %s", s);
        err = kinfer_registry_rollback(reg, "sections", NULL, s, sizeof(s), errstr, sizeof(errstr));
        TEST_ASSERT(err == KINFER_ERR__STATE && strstr(errstr, "no previous"), "rollback: %s",
                    errstr);
        TEST_ASSERT(kinfer_registry_activate(reg, "sections", "sec", 2, "better", s, sizeof(s),
                                             errstr, sizeof(errstr)) == KINFER_OK,
                    "activate 2: %s", errstr);
        active_of(reg, "sections", s, sizeof(s));
        TEST_ASSERT(!strcmp(s, "sec:2"), "active %s", s);
        TEST_ASSERT(kinfer_registry_rollback(reg, "sections", "bad", s, sizeof(s), errstr,
                                             sizeof(errstr)) == KINFER_OK,
                    "rollback: %s", errstr);
        TEST_ASSERT(!strcmp(s, "sections: sec:2 -> sec:1"), "summary: %s", s);
        active_of(reg, "sections", s, sizeof(s));
        TEST_ASSERT(!strcmp(s, "sec:1"), "after rollback: %s", s);
        TEST_ASSERT(kinfer_registry_rollback(reg, "sections", NULL, s, sizeof(s), errstr,
                                             sizeof(errstr)) == KINFER_OK,
                    "rollback 2: %s", errstr);
        active_of(reg, "sections", s, sizeof(s));
        TEST_ASSERT(!strcmp(s, "sec:2"), "rollback of a rollback: %s", s);
        /* activating the active model changes nothing */
        TEST_ASSERT(kinfer_registry_activate(reg, "sections", "sec", 2, NULL, s, sizeof(s), errstr,
                                             sizeof(errstr)) == KINFER_OK &&
                        strstr(s, "already"),
                    "re-activate: %s", s);
        err = kinfer_registry_activate(reg, "sections", "sec", 9, NULL, s, sizeof(s), errstr,
                                       sizeof(errstr));
        TEST_ASSERT(err == KINFER_ERR__NOENT && strstr(errstr, "sec:9"), "unknown version: %s",
                    errstr);

        pgt_exec(reg,
                 "SELECT string_agg(action || ' ' || coalesce(from_model, '-') || ' ' || "
                 "to_model || ' ' || coalesce(reason, '-') || ' ' || (who = current_user), "
                 "'; ' ORDER BY id) FROM kinfer.activation_log WHERE deployment = 'sections'",
                 v, sizeof(v));
        TEST_ASSERT(!strcmp(v, "activate - sec:1 first true; activate sec:1 sec:2 better true; "
                               "rollback sec:2 sec:1 bad true; rollback sec:1 sec:2 - true"),
                    "history: %s", v);

        /* the history is append-only, for the owner too */
        err = kinfer_registry_exec_value(reg, "UPDATE kinfer.activations SET reason = 'x'", v,
                                         sizeof(v), errstr, sizeof(errstr));
        TEST_ASSERT(err != KINFER_OK && strstr(errstr, "append-only"), "UPDATE: %s", errstr);
        err = kinfer_registry_exec_value(reg, "DELETE FROM kinfer.activations", v, sizeof(v),
                                         errstr, sizeof(errstr));
        TEST_ASSERT(err != KINFER_OK, "DELETE allowed");
        err = kinfer_registry_exec_value(reg, "TRUNCATE kinfer.activations", v, sizeof(v), errstr,
                                         sizeof(errstr));
        TEST_ASSERT(err != KINFER_OK, "TRUNCATE allowed");
        err = kinfer_registry_exec_value(
            reg,
            "INSERT INTO kinfer.activations (deployment, action, who, at) "
            "VALUES ('sections', 'activate', 'mallory', now())",
            v, sizeof(v), errstr, sizeof(errstr));
        TEST_ASSERT(err != KINFER_OK, "a forged history row was accepted");
        /* a direct UPDATE is recorded as well */
        pgt_exec(reg,
                 "UPDATE kinfer.deployments SET active_model_id = (SELECT id FROM kinfer.models "
                 "WHERE name = 'sec' AND version = 1) WHERE name = 'sections'",
                 NULL, 0);
        pgt_exec(
            reg,
            "SELECT action || ' ' || to_model FROM kinfer.activation_log ORDER BY id DESC LIMIT 1",
            v, sizeof(v));
        TEST_ASSERT(!strcmp(v, "update sec:1"), "direct update history: %s", v);
        kinfer_registry_destroy(reg);
        pgt_db_drop("deploy");
}

static void test_notify(void)
{
        char conninfo[128], s[256], ch[64], payload[256];
        kinfer_registry_t *reg = pgt_registry("notify", conninfo, sizeof(conninfo));
        TEST_ASSERT(reg, "registry");
        if (!reg)
                return;
        kinfer_registry_t *lis = kinfer_registry_new(conninfo, errstr, sizeof(errstr));
        TEST_ASSERT(lis, "listener: %s", errstr);
        TEST_ASSERT(pgt_push_versions(reg, "n", 2, 40, errstr, sizeof(errstr)) == 0, "push");
        TEST_ASSERT(kinfer_registry_listen(lis, KINFER_REGISTRY_CHANNEL, errstr, sizeof(errstr)) ==
                        KINFER_OK,
                    "listen: %s", errstr);
        kinfer_err_t err = kinfer_registry_wait_notify(lis, 100, ch, sizeof(ch), payload,
                                                       sizeof(payload), errstr, sizeof(errstr));
        TEST_ASSERT(err == KINFER_ERR__TIMEOUT, "expected a timeout, got %s", kinfer_err2str(err));
        kinfer_registry_activate(reg, "dep-a", "n", 1, NULL, s, sizeof(s), errstr, sizeof(errstr));
        err = kinfer_registry_wait_notify(lis, 5000, ch, sizeof(ch), payload, sizeof(payload),
                                          errstr, sizeof(errstr));
        TEST_ASSERT(err == KINFER_OK && !strcmp(ch, KINFER_REGISTRY_CHANNEL) &&
                        !strcmp(payload, "dep-a"),
                    "notify: %s ch=%s payload=%s", kinfer_err2str(err), ch, payload);
        kinfer_registry_rollback(reg, "dep-a", NULL, s, sizeof(s), errstr,
                                 sizeof(errstr)); /* no previous */
        kinfer_registry_activate(reg, "dep-a", "n", 2, NULL, s, sizeof(s), errstr, sizeof(errstr));
        err = kinfer_registry_wait_notify(lis, 5000, ch, sizeof(ch), payload, sizeof(payload),
                                          errstr, sizeof(errstr));
        TEST_ASSERT(err == KINFER_OK && !strcmp(payload, "dep-a"), "second notify");
        /* the listener survives a reconnect (its LISTEN is re-issued) */
        TEST_ASSERT(kinfer_registry_reconnect(lis, errstr, sizeof(errstr)) == KINFER_OK,
                    "reconnect: %s", errstr);
        kinfer_registry_rollback(reg, "dep-a", NULL, s, sizeof(s), errstr, sizeof(errstr));
        err = kinfer_registry_wait_notify(lis, 5000, ch, sizeof(ch), payload, sizeof(payload),
                                          errstr, sizeof(errstr));
        TEST_ASSERT(err == KINFER_OK && !strcmp(payload, "dep-a"), "notify after reconnect: %s",
                    kinfer_err2str(err));
        kinfer_registry_destroy(lis);
        kinfer_registry_destroy(reg);
        pgt_db_drop("notify");
}

/* ---- roles ---------------------------------------------------------------------------------- */

static void test_roles(void)
{
        char conninfo[128], wconn[256], oconn[256], sql[256], s[256], v[128], wrole[64], orole[64];
        kinfer_registry_t *reg = pgt_registry("roles", conninfo, sizeof(conninfo));
        TEST_ASSERT(reg, "registry");
        if (!reg)
                return;
        TEST_ASSERT(pgt_push_versions(reg, "r", 2, 60, errstr, sizeof(errstr)) == 0, "push");
        TEST_ASSERT(kinfer_registry_activate(reg, "dep", "r", 1, NULL, s, sizeof(s), errstr,
                                             sizeof(errstr)) == KINFER_OK,
                    "activate: %s", errstr);
        snprintf(wrole, sizeof(wrole), "kinfer_t_%d_worker", (int)getpid());
        snprintf(orole, sizeof(orole), "kinfer_t_%d_operator", (int)getpid());
        snprintf(sql, sizeof(sql),
                 "DROP ROLE IF EXISTS %s; CREATE ROLE %s LOGIN IN ROLE kinfer_worker", wrole,
                 wrole);
        pgt_exec(pgt_admin, sql, NULL, 0);
        snprintf(sql, sizeof(sql),
                 "DROP ROLE IF EXISTS %s; CREATE ROLE %s LOGIN IN ROLE kinfer_operator", orole,
                 orole);
        pgt_exec(pgt_admin, sql, NULL, 0);
        snprintf(wconn, sizeof(wconn), "%s user=%s", conninfo, wrole);
        snprintf(oconn, sizeof(oconn), "%s user=%s", conninfo, orole);

        kinfer_registry_t *w = kinfer_registry_new(wconn, errstr, sizeof(errstr));
        TEST_ASSERT(w, "connect as worker: %s", errstr);
        if (w) {
                kinfer_err_t err = kinfer_registry_activate(w, "dep", "r", 2, "sneaky", s,
                                                            sizeof(s), errstr, sizeof(errstr));
                TEST_ASSERT(err != KINFER_OK && strstr(errstr, "permission denied"),
                            "worker activated: %s", errstr);
                err =
                    kinfer_registry_rollback(w, "dep", NULL, s, sizeof(s), errstr, sizeof(errstr));
                TEST_ASSERT(err != KINFER_OK && strstr(errstr, "permission denied"),
                            "worker rolled back: %s", errstr);
                err = kinfer_registry_exec_value(
                    w, "UPDATE kinfer.deployments SET active_model_id = NULL", v, sizeof(v), errstr,
                    sizeof(errstr));
                TEST_ASSERT(err != KINFER_OK && strstr(errstr, "permission denied"),
                            "worker updated deployments: %s", errstr);
                err = kinfer_registry_exec_value(w, "UPDATE kinfer.models SET format = 'x'", v,
                                                 sizeof(v), errstr, sizeof(errstr));
                TEST_ASSERT(err != KINFER_OK, "worker altered models");
                char sha[65];
                size_t len;
                int32_t ver;
                uint8_t *bytes = pgt_model_bytes("r", 99, "train", NULL, NULL, &len, sha);
                err = bytes ? pgt_push(w, "r", bytes, len, &ver, errstr, sizeof(errstr))
                            : KINFER_ERR__NOMEM;
                free(bytes);
                TEST_ASSERT(err != KINFER_OK && strstr(errstr, "permission denied"),
                            "worker registered a model: %s", errstr);
                /* what a worker may do */
                kinfer_registry_model_t m;
                TEST_ASSERT(kinfer_registry_deployment_active(w, "dep", &m, errstr,
                                                              sizeof(errstr)) == KINFER_OK &&
                                m.version == 1,
                            "worker reads the deployment: %s", errstr);
                TEST_ASSERT(kinfer_registry_model_bytes(w, m.id, &m, errstr, sizeof(errstr)) ==
                                    KINFER_OK &&
                                m.len > 0,
                            "worker reads bytes: %s", errstr);
                kinfer_registry_model_term(&m);
                kinfer_registry_worker_t wk = {.worker_id = "h:1:1",
                                               .host = "h",
                                               .pid = 1,
                                               .deployment = "dep",
                                               .model_id = 1,
                                               .model_name = "r",
                                               .model_version = 1,
                                               .model_sha256 = "x",
                                               .status = "running",
                                               .last_error = NULL};
                TEST_ASSERT(kinfer_registry_worker_upsert(w, &wk, errstr, sizeof(errstr)) ==
                                KINFER_OK,
                            "worker upsert: %s", errstr);
                wk.last_error = "load failed";
                TEST_ASSERT(kinfer_registry_worker_upsert(w, &wk, errstr, sizeof(errstr)) ==
                                KINFER_OK,
                            "worker upsert 2: %s", errstr);
                wk.last_error = NULL;
                TEST_ASSERT(kinfer_registry_worker_upsert(w, &wk, errstr, sizeof(errstr)) ==
                                KINFER_OK,
                            "worker upsert 3: %s", errstr);
                pgt_exec(reg, "SELECT last_error FROM kinfer.workers", v, sizeof(v));
                TEST_ASSERT(!strcmp(v, "load failed"), "last_error kept: %s", v);
                kinfer_registry_metrics_t mw = {.worker_id = "h:1:1",
                                                .deployment = "dep",
                                                .model_name = "r",
                                                .model_version = 1,
                                                .model_sha256 = "x",
                                                .window_start_us = 1000000,
                                                .window_end_us = 11000000,
                                                .records = 100,
                                                .batches = 4,
                                                .mean_batch_size = 25,
                                                .dlq = 1,
                                                .latency_p50_ms = 1.5,
                                                .latency_p95_ms = 3,
                                                .latency_p99_ms = 4,
                                                .mean_confidence = 0.8,
                                                .label_counts_json = "{\"a\": 60, \"b\": 40}"};
                TEST_ASSERT(kinfer_registry_metrics_insert(w, &mw, errstr, sizeof(errstr)) ==
                                KINFER_OK,
                            "metrics: %s", errstr);
                TEST_ASSERT(kinfer_registry_metrics_insert(w, &mw, errstr, sizeof(errstr)) ==
                                KINFER_OK,
                            "metrics re-sent: %s", errstr);
                pgt_exec(reg,
                         "SELECT count(*) || ' ' || sum((label_counts->>'a')::int) FROM "
                         "kinfer.metrics_windows",
                         v, sizeof(v));
                TEST_ASSERT(!strcmp(v, "1 60"), "one window with its label counts: %s", v);
                kinfer_registry_destroy(w);
        }

        kinfer_registry_t *o = kinfer_registry_new(oconn, errstr, sizeof(errstr));
        TEST_ASSERT(o, "connect as operator: %s", errstr);
        if (o) {
                TEST_ASSERT(kinfer_registry_activate(o, "dep", "r", 2, "op", s, sizeof(s), errstr,
                                                     sizeof(errstr)) == KINFER_OK,
                            "operator activate: %s", errstr);
                TEST_ASSERT(kinfer_registry_rollback(o, "dep", "op", s, sizeof(s), errstr,
                                                     sizeof(errstr)) == KINFER_OK,
                            "operator rollback: %s", errstr);
                TEST_ASSERT(pgt_push_versions(o, "r", 1, 80, errstr, sizeof(errstr)) == 0, "operator push: %s", errstr);
                TEST_ASSERT(kinfer_registry_deployment_create(o, "dep2", "in", "out", errstr,
                                                              sizeof(errstr)) == KINFER_OK,
                            "operator deployment_create: %s", errstr);
                pgt_exec(reg,
                         "SELECT string_agg(DISTINCT who, ',') FROM kinfer.activations "
                         "WHERE reason = 'op'",
                         v, sizeof(v));
                TEST_ASSERT(!strcmp(v, orole), "who is the operator: %s", v);
                kinfer_err_t err = kinfer_registry_exec_value(o, "DELETE FROM kinfer.models", v,
                                                              sizeof(v), errstr, sizeof(errstr));
                TEST_ASSERT(err != KINFER_OK, "operator deleted models");
                kinfer_registry_destroy(o);
        }
        kinfer_registry_destroy(reg);
        pgt_db_drop("roles");
        snprintf(sql, sizeof(sql), "DROP ROLE IF EXISTS %s; DROP ROLE IF EXISTS %s", wrole, orole);
        pgt_exec(pgt_admin, sql, NULL, 0);
}

int main(void)
{
        TEST_RUN(test_migrate_fresh_and_rerun);
        TEST_RUN(test_migrate_concurrent);
        TEST_RUN(test_migrate_changed_refused);
        TEST_RUN(test_push_lineage_chain);
        TEST_RUN(test_versions_atomic);
        TEST_RUN(test_corrupt_artifact_refused);
        TEST_RUN(test_activate_rollback);
        TEST_RUN(test_notify);
        TEST_RUN(test_roles);
        kinfer_registry_destroy(pgt_admin);
        return TEST_DONE();
}
