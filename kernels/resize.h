/* kernels/resize.h — image resizing of a plane stack x (P, H, W) -> y (P, OH, OW), contiguous,
 * with PyTorch's F.interpolate(size=(OH, OW)) semantics.
 *
 * bilinear: each output coordinate o maps to a source coordinate
 *             align_corners = 1:  src = o * (in - 1) / (out - 1)        (0 when out == 1)
 *             align_corners = 0:  src = max((o + 0.5) * in / out - 0.5, 0)
 *           i0 = floor(src), i1 = min(i0 + 1, in - 1), weights (1 - f, f) with f = src - i0;
 *           the output is the separable blend of the 2 x 2 taps. The scale is computed in the
 *           kernel's type, as PyTorch does, so f32 results agree to the last bits.
 * nearest:  src = min(floor(o * (float)in / out), in - 1)   (PyTorch 'nearest', not 'nearest-exact')
 *
 * Backward kernels scatter gy through the same taps and weights into gx, which they overwrite.
 * Threads run over planes (independent, so scatters do not race).
 */
#ifndef DV_KERNELS_RESIZE_H
#define DV_KERNELS_RESIZE_H

#include <stdint.h>

void dv_resize_bilinear_f32_portable(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                     int align_corners, const float *x, float *y);
void dv_resize_bilinear_f64_portable(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                     int align_corners, const double *x, double *y);
void dv_resize_bilinear_backward_f32_portable(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                              int align_corners, const float *gy, float *gx);
void dv_resize_bilinear_backward_f64_portable(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                              int align_corners, const double *gy, double *gx);

void dv_resize_nearest_f32_portable(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, const float *x, float *y);
void dv_resize_nearest_f64_portable(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, const double *x, double *y);
void dv_resize_nearest_backward_f32_portable(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, const float *gy, float *gx);
void dv_resize_nearest_backward_f64_portable(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, const double *gy, double *gx);

#endif
