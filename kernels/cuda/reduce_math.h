/* kernels/cuda/reduce_math.h — the per-line loops of the CUDA reductions beyond sum / mean
 * (reduce_ext.cu: max / min with the first extreme index, logsumexp, cumsum, the max / min
 * gradient scatter) and the per-element updates of the CUDA optimisers (optim.cu: SGD, EMA).
 *
 * One GPU thread runs one of these loops per output position (reduce_ext.cu's default; long
 * lines are spread over a warp or a block there, see its header), so the kernels compute exactly
 * what kernels/reduce_ext_impl.h and optim/sgd.c / optim/ema.c compute, in the same order:
 * max / min / argmax and cumsum are bit-identical (cumsum accumulates in double as the CPU
 * does), logsumexp differs only by expf / logf's ulps on the device. DV_HD functions
 * (kernels/cuda/common.h): tests/test_cuda_host_ops.c compiles them for the host and checks
 * them against the CPU ops inside `make test`, without a GPU. Plain C11 under gcc.
 *
 * Products that feed an add go through DV_FMUL so the device compiler cannot fuse them into
 * an FMA (one rounding instead of the CPU's two).
 */
#ifndef DV_KERNELS_CUDA_REDUCE_MATH_H
#define DV_KERNELS_CUDA_REDUCE_MATH_H

#include <math.h>
#include <stdint.h>

#include "kernels/cuda/common.h"

/* ---- max / min along a line (kernels/reduce_ext.h) -------------------------------------- */
/* xp[0], xp[inner], ... xp[(n-1) inner] (n >= 1): the largest (is_max) or smallest value and
 * the first index that attains it; a NaN wins and stops the scan (the first NaN), as torch */
DV_HD void dv_cu_extreme_line_f32(const float *xp, int64_t n, int64_t inner, int is_max, float *best_out,
                                  int64_t *idx_out) {
    float best = xp[0];
    int64_t bi = 0;
    for (int64_t i = 1; i < n && best == best; i++) {
        float v = xp[i * inner];
        if ((is_max ? v > best : v < best) || v != v) {
            best = v;
            bi = i;
        }
    }
    *best_out = best;
    *idx_out = bi;
}

/* The same result as a reduction of (value, index) pairs in any order, for the block-per-row
 * kernel: the CPU's scan keeps the first NaN, else the first index of the extreme value, i.e.
 * it picks the top of this total order — a NaN above every number, then the larger (is_max)
 * or smaller value, then (equal values, -0 == +0, or two NaNs) the smaller index. An index
 * < 0 marks an empty slot, below everything. */
DV_HD int dv_cu_extreme_prefer(float va, int64_t ia, float vb, int64_t ib, int is_max) {
    if (ib < 0) return ia >= 0;
    if (ia < 0) return 0;
    int na = va != va, nb = vb != vb;
    if (na || nb) return na && nb ? ia < ib : na;
    if (va == vb) return ia < ib;
    return is_max ? va > vb : va < vb;
}

/* keep the preferred of (best, bi) and (v, i) in (best, bi) */
DV_HD void dv_cu_extreme_take(float v, int64_t i, float *best, int64_t *bi, int is_max) {
    if (dv_cu_extreme_prefer(v, i, *best, *bi, is_max)) {
        *best = v;
        *bi = i;
    }
}

/* log sum_i exp(x_i) over the line: max + log(sum exp(x - max)) with the sum in double; the
 * max itself when it is +-inf (all -inf, or any +inf); -inf for n == 0. A NaN propagates
 * through the sum (the CPU's max pass skips it, the exp pass does not). */
DV_HD float dv_cu_logsumexp_line_f32(const float *xp, int64_t n, int64_t inner) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (xp[i * inner] > m) m = xp[i * inner];
    if (m == INFINITY || m == -INFINITY) return m;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)expf(xp[i * inner] - m);
    return (float)((double)m + log(s));
}

/* y[i] = sum_{k <= i} x[k] along the line (reverse: sum_{k >= i}), accumulated in double */
DV_HD void dv_cu_cumsum_line_f32(const float *xp, float *yp, int64_t n, int64_t inner, int reverse) {
    double acc = 0;
    for (int64_t k = 0; k < n; k++) {
        int64_t i = reverse ? n - 1 - k : k;
        acc += (double)xp[i * inner];
        yp[i * inner] = (float)acc;
    }
}

/* ---- optimisers (optim/sgd.c, optim/ema.c) ---------------------------------------------- */
/* f32 coefficients of one SGD step, rounded once from the doubles as optim/sgd.c does */
typedef struct {
    float lr, wd, mom, omd; /* omd = 1 - dampening */
    int has_wd, use_momentum, nesterov, first;
} dv_cu_sgd_coefs;

/* one element of optim/sgd.c's sgd_f32; buf is read / written only with momentum */
DV_HD void dv_cu_sgd_one(const dv_cu_sgd_coefs *c, float *p, float g, float *buf) {
    float d = g;
    if (c->has_wd) d = d + DV_FMUL(c->wd, *p);
    if (c->use_momentum) {
        float b = c->first ? d : DV_FMUL(c->mom, *buf) + DV_FMUL(c->omd, d);
        *buf = b;
        d = c->nesterov ? d + DV_FMUL(c->mom, b) : b;
    }
    *p = *p - DV_FMUL(c->lr, d);
}

/* one element of optim/ema.c's update: shadow <- shadow - a (shadow - param), a = 1 - decay */
DV_HD float dv_cu_ema_one(float shadow, float param, float a) { return shadow - DV_FMUL(a, shadow - param); }

#endif
