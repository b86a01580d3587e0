/* tests/test_diffusion.c — noise schedules, DDPM / DDIM samplers and flow matching
 * (nn/diffusion.c, kernels/diffusion.c): reference values of diffusers' schedulers
 * (tests/reference/gen_diffusion.py -> diffusion.bin), full sampling loops with the noise fed
 * from the fixture, gradients of the training-side functions, AVX-512 vs portable kernels,
 * and flow-matching Euler sampling against closed forms. */
#include "kernels/cpu.h"
#include "kernels/diffusion.h"
#include "nn/diffusion.h"
#include "tests/util.h"

#include <stdlib.h>
#include <string.h>

#define FX "tests/reference/diffusion.bin"

static dv_tensor *fx_get(ut_fixture_file *f, const char *fmt, int i, const char *field) {
    char name[128];
    snprintf(name, sizeof name, fmt, i, field);
    return ut_fixture_get(f, name);
}

/* ---- schedules, timesteps, add_noise --------------------------------------------------- */

TEST(diffusion_schedule_fixture) {
    ut_fixture_file *f = ut_fixture_open(FX);
    if (!f) return;
    int n = 0;
    for (int i = 0;; i++, n++) {
        dv_tensor *cfg = fx_get(f, "sched%d.%s", i, "cfg");
        if (!cfg) break;
        dv_noise_schedule s;
        dv_noise_schedule_init(&s, (int64_t)dv_flat_get(cfg, 1), dv_flat_get(cfg, 2), dv_flat_get(cfg, 3),
                               (dv_beta_schedule)(int)dv_flat_get(cfg, 0));
        dv_tensor *betas = fx_get(f, "sched%d.%s", i, "betas"), *ac = fx_get(f, "sched%d.%s", i, "alphas_cumprod");
        int64_t T = s.num_train_timesteps;
        CHECK(dv_numel(betas) == T && dv_numel(ac) == T);
        double eb = 0, ea = 0;
        for (int64_t k = 0; k < T && k < dv_numel(ac); k++) {
            /* relative: alphas_cumprod falls to ~1e-7 at the end of the cosine schedule */
            eb = fmax(eb, fabs(s.betas[k] - dv_flat_get(betas, k)) / fabs(dv_flat_get(betas, k)));
            ea = fmax(ea, fabs(s.alphas_cumprod[k] - dv_flat_get(ac, k)) / fabs(dv_flat_get(ac, k)));
        }
        /* bit-identical: the f32 formulas are the reference's (and PyTorch's) own */
        CHECK_MSG(eb == 0 && ea == 0, "sched%d (kind %g, T %lld): betas rel err %.3g, alphas_cumprod %.3g",
                  i, dv_flat_get(cfg, 0), (long long)T, eb, ea);
        if (dv_test_verbose) printf("  sched%d: betas %.2g alphas_cumprod %.2g\n", i, eb, ea);
        dv_noise_schedule_free(&s);
        dv_release(cfg); dv_release(betas); dv_release(ac);
    }
    CHECK(n >= 7);
    ut_fixture_close(f);
}

TEST(diffusion_timesteps_fixture) {
    ut_fixture_file *f = ut_fixture_open(FX);
    if (!f) return;
    int n = 0;
    for (int i = 0;; i++, n++) {
        dv_tensor *cfg = fx_get(f, "ts%d.%s", i, "cfg");
        if (!cfg) break;
        int64_t T = (int64_t)dv_flat_get(cfg, 0), N = (int64_t)dv_flat_get(cfg, 1);
        dv_timestep_spacing sp = (dv_timestep_spacing)(int)dv_flat_get(cfg, 2);
        int64_t off = (int64_t)dv_flat_get(cfg, 3);
        dv_tensor *ref = fx_get(f, "ts%d.%s", i, "timesteps");
        /* the same through both schedulers' set_timesteps */
        dv_ddpm_config pc = dv_ddpm_config_default();
        pc.num_train_timesteps = T, pc.timestep_spacing = sp, pc.steps_offset = off;
        dv_ddim_config ic = dv_ddim_config_default();
        ic.num_train_timesteps = T, ic.timestep_spacing = sp, ic.steps_offset = off;
        dv_ddpm *p = dv_ddpm_new(&pc);
        dv_ddim *d = dv_ddim_new(&ic);
        dv_ddpm_set_timesteps(p, N);
        dv_ddim_set_timesteps(d, N);
        bool ok = p->num_timesteps == dv_numel(ref) && d->num_timesteps == dv_numel(ref);
        for (int64_t k = 0; ok && k < dv_numel(ref); k++)
            ok = p->timesteps[k] == (int64_t)dv_flat_get(ref, k) && d->timesteps[k] == (int64_t)dv_flat_get(ref, k);
        CHECK_MSG(ok, "ts%d: T %lld N %lld spacing %d offset %lld: timesteps differ (%lld entries, want %lld)", i,
                  (long long)T, (long long)N, (int)sp, (long long)off, (long long)p->num_timesteps,
                  (long long)dv_numel(ref));
        dv_ddpm_free(p);
        dv_ddim_free(d);
        dv_release(cfg); dv_release(ref);
    }
    CHECK(n >= 19);
    ut_fixture_close(f);
}

