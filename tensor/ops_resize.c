/* tensor/ops_resize.c — bilinear and nearest resizing of images to a given size, as
 * torch.nn.functional.interpolate(x, size=(out_h, out_w), mode='bilinear' | 'nearest'),
 * and their backward passes (a scatter of the output gradient through the same taps).
 *
 *   x (B, C, H, W) or (C, H, W)  ->  y (B, C, out_h, out_w)
 *
 * The source-coordinate rules (align_corners, the clamp at 0, 'nearest' flooring) are stated
 * in kernels/resize.h, which holds the kernels. No antialiasing when downsampling (torch's
 * default antialias=False), no bicubic.
 */
#include "tensor/autograd.h"
#include "tensor/cuda.h"
#include "tensor/internal.h"
#include "tensor/ops.h"
#include "kernels/resize.h"

typedef struct { int64_t P, H, W, OH, OW; } resize_dims;

/* checks x and the output size; returns the plane stack's sizes */
static resize_dims resize_check(const char *op, const dv_tensor *x, int64_t out_h, int64_t out_w) {
    dv_check_float(op, x);
    dv_require_kernel(op, x);
    if (x->ndim != 3 && x->ndim != 4) dv_panic("%s: expected (B, C, H, W) or (C, H, W), got %s", op, dv_shape_str(x, NULL, 0));
    resize_dims r = {1, x->shape[x->ndim - 2], x->shape[x->ndim - 1], out_h, out_w};
    for (int d = 0; d < x->ndim - 2; d++) r.P *= x->shape[d];
    if (out_h < 0 || out_w < 0) dv_panic("%s: bad output size (%lld, %lld) for %s", op, (long long)out_h, (long long)out_w, dv_shape_str(x, NULL, 0));
    if (r.P > 0 && out_h * out_w > 0 && r.H * r.W == 0)
        dv_panic("%s: cannot resize the empty planes of %s to (%lld, %lld)", op, dv_shape_str(x, NULL, 0), (long long)out_h, (long long)out_w);
    return r;
}

static resize_dims dims_from_node(const dv_node *n) {
    const dv_tensor *x = n->in[0];
    int nd = x->ndim;
    resize_dims r = {1, x->shape[nd - 2], x->shape[nd - 1], n->out_shape[nd - 2], n->out_shape[nd - 1]};
    for (int d = 0; d < nd - 2; d++) r.P *= x->shape[d];
    return r;
}

static dv_tensor *empty_out(const dv_tensor *x, int64_t oh, int64_t ow) {
    int64_t sh[DV_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) sh[d] = x->shape[d];
    sh[x->ndim - 2] = oh;
    sh[x->ndim - 1] = ow;
    return dv_empty_on(x->dtype, sh, x->ndim, x->device);
}

/* ---- bilinear ---- */

static void bilinear_backward(dv_node *n, dv_tensor *gout) {
    resize_dims r = dims_from_node(n);
    const dv_tensor *x = n->in[0];
    int align = (int)n->iarg[0];
    dv_tensor *gy = dv_contiguous(gout);
    dv_tensor *gx = dv_empty_like(x);
    if (dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_resize_bwd(true, r.P, r.H, r.W, r.OH, r.OW, align, gy, gx);
    else if (x->dtype == DV_F64) dv_resize_bilinear_backward_f64_portable(r.P, r.H, r.W, r.OH, r.OW, align, dv_data(gy), dv_data(gx));
    else dv_resize_bilinear_backward_f32_portable(r.P, r.H, r.W, r.OH, r.OW, align, dv_data(gy), dv_data(gx));
    dv_release(gy);
    dv_ag_give(n, 0, gx);
}

dv_tensor *dv_resize_bilinear(dv_tensor *x, int64_t out_h, int64_t out_w, bool align_corners) {
    resize_dims r = resize_check("resize_bilinear", x, out_h, out_w);
    dv_tensor *xc;
    DV_NO_GRAD_BEGIN
    xc = dv_contiguous(x);
    DV_NO_GRAD_END
    dv_tensor *y = empty_out(x, out_h, out_w);
    if (dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_resize(true, r.P, r.H, r.W, r.OH, r.OW, align_corners, xc, y);
    else if (x->dtype == DV_F64) dv_resize_bilinear_f64_portable(r.P, r.H, r.W, r.OH, r.OW, align_corners, dv_data(xc), dv_data(y));
    else dv_resize_bilinear_f32_portable(r.P, r.H, r.W, r.OH, r.OW, align_corners, dv_data(xc), dv_data(y));
    dv_release(xc);
    if (dv_ag_wanted(1, &x)) {
        dv_node *n = dv_ag_record(y, "resize_bilinear", bilinear_backward, 1, &x);
        n->iarg[0] = align_corners;
    }
    return y;
}

/* ---- nearest ---- */

static void nearest_backward(dv_node *n, dv_tensor *gout) {
    resize_dims r = dims_from_node(n);
    const dv_tensor *x = n->in[0];
    dv_tensor *gy = dv_contiguous(gout);
    dv_tensor *gx = dv_empty_like(x);
    if (dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_resize_bwd(false, r.P, r.H, r.W, r.OH, r.OW, 0, gy, gx);
    else if (x->dtype == DV_F64) dv_resize_nearest_backward_f64_portable(r.P, r.H, r.W, r.OH, r.OW, dv_data(gy), dv_data(gx));
    else dv_resize_nearest_backward_f32_portable(r.P, r.H, r.W, r.OH, r.OW, dv_data(gy), dv_data(gx));
    dv_release(gy);
    dv_ag_give(n, 0, gx);
}

dv_tensor *dv_resize_nearest(dv_tensor *x, int64_t out_h, int64_t out_w) {
    resize_dims r = resize_check("resize_nearest", x, out_h, out_w);
    dv_tensor *xc;
    DV_NO_GRAD_BEGIN
    xc = dv_contiguous(x);
    DV_NO_GRAD_END
    dv_tensor *y = empty_out(x, out_h, out_w);
    if (dv_backend_of(x) == DV_BACKEND_CUDA) dv_cuda_resize(false, r.P, r.H, r.W, r.OH, r.OW, 0, xc, y);
    else if (x->dtype == DV_F64) dv_resize_nearest_f64_portable(r.P, r.H, r.W, r.OH, r.OW, dv_data(xc), dv_data(y));
    else dv_resize_nearest_f32_portable(r.P, r.H, r.W, r.OH, r.OW, dv_data(xc), dv_data(y));
    dv_release(xc);
    if (dv_ag_wanted(1, &x)) dv_ag_record(y, "resize_nearest", nearest_backward, 1, &x);
    return y;
}
