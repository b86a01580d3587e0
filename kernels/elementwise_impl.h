/* kernels/elementwise_impl.h — the portable elementwise kernels, written once for a scalar type.
 * Included by kernels/elementwise.c with T (float/double), M(fn) (the libm name for T) and
 * SUFFIX (f32/f64) defined. */

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define KNAME(base) CAT(CAT(base, SUFFIX), _portable)

static inline T CAT(unary_one_, SUFFIX)(dv_unary_op op, T x, T p1, T p2) {
    switch (op) {
    case DV_UNARY_NEG: return -x;
    case DV_UNARY_EXP: return M(exp)(x);
    case DV_UNARY_LOG: return M(log)(x);
    case DV_UNARY_SQRT: return M(sqrt)(x);
    case DV_UNARY_RSQRT: return (T)1 / M(sqrt)(x);
    case DV_UNARY_ABS: return M(fabs)(x);
    case DV_UNARY_TANH: return M(tanh)(x);
    case DV_UNARY_SIGMOID: return (T)1 / ((T)1 + M(exp)(-x));
    case DV_UNARY_RELU: return x > 0 ? x : (T)0;
    case DV_UNARY_GELU: return (T)0.5 * x * ((T)1 + M(erf)(x * (T)0.70710678118654752440));
    case DV_UNARY_GELU_TANH: {
        T u = (T)0.79788456080286535588 * (x + (T)0.044715 * x * x * x);
        return (T)0.5 * x * ((T)1 + M(tanh)(u));
    }
    case DV_UNARY_QUICK_GELU: return x / ((T)1 + M(exp)((T)-1.702 * x));
    case DV_UNARY_SILU: return x / ((T)1 + M(exp)(-x));
    case DV_UNARY_SQUARE: return x * x;
    case DV_UNARY_POW: return M(pow)(x, p1);
    case DV_UNARY_CLAMP: return x < p1 ? p1 : (x > p2 ? p2 : x);
    case DV_UNARY_AFFINE: return p1 * x + p2;
    default: return x;
    }
}

/* f'(x), with y = f(x) */
static inline T CAT(unary_deriv_, SUFFIX)(dv_unary_op op, T x, T y, T p1, T p2) {
    switch (op) {
    case DV_UNARY_NEG: return -1;
    case DV_UNARY_EXP: return y;
    case DV_UNARY_LOG: return (T)1 / x;
    case DV_UNARY_SQRT: return (T)0.5 / y;
    case DV_UNARY_RSQRT: return (T)-0.5 * y * y * y;
    case DV_UNARY_ABS: return x > 0 ? (T)1 : (x < 0 ? (T)-1 : (T)0);
    case DV_UNARY_TANH: return (T)1 - y * y;
    case DV_UNARY_SIGMOID: return y * ((T)1 - y);
    case DV_UNARY_RELU: return x > 0 ? (T)1 : (T)0;
    case DV_UNARY_GELU: {
        T cdf = (T)0.5 * ((T)1 + M(erf)(x * (T)0.70710678118654752440));
        T pdf = M(exp)((T)-0.5 * x * x) * (T)0.39894228040143267794;
        return cdf + x * pdf;
    }
    case DV_UNARY_GELU_TANH: {
        T k = (T)0.79788456080286535588;
        T u = k * (x + (T)0.044715 * x * x * x);
        T th = M(tanh)(u);
        return (T)0.5 * ((T)1 + th) + (T)0.5 * x * ((T)1 - th * th) * k * ((T)1 + (T)0.134145 * x * x);
    }
    case DV_UNARY_QUICK_GELU: {
        T s = (T)1 / ((T)1 + M(exp)((T)-1.702 * x));
        return s + (T)1.702 * x * s * ((T)1 - s);
    }
    case DV_UNARY_SILU: {
        T s = (T)1 / ((T)1 + M(exp)(-x));
        return s * ((T)1 + x * ((T)1 - s));
    }
    case DV_UNARY_SQUARE: return (T)2 * x;
    case DV_UNARY_POW: return p1 == 0 ? (T)0 : p1 * M(pow)(x, p1 - 1);
    case DV_UNARY_CLAMP: return (x >= p1 && x <= p2) ? (T)1 : (T)0;
    case DV_UNARY_AFFINE: return p1;
    default: return 1;
    }
}

void KNAME(dv_unary_)(dv_unary_op op, int64_t n, const T *x, T *y, double p1, double p2) {
    T q1 = (T)p1, q2 = (T)p2;
    #pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; i++) y[i] = CAT(unary_one_, SUFFIX)(op, x[i], q1, q2);
}

void KNAME(dv_unary_backward_)(dv_unary_op op, int64_t n, const T *x, const T *y, const T *gy, T *gx,
                               double p1, double p2) {
    T q1 = (T)p1, q2 = (T)p2;
    #pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; i++) gx[i] = gy[i] * CAT(unary_deriv_, SUFFIX)(op, x[i], y[i], q1, q2);
}

static inline T CAT(binary_one_, SUFFIX)(dv_binary_op op, T a, T b) {
    switch (op) {
    case DV_BINARY_ADD: return a + b;
    case DV_BINARY_SUB: return a - b;
    case DV_BINARY_MUL: return a * b;
    case DV_BINARY_DIV: return a / b;
    case DV_BINARY_POW: return M(pow)(a, b);
    case DV_BINARY_MAX: return (a >= b || a != a) ? a : b;  /* NaN propagates, as torch */
    case DV_BINARY_MIN: return (a <= b || a != a) ? a : b;
    default: return 0;
    }
}

static inline uint8_t CAT(compare_one_, SUFFIX)(dv_binary_op op, T a, T b) {
    switch (op) {
    case DV_BINARY_EQ: return a == b;
    case DV_BINARY_NE: return a != b;
    case DV_BINARY_LT: return a < b;
    case DV_BINARY_LE: return a <= b;
    case DV_BINARY_GT: return a > b;
    default: return a >= b;
    }
}

void KNAME(dv_binary_)(dv_binary_op op, int ndim, const int64_t *shape, const T *a, const int64_t *sa,
                       const T *b, const int64_t *sb, void *yv) {
    int64_t inner = ndim ? shape[ndim - 1] : 1, rows = 1;
    for (int d = 0; d < ndim - 1; d++) rows *= shape[d];
    if (inner == 0 || rows == 0) return;
    int64_t ia = ndim ? sa[ndim - 1] : 0, ib = ndim ? sb[ndim - 1] : 0;
    bool cmp = op >= DV_BINARY_EQ;
    #pragma omp parallel for schedule(static) if (rows * inner > (1 << 16) && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        int64_t oa = 0, ob = 0, rr = r;
        for (int d = ndim - 2; d >= 0; d--) {
            int64_t i = rr % shape[d];
            rr /= shape[d];
            oa += i * sa[d];
            ob += i * sb[d];
        }
        const T *pa = a + oa, *pb = b + ob;
        if (cmp) {
            uint8_t *y = (uint8_t *)yv + r * inner;
            for (int64_t i = 0; i < inner; i++) y[i] = CAT(compare_one_, SUFFIX)(op, pa[i * ia], pb[i * ib]);
        } else {
            T *y = (T *)yv + r * inner;
            for (int64_t i = 0; i < inner; i++) y[i] = CAT(binary_one_, SUFFIX)(op, pa[i * ia], pb[i * ib]);
        }
    }
}

#undef KNAME
#undef CAT
#undef CAT_