TEST(diffusion_add_noise_fixture) {
    ut_fixture_file *f = ut_fixture_open(FX);
    if (!f) return;
    for (int i = 0;; i++) {
        dv_tensor *cfg = fx_get(f, "noise%d.%s", i, "cfg");
        if (!cfg) { CHECK(i >= 3); break; }
        dv_noise_schedule s;
        dv_noise_schedule_init(&s, (int64_t)dv_flat_get(cfg, 1), dv_flat_get(cfg, 2), dv_flat_get(cfg, 3),
                               (dv_beta_schedule)(int)dv_flat_get(cfg, 0));
        dv_tensor *x0 = fx_get(f, "noise%d.%s", i, "x0"), *z = fx_get(f, "noise%d.%s", i, "noise");
        dv_tensor *t = fx_get(f, "noise%d.%s", i, "timesteps");
        dv_tensor *want = fx_get(f, "noise%d.%s", i, "noisy"), *wantv = fx_get(f, "noise%d.%s", i, "velocity");
        dv_tensor *y = dv_diffusion_add_noise(&s, x0, z, t), *v = dv_diffusion_velocity(&s, x0, z, t);
        char what[64];
        snprintf(what, sizeof what, "noise%d add_noise", i);
        ut_check_tensor(what, y, want, 1e-6);
        snprintf(what, sizeof what, "noise%d velocity", i);
        ut_check_tensor(what, v, wantv, 1e-6);
        dv_noise_schedule_free(&s);
        dv_release(cfg); dv_release(x0); dv_release(z); dv_release(t); dv_release(want); dv_release(wantv);
        dv_release(y); dv_release(v);
    }
    ut_fixture_close(f);
}

typedef struct { dv_noise_schedule *s; dv_tensor *t; bool velocity; } add_noise_ctx;

static dv_tensor *run_add_noise(dv_tensor **in, void *ctx) {
    add_noise_ctx *c = ctx;
    return c->velocity ? dv_diffusion_velocity(c->s, in[0], in[1], c->t) : dv_diffusion_add_noise(c->s, in[0], in[1], c->t);
}

TEST(diffusion_add_noise_gradcheck) {
    dv_noise_schedule s;
    dv_noise_schedule_init(&s, 100, 1e-4, 0.02, DV_BETA_SQUAREDCOS_CAP_V2);
    dv_tensor *t = dv_from_f64(DV_I64, DV_SHAPE(3), (double[]){0, 50, 99});
    dv_tensor *t1 = dv_from_f64(DV_I32, DV_SHAPE(1), (double[]){17}); /* one timestep for the batch */
    dv_tensor *x0 = ut_randn_leaf(DV_F64, DV_SHAPE(3, 4, 2), 1), *z = ut_randn_leaf(DV_F64, DV_SHAPE(3, 4, 2), 2);
    dv_tensor *x0n = ut_noncontig(x0);
    for (int v = 0; v < 2; v++) {
        add_noise_ctx c = {&s, t, v == 1};
        ut_gradcheck(v ? "velocity" : "add_noise", run_add_noise, (dv_tensor *[]){x0, z}, 2, &c, 1e-7);
        ut_gradcheck(v ? "velocity noncontig" : "add_noise noncontig", run_add_noise, (dv_tensor *[]){x0n, z}, 2, &c, 1e-7);
        add_noise_ctx c1 = {&s, t1, v == 1};
        ut_gradcheck(v ? "velocity one t" : "add_noise one t", run_add_noise, (dv_tensor *[]){x0, z}, 2, &c1, 1e-7);
    }
    /* values: the forward process at t = 0 is nearly x0, and abar^2 + (1 - abar) = 1 holds */
    dv_tensor *y = dv_diffusion_add_noise(&s, x0, z, t);
    double a0 = s.alphas_cumprod[0], a99 = s.alphas_cumprod[99];
    CHECK_CLOSE(dv_flat_get(y, 0), sqrt(a0) * dv_flat_get(x0, 0) + sqrt(1 - a0) * dv_flat_get(z, 0), 1e-12);
    CHECK_CLOSE(dv_flat_get(y, 23), sqrt(a99) * dv_flat_get(x0, 23) + sqrt(1 - a99) * dv_flat_get(z, 23), 1e-12);
    /* zero-size batch */
    dv_tensor *e0 = dv_zeros(DV_F32, DV_SHAPE(0, 4)), *te = dv_zeros(DV_I64, DV_SHAPE(0));
    dv_tensor *ye = dv_diffusion_add_noise(&s, e0, e0, te);
    CHECK(ye->ndim == 2 && dv_numel(ye) == 0);
    dv_release(ye); dv_release(e0); dv_release(te);
    dv_release(y); dv_release(x0); dv_release(x0n); dv_release(z); dv_release(t); dv_release(t1);
    dv_noise_schedule_free(&s);
}

