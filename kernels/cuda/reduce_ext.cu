/* kernels/cuda/reduce_ext.cu — max / min (value and first extreme index), logsumexp, cumsum
 * along one axis of a contiguous (outer, n, inner) f32 block, and the scatter that routes a
 * max / min gradient back to the chosen elements: kernels/reduce_ext.h's contracts on the GPU.
 *
 * One thread per output position (outer * inner of them, grid-stride) runs the CPU's loop
 * over its line (kernels/cuda/reduce_math.h, shared with the host test), reading at stride
 * inner: coalesced across threads when inner > 1, one row per thread when inner == 1. That
 * keeps the results the CPU's bits (first NaN / first extreme wins, cumsum in double) and the
 * order fixed; it is not a fast row reduction (a block-per-row tree would be, for long rows
 * with inner == 1 — these ops are off the training hot path: argmax for decoding, logsumexp
 * and cumsum in small heads). Not here: f64, f16 / bf16.
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
    extreme_kernel<<<grid_for(outer * inner), kThreads, 0, (cudaStream_t)stream>>>(is_max, outer, n, inner, x, y, idx);
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
