/* kernels/norm_impl.h — the portable norm kernels, written once for a scalar type. Included by
 * kernels/norm.c with T (float/double), M(fn) (the libm name for T) and SUFFIX (f32/f64)
 * defined. Row sums accumulate in double whatever T is: these kernels are the reference. */

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define KNAME(base) CAT(CAT(base, SUFFIX), _portable)
#define ROW_MAX CAT(row_max_, SUFFIX)
#define ROW_LSE CAT(row_logsumexp_, SUFFIX)

/* max of a row; NaNs are skipped here but reach the result through exp(NaN - max) */
static inline T ROW_MAX(int64_t n, const T *x) {
    T m = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (x[i] > m) m = x[i];
    return m;
}

/* log(sum exp(x)) of a row, as max + log(sum exp(x - max)) so no exp overflows */
static inline double ROW_LSE(int64_t n, const T *x) {
    T m = ROW_MAX(n, x);
    if (m == INFINITY || m == -INFINITY) return m; /* all -inf (or empty): -inf; any +inf: +inf */
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += M(exp)(x[i] - m);
    return (double)m + log(s);
}

/* ---- softmax / log-softmax ---------------------------------------------------------------- */

void KNAME(dv_softmax_fwd_)(int64_t rows, int64_t n, const T *x, T *y) {
    #pragma omp parallel for schedule(static) if (rows * n > DV_NORM_PAR_MIN && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        const T *xr = x + r * n;
        T *yr = y + r * n;
        T m = ROW_MAX(n, xr);
        double s = 0;
        for (int64_t i = 0; i < n; i++) {
            T e = M(exp)(xr[i] - m);
            yr[i] = e;
            s += e;
        }
        for (int64_t i = 0; i < n; i++) yr[i] = (T)(yr[i] / s);
    }
}

void KNAME(dv_softmax_bwd_)(int64_t rows, int64_t n, const T *y, const T *gy, T *gx) {
    #pragma omp parallel for schedule(static) if (rows * n > DV_NORM_PAR_MIN && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        const T *yr = y + r * n, *gr = gy + r * n;
        T *dr = gx + r * n;
        double dot = 0;
        for (int64_t i = 0; i < n; i++) dot += (double)gr[i] * yr[i];
        for (int64_t i = 0; i < n; i++) dr[i] = (T)(yr[i] * (gr[i] - dot));
    }
}

void KNAME(dv_log_softmax_fwd_)(int64_t rows, int64_t n, const T *x, T *y) {
    #pragma omp parallel for schedule(static) if (rows * n > DV_NORM_PAR_MIN && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        const T *xr = x + r * n;
        T *yr = y + r * n;
        double lse = ROW_LSE(n, xr);
        for (int64_t i = 0; i < n; i++) yr[i] = (T)(xr[i] - lse);
    }
}

void KNAME(dv_log_softmax_bwd_)(int64_t rows, int64_t n, const T *y, const T *gy, T *gx) {
    #pragma omp parallel for schedule(static) if (rows * n > DV_NORM_PAR_MIN && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        const T *yr = y + r * n, *gr = gy + r * n;
        T *dr = gx + r * n;
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += gr[i];
        for (int64_t i = 0; i < n; i++) dr[i] = (T)(gr[i] - M(exp)(yr[i]) * s);
    }
}

/* ---- LayerNorm ---------------------------------------------------------------------------- */

void KNAME(dv_layernorm_fwd_)(int64_t rows, int64_t n, const T *x, const T *w, const T *b,
                              double eps, T *y, double *mean, double *rstd) {
    if (n == 0) return;
    #pragma omp parallel for schedule(static) if (rows * n > DV_NORM_PAR_MIN && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        const T *xr = x + r * n;
        T *yr = y + r * n;
        double mu = 0, var = 0;
        for (int64_t i = 0; i < n; i++) mu += xr[i];
        mu /= (double)n;
        for (int64_t i = 0; i < n; i++) {
            double d = xr[i] - mu;
            var += d * d;
        }
        var /= (double)n;
        double rs = 1.0 / sqrt(var + eps);
        for (int64_t i = 0; i < n; i++) {
            double h = (xr[i] - mu) * rs;
            if (w) h *= w[i];
            if (b) h += b[i];
            yr[i] = (T)h;
        }
        if (mean) mean[r] = mu;
        if (rstd) rstd[r] = rs;
    }
}

