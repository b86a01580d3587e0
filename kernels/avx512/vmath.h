/* kernels/avx512/vmath.h — the canonical AVX-512 f32 vector math library: 16 lanes at a time.
 *
 *   vm_exp(x)      e^x; <= 1.02 ulp; x > 88.72 -> +inf, x < -103.97 -> 0 (denormal results
 *                  in between), NaN -> NaN, like expf
 *   vm_log(x)      ln x; <= 0.97 ulp; 0 -> -inf, x < 0 -> NaN, +inf -> +inf, denormals ok
 *   vm_tanh(x)     tanh x; <= 1.34 ulp everywhere, also near 0 (odd polynomial there)
 *   vm_sigmoid(x)  1 / (1 + e^-x); <= 2.41 ulp, also for x << 0 (no overflow of e^-x there)
 *   vm_erf(x)      erf x; <= 1.48 ulp (so absolute <= ~1e-7)
 *   vm_normcdf(x)  Phi(x) = (1 + erf(x / sqrt 2)) / 2, the standard normal CDF (exact GELU is
 *                  x * Phi(x)); <= ~3 ulp for x >= 0; for x < 0 <= ~9.1 ulp relative, down
 *                  to the underflow at x = -14 (1 + erf(.) would lose all digits there)
 *   vm_normcdf_pdf_(x, &pdf)  Phi(x), and the density phi(x) into pdf, from one exponential
 *   vm_hsum(v), vm_hmax(v)   horizontal sum / max of the 16 lanes
 *
 * The error bounds are the worst case over all 2^32 f32 inputs against libm in double (measured
 * once, exhaustively); tests/test_vmath.c re-checks them on 1.5 M inputs per function, edge values
 * and NaN / inf / signed-zero handling included.
 * Every AVX-512 kernel that needs these functions includes this header (it is static inline
 * and needs -mavx512f -mavx512dq -mfma, as the kernels/avx512 files are compiled). Names ending
 * in _ are the building blocks of the others.
 *
 * How the functions work (the polynomial coefficients are our own minimax fits, made with an
 * iteratively reweighted least-squares (Lawson) fit on Chebyshev nodes, each coefficient
 * rounded to f32 in turn with the rest refitted to absorb the rounding):
 *   exp   x = n ln2 + r with n = round(x / ln2), |r| <= ln2/2 (ln2 split in two parts so n*hi is
 *         exact); e^r = 1 + r + r^2 P(r), deg-6 fit; 2^n applied with vscalefps, which also
 *         produces the overflow to inf and the gradual underflow to denormals and 0.
 *   log   x = 2^e m with m in [0.75, 1.5) (vgetmantps / vgetexpps, exact, denormals included);
 *         f = m - 1 (exact), s = f / (2 + f), ln(1 + f) = 2 atanh(s) = f - s (f - T) with
 *         T = s^2 (2/3 + 2/5 s^2 + ... + 2/11 s^8) (the atanh series, |s| < 0.2);
 *         ln x = e ln2 + ln(1 + f).
 *   tanh  |x| < 0.625: x + x^3 P(x^2) (deg-11 odd fit); else 1 - 2 / (e^{2|x|} + 1); the sign
 *         of x is copied onto the result (so tanh(-0) = -0).
 *   erfc  erfc(a) = e^{-a^2} R(t) for a >= 0, t = 2 / (2 + a), R a deg-10 fit of erfc(a) e^{a^2}
 *         on [0, 10]; a^2 is split into p + e exactly (FMA) and e^{-a^2} = e^{-p} (1 - e).
 *   erf   |x| < 0.875: x + x Q(x^2) (deg-15 odd fit, keeps the relative accuracy near 0);
 *         else 1 - erfc(|x|).
 *   Phi   erfc(|x| / sqrt 2) / 2 or 1 minus that: one erfc, no branch of its own.
 *
 * Not here: f64; sin / cos (nothing needs them yet).
 */
#ifndef DV_KERNELS_AVX512_VMATH_H
#define DV_KERNELS_AVX512_VMATH_H

#include <immintrin.h>

#define VM_INLINE static inline __attribute__((always_inline))

