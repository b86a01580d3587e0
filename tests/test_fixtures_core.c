/* tests/test_fixtures_core.c — core ops against PyTorch (tests/reference/gen_core.py -> core.bin). */
#include "tests/util.h"

#include <stdio.h>

#define FX "core.bin"
#define TOL 2e-6

static dv_tensor *run_unary(dv_tensor **in, void *ctx) {
    static const double p[DV_UNARY_COUNT][2] = {[DV_UNARY_POW] = {2.5, 0}, [DV_UNARY_CLAMP] = {-0.5, 0.7},
                                                [DV_UNARY_AFFINE] = {-1.5, 0.25}};
    dv_unary_op op = *(dv_unary_op *)ctx;
    return dv_unary(op, in[0], p[op][0], p[op][1]);
}
static dv_tensor *run_binary(dv_tensor **in, void *ctx) { return dv_binary(*(dv_binary_op *)ctx, in[0], in[1]); }

TEST(torch_unary) {
    for (int op = 0; op < DV_UNARY_COUNT; op++) {
        char name[64];
        snprintf(name, sizeof name, "unary_%s", dv_unary_name((dv_unary_op)op));
        dv_unary_op o = (dv_unary_op)op;
        ut_fixture(FX, name, run_unary, &o, TOL);
    }
}

TEST(torch_binary) {
    for (int op = DV_BINARY_ADD; op <= DV_BINARY_MIN; op++) {
        char name[64];
        snprintf(name, sizeof name, "binary_%s", dv_binary_name((dv_binary_op)op));
        dv_binary_op o = (dv_binary_op)op;
        ut_fixture(FX, name, run_binary, &o, TOL);
    }
}

static dv_tensor *run_where(dv_tensor **in, void *ctx) { return dv_where(in[0], in[1], in[2]); }
static dv_tensor *run_sum_dims(dv_tensor **in, void *ctx) { return dv_sum(in[0], (int[]){0, 2}, 2, false); }
static dv_tensor *run_mean_keepdim(dv_tensor **in, void *ctx) { return dv_mean(in[0], (int[]){-1}, 1, true); }
static dv_tensor *run_views(dv_tensor **in, void *ctx) {
    dv_tensor *p = dv_permute(in[0], (int[]){1, 0, 2}), *s = dv_slice(p, 2, 0, 4, 2);
    dv_tensor *r = dv_reshape(s, DV_SHAPE(3, 1, 4)), *e = dv_expand(r, DV_SHAPE(2, 3, 5, 4));
    dv_tensor *y = dv_scale(e, 1.0);
    dv_release(p); dv_release(s); dv_release(r); dv_release(e);
    return y;
}
static dv_tensor *run_matmul(dv_tensor **in, void *ctx) { return dv_matmul(in[0], in[1]); }
static dv_tensor *run_linear(dv_tensor **in, void *ctx) { return dv_linear(in[0], in[1], in[2]); }
static dv_tensor *run_cast(dv_tensor **in, void *ctx) {
    dv_tensor *d = dv_cast(in[0], DV_F64), *y = dv_scale(d, 3);
    dv_release(d);
    return y;
}

TEST(torch_where_reduce_views) {
    ut_fixture(FX, "where", run_where, NULL, TOL);
    ut_fixture(FX, "sum_dims", run_sum_dims, NULL, TOL);
    ut_fixture(FX, "mean_keepdim", run_mean_keepdim, NULL, TOL);
    ut_fixture(FX, "views", run_views, NULL, TOL);
    ut_fixture(FX, "cast_f64", run_cast, NULL, TOL);
}

TEST(torch_matmul_linear) {
    ut_fixture(FX, "matmul_batched", run_matmul, NULL, 1e-5);
    ut_fixture(FX, "matmul_vec", run_matmul, NULL, 1e-5);
    ut_fixture(FX, "linear", run_linear, NULL, 1e-5);
}
