/* models/dit/model.c — RoboDual's DiT specialist (§3.2, App. A–B, Table 5): construction, the
 * conditioning computed once per action chunk (dv_dit_encode), the denoiser (dv_dit_denoise),
 * the training loss and DDIM sampling with classifier-free guidance.
 *
 *   tokens   x = x_embedder([gen_actions, x_t])                      (B, k, 2A) -> (B, k, C)
 *   cond     c = [proprio_mlp(p) (+ mean latent tokens)] * keep + t_embedder(t)     (B, C)
 *   block    (shift1, scale1, gate1, shift2, scale2, gate2) = adaLN(silu(c))        6 x (B, C)
 *            x = x + gate1 * SelfAttn(LN(x) * (1 + scale1) + shift1)   rotary, causal per cfg
 *            x = [LN(x) | x] + gamma * CrossAttn(LN(x), LN(ctx))        ctx (B, N, C)
 *            x = x + gate2 * MLP(LN(x) * (1 + scale2) + shift2)        GELU(tanh)
 *   final    out = Linear(LN(x) * (1 + scale) + shift), (shift, scale) = adaLN_f(silu(c))
 *
 * The cross-attention keys and values depend on the conditioning tokens only, never on x_t or
 * t, so dv_dit_encode computes them for every block once per chunk; each denoising step then
 * costs the action-token work alone. dv_dit_sample runs the CFG pair as one batch of 2B.
 * Attention dropout (released: 0.1 on the self- and cross-attention weights) in training only:
 * dv_dit_loss draws one seed per step from its rng, each attention its own mask from it.
 *
 * Devices. The model computes on the device of its weights (dv_dit_to moves them and the tables
 * that are not in the registry). Inputs are moved there on entry; control data — timesteps,
 * CFG drop flags — is read on the host and random draws come from the CPU rng (a seed gives the
 * same numbers on any device), so only the tensors built from them are moved. On the CPU none
 * of this copies anything.
 * Not here: history-action tokens and tactile input (off in the released configuration).
 */
#include "models/dit/model.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nn/attention.h"
#include "nn/bias_act.h"
#include "nn/modulate.h"
#include "nn/rotary.h"
#include "nn/timestep.h"
#include "tensor/cuda.h"
#include "tensor/ops.h"

enum { FREQ_DIM = 256 };  /* the timestep embedder's sinusoid width (DiT) */

/* ---- devices ------------------------------------------------------------------------------ */
/* where the model computes: the device of its weights */
static dv_device dit_device(const dv_dit *m) { return m->x_embedder.weight->device; }

static bool same_device(dv_device a, dv_device b) { return a.type == b.type && a.index == b.index; }

/* t on device d: a new reference to t itself when it is there already (no copy, the autograd
 * graph kept), else a copy; NULL stays NULL */
static dv_tensor *to_device(dv_tensor *t, dv_device d) {
    return !t || same_device(t->device, d) ? dv_retain(t) : dv_tensor_to(t, d);
}
static dv_tensor *on_model(const dv_dit *m, dv_tensor *t) { return to_device(t, dit_device(m)); }
static dv_tensor *on_host(dv_tensor *t) { return to_device(t, DV_DEVICE_CPU); }

void dv_dit_to(dv_dit *m, dv_device d) {
    dv_reg_to(&m->reg, d);
    dv_tensor *bufs[4] = {m->rope_cos, m->rope_sin, m->rgb_mean, m->rgb_std};
    for (int i = 0; i < 4; i++)
        if (bufs[i]) dv_tensor_move_(bufs[i], d);
}

/* the inputs on the model's device (new references; inputs_release drops them) */
static dv_dit_inputs inputs_on_model(const dv_dit *m, const dv_dit_inputs *in) {
    return (dv_dit_inputs){
        .rgb_static = on_model(m, in->rgb_static), .rgb_gripper = on_model(m, in->rgb_gripper),
        .depth_static = on_model(m, in->depth_static), .depth_gripper = on_model(m, in->depth_gripper),
        .proprio = on_model(m, in->proprio), .gen_actions = on_model(m, in->gen_actions),
        .gen_latents = on_model(m, in->gen_latents)};
}
static void inputs_release(dv_dit_inputs *in) {
    dv_release(in->rgb_static), dv_release(in->rgb_gripper), dv_release(in->depth_static);
    dv_release(in->depth_gripper), dv_release(in->proprio), dv_release(in->gen_actions);
    dv_release(in->gen_latents);
}

/* ---- construction ------------------------------------------------------------------------- */
static void block_init(dv_dit_block *b, dv_registry *r, const dv_dit_config *c, dv_dtype dt,
                       dv_rng *rng) {
    int64_t C = c->hidden;
    dv_nn_linear_init(&b->qkv, r, "attn_temporal.qkv", C, 3 * C, true, dt, rng);
    dv_nn_linear_init(&b->proj, r, "attn_temporal.proj", C, C, true, dt, rng);
    b->rope_freqs = NULL;
    if (c->ckpt_buffers) {
        /* rotary_embedding_torch's freqs: theta^(-2k/rot), kept only so a strict load works */
        int64_t nf = c->rotary_dims / 2;
        dv_tensor *f = dv_empty(dt, DV_SHAPE(nf));
        for (int64_t k = 0; k < nf; k++)
            dv_flat_set(f, k, 1.0 / pow(10000.0, (double)(2 * k) / c->rotary_dims));
        dv_reg_add(r, "attn_temporal.rotary_emb.freqs", &b->rope_freqs, f);
    }
    dv_nn_linear_init(&b->fc1, r, "mlp.fc1", C, C * c->mlp_ratio, true, dt, rng);
    dv_nn_linear_init(&b->fc2, r, "mlp.fc2", C * c->mlp_ratio, C, true, dt, rng);
    dv_nn_linear_init(&b->ada, r, "adaLN_modulation.1", C, 6 * C, true, dt, rng);
    dv_nn_layer_norm_init(&b->ln_v, r, "cross_attn.layer_norm_v", C, 1e-5, true, true, dt);
    dv_nn_layer_norm_init(&b->ln_l, r, "cross_attn.layer_norm_l", C, 1e-5, true, true, dt);
    dv_nn_linear_init(&b->ca_q, r, "cross_attn.attn.v_proj", C, C, true, dt, rng);
    dv_nn_linear_init(&b->ca_k, r, "cross_attn.attn.l_proj", C, C, true, dt, rng);
    dv_nn_linear_init(&b->ca_v, r, "cross_attn.attn.values_l_proj", C, C, true, dt, rng);
    dv_nn_linear_init(&b->ca_o, r, "cross_attn.attn.out_v_proj", C, C, true, dt, rng);
    dv_reg_add(r, "cross_attn.gamma_v", &b->gamma, dv_full(dt, DV_SHAPE(C), 1e-4));
}

