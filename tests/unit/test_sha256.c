/* SPDX-License-Identifier: Apache-2.0 */
/* test_sha256.c -- the digest wrapper (libcrypto's EVP): FIPS 180-4 / NIST test vectors, and
 * streaming in odd pieces == one-shot. */
#include <stdlib.h>

#include "kinfer/core/sha256.h"
#include "test.h"

static void expect(const char *what, const void *data, size_t len, const char *want)
{
        char hex[65];
        TEST_ASSERT(kinfer_sha256_hex(data, len, hex) == KINFER_OK, "%s: digest failed", what);
        TEST_ASSERT(!strcmp(hex, want), "%s: %s, want %s", what, hex, want);
}

static void test_vectors(void)
{
        expect("empty", "", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        expect("abc", "abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        expect("448 bits", m448, strlen(m448), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
        const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
                           "klmnopqrlmnopqrsmnopqrstnopqrstu";
        expect("896 bits", m896, strlen(m896), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
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
        char errstr[256];
        kinfer_sha256_ctx_t *ctx = kinfer_sha256_new(errstr, sizeof(errstr));
        TEST_ASSERT(ctx, "kinfer_sha256_new: %s", errstr);
        if (!ctx)
                return;
        /* one context for every length: final starts it over */
        for (size_t len = 0; len < sizeof(buf); len += 97) {
                uint8_t one[32], inc[32];
                TEST_ASSERT(kinfer_sha256(buf, len, one) == KINFER_OK, "length %zu: one-shot failed", len);
                kinfer_err_t err = KINFER_OK;
                for (size_t off = 0, step = 1; off < len && !err; off += step, step = step * 3 % 200 + 1)
                        err = kinfer_sha256_update(ctx, buf + off, off + step > len ? len - off : step,
                                                   errstr, sizeof(errstr));
                if (!err)
                        err = kinfer_sha256_final(ctx, inc, errstr, sizeof(errstr));
                TEST_ASSERT(err == KINFER_OK, "length %zu: %s", len, errstr);
                TEST_ASSERT(!memcmp(one, inc, 32), "length %zu: streaming differs", len);
        }
        kinfer_sha256_destroy(ctx);
}

int main(void)
{
        TEST_RUN(test_vectors);
        TEST_RUN(test_streaming);
        return TEST_DONE();
}
