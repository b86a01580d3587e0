/* tests/cuda/test_cuda_attention.c — dv_attention on cuda:0 against the same op on the CPU, for
 * what the CUDA path gained after its first version (test_cuda_nn.c has the plain cases):
 *   head dims      D, Dv any up to 128 (12, 40, 72, 100, D != Dv): tensor/cuda.c pads them to a
 *                  common multiple of 8 with zeros in the bf16 copies
 *   dropout        p = 0.1 and 0.3, with the causal mask, GQA and key padding: the GPU draws
 *                  kernels/attention.h's mask (dv_attn_drop_*), so forward and gradients agree
 *                  to the bf16 tolerance; and the mask itself read back (q = 0, v = identity)
 *   additive bias  shapes (Tk), (Tq, Tk), (B, 1, Tq, Tk), (B, Hq, Tq, Tk), with -inf entries,
 *                  its gradient (summed over the rows when the bias broadcasts over them)
 * Forward and backward through autograd on both sides (tc_graph_parity), inputs exactly bf16 so
 * both sides see the same q, k, v. Tolerance 3e-2 (relative, max(1, |x|) scaled), as
 * test_cuda_nn.c's attention: bf16 tensor cores and a bf16 P V against f32 on the CPU; the
 * forward's O stays f32. Under `make test-cuda-sim` every case passes at 1.5e-2 with the
 * CUDA-core backward (DV_CUDA_ATTN_BWD=cores: Dr, dP, dS all f32); with the tensor-core
 * backward (the default: dO, Z P, dS rounded to bf16 for the mma) the sharp scale-0.3 cases
 * reach 1.9e-2 — an element's error follows the sum of |dS q| over the rows, not its own size.
 * A wrong mask, a wrong bias element or a padded column that leaks gives
 * O(1) differences (each such mutation of the kernels fails these tests).
 */
#ifdef DV_HAVE_CUDA
#include "tests/cuda/cuda_util.h"

#include "kernels/attention.h"
#include "nn/attention.h"
#include "tensor/ops.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static dv_attention_opts g_opts;
static dv_tensor *g_keep[2]; /* the key padding mask on the CPU [0] and the device [1], or NULL */

/* in: q, k, v and, when there are 4, the bias */
static dv_tensor *attn3(dv_tensor **in) {
    dv_attention_opts o = g_opts;
    o.key_padding_mask = g_keep[in[0]->device.type == DV_CUDA];
    return dv_attention(in[0], in[1], in[2], &o);
}
static dv_tensor *attn4(dv_tensor **in) {
    dv_attention_opts o = g_opts;
    o.key_padding_mask = g_keep[in[0]->device.type == DV_CUDA];
    o.bias = in[3];
    return dv_attention(in[0], in[1], in[2], &o);
}

/* f32 values that are exactly bf16, so both sides see the same inputs */
static dv_tensor *bf16_exact(dv_rng *r, const int64_t *shape, int nd) {
    dv_tensor *a = dv_randn(r, DV_F32, shape, nd), *b = dv_cast(a, DV_BF16), *c = dv_cast(b, DV_F32);
    dv_release(a), dv_release(b);
    return c;
}

/* key padding (B, Tk): batch 0 drops every third key, the others keep all */
static void set_keep(int64_t B, int64_t Tk) {
    g_keep[0] = dv_zeros(DV_U8, DV_SHAPE(B, Tk));
    uint8_t *kp = dv_data(g_keep[0]);
    for (int64_t i = 0; i < B * Tk; i++) kp[i] = !(i < Tk && i % 3 == 1);
    g_keep[1] = dv_tensor_to(g_keep[0], dv_device_cuda(0));
}
static void clear_keep(void) {
    dv_release(g_keep[0]), dv_release(g_keep[1]);
    g_keep[0] = g_keep[1] = NULL;
}

typedef struct {
    int64_t B, Hq, Hkv, Tq, Tk, D, Dv;
} shape7;

