/* nn/modulate.h — conditioning by per-sample affine maps, as fused ops with autograd:
 * DiT's adaLN / adaLN-Zero (Peebles & Xie, "Scalable Diffusion Models with Transformers",
 * Sec. 3.2) and FiLM (Perez et al.).
 *
 * Shapes: tokens x, h (B, T, C) (or (B, ..., C): everything between B and C counts as T);
 * per-sample parameters shift, scale, gate, gamma, beta (B, C), broadcast over the tokens.
 * Any strides (inputs are made contiguous). Every input gets a gradient when it wants one.
 */
#ifndef DV_NN_MODULATE_H
#define DV_NN_MODULATE_H

#include "tensor/tensor.h"

/* DiT's modulate: x * (1 + scale) + shift */
dv_tensor *dv_modulate(dv_tensor *x, dv_tensor *shift, dv_tensor *scale);
/* adaLN-Zero's norm + modulate: layer_norm(x, no affine, eps) * (1 + scale) + shift (DiT: eps 1e-6) */
dv_tensor *dv_layer_norm_modulate(dv_tensor *x, dv_tensor *shift, dv_tensor *scale, double eps);
/* adaLN-Zero's gated residual: x + gate * h */
dv_tensor *dv_gated_residual(dv_tensor *x, dv_tensor *gate, dv_tensor *h);
/* FiLM: gamma * x + beta */
dv_tensor *dv_film(dv_tensor *x, dv_tensor *gamma, dv_tensor *beta);

#endif
