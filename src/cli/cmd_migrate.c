/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_migrate.c -- `kinfer migrate [--pg CONNINFO] [--status] [--dir DIR]`: apply the
 * registry's migrations, or show their state. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli_registry.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "kinfer/registry/migrate.h"

#ifndef KINFER_MIGRATIONS_SOURCE_DIR
#define KINFER_MIGRATIONS_SOURCE_DIR ""
#endif
#ifndef KINFER_MIGRATIONS_INSTALL_DIR
#define KINFER_MIGRATIONS_INSTALL_DIR "/usr/local/share/kinfer/migrations"
#endif

static void migrate_usage(FILE *fp)
{
        fprintf(fp,
                "Usage: kinfer migrate [--pg CONNINFO] [--status] [--dir DIR]\n\n"
                "Apply the pending PostgreSQL migrations (schema kinfer), each in its own\n"
                "transaction under an advisory lock, recorded with its sha256 in\n"
                "kinfer.schema_migrations. Run it as the role that owns the schema.\n"
                "A migration changed after it was applied is an error and nothing is applied.\n\n"
                "  --pg CONNINFO   libpq connection string or URI (default: PG* environment)\n"
                "  --status        show every migration's state; apply nothing\n"
                "                  (exit 1 when some are pending or changed)\n"
                "  --dir DIR       the migrations directory (default: $KINFER_MIGRATIONS_DIR,\n"
                "                  else ./migrations, else the source tree's or the installed\n"
                "                  share/kinfer/migrations)\n"
                "  -h, --help      this help\n");
}

static int is_dir(const char *path)
{
        struct stat st;
        return path && *path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* --dir, $KINFER_MIGRATIONS_DIR, ./migrations, the build's source tree, the install prefix. */
static const char *migrate_find_dir(const char *opt)
{
        if (opt)
                return opt;
        const char *env = getenv("KINFER_MIGRATIONS_DIR");
        if (env && *env)
                return env;
        if (is_dir("migrations"))
                return "migrations";
        if (is_dir(KINFER_MIGRATIONS_SOURCE_DIR))
                return KINFER_MIGRATIONS_SOURCE_DIR;
        return KINFER_MIGRATIONS_INSTALL_DIR;
}

int kinfer_cmd_migrate(int argc, char **argv)
{
        static const struct option opts[] = {{"pg", required_argument, NULL, 'p'},
                                             {"status", no_argument, NULL, 's'},
                                             {"dir", required_argument, NULL, 'd'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
        const char *conninfo = NULL, *dir = NULL;
        int status = 0, c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case 'p':
                        conninfo = optarg;
                        break;
                case 's':
                        status = 1;
                        break;
                case 'd':
                        dir = optarg;
                        break;
                case 'h':
                        migrate_usage(stdout);
                        return 0;
                default:
                        migrate_usage(stderr);
                        return 2;
                }
        }
        if (optind != argc) {
                cli_error("migrate", "unexpected argument \"%s\"", argv[optind]);
                return 2;
        }
        dir = migrate_find_dir(dir);
        kinfer_registry_t *reg = cli_registry_connect("migrate", conninfo);
        if (!reg)
                return 1;
        char errstr[512];
        int rc = 0;
        if (status) {
                kinfer_migration_status_t *st;
                size_t n;
                if (kinfer_migrate_status(reg, dir, &st, &n, errstr, sizeof(errstr))) {
                        cli_error("migrate", "%s", errstr);
                        kinfer_registry_destroy(reg);
                        return 1;
                }
                printf("%-8s %-40s %-8s %-21s %s\n", "version", "file", "state", "applied at",
                       "applied by");
                for (size_t i = 0; i < n; i++) {
                        printf("%-8d %-40s %-8s %-21s %s\n", (int)st[i].version, st[i].name,
                               kinfer_migration_state2str(st[i].state),
                               st[i].applied_at[0] ? st[i].applied_at : "-",
                               st[i].applied_by[0] ? st[i].applied_by : "-");
                        if (st[i].state == KINFER_MIGRATION_PENDING ||
                            st[i].state == KINFER_MIGRATION_CHANGED)
                                rc = 1;
                }
                free(st);
        } else {
                int n_applied = 0;
                if (kinfer_migrate_run(reg, dir, &n_applied, errstr, sizeof(errstr))) {
                        cli_error("migrate", "%s", errstr);
                        rc = 1;
                } else if (n_applied) {
                        printf("applied %d migration%s from %s\n", n_applied,
                               n_applied == 1 ? "" : "s", dir);
                } else {
                        printf("up to date (%s)\n", dir);
                }
        }
        kinfer_registry_destroy(reg);
        return rc;
}
