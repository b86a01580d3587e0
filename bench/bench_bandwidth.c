/* bench/bench_bandwidth.c — `bench bandwidth [--threads N] [--mib M] [--rounds R]`: memory-bound kernels
 * against memcpy.
 *
 *   extern int dv_bench_bandwidth(int argc, char **argv);   (registered in bench/main.c)
 *
 * On f32 buffers of M MiB (64 by default: far past the last-level cache), prints one line per
 * kernel, for 1 and the default number of OpenMP threads (or only N with --threads N):
 *   kernel, GB/s, memcpy GB/s measured in the same run with the same threads, ratio (% of memcpy).
 * GB/s counts the bytes the kernel must read plus the bytes it writes (1 GB = 1e9 bytes): memcpy
 * of 64 MiB moves 128 MiB, add moves 192 MiB, a unary op 128 MiB, a unary backward 256 MiB (x, y,
 * gy in, gx out), softmax and layer_norm 128 MiB (rows of 4096 read once, written once).
 * The memcpy peer with T threads is T memcpy calls on T disjoint slices at once; the row "copy,
 * streaming stores" is a second reference (an AVX-512 copy loop with non-temporal stores).
 * Every kernel is timed in R rounds (3 by default) over the whole list and its best round is
 * kept, which filters out bursts of load from the rest of a shared machine.
 * Kernels:
 *   tensor API:    dv_add (two (R, 4096) tensors), dv_unary exp / gelu / silu, dv_softmax and
 *                  dv_layer_norm over rows of 4096 — what the models call, through the kernel set
 *                  that kernels/cpu.c picks (DV_FORCE_PORTABLE=1 for the portable one);
 *   kernel level:  dv_binary_f32_{avx512,portable} add and dv_unary_f32_{avx512,portable},
 *                  dv_unary_backward_f32_{avx512,portable} for the same ops, called directly on
 *                  raw buffers (no allocation); dv_bias_act_{fwd,bwd}_f32_avx512 with gelu_tanh
 *                  over (R, 4096) rows and a 4096 bias (the backward also sums the bias gradient;
 *                  it moves x, gy in and gx out: 3 buffers).
 * Not here: correctness (tests/test_vmath.c, tests/test_elementwise.c), f64.
 */
#include "bench/bench.h"
#include "kernels/bias_act.h"
#include "kernels/cpu.h"
#include "kernels/elementwise.h"
#include "tensor/ops.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROW 4096 /* the row length of the (R, ROW) tensors and of softmax / layer_norm */

typedef struct {
    int64_t n;                     /* floats per buffer */
    float *x, *y, *z, *g;          /* raw buffers for the kernel-level runs */
    dv_tensor *tx, *ty, *w, *b;    /* (R, ROW) tensors and the layer-norm affine (ROW) */
    dv_unary_op op;
    int nt;                        /* threads of the memcpy peer */
} bw_ctx;

/* ---- the runs (each is one call of the timed function) -------------------------------------- */
static void run_memcpy(void *p) {
    bw_ctx *c = p;
    int64_t bytes = c->n * (int64_t)sizeof(float);
    #pragma omp parallel num_threads(c->nt)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t per = (bytes / nt + 63) / 64 * 64, lo = t * per, hi = lo + per < bytes ? lo + per : bytes;
        if (lo < hi) memcpy((char *)c->y + lo, (const char *)c->x + lo, (size_t)(hi - lo));
    }
}

/* A second reference: the plainest AVX-512 copy with streaming (non-temporal) stores, as our
 * kernels write large outputs. glibc's memcpy may use other stores, so this can beat it. */
#if defined(__x86_64__) && !defined(DV_NO_AVX512)
#include <immintrin.h>
__attribute__((target("avx512f"))) static void stream_copy(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i + 16 <= n; i += 16) _mm512_stream_ps(y + i, _mm512_loadu_ps(x + i));
    _mm_sfence();
}
static void run_stream_copy(void *p) {
    bw_ctx *c = p;
    #pragma omp parallel num_threads(c->nt)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t per = (c->n / nt + 15) / 16 * 16, lo = t * per, hi = lo + per < c->n ? lo + per : c->n;
        if (lo < hi) stream_copy(c->x + lo, c->y + lo, hi - lo); /* n is a multiple of 4096 */
    }
}
#else
static void run_stream_copy(void *p) { run_memcpy(p); }
#endif

static void run_add_tensor(void *p) {
    bw_ctx *c = p;
    dv_release(dv_add(c->tx, c->ty));
}
static void run_unary_tensor(void *p) {
    bw_ctx *c = p;
    dv_release(dv_unary(c->op, c->tx, 0, 0));
}
static void run_softmax(void *p) {
    bw_ctx *c = p;
    dv_release(dv_softmax(c->tx, -1));
}
static void run_layer_norm(void *p) {
    bw_ctx *c = p;
    dv_release(dv_layer_norm(c->tx, c->w, c->b, 1e-5));
}

