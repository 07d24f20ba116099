/* SPDX-License-Identifier: Apache-2.0 */
/* main.c -- `kinfer <command> [args]`: dispatch to src/cli/cmd_<name>.c. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

static const struct kinfer_cmd {
        const char *name;
        int (*fn)(int argc, char **argv);
        const char *summary;
} cmds[] = {
    {"train", kinfer_cmd_train, "train a model from a TSV or fastText file"},
    {"eval", kinfer_cmd_eval, "accuracy, macro-F1, per-class scores and confusion matrix"},
    {"predict", kinfer_cmd_predict, "classify lines from a file or stdin"},
    {"bench", kinfer_cmd_bench, "measure the runtime (records/s by batch size and threads)"},
    {"inspect", kinfer_cmd_inspect, "show a model file's metadata, shapes and lineage"},
    /* compression */
    {"quantize", kinfer_cmd_quantize, "int8 weights with per-row scales (lineage: quantized_from)"},
    {"prune", kinfer_cmd_prune, "drop embedding rows, sparsify dense layers, optionally retrain"},
    {"distill", kinfer_cmd_distill, "train a student model on a teacher's soft targets"},
    /* streaming worker commands */
    {"dev-broker", kinfer_cmd_dev_broker, "run a Kafka-protocol broker on loopback (tests, demo)"},
    {"serve", kinfer_cmd_serve, "classify records from Kafka (the streaming worker)"},
    {"produce", kinfer_cmd_produce, "produce lines of a file as input records (tests, demo)"},
    /* registry commands */
    {"migrate", kinfer_cmd_migrate, "apply the PostgreSQL registry migrations (or --status)"},
    {"model", kinfer_cmd_model, "registry: model push, ls, show, lineage, pull"},
    {"activate", kinfer_cmd_activate, "make a registered model version a deployment's active model"},
    {"rollback", kinfer_cmd_rollback, "go back to a deployment's previous model"},
    {"deployment", kinfer_cmd_deployment, "create or list deployments (active model, workers)"},
};

static void usage(FILE *fp)
{
        fprintf(fp, "Usage: kinfer <command> [options]\n\n"
                    "Classify text records from Kafka with models kept in PostgreSQL.\n\n"
                    "Commands:\n");
        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
                fprintf(fp, "  %-12s %s\n", cmds[i].name, cmds[i].summary);
        fprintf(fp, "\nRun `kinfer <command> --help` for a command's options.\n");
}

int main(int argc, char **argv)
{
        if (argc < 2) {
                usage(stderr);
                return 2;
        }
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
                usage(stdout);
                return 0;
        }
        if (!strcmp(argv[1], "--version")) {
                printf("kinfer 0.1.0\n");
                return 0;
        }
        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
                if (!strcmp(argv[1], cmds[i].name))
                        return cmds[i].fn(argc - 1, argv + 1);
        fprintf(stderr, "kinfer: unknown command \"%s\"\n\n", argv[1]);
        usage(stderr);
        return 2;
}