/* Column sums over all rows for the weight / bias gradients. Each thread owns a block of
 * columns and walks every row, so the sums (and the result) do not depend on the thread count.
 *   gw[j] = sum_r gy[r,j] * xhat[r,j],  gb[j] = sum_r gy[r,j]
 * xhat = (x - mean) * rstd for LayerNorm; for RMSNorm mean is NULL: xhat = x * rstd. */
#define COLS 64
static void CAT(norm_param_grads_, SUFFIX)(int64_t rows, int64_t n, const T *x, const double *mean,
                                           const double *rstd, const T *gy, T *gw, T *gb) {
    #pragma omp parallel for schedule(static) if (rows * n > DV_NORM_PAR_MIN && n > COLS)
    for (int64_t j0 = 0; j0 < n; j0 += COLS) {
        int64_t nj = n - j0 < COLS ? n - j0 : COLS;
        double aw[COLS] = {0}, ab[COLS] = {0};
        for (int64_t r = 0; r < rows; r++) {
            const T *xr = x + r * n + j0, *gr = gy + r * n + j0;
            double mu = mean ? mean[r] : 0.0, rs = rstd[r];
            for (int64_t j = 0; j < nj; j++) {
                aw[j] += gr[j] * ((xr[j] - mu) * rs);
                ab[j] += gr[j];
            }
        }
        for (int64_t j = 0; j < nj; j++) {
            if (gw) gw[j0 + j] = (T)aw[j];
            if (gb) gb[j0 + j] = (T)ab[j];
        }
    }
}
#undef COLS

void KNAME(dv_layernorm_bwd_)(int64_t rows, int64_t n, const T *x, const T *w, const double *mean,
                              const double *rstd, const T *gy, T *gx, T *gw, T *gb) {
    if (n == 0) return;
    if (gx) {
        #pragma omp parallel for schedule(static) if (rows * n > DV_NORM_PAR_MIN && rows > 1)
        for (int64_t r = 0; r < rows; r++) {
            const T *xr = x + r * n, *gr = gy + r * n;
            T *dr = gx + r * n;
            double mu = mean[r], rs = rstd[r], sg = 0, sgh = 0;
            for (int64_t i = 0; i < n; i++) {
                double g = w ? (double)gr[i] * w[i] : gr[i];
                sg += g;
                sgh += g * ((xr[i] - mu) * rs);
            }
            sg /= (double)n;
            sgh /= (double)n;
            for (int64_t i = 0; i < n; i++) {
                double g = w ? (double)gr[i] * w[i] : gr[i];
                dr[i] = (T)(rs * (g - sg - (xr[i] - mu) * rs * sgh));
            }
        }
    }
    if (gw || gb) CAT(norm_param_grads_, SUFFIX)(rows, n, x, mean, rstd, gy, gw, gb);
}

/* ---- RMSNorm ------------------------------------------------------------------------------ */

void KNAME(dv_rmsnorm_fwd_)(int64_t rows, int64_t n, const T *x, const T *w, double eps, T *y,
                            double *rstd) {
    if (n == 0) return;
    #pragma omp parallel for schedule(static) if (rows * n > DV_NORM_PAR_MIN && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        const T *xr = x + r * n;
        T *yr = y + r * n;
        double ms = 0;
        for (int64_t i = 0; i < n; i++) ms += (double)xr[i] * xr[i];
        double rs = 1.0 / sqrt(ms / (double)n + eps);
        for (int64_t i = 0; i < n; i++) yr[i] = (T)(w ? xr[i] * rs * w[i] : xr[i] * rs);
        if (rstd) rstd[r] = rs;
    }
}

