/* tensor/alloc.c — 64-byte aligned host memory with a size-class cache.
 *
 * Blocks are rounded up to a size class (powers of two split in four steps: 64 B .. 2^40 B) and
 * freed blocks are kept on a per-class free list so the next training step reuses them
 * without touching the OS. The cache is capped (DV_ALLOC_CACHE_MB, default 4096 MiB); beyond
 * that, freed blocks go back to the OS at once. A mutex makes it safe from loader threads.
 * It does not coalesce or split blocks, and it never returns memory the caller did not get
 * from it.
 */
#include "tensor/tensor.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 64
#define NCLASS (4 * 41)

typedef struct block { struct block *next; } block;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static block *g_free[NCLASS];
static dv_alloc_stats g_stats;
static int64_t g_cache_cap = -1;

/* class c covers sizes up to class_bytes(c): 64, 80, 96, 112, 128, 160, ... */
static int64_t class_bytes(int c) {
    int e = c / 4, q = c % 4;
    return (int64_t)(4 + q) << (e + 4);   /* (4+q)/4 * 2^(e+6) */
}

static int size_class(int64_t n) {
    if (n <= 64) return 0;
    int e = 63 - __builtin_clzll((unsigned long long)(n - 1)); /* 2^e < n <= 2^(e+1) */
    int c = 4 * (e - 5);                   /* class whose bytes == 2^(e+1)/... start */
    while (c > 0 && class_bytes(c - 1) >= n) c--;
    while (class_bytes(c) < n) c++;
    return c;
}

void *dv_alloc(int64_t nbytes) {
    if (nbytes < 0) dv_panic("dv_alloc: negative size %lld", (long long)nbytes);
    int c = size_class(nbytes ? nbytes : 1);
    if (c >= NCLASS) dv_panic("dv_alloc: %lld bytes is beyond any size class", (long long)nbytes);
    int64_t sz = class_bytes(c);
    pthread_mutex_lock(&g_lock);
    if (g_cache_cap < 0) {
        const char *e = getenv("DV_ALLOC_CACHE_MB");
        g_cache_cap = (e ? atoll(e) : 4096) << 20;
    }
    block *b = g_free[c];
    if (b) {
        g_free[c] = b->next;
        g_stats.cached_bytes -= sz;
        g_stats.n_cache_hits++;
    }
    g_stats.n_alloc++;
    g_stats.live_bytes += sz;
    if (g_stats.live_bytes > g_stats.peak_bytes) g_stats.peak_bytes = g_stats.live_bytes;
    pthread_mutex_unlock(&g_lock);
    if (b) return b;
    void *p = NULL;
    if (posix_memalign(&p, ALIGN, (size_t)sz) != 0) p = NULL; /* sz need not be a multiple of 64 */
    if (!p) {
        dv_panic("dv_alloc: out of host memory allocating %lld bytes (%.2f GiB live)",
                 (long long)sz, g_stats.live_bytes / 1073741824.0);
    }
    return p;
}

void dv_free(void *p, int64_t nbytes) {
    if (!p) return;
    int c = size_class(nbytes ? nbytes : 1);
    int64_t sz = class_bytes(c);
    pthread_mutex_lock(&g_lock);
    g_stats.live_bytes -= sz;
    if (g_stats.cached_bytes + sz <= g_cache_cap) {
        block *b = p;
        b->next = g_free[c];
        g_free[c] = b;
        g_stats.cached_bytes += sz;
        p = NULL;
    }
    pthread_mutex_unlock(&g_lock);
    free(p);
}

dv_alloc_stats dv_alloc_get_stats(void) {
    pthread_mutex_lock(&g_lock);
    dv_alloc_stats s = g_stats;
    pthread_mutex_unlock(&g_lock);
    return s;
}

void dv_alloc_trim(void) {
    pthread_mutex_lock(&g_lock);
    for (int c = 0; c < NCLASS; c++) {
        while (g_free[c]) {
            block *b = g_free[c];
            g_free[c] = b->next;
            free(b);
        }
    }
    g_stats.cached_bytes = 0;
    pthread_mutex_unlock(&g_lock);
}

void dv_alloc_reset_peak(void) {
    pthread_mutex_lock(&g_lock);
    g_stats.peak_bytes = g_stats.live_bytes;
    pthread_mutex_unlock(&g_lock);
}