static bool ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

dv_dit *dv_dit_new_dtype(const dv_dit_config *cfg, dv_dtype dt, dv_rng *rng) {
    const dv_dit_config *c = cfg;
    DV_ASSERT(c->hidden % c->heads == 0 && c->rotary_dims <= c->hidden / c->heads &&
              c->gen_chunk <= c->chunk,
              "dv_dit_new: inconsistent config (hidden %d heads %d rotary %d)", c->hidden,
              c->heads, c->rotary_dims);
    dv_dit *m = calloc(1, sizeof *m);
    m->cfg = *cfg, m->dt = dt;
    snprintf(m->rgb_source, sizeof m->rgb_source, "RANDOM weights (none loaded: "
             "dv_dit_load_rgb_encoder takes a timm vit_small_patch16_224.dino safetensors file)");
    dv_registry *r = &m->reg;
    int64_t C = c->hidden;
    int vis = c->rgb_vit_hidden, dvis = c->vit_hidden;

    dv_reg_push(r, "model");
    dv_nn_linear_init(&m->x_embedder, r, "x_embedder", 2 * c->action_dim, C, true, dt, rng);
    dv_nn_linear_init(&m->t_fc1, r, "t_embedder.mlp.0", FREQ_DIM, C, true, dt, rng);
    dv_nn_linear_init(&m->t_fc2, r, "t_embedder.mlp.2", C, C, true, dt, rng);
    dv_nn_linear_init(&m->prop_fc1, r, "proprio_embedder.0", c->proprio_dim, C, true, dt, rng);
    dv_nn_linear_init(&m->prop_fc2, r, "proprio_embedder.2", C, C, true, dt, rng);
    if (c->gen_latent_dim > 0)
        dv_nn_linear_init(&m->context_adapter, r, "context_adapter", c->gen_latent_dim, C, true, dt, rng);
    dv_dit_perceiver_init(&m->visual_adapter, r, "visual_adapter", C, vis, c->heads,
                          c->resampler_queries, c->static_frames, dt, rng);
    if (c->use_depth) {
        if (c->depth_pool == 1)
            dv_dit_map_init(&m->depth_map, r, "depth_adapter", C, dvis, c->heads, c->resampler_queries, dt, rng);
        else
            dv_dit_perceiver_init(&m->depth_perc, r, "depth_adapter", C, dvis, c->heads,
                                  c->resampler_queries, 1, dt, rng);
    }
    if (c->use_gripper) {
        if (c->use_depth) {
            if (c->depth_pool == 1)
                dv_dit_map_init(&m->gripper_depth_map, r, "gripper_depth_adapter", C, dvis, c->heads,
                                c->resampler_queries, dt, rng);
            else
                dv_dit_perceiver_init(&m->gripper_depth_perc, r, "gripper_depth_adapter", C, dvis,
                                      c->heads, c->resampler_queries, 1, dt, rng);
        }
        dv_dit_perceiver_init(&m->gripper_visual_adapter, r, "gripper_visual_adapter", C, vis,
                              c->heads, c->resampler_queries, 1, dt, rng);
    }
    if (c->ckpt_buffers) {
        /* an unused sin-cos table of the released model (requires_grad False there) */
        dv_tensor *te = dv_empty(dt, DV_SHAPE(1, c->chunk, C));
        for (int64_t p = 0; p < c->chunk; p++)
            for (int64_t j = 0; j < C / 2; j++) {
                double a = p / pow(10000.0, (double)j / (C / 2));
                dv_flat_set(te, p * C + j, sin(a));
                dv_flat_set(te, p * C + C / 2 + j, cos(a));
            }
        dv_reg_add(r, "temp_embed", &m->temp_embed, te);
    }
    m->blocks = calloc(c->layers, sizeof *m->blocks);
    for (int i = 0; i < c->layers; i++) {
        dv_reg_push(r, "blocks.%d", i);
        block_init(&m->blocks[i], r, c, dt, rng);
        dv_reg_pop(r);
    }
    dv_nn_linear_init(&m->final_linear, r, "final_layer.linear", C, c->action_dim, true, dt, rng);
    dv_nn_linear_init(&m->final_ada, r, "final_layer.adaLN_modulation.1", C, 2 * C, true, dt, rng);
    dv_reg_pop(r);

    if (c->use_depth)
        dv_dit_vit_init(&m->depth_encoder, r, "depth_encoder", c->image_size, c->patch, 1,
                        c->vit_hidden, c->vit_layers, c->vit_heads, c->vit_dim_head,
                        c->vit_mlp_ratio, c->vit_cls, dt, rng);
    dv_dit_rgb_vit_init(&m->vision_encoder, r, "vision_encoder", c->image_size, c->patch,
                        c->rgb_vit_hidden, c->rgb_vit_layers, c->rgb_vit_heads, c->vit_cls, dt, rng);

    /* DiT_SingleTokenAction.initialize_weights: xavier-uniform Linear weights and zero biases
     * in the policy network; normal(0.02) timestep MLP; zero adaLN and output layers */
    for (int i = 0; i < dv_reg_count(r); i++) {
        const char *name = dv_reg_name(r, i);
        dv_tensor *t = dv_reg_tensor(r, i);
        if (strncmp(name, "model.", 6)) continue;
        if (ends_with(name, ".weight") && t->ndim == 2) dv_init_xavier_uniform(rng, t, 1.0);
        else if (ends_with(name, ".bias")) dv_init_zeros(t);
    }
    dv_init_normal(rng, m->t_fc1.weight, 0, 0.02);
    dv_init_normal(rng, m->t_fc2.weight, 0, 0.02);
    for (int i = 0; i < c->layers; i++) {
        dv_init_zeros(m->blocks[i].ada.weight);
        dv_init_zeros(m->blocks[i].ada.bias);
    }
    dv_init_zeros(m->final_ada.weight), dv_init_zeros(m->final_ada.bias);
    dv_init_zeros(m->final_linear.weight), dv_init_zeros(m->final_linear.bias);

    dv_reg_freeze(r, "vision_encoder", true);
    if (m->temp_embed) dv_reg_freeze(r, "model.temp_embed", true);
    if (c->ckpt_buffers) dv_reg_freeze(r, "model.blocks.*.rotary_emb.freqs", true);

    /* rotary tables for positions 0..k-1 (interleaved pairs, theta 10000) */
    if (c->rotary_dims > 0) {
        dv_tensor *pos = dv_arange(DV_I64, 0, c->chunk, 1);
        dv_rope_tables(pos, c->rotary_dims, 10000.0, DV_ROPE_INTERLEAVED, dt, &m->rope_cos, &m->rope_sin);
        dv_release(pos);
    }
    m->rgb_mean = dv_from_f64(dt, DV_SHAPE(1, 3, 1, 1), (const double[]){0.485, 0.456, 0.406});
    m->rgb_std = dv_from_f64(dt, DV_SHAPE(1, 3, 1, 1), (const double[]){0.229, 0.224, 0.225});

    dv_ddim_config dc = dv_ddim_config_default();
    dc.num_train_timesteps = c->train_timesteps;
    dc.beta_schedule = c->beta_schedule;
    dc.prediction_type = c->prediction;
    m->ddim = dv_ddim_new(&dc);
    dv_ddim_set_timesteps(m->ddim, c->infer_steps);
    return m;
}

