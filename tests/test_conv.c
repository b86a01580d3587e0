/* tests/test_conv.c — dv_conv2d: f64 gradient checks over strides, padding, dilation, groups
 * (depthwise), 1x1 and patch-embedding shapes; a naive direct convolution as a second
 * reference on sizes that take the threaded-GEMM path; frozen weights; AVX-512 vs portable;
 * PyTorch fixtures (tests/reference/gen_spatial.py); zero-size and bad calls. */
#include "tests/util.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t B, Cin, H, W, Cout;
    int kh, kw, stride[2], pad[2], dil[2], groups;
    bool bias;
} conv_cfg;

static dv_tensor *run_conv(dv_tensor **in, void *ctx) {
    const conv_cfg *c = ctx;
    return dv_conv2d(in[0], in[1], c->bias ? in[2] : NULL, c->stride, c->pad, c->dil, c->groups);
}

static const conv_cfg k_cases[] = {
    {2, 3, 5, 6, 4, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1, true},      /* plain 3x3, same padding */
    {1, 4, 7, 7, 4, 3, 3, {2, 2}, {1, 1}, {1, 1}, 1, true},      /* ResNet bottleneck 3x3 / 2 */
    {1, 2, 7, 6, 3, 3, 3, {1, 1}, {2, 2}, {2, 2}, 1, false},     /* dilated */
    {2, 4, 5, 5, 6, 3, 3, {1, 1}, {1, 1}, {1, 1}, 2, true},      /* grouped */
    {1, 4, 6, 6, 4, 3, 3, {2, 2}, {1, 1}, {1, 1}, 4, false},     /* depthwise / 2 */
    {2, 6, 4, 3, 5, 1, 1, {1, 1}, {0, 0}, {1, 1}, 1, true},      /* 1x1: no im2col */
    {1, 4, 5, 5, 3, 1, 1, {2, 2}, {0, 0}, {1, 1}, 1, false},     /* 1x1 / 2 (downsample path) */
    {1, 3, 8, 8, 5, 4, 4, {4, 4}, {0, 0}, {1, 1}, 1, false},     /* patch embedding, stride = kernel */
    {1, 2, 6, 7, 3, 2, 3, {2, 1}, {0, 1}, {1, 2}, 1, true},      /* asymmetric everything */
};
#define N_CASES (int)(sizeof k_cases / sizeof k_cases[0])

static void make_inputs(const conv_cfg *c, dv_dtype dt, uint64_t seed, dv_tensor **in) {
    in[0] = ut_randn_leaf(dt, DV_SHAPE(c->B, c->Cin, c->H, c->W), seed);
    in[1] = ut_randn_leaf(dt, DV_SHAPE(c->Cout, c->Cin / c->groups, c->kh, c->kw), seed + 1);
    in[2] = c->bias ? ut_randn_leaf(dt, DV_SHAPE(c->Cout), seed + 2) : NULL;
}

TEST(conv2d_gradcheck) {
    for (int k = 0; k < N_CASES; k++) {
        conv_cfg c = k_cases[k];
        dv_tensor *in[3];
        make_inputs(&c, DV_F64, 100 + 10 * k, in);
        char what[64];
        snprintf(what, sizeof what, "conv2d case %d", k);
        ut_gradcheck(what, run_conv, in, c.bias ? 3 : 2, &c, 1e-6);
        /* the same through non-contiguous x and w */
        dv_tensor *nc[3] = {ut_noncontig(in[0]), ut_noncontig(in[1]), in[2]};
        snprintf(what, sizeof what, "conv2d case %d non-contiguous", k);
        ut_gradcheck(what, run_conv, nc, c.bias ? 3 : 2, &c, 1e-6);
        for (int i = 0; i < 3; i++) dv_release(in[i]);
        dv_release(nc[0]);
        dv_release(nc[1]);
    }
}

/* ---- a naive direct convolution in f64, forward and backward, as a second reference ---- */
typedef struct { int64_t OH, OW; } out_hw;
static out_hw conv_out(const conv_cfg *c) {
    return (out_hw){(c->H + 2 * c->pad[0] - c->dil[0] * (c->kh - 1) - 1) / c->stride[0] + 1,
                    (c->W + 2 * c->pad[1] - c->dil[1] * (c->kw - 1) - 1) / c->stride[1] + 1};
}

