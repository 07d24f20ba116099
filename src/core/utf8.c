/* SPDX-License-Identifier: Apache-2.0 */
/* utf8.c -- UTF-8 validation (see kinfer/core/utf8.h). */
#include "kinfer/core/utf8.h"

#include <stdint.h>
#include <string.h>

size_t kinfer_utf8_seq(const char *s, size_t len, int *valid)
{
        const unsigned char *u = (const unsigned char *)s;
        unsigned c = u[0];
        size_t n;
        unsigned lo = 0x80, hi = 0xbf; /* the range of the second byte (Table 3-7) */
        if (c < 0x80) {
                *valid = 1;
                return 1;
        }
        if (c >= 0xc2 && c <= 0xdf) {
                n = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
                n = 3;
                if (c == 0xe0)
                        lo = 0xa0; /* overlong */
                else if (c == 0xed)
                        hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
                n = 4;
                if (c == 0xf0)
                        lo = 0x90; /* overlong */
                else if (c == 0xf4)
                        hi = 0x8f; /* above U+10FFFF */
        } else {
                *valid = 0; /* 80..C1 (continuation, overlong 2-byte lead), F5..FF */
                return 1;
        }
        size_t i = 1;
        for (; i < n && i < len; i++) {
                if (u[i] < lo || u[i] > hi)
                        break;
                lo = 0x80;
                hi = 0xbf;
        }
        *valid = i == n;
        return i;
}

size_t kinfer_utf8_repair(const char *s, size_t len, char *out)
{
        size_t o = 0;
        for (size_t i = 0; i < len;) {
                int valid;
                size_t n = kinfer_utf8_seq(s + i, len - i, &valid);
                if (valid) {
                        if (out)
                                memcpy(out + o, s + i, n);
                        o += n;
                } else {
                        if (out)
                                memcpy(out + o, "\xef\xbf\xbd", 3);
                        o += 3;
                }
                i += n;
        }
        return o;
}

int kinfer_utf8_valid(const char *s, size_t len)
{
        size_t i = 0;
        while (i < len) {
                /* ASCII fast path: 8 bytes at a time */
                while (i + 8 <= len) {
                        uint64_t w;
                        memcpy(&w, s + i, 8);
                        if (w & UINT64_C(0x8080808080808080))
                                break;
                        i += 8;
                }
                if (i >= len)
                        break;
                if ((unsigned char)s[i] < 0x80) {
                        i++;
                        continue;
                }
                int valid;
                i += kinfer_utf8_seq(s + i, len - i, &valid);
                if (!valid)
                        return 0;
        }
        return 1;
}

_Static_assert(KINFER_LABEL_MAX_BYTES == 256, "kinfer_label_check's message says 256");

const char *kinfer_label_check(const char *s, size_t len)
{
        if (len == 0)
                return "the label is empty";
        if (len > KINFER_LABEL_MAX_BYTES)
                return "the label is longer than 256 bytes";
        const unsigned char *u = (const unsigned char *)s;
        for (size_t i = 0; i < len;) {
                int valid;
                size_t n = kinfer_utf8_seq(s + i, len - i, &valid);
                if (!valid)
                        return "the label is not valid UTF-8";
                if (u[i] < 0x20 || u[i] == 0x7f || (u[i] == 0xc2 && u[i + 1] < 0xa0))
                        return "the label holds a control character";
                if (u[i] == 0xe2 && u[i + 1] == 0x80 && (u[i + 2] == 0xa8 || u[i + 2] == 0xa9))
                        return "the label holds a line or paragraph separator";
                i += n;
        }
        return NULL;
}
