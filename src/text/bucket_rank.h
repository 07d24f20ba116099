/* SPDX-License-Identifier: Apache-2.0 */
/* bucket_rank.h -- the bucket rank index (kinfer_bucket_rank_t of featurize.h) stored IN the
 * model file, so that pruned and quantized models need not carry the 8 MB int32 bucket map.
 *
 * ---- Layout (tensor kind KINFER_T_BUCKET_RANK, dtype I32, rows 1, cols 3 * W) ---------------
 * (the tensor kind and dtype are the model module's: kinfer/model/model.h; this header, of the
 * text module below it, only knows the bytes)
 *   W = ceil(n_buckets / 64) words, little-endian:
 *     u64 bits[W]   bit b % 64 of word b / 64 set  <=>  bucket b has an embedding row
 *     u32 base[W]   rows of all buckets before word w (= popcount of words < w)
 *   row(b) = base[b/64] + popcount(bits[b/64] & ((1 << b%64) - 1)) when bit b is set, else none:
 *   exactly kinfer_bucket_rank_row(). Rows are stored in bucket order, one per kept bucket.
 *   12 bytes per 64 buckets: 384 KB for 2^21 buckets, where KINFER_T_BUCKET_MAP takes 8 MB.
 * The arrays are 8-byte aligned in the blob (tensors start on 64 bytes), so a loader can point
 * model->rank at them without a copy (and must then not free them).
 *
 * Header-only: shared by the loader (model.c), the compression code and the tests.
 */
#ifndef KINFER_BUCKET_RANK_H
#define KINFER_BUCKET_RANK_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/text/featurize.h"

static inline size_t kinfer_bucket_rank_words(uint32_t n_buckets)
{
        return ((size_t)n_buckets + 63) / 64;
}

/** Bytes of the stored index for @p n_buckets buckets. */
static inline size_t kinfer_bucket_rank_bytes(uint32_t n_buckets)
{
        return 12 * kinfer_bucket_rank_words(n_buckets);
}

/** Point @p r into stored index bytes (borrowed: valid while @p data is).
 *  @returns 0, or -1 when @p size does not fit @p n_buckets or @p data is misaligned. */
static inline int kinfer_bucket_rank_view(kinfer_bucket_rank_t *r, const void *data, size_t size,
                                          uint32_t n_buckets)
{
        size_t w = kinfer_bucket_rank_words(n_buckets);
        if (size != 12 * w || ((uintptr_t)data & 7))
                return -1;
        r->bits = (uint64_t *)(uintptr_t)data;
        r->base = (uint32_t *)(uintptr_t)((const uint8_t *)data + 8 * w);
        return 0;
}

/** @returns NULL if @p r is consistent for @p n_buckets buckets and holds exactly @p n_rows
 *  rows, else a static message naming the problem. */
static inline const char *kinfer_bucket_rank_check(const kinfer_bucket_rank_t *r,
                                                   uint32_t n_buckets, int32_t n_rows)
{
        size_t w = kinfer_bucket_rank_words(n_buckets);
        uint64_t total = 0;
        for (size_t k = 0; k < w; k++) {
                if (r->base[k] != total)
                        return "bucket rank index: a word's base is not the rows before it";
                total += (uint64_t)__builtin_popcountll(r->bits[k]);
        }
        if (n_buckets % 64 && (r->bits[w - 1] >> (n_buckets % 64)))
                return "bucket rank index: bits set past the last bucket";
        if (total != (uint64_t)n_rows)
                return "bucket rank index: number of mapped buckets differs from the embedding rows";
        return NULL;
}

/**
 * @brief Write the stored index of a dense map (bucket -> row, -1 = none) into @p out
 * (kinfer_bucket_rank_bytes() bytes, 8-byte aligned). Rows get renumbered in bucket order:
 * @p old_row_of[new row] is the dense map's row (room for n_buckets entries). @p seen has one
 * zeroed byte per row of the dense map.
 * @returns the number of rows, or -1 when two buckets share a row (not expressible).
 */
static inline int64_t kinfer_bucket_rank_pack(const int32_t *map, uint32_t n_buckets, void *out,
                                              int32_t *old_row_of, uint8_t *seen)
{
        kinfer_bucket_rank_t r;
        if (kinfer_bucket_rank_view(&r, out, kinfer_bucket_rank_bytes(n_buckets), n_buckets))
                return -1;
        size_t w = kinfer_bucket_rank_words(n_buckets);
        int64_t n = 0;
        for (size_t k = 0; k < w; k++) {
                r.bits[k] = 0;
                r.base[k] = (uint32_t)n;
                for (uint32_t i = 0; i < 64 && 64 * k + i < n_buckets; i++) {
                        int32_t row = map[64 * k + i];
                        if (row < 0)
                                continue;
                        if (seen[row])
                                return -1; /* two buckets share a row */
                        seen[row] = 1;
                        r.bits[k] |= (uint64_t)1 << i;
                        old_row_of[n++] = row;
                }
        }
        return n;
}

#endif
