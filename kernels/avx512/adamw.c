/* kernels/avx512/adamw.c — the fused AdamW update, f32, 16 lanes at a time, with the optional
 * f16 (vcvtps2ph) or bf16 (integer round-to-nearest-even) copy written from the same registers.
 * Same formula and order as the portable kernel (kernels/adamw.h); results differ from it
 * only by the rounding of fused multiply-adds. The tail is done with masked loads and stores.
 *
 * p, m and v are read before they are written, so their stores hit lines already in the cache.
 * The copy is a pure output: when it is large it is written with non-temporal stores, which
 * saves reading its lines before writing them (the copy is read next by the forward pass, by
 * which time a large copy would have left the cache anyway).
 */
#include "kernels/adamw.h"

#include <immintrin.h>
#include <stdbool.h>

#define STREAM_MIN_BYTES ((int64_t)8 << 20)

typedef struct {
    __m512 decay, b1, b2, omb1, omb2, neg_step, bc2, eps;
} coefs16;

/* 16 lanes of the update; m, v, p are written back by the caller (masked for the tail) */
static inline void update16(const coefs16 *k, __m512 g, __m512 *m, __m512 *v, __m512 *p) {
    *m = _mm512_fmadd_ps(k->b1, *m, _mm512_mul_ps(k->omb1, g));
    *v = _mm512_fmadd_ps(k->b2, *v, _mm512_mul_ps(_mm512_mul_ps(k->omb2, g), g));
    __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(*v), k->bc2), k->eps);
    *p = _mm512_fmadd_ps(k->neg_step, _mm512_div_ps(*m, denom), _mm512_mul_ps(*p, k->decay));
}

/* f32 -> bf16, round to nearest even; NaN stays a quiet NaN (as dv_f32_to_bf16) */
static inline __m256i to_bf16(__m512 x) {
    __m512i u = _mm512_castps_si512(x);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    __m512i q = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(_mm512_mask_mov_epi32(r, nan, q));
}

static inline __m256i to_half(__m512 x, dv_adamw_copy kind) {
    if (kind == DV_ADAMW_COPY_F16) return _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return to_bf16(x);
}

void dv_adamw_f32_avx512(int64_t n, float *p, const float *g, float *m, float *v,
                         const dv_adamw_coefs *c, dv_adamw_copy kind, uint16_t *copy) {
    coefs16 k = {
        _mm512_set1_ps((float)c->decay),          _mm512_set1_ps((float)c->beta1),
        _mm512_set1_ps((float)c->beta2),          _mm512_set1_ps((float)(1.0 - c->beta1)),
        _mm512_set1_ps((float)(1.0 - c->beta2)), _mm512_set1_ps((float)-c->step_size),
        _mm512_set1_ps((float)c->bc2_sqrt),       _mm512_set1_ps((float)c->eps),
    };
    int64_t nv = n / 16 * 16;
    bool stream = kind != DV_ADAMW_COPY_NONE && n * 2 >= STREAM_MIN_BYTES && ((uintptr_t)copy & 31) == 0;
    #pragma omp parallel if (n > (1 << 16))
    {
        #pragma omp for schedule(static) nowait
        for (int64_t i = 0; i < nv; i += 16) {
            __m512 gi = _mm512_loadu_ps(g + i), mi = _mm512_loadu_ps(m + i);
            __m512 vi = _mm512_loadu_ps(v + i), pi = _mm512_loadu_ps(p + i);
            update16(&k, gi, &mi, &vi, &pi);
            _mm512_storeu_ps(m + i, mi);
            _mm512_storeu_ps(v + i, vi);
            _mm512_storeu_ps(p + i, pi);
            if (stream) _mm256_stream_si256((__m256i *)(copy + i), to_half(pi, kind));
            else if (kind != DV_ADAMW_COPY_NONE) _mm256_storeu_si256((__m256i *)(copy + i), to_half(pi, kind));
        }
        if (stream) _mm_sfence(); /* this thread's streamed stores visible before the barrier */
    }
    if (nv < n) {
        __mmask16 t = (__mmask16)((1u << (n - nv)) - 1);
        __m512 gi = _mm512_maskz_loadu_ps(t, g + nv), mi = _mm512_maskz_loadu_ps(t, m + nv);
        __m512 vi = _mm512_maskz_loadu_ps(t, v + nv), pi = _mm512_maskz_loadu_ps(t, p + nv);
        update16(&k, gi, &mi, &vi, &pi);
        _mm512_mask_storeu_ps(m + nv, t, mi);
        _mm512_mask_storeu_ps(v + nv, t, vi);
        _mm512_mask_storeu_ps(p + nv, t, pi);
        if (kind != DV_ADAMW_COPY_NONE) _mm256_mask_storeu_epi16(copy + nv, t, to_half(pi, kind));
    }
}
