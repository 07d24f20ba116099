/* SPDX-License-Identifier: Apache-2.0 */
/* utf8.h -- UTF-8 validation (RFC 3629 / Unicode Table 3-7 "well-formed byte sequences").
 *
 * Valid means: no overlong forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no
 * truncated sequence. NUL bytes are valid UTF-8 (callers that refuse them check for them). */
#ifndef KINFER_UTF8_H
#define KINFER_UTF8_H

#include <stddef.h>

/** @returns 1 if the @p len bytes at @p s are valid UTF-8, else 0. */
int kinfer_utf8_valid(const char *s, size_t len);

/**
 * @brief Measure the sequence that starts at @p s (@p len > 0 bytes available).
 * @returns the number of bytes it takes, and *@p valid: 1 for a well-formed character; 0 for
 *          a "maximal subpart" of an ill-formed sequence (Unicode 15, section 3.9, "U+FFFD
 *          substitution of maximal subparts"): the longest prefix of a well-formed sequence
 *          found there, or one byte if the byte cannot start one. Replacing each maximal
 *          subpart by one U+FFFD is the W3C/WHATWG decoder behaviour.
 */
size_t kinfer_utf8_seq(const char *s, size_t len, int *valid);

/**
 * @brief The replacement rule, for output that must be valid UTF-8 but is not JSON (Avro
 *        strings): copy the @p len bytes at @p s to @p out with each ill-formed maximal
 *        subpart (kinfer_utf8_seq) replaced by one U+FFFD (EF BF BD); well-formed characters,
 *        NUL included, are copied as they are. kinfer_buf_json_str() (kinfer/core/json.h)
 *        applies the same rule before escaping.
 * @param out room for the result, or NULL to measure it only
 * @returns the result's length: @p len when the input is valid UTF-8, at most 3 * @p len.
 */
size_t kinfer_utf8_repair(const char *s, size_t len, char *out);

/** The longest label, in bytes (train, the model loader and the registry agree). */
#define KINFER_LABEL_MAX_BYTES 256

/**
 * @brief Check that the @p len bytes at @p s make a label: 1..KINFER_LABEL_MAX_BYTES bytes of
 *        valid UTF-8 without a control character (U+0000..U+001F, U+007F..U+009F) or a line
 *        or paragraph separator (U+2028, U+2029): a label is a name, printed on one line of
 *        text output, in JSON and in Avro strings.
 * @returns NULL for a good label, else a static message saying what is wrong.
 */
const char *kinfer_label_check(const char *s, size_t len);

#endif
