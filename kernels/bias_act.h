/* kernels/bias_act.h — fused bias + activation, forward and backward, in one pass over the
 * data (the epilogue of every MLP layer: y = act(x W^T + b) without a separate bias pass and a
 * separate activation pass).
 *
 *   x, y, gy, gx   (R, N) contiguous rows       b, gb   (N), broadcast over the rows
 *   forward:   z = x + b,  y = act(z)                                (b NULL: z = x)
 *   backward:  z = x + b recomputed (nothing but x is kept),
 *              gx = gy * act'(z)                                     (gx NULL: not stored)
 *              gb[c] = sum_r gx[r, c]                                (gb NULL: not computed)
 *
 * Activations, as torch.nn.functional defines them:
 *   none        z
 *   relu        max(z, 0)                       relu'(0) = 0
 *   gelu        z Phi(z)                        exact (erf) GELU
 *   gelu_tanh   z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))) / 2      gelu(approximate='tanh')
 *   quick_gelu  z sigmoid(1.702 z)              CLIP
 *   silu        z sigmoid(z)
 *
 * The bias gradient is deterministic: rows are cut into at most 64 fixed blocks (independent
 * of the thread count), each block sums its rows in order, and the block sums are added in
 * block order. gx may alias gy.
 * Not here: other activations (leaky relu, clamping as in StyleGAN's bias_act), f16 / bf16.
 */
#ifndef DV_KERNELS_BIAS_ACT_H
#define DV_KERNELS_BIAS_ACT_H

#include <stdint.h>

typedef enum {
    DV_BIAS_ACT_NONE = 0, DV_BIAS_ACT_RELU, DV_BIAS_ACT_GELU, DV_BIAS_ACT_GELU_TANH,
    DV_BIAS_ACT_QUICK_GELU, DV_BIAS_ACT_SILU, DV_BIAS_ACT_COUNT
} dv_bias_act_kind;

const char *dv_bias_act_name(dv_bias_act_kind act);

/* the fixed row blocks of the bias-gradient sum: block k holds rows [k * per, min(R, (k+1) * per)) */
static inline int64_t dv_bias_act_blocks(int64_t R, int64_t *per) {
    int64_t nb = R < 64 ? R : 64;
    if (nb < 1) nb = 1;
    *per = (R + nb - 1) / nb;
    if (*per < 1) *per = 1;
    return (R + *per - 1) / *per;
}

#define DV_BIAS_ACT_DECLS(T_, SUF)                                                                  \
    void dv_bias_act_fwd_##SUF(dv_bias_act_kind act, int64_t R, int64_t N, const T_ *x, const T_ *b, \
                               T_ *y);                                                              \
    void dv_bias_act_bwd_##SUF(dv_bias_act_kind act, int64_t R, int64_t N, const T_ *x, const T_ *b, \
                               const T_ *gy, T_ *gx, T_ *gb);

DV_BIAS_ACT_DECLS(float, f32_portable)
DV_BIAS_ACT_DECLS(double, f64_portable)
DV_BIAS_ACT_DECLS(float, f32_avx512)

#endif
