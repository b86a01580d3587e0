/* tests/test_index.c — embedding, index_select, gather, concat, stack, split, one_hot:
 * f64 gradient checks (repeated indices, non-contiguous inputs, inputs that want no gradient),
 * integer and half dtypes in the forward, PyTorch fixtures (tests/reference/gen_spatial.py),
 * zero-size and bad calls. These ops move data and have no AVX-512 kernels: no parity test. */
#include "tests/util.h"

#include <stdlib.h>
#include <string.h>

static dv_tensor *ids_i64(const int64_t *shape, int nd, const int64_t *v) { return dv_from_data(DV_I64, shape, nd, v); }

/* ---- embedding ---- */
static dv_tensor *run_embedding(dv_tensor **in, void *ctx) { return dv_embedding(in[0], ctx); }

TEST(embedding_gradcheck) {
    dv_tensor *w = ut_randn_leaf(DV_F64, DV_SHAPE(6, 5), 1);
    /* ids (2, 4) with repeats: the backward must add, not overwrite */
    dv_tensor *ids = ids_i64(DV_SHAPE(2, 4), (int64_t[]){3, 1, 3, 0, 5, 3, 3, 2});
    ut_gradcheck("embedding", run_embedding, &w, 1, ids, 1e-6);
    dv_tensor *wn = ut_noncontig(w);
    ut_gradcheck("embedding non-contiguous", run_embedding, &wn, 1, ids, 1e-6);
    /* i32 ids, 1-D, as a column slice (non-contiguous ids) */
    dv_tensor *ids32 = dv_cast(ids, DV_I32), *col = dv_select(ids32, 1, 2);
    ut_gradcheck("embedding i32", run_embedding, &w, 1, col, 1e-6);
    dv_tensor *y = dv_embedding(w, col);
    CHECK(y->ndim == 2 && y->shape[0] == 2 && y->shape[1] == 5);
    for (int c = 0; c < 5; c++) CHECK(dv_get(y, (int64_t[]){1, c}) == dv_get(w, (int64_t[]){3, c}));
    dv_release(y); dv_release(col); dv_release(ids32); dv_release(wn); dv_release(ids); dv_release(w);
}

/* a bf16 table (frozen LLM embeddings) gives bf16 rows; empty ids give an empty result */
TEST(embedding_dtypes_and_empty) {
    dv_tensor *w = ut_randn(DV_F32, DV_SHAPE(4, 3), 2), *wb = dv_cast(w, DV_BF16);
    dv_tensor *ids = ids_i64(DV_SHAPE(3), (int64_t[]){2, 0, 2});
    dv_tensor *y = dv_embedding(wb, ids);
    CHECK(y->dtype == DV_BF16 && y->shape[0] == 3 && y->shape[1] == 3);
    for (int c = 0; c < 3; c++) CHECK(dv_get(y, (int64_t[]){2, c}) == dv_get(wb, (int64_t[]){2, c}));
    dv_release(y);
    dv_tensor *none = dv_empty(DV_I64, DV_SHAPE(2, 0));
    y = dv_embedding(w, none);
    CHECK(y->ndim == 3 && y->shape[0] == 2 && y->shape[1] == 0 && y->shape[2] == 3);
    dv_release(y); dv_release(none); dv_release(ids); dv_release(wb); dv_release(w);
}

/* ---- index_select / gather ---- */
typedef struct { int dim; dv_tensor *index; } sel_ctx;
static dv_tensor *run_index_select(dv_tensor **in, void *ctx) {
    sel_ctx *c = ctx;
    return dv_index_select(in[0], c->dim, c->index);
}
static dv_tensor *run_gather(dv_tensor **in, void *ctx) {
    sel_ctx *c = ctx;
    return dv_gather(in[0], c->dim, c->index);
}

