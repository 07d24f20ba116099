/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_deploy.c -- `kinfer activate`, `kinfer rollback` and `kinfer deployment create`: the
 * CLI face of kinfer.activate(), kinfer.rollback() and kinfer.deployment_create(). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_registry.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "kinfer/registry/registry.h"

struct deploy_opts {
        const char *conninfo;
        const char *reason;
        const char *input_topic;
        const char *output_topic;
};

/* @returns -1 to go on, else the exit code (help / usage error). */
static int deploy_parse(int argc, char **argv, struct deploy_opts *o, void (*usage)(FILE *))
{
        static const struct option opts[] = {{"pg", required_argument, NULL, 'p'},
                                             {"reason", required_argument, NULL, 'r'},
                                             {"input-topic", required_argument, NULL, 'i'},
                                             {"output-topic", required_argument, NULL, 'o'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "hr:", opts, NULL)) != -1) {
                switch (c) {
                case 'p':
                        o->conninfo = optarg;
                        break;
                case 'r':
                        o->reason = optarg;
                        break;
                case 'i':
                        o->input_topic = optarg;
                        break;
                case 'o':
                        o->output_topic = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        return -1;
}

static void activate_usage(FILE *fp)
{
        fprintf(fp, "Usage: kinfer activate DEPLOYMENT NAME VERSION [--reason R] [--pg CONNINFO]\n"
                    "       kinfer activate DEPLOYMENT NAME:VERSION ...\n\n"
                    "Make model NAME:VERSION the active model of DEPLOYMENT (created if missing):\n"
                    "SELECT kinfer.activate(DEPLOYMENT, NAME, VERSION, R). Every worker of the\n"
                    "deployment swaps to it between two batches. The activation is recorded\n"
                    "(who, when, from, to, reason) in kinfer.activations.\n\n"
                    "  -r, --reason R  why (kept in the history)\n"
                    "  --pg CONNINFO   libpq connection string or URI (default: PG* environment)\n"
                    "  -h, --help      this help\n");
}

int kinfer_cmd_activate(int argc, char **argv)
{
        struct deploy_opts o = {0};
        int rc = deploy_parse(argc, argv, &o, activate_usage);
        if (rc >= 0)
                return rc;
        int nargs = argc - optind;
        char **args = argv + optind;
        char name[129];
        int32_t version;
        if (nargs == 2) {
                if (cli_parse_model_ref("activate", args[1], 0, name, sizeof(name), &version))
                        return 2;
        } else if (nargs == 3) {
                long v;
                snprintf(name, sizeof(name), "%s", args[1]);
                if (cli_parse_int("activate", "VERSION", args[2], 1, 0x7fffffff, &v))
                        return 2;
                version = (int32_t)v;
        } else {
                activate_usage(stderr);
                return 2;
        }
        kinfer_registry_t *reg = cli_registry_connect("activate", o.conninfo);
        if (!reg)
                return 1;
        char summary[512], errstr[512];
        if (kinfer_registry_activate(reg, args[0], name, version, o.reason, summary,
                                     sizeof(summary), errstr, sizeof(errstr))) {
                cli_error("activate", "deployment %s, model %s:%d: %s", args[0], name, (int)version,
                          errstr);
                rc = 1;
        } else {
                printf("%s\n", summary);
                rc = 0;
        }
        kinfer_registry_destroy(reg);
        return rc;
}

static void rollback_usage(FILE *fp)
{
        fprintf(fp, "Usage: kinfer rollback DEPLOYMENT [--reason R] [--pg CONNINFO]\n\n"
                    "Swap DEPLOYMENT's active and previous models: SELECT kinfer.rollback(...).\n"
                    "A second rollback undoes the first. Recorded in kinfer.activations.\n\n"
                    "  -r, --reason R  why (kept in the history)\n"
                    "  --pg CONNINFO   libpq connection string or URI (default: PG* environment)\n"
                    "  -h, --help      this help\n");
}

int kinfer_cmd_rollback(int argc, char **argv)
{
        struct deploy_opts o = {0};
        int rc = deploy_parse(argc, argv, &o, rollback_usage);
        if (rc >= 0)
                return rc;
        if (argc - optind != 1) {
                rollback_usage(stderr);
                return 2;
        }
        const char *deployment = argv[optind];
        kinfer_registry_t *reg = cli_registry_connect("rollback", o.conninfo);
        if (!reg)
                return 1;
        char summary[512], errstr[512];
        if (kinfer_registry_rollback(reg, deployment, o.reason, summary, sizeof(summary), errstr,
                                     sizeof(errstr))) {
                /* the registry's own refusals name the deployment already */
                char named[300];
                snprintf(named, sizeof(named), "deployment %s ", deployment);
                if (strstr(errstr, named))
                        cli_error("rollback", "%s", errstr);
                else
                        cli_error("rollback", "deployment %s: %s", deployment, errstr);
                rc = 1;
        } else {
                printf("%s\n", summary);
                rc = 0;
        }
        kinfer_registry_destroy(reg);
        return rc;
}

/* ---- canary and shadow (migration 0005) ---------------------------------------------------- */

static void canary_usage(FILE *fp)
{
        fprintf(fp, "Usage: kinfer canary DEPLOYMENT NAME VERSION PERCENT [--reason R] [--pg CONNINFO]\n"
                    "       kinfer canary DEPLOYMENT NAME:VERSION PERCENT ...\n\n"
                    "Route PERCENT (0 < PERCENT < 100, at most two decimals) of DEPLOYMENT's records\n"
                    "to the candidate NAME:VERSION: SELECT kinfer.canary(DEPLOYMENT, NAME, VERSION,\n"
                    "PERCENT, R). A record goes to the candidate when a hash of its key is below the\n"
                    "share, so one key always gets one version (docs/registry.md). Workers follow\n"
                    "between two batches; every result names the version that produced it. Running\n"
                    "it again changes the share. End it with `kinfer promote` or `kinfer\n"
                    "abort-canary`. Recorded in kinfer.activations.\n\n"
                    "  -r, --reason R  why (kept in the history)\n"
                    "  --pg CONNINFO   libpq connection string or URI (default: PG* environment)\n"
                    "  -h, --help      this help\n");
}

static void shadow_usage(FILE *fp)
{
        fprintf(fp, "Usage: kinfer shadow DEPLOYMENT NAME VERSION [--reason R] [--pg CONNINFO]\n"
                    "       kinfer shadow DEPLOYMENT NAME:VERSION ...\n\n"
                    "Score every record of DEPLOYMENT with NAME:VERSION beside the active model;\n"
                    "only the active model's results are published: SELECT kinfer.shadow(...).\n"
                    "Workers write the comparison per metrics window to kinfer.shadow_windows\n"
                    "(see `kinfer deployment diff`). End it with `kinfer end-shadow`, `kinfer\n"
                    "abort-canary` or `kinfer promote`. Recorded in kinfer.activations.\n\n"
                    "  -r, --reason R  why (kept in the history)\n"
                    "  --pg CONNINFO   libpq connection string or URI (default: PG* environment)\n"
                    "  -h, --help      this help\n");
}

/* kinfer canary (@p percent_arg 1) and kinfer shadow (0). */
static int candidate_cmd(const char *cmd, int percent_arg, int argc, char **argv,
                         void (*usage)(FILE *))
{
        struct deploy_opts o = {0};
        int rc = deploy_parse(argc, argv, &o, usage);
        if (rc >= 0)
                return rc;
        int nargs = argc - optind - percent_arg;
        char **args = argv + optind;
        char name[129];
        int32_t version;
        if (nargs == 2) {
                if (cli_parse_model_ref(cmd, args[1], 0, name, sizeof(name), &version))
                        return 2;
        } else if (nargs == 3) {
                long v;
                snprintf(name, sizeof(name), "%s", args[1]);
                if (cli_parse_int(cmd, "VERSION", args[2], 1, 0x7fffffff, &v))
                        return 2;
                version = (int32_t)v;
        } else {
                usage(stderr);
                return 2;
        }
        const char *percent = percent_arg ? args[nargs] : NULL;
        if (percent) {
                char *end;
                double p = strtod(percent, &end);
                if (end == percent || *end || !(p > 0 && p < 100)) {
                        cli_error(cmd, "PERCENT \"%s\" is not a number in (0, 100)", percent);
                        return 2;
                }
        }
        kinfer_registry_t *reg = cli_registry_connect(cmd, o.conninfo);
        if (!reg)
                return 1;
        char summary[512], errstr[512];
        kinfer_err_t err =
            percent ? kinfer_registry_canary(reg, args[0], name, version, percent, o.reason, summary,
                                             sizeof(summary), errstr, sizeof(errstr))
                    : kinfer_registry_shadow(reg, args[0], name, version, o.reason, summary,
                                             sizeof(summary), errstr, sizeof(errstr));
        if (err) {
                cli_error(cmd, "deployment %s, model %s:%d: %s", args[0], name, (int)version, errstr);
                rc = 1;
        } else {
                printf("%s\n", summary);
                rc = 0;
        }
        kinfer_registry_destroy(reg);
        return rc;
}

int kinfer_cmd_canary(int argc, char **argv)
{
        return candidate_cmd("canary", 1, argc, argv, canary_usage);
}

int kinfer_cmd_shadow(int argc, char **argv)
{
        return candidate_cmd("shadow", 0, argc, argv, shadow_usage);
}

static void promote_usage(FILE *fp)
{
        fprintf(fp, "Usage: kinfer promote DEPLOYMENT [--reason R] [--pg CONNINFO]\n\n"
                    "Make DEPLOYMENT's candidate (canary or shadow) its active model: SELECT\n"
                    "kinfer.promote(...). It is an activation: the active model becomes the\n"
                    "previous one, so `kinfer rollback` goes back to it. Recorded in\n"
                    "kinfer.activations.\n\n"
                    "  -r, --reason R  why (kept in the history)\n"
                    "  --pg CONNINFO   libpq connection string or URI (default: PG* environment)\n"
                    "  -h, --help      this help\n");
}

static void abort_usage(FILE *fp)
{
        fprintf(fp, "Usage: kinfer abort-canary DEPLOYMENT [--reason R] [--pg CONNINFO]\n\n"
                    "End DEPLOYMENT's candidate, canary or shadow: the active model serves every\n"
                    "record again. SELECT kinfer.abort_canary(...). Recorded in kinfer.activations.\n\n"
                    "  -r, --reason R  why (kept in the history)\n"
                    "  --pg CONNINFO   libpq connection string or URI (default: PG* environment)\n"
                    "  -h, --help      this help\n");
}

static void end_shadow_usage(FILE *fp)
{
        fprintf(fp, "Usage: kinfer end-shadow DEPLOYMENT [--reason R] [--pg CONNINFO]\n\n"
                    "End DEPLOYMENT's shadow (an error when its candidate is a canary): SELECT\n"
                    "kinfer.end_shadow(...). Recorded in kinfer.activations.\n\n"
                    "  -r, --reason R  why (kept in the history)\n"
                    "  --pg CONNINFO   libpq connection string or URI (default: PG* environment)\n"
                    "  -h, --help      this help\n");
}

static int rollout_end_cmd(const char *cmd, const char *action, int argc, char **argv,
                           void (*usage)(FILE *))
{
        struct deploy_opts o = {0};
        int rc = deploy_parse(argc, argv, &o, usage);
        if (rc >= 0)
                return rc;
        if (argc - optind != 1) {
                usage(stderr);
                return 2;
        }
        const char *deployment = argv[optind];
        kinfer_registry_t *reg = cli_registry_connect(cmd, o.conninfo);
        if (!reg)
                return 1;
        char summary[512], errstr[512];
        if (kinfer_registry_rollout_end(reg, deployment, action, o.reason, summary,
                                        sizeof(summary), errstr, sizeof(errstr))) {
                char named[300];
                snprintf(named, sizeof(named), "deployment %s ", deployment);
                if (strstr(errstr, named))
                        cli_error(cmd, "%s", errstr);
                else
                        cli_error(cmd, "deployment %s: %s", deployment, errstr);
                rc = 1;
        } else {
                printf("%s\n", summary);
                rc = 0;
        }
        kinfer_registry_destroy(reg);
        return rc;
}

int kinfer_cmd_promote(int argc, char **argv)
{
        return rollout_end_cmd("promote", "promote", argc, argv, promote_usage);
}

int kinfer_cmd_abort_canary(int argc, char **argv)
{
        return rollout_end_cmd("abort-canary", "abort", argc, argv, abort_usage);
}

int kinfer_cmd_end_shadow(int argc, char **argv)
{
        return rollout_end_cmd("end-shadow", "end_shadow", argc, argv, end_shadow_usage);
}

static void deployment_usage(FILE *fp)
{
        fprintf(fp,
                "Usage: kinfer deployment create NAME [--input-topic T] [--output-topic T]\n"
                "                                 [--pg CONNINFO]\n"
                "       kinfer deployment ls [--pg CONNINFO]\n"
                "       kinfer deployment drift DEPLOYMENT [--since S] [--bucket B] (see drift --help)\n"
                "       kinfer deployment diff DEPLOYMENT [--since S] [--top N] (see diff --help)\n\n"
                "create: create a deployment (or set its topics):\n"
                "        SELECT kinfer.deployment_create(...). `kinfer activate` also creates a\n"
                "        missing deployment.\n"
                "ls:     every deployment with its active, previous and candidate model (canary\n"
                "        with its share, or shadow), and the workers heard of in the last 30 s\n"
                "        with the versions they serve.\n\n"
                "  --pg CONNINFO   libpq connection string or URI (default: PG* environment)\n"
                "  -h, --help      this help\n");
}

int kinfer_cmd_deployment(int argc, char **argv)
{
        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                deployment_usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? 2 : 0;
        }
        if (!strcmp(argv[1], "drift"))
                return cli_deployment_drift(argc - 1, argv + 1);
        if (!strcmp(argv[1], "diff"))
                return cli_deployment_diff(argc - 1, argv + 1);
        int ls = !strcmp(argv[1], "ls");
        if (!ls && strcmp(argv[1], "create")) {
                cli_error("deployment", "unknown command \"%s\" (create, ls, drift, diff)", argv[1]);
                return 2;
        }
        struct deploy_opts o = {0};
        int rc = deploy_parse(argc - 1, argv + 1, &o, deployment_usage);
        if (rc >= 0)
                return rc;
        if (ls) {
                if (argc - 1 - optind != 0) {
                        deployment_usage(stderr);
                        return 2;
                }
                kinfer_registry_t *reg = cli_registry_connect("deployment ls", o.conninfo);
                if (!reg)
                        return 1;
                kinfer_registry_deployment_t *deps;
                size_t n;
                char errstr[512];
                if (kinfer_registry_deployment_ls(reg, &deps, &n, errstr, sizeof(errstr))) {
                        cli_error("deployment ls", "%s", errstr);
                        kinfer_registry_destroy(reg);
                        return 1;
                }
                printf("%-20s %-24s %-24s %-32s %7s  %-24s %s\n", "DEPLOYMENT", "ACTIVE",
                       "PREVIOUS", "CANDIDATE", "WORKERS", "SERVING", "UPDATED");
                for (size_t i = 0; i < n; i++)
                        printf("%-20s %-24s %-24s %-32s %7d  %-24s %s by %s\n", deps[i].name,
                               deps[i].active[0] ? deps[i].active : "-",
                               deps[i].previous[0] ? deps[i].previous : "-",
                               deps[i].candidate[0] ? deps[i].candidate : "-", (int)deps[i].workers,
                               deps[i].serving[0] ? deps[i].serving : "-", deps[i].updated_at,
                               deps[i].updated_by);
                free(deps);
                kinfer_registry_destroy(reg);
                return 0;
        }
        if (argc - 1 - optind != 1) {
                deployment_usage(stderr);
                return 2;
        }
        const char *name = argv[1 + optind];
        kinfer_registry_t *reg = cli_registry_connect("deployment create", o.conninfo);
        if (!reg)
                return 1;
        char errstr[512];
        if (kinfer_registry_deployment_create(reg, name, o.input_topic, o.output_topic, errstr,
                                              sizeof(errstr))) {
                cli_error("deployment create", "deployment %s: %s", name, errstr);
                rc = 1;
        } else {
                printf("deployment %s\n", name);
                rc = 0;
        }
        kinfer_registry_destroy(reg);
        return rc;
}
