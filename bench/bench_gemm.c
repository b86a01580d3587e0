/* bench/bench_gemm.c — `bench gemm [--threads N]`: our GEMM against the system BLAS.
 *
 * Prints, for 1 and the default number of OpenMP threads (or only N with --threads N):
 *   1. SGEMM GFLOP/s at the reference shapes, ours next to cblas_sgemm of the system BLAS, the
 *      ratio, and both as % of the FMA peak measured on this machine;
 *   2. the same for the Linear-layer layout (tb = 1, W stored (N,K)) at a few shapes;
 *   3. f16- and bf16-weight GEMM: GB/s of weight traffic at M = 1 against memcpy bandwidth
 *      measured in the same run, and GFLOP/s at M = 600.
 * The system BLAS is loaded with dlopen at run time (it is not a build dependency); without one
 * the peer columns read "-". "Ours" is the kernel set chosen by kernels/cpu.c, so
 * DV_FORCE_PORTABLE=1 benchmarks the portable C kernels.
 * Not here: correctness (tests/test_gemm.c), f64.
 */
#define _GNU_SOURCE /* dladdr */
#include "bench/bench.h"
#include "kernels/cpu.h"
#include "kernels/gemm.h"
#include "kernels/half.h"

#include <dlfcn.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <limits.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------------
 * The system BLAS, through dlopen.
 */
enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };
typedef void (*cblas_sgemm_fn)(int order, int ta, int tb, int M, int N, int K, float alpha,
                               const float *A, int lda, const float *B, int ldb, float beta,
                               float *C, int ldc);

static struct {
    cblas_sgemm_fn sgemm;
    void (*set_threads)(int);
    char name[512];
} blas;

static void load_blas(void) {
    static const char *candidates[] = {
        "libopenblas.so.0",
        "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
        "libblas.so.3",
        "libcblas.so.3",
        "libcblas.so",
    };
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        void *lib = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
        if (!lib) continue;
        blas.sgemm = (cblas_sgemm_fn)dlsym(lib, "cblas_sgemm");
        if (!blas.sgemm) {
            dlclose(lib);
            continue;
        }
        blas.set_threads = (void (*)(int))dlsym(lib, "openblas_set_num_threads");
        char *(*config)(void) = (char *(*)(void))dlsym(lib, "openblas_get_config");
        char *(*core)(void) = (char *(*)(void))dlsym(lib, "openblas_get_corename");
        Dl_info info;
        char real[PATH_MAX] = "?";
        if (dladdr((void *)blas.sgemm, &info) && info.dli_fname) {
            if (!realpath(info.dli_fname, real)) snprintf(real, sizeof real, "%s", info.dli_fname);
        }
        snprintf(blas.name, sizeof blas.name, "%s -> %s%s%s%s%s", candidates[i], real,
                 config ? " (" : "", config ? config() : "", core ? ", kernel " : "",
                 core ? core() : "");
        if (config) strncat(blas.name, ")", sizeof blas.name - strlen(blas.name) - 1);
        return;
    }
}

static void set_threads(int nt) {
    omp_set_num_threads(nt);
    if (blas.set_threads) blas.set_threads(nt);
}

/* ---------------------------------------------------------------------------------------------
 * FMA peak of this machine, measured: per thread, 12 independent chains of vector FMAs (enough
 * to cover latency x pipes on current x86 cores), all threads at once. The clock is estimated
 * from one dependent chain, assuming the 4-cycle FMA latency of Zen 4/5 and Skylake-X.
 */
enum { PEAK_CHAINS = 12 };
static volatile float g_sink;

#if defined(__x86_64__)
__attribute__((target("avx512f,fma"))) static double fma_loop_avx512(long iters, int dependent) {
    __m512 acc[PEAK_CHAINS], b = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(1e-4f);
    for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm512_set1_ps(0.001f * i);
    double t = dv_bench_now();
    if (dependent)
        for (long it = 0; it < iters * PEAK_CHAINS; it++) acc[0] = _mm512_fmadd_ps(acc[0], b, c);
    else
        for (long it = 0; it < iters; it++)
#pragma GCC unroll 12
            for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], b, c);
    t = dv_bench_now() - t;
    __m512 s = acc[0];
    for (int i = 1; i < PEAK_CHAINS; i++) s = _mm512_add_ps(s, acc[i]);
    g_sink = _mm512_reduce_add_ps(s);
    return t;
}

