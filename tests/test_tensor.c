/* tests/test_tensor.c — the tensor core: views, copies, casts, allocator, RNG, autograd
 * mechanics (accumulation, frozen leaves, no-grad, detach, graph freeing), error messages. */
#include "tests/util.h"
#include "kernels/half.h"
#include "tensor/autograd.h"

#include <string.h>

static dv_tensor *iota(dv_dtype dt, const int64_t *shape, int nd) {
    dv_tensor *t = dv_empty(dt, shape, nd);
    for (int64_t i = 0; i < dv_numel(t); i++) dv_flat_set(t, i, (double)i);
    return t;
}

TEST(views_share_storage_and_index_right) {
    dv_tensor *t = iota(DV_F32, DV_SHAPE(2, 3, 4));
    dv_tensor *p = dv_permute(t, (int[]){2, 0, 1}); /* (4, 2, 3) */
    CHECK(p->shape[0] == 4 && p->shape[1] == 2 && p->shape[2] == 3);
    CHECK(p->storage == t->storage && !dv_is_contiguous(p));
    CHECK(dv_get(p, (int64_t[]){3, 1, 2}) == 1 * 12 + 2 * 4 + 3);
    dv_tensor *s = dv_slice(t, 2, 1, 4, 2); /* (2, 3, 2): columns 1 and 3 */
    CHECK(s->shape[2] == 2 && dv_get(s, (int64_t[]){1, 2, 1}) == 12 + 8 + 3);
    dv_tensor *sel = dv_select(t, 1, -1); /* (2, 4), row 2 */
    CHECK(sel->ndim == 2 && dv_get(sel, (int64_t[]){1, 0}) == 12 + 8);
    dv_tensor *row0 = dv_select(sel, 0, 0);
    dv_tensor *e = dv_expand(row0, DV_SHAPE(3, 4));
    dv_release(row0);
    CHECK(e->stride[0] == 0 && dv_get(e, (int64_t[]){2, 3}) == 11);
    dv_tensor *r = dv_reshape(p, DV_SHAPE(8, -1)); /* needs a copy */
    CHECK(r->shape[1] == 3 && r->storage != t->storage);
    CHECK(dv_flat_get(r, 5) == dv_flat_get(p, 5));
    dv_tensor *v = dv_view(t, DV_SHAPE(6, 4)); /* contiguous: a view */
    CHECK(v->storage == t->storage);
    dv_tensor *u = dv_unsqueeze(sel, 1), *sq = dv_squeeze(u, 1);
    CHECK(u->ndim == 3 && u->shape[1] == 1 && dv_same_shape(sq, sel));
    dv_tensor *f = dv_flatten(t, 1, 2);
    CHECK(f->ndim == 2 && f->shape[1] == 12);
    /* a view of a transposed tensor that keeps dims together needs no copy */
    dv_tensor *tr = dv_transpose(t, 0, 1), *tv = dv_reshape(tr, DV_SHAPE(3, 2, 2, 2));
    CHECK(tv->storage == t->storage);
    dv_release(t); dv_release(p); dv_release(s); dv_release(sel); dv_release(r); dv_release(v);
    dv_release(u); dv_release(sq); dv_release(f); dv_release(tr); dv_release(tv); dv_release(e);
}

static dv_tensor *run_view_chain(dv_tensor **in, void *ctx) {
    /* permute -> slice with step -> reshape (copy) -> expand -> mul by itself */
    dv_tensor *p = dv_permute(in[0], (int[]){1, 0, 2});         /* (3, 2, 4) */
    dv_tensor *s = dv_slice(p, 2, 0, 4, 2);                        /* (3, 2, 2) */
    dv_tensor *r = dv_reshape(s, DV_SHAPE(3, 1, 4));
    dv_tensor *e = dv_expand(r, DV_SHAPE(2, 3, 5, 4));
    dv_tensor *sel = dv_select(in[0], 0, 1);                       /* (3, 4) */
    dv_tensor *su = dv_unsqueeze(sel, 1);
    dv_tensor *y = dv_mul(e, su);
    dv_release(p); dv_release(s); dv_release(r); dv_release(e); dv_release(sel); dv_release(su);
    return y;
}

TEST(views_gradcheck) {
    dv_tensor *x = ut_randn_leaf(DV_F64, DV_SHAPE(2, 3, 4), 7);
    ut_gradcheck("view chain", run_view_chain, &x, 1, NULL, 1e-6);
    dv_tensor *xn = ut_noncontig(x);
    ut_gradcheck("view chain noncontig", run_view_chain, &xn, 1, NULL, 1e-6);
    dv_release(x); dv_release(xn);
}

