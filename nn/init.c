/* nn/init.c — the weight initialisations the reference models use, as torch.nn.init defines
 * them, all drawn through dv_rng (counter-based) so a seed reproduces a model exactly. Half
 * tensors are drawn in f32 and rounded by the copy. */
#include "nn/module.h"

#include <math.h>

void dv_init_fans(const dv_tensor *t, int64_t *fan_in, int64_t *fan_out) {
    DV_ASSERT(t->ndim >= 1, "dv_init_fans: a 0-d tensor has no fans");
    if (t->ndim == 1) {
        *fan_in = *fan_out = t->shape[0];
        return;
    }
    int64_t rf = 1;
    for (int d = 2; d < t->ndim; d++) rf *= t->shape[d];
    *fan_in = t->shape[1] * rf;
    *fan_out = t->shape[0] * rf;
}

/* draw into an f32/f64 tensor directly, or into an f32 scratch then copy (other dtypes) */
static void fill(dv_rng *rng, dv_tensor *t, bool normal, double a, double b) {
    if (t->dtype == DV_F32 || t->dtype == DV_F64) {
        if (normal) dv_rng_fill_normal(rng, t, a, b);
        else dv_rng_fill_uniform(rng, t, a, b);
        return;
    }
    dv_tensor *s = dv_empty(DV_F32, t->shape, t->ndim);
    if (normal) dv_rng_fill_normal(rng, s, a, b);
    else dv_rng_fill_uniform(rng, s, a, b);
    dv_copy_(t, s);
    dv_release(s);
}

void dv_init_normal(dv_rng *rng, dv_tensor *t, double mean, double std) { fill(rng, t, true, mean, std); }
void dv_init_uniform(dv_rng *rng, dv_tensor *t, double lo, double hi) { fill(rng, t, false, lo, hi); }

void dv_init_xavier_uniform(dv_rng *rng, dv_tensor *t, double gain) {
    int64_t fi, fo;
    dv_init_fans(t, &fi, &fo);
    double bound = fi + fo > 0 ? gain * sqrt(6.0 / (double)(fi + fo)) : 0.0;
    fill(rng, t, false, -bound, bound);
}

void dv_init_kaiming_uniform(dv_rng *rng, dv_tensor *t, double a) {
    int64_t fi, fo;
    dv_init_fans(t, &fi, &fo);
    double gain = sqrt(2.0 / (1.0 + a * a));
    double bound = fi > 0 ? gain * sqrt(3.0 / (double)fi) : 0.0;
    fill(rng, t, false, -bound, bound);
}

void dv_init_zeros(dv_tensor *t) { dv_fill_(t, 0.0); }
void dv_init_ones(dv_tensor *t) { dv_fill_(t, 1.0); }

void dv_init_linear_default(dv_rng *rng, dv_tensor *w, dv_tensor *bias) {
    dv_init_kaiming_uniform(rng, w, sqrt(5.0));
    if (bias) {
        int64_t fi, fo;
        dv_init_fans(w, &fi, &fo);
        double bound = fi > 0 ? 1.0 / sqrt((double)fi) : 0.0;
        fill(rng, bias, false, -bound, bound);
    }
}
