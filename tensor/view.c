/* tensor/view.c — views that share storage (reshape, permute, slice, expand, ...), the copies
 * that make a view contiguous or change its dtype, and their backward passes. Slice / select
 * backward writes the gradient into zeros of x's shape on x's device: on CUDA a step-1 slice
 * as one block copy along the dim (concat's row copies), any other step through dv_copy_ into
 * the strided view (a scatter kernel), as on the CPU. Views never copy; nothing here runs a
 * kernel except the copies. */
#include "tensor/autograd.h"
#include "tensor/cuda.h"
#include "tensor/internal.h"
#include "tensor/ops.h"
#include "kernels/copy.h"

#include <stdio.h>
#include <string.h>

/* ---- backward functions ---- */
static void reshape_backward(dv_node *n, dv_tensor *g) {
    dv_tensor *x = n->in[0];
    dv_ag_give(n, 0, dv_reshape(g, x->shape, x->ndim));
}
static void permute_backward(dv_node *n, dv_tensor *g) {
    int inv[DV_MAX_DIMS];
    for (int d = 0; d < g->ndim; d++) inv[n->iarg[d]] = d;
    dv_ag_give(n, 0, dv_permute(g, inv));
}
static void slice_backward(dv_node *n, dv_tensor *g) {
    /* iarg: dim, start, end, step, and 1 when the dim was dropped (select) */
    dv_tensor *x = n->in[0];
    const int d = (int)n->iarg[0];
    dv_tensor *src = n->iarg[4] ? dv_unsqueeze(g, d) : dv_retain(g);
    dv_tensor *gx = dv_zeros_on(g->dtype, x->shape, x->ndim, x->device);
    if (x->device.type == DV_CUDA && n->iarg[3] == 1) {
        /* step 1 on CUDA: one block along the dim, as concat writes its pieces (row copies) */
        dv_cuda_concat_piece(src, gx, d, n->iarg[1]);
    } else {
        /* the gradient into the slice's view of the zeros (on CUDA a strided scatter) */
        dv_tensor *dst = dv_slice(gx, d, n->iarg[1], n->iarg[2], n->iarg[3]);
        dv_copy_(dst, src);
        dv_release(dst);
    }
    dv_release(src);
    dv_ag_give(n, 0, gx);
}
static void expand_backward(dv_node *n, dv_tensor *g) { dv_ag_give(n, 0, dv_retain(g)); }
static void identity_backward(dv_node *n, dv_tensor *g) { dv_ag_give(n, 0, dv_retain(g)); }

static dv_tensor *record1(dv_tensor *out, dv_tensor *x, const char *op, dv_backward_fn bw) {
    if (dv_ag_wanted(1, &x)) dv_ag_record(out, op, bw, 1, &x);
    return out;
}

/* ---- reshape / view ---- */
static void resolve_shape(const char *op, const dv_tensor *t, const int64_t *shape, int ndim, int64_t *out) {
    int64_t known = 1;
    int infer = -1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == -1) {
            if (infer >= 0) dv_panic("%s: more than one -1 in the new shape", op);
            infer = d;
        } else {
            if (shape[d] < 0) dv_panic("%s: negative size %lld", op, (long long)shape[d]);
            known *= shape[d];
        }
        out[d] = shape[d];
    }
    int64_t n = dv_numel(t);
    if (infer >= 0) {
        if (known == 0 || n % known) dv_panic("%s: cannot infer -1 to reshape %s (%lld elements)", op, dv_shape_str(t, NULL, 0), (long long)n);
        out[infer] = n / known;
        known *= out[infer];
    }
    if (known != n) {
        char buf[160];
        int off = snprintf(buf, sizeof buf, "(");
        for (int d = 0; d < ndim; d++) off += snprintf(buf + off, sizeof buf - off, d ? ", %lld" : "%lld", (long long)shape[d]);
        snprintf(buf + off, sizeof buf - off, ")");
        dv_panic("%s: cannot reshape %s (%lld elements) to %s", op, dv_shape_str(t, NULL, 0), (long long)n, buf);
    }
}

/* strides for viewing t with shape `shape` without a copy, or false. Old dims are cut into
 * chunks that are contiguous among themselves; each chunk must be covered exactly by a run of
 * new dims, which then get strides inside that chunk (the rule PyTorch's view follows). */
static bool view_strides(const dv_tensor *t, const int64_t *shape, int ndim, int64_t *stride) {
    if (t->ndim == 0 || dv_numel(t) <= 1) {
        int64_t s = 1;
        for (int d = ndim - 1; d >= 0; d--) { stride[d] = s; s *= shape[d] ? shape[d] : 1; }
        return true;
    }
    int nd = ndim - 1;
    int64_t base = t->stride[t->ndim - 1], old_n = 1, new_n = 1;
    for (int od = t->ndim - 1; od >= 0; od--) {
        old_n *= t->shape[od];
        bool chunk_ends = od == 0 || (t->shape[od - 1] != 1 && t->stride[od - 1] != old_n * base);
        if (!chunk_ends) continue;
        while (nd >= 0 && (new_n < old_n || shape[nd] == 1)) {
            stride[nd] = new_n * base;
            new_n *= shape[nd];
            nd--;
        }
        if (new_n != old_n) return false;
        if (od > 0) { base = t->stride[od - 1]; old_n = 1; new_n = 1; }
    }
    return nd == -1;
}

