/* kernels/cuda/modulate.cu — adaLN / FiLM conditioning on the GPU, f32: kernels/modulate.h's
 * contract (modulate and its backward, fused layer norm + modulate and its backward, the gated
 * residual). Tokens (B, T, C) contiguous, per-sample parameters (B, C).
 *
 * Elementwise parts (y, gx of modulate, the gated residual): one thread per element,
 * grid-stride. Layer norm rows: one block of 256 threads per token (block sums through warp
 * shuffles, dvcu::block_sum), two passes over the row for the mean and the variance as on
 * the CPU. The per-sample parameter gradients (gshift, gscale: sums over the T tokens of a
 * sample) are one thread per (b, c) walking t in order — coalesced across c, no atomics,
 * deterministic, the CPU's summation order.
 * Not here: f16 / bf16, fusing the modulate into the following GEMM.
 */
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.cuh"

namespace {

using dvcu::kThreads;

__global__ void modulate_fwd(int64_t n, int64_t TC, int64_t C, const float *__restrict__ x,
                             const float *__restrict__ shift, const float *__restrict__ scale, float one,
                             float *__restrict__ y) {
    DV_CU_GRID_STRIDE(e, n) {
        int64_t pc = (e / TC) * C + e % C; /* (b, c) */
        y[e] = x[e] * (one + scale[pc]) + (shift ? shift[pc] : 0.0f);
    }
}

__global__ void modulate_gx(int64_t n, int64_t TC, int64_t C, const float *__restrict__ scale, float one,
                            const float *__restrict__ g, float *__restrict__ gx) {
    DV_CU_GRID_STRIDE(e, n) gx[e] = g[e] * (one + scale[(e / TC) * C + e % C]);
}

/* gshift[b, c] = sum_t g, gscale[b, c] = sum_t g * xhat, xhat = x (mean NULL) or
 * (x - mean[r]) rstd[r]; either output may be NULL */
__global__ void param_grads(int64_t B, int64_t T, int64_t C, const float *__restrict__ x,
                            const float *__restrict__ mean, const float *__restrict__ rstd,
                            const float *__restrict__ g, float *__restrict__ gshift, float *__restrict__ gscale) {
    int64_t pc = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (pc >= B * C) return;
    int64_t b = pc / C, c = pc % C;
    float ssh = 0.0f, ssc = 0.0f;
    for (int64_t t = 0; t < T; t++) {
        int64_t r = b * T + t, e = r * C + c;
        float gv = g[e];
        ssh += gv;
        if (gscale) ssc += mean ? gv * (x[e] - mean[r]) * rstd[r] : gv * x[e];
    }
    if (gshift) gshift[pc] = ssh;
    if (gscale) gscale[pc] = ssc;
}

__global__ void ln_modulate_fwd(int64_t T, int64_t C, const float *__restrict__ x, const float *__restrict__ shift,
                                const float *__restrict__ scale, float eps, float *__restrict__ y,
                                float *__restrict__ mean, float *__restrict__ rstd) {
    __shared__ float sh[32];
    int64_t r = blockIdx.x, b = r / T;
    const float *xr = x + r * C, *sc = scale + b * C, *sf = shift + b * C;
    float *yr = y + r * C;
    float s = 0.0f;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += xr[c];
    float m = dvcu::block_sum(s, sh) / (float)C;
    float q = 0.0f;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) q += (xr[c] - m) * (xr[c] - m);
    float rs = 1.0f / sqrtf(dvcu::block_sum(q, sh) / (float)C + eps);
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) yr[c] = (xr[c] - m) * rs * (1.0f + sc[c]) + sf[c];
    if (threadIdx.x == 0) mean[r] = m, rstd[r] = rs;
}

