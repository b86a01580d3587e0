/* kernels/cuda/attention_bwd.cu — the backward of the flash attention forward
 * (kernels/cuda/attention.cu), after FlashAttention-2 (Dao 2023, Algorithm 2), in passes that
 * need no atomics:
 *   1. Dr[i]   = sum_d dO[i,d] O[i,d]  (O the dropped output)        one warp per query row
 *   2. dK, dV  per key tile (grid: key tiles x B*Hkv): for every query head of the group and
 *              every query tile that can see the keys,
 *                P = exp(scale Q K^T + bias - lse) (0 where masked), dP = dO V^T,
 *                dS = P (Z dP - Dr),  dV += (Z P)^T dO,  dK += scale dS^T Q,
 *                dbias = dS (summed over the query rows when the bias broadcasts over them)
 *              with Z the dropout mask times 1 / (1 - p) (kernels/attention.h's DV_HD
 *              functions, regenerated; Z = 1 without dropout)
 *   3. dQ      per query tile (grid: query tiles x B*Hq): for every visible key tile, the same
 *              P and dS, dQ += scale dS K
 * A block owns its output rows for the whole computation (pass 2 walks every query head of a
 * GQA group itself), so dK, dV are summed over the group in registers, deterministically.
 * q, k, v come as the forward's f16 / bf16 copies; o (the forward's f32 output) and dO are f32.
 *
 * Two implementations of passes 2 and 3 (dv_cu_attention_bwd_with picks; the default is the
 * tensor cores, DV_CUDA_ATTN_BWD=cores in the environment selects the CUDA cores):
 *
 * Tensor cores (dkdv_tc, dq_tc): tiles of 64, 4 warps x 16 rows, mma.sync.m16n8k16 with f32
 * accumulators, the forward's fragment conventions. Pass 2: warp w keeps keys k0 + 16w .. + 16
 * of K and V as A fragments and their dK, dV (16 x D) as accumulators; Q and dO tiles of 64
 * queries are staged in shared memory as halves; 16 queries at a time it computes
 * S^T = K Q^T and dP^T = V dO^T, then P^T and dS^T in registers, and feeds them (the m16n8
 * accumulators of two n tiles are one m16k16 A fragment) to dV += (Z P)^T dO and
 * dK += dS^T Q. Pass 3: warp w keeps 16 query rows of Q and dO as A fragments and dQ as an
 * accumulator; K, V tiles of 64 keys in shared memory; S = Q K^T, dP = dO V^T, dS in
 * registers, dQ += dS K. Head dims: fragments cover round_up(D, 16), zeros past D (D = 40
 * runs as 48); templates for D <= 64 and D <= 128.
 * Numerics: the mma takes halves, so dO, Z P and dS are rounded to the inputs' dtype (bf16:
 * 2^-8 relative) before their products; every sum is f32. Pass 1 then uses the same rounded
 * dO, so that sum_j P_ij (dP_ij - Dr_i) still cancels for a sharp softmax: the result is the
 * exact backward for dO rounded to bf16, up to the P / dS roundings. Against the f32 CPU
 * backward the gradients agree to ~u of the largest element (tests/cuda/test_cuda_matmul.c
 * checks 1.5e-2 bf16, 2e-3 f16). With f16, a dO below f16's normal range (6e-5, e.g. from an
 * unscaled mean loss) loses precision; the op (tensor/cuda.c) uses bf16.
 *
 * CUDA cores (dkdv_kernel, dq_kernel): tiles of 16 in shared memory as f32 (rows padded by one
 * float: the 16 threads that read 16 different rows at one column hit 16 banks); each thread
 * of 256 owns one (query, key) score of a tile and up to 8 elements of the (16, D) gradient
 * accumulator. Everything after the half inputs is f32 (Dr and dP from the same f32 dO): the
 * reference the tensor-core kernels are tested against, and the fallback.
 *
 * D == Dv as in the forward (the op pads other head dims to a multiple of 8: tensor/cuda.c).
 * Not here: ldmatrix / cp.async (the SIMT emulator of `make test-cuda-sim` has neither), a
 * pipelined or split-Q pass 2 (one block per key tile: few blocks for short Tk and large B*Hkv
 * only), passes 2 and 3 fused with atomics for dQ (FA2's own choice; this file stays
 * deterministic), wgmma on sm_90a, head dims above 128. nvcc 13 -Xptxas -v: dkdv_tc at D = 128
 * 255 registers and ~30 bytes of spills on sm_80, 247 and none on sm_90; at D = 64 168 / 160;
 * dq_tc 200-210 (D = 128) and 128 with a few spilled bytes (D = 64). The tensor-core kernels
 * have NEVER RUN ON A GPU: they are checked only under the SIMT emulator (forward, reverse and
 * random thread orders, and AddressSanitizer), whose mma follows the PTX ISA's fragment
 * layouts; their speed is unmeasured.
 */
#include "kernels/cuda/common.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/mma.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

