/* kernels/pool.h — 2-D pooling over a stack of planes x (P, H, W), contiguous, P = B*C.
 *
 *   max:      y[p][oh][ow] = max over the window of x (padding never wins); idx records the
 *             flat position ih*W + iw of the (first) maximum, which is where the backward
 *             sends the gradient. NaN wins, as in PyTorch.
 *   avg:      mean over the window; padding counts as zeros in the divisor
 *             (count_include_pad = true, PyTorch's default).
 *   adaptive: output cell i covers input rows [floor(i*H/OH), ceil((i+1)*H/OH)), likewise
 *             for columns, and averages them (windows may overlap or differ in size).
 *
 * Window for output (oh, ow): rows oh*sh - ph + [0, kh), columns ow*sw - pw + [0, kw).
 * The backward kernels overwrite gx (they zero it first). All kernels thread over planes with
 * OpenMP when the work is large; planes are independent, so the scatters do not race.
 */
#ifndef DV_KERNELS_POOL_H
#define DV_KERNELS_POOL_H

#include <stdint.h>

typedef struct {
    int64_t H, W, OH, OW;
    int kh, kw, sh, sw, ph, pw;
} dv_pool2d_geom;

void dv_max_pool2d_f32_portable(const dv_pool2d_geom *g, int64_t P, const float *x, float *y, int32_t *idx);
void dv_max_pool2d_f64_portable(const dv_pool2d_geom *g, int64_t P, const double *x, double *y, int32_t *idx);
void dv_max_pool2d_backward_f32_portable(const dv_pool2d_geom *g, int64_t P, const float *gy, const int32_t *idx, float *gx);
void dv_max_pool2d_backward_f64_portable(const dv_pool2d_geom *g, int64_t P, const double *gy, const int32_t *idx, double *gx);

void dv_avg_pool2d_f32_portable(const dv_pool2d_geom *g, int64_t P, const float *x, float *y);
void dv_avg_pool2d_f64_portable(const dv_pool2d_geom *g, int64_t P, const double *x, double *y);
void dv_avg_pool2d_backward_f32_portable(const dv_pool2d_geom *g, int64_t P, const float *gy, float *gx);
void dv_avg_pool2d_backward_f64_portable(const dv_pool2d_geom *g, int64_t P, const double *gy, double *gx);

void dv_adaptive_avg_pool2d_f32_portable(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, const float *x, float *y);
void dv_adaptive_avg_pool2d_f64_portable(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, const double *x, double *y);
void dv_adaptive_avg_pool2d_backward_f32_portable(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, const float *gy, float *gx);
void dv_adaptive_avg_pool2d_backward_f64_portable(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, const double *gy, double *gx);

#endif
