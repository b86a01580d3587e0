/* kernels/avx512/elementwise.c — AVX-512 elementwise kernels (f32).
 *
 * Every unary op has a vector forward and backward (gx = gy * f'(x)) except pow with an exponent
 * other than 1 or 2, which uses the portable kernel. The transcendental functions come from
 * kernels/avx512/vmath.h. Each formula mirrors the portable one in kernels/elementwise_impl.h, so
 * the two sets agree to a few ulp (tests/test_vmath.c measures by how much); where the portable
 * formula cancels (exact GELU and the tanh GELU for very negative x) the vector one uses a
 * cancellation-free form of the same function, which is closer to the true value.
 *
 * Binary ops: vector code for add/sub/mul/div/maximum/minimum and the comparisons when the last
 * (collapsed) dim of each operand is contiguous or broadcast; other layouts and pow use the
 * portable kernel. maximum/minimum keep the portable NaN rule: a NaN in a wins, a NaN in b wins
 * unless a >= b (which a NaN b never satisfies), i.e. NaN propagates from either side.
 *
 * Work is split into chunks of CHUNK elements, spread over OpenMP threads when the whole call
 * is large. Outputs of more than STREAM_MIN_BYTES are written with non-temporal stores: they do
 * not fit in the cache anyway, and streaming saves the read-for-ownership of every output line
 * (a third of the memory traffic of a unary op).
 */
#include "kernels/elementwise.h"
#include "kernels/avx512/vmath.h"

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>

enum {
    CHUNK = 16384,               /* elements per OpenMP work item (64 KiB of f32) */
    PAR_MIN = 1 << 15,           /* fewer elements than this run on the calling thread */
    MAX_DIMS = 16,               /* more dims than this (none today) go to the portable kernel */
};
#define STREAM_MIN_BYTES ((int64_t)16 << 20) /* half the L3 of the machines we target */

static inline __mmask16 tail_mask(int64_t k) { return (__mmask16)((1u << k) - 1); }
static inline bool aligned64(const void *p) { return ((uintptr_t)p & 63) == 0; }

/* ---------------------------------------------------------------------------------------------
 * Unary forward
 */
static const float k_sqrt_2_over_pi = 0.79788456080286535588f;

VM_INLINE __m512 unary_vec(dv_unary_op op, __m512 x, __m512 p1, __m512 p2) {
    const __m512 one = vm_set(1.0f), zero = _mm512_setzero_ps();
    switch (op) {
    case DV_UNARY_NEG: return _mm512_sub_ps(zero, x);
    case DV_UNARY_EXP: return vm_exp(x);
    case DV_UNARY_LOG: return vm_log(x);
    case DV_UNARY_SQRT: return _mm512_sqrt_ps(x);
    case DV_UNARY_RSQRT: return _mm512_div_ps(one, _mm512_sqrt_ps(x)); /* exact, as 1 / sqrtf */
    case DV_UNARY_ABS: return vm_abs(x);
    case DV_UNARY_TANH: return vm_tanh(x);
    case DV_UNARY_SIGMOID: return vm_sigmoid(x);
    case DV_UNARY_RELU: return _mm512_max_ps(x, zero); /* NaN -> 0, as x > 0 ? x : 0 */
    case DV_UNARY_GELU: return _mm512_mul_ps(x, vm_normcdf(x));
    case DV_UNARY_GELU_TANH: {
        /* x (1 + tanh u) / 2 = x / (1 + e^{-2u}), u = sqrt(2/pi) (x + 0.044715 x^3) */
        __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
        __m512 u = _mm512_mul_ps(vm_set(k_sqrt_2_over_pi), _mm512_fmadd_ps(vm_set(0.044715f), x3, x));
        __m512 e = vm_exp(_mm512_mul_ps(vm_set(-2.0f), u));
        return _mm512_div_ps(x, _mm512_add_ps(one, e));
    }
    case DV_UNARY_QUICK_GELU:
        return _mm512_div_ps(x, _mm512_add_ps(one, vm_exp(_mm512_mul_ps(vm_set(-1.702f), x))));
    case DV_UNARY_SILU: return _mm512_div_ps(x, _mm512_add_ps(one, vm_exp(_mm512_sub_ps(zero, x))));
    case DV_UNARY_SQUARE: return _mm512_mul_ps(x, x);
    case DV_UNARY_POW: return _mm512_mul_ps(x, x); /* only p = 2 gets here (x * x = powf(x, 2)) */
    case DV_UNARY_CLAMP: {
        /* x < lo ? lo : (x > hi ? hi : x), NaN stays NaN */
        __m512 y = _mm512_mask_mov_ps(x, _mm512_cmp_ps_mask(x, p2, _CMP_GT_OQ), p2);
        return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, p1, _CMP_LT_OQ), p1);
    }
    default: return _mm512_add_ps(_mm512_mul_ps(p1, x), p2); /* AFFINE */
    }
}

