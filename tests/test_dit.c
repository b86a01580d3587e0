/* tests/test_dit.c — the DiT specialist (models/dit): configuration text, parameter counts of
 * the presets against the released checkpoint, the PyTorch reference (tests/reference/gen_dit.py:
 * block, whole tiny model forward, loss and parameter gradients of one training step, one DDIM
 * sampling run with CFG), an f64 gradient check of a micro model, and encode-once reuse.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "models/dit/model.h"
#include "tensor/ops.h"
#include "tests/util.h"

/* ---- configuration ------------------------------------------------------------------------ */
TEST(dit_config_presets_and_text) {
    char err[256];
    dv_dit_config a, b;
    CHECK(dv_dit_config_preset(&a, "paper", err, sizeof err) == 0);
    CHECK(a.layers == 6 && a.heads == 8 && a.hidden == 256 && a.chunk == 8 && a.causal == 1);
    CHECK(a.prediction == DV_PREDICT_SAMPLE && a.infer_steps == 5 && a.train_timesteps == 100);
    CHECK(dv_dit_config_preset(&a, "released", err, sizeof err) == 0);
    CHECK(a.causal == 0 && a.rotary_dims == 16 && a.prediction == DV_PREDICT_EPSILON);
    CHECK(dv_dit_config_preset(&a, "nope", err, sizeof err) == -1 && strstr(err, "nope"));

    /* format -> parse gives the same config */
    CHECK(dv_dit_config_preset(&a, "tiny", err, sizeof err) == 0);
    a.cfg_scale = 2.5f, a.layers = 3, a.prediction = DV_PREDICT_V;
    char *txt = dv_dit_config_format(&a);
    CHECK(dv_dit_config_preset(&b, "paper", err, sizeof err) == 0);
    CHECK(dv_dit_config_parse(&b, txt, "fmt", err, sizeof err) == 0);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
    free(txt);

    /* overrides and errors naming the line and the key */
    CHECK(dv_dit_config_parse(&b, "# c\n layers = 4 \nbeta_schedule=linear\n", "f.cfg", err, sizeof err) == 0);
    CHECK(b.layers == 4 && b.beta_schedule == DV_BETA_LINEAR);
    CHECK(dv_dit_config_parse(&b, "layers = 4\nlayerz = 2\n", "f.cfg", err, sizeof err) == -1);
    CHECK(strstr(err, "f.cfg:2") && strstr(err, "layerz"));
    CHECK(dv_dit_config_parse(&b, "\n\nheads = x\n", "f.cfg", err, sizeof err) == -1);
    CHECK(strstr(err, "f.cfg:3") && strstr(err, "heads"));
    CHECK(dv_dit_config_parse(&b, "prediction = x0\n", "f.cfg", err, sizeof err) == -1);
    CHECK(strstr(err, "prediction"));
    CHECK(dv_dit_config_parse(&b, "heads = 7\n", "f.cfg", err, sizeof err) == -1);
    CHECK(strstr(err, "heads"));
    CHECK(dv_dit_config_parse(&b, "just words\n", "f.cfg", err, sizeof err) == -1);
    CHECK(strstr(err, "f.cfg:1"));
    CHECK(b.layers == 4);  /* failed parses change nothing */
}

/* the released preset against the official checkpoint's facts: 447 tensors, 20,516,231
 * trainable parameters (DiT + adapters + depth ViT; the DINO ViT-S/16 frozen: 21.67M) */
