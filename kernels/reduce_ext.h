/* kernels/reduce_ext.h — max / min (with the index of the first extreme), logsumexp and cumsum
 * along one axis of a contiguous (outer, n, inner) block, and the scatter that routes a max/min
 * gradient back to the chosen elements. Reduced outputs are (outer, inner) contiguous.
 * Portable f32 and f64 (kernels/reduce_ext_impl.h); the f32 sums accumulate in double. The plain
 * sum lives in kernels/reduce.c. */
#ifndef DV_KERNELS_REDUCE_EXT_H
#define DV_KERNELS_REDUCE_EXT_H

#include <stdint.h>

/* y[o,j] = max_i x[o,i,j], idx[o,j] = the first i that attains it (n >= 1). A NaN counts as the
 * largest (and smallest) value, as in torch: the first NaN wins. y or idx may be NULL. */
void dv_max_f32_portable(int64_t outer, int64_t n, int64_t inner, const float *x, float *y, int64_t *idx);
void dv_max_f64_portable(int64_t outer, int64_t n, int64_t inner, const double *x, double *y, int64_t *idx);
void dv_min_f32_portable(int64_t outer, int64_t n, int64_t inner, const float *x, float *y, int64_t *idx);
void dv_min_f64_portable(int64_t outer, int64_t n, int64_t inner, const double *x, double *y, int64_t *idx);

/* y[o,j] = log sum_i exp(x[o,i,j]), as max + log(sum exp(x - max)); -inf when n == 0 or every
 * element is -inf, +inf when any element is +inf */
void dv_logsumexp_f32_portable(int64_t outer, int64_t n, int64_t inner, const float *x, float *y);
void dv_logsumexp_f64_portable(int64_t outer, int64_t n, int64_t inner, const double *x, double *y);

/* y[o,i,j] = sum_{k <= i} x[o,k,j]; reverse: sum_{k >= i} (the backward of cumsum) */
void dv_cumsum_f32_portable(int64_t outer, int64_t n, int64_t inner, const float *x, float *y, int reverse);
void dv_cumsum_f64_portable(int64_t outer, int64_t n, int64_t inner, const double *x, double *y, int reverse);

/* gx (outer, n, inner) = 0 except gx[o, idx[o,j], j] = g[o,j] */
void dv_scatter_dim_f32_portable(int64_t outer, int64_t n, int64_t inner, const int64_t *idx,
                                 const float *g, float *gx);
void dv_scatter_dim_f64_portable(int64_t outer, int64_t n, int64_t inner, const int64_t *idx,
                                 const double *g, double *gx);

#endif
