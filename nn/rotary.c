/* nn/rotary.c — RoPE (LLaMA rotate-half and interleaved pairs) and 3D Diffuser Actor's 3-D
 * rotary encoding; see nn/rotary.h. The rotation is one fused kernel (kernels/rotary.c) for
 * both; its backward is the transposed rotation (the same kernel with transpose = 1). */
#include "nn/rotary.h"

#include <math.h>
#include <stdlib.h>

#include "kernels/rotary.h"
#include "tensor/autograd.h"
#include "tensor/cuda.h"
#include "tensor/internal.h"

static void rotary_kernel(const dv_tensor *x, const dv_tensor *c, const dv_tensor *s, dv_tensor *y,
                          int64_t B, int64_t H, int64_t T, int64_t D, int64_t rot, int inter, int transpose,
                          int64_t tab_b) {
    if (dv_backend_of(x) == DV_BACKEND_CUDA)
        dv_cuda_rotary(B, H, T, D, rot, inter, transpose, x, c, s, tab_b, y);
    else if (x->dtype == DV_F64)
        dv_rotary_f64_portable(B, H, T, D, rot, inter, transpose, dv_data(x), dv_data(c), dv_data(s), tab_b, dv_data(y));
#ifndef DV_NO_AVX512
    else if (dv_backend_of(x) == DV_BACKEND_AVX512)
        dv_rotary_f32_avx512(B, H, T, D, rot, inter, transpose, dv_data(x), dv_data(c), dv_data(s), tab_b, dv_data(y));
#endif
    else
        dv_rotary_f32_portable(B, H, T, D, rot, inter, transpose, dv_data(x), dv_data(c), dv_data(s), tab_b, dv_data(y));
}

/* iarg: B, H, T, D, rot, interleaved, tab_bstride; saved: cos, sin (contiguous) */
static void rotary_backward(dv_node *n, dv_tensor *g) {
    if (!dv_ag_input_wants(n, 0)) return;
    const int64_t *a = n->iarg;
    dv_tensor *gc = dv_contiguous(g);
    dv_tensor *gx = dv_empty_like(gc);
    rotary_kernel(gc, n->saved[0], n->saved[1], gx, a[0], a[1], a[2], a[3], a[4], (int)a[5], 1, a[6]);
    dv_release(gc);
    dv_ag_give(n, 0, gx);
}

static dv_tensor *rotary_apply_named(const char *op, dv_tensor *x, dv_tensor *cos, dv_tensor *sin, bool interleaved) {
    dv_check_float(op, x);
    dv_require_kernel(op, x);
    dv_check_same_device(op, x, cos);
    dv_check_same_device(op, x, sin);
    dv_check_dtype(op, cos, x->dtype);
    dv_check_dtype(op, sin, x->dtype);
    dv_check_same_shape(op, cos, sin);
    DV_ASSERT(x->ndim == 3 || x->ndim == 4, "%s: x must be (B, H, T, D) or (B, T, D), got %s", op, dv_shape_str(x, NULL, 0));
    int64_t B = x->shape[0], H = x->ndim == 4 ? x->shape[1] : 1, T = x->shape[x->ndim - 2], D = x->shape[x->ndim - 1];
    DV_ASSERT(cos->ndim == 2 || cos->ndim == 3, "%s: tables must be (T, rot) or (B, T, rot), got %s", op, dv_shape_str(cos, NULL, 0));
    int64_t rot = cos->shape[cos->ndim - 1], TB = cos->ndim == 3 ? cos->shape[0] : 1;
    DV_ASSERT(cos->shape[cos->ndim - 2] == T && rot % 2 == 0 && rot <= D && (TB == B || TB == 1),
              "%s: tables %s do not fit x %s (need T rows, an even rot <= D, batch B or 1)", op,
              dv_shape_str(cos, NULL, 0), dv_shape_str(x, NULL, 0));
    int64_t tab_b = TB == 1 ? 0 : T * rot;
    dv_tensor *xc, *cc, *sc;
    DV_NO_GRAD_BEGIN
    xc = dv_contiguous(x);
    cc = dv_contiguous(cos);
    sc = dv_contiguous(sin);
    DV_NO_GRAD_END
    dv_tensor *y = dv_empty_on(x->dtype, x->shape, x->ndim, x->device);
    rotary_kernel(xc, cc, sc, y, B, H, T, D, rot, interleaved, 0, tab_b);
    if (dv_ag_wanted(1, &x)) {
        dv_node *n = dv_ag_record(y, op, rotary_backward, 1, &x);
        int64_t a[7] = {B, H, T, D, rot, interleaved, tab_b};
        for (int i = 0; i < 7; i++) n->iarg[i] = a[i];
        dv_node_save(n, cc);
        dv_node_save(n, sc);
    }
    dv_release(xc);
    dv_release(cc);
    dv_release(sc);
    return y;
}

dv_tensor *dv_rotary_apply(dv_tensor *x, dv_tensor *cos, dv_tensor *sin, bool interleaved) {
    return rotary_apply_named("rotary_apply", x, cos, sin, interleaved);
}

