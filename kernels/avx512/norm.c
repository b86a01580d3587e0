/* kernels/avx512/norm.c — AVX-512 (f32) softmax, log-softmax, LayerNorm, RMSNorm and
 * cross-entropy over the rows of a contiguous (rows, n) buffer; contracts in kernels/norm.h.
 *
 * Each row is walked 16 floats at a time; the last partial vector of a row uses a lane mask
 * (tail_mask), so there is no scalar remainder loop. Rows are split across OpenMP threads.
 * Row sums accumulate in f32 vector lanes (16 independent partial sums), which keeps the
 * results within ~1e-6 relative of the portable kernels' double sums for rows of a few
 * thousand. LayerNorm subtracts the row's first element before summing, so the mean of a row
 * far from zero (|mean| >> std) is not swamped by rounding.
 *
 * exp is vm_exp from kernels/avx512/vmath.h (<= ~1 ulp; exp(-inf) = 0, so -inf logits, as in
 * masked attention rows, get probability 0).
 */
#include "kernels/norm.h"
#include "kernels/avx512/vmath.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NORM_PAR_MIN (1 << 15) /* rows * n above this: rows in parallel */

/* lanes [0, n - i) of the vector starting at element i */
static inline __mmask16 tail_mask(int64_t n, int64_t i) {
    int64_t k = n - i;
    return k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << k) - 1);
}

/* ---- row helpers ---------------------------------------------------------------------------- */

static inline float row_max(int64_t n, const float *x) {
    __m512 vm = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 16)
        vm = _mm512_max_ps(vm, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail_mask(n, i), x + i));
    return vm_hmax(vm);
}

static inline float row_sum(int64_t n, const float *x) {
    __m512 vs = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) vs = _mm512_add_ps(vs, _mm512_maskz_loadu_ps(tail_mask(n, i), x + i));
    return vm_hsum(vs);
}

/* sum exp(x - m) over a row */
static inline float row_sum_exp(int64_t n, const float *x, float m) {
    __m512 vm = _mm512_set1_ps(m), vs = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n, i);
        __m512 e = vm_exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm));
        vs = _mm512_mask_add_ps(vs, k, vs, e);
    }
    return vm_hsum(vs);
}

/* log sum exp(x) over a row; -inf for an all -inf (or empty) row, +inf if any element is +inf */
static inline double row_logsumexp(int64_t n, const float *x) {
    float m = row_max(n, x);
    if (m == INFINITY || m == -INFINITY) return m;
    return (double)m + log((double)row_sum_exp(n, x, m));
}

/* ---- softmax / log-softmax ---------------------------------------------------------------- */

void dv_softmax_fwd_f32_avx512(int64_t rows, int64_t n, const float *x, float *y) {
    #pragma omp parallel for schedule(static) if (rows * n > NORM_PAR_MIN && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        __m512 vm = _mm512_set1_ps(row_max(n, xr)), vs = _mm512_setzero_ps();
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 k = tail_mask(n, i);
            __m512 e = vm_exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, xr + i), vm));
            _mm512_mask_storeu_ps(yr + i, k, e);
            vs = _mm512_mask_add_ps(vs, k, vs, e);
        }
        __m512 inv = _mm512_set1_ps(1.0f / vm_hsum(vs));
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 k = tail_mask(n, i);
            _mm512_mask_storeu_ps(yr + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, yr + i), inv));
        }
    }
}

void dv_softmax_bwd_f32_avx512(int64_t rows, int64_t n, const float *y, const float *gy, float *gx) {
    #pragma omp parallel for schedule(static) if (rows * n > NORM_PAR_MIN && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = y + r * n, *gr = gy + r * n;
        float *dr = gx + r * n;
        __m512 vd = _mm512_setzero_ps();
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 k = tail_mask(n, i);
            vd = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, gr + i), _mm512_maskz_loadu_ps(k, yr + i), vd);
        }
        __m512 dot = _mm512_set1_ps(vm_hsum(vd));
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 k = tail_mask(n, i);
            __m512 g = _mm512_maskz_loadu_ps(k, gr + i), yy = _mm512_maskz_loadu_ps(k, yr + i);
            _mm512_mask_storeu_ps(dr + i, k, _mm512_mul_ps(yy, _mm512_sub_ps(g, dot)));
        }
    }
}

