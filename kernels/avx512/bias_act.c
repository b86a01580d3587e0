/* kernels/avx512/bias_act.c — AVX-512 fused bias + activation (f32), same contracts as the
 * portable kernels (kernels/bias_act.h): 16 columns per step with a masked tail, the
 * transcendental parts from kernels/avx512/vmath.h, the row loops specialised per activation.
 * The bias gradient uses the same fixed row blocks as the portable kernel (deterministic for
 * any thread count). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/avx512/act.h"
#include "kernels/avx512/vmath.h"
#include "kernels/bias_act.h"

static const float k_sqrt_2_over_pi = 0.79788456080286535588f;

VM_INLINE __mmask16 tail_mask(int64_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

/* act'(z) */
VM_INLINE __m512 dact_vec(dv_bias_act_kind a, __m512 z) {
    const __m512 one = vm_set(1.0f), half = vm_set(0.5f), zero = _mm512_setzero_ps();
    switch (a) {
    case DV_BIAS_ACT_RELU: return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(z, zero, _CMP_GT_OQ), one);
    case DV_BIAS_ACT_GELU: { /* Phi(z) + z phi(z) */
        __m512 pdf, cdf = vm_normcdf_pdf_(z, &pdf);
        return _mm512_fmadd_ps(z, pdf, cdf);
    }
    case DV_BIAS_ACT_GELU_TANH: {
        const __m512 k = vm_set(k_sqrt_2_over_pi);
        __m512 z2 = _mm512_mul_ps(z, z);
        __m512 th = vm_tanh(_mm512_mul_ps(k, _mm512_fmadd_ps(_mm512_mul_ps(vm_set(0.044715f), z2), z, z)));
        __m512 p = _mm512_mul_ps(half, _mm512_add_ps(one, th));
        __m512 q = _mm512_mul_ps(_mm512_mul_ps(half, z), _mm512_fnmadd_ps(th, th, one));
        q = _mm512_mul_ps(_mm512_mul_ps(q, k), _mm512_fmadd_ps(vm_set(0.134145f), z2, one));
        return _mm512_add_ps(p, q);
    }
    case DV_BIAS_ACT_QUICK_GELU: { /* s + 1.702 z s (1 - s) */
        __m512 s = vm_sigmoid(_mm512_mul_ps(vm_set(1.702f), z));
        __m512 t = _mm512_mul_ps(_mm512_mul_ps(vm_set(1.702f), z), s);
        return _mm512_fmadd_ps(t, _mm512_sub_ps(one, s), s);
    }
    case DV_BIAS_ACT_SILU: { /* s (1 + z (1 - s)) */
        __m512 s = vm_sigmoid(z);
        return _mm512_mul_ps(s, _mm512_fmadd_ps(z, _mm512_sub_ps(one, s), one));
    }
    default: return one;
    }
}

VM_INLINE void fwd_rows(dv_bias_act_kind a, int64_t R, int64_t N, const float *x, const float *b, float *y) {
#pragma omp parallel for schedule(static) if (R * N > 65536)
    for (int64_t r = 0; r < R; r++) {
        const float *xr = x + r * N;
        float *yr = y + r * N;
        int64_t c = 0;
        for (; c + 16 <= N; c += 16) {
            __m512 z = _mm512_loadu_ps(xr + c);
            if (b) z = _mm512_add_ps(z, _mm512_loadu_ps(b + c));
            _mm512_storeu_ps(yr + c, act_vec(a, z));
        }
        if (c < N) {
            __mmask16 m = tail_mask(N - c);
            __m512 z = _mm512_maskz_loadu_ps(m, xr + c);
            if (b) z = _mm512_add_ps(z, _mm512_maskz_loadu_ps(m, b + c));
            _mm512_mask_storeu_ps(yr + c, m, act_vec(a, z));
        }
    }
}

/* 16 columns from c (m: the lanes in use; plain loads and stores when all 16 are) */
VM_INLINE void bwd_vec(dv_bias_act_kind a, int64_t c, __mmask16 m, const float *xr, const float *b, const float *gr,
                       float *gxr, float *acc) {
    const bool full = m == (__mmask16)0xFFFF;
    __m512 z = full ? _mm512_loadu_ps(xr + c) : _mm512_maskz_loadu_ps(m, xr + c);
    if (b) z = _mm512_add_ps(z, full ? _mm512_loadu_ps(b + c) : _mm512_maskz_loadu_ps(m, b + c));
    __m512 g = _mm512_mul_ps(full ? _mm512_loadu_ps(gr + c) : _mm512_maskz_loadu_ps(m, gr + c), dact_vec(a, z));
    if (gxr) {
        if (full) _mm512_storeu_ps(gxr + c, g);
        else _mm512_mask_storeu_ps(gxr + c, m, g);
    }
    if (acc) {
        if (full) _mm512_storeu_ps(acc + c, _mm512_add_ps(_mm512_loadu_ps(acc + c), g));
        else _mm512_mask_storeu_ps(acc + c, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, acc + c), g));
    }
}

