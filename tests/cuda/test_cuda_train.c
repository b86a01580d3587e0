/* tests/cuda/test_cuda_train.c — training on cuda:0 as a user runs it: optimisers built on
 * device parameters (state made beside them), checkpoints holding device tensors (saved
 * through the host, loaded back onto a device or onto the CPU), dv_item on device scalars, and
 * `dualvla train dit --device cuda` against the same run on the CPU, with a resume across
 * devices.
 *
 * Tolerances: the optimiser arithmetic is f32 on both sides, the same formulas in the same
 * order (kernels/cuda/adamw.cu and optim.cu follow the CPU kernels), so 1e-6 relative. The CLI
 * run trains the micro DiT, whose attention rounds q, k, v to bf16 on the GPU (see
 * test_cuda_dit.c): after two AdamW steps the losses agree to a few 1e-2 relative.
 */
#ifdef DV_HAVE_CUDA
#include "tests/cuda/cuda_util.h"
#include "tests/util.h"

#include "tools/train_log.c"
#include "tools/dit_session.c"
#include "tools/cmd_train.c"
#include "tools/cmd_act.c"

#include "data/calvin/synth.h"
#include "optim/optim.h"
#include "tensor/checkpoint.h"
#include "tensor/ops.h"
#include "tensor/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static dv_device gpu(void) { return dv_device_cuda(0); }

/* a host copy's floats (caller releases) */
static dv_tensor *host(dv_tensor *t) { return dv_tensor_to(t, DV_DEVICE_CPU); }

TEST(cuda_optimisers_built_on_device_params_match_cpu) {
    dv_rng r = dv_rng_new(71);
    dv_tensor *pc[3] = {dv_randn(&r, DV_F32, DV_SHAPE(33, 17)), dv_randn(&r, DV_F32, DV_SHAPE(257)),
                        dv_randn(&r, DV_F32, DV_SHAPE(5, 3, 2))};
    dv_tensor *pg[3];
    for (int k = 0; k < 3; k++) pg[k] = dv_tensor_to(pc[k], gpu()); /* on the device from the start */
    dv_params dc = {0}, nc = {0}, dg = {0}, ng = {0}, all_c = {0}, all_g = {0};
    const char *names[3] = {"w", "b", "t"};
    for (int k = 0; k < 3; k++) {
        dv_params_add(k == 1 ? &nc : &dc, names[k], pc[k]), dv_params_add(k == 1 ? &ng : &dg, names[k], pg[k]);
        dv_params_add(&all_c, names[k], pc[k]), dv_params_add(&all_g, names[k], pg[k]);
    }
    dv_adamw *oc = dv_adamw_new(), *og = dv_adamw_new();
    dv_adamw_config ac = dv_adamw_config_default();
    ac.lr = 3e-3, ac.weight_decay = 0.1;
    dv_adamw_add_group(oc, &dc, ac), dv_adamw_add_group(og, &dg, ac);
    ac.weight_decay = 0, ac.lr = 1e-3;
    dv_adamw_add_group(oc, &nc, ac), dv_adamw_add_group(og, &ng, ac);
    dv_ema *ec = dv_ema_new(&all_c, 0.9), *eg = dv_ema_new(&all_g, 0.9);

    /* where the state went: moments and shadows beside the parameters, counters on the host */
    const char *const *sn;
    dv_tensor *const *st;
    int ns = dv_adamw_state(og, &sn, &st);
    for (int i = 0; i < ns; i++) {
        bool counter = strstr(sn[i], ".step") != NULL;
        CHECK_MSG(st[i]->device.type == (counter ? DV_CPU : DV_CUDA), "adamw state %s is on %s", sn[i],
                  dv_device_str(st[i]->device));
    }
    ns = dv_ema_state(eg, &sn, &st);
    for (int i = 0; i < ns; i++) CHECK_MSG(st[i]->device.type == DV_CUDA, "ema state %s is on the host", sn[i]);

    for (int step = 0; step < 4; step++) {
        for (int k = 0; k < 3; k++) {
            dv_tensor *g = dv_randn(&r, DV_F32, pc[k]->shape, pc[k]->ndim);
            pc[k]->grad = step == 2 ? dv_scale(g, 50.0) : dv_retain(g); /* step 2 is clipped */
            dv_release(g);
            pg[k]->grad = dv_tensor_to(pc[k]->grad, gpu());
        }
        if (step == 3) dv_zero_grad(pc[1]), dv_zero_grad(pg[1]); /* no gradient: skipped */
        double nc_ = dv_clip_grad_norm(&all_c, 5.0), ng_ = dv_clip_grad_norm(&all_g, 5.0);
        CHECK_MSG(fabs(nc_ - ng_) <= 1e-5 * nc_, "step %d: grad norm %.9g on the GPU, %.9g on the CPU", step, ng_, nc_);
        dv_adamw_step(oc, 0.5 + 0.25 * step), dv_adamw_step(og, 0.5 + 0.25 * step);
        dv_ema_update(ec), dv_ema_update(eg);
        dv_optim_zero_grad(&all_c), dv_optim_zero_grad(&all_g);
    }
    for (int k = 0; k < 3; k++) {
        dv_tensor *h = host(pg[k]);
        char what[64];
        snprintf(what, sizeof what, "parameter %s after 4 steps", names[k]);
        tc_compare_f32(what, dv_data(h), dv_data(pc[k]), dv_numel(h), 1e-6);
        dv_release(h);
    }
    ns = dv_ema_state(eg, &sn, &st);
    const char *const *snc;
    dv_tensor *const *stc;
    dv_ema_state(ec, &snc, &stc);
    for (int i = 0; i < ns; i++) {
        dv_tensor *h = host(st[i]);
        tc_compare_f32(sn[i], dv_data(h), dv_data(stc[i]), dv_numel(h), 1e-6);
        dv_release(h);
    }
    ns = dv_adamw_state(og, &sn, &st);
    dv_adamw_state(oc, &snc, &stc);
    for (int i = 0; i < ns; i++)
        if (strstr(sn[i], ".step")) CHECK_MSG(dv_item(st[i]) == dv_item(stc[i]), "%s differs", sn[i]);
    dv_ema_free(ec), dv_ema_free(eg), dv_adamw_free(oc), dv_adamw_free(og);
    dv_params_free(&dc), dv_params_free(&nc), dv_params_free(&dg), dv_params_free(&ng);
    dv_params_free(&all_c), dv_params_free(&all_g);
    for (int k = 0; k < 3; k++) dv_release(pc[k]), dv_release(pg[k]);
}

