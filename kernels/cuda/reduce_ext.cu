/* kernels/cuda/reduce_ext.cu — max / min (value and first extreme index), logsumexp, cumsum
 * along one axis of a contiguous (outer, n, inner) f32 block, and the scatter that routes a
 * max / min gradient back to the chosen elements: kernels/reduce_ext.h's contracts on the GPU.
 *
 * The default is one thread per output position (outer * inner of them, grid-stride) running
 * the CPU's loop over its line (kernels/cuda/reduce_math.h, shared with the host test),
 * reading at stride inner: coalesced across threads when inner > 1, one row per thread when
 * inner == 1. That keeps the results the CPU's bits (first NaN / first extreme wins, cumsum in
 * double) and the order fixed. Long lines get more threads (spread_for below):
 *   max / min    inner == 1, n >= 512: a block per row, combining (value, index) pairs by a
 *                total order that gives the CPU's pick (dv_cu_extreme_prefer) — same bits.
 *   logsumexp    a block per line (n >= 512, contiguous rows or few lines) or a warp per row
 *                (32 <= n < 512): the maximum by fmaxf (order-free), sum exp(x - max) in
 *                double over a fixed tree — within the device's expf / log ulps of the CPU.
 *   cumsum       the same spread, a chunked scan in double (warp shuffles, the warps' totals
 *                through shared memory, a running carry): deterministic, the CPU's bits up to
 *                one f32 ulp where a reassociated double prefix rounds the other way (exact
 *                when the partial sums are).
 * No atomics anywhere: every result is the same run after run.
 * Not here: f64, f16 / bf16; a multi-block scan of one very long line (a block walks it
 * alone, chunk by chunk); thresholds tuned on a GPU (they follow the access patterns).
 */
#include "kernels/cuda/common.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/reduce_math.h"

#include <cuda_runtime.h>
#include <math.h>

namespace {

using dvcu::grid_for;
using dvcu::kThreads;

constexpr int64_t kRowMin = 512; /* rows (inner == 1) at least this long: extreme_rows_kernel */

__global__ void extreme_kernel(int is_max, int64_t outer, int64_t n, int64_t inner, const float *__restrict__ x,
                               float *__restrict__ y, int64_t *__restrict__ idx) {
    DV_CU_GRID_STRIDE(p, outer * inner) {
        float best;
        int64_t bi;
        dv_cu_extreme_line_f32(x + (p / inner) * n * inner + p % inner, n, inner, is_max, &best, &bi);
        if (y) y[p] = best;
        if (idx) idx[p] = bi;
    }
}

/* combines the lanes' (value, index) pairs of a warp by dv_cu_extreme_take; every lane ends
 * with the warp's pair */
__device__ __forceinline__ void warp_extreme(float *best, long long *bi, int is_max) {
    for (int o = 16; o > 0; o >>= 1) {
        float v = __shfl_xor_sync(0xffffffffu, *best, o);
        long long j = __shfl_xor_sync(0xffffffffu, *bi, o);
        int64_t b64 = *bi;
        dv_cu_extreme_take(v, j, best, &b64, is_max);
        *bi = b64;
    }
}

/* inner == 1, long rows: one block of kThreads per row. Each thread takes the preferred pair
 * of its strided share (ascending indices), then warp shuffles and one shared-memory hop
 * combine them by dv_cu_extreme_prefer — a total order, so the result does not depend on
 * the combination order and is the CPU's. */
__global__ void extreme_rows_kernel(int is_max, int64_t n, const float *__restrict__ x, float *__restrict__ y,
                                    int64_t *__restrict__ idx) {
    __shared__ float sv[32];
    __shared__ long long si[32];
    const float *xr = x + (int64_t)blockIdx.x * n;
    float best = 0.0f;
    long long bi = -1;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        int64_t b64 = bi;
        dv_cu_extreme_take(xr[i], i, &best, &b64, is_max);
        bi = b64;
    }
    warp_extreme(&best, &bi, is_max);
    int lane = threadIdx.x % 32, w = threadIdx.x / 32, nw = blockDim.x / 32;
    if (lane == 0) sv[w] = best, si[w] = bi;
    __syncthreads();
    if (w != 0) return; /* the first warp finishes; no __syncthreads below */
    best = lane < nw ? sv[lane] : 0.0f;
    bi = lane < nw ? si[lane] : -1;
    warp_extreme(&best, &bi, is_max);
    if (lane == 0) {
        if (y) y[blockIdx.x] = best;
        if (idx) idx[blockIdx.x] = bi;
    }
}

