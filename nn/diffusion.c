/* nn/diffusion.c — noise schedules, DDPM and DDIM samplers, flow matching (API and the
 * papers in nn/diffusion.h).
 *
 * Every sampler step comes down to a handful of scalars per step and one fused pass over the
 * elements (kernels/diffusion.h):
 *
 *   x0  = ax * x_t + am * m          m = model output; (ax, am) by prediction type, below
 *   x0c = clamp(x0, +-clip_range)
 *   out = c0 * x0c + cx * x_t + cm * m + cz * z
 *
 * With abar = abar_t, sa = sqrt(abar), sb = sqrt(1 - abar), the prediction types are
 *   epsilon  m = eps:  x0 = (x - sb m) / sa         eps = m
 *   sample   m = x0:   x0 = m                        eps = (x - sa m) / sb
 *   v        m = v:    x0 = sa x - sb m              eps = sa m + sb x
 * (all from x_t = sa x0 + sb eps and v = sa eps - sb x0). DDPM then uses (c0, cx) = the
 * posterior-mean weights of x0 and x_t; DDIM uses c0 = sqrt(abar_prev) and puts its eps
 * direction into (cx, cm).
 *
 * The schedule and the per-step scalars are computed in f32, one rounding per operation, in
 * the order the equations are written -- the way diffusers computes them from its f32 tensors.
 * Double would be more accurate but not closer to the models we port: beta = 1 - abar_t /
 * abar_prev cancels badly at small t, and a 100-step DDPM run lands ~4e-5 away from
 * diffusers' when that one scalar is computed in double. The combined coefficients (cx, cm
 * below) are formed in double from those f32 values.
 */
#include "nn/diffusion.h"

#include "kernels/diffusion.h"
#include "tensor/cuda.h"
#include "tensor/internal.h"
#include "tensor/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- noise schedule ---------------------------------------------------------------------- */

/* linspace(a, b, n)[i] in f32 as PyTorch's CPU kernel computes it (every operation rounded to
 * f32): step = (b - a) / (n - 1), the first n / 2 points counted up from a, the rest down from
 * b. The product goes through a volatile so no compiler fuses it into an FMA (one rounding
 * fewer would move the betas by an ulp; see dv_ddpm_step_noise for why ulps matter here). */
static float linspace_f32(double a64, double b64, int64_t n, int64_t i) {
    float a = (float)a64, b = (float)b64;
    if (n == 1) return a;
    float step = (b - a) / (float)(n - 1);
    volatile float p = step * (float)(i < n / 2 ? i : n - 1 - i);
    return i < n / 2 ? a + p : b - p;
}

/* the cosine schedule's abar(s), s in [0, 1] (Nichol & Dhariwal 2021, eq. 17, offset 0.008) */
static double cosine_alpha_bar(double s) {
    double c = cos((s + 0.008) / 1.008 * M_PI / 2);
    return c * c;
}

void dv_noise_schedule_init(dv_noise_schedule *s, int64_t T, double beta_start, double beta_end,
                            dv_beta_schedule kind) {
    DV_ASSERT(T >= 1, "noise_schedule: num_train_timesteps %lld < 1", (long long)T);
    s->num_train_timesteps = T;
    s->betas = malloc((size_t)T * sizeof(float));
    s->alphas = malloc((size_t)T * sizeof(float));
    s->alphas_cumprod = malloc((size_t)T * sizeof(float));
    DV_ASSERT(s->betas && s->alphas && s->alphas_cumprod, "noise_schedule: out of memory (T %lld)", (long long)T);
    for (int64_t i = 0; i < T; i++) {
        switch (kind) {
        case DV_BETA_LINEAR:
            s->betas[i] = linspace_f32(beta_start, beta_end, T, i);
            break;
        case DV_BETA_SCALED_LINEAR: { /* f32 linspace of the square roots, squared in f32 */
            float r = linspace_f32(pow(beta_start, 0.5), pow(beta_end, 0.5), T, i);
            s->betas[i] = r * r;
            break;
        }
        case DV_BETA_SQUAREDCOS_CAP_V2: {
            double b = 1.0 - cosine_alpha_bar((double)(i + 1) / (double)T) / cosine_alpha_bar((double)i / (double)T);
            s->betas[i] = (float)(b < 0.999 ? b : 0.999);
            break;
        }
        default:
            dv_panic("noise_schedule: unknown beta schedule %d", (int)kind);
        }
    }
    /* alphas in f32; the running product in double, each prefix rounded to f32 (what
     * torch.cumprod does on the CPU) */
    double prod = 1.0;
    for (int64_t i = 0; i < T; i++) {
        s->alphas[i] = 1.0f - s->betas[i];
        prod *= (double)s->alphas[i];
        s->alphas_cumprod[i] = (float)prod;
    }
}

