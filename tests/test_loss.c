/* tests/test_loss.c — mse_loss, l1_loss, bce_with_logits, cross_entropy: f64 gradient checks,
 * AVX-512 vs portable parity, PyTorch fixtures, ignore_index and empty batches, and calls that
 * must abort (out-of-range class ids, shape mismatches). */
#include "tests/util.h"
#include "kernels/cpu.h"

#include <stdlib.h>


typedef enum { L_MSE, L_L1, L_BCE } pair_loss;

static dv_tensor *run_pair(dv_tensor **in, void *c) {
    switch (*(pair_loss *)c) {
    case L_MSE: return dv_mse_loss(in[0], in[1]);
    case L_L1: return dv_l1_loss(in[0], in[1]);
    default: return dv_bce_with_logits(in[0], in[1]);
    }
}

static dv_tensor *run_ce(dv_tensor **in, void *c) { return dv_cross_entropy(in[0], in[1], *(int64_t *)c); }

/* uniform [0, 1) targets for BCE */
static dv_tensor *rand01(dv_dtype dt, const int64_t *shape, int nd, uint64_t seed, bool grad) {
    dv_rng r = dv_rng_new(seed);
    dv_tensor *t = dv_rand(&r, dt, shape, nd);
    if (grad) dv_set_requires_grad(t, true);
    return t;
}

TEST(loss_pair_gradcheck) {
    for (int k = 0; k < 3; k++) {
        pair_loss l = (pair_loss)k;
        const char *what = l == L_MSE ? "mse_loss" : l == L_L1 ? "l1_loss" : "bce_with_logits";
        dv_tensor *a = ut_randn_leaf(DV_F64, DV_SHAPE(3, 5), 200 + k);
        dv_tensor *b = l == L_BCE ? rand01(DV_F64, DV_SHAPE(3, 5), 210 + k, true) : ut_randn_leaf(DV_F64, DV_SHAPE(3, 5), 210 + k);
        if (l == L_BCE) dv_flat_set(a, 0, 0.0); /* the kink of max(x, 0) and |x|: smooth here */
        ut_gradcheck(what, run_pair, (dv_tensor *[]){a, b}, 2, &l, 1e-6);
        dv_tensor *an = ut_noncontig(a);
        ut_gradcheck(what, run_pair, (dv_tensor *[]){an, b}, 2, &l, 1e-6);
        dv_release(a); dv_release(b); dv_release(an);
    }
}

TEST(loss_cross_entropy_gradcheck) {
    dv_tensor *x = ut_randn_leaf(DV_F64, DV_SHAPE(6, 7), 220);
    dv_tensor *xn = ut_noncontig(x);
    dv_tensor *t = dv_from_f64(DV_I64, DV_SHAPE(6), (double[]){3, 0, -100, 6, 3, 1});
    int64_t ign = -100;
    ut_gradcheck("cross_entropy", run_ce, (dv_tensor *[]){x, t}, 2, &ign, 1e-6);
    ut_gradcheck("cross_entropy", run_ce, (dv_tensor *[]){xn, t}, 2, &ign, 1e-6);
    /* i32 targets through a strided view, ignoring class 3 */
    dv_tensor *t32 = dv_from_f64(DV_I32, DV_SHAPE(12), (double[]){3, 9, 0, 9, 5, 9, 6, 9, 3, 9, 1, 9});
    dv_tensor *ts = dv_slice(t32, 0, 0, 12, 2);
    ign = 3;
    ut_gradcheck("cross_entropy i32", run_ce, (dv_tensor *[]){x, ts}, 2, &ign, 1e-6);
    dv_release(x); dv_release(xn); dv_release(t); dv_release(t32); dv_release(ts);
}

TEST(loss_parity) {
    const int64_t shapes[][2] = {{6, 37}, {5, 1000}, {3, 16}, {4, 1}};
    for (int k = 0; k < 4; k++) {
        int64_t n = shapes[k][0], c = shapes[k][1];
        dv_tensor *x = ut_randn_leaf(DV_F32, shapes[k], 2, 230 + k);
        dv_rng r = dv_rng_new(240 + k);
        dv_tensor *t = dv_randint(&r, DV_I64, 0, c, &n, 1);
        dv_flat_set(t, 1, -100);
        int64_t ign = -100;
        ut_parity("cross_entropy", run_ce, (dv_tensor *[]){x, t}, 2, &ign, 1e-5);
        dv_release(x); dv_release(t);
    }
    for (int k = 0; k < 3; k++) {
        pair_loss l = (pair_loss)k;
        dv_tensor *a = ut_randn_leaf(DV_F32, DV_SHAPE(7, 33), 250 + k), *b = rand01(DV_F32, DV_SHAPE(7, 33), 260 + k, true);
        ut_parity("pair loss", run_pair, (dv_tensor *[]){a, b}, 2, &l, 1e-5);
        dv_release(a); dv_release(b);
    }
}

