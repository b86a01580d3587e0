/* kernels/avx512/gemm.c — AVX-512 SGEMM: f32, and f32 activations times f16 / bf16 weights.
 *
 *   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C        (conventions: kernels/gemm.h)
 *
 * Four paths, chosen from the shape:
 *
 * 1. Packed (all but small M): GotoBLAS / BLIS blocking, per thread.
 *
 *      for jc over N in NC steps
 *        for pc over K in KC steps
 *          pack B[pc:+KC, jc:+NC] into NR-wide panels    B block 4 MiB (L3); f16/bf16 widened here
 *          for ic over M in MC steps
 *            pack A[ic:+MC, pc:+KC] into MR-tall panels  A block 168 KiB (L2)
 *            for jr over NC in NR steps                  B panel KC x NR = 64 KiB (L1/L2)
 *              for ir over MC in MR steps                micro-kernel on C[ir:+MR, jr:+NR]
 *
 *    Micro-kernel MR x NR = 14 x 32: 28 zmm accumulators (14 rows x 2 vectors of 16 lanes); per
 *    k two loads of the B panel and 14 broadcasts of the A panel feed 28 FMAs, the most FMAs per
 *    load that 32 registers allow. With its data in L1 it runs at the FMA peak (measured on Zen 5,
 *    which has two full 512-bit FMA pipes; 6x64 and 8x48 measured the same, 14x32 keeps the B
 *    panel smallest). C is prefetched when a tile starts and updated once per KC block, so KC is
 *    large (512); the B panel then spills from a 32-48 KiB L1 into L2, which measured cheaper than
 *    more passes over C. Panels are zero-padded to MR rows / NR columns and the kernel stores only
 *    the valid mr x nr corner (row count + two lane masks); the last, short panel of A uses a
 *    1-, 2-, 4- or 8-row copy of the kernel. Transposes are absorbed by packing: A stored (K,M)
 *    and B stored (K,N) are copied row by row, A stored (M,K) and B stored (N,K) go through 16x16
 *    in-register transposes; strided sources are prefetched in software.
 *
 * 2. Stream (tb = 0, M <= STREAM_MAX_M): packing B would cost more than the product. B is read in
 *    place, row after row and left to right (sequential, prefetched), into an accumulator of up
 *    to 8 rows of A by a chunk of columns kept in L1. K is blocked so that a second group of 8
 *    rows finds the B block in L2.
 *
 * 3. Dot (tb = 1, small M, see use_dot): the Linear layer y = x W^T with W stored (N,K).
 *    Vectors run along K over up to 4 rows of A and 6 rows of W at once, W is streamed from
 *    memory exactly once and f16 / bf16 are widened in registers; each output is a horizontal
 *    sum at the end. M = 1 (decode) is bound by memory bandwidth.
 *
 * 4. Broadcast (tb = 1, f32 W, 12 < M <= 32, see use_bcast): the Linear layer at a few rows as
 *    C^T = W A^T. A^T is packed (K x 16 or K x 32 floats, zero past M: a few KiB); W is read in
 *    place, row by row, and each element is broadcast against the one or two vectors of A^T[k],
 *    so every output ends as a lane of an accumulator, not as a horizontal sum: 8 rows of W at a
 *    time keep 8 or 16 accumulators holding C[0:16V, n:n+8] column by column, turned into rows of
 *    C at the end by a 16 x 16 register transpose.
 *
 * Threads: the packed path cuts C into a tm x tn grid of blocks, one per OpenMP thread, chosen to
 * minimise the busiest thread's multiply-adds plus packing; each thread runs the serial algorithm
 * on its block. The small paths share out the columns. Products under MIN_FMAS_PER_THREAD per
 * thread use fewer threads, and a call from inside a parallel region runs on its own thread.
 * Pack buffers are thread-local, 64-byte aligned, grown on demand and kept for the next call
 * (about 4.2 MiB per thread that has run a large product), so concurrent calls from different
 * threads are safe.
 *
 * Bias (the *_bias entry points, the Linear layer's y = x W^T + b): every path adds bias[n] where it
 * stores C, the packed path with the first K block only. This saves the Linear layer a second pass
 * over C and a second OpenMP region, whose wake-up alone (OMP_WAIT_POLICY=passive on a VM) costs
 * tens of microseconds.
 *
 * Not here: f64 (the portable kernel serves the gradient checks); a packed-weight cache across
 * calls (the packed path re-packs B every call); AVX512-BF16 dot products (bf16 weights are
 * widened so the arithmetic is the f32 arithmetic of the reference).
 */
#include "kernels/gemm.h"
#include "kernels/avx512/act.h"

#include <immintrin.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

enum {
    MR = 14, NR = 32,             /* micro-kernel tile */
    KC = 512, MC = 14 * 6,        /* A block MC x KC: 168 KiB (L2); B panel KC x NR: 64 KiB */
    NC = 2048,                    /* B block KC x NC: 4 MiB (L3) */
    STREAM_MAX_M = 16,            /* tb = 0: stream rows of B up to this many rows of A, */
    STREAM_ACC = 8192,            /*   into an accumulator of this many floats (32 KiB), */
    STREAM_KC = 256,              /*   in blocks of this many rows of B (block 512 KiB) */
    DOT_MAX_M = 32,               /* tb = 1: dot-product kernel up to this many rows (use_dot) */
    MIN_FMAS_PER_THREAD = 1 << 18 /* below this much work per thread, fewer threads */
};

