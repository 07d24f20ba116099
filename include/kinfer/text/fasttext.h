/* SPDX-License-Identifier: Apache-2.0 */
/* fasttext.h -- the "fasttext" featurizer mode: fastText's own tokenization, dictionary and
 * hashing, so that a model imported from a fastText .bin/.ftz (kinfer import fasttext) sees
 * the very input rows fastText's predict sees for the same line.
 *
 * ---- What one text yields (fastText's Dictionary::getLine, supervised) ----------------------
 * Tokens are maximal runs of bytes other than ' ', '\n', '\r', '\t', '\v', '\f', '\0'; no
 * normalisation, no lowercasing. A newline (or the literal token "</s>") ends a line: it is the
 * token "</s>" (EOS), and a text's last line gets one too when the text does not end with a
 * newline (fastText reads "</s>" at every newline; kinfer records carry no newline). Lines of
 * one text are summed into one bag (fastText would predict each line separately).
 * For each token t with h = hash(t):
 *   - a token starting with "__label__" is skipped (fastText's label tokens);
 *   - a dictionary word w (id < nwords) emits w when maxn = 0, else w and the char n-grams of
 *     "<" t ">" (not for "</s>");
 *   - any other token emits the char n-grams of "<" t ">" (none for "</s>");
 *   - h is appended to the line's word hashes.
 *   char n-gram: for each code point start i, lengths n = 1..maxn code points, n >= minn and
 *     not a 1-code-point n-gram at either end: id nwords + hash(bytes) % bucket.
 *   word n-grams (after each line): for i, and j = i+1 .. i+wordNgrams-1 (within the line):
 *     g = (uint64)(int64)(int32)h_i; g = g * 116049371 + (uint64)(int64)(int32)h_j;
 *     id nwords + g % bucket.
 *   hash = FNV-1a 32 over the bytes, each byte sign-extended first (fastText's int8 quirk):
 *     h = 2166136261; h = (h ^ (uint32)(int8)c) * 16777619.
 * Ids are returned in the order above (per token, then the line's word n-grams). The runtime
 * averages the ids' rows with repeats (fastText's mean of input rows).
 *
 * ---- The dictionary tensor (KINFER_T_FT_DICT, BYTES, little-endian) ---------------------------
 *   u32 nwords, u32 bucket, u32 table_size (power of two > nwords), u32 strings_bytes,
 *   u32 reserved[4] (0)
 *   u32 offs[nwords + 1]     word i = strings[offs[i] .. offs[i+1])
 *   u32 whash[nwords]        hash(word i)
 *   i32 table[table_size]    open addressing from whash & (table_size - 1), linear probing;
 *                            -1 = empty
 *   u8  strings[strings_bytes]
 * kinfer_ft_dict_view() checks every count and offset against the tensor's size.
 */
#ifndef KINFER_TEXT_FASTTEXT_H
#define KINFER_TEXT_FASTTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/text/featurize.h"

#define KINFER_FT_MAX_WORDS 30000000u   /* fastText's MAX_VOCAB_SIZE */
#define KINFER_FT_MAX_BUCKET (1u << 30)
#define KINFER_FT_MAX_NGRAM 64          /* wordNgrams, minn, maxn */
#define KINFER_FT_DICT_HEADER 32

typedef struct kinfer_ft_dict_s {
        uint32_t nwords, bucket, table_mask, strings_bytes;
        uint32_t minn, maxn, word_ngrams;
        const uint32_t *offs;
        const uint32_t *whash;
        const int32_t *table;
        const char *strings;
} kinfer_ft_dict_t;

/** fastText's Dictionary::hash (FNV-1a 32, bytes sign-extended). */
uint32_t kinfer_ft_hash(const void *data, size_t len);

/** View @p data (@p size bytes, 4-aligned) as a dictionary for featurizer @p conf (mode
 * fasttext: n_buckets = nwords + bucket, word_ngrams, minn, maxn).
 * @returns NULL, or a static message naming the inconsistent field. */
const char *kinfer_ft_dict_view(kinfer_ft_dict_t *d, const kinfer_featurizer_conf_t *conf,
                                const void *data, size_t size);

/** The dictionary tensor for @p nwords words (@p words[i], @p lens[i]); duplicates: the last
 * one wins, as in fastText's loader. @returns a malloc'd buffer (*sizep bytes), or NULL on out of
 * memory or counts out of range. */
uint8_t *kinfer_ft_dict_pack(const char *const *words, const uint32_t *lens, uint32_t nwords,
                             uint32_t bucket, size_t *sizep);

/** @returns the id of the word, or -1. */
int32_t kinfer_ft_dict_find(const kinfer_ft_dict_t *d, const char *w, size_t len, uint32_t h);

/** A good first capacity for the ids of a @p len-byte text (not a bound). */
size_t kinfer_ft_featurize_estimate(const kinfer_ft_dict_t *d, size_t len);

/**
 * @brief The input ids fastText uses for @p text (see above), with repeats, at most @p cap
 * written; like kinfer_featurize(), returns how many the whole text yields.
 */
size_t kinfer_ft_featurize(const kinfer_ft_dict_t *d, const char *text, size_t len, uint32_t *ids,
                           size_t cap);

#endif
