/* models/dit/encoders.c — the DiT specialist's sensory side (RoboDual §3.2, App. A): the
 * trainable ViT of an extra modality (depth), the frozen RGB ViT (DINO ViT-S/16 shape), and
 * the two kinds of resampler that turn their tokens into a few conditioning tokens: the
 * perceiver resampler (Flamingo style, 1 layer) and MAP attention pooling (released depth
 * adapters).
 *
 * Layer order and parameter names follow the released code (vit.py, timm's VisionTransformer,
 * transformer_utils.py PerceiverResampler / MAPBlock); shapes are written beside each step.
 * Not here: dropout (every dropout in these modules is 0 in the released configuration),
 * timm's stochastic depth, position-embedding interpolation for other image sizes.
 */
#include "models/dit/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn/attention.h"
#include "nn/bias_act.h"
#include "tensor/ops.h"

/* (B, T, H*D) -> (B, H, T, D) view */
static dv_tensor *split_heads(dv_tensor *x, int H, dv_pool *pool) {
    int64_t B = x->shape[0], T = x->shape[1], D = x->shape[2] / H;
    dv_tensor *v = dv_pool_add(pool, dv_reshape(x, DV_SHAPE(B, T, H, D)));
    return dv_pool_add(pool, dv_transpose(v, 1, 2));
}
/* (B, H, T, D) -> (B, T, H*D) */
static dv_tensor *merge_heads(dv_tensor *x, dv_pool *pool) {
    int64_t B = x->shape[0], H = x->shape[1], T = x->shape[2], D = x->shape[3];
    dv_tensor *t = dv_pool_add(pool, dv_transpose(x, 1, 2));
    return dv_pool_add(pool, dv_reshape(t, DV_SHAPE(B, T, H * D)));
}
/* qkv (B, T, 3*H*D), rows q | k | v -> attention output (B, T, H*D) */
static dv_tensor *self_attention(dv_tensor *qkv, int H, dv_pool *pool) {
    int64_t B = qkv->shape[0], T = qkv->shape[1], D = qkv->shape[2] / (3 * H);
    dv_tensor *v5 = dv_pool_add(pool, dv_view(qkv, DV_SHAPE(B, T, 3, H, D)));
    dv_tensor *p = dv_pool_add(pool, dv_permute(v5, (const int[]){2, 0, 3, 1, 4})); /* (3,B,H,T,D) */
    dv_tensor *q = dv_pool_add(pool, dv_select(p, 0, 0));
    dv_tensor *k = dv_pool_add(pool, dv_select(p, 0, 1));
    dv_tensor *v = dv_pool_add(pool, dv_select(p, 0, 2));
    dv_tensor *o = dv_pool_add(pool, dv_attention(q, k, v, NULL));
    return merge_heads(o, pool);
}

dv_tensor *dv_dit_patchify(dv_tensor *img, int p, bool channel_last) {
    DV_ASSERT(img->ndim == 4 && img->shape[2] % p == 0 && img->shape[3] % p == 0,
              "dv_dit_patchify: image %s not divisible by patch %d", dv_shape_str(img, NULL, 0), p);
    int64_t B = img->shape[0], C = img->shape[1], h = img->shape[2] / p, w = img->shape[3] / p;
    dv_tensor *v = dv_reshape(img, DV_SHAPE(B, C, h, p, w, p));
    /* (B, C, h, p1, w, p2) -> (B, h, w, p1, p2, C) or (B, h, w, C, p1, p2) */
    const int *perm = channel_last ? (const int[]){0, 2, 4, 3, 5, 1} : (const int[]){0, 2, 4, 1, 3, 5};
    dv_tensor *t = dv_permute(v, perm);
    dv_tensor *out = dv_reshape(t, DV_SHAPE(B, h * w, (int64_t)p * p * C));
    dv_release(v), dv_release(t);
    return out;
}

