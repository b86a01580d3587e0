/* tests/test_pool_resize.c — max / avg / adaptive-avg pooling and bilinear / nearest resizing:
 * f64 gradient checks (non-contiguous inputs, 3-D and 4-D), hand-computed values for the
 * PyTorch conventions that are easy to get wrong, PyTorch fixtures
 * (tests/reference/gen_spatial.py), zero-size and bad calls. No AVX-512 kernels here, so no
 * parity test. */
#include "tests/util.h"

#include <stdlib.h>
#include <string.h>

typedef enum { MAXP, AVGP, ADAPT, BILIN, NEAREST } spatial_kind;
typedef struct {
    spatial_kind kind;
    int k[2], s[2], p[2]; /* pools */
    int64_t oh, ow;       /* adaptive pool, resizes */
    bool align;
} spatial_case;

static dv_tensor *run_spatial(dv_tensor **in, void *ctx) {
    const spatial_case *c = ctx;
    switch (c->kind) {
    case MAXP: return dv_max_pool2d(in[0], c->k, c->s, c->p);
    case AVGP: return dv_avg_pool2d(in[0], c->k, c->s, c->p);
    case ADAPT: return dv_adaptive_avg_pool2d(in[0], c->oh, c->ow);
    case BILIN: return dv_resize_bilinear(in[0], c->oh, c->ow, c->align);
    default: return dv_resize_nearest(in[0], c->oh, c->ow);
    }
}

static const spatial_case k_cases[] = {
    {MAXP, {3, 3}, {2, 2}, {1, 1}, 0, 0, false},
    {MAXP, {2, 3}, {1, 2}, {0, 1}, 0, 0, false},
    {AVGP, {3, 3}, {2, 2}, {1, 1}, 0, 0, false},
    {AVGP, {2, 2}, {2, 1}, {1, 0}, 0, 0, false},
    {ADAPT, {0}, {0}, {0}, 3, 2, false},
    {ADAPT, {0}, {0}, {0}, 7, 9, false},   /* output larger than input: overlapping windows */
    {BILIN, {0}, {0}, {0}, 9, 11, false},
    {BILIN, {0}, {0}, {0}, 9, 11, true},
    {BILIN, {0}, {0}, {0}, 3, 4, false},
    {BILIN, {0}, {0}, {0}, 3, 4, true},
    {BILIN, {0}, {0}, {0}, 1, 1, true},    /* align_corners with one output: source 0 */
    {NEAREST, {0}, {0}, {0}, 9, 11, false},
    {NEAREST, {0}, {0}, {0}, 3, 4, false},
    {NEAREST, {0}, {0}, {0}, 10, 7, false},
};
#define N_CASES (int)(sizeof k_cases / sizeof k_cases[0])

TEST(pool_resize_gradcheck) {
    for (int k = 0; k < N_CASES; k++) {
        const spatial_case *c = &k_cases[k];
        char what[64];
        /* 4-D, contiguous; 3-D, non-contiguous */
        dv_tensor *x = ut_randn_leaf(DV_F64, DV_SHAPE(2, 2, 5, 7), 40 + k);
        snprintf(what, sizeof what, "spatial case %d", k);
        ut_gradcheck(what, run_spatial, &x, 1, (void *)c, 1e-6);
        dv_tensor *x3 = ut_randn_leaf(DV_F64, DV_SHAPE(3, 6, 5), 60 + k);
        dv_tensor *xn = ut_noncontig(x3);
        snprintf(what, sizeof what, "spatial case %d (3-D, non-contiguous)", k);
        ut_gradcheck(what, run_spatial, &xn, 1, (void *)c, 1e-6);
        /* the non-contiguous input gives the same output as the contiguous one */
        dv_tensor *y1 = run_spatial(&x3, (void *)c), *y2 = run_spatial(&xn, (void *)c);
        ut_check_tensor(what, y2, y1, 0);
        dv_release(y1); dv_release(y2);
        dv_release(x); dv_release(x3); dv_release(xn);
    }
}

