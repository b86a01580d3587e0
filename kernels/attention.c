/* kernels/attention.c — portable fused attention kernels for f32 and f64 (one body, two types:
 * kernels/attention_impl.h). The maths, masks and layouts are described in kernels/attention.h;
 * the fast f32 version is kernels/avx512/attention.c. */
#include "kernels/attention.h"

#include <math.h>

/* is key j visible to query i of batch b? (causal diagonal and key padding; the bias may still
 * add -inf on top) */
static inline bool attn_visible(const dv_attn_geom *g, int64_t b, int64_t i, int64_t j) {
    if (g->causal && j > i + g->causal_offset) return false;
    if (g->keep && !g->keep[b * g->keep_stride[0] + j * g->keep_stride[1]]) return false;
    return true;
}

size_t dv_attention_work_bytes_portable(const dv_attn_geom *g, bool backward, size_t esize) {
    (void)g; (void)backward; (void)esize;
    return 0; /* one row at a time, straight from the inputs and into the outputs */
}

#define T float
#define M(fn) fn##f
#define SUFFIX f32
#include "kernels/attention_impl.h"
#undef T
#undef M
#undef SUFFIX

#define T double
#define M(fn) fn
#define SUFFIX f64
#include "kernels/attention_impl.h"
#undef T
#undef M
#undef SUFFIX
