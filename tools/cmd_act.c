/* tools/cmd_act.c — `dualvla act dit`: one action chunk of a trained DiT specialist for one
 * frame of a CALVIN split, printed next to the ground truth.
 *
 *   dualvla act dit --ckpt FILE --data DIR --episode I --frame J [--seed S] [--threads N]
 *                   [--no-ema]
 *
 * The checkpoint (from `dualvla train dit`) carries its config, so the model is rebuilt from
 * it; its EMA weights are used when it has them (--no-ema: the trained weights). Frame J is
 * counted from the start of episode I and must lie in an annotated window (only those are
 * samples). The generalist is the training stand-in, run on this very frame (latency 0), so
 * its whole chunk conditions the specialist. Sampling: DDIM with the config's steps and CFG
 * scale, noise from --seed.
 *
 * Not here: closed-loop rollouts in the simulator (models/dit/rollout.h holds the pieces).
 */
#include "tools/commands.h"
#include "tools/dit_session.h"
#include "data/calvin/samples.h"
#include "models/dit/dit.h"
#include "nn/module.h"
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
        "  --no-ema        use the trained weights even when the checkpoint has an EMA\n");
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

int dv_cmd_act(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "dit")) {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) { act_usage(stdout); return 0; }
        fprintf(stderr, "dualvla act: expected a model name: 'dualvla act dit ...'\n");
        act_usage(stderr);
        return 2;
    }
    const char *ckpt = NULL, *data = NULL;
    int64_t episode = -1, frame = -1, seed = 0, threads = 0;
    bool use_ema = true;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = !strcmp(a, "--ckpt") || !strcmp(a, "--data") || !strcmp(a, "--episode") ||
                     !strcmp(a, "--frame") || !strcmp(a, "--seed") || !strcmp(a, "--threads");
        if (takes && !v) { fprintf(stderr, "dualvla act: %s needs a value\n", a); return 2; }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { act_usage(stdout); return 0; }
        else if (!strcmp(a, "--ckpt")) ckpt = v;
        else if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--episode")) { if (act_i64(a, v, &episode)) return 2; }
        else if (!strcmp(a, "--frame")) { if (act_i64(a, v, &frame)) return 2; }
        else if (!strcmp(a, "--seed")) { if (act_i64(a, v, &seed)) return 2; }
        else if (!strcmp(a, "--threads")) { if (act_i64(a, v, &threads)) return 2; }
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
    printf("%s (preset %s, %s weights); episode %lld frame %lld = frame id %lld, \"%s\"\n", ckpt,
           cfg.model.preset, used_ema ? "EMA" : "trained", (long long)episode, (long long)frame,
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
    dv_tensor *p = dv_pool_add(&pool, dv_contiguous(pred));
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
    rc = 0;
done:
    if (have_batch) dv_calvin_batch_free(DV_CALVIN_DIT, &b);
    if (m) dv_dit_free(m);
    dv_standin_free(standin);
    if (d) dv_calvin_close(d);
    return rc;
}
