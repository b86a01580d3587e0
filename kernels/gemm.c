/* kernels/gemm.c — portable C GEMM: f32, f64, and f32 activations times f16 / bf16 weights.
 *
 *   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C        (conventions: kernels/gemm.h)
 *
 * The reference every fast GEMM is tested against, and the GEMM on CPUs without AVX-512, so it
 * is blocked and packed like kernels/avx512/gemm.c, with tiles sized for 16 SSE registers:
 *
 *   for jc over N in NC steps
 *     for pc over K in KC steps
 *       pack B[pc:+KC, jc:+NC] into NR-wide panels      (f16 / bf16 widened to f32 here)
 *       for ic over M in MC steps
 *         pack A[ic:+MC, pc:+KC] into MR-tall panels    (A block stays in L2)
 *         for jr over NC in NR steps, ir over MC in MR steps
 *           micro-kernel: acc[MR][NR] += Ap[k][0:MR] (outer) Bp[k][0:NR]   for k < KC
 *
 * Micro-kernel: f32 6 x 8 and f64 6 x 4, twelve 128-bit accumulators. The row loop is fully
 * unrolled and the column loop has a constant length, so gcc -O2 keeps the tile in registers and
 * vectorises it for baseline x86-64 (SSE2) with no intrinsics (about 40 / 20 GFLOP/s per Zen 5
 * core). Packing absorbs the transposes and pads edge panels with zeros; the kernel stores only
 * the valid mr x nr corner.
 *
 * Small M (M <= 4: decode, y = x W^T): packing B would cost as much as the product, so B is read
 * in place, once. tb = 1 (W stored (N,K), the Linear layer): each output is a dot product along
 * K, vectorised by `omp simd`. tb = 0: rows of B stream past M accumulator rows held in L1.
 *
 * Threads: C is cut into a tm x tn grid of blocks, one per OpenMP thread, each running the serial
 * algorithm with its own pack buffers (thread-local, kept between calls, freed at thread exit);
 * the small-M paths share out the columns. Small products use fewer threads, and a call from
 * inside a parallel region runs on its own thread.
 *
 * Not here: intrinsics or ISA-specific tuning (kernels/avx512/gemm.c), f16 / bf16 for A or C.
 */
#include "kernels/gemm.h"

#include "kernels/half.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

enum {
    MR32 = 6, NR32 = 8, MR64 = 6, NR64 = 4, /* micro-kernel tiles, f32 and f64 */
    KC = 256, MC = 120, NC = 2048,           /* blocking (MC multiple of 6, NC of 8) */
    DOT_MAX_M = 4, STREAM_MAX_M = DOT_MAX_M, /* small-M paths up to this many rows */
    STREAM_NC = 1024,                        /* columns per accumulator chunk (stream32) */
    MIN_FMAS_PER_THREAD = 1 << 18            /* below this much work per thread, fewer threads */
};

typedef enum { BT_F32, BT_F16, BT_BF16 } btype; /* element type of B on the f32 path */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

static void check_args(const char *name, int ta, int tb, int64_t M, int64_t N, int64_t K,
                       int64_t lda, int64_t ldb, int64_t ldc) {
    int64_t wa = ta ? M : K, wb = tb ? K : N;
    if ((ta | tb) & ~1 || M < 0 || N < 0 || K < 0 || lda < wa || ldb < wb || ldc < N) {
        fprintf(stderr,
                "%s: bad arguments ta=%d tb=%d M=%lld N=%lld K=%lld lda=%lld (needs >= %lld) "
                "ldb=%lld (needs >= %lld) ldc=%lld (needs >= %lld)\n",
                name, ta, tb, (long long)M, (long long)N, (long long)K, (long long)lda,
                (long long)wa, (long long)ldb, (long long)wb, (long long)ldc, (long long)N);
        abort();
    }
}

/* Thread-local scratch for packed panels and accumulators: 64-byte aligned, grown on demand and
 * kept for the next call (small products would otherwise spend their time in malloc), freed when
 * its thread exits. One user at a time per thread. */
static __thread void *tl_scratch;
static __thread size_t tl_scratch_bytes;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_key_create(void) { pthread_key_create(&scratch_key, free); }

static void *scratch(size_t bytes) {
    if (bytes > tl_scratch_bytes) {
        pthread_once(&scratch_once, scratch_key_create);
        free(tl_scratch);
        bytes = (size_t)round_up((int64_t)bytes, 4096);
        tl_scratch = aligned_alloc(64, bytes);
        if (!tl_scratch) {
            fprintf(stderr, "dv_gemm portable: out of memory for a %zu-byte buffer\n", bytes);
            abort();
        }
        tl_scratch_bytes = bytes;
        pthread_setspecific(scratch_key, tl_scratch);
    }
    return tl_scratch;
}

