/* arena.c — bump allocator: one per model; everything is freed at once with the arena.
 *
 * Chunks grow geometrically; an allocation bigger than a chunk gets its own chunk, so a
 * folded 100 MB constant costs exactly its size. Memory is zeroed, which keeps freshly made
 * IR records in a defined state without per-field initialisation.
 */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

typedef struct Chunk {
    struct Chunk *next;
    size_t size, used;
    unsigned char mem[];
} Chunk;

struct Arena {
    Chunk *head;
    size_t total;
};

static void *xcalloc(size_t n)
{
    void *p = calloc(1, n);
    if (!p) {
        fprintf(stderr, "bqc: out of memory (%zu bytes)\n", n);
        abort();
    }
    return p;
}

Arena *arena_create(void) { return xcalloc(sizeof(Arena)); }

void arena_destroy(Arena *a)
{
    if (!a) return;
    for (Chunk *c = a->head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    free(a);
}

void *arena_alloc_aligned(Arena *a, size_t size, size_t align)
{
    Chunk *c = a->head;
    if (c) {
        /* Align the address, not the offset: chunks come from calloc (16-byte aligned). */
        uintptr_t base = (uintptr_t)c->mem;
        size_t off = (size_t)(((base + c->used + align - 1) & ~(uintptr_t)(align - 1)) - base);
        if (off + size <= c->size) {
            c->used = off + size;
            return c->mem + off;
        }
    }
    size_t want = c ? c->size * 2 : 64 * 1024;
    if (want > 64u << 20) want = 64u << 20;
    if (want < size + align) want = size + align;
    Chunk *n = xcalloc(sizeof(Chunk) + want);
    n->size = want;
    a->total += want;
    /* A huge one-off allocation goes behind the current chunk so its free space stays usable. */
    if (c && size > c->size / 2) {
        n->next = c->next;
        c->next = n;
    } else {
        n->next = c;
        a->head = n;
    }
    size_t off = ((size_t)-(uintptr_t)n->mem) & (align - 1);
    n->used = off + size;
    return n->mem + off;
}

void *arena_alloc(Arena *a, size_t size) { return arena_alloc_aligned(a, size ? size : 1, 16); }

void *arena_memdup(Arena *a, const void *p, size_t size)
{
    void *q = arena_alloc_aligned(a, size ? size : 1, 64);
    if (size) memcpy(q, p, size);
    return q;
}

char *arena_strndup(Arena *a, const char *s, size_t n)
{
    char *q = arena_alloc_aligned(a, n + 1, 1);
    memcpy(q, s, n);
    q[n] = 0;
    return q;
}

char *arena_strdup(Arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

char *arena_printf(Arena *a, const char *fmt, ...)
{
    va_list ap, aq;
    va_start(ap, fmt);
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *q = arena_alloc_aligned(a, (size_t)n + 1, 1);
    vsnprintf(q, (size_t)n + 1, fmt, aq);
    va_end(aq);
    return q;
}

size_t arena_bytes(const Arena *a) { return a->total; }
