/* nn/bias_act.h — fused bias + activation as one differentiable op: y = act(x + b), the
 * epilogue of an MLP layer in one pass instead of two (and one saved tensor instead of two).
 *
 *   x (..., N) any strides; b (N) or NULL, same dtype (f32 / f64); y like x, contiguous
 *   act: none, relu, gelu (erf), gelu_tanh, quick_gelu, silu — see kernels/bias_act.h
 *
 * The forward keeps only x (and b): the backward recomputes z = x + b and act'(z) in the same
 * pass that writes gx and sums gb, so nothing of size (..., N) is saved beyond the input the
 * linear layer's backward keeps anyway. Kernels: portable f32 / f64, AVX-512 f32.
 *
 *   dv_linear_act(x, w, b, act) = act(x w^T + b): dv_linear without its bias, then this op;
 *   in inference (no gradient wanted), f32 on AVX-512, one GEMM with the bias and activation
 *   in its epilogue.
 * Not here: CUDA (its own issue), f16 / bf16 activations.
 */
#ifndef DV_NN_BIAS_ACT_H
#define DV_NN_BIAS_ACT_H

#include "kernels/bias_act.h"
#include "nn/module.h"

dv_tensor *dv_bias_act(dv_tensor *x, dv_tensor *b, dv_bias_act_kind act);
/* x (..., in), w (out, in) (f32/f64, or f16/bf16 frozen), b (out) or NULL -> (..., out) */
dv_tensor *dv_linear_act(dv_tensor *x, dv_tensor *w, dv_tensor *b, dv_bias_act_kind act);
/* the module layer's activation (nn/module.h dv_act) as a bias_act kind */
dv_bias_act_kind dv_bias_act_of(dv_act a);

#endif
