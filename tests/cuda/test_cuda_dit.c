/* tests/cuda/test_cuda_dit.c — RoboDual's DiT specialist (models/dit) on cuda:0 against the
 * same model on the CPU: the tiny preset built twice from one seed, one copy moved with
 * dv_dit_to; the same CPU inputs given to both (the model moves them); then the conditioning
 * (dv_dit_encode), one denoiser call with a CFG drop (latent tokens masked), the loss of a
 * training step and every parameter gradient after backward, the loss drawn from an rng (same
 * seed: same timesteps, noise and drop flags on both), and one DDIM sampling run with CFG from
 * fixed noise. The model is the tiny preset as it is (its RGB ViT has 4 heads of width 12) with
 * the released attention dropout 0.1 on: the training step's self- and cross-attention draw
 * their dropout masks from one seed, and the GPU draws the CPU's masks (kernels/attention.h), so
 * the loss and the gradients agree to the bf16 tolerance.
 *
 * Tolerances. Everything but attention is f32 on both sides (TF32 off), agreeing to ~1e-6. The
 * CUDA dv_attention rounds q, k, v to bf16 for the tensor cores (unit roundoff 2^-9 ~ 2e-3),
 * and the tiny model has attentions in both ViTs, the resamplers and every DiT block, so the
 * GPU is expected to differ by ~1e-2 relative. Errors are measured against the largest
 * magnitude of the CPU tensor (max |gpu - cpu| / max |cpu|), not element by element, since
 * near-zero elements carry the absolute error of their neighbours:
 *   conditioning, denoiser output, loss        3e-2  (~1e-2 with margin, as test_cuda_nn's attention)
 *   parameter gradients                        5e-2  (q, k, v rounded to bf16 in both passes)
 *   DDIM sample (5 steps, CFG scale 3)         5e-2  (the guidance 3 (cond - uncond) amplifies the
 *                                                     per-call difference)
 * A device-plumbing bug (a wrong mask, a missing padding, a table left behind) shows as an
 * O(1) difference or an abort, far above these.
 */
#ifdef DV_HAVE_CUDA
#include "tests/cuda/cuda_util.h"

#include "models/dit/model.h"
#include "nn/timestep.h"
#include "tensor/ops.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { B = 2 };

/* the tiny preset with every tensor drawn from normal(0, 0.1) (the reference init zeroes the
 * adaLN and output layers, which would leave little to compare) and attention dropout 0.1.
 * Not 0.2: with it the activations grow to where the self-attention scores reach +-50, and the
 * bf16 rounding of q and k alone (~0.1 on such a score) moves the sharp softmax, the gradients
 * (up to 0.13 relative with dropout) and the CFG-amplified DDIM sample (O(1)) past any bf16
 * tolerance; measured under `make test-cuda-sim` */
static dv_dit *tiny_model(void) {
    char err[256];
    dv_dit_config cfg;
    CHECK(dv_dit_config_preset(&cfg, "tiny", err, sizeof err) == 0);
    CHECK(cfg.rgb_vit_hidden / cfg.rgb_vit_heads == 12); /* a head width the first CUDA kernels refused */
    cfg.attn_dropout = 0.1f;
    dv_rng rng = dv_rng_new(5);
    dv_dit *m = dv_dit_new(&cfg, &rng);
    dv_registry *r = dv_dit_registry(m);
    for (int i = 0; i < dv_reg_count(r); i++) dv_init_normal(&rng, dv_reg_tensor(r, i), 0, 0.1);
    return m;
}

typedef struct {
    dv_tensor *own[7];
    dv_dit_inputs in;
} inputs;

/* CPU inputs: the gripper RGB and both depth maps at other sizes than the encoders' (resized on
 * the device), 5 of the chunk's 8 generalist actions (zero-padded on the device) */
static void make_inputs(inputs *x, const dv_dit_config *c, dv_rng *rng) {
    int64_t I = c->image_size, J = c->image_size * 3 / 4;
    x->own[0] = dv_rand(rng, DV_F32, DV_SHAPE(B, c->static_frames, 3, I, I));
    x->own[1] = dv_rand(rng, DV_F32, DV_SHAPE(B, 3, J, J));
    x->own[2] = dv_rand(rng, DV_F32, DV_SHAPE(B, 1, J, J));
    x->own[3] = dv_rand(rng, DV_F32, DV_SHAPE(B, 1, J, J));
    x->own[4] = dv_randn(rng, DV_F32, DV_SHAPE(B, c->proprio_dim));
    x->own[5] = dv_rand(rng, DV_F32, DV_SHAPE(B, 5, c->action_dim));
    x->own[6] = dv_randn(rng, DV_F32, DV_SHAPE(B, c->gen_latent_tokens, c->gen_latent_dim));
    x->in = (dv_dit_inputs){x->own[0], x->own[1], x->own[2], x->own[3], x->own[4], x->own[5], x->own[6]};
}
static void free_inputs(inputs *x) {
    for (int i = 0; i < 7; i++) dv_release(x->own[i]);
}

