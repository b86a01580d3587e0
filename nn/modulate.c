/* nn/modulate.c — adaLN modulate, fused layer norm + modulate, gated residual and FiLM; see
 * nn/modulate.h. Forward and backward are fused kernels (kernels/modulate.c); the backward of
 * a per-sample parameter is its sum over the sample's tokens, done inside the kernel. */
#include "nn/modulate.h"

#include "kernels/modulate.h"
#include "tensor/autograd.h"
#include "tensor/cuda.h"
#include "tensor/internal.h"


/* check x (B, ..., C) and the (B, C) parameters; returns T */
static int64_t check_args(const char *op, dv_tensor *x, dv_tensor *const *p, int np) {
    dv_check_float(op, x);
    dv_require_kernel(op, x);
    DV_ASSERT(x->ndim >= 2, "%s: x must be (B, T, C), got %s", op, dv_shape_str(x, NULL, 0));
    int64_t B = x->shape[0], C = x->shape[x->ndim - 1];
    for (int i = 0; i < np; i++) {
        dv_check_dtype(op, p[i], x->dtype);
        dv_check_same_device(op, x, p[i]);
        DV_ASSERT(p[i]->ndim == 2 && p[i]->shape[0] == B && p[i]->shape[1] == C,
                  "%s: parameter %s does not fit x %s (need (B, C))", op, dv_shape_str(p[i], NULL, 0),
                  dv_shape_str(x, NULL, 0));
    }
    return B * C == 0 ? 0 : dv_numel(x) / (B * C);
}

static dv_tensor *contig(dv_tensor *t) {
    dv_tensor *c;
    DV_NO_GRAD_BEGIN
    c = dv_contiguous(t);
    DV_NO_GRAD_END
    return c;
}

static dv_tensor *empty_as(const dv_tensor *t) { return dv_empty_like(t); }

/* ---- modulate and FiLM: y = x * (one + scale) + shift ------------------------------------ */
/* in: x, shift, scale (for FiLM: x, beta, gamma — the op records them in its own order);
 * iarg[0] = one, iarg[1..3] = the input index of x, shift, scale; saved: xc, scalec */
