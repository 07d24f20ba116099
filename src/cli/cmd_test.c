/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_test.c -- `kinfer test MODEL DATA [K]`: fastText's `test`, with its output (N, P@K, R@K).
 * A fastText line with several __label__ tokens counts every one of them as a true label. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "kinfer/runtime/runtime.h"
#include "kinfer/train/train.h"

#define CMD "test"
#define TEST_BATCH 256

static void usage(FILE *fp)
{
        fprintf(fp,
                "Usage: kinfer test MODEL DATA [K]\n\n"
                "fastText's test: classify every record of DATA (TSV or fastText, `-` = stdin) and\n"
                "print the number of records N, the precision at K (true labels among the K\n"
                "predicted, over all predictions) and the recall at K (true labels found, over all\n"
                "true labels). K defaults to 1; with one label per record P@1 = R@1 = accuracy.\n"
                "`kinfer eval` reports per-class scores, macro-F1 and the confusion matrix.\n\n"
                "  -k K        the same as the positional K (at most %d)\n"
                "  -h, --help  this text\n",
                KINFER_TOPK_MAX);
}

/* Whether label index @p l is among the true labels of record @p i: its first label, and in a
 * fastText file the further __label__ tokens between that label and the text. */
static int is_true(const kinfer_model_t *model, const kinfer_dataset_t *ds, int32_t i, int32_t l)
{
        const char *name = kinfer_model_label(model, l);
        if (!strcmp(ds->labels[i], name))
                return 1;
        if (ds->format != KINFER_DATA_FASTTEXT)
                return 0;
        size_t nlen = strlen(name);
        for (const char *p = ds->labels[i] + strlen(ds->labels[i]) + 1; p < ds->texts[i];) {
                const char *end = p;
                while (end < ds->texts[i] && *end != ' ' && *end != '\t')
                        end++;
                if ((size_t)(end - p) == 9 + nlen && !strncmp(p, "__label__", 9) &&
                    !memcmp(p + 9, name, nlen))
                        return 1;
                p = end + 1;
        }
        return 0;
}

static int64_t n_true(const kinfer_dataset_t *ds, int32_t i)
{
        int64_t n = 1;
        if (ds->format == KINFER_DATA_FASTTEXT)
                for (const char *p = ds->labels[i] + strlen(ds->labels[i]) + 1; p + 9 <= ds->texts[i];
                     p++)
                        n += !strncmp(p, "__label__", 9) && (p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\0');
        return n;
}

int kinfer_cmd_test(int argc, char **argv)
{
        static const struct option lo[] = {{"help", 0, 0, 'h'}, {0, 0, 0, 0}};
        long k = 1;
        int c, k_set = 0;
        optind = 1;
        while ((c = getopt_long(argc, argv, "k:h", lo, NULL)) != -1) {
                switch (c) {
                case 'k':
                        if (cli_parse_int(CMD, "-k", optarg, 1, KINFER_TOPK_MAX, &k))
                                return 2;
                        k_set = 1;
                        break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        int npos = argc - optind;
        if (npos < 2 || npos > 3 || (npos == 3 && k_set)) {
                cli_error(CMD, "expected MODEL DATA [K] (see --help)");
                return 2;
        }
        if (npos == 3 && cli_parse_int(CMD, "K", argv[optind + 2], 1, KINFER_TOPK_MAX, &k))
                return 2;
        char errstr[512];
        kinfer_model_t *model = kinfer_model_load_file(argv[optind], errstr, sizeof(errstr));
        if (!model) {
                cli_error(CMD, "%s", errstr);
                return 1;
        }
        kinfer_dataset_t *ds = cli_dataset_load("test", argv[optind + 1], 0, errstr, sizeof(errstr));
        if (!ds) {
                cli_error(CMD, "%s", errstr);
                kinfer_model_release(model);
                return 1;
        }
        kinfer_runtime_t *rt = kinfer_runtime_new(TEST_BATCH, errstr, sizeof(errstr));
        kinfer_prediction_t *out = calloc(TEST_BATCH, sizeof(*out));
        int rc = 0;
        if (!rt || !out) {
                cli_error(CMD, "%s", rt ? "out of memory" : errstr);
                rc = 1;
        }
        int64_t predicted = 0, gold = 0, hits = 0;
        for (int32_t i0 = 0; !rc && i0 < ds->n; i0 += TEST_BATCH) {
                int32_t n = ds->n - i0 < TEST_BATCH ? ds->n - i0 : TEST_BATCH;
                if (kinfer_runtime_classify(rt, model, ds->texts + i0, ds->lens + i0, n, (int32_t)k,
                                            out, errstr, sizeof(errstr))) {
                        cli_error(CMD, "%s", errstr);
                        rc = 1;
                        break;
                }
                for (int32_t i = 0; i < n; i++) {
                        gold += n_true(ds, i0 + i);
                        predicted += out[i].n;
                        for (int32_t j = 0; j < out[i].n; j++)
                                hits += is_true(model, ds, i0 + i, out[i].label[j]);
                }
        }
        if (!rc)
                printf("N\t%d\nP@%ld\t%.3f\nR@%ld\t%.3f\n", ds->n, k,
                       predicted ? (double)hits / (double)predicted : 0.0, k,
                       gold ? (double)hits / (double)gold : 0.0);
        free(out);
        kinfer_runtime_destroy(rt);
        kinfer_dataset_destroy(ds);
        kinfer_model_release(model);
        return rc;
}
