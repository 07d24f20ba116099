/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_json.c -- libFuzzer target for core's JSON reader and writers, on arbitrary bytes:
 *   - kinfer_json_parse() refuses or accepts, never crashes, within its bounds;
 *   - an accepted value written out (kinfer_json_write) parses again, and writes the same text
 *     again (the writer's output is a fixed point of parse + write);
 *   - the escaper's output (kinfer_buf_json_str) of the same bytes is valid UTF-8 and, unless
 *     they hold a NUL (which the reader refuses as \u0000), parses, to the same bytes when they
 *     were valid UTF-8. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinfer/core/json.h"
#include "kinfer/core/utf8.h"

static void check(int ok)
{
        if (!ok)
                __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *text = (const char *)data;
        char errstr[256];
        kinfer_json_doc_t *doc = NULL;
        if (!kinfer_json_parse(text, size, &doc, errstr, sizeof(errstr))) {
                kinfer_buf_t a = {0}, b = {0};
                check(!kinfer_json_write(&a, kinfer_json_root(doc), 0));
                check(kinfer_utf8_valid(a.data, a.len));
                kinfer_json_doc_t *again = NULL;
                check(!kinfer_json_parse(a.data, a.len, &again, errstr, sizeof(errstr)));
                check(!kinfer_json_write(&b, kinfer_json_root(again), 0));
                check(a.len == b.len && !memcmp(a.data, b.data, a.len));
                kinfer_json_free(again);
                kinfer_buf_free(&a);
                kinfer_buf_free(&b);
                kinfer_json_free(doc);
        }

        kinfer_buf_t e = {0};
        check(!kinfer_buf_json_str(&e, text, size));
        check(kinfer_utf8_valid(e.data, e.len) && strlen(e.data) == e.len);
        if (e.len <= KINFER_JSON_MAX_BYTES && !memchr(text, 0, size)) {
                check(!kinfer_json_parse(e.data, e.len, &doc, errstr, sizeof(errstr)));
                size_t len;
                const char *s = kinfer_json_str(kinfer_json_root(doc), &len);
                check(s != NULL);
                if (kinfer_utf8_valid(text, size))
                        check(len == size && !memcmp(s, text, size));
                kinfer_json_free(doc);
        }
        kinfer_buf_free(&e);
        return 0;
}