TEST(dit_released_parameter_count) {
    char err[256];
    dv_dit_config c;
    dv_dit_config_preset(&c, "released", err, sizeof err);
    dv_rng rng = dv_rng_new(1);
    dv_dit *m = dv_dit_new(&c, &rng);
    dv_registry *r = dv_dit_registry(m);
    int64_t frozen_buffers = 0;
    for (int i = 0; i < dv_reg_count(r); i++)
        if (dv_reg_is_frozen(r, i) && !dv_reg_match("vision_encoder", dv_reg_name(r, i)))
            frozen_buffers += dv_numel(dv_reg_tensor(r, i));
    CHECK_MSG(dv_reg_count(r) == 447, "tensors %d", dv_reg_count(r));
    CHECK_MSG(dv_reg_numel(r, true) == 20516231, "trainable %lld", (long long)dv_reg_numel(r, true));
    int64_t dino = dv_reg_numel(r, false) - dv_reg_numel(r, true) - frozen_buffers;
    CHECK_MSG(dino > 21.6e6 && dino < 21.7e6, "frozen RGB ViT %lld", (long long)dino);
    CHECK(dv_reg_get(r, "model.blocks.5.cross_attn.attn.values_l_proj.weight"));
    CHECK(dv_reg_get(r, "depth_encoder.transformer.layers.5.1.net.4.bias"));
    CHECK(dv_reg_get(r, "vision_encoder.blocks.11.mlp.fc2.weight"));
    CHECK(dv_reg_get(r, "model.gripper_depth_adapter.mlp.0.project.weight"));
    if (dv_test_verbose) dv_dit_print_summary(m, stdout);
    dv_dit_free(m);
}

/* ---- the PyTorch reference (tests/reference/gen_dit.py -> dit.bin) ------------------------ */
#define FIXTURE "tests/reference/dit.bin"
static const char *FX_TINY =
    "hidden = 16\nheads = 2\nrotary_dims = 8\nimage_size = 16\npatch = 8\nvit_hidden = 16\n"
    "vit_heads = 2\nvit_dim_head = 8\nrgb_vit_hidden = 12\nrgb_vit_heads = 2\n"
    "gen_latent_dim = 8\ngen_latent_tokens = 3\nresampler_queries = 4\n";
static const char *FX_RELEASED =
    "causal = 0\nvit_cls = 1\ndepth_pool = 1\nglobal_latents = 1\ndrop_latent_tokens = 0\n"
    "ca_norm_residual = 1\nprediction = epsilon\nrotary_dims = 4\nvit_dim_head = 16\n";

typedef struct {
    dv_dit *m;
    dv_dit_inputs in;
    dv_tensor *owned[8];
} fx_model;

/* the tiny model with the reference's weights: tag "tp" (paper switches) or "tr" (released) */
static bool fx_model_load(fx_model *fm, ut_fixture_file *f, const char *tag) {
    char err[256], key[600];
    dv_dit_config c;
    memset(fm, 0, sizeof *fm);
    dv_dit_config_preset(&c, "tiny", err, sizeof err);
    CHECK(dv_dit_config_parse(&c, FX_TINY, "fixture", err, sizeof err) == 0);
    if (!strcmp(tag, "tr")) CHECK(dv_dit_config_parse(&c, FX_RELEASED, "fixture", err, sizeof err) == 0);
    c.ckpt_buffers = 0;
    dv_rng rng = dv_rng_new(7);
    fm->m = dv_dit_new(&c, &rng);
    dv_registry *r = dv_dit_registry(fm->m);
    int missing = 0;
    for (int i = 0; i < dv_reg_count(r); i++) {
        snprintf(key, sizeof key, "%s.p.%s", tag, dv_reg_name(r, i));
        dv_tensor *t = ut_fixture_get(f, key);
        if (!t) {  /* "tr" shares the parameters it has in common with "tp" */
            snprintf(key, sizeof key, "tp.p.%s", dv_reg_name(r, i));
            t = ut_fixture_get(f, key);
        }
        if (!t || !dv_same_shape(t, dv_reg_tensor(r, i))) {
            CHECK_MSG(0, "%s: parameter %s missing or of another shape in the fixture", tag, dv_reg_name(r, i));
            missing++;
        } else {
            dv_copy_(dv_reg_tensor(r, i), t);
        }
        dv_release(t);
    }
    const char *names[7] = {"rgb_static", "rgb_gripper", "depth_static", "depth_gripper",
                            "proprio", "gen_actions", "gen_latents"};
    for (int i = 0; i < 7; i++) {
        snprintf(key, sizeof key, "%s.in.%s", tag, names[i]);
        fm->owned[i] = ut_fixture_get(f, key);
        CHECK_MSG(fm->owned[i], "fixture lacks %s", key);
        if (!fm->owned[i]) missing++;
    }
    fm->in = (dv_dit_inputs){fm->owned[0], fm->owned[1], fm->owned[2], fm->owned[3],
                             fm->owned[4], fm->owned[5], fm->owned[6]};
    return missing == 0;
}
static void fx_model_free(fx_model *fm) {
    dv_dit_free(fm->m);
    for (int i = 0; i < 8; i++) dv_release(fm->owned[i]);
}
static dv_tensor *fx_get(ut_fixture_file *f, const char *tag, const char *what) {
    char key[256];
    snprintf(key, sizeof key, "%s.%s", tag, what);
    dv_tensor *t = ut_fixture_get(f, key);
    CHECK_MSG(t, "fixture lacks %s", key);
    return t;
}

