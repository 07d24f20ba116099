/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_eval.c -- `kinfer eval MODEL DATA [--json]`. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "kinfer/train/train.h"

static void usage(FILE *fp)
{
        fprintf(fp, "Usage: kinfer eval MODEL DATA [--json] [--threads N] [--no-confusion]\n\n"
                    "Classify every record of DATA (TSV or fastText) and report accuracy, macro-F1,\n"
                    "per-class precision/recall/F1, the confusion matrix (rows = true label), and\n"
                    "how well the scores are calibrated (mean top-1 score, expected calibration error).\n\n"
                    "  --json            one JSON object (accuracy, macro_f1, per_class, confusion)\n"
                    "  -t, --threads N   classification threads (default 2)\n"
                    "  --no-confusion    leave the confusion matrix out\n"
                    "  -h, --help        this text\n");
}

int kinfer_cmd_eval(int argc, char **argv)
{
        static const struct option lo[] = {{"json", 0, 0, 'j'}, {"threads", 1, 0, 't'},
                                           {"no-confusion", 0, 0, 'n'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
        int json = 0, confusion = 1, c;
        long threads = 2;
        optind = 1;
        while ((c = getopt_long(argc, argv, "jt:h", lo, NULL)) != -1) {
                switch (c) {
                case 'j': json = 1; break;
                case 'n': confusion = 0; break;
                case 't': if (cli_parse_int("eval", "--threads", optarg, 1, 64, &threads)) return 2; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (argc - optind != 2) {
                cli_error("eval", "expected MODEL and DATA (see --help)");
                return 2;
        }
        char errstr[512];
        kinfer_model_t *model = kinfer_model_load_file(argv[optind], errstr, sizeof(errstr));
        if (!model) {
                cli_error("eval", "%s", errstr);
                return 1;
        }
        kinfer_dataset_t *ds = cli_dataset_load("eval", argv[optind + 1], 0, errstr, sizeof(errstr));
        if (!ds) {
                cli_error("eval", "%s", errstr);
                kinfer_model_release(model);
                return 1;
        }
        kinfer_eval_t ev;
        double t0 = cli_now();
        if (kinfer_eval(model, ds, (int32_t)threads, &ev, errstr, sizeof(errstr))) {
                cli_error("eval", "%s", errstr);
                kinfer_dataset_destroy(ds);
                kinfer_model_release(model);
                return 1;
        }
        double secs = cli_now() - t0;
        int rc = 0;
        if (json) {
                char *s;
                if (kinfer_eval_json(model, &ev, confusion, &s, errstr, sizeof(errstr))) {
                        cli_error("eval", "%s", errstr);
                        rc = 1;
                } else {
                        printf("%s\n", s);
                        free(s);
                }
        } else {
                const int32_t L = ev.n_labels;
                printf("N\t%lld\nP@1\t%.4f\nR@1\t%.4f\naccuracy\t%.4f\nmacro_f1\t%.4f\n"
                       "mean_confidence\t%.4f\nece\t%.4f\n",
                       (long long)ev.n, ev.accuracy, ev.accuracy, ev.accuracy, ev.macro_f1,
                       ev.mean_confidence, ev.ece);
                if (ev.support[L])
                        printf("records with a label the model does not know\t%lld\n", (long long)ev.support[L]);
                printf("\n%-4s %-20s %9s %9s %9s %8s\n", "#", "label", "precision", "recall", "f1", "support");
                for (int32_t i = 0; i < L; i++)
                        printf("%-4d %-20s %9.4f %9.4f %9.4f %8lld\n", i, kinfer_model_label(model, i),
                               ev.precision[i], ev.recall[i], ev.f1[i], (long long)ev.support[i]);
                if (confusion) {
                        printf("\nconfusion matrix (row = true label #, column = predicted label #)\n     ");
                        for (int32_t j = 0; j < L; j++)
                                printf(" %4d", j);
                        printf("\n");
                        for (int32_t i = 0; i <= L; i++) {
                                if (i == L && !ev.support[L])
                                        break;
                                if (i < L)
                                        printf("%4d ", i);
                                else
                                        printf("  ?  ");
                                for (int32_t j = 0; j < L; j++)
                                        printf(" %4lld", (long long)ev.confusion[(size_t)i * L + j]);
                                printf("\n");
                        }
                }
                fprintf(stderr, "kinfer eval: %lld records in %.2fs (%.0f records/s)\n", (long long)ev.n,
                        secs, (double)ev.n / secs);
        }
        kinfer_eval_term(&ev);
        kinfer_dataset_destroy(ds);
        kinfer_model_release(model);
        return rc;
}
