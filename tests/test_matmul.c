/* tests/test_matmul.c — matmul and linear: gradients, broadcasting, transposed views, frozen
 * weights, f16/bf16 stored weights, AVX-512 vs portable. */
#include "tests/util.h"
#include "kernels/half.h"

static dv_tensor *run_matmul(dv_tensor **in, void *ctx) { return dv_matmul(in[0], in[1]); }
static dv_tensor *run_matmul_bt(dv_tensor **in, void *ctx) {
    dv_tensor *bt = dv_transpose(in[1], -1, -2);
    dv_tensor *y = dv_matmul(in[0], bt);
    dv_release(bt);
    return y;
}
static dv_tensor *run_matmul_at(dv_tensor **in, void *ctx) {
    dv_tensor *at = dv_transpose(in[0], -1, -2);
    dv_tensor *y = dv_matmul(at, in[1]);
    dv_release(at);
    return y;
}
static dv_tensor *run_linear(dv_tensor **in, void *ctx) { return dv_linear(in[0], in[1], ctx ? in[2] : NULL); }

TEST(matmul_gradcheck_shapes) {
    struct { int64_t a[4]; int na; int64_t b[4]; int nb; } cases[] = {
        {{3, 4}, 2, {4, 5}, 2},          /* plain */
        {{2, 3, 4}, 3, {4, 2}, 2},       /* batch x matrix */
        {{2, 1, 3, 4}, 4, {3, 4, 2}, 3}, /* broadcast batch dims */
        {{4}, 1, {4, 3}, 2},             /* vector x matrix */
        {{3, 4}, 2, {4}, 1},             /* matrix x vector */
        {{4}, 1, {4}, 1},                /* dot */
        {{1, 4}, 2, {4, 1}, 2},
    };
    for (int k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++) {
        dv_tensor *a = ut_randn_leaf(DV_F64, cases[k].a, cases[k].na, 10 + k);
        dv_tensor *b = ut_randn_leaf(DV_F64, cases[k].b, cases[k].nb, 20 + k);
        ut_gradcheck("matmul", run_matmul, (dv_tensor *[]){a, b}, 2, NULL, 1e-6);
        dv_tensor *an = ut_noncontig(a), *bn = ut_noncontig(b);
        ut_gradcheck("matmul noncontig", run_matmul, (dv_tensor *[]){an, bn}, 2, NULL, 1e-6);
        dv_release(a); dv_release(b); dv_release(an); dv_release(bn);
    }
    /* transposed views reach the GEMM as flags */
    dv_tensor *a = ut_randn_leaf(DV_F64, DV_SHAPE(2, 3, 4), 1), *b = ut_randn_leaf(DV_F64, DV_SHAPE(2, 5, 4), 2);
    ut_gradcheck("matmul a·bᵀ", run_matmul_bt, (dv_tensor *[]){a, b}, 2, NULL, 1e-6);
    dv_tensor *c = ut_randn_leaf(DV_F64, DV_SHAPE(2, 3, 5), 3);
    ut_gradcheck("matmul aᵀ·c", run_matmul_at, (dv_tensor *[]){a, c}, 2, NULL, 1e-6);
    dv_release(a); dv_release(b); dv_release(c);
}

TEST(matmul_values_and_errors) {
    dv_tensor *a = dv_from_f64(DV_F32, DV_SHAPE(2, 3), (double[]){1, 2, 3, 4, 5, 6});
    dv_tensor *b = dv_from_f64(DV_F32, DV_SHAPE(3, 2), (double[]){7, 8, 9, 10, 11, 12});
    dv_tensor *c = dv_matmul(a, b);
    double want[4] = {58, 64, 139, 154};
    for (int i = 0; i < 4; i++) CHECK(dv_flat_get(c, i) == want[i]);
    dv_release(c);
    /* zero-size dims */
    dv_tensor *z = dv_zeros(DV_F32, DV_SHAPE(0, 3)), *zc = dv_matmul(z, b);
    CHECK(zc->shape[0] == 0 && zc->shape[1] == 2);
    dv_tensor *k0a = dv_zeros(DV_F32, DV_SHAPE(2, 0)), *k0b = dv_zeros(DV_F32, DV_SHAPE(0, 4));
    dv_tensor *k0 = dv_matmul(k0a, k0b);
    CHECK(k0->shape[0] == 2 && k0->shape[1] == 4);
    for (int i = 0; i < 8; i++) CHECK(dv_flat_get(k0, i) == 0);
    dv_release(z); dv_release(zc); dv_release(k0a); dv_release(k0b); dv_release(k0);
    dv_release(a); dv_release(b);
}