static void check_whole_model(const char *tag) {
    ut_fixture_file *f = ut_fixture_open(FIXTURE);
    if (!f) return;
    fx_model fm;
    if (!fx_model_load(&fm, f, tag)) { fx_model_free(&fm); ut_fixture_close(f); return; }
    dv_tensor *actions = fx_get(f, tag, "actions"), *t = fx_get(f, tag, "t");
    dv_tensor *noise = fx_get(f, tag, "noise"), *drop = fx_get(f, tag, "drop");
    dv_tensor *den = fx_get(f, tag, "den"), *loss_ref = fx_get(f, tag, "loss");
    dv_registry *r = dv_dit_registry(fm.m);
    char what[300];

    /* the denoiser on the noisy actions of the training step */
    dv_dit_cond *cd = dv_dit_encode(fm.m, &fm.in);
    dv_tensor *noisy = dv_diffusion_add_noise(&fm.m->ddim->sched, actions, noise, t);
    dv_tensor *out = dv_dit_denoise(fm.m, cd, noisy, t, drop);
    snprintf(what, sizeof what, "%s denoiser output", tag);
    CHECK_MSG(ut_max_rel_diff(out, den) < 1e-4, "%s: rel diff %g", what, ut_max_rel_diff(out, den));
    dv_release(out), dv_release(noisy);
    dv_dit_cond_free(cd);

    /* loss and every trainable parameter's gradient */
    dv_tensor *loss = dv_dit_loss_with(fm.m, &fm.in, actions, t, noise, drop, NULL);
    CHECK_CLOSE(dv_item(loss), dv_item(loss_ref), 1e-4);
    dv_backward(loss);
    dv_release(loss);
    int ngrad = 0;
    double worst = 0;
    for (int i = 0; i < dv_reg_count(r); i++) {
        if (dv_reg_is_frozen(r, i)) continue;
        char key[600];
        snprintf(key, sizeof key, "%s.g.%s", tag, dv_reg_name(r, i));
        dv_tensor *g = ut_fixture_get(f, key), *p = dv_reg_tensor(r, i);
        CHECK_MSG(g && p->grad, "%s: no gradient for %s", tag, dv_reg_name(r, i));
        if (g && p->grad) {
            /* relative to the largest reference gradient of that tensor (1e-4), or absolute
             * for tensors whose gradient is ~0 */
            double d = ut_max_rel_diff(p->grad, g);
            double mx = 0;
            for (int64_t k = 0; k < dv_numel(g); k++) mx = fmax(mx, fabs(dv_flat_get(g, k)));
            if (mx > 1e-6) worst = fmax(worst, d);
            CHECK_MSG(mx <= 1e-6 || d < 1e-4, "%s: grad %s rel diff %g", tag, dv_reg_name(r, i), d);
            ngrad++;
        }
        dv_release(g);
        dv_zero_grad(p);
    }
    CHECK(ngrad > 50);
    if (dv_test_verbose) printf("  %s: %d gradients, worst rel diff %.3g\n", tag, ngrad, worst);

    /* DDIM (5 steps) with CFG 3 from fixed noise */
    dv_tensor *sn = fx_get(f, tag, "sample_noise"), *sref = fx_get(f, tag, "sample");
    dv_tensor *smp = dv_dit_sample(fm.m, &fm.in, sn, NULL);
    CHECK_MSG(ut_max_rel_diff(smp, sref) < 1e-4, "%s sample: rel diff %g", tag, ut_max_rel_diff(smp, sref));
    dv_release(smp), dv_release(sn), dv_release(sref);

    dv_release(actions), dv_release(t), dv_release(noise), dv_release(drop);
    dv_release(den), dv_release(loss_ref);
    fx_model_free(&fm);
    ut_fixture_close(f);
}