/* ---- full sampling loops against the fixture ------------------------------------------- */

enum { F_KIND, F_T, F_BETA, F_B0, F_B1, F_PRED, F_CLIP, F_CLIP_RANGE, F_SPACING, F_OFFSET, F_N, F_VAR,
       F_ALPHA_ONE, F_ETA, F_USE_CLIPPED, F_W, F_COUNT };

/* one sampler of either kind, configured from a fixture cfg row */
typedef struct { dv_ddpm *ddpm; dv_ddim *ddim; double eta; } sampler;

static sampler sampler_from_cfg(const double *c) {
    sampler s = {0};
    if (c[F_KIND] == 0) {
        dv_ddpm_config pc = dv_ddpm_config_default();
        pc.num_train_timesteps = (int64_t)c[F_T], pc.beta_start = c[F_B0], pc.beta_end = c[F_B1];
        pc.beta_schedule = (dv_beta_schedule)(int)c[F_BETA], pc.prediction_type = (dv_prediction_type)(int)c[F_PRED];
        pc.clip_sample = c[F_CLIP] != 0, pc.clip_sample_range = c[F_CLIP_RANGE];
        pc.timestep_spacing = (dv_timestep_spacing)(int)c[F_SPACING], pc.steps_offset = (int64_t)c[F_OFFSET];
        pc.variance_type = (dv_variance_type)(int)c[F_VAR];
        s.ddpm = dv_ddpm_new(&pc);
        dv_ddpm_set_timesteps(s.ddpm, (int64_t)c[F_N]);
    } else {
        dv_ddim_config ic = dv_ddim_config_default();
        ic.num_train_timesteps = (int64_t)c[F_T], ic.beta_start = c[F_B0], ic.beta_end = c[F_B1];
        ic.beta_schedule = (dv_beta_schedule)(int)c[F_BETA], ic.prediction_type = (dv_prediction_type)(int)c[F_PRED];
        ic.clip_sample = c[F_CLIP] != 0, ic.clip_sample_range = c[F_CLIP_RANGE];
        ic.timestep_spacing = (dv_timestep_spacing)(int)c[F_SPACING], ic.steps_offset = (int64_t)c[F_OFFSET];
        ic.set_alpha_to_one = c[F_ALPHA_ONE] != 0, ic.use_clipped_model_output = c[F_USE_CLIPPED] != 0;
        s.ddim = dv_ddim_new(&ic);
        dv_ddim_set_timesteps(s.ddim, (int64_t)c[F_N]);
        s.eta = c[F_ETA];
    }
    return s;
}

static void sampler_free(sampler *s) { dv_ddpm_free(s->ddpm); dv_ddim_free(s->ddim); }
static int64_t sampler_nsteps(const sampler *s) { return s->ddpm ? s->ddpm->num_timesteps : s->ddim->num_timesteps; }
static int64_t sampler_t(const sampler *s, int64_t k) { return s->ddpm ? s->ddpm->timesteps[k] : s->ddim->timesteps[k]; }

static dv_tensor *sampler_step(sampler *s, dv_tensor *m, int64_t t, dv_tensor *x, dv_tensor *z, dv_tensor **x0) {
    return s->ddpm ? dv_ddpm_step_noise(s->ddpm, m, t, x, z, x0) : dv_ddim_step_noise(s->ddim, m, t, x, s->eta, z, x0);
}

/* Runs loop case i in dtype dt; returns the worst error over every step's x_{t-1} and x0
 * (|a - b| / max(1, |b|)), or -1 when the case does not exist. */
