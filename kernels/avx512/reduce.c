/* kernels/avx512/reduce.c — AVX-512 sum over one axis of a contiguous (outer, n, inner) block.
 * Accumulates in f64 lanes (as the portable kernel does), so the two agree to rounding. */
#include "kernels/reduce.h"

#include <immintrin.h>
#include <stdlib.h>

/* sum of n floats, in f64 */
static double row_sum(const float *p, int64_t n) {
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(p + i);
        a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
        a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
    }
    double s = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
    for (; i < n; i++) s += p[i];
    return s;
}

void dv_sum_f32_avx512(int64_t outer, int64_t n, int64_t inner, const float *x, float *y) {
    if (inner == 1) {
        #pragma omp parallel for schedule(static) if (outer * n > (1 << 16))
        for (int64_t o = 0; o < outer; o++) y[o] = (float)row_sum(x + o * n, n);
        return;
    }
    #pragma omp parallel if (outer * n * inner > (1 << 16))
    {
        double *acc = NULL;
        if (posix_memalign((void **)&acc, 64, (size_t)((inner + 7) / 8 * 8) * sizeof(double))) acc = NULL;
        #pragma omp for schedule(static)
        for (int64_t o = 0; o < outer; o++) {
            for (int64_t j = 0; j < inner; j++) acc[j] = 0;
            for (int64_t i = 0; i < n; i++) {
                const float *p = x + (o * n + i) * inner;
                int64_t j = 0;
                for (; j + 8 <= inner; j += 8) {
                    __m512d a = _mm512_load_pd(acc + j);
                    _mm512_store_pd(acc + j, _mm512_add_pd(a, _mm512_cvtps_pd(_mm256_loadu_ps(p + j))));
                }
                for (; j < inner; j++) acc[j] += p[j];
            }
            float *q = y + o * inner;
            for (int64_t j = 0; j < inner; j++) q[j] = (float)acc[j];
        }
        free(acc);
    }
}
