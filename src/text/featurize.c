/* SPDX-License-Identifier: Apache-2.0 */
/* featurize.c -- normalisation, tokens, hashed word and char n-grams, tf-idf weighting.
 * The hash definitions are in include/kinfer/featurize.h and golden-tested; never change them
 * without bumping kinfer_featurizer_conf_t.version. */
#include "kinfer/text/featurize.h"

#include <assert.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
#define NGRAM_MUL 0x9e3779b97f4a7c15ULL
#define CHAR_SEED 0x5bd1e9955bd1e995ULL
#define MAX_TOKEN_BYTES 1024 /* char n-grams look at the first 1024 bytes of a token */
#define MAX_WORD_NGRAMS 5

void kinfer_featurizer_conf_default(kinfer_featurizer_conf_t *conf)
{
        memset(conf, 0, sizeof(*conf));
        conf->version = KINFER_FEATURIZER_VERSION;
        conf->n_buckets = 1u << 21;
        conf->word_ngrams = 2;
        conf->minn = 0;
        conf->maxn = 0;
        conf->lowercase = 1;
        conf->sublinear_tf = 1;
        conf->use_idf = 1;
        conf->l2_norm = 1;
        conf->bag_mean = 0;
}

const char *kinfer_featurizer_conf_check(const kinfer_featurizer_conf_t *conf)
{
        if (conf->mode > KINFER_FEAT_MODE_FASTTEXT)
                return "featurizer mode is unknown to this kinfer (0 kinfer, 1 fasttext)";
        if (conf->mode == KINFER_FEAT_MODE_FASTTEXT) {
                if (conf->version != KINFER_FEATURIZER_VERSION)
                        return "featurizer version is not 2";
                if (conf->n_buckets < 1 || conf->n_buckets > 0x7fffffffu)
                        return "fasttext: n_buckets (nwords + bucket) is not in [1, 2^31 - 1]";
                if (conf->word_ngrams > 64 || conf->minn > 64 || conf->maxn > 64)
                        return "fasttext: word_ngrams, minn or maxn is over 64";
                if (conf->lowercase || conf->sublinear_tf || conf->use_idf || conf->l2_norm ||
                    conf->prefix_words || !conf->bag_mean)
                        return "fasttext: only bag_mean may be set (fastText averages its rows)";
                return NULL;
        }
        if (conf->version < KINFER_FEATURIZER_VERSION)
                return "featurizer version 1: the token hash changed in version 2 (chunked), so "
                       "this model's buckets no longer match: retrain it";
        if (conf->version != KINFER_FEATURIZER_VERSION)
                return "featurizer version is newer than this kinfer (2)";
        if (conf->n_buckets < 2 || (conf->n_buckets & (conf->n_buckets - 1)) ||
            conf->n_buckets > (1u << 30))
                return "n_buckets is not a power of two in [2, 2^30]";
        if (conf->word_ngrams > MAX_WORD_NGRAMS)
                return "word_ngrams is over 5";
        if (conf->maxn && (conf->minn < 1 || conf->minn > conf->maxn || conf->maxn > 16))
                return "char n-gram range minn..maxn is invalid (need 1 <= minn <= maxn <= 16)";
        if (!conf->word_ngrams && !conf->maxn)
                return "no features: word_ngrams and maxn are both 0";
        return NULL;
}

size_t kinfer_featurize_estimate(const kinfer_featurizer_conf_t *conf, size_t len)
{
        if (conf->mode == KINFER_FEAT_MODE_FASTTEXT)
                return 16;
        /* enough for text whose normalisation does not expand; kinfer_featurize() reports
         * when a text needs more, it never relies on this */
        size_t k = conf->maxn ? (size_t)(conf->maxn - conf->minn + 1) : 0;
        return (len + 1) * conf->word_ngrams + (2 * len + 2) * k + conf->prefix_words + 16;
}

uint64_t kinfer_fnv1a64(const void *data, size_t len)
{
        const uint8_t *p = data;
        uint64_t h = FNV_OFFSET;
        for (size_t i = 0; i < len; i++)
                h = (h ^ p[i]) * FNV_PRIME;
        return h;
}

