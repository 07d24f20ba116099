/* SPDX-License-Identifier: Apache-2.0 */
/* buf.c -- the growable byte buffer (see kinfer/core/buf.h). */
#include "kinfer/core/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static kinfer_err_t buf_fail(kinfer_buf_t *buf)
{
        buf->oom = 1;
        return KINFER_ERR__NOMEM;
}

kinfer_err_t kinfer_buf_reserve(kinfer_buf_t *buf, size_t extra)
{
        if (extra > SIZE_MAX - buf->len)
                return buf_fail(buf);
        size_t need = buf->len + extra;
        if (need <= buf->cap)
                return KINFER_OK;
        size_t cap = buf->cap ? buf->cap : 256;
        while (cap < need) {
                if (cap > SIZE_MAX / 2) {
                        cap = need;
                        break;
                }
                cap *= 2;
        }
        char *d = realloc(buf->data, cap);
        if (!d)
                return buf_fail(buf);
        buf->data = d;
        buf->cap = cap;
        return KINFER_OK;
}

kinfer_err_t kinfer_buf_append(kinfer_buf_t *buf, const void *bytes, size_t n)
{
        if (n == SIZE_MAX || kinfer_buf_reserve(buf, n + 1))
                return buf_fail(buf);
        if (n)
                memcpy(buf->data + buf->len, bytes, n);
        buf->len += n;
        buf->data[buf->len] = '\0';
        return KINFER_OK;
}

kinfer_err_t kinfer_buf_puts(kinfer_buf_t *buf, const char *s)
{
        return kinfer_buf_append(buf, s, strlen(s));
}

kinfer_err_t kinfer_buf_putc(kinfer_buf_t *buf, char c)
{
        return kinfer_buf_append(buf, &c, 1);
}

kinfer_err_t kinfer_buf_vprintf(kinfer_buf_t *buf, const char *fmt, va_list ap)
{
        for (;;) {
                va_list aq;
                va_copy(aq, ap);
                size_t room = buf->cap - buf->len;
                int n = vsnprintf(buf->data ? buf->data + buf->len : NULL, buf->data ? room : 0,
                                  fmt, aq);
                va_end(aq);
                if (n < 0)
                        return buf_fail(buf);
                if (buf->data && (size_t)n < room) {
                        buf->len += (size_t)n;
                        return KINFER_OK;
                }
                if (kinfer_buf_reserve(buf, (size_t)n + 1))
                        return KINFER_ERR__NOMEM;
        }
}

kinfer_err_t kinfer_buf_printf(kinfer_buf_t *buf, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        kinfer_err_t err = kinfer_buf_vprintf(buf, fmt, ap);
        va_end(ap);
        return err;
}

void kinfer_buf_reset(kinfer_buf_t *buf)
{
        buf->len = 0;
        buf->oom = 0;
        if (buf->data)
                buf->data[0] = '\0';
}

char *kinfer_buf_detach(kinfer_buf_t *buf)
{
        if (buf->oom || kinfer_buf_reserve(buf, 1)) {
                kinfer_buf_free(buf);
                return NULL;
        }
        buf->data[buf->len] = '\0';
        char *s = buf->data;
        *buf = (kinfer_buf_t){0};
        return s;
}

void kinfer_buf_free(kinfer_buf_t *buf)
{
        free(buf->data);
        *buf = (kinfer_buf_t){0};
}
