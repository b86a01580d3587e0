/* bench/bench_dit.c — `bench dit [--preset paper] [--batch 64] [--threads N] [--no-torch]`:
 * the DiT specialist (models/dit) end to end, beside the same network in PyTorch.
 *
 *   infer   batch 1, one full action chunk: RGB ViT + depth ViT + resamplers + latent adapter
 *           (dv_dit_encode, once per chunk), then 5 DDIM steps, each one batched pass of the
 *           conditional and unconditional inputs (CFG 3): dv_dit_sample. Single chunks timed one
 *           by one in two rounds that alternate with the peer's (ours >= 1.5 s and >= 8 chunks a
 *           round, the peer 8): the fastest and the median of each side, and the speedup for each.
 *   train   batch B (64): dv_dit_loss (encode, noise, denoise, MSE) + backward + AdamW step.
 *           Best of 2 runs after a warm-up; peak memory = the allocator's peak during one step
 *           above what was live before it (parameters, AdamW state and inputs not counted).
 * The peer is bench/dit_torch.py (torch 1.13 from /usr/bin/python3, float32, the same number of
 * threads), which builds the same network from tests/reference/gen_dit.py and times the same
 * two jobs; its peak is the process's maximum RSS (everything, including the weights), so the
 * two memory figures are not like for like. Each side runs in its fastest thread setting on
 * this machine: ours with libgomp's default (threads spin between parallel regions), torch with
 * OMP_WAIT_POLICY=passive — Debian's torch sends its matrix products to OpenBLAS's own pthreads
 * beside its OpenMP threads, and with both spinning on 2 cores its chunk took 0.6-0.85 s
 * instead of 0.23-0.30 s. An OMP_WAIT_POLICY set by the caller (active or passive) applies to
 * both. Without /usr/bin/python3 or torch only our figures
 * are printed, with a note. Weights are random in both (speed does not depend on them).
 * --infer-only skips the training step (both sides). --reps N: N single chunks a round (no
 * minimum time), N calls for the conditioning / steps split and N timed training steps after
 * the warm-up, on both sides (for a quick look, or the CUDA emulator of `make test-cuda-sim`).
 *
 * --device cuda[:N] (also `bench --device cuda dit ...`, which bench/main.c routes here): the
 * model (dv_dit_to), its AdamW state and every input live on the GPU; the same two jobs, each
 * timed call ended by dv_cuda_synchronize before the clock is read (the warm-up as well, so no
 * call's work spills into the next). The peer is the same script on the same GPU
 * (`python3 bench/dit_torch.py --device cuda:N`, python3 from PATH, where a CUDA torch usually
 * lives; torch's own defaults: f32, TF32 off for matmuls and on for cuDNN convolutions, while
 * our dv_attention rounds q, k, v to bf16 for the tensor cores), each call ended by
 * torch.cuda.synchronize(). Memory: the CUDA caching allocator's peak during one step above what
 * was live before it (dv_cuda_reset_peak, dv_cuda_get_stats(dev).peak_bytes), beside torch's
 * max_memory_allocated() above memory_allocated() before its step — like for like on the GPU —
 * and both totals (weights, AdamW state and inputs included). Without a usable device (no
 * driver, a build without CUDA, no device N) one line says why and the bench returns 0.
 * Host-side launch overhead is part of every figure (no CUDA graphs on either side).
 * Not here: the released preset's checkpoint (random weights of its shape: --preset), the
 * peer for presets other than paper, several GPUs.
 */
#include "bench/bench.h"
#include "models/dit/model.h"
#include "optim/optim.h"
#include "tensor/cuda.h"
#include "tensor/ops.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef struct {
    dv_dit *m;
    dv_dit_inputs in;
    dv_tensor *noise;
    dv_device dev;
} infer_ctx;

/* waits for the work enqueued on d (nothing to wait for on the CPU) */
static void dev_sync(dv_device d) {
    if (d.type == DV_CUDA) dv_cuda_synchronize(d.index);
}

