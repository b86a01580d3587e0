/* kernels/avx512/norm.c — AVX-512 (f32) softmax, log-softmax, LayerNorm, RMSNorm and
 * cross-entropy over the rows of a contiguous (rows, n) buffer; contracts in kernels/norm.h.
 *
 * Each row is walked 16 floats at a time; the last partial vector of a row uses a lane mask
 * (tail_mask), so there is no scalar remainder loop. Rows are split across OpenMP threads.
 * Row sums accumulate in f32 vector lanes: four vectors of 16 partial sums (two in the exp
 * passes, whose exps are the longer chains), which keeps the results within ~1e-6 relative of
 * the portable kernels' double sums for rows of a few thousand, and hides the latency of the
 * adds. LayerNorm
 * subtracts the row's first element before summing, so the mean of a row far from zero
 * (|mean| >> std) is not swamped by rounding.
 *
 * How the kernels stay memory-bound. Every kernel makes two or three passes over a row: the
 * first reads it from memory, the later ones find it in L1 (a row of 4096 floats is 16 KiB)
 * and do the arithmetic. On one thread that arithmetic would leave the memory idle, so:
 *   - the L1 passes prefetch the NEXT row's inputs (one 64-byte line per 16 floats processed):
 *     the loads of row r + 1 overlap the arithmetic of row r;
 *   - outputs of STREAM_MIN_BYTES or more (they would not stay in cache anyway) are written
 *     with non-temporal stores, which saves the read-for-ownership of every output line: one
 *     read and one write per element instead of two reads and a write. Streaming needs whole
 *     aligned vectors, so it is used when n is a multiple of 16 and the output 64-byte aligned
 *     (the usual case: model widths, vocabularies); otherwise the stores are plain.
 * Softmax computes exp once per element: into y directly, or, when y is streamed (it must not
 * be read back from memory), into a per-thread scratch row that stays in L1/L2. (An online
 * max/sum pass followed by a second exp pass would read x only twice but compute exp twice;
 * measured, it is compute-bound at about 60% of the speed of this one.)
 * Measured on 64 MiB of rows of 4096 (bytes read + written per second), one thread of a Zen 5:
 * the softmax / LayerNorm / RMSNorm kernels and their backwards run at 75-140% of memcpy's GB/s
 * (memcpy pays the read-for-ownership too), up from 30-45% before the prefetching and streaming;
 * the prefetching alone is worth 1.1-1.6x. (Cross-entropy's forward only reads: ~25 GB/s, bound
 * by its exp pass, 3x what it was.)
 * Rows much longer than L2 (150k floats) fall back to ~60%: the later passes then come from L3.
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

#define NORM_PAR_MIN (1 << 15)                /* rows * n above this: rows in parallel */
#define STREAM_MIN_BYTES ((int64_t)16 << 20)  /* outputs bigger than this are streamed (as in
                                                 kernels/avx512/elementwise.c: half an L3) */

/* lanes [0, n - i) of the vector starting at element i */
static inline __mmask16 tail_mask(int64_t n, int64_t i) {
    int64_t k = n - i;
    return k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << k) - 1);
}

/* stream the (rows, n) output out (whole aligned vectors only, see the top of the file)? */
static inline bool stream_ok(int64_t rows, int64_t n, const float *out) {
    return rows * n * (int64_t)sizeof(float) >= STREAM_MIN_BYTES && n % 16 == 0 && ((uintptr_t)out & 63) == 0;
}

/* lanes k of v to p; a non-temporal store of all 16 when stream (then k is all ones) */
static inline void store(float *p, __mmask16 k, __m512 v, bool stream) {
    if (stream) _mm512_stream_ps(p, v);
    else _mm512_mask_storeu_ps(p, k, v);
}

/* fetch the cache line holding p into L1 (the next row's inputs, see the top of the file) */
static inline void prefetch(const float *p) { _mm_prefetch((const char *)p, _MM_HINT_T0); }

/* the row after row r (row r itself for the last row: prefetching it again is harmless) */
static inline const float *next_row(const float *a, int64_t r, int64_t rows, int64_t n) {
    return a + (r + 1 < rows ? r + 1 : r) * n;
}

/* ---- row reductions (four accumulators, 64 floats a step, then a masked tail) ------------- */

