/* kernels/resize.c — portable bilinear and nearest resizing, f32 and f64 (one body, two types:
 * kernels/resize_impl.h). Semantics: kernels/resize.h. */
#include "kernels/resize.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static void *xalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "dv_resize: out of memory for %zu bytes of taps\n", bytes);
        abort();
    }
    return p;
}

/* PyTorch 'nearest': equal sizes map 1:1, exact 2x upsampling halves the index, anything else
 * scales by in/out in float and floors */
static int64_t nearest_src(int64_t o, int64_t in, int64_t out) {
    if (out == in) return o;
    if (out == 2 * in) return o >> 1;
    float scale = (float)in / (float)out;
    int64_t s = (int64_t)floorf((float)o * scale);
    return s < in - 1 ? s : in - 1;
}

#define T float
#define SUFFIX f32
#include "kernels/resize_impl.h"
#undef T
#undef SUFFIX

#define T double
#define SUFFIX f64
#include "kernels/resize_impl.h"
#undef T
#undef SUFFIX