__global__ void logsumexp_kernel(int64_t outer, int64_t n, int64_t inner, const float *__restrict__ x,
                                 float *__restrict__ y) {
    DV_CU_GRID_STRIDE(p, outer * inner) y[p] = dv_cu_logsumexp_line_f32(x + (p / inner) * n * inner + p % inner, n, inner);
}

/* ---- a group of W warps per line (W = 1: a warp, W = kWarps: the whole block) ------------
 * Line p of the (outer, n, inner) block starts at (p / inner) n inner + p % inner and steps by
 * inner. A block holds kWarps / W groups; the grid strides over lines by whole blocks, so with
 * W = kWarps every thread of a block leaves the loop together (the __syncthreads are uniform)
 * and with W = 1 nothing below synchronises more than a warp. */
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFull = 0xffffffffu;

__device__ __forceinline__ const float *line_start(const float *x, int64_t p, int64_t n, int64_t inner) {
    return x + (p / inner) * n * inner + p % inner;
}

/* every lane gets the sum over the warp: an xor butterfly, whose partners add the same two
 * values (a + b == b + a), so all lanes hold the same bits, run after run */
__device__ __forceinline__ double warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
    return v;
}

/* the sum / maximum over the group; sh: kWarps slots of shared memory (W = kWarps only) */
template <int W>
__device__ __forceinline__ double group_sum(double v, double *sh) {
    v = warp_sum_d(v);
    if (W == 1) return v;
    int lane = threadIdx.x % 32, w = threadIdx.x / 32;
    __syncthreads(); /* the previous call's readers are done with sh */
    if (lane == 0) sh[w] = v;
    __syncthreads();
    return warp_sum_d(lane < kWarps ? sh[lane] : 0.0);
}
template <int W>
__device__ __forceinline__ float group_max(float v, float *sh) {
    v = dvcu::warp_max(v);
    if (W == 1) return v;
    int lane = threadIdx.x % 32, w = threadIdx.x / 32;
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    return dvcu::warp_max(lane < kWarps ? sh[lane] : -INFINITY);
}

/* dv_cu_logsumexp_line_f32 with the line shared by a group: the maximum (fmaxf skips a NaN
 * as the CPU's `x > m` does; the maximum does not depend on the order), then sum exp(x - m)
 * in double, each thread over its strided share, combined by a fixed tree. Only that sum's
 * order differs from the CPU's sequential one: a double sum of at most n terms each < 1 + n
 * ulps of double, far below the f32 rounding of the result (which differs, if at all, by the
 * device's expf / log ulps, as the one-thread path). */
template <int W>
__global__ void __launch_bounds__(kThreads) logsumexp_lines_kernel(int64_t lines, int64_t n, int64_t inner,
                                                                   const float *__restrict__ x, float *__restrict__ y) {
    __shared__ float shm[kWarps];
    __shared__ double shs[kWarps];
    constexpr int G = 32 * W, P = kWarps / W;
    const int t = threadIdx.x % G;
    for (int64_t p = (int64_t)blockIdx.x * P + threadIdx.x / G; p < lines; p += (int64_t)gridDim.x * P) {
        const float *xp = line_start(x, p, n, inner);
        float m = -INFINITY;
        for (int64_t i = t; i < n; i += G) m = fmaxf(m, xp[i * inner]);
        m = group_max<W>(m, shm);
        if (m == INFINITY || m == -INFINITY) { /* the same m in every thread: a uniform branch */
            if (t == 0) y[p] = m;
            continue;
        }
        double s = 0;
        for (int64_t i = t; i < n; i += G) s += (double)expf(xp[i * inner] - m);
        s = group_sum<W>(s, shs);
        if (t == 0) y[p] = (float)((double)m + log(s));
    }
}

