/* SPDX-License-Identifier: Apache-2.0 */
/* json.h -- kinfer's one JSON string writer.
 *
 * kinfer_buf_json_str() is the only JSON string escaper: the codec's JSON output, META and
 * lineage text, the registry's label counts all go through it, so they follow one rule:
 *
 *   - the output is a JSON string literal with its quotes, valid JSON (RFC 8259) and valid
 *     UTF-8, whatever the input bytes;
 *   - `"` and `\` are escaped as \" and \\ ;
 *   - every control character is escaped: \n, \r and \t in their short form, the other bytes
 *     below 0x20 and DEL (0x7f) as \u00xx (lowercase hex); a NUL byte becomes \u0000;
 *   - well-formed UTF-8 sequences of 2, 3 and 4 bytes are copied as they are ('/' and
 *     non-ASCII characters are not escaped);
 *   - each ill-formed UTF-8 sequence (a stray continuation byte, an overlong form, a
 *     surrogate, a code point above U+10FFFF, a sequence cut short) is replaced by U+FFFD,
 *     one U+FFFD per maximal subpart (Unicode 15 section 3.9, "U+FFFD substitution of
 *     maximal subparts", as kinfer_utf8_seq() in kinfer/core/utf8.h measures it).
 */
#ifndef KINFER_JSON_H
#define KINFER_JSON_H

#include <stddef.h>

#include "kinfer/core/buf.h"
#include "kinfer/core/err.h"

/**
 * @brief Append the JSON string literal (quoted, escaped) for the @p len bytes at @p s.
 * @p s may be NULL when @p len is 0. The buffer stays NUL-terminated.
 * @returns KINFER_OK, or KINFER_ERR__NOMEM (sets buf->oom).
 */
kinfer_err_t kinfer_buf_json_str(kinfer_buf_t *buf, const char *s, size_t len);

/** kinfer_buf_json_str() of a C string; NULL is written as "". */
kinfer_err_t kinfer_buf_json_cstr(kinfer_buf_t *buf, const char *s);

#endif
