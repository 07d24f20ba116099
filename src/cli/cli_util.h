/* SPDX-License-Identifier: Apache-2.0 */
/* cli_util.h -- helpers shared by the subcommands: usage errors, number parsing, a
 * terminal progress line. */
#ifndef KINFER_CLI_UTIL_H
#define KINFER_CLI_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/train/train.h"

/* Print "kinfer CMD: message" to stderr. */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parse a whole number / float option value; on failure print an error naming the option
 * and return -1. */
int cli_parse_int(const char *cmd, const char *opt, const char *s, long min, long max, long *out);
int cli_parse_double(const char *cmd, const char *opt, const char *s, double min, double max,
                     double *out);
/* Monotonic seconds. */
double cli_now(void);
/* kinfer_train's progress callback, fastText style: on a terminal one line rewritten in
 * place (epoch, %, words/s, lr, loss, ETA), otherwise one line per epoch. opaque: unused. */
void cli_train_progress(const kinfer_train_progress_t *p, void *opaque);
/* The model name for an output path: its file name without the extension. @returns buf. */
const char *cli_default_name(const char *output, char *buf, size_t size);

#endif