static dv_tensor *run_sum_dims(dv_tensor **in, void *ctx) {
    int mode = *(int *)ctx;
    if (mode == 0) return dv_sum(in[0], (int[]){0, 2}, 2, false);
    if (mode == 1) return dv_mean(in[0], (int[]){-1}, 1, true);
    if (mode == 2) return dv_sum_all(in[0]);
    return dv_mean_all(in[0]);
}

TEST(sum_mean_gradcheck) {
    dv_tensor *x = ut_randn_leaf(DV_F64, DV_SHAPE(3, 4, 5), 11);
    dv_tensor *xn = ut_noncontig(x);
    for (int mode = 0; mode < 4; mode++) {
        ut_gradcheck("sum/mean", run_sum_dims, &x, 1, &mode, 1e-6);
        ut_gradcheck("sum/mean noncontig", run_sum_dims, &xn, 1, &mode, 1e-6);
    }
    dv_tensor *s = dv_sum(x, (int[]){1}, 1, false);
    CHECK(s->ndim == 2 && s->shape[0] == 3 && s->shape[1] == 5);
    double want = 0;
    for (int j = 0; j < 4; j++) want += dv_get(x, (int64_t[]){2, j, 3});
    CHECK_CLOSE(dv_get(s, (int64_t[]){2, 3}), want, 1e-12);
    dv_release(s); dv_release(x); dv_release(xn);
}