static void run_case(const char *what, shape7 s, dv_tensor *bias, uint64_t seed) {
    dv_rng r = dv_rng_new(seed);
    dv_tensor *q = bf16_exact(&r, DV_SHAPE(s.B, s.Hq, s.Tq, s.D));
    dv_tensor *k = bf16_exact(&r, DV_SHAPE(s.B, s.Hkv, s.Tk, s.D));
    dv_tensor *v = bf16_exact(&r, DV_SHAPE(s.B, s.Hkv, s.Tk, s.Dv));
    char name[200];
    snprintf(name, sizeof name, "%s: B %lld Hq %lld Hkv %lld Tq %lld Tk %lld D %lld Dv %lld causal %d keep %d p %.2f",
             what, (long long)s.B, (long long)s.Hq, (long long)s.Hkv, (long long)s.Tq, (long long)s.Tk, (long long)s.D,
             (long long)s.Dv, g_opts.causal, g_keep[0] != NULL, g_opts.dropout);
    if (bias) tc_graph_parity(name, attn4, (dv_tensor *[]){q, k, v, bias}, 4, 3e-2);
    else tc_graph_parity(name, attn3, (dv_tensor *[]){q, k, v}, 3, 3e-2);
    dv_release(q), dv_release(k), dv_release(v);
}

/* any head width up to 128, D != Dv; the scale stays 1 / sqrt(D) of the real D */
TEST(cuda_attention_head_dims) {
    const int64_t dims[][2] = {{12, 12}, {40, 40}, {72, 72}, {100, 100}, {24, 40}, {64, 12}, {128, 100}, {3, 5}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        shape7 s = {2, 4, 2, 33, 47, dims[i][0], dims[i][1]};
        g_opts = (dv_attention_opts){0};
        run_case("head dims", s, NULL, 100 + i);
        g_opts.causal = true, g_opts.causal_offset = s.Tk - s.Tq;
        set_keep(s.B, s.Tk);
        run_case("head dims", s, NULL, 120 + i);
        clear_keep();
        /* a given scale is used as is (not 1 / sqrt of the padded width); 0.3 at D = 100 gives
         * scores of std 3, a sharp softmax: the backward's Dr = dO . O must use the forward's f32
         * O (a bf16-rounded O moves even the CPU's own dq, dk by 4e-2) */
        g_opts.causal = false, g_opts.scale = 0.3;
        run_case("head dims, scale 0.3", s, NULL, 140 + i);
    }
}

/* dropout on the weights: the same mask on both sides, so the same outputs and gradients */
TEST(cuda_attention_dropout_matches_cpu) {
    const double ps[2] = {0.1, 0.3};
    for (int pi = 0; pi < 2; pi++) {
        g_opts = (dv_attention_opts){.dropout = ps[pi], .dropout_seed = 0x1234567890abcdefull + pi};
        run_case("dropout", (shape7){2, 2, 2, 40, 53, 32, 32}, NULL, 200 + pi);
        g_opts.causal = true; /* self-attention, causal */
        run_case("dropout", (shape7){1, 3, 3, 70, 70, 16, 16}, NULL, 210 + pi);
        g_opts.causal = false; /* GQA, key padding, head width 12 */
        set_keep(2, 37);
        run_case("dropout", (shape7){2, 4, 2, 21, 37, 12, 12}, NULL, 220 + pi);
        clear_keep();
        g_opts.causal = true, g_opts.causal_offset = 5; /* decode-like offset, MQA, D != Dv */
        run_case("dropout", (shape7){1, 4, 1, 9, 14, 40, 24}, NULL, 230 + pi);
    }
}

/* q = 0: every weight of a row is 1/Tk; v = identity (Dv = Tk): output row i is Z[i, :] / Tk.
 * Zero exactly where kernels/attention.h drops the weight, 1 / ((1 - p) Tk) (to bf16) where it
 * keeps it — the GPU's mask read back, element by element. */
