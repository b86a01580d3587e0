/* tensor/ops_index.c — indexing and joining: embedding, index_select, gather, concat, stack,
 * split, one_hot (PyTorch semantics).
 *
 *   embedding     weight (V, C), ids (...) i32/i64          -> (..., C)      y[i] = weight[ids[i]]
 *   index_select  x (..., n, ...), index (k) along dim       -> (..., k, ...)
 *   gather        x, index of x's ndim along dim             -> index's shape
 *                 y[i][j][k] = x[i][index[i][j][k]][k]       (dim = 1)
 *   concat        n tensors equal but along dim              -> sizes along dim summed
 *   stack         n tensors of one shape                     -> a new dim of size n at dim
 *   split         x along dim into the given sizes           -> views (dv_slice)
 *   one_hot       index (...) i32/i64                        -> (..., num_classes) of dtype dt
 *
 * The forward passes move elements of any dtype (they copy bytes), so they work on ids and masks
 * as well as activations; only float tensors get gradients. The backward of a selection is the
 * matching scatter-add (embedding, index_select: index_add of rows; gather: scatter_add), and
 * the backward of concat hands each input its slice of the output gradient.
 *
 * An index out of range is a bug in the caller: it aborts naming the index, its position and
 * the size it must stay under.
 */
#include "tensor/autograd.h"
#include "tensor/cuda.h"
#include "tensor/internal.h"
#include "tensor/ops.h"
#include "kernels/copy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

/* idx as a contiguous i64 tensor (new reference; no copy when it already is one) */
static dv_tensor *as_i64(const char *op, dv_tensor *idx) {
    if (idx->dtype != DV_I32 && idx->dtype != DV_I64)
        dv_panic("%s: indices must be i32 or i64, got %s %s", op, dv_dtype_name(idx->dtype), dv_shape_str(idx, NULL, 0));
    /* checked on the host: a device index is copied back (the ops upload the checked i64 copy) */
    dv_tensor *h = idx->device.type == DV_CPU ? dv_retain(idx) : dv_tensor_to(idx, DV_DEVICE_CPU);
    dv_tensor *c = dv_cast(h, DV_I64);
    dv_release(h);
    dv_tensor *cc = dv_contiguous(c);
    dv_release(c);
    return cc;
}

/* abort unless every id is in [0, limit); `what` names the ids and `of` what they index */
static void check_range(const char *op, const char *what, const int64_t *ids, int64_t n, int64_t limit, const char *of) {
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= limit)
            dv_panic("%s: %s %lld at position %lld is out of range [0, %lld) for %s", op, what, (long long)ids[i],
                     (long long)i, (long long)limit, of);
}

/* the checked host ids *ii moved to the device of x when x is on a GPU (replaces *ii) */
static void ids_to(dv_tensor **ii, const dv_tensor *x) {
    if (x->device.type == DV_CPU) return;
    dv_tensor *d = dv_tensor_to(*ii, x->device);
    dv_release(*ii);
    *ii = d;
}

static dv_tensor *contiguous_nograd(dv_tensor *x) {
    dv_tensor *c;
    DV_NO_GRAD_BEGIN
    c = dv_contiguous(x);
    DV_NO_GRAD_END
    return c;
}

/* a gradient in a dtype we accumulate in (f32 / f64), contiguous; dv_ag_give casts back */
static dv_tensor *grad_f(dv_tensor *g) {
    dv_tensor *c = (g->dtype == DV_F32 || g->dtype == DV_F64) ? dv_retain(g) : dv_cast(g, DV_F32);
    dv_tensor *cc = dv_contiguous(c);
    dv_release(c);
    return cc;
}

/* x viewed as (outer, n, inner) around dim d */
static void split_dims(const dv_tensor *x, int d, int64_t *outer, int64_t *n, int64_t *inner) {
    *outer = 1;
    *inner = 1;
    for (int k = 0; k < d; k++) *outer *= x->shape[k];
    for (int k = d + 1; k < x->ndim; k++) *inner *= x->shape[k];
    *n = x->shape[d];
}