static int threads_for(int64_t fmas) {
#ifdef _OPENMP
    int max = omp_in_parallel() ? 1 : omp_get_max_threads();
#else
    int max = 1;
#endif
    int64_t t = fmas / MIN_FMAS_PER_THREAD;
    return t < 1 ? 1 : t < max ? (int)t : max;
}

static int thread_num(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Pick the tm x tn thread grid (tm * tn = nt) with the least work for the busiest thread: its
 * padded block of MACs plus packing its A rows and B columns (~8 MACs per element packed). */
static void thread_grid(int nt, int64_t M, int64_t N, int64_t K, int mr, int nr, int *tm, int *tn) {
    double best = -1;
    for (int a = 1; a <= nt; a++) {
        if (nt % a) continue;
        int64_t mt = round_up((M + a - 1) / a, mr), ntc = round_up((N + nt / a - 1) / (nt / a), nr);
        double cost = (double)mt * ntc * K + 8.0 * K * (mt + ntc);
        if (best < 0 || cost < best) best = cost, *tm = a, *tn = nt / a;
    }
}

/* =============================================================================================
 * f32 (B as f32, f16 or bf16 bits)
 */
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
} args32;

static inline float b_at(const args32 *g, int64_t k, int64_t n) { /* element (k,n) of op(B), as f32 */
    int64_t i = g->tb ? n * g->ldb + k : k * g->ldb + n;
    switch (g->bt) {
    case BT_F16: return dv_f16_to_f32(((const uint16_t *)g->B)[i]);
    case BT_BF16: return dv_bf16_to_f32(((const uint16_t *)g->B)[i]);
    default: return ((const float *)g->B)[i];
    }
}

/* A[ic:+mc, pc:+kc] -> MR32-tall panels, panel p at Ap + p*MR32*kc, element (i,k) at [k*MR32 + i] */
static void pack_a32(const args32 *g, int64_t ic, int64_t mc, int64_t pc, int64_t kc, float *Ap) {
    for (int64_t p = 0; p < mc; p += MR32, Ap += MR32 * kc)
        for (int64_t k = 0; k < kc; k++)
            for (int i = 0; i < MR32; i++) {
                int64_t m = ic + p + i, kk = pc + k;
                Ap[k * MR32 + i] =
                    p + i < mc ? g->A[g->ta ? kk * g->lda + m : m * g->lda + kk] : 0.0f;
            }
}

/* B[pc:+kc, jc:+nc] -> NR32-wide panels, panel q at Bp + q*NR32*kc, element (k,j) at [k*NR32 + j] */
static void pack_b32(const args32 *g, int64_t pc, int64_t kc, int64_t jc, int64_t nc, float *Bp) {
    for (int64_t q = 0; q < nc; q += NR32, Bp += NR32 * kc)
        for (int64_t k = 0; k < kc; k++)
            for (int j = 0; j < NR32; j++)
                Bp[k * NR32 + j] = q + j < nc ? b_at(g, pc + k, jc + q + j) : 0.0f;
}

/* tile[MR32][NR32] = Ap . Bp over kc steps of k. Kept out of line and free of other live values
 * so that the twelve accumulators, two B vectors and a broadcast fit the 16 SSE registers. */
static __attribute__((noinline)) void kernel32(int64_t kc, const float *restrict a,
                                               const float *restrict b, float *restrict tile) {
    float acc[MR32][NR32] = {{0}};
    for (int64_t k = 0; k < kc; k++, a += MR32, b += NR32)
#pragma GCC unroll 8
        for (int i = 0; i < MR32; i++)
            for (int j = 0; j < NR32; j++) acc[i][j] += a[i] * b[j];
    for (int i = 0; i < MR32; i++)
        for (int j = 0; j < NR32; j++) tile[i * NR32 + j] = acc[i][j];
}

/* C[0:mr, 0:nr] = alpha * tile + beta * C (beta == 0: C not read) */
static void store32(const float *tile, int mr, int nr, float alpha, float beta, float *C,
                    int64_t ldc) {
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            float *c = C + i * ldc + j;
            *c = beta == 0.0f ? alpha * tile[i * NR32 + j] : alpha * tile[i * NR32 + j] + beta * *c;
        }
}

