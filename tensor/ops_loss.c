/* tensor/ops_loss.c — losses, each the mean over its elements (or non-ignored targets) as a 0-d
 * tensor, like PyTorch's reduction='mean'.
 *
 *   mse_loss           mean((pred - target)^2)              composed: sub, square, mean_all
 *   l1_loss            mean(|pred - target|)                composed: sub, abs, mean_all
 *   bce_with_logits    mean(max(x,0) - x t + log(1 + exp(-|x|)))   fused: exact gradient
 *                      sigmoid(x) - t everywhere (composing relu/abs would be wrong at x = 0)
 *   cross_entropy      mean over rows with target != ignore_index of
 *                      logsumexp(logits[r]) - logits[r, target[r]]; fused with log-softmax,
 *                      the backward is softmax - onehot, from the saved per-row logsumexp.
 *
 * pred / target must have the same shape: a silent broadcast ((B, 1) against (B)) is a classic
 * bug, so it aborts instead. An empty input gives NaN (0 / 0), as in torch; so does a
 * cross-entropy whose targets are all ignored.
 * On CUDA the fused losses run on the device (tensor/cuda.c): the per-row losses and their sum
 * stay there, no host buffer is allocated; only cross_entropy's targets are range-checked on
 * the host first (one download of the target vector).
 */
#include "tensor/autograd.h"
#include "tensor/cuda.h"
#include "tensor/internal.h"
#include "tensor/ops.h"
#include "kernels/norm.h"

static void check_pair(const char *op, const dv_tensor *a, const dv_tensor *b) {
    dv_check_float(op, a);
    dv_check_float(op, b);
    dv_check_same_device(op, a, b);
    dv_require_kernel(op, a);
    dv_check_same_shape(op, a, b);
    if (a->dtype != b->dtype)
        dv_panic("%s: dtypes differ (%s vs %s); cast one", op, dv_dtype_name(a->dtype), dv_dtype_name(b->dtype));
}

static dv_tensor *contiguous_no_grad(dv_tensor *x) {
    dv_tensor *c;
    DV_NO_GRAD_BEGIN
    c = dv_contiguous(x);
    DV_NO_GRAD_END
    return c;
}

/* ---- mse / l1 ----------------------------------------------------------------------------- */

dv_tensor *dv_mse_loss(dv_tensor *pred, dv_tensor *target) {
    check_pair("mse_loss", pred, target);
    dv_tensor *d = dv_sub(pred, target), *sq = dv_square(d), *y = dv_mean_all(sq);
    dv_release(d);
    dv_release(sq);
    return y;
}

dv_tensor *dv_l1_loss(dv_tensor *pred, dv_tensor *target) {
    check_pair("l1_loss", pred, target);
    dv_tensor *d = dv_sub(pred, target), *a = dv_abs(d), *y = dv_mean_all(a);
    dv_release(d);
    dv_release(a);
    return y;
}

/* ---- binary cross-entropy with logits ----------------------------------------------------- */

/* saved: logits, target (both contiguous) */
static void bce_backward(dv_node *n, dv_tensor *g) {
    dv_tensor *x = n->saved[0], *t = n->saved[1];
    int64_t m = dv_numel(x);
    dv_tensor *gx = dv_ag_input_wants(n, 0) ? dv_empty_like(x) : NULL;
    dv_tensor *gt = dv_ag_input_wants(n, 1) ? dv_empty_like(t) : NULL;
    double scale = dv_backend_of(x) == DV_BACKEND_CUDA ? 0 : dv_item(g) / (double)m; /* CUDA reads g on the device */
    if (dv_backend_of(x) == DV_BACKEND_CUDA)
        dv_cuda_bce_logits_bwd(x, t, g, gx, gt);
    else if (x->dtype == DV_F64)
        dv_bce_logits_bwd_f64_portable(m, dv_data(x), dv_data(t), scale, gx ? dv_data(gx) : NULL, gt ? dv_data(gt) : NULL);
    else
        dv_bce_logits_bwd_f32_portable(m, dv_data(x), dv_data(t), scale, gx ? dv_data(gx) : NULL, gt ? dv_data(gt) : NULL);
    if (gx) dv_ag_give(n, 0, gx);
    if (gt) dv_ag_give(n, 1, gt);
}

dv_tensor *dv_bce_with_logits(dv_tensor *logits, dv_tensor *target) {
    const char *op = "bce_with_logits";
    check_pair(op, logits, target);
    dv_tensor *xc = contiguous_no_grad(logits), *tc = contiguous_no_grad(target);
    int64_t m = dv_numel(xc);
    dv_tensor *y;
    if (dv_backend_of(xc) == DV_BACKEND_CUDA) {
        y = dv_cuda_bce_logits(xc, tc);
    } else {
        double s = xc->dtype == DV_F64 ? dv_bce_logits_sum_f64_portable(m, dv_data(xc), dv_data(tc))
                                       : dv_bce_logits_sum_f32_portable(m, dv_data(xc), dv_data(tc));
        y = dv_scalar(logits->dtype, s / (double)m);
    }
    if (dv_ag_wanted(2, (dv_tensor *[]){logits, target})) {
        dv_node *n = dv_ag_record(y, op, bce_backward, 2, (dv_tensor *[]){logits, target});
        dv_node_save(n, xc);
        dv_node_save(n, tc);
    }
    dv_release(xc);
    dv_release(tc);
    return y;
}

/* ---- cross-entropy ------------------------------------------------------------------------ */

