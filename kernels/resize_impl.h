/* kernels/resize_impl.h — the resize kernels written once for a scalar type. Included by
 * kernels/resize.c with T (float / double) and SUFFIX (f32 / f64) defined; nearest_src() and
 * xalloc() come from there. Semantics: kernels/resize.h. */

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define KNAME(base) CAT(CAT(base, SUFFIX), _portable)

/* the two taps and weights of every output coordinate along one axis */
typedef struct { int64_t *i0, *i1; T *l0, *l1; } CAT(taps_, SUFFIX);

static CAT(taps_, SUFFIX) CAT(linear_taps_, SUFFIX)(int64_t in, int64_t out, int align_corners) {
    CAT(taps_, SUFFIX) t;
    t.i0 = xalloc(sizeof(int64_t) * (size_t)out);
    t.i1 = xalloc(sizeof(int64_t) * (size_t)out);
    t.l0 = xalloc(sizeof(T) * (size_t)out);
    t.l1 = xalloc(sizeof(T) * (size_t)out);
    T scale = align_corners ? (out > 1 ? (T)(in - 1) / (T)(out - 1) : (T)0) : (T)in / (T)out;
    for (int64_t o = 0; o < out; o++) {
        T src = align_corners ? scale * (T)o : scale * ((T)o + (T)0.5) - (T)0.5;
        if (src < 0) src = 0;
        int64_t a = (int64_t)src;
        if (a > in - 1) a = in - 1;
        T f = src - (T)a;
        if (f < 0) f = 0;
        if (f > 1) f = 1;
        t.i0[o] = a;
        t.i1[o] = a < in - 1 ? a + 1 : a;
        t.l1[o] = f;
        t.l0[o] = (T)1 - f;
    }
    return t;
}

static void CAT(free_taps_, SUFFIX)(CAT(taps_, SUFFIX) t) { free(t.i0); free(t.i1); free(t.l0); free(t.l1); }

void KNAME(dv_resize_bilinear_)(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                int align_corners, const T *x, T *y) {
    if (P == 0 || OH == 0 || OW == 0) return;
    CAT(taps_, SUFFIX) th = CAT(linear_taps_, SUFFIX)(H, OH, align_corners);
    CAT(taps_, SUFFIX) tw = CAT(linear_taps_, SUFFIX)(W, OW, align_corners);
    #pragma omp parallel for schedule(static) if (P * OH * OW > (1 << 15) && P > 1)
    for (int64_t p = 0; p < P; p++) {
        const T *xp = x + p * H * W;
        T *yp = y + p * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++) {
            const T *r0 = xp + th.i0[oh] * W, *r1 = xp + th.i1[oh] * W;
            const T a0 = th.l0[oh], a1 = th.l1[oh];
            for (int64_t ow = 0; ow < OW; ow++) {
                const int64_t c0 = tw.i0[ow], c1 = tw.i1[ow];
                const T b0 = tw.l0[ow], b1 = tw.l1[ow];
                yp[oh * OW + ow] = a0 * (b0 * r0[c0] + b1 * r0[c1]) + a1 * (b0 * r1[c0] + b1 * r1[c1]);
            }
        }
    }
    CAT(free_taps_, SUFFIX)(th);
    CAT(free_taps_, SUFFIX)(tw);
}

void KNAME(dv_resize_bilinear_backward_)(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                         int align_corners, const T *gy, T *gx) {
    if (OH == 0 || OW == 0) {
        for (int64_t i = 0; i < P * H * W; i++) gx[i] = 0;
        return;
    }
    CAT(taps_, SUFFIX) th = CAT(linear_taps_, SUFFIX)(H, OH, align_corners);
    CAT(taps_, SUFFIX) tw = CAT(linear_taps_, SUFFIX)(W, OW, align_corners);
    #pragma omp parallel for schedule(static) if (P * OH * OW > (1 << 15) && P > 1)
    for (int64_t p = 0; p < P; p++) {
        const T *gp = gy + p * OH * OW;
        T *xp = gx + p * H * W;
        for (int64_t i = 0; i < H * W; i++) xp[i] = 0;
        for (int64_t oh = 0; oh < OH; oh++) {
            T *r0 = xp + th.i0[oh] * W, *r1 = xp + th.i1[oh] * W;
            const T a0 = th.l0[oh], a1 = th.l1[oh];
            for (int64_t ow = 0; ow < OW; ow++) {
                const int64_t c0 = tw.i0[ow], c1 = tw.i1[ow];
                const T b0 = tw.l0[ow], b1 = tw.l1[ow], g = gp[oh * OW + ow];
                r0[c0] += a0 * b0 * g;
                r0[c1] += a0 * b1 * g;
                r1[c0] += a1 * b0 * g;
                r1[c1] += a1 * b1 * g;
            }
        }
    }
    CAT(free_taps_, SUFFIX)(th);
    CAT(free_taps_, SUFFIX)(tw);
}

void KNAME(dv_resize_nearest_)(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, const T *x, T *y) {
    if (P == 0 || OH == 0 || OW == 0) return;
    int64_t *sh = xalloc(sizeof(int64_t) * (size_t)OH), *sw = xalloc(sizeof(int64_t) * (size_t)OW);
    for (int64_t o = 0; o < OH; o++) sh[o] = nearest_src(o, H, OH);
    for (int64_t o = 0; o < OW; o++) sw[o] = nearest_src(o, W, OW);
    #pragma omp parallel for schedule(static) if (P * OH * OW > (1 << 16) && P > 1)
    for (int64_t p = 0; p < P; p++) {
        const T *xp = x + p * H * W;
        T *yp = y + p * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++) {
            const T *row = xp + sh[oh] * W;
            for (int64_t ow = 0; ow < OW; ow++) yp[oh * OW + ow] = row[sw[ow]];
        }
    }
    free(sh);
    free(sw);
}

void KNAME(dv_resize_nearest_backward_)(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, const T *gy, T *gx) {
    if (OH == 0 || OW == 0) {
        for (int64_t i = 0; i < P * H * W; i++) gx[i] = 0;
        return;
    }
    int64_t *sh = xalloc(sizeof(int64_t) * (size_t)OH), *sw = xalloc(sizeof(int64_t) * (size_t)OW);
    for (int64_t o = 0; o < OH; o++) sh[o] = nearest_src(o, H, OH);
    for (int64_t o = 0; o < OW; o++) sw[o] = nearest_src(o, W, OW);
    #pragma omp parallel for schedule(static) if (P * OH * OW > (1 << 16) && P > 1)
    for (int64_t p = 0; p < P; p++) {
        const T *gp = gy + p * OH * OW;
        T *xp = gx + p * H * W;
        for (int64_t i = 0; i < H * W; i++) xp[i] = 0;
        for (int64_t oh = 0; oh < OH; oh++) {
            T *row = xp + sh[oh] * W;
            for (int64_t ow = 0; ow < OW; ow++) row[sw[ow]] += gp[oh * OW + ow];
        }
    }
    free(sh);
    free(sw);
}

#undef KNAME
#undef CAT
#undef CAT_
