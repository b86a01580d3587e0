/* kernels/cuda/op_math.h — the index arithmetic of the CUDA tensor-op kernels (index.cu,
 * pool.cu, resize.cu, conv.cu): where a gathered element lives, which pooling windows, resize
 * taps and convolution taps cover an input element (the backward kernels gather over those
 * instead of scattering with atomics, so they are deterministic and add in the CPU kernels'
 * order; col2im takes the column buffer's row stride, so one image's columns may sit among
 * those of a batch).
 *
 * DV_HD functions (kernels/cuda/common.h): tests/test_cuda_host_ops.c compiles them for the
 * host and checks them against the portable kernels and brute force inside `make test`,
 * without a GPU. The formulas are kernels/pool.c's, kernels/resize.c's and
 * tensor/ops_index.c's. Plain C11 under gcc.
 */
#ifndef DV_KERNELS_CUDA_OP_MATH_H
#define DV_KERNELS_CUDA_OP_MATH_H

#include <math.h>
#include <stdint.h>

#include "kernels/conv.h"
#include "kernels/pool.h"
#include "kernels/cuda/common.h"

/* ---- gather (tensor/ops_index.c) ------------------------------------------------------- */
/* the element offset in x (strides xs, elements) that position i of an index of shape ish
 * (row-major, ndim dims) reads when the index value there is id, gathering along dim */
DV_HD int64_t dv_cu_gather_offset(int ndim, const int64_t *ish, int dim, const int64_t *xs, int64_t i, int64_t id) {
    int64_t off = id * xs[dim];
    for (int d = ndim - 1; d >= 0; d--) {
        int64_t c = i % ish[d];
        i /= ish[d];
        if (d != dim) off += c * xs[d];
    }
    return off;
}

/* ---- pooling (kernels/pool.h) ---------------------------------------------------------- */
/* input rows [*lo, *hi) of the window of output o (stride s, padding p, kernel k), clipped to
 * the real input [0, n) */
DV_HD void dv_cu_pool_window(int64_t o, int s, int p, int k, int64_t n, int64_t *lo, int64_t *hi) {
    int64_t a = o * s - p, b = a + k;
    *lo = a < 0 ? 0 : a;
    *hi = b > n ? n : b;
}

/* the outputs [*o0, *o1) (of O) whose window holds input i (0 <= i < n, p >= 0): those with
 * o s - p <= i < o s - p + k, i.e. (i + p - k) / s < o <= (i + p) / s. Empty when *o0 >= *o1. */
DV_HD void dv_cu_pool_outputs_of(int64_t i, int s, int p, int k, int64_t O, int64_t *o0, int64_t *o1) {
    int64_t a = i + p - k, hi = (i + p) / s + 1;
    *o0 = a < 0 ? 0 : a / s + 1;
    *o1 = hi < O ? hi : O;
}

/* count_include_pad divisor of output (oh, ow): the window clipped to the padded input */
DV_HD int64_t dv_cu_pool_avg_divisor(int64_t oh, int64_t ow, int64_t H, int64_t W, int kh, int kw, int sh, int sw,
                                     int ph, int pw) {
    int64_t hs = oh * sh - ph, ws = ow * sw - pw;
    int64_t he = hs + kh < H + ph ? hs + kh : H + ph;
    int64_t we = ws + kw < W + pw ? ws + kw : W + pw;
    return (he - hs) * (we - ws);
}

/* adaptive windows: [floor(i n / out), ceil((i + 1) n / out)) */
DV_HD int64_t dv_cu_adaptive_start(int64_t i, int64_t n, int64_t out) { return i * n / out; }
DV_HD int64_t dv_cu_adaptive_end(int64_t i, int64_t n, int64_t out) { return ((i + 1) * n + out - 1) / out; }

/* a superset [*o0, *o1) of the adaptive outputs (of out) whose window holds input i (of n):
 * start(o) <= i needs o < (i + 1) out / n, end(o) > i needs o > i out / n - 1. The caller
 * tests membership exactly. */
DV_HD void dv_cu_adaptive_outputs_of(int64_t i, int64_t n, int64_t out, int64_t *o0, int64_t *o1) {
    int64_t lo = i * out / n - 1, hi = ((i + 1) * out + n - 1) / n + 1;
    *o0 = lo < 0 ? 0 : lo;
    *o1 = hi < out ? hi : out;
}

/* The per-element bodies of pool.cu's kernels (one thread per output for the forward, per
 * input element for the backward); xp / gy are one plane (H, W) / all planes (P, OH, OW). */
