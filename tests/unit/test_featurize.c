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
        size_t bound = kinfer_featurize_bound(&c, strlen(text));
        uint32_t *got = calloc(bound, sizeof(uint32_t));
        size_t n = kinfer_featurize(&c, text, strlen(text), got);
        TEST_ASSERT(n <= bound, "within bound");
        TEST_ASSERT(n == n_want, "\"%s\": %zu features, want %zu", text, n, n_want);
        for (size_t i = 0; i < n && i < n_want; i++)
                TEST_ASSERT(got[i] == want[i], "\"%s\" feature %zu: %u, want %u", text, i, got[i], want[i]);
        /* the portable path gives the same */
        size_t n2 = kinfer_featurize_reference(&c, text, strlen(text), got);
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
                                size_t na = kinfer_featurize(&c, text, len, a);
                                size_t nb = kinfer_featurize_reference(&c, text, len, b);
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
        size_t n = kinfer_featurize(&c, bad, sizeof(bad) - 1, out);
        /* invalid bytes separate tokens: "ab", "cd" -> 2 unigrams + 1 bigram */
        TEST_ASSERT(n == 3, "got %zu features", n);
        TEST_ASSERT(kinfer_featurize(&c, "", 0, out) == 0, "empty text has no features");
        TEST_ASSERT(kinfer_featurize(&c, " ,;! ", 5, out) == 0, "punctuation only");
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
        size_t n = kinfer_featurize(&c, "the quick brown fox jumps over the lazy dog and the cat", 55, buckets);
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
        return TEST_DONE();
}
