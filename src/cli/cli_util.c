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

const char *cli_default_name(const char *output, char *buf, size_t size)
{
        const char *b = strrchr(output, '/');
        snprintf(buf, size, "%s", b ? b + 1 : output);
        char *dot = strrchr(buf, '.');
        if (dot && dot != buf)
                *dot = '\0';
        return buf;
}