static double run_loop_case(ut_fixture_file *f, int i, dv_dtype dt, double *cfg_out) {
    dv_tensor *cfg = fx_get(f, "loop%d.%s", i, "cfg");
    if (!cfg) return -1;
    double c[F_COUNT];
    dv_to_f64(cfg, c);
    memcpy(cfg_out, c, sizeof c);
    sampler s = sampler_from_cfg(c);
    dv_tensor *xi = fx_get(f, "loop%d.%s", i, "x_init"), *bias = fx_get(f, "loop%d.%s", i, "bias");
    dv_tensor *noise = fx_get(f, "loop%d.%s", i, "noise"), *out = fx_get(f, "loop%d.%s", i, "out");
    dv_tensor *x0s = fx_get(f, "loop%d.%s", i, "x0");
    double worst = 0;
    int64_t S = sampler_nsteps(&s);
    if (S != bias->shape[0]) { dv_test_fail(__FILE__, __LINE__, "loop%d: %lld steps, fixture has %lld", i, (long long)S, (long long)bias->shape[0]); worst = INFINITY; S = 0; }
    dv_tensor *x = dv_cast(xi, dt);
    for (int64_t k = 0; k < S; k++) {
        dv_pool p = {0};
        dv_tensor *bk = dv_pool_add(&p, dv_cast(dv_pool_add(&p, dv_select(bias, 0, k)), dt));
        dv_tensor *zk = dv_pool_add(&p, dv_cast(dv_pool_add(&p, dv_select(noise, 0, k)), dt));
        /* the stand-in model of the generator: m = w * x + bias[k] */
        dv_tensor *m = dv_pool_add(&p, dv_add(dv_pool_add(&p, dv_scale(x, c[F_W])), bk));
        dv_tensor *x0 = NULL;
        dv_tensor *next = sampler_step(&s, m, sampler_t(&s, k), x, zk, &x0);
        dv_pool_add(&p, x0);
        dv_tensor *ro = dv_pool_add(&p, dv_select(out, 0, k)), *rx = dv_pool_add(&p, dv_select(x0s, 0, k));
        worst = fmax(worst, fmax(ut_max_rel_diff(next, ro), ut_max_rel_diff(x0, rx)));
        dv_pool_release(&p);
        free(p.items);
        dv_release(x);
        x = next;
    }
    dv_release(x);
    sampler_free(&s);
    dv_release(cfg); dv_release(xi); dv_release(bias); dv_release(noise); dv_release(out); dv_release(x0s);
    return worst;
}

static const char *const k_beta_names[] = {"linear", "scaled_linear", "squaredcos_cap_v2"};
static const char *const k_pred_names[] = {"epsilon", "sample", "v_prediction"};

static void loops_against_fixture(dv_dtype dt, double tol, const char *label) {
    ut_fixture_file *f = ut_fixture_open(FX);
    if (!f) return;
    int n = 0;
    double all = 0;
    for (int i = 0;; i++, n++) {
        double c[F_COUNT];
        double e = run_loop_case(f, i, dt, c);
        if (e < 0) break;
        all = fmax(all, e);
        CHECK_MSG(e <= tol, "%s loop%d: %s T %g N %g %s %s clip %g (range %g) spacing %g offset %g var %g eta %g: "
                  "max error %.3g > %.3g", label, i, c[F_KIND] == 0 ? "DDPM" : "DDIM", c[F_T], c[F_N],
                  k_beta_names[(int)c[F_BETA]], k_pred_names[(int)c[F_PRED]], c[F_CLIP], c[F_CLIP_RANGE],
                  c[F_SPACING], c[F_OFFSET], c[F_VAR], c[F_ETA], e, tol);
    }
    CHECK(n >= 56);
    if (dv_test_verbose) printf("  %s: %d sampling loops, worst error %.3g\n", label, n, all);
    ut_fixture_close(f);
}

TEST(diffusion_loops_fixture) {
    loops_against_fixture(DV_F32, 5e-6, dv_isa_name(dv_cpu_isa()));
    if (dv_cpu_isa() == DV_ISA_AVX512) { /* and the portable kernel too */
        dv_cpu_set_isa(DV_ISA_PORTABLE);
        loops_against_fixture(DV_F32, 5e-6, "portable");
        dv_cpu_set_isa(DV_ISA_AVX512);
    }
    /* f64 samples (the scalars stay f32, as in diffusers): within f32 rounding of the reference */
    loops_against_fixture(DV_F64, 5e-6, "f64");
}

/* ---- the rng path draws exactly the noise the explicit path is given -------------------- */