dv_dit *dv_dit_new(const dv_dit_config *cfg, dv_rng *init_rng) {
    return dv_dit_new_dtype(cfg, DV_F32, init_rng);
}

static void vit_free(dv_dit *m) {
    free(m->depth_encoder.layer);
    free(m->vision_encoder.block);
}

void dv_dit_free(dv_dit *m) {
    if (!m) return;
    dv_reg_free(&m->reg);
    vit_free(m);
    free(m->blocks);
    dv_release(m->rope_cos), dv_release(m->rope_sin);
    dv_release(m->rgb_mean), dv_release(m->rgb_std);
    dv_ddim_free(m->ddim);
    free(m);
}

dv_registry *dv_dit_registry(dv_dit *m) { return &m->reg; }
const dv_dit_config *dv_dit_cfg(const dv_dit *m) { return &m->cfg; }

void dv_dit_set_rgb_source(dv_dit *m, const char *source) {
    snprintf(m->rgb_source, sizeof m->rgb_source, "%s", source);
}

void dv_dit_print_summary(const dv_dit *m, FILE *f) {
    static const struct { const char *label, *pattern; } parts[] = {
        {"action/timestep/proprio embedders", "model.*embedder*"},
        {"generalist latent adapter", "model.context_adapter"},
        {"static RGB resampler", "model.visual_adapter"},
        {"static depth resampler", "model.depth_adapter"},
        {"gripper RGB resampler", "model.gripper_visual_adapter"},
        {"gripper depth resampler", "model.gripper_depth_adapter"},
        {"DiT blocks", "model.blocks"},
        {"final layer", "model.final_layer"},
        {"checkpoint buffers", "model.temp_embed"},
        {"depth ViT", "depth_encoder"},
        {"RGB ViT (frozen)", "vision_encoder"},
    };
    const dv_registry *r = &m->reg;
    fprintf(f, "DiT specialist (preset %s): parameters\n", m->cfg.preset[0] ? m->cfg.preset : "-");
    fprintf(f, "  %-36s %12s %12s\n", "part", "trainable", "total");
    int64_t tt = 0, ta = 0;
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++) {
        int64_t tr = 0, all = 0;
        for (int i = 0; i < dv_reg_count(r); i++) {
            if (!dv_reg_match(parts[p].pattern, dv_reg_name(r, i))) continue;
            int64_t n = dv_numel(dv_reg_tensor(r, i));
            all += n;
            if (!dv_reg_is_frozen(r, i)) tr += n;
        }
        if (!all) continue;
        fprintf(f, "  %-36s %12lld %12lld\n", parts[p].label, (long long)tr, (long long)all);
    }
    tt = dv_reg_numel(r, true), ta = dv_reg_numel(r, false);
    int64_t specialist = 0;
    for (int i = 0; i < dv_reg_count(r); i++)
        if (!dv_reg_is_frozen(r, i) && dv_reg_match("model", dv_reg_name(r, i)))
            specialist += dv_numel(dv_reg_tensor(r, i));
    fprintf(f, "  %-36s %12lld %12lld\n", "total", (long long)tt, (long long)ta);
    fprintf(f, "  RGB encoder: %s\n", m->rgb_source);
    fprintf(f, "  specialist (DiT + adapters, trainable): %.2fM; + extra-modality ViT: %.2fM; "
               "%d tensors\n", specialist / 1e6, tt / 1e6, dv_reg_count(r));
}

int dv_dit_load_rgb_encoder(dv_dit *m, const char *path, char *err, size_t errlen) {
    dv_st_file *f = NULL;
    if (dv_st_open(path, &f, err, errlen)) return -1;
    /* accept timm's names as they are ("blocks.0.attn.qkv.weight") or under "vision_encoder." */
    dv_registry *r = &m->reg;
    int n = dv_reg_count(r), rc = 0, loaded = 0;
    dv_tensor **src = calloc(n, sizeof *src);
    for (int i = 0; i < n && !rc; i++) {
        const char *name = dv_reg_name(r, i);
        if (strncmp(name, "vision_encoder.", 15)) continue;
        int j = dv_st_find(f, name + 15);
        if (j < 0) j = dv_st_find(f, name);
        if (j < 0) {
            snprintf(err, errlen, "%s: no tensor '%s' (nor '%s')", path, name + 15, name);
            rc = -1;
            break;
        }
        if (dv_st_load(f, j, DV_ST_WIDEN, &src[i], err, errlen)) { rc = -1; break; }
        dv_tensor *p = dv_reg_tensor(r, i);
        if (!dv_same_shape(src[i], p)) {
            snprintf(err, errlen, "%s: tensor '%s' has shape %s, the model wants %s", path,
                     dv_st_info_at(f, j)->name, dv_shape_str(src[i], NULL, 0), dv_shape_str(p, NULL, 0));
            rc = -1;
        }
    }
    if (!rc)
        for (int i = 0; i < n; i++)
            if (src[i]) dv_copy_(dv_reg_tensor(r, i), src[i]), loaded++;
    for (int i = 0; i < n; i++) dv_release(src[i]);
    free(src);
    dv_st_close(f);
    if (!rc) {
        snprintf(m->rgb_source, sizeof m->rgb_source, "%d tensors loaded from %s", loaded, path);
        fprintf(stderr, "dit: RGB encoder: %s\n", m->rgb_source);
    }
    return rc;
}

/* ---- conditioning ------------------------------------------------------------------------- */
/* (N, 3, H, W) in [0, 1] -> ImageNet-normalised at the encoder's size */
static dv_tensor *rgb_prep(dv_dit *m, dv_tensor *x) {
    dv_tensor *a = dv_sub(x, m->rgb_mean), *b = dv_div(a, m->rgb_std);
    dv_release(a);
    if (b->shape[2] != m->cfg.image_size || b->shape[3] != m->cfg.image_size) {
        dv_tensor *r = dv_resize_bilinear(b, m->cfg.image_size, m->cfg.image_size, false);
        dv_release(b);
        b = r;
    }
    return b;
}
static dv_tensor *depth_prep(dv_dit *m, dv_tensor *x) {
    if (x->shape[2] == m->cfg.image_size && x->shape[3] == m->cfg.image_size) return dv_retain(x);
    return dv_resize_bilinear(x, m->cfg.image_size, m->cfg.image_size, false);
}