namespace {

using dvcu::mma16816;
using dvcu::to_f32;
using dvcu::from_f32;
using dvcu::pack;
using dvcu::pack_f32;
using dvcu::acc_pair_to_a;
using dvcu::b_from_k_rows;

constexpr int T16 = 16, NT = 256, DMAX = 128, SD = DMAX + 1, OWN = T16 * DMAX / NT; /* 8 */

struct Geom {
    int64_t B, Hq, Hkv, Tq, Tk, D;
    int64_t qs[3], ks[3], vs[3];
    float scale;
    float scale_log2;       /* scale * log2(e) (the tensor-core kernels work in base 2) */
    bool causal;
    int64_t offset;
    const uint8_t *keep;
    int64_t keep_s[2];
    const float *bias;      /* f32, read through bias_s (b, h, i, j); NULL = none */
    int64_t bias_s[4];
    int64_t dbias_rows;     /* 1 (rows summed) or Tq */
    int64_t ocols;          /* the columns of o and dout (f32 rows); those past them up to D read as 0 */
    bool drop;              /* dropout on the weights (kernels/attention.h's mask) */
    uint64_t drop_seed;
    uint32_t drop_thr;
    float drop_keep;        /* 1 / (1 - dropout) */
};


/* rows [t0, t0 + 16) of a (T, D) head with row stride ld, as f32, zeros past T */
template <bool BF16>
__device__ __forceinline__ void load_rows(float *S, const uint16_t *p, int64_t ld, int64_t t0, int64_t T, int64_t D) {
    for (int e = threadIdx.x; e < T16 * D; e += NT) {
        int r = e / (int)D, d = e % (int)D;
        S[r * SD + d] = t0 + r < T ? to_f32<BF16>(p[(t0 + r) * ld + d]) : 0.0f;
    }
}

/* rows [t0, t0 + 16) of an f32 (T, ld) matrix, its first `cols` columns, zeros past T and past
 * cols up to D */
__device__ __forceinline__ void load_rows_f32(float *S, const float *p, int64_t ld, int64_t cols, int64_t t0, int64_t T,
                                              int64_t D) {
    for (int e = threadIdx.x; e < T16 * D; e += NT) {
        int r = e / (int)D, d = e % (int)D;
        S[r * SD + d] = t0 + r < T && d < cols ? p[(t0 + r) * ld + d] : 0.0f;
    }
}

__device__ __forceinline__ bool visible(const Geom &g, int64_t b, int64_t i, int64_t j) {
    return dv_cu_attn_visible(i, j, g.Tk, g.causal, g.offset) && (!g.keep || g.keep[b * g.keep_s[0] + j * g.keep_s[1]] != 0);
}

/* Z P and dS of the tile (queries q0.., keys k0.. of head h) into ZPs, dSs; one score per
 * thread, whose dS it also returns:
 *   P = exp(scale q.k + bias - lse),  dS = P (Z dP - Dr)   (Z = 1 without dropout) */
__device__ __forceinline__ float scores(const Geom &g, int64_t b, int64_t h, int64_t q0, int64_t k0, const float *Qs,
                                        const float *Ks, const float *Vs, const float *dOs, const float *lse_s,
                                        const float *dr_s, float *ZPs, float *dSs) {
    int qi = threadIdx.x / T16, kj = threadIdx.x % T16;
    int64_t i = q0 + qi, j = k0 + kj;
    float zp = 0.0f, ds = 0.0f;
    if (i < g.Tq && visible(g, b, i, j) && lse_s[qi] != -INFINITY) {
        float s = 0.0f, dp = 0.0f;
        for (int d = 0; d < (int)g.D; d++) {
            s += Qs[qi * SD + d] * Ks[kj * SD + d];
            dp += dOs[qi * SD + d] * Vs[kj * SD + d];
        }
        s *= g.scale;
        if (g.bias) s += g.bias[b * g.bias_s[0] + h * g.bias_s[1] + i * g.bias_s[2] + j * g.bias_s[3]];
        float p = expf(s - lse_s[qi]), z = 1.0f;
        if (g.drop)
            z = dv_attn_drop_hash(dv_attn_drop_row(g.drop_seed, b, h, i), (uint32_t)j) >= g.drop_thr ? g.drop_keep : 0.0f;
        zp = z * p;
        ds = p * (z * dp - dr_s[qi]);
    }
    ZPs[qi * (T16 + 1) + kj] = zp;
    dSs[qi * (T16 + 1) + kj] = ds;
    return ds;
}

/* Dr[r] = dO[r] . O[r]; ROUND 1 / 2: dO rounded to bf16 / f16 first, as the tensor-core
 * kernels see it in dP = dO V^T (so that sum_j P_ij (dP_ij - Dr_i) still cancels) */
template <int ROUND>
__global__ void __launch_bounds__(NT) dr_kernel(int64_t rows, int64_t D, const float *__restrict__ o,
                                                const float *__restrict__ dout, float *__restrict__ dr) {
    int64_t r = blockIdx.x * (int64_t)(NT / 32) + threadIdx.x / 32;
    if (r >= rows) return;
    float s = 0.0f;
    for (int64_t d = threadIdx.x % 32; d < D; d += 32) {
        float x = dout[r * D + d];
        if (ROUND == 1) x = __bfloat162float(__float2bfloat16_rn(x));
        if (ROUND == 2) x = __half2float(__float2half_rn(x));
        s += o[r * D + d] * x;
    }
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    if (threadIdx.x % 32 == 0) dr[r] = s;
}

/* blockIdx.x: key tile; blockIdx.y: b * Hkv + hk */
template <bool BF16>
__global__ void __launch_bounds__(NT) dkdv_kernel(Geom g, const uint16_t *__restrict__ q, const uint16_t *__restrict__ k,
                                                  const uint16_t *__restrict__ v, const float *__restrict__ dout,
                                                  const float *__restrict__ lse, const float *__restrict__ dr,
                                                  float *__restrict__ dk, float *__restrict__ dv,
                                                  float *__restrict__ dbias) {
    __shared__ float Ks[T16 * SD], Vs[T16 * SD], Qs[T16 * SD], dOs[T16 * SD];
    __shared__ float Ps[T16 * (T16 + 1)], dSs[T16 * (T16 + 1)], lse_s[T16], dr_s[T16];
    const int64_t b = blockIdx.y / g.Hkv, hk = blockIdx.y % g.Hkv, k0 = (int64_t)blockIdx.x * T16, D = g.D;
    const int64_t group = g.Hq / g.Hkv;
    load_rows<BF16>(Ks, k + b * g.ks[0] + hk * g.ks[1], g.ks[2], k0, g.Tk, D);
    load_rows<BF16>(Vs, v + b * g.vs[0] + hk * g.vs[1], g.vs[2], k0, g.Tk, D);
    float adk[OWN], adv[OWN];
#pragma unroll
    for (int u = 0; u < OWN; u++) adk[u] = adv[u] = 0.0f;
    /* the first query that can see key k0 under the causal mask: i + offset >= k0 */
    int64_t qstart = 0;
    if (g.causal) qstart = k0 - g.offset > 0 ? (k0 - g.offset) / T16 * T16 : 0;
    for (int64_t h = hk * group; h < (hk + 1) * group; h++) {
        const int64_t bh = b * g.Hq + h;
        float db = 0.0f; /* dbias_rows == 1: this thread's column sum over the head's query tiles */
        for (int64_t q0 = qstart; q0 < g.Tq; q0 += T16) {
            __syncthreads(); /* the previous tiles are no longer read */
            load_rows<BF16>(Qs, q + b * g.qs[0] + h * g.qs[1], g.qs[2], q0, g.Tq, D);
            load_rows_f32(dOs, dout + bh * g.Tq * g.ocols, g.ocols, g.ocols, q0, g.Tq, D);
            if (threadIdx.x < T16) {
                int64_t i = q0 + threadIdx.x;
                lse_s[threadIdx.x] = i < g.Tq ? lse[bh * g.Tq + i] : -INFINITY;
                dr_s[threadIdx.x] = i < g.Tq ? dr[bh * g.Tq + i] : 0.0f;
            }
            __syncthreads();
            float ds = scores(g, b, h, q0, k0, Qs, Ks, Vs, dOs, lse_s, dr_s, Ps, dSs);
            if (dbias) {
                int64_t i = q0 + threadIdx.x / T16, j = k0 + threadIdx.x % T16;
                if (g.dbias_rows == 1) db += ds;
                else if (i < g.Tq && j < g.Tk) dbias[(bh * g.Tq + i) * g.Tk + j] = ds;
            }
            __syncthreads();
#pragma unroll
            for (int u = 0; u < OWN; u++) {
                int e = threadIdx.x + u * NT, kj = e / (int)D, d = e % (int)D;
                if (kj >= T16) break;
                float sv = 0.0f, sk = 0.0f;
                for (int qi = 0; qi < T16; qi++) {
                    sv += Ps[qi * (T16 + 1) + kj] * dOs[qi * SD + d];
                    sk += dSs[qi * (T16 + 1) + kj] * Qs[qi * SD + d];
                }
                adv[u] += sv;
                adk[u] += g.scale * sk;
            }
        }
        if (dbias && g.dbias_rows == 1) { /* column sums: the 16 threads of each key, in a row of Ps */
            __syncthreads();
            Ps[threadIdx.x] = db;  /* Ps is free: (16 + 1) * 16 >= 256 floats */
            __syncthreads();
            if (threadIdx.x < T16 && k0 + threadIdx.x < g.Tk) {
                float sum = 0.0f;
                for (int qi = 0; qi < T16; qi++) sum += Ps[qi * T16 + threadIdx.x];
                dbias[bh * g.Tk + k0 + threadIdx.x] = sum;
            }
        }
    }
#pragma unroll
    for (int u = 0; u < OWN; u++) {
        int e = threadIdx.x + u * NT, kj = e / (int)D, d = e % (int)D;
        if (kj >= T16) break;
        int64_t j = k0 + kj;
        if (j >= g.Tk) continue;
        int64_t o = ((b * g.Hkv + hk) * g.Tk + j) * D + d;
        if (dk) dk[o] = adk[u];
        if (dv) dv[o] = adv[u];
    }
}

/* blockIdx.x: query tile; blockIdx.y: b * Hq + h */
template <bool BF16>
__global__ void __launch_bounds__(NT) dq_kernel(Geom g, const uint16_t *__restrict__ q, const uint16_t *__restrict__ k,
                                                const uint16_t *__restrict__ v, const float *__restrict__ dout,
                                                const float *__restrict__ lse, const float *__restrict__ dr,
                                                float *__restrict__ dq) {
    __shared__ float Ks[T16 * SD], Vs[T16 * SD], Qs[T16 * SD], dOs[T16 * SD];
    __shared__ float Ps[T16 * (T16 + 1)], dSs[T16 * (T16 + 1)], lse_s[T16], dr_s[T16];
    const int64_t bh = blockIdx.y, b = bh / g.Hq, h = bh % g.Hq, hk = h / (g.Hq / g.Hkv);
    const int64_t q0 = (int64_t)blockIdx.x * T16, D = g.D;
    load_rows<BF16>(Qs, q + b * g.qs[0] + h * g.qs[1], g.qs[2], q0, g.Tq, D);
    load_rows_f32(dOs, dout + bh * g.Tq * g.ocols, g.ocols, g.ocols, q0, g.Tq, D);
    if (threadIdx.x < T16) {
        int64_t i = q0 + threadIdx.x;
        lse_s[threadIdx.x] = i < g.Tq ? lse[bh * g.Tq + i] : -INFINITY;
        dr_s[threadIdx.x] = i < g.Tq ? dr[bh * g.Tq + i] : 0.0f;
    }
    float adq[OWN];
#pragma unroll
    for (int u = 0; u < OWN; u++) adq[u] = 0.0f;
    const int64_t kv_end = dv_cu_attn_kv_end(q0, T16, g.Tq, g.Tk, g.causal, g.offset);
    for (int64_t k0 = 0; k0 < kv_end; k0 += T16) {
        __syncthreads();
        load_rows<BF16>(Ks, k + b * g.ks[0] + hk * g.ks[1], g.ks[2], k0, g.Tk, D);
        load_rows<BF16>(Vs, v + b * g.vs[0] + hk * g.vs[1], g.vs[2], k0, g.Tk, D);
        __syncthreads();
        scores(g, b, h, q0, k0, Qs, Ks, Vs, dOs, lse_s, dr_s, Ps, dSs);
        __syncthreads();
#pragma unroll
        for (int u = 0; u < OWN; u++) {
            int e = threadIdx.x + u * NT, qi = e / (int)D, d = e % (int)D;
            if (qi >= T16) break;
            float s = 0.0f;
            for (int kj = 0; kj < T16; kj++) s += dSs[qi * (T16 + 1) + kj] * Ks[kj * SD + d];
            adq[u] += g.scale * s;
        }
    }
#pragma unroll
    for (int u = 0; u < OWN; u++) {
        int e = threadIdx.x + u * NT, qi = e / (int)D, d = e % (int)D;
        if (qi >= T16) break;
        if (q0 + qi < g.Tq) dq[(bh * g.Tq + q0 + qi) * D + d] = adq[u];
    }
}

/* ---- the tensor-core kernels ------------------------------------------------------------ */
/* Tiles of BT = 64 rows, 4 warps of 16; mma.sync.m16n8k16 with f32 accumulators; the same
 * fragment conventions as the forward (kernels/cuda/attention.cu): the m16n8 accumulator of two
 * adjacent n tiles is an m16k16 A fragment, so P^T, dS^T (pass 2) and dS (pass 3) go from the
 * scores' registers straight into the next mma, rounded to the inputs' dtype. */
constexpr int BT = 64, NW = 4, NTH = NW * 32;
constexpr float LOG2E = 1.4426950408889634074f;




/* rows [t0, t0 + BT) of a half (T, D) head (row stride ld) into S[BT][SD], zeros past T and
 * from D up to DP (D is a multiple of 8, so a pair never straddles it) */
template <int SD>
__device__ __forceinline__ void stage_half(uint16_t *S, const uint16_t *p, int64_t ld, int64_t t0, int64_t T,
                                           int64_t D, int DP) {
    const int pairs = DP / 2;
    for (int e = threadIdx.x; e < BT * pairs; e += NTH) {
        int r = e / pairs, c = (e % pairs) * 2;
        int64_t t = t0 + r;
        uint16_t lo = 0, hi = 0;
        if (t < T && c < D) lo = p[t * ld + c], hi = p[t * ld + c + 1];
        *(uint32_t *)&S[r * SD + c] = pack(lo, hi);
    }
}

/* rows [t0, t0 + BT) of an f32 (T, cols) matrix rounded to the half dtype, zeros past T and
 * from cols up to DP (cols may be odd: Dv = 5 arrives padded to D = 8) */
template <bool BF16, int SD>
__device__ __forceinline__ void stage_f32(uint16_t *S, const float *p, int64_t cols, int64_t t0, int64_t T, int DP) {
    const int pairs = DP / 2;
    for (int e = threadIdx.x; e < BT * pairs; e += NTH) {
        int r = e / pairs, c = (e % pairs) * 2;
        int64_t t = t0 + r;
        float lo = t < T && c < cols ? p[t * cols + c] : 0.0f;
        float hi = t < T && c + 1 < cols ? p[t * cols + c + 1] : 0.0f;
        *(uint32_t *)&S[r * SD + c] = pack_f32<BF16>(lo, hi);
    }
}

/* the A fragments (16 rows x DP) of rows row[0] (and row[1] = row[0] + 8) of a half head */
template <int ND16>
__device__ __forceinline__ void frag_half(uint32_t f[ND16][4], const uint16_t *p, int64_t ld, const int64_t row[2],
                                          int64_t T, int64_t D) {
    const int tig = threadIdx.x % 4;
#pragma unroll
    for (int kd = 0; kd < ND16; kd++)
#pragma unroll
        for (int r = 0; r < 4; r++) {
            int64_t t = row[r % 2];
            int d = kd * 16 + tig * 2 + 8 * (r / 2);
            uint16_t lo = 0, hi = 0;
            if (t < T && d < D) lo = p[t * ld + d], hi = p[t * ld + d + 1];
            f[kd][r] = pack(lo, hi);
        }
}

/* pass 2 on tensor cores. blockIdx.x: key tile of BT; blockIdx.y: b * Hkv + hk. Warp w owns
 * keys k0 + 16 w .. + 16: their K and V rows as A fragments in registers, dK and dV (16 x DP)
 * as f32 accumulators. For every query head of the group and every query tile of BT that can
 * see the keys (Q and dO staged in shared memory as halves), 16 queries at a time:
 *   S^T = K Q^T, dP^T = V dO^T            (16 keys x 16 queries, mma over DP)
 *   P^T = exp(scale S^T + bias - lse),  dS^T = P^T (Z dP^T - Dr)      (registers, f32)
 *   dV += (Z P)^T dO,  dK += dS^T Q       (mma, the A operands from the accumulators)
 * dK gets the scale at the end. No atomics: the block owns its keys for the whole group. */
template <bool BF16, int DMAX>
__global__ void __launch_bounds__(NTH) dkdv_tc(Geom g, const uint16_t *__restrict__ q, const uint16_t *__restrict__ k,
                                               const uint16_t *__restrict__ v, const float *__restrict__ dout,
                                               const float *__restrict__ lse, const float *__restrict__ dr,
                                               float *__restrict__ dk, float *__restrict__ dv,
                                               float *__restrict__ dbias) {
    constexpr int SD = DMAX + 8, ND16 = DMAX / 16, ND8 = DMAX / 8;
    __shared__ __align__(16) uint16_t Qs[BT * SD];
    __shared__ __align__(16) uint16_t dOs[BT * SD];
    __shared__ float lse_s[BT], dr_s[BT]; /* lse in base 2 */
    __shared__ uint32_t dkey_s[BT];       /* the queries' dropout row keys */

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gq = lane / 4, tig = lane % 4;
    const int64_t b = blockIdx.y / g.Hkv, hk = blockIdx.y % g.Hkv, k0 = (int64_t)blockIdx.x * BT;
    const int64_t group = g.Hq / g.Hkv, D = g.D;
    const int DP = (int)((D + 15) / 16) * 16, nd16 = DP / 16;
    /* this thread's two keys: r = 0 -> key gq, r = 1 -> key gq + 8 of the warp's 16 */
    const int64_t key[2] = {k0 + warp * 16 + gq, k0 + warp * 16 + gq + 8};

    uint32_t kf[ND16][4], vf[ND16][4];
    frag_half<ND16>(kf, k + b * g.ks[0] + hk * g.ks[1], g.ks[2], key, g.Tk, D);
    frag_half<ND16>(vf, v + b * g.vs[0] + hk * g.vs[1], g.vs[2], key, g.Tk, D);
    float adk[ND8][4], adv[ND8][4];
#pragma unroll
    for (int t = 0; t < ND8; t++)
#pragma unroll
        for (int r = 0; r < 4; r++) adk[t][r] = adv[t][r] = 0.0f;

    /* the first query that can see key k0 under the causal mask: i + offset >= k0 */
    int64_t qstart = 0;
    if (g.causal) qstart = k0 - g.offset > 0 ? (k0 - g.offset) / BT * BT : 0;
    for (int64_t h = hk * group; h < (hk + 1) * group; h++) {
        const int64_t bh = b * g.Hq + h;
        const uint16_t *qh = q + b * g.qs[0] + h * g.qs[1];
        float db[2] = {0.0f, 0.0f}; /* dbias_rows == 1: this thread's part of its keys' column sums */
        for (int64_t q0 = qstart; q0 < g.Tq; q0 += BT) {
            __syncthreads(); /* the previous tiles are no longer read */
            stage_half<SD>(Qs, qh, g.qs[2], q0, g.Tq, D, DP);
            stage_f32<BF16, SD>(dOs, dout + bh * g.Tq * g.ocols, g.ocols, q0, g.Tq, DP);
            if (threadIdx.x < BT) {
                int64_t i = q0 + threadIdx.x;
                lse_s[threadIdx.x] = i < g.Tq ? lse[bh * g.Tq + i] * LOG2E : -INFINITY;
                dr_s[threadIdx.x] = i < g.Tq ? dr[bh * g.Tq + i] : 0.0f;
                if (g.drop) dkey_s[threadIdx.x] = dv_attn_drop_row(g.drop_seed, b, h, i);
            }
            __syncthreads();
#pragma unroll 1
            for (int qc = 0; qc < BT / 16; qc++) {
                /* S^T and dP^T for queries q0 + qc * 16 .. + 16: n tiles of 8 queries */
                float s[2][4], dp[2][4];
#pragma unroll
                for (int t = 0; t < 2; t++) {
#pragma unroll
                    for (int r = 0; r < 4; r++) s[t][r] = dp[t][r] = 0.0f;
                    const int n = qc * 16 + t * 8 + gq;
#pragma unroll
                    for (int kd = 0; kd < ND16; kd++) {
                        if (kd >= nd16) break;
                        uint32_t bq[2], bo[2];
                        bq[0] = *(const uint32_t *)&Qs[n * SD + kd * 16 + tig * 2];
                        bq[1] = *(const uint32_t *)&Qs[n * SD + kd * 16 + tig * 2 + 8];
                        bo[0] = *(const uint32_t *)&dOs[n * SD + kd * 16 + tig * 2];
                        bo[1] = *(const uint32_t *)&dOs[n * SD + kd * 16 + tig * 2 + 8];
                        mma16816<BF16>(s[t], kf[kd], bq);
                        mma16816<BF16>(dp[t], vf[kd], bo);
                    }
                }
                /* Z P^T into s, dS^T into dp; element r of tile t: key key[r / 2], query column
                 * qc * 16 + t * 8 + tig * 2 + r % 2 of the tile */
#pragma unroll
                for (int t = 0; t < 2; t++)
#pragma unroll
                    for (int r = 0; r < 4; r++) {
                        const int col = qc * 16 + t * 8 + tig * 2 + (r % 2);
                        const int64_t i = q0 + col, j = key[r / 2];
                        float zp = 0.0f, ds = 0.0f;
                        if (i < g.Tq && lse_s[col] != -INFINITY && visible(g, b, i, j)) {
                            float x = s[t][r] * g.scale_log2;
                            if (g.bias)
                                x += g.bias[b * g.bias_s[0] + h * g.bias_s[1] + i * g.bias_s[2] + j * g.bias_s[3]] * LOG2E;
                            float p = exp2f(x - lse_s[col]), z = 1.0f;
                            if (g.drop) z = dv_attn_drop_hash(dkey_s[col], (uint32_t)j) >= g.drop_thr ? g.drop_keep : 0.0f;
                            zp = z * p;
                            ds = p * (z * dp[t][r] - dr_s[col]);
                        }
                        s[t][r] = zp;
                        dp[t][r] = ds;
                        if (dbias) {
                            if (g.dbias_rows == 1) db[r / 2] += ds;
                            else if (i < g.Tq && j < g.Tk) dbias[(bh * g.Tq + i) * g.Tk + j] = ds;
                        }
                    }
                uint32_t pa[4], sa[4];
                acc_pair_to_a<BF16>(pa, s[0], s[1]);
                acc_pair_to_a<BF16>(sa, dp[0], dp[1]);
                /* dV += (Z P)^T dO, dK += dS^T Q: k = the 16 queries, n = 8 columns of d */
                const int row = qc * 16 + tig * 2;
#pragma unroll
                for (int t = 0; t < ND8; t++) {
                    if (t * 8 >= DP) break;
                    const int d = t * 8 + gq;
                    uint32_t bo[2], bq[2];
                    b_from_k_rows(bo, dOs, SD, row, d);
                    b_from_k_rows(bq, Qs, SD, row, d);
                    mma16816<BF16>(adv[t], pa, bo);
                    mma16816<BF16>(adk[t], sa, bq);
                }
            }
        }
        if (dbias && g.dbias_rows == 1) { /* a key's column sum lives in the 4 lanes of a quad */
#pragma unroll
            for (int rr = 0; rr < 2; rr++) {
                db[rr] += __shfl_xor_sync(0xffffffffu, db[rr], 1);
                db[rr] += __shfl_xor_sync(0xffffffffu, db[rr], 2);
                if (tig == 0 && key[rr] < g.Tk) dbias[bh * g.Tk + key[rr]] = db[rr];
            }
        }
    }
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        if (key[rr] >= g.Tk) continue;
        const int64_t o = ((b * g.Hkv + hk) * g.Tk + key[rr]) * D;
#pragma unroll
        for (int t = 0; t < ND8; t++) {
            const int d = t * 8 + tig * 2;
            if (d >= D) break;
            if (dk) *(float2 *)&dk[o + d] = make_float2(g.scale * adk[t][2 * rr], g.scale * adk[t][2 * rr + 1]);
            if (dv) *(float2 *)&dv[o + d] = make_float2(adv[t][2 * rr], adv[t][2 * rr + 1]);
        }
    }
}