TEST(diffusion_rng_path) {
    dv_ddpm_config pc = dv_ddpm_config_default();
    pc.num_train_timesteps = 100, pc.beta_schedule = DV_BETA_SCALED_LINEAR;
    dv_ddpm *p = dv_ddpm_new(&pc);
    dv_ddpm_set_timesteps(p, 10);
    dv_ddim_config ic = dv_ddim_config_default();
    ic.num_train_timesteps = 100, ic.beta_schedule = DV_BETA_SQUAREDCOS_CAP_V2;
    dv_ddim *d = dv_ddim_new(&ic);
    dv_ddim_set_timesteps(d, 5);
    for (int which = 0; which < 3; which++) { /* DDPM; DDIM eta 0.7; DDIM eta 0 */
        dv_rng r1 = dv_rng_new(42), r2 = dv_rng_new(42);
        dv_tensor *x1 = ut_randn(DV_F32, DV_SHAPE(2, 8, 7), 5), *x2 = dv_clone(x1);
        double eta = which == 1 ? 0.7 : 0.0;
        int64_t S = which == 0 ? p->num_timesteps : d->num_timesteps;
        for (int64_t k = 0; k < S; k++) {
            int64_t t = which == 0 ? p->timesteps[k] : d->timesteps[k];
            dv_tensor *m1 = dv_scale(x1, 0.3), *m2 = dv_scale(x2, 0.3);
            dv_tensor *y1, *y2;
            if (which == 0) {
                y1 = dv_ddpm_step(p, m1, t, x1, &r1);
                dv_tensor *z = t > 0 ? dv_randn(&r2, DV_F32, DV_SHAPE(2, 8, 7)) : NULL;
                y2 = dv_ddpm_step_noise(p, m2, t, x2, z, NULL);
                dv_release(z);
            } else {
                y1 = dv_ddim_step(d, m1, t, x1, eta, which == 1 ? &r1 : NULL);
                dv_tensor *z = eta > 0 ? dv_randn(&r2, DV_F32, DV_SHAPE(2, 8, 7)) : NULL;
                y2 = dv_ddim_step_noise(d, m2, t, x2, eta, z, NULL);
                dv_release(z);
            }
            CHECK_MSG(ut_max_rel_diff(y1, y2) == 0, "rng path %d step %lld differs", which, (long long)k);
            dv_release(m1); dv_release(m2); dv_release(x1); dv_release(x2);
            x1 = y1, x2 = y2;
        }
        /* both streams advanced the same (noise drawn only for t > 0 / eta > 0) */
        CHECK(r1.offset == r2.offset);
        if (which == 0) CHECK(r1.offset == (uint64_t)(9 * ((112 + 3) / 4))); /* 9 of 10 steps have t > 0 */
        if (which == 2) CHECK(r1.offset == 0);
        dv_release(x1); dv_release(x2);
    }
    dv_ddpm_free(p);
    dv_ddim_free(d);
}

/* ---- the fused kernel: AVX-512 vs portable, f32 vs f64 ----------------------------------- */

TEST(diffusion_kernel_parity) {
    const int64_t sizes[] = {0, 1, 15, 16, 17, 33, 1000, 70001};
    dv_rng r = dv_rng_new(3);
    for (int si = 0; si < 8; si++) {
        int64_t n = sizes[si];
        dv_tensor *m = dv_randn(&r, DV_F32, DV_SHAPE(n + 1)), *x = dv_randn(&r, DV_F32, DV_SHAPE(n + 1));
        dv_tensor *z = dv_randn(&r, DV_F32, DV_SHAPE(n + 1));
        float *pm = dv_data(m), *px = dv_data(x), *pz = dv_data(z);
        float *o1 = malloc(sizeof(float) * (size_t)(n + 1)), *o2 = malloc(sizeof(float) * (size_t)(n + 1));
        float *q1 = malloc(sizeof(float) * (size_t)(n + 1)), *q2 = malloc(sizeof(float) * (size_t)(n + 1));
        double *dm = malloc(sizeof(double) * (size_t)(n + 1)), *dx = malloc(sizeof(double) * (size_t)(n + 1));
        double *dz = malloc(sizeof(double) * (size_t)(n + 1)), *od = malloc(sizeof(double) * (size_t)(n + 1));
        for (int64_t i = 0; i <= n; i++) dm[i] = pm[i], dx[i] = px[i], dz[i] = pz[i];
        for (int variant = 0; variant < 4; variant++) {
            bool with_noise = variant & 1, with_x0 = variant & 2;
            dv_diffusion_coef c = {.ax = 1.7, .am = -0.9, .clip = variant != 1, .clip_range = 1.1,
                                   .c0 = 0.3, .cx = 0.8, .cm = -0.25, .cz = 0.12};
            o1[n] = o2[n] = 12345.0f; /* the element past the end stays untouched */
            dv_diffusion_step_f32_portable(n, pm, px, with_noise ? pz : NULL, o1, with_x0 ? q1 : NULL, &c);
            dv_diffusion_step_f64_portable(n, dm, dx, with_noise ? dz : NULL, od, NULL, &c);
            double e64 = 0;
            for (int64_t i = 0; i < n; i++) e64 = fmax(e64, fabs(o1[i] - od[i]) / fmax(1.0, fabs(od[i])));
            CHECK_MSG(e64 < 1e-6, "n %lld variant %d: f32 vs f64 %.3g", (long long)n, variant, e64);
#ifndef DV_NO_AVX512
            if (dv_cpu_has_avx512()) {
                dv_diffusion_step_f32_avx512(n, pm, px, with_noise ? pz : NULL, o2, with_x0 ? q2 : NULL, &c);
                double e = 0, ex0 = 0;
                for (int64_t i = 0; i < n; i++) {
                    e = fmax(e, fabs(o1[i] - o2[i]) / fmax(1.0, fabs(o1[i])));
                    if (with_x0) ex0 = fmax(ex0, fabs(q1[i] - q2[i]) / fmax(1.0, fabs(q1[i])));
                }
                CHECK_MSG(e < 1e-6 && ex0 < 1e-6, "n %lld variant %d: avx512 vs portable %.3g (x0 %.3g)",
                          (long long)n, variant, e, ex0);
                CHECK(o2[n] == 12345.0f);
            }
#endif
            CHECK(o1[n] == 12345.0f);
        }
        free(o1); free(o2); free(q1); free(q2); free(dm); free(dx); free(dz); free(od);
        dv_release(m); dv_release(x); dv_release(z);
    }
}

