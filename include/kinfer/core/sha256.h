/* SPDX-License-Identifier: Apache-2.0 */
/* sha256.h -- SHA-256 (FIPS 180-4), streaming and one-shot; identifies models and migrations. */
#ifndef KINFER_SHA256_H
#define KINFER_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct kinfer_sha256_ctx_s {
        uint32_t h[8];
        uint64_t nbytes;
        uint8_t buf[64];
        size_t nbuf;
} kinfer_sha256_ctx_t;

void kinfer_sha256_init(kinfer_sha256_ctx_t *ctx);
void kinfer_sha256_update(kinfer_sha256_ctx_t *ctx, const void *data, size_t len);
void kinfer_sha256_final(kinfer_sha256_ctx_t *ctx, uint8_t out[32]);
void kinfer_sha256(const void *data, size_t len, uint8_t out[32]);
/** 64 lowercase hex chars + NUL. */
void kinfer_sha256_hex(const void *data, size_t len, char out[65]);
void kinfer_hex(const uint8_t *bytes, size_t n, char *out /* 2n+1 */);

#endif