uint64_t kinfer_fmix64(uint64_t h)
{
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
        h *= 0xc4ceb9fe1a85ec53ULL;
        h ^= h >> 33;
        return h;
}

/* ASCII classes: 1 = token byte. Lowercase map for ASCII. */
static const uint8_t ascii_tok[128] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1, ['_'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
};

static int cp_is_token(utf8proc_int32_t cp)
{
        switch (utf8proc_category(cp)) {
        case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
        case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
        case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND:
        case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
                return 1;
        default:
                return 0;
        }
}

/* ---- token hash ----------------------------------------------------------------------------
 * t = fmix64(h ^ len), h = mix over the token's bytes in 8-byte little-endian chunks (the last
 * one zero-padded): h = (h ^ chunk) * TOKEN_MUL; h ^= h >> 32, from h = FNV_OFFSET. Chunks,
 * not bytes: the ASCII fast path hashes a short token in one step. */
#define TOKEN_MUL 0x9e3779b97f4a7c15ULL

static inline uint64_t token_mix(uint64_t h, uint64_t chunk)
{
        h = (h ^ chunk) * TOKEN_MUL;
        return h ^ (h >> 32);
}

/* Streaming form for the scalar path: bytes in, one chunk at a time. */
typedef struct tok_hash_s {
        uint64_t h, acc;
        unsigned sh;   /* bits in acc */
        size_t len;
} tok_hash_t;

static inline void tok_hash_byte(tok_hash_t *t, uint8_t c)
{
        t->acc |= (uint64_t)c << t->sh;
        t->len++;
        if ((t->sh += 8) == 64) {
                t->h = token_mix(t->h, t->acc);
                t->acc = 0;
                t->sh = 0;
        }
}

static inline uint64_t tok_hash_end(tok_hash_t *t)
{
        if (t->sh)
                t->h = token_mix(t->h, t->acc);
        return kinfer_fmix64(t->h ^ (uint64_t)t->len);
}

uint64_t kinfer_token_hash(const void *data, size_t len)
{
        tok_hash_t t = {FNV_OFFSET, 0, 0, 0};
        for (size_t i = 0; i < len; i++)
                tok_hash_byte(&t, ((const uint8_t *)data)[i]);
        return tok_hash_end(&t);
}

/* ---- features of one token --------------------------------------------------------------- */

typedef struct emit_s {
        const kinfer_featurizer_conf_t *conf;
        uint32_t mask;
        uint64_t hist[MAX_WORD_NGRAMS]; /* hashes of the last N tokens, most recent first */
        int n_hist;
        size_t n_tok;
        uint32_t *out;  /* the caller's buffer: room for cap buckets */
        size_t cap;
        size_t n;       /* buckets the text yields so far; only the first cap are written */
} emit_t;

/* The one place a bucket is stored: never past the caller's capacity; counted either way. */
static inline void put(emit_t *e, uint32_t b)
{
        if (e->n < e->cap)
                e->out[e->n] = b;
        e->n++;
}

/* Prefix word, unigram and word n-grams ending at token hash @p h. */
static inline void emit_token(emit_t *e, uint64_t h)
{
        const kinfer_featurizer_conf_t *conf = e->conf;
        if (e->n_tok < conf->prefix_words)
                put(e, (uint32_t)(kinfer_fmix64(h ^ ((e->n_tok + 1) * 0xc2b2ae3d27d4eb4fULL)) & e->mask));
        e->n_tok++;
        const int N = conf->word_ngrams;
        if (N == 0)
                return;
        for (int k = MAX_WORD_NGRAMS - 1; k > 0; k--) /* a fixed-size shift, not a memmove call */
                e->hist[k] = e->hist[k - 1];
        e->hist[0] = h;
        if (e->n_hist < N)
                e->n_hist++;
        put(e, (uint32_t)(kinfer_fmix64(h ^ FNV_PRIME) & e->mask));
        /* g_n = g_{n-1} * M ^ t_next, built from the oldest token of the window */
        for (int k = 2; k <= e->n_hist; k++) {
                uint64_t gn = e->hist[k - 1];
                for (int j = k - 2; j >= 0; j--)
                        gn = gn * NGRAM_MUL ^ e->hist[j];
                put(e, (uint32_t)(kinfer_fmix64(gn ^ ((uint64_t)k * FNV_PRIME)) & e->mask));
        }
}

