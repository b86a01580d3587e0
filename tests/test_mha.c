/* tests/test_mha.c — the attention module (nn/mha.c): against linear + dv_attention written
 * out by hand, fused qkv, cross attention, an f64 gradient check, KV-cache decoding equal to
 * the full causal pass (with GQA and a rotary hook), and reuse of a cached prefix. */
#include "nn/mha.h"
#include "tests/util.h"

#include <math.h>

/* a stand-in rotary hook: x * (1 + 0.1 * position), so the positions visibly matter */
static dv_tensor *toy_rope(dv_tensor *x, int64_t pos0, void *ctx) {
    int64_t T = x->shape[2];
    dv_tensor *s = dv_empty(x->dtype, DV_SHAPE(T, 1));
    for (int64_t t = 0; t < T; t++) dv_flat_set(s, t, 1.0 + 0.1 * (double)(pos0 + t));
    dv_tensor *y = dv_mul(x, s);
    dv_release(s);
    return y;
}

static dv_tensor *heads(dv_tensor *y, int64_t H, int64_t D) {
    dv_tensor *v = dv_view(y, DV_SHAPE(y->shape[0], y->shape[1], H, D));
    dv_tensor *t = dv_transpose(v, 1, 2);
    dv_release(v);
    return t;
}

TEST(mha_matches_manual) {
    dv_registry r = {0};
    dv_rng rng = dv_rng_new(1);
    dv_mha m;
    dv_mha_config cfg = {.dim = 16, .n_heads = 4, .n_kv_heads = 2, .qkv_bias = true, .causal = true};
    dv_mha_init(&m, &r, "self_attn", cfg, DV_F32, &rng);
    CHECK(dv_reg_get(&r, "self_attn.k_proj.weight") && dv_reg_get(&r, "self_attn.o_proj.weight"));
    CHECK(dv_reg_get(&r, "self_attn.k_proj.weight")->shape[0] == 8);
    dv_tensor *x = ut_randn(DV_F32, DV_SHAPE(2, 5, 16), 2);
    dv_tensor *keep = dv_ones(DV_BOOL, DV_SHAPE(2, 5));
    dv_set(keep, (int64_t[]){1, 3}, 0);
    dv_tensor *bias = ut_randn(DV_F32, DV_SHAPE(5, 5), 3);
    dv_mha_args args = {.key_padding_mask = keep, .bias = bias};
    dv_tensor *y = dv_mha_forward(&m, x, NULL, &args, NULL);

    dv_tensor *q = dv_linear(x, m.q_proj.weight, m.q_proj.bias), *k = dv_linear(x, m.k_proj.weight, m.k_proj.bias);
    dv_tensor *v = dv_linear(x, m.v_proj.weight, m.v_proj.bias);
    dv_tensor *qh = heads(q, 4, 4), *kh = heads(k, 2, 4), *vh = heads(v, 2, 4);
    dv_attention_opts o = {.causal = true, .key_padding_mask = keep, .bias = bias};
    dv_tensor *a = dv_attention(qh, kh, vh, &o);
    dv_tensor *at = dv_transpose(a, 1, 2);
    dv_tensor *am = dv_reshape(at, DV_SHAPE(2, 5, 16));
    dv_tensor *ref = dv_linear(am, m.o_proj.weight, m.o_proj.bias);
    ut_check_tensor("mha vs manual", y, ref, 1e-6);
    dv_tensor *all[] = {x, keep, bias, y, q, k, v, qh, kh, vh, a, at, am, ref};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) dv_release(all[i]);
    dv_reg_free(&r);
}

