/* tests/test_nn_layers.c — the parameter registry (names, counts, freezing by pattern,
 * safetensors round trip and load errors, half weights), initialisation statistics, and f64
 * gradient checks of every layer in nn/layers.c. */
#include "nn/module.h"
#include "tests/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* a small model: embed, 2 blocks of (norm, mlp), a vision_tower conv, a head */
typedef struct {
    dv_nn_embedding embed;
    struct { dv_nn_rms_norm norm; dv_nn_swiglu mlp; } layers[2];
    dv_nn_conv2d patch;
    dv_nn_layer_norm ln;
    dv_nn_linear head;
} tiny_model;

static void tiny_init(tiny_model *m, dv_registry *r, uint64_t seed) {
    dv_rng rng = dv_rng_new(seed);
    dv_nn_embedding_init(&m->embed, r, "embed_tokens", 10, 8, DV_F32, &rng);
    for (int i = 0; i < 2; i++) {
        dv_reg_push(r, "layers.%d", i);
        dv_nn_rms_norm_init(&m->layers[i].norm, r, "input_layernorm", 8, 1e-6, DV_F32);
        dv_nn_swiglu_init(&m->layers[i].mlp, r, "mlp", 8, 16, DV_F32, &rng);
        dv_reg_pop(r);
    }
    dv_reg_push(r, "vision_tower");
    dv_nn_conv2d_init(&m->patch, r, "patch_embed", 3, 8, 2, 2, 2, 0, 1, true, DV_F32, &rng);
    dv_nn_layer_norm_init(&m->ln, r, "post_layernorm", 8, 1e-5, true, true, DV_F32);
    dv_reg_pop(r);
    dv_nn_linear_init(&m->head, r, "lm_head", 8, 10, false, DV_F32, &rng);
}

TEST(registry_names_counts) {
    dv_registry r = {0};
    tiny_model m;
    tiny_init(&m, &r, 1);
    CHECK(dv_reg_count(&r) == 1 + 2 * 4 + 2 + 2 + 1);
    CHECK(strcmp(dv_reg_name(&r, 0), "embed_tokens.weight") == 0);
    CHECK(dv_reg_get(&r, "layers.1.mlp.down_proj.weight") == m.layers[1].mlp.down_proj.weight);
    CHECK(dv_reg_get(&r, "layers.0.input_layernorm.weight") == m.layers[0].norm.weight);
    CHECK(dv_reg_get(&r, "vision_tower.patch_embed.bias") == m.patch.bias);
    CHECK(dv_reg_get(&r, "layers.2.mlp.up_proj.weight") == NULL);
    CHECK(r.depth == 0 && r.prefix[0] == '\0');
    int64_t total = 80 + 2 * (8 + 3 * 128) + (8 * 3 * 4 + 8) + 16 + 80;
    CHECK(dv_reg_numel(&r, false) == total);
    CHECK(dv_reg_numel(&r, true) == total);

    /* patterns */
    CHECK(dv_reg_match("vision_tower", "vision_tower.patch_embed.weight"));
    CHECK(!dv_reg_match("vision_tower", "vision_tower2.w"));
    CHECK(dv_reg_match("vision_tower.*", "vision_tower.patch_embed.weight"));
    CHECK(dv_reg_match("layers.*.mlp.*_proj.weight", "layers.1.mlp.gate_proj.weight"));
    CHECK(!dv_reg_match("layers.?.mlp.gate*", "layers.10.mlp.gate_proj.weight"));
    CHECK(dv_reg_match("*bias", "a.b.bias") && !dv_reg_match("*bias", "a.bias.weight"));

    CHECK(dv_reg_freeze(&r, "vision_tower.*", true) == 4);
    CHECK(dv_reg_freeze(&r, "layers.*.mlp.gate_proj.*", true) == 2);
    CHECK(dv_reg_numel(&r, true) == total - (8 * 3 * 4 + 8 + 16) - 2 * 128);
    CHECK(!m.patch.weight->requires_grad && m.head.weight->requires_grad);
    dv_params tr = {0};
    dv_reg_trainable(&r, &tr);
    CHECK(tr.n == dv_reg_count(&r) - 6);
    CHECK(dv_params_numel(&tr) == dv_reg_numel(&r, true));
    dv_params_free(&tr);

    /* the summary names the top-level groups with their counts */
    char buf[4096] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    dv_reg_print_summary(&r, f);
    fclose(f);
    CHECK(strstr(buf, "vision_tower") && strstr(buf, "layers") && strstr(buf, "lm_head"));
    CHECK(strstr(buf, "                0             120")); /* vision_tower: 0 of 120 trainable */
    if (dv_test_verbose) fputs(buf, stdout);
    dv_reg_free(&r);
    CHECK(m.head.weight == NULL); /* slots are cleared */
}

