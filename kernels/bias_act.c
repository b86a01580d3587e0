/* kernels/bias_act.c — portable fused bias + activation kernels (f32, f64), the reference for
 * kernels/avx512/bias_act.c; see kernels/bias_act.h. One body for both types (the macro below);
 * the activation switch sits outside the row loops so each loop is specialised by the compiler. */
#include "kernels/bias_act.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_names[DV_BIAS_ACT_COUNT] = {"none", "relu", "gelu", "gelu_tanh", "quick_gelu", "silu"};

const char *dv_bias_act_name(dv_bias_act_kind act) {
    return (unsigned)act < DV_BIAS_ACT_COUNT ? k_names[act] : "?";
}

#define K_SQRT_2_OVER_PI 0.79788456080286535588
#define K_SQRT_HALF 0.70710678118654752440
#define K_INV_SQRT_2PI 0.39894228040143267794

/* act(z) and act'(z) for one element; T_ the type, F(fn) its libm name */
#define DEFINE_SCALAR(T_, SUF, F)                                                                  \
    static inline __attribute__((always_inline)) T_ act_##SUF(dv_bias_act_kind a, T_ z) {          \
        switch (a) {                                                                               \
        case DV_BIAS_ACT_RELU: return z > 0 ? z : (T_)0;                                           \
        case DV_BIAS_ACT_GELU: return (T_)0.5 * z * ((T_)1 + F(erf)(z * (T_)K_SQRT_HALF));         \
        case DV_BIAS_ACT_GELU_TANH:                                                                \
            return (T_)0.5 * z * ((T_)1 + F(tanh)((T_)K_SQRT_2_OVER_PI * (z + (T_)0.044715 * z * z * z))); \
        case DV_BIAS_ACT_QUICK_GELU: return z / ((T_)1 + F(exp)((T_)-1.702 * z));                  \
        case DV_BIAS_ACT_SILU: return z / ((T_)1 + F(exp)(-z));                                    \
        default: return z;                                                                         \
        }                                                                                          \
    }                                                                                              \
    static inline __attribute__((always_inline)) T_ dact_##SUF(dv_bias_act_kind a, T_ z) {         \
        switch (a) {                                                                               \
        case DV_BIAS_ACT_RELU: return z > 0 ? (T_)1 : (T_)0;                                       \
        case DV_BIAS_ACT_GELU: /* Phi(z) + z phi(z) */                                             \
            return (T_)0.5 * ((T_)1 + F(erf)(z * (T_)K_SQRT_HALF)) +                               \
                   z * F(exp)((T_)-0.5 * z * z) * (T_)K_INV_SQRT_2PI;                              \
        case DV_BIAS_ACT_GELU_TANH: { /* (1 + th)/2 + z (1 - th^2) k (1 + 3 0.044715 z^2) / 2 */  \
            T_ k = (T_)K_SQRT_2_OVER_PI;                                                           \
            T_ th = F(tanh)(k * (z + (T_)0.044715 * z * z * z));                                   \
            return (T_)0.5 * ((T_)1 + th) + (T_)0.5 * z * ((T_)1 - th * th) * k * ((T_)1 + (T_)0.134145 * z * z); \
        }                                                                                          \
        case DV_BIAS_ACT_QUICK_GELU: { /* s + 1.702 z s (1 - s) */                                 \
            T_ s = (T_)1 / ((T_)1 + F(exp)((T_)-1.702 * z));                                      \
            return s + (T_)1.702 * z * s * ((T_)1 - s);                                            \
        }                                                                                          \
        case DV_BIAS_ACT_SILU: { /* s (1 + z (1 - s)) */                                           \
            T_ s = (T_)1 / ((T_)1 + F(exp)(-z));                                                   \
            return s * ((T_)1 + z * ((T_)1 - s));                                                  \
        }                                                                                          \
        default: return (T_)1;                                                                     \
        }                                                                                          \
    }

#define F32(fn) fn##f
#define F64(fn) fn
DEFINE_SCALAR(float, f32, F32)
DEFINE_SCALAR(double, f64, F64)

