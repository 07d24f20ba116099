/* SPDX-License-Identifier: Apache-2.0 */
/* json.c -- the JSON string writer (see kinfer/core/json.h). */
#include "kinfer/core/json.h"

#include <stdint.h>
#include <string.h>

#include "kinfer/core/utf8.h"

/* 1 for the ASCII bytes copied as they are */
static int json_plain(unsigned char c)
{
        return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

kinfer_err_t kinfer_buf_json_str(kinfer_buf_t *buf, const char *s, size_t len)
{
        /* worst case: 6 output bytes per input byte (\u00xx), plus the quotes and a NUL */
        if (len > (SIZE_MAX - 3) / 6) {
                buf->oom = 1;
                return KINFER_ERR__NOMEM;
        }
        if (kinfer_buf_reserve(buf, len * 6 + 3))
                return KINFER_ERR__NOMEM;
        static const char hex[] = "0123456789abcdef";
        const unsigned char *u = (const unsigned char *)s;
        char *o = buf->data + buf->len;
        *o++ = '"';
        size_t i = 0;
        while (i < len) {
                size_t run = i;
                while (run < len && json_plain(u[run]))
                        run++;
                if (run > i) {
                        memcpy(o, u + i, run - i);
                        o += run - i;
                        i = run;
                        if (i == len)
                                break;
                }
                unsigned char c = u[i];
                if (c == '"' || c == '\\') {
                        *o++ = '\\';
                        *o++ = (char)c;
                        i++;
                } else if (c < 0x80) { /* a control character or DEL */
                        *o++ = '\\';
                        switch (c) {
                        case '\n': *o++ = 'n'; break;
                        case '\r': *o++ = 'r'; break;
                        case '\t': *o++ = 't'; break;
                        default:
                                memcpy(o, "u00", 3);
                                o += 3;
                                *o++ = hex[c >> 4];
                                *o++ = hex[c & 15];
                        }
                        i++;
                } else {
                        int valid;
                        size_t n = kinfer_utf8_seq(s + i, len - i, &valid);
                        if (valid) {
                                memcpy(o, u + i, n);
                                o += n;
                        } else {
                                memcpy(o, "\xef\xbf\xbd", 3);
                                o += 3;
                        }
                        i += n;
                }
        }
        *o++ = '"';
        *o = '\0';
        buf->len = (size_t)(o - buf->data);
        return KINFER_OK;
}

kinfer_err_t kinfer_buf_json_cstr(kinfer_buf_t *buf, const char *s)
{
        return kinfer_buf_json_str(buf, s ? s : "", s ? strlen(s) : 0);
}