TEST(dit_fixture_tiny_paper) { check_whole_model("tp"); }
TEST(dit_fixture_tiny_released) { check_whole_model("tr"); }

/* one block (paper switches) against the reference: output and input gradients */
TEST(dit_fixture_block) {
    ut_fixture_file *f = ut_fixture_open(FIXTURE);
    if (!f) return;
    fx_model fm;
    fx_model_load(&fm, f, "tp");
    dv_tensor *x = fx_get(f, "blk", "x"), *c = fx_get(f, "blk", "c"), *ctx = fx_get(f, "blk", "ctx");
    dv_tensor *ref = fx_get(f, "blk", "out"), *gout = fx_get(f, "blk", "gout");
    dv_tensor *gref[3] = {fx_get(f, "blk", "gx"), fx_get(f, "blk", "gc"), fx_get(f, "blk", "gctx")};
    dv_tensor *in[3] = {x, c, ctx};
    for (int i = 0; i < 3; i++) dv_set_requires_grad(in[i], true);
    dv_tensor *y = dv_dit_block_forward(fm.m, 1, x, c, ctx);
    CHECK_MSG(ut_max_rel_diff(y, ref) < 1e-4, "block out rel diff %g", ut_max_rel_diff(y, ref));
    dv_backward_with(y, gout);
    const char *nm[3] = {"x", "c", "ctx"};
    for (int i = 0; i < 3; i++) {
        CHECK(in[i]->grad != NULL);
        if (in[i]->grad)
            CHECK_MSG(ut_max_rel_diff(in[i]->grad, gref[i]) < 1e-4, "block d/d%s rel diff %g", nm[i],
                      ut_max_rel_diff(in[i]->grad, gref[i]));
        dv_release(gref[i]);
    }
    dv_release(y), dv_release(x), dv_release(c), dv_release(ctx), dv_release(ref), dv_release(gout);
    fx_model_free(&fm);
    ut_fixture_close(f);
}

/* the conditioning computed once and reused by several denoiser calls gives exactly what
 * recomputing it for every call gives */
TEST(dit_encode_once_equals_recompute) {
    ut_fixture_file *f = ut_fixture_open(FIXTURE);
    if (!f) return;
    fx_model fm;
    fx_model_load(&fm, f, "tp");
    dv_tensor *x = fx_get(f, "tp", "noise");
    dv_tensor *drop = fx_get(f, "tp", "drop");
    int64_t ts[3] = {99, 40, 0};
    dv_tensor *once[3], *fresh[3];
    DV_NO_GRAD_BEGIN
    dv_dit_cond *cd = dv_dit_encode(fm.m, &fm.in);
    for (int i = 0; i < 3; i++) {
        dv_tensor *t = dv_full(DV_I64, DV_SHAPE(2), (double)ts[i]);
        once[i] = dv_dit_denoise(fm.m, cd, x, t, drop);
        dv_dit_cond *c2 = dv_dit_encode(fm.m, &fm.in);
        fresh[i] = dv_dit_denoise(fm.m, c2, x, t, drop);
        dv_dit_cond_free(c2);
        dv_release(t);
    }
    dv_dit_cond_free(cd);
    DV_NO_GRAD_END
    for (int i = 0; i < 3; i++) CHECK(ut_max_rel_diff(once[i], fresh[i]) == 0);
    /* and the calls did depend on t (the check can fail) */
    CHECK(ut_max_rel_diff(once[0], once[2]) > 1e-3);
    for (int i = 0; i < 3; i++) dv_release(once[i]), dv_release(fresh[i]);
    dv_release(x), dv_release(drop);
    fx_model_free(&fm);
    ut_fixture_close(f);
}