__attribute__((target("avx2,fma"))) static double fma_loop_avx2(long iters, int dependent) {
    __m256 acc[PEAK_CHAINS], b = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1e-4f);
    for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm256_set1_ps(0.001f * i);
    double t = dv_bench_now();
    if (dependent)
        for (long it = 0; it < iters * PEAK_CHAINS; it++) acc[0] = _mm256_fmadd_ps(acc[0], b, c);
    else
        for (long it = 0; it < iters; it++)
#pragma GCC unroll 12
            for (int i = 0; i < PEAK_CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], b, c);
    t = dv_bench_now() - t;
    __m256 s = acc[0];
    for (int i = 1; i < PEAK_CHAINS; i++) s = _mm256_add_ps(s, acc[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    g_sink = out[0];
    return t;
}

#endif

static int g_peak_lanes; /* 16 (AVX-512), 8 (AVX2), 0 (not measured: no x86 FMA) */

static double fma_loop(long iters, int dependent) {
#if defined(__x86_64__)
    return g_peak_lanes == 16 ? fma_loop_avx512(iters, dependent) : fma_loop_avx2(iters, dependent);
#else
    return 0;
#endif
}

/* GFLOP/s with nt threads all running the independent-chain loop; best of 3 */
static double measure_peak(int nt) {
    const long iters = 20 * 1000 * 1000 / PEAK_CHAINS;
    double best = 0;
    for (int trial = 0; trial < 3; trial++) {
        double slowest = 0;
#pragma omp parallel num_threads(nt) reduction(max : slowest)
        slowest = fma_loop(iters, 0);
        double gflops = nt * (double)iters * PEAK_CHAINS * g_peak_lanes * 2 / slowest / 1e9;
        if (gflops > best) best = gflops;
    }
    return best;
}

static double cpuinfo_mhz(char *model, size_t model_len) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    double mhz = 0;
    snprintf(model, model_len, "unknown CPU");
    if (!f) return 0;
    char line[512];
    int have_model = 0;
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        if (!have_model && !strncmp(line, "model name", 10)) {
            snprintf(model, model_len, "%s", colon + 2);
            model[strcspn(model, "\n")] = 0;
            have_model = 1;
        }
        if (mhz == 0 && !strncmp(line, "cpu MHz", 7)) mhz = atof(colon + 1);
    }
    fclose(f);
    return mhz;
}

/* ---------------------------------------------------------------------------------------------
 * One timed GEMM call. B may come in several identical copies used in turn, so that a product
 * whose weights would fit in L3 still reads them from memory, as decode does layer after layer.
 */
typedef enum { OURS_F32, BLAS_F32, OURS_F16, OURS_BF16 } impl;

enum { MAX_COPIES = 4 };

typedef struct {
    impl which;
    int tb;
    int64_t M, N, K;
    const float *A;
    const void *B[MAX_COPIES]; /* float or uint16_t */
    int ncopies, next;
    float *C;
} gemm_case;

/* our kernels as kernels/cpu.c picks them */
typedef void (*gemm_f32_fn)(DV_GEMM_ARGS(float, float, float));
typedef void (*gemm_half_fn)(DV_GEMM_ARGS(float, uint16_t, float));

static gemm_f32_fn ours_f32(void) {
#ifndef DV_NO_AVX512
    if (dv_cpu_isa() == DV_ISA_AVX512) return dv_gemm_f32_avx512;
#endif
    return dv_gemm_f32_portable;
}

static gemm_half_fn ours_half(int bf16) {
#ifndef DV_NO_AVX512
    if (dv_cpu_isa() == DV_ISA_AVX512) return bf16 ? dv_gemm_bf16b_avx512 : dv_gemm_f16b_avx512;
#endif
    return bf16 ? dv_gemm_bf16b_portable : dv_gemm_f16b_portable;
}