static dv_tensor *run_ddim_step(dv_tensor **in, void *ctx) {
    return dv_ddim_step_noise(ctx, in[0], 40, in[1], 0.5, in[2], NULL);
}

TEST(diffusion_step_parity_and_layout) {
    dv_ddim_config ic = dv_ddim_config_default();
    ic.num_train_timesteps = 100, ic.beta_schedule = DV_BETA_SQUAREDCOS_CAP_V2, ic.prediction_type = DV_PREDICT_V;
    dv_ddim *d = dv_ddim_new(&ic);
    dv_ddim_set_timesteps(d, 10);
    dv_tensor *m = ut_randn(DV_F32, DV_SHAPE(7, 37), 1), *x = ut_randn(DV_F32, DV_SHAPE(7, 37), 2);
    dv_tensor *z = ut_randn(DV_F32, DV_SHAPE(7, 37), 3);
    ut_parity("ddim_step", run_ddim_step, (dv_tensor *[]){m, x, z}, 3, d, 1e-6);
    /* non-contiguous inputs give the contiguous answer */
    dv_tensor *mt = dv_transpose(m, 0, 1), *xt = dv_transpose(x, 0, 1), *zt = dv_transpose(z, 0, 1);
    dv_tensor *mtc = dv_clone(mt), *xtc = dv_clone(xt), *ztc = dv_clone(zt);
    dv_tensor *y1 = run_ddim_step((dv_tensor *[]){mt, xt, zt}, d), *y2 = run_ddim_step((dv_tensor *[]){mtc, xtc, ztc}, d);
    CHECK(ut_max_rel_diff(y1, y2) == 0);
    CHECK(dv_is_contiguous(y1) && y1->shape[0] == 37 && y1->shape[1] == 7);
    /* zero-size */
    dv_tensor *e = dv_zeros(DV_F32, DV_SHAPE(0, 5));
    dv_tensor *ye = dv_ddim_step_noise(d, e, 40, e, 0.5, e, NULL);
    CHECK(dv_numel(ye) == 0 && ye->ndim == 2);
    dv_release(ye); dv_release(e);
    dv_release(y1); dv_release(y2); dv_release(mt); dv_release(xt); dv_release(zt);
    dv_release(mtc); dv_release(xtc); dv_release(ztc);
    dv_release(m); dv_release(x); dv_release(z);
    dv_ddim_free(d);
}

/* A perfect denoiser for data that is one point c: eps = (x - sqrt(abar) c) / sqrt(1 - abar).
 * DDIM with eta 0 then lands on c (x0 = c at every step), whatever the schedule -- exactly in
 * real arithmetic, to f32 rounding here since the step's scalars are f32 like diffusers'. */