/* y[0..n) = f(x[0..n)); n need not be a multiple of 16 (masked tail) */
VM_INLINE void unary_span(dv_unary_op op, int64_t n, const float *x, float *y, float p1, float p2,
                          bool stream) {
    __m512 v1 = vm_set(p1), v2 = vm_set(p2);
    int64_t i = 0;
    if (stream)
        for (; i + 16 <= n; i += 16) _mm512_stream_ps(y + i, unary_vec(op, _mm512_loadu_ps(x + i), v1, v2));
    else
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, unary_vec(op, _mm512_loadu_ps(x + i), v1, v2));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, unary_vec(op, _mm512_maskz_loadu_ps(m, x + i), v1, v2));
    }
}

/* One specialised span function per op (the switch in unary_vec folds away), picked once per call:
 * OpenMP outlines the parallel loop before inlining, so a switch inside it would stay per vector. */
typedef void (*unary_span_fn)(int64_t n, const float *x, float *y, float p1, float p2, bool stream);
#define UNARY_SPAN(OP)                                                                             \
    static void span_##OP(int64_t n, const float *x, float *y, float p1, float p2, bool stream) { \
        unary_span(OP, n, x, y, p1, p2, stream);                                                   \
    }
UNARY_SPAN(DV_UNARY_NEG) UNARY_SPAN(DV_UNARY_EXP) UNARY_SPAN(DV_UNARY_LOG) UNARY_SPAN(DV_UNARY_SQRT)
UNARY_SPAN(DV_UNARY_RSQRT) UNARY_SPAN(DV_UNARY_ABS) UNARY_SPAN(DV_UNARY_TANH)
UNARY_SPAN(DV_UNARY_SIGMOID) UNARY_SPAN(DV_UNARY_RELU) UNARY_SPAN(DV_UNARY_GELU)
UNARY_SPAN(DV_UNARY_GELU_TANH) UNARY_SPAN(DV_UNARY_QUICK_GELU) UNARY_SPAN(DV_UNARY_SILU)
UNARY_SPAN(DV_UNARY_SQUARE) UNARY_SPAN(DV_UNARY_POW) UNARY_SPAN(DV_UNARY_CLAMP)
UNARY_SPAN(DV_UNARY_AFFINE)
#undef UNARY_SPAN

static const unary_span_fn k_unary_span[DV_UNARY_COUNT] = {
    span_DV_UNARY_NEG, span_DV_UNARY_EXP, span_DV_UNARY_LOG, span_DV_UNARY_SQRT,
    span_DV_UNARY_RSQRT, span_DV_UNARY_ABS, span_DV_UNARY_TANH, span_DV_UNARY_SIGMOID,
    span_DV_UNARY_RELU, span_DV_UNARY_GELU, span_DV_UNARY_GELU_TANH, span_DV_UNARY_QUICK_GELU,
    span_DV_UNARY_SILU, span_DV_UNARY_SQUARE, span_DV_UNARY_POW, span_DV_UNARY_CLAMP,
    span_DV_UNARY_AFFINE,
};

/* pow has vector code only for p = 2; everything else is vectorised */
static bool unary_vectorised(dv_unary_op op, double p1) {
    return (unsigned)op < DV_UNARY_COUNT && (op != DV_UNARY_POW || p1 == 2.0);
}

