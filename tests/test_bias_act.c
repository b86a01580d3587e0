/* tests/test_bias_act.c — fused bias + activation: f64 gradients (with / without bias,
 * non-contiguous, partial wants), AVX-512 vs portable, PyTorch fixtures
 * (tests/reference/gen_bias_act.py), equality with the unfused ops, a bias gradient that is
 * bitwise the same for any thread count, edges and bad calls. */
#include "nn/bias_act.h"
#include "kernels/cpu.h"
#include "tests/util.h"

#include <omp.h>
#include <string.h>

static dv_tensor *run_ba(dv_tensor **in, void *ctx) { return dv_bias_act(in[0], in[1], *(dv_bias_act_kind *)ctx); }
static dv_tensor *run_ba_nobias(dv_tensor **in, void *ctx) { return dv_bias_act(in[0], NULL, *(dv_bias_act_kind *)ctx); }

TEST(bias_act_gradcheck) {
    for (int a = 0; a < DV_BIAS_ACT_COUNT; a++) {
        dv_bias_act_kind act = (dv_bias_act_kind)a;
        dv_tensor *in[2] = {ut_randn_leaf(DV_F64, DV_SHAPE(2, 3, 19), 1 + a), ut_randn_leaf(DV_F64, DV_SHAPE(19), 20 + a)};
        ut_gradcheck(dv_bias_act_name(act), run_ba, in, 2, &act, 1e-6);
        dv_tensor *nc[2] = {ut_noncontig(in[0]), ut_noncontig(in[1])};
        ut_gradcheck(dv_bias_act_name(act), run_ba, nc, 2, &act, 1e-6);
        ut_gradcheck(dv_bias_act_name(act), run_ba_nobias, in, 1, &act, 1e-6);
        dv_set_requires_grad(in[0], false); /* only the bias wants a gradient */
        ut_gradcheck(dv_bias_act_name(act), run_ba, in, 2, &act, 1e-6);
        for (int i = 0; i < 2; i++) dv_release(in[i]), dv_release(nc[i]);
    }
}

TEST(bias_act_parity) {
    /* N: a tail only, one full vector, full + tail; the last case is big enough for threads */
    int64_t shapes[4][2] = {{7, 5}, {9, 16}, {11, 37}, {2000, 40}};
    for (int a = 0; a < DV_BIAS_ACT_COUNT; a++)
        for (int s = 0; s < 4; s++) {
            dv_bias_act_kind act = (dv_bias_act_kind)a;
            dv_tensor *in[2] = {ut_randn_leaf(DV_F32, DV_SHAPE(shapes[s][0], shapes[s][1]), 100 + a * 10 + s),
                                ut_randn_leaf(DV_F32, DV_SHAPE(shapes[s][1]), 200 + a * 10 + s)};
            ut_parity(dv_bias_act_name(act), run_ba, in, 2, &act, 2e-5);
            dv_release(in[0]), dv_release(in[1]);
        }
}

TEST(bias_act_fixtures) {
    for (int isa = 1; isa >= 0; isa--) {
        if (isa == DV_ISA_AVX512 && !dv_cpu_has_avx512()) continue;
        dv_isa prev = dv_cpu_isa();
        dv_cpu_set_isa((dv_isa)isa);
        for (int a = 0; a < DV_BIAS_ACT_COUNT; a++) {
            dv_bias_act_kind act = (dv_bias_act_kind)a;
            ut_fixture("bias_act.bin", dv_bias_act_name(act), run_ba, &act, 1e-5);
        }
        dv_bias_act_kind silu = DV_BIAS_ACT_SILU;
        ut_fixture("bias_act.bin", "silu_nobias", run_ba_nobias, &silu, 1e-5);
        dv_cpu_set_isa(prev);
    }
}

