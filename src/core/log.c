/* SPDX-License-Identifier: Apache-2.0 */
/* log.c -- the single log sink: "ts=... level=... fac=... msg" lines on stderr, logfmt values
 * quoted and escaped (below). */
#include "kinfer/core/log.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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

/* ---- logfmt: a value is quoted and escaped when it needs it --------------------------------
 * kinfer_log0 formats the printf-style message itself, so that every call site is escaped the
 * same way without wrapping its arguments:
 *   - a %s right after '=' (key=%s) is a value: written bare when it is non-empty and has no
 *     space, '"', '=', '\\' or control character, else in double quotes with \" \\ \n \r \t
 *     and \u00XX escapes;
 *   - a %s inside quotes written by the format (key="%s") gets the same escapes, no new quotes;
 *   - any other %s (free text) has its control characters escaped, so a line stays one line.
 * Numbers and the other conversions are printed by vsnprintf's rules. */
typedef struct {
        char *p;
        size_t left; /* bytes left for text, the NUL excluded */
} out_t;

static void out_mem(out_t *o, const char *s, size_t n)
{
        if (n > o->left)
                n = o->left;
        memcpy(o->p, s, n);
        o->p += n;
        o->left -= n;
        *o->p = '\0';
}

static void out_esc(out_t *o, const char *s, size_t n, int quoting)
{
        for (size_t i = 0; i < n && s[i]; i++) {
                unsigned char c = (unsigned char)s[i];
                char e[8];
                if (c == '\n')
                        out_mem(o, "\\n", 2);
                else if (c == '\r')
                        out_mem(o, "\\r", 2);
                else if (c == '\t')
                        out_mem(o, "\\t", 2);
                else if (c < 0x20 || c == 0x7f)
                        snprintf(e, sizeof(e), "\\u%04x", c), out_mem(o, e, 6);
                else if (quoting && (c == '"' || c == '\\'))
                        e[0] = '\\', e[1] = (char)c, out_mem(o, e, 2);
                else
                        out_mem(o, (const char *)&s[i], 1);
        }
}

static int needs_quotes(const char *s, size_t n)
{
        if (!n || !*s)
                return 1;
        for (size_t i = 0; i < n && s[i]; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
                        return 1;
        }
        return 0;
}

static void format_line(char *line, size_t size, const char *fmt, va_list ap)
{
        out_t o = {line, size - 1};
        *line = '\0';
        int in_quotes = 0; /* inside a "..." written by the format itself */
        for (const char *f = fmt; *f;) {
                if (*f != '%') {
                        if (*f == '"')
                                in_quotes = !in_quotes;
                        out_mem(&o, f++, 1);
                        continue;
                }
                const char *start = f++;
                if (*f == '%') {
                        out_mem(&o, "%", 1);
                        f++;
                        continue;
                }
                char spec[32];
                int width = -1, prec = -1, star_w = 0, star_p = 0;
                while (*f && strchr("-+ #0'", *f))
                        f++;
                int left = 0;
                for (const char *q = start + 1; q < f; q++)
                        left |= *q == '-';
                if (*f == '*')
                        star_w = 1, f++;
                else if (*f >= '1' && *f <= '9')
                        width = (int)strtol(f, NULL, 10);
                while (*f >= '0' && *f <= '9')
                        f++;
                if (*f == '.') {
                        f++;
                        if (*f == '*')
                                star_p = 1, f++;
                        else
                                prec = (int)strtol(f, NULL, 10);
                        while (*f >= '0' && *f <= '9')
                                f++;
                }
                int lng = 0; /* 1 l, 2 ll, 3 z, 4 j, 5 t, 6 L */
                while (*f && strchr("hlzjtLq", *f)) {
                        if (*f == 'l')
                                lng = lng == 1 ? 2 : 1;
                        else if (*f == 'z')
                                lng = 3;
                        else if (*f == 'j')
                                lng = 4;
                        else if (*f == 't')
                                lng = 5;
                        else if (*f == 'L' || *f == 'q')
                                lng = *f == 'q' ? 2 : 6;
                        f++;
                }
                char conv = *f ? *f++ : '\0';
                size_t slen = (size_t)(f - start);
                if (slen >= sizeof(spec) || !conv) { /* not a conversion we know: copy it */
                        out_mem(&o, start, (size_t)(f - start));
                        continue;
                }
                memcpy(spec, start, slen);
                spec[slen] = '\0';
                if (star_w)
                        width = va_arg(ap, int);
                if (star_p)
                        prec = va_arg(ap, int);
                char num[128];
                int n = -1;
#define FMT1(v)                                                                                    \
        (star_w && star_p ? snprintf(num, sizeof(num), spec, width, prec, v)                       \
         : star_w         ? snprintf(num, sizeof(num), spec, width, v)                             \
         : star_p         ? snprintf(num, sizeof(num), spec, prec, v)                              \
                          : snprintf(num, sizeof(num), spec, v))
                switch (conv) {
                case 's': {
                        const char *v = va_arg(ap, const char *);
                        if (!v)
                                v = "(null)";
                        size_t vn = prec >= 0 ? strnlen(v, (size_t)prec) : strlen(v);
                        int is_value = start > fmt && start[-1] == '=';
                        if (width < 0 && star_w)
                                left = 1, width = -width;
                        size_t pad = width > 0 && (size_t)width > vn ? (size_t)width - vn : 0;
                        for (size_t i = 0; i < pad && !left; i++)
                                out_mem(&o, " ", 1);
                        if (in_quotes) {
                                out_esc(&o, v, vn, 1);
                        } else if (is_value && needs_quotes(v, vn)) {
                                out_mem(&o, "\"", 1);
                                out_esc(&o, v, vn, 1);
                                out_mem(&o, "\"", 1);
                        } else {
                                out_esc(&o, v, vn, 0);
                        }
                        for (size_t i = 0; i < pad && left; i++)
                                out_mem(&o, " ", 1);
                        continue;
                }
                case 'c': n = FMT1(va_arg(ap, int)); break;
                case 'p': n = FMT1(va_arg(ap, void *)); break;
                case 'd': case 'i': case 'u': case 'x': case 'X': case 'o':
                        switch (lng) {
                        case 1: n = FMT1(va_arg(ap, long)); break;
                        case 2: n = FMT1(va_arg(ap, long long)); break;
                        case 3: n = FMT1(va_arg(ap, size_t)); break;
                        case 4: n = FMT1(va_arg(ap, intmax_t)); break;
                        case 5: n = FMT1(va_arg(ap, ptrdiff_t)); break;
                        default: n = FMT1(va_arg(ap, int)); break;
                        }
                        break;
                case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': case 'a': case 'A':
                        if (lng == 6)
                                n = FMT1(va_arg(ap, long double));
                        else
                                n = FMT1(va_arg(ap, double));
                        break;
                default: /* %n and unknown conversions: not printed, nothing consumed */
                        continue;
                }
#undef FMT1
                if (n > 0)
                        out_mem(&o, num, (size_t)n < sizeof(num) ? (size_t)n : sizeof(num) - 1);
        }
}

void kinfer_log0(int level, const char *fac, const char *fmt, ...)
{
        static const char *lvl[] = {"emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"};
        char line[2048];
        va_list ap;
        va_start(ap, fmt);
        format_line(line, sizeof(line), fmt, ap);
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
