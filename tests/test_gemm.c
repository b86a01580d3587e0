/* tests/test_gemm.c — every GEMM kernel against a naive triple loop in double.
 *
 * Variants: f32 / f64 / f16-weight / bf16-weight, portable and (when the CPU has it) AVX-512.
 * Each case draws logical operands op(A) (M,K) and op(B) (K,N), computes the reference
 *   ref = alpha * op(A) op(B) + beta * C0          in double,
 * then stores the operands in every transpose layout with leading dimensions wider than the
 * rows, runs the kernel and compares. B's values are bf16 numbers that f16 also represents
 * exactly, so one reference serves f32, f16 and bf16 weights.
 * Tolerance: |C - ref| <= 4 (K + 2) eps * (|alpha| sum_k |a_ik b_kj| + |beta c0_ij|), the classic
 * bound for a length-K dot product in any summation order.
 * Also checked: beta == 0 ignores NaNs in C, padding beyond N in C is untouched, zero-size M/N/K,
 * alpha == 0, an odd thread count, and that bad arguments abort naming the kernel.
 * Not here: speed (bench/bench_gemm.c).
 */
#include "tests/test.h"

#include "kernels/cpu.h"
#include "kernels/bias_act.h"
#include "kernels/gemm.h"
#include "kernels/half.h"

#include <float.h>
#include <omp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef void (*gemm_f32_fn)(DV_GEMM_ARGS(float, float, float));
typedef void (*gemm_half_fn)(DV_GEMM_ARGS(float, uint16_t, float));

typedef void (*gemm_f32_bias_fn)(DV_GEMM_ARGS(float, float, float), const float *bias);
typedef void (*gemm_half_bias_fn)(DV_GEMM_ARGS(float, uint16_t, float), const float *bias);

typedef struct {
    const char *name;
    gemm_f32_fn f32;   /* B as f32 */
    gemm_half_fn half; /* or B as f16 / bf16 bits */
    int bf16;
    int avx512;
    gemm_f32_bias_fn f32_bias; /* the same kernel with the Linear bias epilogue */
    gemm_half_bias_fn half_bias;
} variant;

static const variant variants[] = {
    {"f32_portable", dv_gemm_f32_portable, NULL, 0, 0, dv_gemm_f32_bias_portable, NULL},
    {"f16b_portable", NULL, dv_gemm_f16b_portable, 0, 0, NULL, dv_gemm_f16b_bias_portable},
    {"bf16b_portable", NULL, dv_gemm_bf16b_portable, 1, 0, NULL, dv_gemm_bf16b_bias_portable},
#ifndef DV_NO_AVX512 /* builds without AVX-512 code have only the portable kernels */
    {"f32_avx512", dv_gemm_f32_avx512, NULL, 0, 1, dv_gemm_f32_bias_avx512, NULL},
    {"f16b_avx512", NULL, dv_gemm_f16b_avx512, 0, 1, NULL, dv_gemm_f16b_bias_avx512},
    {"bf16b_avx512", NULL, dv_gemm_bf16b_avx512, 1, 1, NULL, dv_gemm_bf16b_bias_avx512},
#endif
};
enum { NVARIANTS = sizeof variants / sizeof variants[0] };

static const float SENTINEL = 12345.0f; /* fills C's padding, which must stay untouched */

