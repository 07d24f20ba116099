/* SPDX-License-Identifier: Apache-2.0 */
/* arena.c -- the fixed-capacity string arena of arena.h. */
#include "kinfer/core/arena.h"

char *kinfer_arena_alloc(kinfer_arena_t *arena, size_t n)
{
        if (!arena || arena->cap - arena->used < n)
                return NULL;
        char *p = arena->base + arena->used;
        arena->used += n;
        return p;
}

void kinfer_arena_reset(kinfer_arena_t *arena)
{
        arena->used = 0;
}