/* dv_dit_encode_obs for inputs on the model's device */
static dv_tensor *encode_obs(dv_dit *m, const dv_dit_inputs *in) {
    const dv_dit_config *c = &m->cfg;
    dv_pool pool = {0};
    int64_t B = in->proprio->shape[0], S = c->static_frames;
    /* tokens per stream, concatenated in the released order */
    dv_tensor *s_rgb = NULL, *s_dep = NULL, *g_rgb = NULL, *g_dep = NULL;
    bool grip = c->use_gripper && in->rgb_gripper;
    if (in->rgb_static) {
        DV_ASSERT(in->rgb_static->ndim == 5 && in->rgb_static->shape[0] == B &&
                  in->rgb_static->shape[1] == S && in->rgb_static->shape[2] == 3,
                  "dv_dit_encode: rgb_static %s, want (%lld, %lld, 3, H, W)",
                  dv_shape_str(in->rgb_static, NULL, 0), (long long)B, (long long)S);
        int64_t H = in->rgb_static->shape[3], W = in->rgb_static->shape[4];
        /* all RGB images of the batch through the frozen ViT in one call: (B*S [+ B], n, Cr) */
        dv_tensor *imgs = dv_pool_add(&pool, dv_reshape(in->rgb_static, DV_SHAPE(B * S, 3, H, W)));
        bool joint = grip && in->rgb_gripper->shape[2] == H && in->rgb_gripper->shape[3] == W;
        if (joint) imgs = dv_pool_add(&pool, dv_concat((dv_tensor *[]){imgs, in->rgb_gripper}, 2, 0));
        dv_tensor *feat, *gfeat = NULL;
        DV_NO_GRAD_BEGIN
        feat = dv_pool_add(&pool, dv_dit_rgb_vit_forward(&m->vision_encoder,
                                                         dv_pool_add(&pool, rgb_prep(m, imgs))));
        if (grip && !joint)
            gfeat = dv_pool_add(&pool, dv_dit_rgb_vit_forward(&m->vision_encoder,
                                       dv_pool_add(&pool, rgb_prep(m, in->rgb_gripper))));
        DV_NO_GRAD_END
        int64_t n = feat->shape[1], Cr = feat->shape[2];
        dv_tensor *sf = dv_pool_add(&pool, dv_slice(feat, 0, 0, B * S, 1));
        sf = dv_pool_add(&pool, dv_reshape(sf, DV_SHAPE(B, S, n, Cr)));
        s_rgb = dv_pool_add(&pool, dv_dit_perceiver_forward(&m->visual_adapter, sf));
        if (joint) gfeat = dv_pool_add(&pool, dv_slice(feat, 0, B * S, B * S + B, 1));
        if (grip) {
            dv_tensor *g4 = dv_pool_add(&pool, dv_unsqueeze(gfeat, 1));
            g_rgb = dv_pool_add(&pool, dv_dit_perceiver_forward(&m->gripper_visual_adapter, g4));
        }
    }
    if (c->use_depth && in->depth_static) {
        /* static and gripper depth through the depth ViT in one call: (B or 2B, n, Cv) */
        bool gd = c->use_gripper && in->depth_gripper;
        dv_tensor *d = dv_pool_add(&pool, depth_prep(m, in->depth_static));
        if (gd) {
            dv_tensor *d2 = dv_pool_add(&pool, depth_prep(m, in->depth_gripper));
            d = dv_pool_add(&pool, dv_concat((dv_tensor *[]){d, d2}, 2, 0));
        }
        dv_tensor *feat = dv_pool_add(&pool, dv_dit_vit_forward(&m->depth_encoder, d));
        for (int s = 0; s < (gd ? 2 : 1); s++) {
            dv_tensor *fs = dv_pool_add(&pool, dv_slice(feat, 0, s * B, (s + 1) * B, 1));
            dv_tensor *tok;
            if (c->depth_pool == 1) {
                tok = dv_dit_map_forward(s ? &m->gripper_depth_map : &m->depth_map, fs);
            } else {
                dv_tensor *f4 = dv_pool_add(&pool, dv_unsqueeze(fs, 1));
                tok = dv_dit_perceiver_forward(s ? &m->gripper_depth_perc : &m->depth_perc, f4);
            }
            *(s ? &g_dep : &s_dep) = dv_pool_add(&pool, tok);
        }
    }
    dv_tensor *parts[4];
    int np = 0;
    if (s_rgb) parts[np++] = s_rgb;
    if (s_dep) parts[np++] = s_dep;
    if (g_rgb) parts[np++] = g_rgb;
    if (g_dep) parts[np++] = g_dep;
    dv_tensor *out = np ? dv_concat(parts, np, 1) : NULL;
    dv_pool_release(&pool);
    return out;
}

dv_tensor *dv_dit_encode_obs(dv_dit *m, const dv_dit_inputs *in) {
    dv_dit_inputs di = inputs_on_model(m, in);
    dv_tensor *out = encode_obs(m, &di);
    inputs_release(&di);
    return out;
}

