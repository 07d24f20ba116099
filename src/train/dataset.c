/* SPDX-License-Identifier: Apache-2.0 */
/* dataset.c -- read TSV / fastText / plain-line data files; errors name the file and line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kinfer/core/sha256.h"
#include "kinfer/core/utf8.h"
#include "kinfer/train/train.h"
#include "train/train_int.h"

void kinfer_dataset_destroy(kinfer_dataset_t *ds)
{
        if (!ds)
                return;
        free(ds->texts);
        free(ds->lens);
        free(ds->labels);
        free(ds->line_no);
        free(ds->words);
        free(ds->buf);
        free(ds);
}

static char *read_file(const char *path, size_t *lenp, char *errstr, size_t errstr_size)
{
        FILE *fp = !strcmp(path, "-") ? stdin : fopen(path, "rb");
        if (!fp) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO, "%s: %s", path, strerror(errno));
                return NULL;
        }
        size_t cap = 1 << 20, len = 0;
        char *buf = malloc(cap);
        while (buf) {
                size_t r = fread(buf + len, 1, cap - len - 1, fp);
                len += r;
                if (len + 1 < cap) {
                        if (ferror(fp)) {
                                kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO, "%s: read error", path);
                                free(buf);
                                buf = NULL;
                        }
                        break;
                }
                cap *= 2;
                char *nb = realloc(buf, cap);
                if (!nb) {
                        free(buf);
                        buf = NULL;
                }
                buf = nb;
        }
        if (fp != stdin)
                fclose(fp);
        if (!buf) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "%s: out of memory", path);
                return NULL;
        }
        buf[len] = '\0';
        *lenp = len;
        return buf;
}

/* Split the non-blank line @p s (NUL-terminated at @p eol) of a file of @p format into its
 * label (NULL for plain lines) and text; TSV and fastText lines are cut in place. */
static kinfer_err_t split_line(kinfer_data_format_t format, char *s, char *eol, const char **label,
                               const char **text, const char *path, int32_t line, char *errstr,
                               size_t errstr_size)
{
        *label = NULL;
        *text = s;
        if (format == KINFER_DATA_TSV) {
                char *tab = strchr(s, '\t');
                if (!tab || tab == s)
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                             "%s:%d: %s: expected label<TAB>text", path, line,
                                             tab ? "empty label" : "no tab");
                *tab = '\0';
                *label = s;
                *text = tab + 1;
        } else if (format == KINFER_DATA_FASTTEXT) {
                if (strncmp(s, "__label__", 9) || s[9] == '\0' || s[9] == ' ')
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                             "%s:%d: expected __label__LABEL text", path, line);
                char *sp = strpbrk(s + 9, " \t");
                *label = s + 9;
                if (sp) {
                        *sp = '\0';
                        *text = sp + 1;
                } else {
                        *text = eol;
                }
                /* further __label__ tokens (multi-label lines): the first label wins */
                while (!strncmp(*text, "__label__", 9)) {
                        const char *sp2 = strpbrk(*text, " \t");
                        *text = sp2 ? sp2 + 1 : eol;
                }
        }
        return KINFER_OK;
}

/* Whether the first TSV line's fields are column names, as a spreadsheet or pandas writes
 * them: "label<TAB>text" and the like (case-insensitive; the text field may carry more
 * columns). Such a line is skipped; a record that happens to read "label<TAB>text" is lost,
 * which is the lesser evil against a class named "label". */
static int is_header(const char *label, const char *text)
{
        static const char *const labels[] = {"label", "labels", "class", "category", "target", NULL};
        static const char *const texts[] = {"text", "sentence", "document", "content", "body", NULL};
        int l = 0, t = 0;
        for (int i = 0; labels[i]; i++)
                l |= !strcasecmp(label, labels[i]);
        size_t n = strcspn(text, "\t");
        for (int i = 0; texts[i]; i++)
                t |= strlen(texts[i]) == n && !strncasecmp(text, texts[i], n);
        return l && t;
}

/* The format of a file from its first non-blank line @p s, or 0. */
static kinfer_data_format_t detect_format(const char *s, int allow_unlabelled)
{
        if (!strncmp(s, "__label__", 9))
                return KINFER_DATA_FASTTEXT;
        if (strchr(s, '\t'))
                return KINFER_DATA_TSV;
        return allow_unlabelled ? KINFER_DATA_LINES : 0;
}

