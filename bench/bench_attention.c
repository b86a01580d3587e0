/* bench/bench_attention.c — `bench attention [--threads N] [--quick]`: the fused attention op
 * against the unfused path on the same engine.
 *
 *   extern int dv_bench_attention(int argc, char **argv);   (registered in bench/main.c)
 *
 * For each shape, one line per pass (forward; backward), f32, the kernel set kernels/cpu.c picks
 * (DV_FORCE_PORTABLE=1 for the portable one), the default OpenMP threads or --threads N:
 *   fused     dv_attention (nn/attention.c): tiled online softmax, no (Tq, Tk) matrix;
 *   unfused   dv_matmul(q, k^T) -> dv_scale -> dv_add(causal 0/-inf mask) -> dv_softmax ->
 *             dv_matmul(., v), with autograd for the backward — the same engine, op by op;
 * with milliseconds, GFLOP/s and the speedup (unfused time / fused time), and the peak bytes the
 * allocator handed out during one call above what was live before (inputs not counted).
 * FLOPs: 4 D per visible (query, key) pair for the forward (q.k and p.v; a causal mask halves
 * the pairs), 2.5x that for the backward (FlashAttention's convention: 5 products of that size,
 * one of them the recomputed q.k). Both paths are charged the same count, so the GFLOP/s ratio is
 * the speed ratio — the unfused path also spends time on the masked half. The backward is timed
 * alone (dv_backward_with after an untimed forward); each figure is the best of >= 5 runs.
 * Shapes:
 *   llama7b-prefix   LLaMA-7B prefill: 32 heads x 128, T = 600, causal, B = 1
 *   diffuser-cross   3D Diffuser Actor cross-attention: 8 heads, width 192 (head dim 24),
 *                    20 trajectory queries against 2,000 scene tokens, B = 8
 *   dit-cross        RoboDual's DiT policy: 8 heads, width 256 (head dim 32), 8 queries,
 *                    24 keys, B = 64
 *   vit-self         the DiT's frozen RGB ViT-S/16: 6 heads x 64, 197 tokens, 2 images
 *   llama7b-prefix   again with dropout 0.1 on the weights (training): the mask's cost
 *   sweep T          8 heads x 64, causal, B = 1, T = 256 .. 2048: memory against T
 * Not here: correctness (tests/test_attention.c), f64, a PyTorch peer (the machine's torch has
 * no scaled_dot_product_attention).
 */
#include "bench/bench.h"
#include "nn/attention.h"
#include "nn/module.h"
#include "tensor/ops.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int64_t B, H, Tq, Tk, D;
    bool causal;
    double dropout; /* on the weights (both paths: the unfused one through dv_nn_dropout) */
} attn_shape;

typedef struct {
    const attn_shape *s;
    dv_tensor *q, *k, *v, *gout, *mask; /* mask: (Tq, Tk) 0 / -inf for the unfused causal path */
    bool fused, backward;
    dv_rng rng;                         /* the unfused path's dropout masks */
} run_ctx;

/* the unfused reference: every intermediate is a (B, H, Tq, Tk) tensor */
static dv_tensor *unfused_attention(run_ctx *c) {
    dv_tensor *kt = dv_transpose(c->k, 2, 3);
    dv_tensor *s = dv_matmul(c->q, kt);
    dv_tensor *ss = dv_scale(s, 1.0 / sqrt((double)c->s->D));
    dv_tensor *sm = c->mask ? dv_add(ss, c->mask) : dv_retain(ss);
    dv_tensor *p = dv_softmax(sm, -1);
    dv_tensor *pd = c->s->dropout > 0 ? dv_nn_dropout(p, c->s->dropout, true, &c->rng) : dv_retain(p);
    dv_tensor *o = dv_matmul(pd, c->v);
    dv_release(kt); dv_release(s); dv_release(ss); dv_release(sm); dv_release(p); dv_release(pd);
    return o;
}

/* one pass; with backward, the forward runs first and only the backward is timed */
static double run_once(run_ctx *c) {
    bool prev = dv_set_grad_enabled(c->backward);
    double t0 = dv_bench_now();
    dv_tensor *o;
    if (c->fused) {
        dv_attention_opts opts = {.causal = c->s->causal, .dropout = c->s->dropout, .dropout_seed = 7};
        o = dv_attention(c->q, c->k, c->v, &opts);
    } else {
        o = unfused_attention(c);
    }
    if (c->backward) {
        t0 = dv_bench_now();
        dv_backward_with(o, c->gout);
    }
    double t = dv_bench_now() - t0;
    dv_release(o);
    if (c->backward) { dv_zero_grad(c->q); dv_zero_grad(c->k); dv_zero_grad(c->v); }
    dv_set_grad_enabled(prev);
    return t;
}

/* best seconds of one pass over at least 5 runs and min_s (dv_bench_time times whole calls; here
 * the backward must be timed without its forward, so the loop is our own, same best-of rule) */
static double time_pass(run_ctx *c, double min_s) {
    run_once(c); /* warm-up: allocator cache, page faults */
    double best = -1, spent = 0;
    for (int trial = 0; trial < 5 || spent < min_s; trial++) {
        double t0 = dv_bench_now(), t = run_once(c);
        spent += dv_bench_now() - t0;
        if (best < 0 || t < best) best = t;
    }
    return best;
}

/* peak bytes the allocator hands out during one run, above what was live before */
static int64_t peak_bytes(run_ctx *c) {
    dv_alloc_reset_peak();
    int64_t base = dv_alloc_get_stats().live_bytes;
    run_once(c);
    return dv_alloc_get_stats().peak_bytes - base;
}

