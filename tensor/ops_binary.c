/* tensor/ops_binary.c — elementwise binary ops with numpy broadcasting, comparisons, where and
 * masked_fill. Gradients of broadcast operands are summed back to their shape by dv_ag_give. */
#include "tensor/autograd.h"
#include "tensor/cuda.h"
#include "tensor/internal.h"
#include "tensor/ops.h"

#include <string.h>

/* strides of t read as the broadcast shape out (ndim n): 0 where t is broadcast */
static void bcast_strides(const dv_tensor *t, int n, const int64_t *out, int64_t *st) {
    int lead = n - t->ndim;
    for (int d = 0; d < n; d++)
        st[d] = (d < lead || (t->shape[d - lead] == 1 && out[d] != 1)) ? 0 : t->stride[d - lead];
}

static dv_tensor *binary_raw(dv_binary_op op, const dv_tensor *a, const dv_tensor *b) {
    const char *name = dv_binary_name(op);
    dv_check_float(name, a);
    dv_check_float(name, b);
    dv_check_same_device(name, a, b);
    dv_require_kernel(name, a);
    if (a->dtype != b->dtype)
        dv_panic("%s: dtypes differ (%s %s vs %s %s); cast one", name, dv_dtype_name(a->dtype),
                 dv_shape_str(a, NULL, 0), dv_dtype_name(b->dtype), dv_shape_str(b, NULL, 0));
    int64_t shape[DV_MAX_DIMS], sa[DV_MAX_DIMS], sb[DV_MAX_DIMS];
    int n = dv_broadcast_shape(name, a, b, shape);
    bcast_strides(a, n, shape, sa);
    bcast_strides(b, n, shape, sb);
    dv_tensor *y = dv_empty_on(op >= DV_BINARY_EQ ? DV_BOOL : a->dtype, shape, n, a->device);
    if (dv_backend_of(a) == DV_BACKEND_CUDA)
        dv_cuda_binary(op, n, shape, a, sa, b, sb, y);
    else if (a->dtype == DV_F64)
        dv_binary_f64_portable(op, n, shape, dv_data(a), sa, dv_data(b), sb, dv_data(y));
#ifndef DV_NO_AVX512
    else if (dv_backend_of(a) == DV_BACKEND_AVX512)
        dv_binary_f32_avx512(op, n, shape, dv_data(a), sa, dv_data(b), sb, dv_data(y));
#endif
    else
        dv_binary_f32_portable(op, n, shape, dv_data(a), sa, dv_data(b), sb, dv_data(y));
    return y;
}

/* weight for the max/min backward: 1 where this side won, 0.5 on ties, 0 where it lost */
static dv_tensor *winner_weight(dv_tensor *a, dv_tensor *b, bool max, bool first) {
    dv_require_cpu(max ? "max backward" : "min backward", a);
    dv_tensor *y = binary_raw(DV_BINARY_SUB, a, b); /* broadcast shape, sign tells the winner */
    int64_t m = dv_numel(y);
    for (int64_t i = 0; i < m; i++) {
        double d = dv_flat_get(y, i);
        if (!first) d = -d;
        if (!max) d = -d;
        dv_flat_set(y, i, d > 0 ? 1.0 : (d == 0 ? 0.5 : 0.0));
    }
    return y;
}

/* CUDA: weights and product in one kernel (dv_cu_binary_bwd_f32, winner_weight's rule) on a
 * and b expanded to g's shape; dv_ag_give sums broadcast operands back */
static void minmax_backward_cuda(dv_node *n, dv_binary_op op, dv_tensor *a, dv_tensor *b, dv_tensor *g) {
    dv_tensor *gc = dv_contiguous(g);
    dv_tensor *ae = dv_expand(a, gc->shape, gc->ndim), *be = dv_expand(b, gc->shape, gc->ndim);
    dv_tensor *ac = dv_contiguous(ae), *bc = dv_contiguous(be);
    dv_tensor *ga = dv_ag_input_wants(n, 0) ? dv_empty_like(gc) : NULL;
    dv_tensor *gb = dv_ag_input_wants(n, 1) ? dv_empty_like(gc) : NULL;
    dv_cuda_binary_bwd(op, ac, bc, gc, ga, gb);
    if (ga) dv_ag_give(n, 0, ga);
    if (gb) dv_ag_give(n, 1, gb);
    dv_release(gc), dv_release(ae), dv_release(be), dv_release(ac), dv_release(bc);
}

