/* nn/mha.c — multi-head attention module (see nn/mha.h). */
#include "nn/mha.h"
#include "tensor/ops.h"

static int64_t head_dim(const dv_mha_config *c) { return c->head_dim ? c->head_dim : c->dim / c->n_heads; }
static int kv_heads(const dv_mha_config *c) { return c->n_kv_heads ? c->n_kv_heads : c->n_heads; }

void dv_mha_init(dv_mha *m, dv_registry *r, const char *name, dv_mha_config cfg, dv_dtype dt,
                 dv_rng *rng) {
    if (!cfg.kv_dim) cfg.kv_dim = cfg.dim;
    if (!cfg.n_kv_heads) cfg.n_kv_heads = cfg.n_heads;
    if (!cfg.head_dim) cfg.head_dim = cfg.dim / cfg.n_heads;
    if (!cfg.out_name) cfg.out_name = "o_proj";
    DV_ASSERT(cfg.n_heads > 0 && cfg.head_dim > 0 && cfg.n_heads % cfg.n_kv_heads == 0,
              "dv_mha_init: '%s' %d query heads, %d kv heads, head dim %lld", name, cfg.n_heads,
              cfg.n_kv_heads, (long long)cfg.head_dim);
    DV_ASSERT(!cfg.fused_qkv || cfg.kv_dim == cfg.dim,
              "dv_mha_init: '%s' fused qkv needs kv_dim == dim (%lld vs %lld)", name,
              (long long)cfg.kv_dim, (long long)cfg.dim);
    *m = (dv_mha){.cfg = cfg};
    int64_t D = cfg.head_dim, qd = cfg.n_heads * D, kd = cfg.n_kv_heads * D;
    dv_reg_push(r, "%s", name);
    if (cfg.fused_qkv) {
        dv_nn_linear_init(&m->qkv, r, "qkv", cfg.dim, qd + 2 * kd, cfg.qkv_bias, dt, rng);
    } else {
        dv_nn_linear_init(&m->q_proj, r, "q_proj", cfg.dim, qd, cfg.qkv_bias, dt, rng);
        dv_nn_linear_init(&m->k_proj, r, "k_proj", cfg.kv_dim, kd, cfg.qkv_bias, dt, rng);
        dv_nn_linear_init(&m->v_proj, r, "v_proj", cfg.kv_dim, kd, cfg.qkv_bias, dt, rng);
    }
    dv_nn_linear_init(&m->o_proj, r, cfg.out_name, qd, cfg.dim, cfg.out_bias, dt, rng);
    dv_reg_pop(r);
}

/* (B, T, H*D) -> (B, H, T, D) view */
static dv_tensor *split_heads(dv_tensor *y, int64_t H, int64_t D) {
    dv_tensor *v = dv_view(y, DV_SHAPE(y->shape[0], y->shape[1], H, D));
    dv_tensor *t = dv_transpose(v, 1, 2);
    dv_release(v);
    return t;
}

static dv_tensor *maybe_rope(dv_mha *m, dv_tensor *x, int64_t pos0) {
    if (!m->rope) return x;
    dv_tensor *y = m->rope(x, pos0, m->rope_ctx);
    dv_release(x);
    return y;
}