typedef enum { BT_F32, BT_F16, BT_BF16 } btype; /* element type of B */

typedef struct {
    int ta, tb;
    int64_t M, N, K;
    float alpha, beta;
    const float *A;
    int64_t lda;
    const void *B;
    btype bt;
    int64_t ldb;
    float *C;
    int64_t ldc;
    const float *bias; /* N floats added to every row of C, or NULL */
    int act;           /* dv_bias_act_kind applied last (the *_bias_act entry point), 0 = none */
} gemm_args;

#define INLINE static inline __attribute__((always_inline))

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }
static __mmask16 lanes(int64_t n) { /* the first n of 16 lanes */
    return n >= 16 ? 0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

INLINE int esize(btype bt) { return bt == BT_F32 ? 4 : 2; }

/* 16 consecutive elements of B (lanes outside m read as 0), widened to f32 */
INLINE __m512 load16(btype bt, const void *p, __mmask16 m) {
    if (bt == BT_F32) return _mm512_maskz_loadu_ps(m, p);
    __m256i h = _mm256_maskz_loadu_epi16(m, p);
    if (bt == BT_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* ---------------------------------------------------------------------------------------------
 * Thread-local scratch for packed panels: 64-byte aligned, grown on demand, never shrunk, freed
 * when its thread exits (a pthread key destructor; OpenMP pool threads live on between calls).
 */
static __thread float *tl_scratch;
static __thread size_t tl_scratch_n;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_key_create(void) { pthread_key_create(&scratch_key, free); }

static float *scratch(size_t n) {
    if (n > tl_scratch_n) {
        pthread_once(&scratch_once, scratch_key_create);
        free(tl_scratch);
        size_t bytes = (size_t)round_up((int64_t)(n * sizeof(float)), 4096);
        tl_scratch = aligned_alloc(64, bytes);
        if (!tl_scratch) {
            fprintf(stderr, "dv_gemm avx512: out of memory for a %zu-byte pack buffer\n", bytes);
            abort();
        }
        tl_scratch_n = bytes / sizeof(float);
        pthread_setspecific(scratch_key, tl_scratch);
    }
    return tl_scratch;
}

/* ---------------------------------------------------------------------------------------------
 * Packing.
 */

/* In-place transpose of a 16x16 f32 block held in 16 registers: r[i] lane j <-> r[j] lane i. */
INLINE void transpose16(__m512 r[16]) {
    __m512 t[16];
#pragma GCC unroll 8
    for (int i = 0; i < 16; i += 2) { /* interleave pairs of rows, 32-bit granules */
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 16; i += 4) { /* then 64-bit granules: r[i+c] lane l = column 4l+c */
        __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
        __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
        r[i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) { /* then 128-bit lanes across the four row groups */
        __m512 u0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x44);
        __m512 u1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xee);
        __m512 u2 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x44);
        __m512 u3 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xee);
        t[c] = _mm512_shuffle_f32x4(u0, u2, 0x88);
        t[4 + c] = _mm512_shuffle_f32x4(u0, u2, 0xdd);
        t[8 + c] = _mm512_shuffle_f32x4(u1, u3, 0x88);
        t[12 + c] = _mm512_shuffle_f32x4(u1, u3, 0xdd);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

/* Pack a strip of 16 k-steps of up to 16 rows (of A) or columns (of B): source line t
 * (t < nrows; the rest read as 0) holds 16 consecutive k at src + t*src_step bytes, of which the
 * first kn are valid. After the transpose, vector u (k = u, one lane per line) is stored at
 * dst + u*stride under the lane mask `store`, for u < kn. */
INLINE void transpose_strip(btype bt, const char *src, int64_t src_step, int nrows, int64_t kn,
                            float *dst, int64_t stride, __mmask16 store) {
    __m512 r[16];
    __mmask16 km = lanes(kn);
#pragma GCC unroll 16
    for (int t = 0; t < 16; t++)
        r[t] = t < nrows ? load16(bt, src + t * src_step, km) : _mm512_setzero_ps();
    /* the strip four ahead: so many rows at once defeat the hardware prefetcher */
    for (int t = 0; t < nrows; t++) _mm_prefetch(src + t * src_step + 256, _MM_HINT_T0);
    transpose16(r);
#pragma GCC unroll 16
    for (int u = 0; u < 16; u++)
        if (u < kn) _mm512_mask_storeu_ps(dst + u * stride, store, r[u]);
}

/* A[ic:+mr, pc:+kc] -> Ap[k*P + i], one panel of height P (mr <= P <= 16), rows mr..P-1 zero */
static void pack_a_panel(const gemm_args *g, int64_t ic, int mr, int64_t pc, int64_t kc, int P,
                         float *Ap) {
    __mmask16 store = lanes(P);
    if (g->ta) { /* A stored (K,M): row k of the panel is contiguous */
        __mmask16 m = lanes(mr);
        for (int64_t k = 0; k < kc; k++)
            _mm512_mask_storeu_ps(Ap + k * P, store,
                                  _mm512_maskz_loadu_ps(m, g->A + (pc + k) * g->lda + ic));
    } else { /* A stored (M,K): transpose 16 x 16 strips */
        const char *src = (const char *)(g->A + ic * g->lda + pc);
        for (int64_t k = 0; k < kc; k += 16)
            transpose_strip(BT_F32, src + k * 4, g->lda * 4, mr, kc - k, Ap + k * P, P, store);
    }
}

/* B[pc:+kc, jc:+nc] -> NR-wide panels, panel q at Bp + q*NR*kc holding element (k, q*NR + j) at
 * [k*NR + j], widened to f32; columns past nc are zero. */
static void pack_b_block(const gemm_args *g, int64_t pc, int64_t kc, int64_t jc, int64_t nc,
                         float *Bp) {
    const int es = esize(g->bt);
    const char *B = (const char *)g->B;
    if (!g->tb) { /* B stored (K,N): a row of a panel is contiguous */
        for (int64_t q = 0; q < nc; q += NR, Bp += NR * kc) {
            __mmask16 m0 = lanes(nc - q), m1 = lanes(nc - q - 16);
            const char *row = B + (pc * g->ldb + jc + q) * es;
            for (int64_t k = 0; k < kc; k++, row += g->ldb * es) {
                /* one 128-byte piece per row: prefetch rows well ahead, the hardware won't */
                _mm_prefetch(row + 32 * g->ldb * es, _MM_HINT_T0);
                _mm_prefetch(row + 32 * g->ldb * es + 64, _MM_HINT_T0);
                _mm512_store_ps(Bp + k * NR, load16(g->bt, row, m0));
                _mm512_store_ps(Bp + k * NR + 16, load16(g->bt, row + 16 * es, m1));
            }
        }
        return;
    }
    /* B stored (N,K): column j of a panel is contiguous; transpose 16 x 16 strips (a half panel
     * past nc gets nrows <= 0: zeros, nothing read) */
    for (int64_t q = 0; q < nc; q += NR, Bp += NR * kc)
        for (int h = 0; h < 2; h++) {
            const char *src = B + ((jc + q + 16 * h) * g->ldb + pc) * es;
            int rows = (int)min64(nc - q - 16 * h, 16);
            for (int64_t k = 0; k < kc; k += 16)
                transpose_strip(g->bt, src + k * es, g->ldb * es, rows, kc - k,
                                Bp + k * NR + 16 * h, NR, 0xffff);
        }
}

/* ---------------------------------------------------------------------------------------------
 * Micro-kernel: C[0:mr, 0:32] = alpha * Ap . Bp + beta * C (+ bias[0:32] when bias is not NULL)
 * for an R-row A panel (element (k,i) at Ap[k*R + i]) and a 32-column B panel (Bp[k*NR + j]).
 * Lanes outside n0 / n1 are not stored; beta == 0 does not read C. R is a compile-time constant: 14 for full panels, 1, 2, 4 or 8 for
 * the short last panel of a small M.
 */
INLINE void micro_kernel(const int R, int64_t K, const float *Ap, const float *Bp, __mmask16 n0,
                         __mmask16 n1, float *C, int64_t ldc, int mr, float alpha, float beta,
                         const float *bias, int act) {
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 14
    for (int i = 0; i < R; i++) c0[i] = c1[i] = _mm512_setzero_ps();
#pragma GCC unroll 14
    for (int i = 0; i < R; i++) /* C is needed only at the end: fetch it meanwhile */
        if (i < mr) {
            _mm_prefetch((const char *)(C + i * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(C + i * ldc + 31), _MM_HINT_T0);
        }
    for (int64_t k = 0; k < K; k++, Bp += NR, Ap += R) {
        __m512 b0 = _mm512_load_ps(Bp), b1 = _mm512_load_ps(Bp + 16);
#pragma GCC unroll 14
        for (int i = 0; i < R; i++) {
            __m512 a = _mm512_set1_ps(Ap[i]);
            c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
        }
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    __m512 bias0 = _mm512_setzero_ps(), bias1 = _mm512_setzero_ps();
    if (bias) bias0 = _mm512_maskz_loadu_ps(n0, bias), bias1 = _mm512_maskz_loadu_ps(n1, bias + 16);
#pragma GCC unroll 14
    for (int i = 0; i < R; i++) {
        if (i >= mr) break;
        float *c = C + i * ldc;
        __m512 r0 = _mm512_mul_ps(va, c0[i]), r1 = _mm512_mul_ps(va, c1[i]);
        if (beta != 0.0f) {
            r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(n0, c), r0);
            r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(n1, c + 16), r1);
        }
        if (bias) r0 = _mm512_add_ps(r0, bias0), r1 = _mm512_add_ps(r1, bias1);
        if (act) r0 = act_vec(act, r0), r1 = act_vec(act, r1);
        _mm512_mask_storeu_ps(c, n0, r0);
        _mm512_mask_storeu_ps(c + 16, n1, r1);
    }
}

/* Rows in a panel: 14, or for the last rows of A the smallest of 1, 2, 4, 8, 14 that holds them. */
static int panel_height(int64_t rows) {
    return rows > 8 ? MR : rows > 4 ? 8 : rows > 2 ? 4 : (int)rows;
}

static void panel_kernel(int R, int64_t K, const float *Ap, const float *Bp, __mmask16 n0,
                         __mmask16 n1, float *C, int64_t ldc, int mr, float alpha, float beta,
                         const float *bias, int act) {
    switch (R) {
    case 1: micro_kernel(1, K, Ap, Bp, n0, n1, C, ldc, mr, alpha, beta, bias, act); break;
    case 2: micro_kernel(2, K, Ap, Bp, n0, n1, C, ldc, mr, alpha, beta, bias, act); break;
    case 4: micro_kernel(4, K, Ap, Bp, n0, n1, C, ldc, mr, alpha, beta, bias, act); break;
    case 8: micro_kernel(8, K, Ap, Bp, n0, n1, C, ldc, mr, alpha, beta, bias, act); break;
    default: micro_kernel(MR, K, Ap, Bp, n0, n1, C, ldc, mr, alpha, beta, bias, act); break;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Path 1: packed.
 */

/* One thread's block C[m0:m1, n0:n1]; Ap has room for MC x KC, Bp for KC x round_up(n1-n0, NR)
 * (at most NC). */
static void packed_block(const gemm_args *g, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                         float *Ap, float *Bp) {
    for (int64_t jc = n0; jc < n1; jc += NC) {
        int64_t nc = min64(NC, n1 - jc);
        for (int64_t pc = 0; pc < g->K; pc += KC) {
            int64_t kc = min64(KC, g->K - pc);
            float beta = pc == 0 ? g->beta : 1.0f;
            pack_b_block(g, pc, kc, jc, nc, Bp);
            for (int64_t ic = m0; ic < m1; ic += MC) {
                int64_t mc = min64(MC, m1 - ic);
                for (int64_t ir = 0; ir < mc; ir += MR)
                    pack_a_panel(g, ic + ir, (int)min64(MR, mc - ir), pc, kc,
                                 panel_height(mc - ir), Ap + ir * kc);
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    int64_t nr = min64(NR, nc - jr);
                    float *C = g->C + ic * g->ldc + jc + jr;
                    const float *bias = pc == 0 && g->bias ? g->bias + jc + jr : NULL;
                    const int act = pc + kc == g->K ? g->act : 0; /* after the last K block */
                    __mmask16 n0 = lanes(nr), n1 = lanes(nr - 16);
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        int mr = (int)min64(MR, mc - ir);
                        if (mr == MR)
                            micro_kernel(MR, kc, Ap + ir * kc, Bp + jr * kc, n0, n1,
                                         C + ir * g->ldc, g->ldc, MR, g->alpha, beta, bias, act);
                        else
                            panel_kernel(panel_height(mr), kc, Ap + ir * kc, Bp + jr * kc, n0, n1,
                                         C + ir * g->ldc, g->ldc, mr, g->alpha, beta, bias, act);
                    }
                }
            }
        }
    }
}

static int threads_for(int64_t fmas) {
    int max = omp_in_parallel() ? 1 : omp_get_max_threads();
    int64_t t = fmas / MIN_FMAS_PER_THREAD;
    return t < 1 ? 1 : t < max ? (int)t : max;
}

/* Pick the tm x tn thread grid (tm * tn = nt) with the least work for the busiest thread: its
 * padded block of MACs plus packing its A rows and B columns (~8 MACs per element packed). */
static void thread_grid(int nt, int64_t M, int64_t N, int64_t K, int *tm, int *tn) {
    double best = -1;
    for (int a = 1; a <= nt; a++) {
        if (nt % a) continue;
        int64_t mt = round_up((M + a - 1) / a, MR), ntc = round_up((N + nt / a - 1) / (nt / a), NR);
        double cost = (double)mt * ntc * K + 8.0 * K * (mt + ntc);
        if (best < 0 || cost < best) best = cost, *tm = a, *tn = nt / a;
    }
}

static void gemm_packed(const gemm_args *g) {
    int nt = threads_for(g->M * g->N * g->K), tm = 1, tn = 1;
    thread_grid(nt, g->M, g->N, g->K, &tm, &tn);
    int64_t mt = round_up((g->M + tm - 1) / tm, MR), ntc = round_up((g->N + tn - 1) / tn, NR);
#pragma omp parallel num_threads(tm * tn)
    {
        int t = omp_get_thread_num();
        int64_t m0 = (t / tn) * mt, m1 = min64(g->M, m0 + mt);
        int64_t n0 = (t % tn) * ntc, n1 = min64(g->N, n0 + ntc);
        if (m0 < m1 && n0 < n1) {
            float *Ap = scratch((size_t)MC * KC + (size_t)KC * min64(NC, ntc));
            packed_block(g, m0, m1, n0, n1, Ap, Ap + (size_t)MC * KC);
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Path 2: stream (tb = 0, M <= STREAM_MAX_M). B is read in place, row after row and each row
 * from left to right, U rows at a time, and added into an accumulator of R rows of A (R <= 8)
 * by n columns that stays in L1:
 *
 *   acc[0:R, 0:n] += A[0:R, k:k+U] . B[k:k+U, 0:n]        (A as an R-row panel, Ap[k*R + i])
 *
 * U = 4 for R <= 4, else 2, so the R x U broadcasts of A stay in registers.
 */
INLINE void stream_kernel(const int R, const btype bt, int64_t K, const float *Ap, const void *B,
                          int64_t ldb, int64_t n, float *acc, int64_t ldacc) {
    const int U = R <= 4 ? 4 : 2, es = esize(bt);
    int64_t k = 0;
    for (; k + U <= K; k += U) {
        const char *b = (const char *)B + k * ldb * es;
        __m512 a[8][4]; /* a[i][u] = A[i, k+u] */
#pragma GCC unroll 8
        for (int i = 0; i < R; i++)
#pragma GCC unroll 4
            for (int u = 0; u < U; u++) a[i][u] = _mm512_set1_ps(Ap[(k + u) * R + i]);
        for (int64_t j = 0; j < n; j += 16) {
            __mmask16 m = lanes(n - j);
            __m512 bv[4];
#pragma GCC unroll 4
            for (int u = 0; u < U; u++) { /* U rows at once: too many streams for the prefetcher */
                bv[u] = load16(bt, b + (u * ldb + j) * es, m);
                _mm_prefetch(b + (u * ldb + j) * es + 1024, _MM_HINT_T0);
            }
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) {
                float *x = acc + i * ldacc + j;
                __m512 s = _mm512_load_ps(x);
#pragma GCC unroll 4
                for (int u = 0; u < U; u++) s = _mm512_fmadd_ps(a[i][u], bv[u], s);
                _mm512_store_ps(x, s);
            }
        }
    }
    for (; k < K; k++) { /* the last K % U rows */
        const char *b = (const char *)B + k * ldb * es;
        for (int64_t j = 0; j < n; j += 16) {
            __m512 bv = load16(bt, b + j * es, lanes(n - j));
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) {
                float *x = acc + i * ldacc + j;
                __m512 a = _mm512_set1_ps(Ap[k * R + i]);
                _mm512_store_ps(x, _mm512_fmadd_ps(a, bv, _mm512_load_ps(x)));
            }
        }
    }
}

static void stream_rows(int R, btype bt, int64_t K, const float *Ap, const void *B, int64_t ldb,
                        int64_t n, float *acc, int64_t ldacc) {
#define CASE(r)                                                                                    \
    case r:                                                                                        \
        if (bt == BT_F32) stream_kernel(r, BT_F32, K, Ap, B, ldb, n, acc, ldacc);                  \
        else if (bt == BT_F16) stream_kernel(r, BT_F16, K, Ap, B, ldb, n, acc, ldacc);             \
        else stream_kernel(r, BT_BF16, K, Ap, B, ldb, n, acc, ldacc);                              \
        break;
    switch (R) { CASE(1) CASE(2) CASE(4) CASE(8) }
#undef CASE
}

/* Threads share out the columns. Each walks its columns in chunks as wide as the accumulator
 * allows (STREAM_ACC floats: 8192 columns for one row of A, 512 for 16; wide chunks mean long
 * sequential reads of B), K in blocks of STREAM_KC rows (so the block of B is still in L2 for
 * the second group of rows of A), and the rows of A in groups of 8. */
static void gemm_stream(const gemm_args *g) {
    const int64_t M = g->M, N = g->N, K = g->K;
    const int es = esize(g->bt);
    float *Ap = scratch((size_t)round_up(M, 8) * K);
    for (int64_t i = 0; i < M; i += 8) {
        int rows = (int)min64(8, M - i);
        pack_a_panel(g, i, rows, 0, K, panel_height(rows), Ap + i * K);
    }
    /* accumulator rows: M rounded up to whole panels (panel_height); their length: */
    const int64_t mpad = round_up(M, 4), width = STREAM_ACC / mpad / 16 * 16;
    const int64_t kblock = M > 8 ? STREAM_KC : K;
    int64_t vecs = (N + 15) / 16;
    int nt = threads_for(M * N * K);
    if (nt > vecs) nt = (int)vecs;
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num();
        int64_t n0 = vecs * t / nt * 16, n1 = min64(N, vecs * (t + 1) / nt * 16);
        float acc[STREAM_ACC] __attribute__((aligned(64)));
        __m512 va = _mm512_set1_ps(g->alpha), vb = _mm512_set1_ps(g->beta);
        for (int64_t c = n0; c < n1; c += width) {
            int64_t n = min64(width, n1 - c);
            for (int64_t i = 0; i < mpad * width; i += 16)
                _mm512_store_ps(acc + i, _mm512_setzero_ps());
            for (int64_t pc = 0; pc < K; pc += kblock) {
                const char *B = (const char *)g->B + (pc * g->ldb + c) * es;
                for (int64_t i = 0; i < M; i += 8) {
                    int P = panel_height(min64(8, M - i));
                    stream_rows(P, g->bt, min64(kblock, K - pc), Ap + i * K + pc * P, B, g->ldb,
                                n, acc + i * width, width);
                }
            }
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < n; j += 16) {
                    __mmask16 m = lanes(n - j);
                    float *cp = g->C + i * g->ldc + c + j;
                    __m512 r = _mm512_mul_ps(va, _mm512_load_ps(acc + i * width + j));
                    if (g->beta != 0.0f) r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, cp), r);
                    if (g->bias) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(m, g->bias + c + j));
                    _mm512_mask_storeu_ps(cp, m, r);
                }
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Path 3: dot (tb = 1, small M). C[i, j] = alpha * <A row i, W row j> + beta * C[i, j] for R rows
 * of A and J rows of W at a time, vectors along K. Rows of W past nw repeat the last one (loaded,
 * not stored).
 */
/* acc[i][j] += A[i, k:k+16] * W[j, k:k+16] (lanes outside m read as 0) */
INLINE void dot_step(const int R, const int J, const btype bt, const float *A, int64_t lda,
                     const char *const *w, int64_t k, __mmask16 m, __m512 acc[4][8]) {
    const int es = esize(bt);
    __m512 a[4];
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) a[i] = _mm512_maskz_loadu_ps(m, A + i * lda + k);
#pragma GCC unroll 8
    for (int j = 0; j < J; j++) {
        __m512 b = load16(bt, w[j] + k * es, m);
        _mm_prefetch(w[j] + k * es + 1024, _MM_HINT_T0); /* J streams: help the prefetcher */
#pragma GCC unroll 4
        for (int i = 0; i < R; i++) acc[i][j] = _mm512_fmadd_ps(a[i], b, acc[i][j]);
    }
}