void dv_noise_schedule_free(dv_noise_schedule *s) {
    free(s->betas);
    free(s->alphas);
    free(s->alphas_cumprod);
    memset(s, 0, sizeof *s);
}

/* ---- forward process (training side) ----------------------------------------------------- */

/* per-batch sqrt(abar_t) (one_minus = false) or sqrt(1 - abar_t), shaped (B, 1, ..., 1) to
 * broadcast against x, in x's dtype. 1 - abar is rounded to x's dtype before the square root,
 * as a PyTorch f32 computation does. */
static dv_tensor *per_batch_coef(const char *op, const dv_noise_schedule *s, const dv_tensor *x,
                                 dv_tensor *timesteps, bool one_minus) {
    int64_t B = dv_numel(timesteps);
    if (timesteps->dtype != DV_I32 && timesteps->dtype != DV_I64)
        dv_panic("%s: timesteps must be i32 or i64, got %s", op, dv_dtype_name(timesteps->dtype));
    if (B != 1 && (x->ndim == 0 || x->shape[0] != B))
        dv_panic("%s: %lld timesteps for a batch of shape %s (want one per element of dim 0, or one)",
                 op, (long long)B, dv_shape_str(x, NULL, 0));
    int64_t shape[DV_MAX_DIMS];
    int nd = x->ndim > 0 ? x->ndim : 1;
    for (int d = 0; d < nd; d++) shape[d] = 1;
    shape[0] = B;
    double *v = malloc((size_t)(B > 0 ? B : 1) * sizeof(double));
    dv_tensor *th = timesteps->device.type == DV_CPU ? dv_retain(timesteps)   /* read on the host */
                                                      : dv_tensor_to(timesteps, DV_DEVICE_CPU);
    for (int64_t b = 0; b < B; b++) {
        double tv = dv_flat_get(th, b);
        if (!(tv >= 0 && tv < (double)s->num_train_timesteps))
            dv_panic("%s: timestep %g outside [0, %lld)", op, tv, (long long)s->num_train_timesteps);
        double a = s->alphas_cumprod[(int64_t)tv];
        if (one_minus) a = x->dtype == DV_F32 ? (double)(float)(1.0 - a) : 1.0 - a;
        v[b] = sqrt(a);
    }
    dv_release(th);
    dv_tensor *c = dv_from_f64(x->dtype, shape, x->ndim > 0 ? x->ndim : 0, v);
    free(v);
    if (x->device.type != DV_CPU) { /* host arithmetic on the schedule; the result joins x */
        dv_tensor *d = dv_tensor_to(c, x->device);
        dv_release(c);
        c = d;
    }
    return c;
}

static dv_tensor *coef_combine(const char *op, const dv_noise_schedule *s, dv_tensor *a_on,
                               dv_tensor *b_on, dv_tensor *x_for_shape, dv_tensor *timesteps, bool sub) {
    dv_check_float(op, a_on);
    dv_check_float(op, b_on);
    dv_check_same_shape(op, a_on, b_on);
    if (a_on->dtype != b_on->dtype)
        dv_panic("%s: dtypes differ (%s vs %s)", op, dv_dtype_name(a_on->dtype), dv_dtype_name(b_on->dtype));
    dv_tensor *sa = per_batch_coef(op, s, x_for_shape, timesteps, false);
    dv_tensor *sb = per_batch_coef(op, s, x_for_shape, timesteps, true);
    dv_tensor *p = dv_mul(sa, a_on), *q = dv_mul(sb, b_on);
    dv_tensor *y = sub ? dv_sub(p, q) : dv_add(p, q);
    dv_release(sa); dv_release(sb); dv_release(p); dv_release(q);
    return y;
}