/* max over the window of output (oh, ow): NaN wins, the first maximum is kept; *arg its flat
 * position in the plane */
DV_HD float dv_cu_max_pool_elem(const dv_pool2d_geom *g, const float *xp, int64_t oh, int64_t ow, int64_t *arg) {
    int64_t h0, h1, w0, w1;
    dv_cu_pool_window(oh, g->sh, g->ph, g->kh, g->H, &h0, &h1);
    dv_cu_pool_window(ow, g->sw, g->pw, g->kw, g->W, &w0, &w1);
    int64_t best_i = h0 * g->W + w0;
    float best = -INFINITY;
    for (int64_t ih = h0; ih < h1; ih++)
        for (int64_t iw = w0; iw < w1; iw++) {
            float v = xp[ih * g->W + iw];
            if (v > best || v != v) best = v, best_i = ih * g->W + iw;
        }
    *arg = best_i;
    return best;
}

/* the gradient of input (p, ih, iw): the outputs whose argmax it is, ascending */
DV_HD float dv_cu_max_pool_grad_elem(const dv_pool2d_geom *g, const float *gy, const int32_t *idx, int64_t p,
                                     int64_t ih, int64_t iw) {
    int64_t o0h, o1h, o0w, o1w, out = g->OH * g->OW;
    dv_cu_pool_outputs_of(ih, g->sh, g->ph, g->kh, g->OH, &o0h, &o1h);
    dv_cu_pool_outputs_of(iw, g->sw, g->pw, g->kw, g->OW, &o0w, &o1w);
    const int32_t me = (int32_t)(ih * g->W + iw);
    float s = 0.0f;
    for (int64_t oh = o0h; oh < o1h; oh++)
        for (int64_t ow = o0w; ow < o1w; ow++) {
            int64_t o = p * out + oh * g->OW + ow;
            if (idx[o] == me) s += gy[o];
        }
    return s;
}

DV_HD float dv_cu_avg_pool_elem(const dv_pool2d_geom *g, const float *xp, int64_t oh, int64_t ow) {
    int64_t h0, h1, w0, w1;
    dv_cu_pool_window(oh, g->sh, g->ph, g->kh, g->H, &h0, &h1);
    dv_cu_pool_window(ow, g->sw, g->pw, g->kw, g->W, &w0, &w1);
    float s = 0.0f;
    for (int64_t ih = h0; ih < h1; ih++)
        for (int64_t iw = w0; iw < w1; iw++) s += xp[ih * g->W + iw];
    return s / (float)dv_cu_pool_avg_divisor(oh, ow, g->H, g->W, g->kh, g->kw, g->sh, g->sw, g->ph, g->pw);
}

DV_HD float dv_cu_avg_pool_grad_elem(const dv_pool2d_geom *g, const float *gy, int64_t p, int64_t ih, int64_t iw) {
    int64_t o0h, o1h, o0w, o1w, out = g->OH * g->OW;
    dv_cu_pool_outputs_of(ih, g->sh, g->ph, g->kh, g->OH, &o0h, &o1h);
    dv_cu_pool_outputs_of(iw, g->sw, g->pw, g->kw, g->OW, &o0w, &o1w);
    float s = 0.0f;
    for (int64_t oh = o0h; oh < o1h; oh++)
        for (int64_t ow = o0w; ow < o1w; ow++)
            s += gy[p * out + oh * g->OW + ow] /
                 (float)dv_cu_pool_avg_divisor(oh, ow, g->H, g->W, g->kh, g->kw, g->sh, g->sw, g->ph, g->pw);
    return s;
}

DV_HD float dv_cu_adaptive_pool_elem(const float *xp, int64_t oh, int64_t ow, int64_t H, int64_t W, int64_t OH,
                                     int64_t OW) {
    int64_t h0 = dv_cu_adaptive_start(oh, H, OH), h1 = dv_cu_adaptive_end(oh, H, OH);
    int64_t w0 = dv_cu_adaptive_start(ow, W, OW), w1 = dv_cu_adaptive_end(ow, W, OW);
    float s = 0.0f;
    for (int64_t ih = h0; ih < h1; ih++)
        for (int64_t iw = w0; iw < w1; iw++) s += xp[ih * W + iw];
    return s / (float)((h1 - h0) * (w1 - w0));
}