/* ---- small helpers ------------------------------------------------------------------------ */
VM_INLINE __m512 vm_set(float v) { return _mm512_set1_ps(v); }
/* |x| and the sign bit of x */
VM_INLINE __m512 vm_abs(__m512 x) { return _mm512_abs_ps(x); }
VM_INLINE __m512 vm_signbit(__m512 x) { return _mm512_and_ps(x, _mm512_castsi512_ps(_mm512_set1_epi32((int)0x80000000u))); }
/* min/max that return x when x is NaN (vminps/vmaxps return their second operand on NaN) */
VM_INLINE __m512 vm_clamp(__m512 x, float lo, float hi) {
    return _mm512_max_ps(vm_set(lo), _mm512_min_ps(vm_set(hi), x));
}

VM_INLINE float vm_hsum(__m512 v) { return _mm512_reduce_add_ps(v); }
VM_INLINE float vm_hmax(__m512 v) { return _mm512_reduce_max_ps(v); }

/* ---- exp ---------------------------------------------------------------------------------- */
/* e^x for x in [-180, 90] or NaN (n * ln2_hi stays exact) */
VM_INLINE __m512 vm_exp_core_(__m512 x) {
    const __m512 log2e = vm_set(1.44269504088896341f);
    const __m512 ln2_hi = vm_set(0.693145751953125f);     /* 16 significant bits: n * hi is exact */
    const __m512 ln2_lo = vm_set(1.42860682030941723e-6f); /* ln2 - ln2_hi */
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, ln2_hi, x);
    r = _mm512_fnmadd_ps(n, ln2_lo, r);
    /* e^r = 1 + r + r^2 (c2 + c3 r + c4 r^2 + c5 r^3 + c6 r^4) on |r| <= ln2/2, rel. err 4e-9 */
    __m512 p = vm_set(1.381461276e-03f);
    p = _mm512_fmadd_ps(p, r, vm_set(8.368710056e-03f));
    p = _mm512_fmadd_ps(p, r, vm_set(4.166838899e-02f));
    p = _mm512_fmadd_ps(p, r, vm_set(1.666652113e-01f));
    p = _mm512_fmadd_ps(p, r, vm_set(4.999999404e-01f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);
    p = _mm512_add_ps(p, vm_set(1.0f));
    return _mm512_scalef_ps(p, n); /* p * 2^n, rounded once: overflow -> inf, underflow -> denormal/0 */
}

VM_INLINE __m512 vm_exp(__m512 x) {
    /* beyond these the answer is inf / 0 anyway; clamping keeps n small enough for the reduction */
    return vm_exp_core_(vm_clamp(x, -110.0f, 90.0f));
}

/* ---- log ---------------------------------------------------------------------------------- */
VM_INLINE __m512 vm_log(__m512 x) {
    const __m512 ln2_hi = vm_set(0.693145751953125f);
    const __m512 ln2_lo = vm_set(1.42860682030941723e-6f);
    const __m512 one = vm_set(1.0f);
    /* x = 2^e m, m in [0.75, 1.5); getexp(x) - getexp(m) is e (m < 1 means one more power of 2) */
    __m512 m = _mm512_getmant_ps(x, _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_nan);
    __m512 e = _mm512_sub_ps(_mm512_getexp_ps(x), _mm512_getexp_ps(m));
    __m512 f = _mm512_sub_ps(m, one);                 /* exact, f in [-0.25, 0.5) */
    __m512 s = _mm512_div_ps(f, _mm512_add_ps(f, vm_set(2.0f)));
    __m512 z = _mm512_mul_ps(s, s);
    __m512 t = vm_set(2.0f / 11);
    t = _mm512_fmadd_ps(t, z, vm_set(2.0f / 9));
    t = _mm512_fmadd_ps(t, z, vm_set(2.0f / 7));
    t = _mm512_fmadd_ps(t, z, vm_set(2.0f / 5));
    t = _mm512_fmadd_ps(t, z, vm_set(2.0f / 3));
    t = _mm512_mul_ps(t, z);
    __m512 l = _mm512_fnmadd_ps(s, _mm512_sub_ps(f, t), f); /* ln(1 + f) = f - s (f - T) */
    l = _mm512_fmadd_ps(e, ln2_lo, l);
    __m512 y = _mm512_fmadd_ps(e, ln2_hi, l);
    /* special inputs: 0 -> -inf, negative -> NaN (getmant already gave NaN), +inf -> +inf */
    __mmask16 zero = _mm512_fpclass_ps_mask(x, 0x06);  /* +0, -0 */
    __mmask16 pinf = _mm512_fpclass_ps_mask(x, 0x08);  /* +inf */
    y = _mm512_mask_mov_ps(y, zero, vm_set(-__builtin_inff()));
    y = _mm512_mask_mov_ps(y, pinf, x);
    return y;
}

