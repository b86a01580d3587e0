/* tests/test_dit_block.c — one adaLN-Zero DiT block composed from our modules and fused ops
 * (dv_nn_adaln_zero, dv_layer_norm_modulate, dv_mha with fused qkv, dv_gated_residual,
 * optional cross-attention, dv_linear_act with GELU-tanh) against PyTorch
 * (tests/reference/gen_dit_block.py): the output and the gradient of every input and every
 * parameter, with and without the cross-attention sub-layer, on both kernel sets. */
#include "kernels/cpu.h"
#include "nn/adaln.h"
#include "nn/bias_act.h"
#include "nn/mha.h"
#include "nn/modulate.h"
#include "tests/util.h"

#include <string.h>

enum { B = 2, T = 8, C = 32, H = 4, CC = 24, TK = 11, CX = 20 };

typedef struct {
    dv_registry reg;
    dv_nn_adaln_zero ada;
    dv_mha attn, cross;
    dv_nn_layer_norm norm_ca;
    dv_nn_mlp mlp;
} dit_block;

static void block_init(dit_block *b) {
    memset(b, 0, sizeof *b);
    dv_rng rng = dv_rng_new(11);
    dv_mha_init(&b->attn, &b->reg, "attn",
                (dv_mha_config){.dim = C, .n_heads = H, .fused_qkv = true, .qkv_bias = true, .out_bias = true, .out_name = "proj"},
                DV_F32, &rng);
    dv_mha_init(&b->cross, &b->reg, "cross_attn",
                (dv_mha_config){.dim = C, .kv_dim = CX, .n_heads = H, .qkv_bias = true, .out_bias = true}, DV_F32, &rng);
    dv_nn_layer_norm_init(&b->norm_ca, &b->reg, "norm_ca", C, 1e-6, true, true, DV_F32);
    dv_nn_mlp_init(&b->mlp, &b->reg, "mlp", C, 4 * C, C, DV_ACT_GELU_TANH, true, DV_F32, &rng);
    dv_nn_adaln_zero_init(&b->ada, &b->reg, "adaLN_modulation", C, CC, 6, DV_F32, &rng);
}

/* x (B, T, C), c (B, CC), ctx (B, TK, CX) or NULL -> (B, T, C) */
static dv_tensor *block_forward(dit_block *b, dv_tensor *x, dv_tensor *c, dv_tensor *ctx) {
    dv_pool pool = {0};
    dv_tensor *m[6]; /* shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp */
    dv_nn_adaln_zero_forward(&b->ada, c, m);
    for (int i = 0; i < 6; i++) dv_pool_add(&pool, m[i]);
    dv_tensor *h = dv_pool_add(&pool, dv_layer_norm_modulate(x, m[0], m[1], 1e-6));
    dv_tensor *a = dv_pool_add(&pool, dv_mha_forward(&b->attn, h, NULL, NULL, NULL));
    x = dv_pool_add(&pool, dv_gated_residual(x, m[2], a));
    if (ctx) {
        dv_tensor *n = dv_pool_add(&pool, dv_nn_layer_norm_forward(&b->norm_ca, x));
        dv_tensor *ca = dv_pool_add(&pool, dv_mha_forward(&b->cross, n, ctx, NULL, NULL));
        x = dv_pool_add(&pool, dv_add(x, ca));
    }
    dv_tensor *h2 = dv_pool_add(&pool, dv_layer_norm_modulate(x, m[3], m[4], 1e-6));
    dv_tensor *f = dv_pool_add(&pool, dv_linear_act(h2, b->mlp.fc1.weight, b->mlp.fc1.bias, DV_BIAS_ACT_GELU_TANH));
    dv_tensor *f2 = dv_pool_add(&pool, dv_nn_linear_forward(&b->mlp.fc2, f));
    dv_tensor *y = dv_gated_residual(x, m[5], f2);
    dv_pool_release(&pool);
    return y;
}

/* max |got - want| / max |want|; a NULL gradient counts as zeros */
static double grad_err(const dv_tensor *got, const dv_tensor *want) {
    if (got) return ut_max_rel_diff(got, want);
    double mx = 0;
    for (int64_t i = 0; i < dv_numel(want); i++) mx = fmax(mx, fabs(dv_flat_get(want, i)));
    return mx == 0 ? 0 : INFINITY;
}