/* max over elements of |a - b| / |b| (elements where b is 0 must match exactly) */
static double max_elem_rel(const dv_tensor *a, const dv_tensor *b) {
    int64_t n = dv_numel(b);
    double *x = malloc(sizeof(double) * (size_t)n), *y = malloc(sizeof(double) * (size_t)n), e = 0;
    dv_to_f64(a, x);
    dv_to_f64(b, y);
    for (int64_t i = 0; i < n; i++) e = fmax(e, y[i] == 0 ? (x[i] == 0 ? 0 : INFINITY) : fabs(x[i] - y[i]) / fabs(y[i]));
    free(x);
    free(y);
    return e;
}

/* logits around 100 (C = 1000): the per-row logsumexp must keep more than f32 precision, or every
 * probability in the backward is off by up to 4e-6 relative. f32 on both kernel sets vs f64; the
 * floor is ~1e-6, from rounding arguments like x - lse = -17 to f32 before the exp. */
TEST(loss_cross_entropy_large_logits) {
    int64_t n = 16, c = 1000;
    dv_tensor *x0 = ut_randn(DV_F32, DV_SHAPE(n, c), 280), *x = dv_scale(x0, 3.0), *xo = dv_add_scalar(x, 100.0);
    dv_release(x0); dv_release(x);
    x = xo;
    dv_set_requires_grad(x, true);
    dv_rng r = dv_rng_new(281);
    dv_tensor *t = dv_randint(&r, DV_I64, 0, c, &n, 1);
    dv_tensor *x64 = dv_cast(x, DV_F64), *xl = dv_detach(x64);
    dv_set_requires_grad(xl, true);
    dv_tensor *yref = dv_cross_entropy(xl, t, -100);
    dv_backward(yref);
    for (int isa = 0; isa < 2; isa++) {
        if (isa == DV_ISA_AVX512 && !dv_cpu_has_avx512()) continue;
        dv_isa prev = dv_cpu_isa();
        dv_cpu_set_isa((dv_isa)isa);
        dv_zero_grad(x);
        dv_tensor *y = dv_cross_entropy(x, t, -100);
        dv_backward(y);
        CHECK_CLOSE(dv_item(y), dv_item(yref), 1e-6);
        double e = max_elem_rel(x->grad, xl->grad);
        CHECK_MSG(e < 2e-6, "%s: gradient off by %.3g relative", isa ? "avx512" : "portable", e);
        if (dv_test_verbose) printf("  %s: loss error %.2g, grad error %.2g\n", isa ? "avx512" : "portable",
                                    fabs(dv_item(y) - dv_item(yref)), e);
        dv_release(y);
        dv_cpu_set_isa(prev);
    }
    dv_release(x); dv_release(t); dv_release(x64); dv_release(xl); dv_release(yref);
}

TEST(loss_fixtures) {
    static pair_loss mse = L_MSE, l1 = L_L1, bce = L_BCE;
    static int64_t ign100 = -100, ign2 = 2;
    const struct { const char *name; dv_test_op op; void *ctx; } cases[] = {
        {"mse", run_pair, &mse},  {"l1", run_pair, &l1}, {"bce", run_pair, &bce},
        {"ce_basic", run_ce, &ign100}, {"ce_ignore_default", run_ce, &ign100},
        {"ce_ignore2_i32", run_ce, &ign2}, {"ce_all_ignored", run_ce, &ign100},
    };
    for (int isa = 0; isa < 2; isa++) {
        dv_isa prev = dv_cpu_isa();
        dv_cpu_set_isa((dv_isa)isa);
        for (int k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++)
            ut_fixture("norm.bin", cases[k].name, cases[k].op, cases[k].ctx, 1e-5);
        dv_cpu_set_isa(prev);
    }
}

TEST(loss_edges) {
    /* every target ignored: NaN loss (as torch), zero gradient */
    dv_tensor *x = ut_randn_leaf(DV_F32, DV_SHAPE(3, 4), 270);
    dv_tensor *t = dv_full(DV_I64, DV_SHAPE(3), -100);
    dv_tensor *y = dv_cross_entropy(x, t, -100);
    CHECK(y->ndim == 0 && isnan(dv_item(y)));
    dv_backward(y);
    CHECK(x->grad != NULL);
    for (int i = 0; x->grad && i < 12; i++) CHECK(dv_flat_get(x->grad, i) == 0);
    dv_release(x); dv_release(t); dv_release(y);
    /* an empty batch: NaN, no crash */
    dv_tensor *e = dv_zeros(DV_F32, DV_SHAPE(0, 5)), *et = dv_zeros(DV_I64, DV_SHAPE(0));
    dv_tensor *ey = dv_cross_entropy(e, et, -100), *em = dv_mse_loss(e, e), *eb = dv_bce_with_logits(e, e);
    CHECK(isnan(dv_item(ey)) && isnan(dv_item(em)) && isnan(dv_item(eb)));
    dv_release(e); dv_release(et); dv_release(ey); dv_release(em); dv_release(eb);
    /* huge logits: no overflow in either loss */
    dv_tensor *h = dv_from_f64(DV_F32, DV_SHAPE(1, 3), (double[]){1e4, 0, -1e4});
    dv_tensor *ht = dv_from_f64(DV_I64, DV_SHAPE(1), (double[]){1});
    dv_tensor *hy = dv_cross_entropy(h, ht, -100);
    CHECK_CLOSE(dv_item(hy), 1e4, 1e-6);
    dv_tensor *hb = dv_from_f64(DV_F32, DV_SHAPE(2), (double[]){200, -200}), *hbt = dv_from_f64(DV_F32, DV_SHAPE(2), (double[]){0, 1});
    dv_tensor *hby = dv_bce_with_logits(hb, hbt);
    CHECK_CLOSE(dv_item(hby), 200, 1e-6);
    dv_release(h); dv_release(ht); dv_release(hy); dv_release(hb); dv_release(hbt); dv_release(hby);
}

