/* kernels/cuda/reduce.cu — reductions along an axis (sum / mean / max), softmax and
 * log-softmax, LayerNorm and RMSNorm, forward and backward, f32 (kernels/norm.h and
 * kernels/reduce.h contracts).
 *
 * Row kernels: one block of 256 threads per row; the row is read with a block-stride loop,
 * sums go through warp shuffles and one shared-memory hop (block_sum). A row is read twice
 * (statistics, then output) — the second read mostly hits L2 for rows up to a few MB.
 * Statistics are f32 (the CPU kernels use double); LayerNorm's variance is two-pass as on the
 * CPU. mean / rstd are stored as double to share the CPU's saved-tensor layout.
 * Weight gradients of the norms are column sums over rows: per-chunk partial sums into a work
 * buffer, then one pass over the chunks, so the result does not depend on scheduling.
 * Not here: fused residual + norm, f16/bf16 rows, rows longer than 2^31 elements.
 */
#include "kernels/cuda/common.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.cuh"

#include <cuda_runtime.h>
#include <math.h>

namespace {

constexpr int kThreads = 256;
constexpr int kChunks = 128; /* row chunks of the weight-gradient partial sums */

using dvcu::block_max; /* kernels/cuda/launch.cuh */
using dvcu::block_sum;

/* inner == 1: one block per row */
__global__ void reduce_rows(dv_cu_reduce kind, int64_t n, const float *__restrict__ x, float *__restrict__ y) {
    __shared__ float sh[32];
    const float *xr = x + blockIdx.x * n;
    float acc = kind == DV_CU_REDUCE_MAX ? -INFINITY : 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        acc = kind == DV_CU_REDUCE_MAX ? fmaxf(acc, xr[i]) : acc + xr[i];
    acc = kind == DV_CU_REDUCE_MAX ? block_max(acc, sh) : block_sum(acc, sh);
    if (threadIdx.x == 0) y[blockIdx.x] = kind == DV_CU_REDUCE_MEAN ? acc / (float)n : acc;
}

/* inner > 1: one thread per output, walking n with stride inner (coalesced across inner) */
__global__ void reduce_strided(dv_cu_reduce kind, int64_t outer, int64_t n, int64_t inner,
                               const float *__restrict__ x, float *__restrict__ y) {
    int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (o >= outer * inner) return;
    int64_t a = o / inner, c = o % inner;
    const float *p = x + a * n * inner + c;
    float acc = kind == DV_CU_REDUCE_MAX ? -INFINITY : 0.0f;
    for (int64_t i = 0; i < n; i++) acc = kind == DV_CU_REDUCE_MAX ? fmaxf(acc, p[i * inner]) : acc + p[i * inner];
    y[o] = kind == DV_CU_REDUCE_MEAN ? acc / (float)n : acc;
}

__global__ void softmax_fwd(bool lg, int64_t n, const float *__restrict__ x, float *__restrict__ y) {
    __shared__ float sh[32];
    const float *xr = x + blockIdx.x * n;
    float *yr = y + blockIdx.x * n;
    float mx = -INFINITY;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) mx = fmaxf(mx, xr[i]);
    mx = block_max(mx, sh);
    float s = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += expf(xr[i] - mx);
    s = block_sum(s, sh);
    if (lg) {
        float lse = mx + logf(s);
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = xr[i] - lse;
    } else {
        float inv = 1.0f / s;
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = expf(xr[i] - mx) * inv;
    }
}

__global__ void softmax_bwd(bool lg, int64_t n, const float *__restrict__ y, const float *__restrict__ gy,
                            float *__restrict__ gx) {
    __shared__ float sh[32];
    const float *yr = y + blockIdx.x * n, *gr = gy + blockIdx.x * n;
    float *xr = gx + blockIdx.x * n;
    float s = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += lg ? gr[i] : gr[i] * yr[i];
    s = block_sum(s, sh);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        xr[i] = lg ? gr[i] - expf(yr[i]) * s : yr[i] * (gr[i] - s);
}

