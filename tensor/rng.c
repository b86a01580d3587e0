/* tensor/rng.c — counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random
 * numbers: as easy as 1, 2, 3", SC 2011).
 *
 * A stream is (seed, offset). Element i of a draw of n numbers comes from the 128-bit block
 * Philox(counter = offset + i/4, key = seed), 32-bit lane i%4; after the draw offset advances
 * by ceil(n/4). No state is shared between elements, so any thread split (and the CUDA
 * backend, which uses the same mapping) gives the same numbers for the same seed.
 *   uniform [lo,hi): lo + (hi-lo) * (u >> 8) * 2^-24
 *   normal:          Box-Muller on lane pairs (0,1) and (2,3): with a = ((u0>>8)+1) * 2^-24
 *                    and b = (u1>>8) * 2^-24, z0 = sqrt(-2 ln a) cos(2 pi b), z1 = ... sin(2 pi b)
 *   randint [lo,hi): lo + floor(u * (hi-lo) / 2^32), for hi-lo <= 2^32
 * The math is done in double and rounded once to the tensor's dtype.
 */
#include "tensor/cuda.h"
#include "kernels/cuda/common.h"
#include "tensor/internal.h"
#include "tensor/ops.h"

#include <math.h>

/* the rounds live in kernels/cuda/common.h, shared with the GPU's generator (plain C here) */
void dv_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    dv_cu_philox4x32_10(ctr, key, out);
}

dv_rng dv_rng_new(uint64_t seed) { return (dv_rng){seed, 0}; }

static void block(const dv_rng *r, uint64_t i, uint32_t out[4]) {
    uint64_t c = r->offset + i;
    uint32_t ctr[4] = {(uint32_t)c, (uint32_t)(c >> 32), 0, 0};
    uint32_t key[2] = {(uint32_t)r->seed, (uint32_t)(r->seed >> 32)};
    dv_philox4x32_10(ctr, key, out);
}

typedef enum { KIND_UNIFORM, KIND_NORMAL, KIND_RANDINT } kind;

static void fill(dv_rng *r, dv_tensor *t, kind k, double a, double b) {
    int64_t n = dv_numel(t);
    int64_t nblocks = (n + 3) / 4;
    if (t->device.type == DV_CUDA) { /* kernels/cuda/rng.cu: the same element mapping */
        dv_cuda_rng_fill((int)k, r->seed, r->offset, t, a, b);
        r->offset += (uint64_t)nblocks;
        return;
    }
    dv_tensor *tmp = dv_empty(DV_F64, t->shape, t->ndim);
    double *v = dv_data(tmp);
    #pragma omp parallel for schedule(static) if (nblocks > 4096)
    for (int64_t bi = 0; bi < nblocks; bi++) {
        uint32_t u[4];
        block(r, (uint64_t)bi, u);
        double z[4];
        if (k == KIND_NORMAL) {
            for (int p = 0; p < 4; p += 2) {
                double ua = ((u[p] >> 8) + 1) * (1.0 / 16777216.0);
                double ub = (u[p + 1] >> 8) * (1.0 / 16777216.0);
                double rad = sqrt(-2.0 * log(ua));
                z[p] = a + b * rad * cos(2 * M_PI * ub);
                z[p + 1] = a + b * rad * sin(2 * M_PI * ub);
            }
        } else if (k == KIND_UNIFORM) {
            for (int p = 0; p < 4; p++) z[p] = a + (b - a) * ((u[p] >> 8) * (1.0 / 16777216.0));
        } else {
            uint64_t range = (uint64_t)(b - a);
            for (int p = 0; p < 4; p++) z[p] = a + (double)(((uint64_t)u[p] * range) >> 32);
        }
        for (int p = 0; p < 4 && bi * 4 + p < n; p++) v[bi * 4 + p] = z[p];
    }
    r->offset += (uint64_t)nblocks;
    dv_copy_(t, tmp);
    dv_release(tmp);
}

void dv_rng_fill_uniform(dv_rng *r, dv_tensor *t, double lo, double hi) { fill(r, t, KIND_UNIFORM, lo, hi); }
void dv_rng_fill_normal(dv_rng *r, dv_tensor *t, double mean, double std) { fill(r, t, KIND_NORMAL, mean, std); }
void dv_rng_fill_randint(dv_rng *r, dv_tensor *t, int64_t lo, int64_t hi) {
    if (hi <= lo || (uint64_t)(hi - lo) > (1ull << 32)) dv_panic("randint: bad range [%lld, %lld)", (long long)lo, (long long)hi);
    fill(r, t, KIND_RANDINT, (double)lo, (double)hi);
}

dv_tensor *dv_rand(dv_rng *r, dv_dtype dt, const int64_t *shape, int ndim) {
    dv_tensor *t = dv_empty(dt, shape, ndim);
    dv_rng_fill_uniform(r, t, 0.0, 1.0);
    return t;
}
dv_tensor *dv_randn(dv_rng *r, dv_dtype dt, const int64_t *shape, int ndim) {
    dv_tensor *t = dv_empty(dt, shape, ndim);
    dv_rng_fill_normal(r, t, 0.0, 1.0);
    return t;
}
dv_tensor *dv_randint(dv_rng *r, dv_dtype dt, int64_t lo, int64_t hi, const int64_t *shape, int ndim) {
    dv_tensor *t = dv_empty(dt, shape, ndim);
    dv_rng_fill_randint(r, t, lo, hi);
    return t;
}

uint32_t dv_rng_u32(dv_rng *r) {
    uint32_t u[4];
    block(r, 0, u);
    r->offset++;
    return u[0];
}
