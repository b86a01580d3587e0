/* nn/timestep.c — sinusoidal timestep embeddings (diffusers / DiT / 3D Diffuser Actor
 * conventions) and DiT's TimestepEmbedder; see nn/timestep.h.
 * Devices: the embedding is computed on the host (a few scalars per row); a t on a CUDA device
 * is read through a host copy and the embedding is returned on t's device. The embedder's
 * output is on its weights' device. */
#include "nn/timestep.h"

#include <math.h>

#include "tensor/cuda.h"
#include "tensor/ops.h"

dv_timestep_opts dv_timestep_opts_diffusers(void) {
    return (dv_timestep_opts){.flip_sin_to_cos = false, .downscale_freq_shift = 1.0, .scale = 1.0, .max_period = 10000.0};
}

dv_timestep_opts dv_timestep_opts_dit(void) {
    return (dv_timestep_opts){.flip_sin_to_cos = true, .downscale_freq_shift = 0.0, .scale = 1.0, .max_period = 10000.0};
}

/* The exponent of frequency i, in the order the reference computes it:
 *   diffusers / DiT:       (-ln(max_period) * i) / (half - shift)
 *   3D Diffuser Actor:     i * -(ln(10000) / (half - 1))     (the quotient taken in f64 first)
 * f32: each operation rounded to f32 as torch does it; f64: in f64. */
typedef enum { ORDER_DIFFUSERS, ORDER_3DDA } exp_order;

static void embed(const dv_tensor *t, int64_t dim, const dv_timestep_opts *o, exp_order order, dv_tensor *out) {
    int64_t N = t->shape[0], half = dim / 2;
    double denom = (double)half - o->downscale_freq_shift;
    bool f32 = out->dtype == DV_F32;
    /* the frequencies, once */
    double *freq = dv_alloc((int64_t)sizeof(double) * (half > 0 ? half : 1));
    for (int64_t i = 0; i < half; i++) {
        if (f32) {
            float e = order == ORDER_DIFFUSERS ? ((float)-log(o->max_period) * (float)i) / (float)denom
                                               : (float)i * (float)-(log(o->max_period) / denom);
            freq[i] = (double)expf(e);
        } else {
            double e = order == ORDER_DIFFUSERS ? (-log(o->max_period) * (double)i) / denom
                                                : (double)i * -(log(o->max_period) / denom);
            freq[i] = exp(e);
        }
    }
    int64_t sin_at = o->flip_sin_to_cos ? half : 0, cos_at = o->flip_sin_to_cos ? 0 : half;
    for (int64_t n = 0; n < N; n++) {
        double tn = dv_flat_get(t, n);
        for (int64_t i = 0; i < half; i++) {
            double a;
            if (f32) {
                float af = (float)tn * (float)freq[i];
                if (o->scale != 1.0) af = (float)o->scale * af;
                a = (double)af;
            } else {
                a = o->scale * (tn * freq[i]);
            }
            if (f32) {
                float *y = (float *)dv_data(out) + n * dim;
                y[sin_at + i] = (float)sin(a);
                y[cos_at + i] = (float)cos(a);
            } else {
                double *y = (double *)dv_data(out) + n * dim;
                y[sin_at + i] = sin(a);
                y[cos_at + i] = cos(a);
            }
        }
        if (dim % 2) dv_flat_set(out, n * dim + dim - 1, 0.0);
    }
    dv_free(freq, (int64_t)sizeof(double) * (half > 0 ? half : 1));
}

static void check_args(const char *op, const dv_tensor *t, int64_t dim, dv_dtype dt) {
    DV_ASSERT(t->ndim == 1, "%s: t must be 1-D (N), got %s", op, dv_shape_str(t, NULL, 0));
    DV_ASSERT(dim >= 1, "%s: dim %lld must be >= 1", op, (long long)dim);
    DV_ASSERT(dt == DV_F32 || dt == DV_F64, "%s: output dtype %s must be f32 or f64", op, dv_dtype_name(dt));
}