static void add_kernel(bw_ctx *c, int avx512) {
    int64_t shape[2] = {c->n / ROW, ROW}, s[2] = {ROW, 1};
#ifndef DV_NO_AVX512
    if (avx512) { dv_binary_f32_avx512(DV_BINARY_ADD, 2, shape, c->x, s, c->y, s, c->z); return; }
#endif
    dv_binary_f32_portable(DV_BINARY_ADD, 2, shape, c->x, s, c->y, s, c->z);
}
static void run_add_avx512(void *p) { add_kernel(p, 1); }
static void run_add_portable(void *p) { add_kernel(p, 0); }

static void run_unary_avx512(void *p) {
#ifndef DV_NO_AVX512
    bw_ctx *c = p;
    dv_unary_f32_avx512(c->op, c->n, c->x, c->z, 0, 0);
#else
    (void)p;
#endif
}
static void run_unary_portable(void *p) {
    bw_ctx *c = p;
    dv_unary_f32_portable(c->op, c->n, c->x, c->z, 0, 0);
}
static void run_backward_avx512(void *p) {
#ifndef DV_NO_AVX512
    bw_ctx *c = p;
    dv_unary_backward_f32_avx512(c->op, c->n, c->x, c->y, c->g, c->z, 0, 0);
#else
    (void)p;
#endif
}
static void run_backward_portable(void *p) {
    bw_ctx *c = p;
    dv_unary_backward_f32_portable(c->op, c->n, c->x, c->y, c->g, c->z, 0, 0);
}

static void run_bias_act_avx512(void *p) {
#ifndef DV_NO_AVX512
    bw_ctx *c = p;
    dv_bias_act_fwd_f32_avx512(DV_BIAS_ACT_GELU_TANH, c->n / ROW, ROW, c->x, dv_data(c->b), c->z);
#else
    (void)p;
#endif
}
static void run_bias_act_bwd_avx512(void *p) {
#ifndef DV_NO_AVX512
    bw_ctx *c = p;
    float gb[ROW];
    dv_bias_act_bwd_f32_avx512(DV_BIAS_ACT_GELU_TANH, c->n / ROW, ROW, c->x, dv_data(c->b), c->g, c->z, gb);
#else
    (void)p;
#endif
}

/* ---- the table --------------------------------------------------------------------------- */
typedef struct {
    const char *name;
    void (*fn)(void *);
    dv_unary_op op;
    int buffers;   /* f32 buffers of n moved per call: read + written */
    int avx512;    /* needs the AVX-512 kernels */
    int slow;      /* compute-bound portable code: measured in the first round only */
} bw_kernel;

static const bw_kernel k_kernels[] = {
    {"copy, streaming stores", run_stream_copy, 0, 2, 1, 0},
    {"add (dv_add)", run_add_tensor, 0, 3, 0, 0},
    {"add avx512", run_add_avx512, 0, 3, 1, 0},
    {"add portable", run_add_portable, 0, 3, 0, 0},
    {"exp (dv_unary)", run_unary_tensor, DV_UNARY_EXP, 2, 0, 0},
    {"exp avx512", run_unary_avx512, DV_UNARY_EXP, 2, 1, 0},
    {"exp portable", run_unary_portable, DV_UNARY_EXP, 2, 0, 1},
    {"gelu (dv_unary)", run_unary_tensor, DV_UNARY_GELU, 2, 0, 0},
    {"gelu avx512", run_unary_avx512, DV_UNARY_GELU, 2, 1, 0},
    {"gelu portable", run_unary_portable, DV_UNARY_GELU, 2, 0, 1},
    {"gelu backward avx512", run_backward_avx512, DV_UNARY_GELU, 4, 1, 0},
    {"gelu backward portable", run_backward_portable, DV_UNARY_GELU, 4, 0, 1},
    {"silu (dv_unary)", run_unary_tensor, DV_UNARY_SILU, 2, 0, 0},
    {"silu avx512", run_unary_avx512, DV_UNARY_SILU, 2, 1, 0},
    {"silu portable", run_unary_portable, DV_UNARY_SILU, 2, 0, 1},
    {"silu backward avx512", run_backward_avx512, DV_UNARY_SILU, 4, 1, 0},
    {"bias+gelu_tanh avx512", run_bias_act_avx512, 0, 2, 1, 0},
    {"bias+gelu_tanh bwd avx512", run_bias_act_bwd_avx512, 0, 3, 1, 0},
    {"softmax (rows of 4096)", run_softmax, 0, 2, 0, 0},
    {"layer_norm (rows of 4096)", run_layer_norm, 0, 2, 0, 0},
};
enum { NKERNELS = sizeof k_kernels / sizeof k_kernels[0] };

