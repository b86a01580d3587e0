/* kernels/adamw.c — the portable fused AdamW update (f32 with an optional f16/bf16 copy, f64).
 * The formula and its order of operations are in kernels/adamw.h. */
#include "kernels/adamw.h"

#include "kernels/half.h"

#include <math.h>

dv_adamw_coefs dv_adamw_coefs_at(double lr, double beta1, double beta2, double eps,
                                 double weight_decay, int64_t t) {
    dv_adamw_coefs c;
    c.decay = 1.0 - lr * weight_decay;
    c.beta1 = beta1;
    c.beta2 = beta2;
    c.step_size = lr / (1.0 - pow(beta1, (double)t));
    c.bc2_sqrt = sqrt(1.0 - pow(beta2, (double)t));
    c.eps = eps;
    return c;
}

/* The f32 update runs in blocks of BLOCK elements, the unit OpenMP hands out. A block is
 * updated in three loops (the block is in L1 after the first, so memory is still crossed once):
 * the moments, the square roots, the parameter; then the copy is written. Inlined where n is
 * the constant BLOCK, the first and last loop are vectorised by the compiler even at -O2;
 * sqrtf stays in a scalar loop of its own (the compiler must keep its errno path). */
enum { BLOCK = 2048 };

static inline __attribute__((always_inline)) void update_f32(int64_t n, float *restrict p,
        const float *restrict g, float *restrict m, float *restrict v, const dv_adamw_coefs *c) {
    const float decay = (float)c->decay, b1 = (float)c->beta1, b2 = (float)c->beta2;
    const float omb1 = (float)(1.0 - c->beta1), omb2 = (float)(1.0 - c->beta2);
    const float neg_step = (float)-c->step_size, bc2 = (float)c->bc2_sqrt, eps = (float)c->eps;
    float root[BLOCK];
    for (int64_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + omb1 * g[i];
        v[i] = b2 * v[i] + omb2 * g[i] * g[i];
    }
    for (int64_t i = 0; i < n; i++) root[i] = sqrtf(v[i]);
    for (int64_t i = 0; i < n; i++) p[i] = p[i] * decay + neg_step * (m[i] / (root[i] / bc2 + eps));
}

void dv_adamw_f32_portable(int64_t n, float *p, const float *g, float *m, float *v,
                           const dv_adamw_coefs *c, dv_adamw_copy kind, uint16_t *copy) {
    int64_t nblocks = (n + BLOCK - 1) / BLOCK;
    #pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t b = 0; b < nblocks; b++) {
        int64_t lo = b * BLOCK, len = n - lo < BLOCK ? n - lo : BLOCK;
        if (len == BLOCK) update_f32(BLOCK, p + lo, g + lo, m + lo, v + lo, c); /* vectorised */
        else update_f32(len, p + lo, g + lo, m + lo, v + lo, c);
        if (kind == DV_ADAMW_COPY_F16)
            for (int64_t i = lo; i < lo + len; i++) copy[i] = dv_f32_to_f16(p[i]);
        else if (kind == DV_ADAMW_COPY_BF16)
            for (int64_t i = lo; i < lo + len; i++) copy[i] = dv_f32_to_bf16(p[i]);
    }
}

void dv_adamw_f64_portable(int64_t n, double *p, const double *g, double *m, double *v,
                           const dv_adamw_coefs *c) {
    const double decay = c->decay, b1 = c->beta1, b2 = c->beta2;
    const double omb1 = 1.0 - b1, omb2 = 1.0 - b2, neg_step = -c->step_size;
    #pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; i++) {
        double gi = g[i];
        double mi = b1 * m[i] + omb1 * gi;
        double vi = b2 * v[i] + omb2 * gi * gi;
        double denom = sqrt(vi) / c->bc2_sqrt + c->eps;
        p[i] = p[i] * decay + neg_step * (mi / denom);
        m[i] = mi;
        v[i] = vi;
    }
}
