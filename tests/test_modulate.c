/* tests/test_modulate.c — adaLN modulate, layer norm + modulate, gated residual, FiLM:
 * f64 gradients to every input (incl. non-contiguous), AVX-512 vs portable, PyTorch fixtures. */
#include "nn/modulate.h"
#include "kernels/cpu.h"
#include "tests/util.h"

static dv_tensor *run_mod(dv_tensor **in, void *ctx) { return dv_modulate(in[0], in[1], in[2]); }
static dv_tensor *run_ln(dv_tensor **in, void *ctx) { return dv_layer_norm_modulate(in[0], in[1], in[2], 1e-6); }
static dv_tensor *run_gate(dv_tensor **in, void *ctx) { return dv_gated_residual(in[0], in[1], in[2]); }
static dv_tensor *run_film(dv_tensor **in, void *ctx) { return dv_film(in[0], in[1], in[2]); }

typedef struct { const char *name; dv_test_op op; bool third_is_tokens; } mod_case;
static const mod_case k_cases[] = {
    {"modulate", run_mod, false}, {"ln_modulate", run_ln, false}, {"gated_residual", run_gate, true}, {"film", run_film, false},
};

static void make_inputs(dv_dtype dt, const mod_case *c, int64_t B, int64_t T, int64_t C, uint64_t seed, dv_tensor **in) {
    in[0] = ut_randn_leaf(dt, DV_SHAPE(B, T, C), seed);
    in[1] = ut_randn_leaf(dt, DV_SHAPE(B, C), seed + 1);
    in[2] = c->third_is_tokens ? ut_randn_leaf(dt, DV_SHAPE(B, T, C), seed + 2) : ut_randn_leaf(dt, DV_SHAPE(B, C), seed + 2);
}

TEST(modulate_gradcheck) {
    for (int k = 0; k < 4; k++) {
        dv_tensor *in[3], *nc[3];
        make_inputs(DV_F64, &k_cases[k], 2, 3, 7, 10 * k + 1, in);
        ut_gradcheck(k_cases[k].name, k_cases[k].op, in, 3, NULL, 1e-6);
        for (int i = 0; i < 3; i++) nc[i] = ut_noncontig(in[i]);
        ut_gradcheck(k_cases[k].name, k_cases[k].op, nc, 3, NULL, 1e-6);
        /* only some inputs want a gradient */
        dv_set_requires_grad(in[0], false);
        ut_gradcheck(k_cases[k].name, k_cases[k].op, in, 3, NULL, 1e-6);
        for (int i = 0; i < 3; i++) { dv_release(in[i]); dv_release(nc[i]); }
    }
}

TEST(modulate_parity) {
    int64_t Cs[3] = {37, 64, 5};
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 3; j++) {
            dv_tensor *in[3];
            make_inputs(DV_F32, &k_cases[k], 3, 9, Cs[j], 100 + 10 * k + j, in);
            ut_parity(k_cases[k].name, k_cases[k].op, in, 3, NULL, 2e-5);
            for (int i = 0; i < 3; i++) dv_release(in[i]);
        }
}

TEST(modulate_fixtures) {
    const char *names[4] = {"modulate", "ln_modulate", "gated_residual", "film"};
    for (int isa = 1; isa >= 0; isa--) {
        if (isa == DV_ISA_AVX512 && !dv_cpu_has_avx512()) continue;
        dv_isa prev = dv_cpu_isa();
        dv_cpu_set_isa((dv_isa)isa);
        for (int k = 0; k < 4; k++) ut_fixture("rotary.bin", names[k], k_cases[k].op, NULL, 1e-5);
        dv_cpu_set_isa(prev);
    }
}

static void bad_shape(void *ctx) {
    dv_tensor *x = dv_zeros(DV_F32, DV_SHAPE(2, 3, 4)), *s = dv_zeros(DV_F32, DV_SHAPE(2, 5));
    dv_release(dv_modulate(x, s, s));
}

TEST(modulate_edges) {
    for (int k = 0; k < 4; k++) {
        dv_tensor *in[3];
        in[0] = dv_zeros(DV_F32, DV_SHAPE(2, 0, 4));
        in[1] = ut_randn_leaf(DV_F32, DV_SHAPE(2, 4), 1);
        in[2] = k_cases[k].third_is_tokens ? dv_zeros(DV_F32, DV_SHAPE(2, 0, 4)) : ut_randn_leaf(DV_F32, DV_SHAPE(2, 4), 2);
        dv_tensor *y = k_cases[k].op(in, NULL);
        CHECK(dv_numel(y) == 0);
        /* no tokens: the parameter gradients are zero */
        dv_tensor *s = dv_sum_all(y);
        dv_backward(s);
        CHECK(in[1]->grad == NULL || fabs(dv_flat_get(in[1]->grad, 0)) == 0);
        dv_release(s); dv_release(y);
        for (int i = 0; i < 3; i++) dv_release(in[i]);
    }
    CHECK(ut_aborts_with(bad_shape, NULL, "modulate"));
}
