/* tensor/ops_sum.c — sum and mean over any set of dims, and sum_to_shape (the backward of
 * every broadcast). A multi-dim reduction runs the one-axis kernel once per reduced dim on a
 * contiguous copy, innermost first. */
#include "tensor/autograd.h"
#include "tensor/cuda.h"
#include "tensor/internal.h"
#include "tensor/ops.h"
#include "kernels/reduce.h"

#include <string.h>

/* reduce dim d of contiguous x (keepdim) */
static dv_tensor *sum_one_dim(dv_tensor *x, int d) {
    int64_t outer = 1, inner = 1, n = x->shape[d];
    for (int k = 0; k < d; k++) outer *= x->shape[k];
    for (int k = d + 1; k < x->ndim; k++) inner *= x->shape[k];
    int64_t sh[DV_MAX_DIMS];
    memcpy(sh, x->shape, sizeof sh);
    sh[d] = 1;
    dv_tensor *y = dv_empty_on(x->dtype, sh, x->ndim, x->device);
    if (dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_sum_dim(outer, n, inner, x, y);
    else if (x->dtype == DV_F64) dv_sum_f64_portable(outer, n, inner, dv_data(x), dv_data(y));
#ifndef DV_NO_AVX512
    else if (dv_backend_of(x) == DV_BACKEND_AVX512) dv_sum_f32_avx512(outer, n, inner, dv_data(x), dv_data(y));
#endif
    else dv_sum_f32_portable(outer, n, inner, dv_data(x), dv_data(y));
    return y;
}

/* marks[d] = 1 for reduced dims; dims == NULL or ndims == 0 means all */
static void reduce_marks(const char *op, const dv_tensor *x, const int *dims, int ndims, int *marks) {
    memset(marks, 0, sizeof(int) * DV_MAX_DIMS);
    if (!dims || ndims == 0) {
        for (int d = 0; d < x->ndim; d++) marks[d] = 1;
        return;
    }
    for (int i = 0; i < ndims; i++) {
        int d = dims[i] < 0 ? dims[i] + x->ndim : dims[i];
        if (d < 0 || d >= x->ndim) dv_panic("%s: dim %d out of range for %s", op, dims[i], dv_shape_str(x, NULL, 0));
        if (marks[d]) dv_panic("%s: dim %d listed twice", op, dims[i]);
        marks[d] = 1;
    }
}

static void sum_backward(dv_node *n, dv_tensor *g) {
    /* g has the reduced shape; put the reduced dims back as 1 and broadcast */
    dv_tensor *x = n->in[0];
    int64_t sh[DV_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) sh[d] = n->iarg[d] ? 1 : x->shape[d];
    dv_tensor *gk = dv_reshape(g, sh, x->ndim);
    dv_tensor *ge = dv_expand(gk, x->shape, x->ndim);
    dv_release(gk);
    if (n->farg[0] != 1.0) {
        dv_tensor *c = dv_clone(ge);
        int64_t m = dv_numel(c);
        if (c->device.type == DV_CUDA) dv_cuda_scale_(c, n->farg[0]);
        else if (c->dtype == DV_F32) { float *p = dv_data(c); for (int64_t i = 0; i < m; i++) p[i] *= (float)n->farg[0]; }
        else { double *p = dv_data(c); for (int64_t i = 0; i < m; i++) p[i] *= n->farg[0]; }
        dv_release(ge);
        ge = c;
    }
    dv_ag_give(n, 0, ge);
}

static dv_tensor *sum_impl(const char *op, dv_tensor *x, const int *dims, int ndims, bool keepdim, bool mean) {
    dv_check_float(op, x);
    dv_require_kernel(op, x);
    int marks[DV_MAX_DIMS];
    reduce_marks(op, x, dims, ndims, marks);
    dv_tensor *cur;
    DV_NO_GRAD_BEGIN
    cur = dv_contiguous(x);
    for (int d = x->ndim - 1; d >= 0; d--) {
        if (!marks[d]) continue;
        dv_tensor *r = sum_one_dim(cur, d);
        dv_release(cur);
        cur = r;
    }
    if (cur == x) { /* nothing reduced and x was contiguous: work on a copy, never on x */
        dv_release(cur);
        cur = dv_clone(x);
    }
    DV_NO_GRAD_END
    int64_t count = 1;
    for (int d = 0; d < x->ndim; d++) if (marks[d]) count *= x->shape[d];
    double scale = mean ? 1.0 / (double)count : 1.0;
    if (mean) {
        int64_t m = dv_numel(cur);
        if (cur->device.type == DV_CUDA) dv_cuda_scale_(cur, scale);
        else if (cur->dtype == DV_F32) { float *p = dv_data(cur); for (int64_t i = 0; i < m; i++) p[i] = (float)(p[i] * scale); }
        else { double *p = dv_data(cur); for (int64_t i = 0; i < m; i++) p[i] *= scale; }
    }
    /* cur is a fresh contiguous tensor with reduced dims of size 1: fix its header in place */
    if (!keepdim) {
        int k = 0;
        for (int d = 0; d < x->ndim; d++) if (!marks[d]) cur->shape[k++] = x->shape[d];
        cur->ndim = k;
        int64_t s = 1;
        for (int d = k - 1; d >= 0; d--) { cur->stride[d] = s; s *= cur->shape[d]; }
    }
    if (dv_ag_wanted(1, &x)) {
        dv_node *n = dv_ag_record(cur, mean ? "mean" : "sum", sum_backward, 1, &x);
        for (int d = 0; d < x->ndim; d++) n->iarg[d] = marks[d];
        n->farg[0] = scale;
    }
    return cur;
}

dv_tensor *dv_sum(dv_tensor *x, const int *dims, int ndims, bool keepdim) { return sum_impl("sum", x, dims, ndims, keepdim, false); }
dv_tensor *dv_mean(dv_tensor *x, const int *dims, int ndims, bool keepdim) { return sum_impl("mean", x, dims, ndims, keepdim, true); }
dv_tensor *dv_sum_all(dv_tensor *x) { return sum_impl("sum", x, NULL, 0, false, false); }
dv_tensor *dv_mean_all(dv_tensor *x) { return sum_impl("mean", x, NULL, 0, false, true); }

dv_tensor *dv_sum_to_shape(dv_tensor *g, const int64_t *shape, int ndim) {
    if (ndim > g->ndim) dv_panic("sum_to_shape: %s has fewer dims than the target (%d)", dv_shape_str(g, NULL, 0), ndim);
    int lead = g->ndim - ndim, dims[DV_MAX_DIMS], nd = 0;
    for (int d = 0; d < g->ndim; d++) {
        if (d < lead) dims[nd++] = d;
        else if (shape[d - lead] == 1 && g->shape[d] != 1) dims[nd++] = d;
        else if (shape[d - lead] != g->shape[d])
            dv_panic("sum_to_shape: %s cannot be summed to a shape with %lld in dim %d", dv_shape_str(g, NULL, 0), (long long)shape[d - lead], d - lead);
    }
    if (nd == 0) return dv_reshape(g, shape, ndim);
    dv_tensor *s = dv_sum(g, dims, nd, true);
    dv_tensor *r = dv_reshape(s, shape, ndim);
    dv_release(s);
    return r;
}
