/* kernels/avx512/diffusion.c — AVX-512 (f32) fused sampler step; contract in
 * kernels/diffusion.h.
 *
 * 16 elements per vector; the last partial vector uses a lane mask, so there is no scalar
 * remainder loop. The products are fused multiply-adds, so results can differ from the
 * portable kernel in the last bit or two (tests/test_diffusion.c checks the two agree). */
#include "kernels/diffusion.h"

#include <immintrin.h>
#include <stddef.h>

#define DV_DIFFUSION_PAR_MIN (1 << 16)

void dv_diffusion_step_f32_avx512(int64_t n, const float *model_output, const float *sample,
                                  const float *noise, float *out, float *pred_x0,
                                  const dv_diffusion_coef *c) {
    const __m512 ax = _mm512_set1_ps((float)c->ax), am = _mm512_set1_ps((float)c->am);
    const __m512 hi = _mm512_set1_ps((float)c->clip_range), lo = _mm512_set1_ps(-(float)c->clip_range);
    const __m512 c0 = _mm512_set1_ps((float)c->c0), cx = _mm512_set1_ps((float)c->cx);
    const __m512 cm = _mm512_set1_ps((float)c->cm), cz = _mm512_set1_ps((float)c->cz);
    const int clip = c->clip;
    int64_t nvec = (n + 15) / 16;
    #pragma omp parallel for schedule(static) if (n > DV_DIFFUSION_PAR_MIN)
    for (int64_t v = 0; v < nvec; v++) {
        int64_t i = v * 16;
        __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 m = _mm512_maskz_loadu_ps(k, model_output + i);
        __m512 x = _mm512_maskz_loadu_ps(k, sample + i);
        __m512 x0 = _mm512_fmadd_ps(ax, x, _mm512_mul_ps(am, m));
        if (clip) {
            /* compare-and-blend rather than max/min, so a NaN x0 stays NaN as in the portable
             * kernel (a NaN compares false and keeps its own lane) */
            x0 = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x0, lo, _CMP_LT_OQ), x0, lo);
            x0 = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x0, hi, _CMP_GT_OQ), x0, hi);
        }
        __m512 y = _mm512_fmadd_ps(c0, x0, _mm512_fmadd_ps(cx, x, _mm512_mul_ps(cm, m)));
        if (noise) y = _mm512_fmadd_ps(cz, _mm512_maskz_loadu_ps(k, noise + i), y);
        if (pred_x0) _mm512_mask_storeu_ps(pred_x0 + i, k, x0);
        _mm512_mask_storeu_ps(out + i, k, y);
    }
}