dv_tensor *dv_diffusion_add_noise(const dv_noise_schedule *s, dv_tensor *x0, dv_tensor *noise,
                                  dv_tensor *timesteps) {
    /* sqrt(abar) x0 + sqrt(1 - abar) noise */
    return coef_combine("diffusion_add_noise", s, x0, noise, x0, timesteps, false);
}

dv_tensor *dv_diffusion_velocity(const dv_noise_schedule *s, dv_tensor *x0, dv_tensor *noise,
                                 dv_tensor *timesteps) {
    /* sqrt(abar) noise - sqrt(1 - abar) x0 */
    return coef_combine("diffusion_velocity", s, noise, x0, x0, timesteps, true);
}

/* ---- inference timesteps ----------------------------------------------------------------- */

int64_t dv_diffusion_timesteps(int64_t T, int64_t N, dv_timestep_spacing spacing,
                               int64_t steps_offset, int64_t *out) {
    if (N < 1 || N > T)
        dv_panic("diffusion_timesteps: num_inference_steps %lld must be in [1, num_train_timesteps %lld]",
                 (long long)N, (long long)T);
    switch (spacing) {
    case DV_SPACING_LEADING: {
        int64_t ratio = T / N;
        for (int64_t i = 0; i < N; i++) out[i] = (N - 1 - i) * ratio + steps_offset;
        return N;
    }
    case DV_SPACING_TRAILING: {
        /* numpy's arange(T, 0, -T/N): length ceil(T / step); element 1 is T - step and
         * element i >= 2 is T + i * ((T - step) - T). Then round half to even (rint), minus 1. */
        double step = (double)T / (double)N;
        int64_t len = (int64_t)ceil((double)T / step);
        double v1 = (double)T - step, delta = v1 - (double)T;
        for (int64_t i = 0; i < len; i++) {
            double v = i == 0 ? (double)T : (i == 1 ? v1 : (double)T + (double)i * delta);
            out[i] = (int64_t)rint(v) - 1;
        }
        return len;
    }
    case DV_SPACING_LINSPACE: {
        /* numpy's linspace(0, T-1, N): i * ((T-1) / (N-1)), the last point exactly T-1;
         * rounded half to even, then reversed */
        for (int64_t i = 0; i < N; i++) {
            double v = N == 1 ? 0.0 : (i == N - 1 ? (double)(T - 1) : (double)i * ((double)(T - 1) / (double)(N - 1)));
            out[N - 1 - i] = (int64_t)rint(v);
        }
        return N;
    }
    default:
        dv_panic("diffusion_timesteps: unknown spacing %d", (int)spacing);
    }
}

/* ---- the fused step, shared by every sampler --------------------------------------------- */

/* x0 = ax x + am m and eps = ex x + em m for a prediction type at abar (see the top) */
static void prediction_coefs(dv_prediction_type p, float abar, double *ax, double *am, double *ex, double *em) {
    double sa = sqrtf(abar), sb = sqrtf(1.0f - abar); /* f32 square roots, as diffusers takes them */
    switch (p) {
    case DV_PREDICT_EPSILON: *ax = 1.0 / sa; *am = -sb / sa; *ex = 0.0; *em = 1.0; break;
    case DV_PREDICT_SAMPLE:  *ax = 0.0; *am = 1.0; *ex = 1.0 / sb; *em = -sa / sb; break;
    case DV_PREDICT_V:       *ax = sa; *am = -sb; *ex = sb; *em = sa; break;
    default: dv_panic("diffusion: unknown prediction type %d", (int)p);
    }
}

/* out (and optionally pred_x0) from the coefficients; checks the tensors. noise may be NULL
 * (no noise term). The result carries no autograd graph. */
