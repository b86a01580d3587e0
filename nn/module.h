/* nn/module.h — the parameter registry, initialisation schemes and the basic layers.
 *
 * Parameter registry (nn/params.c). A model is a tree of plain structs; while it is built,
 * each layer registers its tensors under a hierarchical name made of the scopes pushed so far
 * and the tensor's own name:
 *
 *     dv_registry reg = {0};
 *     dv_reg_push(&reg, "layers.%d", i);
 *     dv_reg_push(&reg, "self_attn");
 *     dv_nn_linear_init(&blk->q, &reg, "q_proj", C, C, true, DV_F32, &rng);
 *           // registers "layers.3.self_attn.q_proj.weight" and "...q_proj.bias"
 *     dv_reg_pop(&reg); dv_reg_pop(&reg);
 *
 * The registry owns the parameters: layers hold borrowed pointers into it, and
 * dv_reg_free releases everything. Each entry also remembers the address of the layer field
 * that points at the tensor (its "slot"), so a load that swaps a tensor for another one (a
 * frozen weight kept in bf16, say) updates the layer too.
 *
 * Names are what safetensors files, the optimiser (optim/optim.h dv_params), EMA and
 * checkpoints use. reg.params is a dv_params (every parameter, registration order), so
 * dv_reg_trainable() gives the optimiser exactly the parameters that are not frozen.
 *
 * Freezing: dv_reg_freeze(&reg, "vision_tower.*", true) — patterns are globs where '*'
 * matches any run of characters (dots included) and '?' one character; a pattern without
 * wildcards matches that name or everything under it as a prefix scope ("vision_tower"
 * matches "vision_tower.x.weight" but not "vision_tower2.w"). A frozen parameter has
 * requires_grad = false, so autograd gives it no gradient and ops skip its weight GEMMs.
 * f16 / bf16 parameters are always frozen (nothing trains a half tensor here).
 *
 * Layers (nn/layers.c), llm.c style: a plain struct per layer, an _init that allocates,
 * initialises (as the matching torch.nn module does by default) and registers its
 * parameters, and a _forward that takes the input and returns a new reference. Shapes:
 *     linear      x (..., in)          -> (..., out)
 *     embedding   ids (...) i32/i64    -> (..., C)
 *     layer_norm  x (..., C)           -> (..., C)      (weight, bias over C)
 *     rms_norm    x (..., C)           -> (..., C)
 *     conv2d      x (B, Cin, H, W)     -> (B, Cout, H', W')
 *     dropout     x (any)              -> same
 *     mlp         x (..., C)           -> (..., C_out)  fc2(act(fc1(x)))
 *     swiglu      x (..., C)           -> (..., C)      down(silu(gate(x)) * up(x)), LLaMA
 * Not here: backward functions (autograd records the ops), CUDA placement, buffers that are
 * not parameters (running statistics).
 */
#ifndef DV_NN_MODULE_H
#define DV_NN_MODULE_H

#include <stdio.h>

#include "optim/optim.h"
#include "tensor/safetensors.h"
#include "tensor/tensor.h"

/* ---- parameter registry (nn/params.c) ---------------------------------------------------- */
#define DV_REG_MAX_DEPTH 32
#define DV_REG_MAX_NAME 512

typedef struct {
    dv_params params;       /* every parameter, in registration order (owns the tensors) */
    dv_tensor ***slots;     /* per parameter: the layer field that points at it, or NULL */
    bool *frozen;           /* per parameter */
    int cap;
    /* the current scope: "layers.3.self_attn" */
    char prefix[DV_REG_MAX_NAME];
    int depth;
    int prefix_len[DV_REG_MAX_DEPTH];
} dv_registry;

/* enter / leave a naming scope (printf-style); scopes nest */
__attribute__((format(printf, 2, 3))) void dv_reg_push(dv_registry *r, const char *fmt, ...);
void dv_reg_pop(dv_registry *r);
/* Register t under "<scope>.<name>", taking t's reference. When slot is not NULL, *slot is
 * set to t and remembered. f32 / f64 tensors become trainable leaves (requires_grad); other
 * dtypes are registered frozen. Aborts on a duplicate name. Returns t (borrowed). */
