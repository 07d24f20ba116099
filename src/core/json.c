/* SPDX-License-Identifier: Apache-2.0 */
/* json.c -- the JSON string writer (see kinfer/core/json.h). */
#include "kinfer/core/json.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- reading -------------------------------------------------------------------------------- */

struct kinfer_json_s {
        kinfer_json_type_t type;
        size_t n;        /* string: bytes; array/object: elements/members */
        const char *key; /* object member: its name (NUL-terminated, in the pool) */
        union {
                int64_t i;
                double d;
                const char *s;              /* string (NUL-terminated, in the pool) */
                size_t first;               /* array/object while parsing: its first child */
                const kinfer_json_t *kids;  /* array/object: its children, in order */
        } u;
};

struct kinfer_json_doc_s {
        kinfer_json_t *nodes; /* every value; children of one container are contiguous */
        size_t n_nodes;
        char *pool;           /* decoded strings and member names */
        const kinfer_json_t *root;
};

typedef struct jp_s {
        const char *text, *p, *end;
        char *pool;
        size_t pool_used;
        kinfer_json_t *nodes; /* finished values */
        size_t n_nodes, cap_nodes;
        kinfer_json_t *stk;   /* children of the containers being read */
        size_t n_stk, cap_stk;
        char *errstr;
        size_t errstr_size;
        kinfer_err_t err;
} jp_t;

static int jp_fail(jp_t *jp, const char *what)
{
        size_t line = 1, col = 1;
        for (const char *q = jp->text; q < jp->p && q < jp->end; q++) {
                if (*q == '\n') {
                        line++;
                        col = 1;
                } else {
                        col++;
                }
        }
        jp->err = kinfer_seterr(jp->errstr, jp->errstr_size, KINFER_ERR__BAD_FORMAT,
                                "%s at line %zu, column %zu", what, line, col);
        return -1;
}

static int jp_oom(jp_t *jp)
{
        jp->err = kinfer_seterr(jp->errstr, jp->errstr_size, KINFER_ERR__NOMEM, "out of memory");
        return -1;
}

static int jp_grow(jp_t *jp, kinfer_json_t **arr, size_t *cap, size_t need)
{
        if (need <= *cap)
                return 0;
        size_t c = *cap ? *cap * 2 : 64;
        while (c < need)
                c *= 2;
        kinfer_json_t *a = realloc(*arr, c * sizeof(**arr));
        if (!a)
                return jp_oom(jp);
        *arr = a;
        *cap = c;
        return 0;
}

