/* tests/test_timestep.c — sinusoidal timestep embeddings (diffusers, DiT, 3D Diffuser Actor
 * conventions) and DiT's TimestepEmbedder: PyTorch fixtures (tests/reference/gen_timestep.py),
 * f64 gradients of the module's weights, registry names and init, bad calls. */
#include "nn/timestep.h"
#include "tests/util.h"

#include <string.h>

typedef enum { K_DIT, K_DIT64, K_DIFFUSERS, K_DIFFUSERS_VAR, K_SINPOS } emb_kind;
typedef struct { emb_kind kind; int64_t dim; } emb_ctx;

static dv_tensor *run_emb(dv_tensor **in, void *ctx) {
    const emb_ctx *c = ctx;
    dv_timestep_opts o;
    switch (c->kind) {
    case K_DIT: o = dv_timestep_opts_dit(); return dv_timestep_embedding(in[0], c->dim, &o, DV_F32);
    case K_DIT64: o = dv_timestep_opts_dit(); return dv_timestep_embedding(in[0], c->dim, &o, DV_F64);
    case K_DIFFUSERS: return dv_timestep_embedding(in[0], c->dim, NULL, DV_F32);
    case K_DIFFUSERS_VAR:
        o = (dv_timestep_opts){.flip_sin_to_cos = true, .downscale_freq_shift = 0.5, .scale = 1000.0, .max_period = 500.0};
        return dv_timestep_embedding(in[0], c->dim, &o, DV_F32);
    case K_SINPOS: return dv_sinusoidal_pos_emb(in[0], c->dim, DV_F32);
    }
    return NULL;
}

