/* nn/diffusion.h — diffusion noise schedules and samplers: DDPM, DDIM and flow matching.
 *
 * DDPM   Ho et al., "Denoising Diffusion Probabilistic Models", 2020: forward process
 *        q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) (eq. 4), reverse step through the
 *        posterior q(x_{t-1} | x_t, x_0) (eq. 6-7) with x_0 predicted from the model (eq. 15).
 * DDIM   Song et al., "Denoising Diffusion Implicit Models", 2021, eq. 12 (the step) and
 *        eq. 16 (sigma_t(eta)); eta = 0 is deterministic.
 * Flow   Lipman et al., "Flow Matching for Generative Modeling", 2023 / Liu et al., rectified
 *        flow: straight-line interpolant and its constant velocity, Euler sampling.
 *
 * The two diffusion samplers reproduce Hugging Face diffusers' DDPMScheduler and
 * DDIMScheduler number for number (checked against fixtures: tests/reference/gen_diffusion.py),
 * because the models we port were trained and sampled with them:
 *   3D Diffuser Actor  DDPM, num_train_timesteps 100, 100 inference steps, epsilon prediction,
 *                      positions on "scaled_linear", rotations on "squaredcos_cap_v2",
 *                      clip_sample on (the default)
 *   RoboDual           DDIM, num_train_timesteps 100, 5 inference steps, "squaredcos_cap_v2",
 *                      epsilon prediction, clip_sample on, set_alpha_to_one on, eta 0
 * The configuration fields carry diffusers' names and defaults (dv_ddpm_config_default()).
 *
 * Usage (sampling):
 *     dv_ddpm_config cfg = dv_ddpm_config_default();
 *     cfg.num_train_timesteps = 100;
 *     cfg.beta_schedule = DV_BETA_SCALED_LINEAR;
 *     dv_ddpm *s = dv_ddpm_new(&cfg);
 *     dv_ddpm_set_timesteps(s, 100);
 *     dv_tensor *x = dv_randn(&rng, DV_F32, DV_SHAPE(B, L, 3));
 *     for (int64_t i = 0; i < s->num_timesteps; i++) {
 *         dv_tensor *eps = model(x, s->timesteps[i]);
 *         dv_tensor *next = dv_ddpm_step(s, eps, s->timesteps[i], x, &rng);
 *         dv_release(eps), dv_release(x);
 *         x = next;
 *     }
 *     dv_ddpm_free(s);
 * and (training) noisy = dv_diffusion_add_noise(&s->sched, x0, noise, t), loss against noise.
 *
 * Precision: the schedule arrays and the per-step scalars are f32, computed the way
 * diffusers computes them with PyTorch's scalar CPU kernels (linspace from both ends in f32,
 * cumprod accumulated in double): the schedules come out bit-identical to the reference. Each
 * step is then one fused pass over the elements (kernels/diffusion.h) in the tensors' dtype
 * (f32, or f64 for checks). Sampled trajectories agree with diffusers to f32 rounding
 * (<= 1.2e-6 over the 56 fixture loops of up to 100 steps), not bit for bit: the fused step
 * orders its float operations differently. (PyTorch builds differ among themselves at this
 * level too: torch 1.13's vectorised linspace moves the 100-step DDPM loop by 2.6e-6.)
 *
 * Autograd: dv_diffusion_add_noise, dv_diffusion_velocity and dv_flow_interpolate /
 * dv_flow_velocity are built from differentiable ops (they appear in training losses). The
 * sampler steps are inference only: their results carry no graph.
 *
 * Not here: thresholding (dynamic), learned / learned_range variances, fixed_large_log,
 * rescale_betas_zero_snr, custom timestep lists, the "sigmoid" and "laplace" schedules.
 */
#ifndef DV_NN_DIFFUSION_H
#define DV_NN_DIFFUSION_H

#include "tensor/tensor.h"

/* diffusers' string options; the values are also the codes tests/reference/gen_diffusion.py
 * writes into its fixture */
typedef enum {
    DV_BETA_LINEAR = 0,            /* linspace(beta_start, beta_end, T) */
    DV_BETA_SCALED_LINEAR = 1,     /* linspace(sqrt(beta_start), sqrt(beta_end), T)^2 */
    DV_BETA_SQUAREDCOS_CAP_V2 = 2, /* the cosine schedule, betas capped at 0.999 */
} dv_beta_schedule;

typedef enum {
    DV_PREDICT_EPSILON = 0, /* the model predicts the added noise */
    DV_PREDICT_SAMPLE = 1,  /* the model predicts x_0 */
    DV_PREDICT_V = 2,       /* v = sqrt(abar) eps - sqrt(1 - abar) x_0 (Salimans & Ho 2022) */
} dv_prediction_type;

