/* SPDX-License-Identifier: Apache-2.0 */
/* pg_test_util.h -- helpers of the pg-labelled tests: a database of the test's own (created on
 * the cluster that PG* points at, dropped at exit), migrations applied to it, and tiny valid
 * model files with a given lineage, written with the core's model writer. */
#ifndef KINFER_PG_TEST_UTIL_H
#define KINFER_PG_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"
#include "kinfer/text/featurize.h"
#include "kinfer/registry/migrate.h"
#include "kinfer/model/model.h"
#include "kinfer/model/model_write.h"
#include "kinfer/registry/registry.h"
#include "kinfer/core/sha256.h"

/* SQL registering, as NAME:1, a copy of the registered model FROM:FROM_VERSION with one byte
 * of its weights flipped: META and labels intact (the registry takes it, its sha256 is
 * recomputed), but the content checksum fails (the model loader refuses it). */
#define PGT_REGISTER_CORRUPT(name, from, from_version)                                             \
        "SELECT kinfer.register_model('" name "', set_byte(m.artifact, octet_length(m.artifact) - " \
        "5, get_byte(m.artifact, octet_length(m.artifact) - 5) # 16), m.format, m.labels, m.meta) " \
        "FROM kinfer.models m WHERE m.name = '" from "' AND m.version = " #from_version

/* An admin connection (PG* environment): creates and drops the test databases and roles. */
static kinfer_registry_t *pgt_admin;

/* Run @p sql on @p reg; on failure print it and return -1. */
static inline int pgt_exec(kinfer_registry_t *reg, const char *sql, char *value, size_t size)
{
        char errstr[512], dummy[8];
        if (kinfer_registry_exec_value(reg, sql, value ? value : dummy,
                                       value ? size : sizeof(dummy), errstr, sizeof(errstr))) {
                fprintf(stderr, "  # SQL failed: %s: %s\n", sql, errstr);
                return -1;
        }
        return 0;
}

/* Create an empty database "kinfer_t_<pid>_<tag>" and write its conninfo to @p conninfo. */
static inline int pgt_db_create(const char *tag, char *conninfo, size_t size)
{
        char errstr[512], sql[256];
        if (!pgt_admin && !(pgt_admin = kinfer_registry_new(NULL, errstr, sizeof(errstr)))) {
                fprintf(stderr, "  # no PostgreSQL (PG* env): %s\n", errstr);
                return -1;
        }
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS kinfer_t_%d_%s", (int)getpid(), tag);
        if (pgt_exec(pgt_admin, sql, NULL, 0))
                return -1;
        snprintf(sql, sizeof(sql), "CREATE DATABASE kinfer_t_%d_%s", (int)getpid(), tag);
        if (pgt_exec(pgt_admin, sql, NULL, 0))
                return -1;
        snprintf(conninfo, size, "dbname=kinfer_t_%d_%s", (int)getpid(), tag);
        return 0;
}

static inline void pgt_db_drop(const char *tag)
{
        char sql[256];
        if (!pgt_admin || getenv("KINFER_TEST_KEEP_DB"))
                return;
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS kinfer_t_%d_%s WITH (FORCE)",
                 (int)getpid(), tag);
        pgt_exec(pgt_admin, sql, NULL, 0);
}

/* The repository's migrations directory. */
static inline const char *pgt_migrations_dir(void)
{
        static char buf[4096];
        const char *env = getenv("KINFER_MIGRATIONS_DIR");
        if (env && *env)
                return env;
        return test_src_path("migrations", buf, sizeof(buf));
}

/* A fresh database with every migration applied, and a registry connected to it. */
static inline kinfer_registry_t *pgt_registry(const char *tag, char *conninfo, size_t size)
{
        char errstr[512];
        int n;
        if (pgt_db_create(tag, conninfo, size))
                return NULL;
        kinfer_registry_t *reg = kinfer_registry_new(conninfo, errstr, sizeof(errstr));
        if (!reg) {
                fprintf(stderr, "  # connect %s: %s\n", conninfo, errstr);
                return NULL;
        }
        if (kinfer_migrate_run(reg, pgt_migrations_dir(), &n, errstr, sizeof(errstr))) {
                fprintf(stderr, "  # migrate %s: %s\n", conninfo, errstr);
                kinfer_registry_destroy(reg);
                return NULL;
        }
        return reg;
}

/**
 * A tiny valid model file (16 buckets, labels a/b/c, linear) as bytes. @p seed makes the
 * weights (so the sha256) differ. @p method / @p params_json / @p parents_json (a JSON array
 * text, or NULL) go into META.lineage. Fills @p sha (hex of the whole file). malloc'd.
 */
