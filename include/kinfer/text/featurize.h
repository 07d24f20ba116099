/* SPDX-License-Identifier: Apache-2.0 */
/* featurize.h -- text -> hashed feature buckets -> weighted, de-duplicated features.
 *
 * Pure functions shared by training and serving, so the two cannot drift apart.
 *
 * ---- Normalisation and tokens ----------------------------------------------------------------
 * The text is decoded as UTF-8 (invalid bytes count as separators). A token is a maximal run
 * of letters (L*), marks (M*), numbers (N*) and '_'; everything else separates. ASCII letters
 * are lowercased; every other token code point is replaced by its compatibility decomposition
 * with full Unicode case folding (utf8proc: UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD), so "É",
 * "é" and "e" + U+0301 are one token, "STRAẞE" == "strasse", "ﬁle" == "file", "ＡＢＣ" == "abc".
 * With lowercase = 0, only the decomposition applies.
 *
 * ---- Hashes (golden-tested in tests/unit/test_featurize.c; never change) ----------------------
 *   token hash   over the token's normalised UTF-8 bytes in 8-byte little-endian chunks c_k
 *                (the last zero-padded): h = 0xcbf29ce484222325;
 *                h = (h ^ c_k) * 0x9e3779b97f4a7c15; h ^= h >> 32   (each chunk)
 *                t = fmix64(h ^ byte_length)              (kinfer_token_hash)
 *   word n-gram  g_1 = t_i;  g_n = (g_{n-1} * 0x9e3779b97f4a7c15) ^ t_{i+n-1}   (n = 2..N)
 *                then h = fmix64(g_n ^ (n * 0x100000001b3))      (the n-gram order is mixed in)
 *   char n-gram  FNV-1a 64 over the UTF-8 bytes of the n code points of "<" token ">" at one
 *                position, seeded with offset ^ 0x5bd1e9955bd1e995, then h = fmix64(h)
 *   prefix word  the i-th token (i < prefix_words, 0-based) also emits
 *                h = fmix64(t ^ ((i + 1) * 0xc2b2ae3d27d4eb4f))   (titles, subject lines)
 *   bucket       h & (n_buckets - 1)           (n_buckets is a power of two)
 *   fmix64       MurmurHash3's 64-bit finaliser.
 * Char n-grams (minn..maxn code points, like fastText's subwords) are what makes the model
 * work for text written without spaces; they are off when maxn = 0.
 *
 * ---- Weights -----------------------------------------------------------------------------------
 * Buckets are de-duplicated per text (tf = occurrences). Each kept bucket gets
 *   w = tf' * idf[row],   tf' = 1 + ln(tf) if sublinear_tf else tf,  idf = 1 if absent,
 * then the vector is L2-normalised if l2_norm, or divided by the number of features if
 * mean (bag_mode MEAN; in mode fasttext, by the sum of tf: fastText's mean over repeats). Buckets that the model's bucket map sends to no row are dropped.
 */
#ifndef KINFER_FEATURIZE_H
#define KINFER_FEATURIZE_H

#include <stddef.h>
#include <stdint.h>

/** Bumped whenever a hash or the normalisation changes: a model trained with another version
 * would get other buckets for the same text, so it is refused, not silently misread.
 * 1: FNV-1a token hash; 2: chunked token hash. */
#define KINFER_FEATURIZER_VERSION 2

/** The featurizer settings, stored verbatim (little-endian) in the model file. */
typedef struct kinfer_featurizer_conf_s {
        uint32_t version;      /* KINFER_FEATURIZER_VERSION */
        uint32_t n_buckets;    /* power of two */
        uint8_t word_ngrams;   /* 1..5: word n-grams up to this order */
        uint8_t minn, maxn;    /* char n-gram lengths in code points; maxn 0 = none */
        uint8_t lowercase;     /* 1 = Unicode lowercase */
        uint8_t sublinear_tf;  /* 1 = 1+ln(tf) */
        uint8_t use_idf;       /* 1 = multiply by the model's idf */
        uint8_t l2_norm;       /* 1 = L2-normalise the weighted bag */
        uint8_t bag_mean;      /* 1 = divide by the number of features (when not l2_norm) */
        uint8_t prefix_words;  /* the first P tokens also emit a position-tagged unigram */
        uint8_t mode;          /* KINFER_FEAT_MODE_*: 0 (kinfer's, all files before it) or
                                * fasttext (kinfer/text/fasttext.h; needs the model's dictionary) */
        uint8_t reserved[6];
} kinfer_featurizer_conf_t;

_Static_assert(sizeof(kinfer_featurizer_conf_t) == 24, "on-disk layout");

/** Featurizer modes. KINFER: everything above. FASTTEXT: fastText's tokens, dictionary and
 * hashes (kinfer/text/fasttext.h): n_buckets = nwords + fastText's bucket (any value up to
 * 2^31 - 1), word_ngrams/minn/maxn up to 64, bag_mean = 1 (the mean counts repeats: fastText
 * averages its input rows), every other switch 0. kinfer_featurize() yields no feature in this
 * mode (it has no dictionary): the runtime calls kinfer_ft_featurize(). */
enum { KINFER_FEAT_MODE_KINFER = 0, KINFER_FEAT_MODE_FASTTEXT = 1 };

