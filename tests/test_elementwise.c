/* tests/test_elementwise.c — unary and binary ops: gradients (f64 finite differences), broadcasting,
 * non-contiguous inputs, AVX-512 vs portable, and PyTorch fixtures. */
#include "tests/util.h"

typedef struct { dv_unary_op op; double p1, p2; } unary_case;

static dv_tensor *run_unary(dv_tensor **in, void *ctx) {
    unary_case *c = ctx;
    return dv_unary(c->op, in[0], c->p1, c->p2);
}

static const unary_case k_unary[] = {
    {DV_UNARY_NEG, 0, 0}, {DV_UNARY_EXP, 0, 0}, {DV_UNARY_LOG, 0, 0}, {DV_UNARY_SQRT, 0, 0},
    {DV_UNARY_RSQRT, 0, 0}, {DV_UNARY_ABS, 0, 0}, {DV_UNARY_TANH, 0, 0}, {DV_UNARY_SIGMOID, 0, 0},
    {DV_UNARY_RELU, 0, 0}, {DV_UNARY_GELU, 0, 0}, {DV_UNARY_GELU_TANH, 0, 0}, {DV_UNARY_QUICK_GELU, 0, 0},
    {DV_UNARY_SILU, 0, 0}, {DV_UNARY_SQUARE, 0, 0}, {DV_UNARY_POW, 2.5, 0}, {DV_UNARY_CLAMP, -0.5, 0.7},
    {DV_UNARY_AFFINE, -1.5, 0.25},
};
#define N_UNARY (int)(sizeof k_unary / sizeof k_unary[0])

/* log, sqrt, rsqrt and pow need positive inputs */
static bool positive_only(dv_unary_op op) {
    return op == DV_UNARY_LOG || op == DV_UNARY_SQRT || op == DV_UNARY_RSQRT || op == DV_UNARY_POW;
}

static dv_tensor *test_input(dv_dtype dt, dv_unary_op op, uint64_t seed, const int64_t *shape, int nd) {
    dv_tensor *x = ut_randn(dt, shape, nd, seed);
    int64_t n = dv_numel(x);
    for (int64_t i = 0; i < n; i++) {
        double v = dv_flat_get(x, i);
        if (positive_only(op)) v = fabs(v) + 0.2;
        else if (fabs(v) < 1e-3) v += 0.01; /* keep finite differences off the kinks of abs/relu */
        if (op == DV_UNARY_CLAMP && (fabs(v + 0.5) < 1e-3 || fabs(v - 0.7) < 1e-3)) v += 0.01;
        dv_flat_set(x, i, v);
    }
    dv_set_requires_grad(x, true);
    return x;
}

TEST(unary_gradcheck) {
    for (int k = 0; k < N_UNARY; k++) {
        unary_case c = k_unary[k];
        dv_tensor *x = test_input(DV_F64, c.op, 10 + k, DV_SHAPE(3, 5));
        ut_gradcheck(dv_unary_name(c.op), run_unary, &x, 1, &c, 1e-6);
        dv_tensor *xn = ut_noncontig(x);
        ut_gradcheck(dv_unary_name(c.op), run_unary, &xn, 1, &c, 1e-6);
        dv_release(x);
        dv_release(xn);
    }
}

TEST(unary_parity) {
    for (int k = 0; k < N_UNARY; k++) {
        unary_case c = k_unary[k];
        dv_tensor *x = test_input(DV_F32, c.op, 20 + k, DV_SHAPE(7, 37));
        ut_parity(dv_unary_name(c.op), run_unary, &x, 1, &c, 2e-6);
        dv_release(x);
    }
}

static dv_tensor *run_binary(dv_tensor **in, void *ctx) { return dv_binary(*(dv_binary_op *)ctx, in[0], in[1]); }

