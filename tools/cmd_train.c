/* tools/cmd_train.c — `dualvla train dit`: trains RoboDual's DiT specialist (RoboDual §3.2–3.3,
 * App. B) on a CALVIN split, with the generalist replaced by its documented stand-in
 * (models/dit/standin.h).
 *
 *   dualvla train dit --data DIR [--config FILE] [--preset tiny|paper|released] [--steps N]
 *                     [--batch B] [--out DIR] [--resume] [--ckpt-every N] [--seed S]
 *                     [--threads N] [--stop-at S] [--rgb-encoder FILE] [--device D] [--quiet]
 *                     [--log-y]
 *
 * The recipe: AdamW (lr 1e-4, weight decay 1e-3 except on norms, biases, learned positions and
 * queries), linear warm-up then cosine (1,000 warm-up steps in the paper config), global-norm
 * clipping at 1, optional EMA of the weights; the loss is dv_dit_loss (x0 or epsilon MSE with
 * condition dropout). Every step's data, noise and stand-in corruption are pure functions of
 * (seed, step) and the restored rng state, so `--resume` continues bit for bit: a run
 * interrupted at any checkpoint and resumed ends with the same parameters as one that was not.
 *
 * Writes into --out (default runs/dit):
 *   ckpt.safetensors  parameters (plain names: it doubles as a weights file), AdamW state,
 *                     EMA, step, rngs and the config text — atomically, every --ckpt-every
 *                     steps and at the end
 *   loss.csv          step, loss, lr, grad norm, seconds (tools/train_log.h)
 *   loss.svg          the loss curve
 *   config.txt        the run's full configuration (what --config reads)
 * and prints the held-out action error (MSE and L1 of DDIM-sampled chunks against the ground
 * truth, on the held-out annotations) before and after training.
 *
 * --device cuda[:N] trains on a GPU: the model, its gradients, the AdamW moments and the EMA live
 * there (the step counters, the data pipeline, the stand-in and every random draw stay on the
 * host, so a seed gives the same batches, noise and masks on any device). The checkpoint is
 * device-free: a run saved on one device resumes on another.
 *
 * Not here: multi-process / GPU data parallelism, gradient accumulation, mixed precision.
 */
#include "tools/commands.h"
#include "tools/dit_session.h"
#include "tools/train_log.h"
#include "models/dit/dit.h"
#include "models/dit/standin.h"
#include "nn/module.h"
#include "optim/optim.h"
#include "tensor/checkpoint.h"
#include "tensor/cuda.h"
#include "tensor/ops.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void train_usage(FILE *f) {
    fprintf(f,
        "usage: dualvla train dit --data DIR [options]\n"
        "  --data DIR          a CALVIN split (or a folder with training/)\n"
        "  --config FILE       'key = value' lines: DiT keys, train.*, standin.*\n"
        "  --preset NAME       tiny | paper | released (default paper; a config's 'preset' line wins)\n"
        "  --steps N           optimiser steps of the whole run\n"
        "  --batch B           samples per step\n"
        "  --out DIR           output folder (default runs/dit)\n"
        "  --resume            continue from DIR/ckpt.safetensors\n"
        "  --ckpt-every N      checkpoint interval in steps (default 1000; always at the end)\n"
        "  --seed S            seed of init, data order, noise and stand-in\n"
        "  --threads N         OpenMP threads (default: OMP_NUM_THREADS or all cores)\n"
        "  --stop-at S         stop after step S with a checkpoint, as if interrupted\n"
        "  --rgb-encoder FILE  frozen RGB ViT weights (safetensors); random when absent\n"
        "  --device D          cpu (default), cuda or cuda:N\n"
        "  --quiet             no progress line\n"
        "  --log-y             loss plot on a log scale\n");
}

/* ---- small helpers shared with the tests ------------------------------------------------- */
static int parse_i64(const char *flag, const char *s, int64_t lo, int64_t *out) {
    char *end;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo) {
        fprintf(stderr, "dualvla train: %s expects an integer >= %lld, got '%s'\n", flag,
                (long long)lo, s ? s : "(nothing)");
        return -1;
    }
    *out = v;
    return 0;
}