/** Settings that work well on English prose: uni+bigrams, tf-idf, sublinear, L2. */
void kinfer_featurizer_conf_default(kinfer_featurizer_conf_t *conf);
/** @returns NULL if valid, else a static message naming the bad field. */
const char *kinfer_featurizer_conf_check(const kinfer_featurizer_conf_t *conf);

/** A good first size for the bucket buffer of a @p len-byte text: enough unless its
 * normalisation expands (one U+FDFA becomes 18 code points). NOT a bound: kinfer_featurize()
 * takes the buffer's capacity and says when the text needs more. */
size_t kinfer_featurize_estimate(const kinfer_featurizer_conf_t *conf, size_t len);

/** The most features the runtime and training take from one text (2^20). A text that yields
 * more (about 125 KB of text under char n-grams 2..5, or text whose normalisation expands) is
 * featurized on its first KINFER_FEATURIZE_MAX buckets: its leading text. */
#define KINFER_FEATURIZE_MAX ((size_t)1 << 20)

/**
 * @brief Hash @p text into bucket ids (with repeats, in text order).
 * Never writes past @p cap entries of @p buckets. Like snprintf, the return value counts every
 * bucket the text yields, written or not: when it is over @p cap, only the first @p cap were
 * written (grow the buffer to the return value and call again, or use the prefix).
 * @param buckets room for @p cap entries (NULL when cap is 0: just count)
 * @returns the number of buckets the whole text yields.
 */
size_t kinfer_featurize(const kinfer_featurizer_conf_t *conf, const char *text, size_t len,
                        uint32_t *buckets, size_t cap);

/** The same features by the portable byte-at-a-time path only (kinfer_featurize takes an
 * AVX2 path for all-ASCII texts up to 4 KB without char n-grams; the tests compare them). */
size_t kinfer_featurize_reference(const kinfer_featurizer_conf_t *conf, const char *text,
                                  size_t len, uint32_t *buckets, size_t cap);

/** The token hash t of the spec above, over already normalised bytes. */
uint64_t kinfer_token_hash(const void *data, size_t len);

/** FNV-1a 64 of bytes (char n-grams; exposed for golden tests). */
uint64_t kinfer_fnv1a64(const void *data, size_t len);
uint64_t kinfer_fmix64(uint64_t h);

/** Scratch for kinfer_feat_weigh(): an open-addressing table, reused across calls. */
typedef struct kinfer_feat_slot_s {
        uint32_t key;   /* bucket id */
        uint32_t stamp; /* generation: the slot is live iff stamp == gen */
        uint32_t count; /* tf */
} kinfer_feat_slot_t;

typedef struct kinfer_feat_scratch_s {
        kinfer_feat_slot_t *slots; /* one cache line holds a slot's key, stamp and count */
        uint32_t cap;              /* power of two */
        uint32_t gen;
} kinfer_feat_scratch_t;

void kinfer_feat_scratch_term(kinfer_feat_scratch_t *s);
/** Make room for @p n features (at most 2^30). @returns 0, or -1 on out of memory or n too
 * large. */
int kinfer_feat_scratch_reserve(kinfer_feat_scratch_t *s, size_t n);

/**
 * A compact, cache-resident form of a bucket map whose rows follow bucket order (row = the
 * number of kept buckets before it, as train and prune write them): one bit per bucket plus a
 * running count per 64 buckets, 1.5 bits per bucket instead of 32. For 2^21 buckets that is
 * 384 KB, which stays in L2, where the 8 MB map would miss cache on most lookups.
 */
typedef struct kinfer_bucket_rank_s {
        uint64_t *bits;  /* bit b set: bucket b has a row */
        uint32_t *base;  /* base[w]: rows of the buckets before word w */
} kinfer_bucket_rank_t;

/** Build @p r from @p map. @returns 0 on success, 1 when the map's rows do not follow
 * bucket order (nothing built), -1 on out of memory. */
int kinfer_bucket_rank_build(kinfer_bucket_rank_t *r, const int32_t *map, uint32_t n_buckets);
void kinfer_bucket_rank_term(kinfer_bucket_rank_t *r);

static inline int32_t kinfer_bucket_rank_row(const kinfer_bucket_rank_t *r, uint32_t b)
{
        uint64_t word = r->bits[b >> 6], bit = (uint64_t)1 << (b & 63);
        if (!(word & bit))
                return -1;
        return (int32_t)(r->base[b >> 6] + (uint32_t)__builtin_popcountll(word & (bit - 1)));
}

/**
 * @brief De-duplicate @p n buckets, map them to rows, weigh and normalise them.
 * @param rank       bucket -> row as a rank index (preferred), or NULL
 * @param bucket_map bucket -> row (-1 = dropped), used when rank is NULL; NULL for row = bucket
 * @param idf        per-row idf, or NULL
 * @param rows,w     out: up to @p n (row, weight) pairs, in first-occurrence order
 * @returns the number of pairs. Reserve the scratch for @p n first; when that was not done,
 * it grows here, and if it cannot, only the first buckets that fit are weighed (never a write
 * past the table).
 */
size_t kinfer_feat_weigh(const kinfer_featurizer_conf_t *conf, const uint32_t *buckets, size_t n,
                         const kinfer_bucket_rank_t *rank, const int32_t *bucket_map,
                         const float *idf, kinfer_feat_scratch_t *s, int32_t *rows, float *w);

#endif
