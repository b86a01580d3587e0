/* tensor/ops_pool.c — 2-D max, average and adaptive-average pooling (PyTorch semantics:
 * floor output sizes, no ceil_mode, no dilation) and their backward passes.
 *
 *   x (B, C, H, W) or (C, H, W)  ->  y (B, C, OH, OW), OH = (H + 2*ph - kh) / sh + 1
 *
 * The leading dims are flattened into P = B*C independent planes for the kernels
 * (kernels/pool.c). max_pool2d saves the argmax of every window (int32, a flat position in
 * its plane) so the backward is one scatter; avg_pool2d counts padding in the divisor
 * (count_include_pad = true, torch's default); adaptive_avg_pool2d uses torch's windows
 * [floor(i*H/OH), ceil((i+1)*H/OH)).
 *
 * stride may be NULL (= kernel, torch's default), padding may be NULL (= 0).
 */
#include "tensor/autograd.h"
#include "tensor/cuda.h"
#include "tensor/internal.h"
#include "tensor/ops.h"
#include "kernels/pool.h"

#include <stdint.h>

/* the number of (H, W) planes: the product of the leading dims */
static int64_t planes_of(const dv_tensor *x) {
    int64_t P = 1;
    for (int d = 0; d < x->ndim - 2; d++) P *= x->shape[d];
    return P;
}

/* (..., H, W) input checks; returns the number of planes */
static int64_t plane_count(const char *op, const dv_tensor *x) {
    dv_check_float(op, x);
    dv_require_kernel(op, x);
    if (x->ndim != 3 && x->ndim != 4) dv_panic("%s: expected (B, C, H, W) or (C, H, W), got %s", op, dv_shape_str(x, NULL, 0));
    return planes_of(x);
}

/* x's shape with the last two dims replaced by (oh, ow) */
static dv_tensor *empty_out(const dv_tensor *x, int64_t oh, int64_t ow) {
    int64_t sh[DV_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) sh[d] = x->shape[d];
    sh[x->ndim - 2] = oh;
    sh[x->ndim - 1] = ow;
    return dv_empty_on(x->dtype, sh, x->ndim, x->device);
}

static dv_tensor *contiguous_nograd(dv_tensor *x) {
    dv_tensor *c;
    DV_NO_GRAD_BEGIN
    c = dv_contiguous(x);
    DV_NO_GRAD_END
    return c;
}

/* the pooling window geometry of a checked call */
static dv_pool2d_geom pool_geom(const char *op, const dv_tensor *x, const int kernel[2], const int stride[2], const int padding[2]) {
    DV_ASSERT(kernel, "%s: kernel size is required", op);
    int k[2] = {kernel[0], kernel[1]};
    int s[2] = {stride ? stride[0] : k[0], stride ? stride[1] : k[1]};
    int p[2] = {padding ? padding[0] : 0, padding ? padding[1] : 0};
    if (k[0] < 1 || k[1] < 1 || s[0] < 1 || s[1] < 1)
        dv_panic("%s: kernel (%d, %d) and stride (%d, %d) must be positive (x %s)", op, k[0], k[1], s[0], s[1], dv_shape_str(x, NULL, 0));
    if (p[0] < 0 || p[1] < 0 || 2 * p[0] > k[0] || 2 * p[1] > k[1])
        dv_panic("%s: padding (%d, %d) must be between 0 and half the kernel (%d, %d)", op, p[0], p[1], k[0], k[1]);
    int64_t H = x->shape[x->ndim - 2], W = x->shape[x->ndim - 1];
    if (H + 2 * p[0] < k[0] || W + 2 * p[1] < k[1])
        dv_panic("%s: kernel (%d, %d) is larger than the padded input %s (padding (%d, %d))", op, k[0], k[1],
                 dv_shape_str(x, NULL, 0), p[0], p[1]);
    if (H * W > INT32_MAX) dv_panic("%s: planes of %s are too large for int32 argmax positions", op, dv_shape_str(x, NULL, 0));
    return (dv_pool2d_geom){.H = H, .W = W, .OH = (H + 2 * p[0] - k[0]) / s[0] + 1, .OW = (W + 2 * p[1] - k[1]) / s[1] + 1,
                            .kh = k[0], .kw = k[1], .sh = s[0], .sw = s[1], .ph = p[0], .pw = p[1]};
}

static void geom_to_node(dv_node *n, const dv_pool2d_geom *g) {
    n->iarg[0] = g->kh; n->iarg[1] = g->kw; n->iarg[2] = g->sh;
    n->iarg[3] = g->sw; n->iarg[4] = g->ph; n->iarg[5] = g->pw;
}

static dv_pool2d_geom geom_from_node(const dv_node *n) {
    const dv_tensor *x = n->in[0];
    return (dv_pool2d_geom){.H = x->shape[x->ndim - 2], .W = x->shape[x->ndim - 1],
                            .OH = n->out_shape[x->ndim - 2], .OW = n->out_shape[x->ndim - 1],
                            .kh = (int)n->iarg[0], .kw = (int)n->iarg[1], .sh = (int)n->iarg[2],
                            .sw = (int)n->iarg[3], .ph = (int)n->iarg[4], .pw = (int)n->iarg[5]};
}

/* ---- max pooling ---- */