dv_tensor *dv_reg_add(dv_registry *r, const char *name, dv_tensor **slot, dv_tensor *t);
void dv_reg_free(dv_registry *r);   /* releases every parameter; r is {0} again */
void dv_reg_to(dv_registry *r, dv_device d); /* every parameter moved to d in place (tensor/cuda.h) */

int dv_reg_count(const dv_registry *r);
const char *dv_reg_name(const dv_registry *r, int i);
dv_tensor *dv_reg_tensor(const dv_registry *r, int i);
int dv_reg_find(const dv_registry *r, const char *name);      /* index, or -1 */
dv_tensor *dv_reg_get(const dv_registry *r, const char *name); /* borrowed, or NULL */

/* glob / prefix match as described above */
bool dv_reg_match(const char *pattern, const char *name);
/* freeze (or unfreeze) every parameter matching pattern; returns how many matched.
 * Unfreezing a f16/bf16 parameter aborts. */
int dv_reg_freeze(dv_registry *r, const char *pattern, bool frozen);
bool dv_reg_is_frozen(const dv_registry *r, int i);
/* append the trainable parameters (not frozen) to out, for dv_adamw_add_group & co */
void dv_reg_trainable(const dv_registry *r, dv_params *out);
/* element counts */
int64_t dv_reg_numel(const dv_registry *r, bool trainable_only);
/* a table of trainable / total elements per top-level name ("vision_tower", "layers", ...) */
void dv_reg_print_summary(const dv_registry *r, FILE *f);

/* Load every parameter from a safetensors file by name.
 *   - a parameter absent from the file: an error when strict, else left as initialised
 *   - a tensor in the file that is no parameter: an error when strict, else ignored
 *   - a shape that differs: always an error
 *   - dtype: the file's value is converted to the parameter's dtype (f16/bf16 widened to f32,
 *     f32 to f64, ...). With DV_REG_KEEP_HALF, a FROZEN f32 parameter whose file tensor is
 *     f16 / bf16 is replaced by the half tensor itself (zero copy over the mapping), which
 *     halves its memory; dv_linear reads half weights directly.
 * Everything is checked before anything is written: a failed load changes nothing.
 * Returns 0, or -1 with a message naming the file and tensor in err. n_missing / n_unexpected
 * (may be NULL) receive the counts of what a non-strict load skipped. */
enum { DV_REG_STRICT = 1, DV_REG_KEEP_HALF = 2 };
int dv_reg_load(dv_registry *r, dv_st_file *f, int flags, int *n_missing, int *n_unexpected,
                char *err, size_t errlen);
/* write every parameter under its name (atomic, see dv_st_save) */
int dv_reg_save(const dv_registry *r, const char *path, char *err, size_t errlen);

/* ---- initialisation (nn/init.c); all in place, reproducible through dv_rng --------------- */
/* fans as torch.nn.init computes them: (out, in, k...) -> fan_in = in * prod(k),
 * fan_out = out * prod(k); a 1-D tensor has fan_in = fan_out = its size */
void dv_init_fans(const dv_tensor *t, int64_t *fan_in, int64_t *fan_out);
void dv_init_normal(dv_rng *rng, dv_tensor *t, double mean, double std);
void dv_init_uniform(dv_rng *rng, dv_tensor *t, double lo, double hi);
void dv_init_xavier_uniform(dv_rng *rng, dv_tensor *t, double gain);  /* ±gain sqrt(6/(fi+fo)) */
/* leaky-relu gain sqrt(2/(1+a^2)), bound gain * sqrt(3/fan_in) (fan_in mode) */
void dv_init_kaiming_uniform(dv_rng *rng, dv_tensor *t, double a);
void dv_init_zeros(dv_tensor *t);
void dv_init_ones(dv_tensor *t);
/* torch nn.Linear / nn.Conv2d default: kaiming_uniform(a = sqrt(5)) on w, bias (may be NULL)
 * uniform ±1/sqrt(fan_in of w) */
void dv_init_linear_default(dv_rng *rng, dv_tensor *w, dv_tensor *bias);

