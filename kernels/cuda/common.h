/* kernels/cuda/common.h — the arithmetic the CUDA kernels share with the host: Philox4x32-10,
 * the random-number transforms, the GEMM tile maps (which thread owns which output, which
 * thread loads which 16-byte piece of a tile, shared-memory addresses) and the attention
 * key-range bounds.
 *
 * Every function here is DV_HD: __host__ __device__ under nvcc, a plain static inline C
 * function under gcc. The kernels call them on the GPU; tests/test_cuda_host.c compiles the
 * very same code for the host and checks it (against tensor/rng.c, and against brute force
 * for the tile maps) inside `make test`, which needs neither a GPU nor nvcc. What cannot be
 * checked that way — the kernels' use of these maps, mma.sync, shared memory, launch bounds —
 * is tests/cuda/ (build/test-cuda), which needs a GPU.
 *
 * Deliberately nothing here touches CUDA types or intrinsics: it must compile as C11.
 */
#ifndef DV_KERNELS_CUDA_COMMON_H
#define DV_KERNELS_CUDA_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __CUDACC__
#define DV_HD __host__ __device__ __forceinline__
#else
#include <math.h>
#define DV_HD static inline
#endif

/* multiply / add rounded one at a time: the device compiler would otherwise fuse a + b * c
 * into an FMA (one rounding), which the host builds of tensor/rng.c and kernels/resize.c never
 * do, and the RNG and the resize taps are meant to be the CPU's bits */
#ifdef __CUDA_ARCH__
#define DV_DMUL(a, b) __dmul_rn((a), (b))
#define DV_DADD(a, b) __dadd_rn((a), (b))
#define DV_FMUL(a, b) __fmul_rn((a), (b))
#else
#define DV_DMUL(a, b) ((a) * (b))
#define DV_DADD(a, b) ((a) + (b))
#define DV_FMUL(a, b) ((a) * (b))
#endif

DV_HD int64_t dv_cu_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* ---- Philox4x32-10: the one definition, tensor/rng.c's dv_philox4x32_10 included ----------- */
DV_HD void dv_cu_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* one 128-bit block of dv_rng: counter (c0, c1, 0, 0) = 64-bit block index, key = 64-bit seed */
DV_HD void dv_cu_philox(uint64_t counter, uint64_t seed, uint32_t out[4]) {
    const uint32_t ctr[4] = {(uint32_t)counter, (uint32_t)(counter >> 32), 0, 0};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    dv_cu_philox4x32_10(ctr, key, out);
}

typedef enum { DV_CU_RNG_UNIFORM = 0, DV_CU_RNG_NORMAL, DV_CU_RNG_RANDINT } dv_cu_rng_kind;

/* The four values of block bi of a draw from stream (seed, offset), in double, as tensor/rng.c
 * computes them (same expressions, same order, so the host build is bit-identical):
 *   uniform [a, b):  a + (b - a) * ((u >> 8) * 2^-24)
 *   normal (a, b):   Box-Muller on lane pairs, mean a, std b
 *   randint [a, b):  a + floor(u * (b - a) / 2^32)                                          */
DV_HD void dv_cu_rng_block(dv_cu_rng_kind kind, uint64_t seed, uint64_t offset, uint64_t bi,
                           double a, double b, double z[4]) {
    uint32_t u[4];
    dv_cu_philox(offset + bi, seed, u);
    if (kind == DV_CU_RNG_NORMAL) {
        for (int p = 0; p < 4; p += 2) {
            double ua = ((u[p] >> 8) + 1) * (1.0 / 16777216.0);
            double ub = (u[p + 1] >> 8) * (1.0 / 16777216.0);
            double rad = sqrt(-2.0 * log(ua));
            double br = DV_DMUL(b, rad), ang = DV_DMUL(2 * 3.14159265358979323846, ub);
            z[p] = DV_DADD(a, DV_DMUL(br, cos(ang)));
            z[p + 1] = DV_DADD(a, DV_DMUL(br, sin(ang)));
        }
    } else if (kind == DV_CU_RNG_UNIFORM) {
        for (int p = 0; p < 4; p++) z[p] = DV_DADD(a, DV_DMUL(b - a, DV_DMUL((double)(u[p] >> 8), 1.0 / 16777216.0)));
    } else {
        uint64_t range = (uint64_t)(b - a);
        for (int p = 0; p < 4; p++) z[p] = a + (double)(((uint64_t)u[p] * range) >> 32);
    }
}

/* ---- GEMM tiles (kernels/cuda/gemm.cu) ------------------------------------------------- */
/* A thread block computes a BM x BN tile of C with 8 warps in a 2 (m) x 4 (n) grid; a warp
 * owns 64 x 32 = 4 x 4 mma.m16n8k16 tiles. K advances BK at a time through shared memory,
 * where both operands are stored k-contiguous: As[m][k], Bs[n][k], rows padded to SK halves
 * so the fragment loads of a warp hit 32 different banks. */
