/* kernels/diffusion.h — the fused sampler step of the diffusion schedulers (nn/diffusion.c).
 *
 * Every reverse step of DDPM, DDIM (any prediction type, eta, clipping) and a flow-matching
 * Euler step is, per element, the same affine map of three inputs once the per-step scalars
 * are known:
 *
 *   x0  = ax * sample + am * model_output          the predicted clean sample ("x_0")
 *   x0c = clamp(x0, -clip_range, clip_range)       only when clip is set
 *   out = c0 * x0c + cx * sample + cm * model_output + cz * noise
 *
 * The scheduler works out (ax, am, c0, cx, cm, cz) for its step in double (see nn/diffusion.c
 * for each case) and the kernel makes one pass over the elements, instead of the five or six
 * full-tensor ops a direct transcription would make. It never sees a tensor: n contiguous
 * elements, raw pointers.
 *
 *   model_output, sample  (n)  inputs
 *   noise                 (n)  may be NULL: treated as zeros (cz is then ignored)
 *   out                   (n)  the next sample x_{t-1}
 *   pred_x0               (n)  may be NULL; else receives x0c (after clipping)
 *
 * out may alias sample or model_output (each element is read before it is written).
 * The f32 kernels compute in f32 with the coefficients rounded to f32 once, like a PyTorch
 * f32 sampler does; the f64 kernel is for checks.
 */
#ifndef DV_KERNELS_DIFFUSION_H
#define DV_KERNELS_DIFFUSION_H

#include <stdint.h>

typedef struct {
    double ax, am;          /* x0 = ax * sample + am * model_output */
    int clip;               /* nonzero: clamp x0 to [-clip_range, clip_range] */
    double clip_range;
    double c0, cx, cm, cz;  /* out = c0 * x0c + cx * sample + cm * model_output + cz * noise */
} dv_diffusion_coef;

void dv_diffusion_step_f32_portable(int64_t n, const float *model_output, const float *sample,
                                    const float *noise, float *out, float *pred_x0,
                                    const dv_diffusion_coef *c);
void dv_diffusion_step_f64_portable(int64_t n, const double *model_output, const double *sample,
                                    const double *noise, double *out, double *pred_x0,
                                    const dv_diffusion_coef *c);
void dv_diffusion_step_f32_avx512(int64_t n, const float *model_output, const float *sample,
                                  const float *noise, float *out, float *pred_x0,
                                  const dv_diffusion_coef *c);

#endif
