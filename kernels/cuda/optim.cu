/* kernels/cuda/optim.cu — the optimiser pieces besides AdamW (adamw.cu) on the GPU: the SGD
 * step of optim/sgd.c, the EMA update of optim/ema.c and the exchange of the averaged weights,
 * and for optim/clip.c the sum of squares of a gradient (in double, deterministic) and the
 * in-place scaling by the clip coefficient.
 *
 * The per-element updates are kernels/cuda/reduce_math.h's (shared with the host test), with
 * the products rounded on their own (no FMA contraction), so a step is meant to be the CPU's
 * bits. The sum of squares is a fixed-shape two-pass tree — kSumBlocks blocks of kThreads
 * threads each add their grid-stride share in double, a shared-memory tree per block, then
 * one block adds the kSumBlocks partials by the same tree — so its result is the same on
 * every run and every GPU (it is not the CPU's OpenMP order: agreement ~1e-15 relative).
 * Not here: f64 / f16 parameters, multi-tensor launches (one launch per parameter).
 */
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/reduce_math.h"

#include <cuda_runtime.h>

namespace {

using dvcu::grid_for;
using dvcu::kThreads;

constexpr int kSumBlocks = 256;

__global__ void sgd_kernel(int64_t n, float *__restrict__ p, const float *__restrict__ g, float *__restrict__ buf,
                           dv_cu_sgd_coefs c) {
    DV_CU_GRID_STRIDE(i, n) {
        float pp = p[i], bb = c.use_momentum ? buf[i] : 0.0f;
        dv_cu_sgd_one(&c, &pp, g[i], &bb);
        p[i] = pp;
        if (c.use_momentum) buf[i] = bb;
    }
}

__global__ void ema_kernel(int64_t n, float *__restrict__ shadow, const float *__restrict__ param, float a) {
    DV_CU_GRID_STRIDE(i, n) shadow[i] = dv_cu_ema_one(shadow[i], param[i], a);
}

__global__ void scale_kernel(int64_t n, float *__restrict__ x, float c) {
    DV_CU_GRID_STRIDE(i, n) x[i] = x[i] * c;
}

__global__ void swap_u32_kernel(int64_t n, uint32_t *__restrict__ a, uint32_t *__restrict__ b) {
    DV_CU_GRID_STRIDE(i, n) {
        uint32_t t = a[i];
        a[i] = b[i];
        b[i] = t;
    }
}
__global__ void swap_u8_kernel(int64_t n, uint8_t *__restrict__ a, uint8_t *__restrict__ b) {
    DV_CU_GRID_STRIDE(i, n) {
        uint8_t t = a[i];
        a[i] = b[i];
        b[i] = t;
    }
}

/* every thread holds v; thread 0 returns the block's sum by a fixed tree (kThreads a power
 * of two); sh: kThreads doubles */
__device__ double block_tree_sum(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = kThreads / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    return sh[0];
}

/* part[blockIdx.x] = sum of x[i]^2 over this block's grid-stride share (gridDim.x == kSumBlocks) */
__global__ void sumsq_partial(int64_t n, const float *__restrict__ x, double *__restrict__ part) {
    __shared__ double sh[kThreads];
    double s = 0;
    DV_CU_GRID_STRIDE(i, n) {
        double v = (double)x[i];
        s += v * v;
    }
    s = block_tree_sum(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

/* out[0] = sum of the kSumBlocks partials (one block) */
__global__ void sumsq_final(const double *__restrict__ part, double *__restrict__ out) {
    __shared__ double sh[kThreads];
    double s = 0;
    for (int i = threadIdx.x; i < kSumBlocks; i += kThreads) s += part[i];
    s = block_tree_sum(s, sh);
    if (threadIdx.x == 0) out[0] = s;
}

} // namespace

extern "C" int dv_cu_sgd_f32(int64_t n, float *p, const float *g, float *buf, const dv_cu_sgd_coefs *c,
                             dv_cu_stream stream) {
    if (n <= 0) return 0;
    sgd_kernel<<<grid_for(n), kThreads, 0, (cudaStream_t)stream>>>(n, p, g, buf, *c);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_ema_f32(int64_t n, float *shadow, const float *param, float a, dv_cu_stream stream) {
    if (n <= 0) return 0;
    ema_kernel<<<grid_for(n), kThreads, 0, (cudaStream_t)stream>>>(n, shadow, param, a);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_scale_f32(int64_t n, float *x, float c, dv_cu_stream stream) {
    if (n <= 0) return 0;
    scale_kernel<<<grid_for(n), kThreads, 0, (cudaStream_t)stream>>>(n, x, c);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_swap_bytes(int64_t nbytes, void *a, void *b, dv_cu_stream stream) {
    if (nbytes <= 0) return 0;
    cudaStream_t s = (cudaStream_t)stream;
    if (nbytes % 4 == 0 && (((uintptr_t)a | (uintptr_t)b) & 3) == 0)
        swap_u32_kernel<<<grid_for(nbytes / 4), kThreads, 0, s>>>(nbytes / 4, (uint32_t *)a, (uint32_t *)b);
    else
        swap_u8_kernel<<<grid_for(nbytes), kThreads, 0, s>>>(nbytes, (uint8_t *)a, (uint8_t *)b);
    return (int)cudaGetLastError();
}

extern "C" size_t dv_cu_sum_squares_work_bytes(void) { return (size_t)kSumBlocks * sizeof(double); }

extern "C" int dv_cu_sum_squares_f32(int64_t n, const float *x, double *out, void *work, dv_cu_stream stream) {
    cudaStream_t s = (cudaStream_t)stream;
    if (n <= 0) return (int)cudaMemsetAsync(out, 0, sizeof(double), s); /* an empty sum */
    sumsq_partial<<<kSumBlocks, kThreads, 0, s>>>(n, x, (double *)work);
    sumsq_final<<<1, kThreads, 0, s>>>((const double *)work, out);
    return (int)cudaGetLastError();
}