/* saved: logits (contiguous), target (i64), lse (N, f64); iarg: ignore_index, count */
static void cross_entropy_backward(dv_node *n, dv_tensor *g) {
    dv_tensor *x = n->saved[0], *tgt = n->saved[1], *lse = n->saved[2];
    int64_t rows = x->shape[0], c = x->shape[1], ignore = n->iarg[0], count = n->iarg[1];
    dv_tensor *gx = dv_empty_like(x);
    double scale = dv_backend_of(x) == DV_BACKEND_CUDA ? 0 : dv_item(g) / (double)count; /* CUDA reads g on the device */
    if (dv_backend_of(x) == DV_BACKEND_CUDA)
        dv_cuda_cross_entropy_bwd(rows, c, x, tgt, ignore, lse, g, count, gx);
    else if (x->dtype == DV_F64)
        dv_cross_entropy_bwd_f64_portable(rows, c, dv_data(x), dv_data(tgt), ignore, dv_data(lse), scale, dv_data(gx));
#ifndef DV_NO_AVX512
    else if (dv_backend_of(x) == DV_BACKEND_AVX512)
        dv_cross_entropy_bwd_f32_avx512(rows, c, dv_data(x), dv_data(tgt), ignore, dv_data(lse), scale, dv_data(gx));
#endif
    else
        dv_cross_entropy_bwd_f32_portable(rows, c, dv_data(x), dv_data(tgt), ignore, dv_data(lse), scale, dv_data(gx));
    dv_ag_give(n, 0, gx);
}

dv_tensor *dv_cross_entropy(dv_tensor *logits, dv_tensor *target, int64_t ignore_index) {
    const char *op = "cross_entropy";
    dv_check_float(op, logits);
    dv_require_kernel(op, logits);
    dv_check_same_device(op, logits, target);
    if (logits->ndim != 2 || target->ndim != 1 || target->shape[0] != logits->shape[0])
        dv_panic("%s: expected logits (N, C) and target (N), got %s and %s", op, dv_shape_str(logits, NULL, 0),
                 dv_shape_str(target, NULL, 0));
    if (target->dtype != DV_I32 && target->dtype != DV_I64)
        dv_panic("%s: target must be i32 or i64 class ids, got %s", op, dv_dtype_name(target->dtype));
    int64_t rows = logits->shape[0], c = logits->shape[1], count = 0;

    /* targets as a contiguous i64 vector, each checked against the class count */
    dv_tensor *tgt = dv_empty(DV_I64, &rows, 1);
    dv_tensor *th = target->device.type == DV_CPU ? dv_retain(target) : dv_tensor_to(target, DV_DEVICE_CPU);
    int64_t *pt = dv_data(tgt), st = th->stride[0];
    for (int64_t r = 0; r < rows; r++) {
        int64_t t = th->dtype == DV_I32 ? ((const int32_t *)dv_data(th))[r * st] : ((const int64_t *)dv_data(th))[r * st];
        if (t == ignore_index) { pt[r] = t; continue; }
        if (t < 0 || t >= c)
            dv_panic("%s: target[%lld] = %lld is not a class id in [0, %lld) (logits %s, ignore_index %lld)", op,
                     (long long)r, (long long)t, (long long)c, dv_shape_str(logits, NULL, 0), (long long)ignore_index);
        pt[r] = t;
        count++;
    }
    dv_release(th);

    dv_tensor *xc = contiguous_no_grad(logits);
    dv_tensor *lse = dv_empty_on(DV_F64, &rows, 1, logits->device), *y;
    if (dv_backend_of(xc) == DV_BACKEND_CUDA) { /* the checked targets go to the device; the per-row
                                                    * losses stay there (dv_cuda_cross_entropy) */
        dv_tensor *td = dv_tensor_to(tgt, xc->device);
        dv_release(tgt);
        tgt = td;
        y = dv_cuda_cross_entropy(rows, c, xc, tgt, ignore_index, count, lse);
    } else {
        dv_tensor *loss = dv_empty(logits->dtype, &rows, 1); /* (N): 0 at ignored rows */
        if (xc->dtype == DV_F64)
            dv_cross_entropy_fwd_f64_portable(rows, c, dv_data(xc), pt, ignore_index, dv_data(loss), dv_data(lse));
#ifndef DV_NO_AVX512
        else if (dv_backend_of(xc) == DV_BACKEND_AVX512)
            dv_cross_entropy_fwd_f32_avx512(rows, c, dv_data(xc), pt, ignore_index, dv_data(loss), dv_data(lse));
#endif
        else
            dv_cross_entropy_fwd_f32_portable(rows, c, dv_data(xc), pt, ignore_index, dv_data(loss), dv_data(lse));
        double s = 0; /* ignored rows hold 0 */
        if (xc->dtype == DV_F64) { const double *pl = dv_data(loss); for (int64_t r = 0; r < rows; r++) s += pl[r]; }
        else { const float *pl = dv_data(loss); for (int64_t r = 0; r < rows; r++) s += pl[r]; }
        y = dv_scalar(logits->dtype, s / (double)count); /* no targets: 0 / 0 = NaN */
        dv_release(loss);
    }

    if (dv_ag_wanted(1, &logits)) {
        dv_node *n = dv_ag_record(y, op, cross_entropy_backward, 1, &logits);
        n->iarg[0] = ignore_index;
        n->iarg[1] = count;
        dv_node_save(n, xc);
        dv_node_save(n, tgt);
        dv_node_save(n, lse);
    }
    dv_release(xc);
    dv_release(tgt);
    dv_release(lse);
    return y;
}