static int parse_mib(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--mib")) {
            int m = 0;
            if (sscanf(argv[i + 1], "%d", &m) == 1 && m > 0 && m <= 4096) return m;
            fprintf(stderr, "bench bandwidth: --mib needs an integer in 1..4096, got '%s'\n", argv[i + 1]);
            return -1;
        }
    return 64;
}

int dv_bench_bandwidth(int argc, char **argv) {
    int want = dv_bench_threads_arg(argc, argv), mib = parse_mib(argc, argv), rounds = 3;
    if (want < 0 || mib < 0) return 1;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--rounds") && (sscanf(argv[i + 1], "%d", &rounds) != 1 || rounds < 1)) {
            fprintf(stderr, "bench bandwidth: --rounds needs a positive integer, got '%s'\n", argv[i + 1]);
            return 1;
        }
    int maxt = dv_cpu_threads();
    int threads[2] = {1, maxt}, nthreads = maxt > 1 ? 2 : 1;
    if (want > 0) { threads[0] = want; nthreads = 1; }

    bw_ctx c = {0};
    c.n = (int64_t)mib << 18; /* floats in mib MiB */
    c.n = c.n / ROW * ROW;
    int64_t rows = c.n / ROW;
    c.tx = dv_empty(DV_F32, DV_SHAPE(rows, ROW));
    c.ty = dv_empty(DV_F32, DV_SHAPE(rows, ROW));
    c.w = dv_empty(DV_F32, DV_SHAPE(ROW));
    c.b = dv_empty(DV_F32, DV_SHAPE(ROW));
    size_t bytes = (size_t)c.n * sizeof(float);
    c.z = aligned_alloc(64, bytes);
    c.g = aligned_alloc(64, bytes);
    if (!c.z || !c.g) { fprintf(stderr, "bench bandwidth: out of memory\n"); return 1; }
    c.x = dv_data(c.tx);
    c.y = dv_data(c.ty);
    /* values where the functions do real work (no inf / NaN shortcuts), pages touched */
    for (int64_t i = 0; i < c.n; i++) {
        c.x[i] = (float)((i * 7919) % 2001) * 0.004f - 4.0f;
        c.y[i] = (float)((i * 104729) % 1999) * 0.001f;
        c.z[i] = 0;
        c.g[i] = 1.0f - c.y[i];
    }
    float *pw = dv_data(c.w), *pb = dv_data(c.b);
    for (int i = 0; i < ROW; i++) { pw[i] = 1.0f + i * 1e-4f; pb[i] = 0.01f * (i % 7); }

    int avx = dv_cpu_has_avx512();
#ifdef DV_NO_AVX512
    avx = 0;
#endif
    printf("bandwidth: %d MiB f32 buffers (%lld x %d), kernel set %s, best of %d rounds; "
           "GB/s = (bytes read + written) / time\n",
           mib, (long long)rows, ROW, dv_isa_name(dv_cpu_isa()), rounds);
    printf("%-7s %-28s %9s %12s %9s\n", "threads", "kernel", "GB/s", "memcpy GB/s", "% memcpy");
    for (int ti = 0; ti < nthreads; ti++) {
        int nt = threads[ti];
        omp_set_num_threads(nt);
        c.nt = nt;
        /* rounds over the whole list, keeping each kernel's best: a burst of load from the rest
         * of the machine then spoils one round of one kernel, not the figure */
        double best_mem = 1e30, best[NKERNELS];
        for (int k = 0; k < NKERNELS; k++) best[k] = 1e30;
        for (int r = 0; r < rounds; r++) {
            double t = dv_bench_time(run_memcpy, &c, 0.1);
            if (t < best_mem) best_mem = t;
            for (int k = 0; k < NKERNELS; k++) {
                const bw_kernel *kk = &k_kernels[k];
                if ((kk->avx512 && !avx) || (kk->slow && r > 0)) continue;
                c.op = kk->op;
                t = dv_bench_time(kk->fn, &c, 0.1);
                if (t < best[k]) best[k] = t;
            }
        }
        double mem_gbs = 2.0 * bytes / best_mem * 1e-9;
        printf("%-7d %-28s %9.1f %12.1f %8.0f%%\n", nt, "memcpy (the peer)", mem_gbs, mem_gbs, 100.0);
        for (int k = 0; k < NKERNELS; k++) {
            if (best[k] >= 1e30) continue;
            double gbs = (double)k_kernels[k].buffers * bytes / best[k] * 1e-9;
            printf("%-7d %-28s %9.1f %12.1f %8.0f%%\n", nt, k_kernels[k].name, gbs, mem_gbs, 100.0 * gbs / mem_gbs);
        }
        fflush(stdout);
    }
    omp_set_num_threads(maxt);
    dv_release(c.tx);
    dv_release(c.ty);
    dv_release(c.w);
    dv_release(c.b);
    free(c.z);
    free(c.g);
    return 0;
}
