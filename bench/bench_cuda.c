/* bench/bench_cuda.c — `bench --device cuda <gemm|attention|adamw|bandwidth>` (also spelled
 * `bench cuda <...>`): the CUDA kernels' speed beside PyTorch's on the same GPU.
 *
 *   int dv_bench_cuda(int argc, char **argv);   (registered in bench/main.c)
 *
 *   gemm       bf16 in, bf16 out, f32 accumulation: TFLOP/s at 4096^3, 8192^3 and the
 *              LLaVA-7B projections 600x4096x4096 and 600x11008x4096 (M x N x K), the layout
 *              of torch.matmul(a, b) (tb = 0) and of a linear layer x W^T (tb = 1); and the
 *              f32 CUDA-core GEMM at 4096^3 beside torch's f32 matmul (TF32 off, its default);
 *              on an sm_90 GPU each shape also gets a 'wgmma' row: dv_cu_gemm_wgmma (the Hopper
 *              kernel, kernels/cuda/gemm_sm90a.cu) called directly, its result checked (all-ones
 *              inputs: every output is K), whatever DV_CUDA_WGMMA says
 *   attention  flash attention forward and backward, bf16, 32 heads x 128, T = 600 and 4096,
 *              causal: TFLOP/s counting the causal half (forward 2 * 2 * B H T^2 D / 2, the
 *              backward 2.5 times that, FlashAttention-2's convention); the backward twice:
 *              the tensor-core kernels (the default) and the CUDA-core ones (DV_CUDA_ATTN_BWD=cores)
 *   adamw      fused AdamW over 64M f32 parameters: GB/s of its 28 bytes a parameter
 *   bandwidth  gelu and softmax GB/s beside cudaMemcpy device-to-device GB/s (the issue's
 *              target: memory-bound kernels >= 70% of the copy)
 * The peer is bench/cuda_torch.py, run with python3 in the same process tree on the same GPU
 * when python3 can import torch with CUDA; its figures are printed next to ours with the
 * ratio ours / torch. It is never a build dependency: without it the lines say "peer n/a".
 * Timing: one warm-up call, then enough calls to fill 0.3 s, between device synchronisations
 * (wall clock; the launches are asynchronous so the host overhead overlaps the GPU work).
 * Without a device (or a build without CUDA) it prints one line saying why and returns 0.
 */
#include "bench/bench.h"
#include "tensor/cuda.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int dv_bench_cuda(int argc, char **argv);

#ifdef DV_HAVE_CUDA
#include "kernels/attention.h"
#include "kernels/cuda/kernels.h"
#include "kernels/half.h"

static const double MIN_SECONDS = 0.3;

/* seconds per call of fn on cuda:0 */
static double time_gpu(void (*fn)(void *), void *ctx) {
    fn(ctx);
    dv_cuda_synchronize(0);
    double t0 = dv_bench_now();
    long reps = 0;
    do {
        fn(ctx);
        reps++;
        if (reps % 4 == 0) dv_cuda_synchronize(0);
    } while (dv_bench_now() - t0 < MIN_SECONDS || reps < 3);
    dv_cuda_synchronize(0);
    return (dv_bench_now() - t0) / (double)reps;
}

/* the peer's seconds for `case` (a line "case <seconds>" from bench/cuda_torch.py), or NAN */
static double torch_seconds(const char *what, const char *case_name) {
    static char out[16384];
    static char done_what[64];
    if (strcmp(done_what, what) != 0) {
        snprintf(done_what, sizeof done_what, "%s", what);
        out[0] = 0;
        char cmd[256];
        snprintf(cmd, sizeof cmd, "python3 bench/cuda_torch.py %s 2>/dev/null", what);
        FILE *f = popen(cmd, "r");
        if (f) {
            size_t n = fread(out, 1, sizeof out - 1, f);
            out[n] = 0;
            pclose(f);
        }
    }
    size_t len = strlen(case_name);
    for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, case_name, len) && p[len] == ' ') return atof(p + len + 1);
    return NAN;
}

