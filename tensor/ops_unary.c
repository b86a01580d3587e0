/* tensor/ops_unary.c — elementwise unary ops and their backward: gx = gy * f'(x). */
#include "tensor/autograd.h"
#include "tensor/cuda.h"
#include "tensor/internal.h"
#include "tensor/ops.h"

static void unary_kernel(dv_unary_op op, const dv_tensor *x, dv_tensor *y, double p1, double p2) {
    int64_t n = dv_numel(x);
    if (dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_unary(op, x, y, p1, p2);
    else if (x->dtype == DV_F64) dv_unary_f64_portable(op, n, dv_data(x), dv_data(y), p1, p2);
#ifndef DV_NO_AVX512
    else if (dv_backend_of(x) == DV_BACKEND_AVX512) dv_unary_f32_avx512(op, n, dv_data(x), dv_data(y), p1, p2);
#endif
    else dv_unary_f32_portable(op, n, dv_data(x), dv_data(y), p1, p2);
}

static void unary_backward(dv_node *n, dv_tensor *g) {
    dv_unary_op op = (dv_unary_op)n->iarg[0];
    dv_tensor *x = n->saved[0], *y = n->saved[1];
    dv_tensor *gc = dv_contiguous(g);
    dv_tensor *gx = dv_empty_like(x);
    int64_t m = dv_numel(x);
    if (dv_backend_of(x) == DV_BACKEND_CUDA)
        dv_cuda_unary_bwd(op, x, y, gc, gx, n->farg[0], n->farg[1]);
    else if (x->dtype == DV_F64)
        dv_unary_backward_f64_portable(op, m, dv_data(x), dv_data(y), dv_data(gc), dv_data(gx), n->farg[0], n->farg[1]);
#ifndef DV_NO_AVX512
    else if (dv_backend_of(x) == DV_BACKEND_AVX512)
        dv_unary_backward_f32_avx512(op, m, dv_data(x), dv_data(y), dv_data(gc), dv_data(gx), n->farg[0], n->farg[1]);
#endif
    else
        dv_unary_backward_f32_portable(op, m, dv_data(x), dv_data(y), dv_data(gc), dv_data(gx), n->farg[0], n->farg[1]);
    dv_release(gc);
    dv_ag_give(n, 0, gx);
}

dv_tensor *dv_unary(dv_unary_op op, dv_tensor *x, double p1, double p2) {
    const char *name = dv_unary_name(op);
    DV_ASSERT((unsigned)op < DV_UNARY_COUNT, "unary: bad op %d", (int)op);
    dv_check_float(name, x);
    dv_require_kernel(name, x);
    dv_tensor *xc;
    DV_NO_GRAD_BEGIN
    xc = dv_contiguous(x);
    DV_NO_GRAD_END
    dv_tensor *y = dv_empty_like(x);
    unary_kernel(op, xc, y, p1, p2);
    if (dv_ag_wanted(1, &x)) {
        dv_node *n = dv_ag_record(y, name, unary_backward, 1, &x);
        n->iarg[0] = op;
        n->farg[0] = p1;
        n->farg[1] = p2;
        dv_node_save(n, xc);
        /* saving y would make a cycle (y holds the node); save a detached alias instead */
        dv_tensor *yd = dv_detach(y);
        dv_node_save(n, yd);
        dv_release(yd);
    }
    dv_release(xc);
    return y;
}

dv_tensor *dv_neg(dv_tensor *x) { return dv_unary(DV_UNARY_NEG, x, 0, 0); }
dv_tensor *dv_exp(dv_tensor *x) { return dv_unary(DV_UNARY_EXP, x, 0, 0); }
dv_tensor *dv_log(dv_tensor *x) { return dv_unary(DV_UNARY_LOG, x, 0, 0); }
dv_tensor *dv_sqrt(dv_tensor *x) { return dv_unary(DV_UNARY_SQRT, x, 0, 0); }
dv_tensor *dv_rsqrt(dv_tensor *x) { return dv_unary(DV_UNARY_RSQRT, x, 0, 0); }
dv_tensor *dv_abs(dv_tensor *x) { return dv_unary(DV_UNARY_ABS, x, 0, 0); }
dv_tensor *dv_tanh(dv_tensor *x) { return dv_unary(DV_UNARY_TANH, x, 0, 0); }
dv_tensor *dv_sigmoid(dv_tensor *x) { return dv_unary(DV_UNARY_SIGMOID, x, 0, 0); }
dv_tensor *dv_relu(dv_tensor *x) { return dv_unary(DV_UNARY_RELU, x, 0, 0); }
dv_tensor *dv_gelu(dv_tensor *x) { return dv_unary(DV_UNARY_GELU, x, 0, 0); }
dv_tensor *dv_gelu_tanh(dv_tensor *x) { return dv_unary(DV_UNARY_GELU_TANH, x, 0, 0); }
dv_tensor *dv_quick_gelu(dv_tensor *x) { return dv_unary(DV_UNARY_QUICK_GELU, x, 0, 0); }
dv_tensor *dv_silu(dv_tensor *x) { return dv_unary(DV_UNARY_SILU, x, 0, 0); }
dv_tensor *dv_square(dv_tensor *x) { return dv_unary(DV_UNARY_SQUARE, x, 0, 0); }
dv_tensor *dv_pow_scalar(dv_tensor *x, double p) { return dv_unary(DV_UNARY_POW, x, p, 0); }
dv_tensor *dv_clamp(dv_tensor *x, double lo, double hi) { return dv_unary(DV_UNARY_CLAMP, x, lo, hi); }
dv_tensor *dv_scale(dv_tensor *x, double s) { return dv_unary(DV_UNARY_AFFINE, x, s, 0); }
dv_tensor *dv_add_scalar(dv_tensor *x, double s) { return dv_unary(DV_UNARY_AFFINE, x, 1, s); }