static void check_case(ut_fixture_file *fx, const char *cas, bool cross) {
    char key[256];
    dit_block b;
    block_init(&b);
    /* the fixture's parameters, by registry name (every parameter must be there) */
    for (int i = 0; i < dv_reg_count(&b.reg); i++) {
        snprintf(key, sizeof key, "param.%s", dv_reg_name(&b.reg, i));
        dv_tensor *p = ut_fixture_get(fx, key), *dst = dv_reg_tensor(&b.reg, i);
        CHECK_MSG(p && dv_same_shape(p, dst), "dit_block: parameter %s missing or of another shape", key);
        if (p && dv_same_shape(p, dst)) dv_copy_(dst, p);
        dv_release(p);
    }
    const char *in_names[3] = {"x", "c", "ctx"};
    dv_tensor *in[3];
    for (int i = 0; i < 3; i++) { /* fresh leaves (the fixture file hands out shared tensors) */
        dv_tensor *t = ut_fixture_get(fx, in_names[i]);
        in[i] = dv_clone(t);
        dv_release(t);
        dv_set_requires_grad(in[i], true);
    }
    dv_tensor *y = block_forward(&b, in[0], in[1], cross ? in[2] : NULL);
    snprintf(key, sizeof key, "%s.out", cas);
    dv_tensor *want = ut_fixture_get(fx, key);
    double e = ut_max_rel_diff(y, want);
    CHECK_MSG(e <= 2e-5, "dit_block %s (%s): output differs from torch by %.3g", cas, dv_isa_name(dv_cpu_isa()), e);
    snprintf(key, sizeof key, "%s.gout", cas);
    dv_tensor *gout = ut_fixture_get(fx, key);
    dv_backward_with(y, gout);
    int checked = 0;
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof key, "%s.grad.%s", cas, in_names[i]);
        dv_tensor *g = ut_fixture_get(fx, key);
        e = grad_err(in[i]->grad, g);
        CHECK_MSG(e <= 5e-5, "dit_block %s: grad of %s differs from torch by %.3g", cas, in_names[i], e);
        checked++;
        dv_release(g);
    }
    for (int i = 0; i < dv_reg_count(&b.reg); i++) {
        snprintf(key, sizeof key, "%s.grad.%s", cas, dv_reg_name(&b.reg, i));
        dv_tensor *g = ut_fixture_get(fx, key);
        e = g ? grad_err(dv_reg_tensor(&b.reg, i)->grad, g) : INFINITY;
        CHECK_MSG(e <= 5e-5, "dit_block %s: grad of %s differs from torch by %.3g", cas, dv_reg_name(&b.reg, i), e);
        checked++;
        dv_release(g);
    }
    CHECK(checked == 3 + 20); /* x, c, ctx and the 20 parameters */
    dv_release(y), dv_release(want), dv_release(gout);
    for (int i = 0; i < 3; i++) dv_release(in[i]);
    dv_reg_free(&b.reg);
}

TEST(dit_block_fixture) {
    ut_fixture_file *fx = ut_fixture_open("tests/reference/dit_block.bin");
    if (!fx) return;
    for (int isa = 1; isa >= 0; isa--) {
        if (isa == DV_ISA_AVX512 && !dv_cpu_has_avx512()) continue;
        dv_isa prev = dv_cpu_isa();
        dv_cpu_set_isa((dv_isa)isa);
        check_case(fx, "cross", true);
        check_case(fx, "nocross", false);
        dv_cpu_set_isa(prev);
    }
    ut_fixture_close(fx);
}

/* adaLN-Zero at init: the gates are zero, so the block is the identity */
TEST(dit_block_zero_init_is_identity) {
    dit_block b;
    block_init(&b);
    dv_tensor *x = ut_randn(DV_F32, DV_SHAPE(B, T, C), 1), *c = ut_randn(DV_F32, DV_SHAPE(B, CC), 2);
    dv_tensor *y = block_forward(&b, x, c, NULL);
    CHECK(ut_max_rel_diff(y, x) == 0.0);
    dv_release(x), dv_release(c), dv_release(y);
    dv_reg_free(&b.reg);
}