static void run_case(void *ctx) {
    gemm_case *c = ctx;
    const void *B = c->B[c->next];
    c->next = (c->next + 1) % c->ncopies;
    int64_t ldb = c->tb ? c->K : c->N;
    switch (c->which) {
    case OURS_F32:
        ours_f32()(0, c->tb, c->M, c->N, c->K, 1.0f, c->A, c->K, B, ldb, 0.0f, c->C, c->N);
        break;
    case BLAS_F32:
        blas.sgemm(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, c->tb ? CBLAS_TRANS : CBLAS_NO_TRANS,
                   (int)c->M, (int)c->N, (int)c->K, 1.0f, c->A, (int)c->K, B, (int)ldb, 0.0f,
                   c->C, (int)c->N);
        break;
    case OURS_F16:
        ours_half(0)(0, c->tb, c->M, c->N, c->K, 1.0f, c->A, c->K, B, ldb, 0.0f, c->C, c->N);
        break;
    case OURS_BF16:
        ours_half(1)(0, c->tb, c->M, c->N, c->K, 1.0f, c->A, c->K, B, ldb, 0.0f, c->C, c->N);
        break;
    }
}

static const double MIN_SECONDS = 0.3;

/* Both thread pools spin for a while after a call (OpenBLAS's for up to ~0.1 s), which would
 * steal cores from the other library's next call: let them go idle before switching. */
static void settle(impl which) {
    static int last_blas = -1;
    int is_blas = which == BLAS_F32;
    if (last_blas >= 0 && is_blas != last_blas) usleep(200 * 1000);
    last_blas = is_blas;
}

/* best seconds per call over `ncopies` copies of B */
static double seconds(impl which, int tb, int64_t M, int64_t N, int64_t K, const float *A,
                      const void *const *B, int ncopies, float *C) {
    gemm_case c = {.which = which, .tb = tb, .M = M, .N = N, .K = K, .A = A,
                   .ncopies = ncopies, .C = C};
    for (int i = 0; i < ncopies; i++) c.B[i] = B[i];
    settle(which);
    return dv_bench_time(run_case, &c, MIN_SECONDS);
}

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static float uniform(void) { /* [-1, 1) */
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) * (2.0 / 16777216.0) - 1.0);
}

static float *random_f32(int64_t n) {
    float *p = malloc(sizeof(float) * (size_t)n);
    if (!p) {
        fprintf(stderr, "bench gemm: out of memory (%lld floats)\n", (long long)n);
        exit(1);
    }
    for (int64_t i = 0; i < n; i++) p[i] = uniform();
    return p;
}

static uint16_t *to_half(const float *x, int64_t n, int bf16) {
    uint16_t *p = malloc(sizeof(uint16_t) * (size_t)n);
    if (!p) {
        fprintf(stderr, "bench gemm: out of memory (%lld halves)\n", (long long)n);
        exit(1);
    }
    for (int64_t i = 0; i < n; i++) p[i] = bf16 ? dv_f32_to_bf16(x[i]) : dv_f32_to_f16(x[i]);
    return p;
}

/* ---------------------------------------------------------------------------------------------
 * The tables.
 */
typedef struct { int64_t M, N, K; } shape;

static double g_peak[65]; /* measured GFLOP/s by thread count */

static void pct(char *buf, size_t n, double gflops, int nt) {
    if (g_peak[nt] > 0 && gflops > 0) snprintf(buf, n, "%5.0f%%", 100 * gflops / g_peak[nt]);
    else snprintf(buf, n, "%6s", "-");
}

static void sgemm_table(const char *title, int tb, const shape *shapes, int nshapes,
                        const int *threads, int nthreads) {
    printf("\n%s\n", title);
    printf("%6s %6s %6s %4s | %9s %9s %9s | %10s %10s\n", "M", "N", "K", "thr", "ours",
           "BLAS", "ours/BLAS", "ours %peak", "BLAS %peak");
    for (int s = 0; s < nshapes; s++) {
        int64_t M = shapes[s].M, N = shapes[s].N, K = shapes[s].K;
        float *A = random_f32(M * K), *B = random_f32(K * N), *C = random_f32(M * N);
        double flop = 2.0 * M * N * K;
        for (int t = 0; t < nthreads; t++) {
            set_threads(threads[t]);
            const void *Bs[1] = {B};
            double ours = flop / seconds(OURS_F32, tb, M, N, K, A, Bs, 1, C) / 1e9;
            double peer = blas.sgemm ? flop / seconds(BLAS_F32, tb, M, N, K, A, Bs, 1, C) / 1e9 : 0;
            char p1[16], p2[16], ratio[16] = "        -", peer_s[16] = "        -";
            pct(p1, sizeof p1, ours, threads[t]);
            pct(p2, sizeof p2, peer, threads[t]);
            if (peer > 0) {
                snprintf(peer_s, sizeof peer_s, "%9.1f", peer);
                snprintf(ratio, sizeof ratio, "%8.2fx", ours / peer);
            }
            printf("%6lld %6lld %6lld %4d | %9.1f %9s %9s | %10s %10s\n", (long long)M,
                   (long long)N, (long long)K, threads[t], ours, peer_s, ratio, p1, p2);
            fflush(stdout);
        }
        free(A), free(B), free(C);
    }
}

