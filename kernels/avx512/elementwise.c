/* kernels/avx512/elementwise.c — AVX-512 elementwise kernels (f32).
 * Vectorised: the arithmetic unary ops and binary ops whose operands are contiguous or a
 * broadcast scalar along the last dim. Everything else (and the transcendental ops until
 * they get vector code) uses the portable kernels. */
#include "kernels/elementwise.h"

#include <immintrin.h>
#include <stdbool.h>

static inline __m512 unary_vec(dv_unary_op op, __m512 x, __m512 p1, __m512 p2) {
    switch (op) {
    case DV_UNARY_NEG: return _mm512_sub_ps(_mm512_setzero_ps(), x);
    case DV_UNARY_ABS: return _mm512_abs_ps(x);
    case DV_UNARY_RELU: return _mm512_max_ps(x, _mm512_setzero_ps());
    case DV_UNARY_SQUARE: return _mm512_mul_ps(x, x);
    case DV_UNARY_SQRT: return _mm512_sqrt_ps(x);
    case DV_UNARY_CLAMP: return _mm512_min_ps(_mm512_max_ps(x, p1), p2);
    default: return _mm512_fmadd_ps(p1, x, p2); /* AFFINE */
    }
}

static bool unary_vectorised(dv_unary_op op) {
    return op == DV_UNARY_NEG || op == DV_UNARY_ABS || op == DV_UNARY_RELU || op == DV_UNARY_SQUARE ||
           op == DV_UNARY_SQRT || op == DV_UNARY_CLAMP || op == DV_UNARY_AFFINE;
}

void dv_unary_f32_avx512(dv_unary_op op, int64_t n, const float *x, float *y, double p1, double p2) {
    if (!unary_vectorised(op)) { dv_unary_f32_portable(op, n, x, y, p1, p2); return; }
    __m512 v1 = _mm512_set1_ps((float)p1), v2 = _mm512_set1_ps((float)p2);
    int64_t nv = n / 16 * 16;
    #pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < nv; i += 16)
        _mm512_storeu_ps(y + i, unary_vec(op, _mm512_loadu_ps(x + i), v1, v2));
    if (nv < n) {
        __mmask16 m = (__mmask16)((1u << (n - nv)) - 1);
        _mm512_mask_storeu_ps(y + nv, m, unary_vec(op, _mm512_maskz_loadu_ps(m, x + nv), v1, v2));
    }
}

void dv_unary_backward_f32_avx512(dv_unary_op op, int64_t n, const float *x, const float *y,
                                  const float *gy, float *gx, double p1, double p2) {
    dv_unary_backward_f32_portable(op, n, x, y, gy, gx, p1, p2);
}

static inline __m512 binary_vec(dv_binary_op op, __m512 a, __m512 b) {
    switch (op) {
    case DV_BINARY_ADD: return _mm512_add_ps(a, b);
    case DV_BINARY_SUB: return _mm512_sub_ps(a, b);
    case DV_BINARY_MUL: return _mm512_mul_ps(a, b);
    default: return _mm512_div_ps(a, b);
    }
}

void dv_binary_f32_avx512(dv_binary_op op, int ndim, const int64_t *shape, const float *a,
                          const int64_t *sa, const float *b, const int64_t *sb, void *yv) {
    int64_t inner = ndim ? shape[ndim - 1] : 1, rows = 1;
    for (int d = 0; d < ndim - 1; d++) rows *= shape[d];
    int64_t ia = ndim ? sa[ndim - 1] : 0, ib = ndim ? sb[ndim - 1] : 0;
    bool fast = op <= DV_BINARY_DIV && (ia == 0 || ia == 1) && (ib == 0 || ib == 1) && inner >= 16;
    if (!fast || inner == 0 || rows == 0) {
        dv_binary_f32_portable(op, ndim, shape, a, sa, b, sb, yv);
        return;
    }
    float *y = yv;
    #pragma omp parallel for schedule(static) if (rows * inner > (1 << 16) && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        int64_t oa = 0, ob = 0, rr = r;
        for (int d = ndim - 2; d >= 0; d--) {
            int64_t i = rr % shape[d];
            rr /= shape[d];
            oa += i * sa[d];
            ob += i * sb[d];
        }
        const float *pa = a + oa, *pb = b + ob;
        float *py = y + r * inner;
        int64_t i = 0;
        for (; i + 16 <= inner; i += 16) {
            __m512 va = ia ? _mm512_loadu_ps(pa + i) : _mm512_set1_ps(pa[0]);
            __m512 vb = ib ? _mm512_loadu_ps(pb + i) : _mm512_set1_ps(pb[0]);
            _mm512_storeu_ps(py + i, binary_vec(op, va, vb));
        }
        if (i < inner) {
            __mmask16 m = (__mmask16)((1u << (inner - i)) - 1);
            __m512 va = ia ? _mm512_maskz_loadu_ps(m, pa + i) : _mm512_set1_ps(pa[0]);
            __m512 vb = ib ? _mm512_maskz_loadu_ps(m, pb + i) : _mm512_set1_ps(pb[0]);
            _mm512_mask_storeu_ps(py + i, m, binary_vec(op, va, vb));
        }
    }
}
