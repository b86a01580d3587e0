/* tensor/ops_reduce.c — reductions beyond sum / mean (those are in ops_sum.c): max / min
 * (values, gradient to the first extreme element, as torch.max(dim)), argmax, logsumexp,
 * var and cumsum.
 *
 * The kernels (kernels/reduce_ext.h) see the input as a contiguous (outer, n, inner) block,
 * n being the reduced dim. A 0-d input is treated as a tensor of one element, as in torch.
 * var is composed from mean / sub / square / sum (two-pass, and autograd comes for free).
 * f32 tensors on a CUDA device run kernels/cuda/reduce_ext.cu (the same loops, the same bits).
 */
#include "tensor/autograd.h"
#include "tensor/cuda.h"
#include "tensor/internal.h"
#include "tensor/ops.h"
#include "kernels/reduce_ext.h"

/* x as (outer, n, inner) around dim d */
static void split_at(const dv_tensor *x, int d, int64_t *outer, int64_t *n, int64_t *inner) {
    *outer = 1;
    *inner = 1;
    *n = x->shape[d];
    for (int k = 0; k < d; k++) *outer *= x->shape[k];
    for (int k = d + 1; k < x->ndim; k++) *inner *= x->shape[k];
}

/* shape of a reduction over dim d: d becomes 1 (keepdim) or goes; returns the ndim */
static int reduced_shape(const dv_tensor *x, int d, bool keepdim, int64_t *sh) {
    int k = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (i != d) sh[k++] = x->shape[i];
        else if (keepdim) sh[k++] = 1;
    }
    return k;
}

static dv_tensor *contiguous_no_grad(dv_tensor *x) {
    dv_tensor *c;
    DV_NO_GRAD_BEGIN
    c = dv_contiguous(x);
    DV_NO_GRAD_END
    return c;
}

/* dim of a 0-d tensor must be 0 or -1 */
static void check_0d_dim(const char *op, int dim) {
    if (dim != 0 && dim != -1) dv_panic("%s: dim %d out of range for a 0-d tensor", op, dim);
}

/* ---- max / min / argmax ------------------------------------------------------------------- */

typedef enum { EXT_MAX, EXT_MIN, EXT_ARGMAX } ext_kind;

