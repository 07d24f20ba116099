/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_featurize.c -- libFuzzer target: any bytes (invalid UTF-8 included) under settings taken
 * from the first bytes (every word_ngrams 0..5, every minn <= maxn up to 6, prefix words) must
 * featurize into a buffer of any capacity without writing past it (the buffers are allocated
 * to the entry), return the same count whatever the capacity, agree with the portable path,
 * and weigh to an L2-normalised vector. Seeds (tests/fuzz/corpus/fuzz_featurize/) hold code
 * points whose NFKD expands (U+FDFA is 18 code points). */
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinfer/text/featurize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 4)
                return 0;
        kinfer_featurizer_conf_t c;
        kinfer_featurizer_conf_default(&c);
        c.n_buckets = 1u << (4 + data[0] % 16);
        c.word_ngrams = data[1] % 6;
        c.minn = (data[2] & 7) % 7;                           /* 0..6: 0 = no char n-grams */
        c.maxn = c.minn ? c.minn + ((data[2] >> 3) % (7 - c.minn)) : 0; /* minn..6 */
        c.prefix_words = data[3] & 7;
        c.lowercase = (data[3] >> 3) & 1;
        int cap_kind = data[3] >> 4; /* which capacity to offer besides the exact one */
        if (kinfer_featurizer_conf_check(&c))
                return 0;
        const char *text = (const char *)data + 4;
        size_t len = size - 4;
        size_t n = kinfer_featurize(&c, text, len, NULL, 0);
        size_t est = kinfer_featurize_estimate(&c, len);
        size_t cap = cap_kind < 4 ? est : cap_kind < 8 ? n / (size_t)(cap_kind - 2) : n;
        uint32_t *full = malloc((n ? n : 1) * sizeof(uint32_t));
        uint32_t *b = malloc((cap ? cap : 1) * sizeof(uint32_t));
        int32_t *rows = malloc((n ? n : 1) * sizeof(int32_t));
        float *w = malloc((n ? n : 1) * sizeof(float));
        kinfer_feat_scratch_t s = {0};
        if (!full || !b || !rows || !w)
                abort();
        assert(kinfer_featurize(&c, text, len, full, n) == n);
        assert(kinfer_featurize_reference(&c, text, len, b, cap) == n);
        assert(memcmp(b, full, (cap < n ? cap : n) * sizeof(uint32_t)) == 0);
        assert(kinfer_featurize(&c, text, len, b, cap) == n);
        assert(memcmp(b, full, (cap < n ? cap : n) * sizeof(uint32_t)) == 0);
        for (size_t i = 0; i < n; i++)
                assert(full[i] < c.n_buckets);
        if (data[0] & 0x80) /* also let weigh grow an unreserved scratch */
                assert(kinfer_feat_scratch_reserve(&s, n) == 0);
        size_t m = kinfer_feat_weigh(&c, full, n, NULL, NULL, NULL, &s, rows, w);
        double norm = 0;
        for (size_t i = 0; i < m; i++)
                norm += (double)w[i] * w[i];
        assert(m <= n);
        assert(m == 0 || fabs(norm - 1.0) < 1e-3);
        kinfer_feat_scratch_term(&s);
        free(full);
        free(b);
        free(rows);
        free(w);
        return 0;
}