/* Emit the char n-grams of one token (normalised bytes tok[0..tlen), code point starts in
 * cps[0..ncp]). */
static void emit_char_ngrams(emit_t *e, const uint8_t *tok, size_t tlen, const uint16_t *cps,
                             size_t ncp)
{
        const kinfer_featurizer_conf_t *conf = e->conf;
        /* Positions over "<" tok ">": index 0 is '<', 1..ncp are code points, ncp+1 is '>'. */
        size_t total = ncp + 2;
        for (size_t i = 0; i < total; i++) {
                uint64_t h = FNV_OFFSET ^ CHAR_SEED;
                for (size_t n = 1; n <= conf->maxn && i + n <= total; n++) {
                        size_t pos = i + n - 1; /* the code point appended at this step */
                        if (pos == 0) {
                                h = (h ^ '<') * FNV_PRIME;
                        } else if (pos == total - 1) {
                                h = (h ^ '>') * FNV_PRIME;
                        } else {
                                size_t b = cps[pos - 1], be = pos < ncp ? cps[pos] : tlen;
                                for (size_t j = b; j < be; j++)
                                        h = (h ^ tok[j]) * FNV_PRIME;
                        }
                        if (n >= conf->minn)
                                put(e, (uint32_t)(kinfer_fmix64(h) & e->mask));
                }
        }
}

/* ---- ASCII fast path (AVX2) ----------------------------------------------------------------
 * For an all-ASCII text without char n-grams: lowercase and classify 32 bytes at a time into a
 * bitmap of token bytes, then walk the tokens with bit scans and hash each in 8-byte chunks.
 * The byte-by-byte path mispredicts a branch at both ends of every token; this one does not.
 * Same buckets, same order as the scalar path (tests/unit/test_featurize.c checks). */
#define FAST_MAX_LEN 4096

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define AVX2_FN __attribute__((target("avx2,bmi,bmi2,popcnt")))

/* @returns -1 when the text is not all ASCII (nothing written), else the buckets the text
 * yields (the first @p cap of them written). */
