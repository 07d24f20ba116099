/* SPDX-License-Identifier: Apache-2.0 */
/* rows.c -- keep the top embedding rows: train --max-rows (by norm) and prune (by norm, or
 * norm x idf) choose their rows here. Dropping the weakest rows acts like a minimum document
 * frequency, and the kept rows stay in their original order. */
#include <stdlib.h>

#include "train/train_int.h"

double kinfer_row_norm2(const float *x, int32_t d)
{
        double s = 0;
        for (int32_t j = 0; j < d; j++)
                s += (double)x[j] * x[j];
        return s;
}

typedef struct rank_s {
        float imp;
        int32_t row;
} rank_t;

/* Most important first; equal importance: the lower row first (a total order, so the choice
 * does not depend on the sort). */
static int cmp_rank(const void *a, const void *b)
{
        const rank_t *x = a, *y = b;
        if (x->imp > y->imp)
                return -1;
        if (x->imp < y->imp)
                return 1;
        return x->row < y->row ? -1 : x->row > y->row;
}

kinfer_err_t kinfer_keep_top_rows(const float *imp, int64_t n, int64_t keep, int32_t *newidx,
                                  float *min_kept)
{
        if (keep >= n) {
                float mk = 0;
                for (int64_t r = 0; r < n; r++) {
                        newidx[r] = (int32_t)r;
                        if (r == 0 || imp[r] < mk)
                                mk = imp[r];
                }
                if (min_kept)
                        *min_kept = mk;
                return KINFER_OK;
        }
        rank_t *rank = malloc((size_t)(n ? n : 1) * sizeof(rank_t));
        if (!rank)
                return KINFER_ERR__NOMEM;
        for (int64_t r = 0; r < n; r++)
                rank[r] = (rank_t){imp[r], (int32_t)r};
        qsort(rank, (size_t)n, sizeof(rank_t), cmp_rank);
        if (min_kept)
                *min_kept = keep > 0 ? rank[keep - 1].imp : 0;
        for (int64_t r = 0; r < n; r++)
                newidx[r] = -1;
        for (int64_t i = 0; i < keep; i++)
                newidx[rank[i].row] = 0;
        int32_t nr = 0;
        for (int64_t r = 0; r < n; r++)
                if (newidx[r] == 0)
                        newidx[r] = nr++;
        free(rank);
        return KINFER_OK;
}