/* prepend the CLS token and add the positions: x (B, n, C) -> (B, n(+1), C) */
static dv_tensor *add_cls_pos(dv_tensor *x, dv_tensor *cls_token, dv_tensor *pos, int cls,
                              dv_pool *pool) {
    int64_t B = x->shape[0], n = x->shape[1], C = x->shape[2];
    if (cls) {
        dv_tensor *c = dv_pool_add(pool, dv_expand(cls_token, DV_SHAPE(B, 1, C)));
        x = dv_pool_add(pool, dv_concat((dv_tensor *[]){c, x}, 2, 1));
        n += 1;
    }
    /* without CLS the positions of the patches are the ones after the CLS slot */
    dv_tensor *pp = dv_pool_add(pool, dv_slice(pos, 1, cls ? 0 : 1, cls ? n : n + 1, 1));
    return dv_pool_add(pool, dv_add(x, pp));
}

/* ---- the pre-norm block both ViTs are made of ------------------------------------------- */
/* the two reference implementations name the same six tensors differently */
typedef struct { const char *norm1, *qkv, *proj, *norm2, *fc1, *fc2; } vit_block_names;
static const vit_block_names VIT_PYTORCH_NAMES = {"0.norm", "0.to_qkv", "0.to_out.0",
                                                  "1.net.0", "1.net.1", "1.net.4"};
static const vit_block_names TIMM_NAMES = {"norm1", "attn.qkv", "attn.proj",
                                           "norm2", "mlp.fc1", "mlp.fc2"};

static void vit_block_init(dv_dit_vit_block *L, dv_registry *r, const vit_block_names *nm, int dim,
                           int inner, int hidden, bool qkv_bias, double eps, dv_dtype dt, dv_rng *rng) {
    dv_nn_layer_norm_init(&L->norm1, r, nm->norm1, dim, eps, true, true, dt);
    dv_nn_linear_init(&L->qkv, r, nm->qkv, dim, 3 * (int64_t)inner, qkv_bias, dt, rng);
    dv_nn_linear_init(&L->proj, r, nm->proj, inner, dim, true, dt, rng);
    dv_nn_layer_norm_init(&L->norm2, r, nm->norm2, dim, eps, true, true, dt);
    dv_nn_linear_init(&L->fc1, r, nm->fc1, dim, hidden, true, dt, rng);
    dv_nn_linear_init(&L->fc2, r, nm->fc2, hidden, dim, true, dt, rng);
}

/* x (B, T, C), owned by the caller -> the blocks, the final LN, and without CLS the patch
 * tokens only; x is released, pool takes the intermediates that must outlive the blocks */
static dv_tensor *vit_blocks_forward(const dv_dit_vit_block *blocks, int layers, int heads,
                                     const dv_nn_layer_norm *norm, int cls, dv_tensor *x,
                                     dv_pool *pool) {
    for (int i = 0; i < layers; i++) {
        /* a pool per layer: what autograd does not keep is freed layer by layer */
        dv_pool lp = {0};
        const dv_dit_vit_block *L = &blocks[i];
        dv_tensor *h = dv_pool_add(&lp, dv_nn_layer_norm_forward(&L->norm1, x));
        h = dv_pool_add(&lp, dv_nn_linear_forward(&L->qkv, h));         /* (B, T, 3 inner) */
        h = self_attention(h, heads, &lp);                              /* (B, T, inner) */
        h = dv_pool_add(&lp, dv_nn_linear_forward(&L->proj, h));
        dv_tensor *x1 = dv_pool_add(&lp, dv_add(x, h));
        h = dv_pool_add(&lp, dv_nn_layer_norm_forward(&L->norm2, x1));
        h = dv_pool_add(&lp, dv_linear_act(h, L->fc1.weight, L->fc1.bias, DV_BIAS_ACT_GELU));
        h = dv_pool_add(&lp, dv_nn_linear_forward(&L->fc2, h));
        dv_tensor *next = dv_add(x1, h);
        dv_pool_release(&lp);
        dv_release(x);
        x = next;
    }
    dv_pool_add(pool, x);
    x = dv_nn_layer_norm_forward(norm, x);
    if (!cls) {
        dv_tensor *s = dv_slice(x, 1, 1, x->shape[1], 1);
        dv_release(x);
        x = s;
    }
    return x;
}