AVX2_FN static long featurize_ascii_avx2(const kinfer_featurizer_conf_t *conf, const uint8_t *text,
                                         size_t len, uint32_t *buckets, size_t cap)
{
        uint8_t buf[FAST_MAX_LEN + 64] __attribute__((aligned(32)));
        uint64_t bits[FAST_MAX_LEN / 64 + 2];
        size_t nblk = (len + 31) / 32;
        memcpy(buf, text, len);
        memset(buf + len, 0, nblk * 32 + 32 - len);
        const __m256i c_a = _mm256_set1_epi8('a' - 1), c_z = _mm256_set1_epi8('z' + 1);
        const __m256i c_A = _mm256_set1_epi8('A' - 1), c_Z = _mm256_set1_epi8('Z' + 1);
        const __m256i c_0 = _mm256_set1_epi8('0' - 1), c_9 = _mm256_set1_epi8('9' + 1);
        const __m256i c_us = _mm256_set1_epi8('_'), c_20 = _mm256_set1_epi8(0x20);
        uint32_t nonascii = 0;
        for (size_t k = 0; k < nblk; k++) {
                __m256i v = _mm256_load_si256((const __m256i *)(buf + 32 * k));
                nonascii |= (uint32_t)_mm256_movemask_epi8(v);
                __m256i up = _mm256_and_si256(_mm256_cmpgt_epi8(v, c_A), _mm256_cmpgt_epi8(c_Z, v));
                if (conf->lowercase) {
                        v = _mm256_or_si256(v, _mm256_and_si256(up, c_20));
                        _mm256_store_si256((__m256i *)(buf + 32 * k), v);
                }
                __m256i lo = _mm256_and_si256(_mm256_cmpgt_epi8(v, c_a), _mm256_cmpgt_epi8(c_z, v));
                __m256i dg = _mm256_and_si256(_mm256_cmpgt_epi8(v, c_0), _mm256_cmpgt_epi8(c_9, v));
                __m256i tk = _mm256_or_si256(_mm256_or_si256(lo, up), _mm256_or_si256(dg, _mm256_cmpeq_epi8(v, c_us)));
                uint32_t m = (uint32_t)_mm256_movemask_epi8(tk);
                if (k & 1)
                        bits[k / 2] |= (uint64_t)m << 32;
                else
                        bits[k / 2] = m;
        }
        if (nonascii)
                return -1;
        size_t nwords = (nblk + 1) / 2;
        bits[nwords] = 0; /* a sentinel word: every token ends */
        emit_t e = {.conf = conf, .mask = conf->n_buckets - 1, .out = buckets, .cap = cap};
        size_t wi = 0;
        uint64_t w = nwords ? bits[0] : 0;
        for (;;) {
                /* next token start: first set bit at or after pos */
                while (!w) {
                        if (++wi >= nwords)
                                return (long)e.n;
                        w = bits[wi];
                }
                size_t start = wi * 64 + (size_t)_tzcnt_u64(w);
                /* its end: first clear bit after start */
                uint64_t inv = ~bits[wi] & ~((2ULL << (start & 63)) - 1); /* clear bits above start */
                if ((start & 63) == 63)
                        inv = 0;
                size_t ew = wi;
                while (!inv)
                        inv = ~bits[++ew];
                size_t end = ew * 64 + (size_t)_tzcnt_u64(inv);
                /* hash the token in 8-byte chunks */
                size_t tl = end - start;
                uint64_t h = FNV_OFFSET;
                const uint8_t *tp = buf + start;
                size_t k = 0;
                for (; k + 8 <= tl; k += 8) {
                        uint64_t c;
                        memcpy(&c, tp + k, 8);
                        h = token_mix(h, c);
                }
                if (k < tl) {
                        uint64_t c;
                        memcpy(&c, tp + k, 8); /* buf is zero-padded past the text */
                        c = _bzhi_u64(c, (unsigned)(tl - k) * 8);
                        h = token_mix(h, c);
                }
                emit_token(&e, kinfer_fmix64(h ^ (uint64_t)tl));
                /* continue after the token */
                wi = ew;
                w = end >= nwords * 64 ? 0 : bits[wi] & ~((end & 63) ? ((1ULL << (end & 63)) - 1) : 0);
                if (wi >= nwords)
                        return (long)e.n;
        }
}

static int have_avx2(void)
{
        /* featurizing threads (training, the pool) ask at once: an atomic, so the first
         * answers race benignly to the same value instead of being a data race (TSan) */
        static _Atomic int cached = -1;
        int c = atomic_load_explicit(&cached, memory_order_relaxed);
        if (c < 0) {
                c = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2") &&
                    !getenv("KINFER_NO_SIMD");
                atomic_store_explicit(&cached, c, memory_order_relaxed);
        }
        return c;
}
#else
static long featurize_ascii_avx2(const kinfer_featurizer_conf_t *conf, const uint8_t *text,
                                 size_t len, uint32_t *buckets, size_t cap)
{
        (void)conf, (void)text, (void)len, (void)buckets, (void)cap;
        return -1;
}
static int have_avx2(void)
{
        return 0;
}
#endif

/* ---- the scalar path (any UTF-8, char n-grams) --------------------------------------------- */

