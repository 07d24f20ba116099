/* SPDX-License-Identifier: Apache-2.0 */
/* cli_util.c -- shared helpers of the subcommands. */
#include "cli/cli_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void cli_error(const char *cmd, const char *fmt, ...)
{
        va_list ap;
        fprintf(stderr, "kinfer %s: ", cmd);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

int cli_parse_int(const char *cmd, const char *opt, const char *s, long min, long max, long *out)
{
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max) {
                cli_error(cmd, "%s: expected a whole number in [%ld, %ld], got \"%s\"", opt, min,
                          max, s);
                return -1;
        }
        *out = v;
        return 0;
}

int cli_parse_double(const char *cmd, const char *opt, const char *s, double min, double max,
                     double *out)
{
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || end == s || *end || !(v >= min && v <= max)) {
                cli_error(cmd, "%s: expected a number in [%g, %g], got \"%s\"", opt, min, max, s);
                return -1;
        }
        *out = v;
        return 0;
}

double cli_now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cli_train_progress(const kinfer_train_progress_t *p, void *opaque)
{
        static int tty = -1;
        (void)opaque;
        if (tty < 0)
                tty = isatty(2);
        if (!tty && !p->epoch_done)
                return;
        long eta = (long)(p->eta_sec + 0.5);
        fprintf(stderr, "%sEpoch %2d/%d  Progress: %5.1f%%  words/sec: %8.0f  lr: %.6f  loss: %.6f  ETA: %ldh%02ldm%02lds",
                tty ? "\r" : "", p->epoch, p->epochs, 100 * p->progress, p->words_per_sec, p->lr,
                p->loss, eta / 3600, eta / 60 % 60, eta % 60);
        if (p->epoch_done && p->dev_accuracy >= 0)
                fprintf(stderr, "  dev acc: %.4f", p->dev_accuracy);
        if (!tty || p->epoch_done)
                fputc('\n', stderr);
        fflush(stderr);
}

/* fastText option -> the kinfer option, or NULL with why: what to use instead */
static const struct ft_alias {
        const char *ft, *kinfer, *instead;
        int has_arg;
} ft_aliases[] = {
    {"-input", "--input", NULL, 1},
    {"-output", "--output", NULL, 1},
    {"-epoch", "--epoch", NULL, 1},
    {"-lr", "--lr", NULL, 1},
    {"-wordNgrams", "--word-ngrams", NULL, 1},
    {"-minn", "--minn", NULL, 1},
    {"-maxn", "--maxn", NULL, 1},
    {"-dim", "--dim", NULL, 1},
    {"-thread", "--threads", NULL, 1},
    {"-bucket", "--buckets", NULL, 1},
    {"-minCount", "--min-count", NULL, 1},
    {"-seed", "--seed", NULL, 1},
    {"-verbose", NULL, "--quiet turns progress off; there are no other levels", 1},
    {"-loss", NULL, "kinfer trains a softmax; there is no other loss", 1},
    {"-neg", NULL, "kinfer trains a softmax without negative sampling", 1},
    {"-ws", NULL, "kinfer has no word-vector training (classification only)", 1},
    {"-minCountLabel", NULL, "every label of the data is kept", 1},
    {"-lrUpdateRate", NULL, "the rate decays linearly to 0 over --epoch", 1},
    {"-label", NULL, "labels are TSV (label<TAB>text) or __label__ prefixed", 1},
    {"-pretrainedVectors", NULL, "kinfer does not read word vectors", 1},
    {"-saveOutput", NULL, "the model file holds everything", 0},
    {"-cutoff", NULL, "use `kinfer prune --keep-buckets N`", 1},
    {"-qnorm", NULL, "use `kinfer quantize`", 0},
    {"-qout", NULL, "use `kinfer quantize`", 0},
    {"-retrain", NULL, "use `kinfer prune --retrain DATA`", 0},
    {"-dsub", NULL, "kinfer quantizes to int8 per row (`kinfer quantize`)", 1},
    {"-autotune-validation", NULL, "--dev FILE stops early on dev data (no autotune)", 1},
    {"-autotune-duration", NULL, "kinfer has no autotune; --dev FILE stops early", 1},
    {"-autotune-modelsize", NULL, "use `kinfer prune` and `kinfer quantize`", 1},
    {"-autotune-metric", NULL, "kinfer has no autotune", 1},
    {"-autotune-predictions", NULL, "kinfer has no autotune", 1},
};

int cli_fasttext_aliases(const char *cmd, int argc, char **argv)
{
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                if (!strcmp(a, "--"))
                        return 0;
                if (a[0] != '-' || a[1] == '-' || !a[1] || !a[2])
                        continue;
                for (size_t j = 0; j < sizeof(ft_aliases) / sizeof(ft_aliases[0]); j++) {
                        const struct ft_alias *f = &ft_aliases[j];
                        if (strcmp(a, f->ft))
                                continue;
                        if (!f->kinfer) {
                                cli_error(cmd, "fastText's %s has no kinfer equivalent: %s (see "
                                               "--help)", f->ft, f->instead);
                                return 2;
                        }
                        argv[i] = (char *)f->kinfer;
                        i += f->has_arg; /* its value is not an option */
                        break;
                }
        }
        return 0;
}

kinfer_dataset_t *cli_dataset_load(const char *cmd, const char *path, int allow_unlabelled,
                                   char *errstr, size_t errstr_size)
{
        kinfer_dataset_t *ds = kinfer_dataset_load(path, allow_unlabelled, errstr, errstr_size);
        if (ds && ds->header_line)
                fprintf(stderr, "kinfer %s: %s:%d: skipped the header line (column names, not a "
                                "record)\n", cmd, path, ds->header_line);
        return ds;
}

const char *cli_default_name(const char *output, char *buf, size_t size)
{
        const char *b = strrchr(output, '/');
        snprintf(buf, size, "%s", b ? b + 1 : output);
        char *dot = strrchr(buf, '.');
        if (dot && dot != buf)
                *dot = '\0';
        return buf;
}
