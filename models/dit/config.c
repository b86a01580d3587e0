/* models/dit/config.c — the DiT specialist's configuration: named presets and a small
 * "key = value" text format (one field per line, '#' starts a comment) read and written here.
 *
 * Presets
 *   paper     RoboDual Table 5 / App. A–B: 6 blocks, 8 heads, hidden 256, MLP 4, k_s 8,
 *             causal self-attention with rotary over the whole head, adaLN from proprio MLP +
 *             timestep, a perceiver resampler per sensory stream, x0 prediction, 100 train
 *             steps, DDIM 5, CFG 3, condition dropout 0.1.
 *   released  the network of the official checkpoint (OpenDriveLab/RoboDual,
 *             DiT_Tiny_STA inside DiffusionDiTImagePolicy; ../shared/notes/robodual-specialist.md):
 *             bidirectional self-attention, rotary on 16 of 32 channels, latents' mean in the
 *             adaLN condition, LN'd residual around the cross-attention, depth ViT with 64-wide
 *             heads and CLS, MAP pooling for depth, 2 static frames, epsilon prediction.
 *   tiny      a few-hundred-thousand-parameter model for the tests and the 2-core demo.
 * Not here: validation of combinations beyond what the model needs to be built (dv_dit_new
 * asserts the rest).
 */
#include "models/dit/dit.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void base(dv_dit_config *c) {
    memset(c, 0, sizeof *c);
    c->layers = 6, c->heads = 8, c->hidden = 256, c->mlp_ratio = 4;
    c->chunk = 8, c->action_dim = 7, c->proprio_dim = 15;
    c->gen_chunk = 8, c->gen_bins = 256, c->gen_latent_dim = 4096, c->gen_latent_tokens = 8;
    c->causal = 1, c->rotary_dims = 32;
    c->image_size = 224, c->patch = 16;
    c->vit_layers = 6, c->vit_hidden = 256, c->vit_heads = 8, c->vit_mlp_ratio = 4;
    c->rgb_vit_layers = 12, c->rgb_vit_hidden = 384, c->rgb_vit_heads = 6; /* DINO ViT-S/16 */
    c->static_frames = 1, c->resampler_queries = 8;
    c->use_depth = 1, c->use_gripper = 1;
    c->vit_dim_head = 32, c->vit_cls = 0, c->depth_pool = 0;
    c->global_latents = 0, c->drop_latent_tokens = 1, c->ca_norm_residual = 0, c->ckpt_buffers = 0;
    c->train_timesteps = 100, c->infer_steps = 5;
    c->beta_schedule = DV_BETA_SQUAREDCOS_CAP_V2;
    c->prediction = DV_PREDICT_SAMPLE;
    c->cfg_scale = 3.0f, c->cfg_drop = 0.1f;
}

int dv_dit_config_preset(dv_dit_config *cfg, const char *name, char *err, size_t errlen) {
    dv_dit_config c;
    base(&c);
    if (!strcmp(name, "paper")) {
        /* base is the paper */
    } else if (!strcmp(name, "released")) {
        c.proprio_dim = 7;             /* proprio_embedder: Linear(7, hidden) */
        c.gen_latent_tokens = 86;      /* OpenVLA hidden states after the image patches */
        c.causal = 0, c.rotary_dims = 16;
        c.static_frames = 2;           /* current + previous frame */
        c.vit_dim_head = 64, c.vit_cls = 1, c.depth_pool = 1;
        c.global_latents = 1, c.drop_latent_tokens = 0, c.ca_norm_residual = 1, c.ckpt_buffers = 1;
        c.prediction = DV_PREDICT_EPSILON;
        c.attn_dropout = 0.1f;
    } else if (!strcmp(name, "tiny")) {
        c.layers = 2, c.heads = 4, c.hidden = 64;
        c.gen_latent_dim = 32, c.gen_latent_tokens = 4;
        c.rotary_dims = 16;
        c.image_size = 64, c.patch = 16;
        c.vit_layers = 1, c.vit_hidden = 64, c.vit_heads = 4, c.vit_dim_head = 16;
        c.rgb_vit_layers = 1, c.rgb_vit_hidden = 48, c.rgb_vit_heads = 4;
        c.static_frames = 2;
    } else {
        snprintf(err, errlen, "unknown DiT preset '%s' (paper, released, tiny)", name);
        return -1;
    }
    snprintf(c.preset, sizeof c.preset, "%s", name);
    *cfg = c;
    return 0;
}