static uint64_t g_rng = 0x243f6a8885a308d3ull;
static double uniform(void) { /* [-1, 1) */
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

/* a bf16 value in [-2, 2] that f16 also holds exactly (zero or |x| >= 2^-10) */
static float weight_value(void) {
    float x = dv_bf16_to_f32(dv_f32_to_bf16((float)(2 * uniform())));
    return fabsf(x) < 1.0f / 1024 ? 0.0f : x;
}

/* The logical problem and its double-precision answer. */
typedef struct {
    int64_t M, N, K;
    double alpha, beta;
    double *a, *b, *c0; /* op(A) (M,K), op(B) (K,N), C0 (M,N), row-major, dense */
    double *ref, *mag;  /* alpha op(A) op(B) + beta C0, and the error scale of each entry */
    float *bias;        /* NULL, or N values added to each row (the *_bias kernels) */
} problem;

static problem make_problem(int64_t M, int64_t N, int64_t K, double alpha, double beta) {
    problem p = {.M = M, .N = N, .K = K, .alpha = alpha, .beta = beta};
    p.a = malloc(sizeof(double) * (M * K + 1));
    p.b = malloc(sizeof(double) * (K * N + 1));
    p.c0 = malloc(sizeof(double) * (M * N + 1));
    p.ref = malloc(sizeof(double) * (M * N + 1));
    p.mag = malloc(sizeof(double) * (M * N + 1));
    for (int64_t i = 0; i < M * K; i++) p.a[i] = (float)uniform();
    for (int64_t i = 0; i < K * N; i++) p.b[i] = weight_value();
    for (int64_t i = 0; i < M * N; i++) p.c0[i] = (float)uniform();
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0, m = 0;
            for (int64_t k = 0; k < K; k++) {
                s += p.a[i * K + k] * p.b[k * N + j];
                m += fabs(p.a[i * K + k] * p.b[k * N + j]);
            }
            double c = beta == 0 ? 0 : beta * p.c0[i * N + j];
            p.ref[i * N + j] = alpha * s + c;
            p.mag[i * N + j] = fabs(alpha) * m + fabs(c);
        }
    return p;
}

/* give the problem a bias row: ref and its error scale gain bias[j] */
static void add_problem_bias(problem *p) {
    p->bias = malloc(sizeof(float) * (size_t)(p->N + 1));
    for (int64_t j = 0; j < p->N; j++) p->bias[j] = (float)(4 * uniform());
    for (int64_t i = 0; i < p->M; i++)
        for (int64_t j = 0; j < p->N; j++) {
            p->ref[i * p->N + j] += p->bias[j];
            p->mag[i * p->N + j] += fabs(p->bias[j]);
        }
}

static void free_problem(problem *p) {
    free(p->a), free(p->b), free(p->c0), free(p->ref), free(p->mag), free(p->bias);
}

/* Physical layouts: A stored (M,K) or (K,M) with 3 spare columns, B (K,N) or (N,K) with 5,
 * C (M,N) with 2 (filled with SENTINEL). */
typedef struct {
    int64_t lda, ldb, ldc;
    double *A, *B, *C; /* as double; converted per variant */
} layout;

static layout make_layout(const problem *p, int ta, int tb) {
    layout l;
    int64_t M = p->M, N = p->N, K = p->K;
    l.lda = (ta ? M : K) + 3, l.ldb = (tb ? K : N) + 5, l.ldc = N + 2;
    int64_t arows = ta ? K : M, brows = tb ? N : K;
    l.A = calloc((size_t)(arows * l.lda + 1), sizeof(double));
    l.B = calloc((size_t)(brows * l.ldb + 1), sizeof(double));
    l.C = malloc(sizeof(double) * (size_t)(M * l.ldc + 1));
    for (int64_t i = 0; i < arows * l.lda; i++) l.A[i] = 7.0; /* padding: must not be read */
    for (int64_t i = 0; i < brows * l.ldb; i++) l.B[i] = 7.0;
    for (int64_t i = 0; i < M; i++)
        for (int64_t k = 0; k < K; k++) l.A[ta ? k * l.lda + i : i * l.lda + k] = p->a[i * K + k];
    for (int64_t k = 0; k < K; k++)
        for (int64_t j = 0; j < N; j++) l.B[tb ? j * l.ldb + k : k * l.ldb + j] = p->b[k * N + j];
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < l.ldc; j++)
            l.C[i * l.ldc + j] = j >= N ? SENTINEL : p->beta == 0 ? NAN : p->c0[i * N + j];
    return l;
}

static void free_layout(layout *l) { free(l->A), free(l->B), free(l->C); }