TEST(index_select_gradcheck) {
    dv_tensor *x = ut_randn_leaf(DV_F64, DV_SHAPE(3, 4, 5), 3), *xn = ut_noncontig(x);
    dv_tensor *idx = ids_i64(DV_SHAPE(6), (int64_t[]){3, 0, 3, 1, 2, 3});
    dv_tensor *idx0 = ids_i64(DV_SHAPE(4), (int64_t[]){2, 0, 2, 1}); /* dim 0 has only 3 rows */
    for (int dim = -1; dim < 3; dim++) {
        sel_ctx c = {dim, dim == 0 ? idx0 : idx};
        ut_gradcheck("index_select", run_index_select, &x, 1, &c, 1e-6);
        ut_gradcheck("index_select non-contiguous", run_index_select, &xn, 1, &c, 1e-6);
    }
    dv_release(idx0);
    /* integer data is selected too (no gradient) */
    dv_tensor *xi = dv_arange(DV_I64, 0, 12, 1), *xi2 = dv_reshape(xi, DV_SHAPE(3, 4));
    sel_ctx c = {1, ids_i64(DV_SHAPE(2), (int64_t[]){3, 0})};
    dv_tensor *y = run_index_select(&xi2, &c);
    CHECK(y->dtype == DV_I64 && dv_flat_get(y, 0) == 3 && dv_flat_get(y, 1) == 0 && dv_flat_get(y, 4) == 11);
    dv_release(y); dv_release(c.index); dv_release(xi2); dv_release(xi);
    dv_release(idx); dv_release(xn); dv_release(x);
}

TEST(gather_gradcheck) {
    dv_tensor *x = ut_randn_leaf(DV_F64, DV_SHAPE(3, 4, 5), 4), *xn = ut_noncontig(x);
    /* index smaller than x in the other dims, with repeats along dim */
    for (int dim = 0; dim < 3; dim++) {
        dv_tensor *idx = dv_zeros(DV_I64, DV_SHAPE(2, 3, 4));
        dv_rng r = dv_rng_new(50 + dim);
        dv_rng_fill_randint(&r, idx, 0, x->shape[dim]);
        sel_ctx c = {dim, idx};
        ut_gradcheck("gather", run_gather, &x, 1, &c, 1e-6);
        ut_gradcheck("gather non-contiguous", run_gather, &xn, 1, &c, 1e-6);
        dv_tensor *y = run_gather(&xn, &c);
        for (int64_t i = 0; i < 24; i++) { /* y[a][b][c] = x[... index ... ] */
            int64_t p[3] = {i / 12, i / 4 % 3, i % 4};
            p[dim] = (int64_t)dv_flat_get(idx, i);
            CHECK(dv_flat_get(y, i) == dv_get(x, p));
        }
        dv_release(y); dv_release(idx);
    }
    dv_release(xn); dv_release(x);
}

/* ---- concat / stack / split ---- */
typedef struct { int n, dim; } join_ctx;
static dv_tensor *run_concat(dv_tensor **in, void *ctx) {
    join_ctx *c = ctx;
    return dv_concat(in, c->n, c->dim);
}
static dv_tensor *run_stack(dv_tensor **in, void *ctx) {
    join_ctx *c = ctx;
    return dv_stack(in, c->n, c->dim);
}

TEST(concat_gradcheck) {
    dv_tensor *a = ut_randn_leaf(DV_F64, DV_SHAPE(2, 3, 4), 5), *b = ut_randn_leaf(DV_F64, DV_SHAPE(2, 1, 4), 6);
    dv_tensor *c = ut_randn_leaf(DV_F64, DV_SHAPE(2, 5, 4), 7), *e = ut_randn_leaf(DV_F64, DV_SHAPE(2, 0, 4), 8);
    dv_tensor *an = ut_noncontig(a);
    dv_set_requires_grad(b, false); /* a frozen piece gets no gradient */
    join_ctx j = {4, 1};
    ut_gradcheck("concat dim 1", run_concat, (dv_tensor *[]){an, b, e, c}, 4, &j, 1e-6);
    CHECK(b->grad == NULL);
    j = (join_ctx){2, -1};
    ut_gradcheck("concat dim -1", run_concat, (dv_tensor *[]){a, an}, 2, &j, 1e-6);
    j = (join_ctx){3, 0}; /* the same tensor twice: its two slices of the gradient add up */
    ut_gradcheck("concat dim 0", run_concat, (dv_tensor *[]){a, an, a}, 3, &j, 1e-6);
    /* values: the middle tensor lands at [.., 3, ..] */
    dv_tensor *y = dv_concat((dv_tensor *[]){a, b, c}, 3, 1);
    CHECK(y->shape[1] == 9);
    CHECK(dv_get(y, (int64_t[]){1, 3, 2}) == dv_get(b, (int64_t[]){1, 0, 2}));
    CHECK(dv_get(y, (int64_t[]){1, 8, 3}) == dv_get(c, (int64_t[]){1, 4, 3}));
    dv_release(y);
    /* integer tensors join too (token ids) */
    dv_tensor *i1 = ids_i64(DV_SHAPE(2), (int64_t[]){1, 2}), *i2 = ids_i64(DV_SHAPE(1), (int64_t[]){9});
    y = dv_concat((dv_tensor *[]){i1, i2}, 2, 0);
    CHECK(y->dtype == DV_I64 && y->shape[0] == 3 && dv_flat_get(y, 2) == 9);
    dv_release(y); dv_release(i1); dv_release(i2);
    dv_release(a); dv_release(b); dv_release(c); dv_release(e); dv_release(an);
}

