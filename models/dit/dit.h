/* models/dit/dit.h — RoboDual's diffusion-transformer "specialist", the fast system of
 * RoboDual (Towards Synergistic, Generalized and Efficient Dual-System for Robotic
 * Manipulation, §3.2–3.3, App. A–B, Table 5).
 *
 * Reference configuration (preset "paper"): 6 DiT blocks, 8 heads, hidden 256, MLP ratio 4;
 * each 7-DoF action of a chunk of k_s = 8 is one token (the generalist's discretised actions
 * for the same steps concatenated channel-wise before the token projection); causal
 * self-attention with rotary positions, cross-attention to the conditioning tokens, MLP;
 * adaLN (shift, scale, gate) regressed from proprioception (2-layer MLP) + diffusion-timestep
 * embedding. Conditioning tokens = perceiver-resampled sensory tokens (frozen RGB ViT, one
 * trainable ViT per extra modality such as depth) + linearly projected generalist latents,
 * computed once per action chunk and reused by every denoising step. 100 training
 * timesteps, x0 prediction, MSE; CFG training drops the generalist latents and
 * proprioception with p = 0.1; DDIM 5 steps with CFG scale 3 at inference.
 * Preset "released" reproduces the network of the official checkpoint instead — see
 * ../shared/notes/robodual-specialist.md for every difference — and "tiny" is a small
 * configuration for tests and the README's demo.
 *
 * Shapes: B batch, S static RGB frames, k = chunk, kg = generalist chunk, C = hidden,
 * N = conditioning tokens.
 */
#ifndef DV_MODELS_DIT_DIT_H
#define DV_MODELS_DIT_DIT_H

#include "nn/module.h"
#include "nn/diffusion.h"
#include "tensor/tensor.h"

typedef struct {
    char preset[16];          /* "paper", "released", "tiny" */
    /* action transformer */
    int layers, heads, hidden, mlp_ratio;
    int chunk;                /* k_s */
    int action_dim;           /* 7 */
    int proprio_dim;          /* 15 robot_obs (paper, tiny); 7 released */
    int gen_chunk;            /* k_g: generalist actions per chunk */
    int gen_bins;             /* 256: discretisation of the generalist's actions */
    int gen_latent_dim;       /* 4096 for OpenVLA-7B; 0 = no generalist latents */
    int gen_latent_tokens;    /* latents per sample */
    int causal;               /* 1 paper, 0 released */
    int rotary_dims;          /* rotated channels per head (head_dim paper, 16 released) */
    /* sensory encoders */
    int image_size, patch;            /* 224, 16 */
    int vit_layers, vit_hidden, vit_heads, vit_mlp_ratio; /* extra-modality ViT (depth) */
    int rgb_vit_layers, rgb_vit_hidden, rgb_vit_heads;     /* frozen RGB ViT */
    int static_frames;                /* S */
    int resampler_queries;            /* 8 */
    int use_depth, use_gripper;       /* which sensory streams exist */
    int vit_dim_head;                 /* depth ViT attention head width (released 64: inner 512) */
    int vit_cls;                      /* keep the ViTs' CLS token among the sensory tokens */
    int depth_pool;                   /* depth resampler: 0 perceiver (paper), 1 MAP (released) */
    /* switches between the paper and the released network (see the notes) */
    int global_latents;               /* adaLN condition also gets the mean projected latent */
    int drop_latent_tokens;           /* CFG drop also hides the latent tokens from cross-attn */
    int ca_norm_residual;             /* released: x = LN(x) + g*CA(..) instead of x + g*CA(..) */
    int ckpt_buffers;                 /* register the checkpoint's unused tensors (temp_embed,
                                         rotary freqs) so a strict load of it succeeds */
    /* diffusion */
    int train_timesteps;              /* 100 */
    int infer_steps;                  /* 5 (DDIM) */
    dv_beta_schedule beta_schedule;
    dv_prediction_type prediction;    /* x0 (paper) or epsilon (released) */
    float cfg_scale;                  /* 3 */
    float cfg_drop;                   /* 0.1 */
    float attn_dropout;               /* on the blocks' self- and cross-attention weights in
                                         training: released 0.1 (attn_drop of its Attention
                                         modules), paper / tiny 0 */
} dv_dit_config;