/* pass 3 on tensor cores. blockIdx.x: query tile of BT; blockIdx.y: b * Hq + h. Warp w owns
 * queries q0 + 16 w .. + 16: Q and dO (rounded) as A fragments, dQ (16 x DP) as an f32
 * accumulator. For every visible key tile of BT (K and V staged in shared memory), 16 keys at
 * a time: S = Q K^T, dP = dO V^T, P, dS = P (Z dP - Dr) in registers, dQ += dS K. */
template <bool BF16, int DMAX>
__global__ void __launch_bounds__(NTH) dq_tc(Geom g, const uint16_t *__restrict__ q, const uint16_t *__restrict__ k,
                                             const uint16_t *__restrict__ v, const float *__restrict__ dout,
                                             const float *__restrict__ lse, const float *__restrict__ dr,
                                             float *__restrict__ dq) {
    constexpr int SD = DMAX + 8, ND16 = DMAX / 16, ND8 = DMAX / 8;
    __shared__ __align__(16) uint16_t Ks[BT * SD];
    __shared__ __align__(16) uint16_t Vs[BT * SD];

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gq = lane / 4, tig = lane % 4;
    const int64_t bh = blockIdx.y, b = bh / g.Hq, h = bh % g.Hq, hk = h / (g.Hq / g.Hkv);
    const int64_t q0 = (int64_t)blockIdx.x * BT, D = g.D;
    const int DP = (int)((D + 15) / 16) * 16, nd16 = DP / 16;
    const int64_t row[2] = {q0 + warp * 16 + gq, q0 + warp * 16 + gq + 8};

    uint32_t qf[ND16][4], of[ND16][4];
    frag_half<ND16>(qf, q + b * g.qs[0] + h * g.qs[1], g.qs[2], row, g.Tq, D);
    const float *doh = dout + bh * g.Tq * g.ocols;
#pragma unroll
    for (int kd = 0; kd < ND16; kd++)
#pragma unroll
        for (int r = 0; r < 4; r++) {
            int64_t i = row[r % 2];
            int d = kd * 16 + tig * 2 + 8 * (r / 2);
            float lo = i < g.Tq && d < g.ocols ? doh[i * g.ocols + d] : 0.0f;
            float hi = i < g.Tq && d + 1 < g.ocols ? doh[i * g.ocols + d + 1] : 0.0f;
            of[kd][r] = pack_f32<BF16>(lo, hi);
        }
    float lse2[2], drr[2];
    const float *brow[2] = {nullptr, nullptr};
    uint32_t dkey[2] = {0, 0};
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        lse2[rr] = row[rr] < g.Tq ? lse[bh * g.Tq + row[rr]] * LOG2E : -INFINITY;
        drr[rr] = row[rr] < g.Tq ? dr[bh * g.Tq + row[rr]] : 0.0f;
        if (g.bias) brow[rr] = g.bias + b * g.bias_s[0] + h * g.bias_s[1] + row[rr] * g.bias_s[2];
        if (g.drop) dkey[rr] = dv_attn_drop_row(g.drop_seed, b, h, row[rr]);
    }
    float acc[ND8][4];
