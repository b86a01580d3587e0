/* tensor/ops_norm.c — softmax, log-softmax, LayerNorm and RMSNorm, with their backward.
 *
 * The kernels (kernels/norm.h) work on the rows of a contiguous (rows, n) buffer. softmax and
 * log_softmax over any other dim swap that dim with the last one and make the result
 * contiguous first (and swap back afterwards); LayerNorm and RMSNorm always normalise the last
 * dim, as in the models (x (..., C), weight / bias (C)).
 *
 * What a backward needs is saved at forward time: the output for softmax / log_softmax, the
 * contiguous input and the per-row mean / rstd (f64, see kernels/norm.h) for the norms, so the
 * backward does not redo the reductions. Nothing is saved when no input needs a gradient.
 */
#include "tensor/autograd.h"
#include "tensor/cuda.h"
#include "tensor/internal.h"
#include "tensor/ops.h"
#include "kernels/norm.h"

/* x with dim d moved last (swapped with the last dim), contiguous; no graph is recorded */
static dv_tensor *dim_last(dv_tensor *x, int d) {
    dv_tensor *c;
    DV_NO_GRAD_BEGIN
    if (d == x->ndim - 1) {
        c = dv_contiguous(x);
    } else {
        dv_tensor *t = dv_transpose(x, d, x->ndim - 1);
        c = dv_contiguous(t);
        dv_release(t);
    }
    DV_NO_GRAD_END
    return c;
}

/* ---- softmax / log-softmax ---------------------------------------------------------------- */

static void softmax_fwd(bool log, int64_t rows, int64_t n, const dv_tensor *x, dv_tensor *y) {
    if (dv_backend_of(x) == DV_BACKEND_CUDA) {
        dv_cuda_softmax_fwd(log, rows, n, x, y);
        return;
    }
    if (x->dtype == DV_F64) {
        if (log) dv_log_softmax_fwd_f64_portable(rows, n, dv_data(x), dv_data(y));
        else dv_softmax_fwd_f64_portable(rows, n, dv_data(x), dv_data(y));
        return;
    }
#ifndef DV_NO_AVX512
    if (dv_backend_of(x) == DV_BACKEND_AVX512) {
        if (log) dv_log_softmax_fwd_f32_avx512(rows, n, dv_data(x), dv_data(y));
        else dv_softmax_fwd_f32_avx512(rows, n, dv_data(x), dv_data(y));
        return;
    }
#endif
    if (log) dv_log_softmax_fwd_f32_portable(rows, n, dv_data(x), dv_data(y));
    else dv_softmax_fwd_f32_portable(rows, n, dv_data(x), dv_data(y));
}

static void softmax_bwd(bool log, int64_t rows, int64_t n, const dv_tensor *y, const dv_tensor *gy, dv_tensor *gx) {
    if (dv_backend_of(y) == DV_BACKEND_CUDA) {
        dv_cuda_softmax_bwd(log, rows, n, y, gy, gx);
        return;
    }
    if (y->dtype == DV_F64) {
        if (log) dv_log_softmax_bwd_f64_portable(rows, n, dv_data(y), dv_data(gy), dv_data(gx));
        else dv_softmax_bwd_f64_portable(rows, n, dv_data(y), dv_data(gy), dv_data(gx));
        return;
    }
#ifndef DV_NO_AVX512
    if (dv_backend_of(y) == DV_BACKEND_AVX512) {
        if (log) dv_log_softmax_bwd_f32_avx512(rows, n, dv_data(y), dv_data(gy), dv_data(gx));
        else dv_softmax_bwd_f32_avx512(rows, n, dv_data(y), dv_data(gy), dv_data(gx));
        return;
    }
#endif
    if (log) dv_log_softmax_bwd_f32_portable(rows, n, dv_data(y), dv_data(gy), dv_data(gx));
    else dv_softmax_bwd_f32_portable(rows, n, dv_data(y), dv_data(gy), dv_data(gx));
}

/* Runs the kernel along dim d through the dim-last layout and returns a new contiguous tensor
 * of a's shape: forward (gy NULL): softmax(a); backward: the input gradient from a = the saved
 * output and gy = the output gradient. */
