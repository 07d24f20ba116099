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