#pragma unroll
    for (int t = 0; t < ND8; t++)
#pragma unroll
        for (int r = 0; r < 4; r++) acc[t][r] = 0.0f;

    const int64_t kv_end = dv_cu_attn_kv_end(q0, BT, g.Tq, g.Tk, g.causal, g.offset);
    for (int64_t kv0 = 0; kv0 < kv_end; kv0 += BT) {
        __syncthreads(); /* the previous tiles are no longer read */
        stage_half<SD>(Ks, k + b * g.ks[0] + hk * g.ks[1], g.ks[2], kv0, g.Tk, D, DP);
        stage_half<SD>(Vs, v + b * g.vs[0] + hk * g.vs[1], g.vs[2], kv0, g.Tk, D, DP);
        __syncthreads();
#pragma unroll 1
        for (int kc = 0; kc < BT / 16; kc++) {
            float s[2][4], dp[2][4];
#pragma unroll
            for (int t = 0; t < 2; t++) {
#pragma unroll
                for (int r = 0; r < 4; r++) s[t][r] = dp[t][r] = 0.0f;
                const int n = kc * 16 + t * 8 + gq;
#pragma unroll
                for (int kd = 0; kd < ND16; kd++) {
                    if (kd >= nd16) break;
                    uint32_t bk[2], bv[2];
                    bk[0] = *(const uint32_t *)&Ks[n * SD + kd * 16 + tig * 2];
                    bk[1] = *(const uint32_t *)&Ks[n * SD + kd * 16 + tig * 2 + 8];
                    bv[0] = *(const uint32_t *)&Vs[n * SD + kd * 16 + tig * 2];
                    bv[1] = *(const uint32_t *)&Vs[n * SD + kd * 16 + tig * 2 + 8];
                    mma16816<BF16>(s[t], qf[kd], bk);
                    mma16816<BF16>(dp[t], of[kd], bv);
                }
            }
            /* dS into dp; element r of tile t: query row[r / 2], key kv0 + kc * 16 + t * 8 +
             * tig * 2 + r % 2 */
#pragma unroll
            for (int t = 0; t < 2; t++)
#pragma unroll
                for (int r = 0; r < 4; r++) {
                    const int64_t i = row[r / 2], j = kv0 + kc * 16 + t * 8 + tig * 2 + (r % 2);
                    float ds = 0.0f;
                    if (i < g.Tq && lse2[r / 2] != -INFINITY && visible(g, b, i, j)) {
                        float x = s[t][r] * g.scale_log2;
                        if (g.bias) x += brow[r / 2][j * g.bias_s[3]] * LOG2E;
                        float p = exp2f(x - lse2[r / 2]), z = 1.0f;
                        if (g.drop) z = dv_attn_drop_hash(dkey[r / 2], (uint32_t)j) >= g.drop_thr ? g.drop_keep : 0.0f;
                        ds = p * (z * dp[t][r] - drr[r / 2]);
                    }
                    dp[t][r] = ds;
                }
            uint32_t sa[4];
            acc_pair_to_a<BF16>(sa, dp[0], dp[1]);
            /* dQ += dS K: k = the 16 keys, n = 8 columns of d */
            const int kr = kc * 16 + tig * 2;
#pragma unroll
            for (int t = 0; t < ND8; t++) {
                if (t * 8 >= DP) break;
                const int d = t * 8 + gq;
                uint32_t bk[2];
                b_from_k_rows(bk, Ks, SD, kr, d);
                mma16816<BF16>(acc[t], sa, bk);
            }
        }
    }
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        const int64_t i = row[rr];
        if (i >= g.Tq) continue;