static inline uint8_t *pgt_model_bytes(const char *name, int seed, const char *method,
                                       const char *params_json, const char *parents_json,
                                       size_t *lenp, char sha[65])
{
        kinfer_model_builder_t *mb = kinfer_model_builder_new();
        kinfer_featurizer_conf_t fc;
        kinfer_featurizer_conf_default(&fc);
        fc.n_buckets = 16;
        int32_t arch[8] = {3, 0, 3, 0, 0, 0, 0, 0};
        const char *labels[] = {"a", "b", "c"};
        size_t lsize;
        uint8_t *lpack = kinfer_labels_pack(labels, 3, &lsize);
        float embed[16 * 3];
        for (int i = 0; i < 16 * 3; i++)
                embed[i] = (float)((i * 7 + seed * 13) % 17) / 17.0f - 0.5f;
        char meta[4096];
        snprintf(meta, sizeof(meta),
                 "{\"name\":\"%s\",\"hyperparameters\":{\"seed\":%d},\"train_data\":{},"
                 "\"evaluation\":{\"accuracy\":0.5},\"lineage\":{\"method\":\"%s\",\"params\":%s,"
                 "\"parents\":%s}}",
                 name, seed, method, params_json ? params_json : "{}",
                 parents_json ? parents_json : "[]");
        uint8_t *buf = NULL;
        char errstr[256];
        if (!mb || !lpack ||
            kinfer_model_builder_add(mb, KINFER_T_META, KINFER_DTYPE_BYTES, 1,
                                     (uint32_t)strlen(meta), meta, strlen(meta)) ||
            kinfer_model_builder_add(mb, KINFER_T_LABELS, KINFER_DTYPE_BYTES, 1, (uint32_t)lsize,
                                     lpack, lsize) ||
            kinfer_model_builder_add(mb, KINFER_T_FEATURIZER, KINFER_DTYPE_BYTES, 1,
                                     (uint32_t)sizeof(fc), &fc, sizeof(fc)) ||
            kinfer_model_builder_add(mb, KINFER_T_ARCH, KINFER_DTYPE_I32, 1, 8, arch,
                                     sizeof(arch)) ||
            kinfer_model_builder_add(mb, KINFER_T_EMBED, KINFER_DTYPE_F32, 16, 3, embed,
                                     sizeof(embed)) ||
            kinfer_model_builder_serialize(mb, &buf, lenp, errstr, sizeof(errstr))) {
                fprintf(stderr, "  # cannot build a test model: %s\n", errstr);
                buf = NULL;
        }
        free(lpack);
        kinfer_model_builder_destroy(mb);
        if (buf)
                kinfer_sha256_hex(buf, *lenp, sha);
        return buf;
}

/* Push model bytes as @p name through the registry (the way `kinfer model push` does: the
 * model is verified with kinfer_model_load_mem first). @returns the error code. */
static inline kinfer_err_t pgt_push(kinfer_registry_t *reg, const char *name, const uint8_t *bytes,
                                    size_t len, int32_t *versionp, char *errstr, size_t size)
{
        kinfer_model_t *model = kinfer_model_load_mem(bytes, len, errstr, size);
        if (!model)
                return KINFER_ERR__BAD_FORMAT;
        const char *labels[16];
        int32_t n = kinfer_model_n_labels(model);
        for (int32_t i = 0; i < n && i < 16; i++)
                labels[i] = kinfer_model_label(model, i);
        kinfer_registry_push_t push = {.name = name,
                                       .bytes = bytes,
                                       .len = len,
                                       .sha256 = kinfer_model_sha256_hex(model),
                                       .format = kinfer_model_format(model),
                                       .labels = labels,
                                       .n_labels = n < 16 ? n : 16,
                                       .meta_json = kinfer_model_meta_json(model)};
        int64_t id;
        kinfer_err_t err = kinfer_registry_model_push(reg, &push, &id, versionp, errstr, size);
        kinfer_model_release(model);
        return err;
}

/* Push @p n generated models (seeds seed0, seed0 + 1, ...) under @p name: versions 1..n on a
 * fresh name. @returns 0, or -1 with the reason in @p errstr. */
static inline int pgt_push_versions(kinfer_registry_t *reg, const char *name, int n, int seed0,
                                    char *errstr, size_t size)
{
        for (int i = 0; i < n; i++) {
                char sha[65];
                size_t len;
                int32_t v;
                uint8_t *bytes = pgt_model_bytes(name, seed0 + i, "train", NULL, NULL, &len, sha);
                kinfer_err_t err = bytes ? pgt_push(reg, name, bytes, len, &v, errstr, size)
                                         : KINFER_ERR__NOMEM;
                free(bytes);
                if (err)
                        return -1;
        }
        return 0;
}

#endif