/* rows [r0, r1): gx (if any); column sums of gx added into acc (if any), rows in order. Masked
 * loads only for the tail: on the Zen 5 these kernels were tuned on, a masked load that misses
 * the cache costs about 3x a plain one. */
VM_INLINE void bwd_rows(dv_bias_act_kind a, int64_t r0, int64_t r1, int64_t N, const float *x, const float *b,
                        const float *gy, float *gx, float *acc) {
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = x + r * N, *gr = gy + r * N;
        float *gxr = gx ? gx + r * N : NULL;
        int64_t c = 0;
        for (; c + 16 <= N; c += 16) bwd_vec(a, c, (__mmask16)0xFFFF, xr, b, gr, gxr, acc);
        if (c < N) bwd_vec(a, c, tail_mask(N - c), xr, b, gr, gxr, acc);
    }
}

VM_INLINE void bwd(dv_bias_act_kind a, int64_t R, int64_t N, const float *x, const float *b, const float *gy,
                   float *gx, float *gb) {
    if (!gb) {
#pragma omp parallel for schedule(static) if (R * N > 65536)
        for (int64_t r = 0; r < R; r++) bwd_rows(a, r, r + 1, N, x, b, gy, gx, NULL);
        return;
    }
    int64_t per, nb = dv_bias_act_blocks(R, &per);
    float *part = calloc((size_t)(nb * N > 0 ? nb * N : 1), sizeof(float));
    if (!part) {
        fprintf(stderr, "bias_act_bwd: out of memory (%lld x %lld partial sums)\n", (long long)nb, (long long)N);
        abort();
    }
#pragma omp parallel for schedule(static) if (R * N > 65536)
    for (int64_t k = 0; k < nb; k++) {
        int64_t r1 = (k + 1) * per < R ? (k + 1) * per : R;
        bwd_rows(a, k * per, r1, N, x, b, gy, gx, part + k * N);
    }
    for (int64_t c = 0; c < N; c++) gb[c] = 0;
    for (int64_t k = 0; k < nb; k++)
        for (int64_t c = 0; c < N; c++) gb[c] += part[k * N + c];
    free(part);
}

void dv_bias_act_fwd_f32_avx512(dv_bias_act_kind act, int64_t R, int64_t N, const float *x, const float *b, float *y) {
    switch (act) {
    case DV_BIAS_ACT_RELU: fwd_rows(DV_BIAS_ACT_RELU, R, N, x, b, y); break;
    case DV_BIAS_ACT_GELU: fwd_rows(DV_BIAS_ACT_GELU, R, N, x, b, y); break;
    case DV_BIAS_ACT_GELU_TANH: fwd_rows(DV_BIAS_ACT_GELU_TANH, R, N, x, b, y); break;
    case DV_BIAS_ACT_QUICK_GELU: fwd_rows(DV_BIAS_ACT_QUICK_GELU, R, N, x, b, y); break;
    case DV_BIAS_ACT_SILU: fwd_rows(DV_BIAS_ACT_SILU, R, N, x, b, y); break;
    default: fwd_rows(DV_BIAS_ACT_NONE, R, N, x, b, y); break;
    }
}

void dv_bias_act_bwd_f32_avx512(dv_bias_act_kind act, int64_t R, int64_t N, const float *x, const float *b,
                                const float *gy, float *gx, float *gb) {
    switch (act) {
    case DV_BIAS_ACT_RELU: bwd(DV_BIAS_ACT_RELU, R, N, x, b, gy, gx, gb); break;
    case DV_BIAS_ACT_GELU: bwd(DV_BIAS_ACT_GELU, R, N, x, b, gy, gx, gb); break;
    case DV_BIAS_ACT_GELU_TANH: bwd(DV_BIAS_ACT_GELU_TANH, R, N, x, b, gy, gx, gb); break;
    case DV_BIAS_ACT_QUICK_GELU: bwd(DV_BIAS_ACT_QUICK_GELU, R, N, x, b, gy, gx, gb); break;
    case DV_BIAS_ACT_SILU: bwd(DV_BIAS_ACT_SILU, R, N, x, b, gy, gx, gb); break;
    default: bwd(DV_BIAS_ACT_NONE, R, N, x, b, gy, gx, gb); break;
    }
}