static inline float row_max(int64_t n, const float *x) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 m0 = ninf, m1 = ninf, m2 = ninf, m3 = ninf;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        m0 = _mm512_max_ps(m0, _mm512_loadu_ps(x + i));
        m1 = _mm512_max_ps(m1, _mm512_loadu_ps(x + i + 16));
        m2 = _mm512_max_ps(m2, _mm512_loadu_ps(x + i + 32));
        m3 = _mm512_max_ps(m3, _mm512_loadu_ps(x + i + 48));
    }
    for (; i < n; i += 16) m0 = _mm512_max_ps(m0, _mm512_mask_loadu_ps(ninf, tail_mask(n, i), x + i));
    return vm_hmax(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
}

/* sum (x - c) */
static inline float row_sum(int64_t n, const float *x, float c) {
    __m512 vc = _mm512_set1_ps(c), s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_add_ps(s0, _mm512_sub_ps(_mm512_loadu_ps(x + i), vc));
        s1 = _mm512_add_ps(s1, _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vc));
        s2 = _mm512_add_ps(s2, _mm512_sub_ps(_mm512_loadu_ps(x + i + 32), vc));
        s3 = _mm512_add_ps(s3, _mm512_sub_ps(_mm512_loadu_ps(x + i + 48), vc));
    }
    for (; i < n; i += 16) {
        __mmask16 k = tail_mask(n, i);
        s0 = _mm512_add_ps(s0, _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x + i), vc));
    }
    return vm_hsum(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* sum ((x - c) - d)^2, prefetching pf (the next row) on the way */
static inline float row_sumsq(int64_t n, const float *x, float c, float d, const float *pf) {
    __m512 vc = _mm512_set1_ps(c), vd = _mm512_set1_ps(d);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        prefetch(pf + i); prefetch(pf + i + 16); prefetch(pf + i + 32); prefetch(pf + i + 48);
        __m512 d0 = _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vc), vd);
        __m512 d1 = _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vc), vd);
        __m512 d2 = _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i + 32), vc), vd);
        __m512 d3 = _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i + 48), vc), vd);
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
        s2 = _mm512_fmadd_ps(d2, d2, s2);
        s3 = _mm512_fmadd_ps(d3, d3, s3);
    }
    for (; i < n; i += 16) {
        prefetch(pf + i);
        __mmask16 k = tail_mask(n, i);
        __m512 d0 = _mm512_maskz_sub_ps(k, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vc), vd);
        s0 = _mm512_fmadd_ps(d0, d0, s0);
    }
    return vm_hsum(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* sum a * b */
static inline float row_dot(int64_t n, const float *a, const float *b) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i < n; i += 16) {
        __mmask16 k = tail_mask(n, i);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i), s0);
    }
    return vm_hsum(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* e[i] = exp(x[i] - m), returns their sum; prefetches pf (the next row). e may be x. Two
 * accumulators: the exps of neighbouring vectors are independent, the sum is the only chain. */
static inline float row_exp(int64_t n, const float *x, float m, float *e, const float *pf) {
    __m512 vm = _mm512_set1_ps(m), s0 = _mm512_setzero_ps(), s1 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        prefetch(pf + i); prefetch(pf + i + 16);
        __m512 e0 = vm_exp(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm));
        __m512 e1 = vm_exp(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vm));
        if (e) { _mm512_storeu_ps(e + i, e0); _mm512_storeu_ps(e + i + 16, e1); }
        s0 = _mm512_add_ps(s0, e0);
        s1 = _mm512_add_ps(s1, e1);
    }
    for (; i < n; i += 16) {
        prefetch(pf + i);
        __mmask16 k = tail_mask(n, i);
        __m512 e0 = vm_exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm));
        if (e) _mm512_mask_storeu_ps(e + i, k, e0);
        s0 = _mm512_mask_add_ps(s0, k, s0, e0);
    }
    return vm_hsum(_mm512_add_ps(s0, s1));
}

/* log sum exp(x) over a row; -inf for an all -inf (or empty) row, +inf if any element is +inf */
static inline double row_logsumexp(int64_t n, const float *x, const float *pf) {
    float m = row_max(n, x);
    if (m == INFINITY || m == -INFINITY) return m;
    return (double)m + log((double)row_exp(n, x, m, NULL, pf));
}

