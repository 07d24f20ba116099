/* SPDX-License-Identifier: Apache-2.0 */
/* main.c -- `kinfer <command> [args]`: dispatch to src/cli/cmd_<name>.c. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

#ifndef KINFER_VERSION
#define KINFER_VERSION "0.1.0"
#endif

static const struct kinfer_cmd {
        const char *name;
        int (*fn)(int argc, char **argv);
        const char *summary;
} cmds[] = {
    {"train", kinfer_cmd_train, "train a model from a TSV or fastText file"},
    {"eval", kinfer_cmd_eval, "accuracy, macro-F1, per-class scores and confusion matrix"},
    {"test", kinfer_cmd_test, "fastText's test: N, P@K and R@K of a model on labelled data"},
    {"predict", kinfer_cmd_predict, "classify lines from a file or stdin"},
    {"bench", kinfer_cmd_bench, "measure the runtime (records/s by batch size and threads)"},
    {"inspect", kinfer_cmd_inspect, "show a model file's metadata, shapes and lineage"},
    /* compression */
    {"quantize", kinfer_cmd_quantize, "int8 weights with per-row scales (lineage: quantized_from)"},
    {"prune", kinfer_cmd_prune, "drop embedding rows, sparsify dense layers, optionally retrain"},
    {"distill", kinfer_cmd_distill, "train a student model on a teacher's soft targets"},
    {"import", kinfer_cmd_import, "convert a fastText .bin/.ftz model (lineage: imported_from)"},
    /* streaming worker commands */
    {"dev-broker", kinfer_cmd_dev_broker, "run a Kafka-protocol broker on loopback (tests, demo)"},
    {"serve", kinfer_cmd_serve, "classify records from Kafka (the streaming worker)"},
    {"produce", kinfer_cmd_produce, "produce lines of a file as input records (tests, demo)"},
    /* registry commands */
    {"migrate", kinfer_cmd_migrate, "apply the PostgreSQL registry migrations (or --status)"},
    {"model", kinfer_cmd_model, "registry: model push, ls, show, lineage, pull"},
    {"activate", kinfer_cmd_activate, "make a registered model version a deployment's active model"},
    {"rollback", kinfer_cmd_rollback, "go back to a deployment's previous model"},
    {"canary", kinfer_cmd_canary, "route a share of a deployment's keys to a candidate model"},
    {"shadow", kinfer_cmd_shadow, "score every record with a candidate too, publish the active's"},
    {"promote", kinfer_cmd_promote, "make a deployment's candidate (canary, shadow) its active model"},
    {"abort-canary", kinfer_cmd_abort_canary, "end a deployment's candidate (canary or shadow)"},
    {"end-shadow", kinfer_cmd_end_shadow, "end a deployment's shadow candidate"},
    {"deployment", kinfer_cmd_deployment, "create or list deployments (active model, workers)"},
};

static void usage(FILE *fp)
{
        fprintf(fp, "Usage: kinfer <command> [options]\n"
                    "       kinfer help <command>\n\n"
                    "Classify text records from Kafka with models kept in PostgreSQL.\n\n"
                    "Commands:\n");
        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
                fprintf(fp, "  %-12s %s\n", cmds[i].name, cmds[i].summary);
        fprintf(fp, "\nOptions:\n"
                    "  -h, --help     this text\n"
                    "  -V, --version  print the version\n\n"
                    "Run `kinfer help <command>` or `kinfer <command> --help` for a command's options.\n");
}

static const struct kinfer_cmd *find_cmd(const char *name)
{
        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
                if (!strcmp(name, cmds[i].name))
                        return &cmds[i];
        return NULL;
}

static int unknown_cmd(const char *name)
{
        fprintf(stderr, "kinfer: unknown command \"%s\" (see kinfer --help)\n\n", name);
        usage(stderr);
        return 2;
}

int main(int argc, char **argv)
{
        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
            (!strcmp(argv[1], "help") && argc == 2)) {
                usage(stdout);
                return 0;
        }
        if (!strcmp(argv[1], "help")) { /* kinfer help CMD = kinfer CMD --help */
                const struct kinfer_cmd *c = find_cmd(argv[2]);
                if (!c)
                        return unknown_cmd(argv[2]);
                char prog[64];
                snprintf(prog, sizeof(prog), "kinfer %s", c->name);
                char *hargv[] = {prog, (char *)"--help", NULL};
                return c->fn(2, hargv);
        }
        if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V") ||
            !strcmp(argv[1], "version")) {
                printf("kinfer %s\n", KINFER_VERSION);
                return 0;
        }
        const struct kinfer_cmd *c = find_cmd(argv[1]);
        if (!c)
                return unknown_cmd(argv[1]);
        /* getopt prefixes its messages with argv[0]: "kinfer train: unrecognized option ...",
         * like every other error of a command */
        char prog[64];
        snprintf(prog, sizeof(prog), "kinfer %s", c->name);
        argv[1] = prog;
        return c->fn(argc - 1, argv + 1);
}