static void check_values(const char *what, const dv_tensor *y, const double *want, int n) {
    CHECK_MSG(dv_numel(y) == n, "%s: %lld elements, want %d", what, (long long)dv_numel(y), n);
    for (int i = 0; i < n && i < dv_numel(y); i++)
        CHECK_MSG(fabs(dv_flat_get(y, i) - want[i]) < 1e-12, "%s[%d]: %.17g vs %.17g", what, i, dv_flat_get(y, i), want[i]);
}

/* small hand-worked examples of the torch conventions */
TEST(pool_resize_values) {
    /* 1 x 4: [0 1 2 3] */
    dv_tensor *x = dv_from_f64(DV_F64, DV_SHAPE(1, 1, 1, 4), (double[]){0, 1, 2, 3});
    /* avg pool 1x3 / 2 pad (0,1): windows [-1..1], [1..3]; padding counts in the divisor */
    dv_tensor *y = dv_avg_pool2d(x, (int[]){1, 3}, (int[]){1, 2}, (int[]){0, 1});
    check_values("avg count_include_pad", y, (double[]){1.0 / 3, 6.0 / 3}, 2);
    dv_release(y);
    /* adaptive 4 -> 3: windows [0,2) [1,3) [2,4) */
    y = dv_adaptive_avg_pool2d(x, 1, 3);
    check_values("adaptive", y, (double[]){0.5, 1.5, 2.5}, 3);
    dv_release(y);
    /* bilinear 4 -> 3, align_corners: sources 0, 1.5, 3 */
    y = dv_resize_bilinear(x, 1, 3, true);
    check_values("bilinear ac", y, (double[]){0, 1.5, 3}, 3);
    dv_release(y);
    /* bilinear 4 -> 8, no align_corners: src = (o + 0.5)/2 - 0.5, clamped at 0, last tap repeated */
    y = dv_resize_bilinear(x, 1, 8, false);
    check_values("bilinear noac", y, (double[]){0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3}, 8);
    dv_release(y);
    /* nearest 4 -> 3: floor(o * 4/3) = 0, 1, 2;  4 -> 6: floor(o * 2/3) = 0 0 1 2 2 3 */
    y = dv_resize_nearest(x, 1, 3);
    check_values("nearest down", y, (double[]){0, 1, 2}, 3);
    dv_release(y);
    y = dv_resize_nearest(x, 1, 6);
    check_values("nearest up", y, (double[]){0, 0, 1, 2, 2, 3}, 6);
    dv_release(y);
    dv_release(x);
    /* max pool: gradient to the first maximum of a tie, NaN wins */
    x = dv_from_f64(DV_F64, DV_SHAPE(1, 1, 2, 2), (double[]){5, 5, 1, 2});
    dv_set_requires_grad(x, true);
    y = dv_max_pool2d(x, (int[]){2, 2}, NULL, NULL);
    dv_tensor *s = dv_sum_all(y);
    dv_backward(s);
    check_values("max tie grad", x->grad, (double[]){1, 0, 0, 0}, 4);
    dv_release(s); dv_release(y); dv_release(x);
    x = dv_from_f64(DV_F32, DV_SHAPE(1, 2, 2), (double[]){1, NAN, 3, 2});
    y = dv_max_pool2d(x, (int[]){2, 2}, NULL, NULL);
    CHECK(isnan(dv_flat_get(y, 0)));
    dv_release(y); dv_release(x);
}

/* ---- PyTorch fixtures ---- */
static bool fixture_cfg(const char *name, int64_t *cfg, int n) {
    char key[128];
    snprintf(key, sizeof key, "%s.cfg", name);
    return ut_fixture_ints("spatial.bin", key, cfg, n);
}

