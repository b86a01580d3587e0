/* nn/adaln.c — 3D Diffuser Actor's AdaLN and its step + gripper conditioning, DiT's adaLN-Zero
 * modulation vectors; see nn/adaln.h. */
#include "nn/adaln.h"

#include "nn/modulate.h"
#include "nn/timestep.h"
#include "tensor/ops.h"

static bool has_scope(const char *name) { return name && name[0]; }

/* Linear(in, out) registered under "<scope>.<name>", zero-initialised */
static void zero_linear(dv_nn_linear *l, dv_registry *r, const char *name, int64_t in, int64_t out, dv_dtype dt,
                        dv_rng *rng) {
    dv_nn_linear_init(l, r, name, in, out, true, dt, rng);
    dv_init_zeros(l->weight);
    dv_init_zeros(l->bias);
}

/* SiLU -> linear: (B, Cc) -> (B, k C) */
static dv_tensor *silu_linear(const dv_nn_linear *l, dv_tensor *cond) {
    dv_tensor *s = dv_silu(cond);
    dv_tensor *y = dv_nn_linear_forward(l, s);
    dv_release(s);
    return y;
}

/* ---- AdaLN -------------------------------------------------------------------------------- */
void dv_nn_adaln_init(dv_nn_adaln *a, dv_registry *r, const char *name, int64_t dim, int64_t cond_dim,
                      dv_dtype dt, dv_rng *rng) {
    a->dim = dim;
    if (has_scope(name)) dv_reg_push(r, "%s", name);
    dv_reg_push(r, "modulation");
    zero_linear(&a->modulation, r, "1", cond_dim, 2 * dim, dt, rng);
    dv_reg_pop(r);
    if (has_scope(name)) dv_reg_pop(r);
}

dv_tensor *dv_nn_adaln_forward(const dv_nn_adaln *a, dv_tensor *x, dv_tensor *cond) {
    DV_ASSERT(x->ndim == 3 && x->shape[2] == a->dim && cond->ndim == 2 && cond->shape[0] == x->shape[0],
              "adaln: x %s must be (B, N, %lld) and cond %s (B, Cc)", dv_shape_str(x, NULL, 0), (long long)a->dim,
              dv_shape_str(cond, NULL, 0));
    dv_tensor *m = silu_linear(&a->modulation, cond);  /* (B, 2C): scale | shift */
    dv_tensor *ss[2];
    dv_split(m, (const int64_t[]){a->dim, a->dim}, 2, -1, ss);
    dv_tensor *y = dv_modulate(x, ss[1], ss[0]);
    dv_release(ss[0]), dv_release(ss[1]), dv_release(m);
    return y;
}

dv_tensor *dv_nn_adaln_forward_seq_first(const dv_nn_adaln *a, dv_tensor *x, dv_tensor *cond) {
    DV_ASSERT(x->ndim == 3, "adaln: x %s must be (N, B, C)", dv_shape_str(x, NULL, 0));
    dv_tensor *xb = dv_transpose(x, 0, 1);     /* (B, N, C) view */
    dv_tensor *yb = dv_nn_adaln_forward(a, xb, cond);
    dv_tensor *yt = dv_transpose(yb, 0, 1);    /* (N, B, C) view */
    dv_tensor *y = dv_contiguous(yt);
    dv_release(xb), dv_release(yb), dv_release(yt);
    return y;
}

