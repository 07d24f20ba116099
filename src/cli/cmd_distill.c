/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_distill.c -- `kinfer distill --teacher MODEL --data DATA --output OUT`: train a student
 * on the teacher's softened probabilities mixed with the labels. */
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
                "Usage: kinfer distill --teacher MODEL (--data DATA | --unlabelled FILE) --output OUT\n"
                "                      [student shape] [--temperature T] [--alpha A]\n\n"
                "Train a student model on the teacher's probabilities softmax(logits/T), mixed with\n"
                "the labels: loss = A * T^2 * KL(teacher || student at T) + (1 - A) * cross-entropy.\n"
                "Records of --unlabelled (plain lines) are labelled by the teacher alone. OUT records\n"
                "the teacher as its parent (lineage method \"distill\", distilled_from).\n\n"
                "  -m, --teacher MODEL    the teacher model (required)\n"
                "  -i, --data DATA        labelled training data (TSV or fastText)\n"
                "  -u, --unlabelled FILE  unlabelled text, one record per line\n"
                "  -o, --output OUT       student model file to write (required)\n"
                "  -T, --temperature T    softening temperature (default 2)\n"
                "  -a, --alpha A          weight of the soft targets, 0..1 (default 0.5)\n"
                "  -d, --dev FILE         dev data: early stopping, keep the best epoch\n"
                "  -t, --threads N        training threads (default 2)\n"
                "      --name NAME        model name stored in OUT (default: OUT's file name)\n"
                "  -q, --quiet            no progress output\n"
                "  -h, --help             this text\n\n"
                "Student shape and schedule (as for kinfer train; defaults are train's, except --lr\n"
                "for embedding students: 0.2 with --dim, 0.1 with --dim and --hidden, because train's\n"
                "rate of 10 is tuned for linear models and diverges for those):\n"
                "      --dim N, --hidden N, --epoch N, --lr R, --l2 R, --min-count N, --max-rows N,\n"
                "      --buckets N, --word-ngrams N, --seed N\n");
}


