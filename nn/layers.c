/* nn/layers.c — the basic layers as plain structs with _init / _forward (see nn/module.h for
 * the shapes). Each _init initialises as the torch.nn module of the same name does by default
 * and registers its parameters in the registry under "<scope>.<name>.<param>". */
#include "nn/module.h"
#include "tensor/ops.h"

#include <math.h>

static bool is_half(dv_dtype dt) { return dt == DV_F16 || dt == DV_BF16; }

/* ---- Linear ----------------------------------------------------------------------------- */
void dv_nn_linear_init(dv_nn_linear *l, dv_registry *r, const char *name, int64_t in,
                       int64_t out, bool bias, dv_dtype dt, dv_rng *rng) {
    DV_ASSERT(dv_dtype_is_float(dt), "dv_nn_linear_init: '%s' dtype %s is not a float", name, dv_dtype_name(dt));
    l->in = in, l->out = out;
    dv_dtype bdt = is_half(dt) ? DV_F32 : dt;
    dv_tensor *w = dv_empty(dt, DV_SHAPE(out, in));
    dv_tensor *b = bias ? dv_empty(bdt, DV_SHAPE(out)) : NULL;
    dv_init_linear_default(rng, w, b);
    dv_reg_push(r, "%s", name);
    dv_reg_add(r, "weight", &l->weight, w);
    l->bias = b ? dv_reg_add(r, "bias", &l->bias, b) : NULL;
    dv_reg_pop(r);
}

dv_tensor *dv_nn_linear_forward(const dv_nn_linear *l, dv_tensor *x) {
    return dv_linear(x, l->weight, l->bias);
}

/* ---- Embedding -------------------------------------------------------------------------- */
void dv_nn_embedding_init(dv_nn_embedding *e, dv_registry *r, const char *name, int64_t num,
                          int64_t dim, dv_dtype dt, dv_rng *rng) {
    e->num = num, e->dim = dim;
    dv_tensor *w = dv_empty(dt, DV_SHAPE(num, dim));
    dv_init_normal(rng, w, 0.0, 1.0);
    dv_reg_push(r, "%s", name);
    dv_reg_add(r, "weight", &e->weight, w);
    dv_reg_pop(r);
}

dv_tensor *dv_nn_embedding_forward(const dv_nn_embedding *e, dv_tensor *ids) {
    return dv_embedding(e->weight, ids);
}

/* ---- LayerNorm, RMSNorm ----------------------------------------------------------------- */
void dv_nn_layer_norm_init(dv_nn_layer_norm *n, dv_registry *r, const char *name, int64_t dim,
                           double eps, bool affine, bool bias, dv_dtype dt) {
    n->eps = eps;
    n->weight = n->bias = NULL;
    if (!affine) return;
    dv_reg_push(r, "%s", name);
    dv_reg_add(r, "weight", &n->weight, dv_ones(dt, DV_SHAPE(dim)));
    if (bias) dv_reg_add(r, "bias", &n->bias, dv_zeros(dt, DV_SHAPE(dim)));
    dv_reg_pop(r);
}

dv_tensor *dv_nn_layer_norm_forward(const dv_nn_layer_norm *n, dv_tensor *x) {
    return dv_layer_norm(x, n->weight, n->bias, n->eps);
}

void dv_nn_rms_norm_init(dv_nn_rms_norm *n, dv_registry *r, const char *name, int64_t dim,
                         double eps, dv_dtype dt) {
    n->eps = eps;
    dv_reg_push(r, "%s", name);
    dv_reg_add(r, "weight", &n->weight, dv_ones(dt, DV_SHAPE(dim)));
    dv_reg_pop(r);
}

dv_tensor *dv_nn_rms_norm_forward(const dv_nn_rms_norm *n, dv_tensor *x) {
    return dv_rms_norm(x, n->weight, n->eps);
}

/* ---- Conv2d ----------------------------------------------------------------------------- */
void dv_nn_conv2d_init(dv_nn_conv2d *c, dv_registry *r, const char *name, int64_t cin,
                       int64_t cout, int kh, int kw, int stride, int padding, int groups,
                       bool bias, dv_dtype dt, dv_rng *rng) {
    DV_ASSERT(groups >= 1 && cin % groups == 0 && cout % groups == 0,
              "dv_nn_conv2d_init: '%s' channels %lld -> %lld not divisible by groups %d", name,
              (long long)cin, (long long)cout, groups);
    c->stride[0] = c->stride[1] = stride;
    c->padding[0] = c->padding[1] = padding;
    c->dilation[0] = c->dilation[1] = 1;
    c->groups = groups;
    dv_tensor *w = dv_empty(dt, DV_SHAPE(cout, cin / groups, kh, kw));
    dv_tensor *b = bias ? dv_empty(is_half(dt) ? DV_F32 : dt, DV_SHAPE(cout)) : NULL;
    dv_init_linear_default(rng, w, b);
    dv_reg_push(r, "%s", name);
    dv_reg_add(r, "weight", &c->weight, w);
    c->bias = b ? dv_reg_add(r, "bias", &c->bias, b) : NULL;
    dv_reg_pop(r);
}