/* fused qkv = the same weights split into q/k/v projections */
TEST(mha_fused_qkv) {
    dv_registry r = {0};
    dv_rng rng = dv_rng_new(2);
    dv_mha f, s;
    dv_mha_config cfg = {.dim = 12, .n_heads = 3, .n_kv_heads = 1, .fused_qkv = true, .qkv_bias = true,
                         .out_bias = true, .out_name = "proj"};
    dv_mha_init(&f, &r, "attn", cfg, DV_F32, &rng);
    CHECK(dv_reg_get(&r, "attn.qkv.weight")->shape[0] == 12 + 2 * 4 && dv_reg_get(&r, "attn.proj.bias"));
    cfg.fused_qkv = false;
    dv_mha_init(&s, &r, "split", cfg, DV_F32, &rng);
    int64_t rows[4] = {0, 12, 16, 20};
    dv_nn_linear *parts[3] = {&s.q_proj, &s.k_proj, &s.v_proj};
    for (int i = 0; i < 3; i++) {
        dv_tensor *w = dv_slice(f.qkv.weight, 0, rows[i], rows[i + 1], 1);
        dv_tensor *b = dv_slice(f.qkv.bias, 0, rows[i], rows[i + 1], 1);
        dv_copy_(parts[i]->weight, w), dv_copy_(parts[i]->bias, b);
        dv_release(w), dv_release(b);
    }
    dv_copy_(s.o_proj.weight, f.o_proj.weight), dv_copy_(s.o_proj.bias, f.o_proj.bias);
    dv_tensor *x = ut_randn(DV_F32, DV_SHAPE(2, 6, 12), 4);
    dv_tensor *yf = dv_mha_forward(&f, x, NULL, NULL, NULL), *ys = dv_mha_forward(&s, x, NULL, NULL, NULL);
    ut_check_tensor("fused vs split", yf, ys, 1e-6);
    dv_release(x), dv_release(yf), dv_release(ys);
    dv_reg_free(&r);
}

static dv_tensor *run_mha(dv_tensor **in, void *ctx) {
    dv_mha m = *(dv_mha *)ctx;
    m.q_proj.weight = in[2], m.k_proj.weight = in[3], m.v_proj.weight = in[4], m.o_proj.weight = in[5];
    m.q_proj.bias = in[6];
    return dv_mha_forward(&m, in[0], in[1], NULL, NULL);
}

static dv_tensor *leaf(dv_tensor *t) {
    dv_tensor *c;
    DV_NO_GRAD_BEGIN
    c = dv_clone(t);
    DV_NO_GRAD_END
    dv_set_requires_grad(c, true);
    return c;
}

/* f64 gradient check of cross attention (Tq != Tk, kv_dim != dim, GQA) */
TEST(mha_cross_gradcheck) {
    dv_registry r = {0};
    dv_rng rng = dv_rng_new(3);
    dv_mha m;
    dv_mha_config cfg = {.dim = 8, .kv_dim = 6, .n_heads = 4, .n_kv_heads = 2, .head_dim = 3, .qkv_bias = true};
    dv_mha_init(&m, &r, "cross", cfg, DV_F64, &rng);
    dv_tensor *in[7] = {ut_randn_leaf(DV_F64, DV_SHAPE(2, 3, 8), 1), ut_randn_leaf(DV_F64, DV_SHAPE(2, 5, 6), 2),
                        leaf(m.q_proj.weight), leaf(m.k_proj.weight), leaf(m.v_proj.weight),
                        leaf(m.o_proj.weight), leaf(m.q_proj.bias)};
    ut_gradcheck("mha cross", run_mha, in, 7, &m, 1e-6);
    /* the cached cross path gives the same output twice (keys computed once, then reused) */
    dv_kv_cache c;
    dv_kv_cache_init(&c, &m, 2, 5, DV_F64);
    dv_tensor *y0 = dv_mha_forward(&m, in[0], in[1], NULL, NULL);
    dv_tensor *y1 = dv_mha_forward(&m, in[0], in[1], NULL, &c);
    dv_tensor *y2 = dv_mha_forward(&m, in[0], in[1], NULL, &c);
    CHECK(c.len == 5);
    ut_check_tensor("cross cached", y1, y0, 1e-12);
    ut_check_tensor("cross cached reuse", y2, y0, 1e-12);
    dv_release(y0), dv_release(y1), dv_release(y2);
    dv_kv_cache_free(&c);
    for (int i = 0; i < 7; i++) dv_release(in[i]);
    dv_reg_free(&r);
}

/* rows [t0, t1) of y (B, T, C) */
static dv_tensor *rows(dv_tensor *y, int64_t t0, int64_t t1) { return dv_slice(y, 1, t0, t1, 1); }

