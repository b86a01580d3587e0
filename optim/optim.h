/* optim/optim.h — training-side numerics that are not ops: named parameter lists, AdamW and
 * SGD with parameter groups, global-norm gradient clipping, an exponential moving average of
 * the weights, and learning-rate schedules.
 *
 * Everything follows PyTorch so a recipe written for torch reads the same here, and the tests
 * check ≥ 10-step trajectories against torch.optim fixtures (tests/reference/gen_optim.py):
 *   AdamW  torch.optim.AdamW (amsgrad = False): decoupled decay, bias-corrected moments
 *   SGD    torch.optim.SGD: coupled weight decay, momentum with dampening, nesterov
 *   clip   torch.nn.utils.clip_grad_norm_ (L2 norm)
 *   LR     transformers / diffusers get_{constant,constant_with_warmup,cosine}_schedule…
 *   EMA    diffusers EMAModel.step with a fixed decay (no warm-up of the decay)
 *
 * A training step, with gradient accumulation over N micro-batches:
 *
 *     for (int k = 0; k < N; k++) {                 // backward N times: the tensor core adds
 *         dv_tensor *loss = ...forward(micro-batch k)...;     // into each leaf's ->grad
 *         dv_tensor *l = dv_scale(loss, 1.0 / N);   // so the sum is the mean over the batch
 *         dv_backward(l);
 *         dv_release(l), dv_release(loss);
 *     }
 *     double norm = dv_clip_grad_norm(&opt->params, 1.0);   // optional
 *     dv_adamw_step(opt, dv_lr_schedule_at(&sched, step));  // lr = group lr × multiplier
 *     dv_optim_zero_grad(&opt->params);             // drop ->grad (torch's set_to_none=True)
 *     dv_ema_update(ema);                           // optional
 *
 * Parameters are f32 leaves (f64 works too, on the CPU: the tests use it to pin the formulas to
 * PyTorch's f64 trajectories). They may live on a GPU: the moments, momentum buffers and EMA
 * shadows are then made on the parameter's device and updated there by kernels/cuda/ (fused
 * AdamW, SGD, EMA), with the same arithmetic as the CPU; the per-parameter step counters stay
 * on the host (the bias correction is computed there). Parameters and state can also be moved
 * after construction (dv_tensors_move_ on the params and on the *_state tensors but the step
 * counters), as a run resumed on another device does. A parameter whose ->grad is NULL at a step is skipped entirely, as torch
 * does for grad None: no decay, no moment update, its step count does not advance.
 *
 * Optimiser state is enumerable as named tensors so a checkpoint writer can save and restore
 * it (see dv_adamw_state). State is allocated, zeroed, when a group is added — a fresh
 * optimiser and one restored from a checkpoint have the same tensors to fill.
 *
 * Not here: amsgrad, maximize, sparse gradients, fused multi-GPU steps, loss scaling.
 */
#ifndef DV_OPTIM_OPTIM_H
#define DV_OPTIM_OPTIM_H

#include "tensor/tensor.h"

/* ---- named parameter lists (optim/params.c) ---------------------------------------------- */
/* A growable list of (name, tensor). It owns a copy of each name and a reference to each
 * tensor. Zero-initialise it: `dv_params ps = {0};`. Names identify optimiser / EMA state. */
typedef struct {
    int n, cap;
    char **names;
    dv_tensor **tensors;
} dv_params;

void dv_params_add(dv_params *ps, const char *name, dv_tensor *t); /* retains t */
void dv_params_free(dv_params *ps);                                /* releases; ps is {0} again */
int64_t dv_params_numel(const dv_params *ps);
/* index of t (by pointer) or -1 */
int dv_params_find(const dv_params *ps, const dv_tensor *t);

/* Does this parameter get weight decay? A predicate on (name, tensor). */
typedef bool (*dv_param_pred)(const char *name, const dv_tensor *t, void *ctx);
/* The usual rule for transformers: biases and norm gains (ndim < 2, or a name ending in "bias"
 * or containing "norm"/"ln_") and embedding tables (name containing "embed") get no decay;
 * other weights do. */
