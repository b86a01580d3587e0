/* kernels/rotary.c — portable rotary kernels (f32, f64), see kernels/rotary.h. */
#include "kernels/rotary.h"

#include <string.h>

/* one body for both scalar types */
#define DEFINE_ROTARY(T_, SUFFIX)                                                               \
    void dv_rotary_##SUFFIX##_portable(int64_t nb, int64_t nh, int64_t T, int64_t D, int64_t rot, \
                                       int interleaved, int transpose, const T_ *x,            \
                                       const T_ *cos, const T_ *sin, int64_t tab_bstride,      \
                                       T_ *y) {                                                \
        int64_t rows = nb * nh * T, half = rot / 2;                                            \
        /* pair k: channels (i, j); the sign of the sin term of channel i */                   \
        _Pragma("omp parallel for if (rows * D > 32768)")                                      \
        for (int64_t r = 0; r < rows; r++) {                                                   \
            int64_t b = r / (nh * T), t = r % T;                                               \
            const T_ *xr = x + r * D, *c = cos + b * tab_bstride + t * rot;                    \
            const T_ *s = sin + b * tab_bstride + t * rot;                                     \
            T_ *yr = y + r * D;                                                                \
            for (int64_t k = 0; k < half; k++) {                                               \
                int64_t i = interleaved ? 2 * k : k, j = interleaved ? 2 * k + 1 : k + half;   \
                T_ xi = xr[i], xj = xr[j];                                                     \
                if (!transpose) {                                                              \
                    yr[i] = xi * c[i] - xj * s[i];                                             \
                    yr[j] = xj * c[j] + xi * s[j];                                             \
                } else {                                                                       \
                    yr[i] = xi * c[i] + xj * s[j];                                             \
                    yr[j] = xj * c[j] - xi * s[i];                                             \
                }                                                                              \
            }                                                                                  \
            if (rot < D) memcpy(yr + rot, xr + rot, (size_t)(D - rot) * sizeof(T_));           \
        }                                                                                      \
    }

DEFINE_ROTARY(float, f32)
DEFINE_ROTARY(double, f64)