void dv_log_softmax_fwd_f32_avx512(int64_t rows, int64_t n, const float *x, float *y) {
    #pragma omp parallel for schedule(static) if (rows * n > NORM_PAR_MIN && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        __m512 lse = _mm512_set1_ps((float)row_logsumexp(n, xr));
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 k = tail_mask(n, i);
            _mm512_mask_storeu_ps(yr + i, k, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, xr + i), lse));
        }
    }
}

void dv_log_softmax_bwd_f32_avx512(int64_t rows, int64_t n, const float *y, const float *gy, float *gx) {
    #pragma omp parallel for schedule(static) if (rows * n > NORM_PAR_MIN && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = y + r * n, *gr = gy + r * n;
        float *dr = gx + r * n;
        __m512 s = _mm512_set1_ps(row_sum(n, gr));
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 k = tail_mask(n, i);
            __m512 e = vm_exp(_mm512_maskz_loadu_ps(k, yr + i));
            _mm512_mask_storeu_ps(dr + i, k, _mm512_fnmadd_ps(e, s, _mm512_maskz_loadu_ps(k, gr + i)));
        }
    }
}

/* ---- LayerNorm / RMSNorm ------------------------------------------------------------------ */

void dv_layernorm_fwd_f32_avx512(int64_t rows, int64_t n, const float *x, const float *w, const float *b,
                                 double eps, float *y, double *mean, double *rstd) {
    if (n == 0) return;
    #pragma omp parallel for schedule(static) if (rows * n > NORM_PAR_MIN && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        /* work with d = x - x0 (x0 = the row's first element): exact for values near x0 */
        __m512 x0 = _mm512_set1_ps(xr[0]), vs = _mm512_setzero_ps();
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 k = tail_mask(n, i);
            vs = _mm512_add_ps(vs, _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, xr + i), x0));
        }
        float dmu = vm_hsum(vs) / (float)n; /* mean - x0 */
        __m512 vdmu = _mm512_set1_ps(dmu), vv = _mm512_setzero_ps();
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 k = tail_mask(n, i);
            __m512 d = _mm512_maskz_sub_ps(k, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, xr + i), x0), vdmu);
            vv = _mm512_fmadd_ps(d, d, vv);
        }
        double rs = 1.0 / sqrt((double)vm_hsum(vv) / (double)n + eps);
        __m512 vrs = _mm512_set1_ps((float)rs);
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 k = tail_mask(n, i);
            __m512 d = _mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, xr + i), x0), vdmu);
            __m512 h = _mm512_mul_ps(d, vrs);
            if (w) h = _mm512_mul_ps(h, _mm512_maskz_loadu_ps(k, w + i));
            if (b) h = _mm512_add_ps(h, _mm512_maskz_loadu_ps(k, b + i));
            _mm512_mask_storeu_ps(yr + i, k, h);
        }
        if (mean) mean[r] = (double)xr[0] + dmu;
        if (rstd) rstd[r] = rs;
    }
}

void dv_rmsnorm_fwd_f32_avx512(int64_t rows, int64_t n, const float *x, const float *w, double eps,
                               float *y, double *rstd) {
    if (n == 0) return;
    #pragma omp parallel for schedule(static) if (rows * n > NORM_PAR_MIN && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        __m512 vs = _mm512_setzero_ps();
        for (int64_t i = 0; i < n; i += 16) {
            __m512 v = _mm512_maskz_loadu_ps(tail_mask(n, i), xr + i);
            vs = _mm512_fmadd_ps(v, v, vs);
        }
        double rs = 1.0 / sqrt((double)vm_hsum(vs) / (double)n + eps);
        __m512 vrs = _mm512_set1_ps((float)rs);
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 k = tail_mask(n, i);
            __m512 h = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, xr + i), vrs);
            if (w) h = _mm512_mul_ps(h, _mm512_maskz_loadu_ps(k, w + i));
            _mm512_mask_storeu_ps(yr + i, k, h);
        }
        if (rstd) rstd[r] = rs;
    }
}