dv_tensor *dv_view(dv_tensor *t, const int64_t *shape, int ndim) {
    if (ndim > DV_MAX_DIMS) dv_panic("view: %d dims (at most %d)", ndim, DV_MAX_DIMS);
    int64_t sh[DV_MAX_DIMS], st[DV_MAX_DIMS];
    resolve_shape("view", t, shape, ndim, sh);
    if (!view_strides(t, sh, ndim, st))
        dv_panic("view: %s with strides that cannot be viewed as the new shape; use dv_reshape", dv_shape_str(t, NULL, 0));
    dv_tensor *v = dv_tensor_alias(t);
    v->ndim = ndim;
    memcpy(v->shape, sh, sizeof(int64_t) * ndim);
    memcpy(v->stride, st, sizeof(int64_t) * ndim);
    return record1(v, t, "view", reshape_backward);
}

dv_tensor *dv_reshape(dv_tensor *t, const int64_t *shape, int ndim) {
    if (ndim > DV_MAX_DIMS) dv_panic("reshape: %d dims (at most %d)", ndim, DV_MAX_DIMS);
    int64_t sh[DV_MAX_DIMS], st[DV_MAX_DIMS];
    resolve_shape("reshape", t, shape, ndim, sh);
    if (view_strides(t, sh, ndim, st)) return dv_view(t, sh, ndim);
    dv_tensor *c = dv_contiguous(t);
    dv_tensor *v = dv_view(c, sh, ndim);
    dv_release(c);
    return v;
}

dv_tensor *dv_flatten(dv_tensor *t, int start_dim, int end_dim) {
    if (t->ndim == 0) return dv_reshape(t, DV_SHAPE(1));
    int s = dv_dim(t, start_dim), e = dv_dim(t, end_dim);
    DV_ASSERT(s <= e, "flatten: start_dim %d after end_dim %d", start_dim, end_dim);
    int64_t sh[DV_MAX_DIMS];
    int k = 0;
    for (int d = 0; d < s; d++) sh[k++] = t->shape[d];
    int64_t m = 1;
    for (int d = s; d <= e; d++) m *= t->shape[d];
    sh[k++] = m;
    for (int d = e + 1; d < t->ndim; d++) sh[k++] = t->shape[d];
    return dv_reshape(t, sh, k);
}

/* ---- permute / transpose ---- */
dv_tensor *dv_permute(dv_tensor *t, const int *perm) {
    int seen[DV_MAX_DIMS] = {0};
    dv_tensor *v = dv_tensor_alias(t);
    for (int d = 0; d < t->ndim; d++) {
        int p = perm[d] < 0 ? perm[d] + t->ndim : perm[d];
        if (p < 0 || p >= t->ndim || seen[p]) dv_panic("permute: bad permutation for %s", dv_shape_str(t, NULL, 0));
        seen[p] = 1;
        v->shape[d] = t->shape[p];
        v->stride[d] = t->stride[p];
    }
    if (dv_ag_wanted(1, &t)) {
        dv_node *n = dv_ag_record(v, "permute", permute_backward, 1, &t);
        for (int d = 0; d < t->ndim; d++) n->iarg[d] = perm[d] < 0 ? perm[d] + t->ndim : perm[d];
    }
    return v;
}

dv_tensor *dv_transpose(dv_tensor *t, int d0, int d1) {
    int perm[DV_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) perm[d] = d;
    int a = dv_dim(t, d0), b = dv_dim(t, d1);
    perm[a] = b;
    perm[b] = a;
    return dv_permute(t, perm);
}

/* ---- slice / select ---- */
static dv_tensor *slice_impl(dv_tensor *t, int dim, int64_t start, int64_t end, int64_t step, bool drop) {
    int d = dv_dim(t, dim);
    int64_t n = t->shape[d];
    if (step <= 0) dv_panic("slice: step must be positive, got %lld", (long long)step);
    if (start < 0) start += n;
    if (end < 0) end += n;
    if (start < 0) start = 0;
    if (end > n) end = n;
    if (start > n) start = n;
    if (end < start) end = start;
    dv_tensor *v = dv_tensor_alias(t);
    v->offset += start * t->stride[d];
    v->shape[d] = (end - start + step - 1) / step;
    v->stride[d] = t->stride[d] * step;
    if (drop) {
        for (int k = d; k < t->ndim - 1; k++) { v->shape[k] = v->shape[k + 1]; v->stride[k] = v->stride[k + 1]; }
        v->ndim--;
    }
    if (dv_ag_wanted(1, &t)) {
        dv_node *nd = dv_ag_record(v, drop ? "select" : "slice", slice_backward, 1, &t);
        nd->iarg[0] = d; nd->iarg[1] = start; nd->iarg[2] = end; nd->iarg[3] = step; nd->iarg[4] = drop;
    }
    return v;
}
dv_tensor *dv_slice(dv_tensor *t, int dim, int64_t start, int64_t end, int64_t step) {
    return slice_impl(t, dim, start, end, step, false);
}
dv_tensor *dv_select(dv_tensor *t, int dim, int64_t index) {
    int d = dv_dim(t, dim);
    int64_t i = index < 0 ? index + t->shape[d] : index;
    if (i < 0 || i >= t->shape[d]) dv_panic("select: index %lld out of range for dim %d of %s", (long long)index, d, dv_shape_str(t, NULL, 0));
    return slice_impl(t, d, i, i + 1, 1, true);
}

