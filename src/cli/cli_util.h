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
/* fastText's single-dash long options (-input, -output, -epoch, -lr, -wordNgrams, -minn,
 * -maxn, -dim, -thread, -bucket, -minCount, -loss ...): rewrite in place those kinfer has as
 * the kinfer spelling (argv[i] points to a static string afterwards), so getopt does not read
 * -input as -i nput. A fastText option kinfer does not have is an error naming what to use
 * instead (printed as "kinfer CMD: ..."). Only the options getopt would misread are touched:
 * a single dash followed by two or more letters, outside option values and after "--".
 * @returns 0, or 2 (the exit code of a usage error). */
int cli_fasttext_aliases(const char *cmd, int argc, char **argv);
/* The line the usage texts print about the fastText spellings. */
#define CLI_FASTTEXT_HELP                                                                        \
        "fastText's single-dash spellings are accepted too: -input, -output, -epoch, -lr,\n"      \
        "-wordNgrams, -minn, -maxn, -dim, -thread, -bucket, -minCount.\n"
/* kinfer_dataset_load, then a notice on stderr when a header line was skipped:
 * "kinfer CMD: FILE:1: skipped the header line (column names, not a record)". */
kinfer_dataset_t *cli_dataset_load(const char *cmd, const char *path, int allow_unlabelled,
                                   char *errstr, size_t errstr_size);
/* The model name for an output path: its file name without the extension. @returns buf. */
const char *cli_default_name(const char *output, char *buf, size_t size);

#endif