dv_dit_cond *dv_dit_encode(dv_dit *m, const dv_dit_inputs *in_any) {
    const dv_dit_config *c = &m->cfg;
    dv_pool pool = {0};
    DV_ASSERT(in_any->proprio && in_any->gen_actions, "dv_dit_encode: proprio and gen_actions are required");
    dv_dit_inputs di = inputs_on_model(m, in_any);
    const dv_dit_inputs *in = &di;
    int64_t B = in->proprio->shape[0], C = c->hidden, H = c->heads;
    dv_dit_cond *cd = calloc(1, sizeof *cd);
    cd->B = B;

    /* the generalist's actions, zero-padded to the chunk: (B, k, A) */
    dv_tensor *ga = in->gen_actions;
    DV_ASSERT(ga->ndim == 3 && ga->shape[0] == B && ga->shape[1] <= c->chunk &&
              ga->shape[2] == c->action_dim,
              "dv_dit_encode: gen_actions %s, want (%lld, <= %d, %d)", dv_shape_str(ga, NULL, 0),
              (long long)B, c->chunk, c->action_dim);
    if (ga->shape[1] < c->chunk) {
        dv_tensor *z = dv_pool_add(&pool, dv_zeros_on(ga->dtype, DV_SHAPE(B, c->chunk - ga->shape[1], c->action_dim),
                                                      ga->device));
        cd->gen_actions = dv_concat((dv_tensor *[]){ga, z}, 2, 1);
    } else {
        cd->gen_actions = dv_retain(ga);
    }

    dv_tensor *obs = dv_pool_add(&pool, encode_obs(m, in));
    cd->n_obs = obs ? obs->shape[1] : 0;
    dv_tensor *lat = NULL;
    if (c->gen_latent_dim > 0) {
        dv_tensor *gl = in->gen_latents;
        if (!gl) gl = dv_pool_add(&pool, dv_zeros_on(m->dt, DV_SHAPE(B, c->gen_latent_tokens, c->gen_latent_dim),
                                                     dit_device(m)));
        lat = dv_pool_add(&pool, dv_nn_linear_forward(&m->context_adapter, gl));  /* (B, L, C) */
    }
    if (obs && lat) cd->ctx = dv_concat((dv_tensor *[]){obs, lat}, 2, 1);
    else cd->ctx = dv_retain(obs ? obs : lat);
    DV_ASSERT(cd->ctx, "dv_dit_encode: no conditioning tokens (no images and no latents)");
    cd->n_tok = cd->ctx->shape[1];

    /* the global condition without the timestep: proprio MLP (+ mean latent, released) */
    dv_tensor *p = dv_pool_add(&pool, dv_linear_act(in->proprio, m->prop_fc1.weight, m->prop_fc1.bias,
                                                    DV_BIAS_ACT_SILU));
    p = dv_pool_add(&pool, dv_nn_linear_forward(&m->prop_fc2, p));
    if (c->global_latents && lat) {
        dv_tensor *mean = dv_pool_add(&pool, dv_mean(lat, (const int[]){1}, 1, false));
        p = dv_pool_add(&pool, dv_add(p, mean));
    }
    cd->g = dv_retain(p);

    /* per block: LN(ctx) -> keys and values (B, H, N, D) */
    cd->k = calloc(c->layers + 1, sizeof *cd->k);   /* NULL-terminated */
    cd->v = calloc(c->layers + 1, sizeof *cd->v);
    int64_t N = cd->n_tok, D = C / H;
    for (int i = 0; i < c->layers; i++) {
        const dv_dit_block *b = &m->blocks[i];
        dv_tensor *cn = dv_pool_add(&pool, dv_nn_layer_norm_forward(&b->ln_l, cd->ctx));
        dv_tensor *k = dv_pool_add(&pool, dv_nn_linear_forward(&b->ca_k, cn));
        dv_tensor *v = dv_pool_add(&pool, dv_nn_linear_forward(&b->ca_v, cn));
        k = dv_pool_add(&pool, dv_view(k, DV_SHAPE(B, N, H, D)));
        v = dv_pool_add(&pool, dv_view(v, DV_SHAPE(B, N, H, D)));
        cd->k[i] = dv_transpose(k, 1, 2);
        cd->v[i] = dv_transpose(v, 1, 2);
    }
    cd->B = B;
    dv_pool_release(&pool);
    inputs_release(&di);
    return cd;
}

void dv_dit_cond_free(dv_dit_cond *c) {
    if (!c) return;
    dv_release(c->gen_actions), dv_release(c->g), dv_release(c->ctx);
    /* k and v arrays: released up to the first NULL (the count is the model's layers) */
    for (int i = 0; c->k && c->k[i]; i++) dv_release(c->k[i]);
    for (int i = 0; c->v && c->v[i]; i++) dv_release(c->v[i]);
    free(c->k), free(c->v);
    free(c);
}

/* ---- the denoiser ------------------------------------------------------------------------- */
/* the attention-dropout seed of block i's self- (a = 0) or cross-attention (a = 1) for a training
 * step's seed */
static uint64_t attn_seed(uint64_t step_seed, int i, int a) {
    return step_seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(2 * i + a + 1));
}

/* one DiT block: x (B, k, C), mod (B, 6C) = adaLN(silu(c)) (any row stride), cross-attention
 * keys/values (B, H, N, D), kpm (B, N) or NULL, seed: the training step's attention-dropout seed
 * (NULL: no dropout) -> (B, k, C) */
static dv_tensor *block_forward(const dv_dit *m, int i, dv_tensor *x, dv_tensor *mod, dv_tensor *ck,
                                dv_tensor *cv, dv_tensor *kpm, const uint64_t *seed) {
    const dv_dit_config *c = &m->cfg;
    const dv_dit_block *b = &m->blocks[i];
    dv_pool pool = {0};
    int64_t B = x->shape[0], K = x->shape[1], C = c->hidden, H = c->heads, D = C / H;
    dv_tensor *ms[6];
    for (int j = 0; j < 6; j++) ms[j] = dv_pool_add(&pool, dv_slice(mod, 1, j * C, (j + 1) * C, 1));

    /* self-attention over the action tokens */
    dv_tensor *h = dv_pool_add(&pool, dv_layer_norm_modulate(x, ms[0], ms[1], 1e-6));
    dv_tensor *qkv = dv_pool_add(&pool, dv_nn_linear_forward(&b->qkv, h));    /* (B, k, 3C) */
    dv_tensor *q5 = dv_pool_add(&pool, dv_view(qkv, DV_SHAPE(B, K, 3, H, D)));
    dv_tensor *p5 = dv_pool_add(&pool, dv_permute(q5, (const int[]){2, 0, 3, 1, 4}));
    dv_tensor *q = dv_pool_add(&pool, dv_select(p5, 0, 0));                  /* (B, H, k, D) */
    dv_tensor *k = dv_pool_add(&pool, dv_select(p5, 0, 1));
    dv_tensor *v = dv_pool_add(&pool, dv_select(p5, 0, 2));
    if (c->rotary_dims > 0) {
        q = dv_pool_add(&pool, dv_rotary_apply(q, m->rope_cos, m->rope_sin, true));
        k = dv_pool_add(&pool, dv_rotary_apply(k, m->rope_cos, m->rope_sin, true));
    }
    const double pdrop = seed ? c->attn_dropout : 0.0;
    dv_attention_opts ao = {.causal = c->causal != 0, .dropout = pdrop,
                            .dropout_seed = seed ? attn_seed(*seed, i, 0) : 0};
    dv_tensor *a = dv_pool_add(&pool, dv_attention(q, k, v, &ao));         /* (B, H, k, D) */
    a = dv_pool_add(&pool, dv_transpose(a, 1, 2));
    a = dv_pool_add(&pool, dv_reshape(a, DV_SHAPE(B, K, C)));
    a = dv_pool_add(&pool, dv_nn_linear_forward(&b->proj, a));
    x = dv_pool_add(&pool, dv_gated_residual(x, ms[2], a));

    /* cross-attention to the conditioning tokens (keys/values from dv_dit_encode) */
    dv_tensor *xn = dv_pool_add(&pool, dv_nn_layer_norm_forward(&b->ln_v, x));
    dv_tensor *cq = dv_pool_add(&pool, dv_nn_linear_forward(&b->ca_q, xn));
    cq = dv_pool_add(&pool, dv_view(cq, DV_SHAPE(B, K, H, D)));
    cq = dv_pool_add(&pool, dv_transpose(cq, 1, 2));
    dv_attention_opts co = {.key_padding_mask = kpm, .dropout = pdrop,
                            .dropout_seed = seed ? attn_seed(*seed, i, 1) : 0};
    dv_tensor *ca = dv_pool_add(&pool, dv_attention(cq, ck, cv, &co));
    ca = dv_pool_add(&pool, dv_transpose(ca, 1, 2));
    ca = dv_pool_add(&pool, dv_reshape(ca, DV_SHAPE(B, K, C)));
    ca = dv_pool_add(&pool, dv_nn_linear_forward(&b->ca_o, ca));
    ca = dv_pool_add(&pool, dv_mul(ca, b->gamma));
    x = dv_pool_add(&pool, dv_add(c->ca_norm_residual ? xn : x, ca));

    /* MLP */
    h = dv_pool_add(&pool, dv_layer_norm_modulate(x, ms[3], ms[4], 1e-6));
    h = dv_pool_add(&pool, dv_linear_act(h, b->fc1.weight, b->fc1.bias, DV_BIAS_ACT_GELU_TANH));
    h = dv_pool_add(&pool, dv_nn_linear_forward(&b->fc2, h));
    x = dv_pool_add(&pool, dv_gated_residual(x, ms[5], h));
    dv_tensor *out = dv_retain(x);
    dv_pool_release(&pool);
    return out;
}

