/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_featurize.c -- libFuzzer target: any bytes (invalid UTF-8 included) under settings
 * taken from the first bytes must featurize within kinfer_featurize_bound() and weigh to an
 * L2-normalised vector. */
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
        c.minn = data[2] % 4;
        c.maxn = c.minn ? c.minn + data[3] % 4 : 0;
        c.prefix_words = data[3] >> 4;
        if (kinfer_featurizer_conf_check(&c))
                return 0;
        const char *text = (const char *)data + 4;
        size_t len = size - 4;
        size_t bound = kinfer_featurize_bound(&c, len);
        uint32_t *b = malloc(bound * sizeof(uint32_t));
        int32_t *rows = malloc(bound * sizeof(int32_t));
        float *w = malloc(bound * sizeof(float));
        kinfer_feat_scratch_t s = {0};
        if (!b || !rows || !w || kinfer_feat_scratch_reserve(&s, bound))
                abort();
        size_t n = kinfer_featurize(&c, text, len, b);
        assert(n <= bound);
        for (size_t i = 0; i < n; i++)
                assert(b[i] < c.n_buckets);
        size_t m = kinfer_feat_weigh(&c, b, n, NULL, NULL, NULL, &s, rows, w);
        double norm = 0;
        for (size_t i = 0; i < m; i++)
                norm += (double)w[i] * w[i];
        assert(m == 0 || fabs(norm - 1.0) < 1e-3);
        kinfer_feat_scratch_term(&s);
        free(b);
        free(rows);
        free(w);
        return 0;
}