static dv_tensor *softmax_run(bool log, int d, dv_tensor *a, dv_tensor *gy) {
    int64_t n = a->shape[d], rows = n ? dv_numel(a) / n : 0;
    dv_tensor *al = dim_last(a, d), *gl = gy ? dim_last(gy, d) : NULL;
    dv_tensor *out = dv_empty_on(a->dtype, al->shape, al->ndim, a->device);
    if (gy) softmax_bwd(log, rows, n, al, gl, out);
    else softmax_fwd(log, rows, n, al, out);
    dv_release(al);
    dv_release(gl);
    if (d == a->ndim - 1) return out;
    dv_tensor *back = dim_last(out, d); /* the same swap undoes itself */
    dv_release(out);
    return back;
}

static void softmax_backward(dv_node *n, dv_tensor *g) {
    dv_ag_give(n, 0, softmax_run(n->iarg[1], (int)n->iarg[0], n->saved[0], g));
}

static dv_tensor *softmax_impl(const char *op, dv_tensor *x, int dim, bool log) {
    dv_check_float(op, x);
    dv_require_kernel(op, x);
    if (x->ndim == 0) { /* a 0-d tensor is a row of one */
        if (dim != 0 && dim != -1) dv_panic("%s: dim %d out of range for a 0-d tensor", op, dim);
        dv_tensor *x1 = dv_reshape(x, DV_SHAPE(1));
        dv_tensor *y1 = softmax_impl(op, x1, 0, log);
        dv_tensor *y = dv_reshape(y1, NULL, 0);
        dv_release(x1);
        dv_release(y1);
        return y;
    }
    int d = dv_dim(x, dim);
    dv_tensor *y = softmax_run(log, d, x, NULL);
    if (dv_ag_wanted(1, &x)) {
        dv_node *n = dv_ag_record(y, op, softmax_backward, 1, &x);
        n->iarg[0] = d;
        n->iarg[1] = log;
        dv_tensor *yd = dv_detach(y); /* y itself would hold its own node: a cycle */
        dv_node_save(n, yd);
        dv_release(yd);
    }
    return y;
}

dv_tensor *dv_softmax(dv_tensor *x, int dim) { return softmax_impl("softmax", x, dim, false); }
dv_tensor *dv_log_softmax(dv_tensor *x, int dim) { return softmax_impl("log_softmax", x, dim, true); }

/* ---- LayerNorm / RMSNorm ------------------------------------------------------------------ */

/* weight / bias must be (C) with x's dtype and device */
static void check_param(const char *op, const char *what, const dv_tensor *x, const dv_tensor *p) {
    if (!p) return;
    int64_t c = x->shape[x->ndim - 1];
    if (p->ndim != 1 || p->shape[0] != c)
        dv_panic("%s: %s %s does not match the last dim of x %s", op, what, dv_shape_str(p, NULL, 0), dv_shape_str(x, NULL, 0));
    if (p->dtype != x->dtype)
        dv_panic("%s: %s is %s but x is %s", op, what, dv_dtype_name(p->dtype), dv_dtype_name(x->dtype));
    dv_check_same_device(op, x, p);
}

static void check_norm_input(const char *op, const dv_tensor *x) {
    dv_check_float(op, x);
    dv_require_kernel(op, x);
    if (x->ndim < 1) dv_panic("%s: x must have at least one dim, got a 0-d tensor", op);
}

static dv_tensor *contiguous_or_null(dv_tensor *t) {
    dv_tensor *c = NULL;
    DV_NO_GRAD_BEGIN
    if (t) c = dv_contiguous(t);
    DV_NO_GRAD_END
    return c;
}

static void *data_or_null(const dv_tensor *t) { return t ? dv_data(t) : NULL; }

/* node inputs are x and whichever of weight / bias exist; iarg[0] / iarg[1] hold the input
 * index of weight / bias, or -1. saved: x (contiguous), mean / rstd, then weight if any. */