static char *read_text(const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno)); return NULL; }
    size_t cap = 4096, n = 0, r;
    char *buf = malloc(cap + 1);
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) buf = realloc(buf, (cap *= 2) + 1);
        if (n > (1u << 24)) { fclose(f); free(buf); snprintf(err, errlen, "%s: larger than 16 MiB", path); return NULL; }
    }
    fclose(f);
    buf[n] = 0;
    if (strlen(buf) != n) { free(buf); snprintf(err, errlen, "%s: not a text file (NUL byte)", path); return NULL; }
    return buf;
}

/* norms, biases, learned positions / queries / tokens: no weight decay */
static bool dit_no_decay(const char *name, const dv_tensor *t, void *ctx) {
    (void)ctx;
    if (dv_param_no_decay_default(name, t, NULL)) return true;
    const char *last = strrchr(name, '.');
    last = last ? last + 1 : name;
    static const char *tables[] = {"pos", "pos_embed", "cls_token", "latents", "media_pos",
                                   "temp_embed", "gamma", "gamma_v", NULL};
    for (int i = 0; tables[i]; i++)
        if (!strcmp(last, tables[i])) return true;
    return false;
}
/* dv_param_no_decay_default also exempts names containing "embed" (x_embedder, t_embedder
 * are linear layers): decide ourselves for 2-D weights */
static bool dit_no_decay_pred(const char *name, const dv_tensor *t, void *ctx) {
    if (t->ndim >= 2) {
        const char *last = strrchr(name, '.');
        last = last ? last + 1 : name;
        if (!strcmp(last, "weight") && !strstr(name, "norm") && !strstr(name, "ln_") &&
            !strstr(name, "embedding"))
            return false;
    }
    return dit_no_decay(name, t, ctx);
}

typedef struct {
    double mse, l1;          /* specialist's sampled chunks vs ground truth */
    double gen_mse, gen_l1;  /* the stand-in generalist's window, last action held */
    int64_t samples;
} eval_result;

/* held-out action error: the first n samples of the held-out part, sampled with fixed noise
 * and fixed stand-in draws (so evaluations before and after training see the same inputs) */
static int eval_heldout(dv_dit *m, const dv_train_config *c, dv_calvin_loader *ev, int64_t eb,
                        const dv_standin *s, eval_result *r, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    int64_t nb = (c->eval_samples + eb - 1) / eb;
    dv_rng srng = dv_rng_new(c->seed ^ 0x5eed0e7a1ull), nrng = dv_rng_new(c->seed ^ 0x5eed0015eull);
    double se = 0, ae = 0, gse = 0, gae = 0;
    int64_t count = 0;
    int rc = 0;
    DV_NO_GRAD_BEGIN
    for (int64_t i = 0; i < nb && rc == 0; i++) {
        dv_calvin_dit_batch b;
        if (dv_calvin_loader_get(ev, i, &b, err, errlen)) { rc = -1; break; }
        dv_pool pool = {0};
        dv_dit_inputs in;
        if (dv_train_inputs(&c->model, s, &b, &srng, &pool, &in, err, errlen)) {
            rc = -1;
        } else {
            dv_tensor *pred = dv_pool_add(&pool, dv_dit_sample(m, &in, NULL, &nrng));
            dv_tensor *p = dv_pool_add(&pool, dv_tensor_to(pred, DV_DEVICE_CPU)); /* contiguous, host */
            dv_tensor *g = dv_pool_add(&pool, dv_contiguous(b.actions));
            dv_tensor *w = dv_pool_add(&pool, dv_contiguous(in.gen_actions));
            int64_t B = b.B, k = c->model.chunk, A = c->model.action_dim, kg = c->model.gen_chunk;
            const float *pp = dv_data(p), *gg = dv_data(g), *ww = dv_data(w);
            for (int64_t bi = 0; bi < B; bi++) {
                int keep = kg - b.tau[bi] > 0 ? (int)(kg - b.tau[bi]) : 0;
                for (int64_t j = 0; j < k; j++)
                    for (int64_t a = 0; a < A; a++) {
                        double gt = gg[(bi * k + j) * A + a];
                        double d = pp[(bi * k + j) * A + a] - gt;
                        se += d * d, ae += fabs(d);
                        int64_t src = keep ? (j < keep ? j : keep - 1) : -1;
                        double gv = src >= 0 ? ww[(bi * kg + src) * A + a] : 0.0;
                        gse += (gv - gt) * (gv - gt), gae += fabs(gv - gt);
                    }
            }
            count += B * k * A;
            r->samples += B;
        }
        dv_pool_release(&pool);
        dv_calvin_batch_free(DV_CALVIN_DIT, &b);
    }
    DV_NO_GRAD_END
    if (count) r->mse = se / count, r->l1 = ae / count, r->gen_mse = gse / count, r->gen_l1 = gae / count;
    return rc;
}

