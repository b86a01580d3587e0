/* tools/cmd_act.c — `dualvla act dit`: one action chunk of a trained DiT specialist for one
 * frame of a CALVIN split, printed next to the ground truth.
 *
 *   dualvla act dit --ckpt FILE --data DIR --episode I --frame J [--seed S] [--threads N]
 *                   [--no-ema] [--rollout N] [--device D]
 *
 * The checkpoint (from `dualvla train dit`) carries its config, so the model is rebuilt from
 * it; its EMA weights are used when it has them (--no-ema: the trained weights). Frame J is
 * counted from the start of episode I and must lie in an annotated window (only those are
 * samples). The generalist is the training stand-in, run on this very frame (latency 0), so
 * its whole chunk conditions the specialist. Sampling: DDIM with the config's steps and CFG
 * scale, noise from --seed.
 *
 * --rollout N replays N control steps from that frame on the recorded observations (open
 * loop): the stand-in generalist every k_g steps, the specialist every step conditioned on the
 * generalist's shifted window, the executed action the temporal aggregate of the overlapping
 * chunks (models/dit/rollout.h).
 *
 * --device cuda[:N] samples on a GPU (the weights are loaded on the host, then moved; the noise
 * is drawn on the host, so a seed gives the same chunk on any device up to the GPU's rounding).
 *
 * Not here: closed-loop rollouts in the simulator (CALVIN's environment is out of scope).
 */
#include "tools/commands.h"
#include "tools/dit_session.h"
#include "data/calvin/samples.h"
#include "models/dit/dit.h"
#include "models/dit/rollout.h"
#include "nn/module.h"
#include "tensor/cuda.h"
#include "tensor/ops.h"
#include "tensor/safetensors.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void act_usage(FILE *f) {
    fprintf(f,
        "usage: dualvla act dit --ckpt FILE --data DIR --episode I --frame J [options]\n"
        "  --ckpt FILE     a checkpoint of `dualvla train dit` (its config rebuilds the model)\n"
        "  --data DIR      a CALVIN split (or a folder with training/)\n"
        "  --episode I     episode index (0-based, order of ep_start_end_ids.npy)\n"
        "  --frame J       frame within the episode (0-based)\n"
        "  --seed S        seed of the sampling noise and the stand-in (default 0)\n"
        "  --threads N     OpenMP threads\n"
        "  --no-ema        use the trained weights even when the checkpoint has an EMA\n"
        "  --rollout N     also replay N control steps from this frame (open loop on the recorded\n"
        "                  observations): shifted-window conditioning + temporal aggregation\n"
        "  --device D      cpu (default), cuda or cuda:N\n");
}

static int act_i64(const char *flag, const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : -1;
    if (!s || !*s || *end || errno || v < 0) {
        fprintf(stderr, "dualvla act: %s expects a non-negative integer, got '%s'\n", flag, s ? s : "(nothing)");
        return -1;
    }
    *out = v;
    return 0;
}

/* the parameters from the checkpoint (ema.<name> when present and wanted) */
static int load_weights(dv_dit *m, const char *path, bool use_ema, bool *used_ema, char *err, size_t errlen) {
    dv_st_file *f = NULL;
    if (dv_st_open(path, &f, err, errlen)) return -1;
    dv_registry *reg = dv_dit_registry(m);
    int rc = 0, n_ema = 0;
    for (int i = 0; i < dv_reg_count(reg) && rc == 0; i++) {
        const char *name = dv_reg_name(reg, i);
        char en[600];
        snprintf(en, sizeof en, "ema.%s", name);
        const char *use = use_ema && dv_st_find(f, en) >= 0 ? en : name;
        n_ema += use == en;
        dv_tensor *t = NULL;
        if (dv_st_get(f, use, DV_ST_WIDEN, &t, err, errlen)) { rc = -1; break; }
        dv_tensor *p = dv_reg_tensor(reg, i);
        if (!dv_same_shape(t, p)) {
            snprintf(err, errlen, "%s: tensor '%s' has shape %s, the model's is %s", path, use,
                     dv_shape_str(t, NULL, 0), dv_shape_str(p, NULL, 0));
            rc = -1;
        } else {
            dv_copy_(p, t);
        }
        dv_release(t);
    }
    dv_st_close(f);
    *used_ema = n_ema > 0;
    return rc;
}

