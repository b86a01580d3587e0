/* kernels/cuda/launch.cuh — device helpers shared by the .cu files written after the first
 * ones (rotary, bias_act, diffusion, modulate, index, loss, pool, resize, conv) and by
 * reduce.cu: the grid of a grid-stride loop and the block-wide sum and maximum. CUDA only
 * (never included by C code).
 */
#ifndef DV_KERNELS_CUDA_LAUNCH_CUH
#define DV_KERNELS_CUDA_LAUNCH_CUH

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

namespace dvcu {

constexpr int kThreads = 256;

/* blocks for n elements in a grid-stride loop of kThreads-thread blocks: at most 65535 * 8
 * (the loop covers the rest), at least 1 */
inline unsigned grid_for(int64_t n) {
    int64_t b = (n + kThreads - 1) / kThreads;
    if (b > 65535LL * 8) b = 65535LL * 8;
    return (unsigned)(b > 0 ? b : 1);
}

#define DV_CU_GRID_STRIDE(i, n)                                                                    \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n);                      \
         i += (int64_t)gridDim.x * blockDim.x)

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* every thread of the block gets the sum of v over the block; sh: 32 floats of shared
 * memory; blockDim.x a multiple of 32. Safe to call repeatedly with the same sh. */
__device__ __forceinline__ float block_sum(float v, float *sh) {
    int lane = threadIdx.x % 32, w = threadIdx.x / 32, nw = blockDim.x / 32;
    v = warp_sum(v);
    __syncthreads(); /* sh may still be read by a previous call */
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : 0.0f;
    return warp_sum(v);
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* the same for the maximum (-inf past the last warp) */
__device__ __forceinline__ float block_max(float v, float *sh) {
    int lane = threadIdx.x % 32, w = threadIdx.x / 32, nw = blockDim.x / 32;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : -INFINITY;
    return warp_max(v);
}

} // namespace dvcu

#endif
