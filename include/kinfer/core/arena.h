/* SPDX-License-Identifier: Apache-2.0 */
/* arena.h -- a fixed-capacity bump allocator over caller-provided memory: strings decoded for a
 * batch (the codec allocates, the worker's batch owns the memory and resets it per batch).
 * Nothing is freed one by one; pointers handed out stay valid until the arena is reset. */
#ifndef KINFER_ARENA_H
#define KINFER_ARENA_H

#include <stddef.h>

typedef struct kinfer_arena_s {
        char *base;  /* cap bytes, owned by whoever set it */
        size_t used; /* bytes handed out */
        size_t cap;
} kinfer_arena_t;

/**
 * @brief Take @p n bytes from the arena (no alignment: for strings).
 * @returns the bytes, or NULL when fewer than @p n are left or @p arena is NULL.
 */
char *kinfer_arena_alloc(kinfer_arena_t *arena, size_t n);

/** Forget everything handed out (the memory is kept). */
void kinfer_arena_reset(kinfer_arena_t *arena);

#endif