/* ---- the extra-modality ViT (vit.py) ------------------------------------------------------- */
void dv_dit_vit_init(dv_dit_vit *v, dv_registry *r, const char *name, int image, int patch,
                     int channels, int dim, int layers, int heads, int dim_head, int mlp_ratio,
                     int cls, dv_dtype dt, dv_rng *rng) {
    v->layers = layers, v->dim = dim, v->heads = heads, v->dim_head = dim_head;
    v->patch = patch, v->channels = channels, v->image = image, v->cls = cls;
    int64_t n = (int64_t)(image / patch) * (image / patch), pdim = (int64_t)patch * patch * channels;
    int inner = heads * dim_head;
    dv_reg_push(r, "%s", name);
    dv_nn_layer_norm_init(&v->patch_norm, r, "to_patch_embedding.1", pdim, 1e-5, true, true, dt);
    dv_nn_linear_init(&v->patch_proj, r, "to_patch_embedding.2", pdim, dim, true, dt, rng);
    dv_nn_layer_norm_init(&v->embed_norm, r, "to_patch_embedding.3", dim, 1e-5, true, true, dt);
    dv_reg_add(r, "pos_embedding", &v->pos, dv_randn(rng, dt, DV_SHAPE(1, n + 1, dim)));
    dv_reg_add(r, "cls_token", &v->cls_token, dv_randn(rng, dt, DV_SHAPE(1, 1, dim)));
    v->layer = calloc(layers, sizeof *v->layer);
    for (int i = 0; i < layers; i++) {
        dv_reg_push(r, "transformer.layers.%d", i);
        vit_block_init(&v->layer[i], r, &VIT_PYTORCH_NAMES, dim, inner, dim * mlp_ratio, false, 1e-5, dt, rng);
        dv_reg_pop(r);
    }
    dv_nn_layer_norm_init(&v->norm, r, "transformer.norm", dim, 1e-5, true, true, dt);
    dv_reg_pop(r);
}

dv_tensor *dv_dit_vit_forward(const dv_dit_vit *v, dv_tensor *img) {
    dv_pool pool = {0};
    /* (B, c, H, W) -> (B, n, p*p*c) -> LN -> Linear -> LN -> (B, n, C) */
    dv_tensor *x = dv_pool_add(&pool, dv_dit_patchify(img, v->patch, true));
    x = dv_pool_add(&pool, dv_nn_layer_norm_forward(&v->patch_norm, x));
    x = dv_pool_add(&pool, dv_nn_linear_forward(&v->patch_proj, x));
    x = dv_pool_add(&pool, dv_nn_layer_norm_forward(&v->embed_norm, x));
    x = dv_retain(add_cls_pos(x, v->cls_token, v->pos, 1, &pool));   /* (B, n + 1, C), owned */
    x = vit_blocks_forward(v->layer, v->layers, v->heads, &v->norm, v->cls, x, &pool);
    dv_pool_release(&pool);
    return x;
}