/* a per-thread scratch row of n floats (n is a multiple of 16 where it is used) */
static float *scratch_row(int64_t n) {
    float *p = aligned_alloc(64, ((size_t)n * sizeof(float) + 63) / 64 * 64);
    if (!p) { fprintf(stderr, "softmax: out of memory for a scratch row of %lld floats\n", (long long)n); abort(); }
    return p;
}

/* ---- softmax / log-softmax ---------------------------------------------------------------- */
/* Each kernel: `#pragma omp for nowait` and then an sfence, so that a thread's streamed stores
 * are visible before the barrier that ends the parallel region. */

void dv_softmax_fwd_f32_avx512(int64_t rows, int64_t n, const float *x, float *y) {
    bool stream = stream_ok(rows, n, y);
    #pragma omp parallel if (rows * n > NORM_PAR_MIN && rows > 1)
    {
        float *tmp = stream ? scratch_row(n) : NULL;
        #pragma omp for schedule(static) nowait
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = x + r * n;
            float *yr = y + r * n, *e = stream ? tmp : yr; /* the exps, scaled into y below */
            float m = row_max(n, xr);
            __m512 inv = _mm512_set1_ps(1.0f / row_exp(n, xr, m, e, next_row(x, r, rows, n)));
            for (int64_t i = 0; i < n; i += 16) {
                __mmask16 k = tail_mask(n, i);
                store(yr + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, e + i), inv), stream);
            }
        }
        if (stream) _mm_sfence();
        free(tmp);
    }
}

void dv_softmax_bwd_f32_avx512(int64_t rows, int64_t n, const float *y, const float *gy, float *gx) {
    bool stream = stream_ok(rows, n, gx);
    #pragma omp parallel if (rows * n > NORM_PAR_MIN && rows > 1)
    {
        #pragma omp for schedule(static) nowait
        for (int64_t r = 0; r < rows; r++) {
            const float *yr = y + r * n, *gr = gy + r * n;
            const float *py = next_row(y, r, rows, n), *pg = next_row(gy, r, rows, n);
            float *dr = gx + r * n;
            __m512 dot = _mm512_set1_ps(row_dot(n, gr, yr));
            for (int64_t i = 0; i < n; i += 16) {
                prefetch(py + i); prefetch(pg + i);
                __mmask16 k = tail_mask(n, i);
                __m512 g = _mm512_maskz_loadu_ps(k, gr + i), yy = _mm512_maskz_loadu_ps(k, yr + i);
                store(dr + i, k, _mm512_mul_ps(yy, _mm512_sub_ps(g, dot)), stream);
            }
        }
        if (stream) _mm_sfence();
    }
}

void dv_log_softmax_fwd_f32_avx512(int64_t rows, int64_t n, const float *x, float *y) {
    bool stream = stream_ok(rows, n, y);
    #pragma omp parallel if (rows * n > NORM_PAR_MIN && rows > 1)
    {
        #pragma omp for schedule(static) nowait
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = x + r * n;
            float *yr = y + r * n;
            __m512 lse = _mm512_set1_ps((float)row_logsumexp(n, xr, next_row(x, r, rows, n)));
            for (int64_t i = 0; i < n; i += 16) {
                __mmask16 k = tail_mask(n, i);
                store(yr + i, k, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, xr + i), lse), stream);
            }
        }
        if (stream) _mm_sfence();
    }
}

void dv_log_softmax_bwd_f32_avx512(int64_t rows, int64_t n, const float *y, const float *gy, float *gx) {
    bool stream = stream_ok(rows, n, gx);
    #pragma omp parallel if (rows * n > NORM_PAR_MIN && rows > 1)
    {
        #pragma omp for schedule(static) nowait
        for (int64_t r = 0; r < rows; r++) {
            const float *yr = y + r * n, *gr = gy + r * n;
            const float *py = next_row(y, r, rows, n), *pg = next_row(gy, r, rows, n);
            float *dr = gx + r * n;
            __m512 s = _mm512_set1_ps(row_sum(n, gr, 0.0f));
            for (int64_t i = 0; i < n; i += 16) {
                prefetch(py + i); prefetch(pg + i);
                __mmask16 k = tail_mask(n, i);
                __m512 e = vm_exp(_mm512_maskz_loadu_ps(k, yr + i));
                store(dr + i, k, _mm512_fnmadd_ps(e, s, _mm512_maskz_loadu_ps(k, gr + i)), stream);
            }
        }
        if (stream) _mm_sfence();
    }
}