DV_HD float dv_cu_adaptive_pool_grad_elem(const float *gy, int64_t p, int64_t ih, int64_t iw, int64_t H, int64_t W,
                                          int64_t OH, int64_t OW) {
    int64_t o0h, o1h, o0w, o1w;
    dv_cu_adaptive_outputs_of(ih, H, OH, &o0h, &o1h);
    dv_cu_adaptive_outputs_of(iw, W, OW, &o0w, &o1w);
    float s = 0.0f;
    for (int64_t oh = o0h; oh < o1h; oh++) {
        int64_t h0 = dv_cu_adaptive_start(oh, H, OH), h1 = dv_cu_adaptive_end(oh, H, OH);
        if (ih < h0 || ih >= h1) continue;
        for (int64_t ow = o0w; ow < o1w; ow++) {
            int64_t w0 = dv_cu_adaptive_start(ow, W, OW), w1 = dv_cu_adaptive_end(ow, W, OW);
            if (iw < w0 || iw >= w1) continue;
            s += gy[(p * OH + oh) * OW + ow] / (float)((h1 - h0) * (w1 - w0));
        }
    }
    return s;
}

/* ---- resize (kernels/resize.h), f32 as the CPU f32 kernel computes it ------------------ */
/* the two taps and weights of output coordinate o along an axis of in -> out */
DV_HD void dv_cu_linear_tap(int64_t o, int64_t in, int64_t out, int align_corners, int64_t *i0, int64_t *i1,
                            float *l0, float *l1) {
    float scale = align_corners ? (out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f) : (float)in / (float)out;
    /* DV_FMUL: no fused multiply-add on the device, so src (and the weights) are the CPU's */
    float src = align_corners ? scale * (float)o : DV_FMUL(scale, (float)o + 0.5f) - 0.5f;
    if (src < 0) src = 0;
    int64_t a = (int64_t)src;
    if (a > in - 1) a = in - 1;
    float f = src - (float)a;
    if (f < 0) f = 0;
    if (f > 1) f = 1;
    *i0 = a;
    *i1 = a < in - 1 ? a + 1 : a;
    *l1 = f;
    *l0 = 1.0f - f;
}

/* the first output o in [0, out) whose first tap is >= i (out when none): the taps are
 * nondecreasing in o, so a binary search */
