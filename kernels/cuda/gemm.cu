/* kernels/cuda/gemm.cu — GEMM on tensor cores: f16 / bf16 inputs, f32 accumulation,
 * mma.sync.aligned.m16n8k16 (sm_80 and later), batched, all four transpose layouts, and a
 * skinny path for M <= 16 (decoding, the small policy). Contract in kernels/cuda/kernels.h.
 *
 * Tiled GEMM (Volkov / CUTLASS style, written plainly):
 *   - a block of 256 threads computes a 128 x 128 tile of C; its 8 warps form a 2 x 4 grid,
 *     each warp a 64 x 32 sub-tile = 4 x 4 mma tiles of 16 x 8, 64 f32 accumulators a thread
 *   - K advances 32 at a time; the next A and B tiles are loaded from global memory into
 *     registers (16 bytes a load) while the tensor cores work on the current tiles in shared
 *     memory (double buffered: one __syncthreads per K step)
 *   - shared tiles are k-contiguous (As[m][k], Bs[n][k]) whatever the global layout, rows
 *     padded to 40 halves so that each fragment load of a warp touches 32 distinct banks;
 *     an operand whose global layout is not k-contiguous is transposed on the way in
 * The maps (who owns which C element, who loads which piece, which shared word each fragment
 * register reads) are the DV_HD functions of kernels/cuda/common.h, checked on the host by
 * tests/test_cuda_host.c.
 * Edges: any M, N, K; a piece that is partly outside the matrix, or an operand that is not
 * 16-byte aligned (pointer, leading dimension or batch stride not a multiple of 8 elements),
 * is loaded element by element with zeros outside.
 *
 * Skinny path (M <= 16, A (M, K) row-major, B (N, K) row-major — x @ W^T of a linear layer):
 * B is the whole cost, so every B element is read once: a warp owns one output column n and
 * walks K with 16-byte loads, A's rows are staged in shared memory 512 columns at a time and
 * shared by the block's 8 warps (8 columns).
 *
 * Hopper: with DV_CUDA_WGMMA=1 on an sm_90 device, dv_cu_gemm sends large problems to the
 * wgmma kernel of gemm_sm90a.cu instead (opt-in until it has been measured on an H100).
 * Not here (yet): cp.async / ldmatrix / a 3-4 stage pipeline, split-K, epilogue fusion (bias,
 * activation); TF32 for f32 inputs is sgemm_tf32.cu. Those are the next steps to reach
 * cuBLAS; this file is the correct, readable baseline they are measured against.
 */
#include "kernels/cuda/common.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/mma.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace {

using dvcu::mma16816;
using dvcu::to_f32;
using dvcu::from_f32;

constexpr int BM = DV_CU_GEMM_BM, BN = DV_CU_GEMM_BN, BK = DV_CU_GEMM_BK, SK = DV_CU_GEMM_SK;
constexpr int NT = DV_CU_GEMM_THREADS, MI = DV_CU_GEMM_MI, NI = DV_CU_GEMM_NI;

struct Params {
    int64_t M, N, K;
    float alpha, beta;
    const uint16_t *A, *B;
    int64_t lda, ldb, sa, sb;
    void *C;
    int64_t ldc, sc;
    bool c_f32, vec_a, vec_b;
};



/* 8 consecutive halves along the contiguous dimension of a row-major (rows, cols) operand with
 * leading dimension ld: elements (row, col .. col+7), zeros outside */
__device__ __forceinline__ uint4 load_piece(const uint16_t *p, int64_t ld, int64_t rows, int64_t cols, int64_t row,
                                            int64_t col, bool vec) {
    if (row < rows && col + 8 <= cols && vec) return *(const uint4 *)(p + row * ld + col);
    union { uint4 v; uint16_t h[8]; } u;
#pragma unroll
    for (int e = 0; e < 8; e++) u.h[e] = (row < rows && col + e < cols) ? p[row * ld + col + e] : (uint16_t)0;
    return u.v;
}

/* a piece into the k-contiguous shared tile S[row][k]: as is when the global layout is
 * k-contiguous, else transposed (the piece runs along rows at one k) */
__device__ __forceinline__ void store_piece(uint16_t *S, bool kcontig, int r, int c, uint4 v) {
    if (kcontig) {
        *(uint4 *)(S + r * SK + c) = v;
    } else {
        union { uint4 v; uint16_t h[8]; } u;
        u.v = v;
#pragma unroll
        for (int e = 0; e < 8; e++) S[(c + e) * SK + r] = u.h[e];
    }
}

/* the two pieces of this thread for K step k0, A or B. For A (ta = TA): kcontig = !TA; the
 * global operand is (M, K) when kcontig, else (K, M). B likewise with N and !TB. */
template <bool KCONTIG>
__device__ __forceinline__ void load_tile(uint4 v[2], const uint16_t *p, int64_t ld, int64_t R, int64_t K,
                                          int64_t r0, int64_t k0, bool vec) {
#pragma unroll
    for (int it = 0; it < 2; it++) {
        int r, c;
        dv_cu_gemm_piece(threadIdx.x, it, KCONTIG, &r, &c);
        if (KCONTIG) v[it] = load_piece(p, ld, R, K, r0 + r, k0 + c, vec);
        else v[it] = load_piece(p, ld, K, R, k0 + r, r0 + c, vec);
    }
}