/* rms = false: LayerNorm; true: RMSNorm (no mean, no bias) */
__global__ void norm_fwd(bool rms, int64_t n, const float *__restrict__ x, const float *__restrict__ w,
                         const float *__restrict__ b, float eps, float *__restrict__ y,
                         double *__restrict__ mean_out, double *__restrict__ rstd_out) {
    __shared__ float sh[32];
    const float *xr = x + blockIdx.x * n;
    float *yr = y + blockIdx.x * n;
    float mean = 0;
    if (!rms) {
        float s = 0;
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += xr[i];
        mean = block_sum(s, sh) / (float)n;
    }
    float q = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        float d = xr[i] - mean;
        q += d * d;
    }
    float rstd = rsqrtf(block_sum(q, sh) / (float)n + eps);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        float v = (xr[i] - mean) * rstd;
        if (w) v *= w[i];
        if (b) v += b[i];
        yr[i] = v;
    }
    if (threadIdx.x == 0) {
        if (mean_out) mean_out[blockIdx.x] = mean;
        if (rstd_out) rstd_out[blockIdx.x] = rstd;
    }
}

/* gx of LayerNorm (rms = false) or RMSNorm; mean is NULL for RMSNorm.
 *   LN:  gx = rstd * (g - mean(g) - xhat * mean(g * xhat)),   xhat = (x - mean) rstd
 *   RMS: gx = rstd * (g - xhat * mean(g * xhat)),              xhat = x rstd
 * (the RMSNorm form is kernels/norm.h's g - x rstd^2 mean(g x), rearranged) */
__global__ void norm_bwd_dx(bool rms, int64_t n, const float *__restrict__ x, const float *__restrict__ w,
                            const double *__restrict__ mean, const double *__restrict__ rstd_in,
                            const float *__restrict__ gy, float *__restrict__ gx) {
    __shared__ float sh[32];
    int64_t r = blockIdx.x;
    const float *xr = x + r * n, *gr = gy + r * n;
    float mu = rms ? 0.0f : (float)mean[r], rstd = (float)rstd_in[r];
    float sg = 0, sgx = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        float g = w ? gr[i] * w[i] : gr[i];
        sg += g;
        sgx += g * (xr[i] - mu) * rstd;
    }
    float mg = rms ? 0.0f : block_sum(sg, sh) / (float)n;
    float mgx = block_sum(sgx, sh) / (float)n;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        float g = w ? gr[i] * w[i] : gr[i];
        gx[r * n + i] = rstd * (g - mg - (xr[i] - mu) * rstd * mgx);
    }
}

/* partial column sums over the rows of chunk blockIdx.y: pw[chunk][c] = sum gy * xhat,
 * pb[chunk][c] = sum gy (pb may be NULL) */
__global__ void norm_bwd_dw_partial(bool rms, int64_t rows, int64_t n, int64_t rows_per_chunk,
                                    const float *__restrict__ x, const double *__restrict__ mean,
                                    const double *__restrict__ rstd, const float *__restrict__ gy,
                                    float *__restrict__ pw, float *__restrict__ pb) {
    int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (c >= n) return;
    int64_t r0 = blockIdx.y * rows_per_chunk, r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
    float sw = 0, sb = 0;
    for (int64_t r = r0; r < r1; r++) {
        float g = gy[r * n + c];
        float mu = rms ? 0.0f : (float)mean[r];
        sw += g * (x[r * n + c] - mu) * (float)rstd[r];
        sb += g;
    }
    pw[blockIdx.y * n + c] = sw;
    if (pb) pb[blockIdx.y * n + c] = sb;
}

__global__ void sum_chunks(int64_t nchunks, int64_t n, const float *__restrict__ p, float *__restrict__ out) {
    int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (c >= n) return;
    float s = 0;
    for (int64_t k = 0; k < nchunks; k++) s += p[k * n + c];
    out[c] = s;
}

inline int64_t nchunks_for(int64_t rows) { return rows < kChunks ? (rows > 0 ? rows : 1) : kChunks; }

int norm_bwd(bool rms, int64_t rows, int64_t n, const float *x, const float *w, const double *mean,
             const double *rstd, const float *gy, float *gx, float *gw, float *gb, void *work,
             cudaStream_t s) {
    if (n <= 0) return 0;
    if (rows <= 0) { /* no rows: the weight gradients are empty sums, 0 as on the CPU */
        cudaError_t e = cudaSuccess;
        if (gw) e = cudaMemsetAsync(gw, 0, (size_t)n * sizeof(float), s);
        if (gb && e == cudaSuccess) e = cudaMemsetAsync(gb, 0, (size_t)n * sizeof(float), s);
        return (int)e;
    }
    if (rows > 2147483647LL) return (int)cudaErrorInvalidValue;
    if (gx) norm_bwd_dx<<<(unsigned)rows, kThreads, 0, s>>>(rms, n, x, w, mean, rstd, gy, gx);
    if (gw || gb) {
        int64_t nch = nchunks_for(rows), per = (rows + nch - 1) / nch;
        float *pw = (float *)work, *pb = gb ? pw + nch * n : nullptr;
        dim3 grid((unsigned)((n + kThreads - 1) / kThreads), (unsigned)nch);
        norm_bwd_dw_partial<<<grid, kThreads, 0, s>>>(rms, rows, n, per, x, mean, rstd, gy, pw, pb);
        unsigned g1 = (unsigned)((n + kThreads - 1) / kThreads);
        if (gw) sum_chunks<<<g1, kThreads, 0, s>>>(nch, n, pw, gw);
        if (gb) sum_chunks<<<g1, kThreads, 0, s>>>(nch, n, pb, gb);
    }
    return (int)cudaGetLastError();
}

} // namespace

