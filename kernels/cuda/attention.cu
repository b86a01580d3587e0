/* kernels/cuda/attention.cu — flash attention forward on tensor cores (Dao, "FlashAttention-2",
 * 2023, Algorithm 1), f16 / bf16 inputs, f32 softmax statistics and output (O is written
 * from the f32 accumulator, not rounded to the inputs' dtype); kernels/attention.h's
 * forward contract: GQA, causal with offset, key padding mask, the additive bias (f32, read
 * through its four broadcast strides, added to the scaled score in base 2), and dropout on the
 * weights with the CPU's mask (dv_attn_drop_row / dv_attn_drop_hash of kernels/attention.h, the
 * same DV_HD functions: the row sum is taken before the mask, P V after it).
 *
 * One block of 4 warps takes 64 query rows of one (batch, head); each warp owns 16 rows and
 * keeps them in registers from start to end:
 *   Q fragments      (16 x D)   loaded once from global memory
 *   S = Q K^T        (16 x 64)  mma.m16n8k16 against the key tile in shared memory
 *   running max m, running sum l per row, O accumulator (16 x D) in f32
 * Key / value tiles of 64 rows are staged in shared memory (k-contiguous rows padded by 8
 * halves). The softmax runs in base 2 (scores pre-multiplied by scale * log2 e, exp2f); the
 * probabilities go from the S accumulator layout straight into the A operand of the P V mma
 * (the m16n8 f32 accumulator of two adjacent key tiles is exactly an m16k16 A fragment), so
 * P never touches shared memory. Causal tiles past the last visible key are skipped
 * (kernels/cuda/common.h dv_cu_attn_kv_end); masked scores are -inf, and a row that sees no
 * key at all ends with O = 0 and lse = -inf, as on the CPU.
 *
 * Template on the padded head dim (64 or 128): D is any multiple of 8 up to 128; the
 * fragments cover round_up(D, 16) and zeros fill the rest. The kernel takes D == Dv: the op
 * (tensor/cuda.c) hands it dense bf16 copies padded with zero columns to a common multiple of
 * 8 (dv_cu_attention_pack_bf16 / dv_cu_attention_unpack_f32 at the end of this file), which is
 * how any D, Dv <= 128 runs.
 * Not here (yet): head dims above 128, split-KV for decoding (Tq small, Tk large), cp.async
 * pipelining of the K/V tiles, wgmma on sm_90a. The backward is attention_bwd.cu.
 */
#include "kernels/cuda/common.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/mma.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>

namespace {

using dvcu::mma16816;
using dvcu::from_f32;
using dvcu::pack;
using dvcu::pack_f32;
using dvcu::acc_pair_to_a;
using dvcu::b_from_k_rows;

constexpr int BQ = DV_CU_ATTN_BQ, BKV = DV_CU_ATTN_BKV, NW = DV_CU_ATTN_WARPS;
constexpr float LOG2E = 1.4426950408889634074f;

struct Geom {
    int64_t B, Hq, Hkv, Tq, Tk, D;
    int64_t qs[3], ks[3], vs[3];
    float scale_log2;       /* scale * log2(e) */
    bool causal;
    int64_t offset;
    const uint8_t *keep;
    int64_t keep_s[2];
    const float *bias;      /* f32, read through bias_s (b, h, i, j); NULL = none */
    int64_t bias_s[4];
    bool drop;              /* dropout on the weights (kernels/attention.h's mask) */
    uint64_t drop_seed;
    uint32_t drop_thr;      /* keep weight j when dv_attn_drop_hash(row key, j) >= drop_thr */
    float drop_keep;        /* 1 / (1 - dropout) */
    bool vec;               /* k and v rows 16-byte aligned: vector tile loads */
};




/* rows [t0, t0 + BKV) of a (T, D) head (row stride ld) into S[BKV][SD], zeros past T and D */
template <int SD>
__device__ __forceinline__ void load_kv_tile(uint16_t *S, const uint16_t *p, int64_t ld, int64_t t0, int64_t T,
                                             int64_t D, int DP, bool vec) {
    const int per_row = DP / 8;
    for (int v = threadIdx.x; v < BKV * per_row; v += NW * 32) {
        int r = v / per_row, c = (v % per_row) * 8;
        int64_t t = t0 + r;
        union { uint4 v; uint16_t h[8]; } u;
        if (t < T && c + 8 <= D && vec) {
            u.v = *(const uint4 *)(p + t * ld + c);
        } else {
#pragma unroll
            for (int e = 0; e < 8; e++) u.h[e] = (t < T && c + e < D) ? p[t * ld + c + e] : (uint16_t)0;
        }
        *(uint4 *)(S + r * SD + c) = u.v;
    }
}

template <bool BF16, int DMAX>
__global__ void __launch_bounds__(NW * 32) attn_fwd(Geom g, const uint16_t *__restrict__ q, const uint16_t *__restrict__ k,
                                                    const uint16_t *__restrict__ v, float *__restrict__ o,
                                                    float *__restrict__ lse) {
    constexpr int SD = DMAX + 8;  /* padded shared row, halves */
    constexpr int ND16 = DMAX / 16, ND8 = DMAX / 8, NKT = BKV / 8;
    __shared__ __align__(16) uint16_t Ks[BKV * SD];
    __shared__ __align__(16) uint16_t Vs[BKV * SD];

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, gq = lane / 4, tig = lane % 4;
    const int64_t bh = blockIdx.y, b = bh / g.Hq, h = bh % g.Hq, hk = h / (g.Hq / g.Hkv);
    const int64_t q0 = (int64_t)blockIdx.x * BQ;
    const int DP = (int)((g.D + 15) / 16) * 16;
    const int nd16 = DP / 16;
    const uint16_t *qh = q + b * g.qs[0] + h * g.qs[1];
    const uint16_t *kh = k + b * g.ks[0] + hk * g.ks[1];
    const uint16_t *vh = v + b * g.vs[0] + hk * g.vs[1];

    /* this thread's two rows: r = 0 -> row gq, r = 1 -> row gq + 8 of the warp's 16 */
    int64_t row[2] = {q0 + warp * 16 + gq, q0 + warp * 16 + gq + 8};
    /* their bias rows and dropout row keys */
    const float *brow[2] = {nullptr, nullptr};
    uint32_t dkey[2] = {0, 0};
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        if (g.bias) brow[rr] = g.bias + b * g.bias_s[0] + h * g.bias_s[1] + row[rr] * g.bias_s[2];
        if (g.drop) dkey[rr] = dv_attn_drop_row(g.drop_seed, b, h, row[rr]);
    }