void KNAME(dv_rmsnorm_bwd_)(int64_t rows, int64_t n, const T *x, const T *w, const double *rstd,
                            const T *gy, T *gx, T *gw) {
    if (n == 0) return;
    if (gx) {
        #pragma omp parallel for schedule(static) if (rows * n > DV_NORM_PAR_MIN && rows > 1)
        for (int64_t r = 0; r < rows; r++) {
            const T *xr = x + r * n, *gr = gy + r * n;
            T *dr = gx + r * n;
            double rs = rstd[r], sgx = 0;
            for (int64_t i = 0; i < n; i++) sgx += (w ? (double)gr[i] * w[i] : gr[i]) * xr[i];
            double c = rs * rs * sgx / (double)n;
            for (int64_t i = 0; i < n; i++) {
                double g = w ? (double)gr[i] * w[i] : gr[i];
                dr[i] = (T)(rs * (g - xr[i] * c));
            }
        }
    }
    if (gw) CAT(norm_param_grads_, SUFFIX)(rows, n, x, NULL, rstd, gy, gw, NULL);
}

/* ---- cross-entropy (fused log-softmax + negative log-likelihood) -------------------------- */

void KNAME(dv_cross_entropy_fwd_)(int64_t rows, int64_t n, const T *x, const int64_t *target,
                                  int64_t ignore_index, T *loss, double *lse) {
    #pragma omp parallel for schedule(static) if (rows * n > DV_NORM_PAR_MIN && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        if (target[r] == ignore_index) { loss[r] = 0; lse[r] = 0; continue; }
        const T *xr = x + r * n;
        double l = ROW_LSE(n, xr);
        lse[r] = l;
        loss[r] = (T)(l - xr[target[r]]);
    }
}

void KNAME(dv_cross_entropy_bwd_)(int64_t rows, int64_t n, const T *x, const int64_t *target,
                                  int64_t ignore_index, const double *lse, double scale, T *gx) {
    #pragma omp parallel for schedule(static) if (rows * n > DV_NORM_PAR_MIN && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        const T *xr = x + r * n;
        T *dr = gx + r * n;
        if (target[r] == ignore_index) {
            for (int64_t i = 0; i < n; i++) dr[i] = 0;
            continue;
        }
        for (int64_t i = 0; i < n; i++) dr[i] = (T)(scale * M(exp)(xr[i] - lse[r]));
        /* p - 1 = expm1(x - lse): no cancellation when p is close to 1 */
        dr[target[r]] = (T)(scale * expm1((double)xr[target[r]] - lse[r]));
    }
}

/* ---- binary cross-entropy with logits ----------------------------------------------------- */

double KNAME(dv_bce_logits_sum_)(int64_t n, const T *x, const T *t) {
    double acc = 0;
    #pragma omp parallel for schedule(static) reduction(+ : acc) if (n > DV_NORM_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        T v = x[i];
        acc += (double)(v > 0 ? v : 0) - (double)v * t[i] + M(log1p)(M(exp)(-M(fabs)(v)));
    }
    return acc;
}

void KNAME(dv_bce_logits_bwd_)(int64_t n, const T *x, const T *t, double scale, T *gx, T *gt) {
    #pragma omp parallel for schedule(static) if (n > DV_NORM_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        T v = x[i];
        if (gx) {
            T e = M(exp)(-M(fabs)(v)); /* sigmoid without overflow on either side */
            T s = v >= 0 ? (T)1 / ((T)1 + e) : e / ((T)1 + e);
            gx[i] = (T)(scale * (s - t[i]));
        }
        if (gt) gt[i] = (T)(-scale * v);
    }
}

#undef ROW_MAX
#undef ROW_LSE
#undef KNAME
#undef CAT
#undef CAT_