/* Compare C (M, ldc) against the reference; one failure line per call with the worst entry. */
static void compare(const char *what, int ta, int tb, const problem *p, int64_t ldc,
                    const double *C, double eps) {
    int64_t bad = 0, wi = 0, wj = 0;
    double worst = -1;
    double tol = 4.0 * (double)(p->K + 2) * eps;
    for (int64_t i = 0; i < p->M; i++)
        for (int64_t j = 0; j < ldc; j++) {
            double got = C[i * ldc + j];
            double err, lim;
            if (j >= p->N) err = got == SENTINEL ? 0 : INFINITY, lim = 0;
            else {
                err = fabs(got - p->ref[i * p->N + j]);
                lim = tol * p->mag[i * p->N + j] + 1e-30;
                if (isnan(got)) err = INFINITY;
            }
            if (err > lim) {
                bad++;
                if (err - lim > worst) worst = err - lim, wi = i, wj = j;
            }
        }
    CHECK_MSG(bad == 0,
              "%s ta=%d tb=%d M=%lld N=%lld K=%lld alpha=%g beta=%g: %lld bad, worst C[%lld,%lld] "
              "= %.9g, want %.9g",
              what, ta, tb, (long long)p->M, (long long)p->N, (long long)p->K, p->alpha, p->beta,
              (long long)bad, (long long)wi, (long long)wj, bad ? C[wi * ldc + wj] : 0.0,
              bad && wj < p->N ? p->ref[wi * p->N + wj] : (double)SENTINEL);
}

static void run_variant(const variant *v, int ta, int tb, const problem *p, const layout *l) {
    int64_t M = p->M, N = p->N, K = p->K;
    int64_t na = (ta ? K : M) * l->lda, nb = (tb ? N : K) * l->ldb, nc = M * l->ldc;
    /* C gets one more row of sentinels: a kernel that stores past row M fails the check */
    float *A = malloc(sizeof(float) * (size_t)(na + 1)), *C = malloc(sizeof(float) * (size_t)(nc + l->ldc));
    for (int64_t i = 0; i < na; i++) A[i] = (float)l->A[i];
    for (int64_t i = 0; i < nc; i++) C[i] = (float)l->C[i];
    for (int64_t i = nc; i < nc + l->ldc; i++) C[i] = SENTINEL;
    if (v->f32) {
        float *B = malloc(sizeof(float) * (size_t)(nb + 1));
        for (int64_t i = 0; i < nb; i++) B[i] = (float)l->B[i];
        if (p->bias)
            v->f32_bias(ta, tb, M, N, K, (float)p->alpha, A, l->lda, B, l->ldb, (float)p->beta, C,
                        l->ldc, p->bias);
        else
            v->f32(ta, tb, M, N, K, (float)p->alpha, A, l->lda, B, l->ldb, (float)p->beta, C,
                   l->ldc);
        free(B);
    } else {
        uint16_t *B = malloc(sizeof(uint16_t) * (size_t)(nb + 1));
        for (int64_t i = 0; i < nb; i++)
            B[i] = v->bf16 ? dv_f32_to_bf16((float)l->B[i]) : dv_f32_to_f16((float)l->B[i]);
        if (p->bias)
            v->half_bias(ta, tb, M, N, K, (float)p->alpha, A, l->lda, B, l->ldb, (float)p->beta,
                         C, l->ldc, p->bias);
        else
            v->half(ta, tb, M, N, K, (float)p->alpha, A, l->lda, B, l->ldb, (float)p->beta, C,
                    l->ldc);
        free(B);
    }
    double *Cd = malloc(sizeof(double) * (size_t)(nc + 1));
    for (int64_t i = 0; i < nc; i++) Cd[i] = C[i];
    compare(v->name, ta, tb, p, l->ldc, Cd, FLT_EPSILON);
    int64_t past = 0;
    for (int64_t i = nc; i < nc + l->ldc; i++) past += C[i] != SENTINEL;
    CHECK_MSG(past == 0, "%s ta=%d tb=%d M=%lld N=%lld K=%lld: %lld stores past row M", v->name, ta,
              tb, (long long)M, (long long)N, (long long)K, (long long)past);
    free(A), free(C), free(Cd);
}

