/* tests/test_reduce.c — max / min / argmax, logsumexp, var and cumsum: f64 gradient checks on
 * contiguous and non-contiguous inputs, PyTorch fixtures (tests/reference/gen_norm.py), edge
 * cases (ties, NaN, infinities, zero-size and 0-d inputs) and calls that must abort. */
#include "tests/util.h"

#include <string.h>

/* Runs fn(ctx) in a child process and returns true when it aborted (dv_panic) with `want` in
 * its message. Shared with test_norm.c and test_loss.c (declared there). */
typedef struct { int dim; bool keepdim; } dim_ctx;
typedef struct { const int *dims; int ndims, correction; bool keepdim; } var_ctx;

static dv_tensor *run_max(dv_tensor **in, void *c) { dim_ctx *d = c; return dv_max(in[0], d->dim, d->keepdim); }
static dv_tensor *run_min(dv_tensor **in, void *c) { dim_ctx *d = c; return dv_min(in[0], d->dim, d->keepdim); }
static dv_tensor *run_argmax(dv_tensor **in, void *c) { dim_ctx *d = c; return dv_argmax(in[0], d->dim, d->keepdim); }
static dv_tensor *run_lse(dv_tensor **in, void *c) { dim_ctx *d = c; return dv_logsumexp(in[0], d->dim, d->keepdim); }
static dv_tensor *run_cumsum(dv_tensor **in, void *c) { return dv_cumsum(in[0], ((dim_ctx *)c)->dim); }
static dv_tensor *run_var(dv_tensor **in, void *c) {
    var_ctx *v = c;
    return dv_var(in[0], v->dims, v->ndims, v->correction, v->keepdim);
}

/* f64 gradcheck of op over every dim (and keepdim both ways), contiguous and not */
static void gradcheck_dims(const char *what, dv_test_op op, uint64_t seed) {
    dv_tensor *x = ut_randn_leaf(DV_F64, DV_SHAPE(3, 4, 5), seed);
    dv_tensor *xn = ut_noncontig(x);
    for (int dim = -1; dim < 3; dim++) {
        for (int keep = 0; keep < 2; keep++) {
            dim_ctx c = {dim, keep};
            ut_gradcheck(what, op, &x, 1, &c, 1e-6);
            ut_gradcheck(what, op, &xn, 1, &c, 1e-6);
        }
    }
    dv_release(x);
    dv_release(xn);
}

TEST(reduce_max_min_gradcheck) {
    gradcheck_dims("max", run_max, 1);
    gradcheck_dims("min", run_min, 2);
}

TEST(reduce_logsumexp_cumsum_gradcheck) {
    gradcheck_dims("logsumexp", run_lse, 3);
    gradcheck_dims("cumsum", run_cumsum, 4);
}

TEST(reduce_var_gradcheck) {
    dv_tensor *x = ut_randn_leaf(DV_F64, DV_SHAPE(3, 4, 5), 5);
    dv_tensor *xn = ut_noncontig(x);
    static const int d02[] = {0, 2}, d1[] = {1}, dm1[] = {-1};
    const var_ctx cases[] = {
        {d02, 2, 1, true}, {d02, 2, 0, false}, {d1, 1, 1, false}, {dm1, 1, 1, true}, {NULL, 0, 1, false},
    };
    for (int k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++) {
        var_ctx c = cases[k];
        ut_gradcheck("var", run_var, &x, 1, &c, 1e-6);
        ut_gradcheck("var", run_var, &xn, 1, &c, 1e-6);
    }
    dv_release(x);
    dv_release(xn);
}

TEST(reduce_fixtures) {
    static const int d02[] = {0, 2}, d1[] = {1};
    static dim_ctx c1 = {1, false}, c0k = {0, true}, cm1 = {-1, false}, c0 = {0, false};
    static var_ctx v02 = {d02, 2, 1, true}, vall = {NULL, 0, 0, false}, v1 = {d1, 1, 1, false};
    const struct { const char *name; dv_test_op op; void *ctx; } cases[] = {
        {"max_d1", run_max, &c1},          {"max_d0_keep", run_max, &c0k},
        {"max_ties", run_max, &c1},        {"min_dneg", run_min, &cm1},
        {"min_ties_keep", run_min, &c0k},  {"argmax_d1", run_argmax, &c1},
        {"argmax_ties_d0_keep", run_argmax, &c0k},
        {"logsumexp_last", run_lse, &cm1}, {"logsumexp_d0_keep_big", run_lse, &c0k},
        {"var_d02_keep", run_var, &v02},   {"var_all_c0", run_var, &vall},
        {"var_d1", run_var, &v1},          {"cumsum_d1", run_cumsum, &c1},
        {"cumsum_d0", run_cumsum, &c0},
    };
    for (int k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++)
        ut_fixture("norm.bin", cases[k].name, cases[k].op, cases[k].ctx, 1e-5);
}