static void dup_name(void *ctx) {
    dv_registry r = {0};
    dv_reg_push(&r, "a");
    dv_reg_add(&r, "w", NULL, dv_zeros(DV_F32, DV_SHAPE(2)));
    dv_reg_add(&r, "w", NULL, dv_zeros(DV_F32, DV_SHAPE(2)));
}

TEST(registry_duplicate_aborts) { CHECK(ut_aborts_with(dup_name, NULL, "a.w")); }

/* frozen parameters get no gradient; trainable ones do */
TEST(registry_frozen_no_grad) {
    dv_registry r = {0};
    tiny_model m;
    tiny_init(&m, &r, 2);
    dv_reg_freeze(&r, "embed_tokens", true);
    dv_reg_freeze(&r, "layers.0.*", true);
    dv_tensor *ids = dv_from_f64(DV_I64, DV_SHAPE(2, 3), (double[]){1, 2, 3, 4, 5, 6});
    dv_tensor *h = dv_nn_embedding_forward(&m.embed, ids);
    for (int i = 0; i < 2; i++) {
        dv_tensor *n = dv_nn_rms_norm_forward(&m.layers[i].norm, h);
        dv_tensor *y = dv_nn_swiglu_forward(&m.layers[i].mlp, n);
        dv_tensor *s = dv_add(h, y);
        dv_release(n), dv_release(y), dv_release(h);
        h = s;
    }
    dv_tensor *lo = dv_nn_linear_forward(&m.head, h);
    dv_tensor *loss = dv_mean_all(lo);
    dv_backward(loss);
    for (int i = 0; i < dv_reg_count(&r); i++) {
        const char *name = dv_reg_name(&r, i);
        dv_tensor *t = dv_reg_tensor(&r, i);
        bool frozen = dv_reg_is_frozen(&r, i), used = strncmp(name, "vision_tower", 12) != 0;
        CHECK_MSG(frozen ? t->grad == NULL : (t->grad != NULL) == used, "%s: grad %p frozen %d", name,
                  (void *)t->grad, frozen);
    }
    dv_release(ids), dv_release(h), dv_release(lo), dv_release(loss);
    dv_reg_free(&r);
}