static void print_eval(const char *when, const char *note, const eval_result *r, const dv_dit_config *cfg) {
    printf("held-out action error %-6s training%s: MSE %.5f  L1 %.5f  (%lld samples, DDIM %d steps, CFG %.3g)\n",
           when, note, r->mse, r->l1, (long long)r->samples, cfg->infer_steps, cfg->cfg_scale);
}

/* "5.8x lower" / "1.02x higher" */
static void ratio_words(double before, double after, char *buf, size_t n) {
    if (!(before > 0) || !(after > 0)) snprintf(buf, n, "n/a");
    else if (after <= before) snprintf(buf, n, "%.*fx lower", before / after < 2 ? 2 : 1, before / after);
    else snprintf(buf, n, "%.*fx higher", after / before < 2 ? 2 : 1, after / before);
}

static int mkdir_p(const char *dir) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) && errno != EEXIST) return -1;
    struct stat sb;
    return stat(buf, &sb) || !S_ISDIR(sb.st_mode) ? -1 : 0;
}

static void write_plot(const char *csv, const char *svg, bool log_y, const char *title) {
    int64_t *st = NULL, n = 0;
    double *lo = NULL;
    char err[512];
    if (dv_loss_csv_read(csv, &st, &lo, &n, err, sizeof err) ||
        dv_loss_svg_write(svg, st, lo, n, log_y, title, err, sizeof err))
        fprintf(stderr, "dualvla train: warning: loss plot not written: %s\n", err);
    free(st), free(lo);
}

/* everything a checkpoint holds, as name -> tensor */
typedef struct {
    dv_ckpt_tensor *t;
    int n, cap;
} ckpt_list;
static void ckpt_add(ckpt_list *l, const char *name, dv_tensor *t) {
    if (l->n == l->cap) l->t = realloc(l->t, sizeof *l->t * (l->cap = l->cap ? 2 * l->cap : 256));
    l->t[l->n++] = (dv_ckpt_tensor){name, t};
}

int dv_cmd_train(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "dit")) {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) { train_usage(stdout); return 0; }
        fprintf(stderr, "dualvla train: expected a model name: 'dualvla train dit ...'%s%s%s\n",
                argc >= 2 ? " (got '" : "", argc >= 2 ? argv[1] : "", argc >= 2 ? "')" : "");
        train_usage(stderr);
        return 2;
    }
    const char *data = NULL, *config = NULL, *preset = NULL, *out = "runs/dit", *rgb = NULL, *device = "cpu";
    int64_t steps = -1, batch = -1, ckpt_every = 1000, seed = -1, threads = 0, stop_at = -1;
    bool resume = false, quiet = false, log_y = false;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDS_VALUE()                                                                   \
    do {                                                                                \
        if (!v) { fprintf(stderr, "dualvla train: %s needs a value\n", a); return 2; }  \
        i++;                                                                            \
    } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { train_usage(stdout); return 0; }
        else if (!strcmp(a, "--data")) { NEEDS_VALUE(); data = v; }
        else if (!strcmp(a, "--config")) { NEEDS_VALUE(); config = v; }
        else if (!strcmp(a, "--preset")) { NEEDS_VALUE(); preset = v; }
        else if (!strcmp(a, "--out")) { NEEDS_VALUE(); out = v; }
        else if (!strcmp(a, "--rgb-encoder")) { NEEDS_VALUE(); rgb = v; }
        else if (!strcmp(a, "--device")) { NEEDS_VALUE(); device = v; }
        else if (!strcmp(a, "--steps")) { NEEDS_VALUE(); if (parse_i64(a, v, 1, &steps)) return 2; }
        else if (!strcmp(a, "--batch")) { NEEDS_VALUE(); if (parse_i64(a, v, 1, &batch)) return 2; }
        else if (!strcmp(a, "--ckpt-every")) { NEEDS_VALUE(); if (parse_i64(a, v, 0, &ckpt_every)) return 2; }
        else if (!strcmp(a, "--seed")) { NEEDS_VALUE(); if (parse_i64(a, v, 0, &seed)) return 2; }
        else if (!strcmp(a, "--threads")) { NEEDS_VALUE(); if (parse_i64(a, v, 1, &threads)) return 2; }
        else if (!strcmp(a, "--stop-at")) { NEEDS_VALUE(); if (parse_i64(a, v, 1, &stop_at)) return 2; }
        else if (!strcmp(a, "--resume")) resume = true;
        else if (!strcmp(a, "--quiet")) quiet = true;
        else if (!strcmp(a, "--log-y")) log_y = true;
        else {
            fprintf(stderr, "dualvla train: unknown option '%s'\n", a);
            train_usage(stderr);
            return 2;
        }
