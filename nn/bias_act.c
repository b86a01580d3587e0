/* nn/bias_act.c — the fused bias + activation op with autograd; see nn/bias_act.h. */
#include "nn/bias_act.h"

#include "kernels/gemm.h"
#include "tensor/autograd.h"
#include "tensor/cuda.h"
#include "tensor/internal.h"
#include "tensor/ops.h"


static dv_tensor *contig(dv_tensor *t) {
    if (!t) return NULL;
    dv_tensor *c;
    DV_NO_GRAD_BEGIN
    c = dv_contiguous(t);
    DV_NO_GRAD_END
    return c;
}

/* in: x, b (b may be absent: n_in 1); saved: xc, bc (or only xc); iarg[0] = act */
static void bias_act_backward(dv_node *n, dv_tensor *g) {
    dv_tensor *x = n->saved[0], *b = n->n_saved > 1 ? n->saved[1] : NULL;
    dv_bias_act_kind act = (dv_bias_act_kind)n->iarg[0];
    int64_t N = x->ndim ? x->shape[x->ndim - 1] : 1, R = N ? dv_numel(x) / N : 0;
    dv_tensor *gc = dv_contiguous(g);
    dv_tensor *gx = dv_ag_input_wants(n, 0) ? dv_empty_like(x) : NULL;
    dv_tensor *gb = b && dv_ag_input_wants(n, 1) ? dv_empty_like(b) : NULL;
    if (gb && R == 0) dv_fill_(gb, 0.0);
    if (R > 0 && (gx || gb) && dv_backend_of(x) == DV_BACKEND_CUDA)
        dv_cuda_bias_act_bwd(act, R, N, x, b, gc, gx, gb);
    else if (R > 0 && (gx || gb))
        DV_DISPATCH_FLOAT(x, bias_act_bwd, act, R, N, dv_data(x), DV_DATA_OR_NULL(b), dv_data(gc),
                          DV_DATA_OR_NULL(gx), DV_DATA_OR_NULL(gb));
    dv_release(gc);
    if (gx) dv_ag_give(n, 0, gx);
    if (gb) dv_ag_give(n, 1, gb);
}

dv_tensor *dv_bias_act(dv_tensor *x, dv_tensor *b, dv_bias_act_kind act) {
    const char *op = "bias_act";
    DV_ASSERT((unsigned)act < DV_BIAS_ACT_COUNT, "%s: unknown activation %d", op, (int)act);
    dv_check_float(op, x);
    dv_require_kernel(op, x);
    DV_ASSERT(x->ndim >= 1, "%s: x must be (..., N), got a 0-d tensor", op);
    int64_t N = x->shape[x->ndim - 1], R = N ? dv_numel(x) / N : 0;
    if (b) {
        dv_check_dtype(op, b, x->dtype);
        dv_check_same_device(op, x, b);
        DV_ASSERT(b->ndim == 1 && b->shape[0] == N, "%s: bias %s does not fit x %s (need (%lld))", op,
                  dv_shape_str(b, NULL, 0), dv_shape_str(x, NULL, 0), (long long)N);
    }
    dv_tensor *xc = contig(x), *bc = contig(b);
    dv_tensor *y = dv_empty_like(x);
    if (R > 0 && dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_bias_act_fwd(act, R, N, xc, bc, y);
    else if (R > 0) DV_DISPATCH_FLOAT(x, bias_act_fwd, act, R, N, dv_data(xc), DV_DATA_OR_NULL(bc), dv_data(y));
    dv_tensor *ins[2] = {x, b};
    int nin = b ? 2 : 1;
    if (dv_ag_wanted(nin, ins)) {
        dv_node *n = dv_ag_record(y, op, bias_act_backward, nin, ins);
        n->iarg[0] = act;
        dv_node_save(n, xc);
        if (bc) dv_node_save(n, bc);
    }
    dv_release(xc);
    dv_release(bc);
    return y;
}

/* Inference (nothing wants a gradient), f32 on AVX-512: one GEMM whose epilogue adds the bias and
 * applies the activation while the tile is in registers, instead of a GEMM and a pass over its
 * output. Returns NULL when the case is not that one. */
static dv_tensor *linear_act_fused(dv_tensor *x, dv_tensor *w, dv_tensor *b, dv_bias_act_kind act) {
#ifndef DV_NO_AVX512
    dv_tensor *ins[3] = {x, w, b};
    if (!b || dv_ag_wanted(3, ins) || x->dtype != DV_F32 || w->dtype != DV_F32 || b->dtype != DV_F32 ||
        dv_backend_of(x) != DV_BACKEND_AVX512 || w->device.type != DV_CPU || b->device.type != DV_CPU ||
        x->ndim < 1 || w->ndim != 2 || b->ndim != 1 || x->shape[x->ndim - 1] != w->shape[1] ||
        b->shape[0] != w->shape[0])
        return NULL; /* dv_linear and dv_bias_act check (and explain) everything else */
    int64_t in = w->shape[1], out = w->shape[0], rows = 1, ys[DV_MAX_DIMS];
    for (int d = 0; d < x->ndim - 1; d++) rows *= x->shape[d], ys[d] = x->shape[d];
    ys[x->ndim - 1] = out;
    dv_tensor *xc = contig(x), *wc = contig(w), *bc = contig(b);
    dv_tensor *y = dv_empty(DV_F32, ys, x->ndim);
    dv_gemm_f32_bias_act_avx512(0, 1, rows, out, in, 1.0f, dv_data(xc), in, dv_data(wc), in, 0.0f, dv_data(y),
                                out, dv_data(bc), (int)act);
    dv_release(xc), dv_release(wc), dv_release(bc);
    return y;
#else
    (void)x, (void)w, (void)b, (void)act;
    return NULL;
#endif
}

dv_tensor *dv_linear_act(dv_tensor *x, dv_tensor *w, dv_tensor *b, dv_bias_act_kind act) {
    dv_tensor *fused = linear_act_fused(x, w, b, act);
    if (fused) return fused;
    dv_tensor *h = dv_linear(x, w, NULL);
    dv_tensor *y = dv_bias_act(h, b, act);
    dv_release(h);
    return y;
}

dv_bias_act_kind dv_bias_act_of(dv_act a) {
    switch (a) {
    case DV_ACT_GELU: return DV_BIAS_ACT_GELU;
    case DV_ACT_GELU_TANH: return DV_BIAS_ACT_GELU_TANH;
    case DV_ACT_QUICK_GELU: return DV_BIAS_ACT_QUICK_GELU;
    case DV_ACT_SILU: return DV_BIAS_ACT_SILU;
    case DV_ACT_RELU: return DV_BIAS_ACT_RELU;
    }
    dv_panic("dv_bias_act_of: unknown activation %d", (int)a);
}