void dv_rope_tables(dv_tensor *pos, int64_t rot, double theta, dv_rope_style style, dv_dtype dt,
                    dv_tensor **cos_out, dv_tensor **sin_out) {
    DV_ASSERT(pos->ndim == 1 || pos->ndim == 2, "rope: positions must be (T) or (B, T), got %s", dv_shape_str(pos, NULL, 0));
    DV_ASSERT(rot >= 0 && rot % 2 == 0, "rope: rot_dim %lld must be even", (long long)rot);
    int64_t np = dv_numel(pos), half = rot / 2;
    double *p = malloc((size_t)(np > 0 ? np : 1) * sizeof(double));
    double *c = malloc((size_t)(np * rot > 0 ? np * rot : 1) * sizeof(double));
    double *s = malloc((size_t)(np * rot > 0 ? np * rot : 1) * sizeof(double));
    DV_ASSERT(p && c && s, "rope: out of memory");
    dv_to_f64(pos, p);
    for (int64_t i = 0; i < np; i++)
        for (int64_t k = 0; k < half; k++) {
            double a = p[i] * pow(theta, -2.0 * (double)k / (double)rot), ca = cos(a), sa = sin(a);
            int64_t j0 = style == DV_ROPE_HALF ? k : 2 * k, j1 = style == DV_ROPE_HALF ? k + half : 2 * k + 1;
            c[i * rot + j0] = c[i * rot + j1] = ca;
            s[i * rot + j0] = s[i * rot + j1] = sa;
        }
    int64_t shape[3];
    for (int d = 0; d < pos->ndim; d++) shape[d] = pos->shape[d];
    shape[pos->ndim] = rot;
    *cos_out = dv_from_f64(dt, shape, pos->ndim + 1, c);
    *sin_out = dv_from_f64(dt, shape, pos->ndim + 1, s);
    free(p);
    free(c);
    free(s);
}

dv_tensor *dv_rope(dv_tensor *x, dv_tensor *pos, double theta, int64_t rot_dim, dv_rope_style style) {
    dv_check_float("rope", x);
    DV_ASSERT(x->ndim == 3 || x->ndim == 4, "rope: x must be (B, H, T, D) or (B, T, D), got %s", dv_shape_str(x, NULL, 0));
    DV_ASSERT(pos->shape[pos->ndim - 1] == x->shape[x->ndim - 2],
              "rope: positions %s do not match the T of x %s", dv_shape_str(pos, NULL, 0), dv_shape_str(x, NULL, 0));
    dv_tensor *c, *s;
    dv_rope_tables(pos, rot_dim, theta, style, x->dtype, &c, &s);
    if (x->device.type != DV_CPU) dv_tensor_move_(c, x->device), dv_tensor_move_(s, x->device);
    dv_tensor *y = rotary_apply_named("rope", x, c, s, style == DV_ROPE_INTERLEAVED);
    dv_release(c);
    dv_release(s);
    return y;
}

dv_tensor *dv_rotary3d_features(dv_tensor *xyz, int64_t D) {
    dv_check_float("rotary3d_features", xyz);
    DV_ASSERT(xyz->ndim == 3 && xyz->shape[2] == 3, "rotary3d_features: xyz must be (B, N, 3), got %s", dv_shape_str(xyz, NULL, 0));
    DV_ASSERT(D > 0 && D % 6 == 0, "rotary3d_features: D = %lld must be a multiple of 6", (long long)D);
    int64_t B = xyz->shape[0], N = xyz->shape[1], da = D / 3, np = B * N;
    double *p = malloc((size_t)(np > 0 ? 3 * np : 1) * sizeof(double));
    double *f = malloc((size_t)(np > 0 ? np * D * 2 : 1) * sizeof(double));
    DV_ASSERT(p && f, "rotary3d_features: out of memory");
    dv_to_f64(xyz, p);
    for (int64_t i = 0; i < np; i++)
        for (int ax = 0; ax < 3; ax++)
            for (int64_t k = 0; k < da / 2; k++) {
                double div = exp((double)(2 * k) * -(log(10000.0) / (double)da)), a = p[3 * i + ax] * div;
                for (int64_t e = 0; e < 2; e++) {
                    int64_t ch = ax * da + 2 * k + e;
                    f[(i * D + ch) * 2 + 0] = cos(a);
                    f[(i * D + ch) * 2 + 1] = sin(a);
                }
            }
    dv_tensor *pe = dv_from_f64(xyz->dtype, DV_SHAPE(B, N, D, 2), f);
    free(p);
    free(f);
    return pe;
}

dv_tensor *dv_rotary3d_apply(dv_tensor *x, dv_tensor *pe) {
    DV_ASSERT(pe->ndim == 4 && pe->shape[3] == 2, "rotary3d_apply: pe must be (B, N, D, 2), got %s", dv_shape_str(pe, NULL, 0));
    DV_ASSERT(x->ndim >= 3 && x->shape[x->ndim - 1] == pe->shape[2],
              "rotary3d_apply: x %s and pe %s differ in D", dv_shape_str(x, NULL, 0), dv_shape_str(pe, NULL, 0));
    dv_tensor *c, *s;
    DV_NO_GRAD_BEGIN
    c = dv_select(pe, 3, 0);
    s = dv_select(pe, 3, 1);
    DV_NO_GRAD_END
    dv_tensor *y = rotary_apply_named("rotary3d_apply", x, c, s, true);
    dv_release(c);
    dv_release(s);
    return y;
}