/* cumsum of a line shared by a group: chunks of G * kScanV elements in the line's order (k,
 * element i = k, or n - 1 - k in reverse), thread t taking k = c0 + t kScanV + v, v < kScanV.
 * Each thread sums its kScanV in double (its local prefixes), a warp scan (shuffles up) gives
 * each thread the sum of the threads before it, the warps' totals (shared memory, summed in
 * warp order) the sum of the warps before; the output is (float)((carry + before) + local),
 * and the chunk's total joins the running carry. All in double, in a fixed order: the
 * prefixes are the CPU's double prefixes up to reassociation (|difference| <= ~n 2^-53 sum |x|),
 * so the f32 outputs are the CPU's bits except where a prefix lies that close to an f32
 * rounding boundary, then one ulp apart; exact when every partial sum is (values on a coarse
 * grid). NaN / inf reach exactly the outputs whose prefix holds them, as on the CPU. */
constexpr int kScanV = 4;

template <int W>
__global__ void __launch_bounds__(kThreads) cumsum_lines_kernel(int64_t lines, int64_t n, int64_t inner,
                                                                const float *__restrict__ x, float *__restrict__ y,
                                                                int reverse) {
    __shared__ double sh[kWarps];
    constexpr int G = 32 * W, P = kWarps / W;
    const int t = threadIdx.x % G, lane = threadIdx.x % 32, wg = t / 32;
    for (int64_t p = (int64_t)blockIdx.x * P + threadIdx.x / G; p < lines; p += (int64_t)gridDim.x * P) {
        const int64_t off = (p / inner) * n * inner + p % inner;
        const float *xp = x + off;
        float *yp = y + off;
        double carry = 0;
        for (int64_t c0 = 0; c0 < n; c0 += (int64_t)G * kScanV) {
            double loc[kScanV], run = 0;
#pragma unroll
            for (int v = 0; v < kScanV; v++) {
                int64_t k = c0 + (int64_t)t * kScanV + v;
                if (k < n) run += (double)xp[(reverse ? n - 1 - k : k) * inner];
                loc[v] = run;
            }
            double inc = run; /* inclusive scan of the thread totals over the warp */
            for (int o = 1; o < 32; o <<= 1) {
                double u = __shfl_up_sync(kFull, inc, o);
                if (lane >= o) inc += u;
            }
            double before = __shfl_up_sync(kFull, inc, 1);
            if (lane == 0) before = 0;
            double total;
            if (W == 1) {
                total = __shfl_sync(kFull, inc, 31);
            } else {
                __syncthreads(); /* the previous chunk's readers are done with sh */
                if (lane == 31) sh[wg] = inc;
                __syncthreads();
                double warps = 0;
                total = 0;
                for (int w = 0; w < W; w++) {
                    if (w == wg) warps = total;
                    total += sh[w];
                }
                before = warps + before;
            }
            const double base = carry + before;
#pragma unroll
            for (int v = 0; v < kScanV; v++) {
                int64_t k = c0 + (int64_t)t * kScanV + v;
                if (k < n) yp[(reverse ? n - 1 - k : k) * inner] = (float)(base + loc[v]);
            }
            carry += total;
        }
    }
}

__global__ void cumsum_kernel(int64_t outer, int64_t n, int64_t inner, const float *__restrict__ x,
                              float *__restrict__ y, int reverse) {
    DV_CU_GRID_STRIDE(p, outer * inner) {
        int64_t base = (p / inner) * n * inner + p % inner;
        dv_cu_cumsum_line_f32(x + base, y + base, n, inner, reverse);
    }
}

__global__ void scatter_dim_kernel(int64_t outer, int64_t n, int64_t inner, const int64_t *__restrict__ idx,
                                   const float *__restrict__ g, float *__restrict__ gx) {
    DV_CU_GRID_STRIDE(p, outer * inner) {
        float *gp = gx + (p / inner) * n * inner + p % inner;
        for (int64_t i = 0; i < n; i++) gp[i * inner] = 0.0f;
        gp[idx[p] * inner] = g[p];
    }
}

