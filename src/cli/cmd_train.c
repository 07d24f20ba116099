/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_train.c -- `kinfer train`: fastText's verb with tf-idf features and a linear model by
 * default; progress line on a terminal. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_train_mpi.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "kinfer/model/model_write.h"
#include "kinfer/train/mpi.h"
#include "kinfer/train/train.h"

static void usage(FILE *fp)
{
        fprintf(fp,
                "Usage: kinfer train --input FILE --output MODEL [options]\n\n"
                "Train a text classifier. FILE is TSV (label<TAB>text) or fastText\n"
                "(__label__LABEL text), detected from its content.\n\n"
                "  -i, --input FILE       training data (required)\n"
                "  -o, --output MODEL     model file to write (required)\n"
                "  -d, --dev FILE         dev data: report accuracy per epoch, stop early, keep the best,\n"
                "                         and calibrate the scores (softmax temperature) on it\n"
                "  -t, --threads N        training threads (default 2)\n"
                "      --name NAME        model name stored in the file (default: output file name)\n"
                "  -q, --quiet            no progress output\n"
                "  -h, --help             this text\n\n"
                "Model (the defaults reach about 0.848 accuracy on debian-sections dev):\n"
                "      --epoch N          epochs (default 25)\n"
                "      --lr R             initial learning rate, decays linearly to 0 (default 10 for\n"
                "                         linear models, 0.2 with --dim, 0.1 with --hidden)\n"
                "      --dim N            embedding width; 0 = linear model over the features (default 0)\n"
                "      --hidden N         ReLU hidden layer width (needs --dim; default 0 = none)\n"
                "      --l2 R             L2 regularisation (default 0)\n"
                "      --min-count N      features seen in fewer documents get no weights (default 2)\n"
                "      --max-rows N       keep at most N feature rows, the largest by norm\n"
                "                         (default 150000; 0 = all)\n"
                "      --seed N           random seed (default 1); 1 thread + a seed = deterministic\n"
                "      --patience N       epochs without dev improvement before stopping, in the\n"
                "                         second half of the schedule (default 3)\n"
                "      --sync-every N     records per thread between replica averaging (default 2000);\n"
                "                         under mpirun, records per rank (docs/training.md)\n"
                "      --hogwild          threads share one model instead of averaging replicas\n\n"
                "Features:\n"
                "      --buckets N        hash buckets, a power of two up to 16777216 (default 2097152)\n"
                "      --word-ngrams N    word n-grams up to N (default 2)\n"
                "      --minn N, --maxn N char n-grams of N code points (default: chosen by a\n"
                "                         trial, see --no-auto-features)\n"
                "      --no-auto-features do not choose char n-grams by a trial: without --minn/--maxn\n"
                "                         train on word n-grams (the default trains short models with\n"
                "                         and without char n-grams 1..4 on 90%% of a shuffle of FILE,\n"
                "                         scores them on the other 10%% and keeps char n-grams when\n"
                "                         they gain 0.5 points, beyond chance; recorded in the model's\n"
                "                         hyperparameters as auto_features)\n"
                "      --prefix-words N   the first N words also count as position-tagged features\n"
                "                         (titles, summaries; default 6)\n"
                "      --no-idf           do not weigh features by idf\n"
                "      --no-sublinear     raw term counts instead of 1+ln(tf)\n"
                "      --no-l2norm        do not L2-normalise feature vectors\n"
                "      --dense-map        store the bucket->row map as a plain array (4 bytes per\n"
                "                         bucket: 8 MB at 2^21 buckets; the fastest lookups)\n"
                "      --compact-map      store the compact rank index (1.5 bits per bucket)\n"
                "                         Default: the compact index when the plain array would be\n"
                "                         bigger than the model's rows (small models), else the array\n\n"
                CLI_FASTTEXT_HELP);
}

/* Text without spaces (e.g. Chinese, Japanese, Thai) defeats word features: turn on char
 * n-grams when words average more than 24 bytes. */
static int looks_unspaced(const kinfer_dataset_t *ds)
{
        double bytes = 0, words = 0;
        for (int32_t i = 0; i < ds->n; i++)
                bytes += (double)ds->lens[i], words += ds->words[i];
        return words > 0 && bytes / words > 24.0;
}

static void train_note(const char *line, void *opaque)
{
        (void)opaque;
        fprintf(stderr, "%s\n", line);
}