/* the loops, specialised per activation by always_inline + a constant a */
#define DEFINE_LOOPS(T_, SUF)                                                                      \
    static inline __attribute__((always_inline)) void fwd_rows_##SUF(dv_bias_act_kind a, int64_t R, int64_t N, \
                                                                     const T_ *x, const T_ *b, T_ *y) { \
        _Pragma("omp parallel for schedule(static) if (R * N > 65536)")                            \
        for (int64_t r = 0; r < R; r++) {                                                          \
            const T_ *xr = x + r * N;                                                              \
            T_ *yr = y + r * N;                                                                    \
            for (int64_t c = 0; c < N; c++) yr[c] = act_##SUF(a, xr[c] + (b ? b[c] : (T_)0));       \
        }                                                                                          \
    }                                                                                              \
    /* rows [r0, r1): gx (if any) and, into acc (if any), the column sums of gx in row order */    \
    static inline __attribute__((always_inline)) void bwd_rows_##SUF(dv_bias_act_kind a, int64_t r0, int64_t r1, \
                                                                     int64_t N, const T_ *x, const T_ *b, \
                                                                     const T_ *gy, T_ *gx, T_ *acc) { \
        for (int64_t r = r0; r < r1; r++) {                                                        \
            const T_ *xr = x + r * N, *gr = gy + r * N;                                            \
            for (int64_t c = 0; c < N; c++) {                                                      \
                T_ g = gr[c] * dact_##SUF(a, xr[c] + (b ? b[c] : (T_)0));                          \
                if (gx) gx[r * N + c] = g;                                                         \
                if (acc) acc[c] += g;                                                              \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    static inline __attribute__((always_inline)) void bwd_##SUF(dv_bias_act_kind a, int64_t R, int64_t N, \
                                                                const T_ *x, const T_ *b, const T_ *gy, \
                                                                T_ *gx, T_ *gb) {                  \
        if (!gb) {                                                                                 \
            _Pragma("omp parallel for schedule(static) if (R * N > 65536)")                        \
            for (int64_t r = 0; r < R; r++) bwd_rows_##SUF(a, r, r + 1, N, x, b, gy, gx, NULL);    \
            return;                                                                                \
        }                                                                                          \
        int64_t per, nb = dv_bias_act_blocks(R, &per);                                             \
        T_ *part = calloc((size_t)(nb * N > 0 ? nb * N : 1), sizeof(T_));                          \
        if (!part) {                                                                               \
            fprintf(stderr, "bias_act_bwd: out of memory (%lld x %lld partial sums)\n", (long long)nb, \
                    (long long)N);                                                                 \
            abort();                                                                               \
        }                                                                                          \
        _Pragma("omp parallel for schedule(static) if (R * N > 65536)")                            \
        for (int64_t k = 0; k < nb; k++) {                                                         \
            int64_t r1 = (k + 1) * per < R ? (k + 1) * per : R;                                    \
            bwd_rows_##SUF(a, k * per, r1, N, x, b, gy, gx, part + k * N);                         \
        }                                                                                          \
        for (int64_t c = 0; c < N; c++) gb[c] = 0;                                                 \
        for (int64_t k = 0; k < nb; k++)                                                           \
            for (int64_t c = 0; c < N; c++) gb[c] += part[k * N + c];                              \
        free(part);                                                                                \
    }                                                                                              \
    void dv_bias_act_fwd_##SUF##_portable(dv_bias_act_kind act, int64_t R, int64_t N, const T_ *x, \
                                          const T_ *b, T_ *y) {                                    \
        switch (act) {                                                                             \
        case DV_BIAS_ACT_RELU: fwd_rows_##SUF(DV_BIAS_ACT_RELU, R, N, x, b, y); break;             \
        case DV_BIAS_ACT_GELU: fwd_rows_##SUF(DV_BIAS_ACT_GELU, R, N, x, b, y); break;             \
        case DV_BIAS_ACT_GELU_TANH: fwd_rows_##SUF(DV_BIAS_ACT_GELU_TANH, R, N, x, b, y); break;   \
        case DV_BIAS_ACT_QUICK_GELU: fwd_rows_##SUF(DV_BIAS_ACT_QUICK_GELU, R, N, x, b, y); break; \
        case DV_BIAS_ACT_SILU: fwd_rows_##SUF(DV_BIAS_ACT_SILU, R, N, x, b, y); break;             \
        default: fwd_rows_##SUF(DV_BIAS_ACT_NONE, R, N, x, b, y); break;                           \
        }                                                                                          \
    }                                                                                              \
    void dv_bias_act_bwd_##SUF##_portable(dv_bias_act_kind act, int64_t R, int64_t N, const T_ *x, \
                                          const T_ *b, const T_ *gy, T_ *gx, T_ *gb) {             \
        switch (act) {                                                                             \
        case DV_BIAS_ACT_RELU: bwd_##SUF(DV_BIAS_ACT_RELU, R, N, x, b, gy, gx, gb); break;         \
        case DV_BIAS_ACT_GELU: bwd_##SUF(DV_BIAS_ACT_GELU, R, N, x, b, gy, gx, gb); break;         \
        case DV_BIAS_ACT_GELU_TANH: bwd_##SUF(DV_BIAS_ACT_GELU_TANH, R, N, x, b, gy, gx, gb); break; \
        case DV_BIAS_ACT_QUICK_GELU: bwd_##SUF(DV_BIAS_ACT_QUICK_GELU, R, N, x, b, gy, gx, gb); break; \
        case DV_BIAS_ACT_SILU: bwd_##SUF(DV_BIAS_ACT_SILU, R, N, x, b, gy, gx, gb); break;         \
        default: bwd_##SUF(DV_BIAS_ACT_NONE, R, N, x, b, gy, gx, gb); break;                       \
        }                                                                                          \
    }

DEFINE_LOOPS(float, f32)
DEFINE_LOOPS(double, f64)