template <bool KCONTIG>
__device__ __forceinline__ void store_tile(uint16_t *S, const uint4 v[2]) {
#pragma unroll
    for (int it = 0; it < 2; it++) {
        int r, c;
        dv_cu_gemm_piece(threadIdx.x, it, KCONTIG, &r, &c);
        store_piece(S, KCONTIG, r, c, v[it]);
    }
}

template <bool BF16, bool TA, bool TB>
__global__ void __launch_bounds__(NT) gemm_tc(Params p) {
    __shared__ __align__(16) uint16_t As[2][BM * SK];
    __shared__ __align__(16) uint16_t Bs[2][BN * SK];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t z = blockIdx.z, m0 = (int64_t)blockIdx.y * BM, n0 = (int64_t)blockIdx.x * BN;
    const uint16_t *A = p.A + z * p.sa, *B = p.B + z * p.sb;

    float acc[MI][NI][4];
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NI; j++)
#pragma unroll
            for (int r = 0; r < 4; r++) acc[i][j][r] = 0.0f;

    const int64_t nk = (p.K + BK - 1) / BK;
    uint4 ra[2], rb[2];
    load_tile<!TA>(ra, A, p.lda, p.M, p.K, m0, 0, p.vec_a);
    load_tile<TB>(rb, B, p.ldb, p.N, p.K, n0, 0, p.vec_b);
    store_tile<!TA>(As[0], ra);
    store_tile<TB>(Bs[0], rb);
    __syncthreads();

    for (int64_t kt = 0; kt < nk; kt++) {
        const int buf = (int)(kt & 1);
        if (kt + 1 < nk) { /* next tiles into registers; their latency hides behind the mma */
            load_tile<!TA>(ra, A, p.lda, p.M, p.K, m0, (kt + 1) * BK, p.vec_a);
            load_tile<TB>(rb, B, p.ldb, p.N, p.K, n0, (kt + 1) * BK, p.vec_b);
        }
#pragma unroll
        for (int kk = 0; kk < BK; kk += 16) {
            uint32_t af[MI][4], bf[NI][2];
#pragma unroll
            for (int i = 0; i < MI; i++)
#pragma unroll
                for (int r = 0; r < 4; r++) af[i][r] = *(const uint32_t *)&As[buf][dv_cu_gemm_a_smem(warp, lane, i, kk, r)];
#pragma unroll
            for (int j = 0; j < NI; j++)
#pragma unroll
                for (int r = 0; r < 2; r++) bf[j][r] = *(const uint32_t *)&Bs[buf][dv_cu_gemm_b_smem(warp, lane, j, kk, r)];
#pragma unroll
            for (int i = 0; i < MI; i++)
#pragma unroll
                for (int j = 0; j < NI; j++) mma16816<BF16>(acc[i][j], af[i], bf[j]);
        }
        if (kt + 1 < nk) {
            /* the other buffer was last read in step kt - 1, which the barrier below closed */
            store_tile<!TA>(As[buf ^ 1], ra);
            store_tile<TB>(Bs[buf ^ 1], rb);
        }
        __syncthreads();
    }

    /* epilogue: C = alpha acc + beta C */
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NI; j++)
#pragma unroll
            for (int r = 0; r < 4; r++) {
                int mm, nn;
                dv_cu_gemm_c_coord(warp, lane, i, j, r, &mm, &nn);
                int64_t m = m0 + mm, n = n0 + nn;
                if (m >= p.M || n >= p.N) continue;
                int64_t o = z * p.sc + m * p.ldc + n;
                float v = p.alpha * acc[i][j][r];
                if (p.c_f32) {
                    float *C = (float *)p.C;
                    if (p.beta != 0.0f) v += p.beta * C[o];
                    C[o] = v;
                } else {
                    uint16_t *C = (uint16_t *)p.C;
                    if (p.beta != 0.0f) v += p.beta * to_f32<BF16>(C[o]);
                    C[o] = from_f32<BF16>(v);
                }
            }
}

/* skinny: C (M <= 16, N) = alpha A (M, K) B^T (B stored (N, K)) + beta C */
constexpr int SW = DV_CU_SKINNY_WARPS, KC = DV_CU_SKINNY_KC, MAXM = DV_CU_SKINNY_MAXM;