TEST(registry_safetensors_roundtrip) {
    char path[128];
    snprintf(path, sizeof path, "/dev/shm/dv_test_reg_%d.safetensors", (int)getpid());
    char err[512];
    dv_registry a = {0}, b = {0};
    tiny_model ma, mb;
    tiny_init(&ma, &a, 3);
    tiny_init(&mb, &b, 4);
    CHECK(dv_reg_save(&a, path, err, sizeof err) == 0);
    dv_st_file *f = NULL;
    CHECK(dv_st_open(path, &f, err, sizeof err) == 0);
    int nm = -1, nu = -1;
    CHECK(dv_reg_load(&b, f, DV_REG_STRICT, &nm, &nu, err, sizeof err) == 0);
    CHECK(nm == 0 && nu == 0);
    for (int i = 0; i < dv_reg_count(&a); i++)
        CHECK(ut_max_rel_diff(dv_reg_tensor(&b, i), dv_reg_tensor(&a, i)) == 0.0);
    dv_st_close(f);

    /* an extra parameter: strict load reports it missing, non-strict skips it */
    dv_tensor *extra = dv_reg_add(&b, "extra.weight", NULL, dv_full(DV_F32, DV_SHAPE(3), 7.0));
    CHECK(dv_st_open(path, &f, err, sizeof err) == 0);
    CHECK(dv_reg_load(&b, f, DV_REG_STRICT, NULL, NULL, err, sizeof err) == -1);
    CHECK(strstr(err, "missing") && strstr(err, "extra.weight"));
    CHECK(dv_reg_load(&b, f, 0, &nm, &nu, err, sizeof err) == 0);
    CHECK(nm == 1 && nu == 0 && dv_flat_get(extra, 0) == 7.0);
    dv_st_close(f);

    /* unexpected tensor, mis-shaped tensor */
    dv_registry c = {0};
    dv_reg_add(&c, "lm_head.weight", NULL, dv_zeros(DV_F32, DV_SHAPE(10, 8)));
    CHECK(dv_st_open(path, &f, err, sizeof err) == 0);
    CHECK(dv_reg_load(&c, f, DV_REG_STRICT, NULL, NULL, err, sizeof err) == -1);
    CHECK(strstr(err, "unexpected"));
    CHECK(dv_reg_load(&c, f, 0, &nm, &nu, err, sizeof err) == 0);
    CHECK(nm == 0 && nu == dv_reg_count(&a) - 1);
    CHECK(ut_max_rel_diff(dv_reg_get(&c, "lm_head.weight"), ma.head.weight) == 0.0);
    dv_registry d = {0};
    dv_tensor *wd = dv_reg_add(&d, "lm_head.weight", NULL, dv_zeros(DV_F32, DV_SHAPE(8, 10)));
    dv_reg_add(&d, "embed_tokens.weight", NULL, dv_zeros(DV_F32, DV_SHAPE(10, 8)));
    CHECK(dv_reg_load(&d, f, 0, NULL, NULL, err, sizeof err) == -1);
    CHECK(strstr(err, "lm_head.weight") && strstr(err, "(10, 8)") && strstr(err, "(8, 10)"));
    /* a failed load changed nothing: both parameters are still zero */
    CHECK(dv_flat_get(dv_reg_get(&d, "embed_tokens.weight"), 0) == 0.0 && dv_flat_get(wd, 0) == 0.0);
    dv_st_close(f);
    dv_reg_free(&c), dv_reg_free(&d);

    /* bf16 file: widened into f32 parameters, or kept as bf16 for frozen ones */
    dv_tensor *hw = dv_cast(ma.head.weight, DV_BF16);
    CHECK(dv_st_save(path, (const char *[]){"lm_head.weight"}, &hw, 1, NULL, 0, err, sizeof err) == 0);
    dv_registry e = {0};
    dv_nn_linear head;
    dv_rng rng = dv_rng_new(9);
    dv_nn_linear_init(&head, &e, "lm_head", 8, 10, false, DV_F32, &rng);
    CHECK(dv_st_open(path, &f, err, sizeof err) == 0);
    CHECK(dv_reg_load(&e, f, DV_REG_STRICT | DV_REG_KEEP_HALF, NULL, NULL, err, sizeof err) == 0);
    CHECK(head.weight->dtype == DV_F32 && ut_max_rel_diff(head.weight, ma.head.weight) < 1e-2);
    dv_reg_freeze(&e, "lm_head", true);
    CHECK(dv_reg_load(&e, f, DV_REG_STRICT | DV_REG_KEEP_HALF, NULL, NULL, err, sizeof err) == 0);
    CHECK(head.weight->dtype == DV_BF16 && head.weight == dv_reg_get(&e, "lm_head.weight"));
    dv_tensor *x = ut_randn(DV_F32, DV_SHAPE(3, 8), 5);
    dv_tensor *y = dv_nn_linear_forward(&head, x), *yr = dv_nn_linear_forward(&ma.head, x);
    CHECK(ut_max_rel_diff(y, yr) < 2e-2);
    dv_release(x), dv_release(y), dv_release(yr), dv_release(hw);
    dv_st_close(f);
    dv_reg_free(&e);
    dv_reg_free(&a), dv_reg_free(&b);
    unlink(path);
}

/* ---- initialisation statistics ------------------------------------------------------------ */
static void stats(const dv_tensor *t, double *mean, double *std, double *lo, double *hi) {
    int64_t n = dv_numel(t);
    double s = 0, s2 = 0;
    *lo = INFINITY, *hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        double v = dv_flat_get(t, i);
        s += v, s2 += v * v;
        *lo = fmin(*lo, v), *hi = fmax(*hi, v);
    }
    *mean = s / n;
    *std = sqrt(fmax(0, s2 / n - *mean * *mean));
}

