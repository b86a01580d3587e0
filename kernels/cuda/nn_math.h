/* kernels/cuda/nn_math.h — the per-element arithmetic of the fused nn kernels on the GPU
 * (kernels/cuda/rotary.cu, bias_act.cu, diffusion.cu, modulate.cu), written once as DV_HD
 * functions (kernels/cuda/common.h) so that tests/test_cuda_host_nn.c can compile the very
 * same code for the host and check it against the portable CPU kernels inside `make test`,
 * without a GPU. What the host check cannot see — the grids, the block reductions, the
 * partial-sum buffers — is tests/cuda/test_cuda_nn.c (build/test-cuda).
 *
 * f32 only, the formulas of kernels/rotary.c, kernels/bias_act.c and kernels/diffusion.c.
 * Plain C11 under gcc: no CUDA types or intrinsics here.
 */
#ifndef DV_KERNELS_CUDA_NN_MATH_H
#define DV_KERNELS_CUDA_NN_MATH_H

#include <stdint.h>

#include "kernels/bias_act.h"
#include "kernels/cuda/common.h"

/* ---- rotary (kernels/rotary.h) --------------------------------------------------------- */
/* Output channel ch (< rot) of one row: xr the row of x, cr / sr the row's cos / sin tables.
 * Channel ch is either the first member i of its pair (i, j) or the second j. */
DV_HD float dv_cu_rotary_elem(int64_t ch, int64_t rot, int interleaved, int transpose, const float *xr,
                              const float *cr, const float *sr) {
    int64_t half = rot / 2, i, j;
    int first;
    if (interleaved) { i = ch & ~(int64_t)1; j = i + 1; first = (ch & 1) == 0; }
    else if (ch < half) { i = ch; j = ch + half; first = 1; }
    else { i = ch - half; j = ch; first = 0; }
    float xi = xr[i], xj = xr[j];
    if (!transpose) return first ? xi * cr[i] - xj * sr[i] : xj * cr[j] + xi * sr[j];
    return first ? xi * cr[i] + xj * sr[j] : xj * cr[j] - xi * sr[i];
}

/* ---- activations (kernels/bias_act.h), f32 as kernels/bias_act.c computes them ---------- */
DV_HD float dv_cu_act(dv_bias_act_kind a, float z) {
    switch (a) {
    case DV_BIAS_ACT_RELU: return z > 0 ? z : 0.0f;
    case DV_BIAS_ACT_GELU: return 0.5f * z * (1.0f + erff(z * 0.70710678118654752440f));
    case DV_BIAS_ACT_GELU_TANH:
        return 0.5f * z * (1.0f + tanhf(0.79788456080286535588f * (z + 0.044715f * z * z * z)));
    case DV_BIAS_ACT_QUICK_GELU: return z / (1.0f + expf(-1.702f * z));
    case DV_BIAS_ACT_SILU: return z / (1.0f + expf(-z));
    default: return z;
    }
}

DV_HD float dv_cu_dact(dv_bias_act_kind a, float z) {
    switch (a) {
    case DV_BIAS_ACT_RELU: return z > 0 ? 1.0f : 0.0f;
    case DV_BIAS_ACT_GELU:
        return 0.5f * (1.0f + erff(z * 0.70710678118654752440f)) + z * expf(-0.5f * z * z) * 0.39894228040143267794f;
    case DV_BIAS_ACT_GELU_TANH: {
        float k = 0.79788456080286535588f, th = tanhf(k * (z + 0.044715f * z * z * z));
        return 0.5f * (1.0f + th) + 0.5f * z * (1.0f - th * th) * k * (1.0f + 0.134145f * z * z);
    }
    case DV_BIAS_ACT_QUICK_GELU: {
        float s = 1.0f / (1.0f + expf(-1.702f * z));
        return s + 1.702f * z * s * (1.0f - s);
    }
    case DV_BIAS_ACT_SILU: {
        float s = 1.0f / (1.0f + expf(-z));
        return s * (1.0f + z * (1.0f - s));
    }
    default: return 1.0f;
    }
}

/* ---- the fused sampler step (kernels/diffusion.h), coefficients rounded to f32 once ----- */
typedef struct {
    float ax, am, lim, c0, cx, cm, cz;
    int clip;
} dv_cu_diff_coef;

/* out for one element; *x0 receives the (clipped) predicted clean sample. has_noise = 0:
 * the noise term is absent (z is not read). The clamp is two compares so NaN stays NaN. */
DV_HD float dv_cu_diffusion_elem(const dv_cu_diff_coef *c, float m, float x, float z, int has_noise, float *x0) {
    float p = c->ax * x + c->am * m;
    if (c->clip) {
        if (p < -c->lim) p = -c->lim;
        if (p > c->lim) p = c->lim;
    }
    float y = c->c0 * p + c->cx * x + c->cm * m;
    if (has_noise) y += c->cz * z;
    *x0 = p;
    return y;
}

#endif