/* ---- the frozen RGB ViT (timm VisionTransformer) ------------------------------------------ */
void dv_dit_rgb_vit_init(dv_dit_rgb_vit *v, dv_registry *r, const char *name, int image,
                         int patch, int dim, int layers, int heads, int cls, dv_dtype dt,
                         dv_rng *rng) {
    v->layers = layers, v->dim = dim, v->heads = heads, v->patch = patch, v->image = image;
    v->cls = cls;
    int64_t n = (int64_t)(image / patch) * (image / patch);
    dv_reg_push(r, "%s", name);
    /* random weights stand in for DINO's until dv_dit_load_rgb_encoder (timm: std 0.02) */
    dv_reg_add(r, "cls_token", &v->cls_token, dv_empty(dt, DV_SHAPE(1, 1, dim)));
    dv_reg_add(r, "pos_embed", &v->pos, dv_empty(dt, DV_SHAPE(1, n + 1, dim)));
    dv_init_normal(rng, v->cls_token, 0, 0.02);
    dv_init_normal(rng, v->pos, 0, 0.02);
    dv_tensor *w = dv_empty(dt, DV_SHAPE(dim, 3, patch, patch)), *b = dv_empty(dt, DV_SHAPE(dim));
    dv_init_linear_default(rng, w, b);
    dv_reg_add(r, "patch_embed.proj.weight", &v->patch_w, w);
    dv_reg_add(r, "patch_embed.proj.bias", &v->patch_b, b);
    v->block = calloc(layers, sizeof *v->block);
    for (int i = 0; i < layers; i++) {
        dv_reg_push(r, "blocks.%d", i);
        vit_block_init(&v->block[i], r, &TIMM_NAMES, dim, dim, 4 * dim, true, 1e-6, dt, rng);
        dv_reg_pop(r);
    }
    dv_nn_layer_norm_init(&v->norm, r, "norm", dim, 1e-6, true, true, dt);
    dv_reg_pop(r);
}

dv_tensor *dv_dit_rgb_vit_forward(const dv_dit_rgb_vit *v, dv_tensor *img) {
    dv_pool pool = {0};
    /* the stride-p convolution as patches (c, p1, p2) times the flattened kernel */
    dv_tensor *x = dv_pool_add(&pool, dv_dit_patchify(img, v->patch, false));
    dv_tensor *w2 = dv_pool_add(&pool, dv_reshape(v->patch_w, DV_SHAPE(v->dim, -1)));
    x = dv_pool_add(&pool, dv_linear(x, w2, v->patch_b));                  /* (B, n, C) */
    x = dv_retain(add_cls_pos(x, v->cls_token, v->pos, 1, &pool));   /* owned */
    x = vit_blocks_forward(v->block, v->layers, v->heads, &v->norm, v->cls, x, &pool);
    dv_pool_release(&pool);
    return x;
}

/* ---- perceiver resampler ------------------------------------------------------------------ */
void dv_dit_perceiver_init(dv_dit_perceiver *p, dv_registry *r, const char *name, int dim,
                           int vis_dim, int heads, int queries, int media, dv_dtype dt,
                           dv_rng *rng) {
    p->media = media, p->queries = queries, p->dim = dim, p->heads = heads;
    dv_reg_push(r, "%s", name);
    dv_reg_add(r, "latents", &p->latents, dv_randn(rng, dt, DV_SHAPE(queries, dim)));
    dv_reg_add(r, "media_pos_emb", &p->media_pos, dv_randn(rng, dt, DV_SHAPE(media, 1, vis_dim)));
    dv_nn_linear_init(&p->proj, r, "proj", vis_dim, dim, true, dt, rng);
    dv_nn_layer_norm_init(&p->norm_media, r, "layers.0.0.norm_media", dim, 1e-5, true, true, dt);
    dv_nn_layer_norm_init(&p->norm_latents, r, "layers.0.0.norm_latents", dim, 1e-5, true, true, dt);
    dv_nn_linear_init(&p->to_q, r, "layers.0.0.to_q", dim, dim, false, dt, rng);
    dv_nn_linear_init(&p->to_kv, r, "layers.0.0.to_kv", dim, 2 * dim, false, dt, rng);
    dv_nn_linear_init(&p->to_out, r, "layers.0.0.to_out", dim, dim, false, dt, rng);
    dv_nn_layer_norm_init(&p->ff_norm, r, "layers.0.1.0", dim, 1e-5, true, true, dt);
    dv_nn_linear_init(&p->ff1, r, "layers.0.1.1", dim, 4 * dim, false, dt, rng);
    dv_nn_linear_init(&p->ff2, r, "layers.0.1.3", 4 * dim, dim, false, dt, rng);
    dv_nn_layer_norm_init(&p->norm, r, "norm", dim, 1e-5, true, true, dt);
    dv_reg_pop(r);
}