static dv_tensor *fused_step(const char *op, dv_tensor *model_output, dv_tensor *sample, dv_tensor *noise,
                             const dv_diffusion_coef *c, dv_tensor **pred_x0) {
    dv_check_float(op, sample);
    dv_check_float(op, model_output);
    dv_require_kernel(op, sample);
    dv_check_same_device(op, model_output, sample);
    dv_check_same_shape(op, model_output, sample);
    if (model_output->dtype != sample->dtype)
        dv_panic("%s: dtypes differ (model_output %s %s vs sample %s %s)", op, dv_dtype_name(model_output->dtype),
                 dv_shape_str(model_output, NULL, 0), dv_dtype_name(sample->dtype), dv_shape_str(sample, NULL, 0));
    if (noise) {
        dv_check_same_device(op, noise, sample);
        dv_check_same_shape(op, noise, sample);
        if (noise->dtype != sample->dtype)
            dv_panic("%s: noise dtype %s vs sample %s", op, dv_dtype_name(noise->dtype), dv_dtype_name(sample->dtype));
    }
    dv_tensor *mc, *xc, *zc = NULL;
    DV_NO_GRAD_BEGIN
    mc = dv_contiguous(model_output);
    xc = dv_contiguous(sample);
    if (noise) zc = dv_contiguous(noise);
    DV_NO_GRAD_END
    dv_tensor *y = dv_empty_like(sample);
    dv_tensor *x0 = pred_x0 ? dv_empty_like(sample) : NULL;
    int64_t n = dv_numel(sample);
    if (dv_backend_of(sample) == DV_BACKEND_CUDA)
        dv_cuda_diffusion_step(mc, xc, zc, y, x0, c);
    else if (sample->dtype == DV_F64)
        dv_diffusion_step_f64_portable(n, dv_data(mc), dv_data(xc), zc ? dv_data(zc) : NULL, dv_data(y),
                                       x0 ? dv_data(x0) : NULL, c);
#ifndef DV_NO_AVX512
    else if (dv_backend_of(sample) == DV_BACKEND_AVX512)
        dv_diffusion_step_f32_avx512(n, dv_data(mc), dv_data(xc), zc ? dv_data(zc) : NULL, dv_data(y),
                                     x0 ? dv_data(x0) : NULL, c);
#endif
    else
        dv_diffusion_step_f32_portable(n, dv_data(mc), dv_data(xc), zc ? dv_data(zc) : NULL, dv_data(y),
                                       x0 ? dv_data(x0) : NULL, c);
    dv_release(mc);
    dv_release(xc);
    dv_release(zc);
    if (pred_x0) *pred_x0 = x0;
    return y;
}

static void check_t(const char *op, int64_t t, int64_t T) {
    if (t < 0 || t >= T) dv_panic("%s: timestep %lld outside [0, %lld)", op, (long long)t, (long long)T);
}

/* ---- DDPM -------------------------------------------------------------------------------- */

dv_ddpm_config dv_ddpm_config_default(void) {
    return (dv_ddpm_config){
        .num_train_timesteps = 1000, .beta_start = 0.0001, .beta_end = 0.02,
        .beta_schedule = DV_BETA_LINEAR, .variance_type = DV_VARIANCE_FIXED_SMALL,
        .clip_sample = true, .clip_sample_range = 1.0, .prediction_type = DV_PREDICT_EPSILON,
        .timestep_spacing = DV_SPACING_LEADING, .steps_offset = 0,
    };
}

dv_ddpm *dv_ddpm_new(const dv_ddpm_config *cfg) {
    dv_ddpm *s = calloc(1, sizeof *s);
    DV_ASSERT(s, "ddpm_new: out of memory");
    s->cfg = *cfg;
    dv_noise_schedule_init(&s->sched, cfg->num_train_timesteps, cfg->beta_start, cfg->beta_end, cfg->beta_schedule);
    /* before set_timesteps: every training step, T-1 down to 0 */
    int64_t T = cfg->num_train_timesteps;
    s->timesteps = malloc((size_t)(T + 1) * sizeof(int64_t));
    DV_ASSERT(s->timesteps, "ddpm_new: out of memory");
    for (int64_t i = 0; i < T; i++) s->timesteps[i] = T - 1 - i;
    s->num_timesteps = T;
    return s;
}