/* acc[0, 16) += v in double, lanes under k only */
static inline void add_to_f64(double *acc, __m512 v, __mmask16 k) {
    __mmask8 lo = (__mmask8)k, hi = (__mmask8)(k >> 8);
    __m512d a0 = _mm512_add_pd(_mm512_maskz_loadu_pd(lo, acc), _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    __m512d a1 = _mm512_add_pd(_mm512_maskz_loadu_pd(hi, acc + 8), _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
    _mm512_mask_storeu_pd(acc, lo, a0);
    _mm512_mask_storeu_pd(acc + 8, hi, a1);
}

/* The backward of LayerNorm (mean given) and RMSNorm (mean NULL): with h = xhat and g = gy * w,
 *   LayerNorm  gx = rstd * (g - mean(g) - h * mean(g h))
 *   RMSNorm    gx = rstd * (g - h * mean(g h))     (= rstd * (g - x rstd^2 mean(g x)))
 *   gw = sum_rows gy * h,  gb = sum_rows gy.
 * One pass over the rows does everything. Rows go in tiles of NORM_TILE; a thread sums a tile's
 * gy * h and gy in f32 buffers (while each row is in L1), then adds the tile sums to its own
 * double buffers; the per-thread buffers are summed at the end in thread order. So no f32 sum
 * runs over more than NORM_TILE rows, and the result is reproducible for a given thread count. */
#define NORM_TILE 32
static void norm_bwd(int64_t rows, int64_t n, const float *x, const float *w, const double *mean,
                     const double *rstd, const float *gy, float *gx, float *gw, float *gb) {
    if (n == 0) return;
    bool params = gw || gb;
    int nt = rows * n > NORM_PAR_MIN && rows > NORM_TILE ? omp_get_max_threads() : 1;
    /* per thread: double sums of gw, gb (2n), then f32 tile sums of gw, gb (2n) */
    size_t per = 2 * (size_t)n * (sizeof(double) + sizeof(float));
    char *part = params ? calloc((size_t)nt, per) : NULL;
    if (params && !part) { fprintf(stderr, "norm backward: out of memory\n"); abort(); }
    #pragma omp parallel num_threads(nt)
    {
        double *dw = params ? (double *)(part + (size_t)omp_get_thread_num() * per) : NULL;
        float *fw = params ? (float *)(dw + 2 * n) : NULL;
        #pragma omp for schedule(static)
        for (int64_t r0 = 0; r0 < rows; r0 += NORM_TILE) {
            int64_t r1 = r0 + NORM_TILE < rows ? r0 + NORM_TILE : rows;
            if (params) memset(fw, 0, 2 * (size_t)n * sizeof(float));
            for (int64_t r = r0; r < r1; r++) {
                const float *xr = x + r * n, *gr = gy + r * n;
                /* h = ((x - x0) - (mean - x0)) * rstd with x0 the row's first element, as the forward */
                __m512 x0 = _mm512_set1_ps(mean ? xr[0] : 0.0f);
                __m512 dmu = _mm512_set1_ps(mean ? (float)(mean[r] - xr[0]) : 0.0f);
                __m512 rs = _mm512_set1_ps((float)rstd[r]), a = _mm512_setzero_ps(), c = _mm512_setzero_ps();
                if (gx) { /* a = mean(g) (LayerNorm only), c = mean(g h) */
                    __m512 sg = _mm512_setzero_ps(), sgh = _mm512_setzero_ps();
                    for (int64_t i = 0; i < n; i += 16) {
                        __mmask16 k = tail_mask(n, i);
                        __m512 g = _mm512_maskz_loadu_ps(k, gr + i);
                        if (w) g = _mm512_mul_ps(g, _mm512_maskz_loadu_ps(k, w + i));
                        __m512 h = _mm512_mul_ps(_mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, xr + i), x0), dmu), rs);
                        sg = _mm512_add_ps(sg, g);
                        sgh = _mm512_fmadd_ps(g, h, sgh); /* g is 0 in masked-off lanes */
                    }
                    if (mean) a = _mm512_set1_ps(vm_hsum(sg) / (float)n);
                    c = _mm512_set1_ps(vm_hsum(sgh) / (float)n);
                }
                for (int64_t i = 0; i < n; i += 16) {
                    __mmask16 k = tail_mask(n, i);
                    __m512 g0 = _mm512_maskz_loadu_ps(k, gr + i);
                    __m512 h = _mm512_mul_ps(_mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, xr + i), x0), dmu), rs);
                    if (gx) {
                        __m512 g = w ? _mm512_mul_ps(g0, _mm512_maskz_loadu_ps(k, w + i)) : g0;
                        __m512 t = _mm512_fnmadd_ps(h, c, _mm512_sub_ps(g, a)); /* g - a - h c */
                        _mm512_mask_storeu_ps(gx + r * n + i, k, _mm512_mul_ps(rs, t));
                    }
                    if (params) {
                        _mm512_mask_storeu_ps(fw + i, k, _mm512_fmadd_ps(g0, h, _mm512_maskz_loadu_ps(k, fw + i)));
                        _mm512_mask_storeu_ps(fw + n + i, k, _mm512_add_ps(g0, _mm512_maskz_loadu_ps(k, fw + n + i)));
                    }
                }
            }
            if (params) {
                for (int64_t i = 0; i < n; i += 16) {
                    __mmask16 k = tail_mask(n, i);
                    add_to_f64(dw + i, _mm512_maskz_loadu_ps(k, fw + i), k);
                    add_to_f64(dw + n + i, _mm512_maskz_loadu_ps(k, fw + n + i), k);
                }
            }
        }
    }
    if (params) {
        for (int64_t j = 0; j < n; j++) {
            double sw = 0, sb = 0;
            for (int t = 0; t < nt; t++) {
                const double *d = (const double *)(part + (size_t)t * per);
                sw += d[j];
                sb += d[n + j];
            }
            if (gw) gw[j] = (float)sw;
            if (gb) gb[j] = (float)sb;
        }
        free(part);
    }
}

