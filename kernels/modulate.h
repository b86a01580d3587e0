/* kernels/modulate.h — adaLN / FiLM conditioning kernels (DiT's modulate, adaLN-Zero's fused
 * layer norm + modulate and gated residual, FiLM).
 *
 * Tokens x, y, g, h: (B, T, C) contiguous; per-sample parameters shift, scale, gate: (B, C)
 * contiguous, broadcast over the T tokens of their sample.
 *   modulate:    y = x * (one + scale) + shift     one = 1: DiT's modulate; one = 0: FiLM with
 *                                                   scale = gamma, shift = beta. shift may be NULL.
 *   modulate_bwd: gx = g * (one + scale), gshift = sum_t g, gscale = sum_t g * x
 *                (any of gx, gshift, gscale may be NULL: not computed)
 *   ln_modulate: xhat = (x - mean) * rstd over C (no affine), y = xhat * (1 + scale) + shift;
 *                writes mean, rstd (B*T) for the backward
 *   ln_modulate_bwd: gxhat = g (1 + scale); gx = rstd (gxhat - mean(gxhat) - xhat mean(gxhat xhat));
 *                gshift = sum_t g, gscale = sum_t g xhat
 *   gated:       y = x + gate * h   (backward: gx = g; gh, ggate = modulate_bwd with one = 0)
 */
#ifndef DV_KERNELS_MODULATE_H
#define DV_KERNELS_MODULATE_H

#include <stdint.h>

#define DV_MODULATE_DECLS(T_, SUF)                                                                  \
    void dv_modulate_##SUF(int64_t B, int64_t T, int64_t C, const T_ *x, const T_ *shift,           \
                           const T_ *scale, T_ one, T_ *y);                                         \
    void dv_modulate_bwd_##SUF(int64_t B, int64_t T, int64_t C, const T_ *x, const T_ *scale, T_ one, \
                               const T_ *g, T_ *gx, T_ *gshift, T_ *gscale);                        \
    void dv_ln_modulate_##SUF(int64_t B, int64_t T, int64_t C, const T_ *x, const T_ *shift,        \
                              const T_ *scale, double eps, T_ *y, T_ *mean, T_ *rstd);              \
    void dv_ln_modulate_bwd_##SUF(int64_t B, int64_t T, int64_t C, const T_ *x, const T_ *mean,     \
                                  const T_ *rstd, const T_ *scale, const T_ *g, T_ *gx, T_ *gshift, \
                                  T_ *gscale);                                                      \
    void dv_gated_residual_##SUF(int64_t B, int64_t T, int64_t C, const T_ *x, const T_ *gate,      \
                                 const T_ *h, T_ *y);

DV_MODULATE_DECLS(float, f32_portable)
DV_MODULATE_DECLS(double, f64_portable)
DV_MODULATE_DECLS(float, f32_avx512)

#endif