void dv_ddpm_free(dv_ddpm *s) {
    if (!s) return;
    dv_noise_schedule_free(&s->sched);
    free(s->timesteps);
    free(s);
}

void dv_ddpm_set_timesteps(dv_ddpm *s, int64_t num_inference_steps) {
    /* timesteps has room for T + 1 >= N + 1 entries */
    s->num_timesteps = dv_diffusion_timesteps(s->cfg.num_train_timesteps, num_inference_steps,
                                              s->cfg.timestep_spacing, s->cfg.steps_offset, s->timesteps);
    s->num_inference_steps = num_inference_steps;
}

/* the entry after t in the timesteps, or -1 after the last */
static int64_t ddpm_prev(const dv_ddpm *s, int64_t t) {
    for (int64_t i = 0; i < s->num_timesteps; i++)
        if (s->timesteps[i] == t) return i + 1 < s->num_timesteps ? s->timesteps[i + 1] : -1;
    dv_panic("ddpm_step: timestep %lld is not one of the %lld inference timesteps", (long long)t,
             (long long)s->num_timesteps);
}

dv_tensor *dv_ddpm_step_noise(dv_ddpm *s, dv_tensor *model_output, int64_t t, dv_tensor *sample,
                              dv_tensor *noise, dv_tensor **pred_x0) {
    check_t("ddpm_step", t, s->cfg.num_train_timesteps);
    int64_t prev = ddpm_prev(s, t);
    /* The scalars are f32, each operation rounded, as diffusers computes them from its f32
     * alphas_cumprod. This is not pedantry: beta = 1 - abar_t / abar_prev cancels (to ~1e-4 at
     * the first steps of a 100-step schedule), so computing it in double instead moves a 100-step
     * trajectory by ~4e-5 away from diffusers'. */
    float a_t = s->sched.alphas_cumprod[t];
    float a_prev = prev >= 0 ? s->sched.alphas_cumprod[prev] : 1.0f;
    float b_t = 1.0f - a_t, b_prev = 1.0f - a_prev;
    float alpha = a_t / a_prev, beta = 1.0f - alpha; /* one step of the inference chain */
    dv_diffusion_coef c = {0};
    double ex, em;
    prediction_coefs(s->cfg.prediction_type, a_t, &c.ax, &c.am, &ex, &em);
    c.clip = s->cfg.clip_sample;
    c.clip_range = s->cfg.clip_sample_range;
    /* posterior mean, DDPM eq. 7 */
    c.c0 = sqrtf(a_prev) * beta / b_t;
    c.cx = sqrtf(alpha) * b_prev / b_t;
    if (t > 0) {
        float var = b_prev / b_t * beta; /* posterior variance beta~ */
        if (var < 1e-20f) var = 1e-20f;
        switch (s->cfg.variance_type) {
        case DV_VARIANCE_FIXED_SMALL: c.cz = sqrtf(var); break;
        case DV_VARIANCE_FIXED_SMALL_LOG: c.cz = expf(0.5f * logf(var)); break;
        case DV_VARIANCE_FIXED_LARGE: c.cz = sqrtf(beta); break;
        default: dv_panic("ddpm_step: unknown variance type %d", (int)s->cfg.variance_type);
        }
        if (!noise) dv_panic("ddpm_step: t = %lld > 0 adds noise, but noise is NULL", (long long)t);
    } else {
        noise = NULL; /* the last step adds no noise */
    }
    return fused_step("ddpm_step", model_output, sample, noise, &c, pred_x0);
}

dv_tensor *dv_ddpm_step(dv_ddpm *s, dv_tensor *model_output, int64_t t, dv_tensor *sample, dv_rng *rng) {
    dv_tensor *noise = NULL;
    if (t > 0) {
        if (!rng) dv_panic("ddpm_step: t = %lld > 0 draws noise, but rng is NULL", (long long)t);
        dv_check_float("ddpm_step", sample);
        noise = dv_empty_like(sample); /* drawn where sample lives: the same numbers on CPU and CUDA */
        dv_rng_fill_normal(rng, noise, 0.0, 1.0);
    }
    dv_tensor *y = dv_ddpm_step_noise(s, model_output, t, sample, noise, NULL);
    dv_release(noise);
    return y;
}