/* ---- f64 gradient check of a micro model (every parameter drawn at random) --------------- */
typedef struct {
    dv_dit *m;
    dv_dit_inputs in;
    dv_tensor *actions, *t, *noise, *drop;
    const uint64_t *attn_seed;
} micro_ctx;

static dv_tensor *micro_loss(dv_tensor **in, void *vctx) {
    micro_ctx *c = vctx;
    (void)in;  /* the inputs are the model's own parameters (and the latents), perturbed in place */
    return dv_dit_loss_with(c->m, &c->in, c->actions, c->t, c->noise, c->drop, c->attn_seed);
}

static void micro_gradcheck(const char *switches, const uint64_t *attn_seed) {
    char err[256];
    dv_dit_config cfg;
    dv_dit_config_preset(&cfg, "tiny", err, sizeof err);
    CHECK(dv_dit_config_parse(&cfg,
        "layers = 1\nhidden = 8\nheads = 2\nrotary_dims = 4\nchunk = 4\ngen_chunk = 4\n"
        "image_size = 16\npatch = 8\nvit_hidden = 8\nvit_heads = 2\nvit_dim_head = 4\n"
        "rgb_vit_hidden = 8\nrgb_vit_heads = 2\ngen_latent_dim = 4\ngen_latent_tokens = 2\n"
        "resampler_queries = 2\nstatic_frames = 1\nproprio_dim = 3\n", "micro", err, sizeof err) == 0);
    CHECK(dv_dit_config_parse(&cfg, switches, "micro", err, sizeof err) == 0);
    dv_rng rng = dv_rng_new(11);
    micro_ctx c = {.attn_seed = attn_seed};
    c.m = dv_dit_new_dtype(&cfg, DV_F64, &rng);
    dv_registry *r = dv_dit_registry(c.m);
    for (int i = 0; i < dv_reg_count(r); i++) dv_init_normal(&rng, dv_reg_tensor(r, i), 0, 0.4);
    int64_t B = 2;
    dv_tensor *owned[7] = {
        dv_rand(&rng, DV_F64, DV_SHAPE(B, 1, 3, 16, 16)), dv_rand(&rng, DV_F64, DV_SHAPE(B, 3, 16, 16)),
        dv_rand(&rng, DV_F64, DV_SHAPE(B, 1, 16, 16)), dv_rand(&rng, DV_F64, DV_SHAPE(B, 1, 16, 16)),
        dv_randn(&rng, DV_F64, DV_SHAPE(B, 3)), dv_rand(&rng, DV_F64, DV_SHAPE(B, 3, 7)),
        ut_randn_leaf(DV_F64, DV_SHAPE(B, 2, 4), 5)};
    c.in = (dv_dit_inputs){owned[0], owned[1], owned[2], owned[3], owned[4], owned[5], owned[6]};
    c.actions = dv_rand(&rng, DV_F64, DV_SHAPE(B, 4, 7));
    c.t = dv_from_f64(DV_I64, DV_SHAPE(B), (const double[]){5, 60});
    c.noise = dv_randn(&rng, DV_F64, DV_SHAPE(B, 4, 7));
    c.drop = dv_from_f64(DV_BOOL, DV_SHAPE(B), (const double[]){0, 1});
    const char *names[] = {
        "model.blocks.0.cross_attn.gamma_v", "model.blocks.0.adaLN_modulation.1.bias",
        "model.visual_adapter.latents", "model.gripper_depth_adapter.latents",
        "depth_encoder.cls_token", "model.x_embedder.bias", "model.proprio_embedder.0.bias",
        "model.context_adapter.bias", "model.final_layer.adaLN_modulation.1.bias",
        "model.blocks.0.attn_temporal.qkv.bias"};
    enum { NP = sizeof names / sizeof names[0] };
    dv_tensor *in[NP + 1];
    for (int i = 0; i < NP; i++) {
        in[i] = dv_reg_get(r, names[i]);
        CHECK_MSG(in[i], "micro model lacks %s", names[i]);
    }
    in[NP] = owned[6];  /* the generalist latents */
    char what[64];
    snprintf(what, sizeof what, "dit micro (%s%s)", strstr(switches, "depth_pool = 1") ? "released" : "paper",
             attn_seed ? ", attention dropout" : "");
    ut_gradcheck(what, micro_loss, in, NP + 1, &c, 1e-6);
    for (int i = 0; i < 7; i++) dv_release(owned[i]);
    dv_release(c.actions), dv_release(c.t), dv_release(c.noise), dv_release(c.drop);
    dv_dit_free(c.m);
}

