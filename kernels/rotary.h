/* kernels/rotary.h — rotary position embedding kernels: rotate channel pairs of each row by
 * per-(row position) angles given as cos / sin tables.
 *
 * x, y: (nb, nh, T, D) contiguous. cos, sin: (nb or 1, T, rot) contiguous, full-width tables
 * (one entry per channel, as HF LLaMA's `cat(freqs, freqs)` and 3D Diffuser Actor's repeated
 * [s0, s0, s1, s1, ...]); tab_bstride = T * rot, or 0 when one table serves every batch.
 * Channels rot..D-1 pass through unchanged. A pair (i, j) is
 *   interleaved = 0 (LLaMA rotate_half):   i in [0, rot/2),  j = i + rot/2
 *   interleaved = 1 (pairs (2k, 2k+1)):    i = 2k,           j = 2k + 1
 * and the rotation, written per channel so that it is exactly the reference formula
 * x*cos + rot(x)*sin with rot(x)_i = -x_j, rot(x)_j = x_i:
 *   y_i = x_i cos_i - x_j sin_i,    y_j = x_j cos_j + x_i sin_j.
 * transpose = 1 applies the transposed map (the backward, g -> gx):
 *   y_i = x_i cos_i + x_j sin_j,    y_j = x_j cos_j - x_i sin_i.
 */
#ifndef DV_KERNELS_ROTARY_H
#define DV_KERNELS_ROTARY_H

#include <stdint.h>

void dv_rotary_f32_portable(int64_t nb, int64_t nh, int64_t T, int64_t D, int64_t rot, int interleaved,
                            int transpose, const float *x, const float *cos, const float *sin,
                            int64_t tab_bstride, float *y);
void dv_rotary_f64_portable(int64_t nb, int64_t nh, int64_t T, int64_t D, int64_t rot, int interleaved,
                            int transpose, const double *x, const double *cos, const double *sin,
                            int64_t tab_bstride, double *y);
void dv_rotary_f32_avx512(int64_t nb, int64_t nh, int64_t T, int64_t D, int64_t rot, int interleaved,
                          int transpose, const float *x, const float *cos, const float *sin,
                          int64_t tab_bstride, float *y);

#endif