void dv_unary_f32_avx512(dv_unary_op op, int64_t n, const float *x, float *y, double p1, double p2) {
    if (!unary_vectorised(op, p1)) { dv_unary_f32_portable(op, n, x, y, p1, p2); return; }
    unary_span_fn span = k_unary_span[op];
    float q1 = (float)p1, q2 = (float)p2;
    bool stream = n * (int64_t)sizeof(float) >= STREAM_MIN_BYTES && aligned64(y);
    #pragma omp parallel if (n > PAR_MIN)
    {
        #pragma omp for schedule(static) nowait
        for (int64_t c = 0; c < n; c += CHUNK) span(n - c < CHUNK ? n - c : CHUNK, x + c, y + c, q1, q2, stream);
        if (stream) _mm_sfence(); /* make this thread's streamed stores visible before the barrier */
    }
}

/* ---------------------------------------------------------------------------------------------
 * Unary backward: gx = gy * f'(x), f'(x) as in the portable unary_deriv (y = f(x) given)
 */
VM_INLINE __m512 deriv_vec(dv_unary_op op, __m512 x, __m512 y, __m512 p1, __m512 p2) {
    const __m512 one = vm_set(1.0f), zero = _mm512_setzero_ps(), half = vm_set(0.5f);
    switch (op) {
    case DV_UNARY_NEG: return vm_set(-1.0f);
    case DV_UNARY_EXP: return y;
    case DV_UNARY_LOG: return _mm512_div_ps(one, x);
    case DV_UNARY_SQRT: return _mm512_div_ps(half, y);
    case DV_UNARY_RSQRT: return _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(vm_set(-0.5f), y), y), y);
    case DV_UNARY_ABS: {
        __m512 d = _mm512_mask_mov_ps(zero, _mm512_cmp_ps_mask(x, zero, _CMP_GT_OQ), one);
        return _mm512_mask_mov_ps(d, _mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ), vm_set(-1.0f));
    }
    case DV_UNARY_TANH: return _mm512_fnmadd_ps(y, y, one);
    case DV_UNARY_SIGMOID: return _mm512_mul_ps(y, _mm512_sub_ps(one, y));
    case DV_UNARY_RELU: return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, zero, _CMP_GT_OQ), one);
    case DV_UNARY_GELU: { /* Phi(x) + x phi(x) */
        __m512 pdf, cdf = vm_normcdf_pdf_(x, &pdf);
        return _mm512_fmadd_ps(x, pdf, cdf);
    }
    case DV_UNARY_GELU_TANH: {
        /* (1 + th) / 2 + x (1 - th^2) k (1 + 0.134145 x^2) / 2, th = tanh(k (x + 0.044715 x^3)) */
        const __m512 k = vm_set(k_sqrt_2_over_pi);
        __m512 x2 = _mm512_mul_ps(x, x);
        __m512 u = _mm512_mul_ps(k, _mm512_fmadd_ps(_mm512_mul_ps(vm_set(0.044715f), x2), x, x));
        __m512 th = vm_tanh(u);
        __m512 a = _mm512_mul_ps(half, _mm512_add_ps(one, th));
        __m512 b = _mm512_mul_ps(_mm512_mul_ps(half, x), _mm512_fnmadd_ps(th, th, one));
        b = _mm512_mul_ps(_mm512_mul_ps(b, k), _mm512_fmadd_ps(vm_set(0.134145f), x2, one));
        return _mm512_add_ps(a, b);
    }
    case DV_UNARY_QUICK_GELU: { /* s + 1.702 x s (1 - s), s = sigmoid(1.702 x) */
        __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, vm_exp(_mm512_mul_ps(vm_set(-1.702f), x))));
        __m512 t = _mm512_mul_ps(_mm512_mul_ps(vm_set(1.702f), x), s);
        return _mm512_fmadd_ps(t, _mm512_sub_ps(one, s), s);
    }
    case DV_UNARY_SILU: { /* s (1 + x (1 - s)) */
        __m512 s = vm_sigmoid(x);
        return _mm512_mul_ps(s, _mm512_fmadd_ps(x, _mm512_sub_ps(one, s), one));
    }
    case DV_UNARY_SQUARE: return _mm512_add_ps(x, x);
    case DV_UNARY_POW: return _mm512_add_ps(x, x); /* p = 2 only: 2 pow(x, 1) */
    case DV_UNARY_CLAMP: {
        __mmask16 in = _mm512_cmp_ps_mask(x, p1, _CMP_GE_OQ) & _mm512_cmp_ps_mask(x, p2, _CMP_LE_OQ);
        return _mm512_maskz_mov_ps(in, one);
    }
    default: return p1; /* AFFINE */
    }
}

