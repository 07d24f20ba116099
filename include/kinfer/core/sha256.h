/* SPDX-License-Identifier: Apache-2.0 */
/* sha256.h -- SHA-256 (FIPS 180-4), streaming and one-shot; identifies models and migrations.
 * A thin wrapper over libcrypto's EVP digest (Debian's OpenSSL, which picks SHA-NI or AVX2 at
 * run time): kinfer does not carry its own hash code. */
#ifndef KINFER_SHA256_H
#define KINFER_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/err.h"

/** @name One-shot
 * On failure (libcrypto could not allocate or start the digest: KINFER_ERR__CRYPTO) the
 * output is zeroed (an empty string for the hex form), and
 * libcrypto's error queue of the calling thread is left empty.
 * @locality any thread.
 * @{ */
/** The 32-byte digest of @p data[0..len) into @p out. */
kinfer_err_t kinfer_sha256(const void *data, size_t len, uint8_t out[32]);
/** The same as 64 lowercase hex chars + NUL. */
kinfer_err_t kinfer_sha256_hex(const void *data, size_t len, char out[65]);
/** Inputs of at least this many bytes get kinfer_sha256_pair()'s second thread. */
#define KINFER_SHA256_PAIR_THREAD_MIN ((size_t)32 << 20)
/** Two digests of one input: of @p data[skip..len) into @p tail and of the whole
 * @p data[0..len) as hex into @p hex (a model file's content checksum and its identity). For
 * inputs of KINFER_SHA256_PAIR_THREAD_MIN bytes or more the whole input is hashed on a second
 * thread, joined before the call returns (one after the other when none can be started). */
kinfer_err_t kinfer_sha256_pair(const void *data, size_t len, size_t skip, uint8_t tail[32],
                                char hex[65]);
/** @} */

/** @name Streaming
 * @{ */
typedef struct kinfer_sha256_ctx_s kinfer_sha256_ctx_t;

/** @returns a digest context, or NULL on failure (see @p errstr). */
kinfer_sha256_ctx_t *kinfer_sha256_new(char *errstr, size_t errstr_size);
/** Hash @p len more bytes. */
kinfer_err_t kinfer_sha256_update(kinfer_sha256_ctx_t *ctx, const void *data, size_t len,
                                  char *errstr, size_t errstr_size);
/** Write the digest of everything hashed so far to @p out; the context then starts over
 * (ready for a new message). */
kinfer_err_t kinfer_sha256_final(kinfer_sha256_ctx_t *ctx, uint8_t out[32], char *errstr,
                                 size_t errstr_size);
void kinfer_sha256_destroy(kinfer_sha256_ctx_t *ctx);
/** @} */

/** @p n bytes as 2n lowercase hex chars + NUL at @p out. */
void kinfer_hex(const uint8_t *bytes, size_t n, char *out /* 2n+1 */);

#endif