static void print_line(const char *name, double ours, double peer, const char *unit) {
    if (isnan(peer)) printf("  %-34s %9.1f %s   torch: peer n/a\n", name, ours, unit);
    else printf("  %-34s %9.1f %s   torch %9.1f %s   ratio %.2f\n", name, ours, unit, peer, unit, ours / peer);
    fflush(stdout);
}

/* ---- gemm ---- */
typedef struct { int64_t M, N, K; int tb; void *A, *B, *C; } gemm_job;
static void run_gemm(void *ctx) {
    gemm_job *j = ctx;
    dv_cuda_check(dv_cu_gemm(DV_CU_BF16, 0, j->tb, j->M, j->N, j->K, 1.0f, j->A, j->K, 0, j->B,
                             j->tb ? j->K : j->N, 0, 0.0f, j->C, j->N, 0, false, 1, dv_cuda_stream(0)),
                  "bench gemm");
}

static void run_gemm_wgmma(void *ctx) {
    gemm_job *j = ctx;
    dv_cuda_check(dv_cu_gemm_wgmma(DV_CU_BF16, 0, j->tb, j->M, j->N, j->K, 1.0f, j->A, j->K, 0, j->B,
                                   j->tb ? j->K : j->N, 0, 0.0f, j->C, j->N, 0, false, 1, dv_cuda_stream(0)),
                  "bench gemm wgmma");
}

/* the inputs are all 1.0, so every output is K (exact in bf16 for K a power of two times a
 * small integer, as here): the first and last element say whether the kernel computed at all */
static bool gemm_result_ok(const gemm_job *j) {
    uint16_t first, last;
    dv_cuda_synchronize(0);
    dv_cuda_copy_d2h(0, &first, j->C, 2);
    dv_cuda_copy_d2h(0, &last, (const uint16_t *)j->C + (j->M * j->N - 1), 2);
    float want = dv_bf16_to_f32(dv_f32_to_bf16((float)j->K));
    return dv_bf16_to_f32(first) == want && dv_bf16_to_f32(last) == want;
}

static void run_sgemm(void *ctx) {
    gemm_job *j = ctx;
    dv_cuda_check(dv_cu_gemm_f32(0, 0, j->M, j->N, j->K, 1.0f, j->A, j->K, j->B, j->N, 0.0f, j->C, j->N,
                                 dv_cuda_stream(0)),
                  "bench sgemm");
}

