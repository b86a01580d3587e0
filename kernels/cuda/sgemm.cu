/* kernels/cuda/sgemm.cu — f32 GEMM on the CUDA cores (kernels/gemm.h contract: all four
 * transpose layouts, alpha / beta, beta == 0 does not read C), so that f32 layers — the
 * policy's trainable weights and their gradients — run on the GPU.
 *
 * The classic shared-memory tiling: a block of 256 threads computes a 64 x 64 tile of C, K
 * advancing 16 at a time; both tiles are stored k-major (As[k][m], Bs[k][n], rows padded by 4)
 * whatever the global layout, and each thread accumulates a 4 x 4 sub-tile in registers from
 * 4 + 4 shared loads per k. Plain and correct first; it reaches a fraction of the FP32 peak.
 * Not here: TF32 tensor cores (the issue's option for f32 inputs), register double buffering,
 * vector loads, split-K.
 */
#include "kernels/cuda/common.h"
#include "kernels/cuda/kernels.h"

#include <cuda_runtime.h>

namespace {

constexpr int TM = 64, TN = 64, TK = 16, NT = 256, PAD = 4;

template <bool TA, bool TB>
__global__ void __launch_bounds__(NT) sgemm(int64_t M, int64_t N, int64_t K, float alpha, const float *__restrict__ A,
                                            int64_t lda, const float *__restrict__ B, int64_t ldb, float beta,
                                            float *__restrict__ C, int64_t ldc) {
    __shared__ float As[TK][TM + PAD], Bs[TK][TN + PAD];
    const int t = threadIdx.x, tx = t % 16, ty = t / 16;
    const int64_t m0 = (int64_t)blockIdx.y * TM, n0 = (int64_t)blockIdx.x * TN;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;

    for (int64_t k0 = 0; k0 < K; k0 += TK) {
#pragma unroll
        for (int u = 0; u < TM * TK / NT; u++) {
            int e = t + u * NT;
            /* A element (m, k) of the tile; consecutive threads walk the stored-contiguous dim */
            int m = TA ? e % TM : e / TK, k = TA ? e / TM : e % TK;
            int64_t gm = m0 + m, gk = k0 + k;
            As[k][m] = (gm < M && gk < K) ? (TA ? A[gk * lda + gm] : A[gm * lda + gk]) : 0.0f;
            int n = TB ? e / TK : e % TN, kb = TB ? e % TK : e / TN;
            int64_t gn = n0 + n, gkb = k0 + kb;
            Bs[kb][n] = (gn < N && gkb < K) ? (TB ? B[gn * ldb + gkb] : B[gkb * ldb + gn]) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < TK; kk++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) a[i] = As[kk][ty * 4 + i];
#pragma unroll
            for (int j = 0; j < 4; j++) b[j] = Bs[kk][tx * 4 + j];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int64_t m = m0 + ty * 4 + i, n = n0 + tx * 4 + j;
            if (m < M && n < N) {
                float v = alpha * acc[i][j];
                if (beta != 0.0f) v += beta * C[m * ldc + n];
                C[m * ldc + n] = v;
            }
        }
}

} // namespace

extern "C" int dv_cu_gemm_f32(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                              int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc,
                              dv_cu_stream stream) {
    if (M < 0 || N < 0 || K < 0) return (int)cudaErrorInvalidValue;
    if (M == 0 || N == 0) return 0;
    if ((M + TM - 1) / TM > 65535) return (int)cudaErrorInvalidValue;
    dim3 grid((unsigned)((N + TN - 1) / TN), (unsigned)((M + TM - 1) / TM));
    cudaStream_t s = (cudaStream_t)stream;
    if (!ta && !tb) sgemm<false, false><<<grid, NT, 0, s>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else if (!ta && tb) sgemm<false, true><<<grid, NT, 0, s>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else if (ta && !tb) sgemm<true, false><<<grid, NT, 0, s>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else sgemm<true, true><<<grid, NT, 0, s>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return (int)cudaGetLastError();
}
