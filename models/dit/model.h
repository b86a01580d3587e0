/* models/dit/model.h — the DiT specialist's structs and internal entry points (for the tests,
 * the benchmark and the training tool; the public API is models/dit/dit.h).
 *
 * Parameter names follow the released state_dict of DiffusionDiTImagePolicy:
 *   model.*           the action transformer and its adapters (DiT_SingleTokenAction)
 *   depth_encoder.*   the depth ViT (vit.py: to_patch_embedding.{1,2,3}, transformer.layers.i.{0,1})
 *   vision_encoder.*  the frozen RGB ViT (timm vit_small_patch16_224.dino names)
 * The paper preset keeps the same scheme; its perceiver depth resamplers live under
 * model.depth_adapter / model.gripper_depth_adapter with the perceiver's names.
 */
#ifndef DV_MODELS_DIT_MODEL_H
#define DV_MODELS_DIT_MODEL_H

#include "models/dit/dit.h"
#include "nn/diffusion.h"
#include "nn/module.h"

/* ---- sensory encoders (models/dit/encoders.c) --------------------------------------------- */

/* a pre-norm transformer block of either ViT: x += proj(attn(qkv(LN1 x))); x += fc2(gelu(fc1(LN2 x))) */
typedef struct {
    dv_nn_layer_norm norm1, norm2;
    dv_nn_linear qkv, proj, fc1, fc2;
} dv_dit_vit_block;

/* the trainable ViT of an extra modality (released vit.py): patch LN -> Linear -> LN, CLS,
 * learned positions, pre-norm blocks (bias-free qkv), final LN */
typedef struct {
    int layers, dim, heads, dim_head, patch, channels, image, cls;
    dv_nn_layer_norm patch_norm, embed_norm, norm;
    dv_nn_linear patch_proj;
    dv_tensor *pos, *cls_token;  /* (1, n + 1, dim), (1, 1, dim) */
    dv_dit_vit_block *layer;
} dv_dit_vit;

/* the frozen RGB ViT (timm VisionTransformer, DINO ViT-S/16 shape) */
typedef struct {
    int layers, dim, heads, patch, image, cls;
    dv_tensor *patch_w, *patch_b;  /* (dim, 3, p, p), (dim) */
    dv_tensor *pos, *cls_token;    /* (1, n + 1, dim), (1, 1, dim) */
    dv_dit_vit_block *block;
    dv_nn_layer_norm norm;
} dv_dit_rgb_vit;

/* perceiver resampler (1 layer): per media frame, the latents attend to the frame's tokens and
 * themselves; output (B, media * queries, C) */
typedef struct {
    int media, queries, dim, heads;
    dv_tensor *latents;    /* (queries, C) */
    dv_tensor *media_pos;  /* (media, 1, vis_dim) */
    dv_nn_linear proj;     /* vis_dim -> C */
    dv_nn_layer_norm norm_media, norm_latents, ff_norm, norm;
    dv_nn_linear to_q, to_kv, to_out, ff1, ff2;
} dv_dit_perceiver;

/* MAP attention pooling (released depth adapters): post-norm RMSNorm blocks, SwiGLU MLP */
typedef struct {
    int queries, dim, heads;
    dv_nn_linear projection, q, kv, proj, mlp_project, mlp_out;
    dv_tensor *latents;          /* (queries, C) */
    dv_tensor *attn_g, *mlp_g;   /* (C) */
} dv_dit_map;

void dv_dit_vit_init(dv_dit_vit *v, dv_registry *r, const char *name, int image, int patch,
                     int channels, int dim, int layers, int heads, int dim_head, int mlp_ratio,
                     int cls, dv_dtype dt, dv_rng *rng);
dv_tensor *dv_dit_vit_forward(const dv_dit_vit *v, dv_tensor *img);          /* (B, n(+1), dim) */
void dv_dit_rgb_vit_init(dv_dit_rgb_vit *v, dv_registry *r, const char *name, int image,
                         int patch, int dim, int layers, int heads, int cls, dv_dtype dt,
                         dv_rng *rng);
dv_tensor *dv_dit_rgb_vit_forward(const dv_dit_rgb_vit *v, dv_tensor *img); /* (B, n(+1), dim) */
void dv_dit_perceiver_init(dv_dit_perceiver *p, dv_registry *r, const char *name, int dim,
                           int vis_dim, int heads, int queries, int media, dv_dtype dt, dv_rng *rng);