static void run_f64(int ta, int tb, const problem *p, const layout *l) {
    int64_t nc = p->M * l->ldc;
    double *C = malloc(sizeof(double) * (size_t)(nc + 1));
    memcpy(C, l->C, sizeof(double) * (size_t)nc);
    dv_gemm_f64_portable(ta, tb, p->M, p->N, p->K, p->alpha, l->A, l->lda, l->B, l->ldb, p->beta,
                         C, l->ldc);
    compare("f64_portable", ta, tb, p, l->ldc, C, DBL_EPSILON);
    free(C);
}

/* every variant, every transpose combination, one shape */
static void check_shape(int64_t M, int64_t N, int64_t K, double alpha, double beta) {
    problem p = make_problem(M, N, K, alpha, beta);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            layout l = make_layout(&p, ta, tb);
            run_f64(ta, tb, &p, &l);
            for (int v = 0; v < NVARIANTS; v++)
                if (!variants[v].avx512 || dv_cpu_has_avx512())
                    run_variant(&variants[v], ta, tb, &p, &l);
            free_layout(&l);
        }
    free_problem(&p);
}

/* every variant's *_bias kernel (C += bias[n] after the product), every transpose combination */
static void check_shape_bias(int64_t M, int64_t N, int64_t K, double alpha, double beta) {
    problem p = make_problem(M, N, K, alpha, beta);
    add_problem_bias(&p);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            layout l = make_layout(&p, ta, tb);
            for (int v = 0; v < NVARIANTS; v++)
                if (!variants[v].avx512 || dv_cpu_has_avx512())
                    run_variant(&variants[v], ta, tb, &p, &l);
            free_layout(&l);
        }
    free_problem(&p);
}

/* Odd sizes around every tile and block edge: MR 6/14, NR 8/32, the small-M paths and their
 * thresholds (stream: tb = 0, M <= 16, K blocks of 256; dot: tb = 1, M <= 12 or M <= 32 by K;
 * broadcast: tb = 1, f32, 12 < M <= 32, one or two vectors of rows, tiles of 8 rows of W),
 * K around 16-wide strips. */
TEST(gemm_small_shapes) {
    static const int64_t shapes[][3] = {
        {1, 1, 1},    {1, 3, 17},   {3, 17, 1},    {1, 33, 65},   {2, 65, 33},   {3, 31, 16},
        {4, 17, 130}, {5, 16, 15},  {7, 48, 47},   {8, 33, 65},   {9, 130, 17},  {14, 32, 64},
        {15, 47, 33}, {16, 1, 130}, {17, 33, 65},  {33, 65, 17},  {65, 130, 33}, {130, 17, 65},
        {29, 7, 3},   {1, 130, 300}, {13, 300, 1},  {13, 40, 130}, {12, 70, 601}, {24, 20, 1030},
        {32, 70, 40}, {31, 9, 257},  {16, 8, 16},   {33, 17, 31},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        double alpha = s % 3 == 0 ? 1.0 : s % 3 == 1 ? -0.75 : 2.5;
        double beta = s % 2 ? 0.0 : s % 4 == 0 ? 1.0 : -1.25;
        check_shape(shapes[s][0], shapes[s][1], shapes[s][2], alpha, beta);
    }
}

/* larger than every block: M > MC, K > KC (two K blocks), many N panels; beta = 0 over NaNs */
TEST(gemm_blocked_shape) {
    check_shape(300, 257, 520, 0.5, 0.0);
    check_shape(97, 70, 1100, 1.0, -0.5);
}

/* N > NC of both kernels (2048): more than one B block per thread */
TEST(gemm_wide_shape) {
    problem p = make_problem(20, 4200, 24, 1.0, 1.0);
    for (int tb = 0; tb < 2; tb++) {
        layout l = make_layout(&p, 0, tb);
        for (int v = 0; v < NVARIANTS; v++)
            if (!variants[v].avx512 || dv_cpu_has_avx512()) run_variant(&variants[v], 0, tb, &p, &l);
        free_layout(&l);
    }
    free_problem(&p);
}

