/* kernels/avx512/act.h — the activations of kernels/bias_act.h on 16 floats (act_vec), shared by
 * the bias + activation kernels (kernels/avx512/bias_act.c) and the GEMM's fused epilogue
 * (kernels/avx512/gemm.c), so both compute the same function bit for bit. */
#ifndef DV_KERNELS_AVX512_ACT_H
#define DV_KERNELS_AVX512_ACT_H

#include "kernels/avx512/vmath.h"
#include "kernels/bias_act.h"

/* act(z) */
VM_INLINE __m512 act_vec(dv_bias_act_kind a, __m512 z) {
    const __m512 one = vm_set(1.0f), zero = _mm512_setzero_ps();
    switch (a) {
    case DV_BIAS_ACT_RELU: return _mm512_max_ps(z, zero);
    case DV_BIAS_ACT_GELU: return _mm512_mul_ps(z, vm_normcdf(z));
    case DV_BIAS_ACT_GELU_TANH: {
        /* z (1 + tanh u) / 2 = z / (1 + e^{-2u}), u = sqrt(2/pi) (z + 0.044715 z^3) */
        __m512 z3 = _mm512_mul_ps(_mm512_mul_ps(z, z), z);
        __m512 u = _mm512_mul_ps(vm_set(0.79788456080286535588f /* sqrt(2/pi) */),
                                 _mm512_fmadd_ps(vm_set(0.044715f), z3, z));
        return _mm512_div_ps(z, _mm512_add_ps(one, vm_exp(_mm512_mul_ps(vm_set(-2.0f), u))));
    }
    case DV_BIAS_ACT_QUICK_GELU: return _mm512_div_ps(z, _mm512_add_ps(one, vm_exp(_mm512_mul_ps(vm_set(-1.702f), z))));
    case DV_BIAS_ACT_SILU: return _mm512_div_ps(z, _mm512_add_ps(one, vm_exp(_mm512_sub_ps(zero, z))));
    default: return z;
    }
}

#endif
