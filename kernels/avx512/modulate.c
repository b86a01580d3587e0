/* kernels/avx512/modulate.c — AVX-512 adaLN / FiLM kernels (f32), same contracts as the
 * portable ones (kernels/modulate.h): 16 channels per step along C, masked tails. */
#include <immintrin.h>
#include <math.h>
#include <stddef.h>

#include "kernels/modulate.h"

static inline __mmask16 tail_mask(int64_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

void dv_modulate_f32_avx512(int64_t B, int64_t T, int64_t C, const float *x, const float *shift,
                            const float *scale, float one, float *y) {
    __m512 onev = _mm512_set1_ps(one);
#pragma omp parallel for if (B * T * C > 65536)
    for (int64_t r = 0; r < B * T; r++) {
        int64_t b = r / T;
        for (int64_t c = 0; c < C; c += 16) {
            __mmask16 m = tail_mask(C - c);
            __m512 a = _mm512_add_ps(onev, _mm512_maskz_loadu_ps(m, scale + b * C + c));
            __m512 sh = shift ? _mm512_maskz_loadu_ps(m, shift + b * C + c) : _mm512_setzero_ps();
            _mm512_mask_storeu_ps(y + r * C + c, m, _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + r * C + c), a, sh));
        }
    }
}

void dv_modulate_bwd_f32_avx512(int64_t B, int64_t T, int64_t C, const float *x, const float *scale, float one,
                                const float *g, float *gx, float *gshift, float *gscale) {
    __m512 onev = _mm512_set1_ps(one);
#pragma omp parallel for if (B * T * C > 65536)
    for (int64_t b = 0; b < B; b++) {
        for (int64_t c = 0; c < C; c += 16) {
            __mmask16 m = tail_mask(C - c);
            __m512 a = _mm512_add_ps(onev, _mm512_maskz_loadu_ps(m, scale + b * C + c));
            __m512 ssh = _mm512_setzero_ps(), ssc = _mm512_setzero_ps();
            for (int64_t t = 0; t < T; t++) {
                int64_t o = (b * T + t) * C + c;
                __m512 gv = _mm512_maskz_loadu_ps(m, g + o);
                if (gx) _mm512_mask_storeu_ps(gx + o, m, _mm512_mul_ps(gv, a));
                ssh = _mm512_add_ps(ssh, gv);
                if (gscale) ssc = _mm512_fmadd_ps(gv, _mm512_maskz_loadu_ps(m, x + o), ssc);
            }
            if (gshift) _mm512_mask_storeu_ps(gshift + b * C + c, m, ssh);
            if (gscale) _mm512_mask_storeu_ps(gscale + b * C + c, m, ssc);
        }
    }
}

void dv_ln_modulate_f32_avx512(int64_t B, int64_t T, int64_t C, const float *x, const float *shift,
                               const float *scale, double eps, float *y, float *mean, float *rstd) {
#pragma omp parallel for if (B * T * C > 65536)
    for (int64_t r = 0; r < B * T; r++) {
        int64_t b = r / T;
        const float *xr = x + r * C;
        __m512 acc = _mm512_setzero_ps();
        for (int64_t c = 0; c < C; c += 16) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(tail_mask(C - c), xr + c));
        float mu = _mm512_reduce_add_ps(acc) / (float)C;
        __m512 muv = _mm512_set1_ps(mu);
        acc = _mm512_setzero_ps();
        for (int64_t c = 0; c < C; c += 16) {
            __mmask16 m = tail_mask(C - c);
            __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, xr + c), muv);
            acc = _mm512_fmadd_ps(d, d, acc);
        }
        float rs = 1.0f / sqrtf(_mm512_reduce_add_ps(acc) / (float)C + (float)eps);
        mean[r] = mu;
        rstd[r] = rs;
        __m512 rsv = _mm512_set1_ps(rs), onev = _mm512_set1_ps(1.0f);
        for (int64_t c = 0; c < C; c += 16) {
            __mmask16 m = tail_mask(C - c);
            __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, xr + c), muv), rsv);
            __m512 a = _mm512_add_ps(onev, _mm512_maskz_loadu_ps(m, scale + b * C + c));
            _mm512_mask_storeu_ps(y + r * C + c, m, _mm512_fmadd_ps(xh, a, _mm512_maskz_loadu_ps(m, shift + b * C + c)));
        }
    }
}

