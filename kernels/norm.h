/* kernels/norm.h — softmax, log-softmax, LayerNorm, RMSNorm and the losses built on them, over
 * the rows of a contiguous (rows, n) buffer: every kernel normalises along the last dim, one
 * row at a time, rows in parallel (OpenMP). Ops that normalise another dim move it last first.
 *
 * Conventions shared by every kernel here:
 *   x, y, gy, gx   (rows, n) contiguous
 *   w, b, gw, gb   (n)        — LayerNorm / RMSNorm affine parameters and their gradients
 *   mean, rstd     (rows)     — saved by the forward for the backward, rstd = 1/sqrt(var + eps);
 *                                double even for f32 data: a row mean of 100 rounded to f32 is
 *                                off by up to 4e-6, and so would be every xhat of the backward
 * Optional pointers may be NULL: w / b (no affine), mean / rstd (inference: nothing to save),
 * gx / gw / gb (only the wanted gradients are computed). gw and gb are overwritten, not added to.
 *
 * Precision: the portable f32 kernels accumulate row sums in double, so they are the reference
 * the AVX-512 kernels are tested against. The portable LayerNorm / RMSNorm weight gradients are
 * column sums by blocks of 64 columns (the result does not depend on the thread count); the
 * AVX-512 ones fuse them into the row pass with per-thread buffers. Variance is always two-pass (mean first, then the mean
 * of squared deviations): the one-pass E[x^2] - E[x]^2 loses every digit when |mean| >> std.
 *
 * What this file deliberately does not do: half-precision inputs (cast to f32 first) and fused
 * residual-add + norm (later, when a model asks for it).
 */
#ifndef DV_KERNELS_NORM_H
#define DV_KERNELS_NORM_H

#include <stdint.h>

/* ---- portable, f32 ---- */
/* y = exp(x - max) / sum exp(x - max) */
void dv_softmax_fwd_f32_portable(int64_t rows, int64_t n, const float *x, float *y);
/* gx = y * (gy - sum(gy * y)) */
void dv_softmax_bwd_f32_portable(int64_t rows, int64_t n, const float *y, const float *gy, float *gx);
/* y = x - max - log(sum exp(x - max)) */
void dv_log_softmax_fwd_f32_portable(int64_t rows, int64_t n, const float *x, float *y);
/* gx = gy - exp(y) * sum(gy) */
void dv_log_softmax_bwd_f32_portable(int64_t rows, int64_t n, const float *y, const float *gy, float *gx);
/* y = (x - mean) * rstd * w + b */
void dv_layernorm_fwd_f32_portable(int64_t rows, int64_t n, const float *x, const float *w, const float *b,
                                   double eps, float *y, double *mean, double *rstd);
/* xhat = (x - mean) * rstd, g = gy * w:
 *   gx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  gw = sum_rows gy * xhat,  gb = sum_rows gy */
void dv_layernorm_bwd_f32_portable(int64_t rows, int64_t n, const float *x, const float *w, const double *mean,
                                   const double *rstd, const float *gy, float *gx, float *gw, float *gb);
/* y = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps) */
void dv_rmsnorm_fwd_f32_portable(int64_t rows, int64_t n, const float *x, const float *w, double eps,
                                 float *y, double *rstd);
/* g = gy * w:  gx = rstd * (g - x * rstd^2 * mean(g * x)),  gw = sum_rows gy * x * rstd */
void dv_rmsnorm_bwd_f32_portable(int64_t rows, int64_t n, const float *x, const float *w, const double *rstd,
                                 const float *gy, float *gx, float *gw);
/* cross-entropy of logits x (rows, n) against class ids target (rows): lse[r] = logsumexp(x[r]),
 * loss[r] = lse[r] - x[r, target[r]], or 0 (and lse 0) where target == ignore_index. Targets
 * must already lie in [0, n) (the op checks). lse is double: rounded to f32, a logsumexp of 100
 * would put a 4e-6 relative error on every probability the backward makes from it. */
void dv_cross_entropy_fwd_f32_portable(int64_t rows, int64_t n, const float *x, const int64_t *target,
                                       int64_t ignore_index, float *loss, double *lse);