static void binary_backward(dv_node *n, dv_tensor *g) {
    dv_binary_op op = (dv_binary_op)n->iarg[0];
    dv_tensor *a = n->in[0], *b = n->in[1];
    bool wa = dv_ag_input_wants(n, 0), wb = dv_ag_input_wants(n, 1);
    switch (op) {
    case DV_BINARY_ADD:
        if (wa) dv_ag_give(n, 0, dv_retain(g));
        if (wb) dv_ag_give(n, 1, dv_retain(g));
        break;
    case DV_BINARY_SUB:
        if (wa) dv_ag_give(n, 0, dv_retain(g));
        if (wb) dv_ag_give(n, 1, dv_neg(g));
        break;
    case DV_BINARY_MUL:
        if (wa) dv_ag_give(n, 0, dv_mul(g, b));
        if (wb) dv_ag_give(n, 1, dv_mul(g, a));
        break;
    case DV_BINARY_DIV:
        if (wa) dv_ag_give(n, 0, dv_div(g, b));
        if (wb) { /* -g * a / b^2 */
            dv_tensor *b2 = dv_mul(b, b), *t = dv_mul(g, a), *q = dv_div(t, b2);
            dv_ag_give(n, 1, dv_neg(q));
            dv_release(b2); dv_release(t); dv_release(q);
        }
        break;
    case DV_BINARY_POW: {
        dv_tensor *y = n->saved[0];
        if (wa) { /* g * b * a^(b-1) */
            dv_tensor *bm1 = dv_add_scalar(b, -1), *p = dv_pow(a, bm1), *t = dv_mul(p, b);
            dv_ag_give(n, 0, dv_mul(g, t));
            dv_release(bm1); dv_release(p); dv_release(t);
        }
        if (wb) { /* g * y * log(a) */
            dv_tensor *la = dv_log(a), *t = dv_mul(y, la);
            dv_ag_give(n, 1, dv_mul(g, t));
            dv_release(la); dv_release(t);
        }
        break;
    }
    case DV_BINARY_MAX:
    case DV_BINARY_MIN:
        if (dv_backend_of(a) == DV_BACKEND_CUDA) {
            minmax_backward_cuda(n, op, a, b, g);
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (!dv_ag_input_wants(n, i)) continue;
            dv_tensor *w = winner_weight(a, b, op == DV_BINARY_MAX, i == 0);
            dv_ag_give(n, i, dv_mul(g, w));
            dv_release(w);
        }
        break;
    default:
        break;
    }
}

dv_tensor *dv_binary(dv_binary_op op, dv_tensor *a, dv_tensor *b) {
    DV_ASSERT((unsigned)op < DV_BINARY_COUNT, "binary: bad op %d", (int)op);
    dv_tensor *y = binary_raw(op, a, b);
    if (op < DV_BINARY_EQ && dv_ag_wanted(2, (dv_tensor *[]){a, b})) {
        dv_node *n = dv_ag_record(y, dv_binary_name(op), binary_backward, 2, (dv_tensor *[]){a, b});
        n->iarg[0] = op;
        if (op == DV_BINARY_POW) {
            dv_tensor *yd = dv_detach(y);
            dv_node_save(n, yd);
            dv_release(yd);
        }
    }
    return y;
}

dv_tensor *dv_add(dv_tensor *a, dv_tensor *b) { return dv_binary(DV_BINARY_ADD, a, b); }
dv_tensor *dv_sub(dv_tensor *a, dv_tensor *b) { return dv_binary(DV_BINARY_SUB, a, b); }
dv_tensor *dv_mul(dv_tensor *a, dv_tensor *b) { return dv_binary(DV_BINARY_MUL, a, b); }
dv_tensor *dv_div(dv_tensor *a, dv_tensor *b) { return dv_binary(DV_BINARY_DIV, a, b); }
dv_tensor *dv_pow(dv_tensor *a, dv_tensor *b) { return dv_binary(DV_BINARY_POW, a, b); }
dv_tensor *dv_maximum(dv_tensor *a, dv_tensor *b) { return dv_binary(DV_BINARY_MAX, a, b); }
dv_tensor *dv_minimum(dv_tensor *a, dv_tensor *b) { return dv_binary(DV_BINARY_MIN, a, b); }