static int32_t count_words(const char *text, const char *eol)
{
        int32_t words = 0, in = 0;
        for (const char *q = text; q < eol; q++) {
                int sp = *q == ' ' || *q == '\t';
                words += !sp && !in;
                in = !sp;
        }
        return words;
}

/* Every record of ds->buf (len bytes) into the dataset's arrays (sized for every line); the
 * buffer's first line is line @p line0 + 1 of the file (a header is looked for on line 1 only). */
static kinfer_err_t parse(kinfer_dataset_t *ds, const char *path, size_t len, int allow_unlabelled,
                          int32_t line0, char *errstr, size_t errstr_size)
{
        char *p = ds->buf, *end = ds->buf + len;
        int32_t line = line0;
        while (p < end) {
                char *nl = memchr(p, '\n', (size_t)(end - p));
                char *eol = nl ? nl : end;
                line++;
                if (eol > p && eol[-1] == '\r')
                        eol[-1] = '\0', eol--;
                *eol = '\0';
                char *s = p;
                p = nl ? nl + 1 : end;
                if (s == eol)
                        continue; /* blank line */
                if (!ds->format && !(ds->format = detect_format(s, allow_unlabelled)))
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                             "%s:%d: neither TSV (label<TAB>text) nor fastText "
                                             "(__label__LABEL text)", path, line);
                const char *label, *text;
                kinfer_err_t err = split_line(ds->format, s, eol, &label, &text, path, line, errstr,
                                              errstr_size);
                if (err)
                        return err;
                if (ds->n == 0 && !ds->header_line && !line0 && ds->format == KINFER_DATA_TSV &&
                    is_header(label, text)) {
                        ds->header_line = line; /* column names, not a record */
                        continue;
                }
                const char *bad = label ? kinfer_label_check(label, strlen(label)) : NULL;
                if (bad)
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                             "%s:%d: %s (a label is 1..%d bytes of UTF-8 without "
                                             "control characters)", path, line, bad,
                                             KINFER_LABEL_MAX_BYTES);
                int32_t i = ds->n++;
                ds->texts[i] = text;
                ds->lens[i] = (size_t)(eol - text);
                ds->labels[i] = label;
                ds->line_no[i] = line;
                ds->words[i] = count_words(text, eol);
        }
        if (ds->n == 0)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT, "%s: no records",
                                     path);
        return KINFER_OK;
}

kinfer_dataset_t *kinfer_dataset_load(const char *path, int allow_unlabelled, char *errstr,
                                      size_t errstr_size)
{
        kinfer_dataset_t *ds = calloc(1, sizeof(*ds));
        if (!ds) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        size_t len;
        if (!(ds->buf = read_file(path, &len, errstr, errstr_size))) {
                free(ds);
                return NULL;
        }
        return kinfer_dataset_from_buf(ds, path, len, allow_unlabelled, 0, NULL, errstr, errstr_size);
}

kinfer_dataset_t *kinfer_dataset_from_buf(kinfer_dataset_t *ds, const char *path, size_t len,
                                          int allow_unlabelled, int32_t line0,
                                          const uint8_t sha256[32], char *errstr, size_t errstr_size)
{
        snprintf(ds->path, sizeof(ds->path), "%s", path);
        if (sha256) {
                memcpy(ds->sha256, sha256, 32);
        } else if (kinfer_sha256(ds->buf, len, ds->sha256)) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__CRYPTO, "%s: cannot compute its sha256",
                              path);
                kinfer_dataset_destroy(ds);
                return NULL;
        }
        size_t n_lines = 1;
        for (size_t i = 0; i < len; i++)
                n_lines += ds->buf[i] == '\n';
        ds->texts = malloc(n_lines * sizeof(*ds->texts));
        ds->lens = malloc(n_lines * sizeof(*ds->lens));
        ds->labels = malloc(n_lines * sizeof(*ds->labels));
        ds->line_no = malloc(n_lines * sizeof(*ds->line_no));
        ds->words = malloc(n_lines * sizeof(*ds->words));
        if (!ds->texts || !ds->lens || !ds->labels || !ds->line_no || !ds->words) {
                kinfer_dataset_destroy(ds);
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "%s: out of memory", path);
                return NULL;
        }
        if (parse(ds, path, len, allow_unlabelled, line0, errstr, errstr_size)) {
                kinfer_dataset_destroy(ds);
                return NULL;
        }
        if (ds->format == KINFER_DATA_LINES) {
                free(ds->labels);
                ds->labels = NULL;
        }
        return ds;
}