TEST(init_statistics) {
    dv_rng rng = dv_rng_new(11);
    double mean, std, lo, hi;
    dv_tensor *w = dv_empty(DV_F32, DV_SHAPE(256, 400));
    dv_init_normal(&rng, w, 0.5, 0.02);
    stats(w, &mean, &std, &lo, &hi);
    CHECK_CLOSE(mean, 0.5, 1e-3);
    CHECK_CLOSE(std, 0.02, 1e-3);

    dv_init_xavier_uniform(&rng, w, 1.0);
    double b = sqrt(6.0 / (256 + 400));
    stats(w, &mean, &std, &lo, &hi);
    CHECK(lo >= -b && hi < b && hi > 0.99 * b && lo < -0.99 * b);
    CHECK_CLOSE(std, b / sqrt(3.0), 2e-3);

    dv_tensor *bias = dv_empty(DV_F32, DV_SHAPE(256));
    dv_init_linear_default(&rng, w, bias);
    b = 1.0 / sqrt(400.0); /* kaiming_uniform(a = sqrt 5): gain sqrt(1/3) * sqrt(3/fan_in) */
    stats(w, &mean, &std, &lo, &hi);
    CHECK(lo >= -b && hi < b && hi > 0.99 * b);
    CHECK_CLOSE(std, b / sqrt(3.0), 1e-3);
    CHECK(fabs(mean) < 1e-3);
    stats(bias, &mean, &std, &lo, &hi);
    CHECK(lo >= -b && hi < b);

    dv_tensor *cw = dv_empty(DV_F32, DV_SHAPE(64, 16, 3, 3));
    dv_init_kaiming_uniform(&rng, cw, 0.0); /* relu gain: bound sqrt(6 / fan_in) */
    b = sqrt(6.0 / (16 * 9));
    stats(cw, &mean, &std, &lo, &hi);
    CHECK(lo >= -b && hi < b && hi > 0.98 * b);
    CHECK_CLOSE(std, b / sqrt(3.0), 3e-3);

    dv_init_zeros(bias);
    stats(bias, &mean, &std, &lo, &hi);
    CHECK(lo == 0 && hi == 0);
    dv_init_ones(bias);
    stats(bias, &mean, &std, &lo, &hi);
    CHECK(lo == 1 && hi == 1);

    /* reproducible: same seed, same weights */
    dv_rng r1 = dv_rng_new(5), r2 = dv_rng_new(5);
    dv_tensor *a1 = dv_empty(DV_F32, DV_SHAPE(7, 5)), *a2 = dv_empty(DV_F32, DV_SHAPE(7, 5));
    dv_init_linear_default(&r1, a1, NULL);
    dv_init_linear_default(&r2, a2, NULL);
    CHECK(ut_max_rel_diff(a1, a2) == 0.0);
    dv_release(w), dv_release(bias), dv_release(cw), dv_release(a1), dv_release(a2);
}

/* ---- gradient checks (f64) ---------------------------------------------------------------- */
/* each wrapper puts the gradcheck's inputs (x, then parameters) into the layer and runs it */
static dv_tensor *run_linear(dv_tensor **in, void *ctx) {
    dv_nn_linear l = *(dv_nn_linear *)ctx;
    l.weight = in[1], l.bias = in[2];
    return dv_nn_linear_forward(&l, in[0]);
}
static dv_tensor *run_embedding(dv_tensor **in, void *ctx) {
    dv_nn_embedding e = {.weight = in[0]};
    return dv_nn_embedding_forward(&e, ctx);
}
static dv_tensor *run_layer_norm(dv_tensor **in, void *ctx) {
    dv_nn_layer_norm n = {.weight = in[1], .bias = in[2], .eps = 1e-5};
    return dv_nn_layer_norm_forward(&n, in[0]);
}
static dv_tensor *run_rms_norm(dv_tensor **in, void *ctx) {
    dv_nn_rms_norm n = {.weight = in[1], .eps = 1e-6};
    return dv_nn_rms_norm_forward(&n, in[0]);
}
static dv_tensor *run_conv(dv_tensor **in, void *ctx) {
    dv_nn_conv2d c = *(dv_nn_conv2d *)ctx;
    c.weight = in[1], c.bias = in[2];
    return dv_nn_conv2d_forward(&c, in[0]);
}
static dv_tensor *run_mlp(dv_tensor **in, void *ctx) {
    dv_nn_mlp m = *(dv_nn_mlp *)ctx;
    m.fc1.weight = in[1], m.fc1.bias = in[2], m.fc2.weight = in[3], m.fc2.bias = in[4];
    return dv_nn_mlp_forward(&m, in[0]);
}
static dv_tensor *run_swiglu(dv_tensor **in, void *ctx) {
    dv_nn_swiglu m = *(dv_nn_swiglu *)ctx;
    m.gate_proj.weight = in[1], m.up_proj.weight = in[2], m.down_proj.weight = in[3];
    return dv_nn_swiglu_forward(&m, in[0]);
}
static dv_tensor *run_dropout(dv_tensor **in, void *ctx) {
    dv_rng rng = dv_rng_new(77); /* the same mask at every evaluation */
    return dv_nn_dropout(in[0], 0.3, true, &rng);
}