/* ---- tanh --------------------------------------------------------------------------------- */
VM_INLINE __m512 vm_tanh(__m512 x) {
    __m512 a = vm_abs(x);
    /* small: a + a^3 P(a^2), rel. err 9e-9 on [0, 0.625] */
    __m512 z = _mm512_mul_ps(a, a);
    __m512 p = vm_set(-5.704987328e-03f);
    p = _mm512_fmadd_ps(p, z, vm_set(2.063908800e-02f));
    p = _mm512_fmadd_ps(p, z, vm_set(-5.373971537e-02f));
    p = _mm512_fmadd_ps(p, z, vm_set(1.333144158e-01f));
    p = _mm512_fmadd_ps(p, z, vm_set(-3.333328068e-01f));
    __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(a, z), p, a);
    /* large: 1 - 2 / (e^{2a} + 1); e^{2a} = inf gives exactly 1 */
    __m512 big = vm_exp(_mm512_add_ps(a, a));
    big = _mm512_sub_ps(vm_set(1.0f), _mm512_div_ps(vm_set(2.0f), _mm512_add_ps(big, vm_set(1.0f))));
    __mmask16 is_small = _mm512_cmp_ps_mask(a, vm_set(0.625f), _CMP_LT_OQ);
    __m512 y = _mm512_mask_mov_ps(big, is_small, small);
    return _mm512_or_ps(y, vm_signbit(x));
}

/* ---- sigmoid ------------------------------------------------------------------------------ */
/* e = e^{-|x|} never overflows: x >= 0: 1 / (1 + e), x < 0: e / (1 + e) (exact in both tails) */
VM_INLINE __m512 vm_sigmoid(__m512 x) {
    __m512 e = vm_exp(_mm512_sub_ps(_mm512_setzero_ps(), vm_abs(x)));
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512 num = _mm512_mask_mov_ps(vm_set(1.0f), neg, e);
    return _mm512_div_ps(num, _mm512_add_ps(vm_set(1.0f), e));
}

/* ---- erf / erfc / normal CDF -------------------------------------------------------------- */
/* erf(a) - a for 0 <= a < 0.875, as a * Q(a^2) (rel. err of erf 9e-10) */
VM_INLINE __m512 vm_erf_small_(__m512 a) {
    __m512 z = _mm512_mul_ps(a, a);
    __m512 q = vm_set(7.842241757e-05f);
    q = _mm512_fmadd_ps(q, z, vm_set(-8.021723479e-04f));
    q = _mm512_fmadd_ps(q, z, vm_set(5.190635566e-03f));
    q = _mm512_fmadd_ps(q, z, vm_set(-2.685528249e-02f));
    q = _mm512_fmadd_ps(q, z, vm_set(1.128362194e-01f));
    q = _mm512_fmadd_ps(q, z, vm_set(-3.761262894e-01f));
    q = _mm512_fmadd_ps(q, z, vm_set(1.283791661e-01f));
    return _mm512_mul_ps(a, q);
}

/* s R(t): R(t) = erfc(a) e^{a^2}, t = 2 / (2 + a) in (1/6, 1], a deg-10 fit on a in [0, 10] (rel.
 * err 2e-8; fine up to a = 10.3); s is a constant folded into the coefficients. */