bool dv_param_no_decay_default(const char *name, const dv_tensor *t, void *ctx);
/* Append every parameter of all to no_decay when no_decay_pred(name, t, ctx) holds, else to
 * decay (both lists are appended to, in order). NULL pred = dv_param_no_decay_default. */
void dv_params_split_decay(const dv_params *all, dv_param_pred no_decay_pred, void *ctx,
                           dv_params *decay, dv_params *no_decay);

/* release every parameter's ->grad (the next backward starts from zero) */
void dv_optim_zero_grad(const dv_params *ps);

/* ---- AdamW (optim/adamw.c) --------------------------------------------------------------- */
typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
} dv_adamw_config;

/* torch.optim.AdamW's defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0.01 */
dv_adamw_config dv_adamw_config_default(void);

typedef struct {
    dv_adamw_config cfg;  /* may be changed between steps */
    int first, count;     /* its parameters: params.tensors[first .. first + count) */
} dv_adamw_group;

typedef struct {
    dv_params params;          /* every parameter, group after group */
    dv_adamw_group *groups;
    int ngroups;
    /* per parameter (index as params): state and the optional rounded copy */
    dv_tensor **exp_avg;       /* same shape and dtype as the parameter */
    dv_tensor **exp_avg_sq;
    dv_tensor **step;          /* 0-d i64: updates taken (grad present) so far */
    dv_tensor **copy;          /* f16 / bf16 tensor rewritten at each update, or NULL */
    /* dv_adamw_state's arrays: 3 entries per parameter */
    char **state_names;
    dv_tensor **state_tensors;
} dv_adamw;

dv_adamw *dv_adamw_new(void);
void dv_adamw_free(dv_adamw *o);
/* add a group (its own lr, betas, eps, weight_decay); returns its index. Parameters must be
 * contiguous f32 tensors (on any device) or f64 CPU tensors, in no other group. State is zeroed
 * here, on each parameter's device. */
int dv_adamw_add_group(dv_adamw *o, const dv_params *ps, dv_adamw_config cfg);
/* register a rounded 16-bit copy of an f32 parameter (same numel, contiguous, f16 or bf16).
 * It is written now and by each update of the parameter, in the same pass as the update. */
void dv_adamw_set_copy(dv_adamw *o, dv_tensor *param, dv_tensor *copy);
/* one update of every parameter that has a ->grad, with lr = group lr × lr_scale (the
 * schedule's multiplier; 1.0 for none). Gradients are left in place. */
void dv_adamw_step(dv_adamw *o, double lr_scale);
/* The state as named tensors, 3 per parameter in parameter order:
 *   "adamw.<param name>.exp_avg", "adamw.<param name>.exp_avg_sq"  (like the parameter)
 *   "adamw.<param name>.step"                                       (0-d i64)
 * Returns the count; *names and *tensors point at arrays owned by o (valid until the next
 * dv_adamw_add_group or dv_adamw_free). The tensors are the live state: a checkpoint writer
 * reads them, a reader restores by copying into them (dv_copy_). */
int dv_adamw_state(dv_adamw *o, const char *const **names, dv_tensor *const **tensors);

/* ---- SGD (optim/sgd.c) ------------------------------------------------------------------- */
typedef struct {
    double lr, momentum, dampening, weight_decay;
    bool nesterov; /* needs momentum > 0 and dampening == 0 (as torch) */
} dv_sgd_config;

/* torch.optim.SGD's defaults with the given lr: no momentum, dampening 0, no decay */
dv_sgd_config dv_sgd_config_default(double lr);

typedef struct {
    dv_sgd_config cfg;
    int first, count;
} dv_sgd_group;

typedef struct {
    dv_params params;
    dv_sgd_group *groups;
    int ngroups;
    dv_tensor **momentum_buffer; /* per parameter; NULL in groups with momentum == 0 */
    dv_tensor **step;            /* 0-d i64; step 0 means the buffer is not started yet */
    char **state_names;
    dv_tensor **state_tensors;
    int nstate;
} dv_sgd;