static void block32(const args32 *g, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    int64_t ncmax = min64(NC, round_up(n1 - n0, NR32));
    float *Ap = scratch(sizeof(float) * (MC * KC + KC * ncmax)), *Bp = Ap + MC * KC;
    for (int64_t jc = n0; jc < n1; jc += NC) {
        int64_t nc = min64(NC, n1 - jc);
        for (int64_t pc = 0; pc < g->K; pc += KC) {
            int64_t kc = min64(KC, g->K - pc);
            float beta = pc == 0 ? g->beta : 1.0f;
            pack_b32(g, pc, kc, jc, nc, Bp);
            for (int64_t ic = m0; ic < m1; ic += MC) {
                int64_t mc = min64(MC, m1 - ic);
                pack_a32(g, ic, mc, pc, kc, Ap);
                for (int64_t jr = 0; jr < nc; jr += NR32)
                    for (int64_t ir = 0; ir < mc; ir += MR32) {
                        float tile[MR32 * NR32];
                        kernel32(kc, Ap + ir * kc, Bp + jr * kc, tile);
                        store32(tile, (int)min64(MR32, mc - ir), (int)min64(NR32, nc - jr),
                                g->alpha, beta, g->C + (ic + ir) * g->ldc + jc + jr, g->ldc);
                    }
            }
        }
    }
}

/* C[i, n] = alpha * <A row i, W row n> + beta * C[i, n] for W = B stored (N,K), read in place */
static void dot32(const args32 *g) {
    const int64_t M = g->M, N = g->N, K = g->K;
    const float *A = g->A;
    int64_t lda = g->lda;
    float *At = NULL;
    if (g->ta) { /* A stored (K,M): copy to (M,K) so that rows run along K */
        At = malloc(sizeof(float) * (size_t)(M * K));
        if (!At) {
            fprintf(stderr, "dv_gemm portable: out of memory for a %lld x %lld copy of A\n",
                    (long long)M, (long long)K);
            abort();
        }
        for (int64_t i = 0; i < M; i++)
            for (int64_t k = 0; k < K; k++) At[i * K + k] = A[k * lda + i];
        A = At, lda = K;
    }
    int nt = threads_for(M * N * K);
#pragma omp parallel num_threads(nt)
    {
        /* f16 / bf16: widen one row of W at a time into a per-thread buffer */
        float *w = g->bt == BT_F32 ? NULL : scratch(sizeof(float) * K);
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; n++) {
            if (w)
                for (int64_t k = 0; k < K; k++) w[k] = b_at(g, k, n);
            const float *wr = w ? w : (const float *)g->B + n * g->ldb;
            for (int64_t i = 0; i < M; i++) {
                const float *a = A + i * lda;
                float s = 0.0f;
#pragma omp simd reduction(+ : s)
                for (int64_t k = 0; k < K; k++) s += a[k] * wr[k];
                float *c = g->C + i * g->ldc + n;
                *c = g->beta == 0.0f ? g->alpha * s : g->alpha * s + g->beta * *c;
            }
        }
    }
    free(At);
}

/* C[0:M, :] = alpha * A B + beta * C for B stored (K,N), small M: B is read once, four rows at a
 * time, into M accumulator rows of at most STREAM_NC columns that stay in L1. */
static void stream32(const args32 *g) {
    const int64_t M = g->M, N = g->N, K = g->K;
    int nt = threads_for(M * N * K);
    int64_t chunks = (N + STREAM_NC - 1) / STREAM_NC;
    if (chunks < nt) chunks = nt;
    int64_t width = round_up((N + chunks - 1) / chunks, 16);
    chunks = (N + width - 1) / width;
#pragma omp parallel num_threads(nt)
    {
        /* accumulators, four rows of B widened to f32 (f16 / bf16 only), a row of zeros */
        float *acc = scratch(sizeof(float) * (STREAM_MAX_M + 5) * width), *rows = acc + M * width;
        float *zeros = rows + 4 * width;
        for (int64_t j = 0; j < width; j++) zeros[j] = 0.0f;
#pragma omp for schedule(static)
        for (int64_t c = 0; c < chunks; c++) {
            int64_t j0 = c * width, n = min64(width, N - j0);
            for (int64_t i = 0; i < M * width; i++) acc[i] = 0.0f;
            for (int64_t k = 0; k < K; k += 4) {
                int ku = (int)min64(4, K - k);
                const float *b[4];
                for (int u = 0; u < 4; u++) {
                    if (u >= ku) b[u] = zeros; /* past K */
                    else if (g->bt == BT_F32) b[u] = (const float *)g->B + (k + u) * g->ldb + j0;
                    else {
                        for (int64_t j = 0; j < n; j++) rows[u * width + j] = b_at(g, k + u, j0 + j);
                        b[u] = rows + u * width;
                    }
                }
                for (int64_t i = 0; i < M; i++) {
                    float a[4];
                    for (int u = 0; u < 4; u++) {
                        int64_t kk = k + u;
                        a[u] = u < ku ? g->A[g->ta ? kk * g->lda + i : i * g->lda + kk] : 0.0f;
                    }
                    float *x = acc + i * width;
#pragma omp simd
                    for (int64_t j = 0; j < n; j++)
                        x[j] += a[0] * b[0][j] + a[1] * b[1][j] + a[2] * b[2][j] + a[3] * b[3][j];
                }
            }
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < n; j++) {
                    float *cp = g->C + i * g->ldc + j0 + j, v = g->alpha * acc[i * width + j];
                    *cp = g->beta == 0.0f ? v : v + g->beta * *cp;
                }
        }
    }
}