TEST(stack_gradcheck) {
    dv_tensor *a = ut_randn_leaf(DV_F64, DV_SHAPE(3, 2), 9), *b = ut_randn_leaf(DV_F64, DV_SHAPE(3, 2), 10);
    dv_tensor *bn = ut_noncontig(b);
    for (int dim = -3; dim <= 2; dim++) {
        join_ctx j = {3, dim};
        ut_gradcheck("stack", run_stack, (dv_tensor *[]){a, bn, a}, 3, &j, 1e-6);
    }
    dv_tensor *y = dv_stack((dv_tensor *[]){a, b}, 2, 1);
    CHECK(y->ndim == 3 && y->shape[0] == 3 && y->shape[1] == 2 && y->shape[2] == 2);
    CHECK(dv_get(y, (int64_t[]){2, 1, 0}) == dv_get(b, (int64_t[]){2, 0}));
    dv_release(y); dv_release(a); dv_release(b); dv_release(bn);
}

/* split into (1, 3, 2) along dim 1, and join the pieces back in another order */
static dv_tensor *run_split(dv_tensor **in, void *ctx) {
    dv_tensor *p[3];
    dv_split(in[0], (int64_t[]){1, 3, 2}, 3, 1, p);
    dv_tensor *y = dv_concat((dv_tensor *[]){p[2], p[0], p[1]}, 3, 1);
    for (int i = 0; i < 3; i++) dv_release(p[i]);
    return y;
}

TEST(split_gradcheck) {
    dv_tensor *x = ut_randn_leaf(DV_F64, DV_SHAPE(2, 6, 3), 11), *xn = ut_noncontig(x);
    ut_gradcheck("split", run_split, &x, 1, NULL, 1e-6);
    ut_gradcheck("split non-contiguous", run_split, &xn, 1, NULL, 1e-6);
    dv_tensor *p[3];
    dv_split(x, (int64_t[]){1, 3, 2}, 3, 1, p);
    CHECK(p[1]->shape[1] == 3 && p[1]->storage == x->storage); /* views */
    CHECK(dv_get(p[2], (int64_t[]){1, 1, 2}) == dv_get(x, (int64_t[]){1, 5, 2}));
    for (int i = 0; i < 3; i++) dv_release(p[i]);
    dv_split(x, (int64_t[]){0, 6}, 2, -2, p); /* an empty piece */
    CHECK(p[0]->shape[1] == 0 && p[1]->shape[1] == 6);
    dv_release(p[0]); dv_release(p[1]);
    dv_release(x); dv_release(xn);
}

TEST(one_hot_values) {
    dv_tensor *idx = dv_from_f64(DV_I32, DV_SHAPE(2, 3), (double[]){0, 4, 2, 2, 1, 0});
    dv_tensor *y = dv_one_hot(idx, 5, DV_F32);
    CHECK(y->dtype == DV_F32 && y->ndim == 3 && y->shape[2] == 5);
    for (int64_t i = 0; i < 6; i++)
        for (int c = 0; c < 5; c++)
            CHECK(dv_flat_get(y, i * 5 + c) == (c == (int)dv_flat_get(idx, i) ? 1.0 : 0.0));
    CHECK(!y->requires_grad);
    dv_release(y);
    y = dv_one_hot(idx, -1, DV_BOOL); /* -1: as many classes as the largest index needs */
    CHECK(y->dtype == DV_BOOL && y->shape[2] == 5 && dv_flat_get(y, 1 * 5 + 4) == 1);
    dv_release(y);
    dv_release(idx);
}

/* ---- PyTorch fixtures ---- */
static bool fixture_cfg(const char *name, int64_t *cfg, int n) {
    char key[128];
    snprintf(key, sizeof key, "%s.cfg", name);
    return ut_fixture_ints("spatial.bin", key, cfg, n);
}