/* ---- the text format ---------------------------------------------------------------------- */
typedef enum { K_INT, K_FLOAT, K_SCHED, K_PRED } kind;
typedef struct { const char *key; kind k; size_t off; const char *help; } field;
#define F(name, kd, help) {#name, kd, offsetof(dv_dit_config, name), help}
static const field FIELDS[] = {
    F(layers, K_INT, "DiT blocks"), F(heads, K_INT, "attention heads"),
    F(hidden, K_INT, "model width C"), F(mlp_ratio, K_INT, "MLP width / C"),
    F(chunk, K_INT, "k_s: actions per chunk"), F(action_dim, K_INT, "action size"),
    F(proprio_dim, K_INT, "proprioception size"), F(gen_chunk, K_INT, "k_g: generalist actions"),
    F(gen_bins, K_INT, "generalist action bins"), F(gen_latent_dim, K_INT, "latent width (0: none)"),
    F(gen_latent_tokens, K_INT, "latents per sample"), F(causal, K_INT, "causal self-attention"),
    F(rotary_dims, K_INT, "rotated channels per head"), F(image_size, K_INT, "encoder input size"),
    F(patch, K_INT, "ViT patch"), F(vit_layers, K_INT, "depth ViT blocks"),
    F(vit_hidden, K_INT, "depth ViT width"), F(vit_heads, K_INT, "depth ViT heads"),
    F(vit_mlp_ratio, K_INT, "depth ViT MLP ratio"), F(rgb_vit_layers, K_INT, "RGB ViT blocks"),
    F(rgb_vit_hidden, K_INT, "RGB ViT width"), F(rgb_vit_heads, K_INT, "RGB ViT heads"),
    F(static_frames, K_INT, "static RGB frames"), F(resampler_queries, K_INT, "resampler queries"),
    F(use_depth, K_INT, "depth streams"), F(use_gripper, K_INT, "gripper-camera streams"),
    F(vit_dim_head, K_INT, "depth ViT head width"), F(vit_cls, K_INT, "keep CLS tokens"),
    F(depth_pool, K_INT, "0 perceiver, 1 MAP"), F(global_latents, K_INT, "latent mean in adaLN"),
    F(drop_latent_tokens, K_INT, "CFG drop hides latent tokens"),
    F(ca_norm_residual, K_INT, "x = LN(x) + g*CA"), F(ckpt_buffers, K_INT, "checkpoint buffers"),
    F(train_timesteps, K_INT, "diffusion steps in training"), F(infer_steps, K_INT, "DDIM steps"),
    F(beta_schedule, K_SCHED, "linear | scaled_linear | squaredcos_cap_v2"),
    F(prediction, K_PRED, "sample | epsilon | v_prediction"),
    F(cfg_scale, K_FLOAT, "guidance scale"), F(cfg_drop, K_FLOAT, "condition dropout"),
    F(attn_dropout, K_FLOAT, "attention-weight dropout in training"),
};
#undef F
enum { NFIELDS = sizeof FIELDS / sizeof FIELDS[0] };
static const char *SCHED[] = {"linear", "scaled_linear", "squaredcos_cap_v2"};
static const char *PRED[] = {"epsilon", "sample", "v_prediction"};

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