/* ---- LayerNorm / RMSNorm ------------------------------------------------------------------ */

void dv_layernorm_fwd_f32_avx512(int64_t rows, int64_t n, const float *x, const float *w, const float *b,
                                 double eps, float *y, double *mean, double *rstd) {
    if (n == 0) return;
    bool stream = stream_ok(rows, n, y);
    #pragma omp parallel if (rows * n > NORM_PAR_MIN && rows > 1)
    {
        #pragma omp for schedule(static) nowait
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = x + r * n;
            float *yr = y + r * n;
            /* work with d = x - x0 (x0 = the row's first element): exact for values near x0 */
            float x0 = xr[0];
            float dmu = row_sum(n, xr, x0) / (float)n; /* mean - x0 */
            double var = (double)row_sumsq(n, xr, x0, dmu, next_row(x, r, rows, n)) / (double)n;
            double rs = 1.0 / sqrt(var + eps);
            __m512 vx0 = _mm512_set1_ps(x0), vdmu = _mm512_set1_ps(dmu), vrs = _mm512_set1_ps((float)rs);
            for (int64_t i = 0; i < n; i += 16) {
                __mmask16 k = tail_mask(n, i);
                __m512 d = _mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, xr + i), vx0), vdmu);
                __m512 h = _mm512_mul_ps(d, vrs);
                if (w) h = _mm512_mul_ps(h, _mm512_maskz_loadu_ps(k, w + i));
                if (b) h = _mm512_add_ps(h, _mm512_maskz_loadu_ps(k, b + i));
                store(yr + i, k, h, stream);
            }
            if (mean) mean[r] = (double)x0 + dmu;
            if (rstd) rstd[r] = rs;
        }
        if (stream) _mm_sfence();
    }
}

void dv_rmsnorm_fwd_f32_avx512(int64_t rows, int64_t n, const float *x, const float *w, double eps,
                               float *y, double *rstd) {
    if (n == 0) return;
    bool stream = stream_ok(rows, n, y);
    #pragma omp parallel if (rows * n > NORM_PAR_MIN && rows > 1)
    {
        #pragma omp for schedule(static) nowait
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = x + r * n, *px = next_row(x, r, rows, n);
            float *yr = y + r * n;
            double rs = 1.0 / sqrt((double)row_dot(n, xr, xr) / (double)n + eps);
            __m512 vrs = _mm512_set1_ps((float)rs);
            for (int64_t i = 0; i < n; i += 16) {
                prefetch(px + i);
                __mmask16 k = tail_mask(n, i);
                __m512 h = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, xr + i), vrs);
                if (w) h = _mm512_mul_ps(h, _mm512_maskz_loadu_ps(k, w + i));
                store(yr + i, k, h, stream);
            }
            if (rstd) rstd[r] = rs;
        }
        if (stream) _mm_sfence();
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
 * Per row, a first pass sums g and g h (bwd_row_begin: it reads x and gy from memory); a second
 * (bwd_rows_end) computes gx and adds gy h and gy to the weight-gradient sums, from L1, while it
 * prefetches the next rows. When the weight gradients are wanted, the second pass takes two rows
 * at a time, so their running sums are loaded and stored once per two rows. Rows go in tiles of NORM_TILE: a thread sums a tile's
 * gy h and gy in f32 buffers, then adds the tile sums to its own double buffers; the per-thread
 * buffers are summed at the end in thread order. So no f32 sum runs over more than NORM_TILE
 * rows, and the result is reproducible for a given thread count. */
#define NORM_TILE 32

typedef struct {
    const float *x, *gy;     /* the row */
    const float *px, *pgy;   /* the row whose inputs to prefetch meanwhile */
    float *gx;               /* NULL: no input gradient wanted */
    __m512 x0, dmu, rs;      /* h = ((x - x0) - dmu) * rs, as the forward */
    __m512 a, c;             /* mean(g) (LayerNorm only; 0 for RMSNorm), mean(g h) */
} bwd_row;