TEST(cuda_attention_dropout_mask_is_the_cpu_mask) {
    const int64_t B = 2, H = 3, T = 70, Tk = 96;
    const double p = 0.3;
    const uint64_t seed = 987654321;
    dv_tensor *q = dv_zeros(DV_F32, DV_SHAPE(B, H, T, 8));
    dv_rng r = dv_rng_new(5);
    dv_tensor *k = dv_randn(&r, DV_F32, DV_SHAPE(B, H, Tk, 8)), *v = dv_zeros(DV_F32, DV_SHAPE(B, H, Tk, Tk));
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t j = 0; j < Tk; j++) dv_set(v, (int64_t[]){b, h, j, j}, 1.0);
    dv_tensor *qd = dv_tensor_to(q, dv_device_cuda(0)), *kd = dv_tensor_to(k, dv_device_cuda(0));
    dv_tensor *vd = dv_tensor_to(v, dv_device_cuda(0));
    dv_attention_opts o = {.dropout = p, .dropout_seed = seed};
    dv_tensor *yd = dv_attention(qd, kd, vd, &o), *y = dv_tensor_to(yd, DV_DEVICE_CPU);
    const uint32_t thr = dv_attn_drop_threshold(p);
    int64_t wrong = 0, kept = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < T; i++) {
                uint32_t row = dv_attn_drop_row(seed, b, h, i);
                for (int64_t j = 0; j < Tk; j++) {
                    double got = dv_get(y, (int64_t[]){b, h, i, j});
                    bool keep = dv_attn_drop_hash(row, (uint32_t)j) >= thr;
                    double want = keep ? 1.0 / (1.0 - p) / Tk : 0.0;
                    bool ok = keep ? fabs(got - want) <= 1e-2 * want : got == 0.0;
                    if (!ok && wrong < 3)
                        dv_test_fail(__FILE__, __LINE__, "mask (b %lld, h %lld, i %lld, j %lld): gpu %.6g, want %.6g",
                                     (long long)b, (long long)h, (long long)i, (long long)j, got, want);
                    wrong += !ok;
                    kept += keep;
                }
            }
    CHECK_MSG(wrong == 0, "%lld of %lld weights differ from kernels/attention.h's mask", (long long)wrong,
              (long long)(B * H * T * Tk));
    CHECK(kept > 0 && kept < B * H * T * Tk);
    dv_release(q), dv_release(k), dv_release(v), dv_release(qd), dv_release(kd), dv_release(vd);
    dv_release(yd), dv_release(y);
}

/* the additive bias in every broadcast shape, with and without the causal mask, and with
 * dropout; -inf entries (a fully masked row among them) send no gradient */
TEST(cuda_attention_bias_matches_cpu) {
    const int64_t B = 2, Hq = 4, Hkv = 2, Tq = 29, Tk = 41;
    const int64_t shapes[4][4] = {{Tk}, {Tq, Tk}, {B, 1, Tq, Tk}, {B, Hq, Tq, Tk}};
    const int nds[4] = {1, 2, 4, 4};
    for (int si = 0; si < 4; si++) {
        dv_rng r = dv_rng_new(300 + si);
        dv_tensor *bias = dv_randn(&r, DV_F32, shapes[si], nds[si]);
        float *bp = dv_data(bias);
        int64_t n = dv_numel(bias);
        for (int64_t x = 3; x < n; x += 17) bp[x] = -INFINITY;
        if (nds[si] == 2)
            for (int64_t j = 0; j < Tk; j++) bp[5 * Tk + j] = -INFINITY; /* row 5 sees no key */
        for (int mode = 0; mode < 3; mode++) {
            g_opts = (dv_attention_opts){0};
            if (mode == 1) g_opts.causal = true;
            if (mode == 2) g_opts.dropout = 0.2, g_opts.dropout_seed = 77, set_keep(B, Tk);
            char what[64];
            snprintf(what, sizeof what, "bias of %d dims, shape %d", nds[si], si);
            /* the (Tk) bias's gradient sums dS over all B Hq Tq = 232 rows */
            run_case(what, (shape7){B, Hq, Hkv, Tq, Tk, 40, 40}, bias, 310 + 3 * si + mode);
            clear_keep();
        }
        dv_release(bias);
    }
    /* a bias with head width 12 and D != Dv */
    dv_rng r = dv_rng_new(330);
    dv_tensor *bias = dv_randn(&r, DV_F32, DV_SHAPE(1, Hq, 1, Tk)); /* broadcast over the rows */
    g_opts = (dv_attention_opts){.causal = true, .causal_offset = Tk - Tq};
    run_case("bias (1, Hq, 1, Tk)", (shape7){B, Hq, Hkv, Tq, Tk, 12, 20}, bias, 331);
    dv_release(bias);
}
#endif
