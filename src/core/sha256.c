/* SPDX-License-Identifier: Apache-2.0 */
/* sha256.c -- SHA-256 through libcrypto's EVP digest: the only file that includes OpenSSL.
 * libcrypto's own failures come back as kinfer_err_t with its reason in errstr, and its
 * per-thread error queue is emptied, so that they never surface later in the TLS code of
 * librdkafka or libpq that shares the queue. */
#include "kinfer/core/sha256.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct kinfer_sha256_ctx_s {
        EVP_MD_CTX *md;
};

/* Set errstr from libcrypto's queue (its first entry) and empty the queue. */
static kinfer_err_t crypto_err(char *errstr, size_t errstr_size, kinfer_err_t err, const char *what)
{
        unsigned long e = ERR_get_error();
        char reason[160] = "no reason given";
        if (e)
                ERR_error_string_n(e, reason, sizeof(reason));
        ERR_clear_error();
        return kinfer_seterr(errstr, errstr_size, err, "sha256: %s: %s", what, reason);
}

kinfer_sha256_ctx_t *kinfer_sha256_new(char *errstr, size_t errstr_size)
{
        kinfer_sha256_ctx_t *ctx = calloc(1, sizeof(*ctx));
        if (!ctx) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        if (!(ctx->md = EVP_MD_CTX_new())) {
                crypto_err(errstr, errstr_size, KINFER_ERR__NOMEM, "EVP_MD_CTX_new");
                free(ctx);
                return NULL;
        }
        if (!EVP_DigestInit_ex(ctx->md, EVP_sha256(), NULL)) {
                crypto_err(errstr, errstr_size, KINFER_ERR__CRYPTO, "EVP_DigestInit_ex");
                kinfer_sha256_destroy(ctx);
                return NULL;
        }
        return ctx;
}

kinfer_err_t kinfer_sha256_update(kinfer_sha256_ctx_t *ctx, const void *data, size_t len,
                                  char *errstr, size_t errstr_size)
{
        if (!EVP_DigestUpdate(ctx->md, data, len))
                return crypto_err(errstr, errstr_size, KINFER_ERR__CRYPTO, "EVP_DigestUpdate");
        return KINFER_OK;
}

kinfer_err_t kinfer_sha256_final(kinfer_sha256_ctx_t *ctx, uint8_t out[32], char *errstr,
                                 size_t errstr_size)
{
        if (!EVP_DigestFinal_ex(ctx->md, out, NULL))
                return crypto_err(errstr, errstr_size, KINFER_ERR__CRYPTO, "EVP_DigestFinal_ex");
        if (!EVP_DigestInit_ex(ctx->md, EVP_sha256(), NULL))
                return crypto_err(errstr, errstr_size, KINFER_ERR__CRYPTO, "EVP_DigestInit_ex");
        return KINFER_OK;
}

void kinfer_sha256_destroy(kinfer_sha256_ctx_t *ctx)
{
        if (!ctx)
                return;
        EVP_MD_CTX_free(ctx->md);
        free(ctx);
}

kinfer_err_t kinfer_sha256(const void *data, size_t len, uint8_t out[32])
{
        /* EVP_Digest: one context for the call, freed before it returns */
        if (!EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL)) {
                memset(out, 0, 32);
                return crypto_err(NULL, 0, KINFER_ERR__CRYPTO, "EVP_Digest");
        }
        return KINFER_OK;
}

void kinfer_hex(const uint8_t *bytes, size_t n, char *out)
{
        static const char hx[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = hx[bytes[i] >> 4];
                out[2 * i + 1] = hx[bytes[i] & 15];
        }
        out[2 * n] = '\0';
}

kinfer_err_t kinfer_sha256_hex(const void *data, size_t len, char out[65])
{
        uint8_t d[32];
        kinfer_err_t err = kinfer_sha256(data, len, d);
        if (err) {
                out[0] = '\0';
                return err;
        }
        kinfer_hex(d, 32, out);
        return KINFER_OK;
}

/* The whole input's digest, on a thread of its own. */
typedef struct sha_whole_s {
        const void *data;
        size_t len;
        char *hex;
        kinfer_err_t err;
} sha_whole_t;

static void *sha_whole_main(void *arg)
{
        sha_whole_t *j = arg;
        j->err = kinfer_sha256_hex(j->data, j->len, j->hex);
        return NULL;
}

kinfer_err_t kinfer_sha256_pair(const void *data, size_t len, size_t skip, uint8_t tail[32],
                                char hex[65])
{
        if (skip > len)
                skip = len;
        sha_whole_t j = {data, len, hex, KINFER_OK};
        pthread_t th;
        /* a second thread pays off for large inputs only (a model file: 2 x 0.4 s at 875 MB);
         * without one, the two digests run one after the other */
        const int threaded = len >= KINFER_SHA256_PAIR_THREAD_MIN &&
                             pthread_create(&th, NULL, sha_whole_main, &j) == 0;
        kinfer_err_t err = kinfer_sha256((const uint8_t *)data + skip, len - skip, tail);
        if (threaded)
                pthread_join(th, NULL);
        else
                sha_whole_main(&j);
        return err ? err : j.err;
}