dv_tensor *dv_dit_perceiver_forward(const dv_dit_perceiver *p, dv_tensor *x) {
    dv_pool pool = {0};
    DV_ASSERT(x->ndim == 4 && x->shape[1] == p->media, "dv_dit_perceiver_forward: x %s, media %d",
              dv_shape_str(x, NULL, 0), p->media);
    int64_t B = x->shape[0], M = p->media, n = x->shape[2], Q = p->queries, C = p->dim;
    /* x (B, M, n, vis) + media_pos (M, 1, vis) -> proj -> (B, M, n, C) */
    x = dv_pool_add(&pool, dv_add(x, p->media_pos));
    x = dv_pool_add(&pool, dv_nn_linear_forward(&p->proj, x));
    dv_tensor *lat = dv_pool_add(&pool, dv_expand(p->latents, DV_SHAPE(B, M, Q, C)));
    dv_tensor *xn = dv_pool_add(&pool, dv_nn_layer_norm_forward(&p->norm_media, x));
    dv_tensor *ln = dv_pool_add(&pool, dv_nn_layer_norm_forward(&p->norm_latents, lat));
    /* queries from the latents; keys/values from [frame tokens; latents] (B, M, n + Q, C) */
    dv_tensor *q = dv_pool_add(&pool, dv_nn_linear_forward(&p->to_q, ln));
    dv_tensor *kvin = dv_pool_add(&pool, dv_concat((dv_tensor *[]){xn, ln}, 2, 2));
    dv_tensor *kv = dv_pool_add(&pool, dv_nn_linear_forward(&p->to_kv, kvin)); /* (B,M,n+Q,2C) */
    dv_tensor *k = dv_pool_add(&pool, dv_slice(kv, 3, 0, C, 1));
    dv_tensor *v = dv_pool_add(&pool, dv_slice(kv, 3, C, 2 * C, 1));
    /* (B*M, T, C) -> heads */
    q = dv_pool_add(&pool, dv_reshape(q, DV_SHAPE(B * M, Q, C)));
    k = dv_pool_add(&pool, dv_reshape(k, DV_SHAPE(B * M, n + Q, C)));
    v = dv_pool_add(&pool, dv_reshape(v, DV_SHAPE(B * M, n + Q, C)));
    dv_tensor *o = dv_pool_add(&pool, dv_attention(split_heads(q, p->heads, &pool),
                                                   split_heads(k, p->heads, &pool),
                                                   split_heads(v, p->heads, &pool), NULL));
    o = merge_heads(o, &pool);                                             /* (B*M, Q, C) */
    o = dv_pool_add(&pool, dv_reshape(o, DV_SHAPE(B, M, Q, C)));
    o = dv_pool_add(&pool, dv_nn_linear_forward(&p->to_out, o));
    lat = dv_pool_add(&pool, dv_add(o, lat));
    dv_tensor *h = dv_pool_add(&pool, dv_nn_layer_norm_forward(&p->ff_norm, lat));
    h = dv_pool_add(&pool, dv_linear_act(h, p->ff1.weight, p->ff1.bias, DV_BIAS_ACT_GELU));
    h = dv_pool_add(&pool, dv_nn_linear_forward(&p->ff2, h));
    lat = dv_pool_add(&pool, dv_add(h, lat));
    lat = dv_pool_add(&pool, dv_nn_layer_norm_forward(&p->norm, lat));
    dv_tensor *out = dv_reshape(lat, DV_SHAPE(B, M * Q, C));
    dv_pool_release(&pool);
    return out;
}