    uint32_t qf[ND16][4];
#pragma unroll
    for (int kd = 0; kd < ND16; kd++)
#pragma unroll
        for (int r = 0; r < 4; r++) {
            int64_t i = row[r % 2];
            int d = kd * 16 + tig * 2 + 8 * (r / 2);
            uint16_t lo = 0, hi = 0;
            if (i < g.Tq && d < g.D) {
                lo = qh[i * g.qs[2] + d];
                hi = qh[i * g.qs[2] + d + 1];  /* D is even */
            }
            qf[kd][r] = pack(lo, hi);
        }

    float acc[ND8][4];
#pragma unroll
    for (int t = 0; t < ND8; t++)
#pragma unroll
        for (int r = 0; r < 4; r++) acc[t][r] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

    const int64_t kv_end = dv_cu_attn_kv_end(q0, BQ, g.Tq, g.Tk, g.causal, g.offset);
    for (int64_t kv0 = 0; kv0 < kv_end; kv0 += BKV) {
        __syncthreads(); /* the previous tiles are no longer read */
        load_kv_tile<SD>(Ks, kh, g.ks[2], kv0, g.Tk, g.D, DP, g.vec);
        load_kv_tile<SD>(Vs, vh, g.vs[2], kv0, g.Tk, g.D, DP, g.vec);
        __syncthreads();

        /* S = Q K^T (16 x 64 per warp) */
        float s[NKT][4];
#pragma unroll
        for (int t = 0; t < NKT; t++) {
#pragma unroll
            for (int r = 0; r < 4; r++) s[t][r] = 0.0f;
#pragma unroll
            for (int kd = 0; kd < ND16; kd++) {
                if (kd >= nd16) break;
                uint32_t bf[2];
                bf[0] = *(const uint32_t *)&Ks[(t * 8 + gq) * SD + kd * 16 + tig * 2];
                bf[1] = *(const uint32_t *)&Ks[(t * 8 + gq) * SD + kd * 16 + tig * 2 + 8];
                mma16816<BF16>(s[t], qf[kd], bf);
            }
        }

        /* mask, scale (and bias) to base 2, row maxima (a row's 64 scores live in the 4 lanes
         * of a quad) */
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int t = 0; t < NKT; t++)
#pragma unroll
            for (int r = 0; r < 4; r++) {
                int64_t i = row[r / 2], j = kv0 + t * 8 + tig * 2 + (r % 2);
                bool vis = i < g.Tq && dv_cu_attn_visible(i, j, g.Tk, g.causal, g.offset) &&
                           (!g.keep || g.keep[b * g.keep_s[0] + j * g.keep_s[1]] != 0);
                float x = -INFINITY;
                if (vis) {
                    x = s[t][r] * g.scale_log2;
                    if (g.bias) x += brow[r / 2][j * g.bias_s[3]] * LOG2E;
                }
                s[t][r] = x;
                mx[r / 2] = fmaxf(mx[r / 2], x);
            }
        float corr[2];
#pragma unroll
        for (int rr = 0; rr < 2; rr++) {
            mx[rr] = fmaxf(mx[rr], __shfl_xor_sync(0xffffffffu, mx[rr], 1));
            mx[rr] = fmaxf(mx[rr], __shfl_xor_sync(0xffffffffu, mx[rr], 2));
            float base;
            corr[rr] = dv_cu_online_rescale(&m[rr], mx[rr], &base); /* common.h: -inf safe */
            mx[rr] = base;
        }
        float rowsum[2] = {0.0f, 0.0f};
#pragma unroll
        for (int t = 0; t < NKT; t++)
#pragma unroll
            for (int r = 0; r < 4; r++) {
                float p = exp2f(s[t][r] - mx[r / 2]);
                rowsum[r / 2] += p; /* the softmax sums the weights before dropout */
                if (g.drop) { /* dropped: 0; kept: p (the 1 / (1 - dropout) goes into the final 1 / l) */
                    uint32_t j = (uint32_t)(kv0 + t * 8 + tig * 2 + (r % 2));
                    if (dv_attn_drop_hash(dkey[r / 2], j) < g.drop_thr) p = 0.0f;
                }
                s[t][r] = p;
            }
#pragma unroll
        for (int rr = 0; rr < 2; rr++) l[rr] = l[rr] * corr[rr] + rowsum[rr]; /* quad-partial sums */
#pragma unroll
        for (int t = 0; t < ND8; t++) {
            acc[t][0] *= corr[0], acc[t][1] *= corr[0];
            acc[t][2] *= corr[1], acc[t][3] *= corr[1];
        }