static inline __m512 bwd_h(const bwd_row *q, __mmask16 k, int64_t i) {
    return _mm512_mul_ps(_mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, q->x + i), q->x0), q->dmu), q->rs);
}

/* the first pass over row r (the sums are only needed for gx) */
static inline bwd_row bwd_row_begin(int64_t r, int64_t rows, int64_t n, const float *x, const float *w,
                                    const double *mean, const double *rstd, const float *gy, float *gx, int64_t ahead) {
    bwd_row q;
    q.x = x + r * n;
    q.gy = gy + r * n;
    int64_t rp = r + ahead < rows ? r + ahead : r;
    q.px = x + rp * n;
    q.pgy = gy + rp * n;
    q.gx = gx ? gx + r * n : NULL;
    q.x0 = _mm512_set1_ps(mean ? q.x[0] : 0.0f);
    q.dmu = _mm512_set1_ps(mean ? (float)(mean[r] - q.x[0]) : 0.0f);
    q.rs = _mm512_set1_ps((float)rstd[r]);
    q.a = q.c = _mm512_setzero_ps();
    if (!gx) return q;
    __m512 sg0 = _mm512_setzero_ps(), sg1 = sg0, sgh0 = sg0, sgh1 = sg0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 g0 = _mm512_loadu_ps(q.gy + i), g1 = _mm512_loadu_ps(q.gy + i + 16);
        if (w) {
            g0 = _mm512_mul_ps(g0, _mm512_loadu_ps(w + i));
            g1 = _mm512_mul_ps(g1, _mm512_loadu_ps(w + i + 16));
        }
        sg0 = _mm512_add_ps(sg0, g0);
        sg1 = _mm512_add_ps(sg1, g1);
        sgh0 = _mm512_fmadd_ps(g0, bwd_h(&q, 0xFFFF, i), sgh0);
        sgh1 = _mm512_fmadd_ps(g1, bwd_h(&q, 0xFFFF, i + 16), sgh1);
    }
    for (; i < n; i += 16) {
        __mmask16 k = tail_mask(n, i);
        __m512 g = _mm512_maskz_loadu_ps(k, q.gy + i);
        if (w) g = _mm512_mul_ps(g, _mm512_maskz_loadu_ps(k, w + i));
        sg0 = _mm512_add_ps(sg0, g);
        sgh0 = _mm512_fmadd_ps(g, bwd_h(&q, k, i), sgh0); /* g is 0 in masked-off lanes */
    }
    if (mean) q.a = _mm512_set1_ps(vm_hsum(_mm512_add_ps(sg0, sg1)) / (float)n);
    q.c = _mm512_set1_ps(vm_hsum(_mm512_add_ps(sgh0, sgh1)) / (float)n);
    return q;
}

/* the second pass over nr (1 or 2) rows: gx, and fw[i] += sum gy h, fw[n + i] += sum gy
 * (fw NULL: no weight gradients wanted) */
static inline void bwd_rows_end(int nr, const bwd_row *q, int64_t n, const float *w, float *fw, bool stream) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n, i);
        __m512 sgh = _mm512_setzero_ps(), sg = sgh;
        for (int j = 0; j < nr; j++) {
            prefetch(q[j].px + i);
            prefetch(q[j].pgy + i);
            __m512 g0 = _mm512_maskz_loadu_ps(k, q[j].gy + i), h = bwd_h(&q[j], k, i);
            if (q[j].gx) {
                __m512 g = w ? _mm512_mul_ps(g0, _mm512_maskz_loadu_ps(k, w + i)) : g0;
                __m512 t = _mm512_fnmadd_ps(h, q[j].c, _mm512_sub_ps(g, q[j].a)); /* g - a - h c */
                store(q[j].gx + i, k, _mm512_mul_ps(q[j].rs, t), stream);
            }
            sgh = _mm512_fmadd_ps(g0, h, sgh);
            sg = _mm512_add_ps(sg, g0);
        }
        if (fw) {
            _mm512_mask_storeu_ps(fw + i, k, _mm512_add_ps(sgh, _mm512_maskz_loadu_ps(k, fw + i)));
            _mm512_mask_storeu_ps(fw + n + i, k, _mm512_add_ps(sg, _mm512_maskz_loadu_ps(k, fw + n + i)));
        }
    }
}