TEST(cuda_item_and_element_access_on_device) {
    dv_rng r = dv_rng_new(3);
    dv_tensor *xc = dv_randn(&r, DV_F32, DV_SHAPE(4, 6)), *xg = dv_tensor_to(xc, gpu());
    dv_tensor *sc = dv_sum_all(xc), *sg = dv_sum_all(xg); /* queued on the device: dv_item waits for it */
    CHECK_MSG(fabs(dv_item(sg) - dv_item(sc)) <= 1e-5 * (1 + fabs(dv_item(sc))), "sum %.9g vs %.9g", dv_item(sg),
              dv_item(sc));
    CHECK(dv_get(xg, (const int64_t[]){2, 5}) == dv_get(xc, (const int64_t[]){2, 5}));
    dv_tensor *tg = dv_transpose(xg, 0, 1); /* strided view: the element is found through the strides */
    CHECK(dv_flat_get(tg, 7) == dv_get(xc, (const int64_t[]){3, 1})); /* tg (6, 4): flat 7 = tg[1][3] = x[3][1] */
    dv_set(xg, (const int64_t[]){3, 0}, -2.5);
    CHECK(dv_get(xg, (const int64_t[]){3, 0}) == -2.5);
    dv_tensor *h = host(xg);
    CHECK(((float *)dv_data(h))[18] == -2.5f && ((float *)dv_data(h))[17] == ((float *)dv_data(xc))[17]);
    dv_release(h), dv_release(tg), dv_release(sc), dv_release(sg), dv_release(xc), dv_release(xg);
}

