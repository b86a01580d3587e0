/* kernels/cuda/adamw.cu — the fused AdamW update of kernels/adamw.h on the GPU: one pass over
 * (p, g, m, v), the optional f16 / bf16 copy of the new weight written in the same pass.
 * Same f32 scalars (rounded once from the double coefficients) and the same order of
 * operations as dv_adamw_f32_portable, every step an IEEE round-to-nearest operation
 * (__fmul_rn & co: no FMA contraction, correctly rounded sqrt and division), so a step is
 * meant to be bit-identical to the portable CPU kernel.
 * Memory bound: 28 bytes (+2) per element; grid-stride loop with float4 loads when the four
 * arrays are 16-byte aligned.
 */
#include "kernels/cuda/common.h"
#include "kernels/cuda/kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace {

struct Coefs { float decay, b1, b2, omb1, omb2, neg_step, bc2, eps; };

__device__ __forceinline__ void update(const Coefs &c, float &p, float g, float &m, float &v) {
    /* _rn: no FMA contraction, so each rounding is the CPU's */
    m = __fadd_rn(__fmul_rn(c.b1, m), __fmul_rn(c.omb1, g));
    v = __fadd_rn(__fmul_rn(c.b2, v), __fmul_rn(__fmul_rn(c.omb2, g), g));
    float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(v), c.bc2), c.eps);
    p = __fadd_rn(__fmul_rn(p, c.decay), __fmul_rn(c.neg_step, __fdiv_rn(m, denom)));
}

__device__ __forceinline__ uint16_t to_half_bits(float x, dv_adamw_copy kind) {
    if (kind == DV_ADAMW_COPY_F16) return __half_as_ushort(__float2half_rn(x));
    return __bfloat16_as_ushort(__float2bfloat16_rn(x));
}

__global__ void adamw_kernel(int64_t n, float *__restrict__ p, const float *__restrict__ g,
                             float *__restrict__ m, float *__restrict__ v, Coefs c,
                             dv_adamw_copy kind, uint16_t *__restrict__ copy, bool vec4) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x, t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    int64_t n4 = vec4 ? n / 4 : 0;
    for (int64_t i = t; i < n4; i += stride) {
        float4 pp = ((float4 *)p)[i], gg = ((const float4 *)g)[i], mm = ((float4 *)m)[i], vv = ((float4 *)v)[i];
        update(c, pp.x, gg.x, mm.x, vv.x);
        update(c, pp.y, gg.y, mm.y, vv.y);
        update(c, pp.z, gg.z, mm.z, vv.z);
        update(c, pp.w, gg.w, mm.w, vv.w);
        ((float4 *)p)[i] = pp, ((float4 *)m)[i] = mm, ((float4 *)v)[i] = vv;
        if (kind != DV_ADAMW_COPY_NONE) {
            copy[4 * i + 0] = to_half_bits(pp.x, kind);
            copy[4 * i + 1] = to_half_bits(pp.y, kind);
            copy[4 * i + 2] = to_half_bits(pp.z, kind);
            copy[4 * i + 3] = to_half_bits(pp.w, kind);
        }
    }
    for (int64_t i = 4 * n4 + t; i < n; i += stride) {
        float pp = p[i], mm = m[i], vv = v[i];
        update(c, pp, g[i], mm, vv);
        p[i] = pp, m[i] = mm, v[i] = vv;
        if (kind != DV_ADAMW_COPY_NONE) copy[i] = to_half_bits(pp, kind);
    }
}

} // namespace

extern "C" int dv_cu_adamw_f32(int64_t n, float *p, const float *g, float *m, float *v,
                               const dv_adamw_coefs *c, dv_adamw_copy kind, uint16_t *copy,
                               dv_cu_stream stream) {
    if (n <= 0) return 0;
    Coefs k = {(float)c->decay, (float)c->beta1, (float)c->beta2, (float)(1.0 - c->beta1),
               (float)(1.0 - c->beta2), (float)-c->step_size, (float)c->bc2_sqrt, (float)c->eps};
    bool vec4 = (((uintptr_t)p | (uintptr_t)g | (uintptr_t)m | (uintptr_t)v) & 15) == 0;
    int64_t grid = (n / 4 + 255) / 256 + 1;
    if (grid > 65535LL * 8) grid = 65535LL * 8;
    adamw_kernel<<<(unsigned)grid, 256, 0, (cudaStream_t)stream>>>(n, p, g, m, v, k, kind, copy, vec4);
    return (int)cudaGetLastError();
}
