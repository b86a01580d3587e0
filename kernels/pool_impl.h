/* kernels/pool_impl.h — the pooling kernels written once for a scalar type. Included by
 * kernels/pool.c with T (float / double) and SUFFIX (f32 / f64) defined; the window helpers
 * come from there. Semantics: kernels/pool.h. */

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define KNAME(base) CAT(CAT(base, SUFFIX), _portable)

void KNAME(dv_max_pool2d_)(const dv_pool2d_geom *g, int64_t P, const T *x, T *y, int32_t *idx) {
    const int64_t in = g->H * g->W, out = g->OH * g->OW;
    #pragma omp parallel for schedule(static) if (P * out * g->kh * g->kw > (1 << 16) && P > 1)
    for (int64_t p = 0; p < P; p++) {
        const T *xp = x + p * in;
        for (int64_t oh = 0; oh < g->OH; oh++) {
            int64_t h0, h1;
            window(oh, g->sh, g->ph, g->kh, g->H, &h0, &h1);
            for (int64_t ow = 0; ow < g->OW; ow++) {
                int64_t w0, w1;
                window(ow, g->sw, g->pw, g->kw, g->W, &w0, &w1);
                int64_t best_i = h0 * g->W + w0;
                T best = -(T)INFINITY;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) {
                        T v = xp[ih * g->W + iw];
                        if (v > best || v != v) { best = v; best_i = ih * g->W + iw; }
                    }
                y[p * out + oh * g->OW + ow] = best;
                idx[p * out + oh * g->OW + ow] = (int32_t)best_i;
            }
        }
    }
}

void KNAME(dv_max_pool2d_backward_)(const dv_pool2d_geom *g, int64_t P, const T *gy, const int32_t *idx, T *gx) {
    const int64_t in = g->H * g->W, out = g->OH * g->OW;
    #pragma omp parallel for schedule(static) if (P * (in + out) > (1 << 16) && P > 1)
    for (int64_t p = 0; p < P; p++) {
        T *gp = gx + p * in;
        for (int64_t i = 0; i < in; i++) gp[i] = 0;
        for (int64_t o = 0; o < out; o++) gp[idx[p * out + o]] += gy[p * out + o];
    }
}

/* count_include_pad: the divisor is the window clipped to the padded input, before it is
 * clipped to the real one (always kh*kw without ceil_mode, but this is the general rule) */
static inline int64_t CAT(avg_divisor_, SUFFIX)(const dv_pool2d_geom *g, int64_t oh, int64_t ow) {
    int64_t hs = oh * g->sh - g->ph, ws = ow * g->sw - g->pw;
    int64_t he = hs + g->kh < g->H + g->ph ? hs + g->kh : g->H + g->ph;
    int64_t we = ws + g->kw < g->W + g->pw ? ws + g->kw : g->W + g->pw;
    return (he - hs) * (we - ws);
}

void KNAME(dv_avg_pool2d_)(const dv_pool2d_geom *g, int64_t P, const T *x, T *y) {
    const int64_t in = g->H * g->W, out = g->OH * g->OW;
    #pragma omp parallel for schedule(static) if (P * out * g->kh * g->kw > (1 << 16) && P > 1)
    for (int64_t p = 0; p < P; p++) {
        const T *xp = x + p * in;
        for (int64_t oh = 0; oh < g->OH; oh++) {
            int64_t h0, h1;
            window(oh, g->sh, g->ph, g->kh, g->H, &h0, &h1);
            for (int64_t ow = 0; ow < g->OW; ow++) {
                int64_t w0, w1;
                window(ow, g->sw, g->pw, g->kw, g->W, &w0, &w1);
                T s = 0;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) s += xp[ih * g->W + iw];
                y[p * out + oh * g->OW + ow] = s / (T)CAT(avg_divisor_, SUFFIX)(g, oh, ow);
            }
        }
    }
}

void KNAME(dv_avg_pool2d_backward_)(const dv_pool2d_geom *g, int64_t P, const T *gy, T *gx) {
    const int64_t in = g->H * g->W, out = g->OH * g->OW;
    #pragma omp parallel for schedule(static) if (P * out * g->kh * g->kw > (1 << 16) && P > 1)
    for (int64_t p = 0; p < P; p++) {
        T *gp = gx + p * in;
        for (int64_t i = 0; i < in; i++) gp[i] = 0;
        for (int64_t oh = 0; oh < g->OH; oh++) {
            int64_t h0, h1;
            window(oh, g->sh, g->ph, g->kh, g->H, &h0, &h1);
            for (int64_t ow = 0; ow < g->OW; ow++) {
                int64_t w0, w1;
                window(ow, g->sw, g->pw, g->kw, g->W, &w0, &w1);
                T v = gy[p * out + oh * g->OW + ow] / (T)CAT(avg_divisor_, SUFFIX)(g, oh, ow);
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) gp[ih * g->W + iw] += v;
            }
        }
    }
}

void KNAME(dv_adaptive_avg_pool2d_)(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, const T *x, T *y) {
    #pragma omp parallel for schedule(static) if (P * H * W > (1 << 16) && P > 1)
    for (int64_t p = 0; p < P; p++) {
        const T *xp = x + p * H * W;
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t h0 = adaptive_start(oh, H, OH), h1 = adaptive_end(oh, H, OH);
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = adaptive_start(ow, W, OW), w1 = adaptive_end(ow, W, OW);
                T s = 0;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) s += xp[ih * W + iw];
                y[(p * OH + oh) * OW + ow] = s / (T)((h1 - h0) * (w1 - w0));
            }
        }
    }
}

void KNAME(dv_adaptive_avg_pool2d_backward_)(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, const T *gy, T *gx) {
    #pragma omp parallel for schedule(static) if (P * H * W > (1 << 16) && P > 1)
    for (int64_t p = 0; p < P; p++) {
        T *gp = gx + p * H * W;
        for (int64_t i = 0; i < H * W; i++) gp[i] = 0;
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t h0 = adaptive_start(oh, H, OH), h1 = adaptive_end(oh, H, OH);
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = adaptive_start(ow, W, OW), w1 = adaptive_end(ow, W, OW);
                T v = gy[(p * OH + oh) * OW + ow] / (T)((h1 - h0) * (w1 - w0));
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) gp[ih * W + iw] += v;
            }
        }
    }
}

#undef KNAME
#undef CAT
#undef CAT_
