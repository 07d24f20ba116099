/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_diff.c -- `kinfer deployment diff DEPLOYMENT`: how a shadow candidate compared with the
 * active model, from kinfer.shadow_windows (migration 0005): agreement, mean score difference,
 * classification time of each, and the most frequent disagreements. */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_registry.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "kinfer/registry/registry.h"

static void diff_usage(FILE *fp)
{
        fprintf(fp,
                "Usage: kinfer deployment diff DEPLOYMENT [--since S] [--top N] [--pg CONNINFO]\n\n"
                "How DEPLOYMENT's shadow candidates compared with the active model on the same\n"
                "records (kinfer.shadow_windows, written by the workers per metrics window while\n"
                "`kinfer shadow` runs): per (active, candidate), the windows and records, the\n"
                "agreement (same top-1 label), the mean top-1 score difference (candidate minus\n"
                "active) and each model's classification time per record; then the N most\n"
                "frequent disagreements (active label -> candidate label).\n\n"
                "  --since S       windows that ended in the last S (a PostgreSQL interval: '1 hour',\n"
                "                  '30 min', '2 days'; default 1 hour) or since S when S is a\n"
                "                  timestamp (2026-12-02T17:00:00Z)\n"
                "  --top N         disagreements to show (default 10, at most 1000)\n"
                "  --pg CONNINFO   libpq connection string or URI (default: PG* environment)\n"
                "  -h, --help      this help\n");
}

int cli_deployment_diff(int argc, char **argv)
{
        static const struct option opts[] = {{"pg", required_argument, NULL, 'p'},
                                             {"since", required_argument, NULL, 's'},
                                             {"top", required_argument, NULL, 't'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
        const char *conninfo = NULL, *since = "1 hour";
        long top = 10;
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
                switch (c) {
                case 'p': conninfo = optarg; break;
                case 's': since = optarg; break;
                case 't':
                        if (cli_parse_int("deployment diff", "--top", optarg, 0, 1000, &top))
                                return 2;
                        break;
                case 'h': diff_usage(stdout); return 0;
                default: diff_usage(stderr); return 2;
                }
        }
        if (argc - optind != 1) {
                diff_usage(stderr);
                return 2;
        }
        int is_time = strlen(since) >= 10 && isdigit((unsigned char)since[0]) &&
                      since[4] == '-' && since[7] == '-';
        const char *deployment = argv[optind];
        kinfer_registry_t *reg = cli_registry_connect("deployment diff", conninfo);
        if (!reg)
                return 1;
        kinfer_registry_shadow_diff_t *d;
        kinfer_registry_shadow_pair_t *pairs;
        size_t nd, np;
        char errstr[512];
        if (kinfer_registry_shadow_diff(reg, deployment, is_time ? NULL : since,
                                        is_time ? since : NULL, (int32_t)top, &d, &nd, &pairs, &np,
                                        errstr, sizeof(errstr))) {
                cli_error("deployment diff", "deployment %s: %s", deployment, errstr);
                kinfer_registry_destroy(reg);
                return 1;
        }
        printf("%-24s %-24s %7s %9s %9s %10s %10s %10s\n", "ACTIVE", "CANDIDATE", "WINDOWS",
               "RECORDS", "AGREEMENT", "SCORE_DIFF", "ACTIVE_US", "CAND_US");
        for (size_t i = 0; i < nd; i++)
                printf("%-24s %-24s %7lld %9lld %9.4f %+10.4f %10.2f %10.2f\n", d[i].active,
                       d[i].candidate, (long long)d[i].windows, (long long)d[i].records,
                       d[i].records ? (double)d[i].agree / (double)d[i].records : 0.0,
                       d[i].mean_score_diff, d[i].active_classify_us, d[i].candidate_classify_us);
        if (np) {
                printf("\n%-24s %-32s %-32s %9s\n", "CANDIDATE", "ACTIVE_LABEL", "CANDIDATE_LABEL",
                       "RECORDS");
                for (size_t i = 0; i < np; i++)
                        printf("%-24s %-32s %-32s %9lld\n", pairs[i].candidate,
                               pairs[i].active_label, pairs[i].candidate_label,
                               (long long)pairs[i].count);
        }
        free(d);
        free(pairs);
        kinfer_registry_destroy(reg);
        return 0;
}
