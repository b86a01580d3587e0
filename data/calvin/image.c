/* data/calvin/image.c — bilinear and nearest resampling (see image.h for the conventions).
 *
 * Images here are small (a few hundred pixels a side); nothing is vectorised by hand.
 */
#include "data/calvin/image.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

void dv_bilinear_taps(int in, int out, dv_tap *taps) {
    /* in float, as PyTorch's CPU kernel computes source coordinates for float tensors */
    float scale = (float)in / (float)out;
    for (int i = 0; i < out; i++) {
        float s = scale * ((float)i + 0.5f) - 0.5f;
        if (s < 0) s = 0;
        int i0 = (int)s;
        if (i0 > in - 1) i0 = in - 1;
        int i1 = i0 + 1 < in ? i0 + 1 : in - 1;
        taps[i] = (dv_tap){i0, i1, s - (float)i0};
    }
}

int dv_nearest_index(dv_nearest_rule rule, int in, int out, int i) {
    int s;
    if (rule == DV_NEAREST_CV2) {
        s = (int)floor(i * (1.0 / ((double)out / in)));
    } else {
        if (in == out) return i;
        if (out == 2 * in) return i >> 1;
        float scale = (float)in / (float)out;
        s = (int)floorf((float)i * scale);
    }
    return s < in - 1 ? s : in - 1;
}

static void blend(float *restrict o, const float *restrict a, const float *restrict b, float v, float w, int n) {
#pragma omp simd
    for (int x = 0; x < n; x++) o[x] = a[x] * v + b[x] * w;
}

static void bilinear(const uint8_t *src8, const float *srcf, int sh, int sw, int c, float *dst, int dh,
                     int dw, float scale, bool chw) {
    dv_tap *ty = malloc(sizeof(dv_tap) * (size_t)dh), *tx = malloc(sizeof(dv_tap) * (size_t)dw);
    float *h = malloc(sizeof(float) * (size_t)sh * c * dw);
    dv_bilinear_taps(sh, dh, ty);
    dv_bilinear_taps(sw, dw, tx);
    for (int y = 0; y < sh; y++) {
        float *hr = h + (size_t)y * c * dw;
        for (int x = 0; x < dw; x++) {
            size_t a = ((size_t)y * sw + tx[x].i0) * c, b = ((size_t)y * sw + tx[x].i1) * c;
            float w = tx[x].w;
            for (int ch = 0; ch < c; ch++) {
                float va = src8 ? src8[a + ch] : srcf[a + ch], vb = src8 ? src8[b + ch] : srcf[b + ch];
                hr[chw ? (size_t)ch * dw + x : (size_t)x * c + ch] = (va * (1 - w) + vb * w) * scale;
            }
        }
    }
    for (int y = 0; y < dh; y++) {
        const float *r0 = h + (size_t)ty[y].i0 * c * dw, *r1 = h + (size_t)ty[y].i1 * c * dw;
        float w = ty[y].w, v = 1 - w;
        if (chw) {
            for (int ch = 0; ch < c; ch++) {
                blend(dst + ((size_t)ch * dh + y) * dw, r0 + (size_t)ch * dw, r1 + (size_t)ch * dw, v, w, dw);
            }
        } else {
            blend(dst + (size_t)y * dw * c, r0, r1, v, w, dw * c);
        }
    }
    free(h);
    free(ty);
    free(tx);
}

void dv_resize_bilinear_u8_chw(const uint8_t *src, int sh, int sw, int c, float *dst, int dh, int dw,
                               float scale) {
    bilinear(src, NULL, sh, sw, c, dst, dh, dw, scale, true);
}

void dv_resize_bilinear_f32_hwc(const float *src, int sh, int sw, int c, float *dst, int dh, int dw) {
    bilinear(NULL, src, sh, sw, c, dst, dh, dw, 1.0f, false);
}

void dv_resize_bilinear_f32_chw(const float *src, int sh, int sw, int c, float *dst, int dh, int dw) {
    bilinear(NULL, src, sh, sw, c, dst, dh, dw, 1.0f, true);
}

void dv_resize_nearest_f32_hwc(const float *src, int sh, int sw, int c, float *dst, int dh, int dw,
                               dv_nearest_rule rule) {
    for (int y = 0; y < dh; y++) {
        const float *row = src + (size_t)dv_nearest_index(rule, sh, dh, y) * sw * c;
        for (int x = 0; x < dw; x++) {
            const float *p = row + (size_t)dv_nearest_index(rule, sw, dw, x) * c;
            for (int ch = 0; ch < c; ch++) dst[((size_t)y * dw + x) * c + ch] = p[ch];
        }
    }
}

void dv_resize_nearest_f32_chw(const float *src, int sh, int sw, int c, float *dst, int dh, int dw,
                               dv_nearest_rule rule) {
    for (int y = 0; y < dh; y++) {
        const float *row = src + (size_t)dv_nearest_index(rule, sh, dh, y) * sw * c;
        for (int x = 0; x < dw; x++) {
            const float *p = row + (size_t)dv_nearest_index(rule, sw, dw, x) * c;
            for (int ch = 0; ch < c; ch++) dst[((size_t)ch * dh + y) * dw + x] = p[ch];
        }
    }
}