/* dst[o][j][:] = src[o][idx[j]][:] — dst (outer, k, inner), src (outer, n, inner), es-byte elements */
static void take_rows(size_t es, int64_t outer, int64_t k, int64_t n, int64_t inner, const int64_t *idx,
                      const void *src, void *dst) {
    const size_t row = es * (size_t)inner;
    #pragma omp parallel for schedule(static) if (outer * k * inner > (1 << 16))
    for (int64_t r = 0; r < outer * k; r++) {
        int64_t o = r / k, j = r % k;
        memcpy((char *)dst + (size_t)r * row, (const char *)src + (size_t)(o * n + idx[j]) * row, row);
    }
}

/* dst[o][idx[j]][:] += src[o][j][:] — the adjoint of take_rows, f32 or f64. Repeated ids add up,
 * so threads split the work by (o, column block), never by j. */
static void index_add_rows(dv_dtype dt, int64_t outer, int64_t k, int64_t n, int64_t inner, const int64_t *idx,
                           const void *src, void *dst) {
    const int64_t CB = 256, nb = (inner + CB - 1) / CB, items = outer * nb;
    #pragma omp parallel for schedule(static) if (outer * k * inner > (1 << 16) && items > 1)
    for (int64_t it = 0; it < items; it++) {
        int64_t o = it / nb, c0 = it % nb * CB, c1 = c0 + CB < inner ? c0 + CB : inner;
        for (int64_t j = 0; j < k; j++) {
            int64_t di = (o * n + idx[j]) * inner, si = (o * k + j) * inner;
            if (dt == DV_F64) {
                double *d = (double *)dst + di;
                const double *s = (const double *)src + si;
                for (int64_t c = c0; c < c1; c++) d[c] += s[c];
            } else {
                float *d = (float *)dst + di;
                const float *s = (const float *)src + si;
                for (int64_t c = c0; c < c1; c++) d[c] += s[c];
            }
        }
    }
}

/* ---- embedding ---- */

static void embedding_backward(dv_node *n, dv_tensor *gout) {
    const dv_tensor *w = n->in[0], *ids = n->saved[0];
    dv_tensor *g = grad_f(gout);
    dv_tensor *gw = dv_zeros_on(g->dtype, w->shape, 2, w->device);
    if (dv_backend_of(w) == DV_BACKEND_CUDA) dv_cuda_index_add_rows(1, dv_numel(ids), w->shape[0], w->shape[1], ids, g, gw);
    else index_add_rows(g->dtype, 1, dv_numel(ids), w->shape[0], w->shape[1], dv_data(ids), dv_data(g), dv_data(gw));
    dv_release(g);
    dv_ag_give(n, 0, gw);
}

dv_tensor *dv_embedding(dv_tensor *weight, dv_tensor *ids) {
    const char *op = "embedding";
    if (weight->ndim != 2 || !dv_dtype_is_float(weight->dtype))
        dv_panic("embedding: weight must be a (V, C) float table, got %s %s", dv_dtype_name(weight->dtype), dv_shape_str(weight, NULL, 0));
    if (ids->ndim >= DV_MAX_DIMS) dv_panic("embedding: ids %s have too many dims", dv_shape_str(ids, NULL, 0));
    const int64_t V = weight->shape[0], C = weight->shape[1];
    dv_tensor *ii = as_i64(op, ids);
    char of[200];
    snprintf(of, sizeof of, "weight %s with V = %lld rows", dv_shape_str(weight, NULL, 0), (long long)V);
    check_range(op, "id", dv_data(ii), dv_numel(ii), V, of);

    int64_t sh[DV_MAX_DIMS];
    for (int d = 0; d < ids->ndim; d++) sh[d] = ids->shape[d];
    sh[ids->ndim] = C;
    dv_tensor *y = dv_empty_on(weight->dtype, sh, ids->ndim + 1, weight->device);
    dv_tensor *wc = contiguous_nograd(weight);
    ids_to(&ii, weight);
    if (dv_backend_of(weight) == DV_BACKEND_CUDA) dv_cuda_take_rows(1, dv_numel(ii), V, C, ii, wc, y);
    else take_rows(dv_dtype_size(weight->dtype), 1, dv_numel(ii), V, C, dv_data(ii), dv_data(wc), dv_data(y));
    dv_release(wc);
    if (dv_ag_wanted(1, &weight)) {
        dv_node *n = dv_ag_record(y, op, embedding_backward, 1, &weight);
        dv_node_save(n, ii);
    }
    dv_release(ii);
    return y;
}

