/* kernels/diffusion.c — portable fused sampler step for f32 and f64 (contract in
 * kernels/diffusion.h). One loop, written once as a macro body for both types. */
#include "kernels/diffusion.h"

#include <stddef.h>

#define DV_DIFFUSION_PAR_MIN (1 << 16) /* elements above this: split across OpenMP threads */

/* The clamp is written as two compares so a NaN x0 stays NaN (as torch.clamp does). */
#define DIFFUSION_STEP_BODY(T)                                                                 \
    const T ax = (T)c->ax, am = (T)c->am, lim = (T)c->clip_range;                              \
    const T c0 = (T)c->c0, cx = (T)c->cx, cm = (T)c->cm, cz = (T)c->cz;                        \
    const int clip = c->clip;                                                                  \
    _Pragma("omp parallel for schedule(static) if (n > DV_DIFFUSION_PAR_MIN)")                \
    for (int64_t i = 0; i < n; i++) {                                                          \
        T m = model_output[i], x = sample[i];                                                  \
        T x0 = ax * x + am * m;                                                                \
        if (clip) {                                                                            \
            if (x0 < -lim) x0 = -lim;                                                          \
            if (x0 > lim) x0 = lim;                                                            \
        }                                                                                      \
        T y = c0 * x0 + cx * x + cm * m;                                                       \
        if (noise) y += cz * noise[i];                                                         \
        if (pred_x0) pred_x0[i] = x0;                                                          \
        out[i] = y;                                                                            \
    }

void dv_diffusion_step_f32_portable(int64_t n, const float *model_output, const float *sample,
                                    const float *noise, float *out, float *pred_x0,
                                    const dv_diffusion_coef *c) {
    DIFFUSION_STEP_BODY(float)
}

void dv_diffusion_step_f64_portable(int64_t n, const double *model_output, const double *sample,
                                    const double *noise, double *out, double *pred_x0,
                                    const dv_diffusion_coef *c) {
    DIFFUSION_STEP_BODY(double)
}