static void jp_ws(jp_t *jp)
{
        while (jp->p < jp->end &&
               (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r'))
                jp->p++;
}

static int hex4(const char *p, unsigned *out)
{
        unsigned v = 0;
        for (int i = 0; i < 4; i++) {
                char c = p[i];
                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (unsigned)(c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (unsigned)(c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (unsigned)(c - 'A' + 10);
                else
                        return -1;
        }
        *out = v;
        return 0;
}

/* Read a string literal at jp->p (on its '"') into the pool. */
static int jp_string(jp_t *jp, const char **out, size_t *lenp)
{
        char *start = jp->pool + jp->pool_used, *o = start;
        jp->p++;
        for (;;) {
                if (jp->p >= jp->end)
                        return jp_fail(jp, "unterminated string");
                unsigned char c = (unsigned char)*jp->p;
                if (c == '"') {
                        jp->p++;
                        break;
                }
                if (c < 0x20)
                        return jp_fail(jp, "control character in a string");
                if (c >= 0x80) {
                        int valid;
                        size_t n = kinfer_utf8_seq(jp->p, (size_t)(jp->end - jp->p), &valid);
                        if (!valid)
                                return jp_fail(jp, "invalid UTF-8 in a string");
                        memcpy(o, jp->p, n);
                        o += n;
                        jp->p += n;
                        continue;
                }
                if (c != '\\') {
                        *o++ = (char)c;
                        jp->p++;
                        continue;
                }
                if (jp->end - jp->p < 2)
                        return jp_fail(jp, "unterminated string");
                char e = jp->p[1];
                switch (e) {
                case '"': case '\\': case '/': *o++ = e; break;
                case 'b': *o++ = '\b'; break;
                case 'f': *o++ = '\f'; break;
                case 'n': *o++ = '\n'; break;
                case 'r': *o++ = '\r'; break;
                case 't': *o++ = '\t'; break;
                case 'u': {
                        unsigned cp, lo;
                        if (jp->end - jp->p < 6 || hex4(jp->p + 2, &cp))
                                return jp_fail(jp, "bad \\u escape");
                        if (cp >= 0xdc00 && cp <= 0xdfff)
                                return jp_fail(jp, "lone low surrogate in a \\u escape");
                        if (cp >= 0xd800 && cp <= 0xdbff) {
                                if (jp->end - jp->p < 12 || jp->p[6] != '\\' || jp->p[7] != 'u' ||
                                    hex4(jp->p + 8, &lo) || lo < 0xdc00 || lo > 0xdfff)
                                        return jp_fail(jp, "lone high surrogate in a \\u escape");
                                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                                jp->p += 6;
                        }
                        if (cp == 0)
                                return jp_fail(jp, "NUL (\\u0000) in a string");
                        if (cp < 0x80) {
                                *o++ = (char)cp;
                        } else if (cp < 0x800) {
                                *o++ = (char)(0xc0 | cp >> 6);
                                *o++ = (char)(0x80 | (cp & 0x3f));
                        } else if (cp < 0x10000) {
                                *o++ = (char)(0xe0 | cp >> 12);
                                *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                                *o++ = (char)(0x80 | (cp & 0x3f));
                        } else {
                                *o++ = (char)(0xf0 | cp >> 18);
                                *o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
                                *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                                *o++ = (char)(0x80 | (cp & 0x3f));
                        }
                        jp->p += 4; /* + the 2 below */
                        break;
                }
                default:
                        return jp_fail(jp, "bad escape in a string");
                }
                jp->p += 2;
        }
        /* decoded bytes + NUL never exceed the literal's length with its quotes: the pool
         * (text length + 1) cannot overflow */
        *o = '\0';
        *out = start;
        *lenp = (size_t)(o - start);
        jp->pool_used += (size_t)(o - start) + 1;
        return 0;
}

static int is_digit(const char *p, const char *end)
{
        return p < end && *p >= '0' && *p <= '9';
}

static int jp_number(jp_t *jp, kinfer_json_t *v)
{
        const char *s = jp->p, *p = jp->p, *end = jp->end;
        int real = 0;
        if (p < end && *p == '-')
                p++;
        if (p < end && *p == '0') {
                p++;
        } else if (is_digit(p, end)) {
                while (is_digit(p, end))
                        p++;
        } else {
                return jp_fail(jp, "bad number");
        }
        if (p < end && *p == '.') {
                p++;
                real = 1;
                if (!is_digit(p, end)) {
                        jp->p = p;
                        return jp_fail(jp, "bad number: no digit after '.'");
                }
                while (is_digit(p, end))
                        p++;
        }
        if (p < end && (*p == 'e' || *p == 'E')) {
                p++;
                real = 1;
                if (p < end && (*p == '+' || *p == '-'))
                        p++;
                if (!is_digit(p, end)) {
                        jp->p = p;
                        return jp_fail(jp, "bad number: no digit in the exponent");
                }
                while (is_digit(p, end))
                        p++;
        }
        char tmp[65];
        size_t n = (size_t)(p - s);
        if (n >= sizeof(tmp))
                return jp_fail(jp, "number longer than 64 characters");
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        errno = 0;
        if (real) {
                double d = strtod(tmp, NULL);
                if (isinf(d) || isnan(d))
                        return jp_fail(jp, "number out of range");
                v->type = KINFER_JSON_REAL;
                v->u.d = d;
        } else {
                long long i = strtoll(tmp, NULL, 10);
                if (errno == ERANGE)
                        return jp_fail(jp, "integer out of range");
                v->type = KINFER_JSON_INT;
                v->u.i = (int64_t)i;
        }
        jp->p = p;
        return 0;
}

static int key_cmp(const void *a, const void *b)
{
        return strcmp((*(const kinfer_json_t *const *)a)->key, (*(const kinfer_json_t *const *)b)->key);
}

/* @returns the duplicated name among @p n members, or NULL (or sets *oom). */
static const char *dup_key(const kinfer_json_t *m, size_t n, int *oom)
{
        if (n <= 16) {
                for (size_t i = 1; i < n; i++)
                        for (size_t j = 0; j < i; j++)
                                if (!strcmp(m[i].key, m[j].key))
                                        return m[i].key;
                return NULL;
        }
        const kinfer_json_t **v = malloc(n * sizeof(*v));
        if (!v) {
                *oom = 1;
                return NULL;
        }
        for (size_t i = 0; i < n; i++)
                v[i] = &m[i];
        qsort(v, n, sizeof(*v), key_cmp);
        const char *dup = NULL;
        for (size_t i = 1; i < n && !dup; i++)
                if (!strcmp(v[i]->key, v[i - 1]->key))
                        dup = v[i]->key;
        free(v);
        return dup;
}

static int jp_value(jp_t *jp, int depth, kinfer_json_t *v);

static int jp_container(jp_t *jp, int depth, kinfer_json_t *v)
{
        int obj = *jp->p == '{';
        char close = obj ? '}' : ']';
        if (depth > KINFER_JSON_MAX_DEPTH)
                return jp_fail(jp, "arrays/objects nested deeper than "
                                   "KINFER_JSON_MAX_DEPTH (64)");
        jp->p++;
        size_t base = jp->n_stk;
        v->type = obj ? KINFER_JSON_OBJECT : KINFER_JSON_ARRAY;
        jp_ws(jp);
        if (jp->p < jp->end && *jp->p == close) {
                jp->p++;
                v->n = 0;
                v->u.first = 0;
                return 0;
        }
        for (;;) {
                kinfer_json_t child = {0};
                if (obj) {
                        jp_ws(jp);
                        if (jp->p >= jp->end || *jp->p != '"')
                                return jp_fail(jp, "expected a member name");
                        size_t klen;
                        if (jp_string(jp, &child.key, &klen))
                                return -1;
                        jp_ws(jp);
                        if (jp->p >= jp->end || *jp->p != ':')
                                return jp_fail(jp, "expected ':' after a member name");
                        jp->p++;
                }
                if (jp_value(jp, depth, &child))
                        return -1;
                if (jp_grow(jp, &jp->stk, &jp->cap_stk, jp->n_stk + 1))
                        return -1;
                jp->stk[jp->n_stk++] = child;
                jp_ws(jp);
                if (jp->p >= jp->end)
                        return jp_fail(jp, obj ? "unterminated object" : "unterminated array");
                if (*jp->p == ',') {
                        jp->p++;
                        continue;
                }
                if (*jp->p == close) {
                        jp->p++;
                        break;
                }
                return jp_fail(jp, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
        size_t n = jp->n_stk - base;
        if (obj) {
                int oom = 0;
                const char *dup = dup_key(jp->stk + base, n, &oom);
                if (oom)
                        return jp_oom(jp);
                if (dup) {
                        char what[96];
                        snprintf(what, sizeof(what), "duplicate member name \"%.40s\"", dup);
                        return jp_fail(jp, what);
                }
        }
        if (jp_grow(jp, &jp->nodes, &jp->cap_nodes, jp->n_nodes + n))
                return -1;
        memcpy(jp->nodes + jp->n_nodes, jp->stk + base, n * sizeof(*jp->nodes));
        v->n = n;
        v->u.first = jp->n_nodes;
        jp->n_nodes += n;
        jp->n_stk = base;
        return 0;
}

static int jp_literal(jp_t *jp, const char *word, kinfer_json_type_t type, kinfer_json_t *v)
{
        size_t n = strlen(word);
        if ((size_t)(jp->end - jp->p) < n || memcmp(jp->p, word, n))
                return jp_fail(jp, "unexpected character");
        jp->p += n;
        v->type = type;
        return 0;
}

static int jp_value(jp_t *jp, int depth, kinfer_json_t *v)
{
        jp_ws(jp);
        if (jp->p >= jp->end)
                return jp_fail(jp, "unexpected end of text");
        switch (*jp->p) {
        case '{':
        case '[':
                return jp_container(jp, depth + 1, v);
        case '"':
                v->type = KINFER_JSON_STRING;
                return jp_string(jp, &v->u.s, &v->n);
        case 't': return jp_literal(jp, "true", KINFER_JSON_TRUE, v);
        case 'f': return jp_literal(jp, "false", KINFER_JSON_FALSE, v);
        case 'n': return jp_literal(jp, "null", KINFER_JSON_NULL, v);
        default:
                if (*jp->p == '-' || (*jp->p >= '0' && *jp->p <= '9'))
                        return jp_number(jp, v);
                return jp_fail(jp, "unexpected character");
        }
}

kinfer_err_t kinfer_json_parse(const char *text, size_t len, kinfer_json_doc_t **docp,
                               char *errstr, size_t errstr_size)
{
        *docp = NULL;
        if (len > KINFER_JSON_MAX_BYTES)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                                     "JSON text of %zu bytes, more than the %zu allowed", len,
                                     KINFER_JSON_MAX_BYTES);
        jp_t jp = {.text = text, .p = text, .end = text + len, .errstr = errstr,
                   .errstr_size = errstr_size};
        kinfer_json_doc_t *doc = calloc(1, sizeof(*doc));
        jp.pool = malloc(len + 1);
        if (!doc || !jp.pool) {
                jp_oom(&jp);
                goto fail;
        }
        kinfer_json_t root = {0};
        if (jp_value(&jp, 0, &root))
                goto fail;
        jp_ws(&jp);
        if (jp.p != jp.end) {
                jp_fail(&jp, "trailing characters after the JSON value");
                goto fail;
        }
        if (jp_grow(&jp, &jp.nodes, &jp.cap_nodes, jp.n_nodes + 1))
                goto fail;
        jp.nodes[jp.n_nodes++] = root;
        for (size_t i = 0; i < jp.n_nodes; i++) {
                kinfer_json_t *v = &jp.nodes[i];
                if (v->type == KINFER_JSON_ARRAY || v->type == KINFER_JSON_OBJECT)
                        v->u.kids = jp.nodes + v->u.first;
        }
        doc->nodes = jp.nodes;
        doc->n_nodes = jp.n_nodes;
        doc->pool = jp.pool;
        doc->root = &jp.nodes[jp.n_nodes - 1];
        free(jp.stk);
        *docp = doc;
        return KINFER_OK;
fail:
        free(jp.nodes);
        free(jp.stk);
        free(jp.pool);
        free(doc);
        return jp.err;
}

void kinfer_json_free(kinfer_json_doc_t *doc)
{
        if (!doc)
                return;
        free(doc->nodes);
        free(doc->pool);
        free(doc);
}

const kinfer_json_t *kinfer_json_root(const kinfer_json_doc_t *doc)
{
        return doc ? doc->root : NULL;
}

kinfer_json_type_t kinfer_json_type(const kinfer_json_t *v)
{
        return v ? v->type : KINFER_JSON_NULL;
}

size_t kinfer_json_size(const kinfer_json_t *v)
{
        return v && (v->type == KINFER_JSON_ARRAY || v->type == KINFER_JSON_OBJECT) ? v->n : 0;
}

const kinfer_json_t *kinfer_json_get(const kinfer_json_t *v, const char *key)
{
        if (!v || v->type != KINFER_JSON_OBJECT || !key)
                return NULL;
        for (size_t i = 0; i < v->n; i++)
                if (!strcmp(v->u.kids[i].key, key))
                        return &v->u.kids[i];
        return NULL;
}

const kinfer_json_t *kinfer_json_at(const kinfer_json_t *v, size_t i)
{
        return i < kinfer_json_size(v) ? &v->u.kids[i] : NULL;
}

const char *kinfer_json_key(const kinfer_json_t *v, size_t i)
{
        return v && v->type == KINFER_JSON_OBJECT && i < v->n ? v->u.kids[i].key : NULL;
}

const char *kinfer_json_str(const kinfer_json_t *v, size_t *lenp)
{
        if (!v || v->type != KINFER_JSON_STRING) {
                if (lenp)
                        *lenp = 0;
                return NULL;
        }
        if (lenp)
                *lenp = v->n;
        return v->u.s;
}

int kinfer_json_int(const kinfer_json_t *v, int64_t *out)
{
        int ok = v && v->type == KINFER_JSON_INT;
        *out = ok ? v->u.i : 0;
        return ok;
}

double kinfer_json_number(const kinfer_json_t *v)
{
        if (v && v->type == KINFER_JSON_INT)
                return (double)v->u.i;
        if (v && v->type == KINFER_JSON_REAL)
                return v->u.d;
        return 0;
}

/* ---- writing ---------------------------------------------------------------------------------- */

kinfer_err_t kinfer_json_write_real(kinfer_buf_t *buf, double d)
{
        if (!isfinite(d))
                return kinfer_buf_puts(buf, "null");
        /* as jansson's jsonp_dtostr() with precision 17 */
        char s[48];
        int n = snprintf(s, sizeof(s) - 3, "%.17g", d);
        if (n < 0 || (size_t)n >= sizeof(s) - 3)
                return kinfer_buf_puts(buf, "null");
        size_t len = (size_t)n;
        if (!strchr(s, '.') && !strchr(s, 'e')) {
                memcpy(s + len, ".0", 3);
                len += 2;
        }
        char *start = strchr(s, 'e');
        if (start) {
                start++;
                char *end = start + 1;
                if (*start == '-')
                        start++;
                while (*end == '0')
                        end++;
                if (end != start) {
                        memmove(start, end, len + 1 - (size_t)(end - s));
                        len -= (size_t)(end - start);
                }
        }
        return kinfer_buf_append(buf, s, len);
}

static void write_indent(kinfer_buf_t *buf, int level)
{
        kinfer_buf_putc(buf, '\n');
        for (int i = 0; i < level; i++)
                kinfer_buf_puts(buf, "  ");
}

kinfer_err_t kinfer_json_write(kinfer_buf_t *buf, const kinfer_json_t *v, int level)
{
        switch (kinfer_json_type(v)) {
        case KINFER_JSON_NULL: kinfer_buf_puts(buf, "null"); break;
        case KINFER_JSON_FALSE: kinfer_buf_puts(buf, "false"); break;
        case KINFER_JSON_TRUE: kinfer_buf_puts(buf, "true"); break;
        case KINFER_JSON_INT: kinfer_buf_printf(buf, "%lld", (long long)v->u.i); break;
        case KINFER_JSON_REAL: kinfer_json_write_real(buf, v->u.d); break;
        case KINFER_JSON_STRING: kinfer_buf_json_str(buf, v->u.s, v->n); break;
        case KINFER_JSON_ARRAY:
        case KINFER_JSON_OBJECT: {
                int obj = v->type == KINFER_JSON_OBJECT;
                kinfer_buf_putc(buf, obj ? '{' : '[');
                for (size_t i = 0; i < v->n; i++) {
                        write_indent(buf, level + 1);
                        if (obj) {
                                kinfer_buf_json_cstr(buf, v->u.kids[i].key);
                                kinfer_buf_puts(buf, ": ");
                        }
                        kinfer_json_write(buf, &v->u.kids[i], level + 1);
                        if (i + 1 < v->n)
                                kinfer_buf_putc(buf, ',');
                }
                if (v->n)
                        write_indent(buf, level);
                kinfer_buf_putc(buf, obj ? '}' : ']');
                break;
        }
        }
        return buf->oom ? KINFER_ERR__NOMEM : KINFER_OK;
}