static void infer_once(void *p) {
    infer_ctx *c = p;
    dv_tensor *x = dv_dit_sample(c->m, &c->in, c->noise, NULL);
    dv_release(x);
    dev_sync(c->dev);
}

static void encode_once(void *p) {
    infer_ctx *c = p;
    DV_NO_GRAD_BEGIN
    dv_dit_cond_free(dv_dit_encode(c->m, &c->in));
    DV_NO_GRAD_END
    dev_sync(c->dev);
}

/* the denoising steps alone, from a conditioning computed beforehand */
typedef struct {
    infer_ctx *ic;
    dv_dit_cond *cond;
} steps_ctx;

static void steps_once(void *p) {
    steps_ctx *c = p;
    dv_release(dv_dit_sample_cond(c->ic->m, c->cond, c->ic->noise));
    dev_sync(c->ic->dev);
}

static dv_dit_inputs make_inputs(const dv_dit_config *c, int64_t B, dv_rng *rng) {
    int64_t I = c->image_size;
    dv_dit_inputs in = {0};
    in.rgb_static = dv_rand(rng, DV_F32, DV_SHAPE(B, c->static_frames, 3, I, I));
    in.rgb_gripper = c->use_gripper ? dv_rand(rng, DV_F32, DV_SHAPE(B, 3, I, I)) : NULL;
    in.depth_static = c->use_depth ? dv_rand(rng, DV_F32, DV_SHAPE(B, 1, I, I)) : NULL;
    in.depth_gripper = c->use_depth && c->use_gripper ? dv_rand(rng, DV_F32, DV_SHAPE(B, 1, I, I)) : NULL;
    in.proprio = dv_randn(rng, DV_F32, DV_SHAPE(B, c->proprio_dim));
    in.gen_actions = dv_rand(rng, DV_F32, DV_SHAPE(B, c->chunk, c->action_dim));
    in.gen_latents = c->gen_latent_dim > 0
        ? dv_randn(rng, DV_F32, DV_SHAPE(B, c->gen_latent_tokens, c->gen_latent_dim)) : NULL;
    return in;
}
/* t moved to d (a copy there; the host tensor released), or t itself on the CPU */
static dv_tensor *moved(dv_tensor *t, dv_device d) {
    if (!t || d.type == DV_CPU) return t;
    dv_tensor *u = dv_tensor_to(t, d);
    dv_release(t);
    return u;
}
static void inputs_to(dv_dit_inputs *in, dv_device d) {
    in->rgb_static = moved(in->rgb_static, d), in->rgb_gripper = moved(in->rgb_gripper, d);
    in->depth_static = moved(in->depth_static, d), in->depth_gripper = moved(in->depth_gripper, d);
    in->proprio = moved(in->proprio, d), in->gen_actions = moved(in->gen_actions, d);
    in->gen_latents = moved(in->gen_latents, d);
}
static void free_inputs(dv_dit_inputs *in) {
    dv_release(in->rgb_static), dv_release(in->rgb_gripper), dv_release(in->depth_static);
    dv_release(in->depth_gripper), dv_release(in->proprio), dv_release(in->gen_actions);
    dv_release(in->gen_latents);
}

/* what the peer reports besides its chunk times */
typedef struct {
    double tr;          /* best training step, s */
    double rss;         /* CPU: the process's max RSS, MiB */
    double step_peak;   /* CUDA: max_memory_allocated above memory_allocated before the step, MiB */
    double total_peak;  /* CUDA: max_memory_allocated over the run, MiB */
} torch_figures;

/* one run of the PyTorch peer: infer_reps single chunks (appended to inf, and in the official
 * code's schedule to inf_rel), then, with train_reps > 0, the training step (best of
 * train_reps) and its memory. On the CPU /usr/bin/python3 (Debian's torch) with the same
 * threads; on a GPU (dev) python3 from PATH with --device. -1 when the peer could not run. */
