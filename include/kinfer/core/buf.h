/* SPDX-License-Identifier: Apache-2.0 */
/* buf.h -- kinfer's one growable byte buffer: output encodings (codec), JSON text (META,
 * evaluation reports, lineage parameters), anything built by appending.
 *
 * A zeroed kinfer_buf_t is an empty buffer: `kinfer_buf_t b = {0};`.
 *
 * Errors: every call returns KINFER_OK or KINFER_ERR__NOMEM, and a failure also sets the
 * sticky flag `oom`, so a sequence of appends may be checked once at the end:
 *
 *     kinfer_buf_printf(&b, "{\"n\": %d, \"name\": ", n);
 *     kinfer_buf_json_str(&b, name, strlen(name));      (kinfer/core/json.h)
 *     kinfer_buf_puts(&b, "}");
 *     if (b.oom) ...error...
 *
 * After a failed call the content is incomplete and must be discarded. Only kinfer_buf_reset()
 * and kinfer_buf_free() clear the flag (code that empties a buffer with `len = 0` keeps it).
 *
 * Text: the append calls (append, puts, putc, printf, json_str) keep a NUL after the last byte,
 * so `data` is a C string once anything was appended (a buffer never appended to may have
 * data == NULL). Writers that reserve and then store through `data + len` themselves (the
 * Avro encoder) do not keep that NUL.
 */
#ifndef KINFER_BUF_H
#define KINFER_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "kinfer/core/err.h"

typedef struct kinfer_buf_s {
        char *data;    /* malloc'd, NULL while empty */
        size_t len;    /* bytes used */
        size_t cap;    /* bytes allocated */
        int oom;       /* sticky: an allocation failed since the last reset */
} kinfer_buf_t;

/**
 * @brief Make room for @p extra more bytes after len (len itself is unchanged).
 * @returns KINFER_OK, or KINFER_ERR__NOMEM (sets oom).
 */
kinfer_err_t kinfer_buf_reserve(kinfer_buf_t *buf, size_t extra);

/** Append @p n bytes (may hold NULs). */
kinfer_err_t kinfer_buf_append(kinfer_buf_t *buf, const void *bytes, size_t n);

/** Append the C string @p s (without its NUL). */
kinfer_err_t kinfer_buf_puts(kinfer_buf_t *buf, const char *s);

/** Append one byte. */
kinfer_err_t kinfer_buf_putc(kinfer_buf_t *buf, char c);

/** Append printf-formatted text. An encoding error of vsnprintf counts as a failure (oom). */
kinfer_err_t kinfer_buf_printf(kinfer_buf_t *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
kinfer_err_t kinfer_buf_vprintf(kinfer_buf_t *buf, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/** Empty the buffer and clear oom; the memory is kept for reuse. */
void kinfer_buf_reset(kinfer_buf_t *buf);

/**
 * @brief Take the content as a malloc'd NUL-terminated string (the caller frees it) and leave
 *        @p buf empty (zeroed).
 * @returns the string ("" for an empty buffer), or NULL if oom is set or on out of memory
 *          (the buffer is freed either way).
 */
char *kinfer_buf_detach(kinfer_buf_t *buf);

/** Free the memory and zero the buffer. */
void kinfer_buf_free(kinfer_buf_t *buf);

#endif
