/* kernels/cuda/gemm_sm90a.cu — GEMM on Hopper's warpgroup tensor-core instruction (wgmma,
 * sm_90a only): dv_cu_gemm's contract (kernels/cuda/kernels.h) — f16 / bf16 inputs, f32
 * accumulation, batched, the four transpose layouts, alpha / beta, C f32 or the inputs' dtype.
 *
 * NEVER RUN ON A GPU. Written without one; it compiles (nvcc, sm_90a: 154 registers, no
 * spills) and its index math is checked on the host (tests/test_wgmma_host.c). Its results
 * were checked only on the CPU SIMT emulator (`make test-cuda-sim`, tests/cuda/test_cuda_wgmma.c,
 * passing in both thread orders and with each wgmma performed at its wait_group or at issue),
 * whose wgmma semantics (tests/simt/wgmma.h) were written from the PTX ISA independently of
 * this file — a second reading of the same text, not a GPU: timing, the async proxy and the
 * real descriptor decoding are unverified. That is why dv_cu_gemm uses it only when
 * DV_CUDA_WGMMA=1 (kernels/cuda/kernels.h).
 *
 * Design (warp-specialised, one barrier a K step):
 *   - a block of 384 threads = 3 warpgroups computes a 128 x 256 tile of C. Warpgroups 0 and 1
 *     (consumers) own rows 0-63 and 64-127 and issue one wgmma.mma_async.m64n256k16 per 16 of
 *     K (A and B both from shared memory through 64-bit matrix descriptors), 128 f32
 *     accumulators a thread in registers. Warpgroup 2 (producer) only moves data
 *   - K advances 64 at a time through 4 shared-memory stages of 48 KiB (A 128 x 64, B 256 x 64),
 *     both K-major (imm-trans-a = imm-trans-b = 0) in the 128-byte swizzle: row r's 16-byte
 *     chunk c sits at chunk c ^ (r % 8) (kernels/cuda/gemm_sm90a.h, dv_wg_swz)
 *   - the producer moves tiles global -> registers (16-byte loads, 24 a thread a step) ->
 *     shared (16-byte stores into the swizzle; an operand that is not K-contiguous in global
 *     memory, A with ta or B without tb, is read in blocks of 8 x 8 and transposed in
 *     registers on the way in, dv_wg_transpose8x8), then
 *     fence.proxy.async so the tensor cores (the async proxy) see those generic-proxy stores
 *   - step kt: the consumers issue the 4 wgmma of stage kt % 4, commit them as a group and wait
 *     until only that group is in flight (group kt - 1 done); meanwhile the producer stores
 *     tile kt + 2 (loaded during the previous step) into stage (kt + 2) % 4 — last read by
 *     group kt - 2, finished before the previous barrier — and issues the loads of tile kt + 3;
 *     then __syncthreads. A global load has a whole step to arrive; 4 stages are the fewest
 *     that let the producer write while two groups may be in flight
 *   - output tiles in groups of 8 tile rows (dv_wg_tile_of) so the blocks in flight share
 *     A and B in L2; blockIdx.z is the batch
 *   - edges: any M, N, K; pieces outside the matrix load as zeros (so a partial K step adds
 *     nothing), stores are guarded; operands not 16-byte aligned load element by element
 *   - epilogue (consumers): C = alpha acc + beta C (C not read when beta == 0), pairs of
 *     adjacent columns stored together when C is aligned for it
 *
 * Not here: TMA (cp.async.bulk.tensor) and mbarriers, cp.async, ldmatrix / stmatrix, thread
 * block clusters and multicast, setmaxnreg (the producer keeps the consumers' register
 * budget), named barriers between producer and consumers, persistent scheduling,
 * the MN-major descriptor layouts (ta / tb operands are transposed by the loads instead),
 * split-K, epilogue fusion. CUTLASS-class speed needs the first four; this is the readable
 * baseline they would be measured against.
 */
#include "kernels/cuda/gemm_sm90a.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/mma.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <stdlib.h>
#include <string.h>