dv_tensor *dv_nn_conv2d_forward(const dv_nn_conv2d *c, dv_tensor *x) {
    return dv_conv2d(x, c->weight, c->bias, c->stride, c->padding, c->dilation, c->groups);
}

/* ---- Dropout ---------------------------------------------------------------------------- */
dv_tensor *dv_nn_dropout(dv_tensor *x, double p, bool training, dv_rng *rng) {
    DV_ASSERT(p >= 0.0 && p <= 1.0, "dropout: p = %g is not in [0, 1]", p);
    if (!training || p == 0.0) return dv_retain(x);
    dv_check_float("dropout", x);
    /* mask[i] = 1/(1-p) where u >= p, else 0 (p = 1 zeroes everything) */
    dv_tensor *m = dv_rand(rng, x->dtype, x->shape, x->ndim);
    int64_t n = dv_numel(m);
    double keep = p < 1.0 ? 1.0 / (1.0 - p) : 0.0;
    if (m->dtype == DV_F32) {
        float *d = dv_data(m);
        for (int64_t i = 0; i < n; i++) d[i] = d[i] >= (float)p ? (float)keep : 0.0f;
    } else {
        double *d = dv_data(m);
        for (int64_t i = 0; i < n; i++) d[i] = d[i] >= p ? keep : 0.0;
    }
    dv_tensor *y = dv_mul(x, m);
    dv_release(m);
    return y;
}

/* ---- activations, MLP, SwiGLU ----------------------------------------------------------- */
dv_tensor *dv_nn_act(dv_act a, dv_tensor *x) {
    switch (a) {
    case DV_ACT_GELU: return dv_gelu(x);
    case DV_ACT_GELU_TANH: return dv_gelu_tanh(x);
    case DV_ACT_QUICK_GELU: return dv_quick_gelu(x);
    case DV_ACT_SILU: return dv_silu(x);
    case DV_ACT_RELU: return dv_relu(x);
    }
    dv_panic("dv_nn_act: unknown activation %d", (int)a);
}

void dv_nn_mlp_init(dv_nn_mlp *m, dv_registry *r, const char *name, int64_t in, int64_t hidden,
                    int64_t out, dv_act act, bool bias, dv_dtype dt, dv_rng *rng) {
    m->act = act;
    dv_reg_push(r, "%s", name);
    dv_nn_linear_init(&m->fc1, r, "fc1", in, hidden, bias, dt, rng);
    dv_nn_linear_init(&m->fc2, r, "fc2", hidden, out, bias, dt, rng);
    dv_reg_pop(r);
}

dv_tensor *dv_nn_mlp_forward(const dv_nn_mlp *m, dv_tensor *x) {
    dv_tensor *h = dv_nn_linear_forward(&m->fc1, x);
    dv_tensor *a = dv_nn_act(m->act, h);
    dv_release(h);
    dv_tensor *y = dv_nn_linear_forward(&m->fc2, a);
    dv_release(a);
    return y;
}

void dv_nn_swiglu_init(dv_nn_swiglu *m, dv_registry *r, const char *name, int64_t dim,
                       int64_t hidden, dv_dtype dt, dv_rng *rng) {
    dv_reg_push(r, "%s", name);
    dv_nn_linear_init(&m->gate_proj, r, "gate_proj", dim, hidden, false, dt, rng);
    dv_nn_linear_init(&m->up_proj, r, "up_proj", dim, hidden, false, dt, rng);
    dv_nn_linear_init(&m->down_proj, r, "down_proj", hidden, dim, false, dt, rng);
    dv_reg_pop(r);
}

dv_tensor *dv_nn_swiglu_forward(const dv_nn_swiglu *m, dv_tensor *x) {
    dv_tensor *g = dv_nn_linear_forward(&m->gate_proj, x);
    dv_tensor *s = dv_silu(g);
    dv_tensor *u = dv_nn_linear_forward(&m->up_proj, x);
    dv_tensor *h = dv_mul(s, u);
    dv_tensor *y = dv_nn_linear_forward(&m->down_proj, h);
    dv_release(g), dv_release(s), dv_release(u), dv_release(h);
    return y;
}