/* max |gpu - cpu| / max |cpu| (the absolute difference when the CPU tensor is all ~0); records a
 * failure naming what above tol; gpu must be on the device */
static double compare(const char *what, dv_tensor *gpu, dv_tensor *cpu, double tol) {
    CHECK_MSG(gpu->device.type == DV_CUDA, "%s: not on the device", what);
    CHECK_MSG(dv_same_shape(gpu, cpu), "%s: shapes %s vs %s", what, dv_shape_str(gpu, NULL, 0),
              dv_shape_str(cpu, NULL, 0));
    if (gpu->device.type != DV_CUDA || !dv_same_shape(gpu, cpu)) return INFINITY;
    dv_tensor *g = dv_tensor_to(gpu, DV_DEVICE_CPU);
    double mx = 0, d = 0;
    for (int64_t i = 0; i < dv_numel(cpu); i++) {
        double a = dv_flat_get(g, i), b = dv_flat_get(cpu, i);
        mx = fmax(mx, fabs(b));
        d = isnan(a) || isnan(b) ? INFINITY : fmax(d, fabs(a - b));
    }
    dv_release(g);
    double rel = mx > 1e-6 ? d / mx : d;
    CHECK_MSG(rel <= tol, "%s: max |gpu - cpu| / max |cpu| = %.3g > %.3g (max |cpu| %.3g)", what, rel, tol, mx);
    return rel;
}

TEST(cuda_dit_matches_cpu) {
    dv_dit *mc = tiny_model(), *mg = tiny_model();
    dv_dit_to(mg, dv_device_cuda(0));
    const dv_dit_config *c = dv_dit_cfg(mc);
    CHECK(dv_reg_tensor(dv_dit_registry(mg), 0)->device.type == DV_CUDA);
    dv_rng rng = dv_rng_new(9);
    inputs x;
    make_inputs(&x, c, &rng);
    dv_tensor *actions = dv_rand(&rng, DV_F32, DV_SHAPE(B, c->chunk, c->action_dim));
    dv_tensor *noise = dv_randn(&rng, DV_F32, DV_SHAPE(B, c->chunk, c->action_dim));
    dv_tensor *t = dv_from_f64(DV_I64, DV_SHAPE(B), (const double[]){17, 83});
    dv_tensor *drop = dv_from_f64(DV_BOOL, DV_SHAPE(B), (const double[]){0, 1});
    double worst = 0;

    /* the conditioning and one denoiser call, the second row dropped for CFG */
    DV_NO_GRAD_BEGIN
    dv_dit_cond *cc = dv_dit_encode(mc, &x.in), *cg = dv_dit_encode(mg, &x.in);
    worst = fmax(worst, compare("encode: padded generalist actions", cg->gen_actions, cc->gen_actions, 1e-6));
    worst = fmax(worst, compare("encode: conditioning tokens", cg->ctx, cc->ctx, 3e-2));
    worst = fmax(worst, compare("encode: global condition", cg->g, cc->g, 3e-2));
    for (int i = 0; i < c->layers; i++) {
        worst = fmax(worst, compare("encode: cross-attention keys", cg->k[i], cc->k[i], 3e-2));
        worst = fmax(worst, compare("encode: cross-attention values", cg->v[i], cc->v[i], 3e-2));
    }
    dv_tensor *dc = dv_dit_denoise(mc, cc, noise, t, drop), *dg = dv_dit_denoise(mg, cg, noise, t, drop);
    worst = fmax(worst, compare("denoise", dg, dc, 3e-2));
    dv_release(dc), dv_release(dg);
    dv_dit_cond_free(cc), dv_dit_cond_free(cg);
    DV_NO_GRAD_END

    /* a training step's loss and every gradient, with attention dropout */
    const uint64_t attn_seed = 0x5eed0fd1u;
    dv_tensor *lc = dv_dit_loss_with(mc, &x.in, actions, t, noise, drop, &attn_seed);
    dv_tensor *lg = dv_dit_loss_with(mg, &x.in, actions, t, noise, drop, &attn_seed);
    /* the dropout is on: without it the loss differs */
    DV_NO_GRAD_BEGIN
    dv_tensor *l0 = dv_dit_loss_with(mc, &x.in, actions, t, noise, drop, NULL);
    CHECK_MSG(fabs(dv_item(l0) - dv_item(lc)) > 1e-6 * fabs(dv_item(lc)), "attention dropout changed nothing");
    dv_release(l0);
    DV_NO_GRAD_END
    worst = fmax(worst, compare("loss", lg, lc, 3e-2));
    dv_backward(lc), dv_backward(lg);
    dv_registry *rc = dv_dit_registry(mc), *rg = dv_dit_registry(mg);
    int ngrad = 0;
    for (int i = 0; i < dv_reg_count(rc); i++) {
        dv_tensor *pc = dv_reg_tensor(rc, i), *pg = dv_reg_tensor(rg, i);
        CHECK_MSG((pc->grad != NULL) == (pg->grad != NULL), "%s: a gradient on one side only", dv_reg_name(rc, i));
        if (!pc->grad || !pg->grad) continue;
        char what[300];
        snprintf(what, sizeof what, "gradient of %s", dv_reg_name(rc, i));
        worst = fmax(worst, compare(what, pg->grad, pc->grad, 5e-2));
        ngrad++;
        dv_zero_grad(pc), dv_zero_grad(pg);
    }
    CHECK_MSG(ngrad > 50, "%d gradients compared", ngrad);
    dv_release(lc), dv_release(lg);

    /* the loss with t, noise, drop and the dropout seed drawn from the CPU rng: the same draws */
    DV_NO_GRAD_BEGIN
    dv_rng r1 = dv_rng_new(21), r2 = dv_rng_new(21);
    lc = dv_dit_loss(mc, &x.in, actions, &r1);
    lg = dv_dit_loss(mg, &x.in, actions, &r2);
    worst = fmax(worst, compare("loss (rng)", lg, lc, 3e-2));
    dv_release(lc), dv_release(lg);
    DV_NO_GRAD_END

    /* DDIM with CFG from fixed noise */
    dv_tensor *sc = dv_dit_sample(mc, &x.in, noise, NULL), *sg = dv_dit_sample(mg, &x.in, noise, NULL);
    worst = fmax(worst, compare("sample", sg, sc, 5e-2));
    dv_release(sc), dv_release(sg);
    if (dv_test_verbose) printf("  dit gpu vs cpu: %d gradients, worst relative difference %.3g\n", ngrad, worst);

    dv_release(actions), dv_release(noise), dv_release(t), dv_release(drop);
    free_inputs(&x);
    dv_dit_free(mc), dv_dit_free(mg);
}