/* visits every (output, input, weight) triple: y += x * w; dx += gy * w; dw += gy * x */
static void naive_conv(const conv_cfg *c, const double *x, const double *w, const double *b, double *y,
                       const double *gy, double *gx, double *gw) {
    out_hw o = conv_out(c);
    int64_t Cg = c->Cin / c->groups, Og = c->Cout / c->groups;
    for (int64_t n = 0; n < c->B; n++)
        for (int64_t co = 0; co < c->Cout; co++)
            for (int64_t oh = 0; oh < o.OH; oh++)
                for (int64_t ow = 0; ow < o.OW; ow++) {
                    int64_t yi = ((n * c->Cout + co) * o.OH + oh) * o.OW + ow;
                    double acc = b ? b[co] : 0;
                    for (int64_t ci = 0; ci < Cg; ci++)
                        for (int i = 0; i < c->kh; i++)
                            for (int j = 0; j < c->kw; j++) {
                                int64_t ih = oh * c->stride[0] - c->pad[0] + i * c->dil[0];
                                int64_t iw = ow * c->stride[1] - c->pad[1] + j * c->dil[1];
                                if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W) continue;
                                int64_t xi = ((n * c->Cin + co / Og * Cg + ci) * c->H + ih) * c->W + iw;
                                int64_t wi = ((co * Cg + ci) * c->kh + i) * c->kw + j;
                                acc += x[xi] * w[wi];
                                if (gy) {
                                    gx[xi] += gy[yi] * w[wi];
                                    gw[wi] += gy[yi] * x[xi];
                                }
                            }
                    if (y) y[yi] = acc;
                }
}

static double *to_f64(const dv_tensor *t) {
    double *p = malloc(sizeof(double) * (size_t)(dv_numel(t) + 1));
    dv_to_f64(t, p);
    return p;
}

static void check_close(const char *what, const dv_tensor *got, const double *want, double tol) {
    int64_t n = dv_numel(got);
    double *g = to_f64(got), worst = 0, scale = 1;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
    for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs(g[i] - want[i]) / scale);
    CHECK_MSG(worst <= tol, "%s: max error %.3g relative to max |ref| (tol %.3g)", what, worst, tol);
    free(g);
}

/* sizes big enough for the threaded paths: one GEMM per image using every thread (the first
 * four), or many small GEMMs side by side, one per thread (the depthwise one) */
TEST(conv2d_matches_naive) {
    const conv_cfg cases[] = {
        {2, 16, 16, 16, 32, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1, true},
        {3, 8, 15, 13, 16, 3, 3, {2, 2}, {1, 1}, {1, 1}, 2, false},
        {2, 32, 12, 12, 48, 1, 1, {1, 1}, {0, 0}, {1, 1}, 1, true},
        {1, 3, 56, 42, 64, 14, 14, {14, 14}, {0, 0}, {1, 1}, 1, false},
        {2, 32, 32, 32, 32, 3, 3, {1, 1}, {1, 1}, {1, 1}, 32, true},
    };
    for (int k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++) {
        const conv_cfg *c = &cases[k];
        for (int pass = 0; pass < 2; pass++) {
            dv_dtype dt = pass ? DV_F32 : DV_F64;
            double tol = pass ? 2e-5 : 1e-11;
            dv_tensor *in[3];
            make_inputs(c, dt, 700 + k, in);
            dv_tensor *y = run_conv(in, (void *)c);
            dv_tensor *gy = ut_randn(dt, y->shape, y->ndim, 800 + k);
            dv_backward_with(y, gy);
            double *x = to_f64(in[0]), *w = to_f64(in[1]), *b = c->bias ? to_f64(in[2]) : NULL, *g = to_f64(gy);
            double *ry = calloc((size_t)dv_numel(y), sizeof(double));
            double *rgx = calloc((size_t)dv_numel(in[0]), sizeof(double));
            double *rgw = calloc((size_t)dv_numel(in[1]), sizeof(double));
            naive_conv(c, x, w, b, ry, g, rgx, rgw);
            char what[96];
            snprintf(what, sizeof what, "naive case %d %s: y", k, pass ? "f32" : "f64");
            check_close(what, y, ry, tol);
            snprintf(what, sizeof what, "naive case %d %s: dx", k, pass ? "f32" : "f64");
            check_close(what, in[0]->grad, rgx, tol);
            snprintf(what, sizeof what, "naive case %d %s: dw", k, pass ? "f32" : "f64");
            check_close(what, in[1]->grad, rgw, tol);
            if (c->bias) {
                dv_tensor *db = dv_sum(gy, (int[]){0, 2, 3}, 3, false);
                ut_check_tensor("naive: db", in[2]->grad, db, tol);
                dv_release(db);
            }
            free(x); free(w); free(b); free(g); free(ry); free(rgx); free(rgw);
            dv_release(y);
            dv_release(gy);
            for (int i = 0; i < 3; i++) dv_release(in[i]);
        }
    }
}

