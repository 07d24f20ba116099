/* SPDX-License-Identifier: Apache-2.0 */
/* migrate.h -- apply migrations/NNNN_name.sql in order: each file in its own transaction
 * under an advisory lock, recorded in kinfer.schema_migrations with its sha256. A file that
 * was changed after it was applied is an error naming the file, and nothing is applied. */
#ifndef KINFER_MIGRATE_H
#define KINFER_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/err.h"
#include "kinfer/registry/registry.h"

typedef enum {
        KINFER_MIGRATION_PENDING = 0, /* a file not yet applied */
        KINFER_MIGRATION_APPLIED,     /* applied, checksum matches the file */
        KINFER_MIGRATION_CHANGED,     /* applied, but the file changed since: an error */
        KINFER_MIGRATION_NO_FILE,     /* applied, but no such file in the directory */
} kinfer_migration_state_t;

typedef struct kinfer_migration_status_s {
        int32_t version;
        char name[256];
        kinfer_migration_state_t state;
        char sha256[65];     /* of the file (or as recorded when there is no file) */
        char applied_at[40]; /* "" unless applied */
        char applied_by[64];
} kinfer_migration_status_t;

/** @returns "pending", "applied", "CHANGED", "no file". */
const char *kinfer_migration_state2str(kinfer_migration_state_t state);

/**
 * @brief The state of every migration in @p dir and in the database, by version.
 * *@p outp is malloc'd (free() it). Changes nothing in the database.
 */
kinfer_err_t kinfer_migrate_status(kinfer_registry_t *reg, const char *dir,
                                   kinfer_migration_status_t **outp, size_t *np, char *errstr,
                                   size_t errstr_size);

/**
 * @brief Apply the pending migrations of @p dir in version order.
 * @param n_appliedp  receives how many files were applied (0 when up to date)
 * @returns KINFER_OK; KINFER_ERR__STATE when an applied file changed (errstr names it);
 *          KINFER_ERR__DB when a file fails (errstr names it; that file is rolled back,
 *          the ones before it stay applied); KINFER_ERR__IO for an unreadable directory.
 */
kinfer_err_t kinfer_migrate_run(kinfer_registry_t *reg, const char *dir, int *n_appliedp,
                                char *errstr, size_t errstr_size);

#endif