/* how logsumexp and cumsum spread a line over threads (lines = outer * inner):
 *   block per line   n >= kRowMin, and inner == 1 (contiguous rows: coalesced) or few lines
 *                    (<= kFewLines; strided reads, but the one-thread path would leave the
 *                    GPU nearly idle walking n elements per thread)
 *   warp per line    inner == 1 and kWarpMin <= n < kRowMin (8 rows a block)
 *   thread per line  the rest: many short lines, or inner > 1 where neighbouring threads read
 *                    neighbouring columns (coalesced) — as before
 * The thresholds are chosen from the access patterns, not tuned on a GPU. */
constexpr int64_t kWarpMin = 32, kFewLines = 2048;
enum Spread { kThreadPerLine, kWarpPerLine, kBlockPerLine };

Spread spread_for(int64_t lines, int64_t n, int64_t inner) {
    if (n >= kRowMin && (inner == 1 || lines <= kFewLines)) return kBlockPerLine;
    if (inner == 1 && n >= kWarpMin) return kWarpPerLine;
    return kThreadPerLine;
}

unsigned blocks_for_lines(int64_t lines, int per_block) {
    int64_t b = (lines + per_block - 1) / per_block;
    return (unsigned)(b > 65535LL * 8 ? 65535LL * 8 : b); /* the kernels stride over the rest */
}

} // namespace

extern "C" int dv_cu_extreme_f32(int is_max, int64_t outer, int64_t n, int64_t inner, const float *x, float *y,
                                 int64_t *idx, dv_cu_stream stream) {
    if (outer <= 0 || inner <= 0) return 0;
    if (n < 1) return (int)cudaErrorInvalidValue; /* no extreme of an empty line (the CPU op refuses it first) */
    if (inner == 1 && n >= kRowMin && outer <= 2147483647LL) /* argmax over a vocabulary: a block per row */
        extreme_rows_kernel<<<(unsigned)outer, kThreads, 0, (cudaStream_t)stream>>>(is_max, n, x, y, idx);
    else
        extreme_kernel<<<grid_for(outer * inner), kThreads, 0, (cudaStream_t)stream>>>(is_max, outer, n, inner, x,
                                                                                          y, idx);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_logsumexp_f32(int64_t outer, int64_t n, int64_t inner, const float *x, float *y,
                                   dv_cu_stream stream) {
    if (outer <= 0 || inner <= 0) return 0; /* n == 0 is fine: -inf */
    cudaStream_t s = (cudaStream_t)stream;
    int64_t lines = outer * inner;
    switch (spread_for(lines, n, inner)) {
    case kBlockPerLine:
        logsumexp_lines_kernel<kWarps><<<blocks_for_lines(lines, 1), kThreads, 0, s>>>(lines, n, inner, x, y);
        break;
    case kWarpPerLine:
        logsumexp_lines_kernel<1><<<blocks_for_lines(lines, kWarps), kThreads, 0, s>>>(lines, n, inner, x, y);
        break;
    default: logsumexp_kernel<<<grid_for(lines), kThreads, 0, s>>>(outer, n, inner, x, y);
    }
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_cumsum_f32(int64_t outer, int64_t n, int64_t inner, const float *x, float *y, int reverse,
                                dv_cu_stream stream) {
    if (outer <= 0 || n <= 0 || inner <= 0) return 0;
    cudaStream_t s = (cudaStream_t)stream;
    int64_t lines = outer * inner;
    switch (spread_for(lines, n, inner)) {
    case kBlockPerLine:
        cumsum_lines_kernel<kWarps><<<blocks_for_lines(lines, 1), kThreads, 0, s>>>(lines, n, inner, x, y, reverse);
        break;
    case kWarpPerLine:
        cumsum_lines_kernel<1><<<blocks_for_lines(lines, kWarps), kThreads, 0, s>>>(lines, n, inner, x, y, reverse);
        break;
    default: cumsum_kernel<<<grid_for(lines), kThreads, 0, s>>>(outer, n, inner, x, y, reverse);
    }
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_scatter_dim_f32(int64_t outer, int64_t n, int64_t inner, const int64_t *idx, const float *g,
                                     float *gx, dv_cu_stream stream) {
    if (outer <= 0 || n <= 0 || inner <= 0) return 0;
    scatter_dim_kernel<<<grid_for(outer * inner), kThreads, 0, (cudaStream_t)stream>>>(outer, n, inner, idx, g, gx);
    return (int)cudaGetLastError();
}