DV_HD int64_t dv_cu_linear_first(int64_t i, int64_t in, int64_t out, int align_corners) {
    int64_t lo = 0, hi = out;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2, a, b;
        float w0, w1;
        dv_cu_linear_tap(mid, in, out, align_corners, &a, &b, &w0, &w1);
        if (a >= i) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

/* PyTorch 'nearest' (kernels/resize.c nearest_src) */
DV_HD int64_t dv_cu_nearest_src(int64_t o, int64_t in, int64_t out) {
    if (out == in) return o;
    if (out == 2 * in) return o >> 1;
    float scale = (float)in / (float)out;
    int64_t s = (int64_t)floorf((float)o * scale);
    return s < in - 1 ? s : in - 1;
}

/* the first output o in [0, out) with nearest_src(o) >= i (out when none); nondecreasing */
DV_HD int64_t dv_cu_nearest_first(int64_t i, int64_t in, int64_t out) {
    int64_t lo = 0, hi = out;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (dv_cu_nearest_src(mid, in, out) >= i) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

/* The per-element bodies of resize.cu's kernels; x / gy are all planes (P, H, W) / (P, OH, OW). */
DV_HD float dv_cu_bilinear_elem(const float *x, int64_t p, int64_t oh, int64_t ow, int64_t H, int64_t W, int64_t OH,
                                int64_t OW, int align) {
    int64_t h0, h1, c0, c1;
    float a0, a1, b0, b1;
    dv_cu_linear_tap(oh, H, OH, align, &h0, &h1, &a0, &a1);
    dv_cu_linear_tap(ow, W, OW, align, &c0, &c1, &b0, &b1);
    const float *r0 = x + (p * H + h0) * W, *r1 = x + (p * H + h1) * W;
    return a0 * (b0 * r0[c0] + b1 * r0[c1]) + a1 * (b0 * r1[c0] + b1 * r1[c1]);
}

/* the gradient of input (p, ih, iw): the outputs whose first tap is ih - 1 or ih (the second
 * tap is the first + 1, or equal at the last row), ascending */
DV_HD float dv_cu_bilinear_grad_elem(const float *gy, int64_t p, int64_t ih, int64_t iw, int64_t H, int64_t W,
                                     int64_t OH, int64_t OW, int align) {
    int64_t oh0 = dv_cu_linear_first(ih - 1, H, OH, align), oh1 = dv_cu_linear_first(ih + 1, H, OH, align);
    int64_t ow0 = dv_cu_linear_first(iw - 1, W, OW, align), ow1 = dv_cu_linear_first(iw + 1, W, OW, align);
    float s = 0.0f;
    for (int64_t oh = oh0; oh < oh1; oh++) {
        int64_t h0, h1;
        float a0, a1;
        dv_cu_linear_tap(oh, H, OH, align, &h0, &h1, &a0, &a1);
        for (int64_t ow = ow0; ow < ow1; ow++) {
            int64_t c0, c1;
            float b0, b1, g = gy[(p * OH + oh) * OW + ow];
            dv_cu_linear_tap(ow, W, OW, align, &c0, &c1, &b0, &b1);
            if (h0 == ih) {
                if (c0 == iw) s += a0 * b0 * g;
                if (c1 == iw) s += a0 * b1 * g;
            }
            if (h1 == ih) {
                if (c0 == iw) s += a1 * b0 * g;
                if (c1 == iw) s += a1 * b1 * g;
            }
        }
    }
    return s;
}

DV_HD float dv_cu_nearest_elem(const float *x, int64_t p, int64_t oh, int64_t ow, int64_t H, int64_t W, int64_t OH,
                               int64_t OW) {
    return x[(p * H + dv_cu_nearest_src(oh, H, OH)) * W + dv_cu_nearest_src(ow, W, OW)];
}

DV_HD float dv_cu_nearest_grad_elem(const float *gy, int64_t p, int64_t ih, int64_t iw, int64_t H, int64_t W,
                                    int64_t OH, int64_t OW) {
    int64_t oh0 = dv_cu_nearest_first(ih, H, OH), oh1 = dv_cu_nearest_first(ih + 1, H, OH);
    int64_t ow0 = dv_cu_nearest_first(iw, W, OW), ow1 = dv_cu_nearest_first(iw + 1, W, OW);
    float s = 0.0f;
    for (int64_t oh = oh0; oh < oh1; oh++)
        for (int64_t ow = ow0; ow < ow1; ow++) s += gy[(p * OH + oh) * OW + ow];
    return s;
}

/* ---- convolution (kernels/conv.h): im2col per element, col2im as a gather --------------- */
/* col[r][n] (r = (c kh + i) kw + j, n = oh OW + ow) of image x (C, H, W): the input element
 * the tap reads, 0 over the padding */
DV_HD float dv_cu_im2col_elem(const dv_conv2d_geom *g, const float *x, int64_t r, int64_t n) {
    int64_t c = r / (g->kh * g->kw), i = r / g->kw % g->kh, j = r % g->kw, oh = n / g->OW, ow = n % g->OW;
    int64_t ih = oh * g->sh - g->ph + i * g->dh, iw = ow * g->sw - g->pw + j * g->dw;
    return ih >= 0 && ih < g->H && iw >= 0 && iw < g->W ? x[(c * g->H + ih) * g->W + iw] : 0.0f;
}

/* the sum of the column entries that read input element (c, ih, iw): over the taps (i, j) in
 * ascending order (kernels/conv_impl.h's col2im adds them in that order), the output (oh, ow)
 * with oh sh - ph + i dh = ih and ow sw - pw + j dw = iw, when it exists. Rows of col are ld
 * apart (OH OW for one image's col; nb OH OW when nb images' columns sit side by side, col
 * pointing at this image's first column). */
DV_HD float dv_cu_col2im_elem_ld(const dv_conv2d_geom *g, const float *col, int64_t ld, int64_t c, int64_t ih,
                                 int64_t iw) {
    float s = 0.0f;
    for (int64_t i = 0; i < g->kh; i++) {
        int64_t th = ih + g->ph - i * g->dh;
        if (th < 0 || th % g->sh) continue;
        int64_t oh = th / g->sh;
        if (oh >= g->OH) continue;
        for (int64_t j = 0; j < g->kw; j++) {
            int64_t tw = iw + g->pw - j * g->dw;
            if (tw < 0 || tw % g->sw) continue;
            int64_t ow = tw / g->sw;
            if (ow >= g->OW) continue;
            s += col[((c * g->kh + i) * g->kw + j) * ld + oh * g->OW + ow];
        }
    }
    return s;
}

/* the same for one image's col (rows OH OW apart) */
DV_HD float dv_cu_col2im_elem(const dv_conv2d_geom *g, const float *col, int64_t c, int64_t ih, int64_t iw) {
    return dv_cu_col2im_elem_ld(g, col, g->OH * g->OW, c, ih, iw);
}

#endif