static void gemm32(const char *name, const args32 *g) {
    check_args(name, g->ta, g->tb, g->M, g->N, g->K, g->lda, g->ldb, g->ldc);
    if (g->M == 0 || g->N == 0) return;
    if (g->K == 0 || g->alpha == 0.0f) { /* C = beta * C */
        for (int64_t i = 0; i < g->M; i++)
            for (int64_t j = 0; j < g->N; j++) {
                float *c = g->C + i * g->ldc + j;
                *c = g->beta == 0.0f ? 0.0f : g->beta * *c;
            }
        return;
    }
    if (g->M <= DOT_MAX_M) {
        if (g->tb) dot32(g);
        else stream32(g);
        return;
    }
    int nt = threads_for(g->M * g->N * g->K), tm = 1, tn = 1;
    thread_grid(nt, g->M, g->N, g->K, MR32, NR32, &tm, &tn);
    int64_t mt = round_up((g->M + tm - 1) / tm, MR32), ntc = round_up((g->N + tn - 1) / tn, NR32);
#pragma omp parallel num_threads(tm * tn)
    {
        int t = thread_num();
        int64_t m0 = (t / tn) * mt, m1 = min64(g->M, m0 + mt);
        int64_t n0 = (t % tn) * ntc, n1 = min64(g->N, n0 + ntc);
        if (m0 < m1 && n0 < n1) block32(g, m0, m1, n0, n1);
    }
}

void dv_gemm_f32_portable(DV_GEMM_ARGS(float, float, float)) {
    args32 g = {ta, tb, M, N, K, alpha, beta, A, lda, B, BT_F32, ldb, C, ldc};
    gemm32("dv_gemm_f32_portable", &g);
}

void dv_gemm_f16b_portable(DV_GEMM_ARGS(float, uint16_t, float)) {
    args32 g = {ta, tb, M, N, K, alpha, beta, A, lda, B, BT_F16, ldb, C, ldc};
    gemm32("dv_gemm_f16b_portable", &g);
}

void dv_gemm_bf16b_portable(DV_GEMM_ARGS(float, uint16_t, float)) {
    args32 g = {ta, tb, M, N, K, alpha, beta, A, lda, B, BT_BF16, ldb, C, ldc};
    gemm32("dv_gemm_bf16b_portable", &g);
}

/* The Linear layer's epilogue, here a second pass over C (the AVX-512 kernels fuse it). */
static void add_bias(int64_t M, int64_t N, const float *bias, float *C, int64_t ldc) {
    if (!bias) return;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) C[i * ldc + j] += bias[j];
}