#ifdef DV_SIMT /* the CPU emulator of `make test-cuda-sim`: its wgmma semantics (dv_simt_wgmma_*) */
#include "tests/simt/wgmma.h"
#endif

namespace {

using dvcu::to_f32;
using dvcu::from_f32;

constexpr int BM = DV_WG_BM, BN = DV_WG_BN, BK = DV_WG_BK, NT = DV_WG_THREADS, STAGES = DV_WG_STAGES;
constexpr int NACC = DV_WG_N / 2; /* accumulators a thread: 128 */

struct Params {
    int64_t M, N, K;
    float alpha, beta;
    const uint16_t *A, *B;
    int64_t lda, ldb, sa, sb;
    void *C;
    int64_t ldc, sc;
    int64_t tiles_m, tiles_n;
    bool c_f32, vec_a, vec_b, c_pair;
};


/* ---- the wgmma instructions (PTX ISA 9.7.15) ---------------------------------------------- */
__device__ __forceinline__ void wgmma_fence() {
#ifdef DV_SIMT
    dv_simt_wgmma_fence();
#else
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#ifdef DV_SIMT
    dv_simt_wgmma_commit();
#else
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
/* wait until at most N committed groups of this warpgroup are still in flight */
template <int N> __device__ __forceinline__ void wgmma_wait() {
#ifdef DV_SIMT
    dv_simt_wgmma_wait(N);
#else
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}
/* after this thread's ordinary st.shared, before the barrier: make them visible to the async
 * proxy that wgmma reads shared memory through */
__device__ __forceinline__ void fence_proxy_async() {
#ifdef DV_SIMT
    dv_simt_fence_proxy_async();
#else
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

/* the 128 accumulator registers of .m64n256k16 .f32 in operand order d0 .. d127 */
#define DV_WG_D_REGS \
    "{" \
    "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
    "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
    "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
    "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, " \
    "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, " \
    "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, " \
    "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, " \
    "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127" \
    "}"
#define DV_WG_D_OPERANDS(d) \
    "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
    "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
    "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
    "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
    "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
    "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
    "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
    "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), \
    "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), \
    "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), \
    "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), \
    "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), \
    "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), \
    "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), \
    "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), \
    "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])

/* D (64 x 256, this thread's 128 registers) += A (64 x 16) B (16 x 256), both K-major in
 * shared memory (descriptors da, db); scale-d = 1 (accumulate), no negation, no transpose */
template <bool BF16>
__device__ __forceinline__ void wgmma_m64n256k16(float d[NACC], uint64_t da, uint64_t db) {
#ifdef DV_SIMT
    dv_simt_wgmma_bf16f16(DV_WG_N, BF16, d, da, db, 1, 1, 1, 0, 0);
#else
    const int scale_d = 1;
    if (BF16)
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 " DV_WG_D_REGS
                     ", %128, %129, p, 1, 1, 0, 0;\n}\n"
                     : DV_WG_D_OPERANDS(d)
                     : "l"(da), "l"(db), "r"(scale_d));
    else
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 " DV_WG_D_REGS
                     ", %128, %129, p, 1, 1, 0, 0;\n}\n"
                     : DV_WG_D_OPERANDS(d)
                     : "l"(da), "l"(db), "r"(scale_d));
#endif
}

/* ---- global -> registers -> swizzled shared memory ----------------------------------------- */
/* The global operand seen as row-major (outer, inner) with leading dimension ld: (R, K) when
 * it is K-contiguous, else (K, R). Its piece at (o, i) is the 8 halves (o, i .. i+7), zeros
 * outside — the slow path for pieces on an edge or an operand that is not 16-byte aligned,
 * out of line so it costs the hot loop no registers. */