#undef NEEDS_VALUE
    }
    if (!data) { fprintf(stderr, "dualvla train: --data DIR is required\n"); train_usage(stderr); return 2; }
    dv_device dev;
    {
        char derr[512];
        if (dv_session_device(device, &dev, derr, sizeof derr)) { fprintf(stderr, "dualvla train: %s\n", derr); return 2; }
    }

    char err[1024], path[1200], csv_path[1200], svg_path[1200];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", out);
    snprintf(csv_path, sizeof csv_path, "%s/loss.csv", out);
    snprintf(svg_path, sizeof svg_path, "%s/loss.svg", out);

    /* ---- configuration: preset <- config file <- flags; on --resume the checkpoint's ---- */
    dv_train_config cfg;
    char *ck_text = NULL;
    if (resume && dv_ckpt_read_config(path, &ck_text, err, sizeof err)) {
        fprintf(stderr, "dualvla train: --resume: %s\n", err);
        return 1;
    }
    if (preset || config || !resume) {
        if (dv_train_config_preset(&cfg, preset ? preset : "paper", err, sizeof err)) {
            fprintf(stderr, "dualvla train: --preset: %s\n", err);
            free(ck_text);
            return 2;
        }
    } else if (dv_train_config_preset(&cfg, "paper", err, sizeof err) ||
               dv_train_config_parse(&cfg, ck_text, path, err, sizeof err)) {
        fprintf(stderr, "dualvla train: --resume: the checkpoint's config: %s\n", err);
        free(ck_text);
        return 1;
    }
    if (config) {
        char *text = read_text(config, err, sizeof err);
        if (!text || dv_train_config_parse(&cfg, text, config, err, sizeof err)) {
            fprintf(stderr, "dualvla train: --config: %s\n", err);
            free(text), free(ck_text);
            return 2;
        }
        free(text);
    }
    if (steps > 0) cfg.steps = steps;
    if (batch > 0) cfg.batch = batch;
    if (seed >= 0) cfg.seed = (uint64_t)seed;
    bool short_warmup = cfg.warmup_steps > cfg.steps;
    if (short_warmup) cfg.warmup_steps = cfg.steps / 10;   /* a run shorter than the warm-up */
    char *cfg_text = dv_train_config_format(&cfg);
    if (resume) {
        static const char *const ignore[] = {"train.steps", NULL};
        char la[512], lb[512];
        if (dv_train_config_diff(cfg_text, ck_text, ignore, la, lb, sizeof la)) {
            fprintf(stderr, "dualvla train: --resume: this run's config differs from the checkpoint's "
                            "(%s):\n  now:        %s\n  checkpoint: %s\n", path, la, lb);
            free(cfg_text), free(ck_text);
            return 2;
        }
    }
    free(ck_text);
    if (threads > 0) omp_set_num_threads((int)threads);
    if (mkdir_p(out)) {
        fprintf(stderr, "dualvla train: --out %s: cannot create the folder: %s\n", out, strerror(errno));
        free(cfg_text);
        return 1;
    }

    /* ---- data, stand-in, model, optimiser ---------------------------------------------- */
    int rc = 1;
    dv_calvin *d = NULL, *dval = NULL;
    dv_calvin_loader *tl = NULL, *el = NULL;
    dv_standin *standin = NULL;
    dv_dit *m = NULL;
    dv_adamw *opt = NULL;
    dv_ema *ema = NULL;
    dv_params trainable = {0}, decay = {0}, no_decay = {0};
    ckpt_list cl = {0};
    dv_loss_csv csv = {.fd = -1};
    int64_t eb = cfg.eval_samples < 32 ? cfg.eval_samples : 32;

    if (dv_train_open_data(data, &d, &dval, err, sizeof err)) { fprintf(stderr, "dualvla train: %s\n", err); goto done; }
    /* held out: the validation split when there is one (all of it), else a seeded fraction
     * of the training split's annotations (which the training loader then leaves out) */
    dv_train_config tcfg = cfg;
    if (dval) tcfg.holdout = 0.0;
    dv_calvin_loader_opts lo;
    dv_train_loader_opts(&tcfg, false, cfg.batch, &lo);
    if (dv_calvin_loader_new(d, &lo, &tl, err, sizeof err)) { fprintf(stderr, "dualvla train: %s\n", err); goto done; }
    if (eb > 0) {
        dv_train_loader_opts(&tcfg, !dval, eb, &lo);
        if (dv_calvin_loader_new(dval ? dval : d, &lo, &el, err, sizeof err)) {
            fprintf(stderr, "dualvla train: warning: no held-out action error: %s\n", err);
            el = NULL;
        }
    }
    if (dv_standin_new(&cfg.standin, &cfg.model, &standin, err, sizeof err)) {
        fprintf(stderr, "dualvla train: %s\n", err);
        goto done;
    }
    printf("dualvla train dit: preset %s, %lld steps of batch %lld, on %s, %d threads, data %s (%lld training samples per epoch)\n",
           cfg.model.preset, (long long)cfg.steps, (long long)cfg.batch, dv_device_str(dev), omp_get_max_threads(), data,
           (long long)dv_calvin_loader_num_samples(tl));
    dv_standin_describe(standin, stdout);
    if (el)
        printf("held-out samples: %s (%lld per epoch; the action error uses the first %lld)\n",
               dval ? "the validation split" : "annotations held out of the training split by seed",
               (long long)dv_calvin_loader_num_samples(el), (long long)cfg.eval_samples);

    dv_rng init_rng = dv_rng_new(cfg.seed);
    m = dv_dit_new(&cfg.model, &init_rng);
    dv_registry *reg = dv_dit_registry(m);
    if (rgb && !resume && dv_dit_load_rgb_encoder(m, rgb, err, sizeof err)) {
        fprintf(stderr, "dualvla train: --rgb-encoder: %s\n", err);
        goto done;
    }
    if (dev.type != DV_CPU) dv_dit_to(m, dev); /* before the optimiser: its state is made beside each parameter */
    dv_reg_trainable(reg, &trainable);
    if (cfg.no_decay_norms) dv_params_split_decay(&trainable, dit_no_decay_pred, NULL, &decay, &no_decay);
    else for (int i = 0; i < trainable.n; i++) dv_params_add(&decay, trainable.names[i], trainable.tensors[i]);
    opt = dv_adamw_new();
    dv_adamw_config ac = dv_adamw_config_default();
    ac.lr = cfg.lr, ac.weight_decay = cfg.weight_decay;
    if (decay.n) dv_adamw_add_group(opt, &decay, ac);
    ac.weight_decay = 0.0;
    if (no_decay.n) dv_adamw_add_group(opt, &no_decay, ac);
    printf("AdamW lr %.3g, weight decay %.3g on %d tensors (%lld values), none on %d (%lld); warm-up %lld steps then "
           "cosine (%.2g cycles); grad clip %.3g; EMA %s\n",
           cfg.lr, cfg.weight_decay, decay.n, (long long)dv_params_numel(&decay), no_decay.n,
           (long long)dv_params_numel(&no_decay), (long long)cfg.warmup_steps, cfg.cosine_cycles,
           cfg.grad_clip, cfg.ema_decay > 0 ? "on" : "off");
    if (short_warmup)
        printf("note: train.warmup_steps exceeded the %lld steps of this run: warm-up set to %lld "
               "(set train.warmup_steps to choose)\n", (long long)cfg.steps, (long long)cfg.warmup_steps);
    if (cfg.ema_decay > 0) ema = dv_ema_new(&trainable, cfg.ema_decay);
    dv_lr_schedule sched = dv_lr_warmup_cosine(cfg.warmup_steps, cfg.steps);
    sched.num_cycles = cfg.cosine_cycles;
    dv_rng loss_rng = dv_rng_new(cfg.seed ^ 0x1055ull), standin_rng = dv_rng_new(cfg.seed ^ 0x57a4d14ull);

    /* the checkpoint's contents */
    for (int i = 0; i < dv_reg_count(reg); i++) ckpt_add(&cl, dv_reg_name(reg, i), dv_reg_tensor(reg, i));
    const char *const *sn;
    dv_tensor *const *st;
    int ns = dv_adamw_state(opt, &sn, &st);
    for (int i = 0; i < ns; i++) ckpt_add(&cl, sn[i], st[i]);
    if (ema) {
        ns = dv_ema_state(ema, &sn, &st);
        for (int i = 0; i < ns; i++) ckpt_add(&cl, sn[i], st[i]);
    }
    dv_ckpt_rng rngs[2] = {{"loss", &loss_rng}, {"standin", &standin_rng}};
    dv_checkpoint ck = {.step = 0, .tensors = cl.t, .n_tensors = cl.n, .rngs = rngs, .n_rngs = 2,
                        .config = cfg_text};
    int64_t step = 0;
    if (resume) {
        if (dv_checkpoint_load(path, &ck, NULL, err, sizeof err)) {
            fprintf(stderr, "dualvla train: --resume: %s\n", err);
            goto done;
        }
        step = ck.step;
        printf("resumed from %s at step %lld\n", path, (long long)step);
        char src[1300];
        snprintf(src, sizeof src, "restored from %s with every other tensor", path);
        dv_dit_set_rgb_source(m, src);
    }
    dv_dit_print_summary(m, stdout); /* parameters by part, as the paper counts them */
    char cfg_path[1200];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.txt", out);
    if (dv_write_file_atomic(cfg_path, cfg_text, strlen(cfg_text), err, sizeof err)) {
        fprintf(stderr, "dualvla train: %s\n", err);
        goto done;
    }
    if (dv_loss_csv_open(&csv, csv_path, resume ? step : -1, err, sizeof err)) {
        fprintf(stderr, "dualvla train: %s\n", err);
        goto done;
    }

    eval_result before = {0}, after = {0};
    if (el) {
        if (eval_heldout(m, &cfg, el, eb, standin, &before, err, sizeof err)) {
            fprintf(stderr, "dualvla train: held-out evaluation: %s\n", err);
            goto done;
        }
        print_eval("before", resume && step > 0 ? " (resumed run)" : "", &before, &cfg.model);
    }

    /* ---- the loop ------------------------------------------------------------------------ */
    int64_t end = stop_at > 0 && stop_at < cfg.steps ? stop_at : cfg.steps;
    dv_progress prog;
    int every = (int)(cfg.steps / 20 > 0 ? cfg.steps / 20 : 1);
    dv_progress_init(&prog, stdout, step, cfg.steps, cfg.batch, every, false);
    double t0 = dv_now_seconds(), first_loss = NAN, last_loss = NAN, sum_first = 0, sum_last = 0;
    int64_t n_first = 0, n_last = 0, skipped = 0, run_steps = end - step;
    int64_t window = run_steps / 10 > 0 ? run_steps / 10 : 1;
    for (; step < end; step++) {
        dv_calvin_dit_batch b;
        if (dv_calvin_loader_get(tl, step, &b, err, sizeof err)) {
            if (!quiet) dv_progress_end(&prog);
            fprintf(stderr, "dualvla train: step %lld: %s\n", (long long)step, err);
            goto done;
        }
        dv_pool pool = {0};
        dv_dit_inputs in;
        if (dv_train_inputs(&cfg.model, standin, &b, &standin_rng, &pool, &in, err, sizeof err)) {
            dv_pool_release(&pool);
            dv_calvin_batch_free(DV_CALVIN_DIT, &b);
            fprintf(stderr, "dualvla train: step %lld: %s\n", (long long)step, err);
            goto done;
        }
        dv_tensor *loss = dv_pool_add(&pool, dv_dit_loss(m, &in, b.actions, &loss_rng));
        double lv = dv_item(loss);
        dv_backward(loss);
        double gn = cfg.grad_clip > 0 ? dv_clip_grad_norm(&trainable, cfg.grad_clip) : dv_grad_norm(&trainable);
        double lr_scale = dv_lr_schedule_at(&sched, step);
        if (isfinite(gn) && isfinite(lv)) {
            dv_adamw_step(opt, lr_scale);
            if (ema) dv_ema_update(ema);
        } else {
            skipped++;
        }
        dv_optim_zero_grad(&trainable);
        dv_pool_release(&pool);
        dv_calvin_batch_free(DV_CALVIN_DIT, &b);

        int64_t k = step - (end - run_steps);
        if (k < window) sum_first += lv, n_first++;
        if (k >= run_steps - window) sum_last += lv, n_last++;
        if (!isfinite(first_loss)) first_loss = lv;
        last_loss = lv;
        if (dv_loss_csv_append(&csv, step, lv, cfg.lr * lr_scale, gn, dv_now_seconds() - t0, err, sizeof err)) {
            fprintf(stderr, "dualvla train: %s\n", err);
            goto done;
        }
        if (!quiet) dv_progress_update(&prog, step, lv, cfg.lr * lr_scale);
        bool last = step + 1 == end;
        if (last || (ckpt_every > 0 && (step + 1) % ckpt_every == 0)) {
            ck.step = step + 1;
            if (dv_checkpoint_save(path, &ck, err, sizeof err)) {
                if (!quiet) dv_progress_end(&prog);
                fprintf(stderr, "dualvla train: checkpoint: %s\n", err);
                goto done;
            }
            write_plot(csv_path, svg_path, log_y, "DiT specialist: training loss");
        }
    }
    if (!quiet) dv_progress_end(&prog);
    double secs = dv_now_seconds() - t0;
    if (run_steps > 0) {
        printf("trained %lld steps in %.1f s (%.1f samples/s)%s\n", (long long)run_steps, secs,
               run_steps * cfg.batch / (secs > 0 ? secs : 1), skipped ? " — some steps skipped (non-finite)" : "");
        if (skipped) printf("  %lld steps had a non-finite loss or gradient and were skipped\n", (long long)skipped);
        printf("loss: first %.5f, last %.5f; mean of the first %lld steps %.5f, of the last %lld steps %.5f\n",
               first_loss, last_loss, (long long)n_first, sum_first / (n_first ? n_first : 1),
               (long long)n_last, sum_last / (n_last ? n_last : 1));
    }
    printf("checkpoint: %s (step %lld)\nloss log:   %s\nloss plot:  %s\n", path, (long long)ck.step,
           csv_path, svg_path);
    if (step < cfg.steps) printf("stopped at step %lld of %lld: continue with --resume\n", (long long)step, (long long)cfg.steps);

    if (el) {
        if (ema) dv_ema_swap_in(ema);
        int erc = eval_heldout(m, &cfg, el, eb, standin, &after, err, sizeof err);
        if (ema) dv_ema_swap_out(ema);
        if (erc) { fprintf(stderr, "dualvla train: held-out evaluation: %s\n", err); goto done; }
        print_eval("after", ema ? " (EMA weights)" : "", &after, &cfg.model);
        char rm[48], rl[48];
        ratio_words(before.mse, after.mse, rm, sizeof rm);
        ratio_words(before.l1, after.l1, rl, sizeof rl);
        printf("held-out action error: MSE %.5f -> %.5f (%s), L1 %.5f -> %.5f (%s)\n", before.mse,
               after.mse, rm, before.l1, after.l1, rl);
        printf("for reference, the stand-in generalist's own actions (shifted window, last one held): "
               "MSE %.5f  L1 %.5f\n", after.gen_mse, after.gen_l1);
    }
    rc = 0;
done:
    dv_loss_csv_close(&csv);
    free(cl.t);
    if (ema) dv_ema_free(ema);
    if (opt) dv_adamw_free(opt);
    dv_params_free(&decay), dv_params_free(&no_decay), dv_params_free(&trainable);
    if (m) dv_dit_free(m);
    dv_standin_free(standin);
    if (el) dv_calvin_loader_free(el);
    if (tl) dv_calvin_loader_free(tl);
    if (d) dv_calvin_close(d);
    if (dval) dv_calvin_close(dval);
    free(cfg_text);
    return rc;
}
