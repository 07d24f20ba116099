/* SPDX-License-Identifier: Apache-2.0 */
/* test_featurize.c -- golden hashes and feature vectors, on both featurizer paths. The expected buckets were computed by
 * an independent Python implementation of the spec in include/kinfer/text/featurize.h. */
#include <math.h>

#include "kinfer/text/featurize.h"
#include "test.h"

static void test_fnv_vectors(void)
{
        /* published FNV-1a 64 test vectors */
        TEST_ASSERT(kinfer_fnv1a64("", 0) == 0xcbf29ce484222325ULL, "empty");
        TEST_ASSERT(kinfer_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cULL, "a");
        TEST_ASSERT(kinfer_fnv1a64("foobar", 6) == 0x85944171f73967e8ULL, "foobar");
}

static void check_p(const char *text, uint32_t nb, int N, int minn, int maxn, int prefix,
                    const uint32_t *want, size_t n_want)
{
        kinfer_featurizer_conf_t c;
        kinfer_featurizer_conf_default(&c);
        c.n_buckets = nb;
        c.word_ngrams = (uint8_t)N;
        c.minn = (uint8_t)minn;
        c.maxn = (uint8_t)maxn;
        c.prefix_words = (uint8_t)prefix;
        TEST_ASSERT(kinfer_featurizer_conf_check(&c) == NULL, "conf valid");
        size_t bound = kinfer_featurize_estimate(&c, strlen(text));
        uint32_t *got = calloc(bound, sizeof(uint32_t));
        size_t n = kinfer_featurize(&c, text, strlen(text), got, bound);
        TEST_ASSERT(n <= bound, "within the estimate");
        TEST_ASSERT(n == n_want, "\"%s\": %zu features, want %zu", text, n, n_want);
        for (size_t i = 0; i < n && i < n_want; i++)
                TEST_ASSERT(got[i] == want[i], "\"%s\" feature %zu: %u, want %u", text, i, got[i], want[i]);
        /* the portable path gives the same */
        size_t n2 = kinfer_featurize_reference(&c, text, strlen(text), got, bound);
        TEST_ASSERT(n2 == n_want, "reference path: %zu features", n2);
        for (size_t i = 0; i < n2 && i < n_want; i++)
                TEST_ASSERT(got[i] == want[i], "\"%s\" reference feature %zu: %u, want %u", text, i, got[i], want[i]);
        free(got);
}

static void check(const char *text, uint32_t nb, int N, int minn, int maxn, const uint32_t *want,
                  size_t n_want)
{
        check_p(text, nb, N, minn, maxn, 0, want, n_want);
}

static void test_token_hash(void)
{
        TEST_ASSERT(kinfer_token_hash("abc", 3) == 0x9c8466acc4dbca10ULL, "abc");
        TEST_ASSERT(kinfer_token_hash("abcdefghij", 10) == 0x6438fa44354e36deULL, "two chunks");
}

static void test_golden_prefix(void)
{
        static const uint32_t a[] = {452053, 133243, 472469, 388097, 794078, 165423, 342269, 177601,
                                     954877, 232997, 1018093, 300136, 167483, 809265, 463935, 169420,
                                     426134, 923056, 747801, 1013625, 147433, 678619, 747801, 28618};
        check_p("The Quick brown_fox: jumps over 13 lazy dogs, again and again", 1u << 20, 2, 0, 0, 3, a, 24);
}

/* The AVX2 ASCII path and the portable path agree on every text: random ASCII around the
 * 32/64-byte block edges, tokens longer than a chunk and than a bitmap word, both cases. */
static void test_fast_path_equivalence(void)
{
        static const char alphabet[] = "abcXYZ09_ -.,:;()/\t!";
        char text[4200];
        uint32_t *a = malloc(40000 * sizeof(uint32_t)), *b = malloc(40000 * sizeof(uint32_t));
        uint64_t x = 12345;
        int bad = 0, runs = 0;
        for (int lowercase = 0; lowercase < 2; lowercase++)
                for (int N = 1; N <= 3; N++) {
                        kinfer_featurizer_conf_t c;
                        kinfer_featurizer_conf_default(&c);
                        c.lowercase = (uint8_t)lowercase;
                        c.word_ngrams = (uint8_t)N;
                        c.prefix_words = 4;
                        for (int t = 0; t < 300; t++) {
                                size_t len = t < 140 ? (size_t)t : (size_t)(x >> 33) % 4097;
                                int longtok = (x >> 20) % 4 == 0;
                                for (size_t i = 0; i < len; i++) {
                                        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
                                        int k = (int)((x >> 33) % (longtok ? 8 : (sizeof(alphabet) - 1)));
                                        text[i] = alphabet[k];
                                }
                                size_t na = kinfer_featurize(&c, text, len, a, 40000);
                                size_t nb = kinfer_featurize_reference(&c, text, len, b, 40000);
                                bad += na != nb || memcmp(a, b, na * sizeof(uint32_t));
                                runs++;
                        }
                }
        TEST_ASSERT(bad == 0, "%d of %d texts differ between the fast and the portable path", bad, runs);
        free(a);
        free(b);
}

