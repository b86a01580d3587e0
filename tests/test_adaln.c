/* tests/test_adaln.c — 3D Diffuser Actor's AdaLN and step + gripper conditioning (PyTorch
 * fixtures from tests/reference/gen_timestep.py, f64 gradients), DiT's adaLN-Zero vectors
 * (zero init, chunk order, gradients), registry names. */
#include "nn/adaln.h"
#include "tests/util.h"

/* in: x (N, B, C) or (B, N, C), cond, w (2C, Cc), b (2C) */
static dv_tensor *run_adaln_seq(dv_tensor **in, void *ctx) {
    dv_nn_adaln a = {.modulation = {.weight = in[2], .bias = in[3]}, .dim = in[0]->shape[2]};
    return dv_nn_adaln_forward_seq_first(&a, in[0], in[1]);
}
static dv_tensor *run_adaln(dv_tensor **in, void *ctx) {
    dv_nn_adaln a = {.modulation = {.weight = in[2], .bias = in[3]}, .dim = in[0]->shape[2]};
    return dv_nn_adaln_forward(&a, in[0], in[1]);
}

/* in: t, gripper, then time fc1 w/b, fc2 w/b, gripper fc1 w/b, fc2 w/b */
static dv_tensor *run_cond(dv_tensor **in, void *ctx) {
    dv_nn_adaln_cond e = {.time_fc1 = {in[2], in[3]}, .time_fc2 = {in[4], in[5]}, .grip_fc1 = {in[6], in[7]},
                          .grip_fc2 = {in[8], in[9]}, .dim = in[1]->shape[2], .nhist = in[1]->shape[1]};
    return dv_nn_adaln_cond_forward(&e, in[0], in[1]);
}

/* in: c (B, Cc), w (n C, Cc), b (n C); the n vectors concatenated back */
static dv_tensor *run_zero(dv_tensor **in, void *ctx) {
    int n = *(int *)ctx;
    dv_nn_adaln_zero m = {.linear = {in[1], in[2]}, .dim = in[1]->shape[0] / n, .n = n};
    dv_tensor *v[DV_ADALN_ZERO_MAX];
    dv_nn_adaln_zero_forward(&m, in[0], v);
    dv_tensor *y = dv_concat(v, n, -1);
    for (int i = 0; i < n; i++) dv_release(v[i]);
    return y;
}

TEST(adaln_fixtures) {
    ut_fixture("timestep.bin", "dda_adaln", run_adaln_seq, NULL, 1e-5);
    ut_fixture("timestep.bin", "dda_adaln_cond", run_cond, NULL, 2e-5);
}

TEST(adaln_gradcheck) {
    dv_tensor *in[4];
    in[0] = ut_randn_leaf(DV_F64, DV_SHAPE(4, 2, 6), 1);
    in[1] = ut_randn_leaf(DV_F64, DV_SHAPE(2, 5), 2);
    in[2] = ut_randn_leaf(DV_F64, DV_SHAPE(12, 5), 3);
    in[3] = ut_randn_leaf(DV_F64, DV_SHAPE(12), 4);
    ut_gradcheck("adaln_seq_first", run_adaln_seq, in, 4, NULL, 1e-6);
    /* batch-first on the transposed input is the same numbers, transposed */
    dv_tensor *xb = dv_transpose(in[0], 0, 1);
    dv_tensor *yb = run_adaln((dv_tensor *[]){xb, in[1], in[2], in[3]}, NULL);
    dv_tensor *ys = run_adaln_seq(in, NULL);
    dv_tensor *yt = dv_transpose(yb, 0, 1);
    ut_check_tensor("adaln batch-first vs seq-first", yt, ys, 1e-14);
    dv_release(xb), dv_release(yb), dv_release(ys), dv_release(yt);
    for (int i = 0; i < 4; i++) dv_release(in[i]);

    dv_tensor *c[10];
    int64_t C = 4, H = 2, B = 2;
    c[0] = dv_from_f64(DV_I64, DV_SHAPE(2), (double[]){3, 77});
    c[1] = ut_randn_leaf(DV_F64, DV_SHAPE(B, H, C), 10);
    c[2] = ut_randn_leaf(DV_F64, DV_SHAPE(C, C), 11), c[3] = ut_randn_leaf(DV_F64, DV_SHAPE(C), 12);
    c[4] = ut_randn_leaf(DV_F64, DV_SHAPE(C, C), 13), c[5] = ut_randn_leaf(DV_F64, DV_SHAPE(C), 14);
    c[6] = ut_randn_leaf(DV_F64, DV_SHAPE(C, H * C), 15), c[7] = ut_randn_leaf(DV_F64, DV_SHAPE(C), 16);
    c[8] = ut_randn_leaf(DV_F64, DV_SHAPE(C, C), 17), c[9] = ut_randn_leaf(DV_F64, DV_SHAPE(C), 18);
    ut_gradcheck("adaln_cond", run_cond, c, 10, NULL, 1e-6);
    for (int i = 0; i < 10; i++) dv_release(c[i]);
}