dv_tensor *dv_dit_block_forward(const dv_dit *m, int i, dv_tensor *x, dv_tensor *c, dv_tensor *ctx) {
    const dv_dit_block *b = &m->blocks[i];
    int64_t B = ctx->shape[0], N = ctx->shape[1], H = m->cfg.heads, D = m->cfg.hidden / H;
    dv_pool pool = {0};
    dv_tensor *cn = dv_pool_add(&pool, dv_nn_layer_norm_forward(&b->ln_l, ctx));
    dv_tensor *k = dv_pool_add(&pool, dv_nn_linear_forward(&b->ca_k, cn));
    dv_tensor *v = dv_pool_add(&pool, dv_nn_linear_forward(&b->ca_v, cn));
    k = dv_pool_add(&pool, dv_transpose(dv_pool_add(&pool, dv_view(k, DV_SHAPE(B, N, H, D))), 1, 2));
    v = dv_pool_add(&pool, dv_transpose(dv_pool_add(&pool, dv_view(v, DV_SHAPE(B, N, H, D))), 1, 2));
    dv_tensor *sc = dv_pool_add(&pool, dv_silu(c));
    dv_tensor *mod = dv_pool_add(&pool, dv_nn_linear_forward(&b->ada, sc));  /* (B, 6C) */
    dv_tensor *out = block_forward(m, i, x, mod, k, v, NULL, NULL);
    dv_pool_release(&pool);
    return out;
}

/* The adaLN input of R denoiser rows: silu(c), c = g * keep + t_embedder(t), with g (R, C) on the
 * model's device, t (R) i64 and drop (R) bool or NULL (keep = !drop) on the host -> (R, C) */
static dv_tensor *cond_silu(dv_dit *m, dv_tensor *g, dv_tensor *t, dv_tensor *drop) {
    dv_pool pool = {0};
    int64_t R = g->shape[0];
    dv_timestep_opts to = dv_timestep_opts_dit();   /* [cos | sin], f32 angles as torch */
    dv_tensor *tf = dv_pool_add(&pool, dv_timestep_embedding(t, FREQ_DIM, &to, m->dt));
    tf = dv_pool_add(&pool, on_model(m, tf));
    dv_tensor *te = dv_pool_add(&pool, dv_linear_act(tf, m->t_fc1.weight, m->t_fc1.bias, DV_BIAS_ACT_SILU));
    te = dv_pool_add(&pool, dv_nn_linear_forward(&m->t_fc2, te));
    bool any = false;
    for (int64_t r = 0; drop && r < R; r++) any |= dv_flat_get(drop, r) != 0;
    if (any) {
        dv_tensor *keep = dv_pool_add(&pool, dv_empty(m->dt, DV_SHAPE(R, 1)));
        for (int64_t r = 0; r < R; r++) dv_flat_set(keep, r, dv_flat_get(drop, r) != 0 ? 0.0 : 1.0);
        keep = dv_pool_add(&pool, on_model(m, keep));
        g = dv_pool_add(&pool, dv_mul(g, keep));
    }
    dv_tensor *cg = dv_pool_add(&pool, dv_add(g, te));
    dv_tensor *sc = dv_silu(cg);
    dv_pool_release(&pool);
    return sc;
}

/* the cross-attention key padding mask (B, N) bool, on the model's device, that hides the
 * generalist's latent tokens from the rows dropped for CFG (drop (B) on the host); NULL when
 * nothing is hidden */
static dv_tensor *latent_mask(const dv_dit *m, const dv_dit_cond *cd, dv_tensor *drop) {
    if (!drop || !m->cfg.drop_latent_tokens || cd->n_tok <= cd->n_obs) return NULL;
    int64_t B = cd->B;
    bool any = false;
    for (int64_t b = 0; b < B; b++) any |= dv_flat_get(drop, b) != 0;
    if (!any) return NULL;
    dv_tensor *kpm = dv_empty(DV_BOOL, DV_SHAPE(B, cd->n_tok));
    bool *kp = dv_data(kpm);
    for (int64_t b = 0; b < B; b++) {
        bool keep = dv_flat_get(drop, b) == 0;
        for (int64_t j = 0; j < cd->n_tok; j++) kp[b * cd->n_tok + j] = j < cd->n_obs || keep;
    }
    dv_tensor *out = on_model(m, kpm);
    dv_release(kpm);
    return out;
}

/* the adaLN rows of every block for sc (R, C): mods[i] (R, 6C), mods[layers] the final layer's
 * (R, 2C); NULL-terminated */
static dv_tensor **modulations(dv_dit *m, dv_tensor *sc) {
    int L = m->cfg.layers;
    dv_tensor **mods = calloc(L + 2, sizeof *mods);
    for (int i = 0; i < L; i++) mods[i] = dv_nn_linear_forward(&m->blocks[i].ada, sc);
    mods[L] = dv_nn_linear_forward(&m->final_ada, sc);
    return mods;
}

