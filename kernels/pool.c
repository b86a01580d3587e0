/* kernels/pool.c — portable max / average / adaptive-average pooling, f32 and f64 (one body,
 * two types: kernels/pool_impl.h). Semantics: kernels/pool.h. */
#include "kernels/pool.h"

#include <math.h>

/* input rows [*lo, *hi) of the window of output o, clipped to the real input [0, n) */
static inline void window(int64_t o, int s, int p, int k, int64_t n, int64_t *lo, int64_t *hi) {
    int64_t a = o * s - p, b = a + k;
    *lo = a < 0 ? 0 : a;
    *hi = b > n ? n : b;
}

/* adaptive windows: [floor(i*n/out), ceil((i+1)*n/out)) */
static inline int64_t adaptive_start(int64_t i, int64_t n, int64_t out) { return i * n / out; }
static inline int64_t adaptive_end(int64_t i, int64_t n, int64_t out) { return ((i + 1) * n + out - 1) / out; }

#define T float
#define SUFFIX f32
#include "kernels/pool_impl.h"
#undef T
#undef SUFFIX

#define T double
#define SUFFIX f64
#include "kernels/pool_impl.h"
#undef T
#undef SUFFIX