/* fills cfg with a named preset; -1 (message in err) for an unknown name */
int dv_dit_config_preset(dv_dit_config *cfg, const char *name, char *err, size_t errlen);
/* "key = value" lines (# comments) override fields; errors name `what`, the line and key */
int dv_dit_config_parse(dv_dit_config *cfg, const char *text, const char *what, char *err, size_t errlen);
/* the config as text that dv_dit_config_parse reads back (malloc'd) */
char *dv_dit_config_format(const dv_dit_config *cfg);

typedef struct dv_dit dv_dit;   /* defined in models/dit/model.h */

dv_dit *dv_dit_new(const dv_dit_config *cfg, dv_rng *init_rng);
void dv_dit_free(dv_dit *m);
dv_registry *dv_dit_registry(dv_dit *m);   /* names as the reference's state_dict */
/* moves the model to device d in place: every registry tensor (dv_reg_to) and the tables that
 * are not in the registry (rotary cos / sin, the RGB mean / std), so that the model computes
 * there; a no-op where it is already. Inputs given to the calls below may live anywhere: they
 * are moved to the model's device; outputs stay there. */
void dv_dit_to(dv_dit *m, dv_device d);
const dv_dit_config *dv_dit_cfg(const dv_dit *m);
/* parameter counts per part (action transformer, adapters, each encoder), trainable / total */
void dv_dit_print_summary(const dv_dit *m, FILE *f);
/* what the summary says of the frozen RGB ViT's weights (e.g. "restored from <checkpoint>") */
void dv_dit_set_rgb_source(dv_dit *m, const char *source);
/* frozen RGB ViT weights from safetensors (logs whether they were loaded or are random) */
int dv_dit_load_rgb_encoder(dv_dit *m, const char *path, char *err, size_t errlen);

/* what the specialist is conditioned on, for B samples */
typedef struct {
    dv_tensor *rgb_static;    /* (B, S, 3, H, W) in [0, 1] */
    dv_tensor *rgb_gripper;   /* (B, 3, H, W) or NULL when !use_gripper */
    dv_tensor *depth_static;  /* (B, 1, H, W) or NULL when !use_depth */
    dv_tensor *depth_gripper; /* (B, 1, H, W) or NULL */
    dv_tensor *proprio;       /* (B, proprio_dim) */
    dv_tensor *gen_actions;   /* (B, g, action_dim) in [-1, 1], g <= chunk: the generalist's
                                 (de-)discretised actions for the chunk's first g steps; the
                                 rest are zero-padded (as the released code does) */
    dv_tensor *gen_latents;   /* (B, gen_latent_tokens, gen_latent_dim) or NULL (zeros) */
} dv_dit_inputs;

/* The conditioning computed once per action chunk: sensory encoders + resamplers +
 * projected latents -> tokens (B, N, C), and the adaLN global condition pieces. Opaque. */
typedef struct dv_dit_cond dv_dit_cond;
dv_dit_cond *dv_dit_encode(dv_dit *m, const dv_dit_inputs *in);
void dv_dit_cond_free(dv_dit_cond *c);

/* one denoiser call: noisy actions x_t (B, k, action_dim), timesteps (B) i64 ->
 * the model output (x0 or epsilon, per cfg.prediction), (B, k, action_dim).
 * drop (B) bool or NULL: which samples lose their generalist/proprio condition (CFG). */
dv_tensor *dv_dit_denoise(dv_dit *m, const dv_dit_cond *c, dv_tensor *x_t, dv_tensor *t,
                          dv_tensor *drop);

/* training loss (scalar, MSE) for ground-truth actions (B, k, action_dim): samples t and
 * noise from rng, applies CFG dropout with cfg_drop */
dv_tensor *dv_dit_loss(dv_dit *m, const dv_dit_inputs *in, dv_tensor *actions, dv_rng *rng);

/* DDIM sampling with CFG (conditional and unconditional passes batched together):
 * returns (B, k, action_dim). noise (B, k, action_dim) or NULL (drawn from rng). */
dv_tensor *dv_dit_sample(dv_dit *m, const dv_dit_inputs *in, dv_tensor *noise, dv_rng *rng);

#endif