/* t and the host-computed (N, dim) embedding out -> the embedding on t's device (out is consumed) */
static dv_tensor *to_t_device(const dv_tensor *t, dv_tensor *out) {
    if (t->device.type == DV_CPU) return out;
    dv_tensor *y = dv_tensor_to(out, t->device);
    dv_release(out);
    return y;
}

/* t itself on the CPU, else a host copy (a new reference either way) */
static dv_tensor *host_t(const dv_tensor *t) {
    return t->device.type == DV_CPU ? dv_retain((dv_tensor *)t) : dv_tensor_to((dv_tensor *)t, DV_DEVICE_CPU);
}

dv_tensor *dv_timestep_embedding(const dv_tensor *t, int64_t dim, const dv_timestep_opts *opts, dv_dtype dt) {
    check_args("timestep_embedding", t, dim, dt);
    dv_timestep_opts o = opts ? *opts : dv_timestep_opts_diffusers();
    DV_ASSERT(dim / 2 == 0 || (double)(dim / 2) != o.downscale_freq_shift,
              "timestep_embedding: dim %lld with downscale_freq_shift %g divides by zero", (long long)dim,
              o.downscale_freq_shift);
    DV_ASSERT(o.max_period > 0, "timestep_embedding: max_period %g must be > 0", o.max_period);
    dv_tensor *th = host_t(t), *out = dv_empty(dt, DV_SHAPE(t->shape[0], dim));
    embed(th, dim, &o, ORDER_DIFFUSERS, out);
    dv_release(th);
    return to_t_device(t, out);
}

dv_tensor *dv_sinusoidal_pos_emb(const dv_tensor *t, int64_t dim, dv_dtype dt) {
    check_args("sinusoidal_pos_emb", t, dim, dt);
    DV_ASSERT(dim % 2 == 0 && dim >= 4, "sinusoidal_pos_emb: dim %lld must be even and >= 4", (long long)dim);
    dv_timestep_opts o = dv_timestep_opts_diffusers();
    dv_tensor *th = host_t(t), *out = dv_empty(dt, DV_SHAPE(t->shape[0], dim));
    embed(th, dim, &o, ORDER_3DDA, out);
    dv_release(th);
    return to_t_device(t, out);
}

/* ---- TimestepEmbedder --------------------------------------------------------------------- */
void dv_nn_timestep_embedder_init(dv_nn_timestep_embedder *e, dv_registry *r, const char *name,
                                  int64_t hidden, int64_t freq_dim, dv_dtype dt, dv_rng *rng) {
    e->freq_dim = freq_dim;
    e->max_period = 10000.0;
    dv_reg_push(r, "%s", name);
    dv_reg_push(r, "mlp");
    dv_nn_linear_init(&e->fc1, r, "0", freq_dim, hidden, true, dt, rng);
    dv_nn_linear_init(&e->fc2, r, "2", hidden, hidden, true, dt, rng);
    dv_reg_pop(r);
    dv_reg_pop(r);
    /* DiT: normal(0, 0.02) weights, zero biases */
    dv_init_normal(rng, e->fc1.weight, 0.0, 0.02);
    dv_init_normal(rng, e->fc2.weight, 0.0, 0.02);
    dv_init_zeros(e->fc1.bias);
    dv_init_zeros(e->fc2.bias);
}

dv_tensor *dv_nn_timestep_embedder_forward(const dv_nn_timestep_embedder *e, const dv_tensor *t) {
    dv_dtype dt = e->fc1.weight->dtype == DV_F64 ? DV_F64 : DV_F32;
    dv_timestep_opts o = dv_timestep_opts_dit();
    o.max_period = e->max_period;
    dv_tensor *f = dv_timestep_embedding(t, e->freq_dim, &o, dt);
    dv_device wd = e->fc1.weight->device;
    if (f->device.type != wd.type || f->device.index != wd.index) { /* a host t, weights on a GPU */
        dv_tensor *fd = dv_tensor_to(f, wd);
        dv_release(f);
        f = fd;
    }
    dv_tensor *h = dv_nn_linear_forward(&e->fc1, f);
    dv_tensor *a = dv_silu(h);
    dv_tensor *y = dv_nn_linear_forward(&e->fc2, a);
    dv_release(f), dv_release(h), dv_release(a);
    return y;
}