__device__ __noinline__ uint4 load_piece_edge(const uint16_t *p, int64_t ld, int64_t outer_n, int64_t inner_n, int64_t o,
                                              int64_t i) {
    union { uint4 v; uint16_t h[8]; } u;
#pragma unroll
    for (int e = 0; e < 8; e++) u.h[e] = (o < outer_n && i + e < inner_n) ? p[o * ld + i + e] : (uint16_t)0;
    return u.v;
}

/* The global row (relative to the thread's first) that piece `it` reads: dv_wg_piece's map
 * with the thread's own offset taken out — STEP rows a piece for a k-contiguous operand, else
 * 8 consecutive rows a block and JSTEP rows from one block to the next */
template <int R, bool KCONTIG> __host__ __device__ constexpr int piece_row(int it) {
    return KCONTIG ? it * (DV_WG_LOADERS / (BK / 8)) : (it / 8) * (8 * DV_WG_LOADERS / (R / 8)) + it % 8;
}

/* this loader thread's pieces of the R-row tile whose corner is (outer0, inner0) in the global
 * operand (outer_n, inner_n), walked with one pointer so that no per-piece 64-bit address stays
 * live between steps */
template <int R, bool KCONTIG>
__device__ __forceinline__ void load_tile(int t, uint4 *v, const uint16_t *p, int64_t ld, int64_t outer_n,
                                          int64_t inner_n, int64_t outer0, int64_t inner0, bool vec) {
    constexpr int PER_ROW = KCONTIG ? BK / 8 : R / 8; /* loader threads along one global row */
    constexpr int NP = R * BK / 8 / DV_WG_LOADERS;
    const int64_t o = outer0 + (KCONTIG ? 1 : 8) * (t / PER_ROW), i = inner0 + (t % PER_ROW) * 8;
    const bool inner_ok = vec && i + 8 <= inner_n;
    const uint16_t *q = p + o * ld + i;
#pragma unroll
    for (int it = 0; it < NP; it++) {
        const int64_t oo = o + piece_row<R, KCONTIG>(it);
        if (inner_ok && oo < outer_n) v[it] = *(const uint4 *)q;
        else v[it] = load_piece_edge(p, ld, outer_n, inner_n, oo, i);
        if (it + 1 < NP) q += (piece_row<R, KCONTIG>(it + 1) - piece_row<R, KCONTIG>(it)) * ld;
    }
}

template <int R, bool KCONTIG>
__device__ __forceinline__ void store_tile(int t, unsigned char *tile, const uint4 *v) {
    constexpr int NP = R * BK / 8 / DV_WG_LOADERS;
    if (KCONTIG) {
#pragma unroll
        for (int it = 0; it < NP; it++) {
            int r, k;
            dv_wg_piece(t, it, R, true, &r, &k);
            *(uint4 *)(tile + dv_wg_swz(r, k)) = v[it];
        }
    } else { /* blocks of 8 pieces (k .. k+7, each rows r .. r+7) -> rows r .. r+7, k .. k+7 */
#pragma unroll
        for (int j = 0; j < NP / 8; j++) {
            int r, k;
            dv_wg_piece(t, 8 * j, R, false, &r, &k);
            union { uint4 v[8]; uint32_t w[8][4]; } in, out;
#pragma unroll
            for (int e = 0; e < 8; e++) in.v[e] = v[8 * j + e];
            dv_wg_transpose8x8(in.w, out.w);
#pragma unroll
            for (int c = 0; c < 8; c++) *(uint4 *)(tile + dv_wg_swz(r + c, k)) = out.v[c];
        }
    }
}

/* A's tile at (m0, k0): A is (M, K) unless TA, then (K, M); B's at (n0, k0): (N, K) when TB,
 * else (K, N) */
template <bool TA>
__device__ __forceinline__ void load_a(int t, uint4 *v, const uint16_t *A, const Params &p, int64_t m0, int64_t k0) {
    if (!TA) load_tile<BM, true>(t, v, A, p.lda, p.M, p.K, m0, k0, p.vec_a);
    else load_tile<BM, false>(t, v, A, p.lda, p.K, p.M, k0, m0, p.vec_a);
}
template <bool TB>
__device__ __forceinline__ void load_b(int t, uint4 *v, const uint16_t *B, const Params &p, int64_t n0, int64_t k0) {
    if (TB) load_tile<BN, true>(t, v, B, p.ldb, p.N, p.K, n0, k0, p.vec_b);
    else load_tile<BN, false>(t, v, B, p.ldb, p.K, p.N, k0, n0, p.vec_b);
}