static void mods_free(dv_tensor **mods) {
    for (int i = 0; mods && mods[i]; i++) dv_release(mods[i]);
    free(mods);
}

/* the denoiser after its adaLN rows: x_t (B, k, A) -> (B, k, A); seed as block_forward's */
static dv_tensor *denoise_tokens(dv_dit *m, const dv_dit_cond *cd, dv_tensor *x_t,
                                 dv_tensor *const *mods, dv_tensor *kpm, const uint64_t *seed) {
    const dv_dit_config *c = &m->cfg;
    dv_pool pool = {0};
    int64_t C = c->hidden;
    /* tokens: [gen_actions, x_t] -> (B, k, C) */
    dv_tensor *xin = dv_pool_add(&pool, dv_concat((dv_tensor *[]){cd->gen_actions, x_t}, 2, 2));
    dv_tensor *x = dv_pool_add(&pool, dv_nn_linear_forward(&m->x_embedder, xin));
    for (int i = 0; i < c->layers; i++)
        x = dv_pool_add(&pool, block_forward(m, i, x, mods[i], cd->k[i], cd->v[i], kpm, seed));
    dv_tensor *fm = mods[c->layers];                                       /* (B, 2C) */
    dv_tensor *shift = dv_pool_add(&pool, dv_slice(fm, 1, 0, C, 1));
    dv_tensor *scale = dv_pool_add(&pool, dv_slice(fm, 1, C, 2 * C, 1));
    dv_tensor *h = dv_pool_add(&pool, dv_layer_norm_modulate(x, shift, scale, 1e-6));
    dv_tensor *out = dv_nn_linear_forward(&m->final_linear, h);          /* (B, k, A) */
    dv_pool_release(&pool);
    return out;
}

/* x_t anywhere (moved to the model's device), t and drop anywhere (read on the host) */
static dv_tensor *denoise(dv_dit *m, const dv_dit_cond *cd, dv_tensor *x_t, dv_tensor *t,
                          dv_tensor *drop, const uint64_t *seed) {
    const dv_dit_config *c = &m->cfg;
    int64_t B = x_t->shape[0];
    DV_ASSERT(B == cd->B && x_t->ndim == 3 && x_t->shape[1] == c->chunk && x_t->shape[2] == c->action_dim,
              "dv_dit_denoise: x_t %s, conditioning batch %lld, want (B, %d, %d)",
              dv_shape_str(x_t, NULL, 0), (long long)cd->B, c->chunk, c->action_dim);
    dv_tensor *th = on_host(t), *dh = on_host(drop), *x = on_model(m, x_t);
    dv_tensor *sc = cond_silu(m, cd->g, th, dh);                           /* (B, C) */
    dv_tensor **mods = modulations(m, sc);
    dv_tensor *kpm = latent_mask(m, cd, dh);
    dv_tensor *out = denoise_tokens(m, cd, x, mods, kpm, seed);
    mods_free(mods);
    dv_release(sc), dv_release(kpm), dv_release(th), dv_release(dh), dv_release(x);
    return out;
}

dv_tensor *dv_dit_denoise(dv_dit *m, const dv_dit_cond *cd, dv_tensor *x_t, dv_tensor *t,
                          dv_tensor *drop) {
    return denoise(m, cd, x_t, t, drop, NULL);
}

/* ---- training loss ------------------------------------------------------------------------ */
/* dv_diffusion_add_noise (velocity false) or dv_diffusion_velocity of x0 and noise (data, never
 * differentiated) at t, on the model's device. Both build their per-sample coefficients on the
 * host (nn/diffusion.c), so off the CPU they run on host copies and the result is moved. */
static dv_tensor *noise_mix(const dv_dit *m, dv_tensor *x0, dv_tensor *noise, dv_tensor *t, bool velocity) {
    const dv_noise_schedule *s = &m->ddim->sched;
    dv_tensor *xh = on_host(x0), *nh = on_host(noise), *th = on_host(t);
    dv_tensor *y = velocity ? dv_diffusion_velocity(s, xh, nh, th) : dv_diffusion_add_noise(s, xh, nh, th);
    dv_tensor *out = on_model(m, y);
    dv_release(y), dv_release(xh), dv_release(nh), dv_release(th);
    return out;
}

dv_tensor *dv_dit_loss_with(dv_dit *m, const dv_dit_inputs *in, dv_tensor *actions,
                            dv_tensor *t, dv_tensor *noise, dv_tensor *drop,
                            const uint64_t *attn_seed) {
    dv_dit_cond *cd = dv_dit_encode(m, in);
    dv_tensor *noisy = noise_mix(m, actions, noise, t, false);
    dv_tensor *pred = denoise(m, cd, noisy, t, drop, m->cfg.attn_dropout > 0 ? attn_seed : NULL);
    dv_tensor *target;
    switch (m->cfg.prediction) {
    case DV_PREDICT_EPSILON: target = on_model(m, noise); break;
    case DV_PREDICT_SAMPLE: target = on_model(m, actions); break;
    default: target = noise_mix(m, actions, noise, t, true); break;
    }
    dv_tensor *loss = dv_mse_loss(pred, target);
    dv_release(target), dv_release(pred), dv_release(noisy);
    dv_dit_cond_free(cd);
    return loss;
}

dv_tensor *dv_dit_loss(dv_dit *m, const dv_dit_inputs *in, dv_tensor *actions, dv_rng *rng) {
    int64_t B = actions->shape[0];
    dv_tensor *t = dv_randint(rng, DV_I64, 0, m->cfg.train_timesteps, DV_SHAPE(B));
    dv_tensor *noise = dv_randn(rng, actions->dtype, actions->shape, actions->ndim);
    dv_tensor *drop = NULL;
    if (m->cfg.cfg_drop > 0) {
        dv_tensor *u = dv_rand(rng, DV_F32, DV_SHAPE(B));
        drop = dv_empty(DV_BOOL, DV_SHAPE(B));
        bool *d = dv_data(drop);
        for (int64_t b = 0; b < B; b++) d[b] = dv_flat_get(u, b) < m->cfg.cfg_drop;
        dv_release(u);
    }
    /* attention dropout: one seed per step, drawn only when it is on (the stream of a model
     * without it is unchanged) */
    uint64_t seed = 0;
    if (m->cfg.attn_dropout > 0) seed = (uint64_t)dv_rng_u32(rng) << 32 | dv_rng_u32(rng);
    dv_tensor *loss = dv_dit_loss_with(m, in, actions, t, noise, drop, m->cfg.attn_dropout > 0 ? &seed : NULL);
    dv_release(t), dv_release(noise), dv_release(drop);
    return loss;
}

