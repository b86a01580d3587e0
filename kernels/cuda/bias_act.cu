/* kernels/cuda/bias_act.cu — fused bias + activation on the GPU, f32: kernels/bias_act.h's
 * contract (forward y = act(x + b); backward gx = gy act'(x + b), gb = column sums of gx).
 *
 * Forward and gx: one thread per element, grid-stride. gb: the rows are cut into the same
 * fixed blocks as the CPU kernel (dv_bias_act_blocks: at most 64); one thread per (column,
 * block) sums its block's rows in order into a work buffer, and a second kernel adds the
 * blocks in order — so the summation order is the CPU's, and the result does not depend on
 * scheduling. The activation and its derivative are dv_cu_act / dv_cu_dact
 * (kernels/cuda/nn_math.h), shared with the host test.
 * gx may alias gy: the column sums are taken first (from gy), then gx overwrites.
 * Not here: f16 / bf16, fusing into the GEMM epilogue.
 */
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/nn_math.h"

namespace {

__global__ void bias_act_fwd_kernel(dv_bias_act_kind act, int64_t n, int64_t N, const float *__restrict__ x,
                                    const float *__restrict__ b, float *__restrict__ y) {
    DV_CU_GRID_STRIDE(e, n) y[e] = dv_cu_act(act, x[e] + (b ? b[e % N] : 0.0f));
}

/* no __restrict__ on gy / gx: they may alias */
__global__ void bias_act_gx_kernel(dv_bias_act_kind act, int64_t n, int64_t N, const float *__restrict__ x,
                                   const float *__restrict__ b, const float *gy, float *gx) {
    DV_CU_GRID_STRIDE(e, n) gx[e] = gy[e] * dv_cu_dact(act, x[e] + (b ? b[e % N] : 0.0f));
}

/* part[k][c] = sum over rows r of block k (in order) of gy[r, c] act'(x[r, c] + b[c]) */
__global__ void bias_act_gb_partial(dv_bias_act_kind act, int64_t R, int64_t N, int64_t per,
                                    const float *__restrict__ x, const float *__restrict__ b,
                                    const float *__restrict__ gy, float *__restrict__ part) {
    int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (c >= N) return;
    int64_t k = blockIdx.y, r0 = k * per, r1 = r0 + per < R ? r0 + per : R;
    float bc = b ? b[c] : 0.0f, s = 0.0f;
    for (int64_t r = r0; r < r1; r++) s += gy[r * N + c] * dv_cu_dact(act, x[r * N + c] + bc);
    part[k * N + c] = s;
}

__global__ void sum_blocks(int64_t nb, int64_t N, const float *__restrict__ part, float *__restrict__ out) {
    int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (c >= N) return;
    float s = 0.0f;
    for (int64_t k = 0; k < nb; k++) s += part[k * N + c];
    out[c] = s;
}

} // namespace

extern "C" int dv_cu_bias_act_fwd_f32(dv_bias_act_kind act, int64_t R, int64_t N, const float *x, const float *b,
                                      float *y, dv_cu_stream stream) {
    int64_t n = R * N;
    if (n <= 0) return 0;
    bias_act_fwd_kernel<<<dvcu::grid_for(n), dvcu::kThreads, 0, (cudaStream_t)stream>>>(act, n, N, x, b, y);
    return (int)cudaGetLastError();
}

extern "C" size_t dv_cu_bias_act_work_bytes(int64_t R, int64_t N) {
    int64_t per, nb = dv_bias_act_blocks(R, &per);
    return (size_t)(nb * (N > 0 ? N : 1)) * sizeof(float);
}

extern "C" int dv_cu_bias_act_bwd_f32(dv_bias_act_kind act, int64_t R, int64_t N, const float *x, const float *b,
                                      const float *gy, float *gx, float *gb, void *work, dv_cu_stream stream) {
    cudaStream_t s = (cudaStream_t)stream;
    if (N <= 0) return 0;
    if (gb) {
        if (R <= 0) {
            cudaError_t e = cudaMemsetAsync(gb, 0, (size_t)N * sizeof(float), s);
            if (e != cudaSuccess) return (int)e;
        } else {
            int64_t per, nb = dv_bias_act_blocks(R, &per);
            unsigned gx_blocks = (unsigned)((N + dvcu::kThreads - 1) / dvcu::kThreads);
            bias_act_gb_partial<<<dim3(gx_blocks, (unsigned)nb), dvcu::kThreads, 0, s>>>(act, R, N, per, x, b, gy,
                                                                                         (float *)work);
            sum_blocks<<<gx_blocks, dvcu::kThreads, 0, s>>>(nb, N, (const float *)work, gb);
        }
    }
    if (gx && R > 0)
        bias_act_gx_kernel<<<dvcu::grid_for(R * N), dvcu::kThreads, 0, s>>>(act, R * N, N, x, b, gy, gx);
    return (int)cudaGetLastError();
}
