/* bench/main.c — build/bench: the table of benchmark subcommands and the shared timing helpers.
 *
 * Adding a benchmark is one line in `commands` below plus its function declared in bench.h.
 */
#include "bench/bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"gemm", dv_bench_gemm,
     "SGEMM and f16/bf16-weight GEMM GFLOP/s vs the system BLAS (dlopen), % of FMA peak "
     "[--threads N]"},
    {"bandwidth", dv_bench_bandwidth,
     "memory-bound kernels (add, exp, gelu, softmax, ...) GB/s vs memcpy "
     "[--threads N] [--mib M] [--rounds R]"},
    {"attention", dv_bench_attention,
     "fused attention vs the unfused op-by-op path [--threads N] [--quick]"},
    {"adamw", dv_bench_adamw, "fused AdamW update GB/s vs memcpy [--threads N]"},
    {"calvin", dv_bench_calvin, "CALVIN loader samples/s (3DDA B=15, DiT B=64), npz MB/s [--threads N] [--quick] [--dir SPLIT] [--no-peer]"},
    {"dit", dv_bench_dit, "DiT specialist: chunk latency and training step vs PyTorch [--preset P] [--batch B] "
     "[--device cuda[:N]] [--reps N] [--infer-only] [--no-torch]"},
    {"cuda", dv_bench_cuda, "CUDA kernels vs torch on the GPU: cuda [gemm|attention|adamw|bandwidth]"},
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

double dv_bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

double dv_bench_time(void (*fn)(void *ctx), void *ctx, double min_s) {
    double t = dv_bench_now();
    fn(ctx); /* warm-up: page faults, pack buffers, thread pools */
    double once = dv_bench_now() - t;
    long reps = once > 0 ? (long)(min_s / 4 / once) + 1 : 1;
    double best = -1, spent = 0;
    for (int trial = 0; trial < 3 || spent < min_s; trial++) {
        t = dv_bench_now();
        for (long r = 0; r < reps; r++) fn(ctx);
        double dt = dv_bench_now() - t;
        spent += dt;
        if (best < 0 || dt / reps < best) best = dt / reps;
    }
    return best;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void dv_bench_samples_add(dv_bench_samples *s, double seconds) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->t = realloc(s->t, (size_t)s->cap * sizeof *s->t);
        if (!s->t) {
            fprintf(stderr, "bench: out of memory\n");
            exit(1);
        }
    }
    s->t[s->n++] = seconds;
}

void dv_bench_sample(dv_bench_samples *s, void (*fn)(void *ctx), void *ctx, double min_s, int min_calls) {
    fn(ctx); /* warm-up */
    double spent = 0;
    for (int n = 0; n < min_calls || spent < min_s; n++) {
        double t0 = dv_bench_now();
        fn(ctx);
        double dt = dv_bench_now() - t0;
        dv_bench_samples_add(s, dt);
        spent += dt;
    }
}

void dv_bench_stats(const dv_bench_samples *s, double *best, double *median) {
    *best = *median = -1;
    if (s->n == 0) return;
    double *t = malloc((size_t)s->n * sizeof *t);
    memcpy(t, s->t, (size_t)s->n * sizeof *t);
    qsort(t, s->n, sizeof *t, cmp_double);
    int n = s->n;
    *best = t[0];
    *median = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    free(t);
}

void dv_bench_samples_free(dv_bench_samples *s) {
    free(s->t);
    *s = (dv_bench_samples){0};
}

void dv_bench_calls(void (*fn)(void *ctx), void *ctx, double min_s, int min_calls, double *best,
                    double *median) {
    dv_bench_samples s = {0};
    dv_bench_sample(&s, fn, ctx, min_s, min_calls);
    dv_bench_stats(&s, best, median);
    dv_bench_samples_free(&s);
}

int dv_bench_threads_arg(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--threads")) {
            int n = 0;
            if (sscanf(argv[i + 1], "%d", &n) == 1 && n > 0) return n;
            fprintf(stderr, "bench: --threads needs a positive integer, got '%s'\n", argv[i + 1]);
            return -1;
        }
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: bench <subcommand> [options]\n\nsubcommands:\n");
    for (int i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "  %-10s every subcommand above, in order, with the same options\n", "all");
}

int main(int argc, char **argv) {
    /* `bench --device cuda gemm` is `bench cuda gemm`; `--device cpu` is the default. The DiT
     * bench runs on either device, so `bench --device D dit ...` is `bench dit --device D ...` */
    char *dit_argv[64];
    if (argc > 3 && argc < 62 && !strcmp(argv[1], "--device") && !strcmp(argv[3], "dit")) {
        dit_argv[0] = argv[0], dit_argv[1] = argv[3], dit_argv[2] = argv[1], dit_argv[3] = argv[2];
        for (int i = 4; i <= argc; i++) dit_argv[i] = argv[i];   /* with the closing NULL */
        argv = dit_argv;
    }
    if (argc > 2 && !strcmp(argv[1], "--device") && !strcmp(argv[2], "cuda")) argc--, argv++;
    else if (argc > 2 && !strcmp(argv[1], "--device") && !strcmp(argv[2], "cpu")) argv[2] = argv[0], argc -= 2, argv += 2;
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "all")) {
        int rc = 0;
        for (int i = 0; i < NCOMMANDS; i++) {
            printf("=== bench %s ===\n", commands[i].name);
            fflush(stdout);
            char *name = (char *)commands[i].name;
            argv[1] = name;
            rc |= commands[i].fn(argc - 1, argv + 1);
        }
        return rc ? 1 : 0;
    }
    for (int i = 0; i < NCOMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1) ? 1 : 0;
    fprintf(stderr, "bench: unknown subcommand '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