static void layer_norm_backward(dv_node *n, dv_tensor *g) {
    dv_tensor *x = n->saved[0], *mean = n->saved[1], *rstd = n->saved[2];
    dv_tensor *w = n->iarg[0] >= 0 ? n->saved[3] : NULL;
    bool want_x = dv_ag_input_wants(n, 0);
    bool want_w = n->iarg[0] >= 0 && dv_ag_input_wants(n, (int)n->iarg[0]);
    bool want_b = n->iarg[1] >= 0 && dv_ag_input_wants(n, (int)n->iarg[1]);
    int64_t c = x->shape[x->ndim - 1], rows = c ? dv_numel(x) / c : 0;
    dv_tensor *gc = dv_contiguous(g);
    dv_tensor *gx = want_x ? dv_empty_like(x) : NULL;
    dv_tensor *gw = want_w ? dv_empty_on(x->dtype, &c, 1, x->device) : NULL;
    dv_tensor *gb = want_b ? dv_empty_on(x->dtype, &c, 1, x->device) : NULL;
    if (dv_backend_of(x) == DV_BACKEND_CUDA)
        dv_cuda_layernorm_bwd(rows, c, x, w, mean, rstd, gc, gx, gw, gb);
    else if (x->dtype == DV_F64)
        dv_layernorm_bwd_f64_portable(rows, c, dv_data(x), data_or_null(w), dv_data(mean), dv_data(rstd), dv_data(gc),
                                      data_or_null(gx), data_or_null(gw), data_or_null(gb));
#ifndef DV_NO_AVX512
    else if (dv_backend_of(x) == DV_BACKEND_AVX512)
        dv_layernorm_bwd_f32_avx512(rows, c, dv_data(x), data_or_null(w), dv_data(mean), dv_data(rstd), dv_data(gc),
                                    data_or_null(gx), data_or_null(gw), data_or_null(gb));
#endif
    else
        dv_layernorm_bwd_f32_portable(rows, c, dv_data(x), data_or_null(w), dv_data(mean), dv_data(rstd), dv_data(gc),
                                      data_or_null(gx), data_or_null(gw), data_or_null(gb));
    dv_release(gc);
    if (gx) dv_ag_give(n, 0, gx);
    if (gw) dv_ag_give(n, (int)n->iarg[0], gw);
    if (gb) dv_ag_give(n, (int)n->iarg[1], gb);
}

dv_tensor *dv_layer_norm(dv_tensor *x, dv_tensor *weight, dv_tensor *bias, double eps) {
    const char *op = "layer_norm";
    check_norm_input(op, x);
    check_param(op, "weight", x, weight);
    check_param(op, "bias", x, bias);
    int64_t c = x->shape[x->ndim - 1], rows = c ? dv_numel(x) / c : 0;
    dv_tensor *xc = contiguous_or_null(x), *wc = contiguous_or_null(weight), *bc = contiguous_or_null(bias);
    dv_tensor *y = dv_empty_like(x);
    bool record = dv_ag_wanted(3, (dv_tensor *[]){x, weight, bias});
    dv_tensor *mean = record ? dv_empty_on(DV_F64, &rows, 1, x->device) : NULL;
    dv_tensor *rstd = record ? dv_empty_on(DV_F64, &rows, 1, x->device) : NULL;
    if (dv_backend_of(x) == DV_BACKEND_CUDA)
        dv_cuda_layernorm_fwd(rows, c, xc, wc, bc, eps, y, mean, rstd);
    else if (x->dtype == DV_F64)
        dv_layernorm_fwd_f64_portable(rows, c, dv_data(xc), data_or_null(wc), data_or_null(bc), eps, dv_data(y),
                                      data_or_null(mean), data_or_null(rstd));
#ifndef DV_NO_AVX512
    else if (dv_backend_of(x) == DV_BACKEND_AVX512)
        dv_layernorm_fwd_f32_avx512(rows, c, dv_data(xc), data_or_null(wc), data_or_null(bc), eps, dv_data(y),
                                    data_or_null(mean), data_or_null(rstd));
#endif
    else
        dv_layernorm_fwd_f32_portable(rows, c, dv_data(xc), data_or_null(wc), data_or_null(bc), eps, dv_data(y),
                                      data_or_null(mean), data_or_null(rstd));
    if (record) {
        dv_tensor *ins[3] = {x, NULL, NULL};
        int k = 1, iw = -1, ib = -1;
        if (weight) { iw = k; ins[k++] = weight; }
        if (bias) { ib = k; ins[k++] = bias; }
        dv_node *n = dv_ag_record(y, op, layer_norm_backward, k, ins);
        n->iarg[0] = iw;
        n->iarg[1] = ib;
        dv_node_save(n, xc);
        dv_node_save(n, mean);
        dv_node_save(n, rstd);
        if (wc) dv_node_save(n, wc);
    }
    dv_release(mean);
    dv_release(rstd);
    dv_release(xc);
    dv_release(wc);
    dv_release(bc);
    return y;
}