/* Open-loop replay of n control steps from frame `id` of annotation `ann` (no simulator: the
 * observations are the recorded ones, so the policy's actions are compared with the recorded
 * ones, not executed). The stand-in generalist runs every k_g steps; in between, the
 * specialist is conditioned on its shifted window; a chunk is sampled every step and the
 * executed action is the temporal aggregate (models/dit/rollout.h). Prints each step and the
 * error of the aggregated actions beside that of each chunk's first action alone. */
static int replay(dv_dit *m, const dv_train_config *cfg, dv_calvin *d, const dv_standin *s,
                  int64_t ann, int64_t id, int n, uint64_t seed, char *err, size_t errlen) {
    const dv_calvin_ann *an = dv_calvin_annotation(d, ann);
    if (id + n - 1 > an->end) n = (int)(an->end - id + 1);
    int k = cfg->model.chunk, A = cfg->model.action_dim, kg = cfg->model.gen_chunk;
    dv_calvin_loader_opts lo;
    dv_train_loader_opts(cfg, false, 1, &lo);
    lo.dit.max_latency = 0;
    dv_dit_rollout r;
    dv_dit_rollout_init(&r, k, kg, A, 0.1, DV_AGG_NEWEST_FIRST);
    dv_rng srng = dv_rng_new(seed ^ 0x5eed0e7a1ull), nrng = dv_rng_new(seed);
    float *cond = malloc(sizeof(float) * kg * A), *act = malloc(sizeof(float) * A);
    double se = 0, ae = 0, se0 = 0, ae0 = 0;
    int rc = 0;
    printf("open-loop replay of %d steps from frame id %lld: generalist (stand-in) every %d steps, "
           "temporal aggregation m = 0.1 (newest chunk first)\n", n, (long long)id, kg);
    printf("step  tau_s  executed (aggregated over N chunks)                      | recorded\n");
    DV_NO_GRAD_BEGIN
    for (int t = 0; t < n && rc == 0; t++) {
        dv_calvin_sample smp = {(int32_t)ann, (int32_t)(id + t - an->start)};
        uint64_t sseed = seed + (uint64_t)t;
        dv_calvin_dit_batch b;
        if (dv_calvin_dit_build(d, &lo.dit, &smp, &sseed, 1, &b, err, errlen)) { rc = -1; break; }
        dv_pool pool = {0};
        dv_dit_inputs in;
        if (dv_train_inputs(&cfg->model, s, &b, &srng, &pool, &in, err, errlen)) {
            rc = -1;
        } else {
            if (t % kg == 0) {   /* the slow system answers: its whole chunk, from this frame */
                dv_tensor *g = dv_pool_add(&pool, dv_contiguous(in.gen_actions));
                dv_dit_rollout_set_generalist(&r, dv_data(g));
            }
            int tau_s = r.tau_s;
            dv_dit_rollout_condition(&r, cond);
            in.gen_actions = dv_pool_add(&pool, dv_from_data(DV_F32, DV_SHAPE(1, kg, A), cond));
            dv_tensor *chunk = dv_pool_add(&pool, dv_dit_sample(m, &in, NULL, &nrng));
            dv_tensor *c = dv_pool_add(&pool, dv_tensor_to(chunk, DV_DEVICE_CPU)); /* contiguous, host */
            dv_tensor *ga = dv_pool_add(&pool, dv_contiguous(b.actions));
            const float *cc = dv_data(c), *gt = dv_data(ga);   /* row 0: frame t's action */
            int used = dv_dit_rollout_step(&r, cc, act);
            printf("%4d  %5d ", t, tau_s);
            for (int a = 0; a < A; a++) {
                printf(" %7.3f", act[a]);
                double dd = act[a] - gt[a], d0 = cc[a] - gt[a];
                se += dd * dd, ae += fabs(dd), se0 += d0 * d0, ae0 += fabs(d0);
            }
            printf("  (%d) |", used);
            for (int a = 0; a < A; a++) printf(" %7.3f", gt[a]);
            printf("\n");
        }
        dv_pool_release(&pool);
        dv_calvin_batch_free(DV_CALVIN_DIT, &b);
    }
    DV_NO_GRAD_END
    if (rc == 0 && n > 0)
        printf("replay error over %d steps: aggregated MSE %.5f  L1 %.5f; first action of each chunk "
               "alone MSE %.5f  L1 %.5f\n", n, se / (n * A), ae / (n * A), se0 / (n * A), ae0 / (n * A));
    free(cond), free(act);
    dv_dit_rollout_free(&r);
    return rc;
}

