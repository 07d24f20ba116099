/* SPDX-License-Identifier: Apache-2.0 */
/* migrate.c -- the migration runner: reads migrations/NNNN_name.sql, checksums each file,
 * compares with kinfer.schema_migrations and applies the pending ones in version order,
 * one transaction each (the SQL and the transactions go through registry.c). */
#include "kinfer/registry/migrate.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinfer/core/log.h"
#include "kinfer/core/sha256.h"

typedef struct mig_file_s {
        int32_t version;
        char name[256];
        char sha256[65];
        char *sql; /* NUL-terminated file contents */
} mig_file_t;

const char *kinfer_migration_state2str(kinfer_migration_state_t state)
{
        switch (state) {
        case KINFER_MIGRATION_PENDING:
                return "pending";
        case KINFER_MIGRATION_APPLIED:
                return "applied";
        case KINFER_MIGRATION_CHANGED:
                return "CHANGED";
        case KINFER_MIGRATION_NO_FILE:
                return "no file";
        }
        return "?";
}

/* NNNN_name.sql: four or more digits, '_', [a-z0-9_-]+, ".sql". @returns the version or -1. */
static int32_t mig_parse_name(const char *name)
{
        const char *p = name;
        long v = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 9) {
                v = v * 10 + (*p - '0');
                p++;
                digits++;
        }
        if (digits < 4 || *p != '_' || v <= 0)
                return -1;
        size_t n = strlen(p + 1);
        if (n <= 4 || strcmp(p + 1 + n - 4, ".sql"))
                return -1;
        for (const char *c = p + 1; c < p + 1 + n - 4; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                      (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
                        return -1;
        return (int32_t)v;
}

static int mig_cmp(const void *a, const void *b)
{
        const mig_file_t *x = a, *y = b;
        return (x->version > y->version) - (x->version < y->version);
}

static void mig_files_free(mig_file_t *files, size_t n)
{
        for (size_t i = 0; files && i < n; i++)
                free(files[i].sql);
        free(files);
}

static kinfer_err_t mig_read_file(const char *path, char **sqlp, char *errstr, size_t errstr_size)
{
        FILE *fp = fopen(path, "rb");
        if (!fp)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO, "%s: %s", path,
                                     strerror(errno));
        size_t cap = 8192, len = 0;
        char *buf = malloc(cap);
        for (;;) {
                if (!buf) {
                        fclose(fp);
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM,
                                             "%s: out of memory", path);
                }
                size_t r = fread(buf + len, 1, cap - len - 1, fp);
                len += r;
                if (len < cap - 1)
                        break;
                cap *= 2;
                char *nb = realloc(buf, cap);
                if (!nb)
                        free(buf);
                buf = nb;
        }
        int failed = ferror(fp);
        fclose(fp);
        if (failed) {
                free(buf);
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO, "%s: read error", path);
        }
        buf[len] = '\0';
        if (strlen(buf) != len) {
                free(buf);
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                     "%s: contains a NUL byte", path);
        }
        *sqlp = buf;
        return KINFER_OK;
}

/* Read and checksum every NNNN_name.sql of @p dir, sorted by version. */
static kinfer_err_t mig_load_dir(const char *dir, mig_file_t **filesp, size_t *np, char *errstr,
                                 size_t errstr_size)
{
        *filesp = NULL;
        *np = 0;
        DIR *d = opendir(dir);
        if (!d)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO,
                                     "migrations directory %s: %s", dir, strerror(errno));
        mig_file_t *files = NULL;
        size_t n = 0, cap = 0;
        kinfer_err_t err = KINFER_OK;
        struct dirent *de;
        while (err == KINFER_OK && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                int32_t version = mig_parse_name(de->d_name);
                if (version < 0) {
                        size_t l = strlen(de->d_name);
                        if (l > 4 && !strcmp(de->d_name + l - 4, ".sql"))
                                kinfer_log(KINFER_LOG_WARN, "MIGRATE",
                                           "ignoring %s/%s: not named NNNN_name.sql", dir,
                                           de->d_name);
                        continue;
                }
                if (strlen(de->d_name) >= sizeof(files[0].name))
                        continue;
                if (n == cap) {
                        cap = cap ? cap * 2 : 16;
                        mig_file_t *nf = realloc(files, cap * sizeof(*files));
                        if (!nf) {
                                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM,
                                                    "out of memory");
                                break;
                        }
                        files = nf;
                }
                mig_file_t *f = &files[n];
                memset(f, 0, sizeof(*f));
                f->version = version;
                snprintf(f->name, sizeof(f->name), "%s", de->d_name);
                char path[4096];
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                err = mig_read_file(path, &f->sql, errstr, errstr_size);
                if (err == KINFER_OK && kinfer_sha256_hex(f->sql, strlen(f->sql), f->sha256))
                        err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__CRYPTO,
                                            "%s: cannot compute sha256 (libcrypto error)", path);
                if (err == KINFER_OK)
                        n++;
        }
        closedir(d);
        if (err) {
                mig_files_free(files, n);
                return err;
        }
        qsort(files, n, sizeof(*files), mig_cmp);
        for (size_t i = 1; i < n; i++)
                if (files[i].version == files[i - 1].version) {
                        err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                            "migrations %s and %s have the same number",
                                            files[i - 1].name, files[i].name);
                        mig_files_free(files, n);
                        return err;
                }
        *filesp = files;
        *np = n;
        return KINFER_OK;
}

static const kinfer_registry_migration_t *mig_find(const kinfer_registry_migration_t *applied,
                                                   size_t n, int32_t version)
{
        for (size_t i = 0; i < n; i++)
                if (applied[i].version == version)
                        return &applied[i];
        return NULL;
}

