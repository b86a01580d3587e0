/* kernels/conv_impl.h — im2col / col2im written once for a scalar type. Included by
 * kernels/conv.c with T (float / double) and SUFFIX (f32 / f64) defined; valid_range() comes
 * from there. Layout and formulas: kernels/conv.h. */

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define KNAME(base) CAT(CAT(base, SUFFIX), _portable)

void KNAME(dv_im2col_)(const dv_conv2d_geom *g, const T *x, T *col) {
    const int64_t rows = g->C * g->kh * g->kw, plane = g->OH * g->OW;
    #pragma omp parallel for schedule(static) if (rows * plane > (1 << 16) && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t c = r / (g->kh * g->kw);
        const int i = (int)(r / g->kw % g->kh), j = (int)(r % g->kw);
        const int64_t woff = (int64_t)j * g->dw - g->pw; /* iw = ow*sw + woff */
        int64_t lo, hi;
        valid_range(woff, g->sw, g->W, g->OW, &lo, &hi);
        const T *xc = x + c * g->H * g->W;
        T *dst = col + r * plane;
        for (int64_t oh = 0; oh < g->OH; oh++, dst += g->OW) {
            const int64_t ih = oh * g->sh - g->ph + (int64_t)i * g->dh;
            if (ih < 0 || ih >= g->H) {
                for (int64_t ow = 0; ow < g->OW; ow++) dst[ow] = 0;
                continue;
            }
            const T *src = xc + ih * g->W;
            for (int64_t ow = 0; ow < lo; ow++) dst[ow] = 0;
            if (g->sw == 1)
                for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow + woff];
            else
                for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow * g->sw + woff];
            for (int64_t ow = hi; ow < g->OW; ow++) dst[ow] = 0;
        }
    }
}

/* channels are independent (each owns kh*kw rows of col and one plane of x): thread over them */
void KNAME(dv_col2im_)(const dv_conv2d_geom *g, const T *col, T *x) {
    const int64_t plane = g->OH * g->OW, kk = (int64_t)g->kh * g->kw;
    #pragma omp parallel for schedule(static) if (g->C * kk * plane > (1 << 16) && g->C > 1)
    for (int64_t c = 0; c < g->C; c++) {
        T *xc = x + c * g->H * g->W;
        for (int64_t k = 0; k < kk; k++) {
            const int i = (int)(k / g->kw), j = (int)(k % g->kw);
            const int64_t woff = (int64_t)j * g->dw - g->pw;
            int64_t lo, hi;
            valid_range(woff, g->sw, g->W, g->OW, &lo, &hi);
            const T *src = col + (c * kk + k) * plane;
            for (int64_t oh = 0; oh < g->OH; oh++, src += g->OW) {
                const int64_t ih = oh * g->sh - g->ph + (int64_t)i * g->dh;
                if (ih < 0 || ih >= g->H) continue;
                T *dst = xc + ih * g->W;
                for (int64_t ow = lo; ow < hi; ow++) dst[ow * g->sw + woff] += src[ow];
            }
        }
    }
}

#undef KNAME
#undef CAT
#undef CAT_
