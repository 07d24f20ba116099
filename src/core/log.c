/* SPDX-License-Identifier: Apache-2.0 */
/* log.c -- the single log sink: "ts=... level=... fac=... msg" lines on stderr. */
#include "kinfer/core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <time.h>

int kinfer_log_level = KINFER_LOG_INFO;
static kinfer_log_sink_t *log_sink;
static void *log_opaque;

void kinfer_log_set_sink(kinfer_log_sink_t *sink, void *opaque)
{
        log_sink = sink;
        log_opaque = opaque;
}

int kinfer_log_level_parse(const char *s)
{
        static const char *names[] = {"emerg", "alert", "crit", "err", "warn", "notice", "info", "debug"};
        for (int i = 0; i < 8; i++)
                if (!strcasecmp(s, names[i]))
                        return i;
        if (!strcasecmp(s, "error")) return KINFER_LOG_ERR;
        if (!strcasecmp(s, "warning")) return KINFER_LOG_WARN;
        char *end;
        long v = strtol(s, &end, 10);
        if (*s && !*end && v >= 0 && v <= 7)
                return (int)v;
        return -1;
}

void kinfer_log0(int level, const char *fac, const char *fmt, ...)
{
        static const char *lvl[] = {"emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"};
        char line[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        if (log_sink) {
                log_sink(level, fac, line, log_opaque);
                return;
        }
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        fprintf(stderr, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s fac=%s %s\n",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                ts.tv_nsec / 1000000, lvl[level & 7], fac, line);
}
