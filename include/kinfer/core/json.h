/* SPDX-License-Identifier: Apache-2.0 */
/* json.h -- kinfer's one JSON string writer, and a small strict JSON reader.
 *
 * ---- Writing strings ------------------------------------------------------------------------
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
#include <stdint.h>

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

/* ---- Reading ---------------------------------------------------------------------------------
 *
 * kinfer_json_parse() reads JSON text (RFC 8259) that comes from outside (model META from the
 * registry, files) into a read-only tree. It is strict, and bounded by its input:
 *
 *   - at most KINFER_JSON_MAX_BYTES of text and KINFER_JSON_MAX_DEPTH nested arrays/objects;
 *   - the text must be valid UTF-8 (kinfer/core/utf8.h), with no byte-order mark;
 *   - one value, then only whitespace: trailing garbage is refused;
 *   - strings: no raw control characters, only the escapes of RFC 8259, \u escapes of
 *     surrogates only as a high + low pair, and no NUL (neither raw nor \u0000), so every
 *     string is also a C string;
 *   - numbers: the RFC 8259 grammar (no leading zeros, '+', '.5', hex, NaN or Infinity); one
 *     without fraction or exponent is an integer and must fit int64_t; the others are reals
 *     and must be finite as a double (underflow to 0 is accepted); at most 64 characters;
 *   - object member names are unique; member and element order is kept.
 *
 * The accessors take NULL (and a value of the wrong type) and then answer "absent", so a path
 * can be followed without checks: kinfer_json_str(kinfer_json_get(kinfer_json_get(root,
 * "lineage"), "method"), NULL).
 */

#define KINFER_JSON_MAX_DEPTH 64
#define KINFER_JSON_MAX_BYTES ((size_t)1 << 20)

typedef enum {
        KINFER_JSON_NULL = 0,
        KINFER_JSON_FALSE,
        KINFER_JSON_TRUE,
        KINFER_JSON_INT,
        KINFER_JSON_REAL,
        KINFER_JSON_STRING,
        KINFER_JSON_ARRAY,
        KINFER_JSON_OBJECT,
} kinfer_json_type_t;

/** A parsed document: owns every value in it. */
typedef struct kinfer_json_doc_s kinfer_json_doc_t;
/** One value of a document (valid while the document lives). */
typedef struct kinfer_json_s kinfer_json_t;

/**
 * @brief Parse @p len bytes of JSON text.
 * @returns KINFER_OK and *@p docp (free it with kinfer_json_free()); KINFER_ERR__BAD_FORMAT
 *          with the problem and its line and column in @p errstr; KINFER_ERR__NOMEM.
 */
kinfer_err_t kinfer_json_parse(const char *text, size_t len, kinfer_json_doc_t **docp,
                               char *errstr, size_t errstr_size);
void kinfer_json_free(kinfer_json_doc_t *doc);

/** The top-level value. */
const kinfer_json_t *kinfer_json_root(const kinfer_json_doc_t *doc);

/** The type of @p v; KINFER_JSON_NULL for v == NULL too. */
kinfer_json_type_t kinfer_json_type(const kinfer_json_t *v);

/** Members of an object or elements of an array; 0 for anything else. */
size_t kinfer_json_size(const kinfer_json_t *v);

/** The member of object @p v named @p key, or NULL. */
const kinfer_json_t *kinfer_json_get(const kinfer_json_t *v, const char *key);

/** Element @p i of an array, or the value of member @p i of an object; NULL past the end. */
const kinfer_json_t *kinfer_json_at(const kinfer_json_t *v, size_t i);

/** The name of member @p i of object @p v (NUL-terminated), or NULL. */
const char *kinfer_json_key(const kinfer_json_t *v, size_t i);

/** A string's bytes (NUL-terminated, valid UTF-8, no NUL inside) and length, or NULL if @p v
 *  is not a string. @p lenp may be NULL. */
const char *kinfer_json_str(const kinfer_json_t *v, size_t *lenp);

/** @returns 1 and *@p out if @p v is an integer, else 0 (and *@p out = 0). */
int kinfer_json_int(const kinfer_json_t *v, int64_t *out);

/** @returns the number @p v holds (integer or real) as a double; 0 for anything else. */
double kinfer_json_number(const kinfer_json_t *v);

/**
 * @brief Append @p v as JSON text, pretty-printed with 2-space indentation as jansson's
 *        JSON_INDENT(2) | JSON_PRESERVE_ORDER prints it: members and elements one per line,
 *        `"key": value`, empty containers as {} and [], integers in decimal, reals as "%.17g"
 *        with a ".0" added when that looks like an integer and the exponent's '+' and
 *        leading zeros dropped; strings by kinfer_buf_json_str().
 * @p level is the indentation level @p v starts at (0 for a top-level value): nested lines
 * are indented by 2 * (level + depth) spaces.
 */
kinfer_err_t kinfer_json_write(kinfer_buf_t *buf, const kinfer_json_t *v, int level);

/** Append a real as kinfer_json_write() prints it. */
kinfer_err_t kinfer_json_write_real(kinfer_buf_t *buf, double d);

#endif