VM_INLINE __m512 vm_erfcx_(__m512 a, float s) {
    __m512 u = _mm512_sub_ps(_mm512_div_ps(vm_set(2.0f), _mm512_add_ps(vm_set(2.0f), a)), vm_set(0.5833333135f));
    __m512 r = vm_set(s * 3.247715905e-02f);
    r = _mm512_fmadd_ps(r, u, vm_set(s * -4.980694875e-02f));
    r = _mm512_fmadd_ps(r, u, vm_set(s * -3.945396096e-02f));
    r = _mm512_fmadd_ps(r, u, vm_set(s * 1.135504842e-01f));
    r = _mm512_fmadd_ps(r, u, vm_set(s * 1.721922122e-02f));
    r = _mm512_fmadd_ps(r, u, vm_set(s * -2.328716964e-01f));
    r = _mm512_fmadd_ps(r, u, vm_set(s * -3.669901565e-02f));
    r = _mm512_fmadd_ps(r, u, vm_set(s * 6.357730627e-01f));
    r = _mm512_fmadd_ps(r, u, vm_set(s * 1.125755072e+00f));
    r = _mm512_fmadd_ps(r, u, vm_set(s * 1.028723478e+00f));
    return _mm512_fmadd_ps(r, u, vm_set(s * 3.336736262e-01f));
}

VM_INLINE __m512 vm_erf(__m512 x) {
    __m512 a = _mm512_min_ps(vm_set(10.0f), vm_abs(x)); /* erf = +-1 in f32 from 3.92 on */
    __m512 small = _mm512_add_ps(a, vm_erf_small_(a));
    /* erfc(a) = e^{-a^2} R, a^2 = -mp + e exactly, e^{-a^2} = e^{mp} (1 - e) */
    __m512 mp = _mm512_fnmadd_ps(a, a, _mm512_setzero_ps()), e = _mm512_fmadd_ps(a, a, mp);
    __m512 r = vm_erfcx_(a, 1.0f);
    __m512 big = _mm512_sub_ps(vm_set(1.0f), _mm512_mul_ps(vm_exp_core_(mp), _mm512_fnmadd_ps(r, e, r)));
    __mmask16 is_small = _mm512_cmp_ps_mask(a, vm_set(0.875f), _CMP_LT_OQ);
    __m512 y = _mm512_mask_mov_ps(big, is_small, small);
    return _mm512_or_ps(y, vm_signbit(x));
}

/* Phi(x) = erfc(-x / sqrt 2) / 2: with h = erfc(|x| / sqrt 2) / 2, Phi = h for x < 0 and 1 - h
 * for x >= 0 (no cancellation in the left tail; absolute accuracy is all that 1 - h needs).
 * a^2 = x^2 / 2 is split exactly from x itself. If pdf is not NULL it gets the normal density
 * phi(x) = e^{-x^2/2} / sqrt(2 pi) from the same exponential (what GELU's derivative needs). */
VM_INLINE __m512 vm_normcdf_pdf_(__m512 x, __m512 *pdf) {
    /* |x| <= 14.5: Phi(-14.5) and phi(14.5) have underflowed to 0 (NaN stays NaN) */
    __m512 ax = _mm512_min_ps(vm_set(14.5f), vm_abs(x));
    __m512 a = _mm512_mul_ps(ax, vm_set(0.70710678118654752f));
    __m512 xh = _mm512_mul_ps(ax, vm_set(0.5f));                        /* exact */
    __m512 mp = _mm512_fnmadd_ps(ax, xh, _mm512_setzero_ps());          /* -x^2/2 rounded */
    __m512 e = _mm512_fmadd_ps(ax, xh, mp);                             /* its rounding error */
    __m512 g = vm_exp_core_(mp);
    if (pdf) *pdf = _mm512_mul_ps(_mm512_fnmadd_ps(g, e, g), vm_set(0.39894228040143267794f));
    __m512 r = vm_erfcx_(a, 0.5f);
    __m512 h = _mm512_mul_ps(g, _mm512_fnmadd_ps(r, e, r));             /* erfc(a) / 2 */
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_mov_ps(_mm512_sub_ps(vm_set(1.0f), h), neg, h);
}

VM_INLINE __m512 vm_normcdf(__m512 x) { return vm_normcdf_pdf_(x, NULL); }

#endif