/* ---- index_select ---- */

static void index_select_backward(dv_node *n, dv_tensor *gout) {
    const dv_tensor *x = n->in[0], *ii = n->saved[0];
    int64_t outer, len, inner;
    split_dims(x, (int)n->iarg[0], &outer, &len, &inner);
    dv_tensor *g = grad_f(gout);
    dv_tensor *gx = dv_zeros_on(g->dtype, x->shape, x->ndim, x->device);
    if (dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_index_add_rows(outer, dv_numel(ii), len, inner, ii, g, gx);
    else index_add_rows(g->dtype, outer, dv_numel(ii), len, inner, dv_data(ii), dv_data(g), dv_data(gx));
    dv_release(g);
    dv_ag_give(n, 0, gx);
}

dv_tensor *dv_index_select(dv_tensor *x, int dim, dv_tensor *index) {
    const char *op = "index_select";
    if (x->ndim == 0) dv_panic("index_select: x must have at least one dim");
    int d = dv_dim(x, dim);
    if (index->ndim > 1) dv_panic("index_select: index must be 1-D, got %s", dv_shape_str(index, NULL, 0));
    dv_tensor *ii = as_i64(op, index);
    int64_t outer, len, inner, k = dv_numel(ii);
    split_dims(x, d, &outer, &len, &inner);
    char of[200];
    snprintf(of, sizeof of, "dim %d of x %s", d, dv_shape_str(x, NULL, 0));
    check_range(op, "index", dv_data(ii), k, len, of);

    int64_t sh[DV_MAX_DIMS];
    for (int j = 0; j < x->ndim; j++) sh[j] = j == d ? k : x->shape[j];
    dv_tensor *y = dv_empty_on(x->dtype, sh, x->ndim, x->device);
    dv_tensor *xc = contiguous_nograd(x);
    ids_to(&ii, x);
    if (dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_take_rows(outer, k, len, inner, ii, xc, y);
    else take_rows(dv_dtype_size(x->dtype), outer, k, len, inner, dv_data(ii), dv_data(xc), dv_data(y));
    dv_release(xc);
    if (dv_ag_wanted(1, &x)) {
        dv_node *n = dv_ag_record(y, op, index_select_backward, 1, &x);
        n->iarg[0] = d;
        dv_node_save(n, ii);
    }
    dv_release(ii);
    return y;
}

/* ---- gather ---- */

/* element offset in x (strides xs) that position i of the index (shape ish, row-major) reads */
static int64_t gather_offset(int ndim, const int64_t *ish, int dim, const int64_t *xs, int64_t i, int64_t id) {
    int64_t off = id * xs[dim];
    for (int d = ndim - 1; d >= 0; d--) {
        int64_t c = i % ish[d];
        i /= ish[d];
        if (d != dim) off += c * xs[d];
    }
    return off;
}

static void gather_backward(dv_node *n, dv_tensor *gout) {
    const dv_tensor *x = n->in[0], *ii = n->saved[0];
    int dim = (int)n->iarg[0];
    dv_tensor *g = grad_f(gout);
    dv_tensor *gx = dv_zeros_on(g->dtype, x->shape, x->ndim, x->device);
    const int64_t *id = dv_data(ii);
    int64_t m = dv_backend_of(x) == DV_BACKEND_CUDA ? 0 : dv_numel(ii); /* CUDA: the kernel below */
    if (dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_scatter_add(dim, ii, g, gx);
    /* scatter_add: serial, since several positions may hit one element */
    for (int64_t i = 0; i < m; i++) {
        int64_t off = gather_offset(x->ndim, ii->shape, dim, gx->stride, i, id[i]);
        if (g->dtype == DV_F64) ((double *)dv_data(gx))[off] += ((const double *)dv_data(g))[i];
        else ((float *)dv_data(gx))[off] += ((const float *)dv_data(g))[i];
    }
    dv_release(g);
    dv_ag_give(n, 0, gx);
}

dv_tensor *dv_gather(dv_tensor *x, int dim, dv_tensor *index) {
    const char *op = "gather";
    if (x->ndim == 0) dv_panic("gather: x must have at least one dim");
    int d = dv_dim(x, dim);
    if (index->ndim != x->ndim)
        dv_panic("gather: index %s must have as many dims as x %s", dv_shape_str(index, NULL, 0), dv_shape_str(x, NULL, 0));
    for (int k = 0; k < x->ndim; k++)
        if (k != d && index->shape[k] > x->shape[k])
            dv_panic("gather: index %s is larger than x %s in dim %d (only dim %d may differ)", dv_shape_str(index, NULL, 0),
                     dv_shape_str(x, NULL, 0), k, d);
    dv_tensor *ii = as_i64(op, index);
    char of[200];
    snprintf(of, sizeof of, "dim %d of x %s", d, dv_shape_str(x, NULL, 0));
    check_range(op, "index", dv_data(ii), dv_numel(ii), x->shape[d], of);

    dv_tensor *y = dv_empty_on(x->dtype, index->shape, index->ndim, x->device);
    ids_to(&ii, x);
    if (dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_gather(d, ii, x, y);
    const size_t es = dv_dtype_size(x->dtype);
    const char *src = dv_data(x); /* read through x's own strides: no copy */
    char *dst = dv_data(y);
    const int64_t *id = dv_data(ii);
    int64_t m = dv_backend_of(x) == DV_BACKEND_CUDA ? 0 : dv_numel(ii); /* CUDA: done above */
    #pragma omp parallel for schedule(static) if (m > (1 << 16))
    for (int64_t i = 0; i < m; i++)
        memcpy(dst + (size_t)i * es, src + (size_t)gather_offset(x->ndim, ii->shape, d, x->stride, i, id[i]) * es, es);
    if (dv_ag_wanted(1, &x)) {
        dv_node *n = dv_ag_record(y, op, gather_backward, 1, &x);
        n->iarg[0] = d;
        dv_node_save(n, ii);
    }
    dv_release(ii);
    return y;
}

/* ---- concat / stack / split ---- */

static void concat_backward(dv_node *n, dv_tensor *g) {
    int d = (int)n->iarg[0];
    int64_t off = 0;
    for (int i = 0; i < n->n_in; i++) {
        int64_t len = n->in[i]->shape[d];
        if (dv_ag_input_wants(n, i)) dv_ag_give(n, i, dv_slice(g, d, off, off + len, 1));
        off += len;
    }
}

dv_tensor *dv_concat(dv_tensor *const *xs, int n, int dim) {
    const char *op = "concat";
    if (n < 1) dv_panic("concat: needs at least one tensor, got %d", n);
    const dv_tensor *x0 = xs[0];
    if (x0->ndim == 0) dv_panic("concat: tensor 0 is 0-d; concat needs at least one dim");
    int d = dv_dim(x0, dim);
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        const dv_tensor *x = xs[i];
        dv_check_same_device(op, x0, x);
        if (x->dtype != x0->dtype)
            dv_panic("concat: tensor %d is %s %s but tensor 0 is %s %s", i, dv_dtype_name(x->dtype), dv_shape_str(x, NULL, 0),
                     dv_dtype_name(x0->dtype), dv_shape_str(x0, NULL, 0));
        bool ok = x->ndim == x0->ndim;
        for (int k = 0; ok && k < x0->ndim; k++) ok = k == d || x->shape[k] == x0->shape[k];
        if (!ok)
            dv_panic("concat: tensor %d has shape %s but tensor 0 has %s (all dims but dim %d must match)", i,
                     dv_shape_str(x, NULL, 0), dv_shape_str(x0, NULL, 0), d);
        total += x->shape[d];
    }
    int64_t sh[DV_MAX_DIMS];
    for (int k = 0; k < x0->ndim; k++) sh[k] = k == d ? total : x0->shape[k];
    dv_tensor *y = dv_empty_on(x0->dtype, sh, x0->ndim, x0->device);
    DV_NO_GRAD_BEGIN
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        int64_t len = xs[i]->shape[d];
        if (dv_backend_of(y) == DV_BACKEND_CUDA) { /* a CUDA copy needs a contiguous destination: a block kernel */
            dv_cuda_concat_piece(xs[i], y, d, off);
            off += len;
            continue;
        }
        dv_tensor *dst = dv_slice(y, d, off, off + len, 1);
        dv_copy_(dst, xs[i]);
        dv_release(dst);
        off += len;
    }
    DV_NO_GRAD_END
    if (dv_ag_wanted(n, xs)) {
        dv_node *nd = dv_ag_record(y, op, concat_backward, n, xs);
        nd->iarg[0] = d;
    }
    return y;
}

dv_tensor *dv_stack(dv_tensor *const *xs, int n, int dim) {
    if (n < 1) dv_panic("stack: needs at least one tensor, got %d", n);
    const dv_tensor *x0 = xs[0];
    for (int i = 1; i < n; i++)
        if (!dv_same_shape(xs[i], x0))
            dv_panic("stack: tensor %d has shape %s but tensor 0 has %s (all must match)", i, dv_shape_str(xs[i], NULL, 0),
                     dv_shape_str(x0, NULL, 0));
    int d = dim < 0 ? dim + x0->ndim + 1 : dim;
    if (d < 0 || d > x0->ndim || x0->ndim == DV_MAX_DIMS)
        dv_panic("stack: dim %d out of range for tensors of shape %s", dim, dv_shape_str(x0, NULL, 0));
    dv_tensor **us = malloc(sizeof *us * (size_t)n);
    if (!us) dv_panic("stack: out of memory");
    for (int i = 0; i < n; i++) us[i] = dv_unsqueeze(xs[i], d);
    dv_tensor *y = dv_concat(us, n, d);
    for (int i = 0; i < n; i++) dv_release(us[i]);
    free(us);
    return y;
}

void dv_split(dv_tensor *x, const int64_t *sizes, int n, int dim, dv_tensor **out) {
    if (x->ndim == 0) dv_panic("split: x must have at least one dim");
    int d = dv_dim(x, dim);
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        if (sizes[i] < 0) dv_panic("split: size %d is negative (%lld)", i, (long long)sizes[i]);
        total += sizes[i];
    }
    if (total != x->shape[d])
        dv_panic("split: the %d sizes sum to %lld but dim %d of %s is %lld", n, (long long)total, d, dv_shape_str(x, NULL, 0),
                 (long long)x->shape[d]);
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        out[i] = dv_slice(x, d, off, off + sizes[i], 1);
        off += sizes[i];
    }
}