TEST(timestep_embedding_fixtures) {
    /* f32 angles up to ~1000 rad: torch and we round the same f32 products, the rest is a few
     * ulp of the angle (scale 1000 case: angles ~3000) */
    struct { const char *name; emb_ctx c; double tol; } cases[] = {
        {"dit_emb", {K_DIT, 256}, 1e-5},
        {"dit_emb_steps", {K_DIT, 256}, 1e-4},
        {"dit_emb_odd", {K_DIT, 7}, 1e-4},
        {"diffusers_emb", {K_DIFFUSERS, 64}, 1e-4},
        {"diffusers_emb_var", {K_DIFFUSERS_VAR, 33}, 5e-4},
        {"sinpos_emb", {K_SINPOS, 120}, 1e-4},
        {"dit_emb_f64", {K_DIT64, 64}, 1e-12},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ut_fixture("timestep.bin", cases[i].name, run_emb, &cases[i].c, cases[i].tol);
}

TEST(timestep_embedding_layout) {
    dv_tensor *t = dv_from_f64(DV_F64, DV_SHAPE(3), (double[]){0.0, 7.0, 123.5});
    dv_timestep_opts a = dv_timestep_opts_diffusers(), b = a;
    b.flip_sin_to_cos = true;
    dv_tensor *ea = dv_timestep_embedding(t, 9, &a, DV_F64), *eb = dv_timestep_embedding(t, 9, &b, DV_F64);
    for (int n = 0; n < 3; n++) {
        for (int i = 0; i < 4; i++) {
            /* flip swaps the halves */
            CHECK(dv_flat_get(ea, n * 9 + i) == dv_flat_get(eb, n * 9 + 4 + i));
            CHECK(dv_flat_get(ea, n * 9 + 4 + i) == dv_flat_get(eb, n * 9 + i));
            /* sin^2 + cos^2 = 1 */
            double s = dv_flat_get(ea, n * 9 + i), c = dv_flat_get(ea, n * 9 + 4 + i);
            CHECK_CLOSE(s * s + c * c, 1.0, 1e-12);
        }
        CHECK(dv_flat_get(ea, n * 9 + 8) == 0.0); /* odd dim: zero column */
    }
    /* t = 0: sin 0 = 0, cos 0 = 1 */
    for (int i = 0; i < 4; i++) CHECK(dv_flat_get(ea, i) == 0.0 && dv_flat_get(ea, 4 + i) == 1.0);
    /* frequency 0 is 1 (t itself), the last one 1 / max_period (shift 1: exponent i / (half - 1)) */
    CHECK_CLOSE(dv_flat_get(ea, 9 + 0), sin(7.0), 1e-14);
    CHECK_CLOSE(dv_flat_get(ea, 9 + 3), sin(7.0 / 10000.0), 1e-14);
    dv_release(ea), dv_release(eb), dv_release(t);
}

/* the module from fixture weights: in = t, w1, b1, w2, b2 */
static dv_tensor *run_embedder(dv_tensor **in, void *ctx) {
    dv_nn_timestep_embedder e = {.fc1 = {.weight = in[1], .bias = in[2]}, .fc2 = {.weight = in[3], .bias = in[4]},
                                 .freq_dim = in[1]->shape[1], .max_period = 10000.0};
    return dv_nn_timestep_embedder_forward(&e, in[0]);
}

TEST(timestep_embedder_fixture_and_gradcheck) {
    ut_fixture("timestep.bin", "t_embedder", run_embedder, NULL, 2e-5);
    dv_tensor *in[5];
    in[0] = dv_from_f64(DV_I64, DV_SHAPE(3), (double[]){3, 40, 999});
    in[1] = ut_randn_leaf(DV_F64, DV_SHAPE(5, 12), 1);
    in[2] = ut_randn_leaf(DV_F64, DV_SHAPE(5), 2);
    in[3] = ut_randn_leaf(DV_F64, DV_SHAPE(5, 5), 3);
    in[4] = ut_randn_leaf(DV_F64, DV_SHAPE(5), 4);
    ut_gradcheck("timestep_embedder", run_embedder, in, 5, NULL, 1e-6);
    for (int i = 0; i < 5; i++) dv_release(in[i]);
}

TEST(timestep_embedder_registry) {
    dv_registry reg = {0};
    dv_rng rng = dv_rng_new(5);
    dv_nn_timestep_embedder e;
    dv_nn_timestep_embedder_init(&e, &reg, "t_embedder", 64, 256, DV_F32, &rng);
    const char *names[4] = {"t_embedder.mlp.0.weight", "t_embedder.mlp.0.bias", "t_embedder.mlp.2.weight",
                            "t_embedder.mlp.2.bias"};
    CHECK(dv_reg_count(&reg) == 4);
    for (int i = 0; i < 4; i++) CHECK(dv_reg_find(&reg, names[i]) == i);
    CHECK(dv_reg_get(&reg, names[0]) == e.fc1.weight && e.fc1.weight->shape[0] == 64 && e.fc1.weight->shape[1] == 256);
    /* DiT init: weights normal(0, 0.02), biases zero */
    double ss = 0;
    int64_t n = dv_numel(e.fc1.weight);
    for (int64_t i = 0; i < n; i++) ss += dv_flat_get(e.fc1.weight, i) * dv_flat_get(e.fc1.weight, i);
    CHECK_CLOSE(sqrt(ss / (double)n), 0.02, 0.05);
    for (int i = 0; i < 64; i++) CHECK(dv_flat_get(e.fc1.bias, i) == 0.0 && dv_flat_get(e.fc2.bias, i) == 0.0);
    dv_tensor *t = dv_from_f64(DV_I64, DV_SHAPE(2), (double[]){1, 500});
    dv_tensor *y = dv_nn_timestep_embedder_forward(&e, t);
    CHECK(y->ndim == 2 && y->shape[0] == 2 && y->shape[1] == 64 && y->dtype == DV_F32);
    dv_release(y), dv_release(t);
    dv_reg_free(&reg);
}

static void bad_dim(void *ctx) {
    dv_tensor *t = dv_zeros(DV_F32, DV_SHAPE(2));
    dv_release(dv_timestep_embedding(t, 2, NULL, DV_F32)); /* half - shift = 0 */
}
static void bad_rank(void *ctx) {
    dv_tensor *t = dv_zeros(DV_F32, DV_SHAPE(2, 1));
    dv_release(dv_sinusoidal_pos_emb(t, 8, DV_F32));
}
static void bad_odd(void *ctx) {
    dv_tensor *t = dv_zeros(DV_F32, DV_SHAPE(2));
    dv_release(dv_sinusoidal_pos_emb(t, 9, DV_F32));
}

TEST(timestep_embedding_bad_calls) {
    CHECK(ut_aborts_with(bad_dim, NULL, "timestep_embedding"));
    CHECK(ut_aborts_with(bad_rank, NULL, "sinusoidal_pos_emb"));
    CHECK(ut_aborts_with(bad_odd, NULL, "even"));
}