/* ---- DDIM -------------------------------------------------------------------------------- */

dv_ddim_config dv_ddim_config_default(void) {
    return (dv_ddim_config){
        .num_train_timesteps = 1000, .beta_start = 0.0001, .beta_end = 0.02,
        .beta_schedule = DV_BETA_LINEAR, .clip_sample = true, .clip_sample_range = 1.0,
        .set_alpha_to_one = true, .steps_offset = 0, .prediction_type = DV_PREDICT_EPSILON,
        .timestep_spacing = DV_SPACING_LEADING, .use_clipped_model_output = false,
    };
}

dv_ddim *dv_ddim_new(const dv_ddim_config *cfg) {
    dv_ddim *s = calloc(1, sizeof *s);
    DV_ASSERT(s, "ddim_new: out of memory");
    s->cfg = *cfg;
    dv_noise_schedule_init(&s->sched, cfg->num_train_timesteps, cfg->beta_start, cfg->beta_end, cfg->beta_schedule);
    int64_t T = cfg->num_train_timesteps;
    s->timesteps = malloc((size_t)(T + 1) * sizeof(int64_t));
    DV_ASSERT(s->timesteps, "ddim_new: out of memory");
    for (int64_t i = 0; i < T; i++) s->timesteps[i] = T - 1 - i;
    s->num_timesteps = T;
    return s;
}

void dv_ddim_free(dv_ddim *s) {
    if (!s) return;
    dv_noise_schedule_free(&s->sched);
    free(s->timesteps);
    free(s);
}

void dv_ddim_set_timesteps(dv_ddim *s, int64_t num_inference_steps) {
    s->num_timesteps = dv_diffusion_timesteps(s->cfg.num_train_timesteps, num_inference_steps,
                                              s->cfg.timestep_spacing, s->cfg.steps_offset, s->timesteps);
    s->num_inference_steps = num_inference_steps;
}

dv_tensor *dv_ddim_step_noise(dv_ddim *s, dv_tensor *model_output, int64_t t, dv_tensor *sample,
                              double eta, dv_tensor *noise, dv_tensor **pred_x0) {
    if (s->num_inference_steps < 1) dv_panic("ddim_step: call dv_ddim_set_timesteps first");
    if (!(eta >= 0)) dv_panic("ddim_step: eta %g < 0", eta);
    int64_t T = s->cfg.num_train_timesteps;
    check_t("ddim_step", t, T);
    int64_t prev = t - T / s->num_inference_steps;
    /* f32 scalars, as in dv_ddpm_step_noise */
    float a_t = s->sched.alphas_cumprod[t];
    float a_prev = prev >= 0 ? s->sched.alphas_cumprod[prev]
                             : (s->cfg.set_alpha_to_one ? 1.0f : s->sched.alphas_cumprod[0]);
    float b_t = 1.0f - a_t, b_prev = 1.0f - a_prev;
    dv_diffusion_coef c = {0};
    double ex, em;
    prediction_coefs(s->cfg.prediction_type, a_t, &c.ax, &c.am, &ex, &em);
    c.clip = s->cfg.clip_sample;
    c.clip_range = s->cfg.clip_sample_range;
    /* sigma_t(eta), DDIM eq. 16 */
    float var = b_prev / b_t * (1.0f - a_t / a_prev);
    float sigma = (float)eta * sqrtf(var);
    float d2 = b_prev - sigma * sigma;
    float d = sqrtf(d2 > 0 ? d2 : 0); /* weight of the "direction pointing to x_t" */
    /* DDIM eq. 12: sqrt(abar_prev) x0 + d eps (+ sigma z) */
    c.c0 = sqrtf(a_prev);
    if (s->cfg.use_clipped_model_output) { /* eps = (x - sa x0c) / sb */
        double sa = sqrtf(a_t), sb = sqrtf(b_t);
        c.c0 -= d * sa / sb;
        c.cx = d / sb;
        c.cm = 0.0;
    } else {
        c.cx = d * ex;
        c.cm = d * em;
    }
    if (eta > 0) {
        if (!noise) dv_panic("ddim_step: eta %g > 0 adds noise, but noise is NULL", eta);
        c.cz = sigma;
    } else {
        noise = NULL;
    }
    return fused_step("ddim_step", model_output, sample, noise, &c, pred_x0);
}