static void test_golden_words(void)
{
        static const uint32_t a[] = {16622, 571641, 457895};
        check("Hello, World!", 1u << 20, 2, 0, 0, a, 3);
        static const uint32_t b[] = {52517, 4150, 442, 9330, 52203, 17208, 22569, 16678,
                                     15644, 62655, 63964, 25675, 49272, 17010, 8479};
        check("libfoo-dev: C library (development files)", 1u << 16, 3, 0, 0, b, 15);
        /* case and punctuation do not matter */
        check("HELLO world", 1u << 20, 2, 0, 0, a, 3);
}

static void test_golden_unicode_chars(void)
{
        static const uint32_t a[] = {978033, 553571, 747801, 541780, 553278, 224032, 643172, 146824, 249601,
                                     706948, 561599, 151653, 417437, 82121, 128124, 317247, 30547, 24543,
                                     765194, 95959, 982603, 695203, 634452, 574965, 457308, 537060, 757612,
                                     82121, 253015, 754325, 457488, 868725, 828914, 95959, 3238, 683655,
                                     596355, 966933, 213620, 852736, 446427, 672731, 594775, 580869, 575424,
                                     764787, 955610, 940452, 585038, 95959};
        check("Ünïcode ÉCOLE straße", 1u << 20, 1, 2, 3, a, 50);
        /* case folding beyond ASCII: the upper-case text gives the same features, and so does
         * the decomposed spelling (e + U+0301) */
        check("ÜNÏCODE école STRAßE", 1u << 20, 1, 2, 3, a, 50);
        check("U\xcc\x88" "ni\xcc\x88" "code E\xcc\x81" "COLE strasse", 1u << 20, 1, 2, 3, a, 50);
        /* compatibility forms: ligature, fullwidth letters; sharp s folds to ss */
        static const uint32_t c[] = {941753, 471586, 3238, 3238};
        check("ﬁle ＡＢＣ Straße STRASSE", 1u << 20, 1, 0, 0, c, 4);
        /* text without spaces: char n-grams carry the signal */
        static const uint32_t b[] = {51264, 119352, 27668, 240470, 133730, 115600, 243029, 115600,
                                     122316, 177701, 81408, 58561, 229936, 142527, 61430, 225674};
        check("中文文本分类", 1u << 18, 1, 1, 2, b, 16);
}

static void test_invalid_utf8(void)
{
        kinfer_featurizer_conf_t c;
        kinfer_featurizer_conf_default(&c);
        const char bad[] = "ab\xff\xfe" "cd \xc3";
        uint32_t out[256];
        size_t n = kinfer_featurize(&c, bad, sizeof(bad) - 1, out, 256);
        /* invalid bytes separate tokens: "ab", "cd" -> 2 unigrams + 1 bigram */
        TEST_ASSERT(n == 3, "got %zu features", n);
        TEST_ASSERT(kinfer_featurize(&c, "", 0, out, 256) == 0, "empty text has no features");
        TEST_ASSERT(kinfer_featurize(&c, " ,;! ", 5, out, 256) == 0, "punctuation only");
}