static void norm_bwd(int64_t rows, int64_t n, const float *x, const float *w, const double *mean,
                     const double *rstd, const float *gy, float *gx, float *gw, float *gb) {
    if (n == 0) return;
    bool params = gw || gb, stream = gx && stream_ok(rows, n, gx);
    int nt = rows * n > NORM_PAR_MIN && rows > NORM_TILE ? omp_get_max_threads() : 1;
    /* per thread: double sums of gw, gb (2n), then f32 tile sums of gw, gb (2n) */
    size_t per = 2 * (size_t)n * (sizeof(double) + sizeof(float));
    char *part = params ? calloc((size_t)nt, per) : NULL;
    if (params && !part) { fprintf(stderr, "norm backward: out of memory\n"); abort(); }
    #pragma omp parallel num_threads(nt)
    {
        double *dw = params ? (double *)(part + (size_t)omp_get_thread_num() * per) : NULL;
        float *fw = params ? (float *)(dw + 2 * n) : NULL;
        #pragma omp for schedule(static) nowait
        for (int64_t r0 = 0; r0 < rows; r0 += NORM_TILE) {
            int64_t r1 = r0 + NORM_TILE < rows ? r0 + NORM_TILE : rows;
            if (params) memset(fw, 0, 2 * (size_t)n * sizeof(float));
            int64_t r = r0;
            if (params) /* pairs pay off only for the running sums (measured: 8% faster with them, 8% slower without) */
                for (; r + 2 <= r1; r += 2) {
                    bwd_row q[2] = {bwd_row_begin(r, rows, n, x, w, mean, rstd, gy, gx, 2),
                                    bwd_row_begin(r + 1, rows, n, x, w, mean, rstd, gy, gx, 2)};
                    bwd_rows_end(2, q, n, w, fw, stream);
                }
            for (; r < r1; r++) {
                bwd_row q = bwd_row_begin(r, rows, n, x, w, mean, rstd, gy, gx, 1);
                bwd_rows_end(1, &q, n, w, fw, stream);
            }
            if (params) {
                for (int64_t i = 0; i < n; i += 16) {
                    __mmask16 k = tail_mask(n, i);
                    add_to_f64(dw + i, _mm512_maskz_loadu_ps(k, fw + i), k);
                    add_to_f64(dw + n + i, _mm512_maskz_loadu_ps(k, fw + n + i), k);
                }
            }
        }
        if (stream) _mm_sfence();
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
        double l = row_logsumexp(n, xr, next_row(x, r, rows, n));
        lse[r] = l;
        loss[r] = (float)(l - xr[target[r]]);
    }
}

void dv_cross_entropy_bwd_f32_avx512(int64_t rows, int64_t n, const float *x, const int64_t *target,
                                     int64_t ignore_index, const double *lse, double scale, float *gx) {
    bool stream = stream_ok(rows, n, gx);
    #pragma omp parallel if (rows * n > NORM_PAR_MIN && rows > 1)
    {
        #pragma omp for schedule(static) nowait
        for (int64_t r = 0; r < rows; r++) {
            float *dr = gx + r * n;
            if (target[r] == ignore_index) {
                for (int64_t i = 0; i < n; i += 16) store(dr + i, tail_mask(n, i), _mm512_setzero_ps(), stream);
                continue;
            }
            const float *xr = x + r * n;
            int64_t t = target[r];
            /* p - 1 = expm1(x - lse) at the target: no cancellation when p is close to 1 */
            float pt = (float)(scale * expm1((double)xr[t] - lse[r]));
            /* x - lse as (x - hi) - lo, lse = hi + lo split in two floats: x - hi is exact near hi */
            float hi = (float)lse[r], lo = (float)(lse[r] - hi);
            __m512 vhi = _mm512_set1_ps(hi), vlo = _mm512_set1_ps(lo), s = _mm512_set1_ps((float)scale);
            for (int64_t i = 0; i < n; i += 16) {
                __mmask16 k = tail_mask(n, i);
                __m512 v = _mm512_mul_ps(s, vm_exp(_mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, xr + i), vhi), vlo)));
                if (t >= i && t < i + 16) v = _mm512_mask_mov_ps(v, (__mmask16)(1u << (t - i)), _mm512_set1_ps(pt));
                store(dr + i, k, v, stream);
            }
        }
        if (stream) _mm_sfence();
    }
}
