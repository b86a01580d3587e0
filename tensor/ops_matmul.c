/* tensor/ops_matmul.c — matmul (torch.matmul semantics, batch dims broadcast) and linear.
 *
 * Every product ends in one GEMM call per batch matrix. A 2-D operand view whose rows or whose
 * columns are unit-stride goes to the kernel as-is, with a transpose flag and leading
 * dimension taken from its strides — so dv_matmul(a, dv_transpose(b, -1, -2)) costs no copy.
 * Anything else is made contiguous first.
 *
 * Backward (only for the operands that want it — a frozen weight costs no GEMM):
 *   dA = dC · Bᵀ,  dB = Aᵀ · dC      (batch dims that were broadcast are summed by dv_ag_give)
 * linear(x, w, b) = x · wᵀ + b keeps w in its stored dtype: f16 / bf16 weights are widened
 * inside the GEMM (kernels/gemm.h), never copied to f32; such weights take no gradient, but
 * the gradient still flows through them to x.
 * On CUDA (f32 activations, f16 / bf16 weights) the product runs on the tensor cores with the
 * f32 operand rounded to the weight's dtype (tensor/cuda.h dv_cuda_gemm_f32_half); f32 x f32
 * runs on the CUDA cores in f32.
 */
#include "tensor/autograd.h"
#include "tensor/cuda.h"
#include "tensor/internal.h"
#include "tensor/ops.h"
#include "kernels/gemm.h"

#include <string.h>