static void test_weigh(void)
{
        kinfer_featurizer_conf_t c;
        kinfer_featurizer_conf_default(&c);
        kinfer_feat_scratch_t s = {0};
        TEST_ASSERT(kinfer_feat_scratch_reserve(&s, 16) == 0, "reserve");
        uint32_t b[] = {5, 7, 5, 5, 9, 7};
        int32_t rows[6];
        float w[6];
        float idf[16];
        for (int i = 0; i < 16; i++)
                idf[i] = 1.0f + (float)i / 10;
        size_t n = kinfer_feat_weigh(&c, b, 6, NULL, NULL, idf, &s, rows, w);
        TEST_ASSERT(n == 3, "3 unique features, got %zu", n);
        TEST_ASSERT(rows[0] == 5 && rows[1] == 7 && rows[2] == 9, "first-occurrence order");
        double x5 = (1 + log(3.0)) * 1.5, x7 = (1 + log(2.0)) * 1.7, x9 = 1.9;
        double norm = sqrt(x5 * x5 + x7 * x7 + x9 * x9);
        TEST_ASSERT(fabs(w[0] - x5 / norm) < 1e-6, "tf-idf weight of 5: %f vs %f", w[0], x5 / norm);
        TEST_ASSERT(fabs(w[2] - x9 / norm) < 1e-6, "tf-idf weight of 9");
        /* a bucket map drops unmapped buckets before normalising */
        int32_t map[16];
        for (int i = 0; i < 16; i++)
                map[i] = -1;
        map[7] = 0;
        map[9] = 1;
        n = kinfer_feat_weigh(&c, b, 6, NULL, map, idf, &s, rows, w);
        TEST_ASSERT(n == 2 && rows[0] == 0 && rows[1] == 1, "mapped rows");
        TEST_ASSERT(fabs(w[0] * w[0] + w[1] * w[1] - 1.0) < 1e-5, "L2-normalised");
        /* the scratch is reusable across many calls (generation stamps) */
        for (int i = 0; i < 1000; i++)
                n = kinfer_feat_weigh(&c, b, 6, NULL, NULL, NULL, &s, rows, w);
        TEST_ASSERT(n == 3, "reuse");
        kinfer_feat_scratch_term(&s);
}

/* The rank index answers exactly like the map it was built from. */
static void test_bucket_rank(void)
{
        const uint32_t nb = 1u << 16;
        int32_t *map = malloc(nb * sizeof(int32_t));
        uint64_t x = 99;
        int32_t next = 0;
        for (uint32_t b = 0; b < nb; b++) {
                x = x * 6364136223846793005ULL + 1442695040888963407ULL;
                map[b] = (x >> 60) < 7 ? next++ : -1; /* about 7/16 of buckets kept */
        }
        kinfer_bucket_rank_t r;
        TEST_ASSERT(kinfer_bucket_rank_build(&r, map, nb) == 0, "build");
        int bad = 0;
        for (uint32_t b = 0; b < nb; b++)
                bad += kinfer_bucket_rank_row(&r, b) != map[b];
        TEST_ASSERT(bad == 0, "%d buckets disagree with the map", bad);
        /* weigh through either gives the same rows and weights */
        kinfer_featurizer_conf_t c;
        kinfer_featurizer_conf_default(&c);
        c.n_buckets = nb;
        kinfer_feat_scratch_t s = {0};
        kinfer_feat_scratch_reserve(&s, 512);
        uint32_t buckets[512];
        size_t n = kinfer_featurize(&c, "the quick brown fox jumps over the lazy dog and the cat", 55, buckets, 512);
        int32_t r1[512], r2[512];
        float w1[512], w2[512];
        size_t n1 = kinfer_feat_weigh(&c, buckets, n, NULL, map, NULL, &s, r1, w1);
        size_t n2 = kinfer_feat_weigh(&c, buckets, n, &r, map, NULL, &s, r2, w2);
        TEST_ASSERT(n1 == n2 && n1 > 0 && !memcmp(r1, r2, n1 * 4) && !memcmp(w1, w2, n1 * 4), "same features");
        kinfer_bucket_rank_term(&r);
        /* a map whose rows are not in bucket order is refused, nothing built */
        map[0] = 5;
        map[1] = 0;
        TEST_ASSERT(kinfer_bucket_rank_build(&r, map, nb) == 1 && r.bits == NULL, "unordered map");
        kinfer_feat_scratch_term(&s);
        free(map);
}

/* ---- hostile text: normalisation that expands ---------------------------------------------
 * One code point can decompose into many (U+FDFA into 18), so no formula over the byte length
 * bounds the features. kinfer_featurize() takes the buffer's capacity: it never writes past it
 * (the buffers below are allocated to the entry, so ASan sees any write past), counts what the
 * text yields, and what it writes is the prefix of the full answer. */

