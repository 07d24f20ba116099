/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_drift.c -- `kinfer deployment drift DEPLOYMENT`: the drift trend of a deployment from
 * kinfer.metrics_windows (migration 0006): per minute (or window, hour, day) and model version,
 * the records and the PSI of the top-1 labels and scores against the model's reference. */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_registry.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "kinfer/registry/registry.h"

static void drift_usage(FILE *fp)
{
        fprintf(fp,
                "Usage: kinfer deployment drift DEPLOYMENT [--since S] [--bucket B] [--pg CONNINFO]\n\n"
                "The drift trend of DEPLOYMENT: per time bucket and model version, the metrics\n"
                "windows, their records, and the PSI (population stability index) of the live\n"
                "top-1 labels and top-1 scores against the reference the model carries from\n"
                "training (docs/operations.md, Drift). PSI: the records-weighted mean over the\n"
                "bucket's windows that had one (at least drift.min.records records), and the max;\n"
                "'-' when none had one (no reference, too few records). Read < 0.1 as no change,\n"
                "0.1 to 0.25 as moderate, > 0.25 as major.\n\n"
                "  --since S       windows that ended in the last S (a PostgreSQL interval: '1 hour',\n"
                "                  '30 min', '2 days'; default 1 hour) or since S when S is a\n"
                "                  timestamp (2026-12-02T17:00:00Z)\n"
                "  --bucket B      minute (default), hour, day, or window (one row per window)\n"
                "  --pg CONNINFO   libpq connection string or URI (default: PG* environment)\n"
                "  -h, --help      this help\n");
}

static void psi_cell(char *buf, size_t size, double mean, double max)
{
        if (mean < 0)
                snprintf(buf, size, "-");
        else
                snprintf(buf, size, "%.4f (max %.4f)", mean, max);
}

int cli_deployment_drift(int argc, char **argv)
{
        static const struct option opts[] = {{"pg", required_argument, NULL, 'p'},
                                             {"since", required_argument, NULL, 's'},
                                             {"bucket", required_argument, NULL, 'b'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
        const char *conninfo = NULL, *since = "1 hour", *bucket = "minute";
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case 'p': conninfo = optarg; break;
                case 's': since = optarg; break;
                case 'b': bucket = optarg; break;
                case 'h': drift_usage(stdout); return 0;
                default: drift_usage(stderr); return 2;
                }
        }
        if (argc - optind != 1) {
                drift_usage(stderr);
                return 2;
        }
        if (strcmp(bucket, "minute") && strcmp(bucket, "hour") && strcmp(bucket, "day") &&
            strcmp(bucket, "window")) {
                cli_error("deployment drift", "--bucket %s: expected minute, hour, day or window",
                          bucket);
                return 2;
        }
        /* a timestamp starts with a date (YYYY-MM-DD); anything else is an interval */
        int is_time = strlen(since) >= 10 && isdigit((unsigned char)since[0]) &&
                      since[4] == '-' && since[7] == '-';
        const char *deployment = argv[optind];
        kinfer_registry_t *reg = cli_registry_connect("deployment drift", conninfo);
        if (!reg)
                return 1;
        kinfer_registry_drift_row_t *rows;
        size_t n;
        char errstr[512];
        if (kinfer_registry_drift_trend(reg, deployment, is_time ? NULL : since,
                                        is_time ? since : NULL, bucket, &rows, &n, errstr,
                                        sizeof(errstr))) {
                cli_error("deployment drift", "deployment %s: %s", deployment, errstr);
                kinfer_registry_destroy(reg);
                return 1;
        }
        printf("%-20s %-24s %7s %9s  %-24s %s\n", !strcmp(bucket, "window") ? "WINDOW" : "BUCKET",
               "MODEL", "WINDOWS", "RECORDS", "PSI_LABELS", "PSI_CONFIDENCE");
        for (size_t i = 0; i < n; i++) {
                char pl[64], pc[64];
                psi_cell(pl, sizeof(pl), rows[i].psi_labels, rows[i].psi_labels_max);
                psi_cell(pc, sizeof(pc), rows[i].psi_confidence, rows[i].psi_confidence_max);
                printf("%-20s %-24s %7lld %9lld  %-24s %s\n", rows[i].bucket, rows[i].model,
                       (long long)rows[i].windows, (long long)rows[i].records, pl, pc);
        }
        free(rows);
        kinfer_registry_destroy(reg);
        return 0;
}