void dv_gemm_f32_bias_portable(DV_GEMM_ARGS(float, float, float), const float *bias) {
    dv_gemm_f32_portable(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    add_bias(M, N, bias, C, ldc);
}

void dv_gemm_f16b_bias_portable(DV_GEMM_ARGS(float, uint16_t, float), const float *bias) {
    dv_gemm_f16b_portable(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    add_bias(M, N, bias, C, ldc);
}

void dv_gemm_bf16b_bias_portable(DV_GEMM_ARGS(float, uint16_t, float), const float *bias) {
    dv_gemm_bf16b_portable(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    add_bias(M, N, bias, C, ldc);
}

/* =============================================================================================
 * f64: the same scheme in double precision (the gradient checks' GEMM).
 */
typedef struct {
    int ta, tb;
    int64_t M, N, K;
    double alpha, beta;
    const double *A;
    int64_t lda;
    const double *B;
    int64_t ldb;
    double *C;
    int64_t ldc;
} args64;

static void pack_a64(const args64 *g, int64_t ic, int64_t mc, int64_t pc, int64_t kc, double *Ap) {
    for (int64_t p = 0; p < mc; p += MR64, Ap += MR64 * kc)
        for (int64_t k = 0; k < kc; k++)
            for (int i = 0; i < MR64; i++) {
                int64_t m = ic + p + i, kk = pc + k;
                Ap[k * MR64 + i] =
                    p + i < mc ? g->A[g->ta ? kk * g->lda + m : m * g->lda + kk] : 0.0;
            }
}

static void pack_b64(const args64 *g, int64_t pc, int64_t kc, int64_t jc, int64_t nc, double *Bp) {
    for (int64_t q = 0; q < nc; q += NR64, Bp += NR64 * kc)
        for (int64_t k = 0; k < kc; k++)
            for (int j = 0; j < NR64; j++) {
                int64_t n = jc + q + j, kk = pc + k;
                Bp[k * NR64 + j] =
                    q + j < nc ? g->B[g->tb ? n * g->ldb + kk : kk * g->ldb + n] : 0.0;
            }
}

static __attribute__((noinline)) void kernel64(int64_t kc, const double *restrict a,
                                               const double *restrict b, double *restrict tile) {
    double acc[MR64][NR64] = {{0}};
    for (int64_t k = 0; k < kc; k++, a += MR64, b += NR64)
#pragma GCC unroll 8
        for (int i = 0; i < MR64; i++)
            for (int j = 0; j < NR64; j++) acc[i][j] += a[i] * b[j];
    for (int i = 0; i < MR64; i++)
        for (int j = 0; j < NR64; j++) tile[i * NR64 + j] = acc[i][j];
}

static void store64(const double *tile, int mr, int nr, double alpha, double beta, double *C,
                    int64_t ldc) {
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            double *c = C + i * ldc + j;
            *c = beta == 0.0 ? alpha * tile[i * NR64 + j] : alpha * tile[i * NR64 + j] + beta * *c;
        }
}

static void block64(const args64 *g, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    int64_t ncmax = min64(NC, round_up(n1 - n0, NR64));
    double *Ap = scratch(sizeof(double) * (MC * KC + KC * ncmax)), *Bp = Ap + MC * KC;
    for (int64_t jc = n0; jc < n1; jc += NC) {
        int64_t nc = min64(NC, n1 - jc);
        for (int64_t pc = 0; pc < g->K; pc += KC) {
            int64_t kc = min64(KC, g->K - pc);
            double beta = pc == 0 ? g->beta : 1.0;
            pack_b64(g, pc, kc, jc, nc, Bp);
            for (int64_t ic = m0; ic < m1; ic += MC) {
                int64_t mc = min64(MC, m1 - ic);
                pack_a64(g, ic, mc, pc, kc, Ap);
                for (int64_t jr = 0; jr < nc; jr += NR64)
                    for (int64_t ir = 0; ir < mc; ir += MR64) {
                        double tile[MR64 * NR64];
                        kernel64(kc, Ap + ir * kc, Bp + jr * kc, tile);
                        store64(tile, (int)min64(MR64, mc - ir), (int)min64(NR64, nc - jr),
                                g->alpha, beta, g->C + (ic + ir) * g->ldc + jc + jr, g->ldc);
                    }
            }
        }
    }
}

void dv_gemm_f64_portable(DV_GEMM_ARGS(double, double, double)) {
    check_args("dv_gemm_f64_portable", ta, tb, M, N, K, lda, ldb, ldc);
    if (M == 0 || N == 0) return;
    if (K == 0 || alpha == 0.0) {
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++)
                C[i * ldc + j] = beta == 0.0 ? 0.0 : beta * C[i * ldc + j];
        return;
    }
    args64 g = {ta, tb, M, N, K, alpha, beta, A, lda, B, ldb, C, ldc};
    int nt = threads_for(M * N * K), tm = 1, tn = 1;
    thread_grid(nt, M, N, K, MR64, NR64, &tm, &tn);
    int64_t mt = round_up((M + tm - 1) / tm, MR64), ntc = round_up((N + tn - 1) / tn, NR64);
#pragma omp parallel num_threads(tm * tn)
    {
        int t = thread_num();
        int64_t m0 = (t / tn) * mt, m1 = min64(M, m0 + mt);
        int64_t n0 = (t % tn) * ntc, n1 = min64(N, n0 + ntc);
        if (m0 < m1 && n0 < n1) block64(&g, m0, m1, n0, n1);
    }
}