static int bench_gemm(void) {
    const int64_t shapes[][3] = {{4096, 4096, 4096}, {8192, 8192, 8192}, {600, 4096, 4096}, {600, 11008, 4096}};
    const char *env = getenv("DV_CUDA_WGMMA");
    const bool wg = dv_cu_gemm_wgmma_device(), wg_default = env && !strcmp(env, "1");
    printf("cuda gemm, bf16 in / bf16 out, f32 accumulation (TFLOP/s); plain rows: dv_cu_gemm (%s)%s\n",
           wg && wg_default ? "wgmma, DV_CUDA_WGMMA=1" : "mma.sync",
           wg ? ", 'wgmma' rows: dv_cu_gemm_wgmma (sm_90a, never measured before this run)" : "");
    for (int s = 0; s < 4; s++)
        for (int tb = 0; tb < 2; tb++) {
            gemm_job j = {shapes[s][0], shapes[s][1], shapes[s][2], tb, NULL, NULL, NULL};
            int64_t na = j.M * j.K * 2, nb = j.K * j.N * 2, nc = j.M * j.N * 2;
            j.A = dv_cuda_alloc(0, na), j.B = dv_cuda_alloc(0, nb), j.C = dv_cuda_alloc(0, nc);
            /* the values do not change the speed; finite ones keep the output readable: 1.0 */
            dv_cuda_check(dv_cu_fill(j.A, na / 2, 2, 0x3f80, dv_cuda_stream(0)), "fill");
            dv_cuda_check(dv_cu_fill(j.B, nb / 2, 2, 0x3f80, dv_cuda_stream(0)), "fill");
            double t = time_gpu(run_gemm, &j);
            char name[96], key[96];
            snprintf(name, sizeof name, "%lldx%lldx%lld %s", (long long)j.M, (long long)j.N, (long long)j.K,
                     tb ? "x@W^T" : "a@b");
            snprintf(key, sizeof key, "gemm_%lld_%lld_%lld_%d", (long long)j.M, (long long)j.N, (long long)j.K, tb);
            double flops = 2.0 * j.M * j.N * j.K;
            double peer = torch_seconds("gemm", key);
            print_line(name, flops / t * 1e-12, isnan(peer) ? NAN : flops / peer * 1e-12, "TFLOP/s");
            if (wg) {
                dv_cuda_check(dv_cu_fill(j.C, nc / 2, 2, 0, dv_cuda_stream(0)), "fill");
                double tw = time_gpu(run_gemm_wgmma, &j);
                char wname[128];
                snprintf(wname, sizeof wname, "%s wgmma%s", name, gemm_result_ok(&j) ? "" : " (WRONG RESULT)");
                print_line(wname, flops / tw * 1e-12, isnan(peer) ? NAN : flops / peer * 1e-12, "TFLOP/s");
            }
            dv_cuda_free(0, j.A, na), dv_cuda_free(0, j.B, nb), dv_cuda_free(0, j.C, nc);
        }
    gemm_job f = {4096, 4096, 4096, 0, NULL, NULL, NULL};
    int64_t nf = f.M * f.K * 4;
    f.A = dv_cuda_alloc(0, nf), f.B = dv_cuda_alloc(0, nf), f.C = dv_cuda_alloc(0, nf);
    dv_cuda_check(dv_cu_fill(f.A, nf / 4, 4, 0x3f800000u, dv_cuda_stream(0)), "fill");
    dv_cuda_check(dv_cu_fill(f.B, nf / 4, 4, 0x3f800000u, dv_cuda_stream(0)), "fill");
    double t = time_gpu(run_sgemm, &f), flops = 2.0 * f.M * f.N * f.K, peer = torch_seconds("gemm", "sgemm_4096");
    print_line("4096^3 f32 (CUDA cores)", flops / t * 1e-12, isnan(peer) ? NAN : flops / peer * 1e-12, "TFLOP/s");
    dv_cuda_free(0, f.A, nf), dv_cuda_free(0, f.B, nf), dv_cuda_free(0, f.C, nf);
    return 0;
}

/* ---- attention ---- */
typedef struct { dv_attn_geom g; void *q, *k, *v, *work; float *o, *lse, *dq, *dk, *dv; dv_cu_attn_bwd_kind bk; } attn_job;
static void run_attn(void *ctx) {
    attn_job *j = ctx;
    dv_cuda_check(dv_cu_attention_fwd(DV_CU_BF16, &j->g, j->q, j->k, j->v, NULL, j->o, j->lse, dv_cuda_stream(0)),
                  "bench attention");
}
static void run_attn_bwd(void *ctx) {
    attn_job *j = ctx; /* dO = O: any values do */
    dv_cuda_check(dv_cu_attention_bwd_with(j->bk, DV_CU_BF16, &j->g, j->q, j->k, j->v, NULL, j->o, j->lse, j->o, j->g.Dv,
                                           j->dq, j->dk, j->dv, NULL, j->work, dv_cuda_stream(0)),
                  "bench attention backward");
}

