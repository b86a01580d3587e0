/* kernels/cuda/sgemm_tf32.cu — f32 GEMM through the TF32 tensor cores (mma.sync.m16n8k8
 * .tf32, sm_80+), kernels/gemm.h's contract for one matrix: all four transpose layouts,
 * alpha / beta, beta == 0 does not read C.
 *
 * The inputs are rounded to TF32 (10 mantissa bits, cvt.rna) as they enter the tensor cores;
 * products accumulate in f32. That is PyTorch's allow_tf32: about 3 decimal digits per
 * operand instead of 7, and several times the FP32 throughput. It is therefore an OPTION,
 * off by default (tensor/cuda.h dv_cuda_set_tf32, or DV_CUDA_TF32=1); the default f32 GEMM
 * is sgemm.cu on the CUDA cores.
 *
 * Tiles (kernels/cuda/common.h, checked on the host by tests/test_cuda_host_ops.c): a block
 * of 128 threads computes 64 x 64 of C, K 16 at a time staged in shared memory k-contiguous
 * (As[m][k], Bs[n][k], padded rows); each warp owns 32 x 32 = 2 x 4 mma tiles.
 * Not here: cp.async double buffering, vector loads, split-K, 3xTF32 error compensation.
 */
#include "kernels/cuda/common.h"
#include "kernels/cuda/kernels.h"

#include <cuda_runtime.h>

namespace {

constexpr int BM = DV_CU_TF32_BM, BN = DV_CU_TF32_BN, BK = DV_CU_TF32_BK, NT = DV_CU_TF32_THREADS,
              SK = DV_CU_TF32_SK;
static_assert(BM == BN, "one loader map serves both operands");
static_assert(BM * BK == 8 * NT, "8 elements of each operand per thread and k tile");

__device__ __forceinline__ uint32_t to_tf32(float x) {
#ifdef DV_SIMT /* the CPU emulator of `make test-cuda-sim` (tests/simt/simt.h) */
    return dv_simt::cvt_rna_tf32(x);
#else
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
#endif
}

__device__ __forceinline__ void mma_tf32(float d[4], const uint32_t a[4], const uint32_t b[2]) {
#ifdef DV_SIMT
    dv_simt::mma_m16n8k8_tf32(d, a, b, d);
#else
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

template <bool TA, bool TB>
__global__ void __launch_bounds__(NT) sgemm_tf32(int64_t M, int64_t N, int64_t K, float alpha,
                                                 const float *__restrict__ A, int64_t lda,
                                                 const float *__restrict__ B, int64_t ldb, float beta,
                                                 float *__restrict__ C, int64_t ldc) {
    __shared__ float As[BM * SK], Bs[BN * SK];
    const int t = threadIdx.x, warp = t / 32, lane = t % 32;
    const int64_t m0 = (int64_t)blockIdx.y * BM, n0 = (int64_t)blockIdx.x * BN;
    float acc[2][4][4];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int r = 0; r < 4; r++) acc[i][j][r] = 0.0f;

    for (int64_t k0 = 0; k0 < K; k0 += BK) {
#pragma unroll
        for (int u = 0; u < BM * BK / NT; u++) {
            int row, k;
            dv_cu_tf32_piece(t, u, !TA, &row, &k); /* A (M, K) is k-contiguous unless transposed */
            int64_t gm = m0 + row, gk = k0 + k;
            As[row * SK + k] = (gm < M && gk < K) ? (TA ? A[gk * lda + gm] : A[gm * lda + gk]) : 0.0f;
            dv_cu_tf32_piece(t, u, TB, &row, &k); /* B stored (N, K) when transposed */
            int64_t gn = n0 + row;
            gk = k0 + k;
            Bs[row * SK + k] = (gn < N && gk < K) ? (TB ? B[gn * ldb + gk] : B[gk * ldb + gn]) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BK; kk += 8) {
            uint32_t a[2][4], b[4][2];
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int r = 0; r < 4; r++) a[i][r] = to_tf32(As[dv_cu_tf32_a_smem(warp, lane, i, kk, r)]);
#pragma unroll
            for (int j = 0; j < 4; j++)
#pragma unroll
                for (int r = 0; r < 2; r++) b[j][r] = to_tf32(Bs[dv_cu_tf32_b_smem(warp, lane, j, kk, r)]);
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) mma_tf32(acc[i][j], a[i], b[j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int r = 0; r < 4; r++) {
                int mm, nn;
                dv_cu_tf32_c_coord(warp, lane, i, j, r, &mm, &nn);
                int64_t m = m0 + mm, n = n0 + nn;
                if (m < M && n < N) {
                    float v = alpha * acc[i][j][r];
                    if (beta != 0.0f) v += beta * C[m * ldc + n];
                    C[m * ldc + n] = v;
                }
            }
}

} // namespace

extern "C" int dv_cu_gemm_tf32(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                               int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc,
                               dv_cu_stream stream) {
    if (M < 0 || N < 0 || K < 0) return (int)cudaErrorInvalidValue;
    if (M == 0 || N == 0) return 0;
    if ((M + BM - 1) / BM > 65535) return (int)cudaErrorInvalidValue;
    dim3 grid((unsigned)((N + BN - 1) / BN), (unsigned)((M + BM - 1) / BM));
    cudaStream_t s = (cudaStream_t)stream;
    if (!ta && !tb) sgemm_tf32<false, false><<<grid, NT, 0, s>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else if (!ta && tb) sgemm_tf32<false, true><<<grid, NT, 0, s>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else if (ta && !tb) sgemm_tf32<true, false><<<grid, NT, 0, s>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else sgemm_tf32<true, true><<<grid, NT, 0, s>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return (int)cudaGetLastError();
}