TEST(matmul_parity) {
    dv_tensor *a = ut_randn_leaf(DV_F32, DV_SHAPE(3, 37, 70), 5), *b = ut_randn_leaf(DV_F32, DV_SHAPE(70, 45), 6);
    ut_parity("matmul", run_matmul, (dv_tensor *[]){a, b}, 2, NULL, 1e-5);
    dv_tensor *bt = ut_randn_leaf(DV_F32, DV_SHAPE(3, 45, 70), 7);
    ut_parity("matmul a·bᵀ", run_matmul_bt, (dv_tensor *[]){a, bt}, 2, NULL, 1e-5);
    dv_release(a); dv_release(b); dv_release(bt);
}

TEST(linear_gradcheck_and_frozen_weight) {
    dv_tensor *x = ut_randn_leaf(DV_F64, DV_SHAPE(2, 3, 5), 1);
    dv_tensor *w = ut_randn_leaf(DV_F64, DV_SHAPE(4, 5), 2), *b = ut_randn_leaf(DV_F64, DV_SHAPE(4), 3);
    ut_gradcheck("linear", run_linear, (dv_tensor *[]){x, w, b}, 3, (void *)1, 1e-6);
    ut_gradcheck("linear no bias", run_linear, (dv_tensor *[]){x, w}, 2, NULL, 1e-6);
    dv_tensor *xn = ut_noncontig(x);
    ut_gradcheck("linear noncontig", run_linear, (dv_tensor *[]){xn, w, b}, 3, (void *)1, 1e-6);
    /* frozen weight: no gradient buffer, but x still gets its gradient */
    dv_set_requires_grad(w, false);
    dv_zero_grad(w);
    dv_zero_grad(x);
    ut_gradcheck("linear frozen w", run_linear, (dv_tensor *[]){x, w, b}, 3, (void *)1, 1e-6);
    CHECK(w->grad == NULL);
    CHECK(x->grad != NULL);
    dv_release(x); dv_release(xn); dv_release(w); dv_release(b);
}

TEST(linear_half_weights) {
    /* f16 / bf16 stored weights give the same result as the widened f32 weights */
    dv_tensor *x = ut_randn_leaf(DV_F32, DV_SHAPE(5, 40), 1);
    dv_tensor *w = ut_randn(DV_F32, DV_SHAPE(33, 40), 2);
    for (int k = 0; k < 2; k++) {
        dv_dtype hd = k ? DV_BF16 : DV_F16;
        dv_tensor *wh = dv_cast(w, hd);
        dv_tensor *ww = dv_cast(wh, DV_F32); /* exactly the widened values */
        dv_tensor *y = dv_linear(x, wh, NULL), *yr = dv_linear(x, ww, NULL);
        ut_check_tensor(k ? "linear bf16" : "linear f16", y, yr, 1e-5);
        /* the gradient flows through the half weight to x */
        dv_tensor *s = dv_sum_all(y);
        dv_zero_grad(x);
        dv_backward(s);
        CHECK(x->grad != NULL);
        dv_tensor *g1 = dv_clone(x->grad);
        dv_zero_grad(x);
        dv_tensor *sr = dv_sum_all(yr);
        dv_backward(sr);
        ut_check_tensor("half-weight grad", g1, x->grad, 1e-5);
        dv_release(g1); dv_release(s); dv_release(sr); dv_release(y); dv_release(yr); dv_release(wh); dv_release(ww);
    }
    dv_release(x); dv_release(w);
}

TEST(linear_parity) {
    dv_tensor *x = ut_randn_leaf(DV_F32, DV_SHAPE(2, 17, 64), 1);
    dv_tensor *w = ut_randn_leaf(DV_F32, DV_SHAPE(48, 64), 2), *b = ut_randn_leaf(DV_F32, DV_SHAPE(48), 3);
    ut_parity("linear", run_linear, (dv_tensor *[]){x, w, b}, 3, (void *)1, 1e-5);
    dv_release(x); dv_release(w); dv_release(b);
}