void dv_ln_modulate_bwd_f32_avx512(int64_t B, int64_t T, int64_t C, const float *x, const float *mean,
                                   const float *rstd, const float *scale, const float *g, float *gx,
                                   float *gshift, float *gscale) {
    const __m512 onev = _mm512_set1_ps(1.0f);
#pragma omp parallel for if (B * T * C > 65536)
    for (int64_t b = 0; b < B; b++) {
        for (int64_t c = 0; c < C; c += 16) {
            __mmask16 m = tail_mask(C - c);
            if (gshift) _mm512_mask_storeu_ps(gshift + b * C + c, m, _mm512_setzero_ps());
            if (gscale) _mm512_mask_storeu_ps(gscale + b * C + c, m, _mm512_setzero_ps());
        }
        for (int64_t t = 0; t < T; t++) {
            int64_t r = b * T + t;
            const float *gr = g + r * C, *xr = x + r * C;
            __m512 muv = _mm512_set1_ps(mean[r]), rsv = _mm512_set1_ps(rstd[r]);
            __m512 s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps();
            for (int64_t c = 0; c < C; c += 16) {
                __mmask16 m = tail_mask(C - c);
                __m512 gv = _mm512_maskz_loadu_ps(m, gr + c);
                __m512 xh = _mm512_maskz_mul_ps(m, _mm512_sub_ps(_mm512_maskz_loadu_ps(m, xr + c), muv), rsv);
                if (gshift) _mm512_mask_storeu_ps(gshift + b * C + c, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, gshift + b * C + c), gv));
                if (gscale) _mm512_mask_storeu_ps(gscale + b * C + c, m, _mm512_fmadd_ps(gv, xh, _mm512_maskz_loadu_ps(m, gscale + b * C + c)));
                __m512 gh = _mm512_mul_ps(gv, _mm512_add_ps(onev, _mm512_maskz_loadu_ps(m, scale + b * C + c)));
                s1 = _mm512_add_ps(s1, gh);
                s2 = _mm512_fmadd_ps(gh, xh, s2);
            }
            if (!gx) continue;
            __m512 m1 = _mm512_set1_ps(_mm512_reduce_add_ps(s1) / (float)C);
            __m512 m2 = _mm512_set1_ps(_mm512_reduce_add_ps(s2) / (float)C);
            for (int64_t c = 0; c < C; c += 16) {
                __mmask16 m = tail_mask(C - c);
                __m512 gv = _mm512_maskz_loadu_ps(m, gr + c);
                __m512 xh = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, xr + c), muv), rsv);
                __m512 gh = _mm512_mul_ps(gv, _mm512_add_ps(onev, _mm512_maskz_loadu_ps(m, scale + b * C + c)));
                __m512 v = _mm512_sub_ps(_mm512_sub_ps(gh, m1), _mm512_mul_ps(xh, m2));
                _mm512_mask_storeu_ps(gx + r * C + c, m, _mm512_mul_ps(rsv, v));
            }
        }
    }
}

void dv_gated_residual_f32_avx512(int64_t B, int64_t T, int64_t C, const float *x, const float *gate,
                                  const float *h, float *y) {
#pragma omp parallel for if (B * T * C > 65536)
    for (int64_t r = 0; r < B * T; r++) {
        const float *gt = gate + (r / T) * C;
        for (int64_t c = 0; c < C; c += 16) {
            __mmask16 m = tail_mask(C - c);
            __m512 v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, gt + c), _mm512_maskz_loadu_ps(m, h + r * C + c),
                                       _mm512_maskz_loadu_ps(m, x + r * C + c));
            _mm512_mask_storeu_ps(y + r * C + c, m, v);
        }
    }
}