/* ---- one_hot ---- */

dv_tensor *dv_one_hot(dv_tensor *index, int64_t num_classes, dv_dtype dt) {
    const char *op = "one_hot";
    if ((unsigned)dt >= DV_NDTYPES) dv_panic("one_hot: bad dtype %d", (int)dt);
    if (index->ndim >= DV_MAX_DIMS) dv_panic("one_hot: index %s has too many dims", dv_shape_str(index, NULL, 0));
    dv_tensor *ii = as_i64(op, index);
    const int64_t *id = dv_data(ii);
    int64_t m = dv_numel(ii);
    if (num_classes < 0) { /* as torch's -1: one more than the largest index */
        num_classes = 0;
        for (int64_t i = 0; i < m; i++) if (id[i] + 1 > num_classes) num_classes = id[i] + 1;
    }
    char of[64];
    snprintf(of, sizeof of, "num_classes = %lld", (long long)num_classes);
    check_range(op, "class", id, m, num_classes, of);
    int64_t sh[DV_MAX_DIMS];
    for (int d = 0; d < index->ndim; d++) sh[d] = index->shape[d];
    sh[index->ndim] = num_classes;
    dv_tensor *y = dv_zeros(dt, sh, index->ndim + 1);
    unsigned char one[16];
    const double v = 1.0;
    dv_convert_portable(1, (int)dt, one, DV_K_F64, &v);
    const size_t es = dv_dtype_size(dt);
    char *p = dv_data(y);
    for (int64_t i = 0; i < m; i++) memcpy(p + (size_t)(i * num_classes + id[i]) * es, one, es);
    dv_release(ii);
    if (index->device.type != DV_CPU) dv_tensor_move_(y, index->device); /* built on the host, where the check ran */
    return y;
}