VM_INLINE void backward_span(dv_unary_op op, int64_t n, const float *x, const float *y, const float *gy,
                             float *gx, float p1, float p2, bool stream) {
    __m512 v1 = vm_set(p1), v2 = vm_set(p2);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 d = deriv_vec(op, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), v1, v2);
        __m512 g = _mm512_mul_ps(_mm512_loadu_ps(gy + i), d);
        if (stream) _mm512_stream_ps(gx + i, g);
        else _mm512_storeu_ps(gx + i, g);
    }
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        __m512 d = deriv_vec(op, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), v1, v2);
        _mm512_mask_storeu_ps(gx + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, gy + i), d));
    }
}

typedef void (*backward_span_fn)(int64_t n, const float *x, const float *y, const float *gy, float *gx,
                                 float p1, float p2, bool stream);
#define BACKWARD_SPAN(OP)                                                                           \
    static void bspan_##OP(int64_t n, const float *x, const float *y, const float *gy, float *gx,    \
                           float p1, float p2, bool stream) {                                       \
        backward_span(OP, n, x, y, gy, gx, p1, p2, stream);                                         \
    }
BACKWARD_SPAN(DV_UNARY_NEG) BACKWARD_SPAN(DV_UNARY_EXP) BACKWARD_SPAN(DV_UNARY_LOG)
BACKWARD_SPAN(DV_UNARY_SQRT) BACKWARD_SPAN(DV_UNARY_RSQRT) BACKWARD_SPAN(DV_UNARY_ABS)
BACKWARD_SPAN(DV_UNARY_TANH) BACKWARD_SPAN(DV_UNARY_SIGMOID) BACKWARD_SPAN(DV_UNARY_RELU)
BACKWARD_SPAN(DV_UNARY_GELU) BACKWARD_SPAN(DV_UNARY_GELU_TANH) BACKWARD_SPAN(DV_UNARY_QUICK_GELU)
BACKWARD_SPAN(DV_UNARY_SILU) BACKWARD_SPAN(DV_UNARY_SQUARE) BACKWARD_SPAN(DV_UNARY_POW)
BACKWARD_SPAN(DV_UNARY_CLAMP) BACKWARD_SPAN(DV_UNARY_AFFINE)
#undef BACKWARD_SPAN

static const backward_span_fn k_backward_span[DV_UNARY_COUNT] = {
    bspan_DV_UNARY_NEG, bspan_DV_UNARY_EXP, bspan_DV_UNARY_LOG, bspan_DV_UNARY_SQRT,
    bspan_DV_UNARY_RSQRT, bspan_DV_UNARY_ABS, bspan_DV_UNARY_TANH, bspan_DV_UNARY_SIGMOID,
    bspan_DV_UNARY_RELU, bspan_DV_UNARY_GELU, bspan_DV_UNARY_GELU_TANH, bspan_DV_UNARY_QUICK_GELU,
    bspan_DV_UNARY_SILU, bspan_DV_UNARY_SQUARE, bspan_DV_UNARY_POW, bspan_DV_UNARY_CLAMP,
    bspan_DV_UNARY_AFFINE,
};

void dv_unary_backward_f32_avx512(dv_unary_op op, int64_t n, const float *x, const float *y,
                                  const float *gy, float *gx, double p1, double p2) {
    if (!unary_vectorised(op, p1)) { dv_unary_backward_f32_portable(op, n, x, y, gy, gx, p1, p2); return; }
    backward_span_fn span = k_backward_span[op];
    float q1 = (float)p1, q2 = (float)p2;
    bool stream = n * (int64_t)sizeof(float) >= STREAM_MIN_BYTES && aligned64(gx);
    #pragma omp parallel if (n > PAR_MIN)
    {
        #pragma omp for schedule(static) nowait
        for (int64_t c = 0; c < n; c += CHUNK)
            span(n - c < CHUNK ? n - c : CHUNK, x + c, y + c, gy + c, gx + c, q1, q2, stream);
        if (stream) _mm_sfence();
    }
}

/* ---------------------------------------------------------------------------------------------
 * Binary ops
 */