int kinfer_cmd_train(int argc, char **argv)
{
        static const struct option lo[] = {
            {"input", 1, 0, 'i'}, {"output", 1, 0, 'o'}, {"dev", 1, 0, 'd'}, {"threads", 1, 0, 't'},
            {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'}, {"epoch", 1, 0, 1}, {"epochs", 1, 0, 1},
            {"lr", 1, 0, 2}, {"dim", 1, 0, 3}, {"hidden", 1, 0, 4}, {"l2", 1, 0, 5},
            {"min-count", 1, 0, 6}, {"max-rows", 1, 0, 7}, {"seed", 1, 0, 8}, {"patience", 1, 0, 9},
            {"sync-every", 1, 0, 10}, {"hogwild", 0, 0, 11}, {"buckets", 1, 0, 12},
            {"word-ngrams", 1, 0, 13}, {"minn", 1, 0, 14}, {"maxn", 1, 0, 15}, {"no-idf", 0, 0, 16},
            {"no-sublinear", 0, 0, 17}, {"no-l2norm", 0, 0, 18}, {"name", 1, 0, 19}, {"prefix-words", 1, 0, 20},
            {"dense-map", 0, 0, 21}, {"compact-map", 0, 0, 22}, {"no-auto-features", 0, 0, 23},
            {0, 0, 0, 0}};
        kinfer_train_opts_t o;
        kinfer_train_opts_default(&o);
        const char *input = NULL, *output = NULL, *dev = NULL, *name = NULL;
        int quiet = 0, char_set = 0, lr_set = 0, no_auto = 0;
        long v;
        double d;
        int c;
        if (cli_fasttext_aliases("train", argc, argv))
                return 2;
        optind = 1;
        while ((c = getopt_long(argc, argv, "i:o:d:t:qh", lo, NULL)) != -1) {
                switch (c) {
                case 'i': input = optarg; break;
                case 'o': output = optarg; break;
                case 'd': dev = optarg; break;
                case 'q': quiet = 1; break;
                case 'h': usage(stdout); return 0;
                case 't': if (cli_parse_int("train", "--threads", optarg, 1, 64, &v)) return 2; o.threads = (int32_t)v; break;
                case 1: if (cli_parse_int("train", "--epoch", optarg, 1, 10000, &v)) return 2; o.epochs = (int32_t)v; break;
                case 2: if (cli_parse_double("train", "--lr", optarg, 1e-9, 1e3, &d)) return 2; o.lr = (float)d; lr_set = 1; break;
                case 3: if (cli_parse_int("train", "--dim", optarg, 0, 4096, &v)) return 2; o.dim = (int32_t)v; break;
                case 4: if (cli_parse_int("train", "--hidden", optarg, 0, 4096, &v)) return 2; o.hidden = (int32_t)v; break;
                case 5: if (cli_parse_double("train", "--l2", optarg, 0, 1, &d)) return 2; o.l2 = (float)d; break;
                case 6: if (cli_parse_int("train", "--min-count", optarg, 1, 1000000, &v)) return 2; o.min_count = (int32_t)v; break;
                case 7: if (cli_parse_int("train", "--max-rows", optarg, 0, 1 << 30, &v)) return 2; o.max_rows = (int32_t)v; break;
                case 8: if (cli_parse_int("train", "--seed", optarg, 0, 0x7fffffffL, &v)) return 2; o.seed = (uint64_t)v; break;
                case 9: if (cli_parse_int("train", "--patience", optarg, 1, 1000, &v)) return 2; o.patience = (int32_t)v; break;
                case 10: if (cli_parse_int("train", "--sync-every", optarg, 1, 1 << 30, &v)) return 2; o.sync_every = (int32_t)v; break;
                case 11: o.hogwild = 1; break;
                case 12: if (cli_parse_int("train", "--buckets", optarg, 2, 1L << 24, &v)) return 2; o.feat.n_buckets = (uint32_t)v; break;
                case 13: if (cli_parse_int("train", "--word-ngrams", optarg, 0, 5, &v)) return 2; o.feat.word_ngrams = (uint8_t)v; break;
                case 14: if (cli_parse_int("train", "--minn", optarg, 0, 16, &v)) return 2; o.feat.minn = (uint8_t)v; char_set = 1; break;
                case 15: if (cli_parse_int("train", "--maxn", optarg, 0, 16, &v)) return 2; o.feat.maxn = (uint8_t)v; char_set = 1; break;
                case 16: o.feat.use_idf = 0; break;
                case 17: o.feat.sublinear_tf = 0; break;
                case 18: o.feat.l2_norm = 0; break;
                case 19: name = optarg; break;
                case 20: if (cli_parse_int("train", "--prefix-words", optarg, 0, 255, &v)) return 2; o.feat.prefix_words = (uint8_t)v; break;
                case 21: o.bucket_map = KINFER_MAP_DENSE; break;
                case 22: o.bucket_map = KINFER_MAP_RANK; break;
                case 23: no_auto = 1; break;
                default: usage(stderr); return 2;
                }
        }
        if (optind < argc) {
                cli_error("train", "unexpected argument \"%s\" (see --help)", argv[optind]);
                return 2;
        }
        if (!input || !output) {
                cli_error("train", "--input and --output are required (see --help)");
                return 2;
        }
        if (o.feat.maxn && !o.feat.minn)
                o.feat.minn = 1;
        if (!lr_set)
                o.lr = kinfer_train_default_lr(o.dim, o.hidden);
        const char *why = kinfer_featurizer_conf_check(&o.feat);
        if (why) {
                cli_error("train", "invalid feature settings: %s", why);
                return 2;
        }
        if (kinfer_mpi_launched_size() > 1 || (kinfer_mpi_launched_size() && kinfer_mpi_compiled())) {
                /* one rank of `mpirun -np K kinfer train`: cmd_train_mpi.c */
                cli_train_mpi_args_t ma = {input, output, dev, name, quiet, char_set};
                return cli_train_mpi(&o, &ma);
        }
        char errstr[512];
        kinfer_dataset_t *ds = cli_dataset_load("train", input, 0, errstr, sizeof(errstr));
        if (!ds) {
                cli_error("train", "%s", errstr);
                return 1;
        }
        kinfer_dataset_t *dv = NULL;
        if (dev && !(dv = cli_dataset_load("train", dev, 0, errstr, sizeof(errstr)))) {
                cli_error("train", "%s", errstr);
                kinfer_dataset_destroy(ds);
                return 1;
        }
        /* char n-grams: chosen by the trainer's trial (train.h: auto_features), or, when the
         * trial cannot run (fewer than 1,000 records) or is turned off, by the spaces */
        o.auto_features = !char_set && !no_auto;
        if (!char_set && (no_auto || ds->n < 1000) && looks_unspaced(ds)) {
                o.feat.minn = 1;
                o.feat.maxn = 3;
                fprintf(stderr, "kinfer train: %s has few spaces: using char n-grams 1..3\n", input);
        }
        char defname[256];
        o.name = name ? name : cli_default_name(output, defname, sizeof(defname));
        o.dev = dv;
        if (!quiet) {
                o.progress = cli_train_progress;
                o.note = train_note;
                fprintf(stderr, "Read %d records from %s (%s)%s%s\n", ds->n, input,
                        ds->format == KINFER_DATA_TSV ? "TSV" : "fastText", dv ? ", dev " : "",
                        dv ? dev : "");
        }
        kinfer_train_result_t res;
        kinfer_model_t *model = kinfer_train(ds, &o, &res, errstr, sizeof(errstr));
        int rc = 0;
        if (!model) {
                cli_error("train", "%s", errstr);
                rc = 1;
        } else if (kinfer_model_save(model, output, errstr, sizeof(errstr))) {
                cli_error("train", "%s", errstr);
                rc = 1;
        } else if (!quiet) {
                fprintf(stderr, "Trained in %.1fs", res.seconds);
                if (res.select_seconds > 0)
                        fprintf(stderr, " (%.1fs of it choosing the features)", res.select_seconds);
                fprintf(stderr, ": %d epochs, %d labels, %d feature rows", res.epochs_run,
                        kinfer_model_n_labels(model), res.n_rows);
                if (res.dev_accuracy >= 0)
                        fprintf(stderr, ", best dev accuracy %.4f (epoch %d), score temperature %.3f",
                                res.dev_accuracy, res.best_epoch, (double)res.temperature);
                fprintf(stderr, "\nWrote %s (%.1f MB, sha256 %.16s...)\n", output,
                        (double)kinfer_model_size(model) / 1e6, kinfer_model_sha256_hex(model));
        }
        kinfer_model_release(model);
        kinfer_dataset_destroy(ds);
        kinfer_dataset_destroy(dv);
        return rc;
}
