/* data/calvin/image.c — bilinear and nearest resampling (see image.h for the conventions).
 *
 * Bilinear is separable: per output row, the two source rows are blended once per column
 * tap. Images here are small (at most a few hundred pixels a side), so the tap tables live
 * on the stack and nothing is vectorised by hand.
 */
#include "data/calvin/image.h"

#include <math.h>
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

int dv_nearest_index(int in, int out, int i) {
    int s = (int)floor(i * ((double)in / out));
    return s < in - 1 ? s : in - 1;
}

/* the shared loop: v is the bilinear value at (y, x, ch); STORE writes it */
#define BILINEAR_LOOP(SRC_T, CONV, STORE)                                                         \
    do {                                                                                          \
        dv_tap *ty = malloc(sizeof(dv_tap) * (size_t)dh), *tx = malloc(sizeof(dv_tap) * (size_t)dw); \
        dv_bilinear_taps(sh, dh, ty);                                                             \
        dv_bilinear_taps(sw, dw, tx);                                                             \
        for (int y = 0; y < dh; y++) {                                                            \
            const SRC_T *r0 = src + (size_t)ty[y].i0 * sw * c, *r1 = src + (size_t)ty[y].i1 * sw * c; \
            float wy = ty[y].w;                                                                   \
            for (int x = 0; x < dw; x++) {                                                        \
                int a = tx[x].i0 * c, b = tx[x].i1 * c;                                           \
                float wx = tx[x].w;                                                               \
                for (int ch = 0; ch < c; ch++) {                                                  \
                    float top = CONV(r0[a + ch]) * (1 - wx) + CONV(r0[b + ch]) * wx;              \
                    float bot = CONV(r1[a + ch]) * (1 - wx) + CONV(r1[b + ch]) * wx;              \
                    float v = top * (1 - wy) + bot * wy;                                          \
                    STORE;                                                                        \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        free(ty);                                                                                 \
        free(tx);                                                                                 \
    } while (0)

#define AS_FLOAT(v) ((float)(v))

void dv_resize_bilinear_u8_chw(const uint8_t *src, int sh, int sw, int c, float *dst, int dh, int dw,
                               float scale) {
    BILINEAR_LOOP(uint8_t, AS_FLOAT, dst[((size_t)ch * dh + y) * dw + x] = v * scale);
}

void dv_resize_bilinear_f32_hwc(const float *src, int sh, int sw, int c, float *dst, int dh, int dw) {
    BILINEAR_LOOP(float, AS_FLOAT, dst[((size_t)y * dw + x) * c + ch] = v);
}

void dv_resize_bilinear_f32_chw(const float *src, int sh, int sw, int c, float *dst, int dh, int dw) {
    BILINEAR_LOOP(float, AS_FLOAT, dst[((size_t)ch * dh + y) * dw + x] = v);
}

void dv_resize_nearest_f32_hwc(const float *src, int sh, int sw, int c, float *dst, int dh, int dw) {
    for (int y = 0; y < dh; y++) {
        const float *row = src + (size_t)dv_nearest_index(sh, dh, y) * sw * c;
        for (int x = 0; x < dw; x++) {
            const float *p = row + (size_t)dv_nearest_index(sw, dw, x) * c;
            for (int ch = 0; ch < c; ch++) dst[((size_t)y * dw + x) * c + ch] = p[ch];
        }
    }
}

void dv_resize_nearest_f32_chw(const float *src, int sh, int sw, int c, float *dst, int dh, int dw) {
    for (int y = 0; y < dh; y++) {
        const float *row = src + (size_t)dv_nearest_index(sh, dh, y) * sw * c;
        for (int x = 0; x < dw; x++) {
            const float *p = row + (size_t)dv_nearest_index(sw, dw, x) * c;
            for (int ch = 0; ch < c; ch++) dst[((size_t)ch * dh + y) * dw + x] = p[ch];
        }
    }
}