TEST(cuda_checkpoint_with_device_tensors) {
    dv_rng r = dv_rng_new(9);
    dv_tensor *a = dv_randn(&r, DV_F32, DV_SHAPE(7, 5)), *b = dv_randn(&r, DV_F32, DV_SHAPE(11));
    dv_tensor *ag = dv_tensor_to(a, gpu());
    dv_rng keep = dv_rng_new(1234);
    dv_ckpt_rng rngs[1] = {{"data", &keep}};
    dv_ckpt_tensor ts[2] = {{"a", ag}, {"b", b}}; /* one on the device, one on the host */
    dv_checkpoint ck = {.step = 17, .tensors = ts, .n_tensors = 2, .rngs = rngs, .n_rngs = 1, .config = "x = 1"};
    char path[256], err[512];
    snprintf(path, sizeof path, "/tmp/dv_test_cuda_ckpt_%d.safetensors", (int)getpid());
    CHECK_MSG(dv_checkpoint_save(path, &ck, err, sizeof err) == 0, "%s", err);
    CHECK(ag->device.type == DV_CUDA); /* saving leaves the tensor where it was */

    /* back onto the device, and the host tensor onto the device too (a resume on a GPU of a
     * run that saved from the CPU is the same path) */
    dv_tensor *a2 = dv_zeros_on(DV_F32, DV_SHAPE(7, 5), gpu()), *b2 = dv_zeros_on(DV_F32, DV_SHAPE(11), gpu());
    dv_ckpt_tensor ts2[2] = {{"a", a2}, {"b", b2}};
    dv_rng got = dv_rng_new(0);
    dv_ckpt_rng rngs2[1] = {{"data", &got}};
    dv_checkpoint ck2 = {.tensors = ts2, .n_tensors = 2, .rngs = rngs2, .n_rngs = 1};
    CHECK_MSG(dv_checkpoint_load(path, &ck2, NULL, err, sizeof err) == 0, "%s", err);
    CHECK(ck2.step == 17 && got.seed == keep.seed && got.offset == keep.offset);
    dv_tensor *ha = host(a2), *hb = host(b2);
    CHECK(!memcmp(dv_data(ha), dv_data(a), 35 * 4) && !memcmp(dv_data(hb), dv_data(b), 11 * 4));
    /* and onto the host: the file is device-free */
    dv_tensor *a3 = dv_zeros(DV_F32, DV_SHAPE(7, 5)), *b3 = dv_zeros(DV_F32, DV_SHAPE(11));
    dv_ckpt_tensor ts3[2] = {{"a", a3}, {"b", b3}};
    dv_checkpoint ck3 = {.tensors = ts3, .n_tensors = 2, .rngs = rngs2, .n_rngs = 1};
    CHECK_MSG(dv_checkpoint_load(path, &ck3, NULL, err, sizeof err) == 0, "%s", err);
    CHECK(!memcmp(dv_data(a3), dv_data(a), 35 * 4) && !memcmp(dv_data(b3), dv_data(b), 11 * 4));
    /* a shape mismatch on a device tensor is refused before anything is copied */
    dv_tensor *bad = dv_zeros_on(DV_F32, DV_SHAPE(5, 7), gpu());
    dv_ckpt_tensor ts4[2] = {{"a", bad}, {"b", b2}};
    dv_checkpoint ck4 = {.tensors = ts4, .n_tensors = 2, .rngs = rngs2, .n_rngs = 1};
    CHECK(dv_checkpoint_load(path, &ck4, NULL, err, sizeof err) == -1 && strstr(err, "shape"));
    remove(path);
    dv_release(bad), dv_release(a3), dv_release(b3), dv_release(ha), dv_release(hb), dv_release(a2), dv_release(b2);
    dv_release(ag), dv_release(a), dv_release(b);
}

/* ---- the CLI on the GPU ------------------------------------------------------------------ */
/* the losses of loss.csv (step, loss, ...), at most n */
static int read_losses(const char *csv, double *loss, int n) {
    int64_t *st = NULL, cnt = 0;
    double *lo = NULL;
    char err[512];
    if (dv_loss_csv_read(csv, &st, &lo, &cnt, err, sizeof err)) {
        dv_test_fail(__FILE__, __LINE__, "%s", err);
        return 0;
    }
    int k = 0;
    for (; k < cnt && k < n; k++) loss[k] = lo[k];
    free(st), free(lo);
    return k;
}

