/* kernels/modulate.c — portable adaLN / FiLM kernels (f32, f64), see kernels/modulate.h.
 * Forward loops run over tokens; the backward runs over samples b, so the per-sample sums
 * (gshift, gscale) accumulate in one thread without atomics. */
#include "kernels/modulate.h"

#include <math.h>
#include <stddef.h>

#define DEFINE_MODULATE(T_, SUF, SQRT)                                                           \
    void dv_modulate_##SUF(int64_t B, int64_t T, int64_t C, const T_ *x, const T_ *shift,        \
                           const T_ *scale, T_ one, T_ *y) {                                     \
        _Pragma("omp parallel for if (B * T * C > 65536)")                                       \
        for (int64_t r = 0; r < B * T; r++) {                                                    \
            int64_t b = r / T;                                                                   \
            const T_ *xr = x + r * C, *sc = scale + b * C, *sh = shift ? shift + b * C : NULL;   \
            T_ *yr = y + r * C;                                                                  \
            for (int64_t c = 0; c < C; c++) yr[c] = xr[c] * (one + sc[c]) + (sh ? sh[c] : 0);    \
        }                                                                                        \
    }                                                                                            \
    void dv_modulate_bwd_##SUF(int64_t B, int64_t T, int64_t C, const T_ *x, const T_ *scale, T_ one, \
                               const T_ *g, T_ *gx, T_ *gshift, T_ *gscale) {                    \
        _Pragma("omp parallel for if (B * T * C > 65536)")                                       \
        for (int64_t b = 0; b < B; b++) {                                                        \
            const T_ *sc = scale + b * C;                                                        \
            if (gshift) for (int64_t c = 0; c < C; c++) gshift[b * C + c] = 0;                   \
            if (gscale) for (int64_t c = 0; c < C; c++) gscale[b * C + c] = 0;                   \
            for (int64_t t = 0; t < T; t++) {                                                    \
                const T_ *gr = g + (b * T + t) * C, *xr = x + (b * T + t) * C;                   \
                if (gx) for (int64_t c = 0; c < C; c++) gx[(b * T + t) * C + c] = gr[c] * (one + sc[c]); \
                if (gshift) for (int64_t c = 0; c < C; c++) gshift[b * C + c] += gr[c];          \
                if (gscale) for (int64_t c = 0; c < C; c++) gscale[b * C + c] += gr[c] * xr[c];  \
            }                                                                                    \
        }                                                                                        \
    }                                                                                            \
    void dv_ln_modulate_##SUF(int64_t B, int64_t T, int64_t C, const T_ *x, const T_ *shift,     \
                              const T_ *scale, double eps, T_ *y, T_ *mean, T_ *rstd) {          \
        _Pragma("omp parallel for if (B * T * C > 65536)")                                       \
        for (int64_t r = 0; r < B * T; r++) {                                                    \
            int64_t b = r / T;                                                                   \
            const T_ *xr = x + r * C, *sc = scale + b * C, *sh = shift + b * C;                  \
            T_ *yr = y + r * C;                                                                  \
            T_ m = 0, v = 0;                                                                     \
            for (int64_t c = 0; c < C; c++) m += xr[c];                                          \
            m /= (T_)C;                                                                          \
            for (int64_t c = 0; c < C; c++) v += (xr[c] - m) * (xr[c] - m);                      \
            T_ rs = (T_)1 / SQRT(v / (T_)C + (T_)eps);                                           \
            mean[r] = m;                                                                         \
            rstd[r] = rs;                                                                        \
            for (int64_t c = 0; c < C; c++) yr[c] = (xr[c] - m) * rs * (1 + sc[c]) + sh[c];      \
        }                                                                                        \
    }                                                                                            \
    void dv_ln_modulate_bwd_##SUF(int64_t B, int64_t T, int64_t C, const T_ *x, const T_ *mean,  \
                                  const T_ *rstd, const T_ *scale, const T_ *g, T_ *gx, T_ *gshift, \
                                  T_ *gscale) {                                                  \
        _Pragma("omp parallel for if (B * T * C > 65536)")                                       \
        for (int64_t b = 0; b < B; b++) {                                                        \
            const T_ *sc = scale + b * C;                                                        \
            if (gshift) for (int64_t c = 0; c < C; c++) gshift[b * C + c] = 0;                   \
            if (gscale) for (int64_t c = 0; c < C; c++) gscale[b * C + c] = 0;                   \
            for (int64_t t = 0; t < T; t++) {                                                    \
                int64_t r = b * T + t;                                                           \
                const T_ *gr = g + r * C, *xr = x + r * C;                                       \
                T_ m = mean[r], rs = rstd[r];                                                    \
                if (gshift) for (int64_t c = 0; c < C; c++) gshift[b * C + c] += gr[c];          \
                if (gscale) for (int64_t c = 0; c < C; c++) gscale[b * C + c] += gr[c] * (xr[c] - m) * rs; \
                if (!gx) continue;                                                               \
                T_ s1 = 0, s2 = 0; /* mean(gxhat), mean(gxhat * xhat) */                         \
                for (int64_t c = 0; c < C; c++) {                                                \
                    T_ gh = gr[c] * (1 + sc[c]);                                                 \
                    s1 += gh;                                                                    \
                    s2 += gh * (xr[c] - m) * rs;                                                 \
                }                                                                                \
                s1 /= (T_)C;                                                                     \
                s2 /= (T_)C;                                                                     \
                for (int64_t c = 0; c < C; c++)                                                  \
                    gx[r * C + c] = rs * (gr[c] * (1 + sc[c]) - s1 - (xr[c] - m) * rs * s2);     \
            }                                                                                    \
        }                                                                                        \
    }                                                                                            \
    void dv_gated_residual_##SUF(int64_t B, int64_t T, int64_t C, const T_ *x, const T_ *gate,   \
                                 const T_ *h, T_ *y) {                                           \
        _Pragma("omp parallel for if (B * T * C > 65536)")                                       \
        for (int64_t r = 0; r < B * T; r++) {                                                    \
            const T_ *gt = gate + (r / T) * C;                                                   \
            for (int64_t c = 0; c < C; c++) y[r * C + c] = x[r * C + c] + gt[c] * h[r * C + c];  \
        }                                                                                        \
    }

DEFINE_MODULATE(float, f32_portable, sqrtf)
DEFINE_MODULATE(double, f64_portable, sqrt)