dv_tensor *dv_ddim_step(dv_ddim *s, dv_tensor *model_output, int64_t t, dv_tensor *sample,
                        double eta, dv_rng *rng) {
    dv_tensor *noise = NULL;
    if (eta > 0) {
        if (!rng) dv_panic("ddim_step: eta %g > 0 draws noise, but rng is NULL", eta);
        dv_check_float("ddim_step", sample);
        noise = dv_empty_like(sample); /* drawn where sample lives: the same numbers on CPU and CUDA */
        dv_rng_fill_normal(rng, noise, 0.0, 1.0);
    }
    dv_tensor *y = dv_ddim_step_noise(s, model_output, t, sample, eta, noise, NULL);
    dv_release(noise);
    return y;
}

/* ---- flow matching ----------------------------------------------------------------------- */

dv_tensor *dv_flow_interpolate(dv_tensor *x0, dv_tensor *x1, dv_tensor *t) {
    const char *op = "flow_interpolate";
    dv_check_float(op, x0);
    dv_check_float(op, t);
    dv_check_same_shape(op, x0, x1);
    /* t as (B, 1, ..., 1) or all ones, to broadcast over x0 */
    int64_t shape[DV_MAX_DIMS];
    int nd = x0->ndim;
    for (int d = 0; d < nd; d++) shape[d] = 1;
    int64_t nt = dv_numel(t);
    if (nt != 1) {
        if (nd == 0 || t->ndim != 1 || nt != x0->shape[0])
            dv_panic("%s: t %s must have one element or one per element of dim 0 of x0 %s", op,
                     dv_shape_str(t, NULL, 0), dv_shape_str(x0, NULL, 0));
        shape[0] = nt;
    }
    dv_pool p = {0};
    dv_tensor *tb = dv_pool_add(&p, dv_reshape(t, shape, nd));
    dv_tensor *omt = dv_pool_add(&p, dv_unary(DV_UNARY_AFFINE, tb, -1.0, 1.0)); /* 1 - t */
    dv_tensor *a = dv_pool_add(&p, dv_mul(omt, x0));
    dv_tensor *b = dv_pool_add(&p, dv_mul(tb, x1));
    dv_tensor *y = dv_add(a, b);
    dv_pool_release(&p);
    free(p.items);
    return y;
}

dv_tensor *dv_flow_velocity(dv_tensor *x0, dv_tensor *x1) {
    dv_check_same_shape("flow_velocity", x0, x1);
    return dv_sub(x1, x0);
}

dv_tensor *dv_flow_euler_step(dv_tensor *x, dv_tensor *v, double dt) {
    /* out = 1 * x + dt * v: the fused step with no x0 term */
    dv_diffusion_coef c = {.ax = 0, .am = 0, .clip = 0, .c0 = 0, .cx = 1.0, .cm = dt, .cz = 0};
    return fused_step("flow_euler_step", v, x, NULL, &c, NULL);
}

dv_tensor *dv_flow_euler_sample(dv_tensor *x_init, int64_t n_steps, dv_flow_velocity_fn v, void *ctx) {
    if (n_steps < 1) dv_panic("flow_euler_sample: n_steps %lld < 1", (long long)n_steps);
    double dt = 1.0 / (double)n_steps;
    dv_tensor *x = dv_retain(x_init);
    for (int64_t k = 0; k < n_steps; k++) {
        dv_tensor *vk = v(x, (double)k * dt, ctx);
        dv_tensor *next = dv_flow_euler_step(x, vk, dt);
        dv_release(vk);
        dv_release(x);
        x = next;
    }
    return x;
}