static int run_torch(const char *preset, int64_t B, int threads, dv_device dev, int infer_reps,
                     int train_reps, dv_bench_samples *inf, dv_bench_samples *inf_rel, torch_figures *tf) {
    bool train = train_reps > 0;
    if (dev.type == DV_CPU && access("/usr/bin/python3", X_OK) != 0) {
        printf("  (PyTorch peer skipped: no /usr/bin/python3)\n");
        return -1;
    }
    if (access("bench/dit_torch.py", R_OK) != 0) {
        printf("  (PyTorch peer skipped: run from the repository root, bench/dit_torch.py not found)\n");
        return -1;
    }
    const char *wp = getenv("OMP_WAIT_POLICY");
    wp = wp && !strcasecmp(wp, "active") ? "active" : "passive";
    char cmd[512];
    if (dev.type == DV_CPU)
        snprintf(cmd, sizeof cmd,
                 "OMP_NUM_THREADS=%d OMP_WAIT_POLICY=%s /usr/bin/python3 bench/dit_torch.py --preset %s "
                 "--batch %lld --threads %d --infer-reps %d --train-reps %d 2>&1",
                 threads, wp, preset, (long long)B, threads, infer_reps, train_reps);
    else
        snprintf(cmd, sizeof cmd,
                 "python3 bench/dit_torch.py --device %s --preset %s --batch %lld --threads %d "
                 "--infer-reps %d --train-reps %d 2>&1",
                 dv_device_str(dev), preset, (long long)B, threads, infer_reps, train_reps);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char line[8192];
    int got = 0;
    while (fgets(line, sizeof line, p)) {
        const char *k_inf = "torch_infer_times ", *k_rel = "torch_infer_released_style_times ";
        dv_bench_samples *dst = !strncmp(line, k_inf, strlen(k_inf)) ? inf
                              : !strncmp(line, k_rel, strlen(k_rel)) ? inf_rel : NULL;
        if (dst) {
            char *q = strchr(line, ' '), *end;
            for (double t; (t = strtod(q, &end)), end != q; q = end) dv_bench_samples_add(dst, t);
            got |= dst == inf;
            continue;
        }
        if (sscanf(line, "torch_train_s %lf", &tf->tr) == 1) continue;
        if (sscanf(line, "torch_peak_rss_mb %lf", &tf->rss) == 1) continue;
        if (sscanf(line, "torch_cuda_step_peak_mb %lf", &tf->step_peak) == 1) continue;
        if (sscanf(line, "torch_cuda_peak_mb %lf", &tf->total_peak) == 1) continue;
        printf("  torch: %s", line);  /* e.g. an ImportError: shown, not hidden */
    }
    int rc = pclose(p);
    bool ok = (infer_reps == 0 || got) && (!train || tf->tr > 0);
    if (!ok) printf("  (PyTorch peer failed, exit status %d)\n", rc);
    return ok ? 0 : -1;
}