/* gx = rstd (gh - mean(gh) - xhat mean(gh xhat)), gh = g (1 + scale) */
__global__ void ln_modulate_gx(int64_t T, int64_t C, const float *__restrict__ x, const float *__restrict__ mean,
                               const float *__restrict__ rstd, const float *__restrict__ scale,
                               const float *__restrict__ g, float *__restrict__ gx) {
    __shared__ float sh[32];
    int64_t r = blockIdx.x, b = r / T;
    const float *xr = x + r * C, *gr = g + r * C, *sc = scale + b * C;
    float m = mean[r], rs = rstd[r], s1 = 0.0f, s2 = 0.0f;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
        float gh = gr[c] * (1.0f + sc[c]);
        s1 += gh;
        s2 += gh * (xr[c] - m) * rs;
    }
    s1 = dvcu::block_sum(s1, sh) / (float)C;
    s2 = dvcu::block_sum(s2, sh) / (float)C;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
        gx[r * C + c] = rs * (gr[c] * (1.0f + sc[c]) - s1 - (xr[c] - m) * rs * s2);
}

__global__ void gated_fwd(int64_t n, int64_t TC, int64_t C, const float *__restrict__ x,
                          const float *__restrict__ gate, const float *__restrict__ h, float *__restrict__ y) {
    DV_CU_GRID_STRIDE(e, n) y[e] = x[e] + gate[(e / TC) * C + e % C] * h[e];
}

inline unsigned blocks_for(int64_t n) { return (unsigned)((n + kThreads - 1) / kThreads); }

} // namespace

extern "C" int dv_cu_modulate_f32(int64_t B, int64_t T, int64_t C, const float *x, const float *shift,
                                  const float *scale, float one, float *y, dv_cu_stream stream) {
    int64_t n = B * T * C;
    if (n <= 0) return 0;
    modulate_fwd<<<dvcu::grid_for(n), kThreads, 0, (cudaStream_t)stream>>>(n, T * C, C, x, shift, scale, one, y);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_modulate_bwd_f32(int64_t B, int64_t T, int64_t C, const float *x, const float *scale, float one,
                                      const float *g, float *gx, float *gshift, float *gscale, dv_cu_stream stream) {
    cudaStream_t s = (cudaStream_t)stream;
    int64_t n = B * T * C;
    if (B * C <= 0) return 0;
    if (gx && n > 0) modulate_gx<<<dvcu::grid_for(n), kThreads, 0, s>>>(n, T * C, C, scale, one, g, gx);
    if (gshift || gscale)
        param_grads<<<blocks_for(B * C), kThreads, 0, s>>>(B, T, C, x, nullptr, nullptr, g, gshift, gscale);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_ln_modulate_f32(int64_t B, int64_t T, int64_t C, const float *x, const float *shift,
                                     const float *scale, double eps, float *y, float *mean, float *rstd,
                                     dv_cu_stream stream) {
    int64_t rows = B * T;
    if (rows <= 0 || C <= 0) return 0;
    if (rows > 2147483647LL) return (int)cudaErrorInvalidValue;
    ln_modulate_fwd<<<(unsigned)rows, kThreads, 0, (cudaStream_t)stream>>>(T, C, x, shift, scale, (float)eps, y, mean,
                                                                           rstd);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_ln_modulate_bwd_f32(int64_t B, int64_t T, int64_t C, const float *x, const float *mean,
                                         const float *rstd, const float *scale, const float *g, float *gx,
                                         float *gshift, float *gscale, dv_cu_stream stream) {
    cudaStream_t s = (cudaStream_t)stream;
    int64_t rows = B * T;
    if (B * C <= 0) return 0;
    if (rows > 2147483647LL) return (int)cudaErrorInvalidValue;
    if (gx && rows > 0) ln_modulate_gx<<<(unsigned)rows, kThreads, 0, s>>>(T, C, x, mean, rstd, scale, g, gx);
    if (gshift || gscale)
        param_grads<<<blocks_for(B * C), kThreads, 0, s>>>(B, T, C, x, mean, rstd, g, gshift, gscale);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_gated_residual_f32(int64_t B, int64_t T, int64_t C, const float *x, const float *gate,
                                        const float *h, float *y, dv_cu_stream stream) {
    int64_t n = B * T * C;
    if (n <= 0) return 0;
    gated_fwd<<<dvcu::grid_for(n), kThreads, 0, (cudaStream_t)stream>>>(n, T * C, C, x, gate, h, y);
    return (int)cudaGetLastError();
}