TEST(dit_gradcheck_micro_f64) {
    micro_gradcheck("", NULL);
    micro_gradcheck("causal = 0\nvit_cls = 1\ndepth_pool = 1\nglobal_latents = 1\n"
                    "drop_latent_tokens = 0\nca_norm_residual = 1\nprediction = epsilon\n", NULL);
    const uint64_t seed = 77;
    micro_gradcheck("attn_dropout = 0.3\n", &seed);
}

/* Attention dropout acts in training only: the loss depends on the step's seed (and is the same
 * for the same seed), sampling does not see it at all. */
TEST(dit_attention_dropout) {
    char err[256];
    dv_dit_config cfg;
    dv_dit_config_preset(&cfg, "tiny", err, sizeof err);
    dv_rng rng = dv_rng_new(3);
    dv_dit *m = dv_dit_new(&cfg, &rng);
    dv_registry *r = dv_dit_registry(m);
    for (int i = 0; i < dv_reg_count(r); i++) dv_init_normal(&rng, dv_reg_tensor(r, i), 0, 0.3);
    int64_t B = 2, I = cfg.image_size;
    dv_tensor *owned[7] = {
        dv_rand(&rng, DV_F32, DV_SHAPE(B, cfg.static_frames, 3, I, I)), dv_rand(&rng, DV_F32, DV_SHAPE(B, 3, I, I)),
        dv_rand(&rng, DV_F32, DV_SHAPE(B, 1, I, I)), dv_rand(&rng, DV_F32, DV_SHAPE(B, 1, I, I)),
        dv_randn(&rng, DV_F32, DV_SHAPE(B, cfg.proprio_dim)), dv_rand(&rng, DV_F32, DV_SHAPE(B, cfg.chunk, 7)),
        dv_randn(&rng, DV_F32, DV_SHAPE(B, cfg.gen_latent_tokens, cfg.gen_latent_dim))};
    dv_dit_inputs in = {owned[0], owned[1], owned[2], owned[3], owned[4], owned[5], owned[6]};
    dv_tensor *actions = dv_rand(&rng, DV_F32, DV_SHAPE(B, cfg.chunk, 7));
    dv_tensor *t = dv_from_f64(DV_I64, DV_SHAPE(B), (const double[]){10, 70});
    dv_tensor *noise = dv_randn(&rng, DV_F32, DV_SHAPE(B, cfg.chunk, 7));
    dv_tensor *x = dv_randn(&rng, DV_F32, DV_SHAPE(B, cfg.chunk, 7));
    dv_tensor *y0 = dv_dit_sample(m, &in, x, NULL);
    double l[4];
    const uint64_t s1 = 1, s2 = 2;
    DV_NO_GRAD_BEGIN
    dv_tensor *ln = dv_dit_loss_with(m, &in, actions, t, noise, NULL, NULL);
    l[0] = dv_item(ln), dv_release(ln);
    m->cfg.attn_dropout = 0.3f;
    const uint64_t *seeds[3] = {&s1, &s1, &s2};
    for (int i = 0; i < 3; i++) {
        ln = dv_dit_loss_with(m, &in, actions, t, noise, NULL, seeds[i]);
        l[i + 1] = dv_item(ln), dv_release(ln);
    }
    DV_NO_GRAD_END
    CHECK_MSG(l[1] != l[0] && l[2] == l[1] && l[3] != l[1],
              "losses: no dropout %.9g, seed 1 %.9g and %.9g, seed 2 %.9g", l[0], l[1], l[2], l[3]);
    dv_tensor *y1 = dv_dit_sample(m, &in, x, NULL);
    CHECK(ut_max_rel_diff(y1, y0) == 0);
    dv_release(y0), dv_release(y1), dv_release(actions), dv_release(t), dv_release(noise), dv_release(x);
    for (int i = 0; i < 7; i++) dv_release(owned[i]);
    dv_dit_free(m);
}