dv_tensor *dv_mha_forward(dv_mha *m, dv_tensor *x, dv_tensor *ctx, const dv_mha_args *args,
                          dv_kv_cache *cache) {
    const dv_mha_config *c = &m->cfg;
    DV_ASSERT(x->ndim == 3 && x->shape[2] == c->dim, "mha: x %s, expected (B, T, %lld)",
              dv_shape_str(x, NULL, 0), (long long)c->dim);
    bool cross = ctx != NULL;
    DV_ASSERT(!cross || (ctx->ndim == 3 && ctx->shape[0] == x->shape[0] && ctx->shape[2] == c->kv_dim),
              "mha: ctx %s with x %s, expected (B, Tk, %lld)", dv_shape_str(ctx, NULL, 0),
              dv_shape_str(x, NULL, 0), (long long)c->kv_dim);
    DV_ASSERT(!(cross && c->fused_qkv), "mha: fused qkv is self attention only, got a ctx");
    int64_t B = x->shape[0], Tq = x->shape[1], D = head_dim(c), Hq = c->n_heads, Hkv = kv_heads(c);
    int64_t pos0 = cache && !cross ? cache->len : 0;

    dv_tensor *q, *k = NULL, *v = NULL;
    if (c->fused_qkv) {
        dv_tensor *y = dv_nn_linear_forward(&m->qkv, x);                /* (B, T, (Hq+2Hkv) D) */
        dv_tensor *y4 = dv_view(y, DV_SHAPE(B, Tq, Hq + 2 * Hkv, D));
        dv_tensor *parts[3];
        dv_split(y4, (int64_t[]){Hq, Hkv, Hkv}, 3, 2, parts);           /* (B, T, H, D) views */
        q = dv_transpose(parts[0], 1, 2);
        k = dv_transpose(parts[1], 1, 2);
        v = dv_transpose(parts[2], 1, 2);
        for (int i = 0; i < 3; i++) dv_release(parts[i]);
        dv_release(y4), dv_release(y);
    } else {
        dv_tensor *y = dv_nn_linear_forward(&m->q_proj, x);
        q = split_heads(y, Hq, D);
        dv_release(y);
        bool reuse = cross && cache && cache->len > 0;   /* cross: context keys already cached */
        if (!reuse) {
            dv_tensor *src = cross ? ctx : x;
            dv_tensor *yk = dv_nn_linear_forward(&m->k_proj, src);
            dv_tensor *yv = dv_nn_linear_forward(&m->v_proj, src);
            k = split_heads(yk, Hkv, D);
            v = split_heads(yv, Hkv, D);
            dv_release(yk), dv_release(yv);
        }
    }
    q = maybe_rope(m, q, pos0);
    if (k && !cross) k = maybe_rope(m, k, pos0);

    int64_t causal_offset = 0;
    if (cache) {
        DV_ASSERT(cache->k && cache->k->shape[0] == B && cache->k->shape[1] == Hkv && cache->k->shape[3] == D,
                  "mha: cache %s does not fit B=%lld Hkv=%lld D=%lld",
                  cache->k ? dv_shape_str(cache->k, NULL, 0) : "(none)", (long long)B, (long long)Hkv, (long long)D);
        if (k) {
            int64_t Tnew = k->shape[2], start = cross ? 0 : cache->len;
            DV_ASSERT(start + Tnew <= cache->cap, "mha: cache overflow: %lld + %lld > capacity %lld",
                      (long long)start, (long long)Tnew, (long long)cache->cap);
            dv_tensor *ks = dv_slice(cache->k, 2, start, start + Tnew, 1);
            dv_tensor *vs = dv_slice(cache->v, 2, start, start + Tnew, 1);
            dv_copy_(ks, k);
            dv_copy_(vs, v);
            dv_release(ks), dv_release(vs), dv_release(k), dv_release(v);
            cache->len = start + Tnew;
        }
        k = dv_slice(cache->k, 2, 0, cache->len, 1);
        v = dv_slice(cache->v, 2, 0, cache->len, 1);
        if (!cross) causal_offset = cache->len - Tq;   /* query i sits at position pos0 + i */
    }
    dv_attention_opts o = {.scale = c->scale, .causal = c->causal && !cross, .causal_offset = causal_offset};
    if (args) o.key_padding_mask = args->key_padding_mask, o.bias = args->bias;
    dv_tensor *a = dv_attention(q, k, v, &o);                           /* (B, Hq, Tq, D) */
    dv_release(q), dv_release(k), dv_release(v);
    dv_tensor *at = dv_transpose(a, 1, 2);                              /* (B, Tq, Hq, D) */
    dv_tensor *merged = dv_reshape(at, DV_SHAPE(B, Tq, Hq * D));
    dv_tensor *out = dv_nn_linear_forward(&m->o_proj, merged);
    dv_release(a), dv_release(at), dv_release(merged);
    return out;
}

void dv_kv_cache_init(dv_kv_cache *c, const dv_mha *m, int64_t B, int64_t cap, dv_dtype dt) {
    int64_t Hkv = kv_heads(&m->cfg), D = head_dim(&m->cfg);
    c->k = dv_zeros(dt, DV_SHAPE(B, Hkv, cap, D));
    c->v = dv_zeros(dt, DV_SHAPE(B, Hkv, cap, D));
    c->len = 0, c->cap = cap;
}

void dv_kv_cache_free(dv_kv_cache *c) {
    dv_release(c->k), dv_release(c->v);
    *c = (dv_kv_cache){0};
}

void dv_kv_cache_truncate(dv_kv_cache *c, int64_t len) {
    DV_ASSERT(len >= 0 && len <= c->len, "dv_kv_cache_truncate: %lld of %lld", (long long)len, (long long)c->len);
    c->len = len;
}

void dv_kv_cache_clone(dv_kv_cache *dst, const dv_kv_cache *src) {
    dst->k = dv_clone(src->k);
    dst->v = dv_clone(src->v);
    dst->len = src->len, dst->cap = src->cap;
}