TEST(casts_round_trip) {
    /* f16: exact for representable values, RNE for others, inf/nan/subnormals kept */
    CHECK(dv_f32_to_f16(1.0f) == 0x3c00 && dv_f16_to_f32(0x3c00) == 1.0f);
    CHECK(dv_f32_to_f16(65504.0f) == 0x7bff && dv_f32_to_f16(65520.0f) == 0x7c00);
    CHECK(dv_f16_to_f32(0x0001) == 5.9604644775390625e-08f); /* smallest subnormal */
    CHECK(dv_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00);      /* tie -> even */
    CHECK(dv_f32_to_f16(1.0f + 3.0f / 2048) == 0x3c02);      /* tie -> even (up) */
    CHECK(dv_f16_to_f32(dv_f32_to_f16(NAN)) != dv_f16_to_f32(dv_f32_to_f16(NAN)));
    CHECK(dv_f32_to_bf16(1.0f) == 0x3f80 && dv_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(dv_f32_to_bf16(dv_bits_f32(0x3f808000u)) == 0x3f80); /* tie -> even */
    CHECK(dv_f32_to_bf16(dv_bits_f32(0x3f818000u)) == 0x3f82);
    for (uint32_t h = 0; h < 0x7c00; h += 7) CHECK(dv_f32_to_f16(dv_f16_to_f32((uint16_t)h)) == h);
    dv_tensor *x = ut_randn(DV_F32, DV_SHAPE(100), 3);
    dv_tensor *h = dv_cast(x, DV_F16), *b = dv_cast(x, DV_BF16), *hx = dv_cast(h, DV_F32), *bx = dv_cast(b, DV_F32);
    CHECK(ut_max_rel_diff(hx, x) < 1e-3 && ut_max_rel_diff(bx, x) < 1e-2);
    dv_tensor *i = dv_cast(x, DV_I64);
    CHECK(dv_flat_get(i, 0) == (double)(int64_t)dv_flat_get(x, 0));
    dv_release(x); dv_release(h); dv_release(b); dv_release(hx); dv_release(bx); dv_release(i);
}

static dv_tensor *run_cast_chain(dv_tensor **in, void *ctx) {
    dv_tensor *f = dv_cast(in[0], DV_F32), *d = dv_cast(f, DV_F64), *y = dv_square(d);
    dv_release(f); dv_release(d);
    return y;
}

TEST(cast_gradient) {
    dv_tensor *x = ut_randn_leaf(DV_F64, DV_SHAPE(6), 5);
    dv_tensor *y = run_cast_chain(&x, NULL), *s = dv_sum_all(y);
    dv_backward(s);
    for (int i = 0; i < 6; i++) CHECK_CLOSE(dv_flat_get(x->grad, i), 2 * (float)dv_flat_get(x, i), 1e-6);
    dv_release(y); dv_release(s); dv_release(x);
}

TEST(allocator_aligned_and_cached) {
    dv_alloc_stats s0 = dv_alloc_get_stats();
    for (int k = 0; k < 4; k++) {
        dv_tensor *t = dv_empty(DV_F32, DV_SHAPE(1000 + k));
        CHECK(((uintptr_t)t->storage->data & 63) == 0);
        dv_release(t);
    }
    dv_alloc_stats s1 = dv_alloc_get_stats();
    CHECK(s1.n_cache_hits >= s0.n_cache_hits + 3); /* the same size class is reused */
    CHECK(s1.live_bytes == s0.live_bytes);
    /* int64 element counts: a broadcast view far beyond 2^31 elements */
    dv_tensor *one = dv_ones(DV_F32, DV_SHAPE(1, 1));
    dv_tensor *big = dv_expand(one, DV_SHAPE(100000, 100000));
    CHECK(dv_numel(big) == 10000000000LL);
    CHECK(dv_get(big, (int64_t[]){99999, 99999}) == 1.0);
    dv_release(big); dv_release(one);
}

TEST(philox_known_answers_and_streams) {
    uint32_t out[4];
    dv_philox4x32_10((uint32_t[]){0, 0, 0, 0}, (uint32_t[]){0, 0}, out);
    CHECK(out[0] == 0x6627e8d5 && out[1] == 0xe169c58d && out[2] == 0xbc57ac4c && out[3] == 0x9b00dbd8);
    dv_philox4x32_10((uint32_t[]){~0u, ~0u, ~0u, ~0u}, (uint32_t[]){~0u, ~0u}, out);
    CHECK(out[0] == 0x408f276d && out[1] == 0x41c83b0e && out[2] == 0xa20bc7c6 && out[3] == 0x6d5451fd);
    dv_philox4x32_10((uint32_t[]){0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, (uint32_t[]){0xa4093822, 0x299f31d0}, out);
    CHECK(out[0] == 0xd16cfe09 && out[1] == 0x94fdcceb && out[2] == 0x5001e420 && out[3] == 0x24126ea1);

    /* same seed -> same numbers; a draw of n advances the counter by ceil(n/4) */
    dv_rng a = dv_rng_new(42), b = dv_rng_new(42);
    dv_tensor *x = dv_randn(&a, DV_F64, DV_SHAPE(10)), *y = dv_randn(&b, DV_F64, DV_SHAPE(10));
    CHECK(ut_max_rel_diff(x, y) == 0);
    CHECK(a.offset == 3);
    /* element i depends only on (seed, offset + i/4): a big draw's prefix equals a small draw */
    dv_rng c = dv_rng_new(7), d = dv_rng_new(7);
    dv_tensor *big = dv_rand(&c, DV_F32, DV_SHAPE(1 << 16)), *small = dv_rand(&d, DV_F32, DV_SHAPE(9));
    for (int i = 0; i < 9; i++) CHECK(dv_flat_get(big, i) == dv_flat_get(small, i));
    /* moments and ranges */
    dv_rng e = dv_rng_new(1);
    dv_tensor *n = dv_randn(&e, DV_F64, DV_SHAPE(200000));
    double m = 0, v = 0;
    for (int64_t i = 0; i < 200000; i++) m += dv_flat_get(n, i);
    m /= 200000;
    for (int64_t i = 0; i < 200000; i++) { double t = dv_flat_get(n, i) - m; v += t * t; }
    v /= 200000;
    CHECK(fabs(m) < 0.01 && fabs(v - 1) < 0.02);
    double lo = 1, hi = 0;
    for (int64_t i = 0; i < (1 << 16); i++) { double t = dv_flat_get(big, i); lo = fmin(lo, t); hi = fmax(hi, t); }
    CHECK(lo >= 0 && lo < 1e-3 && hi < 1 && hi > 0.999);
    dv_tensor *ri = dv_randint(&e, DV_I64, -3, 4, DV_SHAPE(1000));
    int seen[7] = {0};
    for (int i = 0; i < 1000; i++) { int64_t t = (int64_t)dv_flat_get(ri, i); CHECK(t >= -3 && t < 4); if (t >= -3 && t < 4) seen[t + 3] = 1; }
    for (int i = 0; i < 7; i++) CHECK(seen[i]);
    dv_release(x); dv_release(y); dv_release(big); dv_release(small); dv_release(n); dv_release(ri);
}

TEST(autograd_accumulates_and_frees) {
    dv_tensor *w = ut_randn_leaf(DV_F64, DV_SHAPE(3), 1);
    for (int k = 0; k < 2; k++) { /* two backwards accumulate into .grad */
        dv_tensor *y = dv_mul(w, w), *s = dv_sum_all(y);
        dv_backward(s);
        dv_release(y); dv_release(s);
    }
    for (int i = 0; i < 3; i++) CHECK_CLOSE(dv_flat_get(w->grad, i), 4 * dv_flat_get(w, i), 1e-12);
    /* a tensor used twice in one graph gets both contributions */
    dv_zero_grad(w);
    dv_tensor *a = dv_exp(w), *b = dv_mul(a, a), *c = dv_add(b, a), *s = dv_sum_all(c);
    dv_backward(s);
    for (int i = 0; i < 3; i++) {
        double e = exp(dv_flat_get(w, i));
        CHECK_CLOSE(dv_flat_get(w->grad, i), 2 * e * e + e, 1e-12);
    }
    /* the graph is freed: intermediates no longer hold their inputs */
    CHECK(s->grad_fn->freed && s->grad_fn->n_in == 0);
    dv_release(a); dv_release(b); dv_release(c); dv_release(s);
    /* no-grad scope and detach record nothing */
    DV_NO_GRAD_BEGIN
    dv_tensor *q = dv_mul(w, w);
    CHECK(!q->grad_fn && !dv_needs_grad(q));
    dv_release(q);
    DV_NO_GRAD_END
    dv_tensor *d = dv_detach(w);
    dv_tensor *dq = dv_mul(d, d);
    CHECK(!dq->grad_fn);
    dv_release(d); dv_release(dq); dv_release(w);
}

TEST(frozen_leaves_get_no_gradient_buffer) {
    /* a prompt-tuning shape: one trainable row, a frozen weight, the gradient flows through */
    dv_tensor *row = ut_randn_leaf(DV_F32, DV_SHAPE(1, 8), 1);
    dv_tensor *w = ut_randn(DV_F32, DV_SHAPE(8, 8), 2); /* frozen */
    dv_tensor *h = dv_matmul(row, w), *t = dv_tanh(h), *h2 = dv_matmul(t, w), *s = dv_sum_all(h2);
    dv_backward(s);
    CHECK(row->grad != NULL && w->grad == NULL);
    dv_release(h); dv_release(t); dv_release(h2); dv_release(s); dv_release(row); dv_release(w);
}

static void bad_add(void *ctx) {
    dv_tensor *a = dv_zeros(DV_F32, DV_SHAPE(2, 3)), *b = dv_zeros(DV_F32, DV_SHAPE(4));
    dv_add(a, b);
}
static void bad_matmul(void *ctx) {
    dv_tensor *a = dv_zeros(DV_F32, DV_SHAPE(2, 3)), *b = dv_zeros(DV_F32, DV_SHAPE(4, 5));
    dv_matmul(a, b);
}
static void bad_reshape(void *ctx) {
    dv_tensor *a = dv_zeros(DV_F32, DV_SHAPE(2, 3));
    dv_reshape(a, DV_SHAPE(4, 2));
}
static void bad_backward_twice(void *ctx) {
    dv_tensor *w = ut_randn_leaf(DV_F32, DV_SHAPE(3), 1);
    dv_tensor *y = dv_exp(w), *s = dv_sum_all(y);
    dv_backward(s);
    dv_backward(s);
}
static void bad_dtype(void *ctx) {
    dv_tensor *a = dv_zeros(DV_I64, DV_SHAPE(2));
    dv_exp(a);
}

TEST(bad_calls_name_op_and_shapes) {
    ut_aborts_with(bad_add, NULL, "add: shapes (2, 3) and (4) do not broadcast");
    ut_aborts_with(bad_matmul, NULL, "matmul: inner dims differ: (2, 3) · (4, 5)");
    ut_aborts_with(bad_reshape, NULL, "cannot reshape (2, 3) (6 elements) to (4, 2)");
    ut_aborts_with(bad_backward_twice, NULL, "already freed");
    ut_aborts_with(bad_dtype, NULL, "exp: expected a f32 or f64 tensor, got i64");
}

TEST(zero_size_dims) {
    dv_tensor *z = ut_randn_leaf(DV_F32, DV_SHAPE(0, 3), 1);
    dv_tensor *e = dv_exp(z), *b = dv_add(e, z), *s = dv_sum(b, (int[]){0}, 1, false), *t = dv_sum_all(s);
    CHECK(dv_numel(e) == 0 && s->shape[0] == 3 && dv_item(t) == 0);
    dv_backward(t);
    CHECK(z->grad && dv_numel(z->grad) == 0);
    dv_tensor *r = dv_reshape(z, DV_SHAPE(3, 0, 5));
    CHECK(dv_numel(r) == 0);
    dv_release(e); dv_release(b); dv_release(s); dv_release(t); dv_release(r); dv_release(z);
}

static dv_tensor *run_sum_mode(dv_tensor **in, void *ctx) {
    int mode = *(int *)ctx;
    if (mode == 0) return dv_sum(in[0], (int[]){-1}, 1, false);
    if (mode == 1) return dv_sum(in[0], (int[]){0}, 1, false);
    if (mode == 2) return dv_mean(in[0], (int[]){1}, 1, true);
    return dv_sum_all(in[0]);
}

TEST(sum_parity) {
    const int64_t shapes[][3] = {{3, 5, 1}, {7, 33, 17}, {2, 1000, 9}, {1, 1, 100003}};
    for (int s = 0; s < 4; s++) {
        dv_tensor *x = ut_randn_leaf(DV_F32, shapes[s], 3, 40 + s);
        for (int mode = 0; mode < 4; mode++) ut_parity("sum", run_sum_mode, &x, 1, &mode, 1e-6);
        dv_release(x);
    }
}