/* gx[r] = scale * (softmax(x[r]) - onehot(target[r])), from the saved lse; zero rows where ignored */
void dv_cross_entropy_bwd_f32_portable(int64_t rows, int64_t n, const float *x, const int64_t *target,
                                       int64_t ignore_index, const double *lse, double scale, float *gx);

/* ---- portable, f64 (same contracts) ---- */
void dv_softmax_fwd_f64_portable(int64_t rows, int64_t n, const double *x, double *y);
void dv_softmax_bwd_f64_portable(int64_t rows, int64_t n, const double *y, const double *gy, double *gx);
void dv_log_softmax_fwd_f64_portable(int64_t rows, int64_t n, const double *x, double *y);
void dv_log_softmax_bwd_f64_portable(int64_t rows, int64_t n, const double *y, const double *gy, double *gx);
void dv_layernorm_fwd_f64_portable(int64_t rows, int64_t n, const double *x, const double *w, const double *b,
                                   double eps, double *y, double *mean, double *rstd);
void dv_layernorm_bwd_f64_portable(int64_t rows, int64_t n, const double *x, const double *w, const double *mean,
                                   const double *rstd, const double *gy, double *gx, double *gw, double *gb);
void dv_rmsnorm_fwd_f64_portable(int64_t rows, int64_t n, const double *x, const double *w, double eps,
                                 double *y, double *rstd);
void dv_rmsnorm_bwd_f64_portable(int64_t rows, int64_t n, const double *x, const double *w, const double *rstd,
                                 const double *gy, double *gx, double *gw);
void dv_cross_entropy_fwd_f64_portable(int64_t rows, int64_t n, const double *x, const int64_t *target,
                                       int64_t ignore_index, double *loss, double *lse);
void dv_cross_entropy_bwd_f64_portable(int64_t rows, int64_t n, const double *x, const int64_t *target,
                                       int64_t ignore_index, const double *lse, double scale, double *gx);

/* ---- AVX-512, f32 (same contracts; OpenMP over rows, masked tails) ---- */
void dv_softmax_fwd_f32_avx512(int64_t rows, int64_t n, const float *x, float *y);
void dv_softmax_bwd_f32_avx512(int64_t rows, int64_t n, const float *y, const float *gy, float *gx);
void dv_log_softmax_fwd_f32_avx512(int64_t rows, int64_t n, const float *x, float *y);
void dv_log_softmax_bwd_f32_avx512(int64_t rows, int64_t n, const float *y, const float *gy, float *gx);
void dv_layernorm_fwd_f32_avx512(int64_t rows, int64_t n, const float *x, const float *w, const float *b,
                                 double eps, float *y, double *mean, double *rstd);
void dv_layernorm_bwd_f32_avx512(int64_t rows, int64_t n, const float *x, const float *w, const double *mean,
                                 const double *rstd, const float *gy, float *gx, float *gw, float *gb);
void dv_rmsnorm_fwd_f32_avx512(int64_t rows, int64_t n, const float *x, const float *w, double eps,
                               float *y, double *rstd);
void dv_rmsnorm_bwd_f32_avx512(int64_t rows, int64_t n, const float *x, const float *w, const double *rstd,
                               const float *gy, float *gx, float *gw);
void dv_cross_entropy_fwd_f32_avx512(int64_t rows, int64_t n, const float *x, const int64_t *target,
                                     int64_t ignore_index, float *loss, double *lse);
void dv_cross_entropy_bwd_f32_avx512(int64_t rows, int64_t n, const float *x, const int64_t *target,
                                     int64_t ignore_index, const double *lse, double scale, float *gx);

/* binary cross-entropy with logits, elementwise over n values (portable only: it is one pass of
 * cheap arithmetic). loss(x, t) = max(x, 0) - x t + log(1 + exp(-|x|)) never overflows.
 * _sum returns the sum of the n losses (accumulated in double). _bwd: gx = scale * (sigmoid(x)
 * - t), gt = -scale * x; either may be NULL. */
double dv_bce_logits_sum_f32_portable(int64_t n, const float *x, const float *t);
double dv_bce_logits_sum_f64_portable(int64_t n, const double *x, const double *t);
void dv_bce_logits_bwd_f32_portable(int64_t n, const float *x, const float *t, double scale,
                                    float *gx, float *gt);
void dv_bce_logits_bwd_f64_portable(int64_t n, const double *x, const double *t, double scale,
                                    double *gx, double *gt);

#endif