/* three threads: the thread grid and per-thread buffers with an odd count */
TEST(gemm_three_threads) {
    int saved = omp_get_max_threads();
    omp_set_num_threads(3);
    check_shape(100, 90, 200, 1.0, 0.5);
    check_shape(5, 600, 200, 1.0, 0.0);
    check_shape(20, 600, 200, -1.0, 0.5);
    omp_set_num_threads(saved);
}

/* The Linear bias epilogue on every path: dot (tb = 1, small M) and stream (tb = 0, M <= 16),
 * packed with two K blocks (bias added once, with the first), two threads splitting N with the
 * last panel partial, and K == 0 / alpha == 0. */
TEST(gemm_bias_epilogue) {
    static const int64_t shapes[][3] = {
        {1, 33, 65}, {3, 40, 130}, {13, 40, 130}, {12, 70, 601}, {65, 130, 33}, {30, 100, 600},
        {100, 97, 64}, {145, 600, 530}, {5, 7, 0},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        check_shape_bias(shapes[s][0], shapes[s][1], shapes[s][2], s % 2 ? -0.75 : 1.0,
                         s % 3 == 0 ? 0.0 : 0.5);
    check_shape_bias(6, 40, 9, 0.0, 3.0); /* alpha == 0: C = beta C + bias */
}

TEST(gemm_alpha_zero_and_k_zero) {
    check_shape(5, 7, 0, 1.0, 0.0);   /* K == 0, beta == 0: C = 0 even over NaNs */
    check_shape(5, 7, 0, 1.0, -2.0);  /* K == 0: C = beta C */
    check_shape(6, 40, 9, 0.0, 3.0);  /* alpha == 0: C = beta C */
}

TEST(gemm_empty_m_n) {
    for (int v = 0; v < NVARIANTS; v++) {
        if (variants[v].avx512 && !dv_cpu_has_avx512()) continue;
        float A[4] = {1, 2, 3, 4}, C[4] = {SENTINEL, SENTINEL, SENTINEL, SENTINEL};
        float Bf[4] = {1, 1, 1, 1};
        uint16_t Bh[4] = {0x3c00, 0x3c00, 0x3c00, 0x3c00};
        for (int mn = 0; mn < 2; mn++) { /* M == 0, then N == 0 */
            int64_t M = mn ? 2 : 0, N = mn ? 0 : 2;
            if (variants[v].f32) variants[v].f32(0, 0, M, N, 2, 1, A, 2, Bf, 2, 0, C, 2);
            else variants[v].half(0, 0, M, N, 2, 1, A, 2, Bh, 2, 0, C, 2);
        }
        CHECK_MSG(C[0] == SENTINEL && C[3] == SENTINEL, "%s wrote C for an empty product",
                  variants[v].name);
    }
    double Ad[1] = {1}, Cd[1] = {SENTINEL};
    dv_gemm_f64_portable(1, 1, 0, 1, 1, 1, Ad, 1, Ad, 1, 0, Cd, 1);
    CHECK(Cd[0] == SENTINEL);
}

/* Bad arguments are a broken invariant: the kernel aborts, naming itself and the values. */
static int aborts(void (*call)(void)) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr)) _exit(3);
        call();
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static float g_buf[64];
static void call_neg_m_portable(void) {
    dv_gemm_f32_portable(0, 0, -1, 2, 2, 1, g_buf, 2, g_buf, 2, 0, g_buf, 2);
}
static void call_short_lda_portable(void) {
    dv_gemm_f32_portable(0, 0, 2, 2, 4, 1, g_buf, 3, g_buf, 2, 0, g_buf, 2);
}
static void call_short_ldc_f64(void) {
    static double d[64];
    dv_gemm_f64_portable(0, 1, 2, 4, 2, 1, d, 2, d, 2, 0, d, 3);
}
#ifndef DV_NO_AVX512
static void call_bad_trans_avx512(void) {
    dv_gemm_f32_avx512(2, 0, 2, 2, 2, 1, g_buf, 2, g_buf, 2, 0, g_buf, 2);
}
static void call_short_ldb_avx512(void) {
    static uint16_t h[64];
    dv_gemm_f16b_avx512(0, 1, 2, 2, 8, 1, g_buf, 8, h, 7, 0, g_buf, 2);
}
#endif