int dv_bench_dit(int argc, char **argv) {
    const char *preset = "paper", *device = "cpu";
    int64_t B = 64;
    int reps = 0;   /* 0: the default counts and minimum times */
    bool torch = true, train = true;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--preset") && i + 1 < argc) preset = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) B = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--device") && i + 1 < argc) device = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-torch")) torch = false;
        else if (!strcmp(argv[i], "--infer-only")) train = false;
    }
    char err[256];
    dv_device dev;
    if (dv_device_parse(device, &dev, err, sizeof err)) {
        fprintf(stderr, "bench dit: --device: %s\n", err);
        return 1;
    }
    if (B < 1 || reps < 0) {
        fprintf(stderr, "bench dit: --batch needs a positive integer, --reps a non-negative one\n");
        return 1;
    }
    if (dev.type == DV_CUDA && !dv_cuda_available()) {
        printf("bench dit: no CUDA device, skipped (%s)\n", dv_cuda_unavailable_reason());
        return 0;
    }
    if (dev.type == DV_CUDA && dev.index >= dv_cuda_device_count()) {
        printf("bench dit: no device %s (%d CUDA devices), skipped\n", dv_device_str(dev), dv_cuda_device_count());
        return 0;
    }
    int threads = dv_bench_threads_arg(argc, argv);
    if (threads > 0) omp_set_num_threads(threads);
    threads = omp_get_max_threads();
    dv_dit_config cfg;
    if (dv_dit_config_preset(&cfg, preset, err, sizeof err)) {
        fprintf(stderr, "bench dit: %s\n", err);
        return 1;
    }
    if (strcmp(preset, "paper")) torch = false;  /* the peer builds the paper network only */
    dv_rng rng = dv_rng_new(0);
    dv_dit *m = dv_dit_new(&cfg, &rng);
    const char *wp = getenv("OMP_WAIT_POLICY");
    if (dev.type == DV_CPU) {
        printf("bench dit: preset %s, %d threads, f32, random weights, OMP_WAIT_POLICY %s (torch: %s)\n",
               preset, threads, wp ? wp : "unset", wp && !strcasecmp(wp, "active") ? "active" : "passive");
    } else {
        dv_cuda_info info = {0};
        dv_cuda_device_info(dev.index, &info);
        printf("bench dit: preset %s, %s (%s, sm_%d%d), f32 (attention q, k, v in bf16), random weights, "
               "%d host threads\n", preset, dv_device_str(dev), info.name, info.major, info.minor, threads);
        dv_dit_to(m, dev);
    }
    dv_dit_print_summary(m, stdout);

    /* inference: batch 1 */
    infer_ctx ic = {m, make_inputs(&cfg, 1, &rng), NULL, dev};
    ic.noise = moved(dv_randn(&rng, DV_F32, DV_SHAPE(1, cfg.chunk, cfg.action_dim)), dev);
    inputs_to(&ic.in, dev);
    /* rounds alternate with the peer's (ours, torch, ours, torch) so that a drift of the
     * machine's speed hits both sides alike */
    enum { ROUNDS = 2 };
    const int torch_chunks = reps ? reps : 8, train_reps = train ? (reps ? reps : 2) : 0;
    dv_bench_samples ours = {0}, pt = {0}, pt_rel = {0};
    torch_figures tf = {-1, -1, -1, -1};
    int have = torch ? 0 : -1;
    for (int r = 0; r < ROUNDS; r++) {
        dv_bench_sample(&ours, infer_once, &ic, reps ? 0 : 1.5, reps ? reps : 8);
        if (have == 0) have = run_torch(preset, B, threads, dev, torch_chunks, 0, &pt, &pt_rel, &tf);
    }
    double t_inf, m_inf, t_enc, m_enc, t_steps, m_steps, p_inf[2], p_rel[2];
    dv_bench_stats(&ours, &t_inf, &m_inf);
    dv_bench_stats(&pt, &p_inf[0], &p_inf[1]);
    dv_bench_stats(&pt_rel, &p_rel[0], &p_rel[1]);
    dv_bench_calls(encode_once, &ic, reps ? 0 : 1.0, reps ? reps : 10, &t_enc, &m_enc);
    steps_ctx sc = {&ic, NULL};
    DV_NO_GRAD_BEGIN
    sc.cond = dv_dit_encode(m, &ic.in);
    DV_NO_GRAD_END
    dv_bench_calls(steps_once, &sc, reps ? 0 : 1.0, reps ? reps : 10, &t_steps, &m_steps);
    dv_dit_cond_free(sc.cond);

    /* training: batch B, loss + backward + AdamW; parameters, AdamW state and inputs on dev */
    dv_dit_inputs tin = make_inputs(&cfg, B, &rng);
    inputs_to(&tin, dev);
    dv_tensor *actions = moved(dv_rand(&rng, DV_F32, DV_SHAPE(B, cfg.chunk, cfg.action_dim)), dev);
    dv_params ps = {0};
    dv_reg_trainable(dv_dit_registry(m), &ps);
    dv_adamw *opt = dv_adamw_new();
    dv_adamw_config oc = dv_adamw_config_default();
    oc.lr = 1e-4, oc.weight_decay = 1e-3;
    dv_adamw_add_group(opt, &ps, oc);
    double t_tr = 1e30;
    int64_t peak = 0, peak_total = 0;
    for (int rep = 0; rep < (train ? 1 + train_reps : 0); rep++) {
        int64_t live;
        dev_sync(dev);
        if (dev.type == DV_CPU) live = dv_alloc_get_stats().live_bytes, dv_alloc_reset_peak();
        else live = dv_cuda_get_stats(dev.index).live_bytes, dv_cuda_reset_peak(dev.index);
        double t0 = dv_bench_now();
        dv_tensor *loss = dv_dit_loss(m, &tin, actions, &rng);
        dv_backward(loss);
        dv_release(loss);
        dv_adamw_step(opt, 1.0);
        dv_optim_zero_grad(&ps);
        dev_sync(dev);
        double dt = dv_bench_now() - t0;
        int64_t top = dev.type == DV_CPU ? dv_alloc_get_stats().peak_bytes : dv_cuda_get_stats(dev.index).peak_bytes;
        if (rep > 0 && dt < t_tr) t_tr = dt;   /* rep 0 warms the caches and the AdamW state */
        if (rep > 0) peak = top - live, peak_total = top;
    }

    if (have == 0 && train) have = run_torch(preset, B, threads, dev, 0, train_reps, &pt, &pt_rel, &tf);
    if (!torch) printf("  (PyTorch peer not run)\n");
    printf("dit infer  batch 1, 1 chunk (encoders + %d DDIM steps, CFG batched), best / median of %d | %d "
           "chunks in %d alternating rounds: dualvla %.1f / %.1f ms", cfg.infer_steps, ours.n, pt.n, ROUNDS,
           t_inf * 1e3, m_inf * 1e3);
    if (have == 0)
        printf("   pytorch %.1f / %.1f ms   speedup %.2fx / %.2fx", p_inf[0] * 1e3, p_inf[1] * 1e3,
               p_inf[0] / t_inf, p_inf[1] / m_inf);
    printf("\n");
    if (have == 0 && pt_rel.n > 0)
        printf("dit infer  pytorch as the official code schedules it (adapters re-run by each of the 2 x %d "
               "calls): %.1f / %.1f ms   speedup %.2fx / %.2fx\n", cfg.infer_steps, p_rel[0] * 1e3,
               p_rel[1] * 1e3, p_rel[0] / t_inf, p_rel[1] / m_inf);
    printf("dit infer  of which the conditioning (encoders, resamplers, K/V once per chunk): %.1f / %.1f ms, "
           "the %d guided steps: %.1f / %.1f ms\n", t_enc * 1e3, m_enc * 1e3, cfg.infer_steps,
           t_steps * 1e3, m_steps * 1e3);
    if (!train) goto done;
    printf("dit train  batch %lld, loss + backward + AdamW:              dualvla %8.1f ms",
           (long long)B, t_tr * 1e3);
    if (have == 0) printf("   pytorch %8.1f ms   speedup %.2fx", tf.tr * 1e3, tf.tr / t_tr);
    if (dev.type == DV_CUDA) printf("   (best of %d)", train_reps);
    printf("\n");
    if (dev.type == DV_CPU) {
        printf("dit train  peak memory of one step (dv allocator, above live): %.1f MiB",
               peak / 1048576.0);
        if (have == 0) printf("   pytorch process max RSS %.1f MiB (everything)", tf.rss);
    } else {
        printf("dit train  peak GPU memory of one step (CUDA allocator, above live): %.1f MiB (%.1f MiB in all)",
               peak / 1048576.0, peak_total / 1048576.0);
        if (have == 0 && tf.step_peak >= 0)
            printf("   pytorch max_memory_allocated %.1f MiB above live (%.1f MiB in all)", tf.step_peak,
                   tf.total_peak);
    }
    printf("\n");
done:
    dv_bench_samples_free(&ours), dv_bench_samples_free(&pt), dv_bench_samples_free(&pt_rel);
    dv_adamw_free(opt);
    dv_params_free(&ps);
    dv_release(actions), dv_release(ic.noise);
    free_inputs(&tin), free_inputs(&ic.in);
    dv_dit_free(m);
    return 0;
}
