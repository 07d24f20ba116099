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

#endif
