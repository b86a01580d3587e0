/* kernels/avx512/rotary.c — AVX-512 rotary kernel (f32), same contract as
 * dv_rotary_f32_portable (kernels/rotary.h). 16 channels per step, masked tails.
 *   rotate_half: the i-half and the j-half are two plain loads at k and k + rot/2.
 *   interleaved: one load holds 8 whole pairs; swapping neighbours (permute 0xB1) brings x_j
 *   next to x_i, and a (-1, +1) sign vector turns x*c + swap(x)*s*sign into the rotation. */
#include <immintrin.h>
#include <string.h>

#include "kernels/rotary.h"

static inline __mmask16 tail_mask(int64_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

void dv_rotary_f32_avx512(int64_t nb, int64_t nh, int64_t T, int64_t D, int64_t rot, int interleaved,
                          int transpose, const float *x, const float *cos, const float *sin,
                          int64_t tab_bstride, float *y) {
    int64_t rows = nb * nh * T, half = rot / 2;
    /* forward: y_i gets -x_j s_i (even lanes negative); transpose: y_i gets +x_j s_j */
    const __m512 sgn_fwd = _mm512_setr_ps(-1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1);
    const __m512 sgn_bwd = _mm512_sub_ps(_mm512_setzero_ps(), sgn_fwd);
#pragma omp parallel for if (rows * D > 32768)
    for (int64_t r = 0; r < rows; r++) {
        int64_t b = r / (nh * T), t = r % T;
        const float *xr = x + r * D, *c = cos + b * tab_bstride + t * rot, *s = sin + b * tab_bstride + t * rot;
        float *yr = y + r * D;
        if (interleaved) {
            for (int64_t k = 0; k < rot; k += 16) {
                __mmask16 m = tail_mask(rot - k);
                __m512 xv = _mm512_maskz_loadu_ps(m, xr + k), cv = _mm512_maskz_loadu_ps(m, c + k);
                __m512 sv = _mm512_maskz_loadu_ps(m, s + k), v;
                if (!transpose) {
                    /* y = x c + swap(x) * s * (-1, +1) */
                    v = _mm512_mul_ps(_mm512_permute_ps(xv, 0xB1), _mm512_mul_ps(sv, sgn_fwd));
                } else {
                    /* y = x c + swap(x * s) * (+1, -1) */
                    v = _mm512_mul_ps(_mm512_permute_ps(_mm512_mul_ps(xv, sv), 0xB1), sgn_bwd);
                }
                _mm512_mask_storeu_ps(yr + k, m, _mm512_fmadd_ps(xv, cv, v));
            }
        } else {
            for (int64_t k = 0; k < half; k += 16) {
                __mmask16 m = tail_mask(half - k);
                __m512 xi = _mm512_maskz_loadu_ps(m, xr + k), xj = _mm512_maskz_loadu_ps(m, xr + half + k);
                __m512 ci = _mm512_maskz_loadu_ps(m, c + k), cj = _mm512_maskz_loadu_ps(m, c + half + k);
                __m512 si = _mm512_maskz_loadu_ps(m, s + k), sj = _mm512_maskz_loadu_ps(m, s + half + k);
                __m512 yi, yj;
                if (!transpose) {
                    yi = _mm512_fnmadd_ps(xj, si, _mm512_mul_ps(xi, ci));
                    yj = _mm512_fmadd_ps(xi, sj, _mm512_mul_ps(xj, cj));
                } else {
                    yi = _mm512_fmadd_ps(xj, sj, _mm512_mul_ps(xi, ci));
                    yj = _mm512_fnmadd_ps(xi, si, _mm512_mul_ps(xj, cj));
                }
                _mm512_mask_storeu_ps(yr + k, m, yi);
                _mm512_mask_storeu_ps(yr + half + k, m, yj);
            }
        }
        if (rot < D) memcpy(yr + rot, xr + rot, (size_t)(D - rot) * sizeof(float));
    }
}
