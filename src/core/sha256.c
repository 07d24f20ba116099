/* SPDX-License-Identifier: Apache-2.0 */
/* sha256.c -- a small, portable SHA-256 (FIPS 180-4). */
#include "kinfer/core/sha256.h"

#include <stdlib.h>
#include <string.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const uint8_t *p)
{
        uint32_t w[64];
        for (int i = 0; i < 16; i++)
                w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
                       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
        for (int i = 16; i < 64; i++) {
                uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
                uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
                w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
        for (int i = 0; i < 64; i++) {
                uint32_t t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) +
                              K[i] + w[i];
                uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
                hh = g;
                g = f;
                f = e;
                e = d + t1;
                d = c;
                c = b;
                b = a;
                a = t1 + t2;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d;
        h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

/* ---- x86 SHA extensions (SHA-NI): ~10x the portable code, chosen at run time ------------- */
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>

#define SHANI __attribute__((target("sha,sse4.1,ssse3")))

SHANI static void sha256_blocks_shani(uint32_t h[8], const uint8_t *p, size_t nblocks)
{
        const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
        __m128i tmp = _mm_loadu_si128((const __m128i *)&h[0]);
        __m128i s1 = _mm_loadu_si128((const __m128i *)&h[4]);
        tmp = _mm_shuffle_epi32(tmp, 0xB1);         /* CDAB */
        s1 = _mm_shuffle_epi32(s1, 0x1B);           /* EFGH */
        __m128i s0 = _mm_alignr_epi8(tmp, s1, 8);   /* ABEF */
        s1 = _mm_blend_epi16(s1, tmp, 0xF0);        /* CDGH */
        for (; nblocks; nblocks--, p += 64) {
                const __m128i abef = s0, cdgh = s1;
                __m128i m[4];
                for (int i = 0; i < 16; i++) {
                        if (i < 4)
                                m[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), bswap);
                        __m128i msg = _mm_add_epi32(m[i & 3], _mm_loadu_si128((const __m128i *)&K[4 * i]));
                        s1 = _mm_sha256rnds2_epu32(s1, s0, msg);
                        if (i >= 3 && i < 15) {
                                __m128i t = _mm_alignr_epi8(m[i & 3], m[(i + 3) & 3], 4);
                                m[(i + 1) & 3] = _mm_add_epi32(m[(i + 1) & 3], t);
                                m[(i + 1) & 3] = _mm_sha256msg2_epu32(m[(i + 1) & 3], m[i & 3]);
                        }
                        msg = _mm_shuffle_epi32(msg, 0x0E);
                        s0 = _mm_sha256rnds2_epu32(s0, s1, msg);
                        if (i >= 1 && i < 13)
                                m[(i + 3) & 3] = _mm_sha256msg1_epu32(m[(i + 3) & 3], m[i & 3]);
                }
                s0 = _mm_add_epi32(s0, abef);
                s1 = _mm_add_epi32(s1, cdgh);
        }
        tmp = _mm_shuffle_epi32(s0, 0x1B);          /* FEBA */
        s1 = _mm_shuffle_epi32(s1, 0xB1);           /* DCHG */
        s0 = _mm_blend_epi16(tmp, s1, 0xF0);        /* DCBA */
        s1 = _mm_alignr_epi8(s1, tmp, 8);           /* ABEF */
        _mm_storeu_si128((__m128i *)&h[0], s0);
        _mm_storeu_si128((__m128i *)&h[4], s1);
}

static int have_shani(void)
{
        static int cached = -1;
        if (cached < 0) {
                unsigned a, b, c, d;
                int sha = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29));
                int sse41 = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 19)) && (c & (1u << 9));
                cached = sha && sse41 && !getenv("KINFER_SHA256_PORTABLE");
        }
        return cached;
}
#else
static void sha256_blocks_shani(uint32_t h[8], const uint8_t *p, size_t nblocks)
{
        (void)h, (void)p, (void)nblocks;
}
static int have_shani(void)
{
        return 0;
}
#endif

static void sha256_blocks(uint32_t h[8], const uint8_t *p, size_t nblocks)
{
        if (have_shani()) {
                sha256_blocks_shani(h, p, nblocks);
                return;
        }
        for (; nblocks; nblocks--, p += 64)
                sha256_block(h, p);
}

void kinfer_sha256_init(kinfer_sha256_ctx_t *ctx)
{
        static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                       0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
        memcpy(ctx->h, iv, sizeof(iv));
        ctx->nbytes = 0;
        ctx->nbuf = 0;
}

void kinfer_sha256_update(kinfer_sha256_ctx_t *ctx, const void *data, size_t len)
{
        const uint8_t *p = data;
        ctx->nbytes += len;
        if (ctx->nbuf) {
                size_t take = 64 - ctx->nbuf < len ? 64 - ctx->nbuf : len;
                memcpy(ctx->buf + ctx->nbuf, p, take);
                ctx->nbuf += take;
                p += take;
                len -= take;
                if (ctx->nbuf < 64)
                        return;
                sha256_blocks(ctx->h, ctx->buf, 1);
                ctx->nbuf = 0;
        }
        sha256_blocks(ctx->h, p, len / 64);
        p += len / 64 * 64;
        len %= 64;
        memcpy(ctx->buf, p, len);
        ctx->nbuf = len;
}

void kinfer_sha256_final(kinfer_sha256_ctx_t *ctx, uint8_t out[32])
{
        uint64_t bits = ctx->nbytes * 8;
        uint8_t pad[72] = {0x80};
        size_t padlen = (ctx->nbuf < 56 ? 56 : 120) - ctx->nbuf;
        for (int i = 0; i < 8; i++)
                pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
        kinfer_sha256_update(ctx, pad, padlen + 8);
        for (int i = 0; i < 8; i++) {
                out[4 * i] = (uint8_t)(ctx->h[i] >> 24);
                out[4 * i + 1] = (uint8_t)(ctx->h[i] >> 16);
                out[4 * i + 2] = (uint8_t)(ctx->h[i] >> 8);
                out[4 * i + 3] = (uint8_t)ctx->h[i];
        }
}

void kinfer_sha256(const void *data, size_t len, uint8_t out[32])
{
        kinfer_sha256_ctx_t ctx;
        kinfer_sha256_init(&ctx);
        kinfer_sha256_update(&ctx, data, len);
        kinfer_sha256_final(&ctx, out);
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

void kinfer_sha256_hex(const void *data, size_t len, char out[65])
{
        uint8_t d[32];
        kinfer_sha256(data, len, d);
        kinfer_hex(d, 32, out);
}