template <bool BF16>
__global__ void __launch_bounds__(SW * 32) gemm_skinny(Params p) {
    __shared__ __align__(16) uint16_t As[MAXM * KC];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int64_t z = blockIdx.y, n = (int64_t)blockIdx.x * SW + warp;
    const uint16_t *A = p.A + z * p.sa, *B = p.B + z * p.sb;
    const int M = (int)p.M;
    float acc[MAXM];
#pragma unroll
    for (int m = 0; m < MAXM; m++) acc[m] = 0.0f;

    for (int64_t k0 = 0; k0 < p.K; k0 += KC) {
        __syncthreads(); /* the previous chunk is no longer read */
        for (int v = threadIdx.x; v < MAXM * KC / 8; v += SW * 32) {
            int m = v / (KC / 8), c = (v % (KC / 8)) * 8;
            *(uint4 *)(As + m * KC + c) = load_piece(A, p.lda, M, p.K, m, k0 + c, p.vec_a);
        }
        __syncthreads();
        if (n < p.N) {
            for (int c = lane * 8; c < KC && k0 + c < p.K; c += 32 * 8) {
                union { uint4 v; uint16_t h[8]; } b;
                b.v = load_piece(B, p.ldb, p.N, p.K, n, k0 + c, p.vec_b);
                float bf[8];
#pragma unroll
                for (int e = 0; e < 8; e++) bf[e] = to_f32<BF16>(b.h[e]);
#pragma unroll
                for (int m = 0; m < MAXM; m++) {
                    if (m < M) {
                        union { uint4 v; uint16_t h[8]; } a;
                        a.v = *(const uint4 *)(As + m * KC + c);
#pragma unroll
                        for (int e = 0; e < 8; e++) acc[m] += to_f32<BF16>(a.h[e]) * bf[e];
                    }
                }
            }
        }
    }
    if (n >= p.N) return;
#pragma unroll
    for (int m = 0; m < MAXM; m++) {
        if (m >= M) break;
        float s = acc[m];
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0) {
            int64_t off = z * p.sc + m * p.ldc + n;
            float v = p.alpha * s;
            if (p.c_f32) {
                float *C = (float *)p.C;
                if (p.beta != 0.0f) v += p.beta * C[off];
                C[off] = v;
            } else {
                uint16_t *C = (uint16_t *)p.C;
                if (p.beta != 0.0f) v += p.beta * to_f32<BF16>(C[off]);
                C[off] = from_f32<BF16>(v);
            }
        }
    }
}

template <bool BF16>
void launch(int ta, int tb, const Params &p, int64_t batch, cudaStream_t s) {
    dim3 grid((unsigned)((p.N + BN - 1) / BN), (unsigned)((p.M + BM - 1) / BM), (unsigned)batch);
    if (!ta && !tb) gemm_tc<BF16, false, false><<<grid, NT, 0, s>>>(p);
    else if (!ta && tb) gemm_tc<BF16, false, true><<<grid, NT, 0, s>>>(p);
    else if (ta && !tb) gemm_tc<BF16, true, false><<<grid, NT, 0, s>>>(p);
    else gemm_tc<BF16, true, true><<<grid, NT, 0, s>>>(p);
}

inline bool aligned16(const void *ptr, int64_t ld, int64_t stride, int64_t batch) {
    return ((uintptr_t)ptr & 15) == 0 && ld % 8 == 0 && (batch <= 1 || stride % 8 == 0);
}

} // namespace

extern "C" int dv_cu_gemm(dv_cu_half dtype, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                          const uint16_t *A, int64_t lda, int64_t stride_a, const uint16_t *B, int64_t ldb,
                          int64_t stride_b, float beta, void *C, int64_t ldc, int64_t stride_c, bool c_f32,
                          int64_t batch, dv_cu_stream stream) {
    if (M < 0 || N < 0 || K < 0 || batch < 0) return (int)cudaErrorInvalidValue;
    if (M == 0 || N == 0 || batch == 0) return 0;
    if (batch > 65535 || (M + BM - 1) / BM > 65535 || (N + BN - 1) / BN > 2147483647LL) return (int)cudaErrorInvalidValue;
    Params p;
    p.M = M, p.N = N, p.K = K, p.alpha = alpha, p.beta = beta;
    p.A = A, p.B = B, p.lda = lda, p.ldb = ldb, p.sa = stride_a, p.sb = stride_b;
    p.C = C, p.ldc = ldc, p.sc = stride_c, p.c_f32 = c_f32;
    p.vec_a = aligned16(A, lda, stride_a, batch);
    p.vec_b = aligned16(B, ldb, stride_b, batch);
    /* the wgmma kernel (gemm_sm90a.cu), opt-in with DV_CUDA_WGMMA=1 on an sm_90 device */
    if (dv_cu_gemm_wgmma_wanted(M, N, K))
        return dv_cu_gemm_wgmma(dtype, ta, tb, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc,
                                stride_c, c_f32, batch, stream);
    cudaStream_t s = (cudaStream_t)stream;
    const bool bf16 = dtype == DV_CU_BF16;
    if (M <= MAXM && !ta && tb) {
        dim3 grid((unsigned)((N + SW - 1) / SW), (unsigned)batch);
        if (bf16) gemm_skinny<true><<<grid, SW * 32, 0, s>>>(p);
        else gemm_skinny<false><<<grid, SW * 32, 0, s>>>(p);
    } else if (bf16) {
        launch<true>(ta, tb, p, batch, s);
    } else {
        launch<false>(ta, tb, p, batch, s);
    }
    return (int)cudaGetLastError();
}
