/* SPDX-License-Identifier: Apache-2.0 */
/* log.h -- one leveled log sink (stderr by default), logfmt lines with a facility tag.
 *
 *   kinfer_log(KINFER_LOG_WARN, "BATCH", "flush reason=%s msgs=%d", reason, n);
 *
 * kinfer_log() checks the level before formatting, so a disabled level costs one compare.
 * Never log payload text at INFO or above. */
#ifndef KINFER_LOG_H
#define KINFER_LOG_H

typedef enum {
        KINFER_LOG_ERR = 3,
        KINFER_LOG_WARN = 4,
        KINFER_LOG_NOTICE = 5,
        KINFER_LOG_INFO = 6,
        KINFER_LOG_DEBUG = 7,
} kinfer_log_level_t;

typedef void(kinfer_log_sink_t)(int level, const char *fac, const char *line, void *opaque);

extern int kinfer_log_level; /* messages above this level are dropped; default INFO */

/** Replace the sink (NULL restores the stderr sink). @locality call before starting threads. */
void kinfer_log_set_sink(kinfer_log_sink_t *sink, void *opaque);
/** Parse "err|warn|notice|info|debug" or a syslog number; @returns -1 if unknown. */
int kinfer_log_level_parse(const char *s);

void kinfer_log0(int level, const char *fac, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define kinfer_log(level, fac, ...)                                                                \
        do {                                                                                       \
                if ((int)(level) <= kinfer_log_level)                                              \
                        kinfer_log0((level), (fac), __VA_ARGS__);                                  \
        } while (0)

#endif
