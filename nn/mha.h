/* nn/mha.h — the multi-head attention module: projections, grouped-query attention, self and
 * cross attention, masks, an optional rotary hook and a KV cache; the attention itself is the
 * fused op dv_attention (nn/attention.h).
 *
 *   x    (B, Tq, C)        queries' input
 *   ctx  (B, Tk, Ckv)      keys' / values' input for cross attention (NULL: self, ctx = x)
 *   out  (B, Tq, C)
 *
 *   q = q_proj(x)   -> (B, Hq,  Tq, D)       separate projections "q_proj", "k_proj",
 *   k = k_proj(ctx) -> (B, Hkv, Tk, D)       "v_proj", or one fused "qkv" (self attention
 *   v = v_proj(ctx) -> (B, Hkv, Tk, D)       only; rows ordered q | k | v)
 *   q, k = rope(q, pos0), rope(k, pos0)      when a rotary hook is set (pos0: cached length)
 *   out = o_proj( attention(q, k, v) )       out projection named cfg.out_name ("o_proj")
 *
 * KV cache (inference only: no autograd through it). A dv_kv_cache holds (B, Hkv, cap, D)
 * key and value buffers and the length used. A forward with a cache writes the new keys and
 * values at [len, len + Tq), attends over all len + Tq of them with the causal window aligned
 * bottom-right (query i sits at position len + i), and advances len. So a prompt can be run in
 * one pass, then tokens one by one, with the same result as one full causal pass.
 * Prefix reuse: run the shared prefix once, then dv_kv_cache_truncate(c, prefix_len) before
 * each continuation (or dv_kv_cache_clone to keep several alive at once).
 * For cross attention the cache holds the context's keys and values: computed on the first
 * call (len == 0) and reused afterwards.
 */
#ifndef DV_NN_MHA_H
#define DV_NN_MHA_H

#include "nn/attention.h"
#include "nn/module.h"

/* rotary hook: x (B, H, T, D) at positions pos0 .. pos0 + T - 1 -> a new reference */
typedef dv_tensor *(*dv_rope_fn)(dv_tensor *x, int64_t pos0, void *ctx);

typedef struct {
    int64_t dim;         /* C: model width (queries' input and output) */
    int64_t kv_dim;      /* Ckv: keys' / values' input width; 0 = dim */
    int n_heads;         /* Hq */
    int n_kv_heads;      /* Hkv, divides Hq; 0 = n_heads */
    int64_t head_dim;    /* D; 0 = dim / n_heads */
    bool fused_qkv;      /* one "qkv" projection (self attention, kv_dim == dim) */
    bool qkv_bias, out_bias;
    bool causal;
    double scale;        /* 0 = 1/sqrt(D) */
    const char *out_name;/* NULL = "o_proj" */
} dv_mha_config;

typedef struct {
    dv_mha_config cfg;
    dv_nn_linear q_proj, k_proj, v_proj, qkv, o_proj;
    dv_rope_fn rope;     /* NULL = none */
    void *rope_ctx;
} dv_mha;

typedef struct {
    dv_tensor *k, *v;    /* (B, Hkv, cap, D), owned */
    int64_t len, cap;
} dv_kv_cache;

/* per-call extras (may be NULL) */
typedef struct {
    dv_tensor *key_padding_mask; /* (B, Tk_total) bool/u8, true = keep (see attention.h) */
    dv_tensor *bias;             /* additive, broadcastable to (B, Hq, Tq, Tk_total) */
} dv_mha_args;

void dv_mha_init(dv_mha *m, dv_registry *r, const char *name, dv_mha_config cfg, dv_dtype dt,
                 dv_rng *rng);
/* cache may be NULL (training / a full pass) */
dv_tensor *dv_mha_forward(dv_mha *m, dv_tensor *x, dv_tensor *ctx, const dv_mha_args *args,
                          dv_kv_cache *cache);

/* an empty cache for this module: batch B, up to cap positions, in dtype dt */
void dv_kv_cache_init(dv_kv_cache *c, const dv_mha *m, int64_t B, int64_t cap, dv_dtype dt);
void dv_kv_cache_free(dv_kv_cache *c);
void dv_kv_cache_truncate(dv_kv_cache *c, int64_t len);       /* keep the first len positions */
void dv_kv_cache_clone(dv_kv_cache *dst, const dv_kv_cache *src); /* deep copy */

#endif
