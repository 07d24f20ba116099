/* SPDX-License-Identifier: Apache-2.0 */
/* offsets.c -- per-partition rings of in-flight offsets and their contiguous delivered
 * watermark (see offsets.h). Rings grow by doubling and never shrink; in steady state nothing
 * is allocated per record. */
#include "kinfer/worker/offsets.h"

#include <stdlib.h>
#include <string.h>

#define SEQ_BITS 48
#define SEQ_MASK ((UINT64_C(1) << SEQ_BITS) - 1)
#define MAX_PARTS 65535

struct part {
        char *topic;
        int32_t partition;
        uint64_t head, tail; /* sequences: [head, tail) in flight; tokens carry seq & SEQ_MASK */
        uint64_t cap;        /* power of two */
        int64_t *off, *t_us;
        uint8_t *done;
        int64_t committable; /* last completed + 1 not yet reported, -1 = nothing new */
        int dirty;
};

struct kinfer_offsets_s {
        struct part *parts;
        int32_t n, cap;
        int64_t in_flight;
};

kinfer_offsets_t *kinfer_offsets_new(char *errstr, size_t errstr_size)
{
        kinfer_offsets_t *offs = calloc(1, sizeof(*offs));
        if (!offs)
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
        return offs;
}

void kinfer_offsets_destroy(kinfer_offsets_t *offs)
{
        if (!offs)
                return;
        for (int32_t i = 0; i < offs->n; i++) {
                free(offs->parts[i].topic);
                free(offs->parts[i].off);
                free(offs->parts[i].t_us);
                free(offs->parts[i].done);
        }
        free(offs->parts);
        free(offs);
}

int32_t kinfer_offsets_part(kinfer_offsets_t *offs, const char *topic, int32_t partition)
{
        for (int32_t i = 0; i < offs->n; i++)
                if (offs->parts[i].partition == partition && !strcmp(offs->parts[i].topic, topic))
                        return i;
        if (offs->n >= MAX_PARTS)
                return -1;
        if (offs->n == offs->cap) {
                int32_t cap = offs->cap ? offs->cap * 2 : 16;
                struct part *np = realloc(offs->parts, (size_t)cap * sizeof(*np));
                if (!np)
                        return -1;
                offs->parts = np;
                offs->cap = cap;
        }
        struct part *p = &offs->parts[offs->n];
        memset(p, 0, sizeof(*p));
        p->topic = strdup(topic);
        if (!p->topic)
                return -1;
        p->partition = partition;
        p->committable = -1;
        p->head = p->tail = 1; /* so that no token is 0 */
        return offs->n++;
}

const char *kinfer_offsets_topic(const kinfer_offsets_t *offs, int32_t part)
{
        return offs->parts[part].topic;
}

int32_t kinfer_offsets_partition(const kinfer_offsets_t *offs, int32_t part)
{
        return offs->parts[part].partition;
}

int32_t kinfer_offsets_count(const kinfer_offsets_t *offs)
{
        return offs->n;
}

static int grow(struct part *p)
{
        uint64_t cap = p->cap ? p->cap * 2 : 1024;
        int64_t *off = malloc(cap * sizeof(*off)), *t = malloc(cap * sizeof(*t));
        uint8_t *done = malloc(cap);
        if (!off || !t || !done) {
                free(off);
                free(t);
                free(done);
                return -1;
        }
        for (uint64_t s = p->head; s < p->tail; s++) {
                off[s & (cap - 1)] = p->off[s & (p->cap - 1)];
                t[s & (cap - 1)] = p->t_us[s & (p->cap - 1)];
                done[s & (cap - 1)] = p->done[s & (p->cap - 1)];
        }
        free(p->off);
        free(p->t_us);
        free(p->done);
        p->off = off;
        p->t_us = t;
        p->done = done;
        p->cap = cap;
        return 0;
}

uint64_t kinfer_offsets_track(kinfer_offsets_t *offs, int32_t part, int64_t offset, int64_t t_us)
{
        struct part *p = &offs->parts[part];
        if (p->tail - p->head == p->cap && grow(p))
                return 0;
        uint64_t s = p->tail++;
        p->off[s & (p->cap - 1)] = offset;
        p->t_us[s & (p->cap - 1)] = t_us;
        p->done[s & (p->cap - 1)] = 0;
        offs->in_flight++;
        return (uint64_t)part << SEQ_BITS | (s & SEQ_MASK);
}

int kinfer_offsets_done(kinfer_offsets_t *offs, uint64_t token, int64_t *t_us)
{
        int32_t part = (int32_t)(token >> SEQ_BITS);
        if (part >= offs->n)
                return 0;
        struct part *p = &offs->parts[part];
        /* rebuild the full sequence from its low bits: the one in [head, tail) */
        uint64_t s = (p->head & ~SEQ_MASK) | (token & SEQ_MASK);
        if (s < p->head)
                s += SEQ_MASK + 1;
        if (s < p->head || s >= p->tail || p->done[s & (p->cap - 1)])
                return 0;
        p->done[s & (p->cap - 1)] = 1;
        if (t_us)
                *t_us = p->t_us[s & (p->cap - 1)];
        offs->in_flight--;
        while (p->head < p->tail && p->done[p->head & (p->cap - 1)]) {
                p->committable = p->off[p->head & (p->cap - 1)] + 1;
                p->dirty = 1;
                p->head++;
        }
        return 1;
}

int kinfer_offsets_lookup(const kinfer_offsets_t *offs, uint64_t token, int32_t *part_out,
                          int64_t *offset)
{
        int32_t part = (int32_t)(token >> SEQ_BITS);
        if (part >= offs->n)
                return 0;
        const struct part *p = &offs->parts[part];
        uint64_t s = (p->head & ~SEQ_MASK) | (token & SEQ_MASK);
        if (s < p->head)
                s += SEQ_MASK + 1;
        if (s < p->head || s >= p->tail || p->done[s & (p->cap - 1)])
                return 0;
        *part_out = part;
        *offset = p->off[s & (p->cap - 1)];
        return 1;
}

int64_t kinfer_offsets_in_flight(const kinfer_offsets_t *offs)
{
        return offs->in_flight;
}

int32_t kinfer_offsets_next_dirty(kinfer_offsets_t *offs, int32_t *iter, int64_t *next_offset)
{
        for (int32_t i = *iter; i < offs->n; i++) {
                struct part *p = &offs->parts[i];
                if (p->dirty) {
                        p->dirty = 0;
                        *next_offset = p->committable;
                        *iter = i + 1;
                        return i;
                }
        }
        *iter = offs->n;
        return -1;
}

void kinfer_offsets_reset(kinfer_offsets_t *offs, int32_t part)
{
        struct part *p = &offs->parts[part];
        for (uint64_t s = p->head; s < p->tail; s++)
                if (!p->done[s & (p->cap - 1)])
                        offs->in_flight--;
        p->head = p->tail;
        p->dirty = 0;
        p->committable = -1;
}
