/* SPDX-License-Identifier: Apache-2.0 */
/* test_sha256.c -- FIPS 180-4 test vectors and streaming == one-shot. ctest runs it twice:
 * on the SHA-NI path where the CPU has it, and with KINFER_SHA256_PORTABLE=1. */
#include <stdlib.h>

#include "kinfer/core/sha256.h"
#include "test.h"

static void expect(const char *what, const void *data, size_t len, const char *want)
{
        char hex[65];
        kinfer_sha256_hex(data, len, hex);
        TEST_ASSERT(!strcmp(hex, want), "%s: %s, want %s", what, hex, want);
}

static void test_vectors(void)
{
        expect("empty", "", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        expect("abc", "abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        expect("448 bits", m448, strlen(m448), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
        size_t n = 1000000;
        char *a = malloc(n);
        memset(a, 'a', n);
        expect("a x 10^6", a, n, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
        free(a);
}

static void test_streaming(void)
{
        uint8_t buf[5000];
        for (size_t i = 0; i < sizeof(buf); i++)
                buf[i] = (uint8_t)(i * 131 + 7);
        for (size_t len = 0; len < sizeof(buf); len += 97) {
                uint8_t one[32], inc[32];
                kinfer_sha256(buf, len, one);
                kinfer_sha256_ctx_t ctx;
                kinfer_sha256_init(&ctx);
                for (size_t off = 0, step = 1; off < len; off += step, step = step * 3 % 200 + 1)
                        kinfer_sha256_update(&ctx, buf + off, off + step > len ? len - off : step);
                kinfer_sha256_final(&ctx, inc);
                TEST_ASSERT(!memcmp(one, inc, 32), "length %zu: streaming differs", len);
        }
}

int main(void)
{
        TEST_SAY("path: %s", getenv("KINFER_SHA256_PORTABLE") ? "portable" : "SHA-NI if the CPU has it");
        TEST_RUN(test_vectors);
        TEST_RUN(test_streaming);
        return TEST_DONE();
}