int dv_dit_config_parse(dv_dit_config *cfg, const char *text, const char *what, char *err,
                        size_t errlen) {
    dv_dit_config c = *cfg;
    char *buf = strdup(text ? text : "");
    int line = 0, rc = 0;
    for (char *p = buf, *next; p && *p; p = next) {
        line++;
        next = strchr(p, '\n');
        if (next) *next++ = 0;
        char *hash = strchr(p, '#');
        if (hash) *hash = 0;
        char *s = trim(p);
        if (!*s) continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "%s:%d: expected 'key = value', got '%s'", what, line, s);
            rc = -1;
            break;
        }
        *eq = 0;
        char *key = trim(s), *val = trim(eq + 1);
        if (!strcmp(key, "preset")) {
            /* a preset line resets everything before it */
            if (dv_dit_config_preset(&c, val, err, errlen)) {
                char msg[160];
                snprintf(msg, sizeof msg, "%s", err);
                snprintf(err, errlen, "%s:%d: key 'preset': %s", what, line, msg);
                rc = -1;
                break;
            }
            continue;
        }
        const field *f = NULL;
        for (int i = 0; i < NFIELDS; i++)
            if (!strcmp(FIELDS[i].key, key)) f = &FIELDS[i];
        if (!f) {
            snprintf(err, errlen, "%s:%d: unknown key '%s'", what, line, key);
            rc = -1;
            break;
        }
        char *end = NULL;
        void *dst = (char *)&c + f->off;
        errno = 0;
        if (f->k == K_INT) {
            long v = strtol(val, &end, 10);
            if (!*val || *end || errno || v < 0 || v > 1000000000L) {
                snprintf(err, errlen, "%s:%d: key '%s': '%s' is not a non-negative integer", what,
                         line, key, val);
                rc = -1;
                break;
            }
            *(int *)dst = (int)v;
        } else if (f->k == K_FLOAT) {
            double v = strtod(val, &end);
            if (!*val || *end || errno || v != v || v < 0) {
                snprintf(err, errlen, "%s:%d: key '%s': '%s' is not a non-negative number", what,
                         line, key, val);
                rc = -1;
                break;
            }
            *(float *)dst = (float)v;
        } else {
            const char **names = f->k == K_SCHED ? SCHED : PRED;
            int found = -1;
            for (int i = 0; i < 3; i++)
                if (!strcmp(names[i], val)) found = i;
            if (found < 0) {
                snprintf(err, errlen, "%s:%d: key '%s': '%s' is not one of %s", what, line, key,
                         val, f->help);
                rc = -1;
                break;
            }
            if (f->k == K_SCHED) *(dv_beta_schedule *)dst = (dv_beta_schedule)found;
            else *(dv_prediction_type *)dst = (dv_prediction_type)found;
        }
    }
    free(buf);
    if (rc == 0) {
        /* the checks the network needs, named by key */
        const char *bad = NULL;
        if (c.layers < 1 || c.heads < 1 || c.hidden < 1) bad = "layers/heads/hidden must be >= 1";
        else if (c.hidden % c.heads) bad = "hidden must be a multiple of heads";
        else if (c.rotary_dims % 2 || c.rotary_dims > c.hidden / c.heads)
            bad = "rotary_dims must be even and <= hidden / heads";
        else if (c.chunk < 1 || c.action_dim < 1) bad = "chunk and action_dim must be >= 1";
        else if (c.gen_chunk > c.chunk) bad = "gen_chunk must be <= chunk";
        else if (c.patch < 1 || c.image_size % c.patch) bad = "image_size must be a multiple of patch";
        else if (c.vit_heads < 1 || c.rgb_vit_heads < 1 || c.rgb_vit_hidden % c.rgb_vit_heads)
            bad = "rgb_vit_hidden must be a multiple of rgb_vit_heads";
        else if (c.static_frames < 1 || c.resampler_queries < 1)
            bad = "static_frames and resampler_queries must be >= 1";
        else if (c.train_timesteps < 1 || c.infer_steps < 1 || c.infer_steps > c.train_timesteps)
            bad = "need 1 <= infer_steps <= train_timesteps";
        else if (!(c.cfg_drop >= 0 && c.cfg_drop < 1)) bad = "cfg_drop must be in [0, 1)";
        else if (!(c.attn_dropout >= 0 && c.attn_dropout < 1)) bad = "attn_dropout must be in [0, 1)";
        if (bad) {
            snprintf(err, errlen, "%s: %s", what, bad);
            rc = -1;
        }
    }
    if (rc == 0) *cfg = c;
    return rc;
}

char *dv_dit_config_format(const dv_dit_config *cfg) {
    size_t cap = 4096, n = 0;
    char *out = malloc(cap);
    n += snprintf(out + n, cap - n, "# DiT specialist configuration\n");
    if (cfg->preset[0]) n += snprintf(out + n, cap - n, "preset = %s\n", cfg->preset);
    for (int i = 0; i < NFIELDS; i++) {
        const field *f = &FIELDS[i];
        const void *src = (const char *)cfg + f->off;
        char v[64];
        if (f->k == K_INT) snprintf(v, sizeof v, "%d", *(const int *)src);
        else if (f->k == K_FLOAT) snprintf(v, sizeof v, "%.9g", *(const float *)src);
        else if (f->k == K_SCHED) snprintf(v, sizeof v, "%s", SCHED[*(const dv_beta_schedule *)src]);
        else snprintf(v, sizeof v, "%s", PRED[*(const dv_prediction_type *)src]);
        n += snprintf(out + n, cap - n, "%-19s = %-18s # %s\n", f->key, v, f->help);
        DV_ASSERT(n < cap, "dv_dit_config_format: buffer too small");
    }
    return out;
}
