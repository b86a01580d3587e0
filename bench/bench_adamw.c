/* bench/bench_adamw.c — `bench adamw [--threads N]`: the fused AdamW update's memory bandwidth.
 *
 *   int dv_bench_adamw(int argc, char **argv);   (registered in bench/main.c)
 *
 * One update of 16M f32 parameters reads p, g, m, v and writes p, m, v: 28 bytes a parameter
 * (30 with the bf16 copy written in the same pass). The update is memory bound, so the figure
 * is GB/s of that traffic, printed next to memcpy's GB/s (bytes read + bytes written) measured
 * just before it with the same threads, and the ratio. Portable and AVX-512 kernels, 1 and 2
 * threads (or only N with --threads N).
 * Not here: correctness (tests/test_optim.c).
 */
#include "bench/bench.h"
#include "kernels/adamw.h"
#include "kernels/cpu.h"

#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dv_bench_adamw(int argc, char **argv);

enum { NPARAMS = 16 << 20 };
static const double MIN_SECONDS = 0.5;

typedef struct {
    int64_t n;
    float *p, *g, *m, *v;
    uint16_t *copy;
    dv_adamw_copy kind;
    dv_adamw_coefs c;
    int avx512;
} job;

static void run_adamw(void *ctx) {
    job *j = ctx;
#ifndef DV_NO_AVX512
    if (j->avx512) {
        dv_adamw_f32_avx512(j->n, j->p, j->g, j->m, j->v, &j->c, j->kind, j->copy);
        return;
    }
#endif
    dv_adamw_f32_portable(j->n, j->p, j->g, j->m, j->v, &j->c, j->kind, j->copy);
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

static void *alloc_check(size_t bytes) {
    void *p = aligned_alloc(64, bytes);
    if (!p) {
        fprintf(stderr, "bench adamw: out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

/* memcpy GB/s (read + write) over the same footprint as the update's four arrays */
static double memcpy_gbs(void) {
    size_t bytes = (size_t)NPARAMS * 4 * 2;
    copy_job j = {alloc_check(bytes), alloc_check(bytes), bytes};
    memset(j.dst, 1, bytes);
    memset((char *)j.src, 2, bytes);
    double t = dv_bench_time(run_memcpy, &j, MIN_SECONDS);
    free(j.dst), free((char *)j.src);
    return 2.0 * (double)bytes / t / 1e9;
}

int dv_bench_adamw(int argc, char **argv) {
    int only = dv_bench_threads_arg(argc, argv);
    if (only < 0) return 1;
    int threads[2] = {1, 2}, nthreads = 2;
    if (only) threads[0] = only, nthreads = 1;

    job j = {.n = NPARAMS};
    j.p = alloc_check(sizeof(float) * NPARAMS), j.g = alloc_check(sizeof(float) * NPARAMS);
    j.m = alloc_check(sizeof(float) * NPARAMS), j.v = alloc_check(sizeof(float) * NPARAMS);
    j.copy = alloc_check(sizeof(uint16_t) * NPARAMS);
    uint32_t s = 12345;
    for (int64_t i = 0; i < NPARAMS; i++) {
        s = s * 1664525u + 1013904223u;
        float r = (float)(s >> 8) / 16777216.0f - 0.5f;
        j.p[i] = r, j.g[i] = 0.1f * r, j.m[i] = 0.01f * r, j.v[i] = 1e-4f * r * r;
    }
    memset(j.copy, 0, sizeof(uint16_t) * NPARAMS);
    j.c = dv_adamw_coefs_at(1e-4, 0.9, 0.999, 1e-8, 0.01, 10);

    printf("AdamW update of %d M f32 parameters: GB/s of (read p, g, m, v; write p, m, v) = 28 B/param\n"
           "(+2 B/param with the bf16 copy) vs memcpy (read + write) in the same run\n",
           NPARAMS >> 20);
    printf("%-9s %4s %-5s | %9s %9s | %9s %9s\n", "kernel", "thr", "copy", "ms/step", "GB/s", "memcpy",
           "% memcpy");
    for (int t = 0; t < nthreads; t++) {
        omp_set_num_threads(threads[t]);
        for (int avx = 0; avx < 2; avx++) {
            if (avx && !dv_cpu_has_avx512()) continue;
            for (int kind = 0; kind < 2; kind++) {
                /* memcpy right before each row, so both figures see the same machine load */
                double copy_gbs = memcpy_gbs();
                j.avx512 = avx;
                j.kind = kind ? DV_ADAMW_COPY_BF16 : DV_ADAMW_COPY_NONE;
                double sec = dv_bench_time(run_adamw, &j, MIN_SECONDS);
                double gbs = (double)NPARAMS * (kind ? 30 : 28) / sec / 1e9;
                printf("%-9s %4d %-5s | %9.2f %9.1f | %9.1f %8.0f%%\n", avx ? "avx512" : "portable",
                       threads[t], kind ? "bf16" : "-", sec * 1e3, gbs, copy_gbs, 100 * gbs / copy_gbs);
                fflush(stdout);
            }
        }
    }
    free(j.p), free(j.g), free(j.m), free(j.v), free(j.copy);
    return 0;
}
