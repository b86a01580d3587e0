/* kernels/reduce_ext_impl.h — the portable kernels of kernels/reduce_ext.h, written once for a
 * scalar type. Included by kernels/reduce_ext.c with T, M(fn) and SUFFIX defined.
 *
 * Every kernel walks the (outer, inner) output positions in parallel and reads its n inputs at
 * stride inner. For inner == 1 (the common case: reducing the last dim) that is a contiguous
 * row; otherwise neighbouring positions share cache lines, which is good enough for ops that
 * are not on a hot path. */

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define KNAME(base) CAT(CAT(base, SUFFIX), _portable)

static inline void CAT(extreme_, SUFFIX)(int64_t outer, int64_t n, int64_t inner, const T *x, T *y,
                                         int64_t *idx, int is_max) {
    #pragma omp parallel for schedule(static) if (outer * n * inner > DV_REDUCE_EXT_PAR_MIN)
    for (int64_t p = 0; p < outer * inner; p++) {
        const T *xp = x + (p / inner) * n * inner + p % inner;
        T best = xp[0];
        int64_t bi = 0;
        for (int64_t i = 1; i < n && best == best; i++) { /* stop at the first NaN */
            T v = xp[i * inner];
            if ((is_max ? v > best : v < best) || v != v) { best = v; bi = i; }
        }
        if (y) y[p] = best;
        if (idx) idx[p] = bi;
    }
}

void KNAME(dv_max_)(int64_t outer, int64_t n, int64_t inner, const T *x, T *y, int64_t *idx) {
    CAT(extreme_, SUFFIX)(outer, n, inner, x, y, idx, 1);
}

void KNAME(dv_min_)(int64_t outer, int64_t n, int64_t inner, const T *x, T *y, int64_t *idx) {
    CAT(extreme_, SUFFIX)(outer, n, inner, x, y, idx, 0);
}

void KNAME(dv_logsumexp_)(int64_t outer, int64_t n, int64_t inner, const T *x, T *y) {
    #pragma omp parallel for schedule(static) if (outer * n * inner > DV_REDUCE_EXT_PAR_MIN)
    for (int64_t p = 0; p < outer * inner; p++) {
        const T *xp = x + (p / inner) * n * inner + p % inner;
        T m = -INFINITY;
        for (int64_t i = 0; i < n; i++)
            if (xp[i * inner] > m) m = xp[i * inner];
        if (m == INFINITY || m == -INFINITY) { y[p] = m; continue; }
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += M(exp)(xp[i * inner] - m);
        y[p] = (T)((double)m + log(s));
    }
}

void KNAME(dv_cumsum_)(int64_t outer, int64_t n, int64_t inner, const T *x, T *y, int reverse) {
    #pragma omp parallel for schedule(static) if (outer * n * inner > DV_REDUCE_EXT_PAR_MIN)
    for (int64_t p = 0; p < outer * inner; p++) {
        int64_t base = (p / inner) * n * inner + p % inner;
        double acc = 0;
        for (int64_t k = 0; k < n; k++) {
            int64_t i = reverse ? n - 1 - k : k;
            acc += x[base + i * inner];
            y[base + i * inner] = (T)acc;
        }
    }
}

void KNAME(dv_scatter_dim_)(int64_t outer, int64_t n, int64_t inner, const int64_t *idx, const T *g, T *gx) {
    #pragma omp parallel for schedule(static) if (outer * n * inner > DV_REDUCE_EXT_PAR_MIN)
    for (int64_t p = 0; p < outer * inner; p++) {
        T *gp = gx + (p / inner) * n * inner + p % inner;
        for (int64_t i = 0; i < n; i++) gp[i * inner] = 0;
        gp[idx[p] * inner] = g[p];
    }
}

#undef KNAME
#undef CAT
#undef CAT_