static size_t featurize_scalar(const kinfer_featurizer_conf_t *conf, const char *text, size_t len,
                               uint32_t *buckets, size_t cap)
{
        const uint8_t *p = (const uint8_t *)text, *end = p + len;
        const int want_char = conf->maxn > 0;
        emit_t e = {.conf = conf, .mask = conf->n_buckets - 1, .out = buckets, .cap = cap};
        uint8_t tok[MAX_TOKEN_BYTES + 4];
        uint16_t cps[MAX_TOKEN_BYTES + 4];

        while (p < end) {
                /* Skip separators. */
                utf8proc_int32_t cp = 0;
                while (p < end) {
                        if (*p < 0x80) {
                                if (ascii_tok[*p])
                                        break;
                                p++;
                                continue;
                        }
                        utf8proc_ssize_t r = utf8proc_iterate(p, end - p, &cp);
                        if (r < 0) {
                                p++; /* invalid byte: a separator */
                                continue;
                        }
                        if (cp_is_token(cp))
                                break;
                        p += r;
                }
                if (p >= end)
                        break;
                /* Read one token: hash it, and keep its bytes for char n-grams. */
                tok_hash_t th = {FNV_OFFSET, 0, 0, 0};
                size_t tlen = 0, ncp = 0;
                while (p < end) {
                        if (*p < 0x80) {
                                if (!ascii_tok[*p])
                                        break;
                                uint8_t c = *p++;
                                if (conf->lowercase && c >= 'A' && c <= 'Z')
                                        c += 32;
                                tok_hash_byte(&th, c);
                                if (want_char && tlen < MAX_TOKEN_BYTES) {
                                        cps[ncp++] = (uint16_t)tlen;
                                        tok[tlen++] = c;
                                }
                                continue;
                        }
                        utf8proc_ssize_t r = utf8proc_iterate(p, end - p, &cp);
                        if (r < 0 || !cp_is_token(cp))
                                break;
                        p += r;
                        /* compatibility decomposition (NFKD) and full case folding: "ﬁ" ->
                         * "fi", "Ａ" -> "a", "ß" -> "ss", "é" == "e" + U+0301 */
                        utf8proc_int32_t dec[18];
                        int bc = 0;
                        utf8proc_ssize_t nd = utf8proc_decompose_char(
                            cp, dec, 18, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT | (conf->lowercase ? UTF8PROC_CASEFOLD : 0), &bc);
                        if (nd < 1 || nd > 18) {
                                dec[0] = cp;
                                nd = 1;
                        }
                        for (utf8proc_ssize_t d = 0; d < nd; d++) {
                                uint8_t enc[4];
                                utf8proc_ssize_t el = utf8proc_encode_char(dec[d], enc);
                                for (utf8proc_ssize_t j = 0; j < el; j++)
                                        tok_hash_byte(&th, enc[j]);
                                if (want_char && tlen + (size_t)el <= MAX_TOKEN_BYTES) {
                                        cps[ncp++] = (uint16_t)tlen;
                                        memcpy(tok + tlen, enc, (size_t)el);
                                        tlen += (size_t)el;
                                }
                        }
                }
                emit_token(&e, tok_hash_end(&th));
                if (want_char)
                        emit_char_ngrams(&e, tok, tlen, cps, ncp);
        }
        return e.n;
}

size_t kinfer_featurize(const kinfer_featurizer_conf_t *conf, const char *text, size_t len,
                        uint32_t *buckets, size_t cap)
{
        if (conf->mode != KINFER_FEAT_MODE_KINFER)
                return 0; /* fasttext: kinfer_ft_featurize(), with the model's dictionary */
        if (conf->maxn == 0 && len <= FAST_MAX_LEN && have_avx2()) {
                long n = featurize_ascii_avx2(conf, (const uint8_t *)text, len, buckets, cap);
                if (n >= 0)
                        return (size_t)n;
        }
        return featurize_scalar(conf, text, len, buckets, cap);
}

size_t kinfer_featurize_reference(const kinfer_featurizer_conf_t *conf, const char *text,
                                  size_t len, uint32_t *buckets, size_t cap)
{
        if (conf->mode != KINFER_FEAT_MODE_KINFER)
                return 0;
        return featurize_scalar(conf, text, len, buckets, cap);
}

/* ---- de-duplication and weights --------------------------------------------------------- */

void kinfer_feat_scratch_term(kinfer_feat_scratch_t *s)
{
        free(s->slots);
        memset(s, 0, sizeof(*s));
}