/* ---- MAP attention pooling ---------------------------------------------------------------- */
void dv_dit_map_init(dv_dit_map *m, dv_registry *r, const char *name, int dim, int vis_dim,
                     int heads, int queries, dv_dtype dt, dv_rng *rng) {
    m->queries = queries, m->dim = dim, m->heads = heads;
    dv_reg_push(r, "%s", name);
    dv_nn_linear_init(&m->projection, r, "projection", vis_dim, dim, true, dt, rng);
    dv_tensor *lat = dv_empty(dt, DV_SHAPE(queries, dim));
    dv_init_normal(rng, lat, 0, 0.02);
    dv_reg_add(r, "latents", &m->latents, lat);
    dv_reg_add(r, "attn_norm.g", &m->attn_g, dv_ones(dt, DV_SHAPE(dim)));
    dv_nn_linear_init(&m->q, r, "attn.q", dim, dim, false, dt, rng);
    dv_nn_linear_init(&m->kv, r, "attn.kv", dim, 2 * dim, false, dt, rng);
    dv_nn_linear_init(&m->proj, r, "attn.proj", dim, dim, true, dt, rng);
    dv_reg_add(r, "mlp_norm.g", &m->mlp_g, dv_ones(dt, DV_SHAPE(dim)));
    dv_nn_linear_init(&m->mlp_project, r, "mlp.0.project", dim, 2 * 4 * dim, true, dt, rng);
    dv_nn_linear_init(&m->mlp_out, r, "mlp.1", 4 * dim, dim, true, dt, rng);
    dv_reg_pop(r);
}

/* the released RMSNorm: x / max(||x|| / sqrt(C), 1e-8) * g; the eps inside the root below
 * (1e-16 = (1e-8)^2) differs from that clamp only for rows of norm ~1e-8 */
dv_tensor *dv_dit_map_forward(const dv_dit_map *m, dv_tensor *x) {
    dv_pool pool = {0};
    int64_t B = x->shape[0], Q = m->queries, C = m->dim;
    dv_tensor *px = dv_pool_add(&pool, dv_nn_linear_forward(&m->projection, x));   /* (B, n, C) */
    dv_tensor *lat = dv_pool_add(&pool, dv_expand(m->latents, DV_SHAPE(B, Q, C)));
    dv_tensor *q = dv_pool_add(&pool, dv_nn_linear_forward(&m->q, lat));
    dv_tensor *kv = dv_pool_add(&pool, dv_nn_linear_forward(&m->kv, px));         /* (B, n, 2C) */
    /* kv rows are (2, H, D): k = the first C, v = the second */
    dv_tensor *k = dv_pool_add(&pool, dv_slice(kv, 2, 0, C, 1));
    dv_tensor *v = dv_pool_add(&pool, dv_slice(kv, 2, C, 2 * C, 1));
    dv_tensor *o = dv_pool_add(&pool, dv_attention(split_heads(q, m->heads, &pool),
                                                   split_heads(k, m->heads, &pool),
                                                   split_heads(v, m->heads, &pool), NULL));
    o = dv_pool_add(&pool, dv_nn_linear_forward(&m->proj, merge_heads(o, &pool)));
    lat = dv_pool_add(&pool, dv_add(lat, o));
    lat = dv_pool_add(&pool, dv_rms_norm(lat, m->attn_g, 1e-16));
    /* SwiGLU: project -> [value | gate], value * silu(gate) -> Linear */
    dv_tensor *pg = dv_pool_add(&pool, dv_nn_linear_forward(&m->mlp_project, lat));
    dv_tensor *val = dv_pool_add(&pool, dv_slice(pg, 2, 0, 4 * C, 1));
    dv_tensor *gate = dv_pool_add(&pool, dv_slice(pg, 2, 4 * C, 8 * C, 1));
    dv_tensor *h = dv_pool_add(&pool, dv_mul(val, dv_pool_add(&pool, dv_silu(gate))));
    h = dv_pool_add(&pool, dv_nn_linear_forward(&m->mlp_out, h));
    lat = dv_pool_add(&pool, dv_add(lat, h));
    dv_tensor *out = dv_rms_norm(lat, m->mlp_g, 1e-16);
    dv_pool_release(&pool);
    return out;
}