/* the frozen RGB ViT from a safetensors file with timm's names; bad files change nothing */
TEST(dit_load_rgb_encoder) {
    char err[256], path[128];
    dv_dit_config c;
    dv_dit_config_preset(&c, "tiny", err, sizeof err);
    dv_rng r1 = dv_rng_new(1), r2 = dv_rng_new(2);
    dv_dit *a = dv_dit_new(&c, &r1), *b = dv_dit_new(&c, &r2);
    dv_registry *ra = dv_dit_registry(a), *rb = dv_dit_registry(b);
    const char *names[256];
    dv_tensor *ts[256];
    int n = 0;
    for (int i = 0; i < dv_reg_count(ra) && n < 256; i++)
        if (!strncmp(dv_reg_name(ra, i), "vision_encoder.", 15))
            names[n] = dv_reg_name(ra, i) + 15, ts[n++] = dv_reg_tensor(ra, i);
    CHECK(n > 10);
    snprintf(path, sizeof path, "/tmp/dv_test_dit_rgb_%d.safetensors", (int)getpid());
    /* a file lacking one tensor: an error naming it, nothing loaded */
    CHECK(dv_st_save(path, names + 1, ts + 1, n - 1, NULL, 0, err, sizeof err) == 0);
    dv_tensor *w = dv_reg_get(rb, "vision_encoder.norm.weight");
    dv_tensor *before = dv_clone(w);
    CHECK(dv_dit_load_rgb_encoder(b, path, err, sizeof err) == -1);
    CHECK(strstr(err, names[0]) && strstr(err, path));
    CHECK(ut_max_rel_diff(w, before) == 0);
    /* the whole encoder: every tensor equal afterwards */
    CHECK(dv_st_save(path, names, ts, n, NULL, 0, err, sizeof err) == 0);
    CHECK(dv_dit_load_rgb_encoder(b, path, err, sizeof err) == 0);
    for (int i = 0; i < n; i++) {
        char full[300];
        snprintf(full, sizeof full, "vision_encoder.%s", names[i]);
        CHECK_MSG(ut_max_rel_diff(dv_reg_get(rb, full), ts[i]) == 0, "%s differs", full);
    }
    CHECK(strstr(b->rgb_source, path) != NULL);
    unlink(path);
    dv_release(before);
    dv_dit_free(a), dv_dit_free(b);
}

/* dv_dit_to(m, cpu) on a CPU model moves nothing (every tensor keeps its storage) and the
 * device plumbing of encode / loss / sample (inputs moved to the model's device, the noise
 * mixed on the host) leaves the CPU numbers bit for bit those of an untouched twin */