TEST(diffusion_ddim_exact_denoiser) {
    for (int sched = 0; sched < 3; sched++) {
        dv_ddim_config ic = dv_ddim_config_default();
        ic.num_train_timesteps = 100, ic.beta_schedule = (dv_beta_schedule)sched, ic.clip_sample = false;
        dv_ddim *d = dv_ddim_new(&ic);
        dv_ddim_set_timesteps(d, 5);
        dv_tensor *c = ut_randn(DV_F64, DV_SHAPE(3, 4), 10), *x = ut_randn(DV_F64, DV_SHAPE(3, 4), 11);
        for (int64_t k = 0; k < d->num_timesteps; k++) {
            int64_t t = d->timesteps[k];
            double a = d->sched.alphas_cumprod[t];
            dv_tensor *sc = dv_scale(c, sqrt(a)), *diff = dv_sub(x, sc), *eps = dv_scale(diff, 1.0 / sqrt(1 - a));
            dv_tensor *next = dv_ddim_step(d, eps, t, x, 0.0, NULL);
            dv_release(sc); dv_release(diff); dv_release(eps); dv_release(x);
            x = next;
        }
        CHECK_MSG(ut_max_rel_diff(x, c) < 1e-6, "schedule %d: DDIM did not land on the data point (%.3g)", sched,
                  ut_max_rel_diff(x, c));
        dv_release(c); dv_release(x);
        dv_ddim_free(d);
    }
}

/* ---- bad calls ---------------------------------------------------------------------------- */

static void bad_shape(void *ctx) {
    dv_ddpm_config pc = dv_ddpm_config_default();
    dv_ddpm *p = dv_ddpm_new(&pc);
    dv_tensor *a = dv_zeros(DV_F32, DV_SHAPE(2, 3)), *b = dv_zeros(DV_F32, DV_SHAPE(3, 2));
    dv_ddpm_step_noise(p, a, 0, b, NULL, NULL);
}
static void ddim_no_timesteps(void *ctx) {
    dv_ddim_config ic = dv_ddim_config_default();
    dv_ddim *d = dv_ddim_new(&ic);
    dv_tensor *a = dv_zeros(DV_F32, DV_SHAPE(2));
    dv_ddim_step(d, a, 10, a, 0.0, NULL);
}
static void ddpm_t_not_in_schedule(void *ctx) {
    dv_ddpm_config pc = dv_ddpm_config_default();
    pc.num_train_timesteps = 100;
    dv_ddpm *p = dv_ddpm_new(&pc);
    dv_ddpm_set_timesteps(p, 10);
    dv_tensor *a = dv_zeros(DV_F32, DV_SHAPE(2));
    dv_ddpm_step_noise(p, a, 55, a, a, NULL);
}
static void too_many_steps(void *ctx) {
    dv_ddpm_config pc = dv_ddpm_config_default();
    pc.num_train_timesteps = 100;
    dv_ddpm *p = dv_ddpm_new(&pc);
    dv_ddpm_set_timesteps(p, 101);
}
static void ddpm_noise_missing(void *ctx) {
    dv_ddpm_config pc = dv_ddpm_config_default();
    dv_ddpm *p = dv_ddpm_new(&pc);
    dv_tensor *a = dv_zeros(DV_F32, DV_SHAPE(2));
    dv_ddpm_step(p, a, 5, a, NULL);
}
static void add_noise_bad_batch(void *ctx) {
    dv_noise_schedule s;
    dv_noise_schedule_init(&s, 100, 1e-4, 0.02, DV_BETA_LINEAR);
    dv_tensor *x = dv_zeros(DV_F32, DV_SHAPE(4, 3)), *t = dv_zeros(DV_I64, DV_SHAPE(3));
    dv_diffusion_add_noise(&s, x, x, t);
}
static void add_noise_bad_t(void *ctx) {
    dv_noise_schedule s;
    dv_noise_schedule_init(&s, 100, 1e-4, 0.02, DV_BETA_LINEAR);
    dv_tensor *x = dv_zeros(DV_F32, DV_SHAPE(2, 3)), *t = dv_from_f64(DV_I64, DV_SHAPE(2), (double[]){3, 100});
    dv_diffusion_add_noise(&s, x, x, t);
}

TEST(diffusion_bad_calls) {
    ut_aborts_with(bad_shape, NULL, "ddpm_step: shape mismatch (2, 3) vs (3, 2)");
    ut_aborts_with(ddim_no_timesteps, NULL, "ddim_step: call dv_ddim_set_timesteps first");
    ut_aborts_with(ddpm_t_not_in_schedule, NULL, "timestep 55 is not one of the 10 inference timesteps");
    ut_aborts_with(too_many_steps, NULL, "num_inference_steps 101 must be in [1, num_train_timesteps 100]");
    ut_aborts_with(ddpm_noise_missing, NULL, "rng is NULL");
    ut_aborts_with(add_noise_bad_batch, NULL, "3 timesteps for a batch of shape (4, 3)");
    ut_aborts_with(add_noise_bad_t, NULL, "timestep 100 outside [0, 100)");
}

/* ---- flow matching ------------------------------------------------------------------------ */

/* the exact velocity toward one data point c along straight lines: v = (c - x) / (1 - t) */
static dv_tensor *toward_point(dv_tensor *x, double t, void *ctx) {
    dv_tensor *d = dv_sub(ctx, x);
    dv_tensor *v = dv_scale(d, 1.0 / (1.0 - t));
    dv_release(d);
    return v;
}
static dv_tensor *linear_field(dv_tensor *x, double t, void *ctx) { return dv_scale(x, *(double *)ctx); }