TEST(mha_kv_cache_decode) {
    dv_registry r = {0};
    dv_rng rng = dv_rng_new(4);
    dv_mha m;
    dv_mha_config cfg = {.dim = 16, .n_heads = 4, .n_kv_heads = 2, .causal = true};
    dv_mha_init(&m, &r, "attn", cfg, DV_F32, &rng);
    m.rope = toy_rope;
    int64_t B = 2, T = 9, P = 4;
    dv_tensor *x = ut_randn(DV_F32, DV_SHAPE(B, T, 16), 5);
    dv_tensor *full = dv_mha_forward(&m, x, NULL, NULL, NULL);

    /* a prompt of P tokens in one pass, then one token at a time */
    dv_kv_cache c;
    dv_kv_cache_init(&c, &m, B, T, DV_F32);
    dv_tensor *xp = rows(x, 0, P);
    dv_tensor *yp = dv_mha_forward(&m, xp, NULL, NULL, &c);
    dv_tensor *fp = rows(full, 0, P);
    ut_check_tensor("prefill", yp, fp, 1e-5);
    dv_release(xp), dv_release(yp), dv_release(fp);
    for (int64_t t = P; t < T; t++) {
        dv_tensor *xt = rows(x, t, t + 1), *ft = rows(full, t, t + 1);
        dv_tensor *yt = dv_mha_forward(&m, xt, NULL, NULL, &c);
        ut_check_tensor("decode step", yt, ft, 1e-5);
        dv_release(xt), dv_release(ft), dv_release(yt);
    }
    CHECK(c.len == T);

    /* prefix reuse: two continuations of the same cached prefix, each == its own full pass */
    dv_tensor *x2 = ut_randn(DV_F32, DV_SHAPE(B, T, 16), 6);
    dv_tensor *xp2 = rows(x, 0, P), *xs2 = rows(x2, P, T);
    dv_tensor *parts[2] = {xp2, xs2};
    dv_tensor *xcat = dv_concat(parts, 2, 1);                 /* x's prefix, x2's continuation */
    dv_tensor *full2 = dv_mha_forward(&m, xcat, NULL, NULL, NULL);
    dv_kv_cache_truncate(&c, P);
    dv_kv_cache fork;
    dv_kv_cache_clone(&fork, &c);
    dv_tensor *y2 = dv_mha_forward(&m, xs2, NULL, NULL, &c);   /* continuation 2, 5 tokens at once */
    dv_tensor *f2 = rows(full2, P, T);
    ut_check_tensor("prefix reuse (continuation 2)", y2, f2, 1e-5);
    dv_tensor *xs1 = rows(x, P, T), *f1 = rows(full, P, T);
    dv_tensor *y1 = dv_mha_forward(&m, xs1, NULL, NULL, &fork);  /* continuation 1 on the clone */
    ut_check_tensor("prefix reuse (continuation 1)", y1, f1, 1e-5);
    dv_kv_cache_truncate(&c, P);
    dv_tensor *y1b = dv_mha_forward(&m, xs1, NULL, NULL, &c);  /* and again after truncating */
    ut_check_tensor("prefix reuse (truncate)", y1b, f1, 1e-5);

    dv_tensor *all[] = {x, full, x2, xp2, xs2, xcat, full2, y2, f2, xs1, f1, y1, y1b};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) dv_release(all[i]);
    dv_kv_cache_free(&c), dv_kv_cache_free(&fork);
    dv_reg_free(&r);
}

static void overflow(void *ctx) {
    dv_registry r = {0};
    dv_rng rng = dv_rng_new(1);
    dv_mha m;
    dv_mha_init(&m, &r, "a", (dv_mha_config){.dim = 4, .n_heads = 2, .causal = true}, DV_F32, &rng);
    dv_kv_cache c;
    dv_kv_cache_init(&c, &m, 1, 2, DV_F32);
    dv_tensor *x = dv_zeros(DV_F32, DV_SHAPE(1, 3, 4));
    dv_mha_forward(&m, x, NULL, NULL, &c);
}

TEST(mha_cache_overflow_aborts) { CHECK(ut_aborts_with(overflow, NULL, "cache overflow")); }