VM_INLINE __m512 binary_vec(dv_binary_op op, __m512 a, __m512 b) {
    switch (op) {
    case DV_BINARY_ADD: return _mm512_add_ps(a, b);
    case DV_BINARY_SUB: return _mm512_sub_ps(a, b);
    case DV_BINARY_MUL: return _mm512_mul_ps(a, b);
    case DV_BINARY_DIV: return _mm512_div_ps(a, b);
    case DV_BINARY_MAX: { /* (a >= b || a != a) ? a : b */
        __mmask16 ka = _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ) | _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
        return _mm512_mask_mov_ps(b, ka, a);
    }
    default: { /* MIN: (a <= b || a != a) ? a : b */
        __mmask16 ka = _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ) | _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
        return _mm512_mask_mov_ps(b, ka, a);
    }
    }
}

/* the C comparison operators: ordered (false on NaN) except != (true on NaN) */
VM_INLINE __mmask16 compare_vec(dv_binary_op op, __m512 a, __m512 b) {
    switch (op) {
    case DV_BINARY_EQ: return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ);
    case DV_BINARY_NE: return _mm512_cmp_ps_mask(a, b, _CMP_NEQ_UQ);
    case DV_BINARY_LT: return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ);
    case DV_BINARY_LE: return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ);
    case DV_BINARY_GT: return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ);
    default: return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ);
    }
}

/* operand i of a span: 16 contiguous floats, or one float broadcast (step 0) */
VM_INLINE __m512 load_op(const float *p, int64_t step, int64_t i) {
    return step ? _mm512_loadu_ps(p + i) : _mm512_set1_ps(p[0]);
}
VM_INLINE __m512 load_op_tail(const float *p, int64_t step, int64_t i, __mmask16 m) {
    return step ? _mm512_maskz_loadu_ps(m, p + i) : _mm512_set1_ps(p[0]);
}

/* y[0..n) = a op b along one row; ia, ib are 1 (contiguous) or 0 (broadcast) */
VM_INLINE void binary_span(dv_binary_op op, int64_t n, const float *a, int64_t ia, const float *b,
                           int64_t ib, void *yv, bool stream) {
    int64_t i = 0;
    if (op >= DV_BINARY_EQ) {
        uint8_t *y = yv;
        const __m128i ones = _mm_set1_epi8(1);
        for (; i + 16 <= n; i += 16)
            _mm_storeu_si128((__m128i *)(y + i), _mm_maskz_mov_epi8(compare_vec(op, load_op(a, ia, i), load_op(b, ib, i)), ones));
        if (i < n) {
            __mmask16 m = tail_mask(n - i);
            __mmask16 k = compare_vec(op, load_op_tail(a, ia, i, m), load_op_tail(b, ib, i, m));
            _mm_mask_storeu_epi8(y + i, m, _mm_maskz_mov_epi8(k, ones));
        }
        return;
    }
    float *y = yv;
    if (stream)
        for (; i + 16 <= n; i += 16) _mm512_stream_ps(y + i, binary_vec(op, load_op(a, ia, i), load_op(b, ib, i)));
    else
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, binary_vec(op, load_op(a, ia, i), load_op(b, ib, i)));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, binary_vec(op, load_op_tail(a, ia, i, m), load_op_tail(b, ib, i, m)));
    }
}

typedef void (*binary_span_fn)(int64_t n, const float *a, int64_t ia, const float *b, int64_t ib,
                               void *y, bool stream);
#define BINARY_SPAN(OP)                                                                             \
    static void bin_##OP(int64_t n, const float *a, int64_t ia, const float *b, int64_t ib, void *y, \
                         bool stream) {                                                             \
        binary_span(OP, n, a, ia, b, ib, y, stream);                                                \
    }
BINARY_SPAN(DV_BINARY_ADD) BINARY_SPAN(DV_BINARY_SUB) BINARY_SPAN(DV_BINARY_MUL)
BINARY_SPAN(DV_BINARY_DIV) BINARY_SPAN(DV_BINARY_MAX) BINARY_SPAN(DV_BINARY_MIN)
BINARY_SPAN(DV_BINARY_EQ) BINARY_SPAN(DV_BINARY_NE) BINARY_SPAN(DV_BINARY_LT)
BINARY_SPAN(DV_BINARY_LE) BINARY_SPAN(DV_BINARY_GT) BINARY_SPAN(DV_BINARY_GE)
#undef BINARY_SPAN