TEST(binary_gradcheck_broadcast) {
    const dv_binary_op ops[] = {DV_BINARY_ADD, DV_BINARY_SUB, DV_BINARY_MUL, DV_BINARY_DIV,
                                DV_BINARY_POW, DV_BINARY_MAX, DV_BINARY_MIN};
    for (int k = 0; k < 7; k++) {
        dv_binary_op op = ops[k];
        dv_tensor *a = ut_randn_leaf(DV_F64, DV_SHAPE(2, 3, 4), 100 + k);
        dv_tensor *b = ut_randn_leaf(DV_F64, DV_SHAPE(3, 1), 200 + k);
        if (op == DV_BINARY_POW || op == DV_BINARY_DIV) {
            for (int64_t i = 0; i < dv_numel(a); i++) dv_flat_set(a, i, fabs(dv_flat_get(a, i)) + 0.5);
            for (int64_t i = 0; i < dv_numel(b); i++) dv_flat_set(b, i, fabs(dv_flat_get(b, i)) + 0.5);
        }
        ut_gradcheck(dv_binary_name(op), run_binary, (dv_tensor *[]){a, b}, 2, &op, 1e-6);
        ut_gradcheck(dv_binary_name(op), run_binary, (dv_tensor *[]){b, a}, 2, &op, 1e-6);
        dv_tensor *an = ut_noncontig(a);
        ut_gradcheck(dv_binary_name(op), run_binary, (dv_tensor *[]){an, b}, 2, &op, 1e-6);
        dv_release(a); dv_release(b); dv_release(an);
    }
}

TEST(binary_parity) {
    for (int op = DV_BINARY_ADD; op <= DV_BINARY_MIN; op++) {
        dv_binary_op o = (dv_binary_op)op;
        dv_tensor *a = ut_randn_leaf(DV_F32, DV_SHAPE(5, 33), 300 + op);
        dv_tensor *b = ut_randn_leaf(DV_F32, DV_SHAPE(33), 400 + op);
        dv_tensor *c = ut_randn_leaf(DV_F32, DV_SHAPE(5, 1), 500 + op);
        if (o == DV_BINARY_POW) {
            for (int64_t i = 0; i < dv_numel(a); i++) dv_flat_set(a, i, fabs(dv_flat_get(a, i)) + 0.5);
        }
        ut_parity(dv_binary_name(o), run_binary, (dv_tensor *[]){a, b}, 2, &o, 1e-6);
        ut_parity(dv_binary_name(o), run_binary, (dv_tensor *[]){a, c}, 2, &o, 1e-6);
        ut_parity(dv_binary_name(o), run_binary, (dv_tensor *[]){a, a}, 2, &o, 1e-6);
        dv_release(a); dv_release(b); dv_release(c);
    }
}

static dv_tensor *run_where(dv_tensor **in, void *ctx) {
    dv_tensor *cond = dv_binary(DV_BINARY_GT, in[2], in[0]);
    dv_tensor *y = dv_where(cond, in[0], in[1]);
    dv_release(cond);
    return y;
}
static dv_tensor *run_masked_fill(dv_tensor **in, void *ctx) {
    dv_tensor *z = dv_zeros(in[0]->dtype, DV_SHAPE(1));
    dv_tensor *mask = dv_binary(DV_BINARY_LT, in[1], z);
    dv_tensor *y = dv_masked_fill(in[0], mask, -7.0);
    dv_release(z); dv_release(mask);
    return y;
}

TEST(where_masked_fill_gradcheck) {
    dv_tensor *a = ut_randn_leaf(DV_F64, DV_SHAPE(4, 5), 1), *b = ut_randn_leaf(DV_F64, DV_SHAPE(5), 2);
    dv_tensor *c = ut_randn(DV_F64, DV_SHAPE(4, 1), 3);
    ut_gradcheck("where", run_where, (dv_tensor *[]){a, b, c}, 3, NULL, 1e-6);
    dv_tensor *m = ut_randn(DV_F64, DV_SHAPE(4, 5), 4);
    ut_gradcheck("masked_fill", run_masked_fill, (dv_tensor *[]){a, m}, 2, NULL, 1e-6);
    dv_tensor *y = run_masked_fill((dv_tensor *[]){a, m}, NULL);
    for (int64_t i = 0; i < 20; i++)
        CHECK(dv_flat_get(y, i) == (dv_flat_get(m, i) < 0 ? -7.0 : dv_flat_get(a, i)));
    dv_release(y); dv_release(a); dv_release(b); dv_release(c); dv_release(m);
}

TEST(comparisons_give_bool) {
    dv_tensor *a = dv_from_f64(DV_F32, DV_SHAPE(4), (double[]){1, 2, 3, 4});
    dv_tensor *b = dv_from_f64(DV_F32, DV_SHAPE(1), (double[]){2.5});
    dv_tensor *lt = dv_binary(DV_BINARY_LT, a, b), *ge = dv_binary(DV_BINARY_GE, a, b);
    CHECK(lt->dtype == DV_BOOL);
    for (int i = 0; i < 4; i++) {
        CHECK(dv_flat_get(lt, i) == (i < 2));
        CHECK(dv_flat_get(ge, i) == (i >= 2));
    }
    dv_release(a); dv_release(b); dv_release(lt); dv_release(ge);
}