/* ---- where / masked_fill ---- */
/* cond as 0/1 in dtype dt, broadcast to shape (contiguous) */
static dv_tensor *cond_as(dv_tensor *cond, dv_dtype dt, const int64_t *shape, int n) {
    dv_tensor *ce = dv_expand(cond, shape, n);
    dv_tensor *b = dv_empty_on(DV_BOOL, shape, n, cond->device);
    dv_copy_(b, ce); /* any nonzero -> 1 */
    dv_tensor *m = dv_empty_on(dt, shape, n, cond->device);
    dv_copy_(m, b);
    dv_release(ce);
    dv_release(b);
    return m;
}

static void where_backward(dv_node *n, dv_tensor *g) {
    dv_tensor *m = n->saved[0]; /* 1 where cond */
    if (dv_ag_input_wants(n, 0)) dv_ag_give(n, 0, dv_mul(g, m));
    if (dv_ag_input_wants(n, 1)) {
        dv_tensor *inv = dv_unary(DV_UNARY_AFFINE, m, -1, 1);
        dv_ag_give(n, 1, dv_mul(g, inv));
        dv_release(inv);
    }
}

dv_tensor *dv_where(dv_tensor *cond, dv_tensor *a, dv_tensor *b) {
    dv_check_float("where", a);
    dv_check_float("where", b);
    dv_require_kernel("where", a), dv_require_kernel("where", b);
    dv_check_same_device("where", cond, a), dv_check_same_device("where", a, b);
    if (a->dtype != b->dtype) dv_panic("where: dtypes differ (%s vs %s)", dv_dtype_name(a->dtype), dv_dtype_name(b->dtype));
    int64_t s1[DV_MAX_DIMS], shape[DV_MAX_DIMS];
    int n1 = dv_broadcast_shape("where", a, b, s1);
    dv_tensor tmp = {0};
    tmp.ndim = n1;
    memcpy(tmp.shape, s1, sizeof s1);
    int n = dv_broadcast_shape("where", cond, &tmp, shape);
    dv_tensor *m = cond_as(cond, a->dtype, shape, n);
    dv_tensor *ae = dv_expand(a, shape, n), *be = dv_expand(b, shape, n);
    dv_tensor *y = dv_empty_on(a->dtype, shape, n, a->device);
    int64_t k = dv_numel(y);
    if (dv_backend_of(a) == DV_BACKEND_CUDA) {
        dv_tensor *ac = dv_contiguous(ae), *bc = dv_contiguous(be);
        dv_cuda_where(m, ac, bc, y);
        dv_release(ac), dv_release(bc);
    } else if (a->dtype == DV_F32) {
        const float *pm = dv_data(m);
        float *py = dv_data(y);
        dv_tensor *ac = dv_contiguous(ae), *bc = dv_contiguous(be);
        const float *pa = dv_data(ac), *pb = dv_data(bc);
        for (int64_t i = 0; i < k; i++) py[i] = pm[i] != 0 ? pa[i] : pb[i];
        dv_release(ac); dv_release(bc);
    } else {
        for (int64_t i = 0; i < k; i++) dv_flat_set(y, i, dv_flat_get(m, i) != 0 ? dv_flat_get(ae, i) : dv_flat_get(be, i));
    }
    dv_release(ae);
    dv_release(be);
    if (dv_ag_wanted(2, (dv_tensor *[]){a, b})) {
        dv_node *nd = dv_ag_record(y, "where", where_backward, 2, (dv_tensor *[]){a, b});
        dv_node_save(nd, m);
    }
    dv_release(m);
    return y;
}

dv_tensor *dv_masked_fill(dv_tensor *x, dv_tensor *mask, double value) {
    dv_check_float("masked_fill", x);
    dv_tensor *v = dv_scalar(x->dtype, value);
    if (x->device.type == DV_CUDA) { /* the fill value on x's device, for where */
        dv_tensor *vd = dv_tensor_to(v, x->device);
        dv_release(v);
        v = vd;
    }
    dv_tensor *y = dv_where(mask, v, x);
    dv_release(v);
    return y;
}
