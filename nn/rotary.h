/* nn/rotary.h — rotary position encodings, as fused tensor ops with autograd.
 *
 * 1-D RoPE (Su et al., RoFormer): LLaMA's rotate-half convention (HF LlamaRotaryEmbedding /
 *   apply_rotary_pos_emb): inv_freq_k = theta^(-2k/rot), angle = pos * inv_freq, tables
 *   cos/sin = cat(angle, angle) and y = x*cos + rotate_half(x)*sin, rotate_half(x) = cat(-x2, x1).
 *   The interleaved variant pairs channels (2k, 2k+1) (tables [a0, a0, a1, a1, ...]), as
 *   RoboDual's released code; rot_dim < D rotates only the first rot_dim channels of a head.
 * 3-D rotary relative position encoding (3D Diffuser Actor, RotaryPositionEncoding3D): a third
 *   of the channels per axis x, y, z, div_k = exp(2k * -(ln 10000 / (D/3))), sin / cos of
 *   coord * div repeated twice ([s0, s0, s1, s1, ...]), applied as q*cos + rot(q)*sin with
 *   rot(q) = stack(-q[1::2], q[0::2]) interleaved (their embed_rotary).
 *
 * Both rotate channel pairs by angles linear in the position, so q·k after the rotation
 * depends only on the difference of the positions. Gradients flow to x only: positions,
 * coordinates and cos/sin tables get none (3D Diffuser Actor computes them under no_grad).
 * Shapes: x (B, H, T, D) or (B, T, D), any strides (made contiguous first).
 */
#ifndef DV_NN_ROTARY_H
#define DV_NN_ROTARY_H

#include "tensor/tensor.h"

typedef enum { DV_ROPE_HALF = 0, DV_ROPE_INTERLEAVED = 1 } dv_rope_style;

/* the cos / sin tables (P..., rot_dim) for positions pos (T) or (B, T), any real or integer
 * dtype; dt is the tables' dtype. Angles are computed in f64. */
void dv_rope_tables(dv_tensor *pos, int64_t rot_dim, double theta, dv_rope_style style, dv_dtype dt,
                    dv_tensor **cos_out, dv_tensor **sin_out);

/* x (B, H, T, D) or (B, T, D); pos (T) or (B, T) (e.g. a decode step: T = 1, pos = {P});
 * rot_dim even, <= D (pass D for the whole head); theta 10000 for LLaMA */
dv_tensor *dv_rope(dv_tensor *x, dv_tensor *pos, double theta, int64_t rot_dim, dv_rope_style style);

/* the fused rotation with given tables cos, sin: (T, rot) or (B or 1, T, rot), rot <= D even;
 * interleaved picks the pairing (see kernels/rotary.h) */
dv_tensor *dv_rotary_apply(dv_tensor *x, dv_tensor *cos, dv_tensor *sin, bool interleaved);

/* xyz (B, N, 3) -> (B, N, D, 2): [..., 0] = cos, [..., 1] = sin; D a multiple of 6 */
dv_tensor *dv_rotary3d_features(dv_tensor *xyz, int64_t D);
/* x (B, N, D) or (B, H, N, D) (pe broadcast over heads); pe (B, N, D, 2) from rotary3d_features */
dv_tensor *dv_rotary3d_apply(dv_tensor *x, dv_tensor *pe);

#endif