TEST(flow_euler_closed_form) {
    /* Straight-line flow: Euler is exact, x_k = (1 - t_k) x0 + t_k c, and after the last step x = c. */
    dv_tensor *x0 = ut_randn(DV_F64, DV_SHAPE(2, 5, 3), 1), *c = ut_randn(DV_F64, DV_SHAPE(2, 5, 3), 2);
    for (int n = 1; n <= 16; n *= 4) {
        dv_tensor *y = dv_flow_euler_sample(x0, n, toward_point, c);
        CHECK_MSG(ut_max_rel_diff(y, c) < 1e-12, "n %d: %.3g", n, ut_max_rel_diff(y, c));
        dv_release(y);
    }
    /* halfway along, one step of dt = 1/2 from x0 reaches the interpolant at t = 1/2 */
    dv_tensor *v = toward_point(x0, 0.0, c), *half = dv_flow_euler_step(x0, v, 0.5);
    dv_tensor *th = dv_scalar(DV_F64, 0.5), *want = dv_flow_interpolate(x0, c, th);
    CHECK(ut_max_rel_diff(half, want) < 1e-14);
    /* linear field dx/dt = a x: n Euler steps give (1 + a/n)^n x0 */
    double a = -0.7;
    dv_tensor *y = dv_flow_euler_sample(x0, 10, linear_field, &a);
    dv_tensor *ref = dv_scale(x0, pow(1 + a / 10, 10));
    CHECK(ut_max_rel_diff(y, ref) < 1e-14);
    /* and f32 through the AVX-512 / portable kernel */
    dv_tensor *x32 = dv_cast(x0, DV_F32), *y32 = dv_flow_euler_sample(x32, 10, linear_field, &a);
    CHECK(ut_max_rel_diff(y32, ref) < 1e-5);
    dv_release(x32); dv_release(y32);
    dv_release(y); dv_release(ref); dv_release(v); dv_release(half); dv_release(th); dv_release(want);
    dv_release(x0); dv_release(c);
}

static dv_tensor *run_interp(dv_tensor **in, void *ctx) { return dv_flow_interpolate(in[0], in[1], in[2]); }
static dv_tensor *run_velocity(dv_tensor **in, void *ctx) { return dv_flow_velocity(in[0], in[1]); }

TEST(flow_interpolate_gradcheck) {
    dv_tensor *x0 = ut_randn_leaf(DV_F64, DV_SHAPE(3, 4, 2), 1), *x1 = ut_randn_leaf(DV_F64, DV_SHAPE(3, 4, 2), 2);
    dv_tensor *t = dv_from_f64(DV_F64, DV_SHAPE(3), (double[]){0.1, 0.5, 0.9});
    dv_set_requires_grad(t, true);
    dv_tensor *ts = dv_scalar(DV_F64, 0.25);
    dv_set_requires_grad(ts, true);
    ut_gradcheck("flow_interpolate", run_interp, (dv_tensor *[]){x0, x1, t}, 3, NULL, 1e-7);
    dv_tensor *x0n = ut_noncontig(x0);
    ut_gradcheck("flow_interpolate noncontig", run_interp, (dv_tensor *[]){x0n, x1, ts}, 3, NULL, 1e-7);
    ut_gradcheck("flow_velocity", run_velocity, (dv_tensor *[]){x0, x1}, 2, NULL, 1e-7);
    /* values: per batch element, at its own t; the ends are x0 and x1 */
    dv_tensor *y = dv_flow_interpolate(x0, x1, t);
    for (int64_t i = 0; i < 24; i++) {
        double tt = i < 8 ? 0.1 : (i < 16 ? 0.5 : 0.9);
        CHECK_CLOSE(dv_flat_get(y, i), (1 - tt) * dv_flat_get(x0, i) + tt * dv_flat_get(x1, i), 1e-15);
    }
    dv_tensor *t0 = dv_scalar(DV_F64, 0.0), *t1 = dv_scalar(DV_F64, 1.0);
    dv_tensor *y0 = dv_flow_interpolate(x0, x1, t0), *y1 = dv_flow_interpolate(x0, x1, t1);
    CHECK(ut_max_rel_diff(y0, x0) == 0 && ut_max_rel_diff(y1, x1) == 0);
    dv_release(y); dv_release(y0); dv_release(y1); dv_release(t0); dv_release(t1);
    dv_release(x0); dv_release(x1); dv_release(x0n); dv_release(t); dv_release(ts);
}
