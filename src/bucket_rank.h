/* SPDX-License-Identifier: Apache-2.0 */
/* bucket_rank.h -- the compact bucket -> row map of pruned and quantized models: a rank
 * dictionary over one bit per hash bucket, instead of one int32 per bucket.
 *
 * ---- Layout (tensor kind KINFER_T_BUCKET_RANK, dtype I32, rows = n_buckets / 64, cols = 4) ----
 *   one 16-byte block per 64 buckets, little-endian:
 *     u64 bits   bit i set  <=>  bucket 64*k + i has an embedding row
 *     u32 base   rows of all buckets before this block (= sum of popcount(bits) of blocks < k)
 *     u32 zero   reserved, 0
 *   row(b) = base[b/64] + popcount(bits[b/64] & ((1 << b%64) - 1))  if bit b is set, else none.
 * So the rows are stored in bucket order, one row per kept bucket, and the map of 2^21 buckets
 * takes 512 KB (it fits in L2) where the dense int32 map (KINFER_T_BUCKET_MAP) takes 8 MB.
 * A lookup reads one 16-byte block: one cache line, like the dense map.
 *
 * Header-only, so that the loader (model.c), the featurizer and the compression code share one
 * definition; the runtime wiring is described in docs/compression.md.
 */
#ifndef KINFER_BUCKET_RANK_H
#define KINFER_BUCKET_RANK_H

#include <stddef.h>
#include <stdint.h>

/* On-disk tensor kind of the compact map (to join enum kinfer_tensor_kind in model.h). */
#define KINFER_T_BUCKET_RANK 9

typedef struct kinfer_rank_block_s {
        uint64_t bits;
        uint32_t base;
        uint32_t reserved;
} kinfer_rank_block_t;

_Static_assert(sizeof(kinfer_rank_block_t) == 16, "on-disk layout: 16 bytes per 64 buckets");

/** @returns the row of bucket @p b, or -1 when the bucket has none. */
static inline int32_t kinfer_rank_row(const kinfer_rank_block_t *rank, uint32_t b)
{
        const kinfer_rank_block_t *k = &rank[b >> 6];
        const uint64_t bit = (uint64_t)1 << (b & 63);
        if (!(k->bits & bit))
                return -1;
        return (int32_t)(k->base + (uint32_t)__builtin_popcountll(k->bits & (bit - 1)));
}

/** @returns NULL if @p rank (n_buckets / 64 blocks) is consistent and holds exactly @p n_rows
 *  rows, else a static message naming the problem. */
static inline const char *kinfer_rank_check(const kinfer_rank_block_t *rank, uint32_t n_buckets,
                                            int32_t n_rows)
{
        if (n_buckets % 64)
                return "compact bucket map needs a multiple of 64 buckets";
        uint64_t total = 0;
        for (uint32_t k = 0; k < n_buckets / 64; k++) {
                if (rank[k].base != total)
                        return "compact bucket map: a block's base is not the rows before it";
                if (rank[k].reserved)
                        return "compact bucket map: reserved field is not zero";
                total += (uint64_t)__builtin_popcountll(rank[k].bits);
        }
        if (total != (uint64_t)n_rows)
                return "compact bucket map: number of mapped buckets differs from the embedding rows";
        return NULL;
}

/**
 * @brief Build the compact map of a dense map (bucket -> row, -1 = none) over @p n_buckets
 * buckets. Rows get renumbered in bucket order: @p old_row_of[new row] is the dense map's row.
 * @returns the number of rows, or -1 when the dense map cannot be expressed (a row shared by
 * two buckets, or n_buckets not a multiple of 64). @p rank has n_buckets / 64 blocks and
 * @p old_row_of room for n_buckets entries (at most that many rows).
 */
static inline int64_t kinfer_rank_from_map(const int32_t *map, uint32_t n_buckets,
                                           kinfer_rank_block_t *rank, int32_t *old_row_of,
                                           uint8_t *seen /* rows of the dense map, zeroed */)
{
        if (n_buckets % 64)
                return -1;
        int64_t n = 0;
        for (uint32_t k = 0; k < n_buckets / 64; k++) {
                rank[k].bits = 0;
                rank[k].base = (uint32_t)n;
                rank[k].reserved = 0;
                for (uint32_t i = 0; i < 64; i++) {
                        int32_t r = map[64 * k + i];
                        if (r < 0)
                                continue;
                        if (seen[r])
                                return -1; /* two buckets share a row */
                        seen[r] = 1;
                        rank[k].bits |= (uint64_t)1 << i;
                        old_row_of[n++] = r;
                }
        }
        return n;
}

#endif