int kinfer_feat_scratch_reserve(kinfer_feat_scratch_t *s, size_t n)
{
        if (n > ((size_t)1 << 30)) /* the table's size is a uint32_t power of two >= 2n */
                return -1;
        size_t want = 64;
        while (want < 2 * n)
                want *= 2;
        if (want <= s->cap)
                return 0;
        kinfer_feat_scratch_term(s);
        s->slots = calloc(want, sizeof(kinfer_feat_slot_t));
        if (!s->slots) {
                kinfer_feat_scratch_term(s);
                return -1;
        }
        s->cap = (uint32_t)want;
        s->gen = 0;
        return 0;
}

/* 1 + ln(tf): a table for small counts (the common case), logf beyond */
static inline float sublinear(float tf)
{
        static const float tab[16] = {
            0.0f,       1.0f,       1.6931472f, 2.0986123f, 2.3862944f, 2.6094379f, 2.7917595f, 2.9459102f,
            3.0794415f, 3.1972246f, 3.3025851f, 3.3978953f, 3.4849067f, 3.5649494f, 3.6390574f, 3.7080502f};
        return tf < 16.0f ? tab[(int)tf] : 1.0f + logf(tf);
}

int kinfer_bucket_rank_build(kinfer_bucket_rank_t *r, const int32_t *map, uint32_t n_buckets)
{
        memset(r, 0, sizeof(*r));
        size_t n_words = ((size_t)n_buckets + 63) / 64;
        int32_t next = 0;
        for (uint32_t b = 0; b < n_buckets; b++) {
                if (map[b] < 0)
                        continue;
                if (map[b] != next)
                        return 1; /* rows not in bucket order */
                next++;
        }
        r->bits = calloc(n_words, sizeof(uint64_t));
        r->base = malloc(n_words * sizeof(uint32_t));
        if (!r->bits || !r->base) {
                kinfer_bucket_rank_term(r);
                return -1;
        }
        uint32_t count = 0;
        for (size_t wd = 0; wd < n_words; wd++) {
                r->base[wd] = count;
                for (uint32_t j = 0; j < 64 && wd * 64 + j < n_buckets; j++)
                        if (map[wd * 64 + j] >= 0) {
                                r->bits[wd] |= (uint64_t)1 << j;
                                count++;
                        }
        }
        return 0;
}

void kinfer_bucket_rank_term(kinfer_bucket_rank_t *r)
{
        free(r->bits);
        free(r->base);
        memset(r, 0, sizeof(*r));
}