/* a frozen weight (CLIP's ResNet) gets no gradient, and x's gradient is unchanged by it */
TEST(conv2d_frozen_weight) {
    conv_cfg c = {2, 4, 6, 6, 6, 3, 3, {2, 2}, {1, 1}, {1, 1}, 2, true};
    dv_tensor *in[3];
    make_inputs(&c, DV_F64, 31, in);
    dv_set_requires_grad(in[1], false);
    dv_set_requires_grad(in[2], false);
    ut_gradcheck("conv2d frozen w", run_conv, in, 3, &c, 1e-6);
    CHECK(in[0]->grad != NULL);
    CHECK(in[1]->grad == NULL);
    CHECK(in[2]->grad == NULL);
    /* only the weight wants a gradient (a frozen input image) */
    dv_zero_grad(in[0]);
    dv_set_requires_grad(in[0], false);
    dv_set_requires_grad(in[1], true);
    ut_gradcheck("conv2d frozen x", run_conv, in, 3, &c, 1e-6);
    CHECK(in[0]->grad == NULL);
    CHECK(in[1]->grad != NULL);
    for (int i = 0; i < 3; i++) dv_release(in[i]);
}

TEST(conv2d_parity) {
    const conv_cfg cases[] = {
        {1, 3, 56, 56, 32, 14, 14, {14, 14}, {0, 0}, {1, 1}, 1, false}, /* ViT-L/14 patch embedding */
        {2, 16, 14, 14, 32, 3, 3, {2, 2}, {1, 1}, {1, 1}, 1, true},     /* bottleneck 3x3 / 2 */
        {2, 32, 7, 7, 64, 1, 1, {1, 1}, {0, 0}, {1, 1}, 1, false},      /* bottleneck 1x1 */
        {2, 8, 9, 9, 8, 3, 3, {1, 1}, {1, 1}, {1, 1}, 8, true},         /* depthwise */
        {2, 8, 11, 10, 12, 3, 3, {1, 2}, {1, 1}, {1, 1}, 4, false},     /* grouped */
    };
    for (int k = 0; k < 5; k++) {
        dv_tensor *in[3];
        make_inputs(&cases[k], DV_F32, 60 + k, in);
        char what[64];
        snprintf(what, sizeof what, "conv2d parity case %d", k);
        ut_parity(what, run_conv, in, cases[k].bias ? 3 : 2, (void *)&cases[k], 1e-4);
        for (int i = 0; i < 3; i++) dv_release(in[i]);
    }
}

/* ---- PyTorch fixtures ---- */
static bool fixture_cfg(const char *name, int64_t *cfg, int n) {
    char key[128];
    snprintf(key, sizeof key, "%s.cfg", name);
    return ut_fixture_ints("spatial.bin", key, cfg, n);
}

typedef struct { int stride[2], pad[2], dil[2], groups; } conv_args;
static dv_tensor *run_conv_fixture(dv_tensor **in, void *ctx) {
    const conv_args *a = ctx;
    return dv_conv2d(in[0], in[1], in[2], a->stride, a->pad, a->dil, a->groups);
}