enum {
    DV_CU_GEMM_BM = 128, DV_CU_GEMM_BN = 128, DV_CU_GEMM_BK = 32, DV_CU_GEMM_THREADS = 256,
    DV_CU_GEMM_WM = 64, DV_CU_GEMM_WN = 32,      /* warp tile */
    DV_CU_GEMM_MI = 4, DV_CU_GEMM_NI = 4,        /* mma tiles per warp: 4 x m16, 4 x n8 */
    DV_CU_GEMM_SK = DV_CU_GEMM_BK + 8            /* padded shared row, in halves */
};

/* The C element held by accumulator register r (0..3) of mma tile (i, j) in lane `lane` of
 * warp `warp` (m16n8 f32 accumulator layout of the PTX ISA: c0,c1 row lane/4, columns
 * 2*(lane%4)+{0,1}; c2,c3 the same columns 8 rows down), relative to the block's corner. */
DV_HD void dv_cu_gemm_c_coord(int warp, int lane, int i, int j, int r, int *m, int *n) {
    int wm = warp / 4, wn = warp % 4;
    *m = wm * DV_CU_GEMM_WM + i * 16 + lane / 4 + 8 * (r / 2);
    *n = wn * DV_CU_GEMM_WN + j * 8 + (lane % 4) * 2 + (r % 2);
}

/* The shared-memory half index that A-fragment register r (0..3) of m-tile i reads (two
 * consecutive halves, one 32-bit word) at k step kk (0 or 16) — m16n8k16 A layout: a0 row
 * lane/4 cols 2*(lane%4); a1 row +8; a2 cols +8; a3 row +8 cols +8. B is the same with n. */
DV_HD int dv_cu_gemm_a_smem(int warp, int lane, int i, int kk, int r) {
    int row = (warp / 4) * DV_CU_GEMM_WM + i * 16 + lane / 4 + 8 * (r % 2);
    int col = kk + (lane % 4) * 2 + 8 * (r / 2);
    return row * DV_CU_GEMM_SK + col;
}
DV_HD int dv_cu_gemm_b_smem(int warp, int lane, int j, int kk, int r) {
    int row = (warp % 4) * DV_CU_GEMM_WN + j * 8 + lane / 4;   /* n */
    int col = kk + (lane % 4) * 2 + 8 * r;                     /* k; r is 0 or 1 */
    return row * DV_CU_GEMM_SK + col;
}

/* Global -> shared loads move 8 halves (16 bytes) per piece; a BM x BK tile is 512 pieces,
 * 2 per thread. Piece `it` (0 or 1) of thread t covers, for an operand stored k-contiguous
 * (A with ta = 0, B with tb = 1): row (m or n) r, k c .. c+7; for one stored with the row
 * index contiguous (A with ta = 1: (K, M); B with tb = 0: (K, N)): k = r, rows c .. c+7. */
DV_HD void dv_cu_gemm_piece(int t, int it, bool kcontig, int *r, int *c) {
    int v = t + it * DV_CU_GEMM_THREADS;
    if (kcontig) { *r = v / (DV_CU_GEMM_BK / 8); *c = (v % (DV_CU_GEMM_BK / 8)) * 8; }
    else { *r = v / (DV_CU_GEMM_BM / 8); *c = (v % (DV_CU_GEMM_BM / 8)) * 8; }
}

/* the skinny path (M <= 16): a block of DV_CU_SKINNY_WARPS warps, one output column n per
 * warp, K walked in chunks of DV_CU_SKINNY_KC staged in shared memory */
enum { DV_CU_SKINNY_MAXM = 16, DV_CU_SKINNY_WARPS = 8, DV_CU_SKINNY_KC = 512 };

/* ---- attention (kernels/cuda/attention.cu) --------------------------------------------- */
/* Query tiles of DV_CU_ATTN_BQ rows (4 warps x 16), key tiles of DV_CU_ATTN_BKV. */
enum { DV_CU_ATTN_BQ = 64, DV_CU_ATTN_BKV = 64, DV_CU_ATTN_WARPS = 4 };

/* How many keys a query tile [q0, q0 + bq) must scan: all Tk, or under a causal mask
 * (key j visible to query i when j <= i + offset) up to the last visible key of its last
 * row; 0 when no key is visible to any row. Rows beyond Tq count as absent. */
DV_HD int64_t dv_cu_attn_kv_end(int64_t q0, int64_t bq, int64_t Tq, int64_t Tk, bool causal,
                                int64_t offset) {
    if (!causal) return Tk;
    int64_t last = (q0 + bq < Tq ? q0 + bq : Tq) - 1;
    int64_t end = last + offset + 1;
    if (end < 0) end = 0;
    return end < Tk ? end : Tk;
}