static int bench_attention(void) {
    printf("cuda flash attention forward, bf16, B=1, 32 heads x 128, causal (TFLOP/s):\n");
    const int64_t Ts[] = {600, 4096};
    for (int ti = 0; ti < 2; ti++) {
        int64_t T = Ts[ti], H = 32, D = 128, n = H * T * D;
        attn_job j = {0};
        j.g = (dv_attn_geom){.B = 1, .Hq = H, .Hkv = H, .Tq = T, .Tk = T, .D = D, .Dv = D,
                             .q_stride = {n, T * D, D}, .k_stride = {n, T * D, D}, .v_stride = {n, T * D, D},
                             .scale = 1.0 / sqrt((double)D), .causal = true};
        j.q = dv_cuda_alloc(0, n * 2), j.k = dv_cuda_alloc(0, n * 2), j.v = dv_cuda_alloc(0, n * 2);
        j.o = dv_cuda_alloc(0, n * 4), j.lse = dv_cuda_alloc(0, H * T * 4);
        /* constant inputs (bf16 0.0078 and 1.0): the work does not depend on the values */
        dv_cuda_check(dv_cu_fill(j.q, n, 2, 0x3c00, dv_cuda_stream(0)), "fill");
        dv_cuda_check(dv_cu_fill(j.k, n, 2, 0x3c00, dv_cuda_stream(0)), "fill");
        dv_cuda_check(dv_cu_fill(j.v, n, 2, 0x3f80, dv_cuda_stream(0)), "fill");
        double t = time_gpu(run_attn, &j);
        double flops = 4.0 * H * T * T * D / 2;
        char name[64], key[64];
        snprintf(name, sizeof name, "fwd T=%lld", (long long)T);
        snprintf(key, sizeof key, "attn_fwd_%lld", (long long)T);
        double peer = torch_seconds("attention", key);
        print_line(name, flops / t * 1e-12, isnan(peer) ? NAN : flops / peer * 1e-12, "TFLOP/s");
        int64_t wb = (int64_t)dv_cu_attention_bwd_work_bytes(&j.g);
        j.dq = dv_cuda_alloc(0, n * 4), j.dk = dv_cuda_alloc(0, n * 4), j.dv = dv_cuda_alloc(0, n * 4);
        j.work = dv_cuda_alloc(0, wb);
        snprintf(key, sizeof key, "attn_bwd_%lld", (long long)T);
        peer = torch_seconds("attention", key);
        for (int tc = 1; tc >= 0; tc--) { /* the tensor-core backward (the default), then the CUDA-core one */
            j.bk = tc ? DV_CU_ATTN_BWD_TC : DV_CU_ATTN_BWD_CORES;
            t = time_gpu(run_attn_bwd, &j);
            snprintf(name, sizeof name, "bwd T=%lld (%s)", (long long)T, tc ? "tensor cores" : "CUDA cores");
            print_line(name, 2.5 * flops / t * 1e-12, isnan(peer) ? NAN : 2.5 * flops / peer * 1e-12, "TFLOP/s");
        }
        dv_cuda_free(0, j.dq, n * 4), dv_cuda_free(0, j.dk, n * 4), dv_cuda_free(0, j.dv, n * 4);
        dv_cuda_free(0, j.work, wb);
        dv_cuda_free(0, j.q, n * 2), dv_cuda_free(0, j.k, n * 2), dv_cuda_free(0, j.v, n * 2);
        dv_cuda_free(0, j.o, n * 4), dv_cuda_free(0, j.lse, H * T * 4);
    }
    return 0;
}

/* ---- adamw and bandwidth ---- */
enum { NPARAM = 64 << 20 };
typedef struct { int64_t n; float *p, *g, *m, *v; dv_adamw_coefs c; int what; } bw_job;
static void run_bw(void *ctx) {
    bw_job *j = ctx;
    void *s = dv_cuda_stream(0);
    if (j->what == 0) dv_cuda_check(dv_cu_adamw_f32(j->n, j->p, j->g, j->m, j->v, &j->c, DV_ADAMW_COPY_NONE, NULL, s), "adamw");
    else if (j->what == 1) dv_cuda_copy_d2d(0, j->p, j->g, j->n * 4);
    else if (j->what == 2) dv_cuda_check(dv_cu_unary_f32(DV_UNARY_GELU, j->n, j->g, j->p, 0, 0, s), "gelu");
    else dv_cuda_check(dv_cu_softmax_fwd_f32(false, j->n / 4096, 4096, j->g, j->p, s), "softmax");
}

