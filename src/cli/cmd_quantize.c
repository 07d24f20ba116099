/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_quantize.c -- `kinfer quantize IN --output OUT`: int8 weights with per-row scales. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "kinfer/train/compress.h"
#include "kinfer/model/model_write.h"

static void usage(FILE *fp)
{
        fprintf(fp,
                "Usage: kinfer quantize IN --output OUT [options]\n\n"
                "Quantize model IN to int8 with one f32 scale per row (symmetric, scale =\n"
                "max|row|/127) for the embedding table and the dense layers. The runtime computes\n"
                "on the int8 rows directly, so the mapped model shrinks in memory as on disk.\n"
                "OUT records IN as its parent (lineage method \"quantize\", quantized_from).\n"
                "A model that is already quantized is refused: quantize its f32 parent.\n"
                "Recommended order: prune, then quantize.\n\n"
                "  -o, --output OUT     model file to write (required)\n"
                "      --keep-dense-f32 quantize only the embedding table (dense layers stay f32)\n"
                "      --dense-map      store the bucket->row map as a plain array (4 bytes per bucket:\n"
                "                       8 MB at 2^21 buckets) instead of the compact rank index (the\n"
                "                       default: 1.5 bits per bucket, 384 KB), for kinfer builds older\n"
                "                       than the rank index\n"
                "      --name NAME      model name stored in OUT (default: IN's name)\n"
                "  -q, --quiet          no summary on stderr\n"
                "  -h, --help           this text\n");
}

int kinfer_cmd_quantize(int argc, char **argv)
{
        static const struct option lo[] = {{"output", 1, 0, 'o'}, {"help", 0, 0, 'h'},
                                           {"quiet", 0, 0, 'q'}, {"keep-dense-f32", 0, 0, 1},
                                           {"name", 1, 0, 2}, {"compact-map", 0, 0, 3}, {"dense-map", 0, 0, 4}, {0, 0, 0, 0}};
        kinfer_quantize_opts_t qo = {0};
        const char *output = NULL;
        int quiet = 0, c;
        if (cli_fasttext_aliases("quantize", argc, argv))
                return 2;
        optind = 1;
        while ((c = getopt_long(argc, argv, "o:qh", lo, NULL)) != -1) {
                switch (c) {
                case 'o': output = optarg; break;
                case 'q': quiet = 1; break;
                case 'h': usage(stdout); return 0;
                case 1: qo.keep_dense_f32 = 1; break;
                case 2: qo.name = optarg; break;
                case 3: qo.dense_map = 0; break;
                case 4: qo.dense_map = 1; break;
                default: usage(stderr); return 2;
                }
        }
        if (optind != argc - 1 || !output) {
                cli_error("quantize", "expected IN and --output OUT (see --help)");
                return 2;
        }
        const char *input = argv[optind];
        char errstr[512];
        kinfer_model_t *in = kinfer_model_load_file(input, errstr, sizeof(errstr));
        if (!in) {
                cli_error("quantize", "%s", errstr);
                return 1;
        }
        int rc = 0;
        kinfer_model_t *out = kinfer_quantize(in, &qo, errstr, sizeof(errstr));
        if (!out) {
                cli_error("quantize", "%s: %s", input, errstr);
                rc = 1;
        } else if (kinfer_model_save(out, output, errstr, sizeof(errstr))) {
                cli_error("quantize", "%s", errstr);
                rc = 1;
        } else if (!quiet) {
                fprintf(stderr, "Quantized %s (%.1f MB, %s) -> %s (%.1f MB, %s, sha256 %.16s...)\n",
                        input, (double)kinfer_model_size(in) / 1e6, kinfer_model_format(in), output,
                        (double)kinfer_model_size(out) / 1e6, kinfer_model_format(out),
                        kinfer_model_sha256_hex(out));
        }
        kinfer_model_release(out);
        kinfer_model_release(in);
        return rc;
}