        /* O += P V: key chunk kc (16 keys) = accumulator tiles 2kc, 2kc+1 as an A fragment */
#pragma unroll
        for (int kc = 0; kc < BKV / 16; kc++) {
            uint32_t pa[4];
            acc_pair_to_a<BF16>(pa, s[2 * kc], s[2 * kc + 1]);
            const int key = kc * 16 + tig * 2;
#pragma unroll
            for (int t = 0; t < ND8; t++) {
                if (t * 8 >= DP) break;
                const int d = t * 8 + gq;
                uint32_t bf[2];
                b_from_k_rows(bf, Vs, SD, key, d);
                mma16816<BF16>(acc[t], pa, bf);
            }
        }
    }

    /* normalise and write: row sums across the quad, O / l, lse = (m + log2 l) ln 2 */
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        l[rr] += __shfl_xor_sync(0xffffffffu, l[rr], 1);
        l[rr] += __shfl_xor_sync(0xffffffffu, l[rr], 2);
    }
    const int64_t ostride = g.D; /* o is contiguous (B, Hq, Tq, D), f32 */
    float *oh = o + (b * g.Hq + h) * g.Tq * ostride;
#pragma unroll
    for (int rr = 0; rr < 2; rr++) {
        int64_t i = row[rr];
        if (i >= g.Tq) continue;
        /* with dropout, the kept weights' 1 / (1 - dropout) here in f32: multiplied into P before
         * its rounding to bf16, it would be rounded too (1 / 0.99 -> 1.0078), a bias of every
         * output row that the CPU does not have */
        float inv = l[rr] > 0.0f ? g.drop_keep / l[rr] : 0.0f;
#pragma unroll
        for (int t = 0; t < ND8; t++) {
            int d = t * 8 + tig * 2;
            if (d >= g.D) break;
            *(float2 *)&oh[i * ostride + d] = make_float2(acc[t][2 * rr] * inv, acc[t][2 * rr + 1] * inv);
        }
        if (lse && tig == 0) lse[(b * g.Hq + h) * g.Tq + i] = dv_cu_online_lse(m[rr], l[rr]);
    }
}

template <bool BF16, int DMAX>
void launch(const Geom &g, const uint16_t *q, const uint16_t *k, const uint16_t *v, float *o, float *lse,
            cudaStream_t s) {
    dim3 grid((unsigned)((g.Tq + BQ - 1) / BQ), (unsigned)(g.B * g.Hq));
    attn_fwd<BF16, DMAX><<<grid, NW * 32, 0, s>>>(g, q, k, v, o, lse);
}

} // namespace