template <bool BF16, bool TA, bool TB>
__global__ void __launch_bounds__(NT, 1) gemm_wgmma(Params p) {
    extern __shared__ __align__(1024) unsigned char dv_wg_smem[];
    /* the stages start on a 1024-byte boundary of the shared window (descriptor base offset 0) */
    const uint32_t raw = (uint32_t)__cvta_generic_to_shared(dv_wg_smem);
    const uint32_t pad = (1024u - (raw & 1023u)) & 1023u;
    unsigned char *smem = dv_wg_smem + pad;
    const uint32_t sbase = raw + pad;

    /* the warpgroup index, made visibly warp-uniform for the compiler (a shuffle from lane 0),
     * so that the role branch below does not serialise the wgmma */
    const int wg = __shfl_sync(0xffffffffu, (int)(threadIdx.x / 128), 0), t = threadIdx.x % 128;
    int64_t im, in;
    dv_wg_tile_of(blockIdx.x, p.tiles_m, p.tiles_n, &im, &in);
    const int64_t z = blockIdx.z, m0 = im * BM, n0 = in * BN;
    const uint16_t *A = p.A + z * p.sa, *B = p.B + z * p.sb;
    const int64_t nk = (p.K + BK - 1) / BK;

    /* Step kt: the consumers multiply stage kt % 4 (tile kt); the producer stores tile kt + 2
     * into stage (kt + 2) % 4 and loads tile kt + 3. That stage last held tile kt - 2, whose
     * wgmma group both consumers waited for before the previous barrier (in flight during step
     * kt: groups kt - 1 and kt only). Tile kt + 2 is read after two more barriers.
     * The two roles are the two branches of one if / else, each with its own registers (the
     * producer's 24 staged pieces are never live beside the consumers' 128 accumulators); both
     * pass the same number of __syncthreads: one before the loop, one a step. The barrier is
     * reached from two places, each by whole warps (bar.sync 0 is .aligned per warp and counts
     * the block's arrivals at barrier 0 wherever they come from). */
    if (wg == 2) {
        uint4 ra[DV_WG_A_PIECES], rb[DV_WG_B_PIECES];
        /* prologue: tiles 0 and 1 into stages 0 and 1, tile 2 into registers */
        for (int64_t kt = 0; kt < 3 && kt < nk; kt++) {
            load_a<TA>(t, ra, A, p, m0, kt * BK);
            load_b<TB>(t, rb, B, p, n0, kt * BK);
            if (kt < 2) {
                store_tile<BM, !TA>(t, smem + kt * DV_WG_STAGE_BYTES, ra);
                store_tile<BN, TB>(t, smem + kt * DV_WG_STAGE_BYTES + DV_WG_A_BYTES, rb);
            }
        }
        fence_proxy_async();
        __syncthreads();
        for (int64_t kt = 0; kt < nk; kt++) {
            if (kt + 2 < nk) {
                unsigned char *next = smem + ((kt + 2) % STAGES) * DV_WG_STAGE_BYTES;
                store_tile<BM, !TA>(t, next, ra);
                store_tile<BN, TB>(t, next + DV_WG_A_BYTES, rb);
                fence_proxy_async();
            }
            if (kt + 3 < nk) {
                load_a<TA>(t, ra, A, p, m0, (kt + 3) * BK);
                load_b<TB>(t, rb, B, p, n0, (kt + 3) * BK);
            }
            __syncthreads();
        }
        return;
    }

    float acc[NACC];
#pragma unroll
    for (int i = 0; i < NACC; i++) acc[i] = 0.0f;
    __syncthreads();
    for (int64_t kt = 0; kt < nk; kt++) {
        const uint32_t st = sbase + (uint32_t)(kt % STAGES) * DV_WG_STAGE_BYTES;
        wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < BK / 16; ks++)
            wgmma_m64n256k16<BF16>(acc, dv_wg_desc_kmajor_sw128(st, 64 * wg, ks),
                                   dv_wg_desc_kmajor_sw128(st + DV_WG_A_BYTES, 0, ks));
        wgmma_commit();
        wgmma_wait<1>(); /* group kt - 1 of this warpgroup is done */
        __syncthreads();
    }
    wgmma_wait<0>();

    /* epilogue: C = alpha acc + beta C. This thread's registers cover two rows (h = 0, 1: the
     * 8-row halves of its warp's 16) and, in each, the column pairs 8 j + 2 (lane % 4), j < 32:
     * registers 4 j + 2 h and 4 j + 2 h + 1 (dv_wg_c_coord) */