int kinfer_cmd_distill(int argc, char **argv)
{
        static const struct option lo[] = {
            {"teacher", 1, 0, 'm'}, {"data", 1, 0, 'i'}, {"unlabelled", 1, 0, 'u'},
            {"unlabeled", 1, 0, 'u'}, {"output", 1, 0, 'o'}, {"temperature", 1, 0, 'T'},
            {"alpha", 1, 0, 'a'}, {"dev", 1, 0, 'd'}, {"threads", 1, 0, 't'}, {"quiet", 0, 0, 'q'},
            {"help", 0, 0, 'h'}, {"name", 1, 0, 1}, {"dim", 1, 0, 2}, {"hidden", 1, 0, 3},
            {"epoch", 1, 0, 4}, {"epochs", 1, 0, 4}, {"lr", 1, 0, 5}, {"l2", 1, 0, 6},
            {"min-count", 1, 0, 7}, {"max-rows", 1, 0, 8}, {"buckets", 1, 0, 9},
            {"word-ngrams", 1, 0, 10}, {"seed", 1, 0, 11}, {0, 0, 0, 0}};
        kinfer_train_opts_t o;
        kinfer_train_opts_default(&o);
        const char *teacher_path = NULL, *data = NULL, *unl = NULL, *output = NULL, *dev = NULL,
                   *name = NULL;
        double temperature = 2.0, alpha = 0.5, d;
        long v;
        int quiet = 0, c, lr_set = 0;
        if (cli_fasttext_aliases("distill", argc, argv))
                return 2;
        optind = 1;
        while ((c = getopt_long(argc, argv, "m:i:u:o:T:a:d:t:qh", lo, NULL)) != -1) {
                switch (c) {
                case 'm': teacher_path = optarg; break;
                case 'i': data = optarg; break;
                case 'u': unl = optarg; break;
                case 'o': output = optarg; break;
                case 'd': dev = optarg; break;
                case 'q': quiet = 1; break;
                case 'h': usage(stdout); return 0;
                case 'T': if (cli_parse_double("distill", "--temperature", optarg, 1e-3, 1e3, &temperature)) return 2; break;
                case 'a': if (cli_parse_double("distill", "--alpha", optarg, 0, 1, &alpha)) return 2; break;
                case 't': if (cli_parse_int("distill", "--threads", optarg, 1, 64, &v)) return 2; o.threads = (int32_t)v; break;
                case 1: name = optarg; break;
                case 2: if (cli_parse_int("distill", "--dim", optarg, 0, 4096, &v)) return 2; o.dim = (int32_t)v; break;
                case 3: if (cli_parse_int("distill", "--hidden", optarg, 0, 4096, &v)) return 2; o.hidden = (int32_t)v; break;
                case 4: if (cli_parse_int("distill", "--epoch", optarg, 1, 10000, &v)) return 2; o.epochs = (int32_t)v; break;
                case 5: if (cli_parse_double("distill", "--lr", optarg, 1e-9, 1e3, &d)) return 2; o.lr = (float)d; lr_set = 1; break;
                case 6: if (cli_parse_double("distill", "--l2", optarg, 0, 1, &d)) return 2; o.l2 = (float)d; break;
                case 7: if (cli_parse_int("distill", "--min-count", optarg, 1, 1000000, &v)) return 2; o.min_count = (int32_t)v; break;
                case 8: if (cli_parse_int("distill", "--max-rows", optarg, 0, 1 << 30, &v)) return 2; o.max_rows = (int32_t)v; break;
                case 9: if (cli_parse_int("distill", "--buckets", optarg, 2, 1L << 24, &v)) return 2; o.feat.n_buckets = (uint32_t)v; break;
                case 10: if (cli_parse_int("distill", "--word-ngrams", optarg, 1, 5, &v)) return 2; o.feat.word_ngrams = (uint8_t)v; break;
                case 11: if (cli_parse_int("distill", "--seed", optarg, 0, 0x7fffffffL, &v)) return 2; o.seed = (uint64_t)v; break;
                default: usage(stderr); return 2;
                }
        }
        if (optind < argc) {
                cli_error("distill", "unexpected argument \"%s\" (see --help)", argv[optind]);
                return 2;
        }
        if (!teacher_path || !output || (!data && !unl)) {
                cli_error("distill", "--teacher, --output and --data or --unlabelled are required (see --help)");
                return 2;
        }
        /* train's default rate is tuned for linear models and diverges for embedding students */
        if (!lr_set)
                o.lr = kinfer_train_default_lr(o.dim, o.hidden);
        const char *why = kinfer_featurizer_conf_check(&o.feat);
        if (why) {
                cli_error("distill", "invalid feature settings: %s", why);
                return 2;
        }
        char errstr[512];
        int rc = 1;
        kinfer_dataset_t *ds = NULL, *us = NULL, *dv = NULL;
        kinfer_model_t *student = NULL;
        kinfer_model_t *teacher = kinfer_model_load_file(teacher_path, errstr, sizeof(errstr));
        if (!teacher) {
                cli_error("distill", "%s", errstr);
                return 1;
        }
        if ((data && !(ds = cli_dataset_load("distill", data, 0, errstr, sizeof(errstr)))) ||
            (unl && !(us = cli_dataset_load("distill", unl, 1, errstr, sizeof(errstr)))) ||
            (dev && !(dv = cli_dataset_load("distill", dev, 0, errstr, sizeof(errstr))))) {
                cli_error("distill", "%s", errstr);
                goto out;
        }
        char defname[256];
        o.name = name ? name : cli_default_name(output, defname, sizeof(defname));
        o.dev = dv;
        if (!quiet) {
                o.progress = cli_train_progress;
                fprintf(stderr, "Distilling %s (T=%g, alpha=%g) into a student (dim %d, hidden %d) on %d labelled + %d unlabelled records\n",
                        teacher_path, temperature, alpha, o.dim, o.hidden, ds ? ds->n : 0, us ? us->n : 0);
        }
        kinfer_train_result_t res;
        student = kinfer_distill(teacher, ds, us, &o, (float)temperature, (float)alpha, &res, errstr,
                                 sizeof(errstr));
        if (!student) {
                cli_error("distill", "%s", errstr);
                goto out;
        }
        if (kinfer_model_save(student, output, errstr, sizeof(errstr))) {
                cli_error("distill", "%s", errstr);
                goto out;
        }
        if (!quiet) {
                fprintf(stderr, "Trained in %.1fs: %d epochs", res.seconds, res.epochs_run);
                if (res.dev_accuracy >= 0)
                        fprintf(stderr, ", best dev accuracy %.4f (epoch %d)", res.dev_accuracy, res.best_epoch);
                fprintf(stderr, "\nWrote %s (%.1f MB; teacher %.1f MB), sha256 %.16s...\n", output,
                        (double)kinfer_model_size(student) / 1e6, (double)kinfer_model_size(teacher) / 1e6,
                        kinfer_model_sha256_hex(student));
        }
        rc = 0;
out:
        kinfer_model_release(student);
        kinfer_model_release(teacher);
        kinfer_dataset_destroy(ds);
        kinfer_dataset_destroy(us);
        kinfer_dataset_destroy(dv);
        return rc;
}