TEST(bias_act_matches_unfused) {
    dv_act acts[5] = {DV_ACT_GELU, DV_ACT_GELU_TANH, DV_ACT_QUICK_GELU, DV_ACT_SILU, DV_ACT_RELU};
    dv_tensor *x = ut_randn(DV_F64, DV_SHAPE(4, 6, 10), 1), *b = ut_randn(DV_F64, DV_SHAPE(10), 2);
    dv_tensor *w = ut_randn(DV_F64, DV_SHAPE(10, 12), 3), *x2 = ut_randn(DV_F64, DV_SHAPE(5, 12), 4);
    for (int i = 0; i < 5; i++) {
        dv_tensor *z = dv_add(x, b), *want = dv_nn_act(acts[i], z), *got = dv_bias_act(x, b, dv_bias_act_of(acts[i]));
        ut_check_tensor("bias_act vs add + act", got, want, 1e-14);
        dv_tensor *h = dv_linear(x2, w, b), *want2 = dv_nn_act(acts[i], h);
        dv_tensor *got2 = dv_linear_act(x2, w, b, dv_bias_act_of(acts[i]));
        ut_check_tensor("linear_act vs linear + act", got2, want2, 1e-13);
        dv_release(z), dv_release(want), dv_release(got), dv_release(h), dv_release(want2), dv_release(got2);
    }
    dv_release(x), dv_release(b), dv_release(w), dv_release(x2);
}

/* dv_linear_act in inference (f32 on AVX-512: one GEMM with the bias and activation in its
 * epilogue) gives what the autograd path (GEMM, then bias_act) gives, on the packed, broadcast
 * and dot GEMM paths */
TEST(linear_act_inference_fused) {
    static const int64_t k_rows[] = {197, 16, 3};
    for (int r = 0; r < 3; r++)
        for (int a = 1; a < DV_BIAS_ACT_COUNT; a++) {
            dv_tensor *x = ut_randn_leaf(DV_F32, DV_SHAPE(k_rows[r], 40), 10 + r);
            dv_tensor *w = ut_randn(DV_F32, DV_SHAPE(70, 40), 20), *b = ut_randn(DV_F32, DV_SHAPE(70), 21);
            dv_tensor *train = dv_linear_act(x, w, b, (dv_bias_act_kind)a), *infer;
            CHECK(train->grad_fn != NULL); /* recorded: the unfused path */
            DV_NO_GRAD_BEGIN
            infer = dv_linear_act(x, w, b, (dv_bias_act_kind)a);
            DV_NO_GRAD_END
            CHECK(infer->grad_fn == NULL);
            ut_check_tensor("linear_act inference vs training path", infer, train, 1e-5);
            dv_release(x), dv_release(w), dv_release(b), dv_release(train), dv_release(infer);
        }
}

/* the bias gradient does not depend on the thread count (fixed row blocks) */
TEST(bias_act_bias_grad_deterministic) {
    int prev = omp_get_max_threads();
    float gb[2][48];
    for (int k = 0; k < 2; k++) {
        omp_set_num_threads(k == 0 ? 1 : 3);
        dv_tensor *x = ut_randn(DV_F32, DV_SHAPE(4000, 48), 5), *b = ut_randn_leaf(DV_F32, DV_SHAPE(48), 6);
        dv_tensor *y = dv_bias_act(x, b, DV_BIAS_ACT_GELU_TANH);
        dv_tensor *s = dv_sum_all(y);
        dv_backward(s);
        memcpy(gb[k], dv_data(b->grad), sizeof gb[k]);
        dv_release(s), dv_release(y), dv_release(x), dv_release(b);
    }
    omp_set_num_threads(prev);
    CHECK(memcmp(gb[0], gb[1], sizeof gb[0]) == 0);
}

static void bad_bias(void *ctx) {
    dv_tensor *x = dv_zeros(DV_F32, DV_SHAPE(2, 3)), *b = dv_zeros(DV_F32, DV_SHAPE(4));
    dv_release(dv_bias_act(x, b, DV_BIAS_ACT_RELU));
}

TEST(bias_act_edges) {
    dv_tensor *x = ut_randn_leaf(DV_F32, DV_SHAPE(0, 5), 1), *b = ut_randn_leaf(DV_F32, DV_SHAPE(5), 2);
    dv_tensor *y = dv_bias_act(x, b, DV_BIAS_ACT_SILU), *s = dv_sum_all(y);
    CHECK(dv_numel(y) == 0);
    dv_backward(s);
    CHECK(b->grad && dv_flat_get(b->grad, 0) == 0.0 && dv_flat_get(b->grad, 4) == 0.0);
    dv_release(s), dv_release(y), dv_release(x), dv_release(b);
    CHECK(ut_aborts_with(bad_bias, NULL, "bias_act"));
}