/* parameters of a registry as gradcheck leaves (copies, requires_grad) */
static dv_tensor *leaf(dv_tensor *t) {
    dv_tensor *c;
    DV_NO_GRAD_BEGIN
    c = dv_clone(t);
    DV_NO_GRAD_END
    dv_set_requires_grad(c, true);
    return c;
}

TEST(layers_gradcheck) {
    dv_registry r = {0};
    dv_rng rng = dv_rng_new(21);
    const double tol = 1e-6;

    dv_nn_linear lin;
    dv_nn_linear_init(&lin, &r, "lin", 5, 4, true, DV_F64, &rng);
    dv_tensor *x = ut_randn_leaf(DV_F64, DV_SHAPE(2, 3, 5), 1);
    dv_tensor *xn = ut_noncontig(x);
    dv_tensor *in[5] = {xn, leaf(lin.weight), leaf(lin.bias)};
    ut_gradcheck("linear", run_linear, in, 3, &lin, tol);
    dv_release(in[1]), dv_release(in[2]);

    dv_nn_embedding emb;
    dv_nn_embedding_init(&emb, &r, "emb", 7, 3, DV_F64, &rng);
    dv_tensor *ids = dv_from_f64(DV_I64, DV_SHAPE(2, 3), (double[]){0, 6, 2, 2, 5, 0});
    in[0] = leaf(emb.weight);
    ut_gradcheck("embedding", run_embedding, in, 1, ids, tol);
    dv_release(in[0]), dv_release(ids);

    dv_nn_layer_norm ln;
    dv_nn_layer_norm_init(&ln, &r, "ln", 5, 1e-5, true, true, DV_F64);
    in[0] = x, in[1] = ut_randn_leaf(DV_F64, DV_SHAPE(5), 2), in[2] = ut_randn_leaf(DV_F64, DV_SHAPE(5), 3);
    ut_gradcheck("layer_norm", run_layer_norm, in, 3, NULL, tol);
    ut_gradcheck("rms_norm", run_rms_norm, in, 2, NULL, tol);
    dv_release(in[1]), dv_release(in[2]);

    dv_nn_conv2d conv;
    dv_nn_conv2d_init(&conv, &r, "conv", 4, 6, 3, 3, 2, 1, 2, true, DV_F64, &rng);
    in[0] = ut_randn_leaf(DV_F64, DV_SHAPE(2, 4, 5, 6), 4), in[1] = leaf(conv.weight), in[2] = leaf(conv.bias);
    ut_gradcheck("conv2d", run_conv, in, 3, &conv, tol);
    for (int i = 0; i < 3; i++) dv_release(in[i]);

    /* the layers outlive the loop: the registry remembers their fields until dv_reg_free */
    dv_act acts[] = {DV_ACT_GELU, DV_ACT_QUICK_GELU, DV_ACT_GELU_TANH};
    dv_nn_mlp mlps[3];
    for (int a = 0; a < 3; a++) {
        dv_nn_mlp *mlp = &mlps[a];
        dv_reg_push(&r, "mlp%d", a);
        dv_nn_mlp_init(mlp, &r, "mlp", 5, 7, 3, acts[a], true, DV_F64, &rng);
        dv_reg_pop(&r);
        in[0] = x, in[1] = leaf(mlp->fc1.weight), in[2] = leaf(mlp->fc1.bias), in[3] = leaf(mlp->fc2.weight), in[4] = leaf(mlp->fc2.bias);
        ut_gradcheck("mlp", run_mlp, in, 5, mlp, tol);
        for (int i = 1; i < 5; i++) dv_release(in[i]);
    }

    dv_nn_swiglu sw;
    dv_nn_swiglu_init(&sw, &r, "swiglu", 5, 6, DV_F64, &rng);
    in[0] = x, in[1] = leaf(sw.gate_proj.weight), in[2] = leaf(sw.up_proj.weight), in[3] = leaf(sw.down_proj.weight);
    ut_gradcheck("swiglu", run_swiglu, in, 4, &sw, tol);
    for (int i = 1; i < 4; i++) dv_release(in[i]);

    in[0] = x;
    ut_gradcheck("dropout", run_dropout, in, 1, NULL, tol);
    dv_release(x), dv_release(xn);
    dv_reg_free(&r);
}