typedef struct {
    char *dst;
    const char *src;
    size_t bytes;
} copy_job;

static void run_memcpy(void *ctx) {
    const copy_job *j = ctx;
#pragma omp parallel
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        size_t lo = j->bytes * t / nt, hi = j->bytes * (t + 1) / nt;
        memcpy(j->dst + lo, j->src + lo, hi - lo);
    }
}

/* memcpy bandwidth, GB/s of (bytes read + bytes written), over a buffer far larger than L3 */
static double memcpy_gbs(void) {
    size_t bytes = (size_t)256 << 20;
    copy_job j = {malloc(bytes), malloc(bytes), bytes};
    if (!j.dst || !j.src) {
        fprintf(stderr, "bench gemm: out of memory for the memcpy buffers\n");
        exit(1);
    }
    memset(j.dst, 1, bytes);
    memset((char *)j.src, 2, bytes);
    double t = dv_bench_time(run_memcpy, &j, MIN_SECONDS);
    free(j.dst), free((char *)j.src);
    return 2.0 * bytes / t / 1e9;
}

static void weight_table(const int *threads, int nthreads) {
    static const shape shapes[] = {{1, 4096, 4096}, {1, 11008, 4096}, {600, 4096, 4096}};
    printf("\nf16 / bf16 weights, Linear layout (tb = 1: W stored (N,K), y = x W^T); f32 for "
           "comparison\n");
    printf("M = 1: GB/s of weight bytes read (f16/bf16: 2 per weight, f32: 4; weights cycled "
           "through copies spanning > 96 MiB,\n       so they come from DRAM) vs memcpy "
           "(bytes read + written); M = 600: GFLOP/s\n");
    printf("%6s %6s %6s %4s | %9s %9s %9s %9s | %9s %9s\n", "M", "N", "K", "thr", "ours f16",
           "ours bf16", "ours f32", "BLAS f32", "memcpy", "f16/memcpy");
    double copy[65] = {0};
    for (int t = 0; t < nthreads; t++) {
        set_threads(threads[t]);
        copy[threads[t]] = memcpy_gbs();
    }
    for (int s = 0; s < 3; s++) {
        int64_t M = shapes[s].M, N = shapes[s].N, K = shapes[s].K;
        int gemv = M == 1;
        /* M = 1: enough copies of the weights to span 3 x 32 MiB (more than any L3 here) */
        int copies = 1;
        while (gemv && copies < MAX_COPIES && copies * N * K * 2 < (int64_t)96 << 20) copies++;
        float *A = random_f32(M * K), *C = random_f32(M * N);
        const void *W[MAX_COPIES], *Wh[MAX_COPIES], *Wb[MAX_COPIES];
        for (int i = 0; i < copies; i++) {
            float *w = random_f32(N * K);
            for (int64_t e = 0; e < N * K; e++) w[e] *= 0.05f;
            W[i] = w, Wh[i] = to_half(w, N * K, 0), Wb[i] = to_half(w, N * K, 1);
        }
        for (int t = 0; t < nthreads; t++) {
            set_threads(threads[t]);
            double s16 = seconds(OURS_F16, 1, M, N, K, A, Wh, copies, C);
            double sb16 = seconds(OURS_BF16, 1, M, N, K, A, Wb, copies, C);
            double s32 = seconds(OURS_F32, 1, M, N, K, A, W, copies, C);
            double sbl = blas.sgemm ? seconds(BLAS_F32, 1, M, N, K, A, W, copies, C) : 0;
            double w = (double)N * K, flop = 2.0 * M * N * K;
            double f16 = gemv ? 2 * w / s16 / 1e9 : flop / s16 / 1e9;
            double b16 = gemv ? 2 * w / sb16 / 1e9 : flop / sb16 / 1e9;
            double f32 = gemv ? 4 * w / s32 / 1e9 : flop / s32 / 1e9;
            char peer[16] = "        -";
            if (sbl > 0) snprintf(peer, sizeof peer, "%9.1f", (gemv ? 4 * w : flop) / sbl / 1e9);
            if (gemv)
                printf("%6lld %6lld %6lld %4d | %9.1f %9.1f %9.1f %9s | %9.1f %8.0f%%   GB/s\n",
                       (long long)M, (long long)N, (long long)K, threads[t], f16, b16, f32, peer,
                       copy[threads[t]], 100 * f16 / copy[threads[t]]);
            else
                printf("%6lld %6lld %6lld %4d | %9.1f %9.1f %9.1f %9s | %9s %9s   GFLOP/s\n",
                       (long long)M, (long long)N, (long long)K, threads[t], f16, b16, f32, peer,
                       "", "");
            fflush(stdout);
        }
        free(A), free(C);
        for (int i = 0; i < copies; i++)
            free((void *)W[i]), free((void *)Wh[i]), free((void *)Wb[i]);
    }
}