extern "C" int dv_cu_attention_fwd(dv_cu_half dtype, const dv_attn_geom *ag, const uint16_t *q,
                                   const uint16_t *k, const uint16_t *v, const float *bias, float *o,
                                   float *lse, dv_cu_stream stream) {
    if (ag->D != ag->Dv || ag->D <= 0 || ag->D > 128 || ag->D % 8 != 0) return (int)cudaErrorInvalidValue;
    if (!(ag->dropout >= 0 && ag->dropout < 1)) return (int)cudaErrorInvalidValue;
    if (ag->B == 0 || ag->Hq == 0 || ag->Tq == 0) return 0; /* no query rows: a 0-block grid is a launch error */
    if (ag->Hkv <= 0 || ag->Hq % ag->Hkv != 0) return (int)cudaErrorInvalidValue;
    if (ag->B * ag->Hq > 65535 || ag->Tq < 0 || ag->B < 0) return (int)cudaErrorInvalidValue;
    Geom g;
    g.B = ag->B, g.Hq = ag->Hq, g.Hkv = ag->Hkv, g.Tq = ag->Tq, g.Tk = ag->Tk, g.D = ag->D;
    for (int i = 0; i < 3; i++) g.qs[i] = ag->q_stride[i], g.ks[i] = ag->k_stride[i], g.vs[i] = ag->v_stride[i];
    g.scale_log2 = (float)(ag->scale * 1.4426950408889634074);
    g.causal = ag->causal;
    g.offset = ag->causal_offset;
    g.keep = ag->keep;
    g.keep_s[0] = ag->keep_stride[0], g.keep_s[1] = ag->keep_stride[1];
    g.bias = bias;
    for (int i = 0; i < 4; i++) g.bias_s[i] = ag->bias_stride[i];
    g.drop = ag->dropout > 0;
    g.drop_seed = ag->dropout_seed;
    g.drop_thr = dv_attn_drop_threshold(ag->dropout);
    g.drop_keep = g.drop ? (float)(1.0 / (1.0 - ag->dropout)) : 1.0f;
    bool vec = (((uintptr_t)k | (uintptr_t)v) & 15) == 0;
    for (int i = 0; i < 3; i++) vec = vec && g.ks[i] % 8 == 0 && g.vs[i] % 8 == 0;
    g.vec = vec;
    cudaStream_t s = (cudaStream_t)stream;
    const bool bf16 = dtype == DV_CU_BF16, small = g.D <= 64;
    if (bf16 && small) launch<true, 64>(g, q, k, v, o, lse, s);
    else if (bf16) launch<true, 128>(g, q, k, v, o, lse, s);
    else if (small) launch<false, 64>(g, q, k, v, o, lse, s);
    else launch<false, 128>(g, q, k, v, o, lse, s);
    return (int)cudaGetLastError();
}

/* ---- the operands' dense, head-padded copies (tensor/cuda.c) ------------------------------ */
namespace {

constexpr int PACK_THREADS = 256;

inline unsigned pack_blocks(int64_t n) {
    int64_t b = (n + PACK_THREADS - 1) / PACK_THREADS;
    if (b > 65535LL * 8) b = 65535LL * 8;
    return (unsigned)(b > 0 ? b : 1);
}

/* dst (B, H, T, DP) bf16 = src (B, H, T, D) f32 through strides (b, h, t), zeros for d >= D */
__global__ void pack_bf16(int64_t H, int64_t T, int64_t D, int64_t DP, int64_t n, const float *__restrict__ src,
                          int64_t s0, int64_t s1, int64_t s2, uint16_t *__restrict__ dst) {
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
        int64_t d = e % DP, r = e / DP, t = r % T, h = (r / T) % H, b = r / (T * H);
        float x = d < D ? src[b * s0 + h * s1 + t * s2 + d] : 0.0f;
        dst[e] = __bfloat16_as_ushort(__float2bfloat16_rn(x));
    }
}

/* dst (rows, D) f32 = the first D columns of src (rows, DP) */
__global__ void unpack_f32(int64_t D, int64_t DP, int64_t n, const float *__restrict__ src, float *__restrict__ dst) {
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x)
        dst[e] = src[e / D * DP + e % D];
}

} // namespace

extern "C" int dv_cu_attention_pack_bf16(int64_t B, int64_t H, int64_t T, int64_t D, int64_t DP, const float *src,
                                         const int64_t src_stride[3], uint16_t *dst, dv_cu_stream stream) {
    if (D < 0 || DP < D) return (int)cudaErrorInvalidValue;
    int64_t n = B * H * T * DP;
    if (n <= 0) return 0;
    pack_bf16<<<pack_blocks(n), PACK_THREADS, 0, (cudaStream_t)stream>>>(H, T, D, DP, n, src, src_stride[0],
                                                                          src_stride[1], src_stride[2], dst);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_attention_unpack_f32(int64_t rows, int64_t D, int64_t DP, const float *src, float *dst,
                                          dv_cu_stream stream) {
    if (D < 0 || DP < D) return (int)cudaErrorInvalidValue;
    int64_t n = rows * D;
    if (n <= 0) return 0;
    unpack_f32<<<pack_blocks(n), PACK_THREADS, 0, (cudaStream_t)stream>>>(D, DP, n, src, dst);
    return (int)cudaGetLastError();
}