/* x (B, media, n, vis_dim) -> (B, media * queries, C) */
dv_tensor *dv_dit_perceiver_forward(const dv_dit_perceiver *p, dv_tensor *x);
void dv_dit_map_init(dv_dit_map *m, dv_registry *r, const char *name, int dim, int vis_dim,
                     int heads, int queries, dv_dtype dt, dv_rng *rng);
dv_tensor *dv_dit_map_forward(const dv_dit_map *m, dv_tensor *x);           /* (B, queries, C) */
/* (B, Cin, H, W) -> (B, (H/p)(W/p), p*p*Cin) in the order (p1, p2, c) (vit.py) or (c, p1, p2)
 * (a stride-p convolution's weight order) */
dv_tensor *dv_dit_patchify(dv_tensor *img, int p, bool channel_last);

/* ---- the action transformer (models/dit/model.c) ------------------------------------------ */
typedef struct {
    dv_nn_linear qkv, proj;              /* attn_temporal */
    dv_tensor *rope_freqs;               /* checkpoint buffer (unused: tables are computed) */
    dv_nn_linear fc1, fc2;               /* mlp */
    dv_nn_linear ada;                    /* adaLN_modulation.1: C -> 6C */
    dv_nn_layer_norm ln_v, ln_l;         /* cross_attn.layer_norm_v / _l */
    dv_nn_linear ca_q, ca_k, ca_v, ca_o; /* cross_attn.attn.v_proj, l_proj, values_l_proj, out_v_proj */
    dv_tensor *gamma;                    /* cross_attn.gamma_v (C), LayerScale */
} dv_dit_block;

struct dv_dit {
    dv_dit_config cfg;
    dv_dtype dt;
    dv_registry reg;
    dv_nn_linear x_embedder, t_fc1, t_fc2, prop_fc1, prop_fc2, context_adapter;
    dv_tensor *temp_embed;               /* checkpoint buffer (unused) */
    dv_dit_perceiver visual_adapter, gripper_visual_adapter, depth_perc, gripper_depth_perc;
    dv_dit_map depth_map, gripper_depth_map;
    dv_dit_block *blocks;
    dv_nn_linear final_linear, final_ada;
    dv_dit_vit depth_encoder;
    dv_dit_rgb_vit vision_encoder;
    dv_tensor *rope_cos, *rope_sin;      /* (chunk, rotary_dims) */
    dv_tensor *rgb_mean, *rgb_std;       /* (1, 3, 1, 1) ImageNet statistics */
    dv_ddim *ddim;
    char rgb_source[256];                /* where the RGB ViT's weights came from */
};

struct dv_dit_cond {
    int64_t B, n_obs, n_tok;             /* tokens: n_obs observation tokens, then latents */
    dv_tensor *gen_actions;              /* (B, k, A), zero-padded */
    dv_tensor *g;                        /* (B, C): proprio embedding (+ mean latent) */
    dv_tensor *ctx;                      /* (B, N, C) conditioning tokens */
    dv_tensor **k, **v;                  /* per block: (B, H, N, D) cross-attention keys/values */
};

/* a model in f64 (gradient checks) or f32 */
dv_dit *dv_dit_new_dtype(const dv_dit_config *cfg, dv_dtype dt, dv_rng *init_rng);
/* the sensory tokens alone: (B, n_obs, C) (NULL when no stream) */
dv_tensor *dv_dit_encode_obs(dv_dit *m, const dv_dit_inputs *in);
/* the loss with t (B) i64, noise (B, k, A), drop (B) bool (NULL: no CFG drop) and the
 * attention-dropout seed (NULL: none; used when cfg.attn_dropout > 0) given */
dv_tensor *dv_dit_loss_with(dv_dit *m, const dv_dit_inputs *in, dv_tensor *actions,
                            dv_tensor *t, dv_tensor *noise, dv_tensor *drop,
                            const uint64_t *attn_seed);
/* one DiT block alone (keys/values computed from ctx (B, N, C) here): x (B, k, C), c (B, C) */
dv_tensor *dv_dit_block_forward(const dv_dit *m, int i, dv_tensor *x, dv_tensor *c, dv_tensor *ctx);
/* the DDIM (+ CFG) steps of dv_dit_sample from an already computed conditioning, starting at
 * noise (B, k, A) */
dv_tensor *dv_dit_sample_cond(dv_dit *m, const dv_dit_cond *cd, dv_tensor *noise);
/* [c; c]: the conditioning of a batch twice over (the CFG pair) */
dv_dit_cond *dv_dit_cond_repeat2(const dv_dit_cond *c);

#endif