/* C = alpha * op(A) op(B) + beta * C with the kernel for these dtypes and backend */
static void gemm_dispatch(dv_device dev, dv_dtype adt, dv_dtype bdt, int ta, int tb, int64_t M, int64_t N,
                          int64_t K, double alpha, const void *A, int64_t lda, const void *B, int64_t ldb,
                          double beta, void *C, int64_t ldc) {
    if (dev.type == DV_CUDA) {
        DV_ASSERT(adt == DV_F32 && (bdt == DV_F16 || bdt == DV_BF16 || bdt == DV_F32),
                  "matmul on %s: %s x %s has no CUDA GEMM (f32 x f32 / f16 / bf16)", dv_device_str(dev),
                  dv_dtype_name(adt), dv_dtype_name(bdt));
        dv_cuda_gemm_f32_half(dev.index, bdt, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if (adt == DV_F64) {
        DV_ASSERT(bdt == DV_F64, "matmul: f64 times %s", dv_dtype_name(bdt));
        dv_gemm_f64_portable(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    DV_ASSERT(adt == DV_F32, "matmul: left operand must be f32 or f64, got %s", dv_dtype_name(adt));
#ifndef DV_NO_AVX512
    const bool avx = dv_cpu_isa() == DV_ISA_AVX512; /* dv_backend_of's rule for a CPU tensor */
#endif
    switch (bdt) {
    case DV_F32:
#ifndef DV_NO_AVX512
        if (avx) { dv_gemm_f32_avx512(ta, tb, M, N, K, (float)alpha, A, lda, B, ldb, (float)beta, C, ldc); return; }
#endif
        dv_gemm_f32_portable(ta, tb, M, N, K, (float)alpha, A, lda, B, ldb, (float)beta, C, ldc);
        return;
    case DV_F16:
#ifndef DV_NO_AVX512
        if (avx) { dv_gemm_f16b_avx512(ta, tb, M, N, K, (float)alpha, A, lda, B, ldb, (float)beta, C, ldc); return; }
#endif
        dv_gemm_f16b_portable(ta, tb, M, N, K, (float)alpha, A, lda, B, ldb, (float)beta, C, ldc);
        return;
    case DV_BF16:
#ifndef DV_NO_AVX512
        if (avx) { dv_gemm_bf16b_avx512(ta, tb, M, N, K, (float)alpha, A, lda, B, ldb, (float)beta, C, ldc); return; }
#endif
        dv_gemm_bf16b_portable(ta, tb, M, N, K, (float)alpha, A, lda, B, ldb, (float)beta, C, ldc);
        return;
    default:
        dv_panic("matmul: right operand dtype %s not supported", dv_dtype_name(bdt));
    }
}

/* how the last two dims (rows r, cols c) of t reach the GEMM: flag and leading dim, or false */
static bool gemm_layout(const dv_tensor *t, int *trans, int64_t *ld) {
    int nd = t->ndim;
    int64_t r = t->shape[nd - 2], c = t->shape[nd - 1], sr = t->stride[nd - 2], sc = t->stride[nd - 1];
    if ((sc == 1 || c == 1) && (r == 1 || sr >= c)) {
        *trans = 0;
        *ld = r == 1 ? c : sr;
    } else if ((sr == 1 || r == 1) && (c == 1 || sc >= r)) {
        *trans = 1;
        *ld = c == 1 ? r : sc;
    } else {
        return false;
    }
    if (*ld < 1) *ld = 1;
    return true;
}

/* f16 / bf16 stored weights take no gradient (the gradient still flows to the other operand) */
static bool dv_check_grad_dtype(const dv_tensor *t) { return t->dtype == DV_F32 || t->dtype == DV_F64; }

/* a (..., M, K) · b (..., K, N) for ndim >= 2 on both, batch dims broadcast */
static dv_tensor *matmul_nd(dv_tensor *a, dv_tensor *b) {
    int64_t M = a->shape[a->ndim - 2], K = a->shape[a->ndim - 1];
    int64_t K2 = b->shape[b->ndim - 2], N = b->shape[b->ndim - 1];
    if (K != K2) dv_panic("matmul: inner dims differ: %s · %s", dv_shape_str(a, NULL, 0), dv_shape_str(b, NULL, 0));
    /* broadcast the batch dims */
    dv_tensor ah = *a, bh = *b;
    ah.ndim -= 2;
    bh.ndim -= 2;
    int64_t batch[DV_MAX_DIMS];
    int nb = dv_broadcast_shape("matmul", &ah, &bh, batch);
    int64_t sa[DV_MAX_DIMS], sb[DV_MAX_DIMS], nbatch = 1;
    for (int d = 0; d < nb; d++) {
        int da = d - (nb - ah.ndim), db = d - (nb - bh.ndim);
        sa[d] = (da < 0 || a->shape[da] == 1) ? 0 : a->stride[da];
        sb[d] = (db < 0 || b->shape[db] == 1) ? 0 : b->stride[db];
        nbatch *= batch[d];
    }
    dv_tensor *ac = NULL, *bc = NULL;
    int ta, tb;
    int64_t lda, ldb;
    if (!gemm_layout(a, &ta, &lda)) {
        ac = dv_contiguous(a);
        gemm_layout(ac, &ta, &lda);
        for (int d = 0; d < nb; d++) { int da = d - (nb - ah.ndim); sa[d] = (da < 0 || a->shape[da] == 1) ? 0 : ac->stride[da]; }
    }
    if (!gemm_layout(b, &tb, &ldb)) {
        bc = dv_contiguous(b);
        gemm_layout(bc, &tb, &ldb);
        for (int d = 0; d < nb; d++) { int db = d - (nb - bh.ndim); sb[d] = (db < 0 || b->shape[db] == 1) ? 0 : bc->stride[db]; }
    }
    const dv_tensor *A = ac ? ac : a, *B = bc ? bc : b;
    int64_t shape[DV_MAX_DIMS];
    memcpy(shape, batch, sizeof(int64_t) * nb);
    shape[nb] = M;
    shape[nb + 1] = N;
    dv_tensor *c = dv_empty_on(a->dtype, shape, nb + 2, a->device);
    size_t ea = dv_dtype_size(A->dtype), eb = dv_dtype_size(B->dtype), ec = dv_dtype_size(c->dtype);
    dv_device bk = a->device;
    for (int64_t i = 0; i < nbatch; i++) {
        int64_t oa = 0, ob = 0, r = i;
        for (int d = nb - 1; d >= 0; d--) {
            int64_t k = r % batch[d];
            r /= batch[d];
            oa += k * sa[d];
            ob += k * sb[d];
        }
        gemm_dispatch(bk, A->dtype, B->dtype, ta, tb, M, N, K, 1.0, (char *)dv_data(A) + oa * ea, lda,
                      (char *)dv_data(B) + ob * eb, ldb, 0.0, (char *)dv_data(c) + i * M * N * ec, N);
    }
    dv_release(ac);
    dv_release(bc);
    return c;
}

static void matmul_backward(dv_node *n, dv_tensor *g) {
    dv_tensor *a = n->in[0], *b = n->in[1];
    if (dv_ag_input_wants(n, 0)) {
        dv_tensor *bt = dv_transpose(b, -1, -2);
        dv_ag_give(n, 0, matmul_nd(g, bt));
        dv_release(bt);
    }
    if (dv_ag_input_wants(n, 1) && dv_check_grad_dtype(b)) {
        dv_tensor *at = dv_transpose(a, -1, -2);
        dv_ag_give(n, 1, matmul_nd(at, g));
        dv_release(at);
    }
}

static void check_operands(const char *op, const dv_tensor *a, const dv_tensor *b) {
    dv_check_float(op, a);
    dv_check_same_device(op, a, b);
    bool half = b->dtype == DV_F16 || b->dtype == DV_BF16;
    if (a->device.type == DV_CUDA) dv_require_kernel(op, a); /* f32 (f64 has no CUDA GEMM) */
    if (half ? a->dtype != DV_F32 : a->dtype != b->dtype)
        dv_panic("%s: dtypes %s %s and %s %s do not go together (f32·f32, f64·f64, f32·f16, f32·bf16)", op,
                 dv_dtype_name(a->dtype), dv_shape_str(a, NULL, 0), dv_dtype_name(b->dtype), dv_shape_str(b, NULL, 0));
    if (a->ndim == 0 || b->ndim == 0) dv_panic("%s: 0-d operand (%s, %s)", op, dv_shape_str(a, NULL, 0), dv_shape_str(b, NULL, 0));
}

dv_tensor *dv_matmul(dv_tensor *a, dv_tensor *b) {
    check_operands("matmul", a, b);
    /* 1-D operands: promote to matrices (as views, so autograd sees them), then drop the dim */
    if (a->ndim == 1 || b->ndim == 1) {
        dv_tensor *a2 = a->ndim == 1 ? dv_unsqueeze(a, 0) : dv_retain(a);
        dv_tensor *b2 = b->ndim == 1 ? dv_unsqueeze(b, 1) : dv_retain(b);
        dv_tensor *c = dv_matmul(a2, b2);
        dv_tensor *r = c;
        if (b->ndim == 1) { r = dv_squeeze(c, -1); dv_release(c); c = r; }
        if (a->ndim == 1) { r = dv_squeeze(c, b->ndim == 1 ? -1 : -2); dv_release(c); }
        dv_release(a2);
        dv_release(b2);
        return r;
    }
    dv_tensor *c = matmul_nd(a, b);
    bool bgrad = b->dtype == DV_F32 || b->dtype == DV_F64;
    if (dv_ag_wanted(bgrad ? 2 : 1, (dv_tensor *[]){a, b})) dv_ag_record(c, "matmul", matmul_backward, 2, (dv_tensor *[]){a, b});
    return c;
}

/* ---- linear ---- */
static void linear_backward(dv_node *n, dv_tensor *g) {
    /* in: x (..., in), w (out, in), [bias (out)]; saved[0] = x as (rows, in) contiguous */
    dv_tensor *x = n->in[0], *w = n->in[1], *x2 = n->saved[0];
    int64_t rows = x2->shape[0], in = x2->shape[1], out = w->shape[0];
    dv_tensor *g2 = dv_reshape(g, DV_SHAPE(rows, out));
    dv_tensor *gc = dv_contiguous(g2);
    dv_release(g2);
    dv_device bk = x->device;
    if (dv_ag_input_wants(n, 0)) { /* gx (rows, in) = g (rows, out) · w (out, in) */
        dv_tensor *gx = dv_empty_on(x->dtype, DV_SHAPE(rows, in), x->device);
        dv_tensor *wc = dv_contiguous(w);
        gemm_dispatch(bk, gc->dtype, wc->dtype, 0, 0, rows, in, out, 1.0, dv_data(gc), out, dv_data(wc), in, 0.0, dv_data(gx), in);
        dv_release(wc);
        dv_tensor *gxr = dv_reshape(gx, x->shape, x->ndim);
        dv_release(gx);
        dv_ag_give(n, 0, gxr);
    }
    if (dv_ag_input_wants(n, 1) && dv_check_grad_dtype(w)) { /* gw (out, in) = gᵀ (out, rows) · x (rows, in) */
        dv_tensor *gw = dv_empty_on(w->dtype, DV_SHAPE(out, in), w->device);
        gemm_dispatch(bk, gc->dtype, x2->dtype, 1, 0, out, in, rows, 1.0, dv_data(gc), out, dv_data(x2), in, 0.0, dv_data(gw), in);
        dv_ag_give(n, 1, gw);
    }
    if (n->n_in > 2 && dv_ag_input_wants(n, 2)) dv_ag_give(n, 2, dv_sum(gc, (int[]){0}, 1, false));
    dv_release(gc);
}

dv_tensor *dv_linear(dv_tensor *x, dv_tensor *w, dv_tensor *bias) {
    check_operands("linear", x, w);
    if (w->ndim != 2 || x->shape[x->ndim - 1] != w->shape[1])
        dv_panic("linear: input %s does not fit weight %s (want (..., in) and (out, in))", dv_shape_str(x, NULL, 0), dv_shape_str(w, NULL, 0));
    int64_t in = w->shape[1], out = w->shape[0], rows = dv_numel(x) / (in ? in : 1);
    if (in == 0) rows = dv_numel(x) == 0 ? 0 : 1;
    if (bias) {
        if (bias->ndim != 1 || bias->shape[0] != out || bias->dtype != x->dtype)
            dv_panic("linear: bias %s %s does not fit weight %s", dv_dtype_name(bias->dtype), dv_shape_str(bias, NULL, 0), dv_shape_str(w, NULL, 0));
    }
    int64_t xs[DV_MAX_DIMS];
    for (int d = 0; d < x->ndim - 1; d++) xs[d] = x->shape[d];
    rows = 1;
    for (int d = 0; d < x->ndim - 1; d++) rows *= x->shape[d];
    dv_tensor *x2, *wc;
    DV_NO_GRAD_BEGIN
    dv_tensor *xr = dv_reshape(x, DV_SHAPE(rows, in));
    x2 = dv_contiguous(xr);
    dv_release(xr);
    wc = dv_contiguous(w);
    DV_NO_GRAD_END
    xs[x->ndim - 1] = out;
    dv_tensor *y = dv_empty_on(x->dtype, xs, x->ndim, x->device);
    bool fused = false; /* f32 on the CPU: the GEMM adds the bias while C is in registers */
#ifndef DV_NO_AVX512
    if (bias && bias->dtype == DV_F32 && x->device.type == DV_CPU && x->dtype == DV_F32 &&
        dv_cpu_isa() == DV_ISA_AVX512 &&
        (wc->dtype == DV_F32 || wc->dtype == DV_F16 || wc->dtype == DV_BF16)) {
        dv_tensor *bc = dv_contiguous(bias);
        const float *pa = dv_data(x2), *pb = dv_data(bc);
        float *py = dv_data(y);
        if (wc->dtype == DV_F32)
            dv_gemm_f32_bias_avx512(0, 1, rows, out, in, 1.0f, pa, in, dv_data(wc), in, 0.0f, py, out, pb);
        else if (wc->dtype == DV_F16)
            dv_gemm_f16b_bias_avx512(0, 1, rows, out, in, 1.0f, pa, in, dv_data(wc), in, 0.0f, py, out, pb);
        else
            dv_gemm_bf16b_bias_avx512(0, 1, rows, out, in, 1.0f, pa, in, dv_data(wc), in, 0.0f, py, out, pb);
        dv_release(bc);
        fused = true;
    }
#endif
    if (!fused)
        gemm_dispatch(x->device, x->dtype, wc->dtype, 0, 1, rows, out, in, 1.0, dv_data(x2), in, dv_data(wc), in, 0.0, dv_data(y), out);
    dv_release(wc);
    if (bias && !fused) {
        dv_tensor *bc = dv_contiguous(bias);
        if (y->device.type == DV_CUDA) { /* y (rows, out) += bias broadcast over rows, in place */
            dv_cuda_binary(DV_BINARY_ADD, 2, (const int64_t[]){rows, out}, y, (const int64_t[]){out, 1}, bc,
                           (const int64_t[]){0, 1}, y);
        } else if (y->dtype == DV_F32) {
            float *py = dv_data(y);
            const float *pb = dv_data(bc);
            #pragma omp parallel for schedule(static) if (rows * out > (1 << 16))
            for (int64_t r = 0; r < rows; r++)
                for (int64_t j = 0; j < out; j++) py[r * out + j] += pb[j];
        } else {
            double *py = dv_data(y);
            const double *pb = dv_data(bc);
            for (int64_t r = 0; r < rows; r++)
                for (int64_t j = 0; j < out; j++) py[r * out + j] += pb[j];
        }
        dv_release(bc);
    }
    bool wgrad = w->dtype == DV_F32 || w->dtype == DV_F64;
    dv_tensor *ins[3] = {x, w, bias};
    int nin = bias ? 3 : 2;
    bool wanted = dv_needs_grad(x) || (wgrad && dv_needs_grad(w)) || (bias && dv_needs_grad(bias));
    if (wanted && dv_grad_enabled()) {
        dv_node *n = dv_ag_record(y, "linear", linear_backward, nin, ins);
        dv_node_save(n, x2);
    }
    dv_release(x2);
    return y;
}