/* the SwiGLU forward against its definition written out with ops */
TEST(layers_swiglu_definition) {
    dv_registry r = {0};
    dv_rng rng = dv_rng_new(3);
    dv_nn_swiglu sw;
    dv_nn_swiglu_init(&sw, &r, "mlp", 6, 10, DV_F32, &rng);
    dv_tensor *x = ut_randn(DV_F32, DV_SHAPE(4, 6), 8);
    dv_tensor *y = dv_nn_swiglu_forward(&sw, x);
    dv_tensor *ref = dv_zeros(DV_F32, DV_SHAPE(4, 6));
    for (int i = 0; i < 4; i++) {
        double h[10];
        for (int j = 0; j < 10; j++) {
            double g = 0, u = 0;
            for (int k = 0; k < 6; k++) {
                g += dv_get(sw.gate_proj.weight, (int64_t[]){j, k}) * dv_get(x, (int64_t[]){i, k});
                u += dv_get(sw.up_proj.weight, (int64_t[]){j, k}) * dv_get(x, (int64_t[]){i, k});
            }
            h[j] = g / (1 + exp(-g)) * u;
        }
        for (int o = 0; o < 6; o++) {
            double s = 0;
            for (int j = 0; j < 10; j++) s += dv_get(sw.down_proj.weight, (int64_t[]){o, j}) * h[j];
            dv_set(ref, (int64_t[]){i, o}, s);
        }
    }
    ut_check_tensor("swiglu", y, ref, 1e-5);
    dv_release(x), dv_release(y), dv_release(ref);
    dv_reg_free(&r);
}

TEST(layers_dropout) {
    dv_rng rng = dv_rng_new(4);
    dv_tensor *x = dv_ones(DV_F32, DV_SHAPE(100, 100));
    dv_tensor *y = dv_nn_dropout(x, 0.25, true, &rng);
    int64_t zeros = 0;
    double s = 0;
    for (int64_t i = 0; i < 10000; i++) {
        double v = dv_flat_get(y, i);
        zeros += v == 0;
        s += v;
        CHECK(v == 0 || fabs(v - 1 / 0.75) < 1e-6);
    }
    CHECK(fabs(zeros / 10000.0 - 0.25) < 0.02);
    CHECK(fabs(s / 10000.0 - 1.0) < 0.03);
    dv_tensor *z = dv_nn_dropout(x, 0.25, true, &rng); /* the rng advanced: another mask */
    CHECK(ut_max_rel_diff(z, y) > 0);
    dv_tensor *e = dv_nn_dropout(x, 0.25, false, &rng);
    CHECK(e == x);
    dv_release(x), dv_release(y), dv_release(z), dv_release(e);
}

/* a half (bf16) linear weight: registered frozen, forward close to the f32 one */
TEST(layers_linear_half_weight) {
    dv_registry r = {0};
    dv_rng r1 = dv_rng_new(6), r2 = dv_rng_new(6);
    dv_nn_linear a, b;
    dv_nn_linear_init(&a, &r, "a", 16, 8, true, DV_F32, &r1);
    dv_nn_linear_init(&b, &r, "b", 16, 8, true, DV_BF16, &r2);
    CHECK(b.weight->dtype == DV_BF16 && b.bias->dtype == DV_F32);
    CHECK(dv_reg_is_frozen(&r, 2) && !dv_reg_is_frozen(&r, 3));
    CHECK(dv_reg_numel(&r, true) == 16 * 8 + 8 + 8);
    dv_tensor *x = ut_randn(DV_F32, DV_SHAPE(3, 16), 1);
    dv_tensor *ya = dv_nn_linear_forward(&a, x), *yb = dv_nn_linear_forward(&b, x);
    CHECK(ut_max_rel_diff(yb, ya) < 2e-2);
    dv_release(x), dv_release(ya), dv_release(yb);
    dv_reg_free(&r);
}