#pragma unroll
        for (int t = 0; t < ND8; t++) {
            const int d = t * 8 + tig * 2;
            if (d >= D) break;
            *(float2 *)&dq[(bh * g.Tq + i) * D + d] = make_float2(g.scale * acc[t][2 * rr], g.scale * acc[t][2 * rr + 1]);
        }
    }
}

template <bool BF16, int DMAX>
void launch_tc(const Geom &g, const uint16_t *q, const uint16_t *k, const uint16_t *v, const float *o, const float *lse,
               const float *dout, float *dq, float *dk, float *dv, float *dbias, float *dr, cudaStream_t s) {
    int64_t rows = g.B * g.Hq * g.Tq;
    constexpr int ROUND = BF16 ? 1 : 2; /* Dr from the rounded dO that dP sees */
    dr_kernel<ROUND><<<(unsigned)((rows + NT / 32 - 1) / (NT / 32)), NT, 0, s>>>(rows, g.ocols, o, dout, dr);
    if (dk || dv || dbias) {
        dim3 grid((unsigned)((g.Tk + BT - 1) / BT), (unsigned)(g.B * g.Hkv));
        dkdv_tc<BF16, DMAX><<<grid, NTH, 0, s>>>(g, q, k, v, dout, lse, dr, dk, dv, dbias);
    }
    if (dq) {
        dim3 grid((unsigned)((g.Tq + BT - 1) / BT), (unsigned)(g.B * g.Hq));
        dq_tc<BF16, DMAX><<<grid, NTH, 0, s>>>(g, q, k, v, dout, lse, dr, dq);
    }
}