static void extreme_backward(dv_node *n, dv_tensor *g) {
    dv_tensor *x = n->in[0], *idx = n->saved[0];
    int64_t outer, m, inner;
    split_at(x, (int)n->iarg[0], &outer, &m, &inner);
    dv_tensor *gc = dv_contiguous(g);
    dv_tensor *gx = dv_empty_on(x->dtype, x->shape, x->ndim, x->device);
    if (dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_scatter_dim(outer, m, inner, idx, gc, gx);
    else if (x->dtype == DV_F64) dv_scatter_dim_f64_portable(outer, m, inner, dv_data(idx), dv_data(gc), dv_data(gx));
    else dv_scatter_dim_f32_portable(outer, m, inner, dv_data(idx), dv_data(gc), dv_data(gx));
    dv_release(gc);
    dv_ag_give(n, 0, gx);
}

static dv_tensor *extreme_impl(ext_kind kind, dv_tensor *x, int dim, bool keepdim) {
    const char *op = kind == EXT_MAX ? "max" : kind == EXT_MIN ? "min" : "argmax";
    dv_check_float(op, x);
    dv_require_kernel(op, x);
    if (x->ndim == 0) {
        check_0d_dim(op, dim);
        dv_tensor *x1 = dv_reshape(x, DV_SHAPE(1));
        dv_tensor *y = extreme_impl(kind, x1, 0, false);
        dv_release(x1);
        return y;
    }
    int d = dv_dim(x, dim);
    if (x->shape[d] == 0)
        dv_panic("%s: cannot reduce dim %d of size 0 of %s (an empty dim has no %s)", op, dim, dv_shape_str(x, NULL, 0),
                 kind == EXT_MIN ? "minimum" : "maximum");
    int64_t outer, n, inner, sh[DV_MAX_DIMS];
    split_at(x, d, &outer, &n, &inner);
    int nd = reduced_shape(x, d, keepdim, sh);
    dv_tensor *xc = contiguous_no_grad(x);
    dv_tensor *idx = dv_empty_on(DV_I64, sh, nd, x->device);
    dv_tensor *y = kind == EXT_ARGMAX ? NULL : dv_empty_on(x->dtype, sh, nd, x->device);
    void *py = y ? dv_data(y) : NULL;
    if (dv_backend_of(x) == DV_BACKEND_CUDA) {
        dv_cuda_extreme(kind != EXT_MIN, outer, n, inner, xc, y, idx);
    } else if (x->dtype == DV_F64) {
        if (kind == EXT_MIN) dv_min_f64_portable(outer, n, inner, dv_data(xc), py, dv_data(idx));
        else dv_max_f64_portable(outer, n, inner, dv_data(xc), py, dv_data(idx));
    } else {
        if (kind == EXT_MIN) dv_min_f32_portable(outer, n, inner, dv_data(xc), py, dv_data(idx));
        else dv_max_f32_portable(outer, n, inner, dv_data(xc), py, dv_data(idx));
    }
    dv_release(xc);
    if (kind == EXT_ARGMAX) return idx;
    if (dv_ag_wanted(1, &x)) {
        dv_node *nd_ = dv_ag_record(y, op, extreme_backward, 1, &x);
        nd_->iarg[0] = d;
        dv_node_save(nd_, idx);
    }
    dv_release(idx);
    return y;
}

dv_tensor *dv_max(dv_tensor *x, int dim, bool keepdim) { return extreme_impl(EXT_MAX, x, dim, keepdim); }
dv_tensor *dv_min(dv_tensor *x, int dim, bool keepdim) { return extreme_impl(EXT_MIN, x, dim, keepdim); }
dv_tensor *dv_argmax(dv_tensor *x, int dim, bool keepdim) { return extreme_impl(EXT_ARGMAX, x, dim, keepdim); }

/* ---- logsumexp ---------------------------------------------------------------------------- */

/* gx = g * exp(x - y), with g and y given their reduced dim back as size 1 */
static void logsumexp_backward(dv_node *n, dv_tensor *g) {
    dv_tensor *x = n->in[0], *y = n->saved[0];
    int64_t sh[DV_MAX_DIMS];
    int nd = reduced_shape(x, (int)n->iarg[0], true, sh);
    dv_tensor *gk = dv_reshape(g, sh, nd), *yk = dv_reshape(y, sh, nd);
    dv_tensor *diff = dv_sub(x, yk), *e = dv_exp(diff);
    dv_ag_give(n, 0, dv_mul(e, gk));
    dv_release(gk); dv_release(yk); dv_release(diff); dv_release(e);
}

dv_tensor *dv_logsumexp(dv_tensor *x, int dim, bool keepdim) {
    const char *op = "logsumexp";
    dv_check_float(op, x);
    dv_require_kernel(op, x);
    if (x->ndim == 0) {
        check_0d_dim(op, dim);
        dv_tensor *x1 = dv_reshape(x, DV_SHAPE(1));
        dv_tensor *y = dv_logsumexp(x1, 0, false);
        dv_release(x1);
        return y;
    }
    int d = dv_dim(x, dim);
    int64_t outer, n, inner, sh[DV_MAX_DIMS];
    split_at(x, d, &outer, &n, &inner);
    int nd = reduced_shape(x, d, keepdim, sh);
    dv_tensor *xc = contiguous_no_grad(x);
    dv_tensor *y = dv_empty_on(x->dtype, sh, nd, x->device);
    if (dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_logsumexp(outer, n, inner, xc, y);
    else if (x->dtype == DV_F64) dv_logsumexp_f64_portable(outer, n, inner, dv_data(xc), dv_data(y));
    else dv_logsumexp_f32_portable(outer, n, inner, dv_data(xc), dv_data(y));
    dv_release(xc);
    if (dv_ag_wanted(1, &x)) {
        dv_node *nd_ = dv_ag_record(y, op, logsumexp_backward, 1, &x);
        nd_->iarg[0] = d;
        dv_tensor *yd = dv_detach(y); /* y itself would hold its own node: a cycle */
        dv_node_save(nd_, yd);
        dv_release(yd);
    }
    return y;
}

/* ---- var ---------------------------------------------------------------------------------- */

/* sum((x - mean)^2) / max(N - correction, 0) over dims (NULL / 0 dims = all), as torch.var:
 * N - correction <= 0 divides by zero (inf, or NaN for a zero sum). */
dv_tensor *dv_var(dv_tensor *x, const int *dims, int ndims, int correction, bool keepdim) {
    dv_check_float("var", x);
    dv_tensor *m = dv_mean(x, dims, ndims, true); /* checks the dims */
    int64_t count = 1;
    if (!dims || ndims == 0) count = dv_numel(x);
    else for (int i = 0; i < ndims; i++) count *= x->shape[dv_dim(x, dims[i])];
    double denom = (double)count - correction;
    if (denom < 0) denom = 0;
    dv_tensor *dev = dv_sub(x, m), *sq = dv_square(dev), *s = dv_sum(sq, dims, ndims, keepdim);
    dv_tensor *y = dv_scale(s, 1.0 / denom);
    dv_release(m); dv_release(dev); dv_release(sq); dv_release(s);
    return y;
}

/* ---- cumsum ------------------------------------------------------------------------------- */

static void cumsum_run(dv_tensor *x, int d, int reverse, dv_tensor *y) {
    int64_t outer, n, inner;
    split_at(x, d, &outer, &n, &inner);
    if (dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_cumsum(outer, n, inner, x, y, reverse);
    else if (x->dtype == DV_F64) dv_cumsum_f64_portable(outer, n, inner, dv_data(x), dv_data(y), reverse);
    else dv_cumsum_f32_portable(outer, n, inner, dv_data(x), dv_data(y), reverse);
}

/* the gradient of a prefix sum is the suffix sum of the output gradient */
static void cumsum_backward(dv_node *n, dv_tensor *g) {
    dv_tensor *gc = dv_contiguous(g);
    dv_tensor *gx = dv_empty_like(gc);
    cumsum_run(gc, (int)n->iarg[0], 1, gx);
    dv_release(gc);
    dv_ag_give(n, 0, gx);
}

dv_tensor *dv_cumsum(dv_tensor *x, int dim) {
    const char *op = "cumsum";
    dv_check_float(op, x);
    dv_require_kernel(op, x);
    if (x->ndim == 0) {
        check_0d_dim(op, dim);
        dv_tensor *x1 = dv_reshape(x, DV_SHAPE(1));
        dv_tensor *y1 = dv_cumsum(x1, 0);
        dv_tensor *y = dv_reshape(y1, NULL, 0);
        dv_release(x1);
        dv_release(y1);
        return y;
    }
    int d = dv_dim(x, dim);
    dv_tensor *xc = contiguous_no_grad(x);
    dv_tensor *y = dv_empty_on(x->dtype, x->shape, x->ndim, x->device);
    cumsum_run(xc, d, 0, y);
    dv_release(xc);
    if (dv_ag_wanted(1, &x)) {
        dv_node *n = dv_ag_record(y, op, cumsum_backward, 1, &x);
        n->iarg[0] = d;
    }
    return y;
}
