/* nn/adaln.h — adaptive layer-norm conditioning modules: 3D Diffuser Actor's AdaLN and its
 * diffusion-step + proprioception conditioning signal, and DiT's adaLN-Zero modulation
 * vectors. The arithmetic is done by the fused ops of nn/modulate.h.
 *
 * 3D Diffuser Actor (Ke et al. 2024, Sec. 3.2; diffuser_actor/utils/layers.py AdaLN and
 * trajectory_optimization/diffuser_actor.py DiffusionHead.encode_denoising_timestep):
 *
 *   cond = time_emb(t) + curr_gripper_emb(flatten(gripper))                       (B, C)
 *     time_emb          = SinusoidalPosEmb(C) -> Linear(C, C) -> ReLU -> Linear(C, C)
 *                         "time_emb.1.*", "time_emb.3.*"
 *     curr_gripper_emb  = Linear(nhist C, C) -> ReLU -> Linear(C, C)
 *                         "curr_gripper_emb.0.*", "curr_gripper_emb.2.*"
 *     t (B) diffusion steps; gripper (B, nhist, C) the encoded gripper-history tokens,
 *     flattened history-major ((B, nhist, C) -> (B, nhist * C)) as the reference does
 *   AdaLN(x, cond): scale, shift = Linear(SiLU(cond)).chunk(2)     (scale FIRST, then shift)
 *                   x * (1 + scale) + shift                        per sample, over the tokens
 *     "modulation.1.weight" (2C, C), "modulation.1.bias" (2C): both zero-initialised, so a
 *     fresh AdaLN is the identity. No normalisation inside (the name notwithstanding): the
 *     reference applies it to the already layer-normed query of each attention / FFN layer.
 *   The reference runs AdaLN sequence-first, x (N, B, C); dv_nn_adaln_forward takes batch-first
 *   (B, N, C) and dv_nn_adaln_forward_seq_first the reference's layout.
 *
 * DiT's adaLN-Zero (Peebles & Xie 2023, Sec. 3.2): n modulation vectors from the condition,
 *   SiLU -> Linear(Cc, n C) -> chunk(n)        "adaLN_modulation.1.weight" / ".bias", zero-init
 *   n = 6 in a DiT block (shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp, in that
 *   order), n = 2 in the final layer (shift, scale). Zero init makes every residual branch
 *   start closed (gate 0). Use with dv_layer_norm_modulate and dv_gated_residual.
 *
 * Names: the module's name is a registry scope; NULL or "" registers at the current scope
 * (so "prediction_head" + dv_nn_adaln_cond gives "prediction_head.time_emb.1.weight", the
 * reference's names).
 * Not here: the attention / FFN layers these modulate (models/), classifier-free guidance.
 */
#ifndef DV_NN_ADALN_H
#define DV_NN_ADALN_H

#include "nn/module.h"

/* ---- 3D Diffuser Actor's AdaLN ----------------------------------------------------------- */
typedef struct {
    dv_nn_linear modulation;  /* "modulation.1": (2C, Cc), zero-init */
    int64_t dim;              /* C */
} dv_nn_adaln;

/* cond_dim: the condition's width (C in the reference) */
void dv_nn_adaln_init(dv_nn_adaln *a, dv_registry *r, const char *name, int64_t dim, int64_t cond_dim,
                      dv_dtype dt, dv_rng *rng);
/* x (B, N, C), cond (B, Cc) -> (B, N, C) */
dv_tensor *dv_nn_adaln_forward(const dv_nn_adaln *a, dv_tensor *x, dv_tensor *cond);
/* x (N, B, C), cond (B, Cc) -> (N, B, C) contiguous, as the reference's layout */
dv_tensor *dv_nn_adaln_forward_seq_first(const dv_nn_adaln *a, dv_tensor *x, dv_tensor *cond);

/* ---- 3D Diffuser Actor's conditioning: diffusion step + gripper history ------------------- */
typedef struct {
    dv_nn_linear time_fc1, time_fc2;  /* "time_emb.1", "time_emb.3": (C, C) */
    dv_nn_linear grip_fc1, grip_fc2;  /* "curr_gripper_emb.0": (C, nhist C), ".2": (C, C) */
    int64_t dim, nhist;
} dv_nn_adaln_cond;

/* torch nn.Linear default init for all four layers, as the reference */
void dv_nn_adaln_cond_init(dv_nn_adaln_cond *e, dv_registry *r, const char *name, int64_t dim,
                           int64_t nhist, dv_dtype dt, dv_rng *rng);
/* t (B) any dtype, gripper (B, nhist, C) -> (B, C) */
dv_tensor *dv_nn_adaln_cond_forward(const dv_nn_adaln_cond *e, const dv_tensor *t, dv_tensor *gripper);

/* ---- DiT's adaLN-Zero modulation vectors -------------------------------------------------- */
#define DV_ADALN_ZERO_MAX 8
typedef struct {
    dv_nn_linear linear;  /* "<name>.1": (n C, Cc), zero-init */
    int64_t dim;          /* C */
    int n;                /* vectors: 6 per DiT block, 2 for the final layer */
} dv_nn_adaln_zero;

void dv_nn_adaln_zero_init(dv_nn_adaln_zero *m, dv_registry *r, const char *name, int64_t dim,
                           int64_t cond_dim, int n, dv_dtype dt, dv_rng *rng);
/* c (B, Cc) -> out[0 .. n) each (B, C) (new references, views of one (B, n C) result) */
void dv_nn_adaln_zero_forward(const dv_nn_adaln_zero *m, dv_tensor *c, dv_tensor **out);

#endif