int dv_bench_gemm(int argc, char **argv) {
    int only = dv_bench_threads_arg(argc, argv);
    if (only < 0) return 1;
    int threads[2] = {1, omp_get_max_threads()}, nthreads = threads[1] > 1 ? 2 : 1;
    if (only) threads[0] = only, nthreads = 1;
    if (threads[nthreads - 1] > 64) {
        fprintf(stderr, "bench gemm: at most 64 threads\n");
        return 1;
    }

    char model[256];
    double mhz = cpuinfo_mhz(model, sizeof model);
    printf("CPU: %s, /proc/cpuinfo %.0f MHz; kernels: %s\n", model, mhz, dv_isa_name(dv_cpu_isa()));
    load_blas();
    printf("system BLAS: %s\n",
           blas.sgemm ? blas.name : "no system BLAS found (peer columns skipped)");

#if defined(__x86_64__)
    g_peak_lanes = dv_cpu_has_avx512() ? 16
                   : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 8 : 0;
#endif
    if (g_peak_lanes) {
        double dep = fma_loop(20 * 1000 * 1000 / PEAK_CHAINS, 1) / (20.0 * 1000 * 1000);
        double ghz = 4.0 / (dep * 1e9);
        for (int t = 0; t < nthreads; t++) g_peak[threads[t]] = measure_peak(threads[t]);
        double p1 = g_peak[threads[0]] / threads[0];
        printf("FMA peak (measured: %d independent %d-bit FMA chains per thread):", PEAK_CHAINS,
               g_peak_lanes * 32);
        for (int t = 0; t < nthreads; t++)
            printf(" %d thread%s %.1f GFLOP/s%s", threads[t], threads[t] > 1 ? "s" : "",
                   g_peak[threads[t]], t + 1 < nthreads ? "," : "");
        printf("\n  clock from a dependent FMA chain (4-cycle latency assumed): %.2f GHz, so "
               "%.0f FLOP/cycle/core (%s)\n",
               ghz, p1 / ghz,
               p1 / ghz > 48 ? "two 512-bit FMA pipes: Zen 5 / Skylake-X class"
                             : "Zen 4 class: 512-bit FMAs run as 2 x 256 bit");
    } else {
        printf("FMA peak: not measured (no AVX2+FMA), %%peak columns skipped\n");
    }

    static const shape square[] = {{2048, 2048, 2048}, {1024, 1024, 1024}, {600, 4096, 4096},
                                   {256, 4096, 4096},  {64, 768, 768},     {20, 192, 192},
                                   {1, 4096, 4096}};
    static const shape linear[] = {{600, 4096, 4096}, {394, 1536, 384}, {64, 768, 768},
                                   {20, 192, 192},    {16, 768, 256},   {16, 256, 1024},
                                   {32, 1024, 256},   {1, 4096, 4096}};
    sgemm_table("SGEMM C = A B (ta = tb = 0), f32, GFLOP/s (best trial, >= 0.3 s per figure)", 0,
                square, 7, threads, nthreads);
    sgemm_table("SGEMM Linear layout C = A W^T (tb = 1, W stored (N,K)), GFLOP/s", 1, linear,
                (int)(sizeof linear / sizeof linear[0]) - 1, /* M = 1: the f16 / bf16 table */
                threads, nthreads);
    weight_table(threads, nthreads);
    return 0;
}