size_t kinfer_feat_weigh(const kinfer_featurizer_conf_t *conf, const uint32_t *buckets, size_t n,
                         const kinfer_bucket_rank_t *rank, const int32_t *bucket_map,
                         const float *idf, kinfer_feat_scratch_t *s, int32_t *rows, float *w)
{
        /* Room for n (the caller reserves; this only grows when it did not): a table at most
         * half full, so every probe sequence ends. Without memory for that, weigh the first
         * buckets that fit rather than write past the table. */
        if (2 * n > s->cap && kinfer_feat_scratch_reserve(s, n))
                n = s->cap / 2;
        if (n == 0)
                return 0;
        if (++s->gen == 0) { /* stamps wrapped: clear them once every 2^32 calls */
                for (uint32_t i = 0; i < s->cap; i++)
                        s->slots[i].stamp = 0;
                s->gen = 1;
        }
        /* Drop the buckets without a row first (more than half of a record's buckets under
         * the default model: 89 of 217 distinct ones kept on debian-sections), so that only
         * the kept ones are de-duplicated. rows[] holds the kept buckets, in text order; keep
         * or drop without a branch (the entry written is overwritten by the next kept one). */
        size_t n_mapped = n;
        if (rank) {
                n_mapped = 0;
                for (size_t i = 0; i < n; i++) {
                        const uint32_t b = buckets[i];
                        /* the index is L2-resident at best: start the bit word's load 8
                         * buckets ahead, and the base the row lookup below reads */
                        if (i + 8 < n)
                                __builtin_prefetch(&rank->bits[buckets[i + 8] >> 6], 0, 3);
                        __builtin_prefetch(&rank->base[b >> 6], 0, 3);
                        rows[n_mapped] = (int32_t)b;
                        n_mapped += (rank->bits[b >> 6] >> (b & 63)) & 1;
                }
        } else if (bucket_map) {
                n_mapped = 0;
                for (size_t i = 0; i < n; i++) {
                        const uint32_t b = buckets[i];
                        if (i + 16 < n) /* a large map: start the miss 16 buckets ahead */
                                __builtin_prefetch(&bucket_map[buckets[i + 16]], 0, 3);
                        rows[n_mapped] = (int32_t)b;
                        n_mapped += bucket_map[b] >= 0;
                }
        } else {
                for (size_t i = 0; i < n; i++)
                        rows[i] = (int32_t)buckets[i];
        }
        if (n_mapped == 0)
                return 0;
        /* Probe only a table sized for this record (a power of two >= 2 n_mapped, within the
         * reserved capacity), so short records stay in L1 after a long one grew the scratch.
         * Slots past it hold older generations, which read as empty. */
        uint32_t size = 64;
        while (size < 2 * n_mapped && size < s->cap)
                size *= 2;
        assert(2 * n_mapped <= s->cap); /* ensured above */
        const uint32_t gen = s->gen, m = size - 1;
        size_t n_uniq = 0;
        /* rows[] now holds the slot of each unique bucket, in first-seen order (n_uniq <= i:
         * rows[i] is read before it can be overwritten). The new-or-repeat decision is made
         * without a branch (about one feature in eight is a repeat, in no predictable
         * pattern); only a collision walks the probe loop. */
        for (size_t i = 0; i < n_mapped; i++) {
                const uint32_t b = (uint32_t)rows[i];
                uint32_t slot = (b * 0x9e3779b1u) & m;
                while (s->slots[slot].stamp == gen && s->slots[slot].key != b)
                        slot = (slot + 1) & m;
                kinfer_feat_slot_t *e = &s->slots[slot];
                const uint32_t fresh = e->stamp != gen;
                e->count = fresh ? 1 : e->count + 1;
                e->stamp = gen;
                e->key = b;
                rows[n_uniq] = (int32_t)slot;
                n_uniq += fresh;
        }
        /* Map buckets to rows (every one has a row now); keep tf in w for now. */
        const size_t n_kept = n_uniq;
        for (size_t i = 0; i < n_uniq; i++) {
                uint32_t slot = (uint32_t)rows[i];
                uint32_t b = s->slots[slot].key;
                int32_t row = rank ? kinfer_bucket_rank_row(rank, b)
                                   : bucket_map ? bucket_map[b] : (int32_t)b;
                rows[i] = row;
                w[i] = (float)s->slots[slot].count;
                if (idf)
                        __builtin_prefetch(&idf[row], 0, 3);
        }
        float norm2 = 0;
        const int use_idf = conf->use_idf && idf;
        for (size_t i = 0; i < n_kept; i++) {
                float tf = w[i];
                float x = conf->sublinear_tf && tf != 1.0f ? sublinear(tf) : tf;
                if (use_idf)
                        x *= idf[rows[i]];
                w[i] = x;
                norm2 += x * x;
        }
        float scale = 1.0f;
        if (conf->l2_norm) {
                scale = norm2 > 0 ? 1.0f / sqrtf(norm2) : 1.0f;
        } else if (conf->bag_mean && conf->mode == KINFER_FEAT_MODE_FASTTEXT) {
                double sum = 0; /* fastText's mean: every occurrence counts */
                for (size_t i = 0; i < n_kept; i++)
                        sum += w[i];
                scale = (float)(1.0 / sum);
        } else if (conf->bag_mean) {
                scale = 1.0f / (float)n_kept;
        }
        if (scale != 1.0f)
                for (size_t i = 0; i < n_kept; i++)
                        w[i] *= scale;
        return n_kept;
}
