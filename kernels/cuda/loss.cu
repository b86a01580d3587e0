/* kernels/cuda/loss.cu — the fused losses of tensor/ops_loss.c on the GPU, f32: binary
 * cross-entropy with logits and cross-entropy (fused log-softmax + NLL), forward to a 0-d
 * result and backward (kernels/norm.h's formulas).
 *
 * Sums to a scalar are deterministic: a fixed grid of kSumBlocks blocks reduces its
 * grid-stride share in double (warp shuffles, one shared-memory hop), and one block adds the
 * block sums in order; the result is multiplied by mul (1 / count) and stored as f32.
 * Cross-entropy rows: one block per row (max, then the sum of exp in f32), lse stored as
 * double as the CPU keeps it. The backward kernels read the upstream gradient from device
 * memory (gscale[0] * mul), so nothing synchronises with the host.
 * Not here: label smoothing, class weights, reductions other than the mean.
 */
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.cuh"

#include <math.h>

namespace {

using dvcu::kThreads;
constexpr int kSumBlocks = 256;

__device__ __forceinline__ double warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* the block's sum of v, valid in thread 0 */
__device__ double block_sum_d(double v) {
    __shared__ double sh[32];
    int lane = threadIdx.x % 32, w = threadIdx.x / 32, nw = blockDim.x / 32;
    v = warp_sum_d(v);
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = threadIdx.x < nw ? sh[threadIdx.x] : 0.0;
    if (w == 0) v = warp_sum_d(v);
    return v;
}

/* the BCE term of kernels/norm_impl.h: max(x, 0) - x t + log1p(exp(-|x|)) */
__device__ __forceinline__ double bce_term(float v, float t) {
    return (double)(v > 0 ? v : 0.0f) - (double)v * t + log1pf(expf(-fabsf(v)));
}

/* part[block] = sum over its share of the terms (kind 0: bce of x, t; kind 1: x itself) */
__global__ void partial_sums(int kind, int64_t n, const float *__restrict__ x, const float *__restrict__ t,
                             double *__restrict__ part) {
    double s = 0.0;
    DV_CU_GRID_STRIDE(i, n) s += kind == 0 ? bce_term(x[i], t[i]) : (double)x[i];
    s = block_sum_d(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

__global__ void finish_sum(int nparts, const double *__restrict__ part, double mul, float *__restrict__ y) {
    if (threadIdx.x == 0 && blockIdx.x == 0) {
        double s = 0.0;
        for (int k = 0; k < nparts; k++) s += part[k];
        y[0] = (float)(s * mul);
    }
}

__global__ void bce_bwd(int64_t n, const float *__restrict__ x, const float *__restrict__ t,
                        const float *__restrict__ gscale, double mul, float *__restrict__ gx, float *__restrict__ gt) {
    double scale = (double)gscale[0] * mul;
    DV_CU_GRID_STRIDE(i, n) {
        float v = x[i];
        if (gx) {
            float e = expf(-fabsf(v));
            float s = v >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e);
            gx[i] = (float)(scale * (s - t[i]));
        }
        if (gt) gt[i] = (float)(-scale * v);
    }
}

__global__ void ce_fwd(int64_t n, const float *__restrict__ x, const int64_t *__restrict__ target, int64_t ignore,
                       float *__restrict__ loss, double *__restrict__ lse) {
    __shared__ float sh[32];
    int64_t r = blockIdx.x, tr = target[r];
    if (tr == ignore) { /* uniform across the block: no thread reaches a barrier below */
        if (threadIdx.x == 0) loss[r] = 0.0f, lse[r] = 0.0;
        return;
    }
    const float *xr = x + r * n;
    float m = -INFINITY;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, xr[i]);
    /* block max through the same shared buffer as the sums */
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    if (threadIdx.x % 32 == 0) sh[threadIdx.x / 32] = m;
    __syncthreads();
    m = threadIdx.x % 32 < blockDim.x / 32 ? sh[threadIdx.x % 32] : -INFINITY;
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    float s = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += expf(xr[i] - m);
    s = dvcu::block_sum(s, sh);
    if (threadIdx.x == 0) {
        double l = (double)m + log((double)s);
        lse[r] = l;
        loss[r] = (float)(l - xr[tr]);
    }
}

__global__ void ce_bwd(int64_t total, int64_t n, const float *__restrict__ x, const int64_t *__restrict__ target,
                       int64_t ignore, const double *__restrict__ lse, const float *__restrict__ gscale, double mul,
                       float *__restrict__ gx) {
    double scale = (double)gscale[0] * mul;
    DV_CU_GRID_STRIDE(e, total) {
        int64_t r = e / n, c = e % n, tr = target[r];
        if (tr == ignore) { gx[e] = 0.0f; continue; }
        double z = (double)x[e] - lse[r];
        gx[e] = (float)(c == tr ? scale * expm1(z) : scale * exp(z));
    }
}

unsigned sum_blocks(int64_t n) {
    int64_t b = (n + kThreads - 1) / kThreads;
    return (unsigned)(b < 1 ? 1 : b > kSumBlocks ? kSumBlocks : b);
}

} // namespace

extern "C" size_t dv_cu_loss_work_bytes(void) { return (size_t)kSumBlocks * sizeof(double); }

extern "C" int dv_cu_bce_logits_f32(int64_t n, const float *x, const float *t, double mul, float *y, void *work,
                                    dv_cu_stream stream) {
    cudaStream_t s = (cudaStream_t)stream;
    unsigned nb = sum_blocks(n);
    partial_sums<<<nb, kThreads, 0, s>>>(0, n, x, t, (double *)work);
    finish_sum<<<1, 32, 0, s>>>((int)nb, (const double *)work, mul, y);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_bce_logits_bwd_f32(int64_t n, const float *x, const float *t, const float *gscale, double mul,
                                        float *gx, float *gt, dv_cu_stream stream) {
    if (n <= 0) return 0;
    bce_bwd<<<dvcu::grid_for(n), kThreads, 0, (cudaStream_t)stream>>>(n, x, t, gscale, mul, gx, gt);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_cross_entropy_f32(int64_t rows, int64_t n, const float *x, const int64_t *target, int64_t ignore,
                                       double mul, float *loss, double *lse, float *y, void *work,
                                       dv_cu_stream stream) {
    cudaStream_t s = (cudaStream_t)stream;
    if (rows > 2147483647LL) return (int)cudaErrorInvalidValue;
    if (rows > 0 && n > 0) ce_fwd<<<(unsigned)rows, kThreads, 0, s>>>(n, x, target, ignore, loss, lse);
    unsigned nb = sum_blocks(rows);
    if (rows > 0 && n > 0) partial_sums<<<nb, kThreads, 0, s>>>(1, rows, loss, nullptr, (double *)work);
    else {
        cudaError_t e = cudaMemsetAsync(work, 0, sizeof(double), s);
        if (e != cudaSuccess) return (int)e;
        nb = 1;
    }
    finish_sum<<<1, 32, 0, s>>>((int)nb, (const double *)work, mul, y);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_cross_entropy_bwd_f32(int64_t rows, int64_t n, const float *x, const int64_t *target,
                                           int64_t ignore, const double *lse, const float *gscale, double mul,
                                           float *gx, dv_cu_stream stream) {
    int64_t total = rows * n;
    if (total <= 0) return 0;
    ce_bwd<<<dvcu::grid_for(total), kThreads, 0, (cudaStream_t)stream>>>(total, n, x, target, ignore, lse, gscale, mul,
                                                                         gx);
    return (int)cudaGetLastError();
}