static void modulate_backward(dv_node *n, dv_tensor *g) {
    int ix = (int)n->iarg[1], ish = (int)n->iarg[2], isc = (int)n->iarg[3];
    dv_tensor *x = n->saved[0], *sc = n->saved[1];
    int64_t B = x->shape[0], C = x->shape[x->ndim - 1], T = (B * C) != 0 ? dv_numel(x) / (B * C) : 0;
    dv_tensor *gc = dv_contiguous(g);
    dv_tensor *gx = dv_ag_input_wants(n, ix) ? empty_as(x) : NULL;
    dv_tensor *gsh = dv_ag_input_wants(n, ish) ? empty_as(sc) : NULL;
    dv_tensor *gsc = dv_ag_input_wants(n, isc) ? empty_as(sc) : NULL;
    if (dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_modulate_bwd(B, T, C, x, sc, n->iarg[0], gc, gx, gsh, gsc);
    else DV_DISPATCH_FLOAT(x, modulate_bwd, B, T, C, dv_data(x), dv_data(sc), n->iarg[0], dv_data(gc),
                      DV_DATA_OR_NULL(gx), DV_DATA_OR_NULL(gsh), DV_DATA_OR_NULL(gsc));
    dv_release(gc);
    if (gx) dv_ag_give(n, ix, gx);
    if (gsh) dv_ag_give(n, ish, gsh);
    if (gsc) dv_ag_give(n, isc, gsc);
}

static dv_tensor *modulate_op(const char *op, dv_tensor *x, dv_tensor *shift, dv_tensor *scale, int one,
                              dv_tensor *const *ins, const int idx[3]) {
    int64_t T = check_args(op, x, (dv_tensor *[]){shift, scale}, 2);
    int64_t B = x->shape[0], C = x->shape[x->ndim - 1];
    dv_tensor *xc = contig(x), *shc = contig(shift), *scc = contig(scale);
    dv_tensor *y = empty_as(x);
    if (dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_modulate(B, T, C, xc, shc, scc, one, y);
    else DV_DISPATCH_FLOAT(x, modulate, B, T, C, dv_data(xc), dv_data(shc), dv_data(scc), one, dv_data(y));
    if (dv_ag_wanted(3, ins)) {
        dv_node *n = dv_ag_record(y, op, modulate_backward, 3, ins);
        n->iarg[0] = one;
        for (int i = 0; i < 3; i++) n->iarg[1 + i] = idx[i];
        dv_node_save(n, xc);
        dv_node_save(n, scc);
    }
    dv_release(xc);
    dv_release(shc);
    dv_release(scc);
    return y;
}

dv_tensor *dv_modulate(dv_tensor *x, dv_tensor *shift, dv_tensor *scale) {
    return modulate_op("modulate", x, shift, scale, 1, (dv_tensor *[]){x, shift, scale}, (int[]){0, 1, 2});
}

dv_tensor *dv_film(dv_tensor *x, dv_tensor *gamma, dv_tensor *beta) {
    return modulate_op("film", x, beta, gamma, 0, (dv_tensor *[]){x, gamma, beta}, (int[]){0, 2, 1});
}

/* ---- layer norm + modulate ---------------------------------------------------------------- */
/* in: x, shift, scale; saved: xc, scalec, mean, rstd */
static void ln_modulate_backward(dv_node *n, dv_tensor *g) {
    dv_tensor *x = n->saved[0], *sc = n->saved[1], *mean = n->saved[2], *rstd = n->saved[3];
    int64_t B = x->shape[0], C = x->shape[x->ndim - 1], T = (B * C) != 0 ? dv_numel(x) / (B * C) : 0;
    dv_tensor *gc = dv_contiguous(g);
    dv_tensor *gx = dv_ag_input_wants(n, 0) ? empty_as(x) : NULL;
    dv_tensor *gsh = dv_ag_input_wants(n, 1) ? dv_zeros_like(sc) : NULL;
    dv_tensor *gsc = dv_ag_input_wants(n, 2) ? dv_zeros_like(sc) : NULL;
    if (dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_ln_modulate_bwd(B, T, C, x, mean, rstd, sc, gc, gx, gsh, gsc);
    else DV_DISPATCH_FLOAT(x, ln_modulate_bwd, B, T, C, dv_data(x), dv_data(mean), dv_data(rstd), dv_data(sc), dv_data(gc),
             DV_DATA_OR_NULL(gx), DV_DATA_OR_NULL(gsh), DV_DATA_OR_NULL(gsc));
    dv_release(gc);
    if (gx) dv_ag_give(n, 0, gx);
    if (gsh) dv_ag_give(n, 1, gsh);
    if (gsc) dv_ag_give(n, 2, gsc);
}

dv_tensor *dv_layer_norm_modulate(dv_tensor *x, dv_tensor *shift, dv_tensor *scale, double eps) {
    int64_t T = check_args("layer_norm_modulate", x, (dv_tensor *[]){shift, scale}, 2);
    int64_t B = x->shape[0], C = x->shape[x->ndim - 1];
    dv_tensor *xc = contig(x), *shc = contig(shift), *scc = contig(scale);
    dv_tensor *y = empty_as(x);
    dv_tensor *mean = dv_empty_on(x->dtype, DV_SHAPE(B * T), x->device), *rstd = dv_empty_on(x->dtype, DV_SHAPE(B * T), x->device);
    if (C > 0 && dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_ln_modulate(B, T, C, xc, shc, scc, eps, y, mean, rstd);
    else if (C > 0)
        DV_DISPATCH_FLOAT(x, ln_modulate, B, T, C, dv_data(xc), dv_data(shc), dv_data(scc), eps, dv_data(y),
                          dv_data(mean), dv_data(rstd));
    dv_tensor *ins[3] = {x, shift, scale};
    if (dv_ag_wanted(3, ins)) {
        dv_node *n = dv_ag_record(y, "layer_norm_modulate", ln_modulate_backward, 3, ins);
        dv_node_save(n, xc);
        dv_node_save(n, scc);
        dv_node_save(n, mean);
        dv_node_save(n, rstd);
    }
    dv_release(xc);
    dv_release(shc);
    dv_release(scc);
    dv_release(mean);
    dv_release(rstd);
    return y;
}

/* ---- gated residual: y = x + gate * h ----------------------------------------------------- */
/* in: x, gate, h; saved: hc, gatec */
static void gated_backward(dv_node *n, dv_tensor *g) {
    dv_tensor *h = n->saved[0], *gate = n->saved[1];
    int64_t B = h->shape[0], C = h->shape[h->ndim - 1], T = (B * C) != 0 ? dv_numel(h) / (B * C) : 0;
    if (dv_ag_input_wants(n, 0)) dv_ag_give(n, 0, dv_retain(g));
    if (!dv_ag_input_wants(n, 1) && !dv_ag_input_wants(n, 2)) return;
    dv_tensor *gc = dv_contiguous(g);
    dv_tensor *gh = dv_ag_input_wants(n, 2) ? empty_as(h) : NULL;
    dv_tensor *gg = dv_ag_input_wants(n, 1) ? dv_zeros_like(gate) : NULL;
    if (dv_backend_of(h) == DV_BACKEND_CUDA) dv_cuda_modulate_bwd(B, T, C, h, gate, 0, gc, gh, NULL, gg);
    else DV_DISPATCH_FLOAT(h, modulate_bwd, B, T, C, dv_data(h), dv_data(gate), 0, dv_data(gc), DV_DATA_OR_NULL(gh),
                      NULL, DV_DATA_OR_NULL(gg));
    dv_release(gc);
    if (gg) dv_ag_give(n, 1, gg);
    if (gh) dv_ag_give(n, 2, gh);
}

dv_tensor *dv_gated_residual(dv_tensor *x, dv_tensor *gate, dv_tensor *h) {
    int64_t T = check_args("gated_residual", x, (dv_tensor *[]){gate}, 1);
    dv_check_same_shape("gated_residual", x, h);
    dv_check_dtype("gated_residual", h, x->dtype);
    int64_t B = x->shape[0], C = x->shape[x->ndim - 1];
    dv_tensor *xc = contig(x), *gc = contig(gate), *hc = contig(h);
    dv_tensor *y = empty_as(x);
    if (dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_gated_residual(B, T, C, xc, gc, hc, y);
    else DV_DISPATCH_FLOAT(x, gated_residual, B, T, C, dv_data(xc), dv_data(gc), dv_data(hc), dv_data(y));
    dv_tensor *ins[3] = {x, gate, h};
    if (dv_ag_wanted(3, ins)) {
        dv_node *n = dv_ag_record(y, "gated_residual", gated_backward, 3, ins);
        dv_node_save(n, hc);
        dv_node_save(n, gc);
    }
    dv_release(xc);
    dv_release(gc);
    dv_release(hc);
    return y;
}
