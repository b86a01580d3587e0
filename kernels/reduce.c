/* kernels/reduce.c — portable reductions over one axis of a contiguous (outer, n, inner) block. */
#include "kernels/reduce.h"

#include <stdlib.h>

#define SUM_KERNEL(NAME, T)                                                                   \
    void NAME(int64_t outer, int64_t n, int64_t inner, const T *x, T *y) {                    \
        if (inner == 1) {                                                                     \
            _Pragma("omp parallel for schedule(static) if (outer * n > (1 << 16))")           \
            for (int64_t o = 0; o < outer; o++) {                                             \
                const T *p = x + o * n;                                                       \
                double acc = 0;                                                               \
                for (int64_t i = 0; i < n; i++) acc += p[i];                                  \
                y[o] = (T)acc;                                                                \
            }                                                                                 \
            return;                                                                           \
        }                                                                                     \
        _Pragma("omp parallel if (outer * n * inner > (1 << 16))")                            \
        {                                                                                     \
            double *acc = malloc(sizeof(double) * (size_t)inner);                             \
            _Pragma("omp for schedule(static)")                                               \
            for (int64_t o = 0; o < outer; o++) {                                             \
                for (int64_t j = 0; j < inner; j++) acc[j] = 0;                               \
                for (int64_t i = 0; i < n; i++) {                                             \
                    const T *p = x + (o * n + i) * inner;                                     \
                    for (int64_t j = 0; j < inner; j++) acc[j] += p[j];                       \
                }                                                                             \
                for (int64_t j = 0; j < inner; j++) y[o * inner + j] = (T)acc[j];             \
            }                                                                                 \
            free(acc);                                                                        \
        }                                                                                     \
    }

SUM_KERNEL(dv_sum_f32_portable, float)
SUM_KERNEL(dv_sum_f64_portable, double)