static void max_pool2d_backward(dv_node *n, dv_tensor *gout) {
    const dv_tensor *x = n->in[0];
    dv_pool2d_geom g = geom_from_node(n);
    int64_t P = planes_of(x);
    dv_tensor *gy = dv_contiguous(gout), *idx = n->saved[0];
    dv_tensor *gx = dv_empty_like(x);
    if (dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_max_pool2d_bwd(&g, P, gy, idx, gx);
    else if (x->dtype == DV_F64) dv_max_pool2d_backward_f64_portable(&g, P, dv_data(gy), dv_data(idx), dv_data(gx));
    else dv_max_pool2d_backward_f32_portable(&g, P, dv_data(gy), dv_data(idx), dv_data(gx));
    dv_release(gy);
    dv_ag_give(n, 0, gx);
}

dv_tensor *dv_max_pool2d(dv_tensor *x, const int kernel[2], const int stride[2], const int padding[2]) {
    int64_t P = plane_count("max_pool2d", x);
    dv_pool2d_geom g = pool_geom("max_pool2d", x, kernel, stride, padding);
    dv_tensor *xc = contiguous_nograd(x);
    dv_tensor *y = empty_out(x, g.OH, g.OW);
    dv_tensor *idx = dv_empty_on(DV_I32, y->shape, y->ndim, x->device);
    if (dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_max_pool2d(&g, P, xc, y, idx);
    else if (x->dtype == DV_F64) dv_max_pool2d_f64_portable(&g, P, dv_data(xc), dv_data(y), dv_data(idx));
    else dv_max_pool2d_f32_portable(&g, P, dv_data(xc), dv_data(y), dv_data(idx));
    if (dv_ag_wanted(1, &x)) {
        dv_node *n = dv_ag_record(y, "max_pool2d", max_pool2d_backward, 1, &x);
        geom_to_node(n, &g);
        dv_node_save(n, idx);
    }
    dv_release(idx);
    dv_release(xc);
    return y;
}

/* ---- average pooling ---- */

static void avg_pool2d_backward(dv_node *n, dv_tensor *gout) {
    const dv_tensor *x = n->in[0];
    dv_pool2d_geom g = geom_from_node(n);
    int64_t P = planes_of(x);
    dv_tensor *gy = dv_contiguous(gout);
    dv_tensor *gx = dv_empty_like(x);
    if (dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_avg_pool2d_bwd(&g, P, gy, gx);
    else if (x->dtype == DV_F64) dv_avg_pool2d_backward_f64_portable(&g, P, dv_data(gy), dv_data(gx));
    else dv_avg_pool2d_backward_f32_portable(&g, P, dv_data(gy), dv_data(gx));
    dv_release(gy);
    dv_ag_give(n, 0, gx);
}

dv_tensor *dv_avg_pool2d(dv_tensor *x, const int kernel[2], const int stride[2], const int padding[2]) {
    int64_t P = plane_count("avg_pool2d", x);
    dv_pool2d_geom g = pool_geom("avg_pool2d", x, kernel, stride, padding);
    dv_tensor *xc = contiguous_nograd(x);
    dv_tensor *y = empty_out(x, g.OH, g.OW);
    if (dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_avg_pool2d(&g, P, xc, y);
    else if (x->dtype == DV_F64) dv_avg_pool2d_f64_portable(&g, P, dv_data(xc), dv_data(y));
    else dv_avg_pool2d_f32_portable(&g, P, dv_data(xc), dv_data(y));
    if (dv_ag_wanted(1, &x)) {
        dv_node *n = dv_ag_record(y, "avg_pool2d", avg_pool2d_backward, 1, &x);
        geom_to_node(n, &g);
    }
    dv_release(xc);
    return y;
}

/* ---- adaptive average pooling ---- */

static void adaptive_avg_pool2d_backward(dv_node *n, dv_tensor *gout) {
    const dv_tensor *x = n->in[0];
    int nd = x->ndim;
    int64_t P = planes_of(x);
    dv_tensor *gy = dv_contiguous(gout);
    dv_tensor *gx = dv_empty_like(x);
    int64_t H = x->shape[nd - 2], W = x->shape[nd - 1], OH = n->out_shape[nd - 2], OW = n->out_shape[nd - 1];
    if (dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_adaptive_avg_pool2d_bwd(P, H, W, OH, OW, gy, gx);
    else if (x->dtype == DV_F64) dv_adaptive_avg_pool2d_backward_f64_portable(P, H, W, OH, OW, dv_data(gy), dv_data(gx));
    else dv_adaptive_avg_pool2d_backward_f32_portable(P, H, W, OH, OW, dv_data(gy), dv_data(gx));
    dv_release(gy);
    dv_ag_give(n, 0, gx);
}

dv_tensor *dv_adaptive_avg_pool2d(dv_tensor *x, int64_t out_h, int64_t out_w) {
    int64_t P = plane_count("adaptive_avg_pool2d", x);
    int64_t H = x->shape[x->ndim - 2], W = x->shape[x->ndim - 1];
    if (out_h < 0 || out_w < 0) dv_panic("adaptive_avg_pool2d: bad output size (%lld, %lld)", (long long)out_h, (long long)out_w);
    if (P > 0 && ((H == 0 && out_h > 0) || (W == 0 && out_w > 0)))
        dv_panic("adaptive_avg_pool2d: cannot pool the empty planes of %s to (%lld, %lld)", dv_shape_str(x, NULL, 0),
                 (long long)out_h, (long long)out_w);
    dv_tensor *xc = contiguous_nograd(x);
    dv_tensor *y = empty_out(x, out_h, out_w);
    if (dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_adaptive_avg_pool2d(P, H, W, out_h, out_w, xc, y);
    else if (x->dtype == DV_F64) dv_adaptive_avg_pool2d_f64_portable(P, H, W, out_h, out_w, dv_data(xc), dv_data(y));
    else dv_adaptive_avg_pool2d_f32_portable(P, H, W, out_h, out_w, dv_data(xc), dv_data(y));
    if (dv_ag_wanted(1, &x)) dv_ag_record(y, "adaptive_avg_pool2d", adaptive_avg_pool2d_backward, 1, &x);
    dv_release(xc);
    return y;
}