/* ---- layers (nn/layers.c) ---------------------------------------------------------------- */
typedef struct {
    dv_tensor *weight;  /* (out, in): f32 / f64 trainable, or f16 / bf16 frozen */
    dv_tensor *bias;    /* (out) or NULL; same dtype as x */
    int64_t in, out;
} dv_nn_linear;
/* dt: the weight's dtype; f16/bf16 weights are initialised in f32 then rounded (and frozen),
 * the bias then stays f32 */
void dv_nn_linear_init(dv_nn_linear *l, dv_registry *r, const char *name, int64_t in,
                       int64_t out, bool bias, dv_dtype dt, dv_rng *rng);
dv_tensor *dv_nn_linear_forward(const dv_nn_linear *l, dv_tensor *x);

typedef struct {
    dv_tensor *weight;  /* (V, C), init normal(0, 1) as nn.Embedding */
    int64_t num, dim;
} dv_nn_embedding;
void dv_nn_embedding_init(dv_nn_embedding *e, dv_registry *r, const char *name, int64_t num,
                          int64_t dim, dv_dtype dt, dv_rng *rng);
dv_tensor *dv_nn_embedding_forward(const dv_nn_embedding *e, dv_tensor *ids);

typedef struct {
    dv_tensor *weight, *bias;  /* (C) ones / zeros; NULL without elementwise affine */
    double eps;
} dv_nn_layer_norm;
void dv_nn_layer_norm_init(dv_nn_layer_norm *n, dv_registry *r, const char *name, int64_t dim,
                           double eps, bool affine, bool bias, dv_dtype dt);
dv_tensor *dv_nn_layer_norm_forward(const dv_nn_layer_norm *n, dv_tensor *x);

typedef struct {
    dv_tensor *weight;  /* (C) ones */
    double eps;
} dv_nn_rms_norm;
void dv_nn_rms_norm_init(dv_nn_rms_norm *n, dv_registry *r, const char *name, int64_t dim,
                         double eps, dv_dtype dt);
dv_tensor *dv_nn_rms_norm_forward(const dv_nn_rms_norm *n, dv_tensor *x);

typedef struct {
    dv_tensor *weight;  /* (Cout, Cin / groups, kh, kw) */
    dv_tensor *bias;    /* (Cout) or NULL */
    int stride[2], padding[2], dilation[2], groups;
} dv_nn_conv2d;
void dv_nn_conv2d_init(dv_nn_conv2d *c, dv_registry *r, const char *name, int64_t cin,
                       int64_t cout, int kh, int kw, int stride, int padding, int groups,
                       bool bias, dv_dtype dt, dv_rng *rng);
dv_tensor *dv_nn_conv2d_forward(const dv_nn_conv2d *c, dv_tensor *x);

/* inverted dropout: in training each element is zeroed with probability p and the others
 * scaled by 1/(1-p); at inference (training = false) or p = 0 it returns x itself. The mask
 * comes from rng (advanced by each call). */
dv_tensor *dv_nn_dropout(dv_tensor *x, double p, bool training, dv_rng *rng);

typedef enum { DV_ACT_GELU = 0, DV_ACT_GELU_TANH, DV_ACT_QUICK_GELU, DV_ACT_SILU, DV_ACT_RELU } dv_act;
dv_tensor *dv_nn_act(dv_act a, dv_tensor *x);

typedef struct {
    dv_nn_linear fc1, fc2;
    dv_act act;
} dv_nn_mlp;
/* registers "<name>.fc1.*" and "<name>.fc2.*" */
void dv_nn_mlp_init(dv_nn_mlp *m, dv_registry *r, const char *name, int64_t in, int64_t hidden,
                    int64_t out, dv_act act, bool bias, dv_dtype dt, dv_rng *rng);
dv_tensor *dv_nn_mlp_forward(const dv_nn_mlp *m, dv_tensor *x);

typedef struct {
    dv_nn_linear gate_proj, up_proj, down_proj;  /* LLaMA names, no biases */
} dv_nn_swiglu;
void dv_nn_swiglu_init(dv_nn_swiglu *m, dv_registry *r, const char *name, int64_t dim,
                       int64_t hidden, dv_dtype dt, dv_rng *rng);
dv_tensor *dv_nn_swiglu_forward(const dv_nn_swiglu *m, dv_tensor *x);

#endif