#pragma unroll
    for (int h = 0; h < 2; h++) {
        int rr, cc;
        dv_wg_c_coord(t, 2 * h, &rr, &cc);
        const int64_t m = m0 + 64 * wg + rr;
        if (m >= p.M) continue;
        const int64_t row = z * p.sc + m * p.ldc;
#pragma unroll
        for (int j = 0; j < NACC / 4; j++) {
            const int i = 4 * j + 2 * h;
            const int64_t n = n0 + cc + 8 * j; /* even */
            if (n >= p.N) break;
            float v0 = p.alpha * acc[i], v1 = p.alpha * acc[i + 1];
            const bool two = n + 1 < p.N;
            if (p.c_f32) {
                float *C = (float *)p.C + row + n;
                if (two && p.c_pair) {
                    if (p.beta != 0.0f) {
                        float2 c = *(const float2 *)C;
                        v0 += p.beta * c.x, v1 += p.beta * c.y;
                    }
                    *(float2 *)C = make_float2(v0, v1);
                } else {
                    if (p.beta != 0.0f) v0 += p.beta * C[0];
                    C[0] = v0;
                    if (two) {
                        if (p.beta != 0.0f) v1 += p.beta * C[1];
                        C[1] = v1;
                    }
                }
            } else {
                uint16_t *C = (uint16_t *)p.C + row + n;
                if (two && p.c_pair) {
                    if (p.beta != 0.0f) {
                        uint32_t c = *(const uint32_t *)C;
                        v0 += p.beta * to_f32<BF16>((uint16_t)c), v1 += p.beta * to_f32<BF16>((uint16_t)(c >> 16));
                    }
                    *(uint32_t *)C = (uint32_t)from_f32<BF16>(v0) | (uint32_t)from_f32<BF16>(v1) << 16;
                } else {
                    if (p.beta != 0.0f) v0 += p.beta * to_f32<BF16>(C[0]);
                    C[0] = from_f32<BF16>(v0);
                    if (two) {
                        if (p.beta != 0.0f) v1 += p.beta * to_f32<BF16>(C[1]);
                        C[1] = from_f32<BF16>(v1);
                    }
                }
            }
        }
    }
}

/* raise the kernel's dynamic shared-memory limit once per device (the default is 48 KiB) */
constexpr int MAX_DEV = 64;

template <bool BF16, bool TA, bool TB>
cudaError_t launch_one(const Params &p, int dev, dim3 grid, cudaStream_t s) {
    static bool raised[MAX_DEV];
    if (!raised[dev]) {
        cudaError_t e = cudaFuncSetAttribute(gemm_wgmma<BF16, TA, TB>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             DV_WG_SMEM_BYTES);
        if (e != cudaSuccess) return e;
        raised[dev] = true;
    }
    gemm_wgmma<BF16, TA, TB><<<grid, NT, DV_WG_SMEM_BYTES, s>>>(p);
    return cudaGetLastError();
}