static dv_tensor *fx_embedding(dv_tensor **in, void *ctx) { return dv_embedding(in[0], in[1]); }
static dv_tensor *fx_gather(dv_tensor **in, void *ctx) { return dv_gather(in[0], (int)*(int64_t *)ctx, in[1]); }
static dv_tensor *fx_index_select(dv_tensor **in, void *ctx) { return dv_index_select(in[0], (int)*(int64_t *)ctx, in[1]); }
static dv_tensor *fx_concat(dv_tensor **in, void *ctx) { return dv_concat(in, 3, (int)*(int64_t *)ctx); }

TEST(index_fixtures) {
    struct { const char *name; dv_test_op op; } cases[] = {
        {"embedding_repeat", fx_embedding}, {"gather_dim1", fx_gather}, {"gather_dim2", fx_gather},
        {"index_select_dim1", fx_index_select}, {"index_select_dim0", fx_index_select}, {"concat_dim1", fx_concat},
    };
    for (int k = 0; k < 6; k++) {
        int64_t dim;
        if (!fixture_cfg(cases[k].name, &dim, 1)) continue;
        ut_fixture("spatial.bin", cases[k].name, cases[k].op, &dim, 1e-6);
    }
}

/* ---- bad calls ---- */
static void bad_embedding(void *ctx) {
    dv_tensor *w = dv_zeros(DV_F32, DV_SHAPE(5, 4));
    dv_embedding(w, ids_i64(DV_SHAPE(3), (int64_t[]){1, 7, 2}));
}
static void bad_embedding_negative(void *ctx) {
    dv_tensor *w = dv_zeros(DV_F32, DV_SHAPE(5, 4));
    dv_embedding(w, ids_i64(DV_SHAPE(1), (int64_t[]){-1}));
}
static void bad_concat(void *ctx) {
    dv_tensor *a = dv_zeros(DV_F32, DV_SHAPE(2, 3, 4)), *b = dv_zeros(DV_F32, DV_SHAPE(2, 1, 4)), *c = dv_zeros(DV_F32, DV_SHAPE(3, 1, 4));
    dv_concat((dv_tensor *[]){a, b, c}, 3, 1);
}
static void bad_stack(void *ctx) {
    dv_tensor *a = dv_zeros(DV_F32, DV_SHAPE(2, 3)), *b = dv_zeros(DV_F32, DV_SHAPE(3, 2));
    dv_stack((dv_tensor *[]){a, a, b}, 3, 0);
}
static void bad_split(void *ctx) {
    dv_tensor *x = dv_zeros(DV_F32, DV_SHAPE(2, 6)), *p[2];
    dv_split(x, (int64_t[]){2, 3}, 2, 1, p);
}
static void bad_one_hot(void *ctx) {
    dv_one_hot(ids_i64(DV_SHAPE(2), (int64_t[]){1, 3}), 3, DV_F32);
}
static void bad_index_select(void *ctx) {
    dv_tensor *x = dv_zeros(DV_F32, DV_SHAPE(2, 6));
    dv_index_select(x, 0, ids_i64(DV_SHAPE(2), (int64_t[]){0, 2}));
}
static void bad_gather(void *ctx) {
    dv_tensor *x = dv_zeros(DV_F32, DV_SHAPE(2, 6));
    dv_gather(x, 1, dv_zeros(DV_I64, DV_SHAPE(3, 1)));
}
static void bad_index_dtype(void *ctx) {
    dv_tensor *x = dv_zeros(DV_F32, DV_SHAPE(2, 6));
    dv_index_select(x, 0, dv_zeros(DV_F32, DV_SHAPE(1)));
}

TEST(index_bad_calls) {
    ut_aborts_with(bad_embedding, NULL, "id 7 at position 1 is out of range [0, 5) for weight (5, 4) with V = 5");
    ut_aborts_with(bad_embedding_negative, NULL, "id -1");
    ut_aborts_with(bad_concat, NULL, "tensor 2 has shape (3, 1, 4) but tensor 0 has (2, 3, 4)");
    ut_aborts_with(bad_stack, NULL, "tensor 2 has shape (3, 2)");
    ut_aborts_with(bad_split, NULL, "sum to 5 but dim 1 of (2, 6) is 6");
    ut_aborts_with(bad_one_hot, NULL, "class 3 at position 1 is out of range [0, 3)");
    ut_aborts_with(bad_index_select, NULL, "index 2 at position 1 is out of range [0, 2)");
    ut_aborts_with(bad_gather, NULL, "larger than x (2, 6) in dim 0");
    ut_aborts_with(bad_index_dtype, NULL, "must be i32 or i64");
}