static int bench_adamw_bw(int adamw) {
    bw_job j = {.n = NPARAM};
    int64_t b = (int64_t)NPARAM * 4;
    j.p = dv_cuda_alloc(0, b), j.g = dv_cuda_alloc(0, b), j.m = dv_cuda_alloc(0, b), j.v = dv_cuda_alloc(0, b);
    for (int i = 0; i < 4; i++) {
        float *x = i == 0 ? j.p : i == 1 ? j.g : i == 2 ? j.m : j.v;
        dv_cuda_check(dv_cu_rng_fill(0, 10 + i, 0, NPARAM, 0, 1, false, x, dv_cuda_stream(0)), "fill");
    }
    j.c = dv_adamw_coefs_at(1e-3, 0.9, 0.999, 1e-8, 0.01, 10);
    j.what = 1;
    double tcopy = time_gpu(run_bw, &j);
    double copy_gbs = 2.0 * b / tcopy * 1e-9;
    printf("cuda %s (GB/s; cudaMemcpy device-to-device: %.1f GB/s read + write):\n", adamw ? "adamw" : "bandwidth", copy_gbs);
    if (adamw) {
        j.what = 0;
        double t = time_gpu(run_bw, &j);
        double peer = torch_seconds("adamw", "adamw_64M");
        print_line("fused AdamW 64M params", 28.0 * NPARAM / t * 1e-9, isnan(peer) ? NAN : 28.0 * NPARAM / peer * 1e-9,
                   "GB/s");
        printf("  %-34s %.0f%% of the d2d copy\n", "", 100.0 * (28.0 * NPARAM / t * 1e-9) / copy_gbs);
    } else {
        for (int w = 2; w <= 3; w++) {
            j.what = w;
            double t = time_gpu(run_bw, &j);
            double gbs = 2.0 * b / t * 1e-9;
            printf("  %-34s %9.1f GB/s   %.0f%% of the d2d copy\n", w == 2 ? "gelu 64M f32" : "softmax 16K x 4096 f32",
                   gbs, 100.0 * gbs / copy_gbs);
        }
    }
    dv_cuda_free(0, j.p, b), dv_cuda_free(0, j.g, b), dv_cuda_free(0, j.m, b), dv_cuda_free(0, j.v, b);
    return 0;
}

int dv_bench_cuda(int argc, char **argv) {
    if (!dv_cuda_available()) {
        printf("bench cuda: skipped — %s\n", dv_cuda_unavailable_reason());
        return 0;
    }
    dv_cuda_info info;
    if (dv_cuda_device_info(0, &info) == 0)
        printf("cuda:0 %s, sm_%d%d, %d SMs, %.0f GiB\n", info.name, info.major, info.minor, info.sm_count,
               info.total_bytes / 1073741824.0);
    const char *what = argc > 1 && argv[1][0] != '-' ? argv[1] : "all";
    int all = !strcmp(what, "all"), rc = 0, known = all;
    if (all || !strcmp(what, "gemm")) rc |= bench_gemm(), known = 1;
    if (all || !strcmp(what, "attention")) rc |= bench_attention(), known = 1;
    if (all || !strcmp(what, "adamw")) rc |= bench_adamw_bw(1), known = 1;
    if (all || !strcmp(what, "bandwidth")) rc |= bench_adamw_bw(0), known = 1;
    if (!known) {
        fprintf(stderr, "bench cuda: unknown kernel '%s' (gemm, attention, adamw, bandwidth)\n", what);
        return 2;
    }
    return rc;
}

#else

int dv_bench_cuda(int argc, char **argv) {
    (void)argc, (void)argv;
    printf("bench cuda: skipped — %s\n", dv_cuda_unavailable_reason());
    return 0;
}

#endif
