/* tests/test_rotary.c — RoPE (rotate-half, interleaved, partial) and 3D Diffuser Actor's 3-D
 * rotary: f64 gradients (incl. a transposed (B, T, H, D) view), AVX-512 vs portable, PyTorch
 * fixtures, and the relative-position property (shifting every position leaves q·k alone). */
#include "nn/rotary.h"
#include "tensor/autograd.h"
#include "kernels/cpu.h"
#include "tests/util.h"

typedef struct { dv_tensor *pos; double theta; int64_t rot; dv_rope_style style; } rope_ctx;

static dv_tensor *run_rope(dv_tensor **in, void *ctx) {
    rope_ctx *c = ctx;
    return dv_rope(in[0], c->pos, c->theta, c->rot, c->style);
}

static dv_tensor *run_r3d(dv_tensor **in, void *ctx) { return dv_rotary3d_apply(in[0], (dv_tensor *)ctx); }

/* a (B, H, T, D) leaf stored as (B, T, H, D) and transposed: the layout of q after a linear */
static dv_tensor *transposed_leaf(dv_dtype dt, int64_t B, int64_t H, int64_t T, int64_t D, uint64_t seed) {
    dv_tensor *raw = ut_randn(dt, DV_SHAPE(B, T, H, D), seed);
    dv_tensor *v = dv_transpose(raw, 1, 2);
    dv_set_requires_grad(v, true); /* a view of a no-grad tensor: still a leaf */
    dv_release(raw);
    return v;
}

TEST(rotary_gradcheck) {
    dv_tensor *pos = dv_from_f64(DV_I64, DV_SHAPE(5), (double[]){0, 1, 2, 3, 9});
    dv_tensor *pos2 = dv_from_f64(DV_F64, DV_SHAPE(2, 5), (double[]){0, 1, 2, 3, 4, 3.5, 7, 11, 12, 20});
    rope_ctx cs[3] = {{pos, 10000, 8, DV_ROPE_HALF}, {pos2, 100, 6, DV_ROPE_INTERLEAVED}, {pos, 10000, 10, DV_ROPE_INTERLEAVED}};
    for (int k = 0; k < 3; k++) {
        dv_tensor *x = ut_randn_leaf(DV_F64, DV_SHAPE(2, 3, 5, 10), 100 + k);
        ut_gradcheck("rope", run_rope, &x, 1, &cs[k], 1e-6);
        dv_tensor *xt = transposed_leaf(DV_F64, 2, 3, 5, 10, 110 + k);
        CHECK(!dv_is_contiguous(xt));
        ut_gradcheck("rope transposed", run_rope, &xt, 1, &cs[k], 1e-6);
        dv_tensor *xn = ut_noncontig(x);
        ut_gradcheck("rope noncontig", run_rope, &xn, 1, &cs[k], 1e-6);
        dv_release(x); dv_release(xt); dv_release(xn);
    }
    /* 3-D rotary: x (B, N, D) and (B, H, N, D) with pe broadcast over heads */
    dv_tensor *xyz = ut_randn(DV_F64, DV_SHAPE(2, 4, 3), 120);
    dv_tensor *pe = dv_rotary3d_features(xyz, 12);
    dv_tensor *x3 = ut_randn_leaf(DV_F64, DV_SHAPE(2, 4, 12), 121);
    ut_gradcheck("rotary3d", run_r3d, &x3, 1, pe, 1e-6);
    dv_tensor *x4 = transposed_leaf(DV_F64, 2, 3, 4, 12, 122);
    ut_gradcheck("rotary3d heads", run_r3d, &x4, 1, pe, 1e-6);
    dv_release(x3); dv_release(x4); dv_release(pe); dv_release(xyz);
    dv_release(pos); dv_release(pos2);
}

