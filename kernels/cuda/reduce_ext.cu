/* kernels/cuda/reduce_ext.cu — max / min (value and first extreme index), logsumexp, cumsum
 * along one axis of a contiguous (outer, n, inner) f32 block, and the scatter that routes a
 * max / min gradient back to the chosen elements: kernels/reduce_ext.h's contracts on the GPU.
 *
 * One thread per output position (outer * inner of them, grid-stride) runs the CPU's loop
 * over its line (kernels/cuda/reduce_math.h, shared with the host test), reading at stride
 * inner: coalesced across threads when inner > 1, one row per thread when inner == 1. That
 * keeps the results the CPU's bits (first NaN / first extreme wins, cumsum in double) and the
 * order fixed. Max / min over long rows with inner == 1 (argmax over a vocabulary when
 * decoding) take a block per row instead, combining (value, index) pairs by a total order that
 * gives the same pick (dv_cu_extreme_prefer). logsumexp and cumsum have no block-per-row path
 * yet (one thread walks a whole row: slow for long rows; off the training hot path).
 * Not here: f64, f16 / bf16.
 */
#include "kernels/cuda/common.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/reduce_math.h"

#include <cuda_runtime.h>
#include <math.h>

namespace {

using dvcu::grid_for;
using dvcu::kThreads;

constexpr int64_t kRowMin = 512; /* rows (inner == 1) at least this long: extreme_rows_kernel */

__global__ void extreme_kernel(int is_max, int64_t outer, int64_t n, int64_t inner, const float *__restrict__ x,
                               float *__restrict__ y, int64_t *__restrict__ idx) {
    DV_CU_GRID_STRIDE(p, outer * inner) {
        float best;
        int64_t bi;
        dv_cu_extreme_line_f32(x + (p / inner) * n * inner + p % inner, n, inner, is_max, &best, &bi);
        if (y) y[p] = best;
        if (idx) idx[p] = bi;
    }
}

/* inner == 1, long rows: one block of kThreads per row. Each thread takes the preferred pair
 * of its strided share (ascending indices), then warp shuffles and one shared-memory hop
 * combine them by dv_cu_extreme_prefer — a total order, so the result does not depend on
 * the combination order and is the CPU's. */
__global__ void extreme_rows_kernel(int is_max, int64_t n, const float *__restrict__ x, float *__restrict__ y,
                                    int64_t *__restrict__ idx) {
    __shared__ float sv[32];
    __shared__ long long si[32];
    const float *xr = x + (int64_t)blockIdx.x * n;
    float best = 0.0f;
    long long bi = -1;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        int64_t b64 = bi;
        dv_cu_extreme_take(xr[i], i, &best, &b64, is_max);
        bi = b64;
    }
    for (int o = 16; o > 0; o >>= 1) {
        float v = __shfl_xor_sync(0xffffffffu, best, o);
        long long j = __shfl_xor_sync(0xffffffffu, bi, o);
        int64_t b64 = bi;
        dv_cu_extreme_take(v, j, &best, &b64, is_max);
        bi = b64;
    }
    int lane = threadIdx.x % 32, w = threadIdx.x / 32, nw = blockDim.x / 32;
    if (lane == 0) sv[w] = best, si[w] = bi;
    __syncthreads();
    if (w != 0) return; /* the first warp finishes; no __syncthreads below */
    best = lane < nw ? sv[lane] : 0.0f;
    bi = lane < nw ? si[lane] : -1;
    for (int o = 16; o > 0; o >>= 1) {
        float v = __shfl_xor_sync(0xffffffffu, best, o);
        long long j = __shfl_xor_sync(0xffffffffu, bi, o);
        int64_t b64 = bi;
        dv_cu_extreme_take(v, j, &best, &b64, is_max);
        bi = b64;
    }
    if (lane == 0) {
        if (y) y[blockIdx.x] = best;
        if (idx) idx[blockIdx.x] = bi;
    }
}

__global__ void logsumexp_kernel(int64_t outer, int64_t n, int64_t inner, const float *__restrict__ x,
                                 float *__restrict__ y) {
    DV_CU_GRID_STRIDE(p, outer * inner) y[p] = dv_cu_logsumexp_line_f32(x + (p / inner) * n * inner + p % inner, n, inner);
}

__global__ void cumsum_kernel(int64_t outer, int64_t n, int64_t inner, const float *__restrict__ x,
                              float *__restrict__ y, int reverse) {
    DV_CU_GRID_STRIDE(p, outer * inner) {
        int64_t base = (p / inner) * n * inner + p % inner;
        dv_cu_cumsum_line_f32(x + base, y + base, n, inner, reverse);
    }
}

__global__ void scatter_dim_kernel(int64_t outer, int64_t n, int64_t inner, const int64_t *__restrict__ idx,
                                   const float *__restrict__ g, float *__restrict__ gx) {
    DV_CU_GRID_STRIDE(p, outer * inner) {
        float *gp = gx + (p / inner) * n * inner + p % inner;
        for (int64_t i = 0; i < n; i++) gp[i * inner] = 0.0f;
        gp[idx[p] * inner] = g[p];
    }
}

} // namespace

extern "C" int dv_cu_extreme_f32(int is_max, int64_t outer, int64_t n, int64_t inner, const float *x, float *y,
                                 int64_t *idx, dv_cu_stream stream) {
    if (outer <= 0 || inner <= 0) return 0;
    if (n < 1) return (int)cudaErrorInvalidValue; /* no extreme of an empty line (the CPU op refuses it first) */
    if (inner == 1 && n >= kRowMin && outer <= 2147483647LL) /* argmax over a vocabulary: a block per row */
        extreme_rows_kernel<<<(unsigned)outer, kThreads, 0, (cudaStream_t)stream>>>(is_max, n, x, y, idx);
    else
        extreme_kernel<<<grid_for(outer * inner), kThreads, 0, (cudaStream_t)stream>>>(is_max, outer, n, inner, x,
                                                                                          y, idx);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_logsumexp_f32(int64_t outer, int64_t n, int64_t inner, const float *x, float *y,
                                   dv_cu_stream stream) {
    if (outer <= 0 || inner <= 0) return 0; /* n == 0 is fine: -inf */
    logsumexp_kernel<<<grid_for(outer * inner), kThreads, 0, (cudaStream_t)stream>>>(outer, n, inner, x, y);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_cumsum_f32(int64_t outer, int64_t n, int64_t inner, const float *x, float *y, int reverse,
                                dv_cu_stream stream) {
    if (outer <= 0 || n <= 0 || inner <= 0) return 0;
    cumsum_kernel<<<grid_for(outer * inner), kThreads, 0, (cudaStream_t)stream>>>(outer, n, inner, x, y, reverse);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_scatter_dim_f32(int64_t outer, int64_t n, int64_t inner, const int64_t *idx, const float *g,
                                     float *gx, dv_cu_stream stream) {
    if (outer <= 0 || n <= 0 || inner <= 0) return 0;
    scatter_dim_kernel<<<grid_for(outer * inner), kThreads, 0, (cudaStream_t)stream>>>(outer, n, inner, idx, g, gx);
    return (int)cudaGetLastError();
}