DV_HD bool dv_cu_attn_visible(int64_t i, int64_t j, int64_t Tk, bool causal, int64_t offset) {
    return j < Tk && (!causal || j <= i + offset);
}

/* One step of the online softmax, base 2 (scores already multiplied by scale * log2 e): the
 * running maximum *m meets a tile whose maximum is tile_max. Returns the factor the running
 * sum and output accumulator are multiplied by, sets *base to what this tile's scores are
 * exponentiated against (p = exp2(s - base)) and updates *m. While no visible key has been
 * seen (*m and tile_max both -inf) base is 0, so masked scores give exp2(-inf) = 0 and never
 * the NaN of -inf - -inf; the factor is then exp2(-inf) = 0 (nothing to rescale). */
DV_HD float dv_cu_online_rescale(float *m, float tile_max, float *base) {
    float mnew = *m > tile_max ? *m : tile_max;
    *base = mnew == -INFINITY ? 0.0f : mnew;
    float corr = exp2f(*m - *base);
    *m = mnew;
    return corr;
}

/* the row's natural-log logsumexp from the base-2 running max m and sum l; -inf for a row
 * that saw no key (l == 0) */
DV_HD float dv_cu_online_lse(float m, float l) {
    return l > 0.0f ? (m + log2f(l)) * 0.69314718055994530942f : -INFINITY;
}

/* ---- f32 GEMM through TF32 tensor cores (kernels/cuda/sgemm_tf32.cu) -------------------- */
/* A block of 4 warps (2 (m) x 2 (n)) computes a 64 x 64 tile of C; a warp owns 32 x 32 =
 * 2 x 4 mma.m16n8k8 tiles. K advances 16 at a time through shared memory, both operands
 * stored k-contiguous (As[m][k], Bs[n][k]) in f32, rows padded to SK floats so the fragment
 * loads of a warp hit 32 different banks; the conversion to TF32 happens at the fragment load. */
enum {
    DV_CU_TF32_BM = 64, DV_CU_TF32_BN = 64, DV_CU_TF32_BK = 16, DV_CU_TF32_THREADS = 128,
    DV_CU_TF32_SK = DV_CU_TF32_BK + 4
};

/* the shared-memory float index that A-fragment register r (0..3) of m-tile i (0..1) reads at
 * k step kk (0 or 8): m16n8k8 .tf32 A layout of the PTX ISA — a0 (row lane/4, col lane%4),
 * a1 row + 8, a2 col + 4, a3 row + 8 and col + 4 */
DV_HD int dv_cu_tf32_a_smem(int warp, int lane, int i, int kk, int r) {
    int row = (warp / 2) * 32 + i * 16 + lane / 4 + 8 * (r % 2);
    int col = kk + lane % 4 + 4 * (r / 2);
    return row * DV_CU_TF32_SK + col;
}
/* B-fragment register r (0..1) of n-tile j (0..3): b0 (k lane%4, n lane/4), b1 k + 4 */
DV_HD int dv_cu_tf32_b_smem(int warp, int lane, int j, int kk, int r) {
    int row = (warp % 2) * 32 + j * 8 + lane / 4;
    int col = kk + lane % 4 + 4 * r;
    return row * DV_CU_TF32_SK + col;
}
/* the C element of accumulator register r (0..3) of tile (i, j), relative to the block's
 * corner (m16n8 f32 accumulator layout, as dv_cu_gemm_c_coord) */
DV_HD void dv_cu_tf32_c_coord(int warp, int lane, int i, int j, int r, int *m, int *n) {
    *m = (warp / 2) * 32 + i * 16 + lane / 4 + 8 * (r / 2);
    *n = (warp % 2) * 32 + j * 8 + (lane % 4) * 2 + (r % 2);
}
/* global -> shared: element u (0..7) of thread t covers, for an operand stored k-contiguous
 * (A with ta = 0, B with tb = 1), row (m or n) v / BK, k v % BK; otherwise row v % 64, k v / 64
 * (consecutive threads walk the dim that is contiguous in memory), v = t + 128 u */
DV_HD void dv_cu_tf32_piece(int t, int u, bool kcontig, int *row, int *k) {
    int v = t + u * DV_CU_TF32_THREADS;
    if (kcontig) { *row = v / DV_CU_TF32_BK; *k = v % DV_CU_TF32_BK; }
    else { *row = v % DV_CU_TF32_BM; *k = v / DV_CU_TF32_BM; }
}
/* what cvt.rna.tf32.f32 makes of x (finite x): round to 10 mantissa bits, ties away from
 * zero; the host reference of the TF32 tests */
DV_HD float dv_cu_tf32_round(float x) {
    union { float f; uint32_t u; } v;
    v.f = x;
    if ((v.u & 0x7f800000u) == 0x7f800000u) return x; /* inf / NaN unchanged */
    v.u = (v.u + 0x1000u) & 0xffffe000u;
    return v.f;
}

#endif