TEST(pool_fixtures) {
    const char *pools[] = {"pool_k3s2p1", "pool_k2s2", "pool_k3s1"};
    for (int k = 0; k < 3; k++)
        for (int avg = 0; avg < 2; avg++) {
            char name[64];
            snprintf(name, sizeof name, "%s%s", avg ? "avg" : "max", pools[k]);
            int64_t c[6];
            if (!fixture_cfg(name, c, 6)) continue;
            spatial_case sc = {avg ? AVGP : MAXP, {(int)c[0], (int)c[1]}, {(int)c[2], (int)c[3]}, {(int)c[4], (int)c[5]}, 0, 0, false};
            ut_fixture("spatial.bin", name, run_spatial, &sc, 1e-6);
        }
    const char *adaptive[] = {"adaptive_down", "adaptive_up", "adaptive_global"};
    for (int k = 0; k < 3; k++) {
        int64_t c[2];
        if (!fixture_cfg(adaptive[k], c, 2)) continue;
        spatial_case sc = {ADAPT, {0}, {0}, {0}, c[0], c[1], false};
        ut_fixture("spatial.bin", adaptive[k], run_spatial, &sc, 1e-6);
    }
}

TEST(resize_fixtures) {
    const char *sizes[] = {"up", "down", "up2x", "mixed"};
    for (int k = 0; k < 4; k++) {
        char name[64];
        int64_t c[3];
        for (int ac = 0; ac < 2; ac++) {
            snprintf(name, sizeof name, "bilinear_%s_%s", sizes[k], ac ? "ac" : "noac");
            if (!fixture_cfg(name, c, 3)) continue;
            spatial_case sc = {BILIN, {0}, {0}, {0}, c[0], c[1], c[2] != 0};
            ut_fixture("spatial.bin", name, run_spatial, &sc, 1e-6);
        }
        snprintf(name, sizeof name, "nearest_%s", sizes[k]);
        if (!fixture_cfg(name, c, 2)) continue;
        spatial_case sc = {NEAREST, {0}, {0}, {0}, c[0], c[1], false};
        ut_fixture("spatial.bin", name, run_spatial, &sc, 1e-6);
    }
    int64_t c[3];
    if (fixture_cfg("bilinear_f64_noac", c, 3)) {
        spatial_case sc = {BILIN, {0}, {0}, {0}, c[0], c[1], c[2] != 0};
        ut_fixture("spatial.bin", "bilinear_f64_noac", run_spatial, &sc, 1e-13);
    }
}

/* ---- edges ---- */
TEST(pool_resize_zero_size) {
    for (int k = 0; k < N_CASES; k++) {
        dv_tensor *x = ut_randn_leaf(DV_F32, DV_SHAPE(0, 3, 5, 7), 5);
        dv_tensor *y = run_spatial(&x, (void *)&k_cases[k]);
        CHECK(y->ndim == 4 && y->shape[0] == 0 && y->shape[1] == 3);
        dv_tensor *s = dv_sum_all(y);
        dv_backward(s);
        CHECK(!x->grad || dv_numel(x->grad) == 0);
        dv_release(s); dv_release(y); dv_release(x);
    }
    /* resizing to an empty size */
    dv_tensor *x = ut_randn(DV_F32, DV_SHAPE(1, 2, 3, 3), 6);
    dv_tensor *y = dv_resize_bilinear(x, 0, 4, false);
    CHECK(y->shape[2] == 0 && y->shape[3] == 4);
    dv_release(y); dv_release(x);
}

static void bad_pad(void *ctx) {
    dv_tensor *x = dv_zeros(DV_F32, DV_SHAPE(1, 1, 5, 5));
    dv_max_pool2d(x, (int[]){2, 2}, NULL, (int[]){2, 0});
}
static void bad_kernel(void *ctx) {
    dv_tensor *x = dv_zeros(DV_F32, DV_SHAPE(1, 1, 2, 5));
    dv_avg_pool2d(x, (int[]){3, 3}, NULL, NULL);
}
static void bad_rank(void *ctx) {
    dv_tensor *x = dv_zeros(DV_F32, DV_SHAPE(5, 5));
    dv_resize_bilinear(x, 3, 3, false);
}

TEST(pool_resize_bad_calls) {
    ut_aborts_with(bad_pad, NULL, "half the kernel");
    ut_aborts_with(bad_kernel, NULL, "larger than the padded input (1, 1, 2, 5)");
    ut_aborts_with(bad_rank, NULL, "expected (B, C, H, W) or (C, H, W), got (5, 5)");
}