TEST(dit_to_cpu_is_a_no_op) {
    char err[256];
    dv_dit_config cfg;
    dv_dit_config_preset(&cfg, "tiny", err, sizeof err);
    dv_dit *m[2];
    for (int k = 0; k < 2; k++) {
        dv_rng rng = dv_rng_new(4);
        m[k] = dv_dit_new(&cfg, &rng);
        dv_registry *r = dv_dit_registry(m[k]);
        for (int i = 0; i < dv_reg_count(r); i++) dv_init_normal(&rng, dv_reg_tensor(r, i), 0, 0.2);
    }
    dv_registry *r = dv_dit_registry(m[0]);
    int n = dv_reg_count(r);
    void **data = malloc((n + 4) * sizeof *data);
    dv_tensor *bufs[4] = {m[0]->rope_cos, m[0]->rope_sin, m[0]->rgb_mean, m[0]->rgb_std};
    for (int i = 0; i < n; i++) data[i] = dv_data(dv_reg_tensor(r, i));
    for (int i = 0; i < 4; i++) data[n + i] = dv_data(bufs[i]);
    dv_dit_to(m[0], DV_DEVICE_CPU);
    int moved = 0;
    for (int i = 0; i < n; i++) moved += dv_data(dv_reg_tensor(r, i)) != data[i];
    for (int i = 0; i < 4; i++) moved += dv_data(bufs[i]) != data[n + i] || bufs[i]->device.type != DV_CPU;
    CHECK_MSG(moved == 0, "%d tensors moved", moved);
    free(data);

    dv_rng rng = dv_rng_new(8);
    int64_t B = 2, I = cfg.image_size;
    dv_tensor *owned[7] = {
        dv_rand(&rng, DV_F32, DV_SHAPE(B, cfg.static_frames, 3, I, I)), dv_rand(&rng, DV_F32, DV_SHAPE(B, 3, I, I)),
        dv_rand(&rng, DV_F32, DV_SHAPE(B, 1, I, I)), dv_rand(&rng, DV_F32, DV_SHAPE(B, 1, I, I)),
        dv_randn(&rng, DV_F32, DV_SHAPE(B, cfg.proprio_dim)), dv_rand(&rng, DV_F32, DV_SHAPE(B, 5, 7)),
        dv_randn(&rng, DV_F32, DV_SHAPE(B, cfg.gen_latent_tokens, cfg.gen_latent_dim))};
    dv_dit_inputs in = {owned[0], owned[1], owned[2], owned[3], owned[4], owned[5], owned[6]};
    dv_tensor *actions = dv_rand(&rng, DV_F32, DV_SHAPE(B, cfg.chunk, 7));
    dv_tensor *x = dv_randn(&rng, DV_F32, DV_SHAPE(B, cfg.chunk, 7));
    dv_tensor *loss[2], *smp[2];
    for (int k = 0; k < 2; k++) {
        dv_rng lr = dv_rng_new(12);   /* t, noise and the CFG drop flags: the same draws */
        m[k]->cfg.cfg_drop = 0.5f;
        loss[k] = dv_dit_loss(m[k], &in, actions, &lr);
        dv_backward(loss[k]);
        smp[k] = dv_dit_sample(m[k], &in, x, NULL);
    }
    CHECK(dv_item(loss[0]) == dv_item(loss[1]) && dv_item(loss[0]) > 0);
    CHECK(ut_max_rel_diff(smp[0], smp[1]) == 0);
    int ngrad = 0, differ = 0;
    for (int i = 0; i < n; i++) {
        dv_tensor *a = dv_reg_tensor(r, i), *b = dv_reg_tensor(dv_dit_registry(m[1]), i);
        if (!a->grad || !b->grad) { differ += (a->grad != NULL) != (b->grad != NULL); continue; }
        differ += ut_max_rel_diff(a->grad, b->grad) != 0;
        ngrad++;
    }
    CHECK_MSG(differ == 0 && ngrad > 50, "%d of %d gradients differ", differ, ngrad);
    for (int k = 0; k < 2; k++) dv_release(loss[k]), dv_release(smp[k]), dv_dit_free(m[k]);
    dv_release(actions), dv_release(x);
    for (int i = 0; i < 7; i++) dv_release(owned[i]);
}