INLINE void dot_kernel(const int R, const int J, const btype bt, int64_t K, const float *A,
                       int64_t lda, const void *W, int64_t ldw, int nw, float *C, int64_t ldc,
                       float alpha, float beta, const float *bias) {
    const char *w[8];
    for (int j = 0; j < J; j++) w[j] = (const char *)W + (j < nw ? j : nw - 1) * ldw * esize(bt);
    __m512 acc[4][8];
#pragma GCC unroll 8
    for (int j = 0; j < J; j++)
#pragma GCC unroll 4
        for (int i = 0; i < R; i++) acc[i][j] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) dot_step(R, J, bt, A, lda, w, k, 0xffff, acc);
    if (k < K) dot_step(R, J, bt, A, lda, w, k, lanes(K - k), acc);
#pragma GCC unroll 4
    for (int i = 0; i < R; i++)
#pragma GCC unroll 8
        for (int j = 0; j < J; j++) {
            if (j >= nw) break;
            float s = alpha * _mm512_reduce_add_ps(acc[i][j]);
            float *c = C + i * ldc + j;
            if (beta != 0.0f) s += beta * *c;
            *c = bias ? s + bias[j] : s;
        }
}

enum { DOT_J = 6 }; /* rows of W per dot kernel call */

static void dot_rows(int R, btype bt, int64_t K, const float *A, int64_t lda, const void *W,
                     int64_t ldw, int nw, float *C, int64_t ldc, float alpha, float beta,
                     const float *bias) {
#define CASE(r)                                                                                    \
    case r:                                                                                        \
        if (bt == BT_F32)                                                                          \
            dot_kernel(r, DOT_J, BT_F32, K, A, lda, W, ldw, nw, C, ldc, alpha, beta, bias);        \
        else if (bt == BT_F16)                                                                     \
            dot_kernel(r, DOT_J, BT_F16, K, A, lda, W, ldw, nw, C, ldc, alpha, beta, bias);        \
        else                                                                                       \
            dot_kernel(r, DOT_J, BT_BF16, K, A, lda, W, ldw, nw, C, ldc, alpha, beta, bias);       \
        break;
    switch (R) { CASE(1) CASE(2) CASE(4) }
#undef CASE
}