/* ---- unsqueeze / squeeze / expand ---- */
dv_tensor *dv_unsqueeze(dv_tensor *t, int dim) {
    int d = dim < 0 ? dim + t->ndim + 1 : dim;
    if (d < 0 || d > t->ndim || t->ndim == DV_MAX_DIMS) dv_panic("unsqueeze: bad dim %d for %s", dim, dv_shape_str(t, NULL, 0));
    int64_t sh[DV_MAX_DIMS];
    int k = 0;
    for (int i = 0; i <= t->ndim; i++) sh[i] = (i == d) ? 1 : t->shape[k++];
    return dv_view(t, sh, t->ndim + 1);
}
dv_tensor *dv_squeeze(dv_tensor *t, int dim) {
    int d = dv_dim(t, dim);
    if (t->shape[d] != 1) dv_panic("squeeze: dim %d of %s is not 1", d, dv_shape_str(t, NULL, 0));
    int64_t sh[DV_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < t->ndim; i++) if (i != d) sh[k++] = t->shape[i];
    return dv_view(t, sh, t->ndim - 1);
}

dv_tensor *dv_expand(dv_tensor *t, const int64_t *shape, int ndim) {
    if (ndim < t->ndim || ndim > DV_MAX_DIMS) dv_panic("expand: cannot expand %s to %d dims", dv_shape_str(t, NULL, 0), ndim);
    dv_tensor *v = dv_tensor_alias(t);
    v->ndim = ndim;
    int lead = ndim - t->ndim;
    for (int d = 0; d < ndim; d++) {
        int64_t want = shape[d];
        if (d < lead) {
            if (want < 0) dv_panic("expand: size -1 not allowed for a new leading dim");
            v->shape[d] = want;
            v->stride[d] = 0;
            continue;
        }
        int64_t have = t->shape[d - lead];
        if (want == -1) want = have;
        if (want == have) { v->shape[d] = have; v->stride[d] = t->stride[d - lead]; }
        else if (have == 1) { v->shape[d] = want; v->stride[d] = 0; }
        else dv_panic("expand: cannot expand %s: dim %d is %lld, not 1 or %lld", dv_shape_str(t, NULL, 0), d - lead, (long long)have, (long long)want);
    }
    return record1(v, t, "expand", expand_backward);
}

/* ---- copies ---- */
dv_tensor *dv_clone(dv_tensor *t) {
    dv_tensor *c = dv_empty_like(t); /* on t's device; dv_copy_ dispatches */
    dv_copy_(c, t);
    return record1(c, t, "clone", identity_backward);
}
dv_tensor *dv_contiguous(dv_tensor *t) {
    if (dv_is_contiguous(t)) return dv_retain(t);
    return dv_clone(t);
}
dv_tensor *dv_detach(dv_tensor *t) { return dv_tensor_alias(t); }

static void cast_backward(dv_node *n, dv_tensor *g) { dv_ag_give(n, 0, dv_cast(g, n->in[0]->dtype)); }
dv_tensor *dv_cast(dv_tensor *t, dv_dtype dt) {
    if (t->dtype == dt) return dv_retain(t);
    dv_tensor *c = dv_empty_on(dt, t->shape, t->ndim, t->device); /* dv_copy_ dispatches */
    dv_copy_(c, t);
    if (dv_dtype_is_float(dt) && dv_dtype_is_float(t->dtype)) record1(c, t, "cast", cast_backward);
    return c;
}

/* ---- broadcasting ---- */
int dv_broadcast_shape(const char *op, const dv_tensor *a, const dv_tensor *b, int64_t *out) {
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int d = 0; d < n; d++) {
        int da = d - (n - a->ndim), db = d - (n - b->ndim);
        int64_t sa = da >= 0 ? a->shape[da] : 1, sb = db >= 0 ? b->shape[db] : 1;
        if (sa == sb || sb == 1) out[d] = sa;
        else if (sa == 1) out[d] = sb;
        else dv_panic("%s: shapes %s and %s do not broadcast (dim %d: %lld vs %lld)", op,
                      dv_shape_str(a, NULL, 0), dv_shape_str(b, NULL, 0), d, (long long)sa, (long long)sb);
    }
    return n;
}