typedef enum {
    /* steps_offset is added by "leading" only (as in diffusers) */
    DV_SPACING_LEADING = 0,  /* (N-1..0) * (T // N) + steps_offset   e.g. T 100, N 10: 90 80 .. 0 */
    DV_SPACING_TRAILING = 1, /* round(T, T - T/N, ..) - 1            e.g. 99 89 .. 9 */
    DV_SPACING_LINSPACE = 2, /* round(linspace(0, T-1, N)) reversed  e.g. 99 88 .. 0 */
} dv_timestep_spacing;

typedef enum {
    DV_VARIANCE_FIXED_SMALL = 0,     /* the posterior variance beta~_t (eq. 7), the default */
    DV_VARIANCE_FIXED_SMALL_LOG = 1, /* the same, its std taken as exp(log(var) / 2) */
    DV_VARIANCE_FIXED_LARGE = 2,     /* beta_t itself */
} dv_variance_type;

/* ---- the noise schedule shared by both samplers ------------------------------------------ */
typedef struct {
    int64_t num_train_timesteps; /* T */
    float *betas;                /* (T) */
    float *alphas;               /* (T) 1 - betas */
    float *alphas_cumprod;       /* (T) abar_t = prod_{s <= t} alphas_s */
} dv_noise_schedule;

/* fills s (arrays malloc'd; free with dv_noise_schedule_free); aborts on T < 1 */
void dv_noise_schedule_init(dv_noise_schedule *s, int64_t T, double beta_start, double beta_end,
                            dv_beta_schedule kind);
void dv_noise_schedule_free(dv_noise_schedule *s);

/* The forward process, per batch element b (dim 0) at its own timestep t[b]:
 *   noisy = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise
 * x0, noise: (B, ...) same shape and float dtype; timesteps: i32/i64 with B elements (or one,
 * shared by all). Differentiable in x0 and noise. */
dv_tensor *dv_diffusion_add_noise(const dv_noise_schedule *s, dv_tensor *x0, dv_tensor *noise,
                                  dv_tensor *timesteps);
/* the v-prediction training target: sqrt(abar_t) noise - sqrt(1 - abar_t) x0 (differentiable) */
dv_tensor *dv_diffusion_velocity(const dv_noise_schedule *s, dv_tensor *x0, dv_tensor *noise,
                                 dv_tensor *timesteps);

/* The descending inference timesteps set_timesteps(N) gives for a spacing. out must hold
 * N + 1 entries: for some (T, N), "trailing" yields N + 1 values, the last of them -1
 * (numpy's float arange overshoots; diffusers has the same quirk, so we keep it). Returns the
 * count. Aborts when N < 1 or N > T. */
int64_t dv_diffusion_timesteps(int64_t T, int64_t N, dv_timestep_spacing spacing,
                               int64_t steps_offset, int64_t *out);

/* ---- DDPM -------------------------------------------------------------------------------- */
typedef struct {
    int64_t num_train_timesteps;        /* 1000 */
    double beta_start, beta_end;        /* 0.0001, 0.02 */
    dv_beta_schedule beta_schedule;     /* linear */
    dv_variance_type variance_type;     /* fixed_small */
    bool clip_sample;                   /* true: clamp predicted x_0 to +-clip_sample_range */
    double clip_sample_range;           /* 1.0 */
    dv_prediction_type prediction_type; /* epsilon */
    dv_timestep_spacing timestep_spacing; /* leading */
    int64_t steps_offset;               /* 0 */
} dv_ddpm_config;

typedef struct {
    dv_ddpm_config cfg;
    dv_noise_schedule sched;
    int64_t num_inference_steps; /* 0 until dv_ddpm_set_timesteps */
    int64_t num_timesteps;       /* entries in timesteps */
    int64_t *timesteps;          /* descending; before set_timesteps: T-1, ..., 0 */
} dv_ddpm;

dv_ddpm_config dv_ddpm_config_default(void);
dv_ddpm *dv_ddpm_new(const dv_ddpm_config *cfg);
void dv_ddpm_free(dv_ddpm *s);
void dv_ddpm_set_timesteps(dv_ddpm *s, int64_t num_inference_steps);

/* One reverse step x_t -> x_{t-1}, where "t-1" is the next entry of s->timesteps (-1 after the
 * last; before set_timesteps, t - 1):
 *   x0    = from model_output by the prediction type, clamped when clip_sample
 *   mean  = sqrt(abar_prev) beta / (1 - abar_t) x0 + sqrt(alpha) (1 - abar_prev) / (1 - abar_t) x_t
 *   out   = mean + std * z   only for t > 0 (std by variance_type, z ~ N(0, I))
 * with alpha = abar_t / abar_prev, beta = 1 - alpha (one step of the inference schedule).
 * model_output, sample: same shape, f32 or f64. The noise comes from rng (drawn only when
 * t > 0, as one dv_randn of sample's shape; rng may be NULL when t == 0). Returns x_{t-1}. */
