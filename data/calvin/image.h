/* data/calvin/image.h — the image resampling the sample builders need, in plain C.
 *
 * Bilinear is PyTorch's F.interpolate(mode="bilinear", align_corners=False) and OpenCV's
 * INTER_LINEAR when upscaling: half-pixel centres, source coordinates below 0 clamped to 0,
 * edge pixels repeated, no antialiasing (so downscaling by more than 2x aliases, as theirs
 * does). Nearest picks source index floor(dst · in / out) — but the two libraries round that
 * differently, and the references use both (cv2 to upscale the gripper camera, torchvision to
 * rescale for augmentation), so the rule is a parameter: PyTorch computes the scale and the
 * product in float (and special-cases equal and doubled sizes); OpenCV computes
 * dst · (1 / (out / in)) in double. They differ at a few pixels (84 -> 200: pixel 150).
 * Layouts: HWC for interleaved images as stored in the dataset, CHW for what the networks
 * take.
 *
 * Not here: antialiased (PIL-style) resizing, colour conversion, normalisation.
 */
#ifndef DV_DATA_CALVIN_IMAGE_H
#define DV_DATA_CALVIN_IMAGE_H

#include <stdint.h>

/* the tap table of one axis: out[i] = in[i0[i]]·(1 - w[i]) + in[i1[i]]·w[i] */
typedef struct { int i0, i1; float w; } dv_tap;
void dv_bilinear_taps(int in, int out, dv_tap *taps);
typedef enum { DV_NEAREST_TORCH, DV_NEAREST_CV2 } dv_nearest_rule;
int dv_nearest_index(dv_nearest_rule rule, int in, int out, int i);

/* u8 (sh, sw, c) HWC -> f32 (c, dh, dw) CHW, multiplied by scale (1/255 for [0, 1]) */
void dv_resize_bilinear_u8_chw(const uint8_t *src, int sh, int sw, int c, float *dst, int dh, int dw,
                               float scale);
/* f32 (sh, sw, c) HWC -> f32 (dh, dw, c) HWC */
void dv_resize_bilinear_f32_hwc(const float *src, int sh, int sw, int c, float *dst, int dh, int dw);
void dv_resize_nearest_f32_hwc(const float *src, int sh, int sw, int c, float *dst, int dh, int dw,
                               dv_nearest_rule rule);
/* f32 (sh, sw, c) HWC -> f32 (c, dh, dw) CHW */
void dv_resize_bilinear_f32_chw(const float *src, int sh, int sw, int c, float *dst, int dh, int dw);
void dv_resize_nearest_f32_chw(const float *src, int sh, int sw, int c, float *dst, int dh, int dw,
                               dv_nearest_rule rule);

#endif