static size_t put_utf8(char *p, uint32_t cp)
{
        if (cp < 0x80) {
                p[0] = (char)cp;
                return 1;
        }
        if (cp < 0x800) {
                p[0] = (char)(0xc0 | cp >> 6);
                p[1] = (char)(0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                p[0] = (char)(0xe0 | cp >> 12);
                p[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                p[2] = (char)(0x80 | (cp & 0x3f));
                return 3;
        }
        p[0] = (char)(0xf0 | cp >> 18);
        p[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        p[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        p[3] = (char)(0x80 | (cp & 0x3f));
        return 4;
}

/* Code points whose NFKD + case folding is longer than themselves: the Arabic ligatures
 * U+FDFA (18 code points) and U+FDFB (8), the U+3300 squares (katakana words; symbols, so
 * separators), ligatures ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ, Hangul syllables (2-3 jamo), parenthesised and
 * full-stop numbers ⑴ ⒇ ⒛, roman numerals ⅷ Ⅻ, vulgar fractions ⅞, ΐ (3 after folding),
 * ẞ (ss), ŉ, ǰ, the U+1F80 Greek with ypogegrammeni, ﷲ, ㍱ and ㎢. */
static const uint32_t expanding[] = {
    0xFDFA, 0xFDFB, 0x3300, 0x3301, 0x3302, 0x3303, 0x330B, 0x3315, 0x3357, 0xFB00, 0xFB01,
    0xFB02, 0xFB03, 0xFB04, 0xFB05, 0xFB06, 0xAC00, 0xAC01, 0xD4DB, 0xD7A3, 0x2474, 0x2487,
    0x249B, 0x2177, 0x216B, 0x215E, 0x0390, 0x1E9E, 0x0149, 0x01F0, 0x1F82, 0x1FB7, 0xFDF2,
    0x3371, 0x33A2, 0x1D15F, 0x2057, 0xFF21};

/* A text of @p n code points from @p cps (cycled), with a separator every @p tok code points
 * (0: one long token), into @p buf (room for 4n bytes). @returns its length. */
static size_t make_text(char *buf, const uint32_t *cps, size_t n_cps, size_t n, size_t tok,
                        size_t start)
{
        size_t len = 0;
        for (size_t i = 0; i < n; i++) {
                if (tok && i % tok == tok - 1)
                        buf[len++] = ' ';
                else
                        len += put_utf8(buf + len, cps[(start + i) % n_cps]);
        }
        return len;
}

/* Featurize @p text under @p c into buffers of exactly estimate, exactly the count, a
 * smaller one and none; every call returns the same count and writes the same prefix. */
static int check_capacity(const kinfer_featurizer_conf_t *c, const char *text, size_t len,
                          size_t *n_out, size_t *estimate_out)
{
        int bad = 0;
        size_t est = kinfer_featurize_estimate(c, len);
        size_t n = kinfer_featurize(c, text, len, NULL, 0);
        uint32_t *full = malloc((n ? n : 1) * sizeof(uint32_t));
        bad += kinfer_featurize(c, text, len, full, n) != n;
        bad += kinfer_featurize_reference(c, text, len, full, n) != n;
        size_t caps[3] = {est, n / 2, n > 0 ? n - 1 : 0};
        for (int i = 0; i < 3; i++) {
                size_t cap = caps[i];
                uint32_t *b = malloc((cap ? cap : 1) * sizeof(uint32_t));
                size_t got = kinfer_featurize(c, text, len, b, cap);
                bad += got != n;
                bad += memcmp(b, full, (cap < n ? cap : n) * sizeof(uint32_t)) != 0;
                got = kinfer_featurize_reference(c, text, len, b, cap);
                bad += got != n;
                bad += memcmp(b, full, (cap < n ? cap : n) * sizeof(uint32_t)) != 0;
                free(b);
        }
        /* weigh de-duplicates the written prefix within a scratch it grows itself */
        if (n) {
                kinfer_feat_scratch_t s = {0};
                int32_t *rows = malloc(n * sizeof(int32_t));
                float *w = malloc(n * sizeof(float));
                size_t m = kinfer_feat_weigh(c, full, n, NULL, NULL, NULL, &s, rows, w);
                double norm = 0;
                for (size_t i = 0; i < m; i++)
                        norm += (double)w[i] * w[i];
                bad += m == 0 || m > n || fabs(norm - 1.0) > 1e-3;
                kinfer_feat_scratch_term(&s);
                free(rows);
                free(w);
        }
        free(full);
        *n_out = n;
        *estimate_out = est;
        return bad;
}

static void test_expanding_text(void)
{
        const size_t n_exp = sizeof(expanding) / sizeof(expanding[0]);
        char *text = malloc(4 * 3000 + 16);
        int bad = 0, runs = 0, over_estimate = 0;
        for (int minn = 1; minn <= 6; minn++)
                for (int maxn = minn; maxn <= 6; maxn++)
                        for (int N = 0; N <= 2; N += 2) {
                                kinfer_featurizer_conf_t c;
                                kinfer_featurizer_conf_default(&c);
                                c.n_buckets = 1u << 16;
                                c.minn = (uint8_t)minn;
                                c.maxn = (uint8_t)maxn;
                                c.word_ngrams = (uint8_t)N;
                                c.prefix_words = (uint8_t)(N ? 2 : 0);
                                /* one code point repeated (U+FDFA alone, U+FDFB, ...), tokens of 1, 3, 40
                                 * and 3000 code points (beyond the 1024 bytes a token's char n-grams look
                                 * at), and the whole list mixed */
                                for (size_t e = 0; e <= n_exp; e++) {
                                        const uint32_t *cps = e < n_exp ? &expanding[e] : expanding;
                                        size_t ncps = e < n_exp ? 1 : n_exp;
                                        static const size_t toks[4] = {2, 4, 41, 0};
                                        for (int t = 0; t < 4; t++) {
                                                if (t == 3 && e % 8 && e != n_exp)
                                                        continue; /* the long token for some only */
                                                size_t count = t == 3 ? 3000 : 120;
                                                size_t len = make_text(text, cps, ncps, count, toks[t], (size_t)minn);
                                                size_t n, est;
                                                bad += check_capacity(&c, text, len, &n, &est);
                                                over_estimate += n > est;
                                                runs++;
                                        }
                                }
                        }
        TEST_ASSERT(bad == 0, "%d failures over %d texts", bad, runs);
        /* the estimate is beaten by this input (the old bound): what made the overflow */
        TEST_ASSERT(over_estimate > 0, "no text went past the estimate: the test lost its teeth");
        TEST_SAY("%d texts, %d of them yield more buckets than the length-based estimate", runs, over_estimate);

        /* U+FDFA under char n-grams 1..6: 18 code points per 3 bytes */
        kinfer_featurizer_conf_t c;
        kinfer_featurizer_conf_default(&c);
        c.minn = 1;
        c.maxn = 6;
        size_t len = make_text(text, (const uint32_t[]){0xFDFA}, 1, 50, 0, 0);
        size_t est = kinfer_featurize_estimate(&c, len), n = kinfer_featurize(&c, text, len, NULL, 0);
        TEST_ASSERT(n > est, "50 x U+FDFA: %zu buckets, estimate %zu", n, est);
        free(text);
}

/* The de-duplication table grows when the caller did not reserve it, never overruns. */
static void test_weigh_unreserved(void)
{
        kinfer_featurizer_conf_t c;
        kinfer_featurizer_conf_default(&c);
        kinfer_feat_scratch_t s = {0};
        enum { N = 5000 };
        uint32_t *b = malloc(N * sizeof(uint32_t));
        int32_t *rows = malloc(N * sizeof(int32_t));
        float *w = malloc(N * sizeof(float));
        for (int i = 0; i < N; i++)
                b[i] = (uint32_t)(i * 7919) % 4096;
        size_t n = kinfer_feat_weigh(&c, b, N, NULL, NULL, NULL, &s, rows, w);
        TEST_ASSERT(n == 4096, "%zu unique buckets, want 4096", n);
        TEST_ASSERT(s.cap >= 2 * N, "scratch grew to %u", s.cap);
        TEST_ASSERT(kinfer_feat_scratch_reserve(&s, ((size_t)1 << 30) + 1) == -1, "absurd reserve refused");
        kinfer_feat_scratch_term(&s);
        free(b);
        free(rows);
        free(w);
}

static void test_conf_check(void)
{
        kinfer_featurizer_conf_t c;
        kinfer_featurizer_conf_default(&c);
        c.n_buckets = 1000;
        TEST_ASSERT(kinfer_featurizer_conf_check(&c) != NULL, "non power of two refused");
        kinfer_featurizer_conf_default(&c);
        c.minn = 4;
        c.maxn = 2;
        TEST_ASSERT(kinfer_featurizer_conf_check(&c) != NULL, "minn > maxn refused");
}

int main(void)
{
        TEST_RUN(test_fnv_vectors);
        TEST_RUN(test_token_hash);
        TEST_RUN(test_golden_words);
        TEST_RUN(test_golden_prefix);
        TEST_RUN(test_fast_path_equivalence);
        TEST_RUN(test_golden_unicode_chars);
        TEST_RUN(test_invalid_utf8);
        TEST_RUN(test_weigh);
        TEST_RUN(test_bucket_rank);
        TEST_RUN(test_conf_check);
        TEST_RUN(test_expanding_text);
        TEST_RUN(test_weigh_unreserved);
        return TEST_DONE();
}