TEST(rotary_parity) {
    dv_tensor *pos = dv_arange(DV_F32, 3, 3 + 9, 1);
    /* half = 40: two full vectors + a tail; interleaved 50 of 72: masked tail; 6: tail only */
    rope_ctx cs[3] = {{pos, 10000, 80, DV_ROPE_HALF}, {pos, 10000, 50, DV_ROPE_INTERLEAVED}, {pos, 10000, 6, DV_ROPE_HALF}};
    for (int k = 0; k < 3; k++) {
        dv_tensor *x = transposed_leaf(DV_F32, 2, 3, 9, k == 0 ? 80 : 72, 200 + k);
        ut_parity("rope", run_rope, &x, 1, &cs[k], 1e-6);
        dv_release(x);
    }
    dv_tensor *xyz = ut_randn(DV_F32, DV_SHAPE(2, 9, 3), 210);
    dv_tensor *pe = dv_rotary3d_features(xyz, 102);
    dv_tensor *x = ut_randn_leaf(DV_F32, DV_SHAPE(2, 2, 9, 102), 211);
    ut_parity("rotary3d", run_r3d, &x, 1, pe, 1e-6);
    dv_release(x); dv_release(pe); dv_release(xyz); dv_release(pos);
}

static dv_tensor *run_rope_fx(dv_tensor **in, void *ctx) {
    rope_ctx *c = ctx;
    return dv_rope(in[0], in[1], c->theta, c->rot, c->style);
}

static dv_tensor *run_r3d_fx(dv_tensor **in, void *ctx) { return dv_rotary3d_apply(in[0], in[1]); }

TEST(rotary_fixtures) {
    for (int isa = 1; isa >= 0; isa--) {
        if (isa == DV_ISA_AVX512 && !dv_cpu_has_avx512()) continue;
        dv_isa prev = dv_cpu_isa();
        dv_cpu_set_isa((dv_isa)isa);
        rope_ctx c1 = {NULL, 10000, 64, DV_ROPE_HALF}, c2 = {NULL, 500000, 40, DV_ROPE_HALF},
                 c3 = {NULL, 10000, 24, DV_ROPE_INTERLEAVED};
        ut_fixture("rotary.bin", "rope_half", run_rope_fx, &c1, 1e-5);
        ut_fixture("rotary.bin", "rope_decode", run_rope_fx, &c2, 1e-5);
        ut_fixture("rotary.bin", "rope_interleaved_partial", run_rope_fx, &c3, 1e-5);
        ut_fixture("rotary.bin", "r3d_apply", run_r3d_fx, NULL, 1e-5);
        dv_cpu_set_isa(prev);
    }
    ut_fixture_file *f = ut_fixture_open("tests/reference/rotary.bin");
    if (f) {
        dv_tensor *xyz = ut_fixture_get(f, "r3d_feat.in0"), *ref = ut_fixture_get(f, "r3d_feat.out");
        CHECK(xyz && ref);
        if (xyz && ref) {
            dv_tensor *pe = dv_rotary3d_features(xyz, 36);
            ut_check_tensor("rotary3d_features", pe, ref, 1e-6);
            dv_release(pe);
        }
        dv_release(xyz); dv_release(ref);
        ut_fixture_close(f);
    }
}

/* q·k over D for every (query i, key j) of head 0, batch 0 */
static void dots(dv_tensor *q, dv_tensor *k, double *out, int64_t T, int64_t D) {
    for (int64_t i = 0; i < T; i++)
        for (int64_t j = 0; j < T; j++) {
            double s = 0;
            for (int64_t d = 0; d < D; d++)
                s += dv_get(q, (int64_t[]){0, 0, i, d}) * dv_get(k, (int64_t[]){0, 0, j, d});
            out[i * T + j] = s;
        }
}