/* nn/timestep.c with t on the device: computed on the host, returned on t's device, the same
 * numbers bit for bit; the embedder with host t and device weights moves the embedding */
TEST(cuda_timestep_embedding_device_t) {
    dv_tensor *t = dv_from_f64(DV_I64, DV_SHAPE(3), (const double[]){0, 41, 99});
    dv_tensor *td = dv_tensor_to(t, dv_device_cuda(0));
    dv_timestep_opts o = dv_timestep_opts_dit();
    dv_tensor *ec = dv_timestep_embedding(t, 33, &o, DV_F32), *eg = dv_timestep_embedding(td, 33, &o, DV_F32);
    compare("timestep embedding", eg, ec, 0);
    dv_tensor *pc = dv_sinusoidal_pos_emb(t, 16, DV_F32), *pg = dv_sinusoidal_pos_emb(td, 16, DV_F32);
    compare("sinusoidal position embedding", pg, pc, 0);
    dv_registry r1 = {0}, r2 = {0};
    dv_nn_timestep_embedder e1, e2;
    dv_rng g1 = dv_rng_new(3), g2 = dv_rng_new(3);
    dv_nn_timestep_embedder_init(&e1, &r1, "t", 32, 64, DV_F32, &g1);
    dv_nn_timestep_embedder_init(&e2, &r2, "t", 32, 64, DV_F32, &g2);
    dv_reg_to(&r2, dv_device_cuda(0));
    dv_tensor *yc = dv_nn_timestep_embedder_forward(&e1, t), *yg = dv_nn_timestep_embedder_forward(&e2, t);
    compare("timestep embedder (host t, device weights)", yg, yc, 1e-5);
    dv_release(t), dv_release(td), dv_release(ec), dv_release(eg), dv_release(pc), dv_release(pg);
    dv_release(yc), dv_release(yg);
    dv_reg_free(&r1), dv_reg_free(&r2);
}
#endif