TEST(cuda_train_dit_cli_matches_cpu_and_resumes_across_devices) {
    char root[256], data[300], cfg[300], oc[300], og[300], csv[400], err[512];
    snprintf(root, sizeof root, "/tmp/dv_test_cuda_train_%d", (int)getpid());
    snprintf(data, sizeof data, "%s/data", root);
    snprintf(cfg, sizeof cfg, "%s/micro.cfg", root);
    snprintf(oc, sizeof oc, "%s/cpu", root);
    snprintf(og, sizeof og, "%s/gpu", root);
    mkdir(root, 0755);
    dv_calvin_synth_opts so;
    dv_calvin_synth_defaults(&so);
    so.episodes = 3, so.frames_per_episode = 24, so.val_episodes = 1, so.seed = 5, so.threads = 1;
    CHECK_MSG(dv_calvin_synth(data, &so, NULL, err, sizeof err) == 0, "calvin synth: %s", err);
    FILE *f = fopen(cfg, "w");
    /* the micro DiT of tests/test_train.c, with dropout on: the GPU must draw the CPU's masks */
    fputs("preset = tiny\nlayers = 1\nhidden = 32\nheads = 2\nrotary_dims = 16\n"
          "image_size = 32\nvit_hidden = 32\nvit_heads = 2\nrgb_vit_hidden = 32\nrgb_vit_heads = 2\n"
          "gen_latent_dim = 8\ngen_latent_tokens = 2\nattn_dropout = 0.1\n"
          "train.warmup_steps = 5\ntrain.eval_samples = 4\ntrain.ema_decay = 0.9\nstandin.corrupt = 0.1\n", f);
    fclose(f);

    const char *tc[] = {"--data", data, "--config", cfg, "--steps", "3", "--batch", "2", "--out", oc,
                        "--threads", "1", "--quiet"};
    CHECK(ut_run_cli(dv_cmd_train, "train", "dit", tc, 13) == 0);
    const char *tg[] = {"--data", data, "--config", cfg, "--steps", "3", "--batch", "2", "--out", og,
                        "--threads", "1", "--quiet", "--device", "cuda:0", "--stop-at", "2"};
    CHECK(ut_run_cli(dv_cmd_train, "train", "dit", tg, 17) == 0);
    /* the GPU run stopped at step 2: resume it on the CPU for the last step */
    const char *tr[] = {"--data", data, "--out", og, "--threads", "1", "--quiet", "--resume"};
    CHECK(ut_run_cli(dv_cmd_train, "train", "dit", tr, 8) == 0);

    double lc[4] = {0}, lg[4] = {0};
    snprintf(csv, sizeof csv, "%s/loss.csv", oc);
    int nc = read_losses(csv, lc, 4);
    snprintf(csv, sizeof csv, "%s/loss.csv", og);
    int ng = read_losses(csv, lg, 4);
    CHECK_MSG(nc == 3 && ng == 3, "loss rows: cpu %d, gpu + resumed %d", nc, ng);
    for (int k = 0; k < nc && k < ng; k++)
        CHECK_MSG(fabs(lg[k] - lc[k]) <= 3e-2 * fabs(lc[k]) + 1e-4, "step %d loss: %.6f (gpu%s) vs %.6f (cpu)", k, lg[k],
                  k == 2 ? ", resumed on the cpu" : "", lc[k]);

    /* act on the GPU from the checkpoint */
    char ck[400], val[400];
    snprintf(ck, sizeof ck, "%s/ckpt.safetensors", oc);
    snprintf(val, sizeof val, "%s/validation", data);
    const char *a[] = {"--ckpt", ck, "--data", val, "--episode", "0", "--frame", "5", "--threads", "1",
                       "--rollout", "2", "--device", "cuda"};
    CHECK(ut_run_cli(dv_cmd_act, "act", "dit", a, 14) == 0);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
}

#endif