dv_sgd *dv_sgd_new(void);
void dv_sgd_free(dv_sgd *o);
int dv_sgd_add_group(dv_sgd *o, const dv_params *ps, dv_sgd_config cfg);
void dv_sgd_step(dv_sgd *o, double lr_scale);
/* "sgd.<name>.momentum_buffer" (groups with momentum) and "sgd.<name>.step", as for AdamW */
int dv_sgd_state(dv_sgd *o, const char *const **names, dv_tensor *const **tensors);

/* ---- gradient clipping (optim/clip.c) ---------------------------------------------------- */
/* The L2 norm of all gradients taken together (parameters without ->grad are skipped).
 * Accumulated in f64. */
double dv_grad_norm(const dv_params *ps);
/* torch.nn.utils.clip_grad_norm_: total = dv_grad_norm; every gradient is scaled by
 * max_norm / (total + 1e-6) when that is below 1. Returns total (before clipping). As in
 * torch a non-finite total poisons the gradients: check isfinite(total) and skip the step. */
double dv_clip_grad_norm(const dv_params *ps, double max_norm);

/* ---- EMA of the weights (optim/ema.c) ---------------------------------------------------- */
/* shadow <- shadow - (1 - decay) * (shadow - param), after each optimiser step. For
 * evaluation, swap the averaged weights into the live parameters and back again. */
typedef struct {
    double decay;
    dv_params params;      /* the live parameters */
    dv_tensor **shadow;    /* the averages, one per parameter */
    char **state_names;    /* "ema.<name>" */
    bool swapped;          /* params currently hold the averages */
} dv_ema;

/* shadows start as copies of the parameters */
dv_ema *dv_ema_new(const dv_params *ps, double decay);
void dv_ema_free(dv_ema *e);
void dv_ema_update(dv_ema *e);
/* exchange the contents of params and shadows in place (no extra memory): after swap_in the
 * model evaluates with the averaged weights; swap_out puts the trained weights back. f16/bf16
 * copies registered with dv_adamw_set_copy are not rewritten by a swap. Update and state
 * enumeration abort while swapped in. */
void dv_ema_swap_in(dv_ema *e);
void dv_ema_swap_out(dv_ema *e);
/* "ema.<param name>" -> shadow, for checkpoints */
int dv_ema_state(dv_ema *e, const char *const **names, dv_tensor *const **tensors);

/* ---- learning-rate schedules (optim/schedule.c) ------------------------------------------ */
/* The multiplier of the base lr at a 0-based optimiser step (the lr of the step-th update),
 * as torch's LambdaLR with transformers' lambdas:
 *   constant         1
 *   warmup_constant  step / warmup for step < warmup, then 1
 *   warmup_cosine    step / warmup for step < warmup, then with
 *                    progress = (step - warmup) / max(1, total - warmup):
 *                    max(0, 0.5 * (1 + cos(pi * num_cycles * 2 * progress)))
 *                    (num_cycles 0.5: one half cosine from 1 down to 0 at step = total) */
typedef enum { DV_LR_CONSTANT = 0, DV_LR_WARMUP_CONSTANT, DV_LR_WARMUP_COSINE } dv_lr_kind;

typedef struct {
    dv_lr_kind kind;
    int64_t warmup_steps, total_steps;
    double num_cycles;
} dv_lr_schedule;

dv_lr_schedule dv_lr_constant(void);
dv_lr_schedule dv_lr_warmup_constant(int64_t warmup_steps);
dv_lr_schedule dv_lr_warmup_cosine(int64_t warmup_steps, int64_t total_steps);
double dv_lr_schedule_at(const dv_lr_schedule *s, int64_t step);
/* "constant", "constant_with_warmup", "cosine" (the diffusers / transformers names);
 * returns 0, or -1 for an unknown name */
int dv_lr_kind_parse(const char *name, dv_lr_kind *out);
const char *dv_lr_kind_name(dv_lr_kind kind);

#endif
