/* kernels/conv.c — portable im2col / col2im for f32 and f64 (one body, two types:
 * kernels/conv_impl.h). See kernels/conv.h for the column layout. */
#include "kernels/conv.h"

int64_t dv_conv2d_out_size(int64_t in, int k, int stride, int pad, int dil) {
    int64_t span = (int64_t)dil * (k - 1) + 1; /* extent of the dilated kernel */
    if (in + 2 * (int64_t)pad < span) return -1;
    return (in + 2 * (int64_t)pad - span) / stride + 1;
}

/* The output columns ow whose input column ow*s + off lies inside [0, W): [lo, hi). */
static inline void valid_range(int64_t off, int s, int64_t W, int64_t OW, int64_t *lo, int64_t *hi) {
    int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t h = W - 1 - off < 0 ? 0 : (W - 1 - off) / s + 1;
    if (h > OW) h = OW;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

#define T float
#define SUFFIX f32
#include "kernels/conv_impl.h"
#undef T
#undef SUFFIX

#define T double
#define SUFFIX f64
#include "kernels/conv_impl.h"
#undef T
#undef SUFFIX