int dv_cmd_act(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "dit")) {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) { act_usage(stdout); return 0; }
        fprintf(stderr, "dualvla act: expected a model name: 'dualvla act dit ...'\n");
        act_usage(stderr);
        return 2;
    }
    const char *ckpt = NULL, *data = NULL, *device = "cpu";
    int64_t episode = -1, frame = -1, seed = 0, threads = 0, steps = 0;
    bool use_ema = true;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = !strcmp(a, "--ckpt") || !strcmp(a, "--data") || !strcmp(a, "--episode") ||
                     !strcmp(a, "--frame") || !strcmp(a, "--seed") || !strcmp(a, "--threads") ||
                     !strcmp(a, "--rollout") || !strcmp(a, "--device");
        if (takes && !v) { fprintf(stderr, "dualvla act: %s needs a value\n", a); return 2; }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { act_usage(stdout); return 0; }
        else if (!strcmp(a, "--ckpt")) ckpt = v;
        else if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--episode")) { if (act_i64(a, v, &episode)) return 2; }
        else if (!strcmp(a, "--frame")) { if (act_i64(a, v, &frame)) return 2; }
        else if (!strcmp(a, "--seed")) { if (act_i64(a, v, &seed)) return 2; }
        else if (!strcmp(a, "--threads")) { if (act_i64(a, v, &threads)) return 2; }
        else if (!strcmp(a, "--rollout")) { if (act_i64(a, v, &steps)) return 2; }
        else if (!strcmp(a, "--device")) device = v;
        else if (!strcmp(a, "--no-ema")) use_ema = false;
        else { fprintf(stderr, "dualvla act: unknown option '%s'\n", a); act_usage(stderr); return 2; }
        if (takes) i++;
    }
    if (!ckpt || !data || episode < 0 || frame < 0) {
        fprintf(stderr, "dualvla act: --ckpt, --data, --episode and --frame are required\n");
        act_usage(stderr);
        return 2;
    }
    if (threads > 0) omp_set_num_threads((int)threads);
    dv_device dev;
    {
        char derr[512];
        if (dv_session_device(device, &dev, derr, sizeof derr)) { fprintf(stderr, "dualvla act: %s\n", derr); return 2; }
    }

    char err[1024], *text = NULL;
    dv_train_config cfg;
    if (dv_ckpt_read_config(ckpt, &text, err, sizeof err)) { fprintf(stderr, "dualvla act: --ckpt: %s\n", err); return 1; }
    if (dv_train_config_preset(&cfg, "paper", err, sizeof err) ||
        dv_train_config_parse(&cfg, text, ckpt, err, sizeof err)) {
        fprintf(stderr, "dualvla act: the checkpoint's config: %s\n", err);
        free(text);
        return 1;
    }
    free(text);

    int rc = 1;
    dv_calvin *d = NULL;
    dv_standin *standin = NULL;
    dv_dit *m = NULL;
    dv_calvin_dit_batch b;
    bool have_batch = false;
    if (dv_train_open_data(data, &d, NULL, err, sizeof err)) { fprintf(stderr, "dualvla act: %s\n", err); goto done; }
    int64_t ne = dv_calvin_num_episodes(d);
    if (episode >= ne) {
        fprintf(stderr, "dualvla act: --episode %lld: the split has %lld episodes (0 .. %lld)\n",
                (long long)episode, (long long)ne, (long long)ne - 1);
        rc = 2;
        goto done;
    }
    int64_t es, ee;
    dv_calvin_episode_bounds(d, episode, &es, &ee);
    if (frame > ee - es) {
        fprintf(stderr, "dualvla act: --frame %lld: episode %lld has %lld frames (0 .. %lld)\n",
                (long long)frame, (long long)episode, (long long)(ee - es + 1), (long long)(ee - es));
        rc = 2;
        goto done;
    }
    int64_t id = es + frame, ann = -1;
    for (int64_t a = 0; a < dv_calvin_num_annotations(d); a++) {
        const dv_calvin_ann *an = dv_calvin_annotation(d, a);
        if (an->start <= id && id <= an->end) { ann = a; break; }
    }
    if (ann < 0) {
        fprintf(stderr, "dualvla act: frame %lld of episode %lld (id %lld) lies in no annotated window; "
                        "only annotated frames are samples\n", (long long)frame, (long long)episode, (long long)id);
        rc = 2;
        goto done;
    }
    const dv_calvin_ann *an = dv_calvin_annotation(d, ann);
    dv_calvin_loader_opts lo;
    dv_train_loader_opts(&cfg, false, 1, &lo);
    lo.dit.max_latency = 0;   /* the generalist ran on this frame */
    dv_calvin_sample smp = {(int32_t)ann, (int32_t)(id - an->start)};
    uint64_t sseed = (uint64_t)seed;
    if (dv_calvin_dit_build(d, &lo.dit, &smp, &sseed, 1, &b, err, sizeof err)) {
        fprintf(stderr, "dualvla act: %s\n", err);
        goto done;
    }
    have_batch = true;
    if (dv_standin_new(&cfg.standin, &cfg.model, &standin, err, sizeof err)) {
        fprintf(stderr, "dualvla act: %s\n", err);
        goto done;
    }
    dv_rng init = dv_rng_new(cfg.seed);
    m = dv_dit_new(&cfg.model, &init);
    bool used_ema = false;
    if (load_weights(m, ckpt, use_ema, &used_ema, err, sizeof err)) {
        fprintf(stderr, "dualvla act: --ckpt: %s\n", err);
        goto done;
    }
    if (dev.type != DV_CPU) dv_dit_to(m, dev);
    printf("%s (preset %s, %s weights, on %s); episode %lld frame %lld = frame id %lld, \"%s\"\n", ckpt,
           cfg.model.preset, used_ema ? "EMA" : "trained", dv_device_str(dev), (long long)episode, (long long)frame,
           (long long)b.frame[0], b.instruction[0] ? b.instruction[0] : "");
    dv_standin_describe(standin, stdout);

    dv_pool pool = {0};
    dv_dit_inputs in;
    dv_rng srng = dv_rng_new((uint64_t)seed ^ 0x5eed0e7a1ull), nrng = dv_rng_new((uint64_t)seed);
    if (dv_train_inputs(&cfg.model, standin, &b, &srng, &pool, &in, err, sizeof err)) {
        fprintf(stderr, "dualvla act: %s\n", err);
        dv_pool_release(&pool);
        goto done;
    }
    DV_NO_GRAD_BEGIN
    dv_tensor *pred = dv_pool_add(&pool, dv_dit_sample(m, &in, NULL, &nrng));
    dv_tensor *p = dv_pool_add(&pool, dv_tensor_to(pred, DV_DEVICE_CPU)); /* contiguous, host */
    dv_tensor *g = dv_pool_add(&pool, dv_contiguous(b.actions));
    dv_tensor *w = dv_pool_add(&pool, dv_contiguous(in.gen_actions));
    int k = cfg.model.chunk, A = cfg.model.action_dim, kg = cfg.model.gen_chunk;
    const float *pp = dv_data(p), *gg = dv_data(g), *ww = dv_data(w);
    printf("sampled chunk (DDIM %d steps, CFG %.3g) | ground truth (rel_actions) | generalist stand-in\n",
           cfg.model.infer_steps, cfg.model.cfg_scale);
    double se = 0, ae = 0;
    for (int j = 0; j < k; j++) {
        printf("t+%-2d", j);
        for (int a = 0; a < A; a++) printf(" %7.3f", pp[j * A + a]);
        printf("  |");
        for (int a = 0; a < A; a++) {
            printf(" %7.3f", gg[j * A + a]);
            double dd = pp[j * A + a] - gg[j * A + a];
            se += dd * dd, ae += fabs(dd);
        }
        printf("  |");
        if (j < kg) for (int a = 0; a < A; a++) printf(" %7.3f", ww[j * A + a]);
        printf("\n");
    }
    printf("chunk error: MSE %.5f  L1 %.5f\n", se / (k * A), ae / (k * A));
    DV_NO_GRAD_END
    dv_pool_release(&pool);
    if (steps > 0) {
        printf("\n");
        if (replay(m, &cfg, d, standin, ann, id, (int)steps, (uint64_t)seed, err, sizeof err)) {
            fprintf(stderr, "dualvla act: --rollout: %s\n", err);
            goto done;
        }
    }
    rc = 0;
done:
    if (have_batch) dv_calvin_batch_free(DV_CALVIN_DIT, &b);
    if (m) dv_dit_free(m);
    dv_standin_free(standin);
    if (d) dv_calvin_close(d);
    return rc;
}