static const binary_span_fn k_binary_span[DV_BINARY_COUNT] = {
    [DV_BINARY_ADD] = bin_DV_BINARY_ADD, [DV_BINARY_SUB] = bin_DV_BINARY_SUB,
    [DV_BINARY_MUL] = bin_DV_BINARY_MUL, [DV_BINARY_DIV] = bin_DV_BINARY_DIV,
    [DV_BINARY_POW] = NULL,              [DV_BINARY_MAX] = bin_DV_BINARY_MAX,
    [DV_BINARY_MIN] = bin_DV_BINARY_MIN, [DV_BINARY_EQ] = bin_DV_BINARY_EQ,
    [DV_BINARY_NE] = bin_DV_BINARY_NE,   [DV_BINARY_LT] = bin_DV_BINARY_LT,
    [DV_BINARY_LE] = bin_DV_BINARY_LE,   [DV_BINARY_GT] = bin_DV_BINARY_GT,
    [DV_BINARY_GE] = bin_DV_BINARY_GE,
};

/* Drop size-1 dims and merge neighbours that are laid out as one dim in both operands (the
 * output is contiguous, so it always is): a contiguous (4096, 4096) becomes one row of 16M, a
 * row broadcast (N, C) + (C) stays two dims. Returns the new ndim (>= 1). */
static int collapse_dims(int ndim, const int64_t *shape, const int64_t *sa, const int64_t *sb,
                         int64_t *cs, int64_t *ca, int64_t *cb) {
    int k = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 1) continue;
        if (k > 0 && ca[k - 1] == sa[d] * shape[d] && cb[k - 1] == sb[d] * shape[d]) {
            cs[k - 1] *= shape[d];
            ca[k - 1] = sa[d];
            cb[k - 1] = sb[d];
        } else {
            cs[k] = shape[d];
            ca[k] = sa[d];
            cb[k] = sb[d];
            k++;
        }
    }
    if (k == 0) { cs[0] = 1; ca[0] = cb[0] = 0; k = 1; }
    return k;
}

void dv_binary_f32_avx512(dv_binary_op op, int ndim, const int64_t *shape, const float *a,
                          const int64_t *sa, const float *b, const int64_t *sb, void *yv) {
    for (int d = 0; d < ndim; d++)
        if (shape[d] == 0) return;
    int64_t cs[MAX_DIMS], ca[MAX_DIMS], cb[MAX_DIMS];
    if (ndim > MAX_DIMS || (unsigned)op >= DV_BINARY_COUNT || !k_binary_span[op]) {
        dv_binary_f32_portable(op, ndim, shape, a, sa, b, sb, yv);
        return;
    }
    int n = collapse_dims(ndim, shape, sa, sb, cs, ca, cb);
    int64_t inner = cs[n - 1], ia = ca[n - 1], ib = cb[n - 1], rows = 1;
    for (int d = 0; d < n - 1; d++) rows *= cs[d];
    if ((ia != 0 && ia != 1) || (ib != 0 && ib != 1) || inner < 16) {
        dv_binary_f32_portable(op, ndim, shape, a, sa, b, sb, yv);
        return;
    }
    binary_span_fn span = k_binary_span[op];
    bool cmp = op >= DV_BINARY_EQ;
    int64_t esize = cmp ? 1 : (int64_t)sizeof(float);
    bool stream = !cmp && rows * inner * esize >= STREAM_MIN_BYTES;
    /* work items: (row, chunk of the row) pairs, so one long row is split over threads too */
    int64_t nchunk = (inner + CHUNK - 1) / CHUNK, items = rows * nchunk;
    #pragma omp parallel if (rows * inner > PAR_MIN && items > 1)
    {
        #pragma omp for schedule(static) nowait
        for (int64_t it = 0; it < items; it++) {
            int64_t r = it / nchunk, c0 = (it % nchunk) * CHUNK;
            int64_t len = inner - c0 < CHUNK ? inner - c0 : CHUNK;
            int64_t oa = 0, ob = 0, rr = r;
            for (int d = n - 2; d >= 0; d--) {
                int64_t i = rr % cs[d];
                rr /= cs[d];
                oa += i * ca[d];
                ob += i * cb[d];
            }
            char *py = (char *)yv + (r * inner + c0) * esize;
            span(len, a + oa + c0 * ia, ia, b + ob + c0 * ib, ib, py, stream && aligned64(py));
        }
        if (stream) _mm_sfence();
    }
}