template <bool BF16>
void launch(const Geom &g, const uint16_t *q, const uint16_t *k, const uint16_t *v, const float *o, const float *lse,
            const float *dout, float *dq, float *dk, float *dv, float *dbias, float *dr, cudaStream_t s) {
    int64_t rows = g.B * g.Hq * g.Tq;
    dr_kernel<0><<<(unsigned)((rows + NT / 32 - 1) / (NT / 32)), NT, 0, s>>>(rows, g.ocols, o, dout, dr);
    if (dk || dv || dbias) {
        dim3 grid((unsigned)((g.Tk + T16 - 1) / T16), (unsigned)(g.B * g.Hkv));
        dkdv_kernel<BF16><<<grid, NT, 0, s>>>(g, q, k, v, dout, lse, dr, dk, dv, dbias);
    }
    if (dq) {
        dim3 grid((unsigned)((g.Tq + T16 - 1) / T16), (unsigned)(g.B * g.Hq));
        dq_kernel<BF16><<<grid, NT, 0, s>>>(g, q, k, v, dout, lse, dr, dq);
    }
}

} // namespace

extern "C" size_t dv_cu_attention_bwd_work_bytes(const dv_attn_geom *g) {
    return (size_t)(g->B * g->Hq * g->Tq) * sizeof(float);
}