TEST(reduce_values_edges) {
    /* ties go to the first extreme; NaN wins max and min; argmax is i64 */
    dv_tensor *x = dv_from_f64(DV_F32, DV_SHAPE(3, 4), (double[]){1, 3, 3, 0, 2, NAN, 1, NAN, -1, -1, 4, 4});
    dv_tensor *mx = dv_max(x, 1, false), *mn = dv_min(x, 1, true), *am = dv_argmax(x, 1, false);
    CHECK(mx->ndim == 1 && mx->shape[0] == 3 && mn->ndim == 2 && mn->shape[1] == 1);
    CHECK(am->dtype == DV_I64);
    CHECK(dv_flat_get(mx, 0) == 3 && isnan(dv_flat_get(mx, 1)) && dv_flat_get(mx, 2) == 4);
    CHECK(dv_flat_get(mn, 0) == 0 && isnan(dv_flat_get(mn, 1)) && dv_flat_get(mn, 2) == -1);
    CHECK(dv_flat_get(am, 0) == 1 && dv_flat_get(am, 1) == 1 && dv_flat_get(am, 2) == 2);
    dv_release(mx); dv_release(mn); dv_release(am); dv_release(x);

    /* logsumexp: no overflow for huge values, -inf rows stay -inf, +inf wins */
    dv_tensor *l = dv_from_f64(DV_F32, DV_SHAPE(3, 2), (double[]){1000, 1000, -INFINITY, -INFINITY, INFINITY, 1});
    dv_tensor *ly = dv_logsumexp(l, 1, false);
    CHECK_CLOSE(dv_flat_get(ly, 0), 1000 + log(2.0), 1e-6);
    CHECK(dv_flat_get(ly, 1) == -INFINITY && dv_flat_get(ly, 2) == INFINITY);
    dv_release(l); dv_release(ly);

    /* zero-size: empty results, no crash; logsumexp over an empty dim is -inf, var is NaN */
    dv_tensor *e = dv_zeros(DV_F32, DV_SHAPE(0, 3));
    dv_tensor *e1 = dv_max(e, 1, false), *e2 = dv_cumsum(e, 0), *e3 = dv_logsumexp(e, 0, false), *e4 = dv_var(e, NULL, 0, 1, false);
    CHECK(e1->ndim == 1 && e1->shape[0] == 0);
    CHECK(dv_same_shape(e2, e));
    CHECK(e3->shape[0] == 3 && dv_flat_get(e3, 0) == -INFINITY);
    CHECK(e4->ndim == 0 && isnan(dv_item(e4)));
    dv_release(e); dv_release(e1); dv_release(e2); dv_release(e3); dv_release(e4);

    /* 0-d inputs are one element */
    dv_tensor *s = dv_scalar(DV_F64, 2.5);
    dv_tensor *s1 = dv_max(s, 0, false), *s2 = dv_argmax(s, -1, true), *s3 = dv_cumsum(s, 0), *s4 = dv_logsumexp(s, 0, false);
    CHECK(s1->ndim == 0 && dv_item(s1) == 2.5 && s2->ndim == 0 && dv_item(s2) == 0);
    CHECK(s3->ndim == 0 && dv_item(s3) == 2.5 && s4->ndim == 0 && dv_item(s4) == 2.5);
    dv_release(s); dv_release(s1); dv_release(s2); dv_release(s3); dv_release(s4);

    /* var with correction >= N divides by zero like torch: N = 1, correction 1 -> NaN */
    dv_tensor *one = dv_ones(DV_F32, DV_SHAPE(2, 1));
    dv_tensor *v = dv_var(one, (int[]){1}, 1, 1, false);
    CHECK(isnan(dv_flat_get(v, 0)));
    dv_release(one); dv_release(v);

    /* a long f32 cumsum stays accurate (double accumulator) */
    dv_tensor *c = dv_full(DV_F32, DV_SHAPE(1 << 20), 0.1);
    dv_tensor *cs = dv_cumsum(c, 0);
    CHECK_CLOSE(dv_flat_get(cs, (1 << 20) - 1), 0.1f * (double)(1 << 20), 1e-6);
    dv_release(c); dv_release(cs);
}

static void max_empty_dim(void *ctx) {
    dv_tensor *e = dv_zeros(DV_F32, DV_SHAPE(3, 0));
    dv_max(e, 1, false);
}
static void max_bad_dim(void *ctx) {
    dv_tensor *e = dv_zeros(DV_F32, DV_SHAPE(3, 4));
    dv_argmax(e, 2, false);
}
static void cumsum_int(void *ctx) {
    dv_tensor *e = dv_zeros(DV_I64, DV_SHAPE(3));
    dv_cumsum(e, 0);
}

TEST(reduce_bad_calls_abort) {
    CHECK(ut_aborts_with(max_empty_dim, NULL, "max: cannot reduce dim 1 of size 0"));
    CHECK(ut_aborts_with(max_bad_dim, NULL, "dim 2 out of range"));
    CHECK(ut_aborts_with(cumsum_int, NULL, "cumsum: expected a f32 or f64 tensor"));
}
