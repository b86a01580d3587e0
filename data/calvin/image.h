/* data/calvin/image.h — the image resampling the sample builders need, in plain C.
 *
 * Bilinear is PyTorch's F.interpolate(mode="bilinear", align_corners=False) and OpenCV's
 * INTER_LINEAR when upscaling: half-pixel centres, source coordinates below 0 clamped to 0,
 * edge pixels repeated, no antialiasing (so downscaling by more than 2x aliases, as theirs
 * does). Nearest is F.interpolate(mode="nearest") and INTER_NEAREST: source index
 * floor(dst · in / out). Layouts: HWC for interleaved images as stored in the dataset, CHW
 * for what the networks take.
 *
 * Not here: antialiased (PIL-style) resizing, colour conversion, normalisation.
 */
#ifndef DV_DATA_CALVIN_IMAGE_H
#define DV_DATA_CALVIN_IMAGE_H

#include <stdint.h>

/* the tap table of one axis: out[i] = in[i0[i]]·(1 - w[i]) + in[i1[i]]·w[i] */
typedef struct { int i0, i1; float w; } dv_tap;
void dv_bilinear_taps(int in, int out, dv_tap *taps);
int dv_nearest_index(int in, int out, int i);

/* u8 (sh, sw, c) HWC -> f32 (c, dh, dw) CHW, multiplied by scale (1/255 for [0, 1]) */
void dv_resize_bilinear_u8_chw(const uint8_t *src, int sh, int sw, int c, float *dst, int dh, int dw,
                               float scale);
/* f32 (sh, sw, c) HWC -> f32 (dh, dw, c) HWC */
void dv_resize_bilinear_f32_hwc(const float *src, int sh, int sw, int c, float *dst, int dh, int dw);
void dv_resize_nearest_f32_hwc(const float *src, int sh, int sw, int c, float *dst, int dh, int dw);
/* f32 (sh, sw, c) HWC -> f32 (c, dh, dw) CHW */
void dv_resize_bilinear_f32_chw(const float *src, int sh, int sw, int c, float *dst, int dh, int dw);
void dv_resize_nearest_f32_chw(const float *src, int sh, int sw, int c, float *dst, int dh, int dw);

#endif