extern "C" int dv_cu_attention_bwd(dv_cu_half dtype, const dv_attn_geom *ag, const uint16_t *q, const uint16_t *k,
                                   const uint16_t *v, const float *bias, const float *o, const float *lse,
                                   const float *dout, int64_t ocols, float *dq, float *dk, float *dv, float *dbias,
                                   void *work, dv_cu_stream stream) {
    return dv_cu_attention_bwd_with(DV_CU_ATTN_BWD_AUTO, dtype, ag, q, k, v, bias, o, lse, dout, ocols, dq, dk, dv,
                                    dbias, work, stream);
}

extern "C" int dv_cu_attention_bwd_with(dv_cu_attn_bwd_kind kind, dv_cu_half dtype, const dv_attn_geom *ag,
                                        const uint16_t *q, const uint16_t *k, const uint16_t *v, const float *bias,
                                        const float *o, const float *lse, const float *dout, int64_t ocols, float *dq,
                                        float *dk, float *dv, float *dbias, void *work, dv_cu_stream stream) {
    if (kind == DV_CU_ATTN_BWD_AUTO) {
        const char *env = getenv("DV_CUDA_ATTN_BWD");
        kind = env && strcmp(env, "cores") == 0 ? DV_CU_ATTN_BWD_CORES : DV_CU_ATTN_BWD_TC;
    }
    if (kind != DV_CU_ATTN_BWD_TC && kind != DV_CU_ATTN_BWD_CORES) return (int)cudaErrorInvalidValue;
    if (ag->D != ag->Dv || ag->D <= 0 || ag->D > DMAX || ag->D % 8 != 0) return (int)cudaErrorInvalidValue;
    if (!(ag->dropout >= 0 && ag->dropout < 1) || ocols < 0 || ocols > ag->D) return (int)cudaErrorInvalidValue;
    if (dbias && (ag->dbias_rows != 1 && ag->dbias_rows != ag->Tq)) return (int)cudaErrorInvalidValue;
    if (ag->B <= 0 || ag->Hq <= 0 || ag->Tq <= 0) return 0; /* no query rows: a 0-block grid is a launch error */
    if (ag->Hkv <= 0 || ag->Hq % ag->Hkv != 0) return (int)cudaErrorInvalidValue;
    if (ag->Tk <= 0) /* no keys: no row sees any, dq = 0 as on the CPU (dk, dv are empty) */
        return dq ? (int)cudaMemsetAsync(dq, 0, (size_t)(ag->B * ag->Hq * ag->Tq * ag->D) * sizeof(float),
                                         (cudaStream_t)stream)
                  : 0;
    if (ag->B * ag->Hq > 65535) return (int)cudaErrorInvalidValue;
    Geom g;
    g.B = ag->B, g.Hq = ag->Hq, g.Hkv = ag->Hkv, g.Tq = ag->Tq, g.Tk = ag->Tk, g.D = ag->D;
    for (int i = 0; i < 3; i++) g.qs[i] = ag->q_stride[i], g.ks[i] = ag->k_stride[i], g.vs[i] = ag->v_stride[i];
    g.scale = (float)ag->scale;
    g.scale_log2 = (float)(ag->scale * 1.4426950408889634074);
    g.causal = ag->causal;
    g.offset = ag->causal_offset;
    g.keep = ag->keep;
    g.keep_s[0] = ag->keep_stride[0], g.keep_s[1] = ag->keep_stride[1];
    g.bias = bias;
    for (int i = 0; i < 4; i++) g.bias_s[i] = ag->bias_stride[i];
    g.dbias_rows = ag->dbias_rows;
    g.ocols = ocols;
    g.drop = ag->dropout > 0;
    g.drop_seed = ag->dropout_seed;
    g.drop_thr = dv_attn_drop_threshold(ag->dropout);
    g.drop_keep = g.drop ? (float)(1.0 / (1.0 - ag->dropout)) : 1.0f;
    cudaStream_t s = (cudaStream_t)stream;
    /* dbias: entries of (query, key) tiles the causal mask skips stay 0 */
    if (dbias && g.dbias_rows != 1) {
        cudaError_t e = cudaMemsetAsync(dbias, 0, (size_t)(g.B * g.Hq * g.Tq * g.Tk) * sizeof(float), s);
        if (e != cudaSuccess) return (int)e;
    }
    float *dr = (float *)work;
    const bool bf16 = dtype == DV_CU_BF16, small = g.D <= 64;
    if (kind == DV_CU_ATTN_BWD_CORES && bf16) launch<true>(g, q, k, v, o, lse, dout, dq, dk, dv, dbias, dr, s);
    else if (kind == DV_CU_ATTN_BWD_CORES) launch<false>(g, q, k, v, o, lse, dout, dq, dk, dv, dbias, dr, s);
    else if (bf16 && small) launch_tc<true, 64>(g, q, k, v, o, lse, dout, dq, dk, dv, dbias, dr, s);
    else if (bf16) launch_tc<true, 128>(g, q, k, v, o, lse, dout, dq, dk, dv, dbias, dr, s);
    else if (small) launch_tc<false, 64>(g, q, k, v, o, lse, dout, dq, dk, dv, dbias, dr, s);
    else launch_tc<false, 128>(g, q, k, v, o, lse, dout, dq, dk, dv, dbias, dr, s);
    return (int)cudaGetLastError();
}