kinfer_err_t kinfer_migrate_status(kinfer_registry_t *reg, const char *dir,
                                   kinfer_migration_status_t **outp, size_t *np, char *errstr,
                                   size_t errstr_size)
{
        mig_file_t *files;
        size_t nfiles;
        kinfer_registry_migration_t *applied = NULL;
        size_t napplied = 0;
        *outp = NULL;
        *np = 0;
        kinfer_err_t err = mig_load_dir(dir, &files, &nfiles, errstr, errstr_size);
        if (err)
                return err;
        if ((err = kinfer_registry_migrations_applied(reg, &applied, &napplied, errstr,
                                                      errstr_size))) {
                mig_files_free(files, nfiles);
                return err;
        }
        kinfer_migration_status_t *out = calloc(nfiles + napplied + 1, sizeof(*out));
        size_t n = 0;
        if (!out) {
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                goto done;
        }
        for (size_t i = 0; i < nfiles; i++) {
                kinfer_migration_status_t *s = &out[n++];
                const kinfer_registry_migration_t *a =
                    mig_find(applied, napplied, files[i].version);
                s->version = files[i].version;
                snprintf(s->name, sizeof(s->name), "%s", files[i].name);
                memcpy(s->sha256, files[i].sha256, sizeof(s->sha256));
                s->state = !a                                   ? KINFER_MIGRATION_PENDING
                           : strcmp(a->sha256, files[i].sha256) ? KINFER_MIGRATION_CHANGED
                                                                : KINFER_MIGRATION_APPLIED;
                if (a) {
                        memcpy(s->applied_at, a->applied_at, sizeof(s->applied_at));
                        memcpy(s->applied_by, a->applied_by, sizeof(s->applied_by));
                }
        }
        for (size_t i = 0; i < napplied; i++) {
                int has_file = 0;
                for (size_t j = 0; j < nfiles; j++)
                        has_file |= files[j].version == applied[i].version;
                if (has_file)
                        continue;
                kinfer_migration_status_t *s = &out[n++];
                s->version = applied[i].version;
                s->state = KINFER_MIGRATION_NO_FILE;
                memcpy(s->name, applied[i].name, sizeof(s->name));
                memcpy(s->sha256, applied[i].sha256, sizeof(s->sha256));
                memcpy(s->applied_at, applied[i].applied_at, sizeof(s->applied_at));
                memcpy(s->applied_by, applied[i].applied_by, sizeof(s->applied_by));
        }
        /* by version (files are sorted; the file-less ones go in their place) */
        for (size_t i = 1; i < n; i++)
                for (size_t j = i; j > 0 && out[j - 1].version > out[j].version; j--) {
                        kinfer_migration_status_t t = out[j];
                        out[j] = out[j - 1];
                        out[j - 1] = t;
                }
        *outp = out;
        *np = n;
done:
        free(applied);
        mig_files_free(files, nfiles);
        return err;
}

kinfer_err_t kinfer_migrate_run(kinfer_registry_t *reg, const char *dir, int *n_appliedp,
                                char *errstr, size_t errstr_size)
{
        mig_file_t *files;
        size_t nfiles;
        kinfer_registry_migration_t *applied = NULL;
        size_t napplied = 0;
        *n_appliedp = 0;
        kinfer_err_t err = mig_load_dir(dir, &files, &nfiles, errstr, errstr_size);
        if (err)
                return err;
        if (nfiles == 0) {
                mig_files_free(files, nfiles);
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO,
                                     "no NNNN_name.sql files in %s", dir);
        }
        if ((err = kinfer_registry_migrations_bootstrap(reg, errstr, errstr_size)) ||
            (err =
                 kinfer_registry_migrations_applied(reg, &applied, &napplied, errstr, errstr_size)))
                goto done;

        /* Refuse to go on when history was rewritten: check every applied file first. */
        for (size_t i = 0; i < nfiles; i++) {
                const kinfer_registry_migration_t *a =
                    mig_find(applied, napplied, files[i].version);
                if (a && strcmp(a->sha256, files[i].sha256)) {
                        err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE,
                                            "migration %s was changed after it was applied "
                                            "(recorded sha256 %.12s..., file %.12s...); add a new "
                                            "migration instead of editing an applied one",
                                            files[i].name, a->sha256, files[i].sha256);
                        goto done;
                }
                if (a && strcmp(a->name, files[i].name))
                        kinfer_log(KINFER_LOG_WARN, "MIGRATE",
                                   "migration %d was applied as %s and is now named %s",
                                   (int)files[i].version, a->name, files[i].name);
        }
        for (size_t i = 0; i < napplied; i++) {
                int has_file = 0;
                for (size_t j = 0; j < nfiles; j++)
                        has_file |= files[j].version == applied[i].version;
                if (!has_file)
                        kinfer_log(KINFER_LOG_WARN, "MIGRATE",
                                   "migration %s is applied but not in %s (newer kinfer?)",
                                   applied[i].name, dir);
        }

        for (size_t i = 0; i < nfiles; i++) {
                if (mig_find(applied, napplied, files[i].version))
                        continue;
                int did = 0;
                err = kinfer_registry_migration_apply(reg, files[i].version, files[i].name,
                                                      files[i].sha256, files[i].sql, &did, errstr,
                                                      errstr_size);
                if (err)
                        goto done;
                if (did) {
                        kinfer_log(KINFER_LOG_INFO, "MIGRATE", "applied %s sha256=%.12s",
                                   files[i].name, files[i].sha256);
                        (*n_appliedp)++;
                }
        }
done:
        free(applied);
        mig_files_free(files, nfiles);
        return err;
}