TEST(adaln_registry_and_identity_init) {
    dv_registry reg = {0};
    dv_rng rng = dv_rng_new(3);
    dv_reg_push(&reg, "prediction_head");
    dv_nn_adaln_cond cond;
    dv_nn_adaln_cond_init(&cond, &reg, NULL, 8, 3, DV_F32, &rng);
    dv_nn_adaln ad;
    dv_nn_adaln_init(&ad, &reg, "cross_attn.attn_layers.0.adaln", 8, 8, DV_F32, &rng);
    dv_reg_pop(&reg);
    const char *names[] = {"prediction_head.time_emb.1.weight", "prediction_head.time_emb.3.bias",
                           "prediction_head.curr_gripper_emb.0.weight", "prediction_head.curr_gripper_emb.2.bias",
                           "prediction_head.cross_attn.attn_layers.0.adaln.modulation.1.weight"};
    for (int i = 0; i < 5; i++) CHECK_MSG(dv_reg_find(&reg, names[i]) >= 0, "missing %s", names[i]);
    CHECK(dv_reg_count(&reg) == 10);
    CHECK(cond.grip_fc1.weight->shape[0] == 8 && cond.grip_fc1.weight->shape[1] == 24);
    /* zero-initialised modulation: AdaLN starts as the identity */
    dv_tensor *x = ut_randn(DV_F32, DV_SHAPE(5, 2, 8), 7);
    dv_tensor *g = ut_randn(DV_F32, DV_SHAPE(2, 3, 8), 8);
    dv_tensor *t = dv_from_f64(DV_I64, DV_SHAPE(2), (double[]){5, 60});
    dv_tensor *cv = dv_nn_adaln_cond_forward(&cond, t, g);
    CHECK(cv->ndim == 2 && cv->shape[0] == 2 && cv->shape[1] == 8);
    dv_tensor *y = dv_nn_adaln_forward_seq_first(&ad, x, cv);
    CHECK(ut_max_rel_diff(y, x) == 0.0);
    dv_release(x), dv_release(g), dv_release(t), dv_release(cv), dv_release(y);
    dv_reg_free(&reg);
}

TEST(adaln_zero_vectors) {
    dv_registry reg = {0};
    dv_rng rng = dv_rng_new(4);
    dv_nn_adaln_zero m;
    dv_nn_adaln_zero_init(&m, &reg, "adaLN_modulation", 8, 5, 6, DV_F32, &rng);
    CHECK(dv_reg_find(&reg, "adaLN_modulation.1.weight") == 0 && dv_reg_find(&reg, "adaLN_modulation.1.bias") == 1);
    CHECK(m.linear.weight->shape[0] == 48 && m.linear.weight->shape[1] == 5);
    dv_tensor *c = ut_randn(DV_F32, DV_SHAPE(3, 5), 1), *v[6];
    dv_nn_adaln_zero_forward(&m, c, v);
    for (int i = 0; i < 6; i++) {
        CHECK(v[i]->shape[0] == 3 && v[i]->shape[1] == 8);
        for (int64_t k = 0; k < 24; k++) CHECK(dv_flat_get(v[i], k) == 0.0); /* zero init */
        dv_release(v[i]);
    }
    /* with weights: vector i is columns [i C, (i + 1) C) of linear(silu(c)) */
    dv_init_normal(&rng, m.linear.weight, 0, 1);
    dv_init_normal(&rng, m.linear.bias, 0, 1);
    dv_nn_adaln_zero_forward(&m, c, v);
    dv_tensor *s = dv_silu(c), *full = dv_linear(s, m.linear.weight, m.linear.bias);
    for (int i = 0; i < 6; i++) {
        dv_tensor *want = dv_slice(full, 1, 8 * i, 8 * (i + 1), 1);
        ut_check_tensor("adaln_zero chunk", v[i], want, 0);
        dv_release(want), dv_release(v[i]);
    }
    dv_release(s), dv_release(full), dv_release(c);
    dv_reg_free(&reg);

    int n = 2;
    dv_tensor *in[3] = {ut_randn_leaf(DV_F64, DV_SHAPE(2, 3), 1), ut_randn_leaf(DV_F64, DV_SHAPE(8, 3), 2),
                        ut_randn_leaf(DV_F64, DV_SHAPE(8), 3)};
    ut_gradcheck("adaln_zero", run_zero, in, 3, &n, 1e-6);
    for (int i = 0; i < 3; i++) dv_release(in[i]);
}