/* node inputs: x, then weight if any; saved: x (contiguous), rstd, then weight if any */
static void rms_norm_backward(dv_node *n, dv_tensor *g) {
    dv_tensor *x = n->saved[0], *rstd = n->saved[1];
    dv_tensor *w = n->n_in > 1 ? n->saved[2] : NULL;
    bool want_x = dv_ag_input_wants(n, 0), want_w = w && dv_ag_input_wants(n, 1);
    int64_t c = x->shape[x->ndim - 1], rows = c ? dv_numel(x) / c : 0;
    dv_tensor *gc = dv_contiguous(g);
    dv_tensor *gx = want_x ? dv_empty_like(x) : NULL;
    dv_tensor *gw = want_w ? dv_empty_on(x->dtype, &c, 1, x->device) : NULL;
    if (dv_backend_of(x) == DV_BACKEND_CUDA)
        dv_cuda_rmsnorm_bwd(rows, c, x, w, rstd, gc, gx, gw);
    else if (x->dtype == DV_F64)
        dv_rmsnorm_bwd_f64_portable(rows, c, dv_data(x), data_or_null(w), dv_data(rstd), dv_data(gc),
                                    data_or_null(gx), data_or_null(gw));
#ifndef DV_NO_AVX512
    else if (dv_backend_of(x) == DV_BACKEND_AVX512)
        dv_rmsnorm_bwd_f32_avx512(rows, c, dv_data(x), data_or_null(w), dv_data(rstd), dv_data(gc),
                                  data_or_null(gx), data_or_null(gw));
#endif
    else
        dv_rmsnorm_bwd_f32_portable(rows, c, dv_data(x), data_or_null(w), dv_data(rstd), dv_data(gc),
                                    data_or_null(gx), data_or_null(gw));
    dv_release(gc);
    if (gx) dv_ag_give(n, 0, gx);
    if (gw) dv_ag_give(n, 1, gw);
}

dv_tensor *dv_rms_norm(dv_tensor *x, dv_tensor *weight, double eps) {
    const char *op = "rms_norm";
    check_norm_input(op, x);
    check_param(op, "weight", x, weight);
    int64_t c = x->shape[x->ndim - 1], rows = c ? dv_numel(x) / c : 0;
    dv_tensor *xc = contiguous_or_null(x), *wc = contiguous_or_null(weight);
    dv_tensor *y = dv_empty_like(x);
    bool record = dv_ag_wanted(2, (dv_tensor *[]){x, weight});
    dv_tensor *rstd = record ? dv_empty_on(DV_F64, &rows, 1, x->device) : NULL;
    if (dv_backend_of(x) == DV_BACKEND_CUDA)
        dv_cuda_rmsnorm_fwd(rows, c, xc, wc, eps, y, rstd);
    else if (x->dtype == DV_F64)
        dv_rmsnorm_fwd_f64_portable(rows, c, dv_data(xc), data_or_null(wc), eps, dv_data(y), data_or_null(rstd));
#ifndef DV_NO_AVX512
    else if (dv_backend_of(x) == DV_BACKEND_AVX512)
        dv_rmsnorm_fwd_f32_avx512(rows, c, dv_data(xc), data_or_null(wc), eps, dv_data(y), data_or_null(rstd));
#endif
    else
        dv_rmsnorm_fwd_f32_portable(rows, c, dv_data(xc), data_or_null(wc), eps, dv_data(y), data_or_null(rstd));
    if (record) {
        dv_node *n = dv_ag_record(y, op, rms_norm_backward, weight ? 2 : 1, (dv_tensor *[]){x, weight});
        dv_node_save(n, xc);
        dv_node_save(n, rstd);
        if (wc) dv_node_save(n, wc);
    }
    dv_release(rstd);
    dv_release(xc);
    dv_release(wc);
    return y;
}