template <bool BF16>
cudaError_t launch(int ta, int tb, const Params &p, int dev, dim3 grid, cudaStream_t s) {
    if (!ta && !tb) return launch_one<BF16, false, false>(p, dev, grid, s);
    if (!ta && tb) return launch_one<BF16, false, true>(p, dev, grid, s);
    if (ta && !tb) return launch_one<BF16, true, false>(p, dev, grid, s);
    return launch_one<BF16, true, true>(p, dev, grid, s);
}

inline bool aligned16(const void *ptr, int64_t ld, int64_t stride, int64_t batch) {
    return ((uintptr_t)ptr & 15) == 0 && ld % 8 == 0 && (batch <= 1 || stride % 8 == 0);
}

/* the current device when it is compute capability 9.0 (what sm_90a code runs on), else -1;
 * asked once per device */
int sm90_device() {
    static signed char is90[MAX_DEV]; /* 0 not asked, 1 yes, -1 no */
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= MAX_DEV) return -1;
    if (!is90[dev]) {
        int major = 0, minor = 0;
        bool ok = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
                  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) == cudaSuccess;
        is90[dev] = ok && major == 9 && minor == 0 ? 1 : -1;
    }
    return is90[dev] == 1 ? dev : -1;
}

} // namespace

extern "C" bool dv_cu_gemm_wgmma_device(void) { return sm90_device() >= 0; }

extern "C" bool dv_cu_gemm_wgmma_wanted(int64_t M, int64_t N, int64_t K) {
    static int env = -1; /* DV_CUDA_WGMMA read once */
    if (env < 0) {
        const char *s = getenv("DV_CUDA_WGMMA");
        env = s && !strcmp(s, "1");
    }
    return env && M >= BM && N >= 128 && K >= BK && dv_cu_gemm_wgmma_device();
}

extern "C" int dv_cu_gemm_wgmma(dv_cu_half dtype, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                                const uint16_t *A, int64_t lda, int64_t stride_a, const uint16_t *B, int64_t ldb,
                                int64_t stride_b, float beta, void *C, int64_t ldc, int64_t stride_c, bool c_f32,
                                int64_t batch, dv_cu_stream stream) {
    const int dev = sm90_device();
    if (dev < 0) return (int)cudaErrorInvalidValue; /* not an sm_90 GPU: the code is not there */
    if ((ta != 0 && ta != 1) || (tb != 0 && tb != 1) || (dtype != DV_CU_F16 && dtype != DV_CU_BF16))
        return (int)cudaErrorInvalidValue;
    if (M < 0 || N < 0 || K < 0 || batch < 0) return (int)cudaErrorInvalidValue;
    if (M == 0 || N == 0 || batch == 0) return 0;
    Params p;
    p.M = M, p.N = N, p.K = K, p.alpha = alpha, p.beta = beta;
    p.A = A, p.B = B, p.lda = lda, p.ldb = ldb, p.sa = stride_a, p.sb = stride_b;
    p.C = C, p.ldc = ldc, p.sc = stride_c, p.c_f32 = c_f32;
    p.tiles_m = (M + BM - 1) / BM, p.tiles_n = (N + BN - 1) / BN;
    if (batch > 65535 || p.tiles_m * p.tiles_n > 2147483647LL) return (int)cudaErrorInvalidValue;
    p.vec_a = aligned16(A, lda, stride_a, batch);
    p.vec_b = aligned16(B, ldb, stride_b, batch);
    /* pair stores: C aligned to two elements, every row and batch start on an even element */
    p.c_pair = ((uintptr_t)C & (c_f32 ? 7 : 3)) == 0 && ldc % 2 == 0 && (batch <= 1 || stride_c % 2 == 0);
    dim3 grid((unsigned)(p.tiles_m * p.tiles_n), 1, (unsigned)batch);
    cudaStream_t s = (cudaStream_t)stream;
    return (int)(dtype == DV_CU_BF16 ? launch<true>(ta, tb, p, dev, grid, s) : launch<false>(ta, tb, p, dev, grid, s));
}
