/* kernels/cuda/attention_bwd.cu — the backward of the flash attention forward
 * (kernels/cuda/attention.cu), after FlashAttention-2 (Dao 2023, Algorithm 2), in two passes
 * that need no atomics:
 *   1. Dr[i]   = sum_d dO[i,d] O[i,d]  (O the dropped output)        one warp per query row
 *   2. dK, dV  per key tile of 16 (grid: key tiles x B*Hkv): for every query head of the
 *              group and every query tile of 16 that can see the keys,
 *                P = exp(scale Q K^T + bias - lse) (0 where masked), dP = dO V^T,
 *                dS = P (Z dP - Dr),  dV += (Z P)^T dO,  dK += scale dS^T Q,
 *                dbias = dS (summed over the query rows when the bias broadcasts over them)
 *              with Z the dropout mask times 1 / (1 - p) (kernels/attention.h's DV_HD
 *              functions, regenerated; Z = 1 without dropout)
 *   3. dQ      per query tile of 16 (grid: query tiles x B*Hq): for every visible key tile,
 *                the same P and dS, dQ += scale dS K
 * q, k, v come as the forward's f16 / bf16 copies; o (the forward's f32 output) and dO are f32,
 * so Dr and dP = dO V^T use the same dO and the same O the forward produced (for a row whose
 * softmax is one-hot, Z dP - Dr then cancels as it does on the CPU).
 * Tiles live in shared memory as f32 (rows padded by one float: the 16 threads that read 16
 * different rows at one column hit 16 banks); each thread of 256 owns one (query, key) score
 * of a tile and up to 8 elements of the (16, D) gradient accumulator, in registers.
 * CUDA cores only: a correct, plain baseline for the tensor-core backward (not here yet). D == Dv
 * as in the forward (the op pads other head dims: tensor/cuda.c).
 */
#include "kernels/cuda/common.h"
#include "kernels/cuda/kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>

namespace {

constexpr int T16 = 16, NT = 256, DMAX = 128, SD = DMAX + 1, OWN = T16 * DMAX / NT; /* 8 */

struct Geom {
    int64_t B, Hq, Hkv, Tq, Tk, D;
    int64_t qs[3], ks[3], vs[3];
    float scale;
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

template <bool BF16> __device__ __forceinline__ float to_f32(uint16_t h);
template <> __device__ __forceinline__ float to_f32<true>(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }
template <> __device__ __forceinline__ float to_f32<false>(uint16_t h) { return __half2float(__ushort_as_half(h)); }

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

__global__ void __launch_bounds__(NT) dr_kernel(int64_t rows, int64_t D, const float *__restrict__ o,
                                                const float *__restrict__ dout, float *__restrict__ dr) {
    int64_t r = blockIdx.x * (int64_t)(NT / 32) + threadIdx.x / 32;
    if (r >= rows) return;
    float s = 0.0f;
    for (int64_t d = threadIdx.x % 32; d < D; d += 32) s += o[r * D + d] * dout[r * D + d];
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

template <bool BF16>
void launch(const Geom &g, const uint16_t *q, const uint16_t *k, const uint16_t *v, const float *o, const float *lse,
            const float *dout, float *dq, float *dk, float *dv, float *dbias, float *dr, cudaStream_t s) {
    int64_t rows = g.B * g.Hq * g.Tq;
    dr_kernel<<<(unsigned)((rows + NT / 32 - 1) / (NT / 32)), NT, 0, s>>>(rows, g.ocols, o, dout, dr);
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
    if (dtype == DV_CU_BF16) launch<true>(g, q, k, v, o, lse, dout, dq, dk, dv, dbias, (float *)work, s);
    else launch<false>(g, q, k, v, o, lse, dout, dq, dk, dv, dbias, (float *)work, s);
    return (int)cudaGetLastError();
}