dv_tensor *dv_ddpm_step(dv_ddpm *s, dv_tensor *model_output, int64_t t, dv_tensor *sample, dv_rng *rng);
/* The same with the noise given (sample's shape; may be NULL when t == 0, ignored then).
 * pred_x0, if not NULL, receives the (clipped) predicted x_0 (a new reference). */
dv_tensor *dv_ddpm_step_noise(dv_ddpm *s, dv_tensor *model_output, int64_t t, dv_tensor *sample,
                              dv_tensor *noise, dv_tensor **pred_x0);

/* ---- DDIM -------------------------------------------------------------------------------- */
typedef struct {
    int64_t num_train_timesteps;        /* 1000 */
    double beta_start, beta_end;        /* 0.0001, 0.02 */
    dv_beta_schedule beta_schedule;     /* linear */
    bool clip_sample;                   /* true */
    double clip_sample_range;           /* 1.0 */
    bool set_alpha_to_one;              /* true: abar_prev of the last step is 1, else abar_0 */
    int64_t steps_offset;               /* 0 */
    dv_prediction_type prediction_type; /* epsilon */
    dv_timestep_spacing timestep_spacing; /* leading */
    /* diffusers passes this to step(): re-derive eps from the clipped x_0 (default false) */
    bool use_clipped_model_output;
} dv_ddim_config;

typedef struct {
    dv_ddim_config cfg;
    dv_noise_schedule sched;
    int64_t num_inference_steps; /* 0 until dv_ddim_set_timesteps (a step before it aborts) */
    int64_t num_timesteps;
    int64_t *timesteps;
} dv_ddim;

dv_ddim_config dv_ddim_config_default(void);
dv_ddim *dv_ddim_new(const dv_ddim_config *cfg);
void dv_ddim_free(dv_ddim *s);
void dv_ddim_set_timesteps(dv_ddim *s, int64_t num_inference_steps);

/* One DDIM step, prev = t - T // N (whatever the spacing, as diffusers does):
 *   x0    = from model_output (clamped when clip_sample); eps = the matching noise estimate
 *           (from the unclipped x0, unless use_clipped_model_output)
 *   sigma = eta sqrt((1 - abar_prev) / (1 - abar_t) (1 - abar_t / abar_prev))
 *   out   = sqrt(abar_prev) x0 + sqrt(1 - abar_prev - sigma^2) eps + sigma z   (z only if eta > 0)
 * abar_prev for prev < 0 is 1 (set_alpha_to_one) or abar_0. rng is used only when eta > 0. */
dv_tensor *dv_ddim_step(dv_ddim *s, dv_tensor *model_output, int64_t t, dv_tensor *sample,
                        double eta, dv_rng *rng);
dv_tensor *dv_ddim_step_noise(dv_ddim *s, dv_tensor *model_output, int64_t t, dv_tensor *sample,
                              double eta, dv_tensor *noise, dv_tensor **pred_x0);

/* ---- flow matching ----------------------------------------------------------------------- *
 * Direction convention: t runs from 0 to 1, x0 is the noise end (t = 0, x0 ~ N(0, I)) and x1
 * the data end (t = 1). The interpolant is x_t = (1 - t) x0 + t x1, its velocity
 * dx_t/dt = x1 - x0 is the regression target of the model v(x_t, t), and sampling integrates
 * dx/dt = v(x, t) from t = 0 to t = 1. (pi0 and some others run time the other way, noise at
 * t = 1: feed them 1 - t and negate v.) */

/* x_t = (1 - t) x0 + t x1. t: a 0-d / 1-element tensor, or (B) with one time per batch
 * element (dim 0 of x0); same float dtype as x0. Differentiable in x0, x1 and t. */
dv_tensor *dv_flow_interpolate(dv_tensor *x0, dv_tensor *x1, dv_tensor *t);
/* the velocity target x1 - x0 (differentiable) */
dv_tensor *dv_flow_velocity(dv_tensor *x0, dv_tensor *x1);
/* one explicit Euler step x + dt * v (the fused step kernel; no graph) */
dv_tensor *dv_flow_euler_step(dv_tensor *x, dv_tensor *v, double dt);

/* v(x, t) -> a new reference, x's shape and dtype */
typedef dv_tensor *(*dv_flow_velocity_fn)(dv_tensor *x, double t, void *ctx);
/* Integrate from x_init at t = 0 with n_steps Euler steps of dt = 1/n_steps, evaluating v at
 * t_k = k / n_steps. Returns x at t = 1 (a new reference). */
dv_tensor *dv_flow_euler_sample(dv_tensor *x_init, int64_t n_steps, dv_flow_velocity_fn v, void *ctx);

#endif
