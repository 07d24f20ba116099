/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_prune.c -- `kinfer prune IN --output OUT (--keep-buckets N | --sparsity S)`: drop the
 * least important embedding rows and magnitude-prune dense layers, optionally retraining. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "kinfer/train/compress.h"
#include "kinfer/model/model_write.h"

static void usage(FILE *fp)
{
        fprintf(fp,
                "Usage: kinfer prune IN --output OUT (--keep-buckets N | --sparsity S) [options]\n\n"
                "Drop the least important embedding rows of model IN (as fastText's -cutoff does):\n"
                "their buckets then map to no row, and the kept rows are copied bit for bit. With\n"
                "--sparsity, also zero that fraction of every dense layer's weights (smallest\n"
                "magnitude first), stored as CSR when that is smaller. OUT records IN as its parent\n"
                "(lineage method \"prune\", pruned_from). Works on f32 and q8 models; retraining\n"
                "yields f32 weights, so the recommended order is prune, then quantize.\n\n"
                "  -o, --output OUT       model file to write (required)\n"
                "      --keep-buckets N   keep the N most important embedding rows\n"
                "      --sparsity S       0 <= S < 1: drop this fraction of the embedding rows (unless\n"
                "                         --keep-buckets is given) and of each dense layer's weights\n"
                "      --criterion C      row importance: norm (plain L2 norm, as train --max-rows and\n"
                "                         fastText; default) or idf-norm (L2 norm x the row's idf)\n"
                "      --retrain DATA     then train on DATA from the pruned weights (dropped rows\n"
                "                         stay dropped; dense layers are pruned again afterwards)\n"
                "      --epoch N          retraining epochs (default 2)\n"
                "      --lr R             retraining learning rate (default 1, a tenth of train's)\n"
                "  -t, --threads N        retraining threads (default 2)\n"
                "      --dense-map        store the bucket->row map as a plain array (4 bytes per bucket:\n"
                "                         8 MB at 2^21 buckets) instead of the compact rank index (the\n"
                "                         default: 1.5 bits per bucket, 384 KB), for kinfer builds\n"
                "                         older than the rank index\n"
                "      --name NAME        model name stored in OUT (default: IN's name)\n"
                "  -q, --quiet            no summary on stderr\n"
                "  -h, --help             this text\n");
}

int kinfer_cmd_prune(int argc, char **argv)
{
        static const struct option lo[] = {
            {"output", 1, 0, 'o'}, {"help", 0, 0, 'h'}, {"quiet", 0, 0, 'q'}, {"threads", 1, 0, 't'},
            {"keep-buckets", 1, 0, 1}, {"sparsity", 1, 0, 2}, {"retrain", 1, 0, 3}, {"epoch", 1, 0, 4},
            {"epochs", 1, 0, 4}, {"lr", 1, 0, 5}, {"name", 1, 0, 6}, {"criterion", 1, 0, 7}, {"compact-map", 0, 0, 8}, {"dense-map", 0, 0, 9}, {0, 0, 0, 0}};
        kinfer_prune_opts_t po;
        kinfer_prune_opts_default(&po);
        const char *output = NULL, *retrain = NULL;
        int quiet = 0, c, have_keep = 0, have_sparsity = 0;
        long v;
        double d;
        if (cli_fasttext_aliases("prune", argc, argv))
                return 2;
        optind = 1;
        while ((c = getopt_long(argc, argv, "o:t:qh", lo, NULL)) != -1) {
                switch (c) {
                case 'o': output = optarg; break;
                case 'q': quiet = 1; break;
                case 'h': usage(stdout); return 0;
                case 't': if (cli_parse_int("prune", "--threads", optarg, 1, 64, &v)) return 2; po.threads = (int32_t)v; break;
                case 1: if (cli_parse_int("prune", "--keep-buckets", optarg, 1, 1L << 30, &v)) return 2; po.keep_rows = (int32_t)v; have_keep = 1; break;
                case 2: if (cli_parse_double("prune", "--sparsity", optarg, 0, 0.999999, &d)) return 2; po.sparsity = d; have_sparsity = 1; break;
                case 3: retrain = optarg; break;
                case 4: if (cli_parse_int("prune", "--epoch", optarg, 1, 1000, &v)) return 2; po.retrain_epochs = (int32_t)v; break;
                case 5: if (cli_parse_double("prune", "--lr", optarg, 1e-9, 1e3, &d)) return 2; po.retrain_lr = (float)d; break;
                case 6: po.name = optarg; break;
                case 7:
                        if (!strcmp(optarg, "norm"))
                                po.criterion = KINFER_PRUNE_NORM;
                        else if (!strcmp(optarg, "idf-norm"))
                                po.criterion = KINFER_PRUNE_IDF_NORM;
                        else {
                                cli_error("prune", "--criterion: expected norm or idf-norm, got \"%s\"", optarg);
                                return 2;
                        }
                        break;
                case 8: po.dense_map = 0; break;
                case 9: po.dense_map = 1; break;
                default: usage(stderr); return 2;
                }
        }
        if (optind != argc - 1 || !output) {
                cli_error("prune", "expected IN and --output OUT (see --help)");
                return 2;
        }
        if (!have_keep && !have_sparsity) {
                cli_error("prune", "give --keep-buckets N or --sparsity S (see --help)");
                return 2;
        }
        const char *input = argv[optind];
        char errstr[512];
        kinfer_model_t *in = kinfer_model_load_file(input, errstr, sizeof(errstr));
        if (!in) {
                cli_error("prune", "%s", errstr);
                return 1;
        }
        kinfer_dataset_t *ds = NULL;
        if (retrain && !(ds = cli_dataset_load("prune", retrain, 0, errstr, sizeof(errstr)))) {
                cli_error("prune", "%s", errstr);
                kinfer_model_release(in);
                return 1;
        }
        po.retrain_data = ds;
        double t0 = cli_now();
        int rc = 0;
        kinfer_model_t *out = kinfer_prune(in, &po, errstr, sizeof(errstr));
        if (!out) {
                cli_error("prune", "%s: %s", input, errstr);
                rc = 1;
        } else if (kinfer_model_save(out, output, errstr, sizeof(errstr))) {
                cli_error("prune", "%s", errstr);
                rc = 1;
        } else if (!quiet) {
                fprintf(stderr, "Pruned %s (%.1f MB, %d rows) -> %s (%.1f MB, %d rows, %s%s) in %.1fs, sha256 %.16s...\n",
                        input, (double)kinfer_model_size(in) / 1e6, kinfer_model_n_rows(in), output,
                        (double)kinfer_model_size(out) / 1e6, kinfer_model_n_rows(out),
                        kinfer_model_format(out), ds ? ", retrained" : "", cli_now() - t0,
                        kinfer_model_sha256_hex(out));
        }
        kinfer_model_release(out);
        kinfer_model_release(in);
        kinfer_dataset_destroy(ds);
        return rc;
}