extern "C" int dv_cu_reduce_f32(dv_cu_reduce kind, int64_t outer, int64_t n, int64_t inner,
                                const float *x, float *y, dv_cu_stream stream) {
    cudaStream_t s = (cudaStream_t)stream;
    if (outer <= 0 || inner <= 0) return 0;
    if (inner == 1) {
        if (outer > 2147483647LL) return (int)cudaErrorInvalidValue;
        reduce_rows<<<(unsigned)outer, kThreads, 0, s>>>(kind, n, x, y);
    } else {
        int64_t m = outer * inner;
        reduce_strided<<<(unsigned)((m + kThreads - 1) / kThreads), kThreads, 0, s>>>(kind, outer, n, inner, x, y);
    }
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_softmax_fwd_f32(bool log, int64_t rows, int64_t n, const float *x, float *y,
                                     dv_cu_stream stream) {
    if (rows <= 0 || n <= 0) return 0;
    if (rows > 2147483647LL) return (int)cudaErrorInvalidValue;
    softmax_fwd<<<(unsigned)rows, kThreads, 0, (cudaStream_t)stream>>>(log, n, x, y);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_softmax_bwd_f32(bool log, int64_t rows, int64_t n, const float *y,
                                     const float *gy, float *gx, dv_cu_stream stream) {
    if (rows <= 0 || n <= 0) return 0;
    if (rows > 2147483647LL) return (int)cudaErrorInvalidValue;
    softmax_bwd<<<(unsigned)rows, kThreads, 0, (cudaStream_t)stream>>>(log, n, y, gy, gx);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_layernorm_fwd_f32(int64_t rows, int64_t n, const float *x, const float *w,
                                       const float *b, double eps, float *y, double *mean,
                                       double *rstd, dv_cu_stream stream) {
    if (rows <= 0 || n <= 0) return 0;
    if (rows > 2147483647LL) return (int)cudaErrorInvalidValue;
    norm_fwd<<<(unsigned)rows, kThreads, 0, (cudaStream_t)stream>>>(false, n, x, w, b, (float)eps, y, mean, rstd);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_rmsnorm_fwd_f32(int64_t rows, int64_t n, const float *x, const float *w,
                                     double eps, float *y, double *rstd, dv_cu_stream stream) {
    if (rows <= 0 || n <= 0) return 0;
    if (rows > 2147483647LL) return (int)cudaErrorInvalidValue;
    norm_fwd<<<(unsigned)rows, kThreads, 0, (cudaStream_t)stream>>>(true, n, x, w, nullptr, (float)eps, y, nullptr, rstd);
    return (int)cudaGetLastError();
}

extern "C" size_t dv_cu_norm_work_bytes(int64_t rows, int64_t n) {
    return (size_t)(2 * nchunks_for(rows) * n) * sizeof(float);
}

extern "C" int dv_cu_layernorm_bwd_f32(int64_t rows, int64_t n, const float *x, const float *w,
                                       const double *mean, const double *rstd, const float *gy,
                                       float *gx, float *gw, float *gb, void *work,
                                       dv_cu_stream stream) {
    return norm_bwd(false, rows, n, x, w, mean, rstd, gy, gx, gw, gb, work, (cudaStream_t)stream);
}

extern "C" int dv_cu_rmsnorm_bwd_f32(int64_t rows, int64_t n, const float *x, const float *w,
                                     const double *rstd, const float *gy, float *gx, float *gw,
                                     void *work, dv_cu_stream stream) {
    return norm_bwd(true, rows, n, x, w, nullptr, rstd, gy, gx, gw, nullptr, work, (cudaStream_t)stream);
}