void dv_layernorm_bwd_f32_avx512(int64_t rows, int64_t n, const float *x, const float *w, const double *mean,
                                 const double *rstd, const float *gy, float *gx, float *gw, float *gb) {
    norm_bwd(rows, n, x, w, mean, rstd, gy, gx, gw, gb);
}

void dv_rmsnorm_bwd_f32_avx512(int64_t rows, int64_t n, const float *x, const float *w, const double *rstd,
                               const float *gy, float *gx, float *gw) {
    norm_bwd(rows, n, x, w, NULL, rstd, gy, gx, gw, NULL);
}

/* ---- cross-entropy ------------------------------------------------------------------------ */

void dv_cross_entropy_fwd_f32_avx512(int64_t rows, int64_t n, const float *x, const int64_t *target,
                                     int64_t ignore_index, float *loss, double *lse) {
    #pragma omp parallel for schedule(static) if (rows * n > NORM_PAR_MIN && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        if (target[r] == ignore_index) { loss[r] = 0; lse[r] = 0; continue; }
        const float *xr = x + r * n;
        double l = row_logsumexp(n, xr);
        lse[r] = l;
        loss[r] = (float)(l - xr[target[r]]);
    }
}

void dv_cross_entropy_bwd_f32_avx512(int64_t rows, int64_t n, const float *x, const int64_t *target,
                                     int64_t ignore_index, const double *lse, double scale, float *gx) {
    #pragma omp parallel for schedule(static) if (rows * n > NORM_PAR_MIN && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *dr = gx + r * n;
        if (target[r] == ignore_index) {
            for (int64_t i = 0; i < n; i += 16) _mm512_mask_storeu_ps(dr + i, tail_mask(n, i), _mm512_setzero_ps());
            continue;
        }
        /* x - lse as (x - hi) - lo, lse = hi + lo split in two floats: x - hi is exact near hi */
        float hi = (float)lse[r], lo = (float)(lse[r] - hi);
        __m512 vhi = _mm512_set1_ps(hi), vlo = _mm512_set1_ps(lo), s = _mm512_set1_ps((float)scale);
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 k = tail_mask(n, i);
            __m512 e = vm_exp(_mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, xr + i), vhi), vlo));
            _mm512_mask_storeu_ps(dr + i, k, _mm512_mul_ps(s, e));
        }
        /* p - 1 = expm1(x - lse): no cancellation when p is close to 1 */
        dr[target[r]] = (float)(scale * expm1((double)xr[target[r]] - lse[r]));
    }
}