/* visible (query, key) pairs per head: all, or the top-left causal triangle */
static double visible_pairs(const attn_shape *s) {
    if (!s->causal) return (double)s->Tq * (double)s->Tk;
    double n = 0;
    for (int64_t i = 0; i < s->Tq; i++) n += (double)(i + 1 < s->Tk ? i + 1 : s->Tk);
    return n;
}

/* prints the two lines of one shape; peak_out: the fused and the unfused forward + backward peak */
static void bench_shape(const attn_shape *s, double min_s, int64_t peak_out[2]) {
    dv_rng rng = dv_rng_new(42);
    run_ctx c = {.s = s, .rng = dv_rng_new(7)};
    c.q = dv_randn(&rng, DV_F32, DV_SHAPE(s->B, s->H, s->Tq, s->D));
    c.k = dv_randn(&rng, DV_F32, DV_SHAPE(s->B, s->H, s->Tk, s->D));
    c.v = dv_randn(&rng, DV_F32, DV_SHAPE(s->B, s->H, s->Tk, s->D));
    c.gout = dv_randn(&rng, DV_F32, DV_SHAPE(s->B, s->H, s->Tq, s->D));
    dv_set_requires_grad(c.q, true);
    dv_set_requires_grad(c.k, true);
    dv_set_requires_grad(c.v, true);
    if (s->causal) {
        c.mask = dv_zeros(DV_F32, DV_SHAPE(s->Tq, s->Tk));
        float *m = dv_data(c.mask);
        for (int64_t i = 0; i < s->Tq; i++)
            for (int64_t j = i + 1; j < s->Tk; j++) m[i * s->Tk + j] = -INFINITY;
    }
    const double fwd_flop = 4.0 * (double)s->D * visible_pairs(s) * (double)(s->B * s->H);
    double t[2][2];        /* [fused][pass]: forward, backward */
    int64_t peak[2][2];
    for (int f = 0; f < 2; f++)
        for (int b = 0; b < 2; b++) {
            c.fused = f == 0;
            c.backward = b == 1;
            t[f][b] = time_pass(&c, min_s);
            peak[f][b] = peak_bytes(&c);
        }
    char shape[96];
    char drop[24] = "";
    if (s->dropout > 0) snprintf(drop, sizeof drop, " drop %.1f", s->dropout);
    snprintf(shape, sizeof shape, "B%lld H%lld Tq%lld Tk%lld D%lld%s%s", (long long)s->B, (long long)s->H,
             (long long)s->Tq, (long long)s->Tk, (long long)s->D, s->causal ? " causal" : "", drop);
    for (int b = 0; b < 2; b++) {
        double tf = t[0][b], tu = t[1][b];
        double flop = b ? 2.5 * fwd_flop : fwd_flop;
        printf("%-15s %-42s %-4s %9.3f %8.1f %10.3f %8.1f %7.2fx %10.2f %10.2f\n", s->name, shape, b ? "bwd" : "fwd",
               tf * 1e3, flop / tf * 1e-9, tu * 1e3, flop / tu * 1e-9, tu / tf, peak[0][b] / 1048576.0,
               peak[1][b] / 1048576.0);
    }
    fflush(stdout);
    peak_out[0] = peak[0][1];
    peak_out[1] = peak[1][1];
    dv_release(c.q); dv_release(c.k); dv_release(c.v); dv_release(c.gout); dv_release(c.mask);
    dv_alloc_trim();
}

int dv_bench_attention(int argc, char **argv) {
    int threads = dv_bench_threads_arg(argc, argv);
    if (threads < 0) return 1;
    bool quick = false;
    for (int i = 1; i < argc; i++) quick |= !strcmp(argv[i], "--quick");
    if (threads > 0) omp_set_num_threads(threads);
    static const attn_shape shapes[] = {
        {"llama7b-prefix", 1, 32, 600, 600, 128, true, 0},
        {"diffuser-cross", 8, 8, 20, 2000, 24, false, 0},
        {"dit-cross", 64, 8, 8, 24, 32, false, 0},
        {"vit-self", 2, 6, 197, 197, 64, false, 0},
        {"llama7b-prefix", 1, 32, 600, 600, 128, true, 0.1},
        {"sweep T", 1, 8, 256, 256, 64, true, 0},
        {"sweep T", 1, 8, 512, 512, 64, true, 0},
        {"sweep T", 1, 8, 1024, 1024, 64, true, 0},
        {"sweep T", 1, 8, 2048, 2048, 64, true, 0},
    };
    const int n = quick ? 3 : (int)(sizeof shapes / sizeof shapes[0]);
    printf("attention, f32, %d threads: fused dv_attention vs unfused dv_matmul -> dv_softmax -> dv_matmul\n",
           omp_get_max_threads());
    printf("%-15s %-42s %-4s %9s %8s %10s %8s %8s %10s %10s\n", "case", "shape", "pass", "fused ms", "GFLOP/s",
           "unfused ms", "GFLOP/s", "speedup", "peak MiB", "unfused MiB");
    int64_t peaks[sizeof shapes / sizeof shapes[0]][2];
    for (int i = 0; i < n; i++) bench_shape(&shapes[i], quick ? 0.1 : 0.4, peaks[i]);
    printf("peak MiB: allocator peak during one call above the live inputs (fwd: forward without grad; "
           "bwd: forward + backward)\n");
    if (n > 6) { /* the sweep: how the forward + backward peak grows when T doubles */
        printf("peak memory growth per doubling of T (fwd + bwd), fused:");
        for (int i = 6; i < n; i++) printf(" x%.2f", (double)peaks[i][0] / (double)peaks[i - 1][0]);
        printf("; unfused:");
        for (int i = 6; i < n; i++) printf(" x%.2f", (double)peaks[i][1] / (double)peaks[i - 1][1]);
        printf("  (linear: x2, quadratic: x4)\n");
    }
    return 0;
}