static void ce_out_of_range(void *ctx) {
    dv_tensor *x = dv_zeros(DV_F32, DV_SHAPE(3, 5));
    dv_tensor *t = dv_from_f64(DV_I64, DV_SHAPE(3), (double[]){0, 5, 1});
    dv_cross_entropy(x, t, -100);
}
static void ce_negative(void *ctx) {
    dv_tensor *x = dv_zeros(DV_F32, DV_SHAPE(3, 5));
    dv_tensor *t = dv_from_f64(DV_I32, DV_SHAPE(3), (double[]){0, 1, -1});
    dv_cross_entropy(x, t, -100);
}
static void ce_float_target(void *ctx) {
    dv_tensor *x = dv_zeros(DV_F32, DV_SHAPE(3, 5)), *t = dv_zeros(DV_F32, DV_SHAPE(3));
    dv_cross_entropy(x, t, -100);
}
static void ce_bad_shape(void *ctx) {
    dv_tensor *x = dv_zeros(DV_F32, DV_SHAPE(3, 5)), *t = dv_zeros(DV_I64, DV_SHAPE(4));
    dv_cross_entropy(x, t, -100);
}
static void mse_broadcast(void *ctx) {
    dv_tensor *a = dv_zeros(DV_F32, DV_SHAPE(4, 1)), *b = dv_zeros(DV_F32, DV_SHAPE(4));
    dv_mse_loss(a, b);
}

TEST(loss_bad_calls_abort) {
    CHECK(ut_aborts_with(ce_out_of_range, NULL, "cross_entropy: target[1] = 5 is not a class id in [0, 5)"));
    CHECK(ut_aborts_with(ce_negative, NULL, "cross_entropy: target[2] = -1 is not a class id"));
    CHECK(ut_aborts_with(ce_float_target, NULL, "cross_entropy: target must be i32 or i64"));
    CHECK(ut_aborts_with(ce_bad_shape, NULL, "cross_entropy: expected logits (N, C) and target (N), got (3, 5) and (4)"));
    CHECK(ut_aborts_with(mse_broadcast, NULL, "mse_loss: shape mismatch (4, 1) vs (4)"));
}

/* every op of this group, forward and backward, gives back all its memory (graph nodes release
 * what they saved) */
TEST(loss_norm_reduce_no_leaks) {
    int64_t before = dv_alloc_get_stats().live_bytes;
    dv_tensor *x = ut_randn_leaf(DV_F32, DV_SHAPE(6, 40), 300), *w = ut_randn_leaf(DV_F32, DV_SHAPE(40), 301);
    dv_tensor *b = ut_randn_leaf(DV_F32, DV_SHAPE(40), 302), *tf = ut_randn(DV_F32, DV_SHAPE(6, 40), 303);
    dv_tensor *t = dv_from_f64(DV_I64, DV_SHAPE(6), (double[]){1, 39, -100, 0, 7, 7});
    for (int k = 0; k < 14; k++) {
        dv_tensor *y = NULL;
        switch (k) {
        case 0: y = dv_softmax(x, 0); break;
        case 1: y = dv_log_softmax(x, -1); break;
        case 2: y = dv_layer_norm(x, w, b, 1e-5); break;
        case 3: y = dv_rms_norm(x, w, 1e-5); break;
        case 4: y = dv_cross_entropy(x, t, -100); break;
        case 5: y = dv_bce_with_logits(x, tf); break;
        case 6: y = dv_mse_loss(x, tf); break;
        case 7: y = dv_l1_loss(x, tf); break;
        case 8: y = dv_max(x, 1, false); break;
        case 9: y = dv_min(x, 0, true); break;
        case 10: y = dv_logsumexp(x, 1, true); break;
        case 11: y = dv_cumsum(x, 0); break;
        case 12: y = dv_var(x, (int[]){1}, 1, 1, false); break;
        default: y = dv_layer_norm(x, NULL, NULL, 1e-5); break;
        }
        dv_tensor *l = dv_sum_all(y);
        dv_backward(l);
        dv_release(l);
        dv_release(y);
        dv_zero_grad(x); dv_zero_grad(w); dv_zero_grad(b);
    }
    dv_release(x); dv_release(w); dv_release(b); dv_release(tf); dv_release(t);
    CHECK_MSG(dv_alloc_get_stats().live_bytes == before, "live bytes %lld -> %lld",
              (long long)before, (long long)dv_alloc_get_stats().live_bytes);
}