/* ---- step + gripper-history conditioning -------------------------------------------------- */
void dv_nn_adaln_cond_init(dv_nn_adaln_cond *e, dv_registry *r, const char *name, int64_t dim,
                           int64_t nhist, dv_dtype dt, dv_rng *rng) {
    DV_ASSERT(dim >= 4 && dim % 2 == 0 && nhist >= 1, "adaln_cond: dim %lld must be even and >= 4, nhist %lld >= 1",
              (long long)dim, (long long)nhist);
    e->dim = dim, e->nhist = nhist;
    if (has_scope(name)) dv_reg_push(r, "%s", name);
    dv_reg_push(r, "time_emb");        /* Sequential(SinusoidalPosEmb, Linear, ReLU, Linear) */
    dv_nn_linear_init(&e->time_fc1, r, "1", dim, dim, true, dt, rng);
    dv_nn_linear_init(&e->time_fc2, r, "3", dim, dim, true, dt, rng);
    dv_reg_pop(r);
    dv_reg_push(r, "curr_gripper_emb"); /* Sequential(Linear, ReLU, Linear) */
    dv_nn_linear_init(&e->grip_fc1, r, "0", nhist * dim, dim, true, dt, rng);
    dv_nn_linear_init(&e->grip_fc2, r, "2", dim, dim, true, dt, rng);
    dv_reg_pop(r);
    if (has_scope(name)) dv_reg_pop(r);
}

/* fc2(relu(fc1(x))) */
static dv_tensor *mlp_relu(const dv_nn_linear *fc1, const dv_nn_linear *fc2, dv_tensor *x) {
    dv_tensor *h = dv_nn_linear_forward(fc1, x);
    dv_tensor *a = dv_relu(h);
    dv_tensor *y = dv_nn_linear_forward(fc2, a);
    dv_release(h), dv_release(a);
    return y;
}

dv_tensor *dv_nn_adaln_cond_forward(const dv_nn_adaln_cond *e, const dv_tensor *t, dv_tensor *gripper) {
    DV_ASSERT(gripper->ndim == 3 && gripper->shape[1] == e->nhist && gripper->shape[2] == e->dim &&
                  t->ndim == 1 && t->shape[0] == gripper->shape[0],
              "adaln_cond: gripper %s must be (B, %lld, %lld) and t %s (B)", dv_shape_str(gripper, NULL, 0),
              (long long)e->nhist, (long long)e->dim, dv_shape_str(t, NULL, 0));
    dv_dtype dt = gripper->dtype;
    dv_tensor *s = dv_sinusoidal_pos_emb(t, e->dim, dt);                  /* (B, C) */
    dv_tensor *te = mlp_relu(&e->time_fc1, &e->time_fc2, s);
    dv_tensor *gf = dv_reshape(gripper, DV_SHAPE(gripper->shape[0], e->nhist * e->dim));
    dv_tensor *ge = mlp_relu(&e->grip_fc1, &e->grip_fc2, gf);
    dv_tensor *y = dv_add(te, ge);
    dv_release(s), dv_release(te), dv_release(gf), dv_release(ge);
    return y;
}

/* ---- adaLN-Zero --------------------------------------------------------------------------- */
void dv_nn_adaln_zero_init(dv_nn_adaln_zero *m, dv_registry *r, const char *name, int64_t dim,
                           int64_t cond_dim, int n, dv_dtype dt, dv_rng *rng) {
    DV_ASSERT(n >= 1 && n <= DV_ADALN_ZERO_MAX, "adaln_zero: %d vectors (1 .. %d)", n, DV_ADALN_ZERO_MAX);
    m->dim = dim, m->n = n;
    if (has_scope(name)) dv_reg_push(r, "%s", name);
    zero_linear(&m->linear, r, "1", cond_dim, n * dim, dt, rng);
    if (has_scope(name)) dv_reg_pop(r);
}

void dv_nn_adaln_zero_forward(const dv_nn_adaln_zero *m, dv_tensor *c, dv_tensor **out) {
    DV_ASSERT(c->ndim == 2, "adaln_zero: c %s must be (B, Cc)", dv_shape_str(c, NULL, 0));
    dv_tensor *y = silu_linear(&m->linear, c);  /* (B, n C) */
    int64_t sizes[DV_ADALN_ZERO_MAX];
    for (int i = 0; i < m->n; i++) sizes[i] = m->dim;
    dv_split(y, sizes, m->n, -1, out);
    dv_release(y);
}