TEST(rotary_relative_invariance) {
    enum { T = 6, D = 24 };
    dv_tensor *q = ut_randn(DV_F64, DV_SHAPE(1, 1, T, D), 300), *k = ut_randn(DV_F64, DV_SHAPE(1, 1, T, D), 301);
    double a[T * T], b[T * T];
    for (int style = 0; style < 2; style++) {
        dv_tensor *p0 = dv_from_f64(DV_F64, DV_SHAPE(T), (double[]){0, 1, 2, 5, 8, 13});
        dv_tensor *p1 = dv_from_f64(DV_F64, DV_SHAPE(T), (double[]){1000, 1001, 1002, 1005, 1008, 1013});
        dv_tensor *q0 = dv_rope(q, p0, 10000, D, style), *k0 = dv_rope(k, p0, 10000, D, style);
        dv_tensor *q1 = dv_rope(q, p1, 10000, D, style), *k1 = dv_rope(k, p1, 10000, D, style);
        dots(q0, k0, a, T, D);
        dots(q1, k1, b, T, D);
        double err = 0;
        int changed = 0;
        for (int i = 0; i < T * T; i++) err = fmax(err, fabs(a[i] - b[i]));
        CHECK_MSG(err < 1e-9, "rope style %d: q·k changed by %g under a shift of positions", style, err);
        /* ...while the rotated vectors themselves did change */
        for (int64_t i = 0; i < T * D; i++) changed += fabs(dv_flat_get(q0, i) - dv_flat_get(q1, i)) > 1e-3;
        CHECK(changed > 0);
        dv_release(p0); dv_release(p1); dv_release(q0); dv_release(k0); dv_release(q1); dv_release(k1);
    }
    /* 3-D: translate every point by the same vector */
    dv_tensor *xyz = ut_randn(DV_F64, DV_SHAPE(1, T, 3), 302);
    dv_tensor *xyz2 = dv_clone(xyz);
    for (int64_t i = 0; i < T; i++)
        for (int ax = 0; ax < 3; ax++)
            dv_set(xyz2, (int64_t[]){0, i, ax}, dv_get(xyz, (int64_t[]){0, i, ax}) + (ax == 0 ? 0.7 : ax == 1 ? -1.3 : 2.9));
    dv_tensor *pe0 = dv_rotary3d_features(xyz, D), *pe1 = dv_rotary3d_features(xyz2, D);
    dv_tensor *q0 = dv_rotary3d_apply(q, pe0), *k0 = dv_rotary3d_apply(k, pe0);
    dv_tensor *q1 = dv_rotary3d_apply(q, pe1), *k1 = dv_rotary3d_apply(k, pe1);
    dots(q0, k0, a, T, D);
    dots(q1, k1, b, T, D);
    double err = 0;
    for (int i = 0; i < T * T; i++) err = fmax(err, fabs(a[i] - b[i]));
    CHECK_MSG(err < 1e-9, "rotary3d: q·k changed by %g under a translation", err);
    CHECK(fabs(dv_flat_get(q0, 0) - dv_flat_get(q1, 0)) > 1e-6);
    dv_release(xyz); dv_release(xyz2); dv_release(pe0); dv_release(pe1);
    dv_release(q0); dv_release(k0); dv_release(q1); dv_release(k1); dv_release(q); dv_release(k);
}

static void bad_rot(void *ctx) {
    dv_tensor *x = dv_zeros(DV_F32, DV_SHAPE(1, 2, 3, 8)), *p = dv_arange(DV_F32, 0, 3, 1);
    dv_release(dv_rope(x, p, 10000, 10, DV_ROPE_HALF)); /* rot_dim > D */
}

TEST(rotary_edges) {
    /* zero-size: no tokens, no batch */
    dv_tensor *x = dv_zeros(DV_F32, DV_SHAPE(2, 3, 0, 8)), *p = dv_zeros(DV_I64, DV_SHAPE(0));
    dv_tensor *y = dv_rope(x, p, 10000, 8, DV_ROPE_HALF);
    CHECK(dv_numel(y) == 0 && y->ndim == 4);
    dv_release(x); dv_release(p); dv_release(y);
    dv_tensor *xyz = dv_zeros(DV_F32, DV_SHAPE(0, 4, 3)), *pe = dv_rotary3d_features(xyz, 6);
    dv_tensor *x3 = dv_zeros(DV_F32, DV_SHAPE(0, 4, 6)), *y3 = dv_rotary3d_apply(x3, pe);
    CHECK(dv_numel(pe) == 0 && dv_numel(y3) == 0);
    dv_release(xyz); dv_release(pe); dv_release(x3); dv_release(y3);
    /* position 0 is the identity */
    dv_tensor *q = ut_randn(DV_F32, DV_SHAPE(1, 1, 1, 16), 400), *p0 = dv_zeros(DV_I64, DV_SHAPE(1));
    dv_tensor *q0 = dv_rope(q, p0, 10000, 16, DV_ROPE_INTERLEAVED);
    CHECK(ut_max_rel_diff(q0, q) == 0);
    dv_release(q); dv_release(p0); dv_release(q0);
    CHECK(ut_aborts_with(bad_rot, NULL, "rope"));
}
