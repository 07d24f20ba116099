/* SPDX-License-Identifier: Apache-2.0 */
/* cli_util.c -- shared helpers of the subcommands. */
#include "cli/cli_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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