static void gemm_dot(const gemm_args *g) {
    const int64_t M = g->M, N = g->N, K = g->K;
    const float *A = g->A;
    int64_t lda = g->lda;
    if (g->ta) { /* A stored (K,M): copy it to (M,K) so that rows run along K */
        float *At = scratch((size_t)M * K);
        for (int64_t k = 0; k < K; k++)
            for (int64_t i = 0; i < M; i++) At[i * K + k] = A[k * lda + i];
        A = At, lda = K;
    }
    int nt = threads_for(M * N * K);
    int64_t groups = (N + DOT_J - 1) / DOT_J;
    if (nt > groups) nt = (int)groups;
    const int es = esize(g->bt);
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num();
        for (int64_t s = groups * t / nt; s < groups * (t + 1) / nt; s++) {
            int64_t j = s * DOT_J;
            int nw = (int)min64(DOT_J, N - j);
            const char *W = (const char *)g->B + j * g->ldb * es;
            for (int64_t i = 0; i < M;) {
                int R = M - i >= 4 ? 4 : M - i >= 2 ? 2 : 1;
                dot_rows(R, g->bt, K, A + i * lda, lda, W, g->ldb, nw, g->C + i * g->ldc + j,
                         g->ldc, g->alpha, g->beta, g->bias ? g->bias + j : NULL);
                i += R;
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Path 4: broadcast (tb = 1, f32 W, 12 < M <= 32). At[k * 16V + i] = A[i, k] (zero for i >= M).
 */
enum { BC_J = 8 }; /* rows of W per tile */

/* C[i, j] = alpha * sum_k At[k, i] W[j, k] + beta * C[i, j] (+ bias[j]) for i < mr, j < nw;
 * rows of W past nw repeat the last one (read, not stored) */
INLINE void bcast_tile(const int V, int64_t K, const float *At, const float *W, int64_t ldw, int nw,
                       float *C, int64_t ldc, int mr, float alpha, float beta, const float *bias,
                       int act) {
    const float *w[BC_J];
#pragma GCC unroll 8
    for (int j = 0; j < BC_J; j++) w[j] = W + (j < nw ? j : nw - 1) * ldw;
    __m512 acc[2][BC_J];
#pragma GCC unroll 8
    for (int j = 0; j < BC_J; j++) acc[0][j] = acc[1][j] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
#pragma GCC unroll 8
        for (int j = 0; j < BC_J; j++) _mm_prefetch((const char *)(w[j] + k) + 256, _MM_HINT_T0);
#pragma GCC unroll 16
        for (int u = 0; u < 16; u++) {
            const float *a = At + (k + u) * 16 * V;
            __m512 a0 = _mm512_load_ps(a), a1 = V == 2 ? _mm512_load_ps(a + 16) : a0;
#pragma GCC unroll 8
            for (int j = 0; j < BC_J; j++) {
                __m512 b = _mm512_set1_ps(w[j][k + u]);
                acc[0][j] = _mm512_fmadd_ps(a0, b, acc[0][j]);
                if (V == 2) acc[1][j] = _mm512_fmadd_ps(a1, b, acc[1][j]);
            }
        }
    }
    for (; k < K; k++) {
        const float *a = At + k * 16 * V;
        __m512 a0 = _mm512_load_ps(a), a1 = V == 2 ? _mm512_load_ps(a + 16) : a0;
#pragma GCC unroll 8
        for (int j = 0; j < BC_J; j++) {
            __m512 b = _mm512_set1_ps(w[j][k]);
            acc[0][j] = _mm512_fmadd_ps(a0, b, acc[0][j]);
            if (V == 2) acc[1][j] = _mm512_fmadd_ps(a1, b, acc[1][j]);
        }
    }
    /* lane l of acc[v][j] is C[16v + l, j]: transpose 16 x 8 (+ 8 zero columns) in registers,
     * then row u of the block is lanes 0..nw of r[u] */
    const __mmask16 cm = lanes(nw);
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    const __m512 vbias = bias ? _mm512_maskz_loadu_ps(cm, bias) : _mm512_setzero_ps();
#pragma GCC unroll 2
    for (int v = 0; v < V; v++) {
        __m512 r[16];
#pragma GCC unroll 8
        for (int j = 0; j < BC_J; j++) r[j] = acc[v][j], r[BC_J + j] = _mm512_setzero_ps();
        transpose16(r);
#pragma GCC unroll 16
        for (int u = 0; u < 16; u++) {
            if (16 * v + u >= mr) break;
            float *c = C + (16 * v + u) * ldc;
            __m512 x = _mm512_mul_ps(va, r[u]);
            if (beta != 0.0f) x = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(cm, c), x);
            x = _mm512_add_ps(x, vbias);
            _mm512_mask_storeu_ps(c, cm, act ? act_vec(act, x) : x);
        }
    }
}

static void bcast_rows(int V, int64_t K, const float *At, const float *W, int64_t ldw, int nw,
                       float *C, int64_t ldc, int mr, float alpha, float beta, const float *bias,
                       int act) {
    if (V == 1) bcast_tile(1, K, At, W, ldw, nw, C, ldc, mr, alpha, beta, bias, act);
    else bcast_tile(2, K, At, W, ldw, nw, C, ldc, mr, alpha, beta, bias, act);
}

static void gemm_bcast(const gemm_args *g) {
    const int64_t M = g->M, N = g->N, K = g->K;
    const int V = M > 16 ? 2 : 1, P = 16 * V;
    int nt = threads_for(M * N * K);
    int64_t tiles = (N + BC_J - 1) / BC_J;
    if (nt > tiles) nt = (int)tiles;
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num();
        /* each thread packs its own A^T (a few KiB): no barrier */
        float *At = scratch((size_t)K * P);
        if (g->ta) { /* A stored (K,M): rows of A^T are contiguous */
            for (int64_t k = 0; k < K; k++)
                for (int v = 0; v < V; v++)
                    _mm512_store_ps(At + k * P + 16 * v,
                                    _mm512_maskz_loadu_ps(lanes(M - 16 * v), g->A + k * g->lda + 16 * v));
        } else {     /* A stored (M,K): 16 x 16 transposes */
            for (int v = 0; v < V; v++) {
                const char *src = (const char *)(g->A + 16 * v * g->lda);
                for (int64_t k = 0; k < K; k += 16)
                    transpose_strip(BT_F32, src + k * 4, g->lda * 4, (int)min64(M - 16 * v, 16), K - k,
                                    At + k * P + 16 * v, P, 0xffff);
            }
        }
        for (int64_t s = tiles * t / nt; s < tiles * (t + 1) / nt; s++) {
            int64_t j = s * BC_J;
            bcast_rows(V, K, At, (const float *)g->B + j * g->ldb, g->ldb, (int)min64(BC_J, N - j),
                       g->C + j, g->ldc, (int)M, g->alpha, g->beta, g->bias ? g->bias + j : NULL, g->act);
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Entry points.
 */
static void check_args(const char *name, const gemm_args *g) {
    int64_t wa = g->ta ? g->M : g->K, wb = g->tb ? g->K : g->N;
    if ((g->ta | g->tb) & ~1 || g->M < 0 || g->N < 0 || g->K < 0 || g->lda < wa || g->ldb < wb ||
        g->ldc < g->N) {
        fprintf(stderr,
                "%s: bad arguments ta=%d tb=%d M=%lld N=%lld K=%lld lda=%lld (needs >= %lld) "
                "ldb=%lld (needs >= %lld) ldc=%lld (needs >= %lld)\n",
                name, g->ta, g->tb, (long long)g->M, (long long)g->N, (long long)g->K,
                (long long)g->lda, (long long)wa, (long long)g->ldb, (long long)wb,
                (long long)g->ldc, (long long)g->N);
        abort();
    }
}

/* tb = 1: the dot path beats packing while K is long enough to amortise the horizontal sums,
 * and longer the more rows of A share each row of W (thresholds measured on Zen 5). */
static int use_dot(int64_t M, int64_t K) {
    return M <= 4 || (M <= 16 && K >= 128) || (M <= DOT_MAX_M && K >= 1024);
}

/* tb = 1, f32 W: the broadcast path from 13 rows to 32. Measured on Zen 5, one thread, K 256 /
 * 1024, N 256-1024: 16 rows 160-197 GFLOP/s (dot 116-135), 24 rows 155-163 (packed 133-162), 32
 * rows 216-224 (packed or dot 160-172); at 12 rows it ties with dot, at 8 or fewer (most lanes
 * of A^T zero) dot is 1.5-2x faster. */
static int use_bcast(const gemm_args *g) {
    return g->bt == BT_F32 && g->M > 12 && g->M <= 32;
}

/* C[0:M, 0:N] = act(C), for the paths that store C without the activation */
static void act_pass(const gemm_args *g) {
    for (int64_t i = 0; i < g->M; i++)
        for (int64_t j = 0; j < g->N; j += 16) {
            float *c = g->C + i * g->ldc + j;
            __mmask16 m = lanes(g->N - j);
            _mm512_mask_storeu_ps(c, m, act_vec(g->act, _mm512_maskz_loadu_ps(m, c)));
        }
}

static void gemm(const char *name, const gemm_args *g) {
    check_args(name, g);
    if (g->M == 0 || g->N == 0) return;
    if (g->K == 0 || g->alpha == 0.0f) { /* C = beta * C (+ bias) */
        for (int64_t i = 0; i < g->M; i++)
            for (int64_t j = 0; j < g->N; j++) {
                float *c = g->C + i * g->ldc + j;
                *c = (g->beta == 0.0f ? 0.0f : g->beta * *c) + (g->bias ? g->bias[j] : 0.0f);
            }
        if (g->act) act_pass(g);
        return;
    }
    if (g->tb && use_bcast(g)) {
        gemm_bcast(g);
    } else if (g->tb && use_dot(g->M, g->K)) {
        gemm_dot(g); /* small M: the activation afterwards costs little */
        if (g->act) act_pass(g);
    } else if (!g->tb && g->M <= STREAM_MAX_M) {
        gemm_stream(g);
        if (g->act) act_pass(g);
    } else {
        gemm_packed(g);
    }
}

#define GEMM_ARGS_STRUCT(BT, BIAS)                                                                 \
    (gemm_args) { ta, tb, M, N, K, alpha, beta, A, lda, B, BT, ldb, C, ldc, BIAS, 0 }

void dv_gemm_f32_avx512(DV_GEMM_ARGS(float, float, float)) {
    gemm_args g = GEMM_ARGS_STRUCT(BT_F32, NULL);
    gemm("dv_gemm_f32_avx512", &g);
}

void dv_gemm_f16b_avx512(DV_GEMM_ARGS(float, uint16_t, float)) {
    gemm_args g = GEMM_ARGS_STRUCT(BT_F16, NULL);
    gemm("dv_gemm_f16b_avx512", &g);
}

void dv_gemm_bf16b_avx512(DV_GEMM_ARGS(float, uint16_t, float)) {
    gemm_args g = GEMM_ARGS_STRUCT(BT_BF16, NULL);
    gemm("dv_gemm_bf16b_avx512", &g);
}

void dv_gemm_f32_bias_avx512(DV_GEMM_ARGS(float, float, float), const float *bias) {
    gemm_args g = GEMM_ARGS_STRUCT(BT_F32, bias);
    gemm("dv_gemm_f32_bias_avx512", &g);
}

void dv_gemm_f16b_bias_avx512(DV_GEMM_ARGS(float, uint16_t, float), const float *bias) {
    gemm_args g = GEMM_ARGS_STRUCT(BT_F16, bias);
    gemm("dv_gemm_f16b_bias_avx512", &g);
}

void dv_gemm_bf16b_bias_avx512(DV_GEMM_ARGS(float, uint16_t, float), const float *bias) {
    gemm_args g = GEMM_ARGS_STRUCT(BT_BF16, bias);
    gemm("dv_gemm_bf16b_bias_avx512", &g);
}

void dv_gemm_f32_bias_act_avx512(DV_GEMM_ARGS(float, float, float), const float *bias, int act) {
    gemm_args g = GEMM_ARGS_STRUCT(BT_F32, bias);
    if (act < 0 || act >= DV_BIAS_ACT_COUNT) {
        fprintf(stderr, "dv_gemm_f32_bias_act_avx512: unknown activation %d\n", act);
        abort();
    }
    g.act = act;
    gemm("dv_gemm_f32_bias_act_avx512", &g);
}