TEST(conv2d_fixtures) {
    const char *names[] = {"conv_basic", "conv_stride2", "conv_dilated", "conv_groups", "conv_depthwise",
                           "conv_1x1", "conv_1x1_stride2", "conv_patch14", "conv_stem7", "conv_f64"};
    for (int k = 0; k < (int)(sizeof names / sizeof names[0]); k++) {
        int64_t c[7];
        if (!fixture_cfg(names[k], c, 7)) continue;
        conv_args a = {{(int)c[0], (int)c[1]}, {(int)c[2], (int)c[3]}, {(int)c[4], (int)c[5]}, (int)c[6]};
        ut_fixture("spatial.bin", names[k], run_conv_fixture, &a, k == 9 ? 1e-12 : 2e-6);
    }
}

/* ---- edges ---- */
TEST(conv2d_zero_size) {
    /* empty batch: empty output, zero weight gradient */
    dv_tensor *x = ut_randn_leaf(DV_F32, DV_SHAPE(0, 3, 5, 5), 1), *w = ut_randn_leaf(DV_F32, DV_SHAPE(4, 3, 3, 3), 2);
    dv_tensor *y = dv_conv2d(x, w, NULL, (int[]){2, 2}, (int[]){1, 1}, NULL, 1);
    CHECK(y->ndim == 4 && y->shape[0] == 0 && y->shape[1] == 4 && y->shape[2] == 3 && y->shape[3] == 3);
    dv_tensor *s = dv_sum_all(y);
    dv_backward(s);
    CHECK(w->grad && dv_numel(w->grad) == 108);
    for (int64_t i = 0; w->grad && i < 108; i++) CHECK(dv_flat_get(w->grad, i) == 0);
    dv_release(s); dv_release(y); dv_release(x); dv_release(w);
    /* no input channels: the output is the bias */
    x = ut_randn(DV_F32, DV_SHAPE(2, 0, 4, 4), 3);
    w = ut_randn(DV_F32, DV_SHAPE(3, 0, 3, 3), 4);
    dv_tensor *b = dv_from_f64(DV_F32, DV_SHAPE(3), (double[]){1, 2, 3});
    y = dv_conv2d(x, w, b, NULL, NULL, NULL, 1);
    CHECK(y->shape[0] == 2 && y->shape[1] == 3 && y->shape[2] == 2 && y->shape[3] == 2);
    for (int64_t i = 0; i < dv_numel(y); i++) CHECK(dv_flat_get(y, i) == (double)(i / 4 % 3 + 1));
    dv_release(y); dv_release(x); dv_release(w); dv_release(b);
}

static void bad_groups(void *ctx) {
    dv_tensor *x = dv_zeros(DV_F32, DV_SHAPE(1, 6, 5, 5)), *w = dv_zeros(DV_F32, DV_SHAPE(4, 3, 3, 3));
    dv_conv2d(x, w, NULL, NULL, NULL, NULL, 4);
}
static void bad_kernel(void *ctx) {
    dv_tensor *x = dv_zeros(DV_F32, DV_SHAPE(1, 3, 4, 4)), *w = dv_zeros(DV_F32, DV_SHAPE(4, 3, 3, 3));
    dv_conv2d(x, w, NULL, NULL, NULL, (int[]){2, 2}, 1);
}
static void bad_bias(void *ctx) {
    dv_tensor *x = dv_zeros(DV_F32, DV_SHAPE(1, 3, 4, 4)), *w = dv_zeros(DV_F32, DV_SHAPE(4, 3, 3, 3));
    dv_tensor *b = dv_zeros(DV_F32, DV_SHAPE(3));
    dv_conv2d(x, w, b, NULL, NULL, NULL, 1);
}

TEST(conv2d_bad_calls) {
    ut_aborts_with(bad_groups, NULL, "do not fit groups = 4");
    ut_aborts_with(bad_kernel, NULL, "does not fit the padded input (1, 3, 4, 4)");
    ut_aborts_with(bad_bias, NULL, "bias must be (4)");
}