/* ---- sampling ----------------------------------------------------------------------------- */
dv_dit_cond *dv_dit_cond_repeat2(const dv_dit_cond *c) {
    dv_dit_cond *d = calloc(1, sizeof *d);
    d->B = 2 * c->B, d->n_obs = c->n_obs, d->n_tok = c->n_tok;
#define TWICE(x) dv_concat((dv_tensor *[]){(x), (x)}, 2, 0)
    d->gen_actions = TWICE(c->gen_actions);
    d->g = TWICE(c->g);
    d->ctx = TWICE(c->ctx);
    int L = 0;
    while (c->k[L]) L++;
    d->k = calloc(L + 1, sizeof *d->k);
    d->v = calloc(L + 1, sizeof *d->v);
    for (int i = 0; i < L; i++) d->k[i] = TWICE(c->k[i]), d->v[i] = TWICE(c->v[i]);
#undef TWICE
    return d;
}

dv_tensor *dv_dit_sample(dv_dit *m, const dv_dit_inputs *in, dv_tensor *noise, dv_rng *rng) {
    const dv_dit_config *c = &m->cfg;
    dv_tensor *x, *y;
    DV_NO_GRAD_BEGIN
    int64_t B = in->proprio->shape[0];
    /* drawn on the CPU rng (the same numbers on any device), moved by dv_dit_sample_cond */
    x = noise ? dv_retain(noise) : dv_randn(rng, m->dt, DV_SHAPE(B, c->chunk, c->action_dim));
    dv_dit_cond *cd = dv_dit_encode(m, in);
    y = dv_dit_sample_cond(m, cd, x);
    dv_release(x);
    dv_dit_cond_free(cd);
    DV_NO_GRAD_END
    return y;
}

/* One thread or all for the steps. A step works on (2)B x k action tokens — 16 rows at batch 1 —
 * through ~20 ops per block, each a few microseconds of work. Sharing them out pays while an
 * OpenMP region costs a microsecond or two (threads spin between regions: libgomp's default;
 * measured 9.5 ms for the 5 guided steps of the paper preset on 2 threads, 17 ms on one); with
 * OMP_WAIT_POLICY=passive each region wakes sleeping threads, tens of microseconds on a VM, and
 * one thread is faster (16 ms, 20 ms on 2). */
static bool steps_on_one_thread(int64_t rows) {
    const char *p = getenv("OMP_WAIT_POLICY");
    return rows <= 64 && p && !strcasecmp(p, "passive");
}

dv_tensor *dv_dit_sample_cond(dv_dit *m, const dv_dit_cond *cd, dv_tensor *noise) {
    const dv_dit_config *c = &m->cfg;
    dv_ddim *s = m->ddim;
    dv_tensor *x = on_model(m, noise);
    DV_NO_GRAD_BEGIN
    dv_pool pool = {0};
    int64_t B = noise->shape[0], S = s->num_timesteps;
    DV_ASSERT(B == cd->B, "dv_dit_sample_cond: noise %s, conditioning batch %lld",
              dv_shape_str(noise, NULL, 0), (long long)cd->B);
    bool guided = c->cfg_scale != 1.0f;
    /* rows of one model call: [conditional; unconditional] under CFG */
    dv_dit_cond *c2 = guided ? dv_dit_cond_repeat2(cd) : NULL;
    const dv_dit_cond *cc = guided ? c2 : cd;
    int64_t R = cc->B;
    dv_tensor *drop = NULL;   /* drop flags and timesteps: host control data */
    if (guided) {
        drop = dv_pool_add(&pool, dv_empty(DV_BOOL, DV_SHAPE(R)));
        for (int64_t r = 0; r < R; r++) ((bool *)dv_data(drop))[r] = r >= B;
    }
    /* the adaLN rows of all S steps at once: they depend on t and the conditioning only, so one
     * (S x R)-row product per block reads its weights once per chunk instead of once per step */
    dv_tensor *t_all = dv_pool_add(&pool, dv_empty(DV_I64, DV_SHAPE(S * R)));
    dv_tensor *d_all = drop ? dv_pool_add(&pool, dv_empty(DV_BOOL, DV_SHAPE(S * R))) : NULL;
    dv_tensor **gs = malloc(S * sizeof *gs);
    for (int64_t i = 0; i < S; i++) {
        gs[i] = cc->g;
        for (int64_t r = 0; r < R; r++) {
            ((int64_t *)dv_data(t_all))[i * R + r] = s->timesteps[i];
            if (d_all) ((bool *)dv_data(d_all))[i * R + r] = r >= B;
        }
    }
    dv_tensor *g_all = dv_pool_add(&pool, dv_concat(gs, (int)S, 0));      /* (S R, C) */
    free(gs);
    dv_tensor *sc = dv_pool_add(&pool, cond_silu(m, g_all, t_all, d_all));
    dv_tensor **mods = modulations(m, sc);
    dv_tensor *kpm = dv_pool_add(&pool, latent_mask(m, cc, drop));
    dv_tensor **step_mods = calloc(c->layers + 2, sizeof *step_mods);

    int threads = omp_get_max_threads();
    bool one = steps_on_one_thread(R * c->chunk);
    if (one) omp_set_num_threads(1);
    for (int64_t i = 0; i < S; i++) {
        int64_t t = s->timesteps[i];
        for (int l = 0; l <= c->layers; l++) step_mods[l] = dv_slice(mods[l], 0, i * R, (i + 1) * R, 1);
        dv_tensor *xx = guided ? dv_concat((dv_tensor *[]){x, x}, 2, 0) : dv_retain(x);
        dv_tensor *o = denoise_tokens(m, cc, xx, step_mods, kpm, NULL), *out;
        if (guided) { /* uncond + scale * (cond - uncond) */
            dv_tensor *oc = dv_slice(o, 0, 0, B, 1), *ou = dv_slice(o, 0, B, 2 * B, 1);
            dv_tensor *diff = dv_sub(oc, ou), *sd = dv_scale(diff, c->cfg_scale);
            out = dv_add(ou, sd);
            dv_release(oc), dv_release(ou), dv_release(diff), dv_release(sd);
        } else {
            out = dv_retain(o);
        }
        dv_tensor *next = dv_ddim_step(s, out, t, x, 0.0, NULL);
        for (int l = 0; l <= c->layers; l++) dv_release(step_mods[l]);
        dv_release(xx), dv_release(o), dv_release(out), dv_release(x);
        x = next;
    }
    if (one) omp_set_num_threads(threads);
    free(step_mods);
    mods_free(mods);
    dv_dit_cond_free(c2);
    dv_pool_release(&pool);
    DV_NO_GRAD_END
    return x;
}
