/* kernels/reduce.h — reductions along one axis of a contiguous (outer, n, inner) block.
 * y has outer*inner elements. f32 sums accumulate in f64 so long rows stay exact enough to
 * compare against the f64 reference. */
#ifndef DV_KERNELS_REDUCE_H
#define DV_KERNELS_REDUCE_H

#include <stdint.h>

void dv_sum_f32_portable(int64_t outer, int64_t n, int64_t inner, const float *x, float *y);
void dv_sum_f64_portable(int64_t outer, int64_t n, int64_t inner, const double *x, double *y);

void dv_sum_f32_avx512(int64_t outer, int64_t n, int64_t inner, const float *x, float *y);

#endif