TEST(gemm_bad_arguments_abort) {
    CHECK(aborts(call_neg_m_portable));
    CHECK(aborts(call_short_lda_portable));
    CHECK(aborts(call_short_ldc_f64));
#ifndef DV_NO_AVX512
    if (dv_cpu_has_avx512()) {
        CHECK(aborts(call_bad_trans_avx512));
        CHECK(aborts(call_short_ldb_avx512));
    }
#endif
}

/* ---- the activation epilogue (dv_gemm_f32_bias_act_avx512) -------------------------------- */
#ifndef DV_NO_AVX512
/* act(alpha A B + beta C + bias) against the portable GEMM + bias, then the portable activation,
 * on every path: packed (two K blocks, partial tiles), broadcast, dot, stream, K == 0 */
TEST(gemm_bias_act_epilogue) {
    if (!dv_cpu_has_avx512()) return;
    static const struct { int64_t M, N, K; int tb; } k_shapes[] = {
        {100, 97, 600, 1}, {31, 70, 64, 1}, {16, 40, 130, 1}, {20, 24, 33, 1},
        {3, 40, 130, 1},   {9, 33, 300, 1}, {5, 50, 70, 0},   {60, 45, 20, 0}, {7, 9, 0, 1},
    };
    for (int act = 1; act < DV_BIAS_ACT_COUNT; act++)
        for (size_t s = 0; s < sizeof k_shapes / sizeof k_shapes[0]; s++) {
            const int64_t M = k_shapes[s].M, N = k_shapes[s].N, K = k_shapes[s].K, ldc = N + 3;
            const int tb = k_shapes[s].tb;
            const float alpha = s % 2 ? 1.0f : -0.5f, beta = s % 3 == 1 ? 0.75f : 0.0f;
            float *A = malloc(sizeof(float) * (size_t)(M * K + 1)), *B = malloc(sizeof(float) * (size_t)(N * K + 1));
            float *bias = malloc(sizeof(float) * (size_t)N), *C = malloc(sizeof(float) * (size_t)(M * ldc));
            float *R = malloc(sizeof(float) * (size_t)(M * N)), *Rz = malloc(sizeof(float) * (size_t)(M * N));
            for (int64_t i = 0; i < M * K; i++) A[i] = (float)uniform();
            for (int64_t i = 0; i < N * K; i++) B[i] = (float)uniform();
            for (int64_t i = 0; i < N; i++) bias[i] = (float)uniform();
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < ldc; j++) {
                    float c0 = (float)uniform();
                    C[i * ldc + j] = j < N ? c0 : SENTINEL;
                    if (j < N) Rz[i * N + j] = c0;
                }
            /* reference: portable GEMM with the bias, then the portable activation */
            dv_gemm_f32_bias_portable(0, tb, M, N, K, alpha, A, K, B, tb ? K : N, beta, Rz, N, bias);
            dv_bias_act_fwd_f32_portable((dv_bias_act_kind)act, M, N, Rz, NULL, R);
            dv_gemm_f32_bias_act_avx512(0, tb, M, N, K, alpha, A, K, B, tb ? K : N, beta, C, ldc, bias, act);
            int64_t bad = 0;
            double worst = 0;
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < ldc; j++) {
                    float got = C[i * ldc + j];
                    if (j >= N) { bad += got != SENTINEL; continue; }
                    double err = fabs((double)got - R[i * N + j]) / (1.0 + fabs(R[i * N + j]));
                    if (!(err <= 1e-5 * (1 + K / 64.0))) bad++;
                    if (err > worst) worst = err;
                }
            CHECK_MSG(bad == 0, "bias_act epilogue %s M=%lld N=%lld K=%lld tb=%d: %lld bad, worst %.3g",
                      dv_bias_act_name((dv_bias_act_kind)act), (long long)M, (long long)N, (long long)K, tb,
                      (long long)bad, worst);
            free(A), free(B), free(bias), free(C), free(R), free(Rz);
        }
}
#endif
