/* tensor/ops_conv.c — 2-D convolution as im2col + GEMM, forward and backward.
 *
 *   x (B, Cin, H, W), w (Cout, Cin/G, kh, kw), bias (Cout) or NULL  ->  y (B, Cout, OH, OW)
 *   OH = (H + 2*ph - dh*(kh - 1) - 1) / sh + 1    (likewise OW)
 *
 * For each image b and group g (Cg = Cin/G input and Og = Cout/G output channels, K = Cg*kh*kw,
 * N = OH*OW):
 *
 *   col  (K, N)  = im2col(x[b, g])                      kernels/conv.c
 *   y[b, g] (Og, N) = W_g (Og, K) · col  (+ bias)        kernels/gemm.h
 *
 * and the backward reuses the same pieces:
 *
 *   dW_g (Og, K) += dy[b, g] (Og, N) · col^T            (col recomputed from x, not stored)
 *   dx[b, g]     += col2im(W_g^T (K, Og) · dy[b, g])
 *   dbias        = sum of dy over b, OH, OW
 *
 * A 1x1, stride-1, unpadded convolution (the ResNet bottleneck's 1x1s) needs no im2col: x[b, g]
 * already is the (Cg, H*W) column matrix. Only the gradients an input wants are computed, so a
 * frozen weight (CLIP's ResNet-50) costs no dW GEMM and no im2col in the backward.
 *
 * Threads: large per-image GEMMs thread themselves. When each GEMM is small (grouped or
 * depthwise convs, small images) but there are enough of them, the (b, g) items run in parallel
 * instead, each thread with its own column buffer; the GEMM then stays on its thread (it checks
 * omp_in_parallel). Tiny convolutions run on one thread.
 *
 * stride / padding / dilation may be NULL: (1, 1), (0, 0), (1, 1), as in torch's defaults.
 * Not here: transposed / 1-D / 3-D convolution, padding modes other than zeros.
 */
#include "tensor/autograd.h"
#include "tensor/cuda.h"
#include "tensor/internal.h"
#include "tensor/ops.h"
#include "kernels/conv.h"
#include "kernels/gemm.h"

#ifdef _OPENMP
#include <omp.h>
#endif

enum {
    SMALL_GEMM_FMAS = 1 << 20, /* GEMMs smaller than this run one per thread, over (b, g) items */
    MIN_PARALLEL_FMAS = 1 << 18 /* ... when all items together are at least this much work */
};

typedef struct {
    dv_conv2d_geom g;    /* per group: C = Cg */
    int64_t B, Cin, Cout, G, Og, K, N;
    bool direct;         /* 1x1, stride 1, no padding: col = x */
    dv_dtype dt;
    dv_backend be;
} conv_plan;

/* ---- dispatch of the two kernels the op is made of ---- */

/* C = alpha op(A) op(B) + beta C, in the plan's dtype, on the plan's kernel set */
static void gemm(const conv_plan *p, int ta, int tb, int64_t M, int64_t N, int64_t K, const void *A,
                 int64_t lda, const void *B, int64_t ldb, double beta, void *C, int64_t ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0) { /* an empty sum: C = beta C */
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                if (p->dt == DV_F64) {
                    double *c = (double *)C + i * ldc + j;
                    *c = beta == 0 ? 0 : beta * *c;
                } else {
                    float *c = (float *)C + i * ldc + j;
                    *c = beta == 0 ? 0 : (float)beta * *c;
                }
            }
        return;
    }
    if (p->dt == DV_F64) {
        dv_gemm_f64_portable(ta, tb, M, N, K, 1.0, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#ifndef DV_NO_AVX512
    if (p->be == DV_BACKEND_AVX512) {
        dv_gemm_f32_avx512(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, (float)beta, C, ldc);
        return;
    }
#endif
    dv_gemm_f32_portable(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, (float)beta, C, ldc);
}

static void im2col(const conv_plan *p, const void *x, void *col) {
    if (p->dt == DV_F64) dv_im2col_f64_portable(&p->g, x, col);
    else dv_im2col_f32_portable(&p->g, x, col);
}

static void col2im(const conv_plan *p, const void *col, void *x) {
    if (p->dt == DV_F64) dv_col2im_f64_portable(&p->g, col, x);
    else dv_col2im_f32_portable(&p->g, col, x);
}

/* ---- helpers ---- */

static size_t esize(const conv_plan *p) { return p->dt == DV_F64 ? 8 : 4; }

/* channel c of image b in a contiguous (B, C, plane) buffer */
static void *plane_at(const conv_plan *p, const void *base, int64_t b, int64_t c, int64_t C, int64_t plane) {
    return (char *)base + (size_t)((b * C + c) * plane) * esize(p);
}

/* group g's (Og, K) slice of a contiguous weight (or weight gradient) */
static void *weight_at(const conv_plan *p, const void *w, int64_t g) {
    return (char *)w + (size_t)(g * p->Og * p->K) * esize(p);
}

static int max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* the sizes of a checked call (stride, padding, dilation already defaulted) */
static conv_plan make_plan(const dv_tensor *x, const dv_tensor *w, const int s[2], const int pd[2],
                           const int d[2], int groups) {
    conv_plan p = {0};
    p.B = x->shape[0];
    p.Cin = x->shape[1];
    p.Cout = w->shape[0];
    p.G = groups;
    p.Og = p.Cout / groups;
    p.g = (dv_conv2d_geom){.C = p.Cin / groups, .H = x->shape[2], .W = x->shape[3],
                           .kh = (int)w->shape[2], .kw = (int)w->shape[3], .sh = s[0], .sw = s[1],
                           .ph = pd[0], .pw = pd[1], .dh = d[0], .dw = d[1]};
    p.g.OH = dv_conv2d_out_size(p.g.H, p.g.kh, s[0], pd[0], d[0]);
    p.g.OW = dv_conv2d_out_size(p.g.W, p.g.kw, s[1], pd[1], d[1]);
    p.K = p.g.C * p.g.kh * p.g.kw;
    p.N = p.g.OH * p.g.OW;
    p.direct = p.g.kh == 1 && p.g.kw == 1 && s[0] == 1 && s[1] == 1 && pd[0] == 0 && pd[1] == 0;
    p.dt = x->dtype;
    p.be = dv_backend_of(x);
    return p;
}

/* ---- work items: (b, g) pairs for y and dx, groups for dW ---- */

typedef struct {
    const void *x, *w, *gy; /* contiguous inputs */
    void *y, *dx, *dw;      /* contiguous outputs */
    double beta;            /* forward: 1 when y already holds the bias */
} conv_io;

typedef void (*conv_item_fn)(const conv_plan *p, int64_t item, const conv_io *io, void *col);

/* Runs fn over items 0..n-1, each with a (K, N) column buffer of its own. Small items run in
 * parallel (the GEMM inside then stays on its thread); big ones run in turn, each GEMM using
 * every thread. */
static void run_items(const conv_plan *p, int64_t n, conv_item_fn fn, const conv_io *io) {
    const int64_t fmas = p->Og * p->K * p->N; /* one (b, g) GEMM; every pass does B*G of them */
    bool par = n > 1 && max_threads() > 1 && fmas < SMALL_GEMM_FMAS && p->B * p->G * fmas >= MIN_PARALLEL_FMAS;
    int nt = par ? max_threads() : 1;
    int64_t each = p->direct ? 0 : p->K * p->N * (int64_t)esize(p);
    char *cols = each ? dv_alloc(each * nt) : NULL;
    #pragma omp parallel for schedule(dynamic) num_threads(nt) if (par)
    for (int64_t it = 0; it < n; it++) fn(p, it, io, cols ? cols + each * thread_id() : NULL);
    if (cols) dv_free(cols, each * nt);
}

/* y[b, g] (Og, N) = W_g (Og, K) · im2col(x[b, g]) + beta y[b, g] */
static void forward_item(const conv_plan *p, int64_t item, const conv_io *io, void *col) {
    int64_t b = item / p->G, g = item % p->G;
    const void *xg = plane_at(p, io->x, b, g * p->g.C, p->Cin, p->g.H * p->g.W);
    if (!p->direct) {
        im2col(p, xg, col);
        xg = col;
    }
    gemm(p, 0, 0, p->Og, p->N, p->K, weight_at(p, io->w, g), p->K, xg, p->N, io->beta,
         plane_at(p, io->y, b, g * p->Og, p->Cout, p->N), p->N);
}

/* dx[b, g] += col2im(W_g^T (K, Og) · dy[b, g] (Og, N)); when direct, dx[b, g] is that product */
static void dx_item(const conv_plan *p, int64_t item, const conv_io *io, void *col) {
    int64_t b = item / p->G, g = item % p->G;
    const void *gyg = plane_at(p, io->gy, b, g * p->Og, p->Cout, p->N);
    void *dxg = plane_at(p, io->dx, b, g * p->g.C, p->Cin, p->g.H * p->g.W);
    gemm(p, 1, 0, p->K, p->N, p->Og, weight_at(p, io->w, g), p->K, gyg, p->N, 0.0, p->direct ? dxg : col, p->N);
    if (!p->direct) col2im(p, col, dxg);
}

/* dW_g (Og, K) = sum over b of dy[b, g] (Og, N) · im2col(x[b, g])^T */
static void dw_item(const conv_plan *p, int64_t g, const conv_io *io, void *col) {
    for (int64_t b = 0; b < p->B; b++) {
        const void *xg = plane_at(p, io->x, b, g * p->g.C, p->Cin, p->g.H * p->g.W);
        if (!p->direct) {
            im2col(p, xg, col);
            xg = col;
        }
        const void *gyg = plane_at(p, io->gy, b, g * p->Og, p->Cout, p->N);
        gemm(p, 0, 1, p->Og, p->K, p->N, gyg, p->N, xg, p->N, b == 0 ? 0.0 : 1.0, weight_at(p, io->dw, g), p->K);
    }
}

/* ---- backward ---- */

static void conv2d_backward(dv_node *n, dv_tensor *gout) {
    const int st[2] = {(int)n->iarg[0], (int)n->iarg[1]}, pd[2] = {(int)n->iarg[2], (int)n->iarg[3]};
    const int dl[2] = {(int)n->iarg[4], (int)n->iarg[5]};
    const dv_tensor *x = n->in[0], *w = n->in[1];
    conv_plan p = make_plan(x, w, st, pd, dl, (int)n->iarg[6]);
    dv_tensor *gy = dv_contiguous(gout);
    conv_io io = {.gy = dv_data(gy)};
    if (p.be == DV_BACKEND_CUDA) { /* tensor/cuda.c: the same items on the GPU */
        dv_tensor *db = n->n_in == 3 && dv_ag_input_wants(n, 2) ? dv_empty_on(p.dt, DV_SHAPE(p.Cout), x->device) : NULL;
        dv_tensor *dw = dv_ag_input_wants(n, 1) ? dv_empty_like(w) : NULL, *dx = dv_ag_input_wants(n, 0) ? dv_empty_like(x) : NULL;
        dv_tensor *xc = dv_contiguous(n->in[0]), *wc = dv_contiguous(n->in[1]);
        dv_cuda_conv2d_bwd(&p.g, p.B, p.Cin, p.Cout, p.G, xc, wc, gy, dx, dw, db);
        dv_release(xc), dv_release(wc), dv_release(gy);
        if (db) dv_ag_give(n, 2, db);
        if (dw) dv_ag_give(n, 1, dw);
        if (dx) dv_ag_give(n, 0, dx);
        return;
    }

    if (n->n_in == 3 && dv_ag_input_wants(n, 2)) { /* dbias[c] = sum over b and the plane of dy[b, c] */
        dv_tensor *db = dv_empty(p.dt, DV_SHAPE(p.Cout));
        for (int64_t c = 0; c < p.Cout; c++) {
            double s = 0;
            for (int64_t b = 0; b < p.B; b++) {
                const void *r = plane_at(&p, io.gy, b, c, p.Cout, p.N);
                for (int64_t i = 0; i < p.N; i++) s += p.dt == DV_F64 ? ((const double *)r)[i] : ((const float *)r)[i];
            }
            dv_flat_set(db, c, s);
        }
        dv_ag_give(n, 2, db);
    }
    if (dv_ag_input_wants(n, 1)) { /* the only part that needs x: skipped for a frozen weight */
        dv_tensor *xc = dv_contiguous(n->in[0]);
        dv_tensor *dw = p.B == 0 ? dv_zeros(p.dt, w->shape, 4) : dv_empty(p.dt, w->shape, 4);
        io.x = dv_data(xc);
        io.dw = dv_data(dw);
        run_items(&p, p.G, dw_item, &io);
        dv_release(xc);
        dv_ag_give(n, 1, dw);
    }
    if (dv_ag_input_wants(n, 0)) {
        dv_tensor *wc = dv_contiguous(n->in[1]);
        dv_tensor *dx = p.direct ? dv_empty(p.dt, x->shape, 4) : dv_zeros(p.dt, x->shape, 4);
        io.w = dv_data(wc);
        io.dx = dv_data(dx);
        run_items(&p, p.B * p.G, dx_item, &io);
        dv_release(wc);
        dv_ag_give(n, 0, dx);
    }
    dv_release(gy);
}

/* ---- the op ---- */

dv_tensor *dv_conv2d(dv_tensor *x, dv_tensor *w, dv_tensor *bias, const int stride[2],
                     const int padding[2], const int dilation[2], int groups) {
    const char *op = "conv2d";
    dv_check_float(op, x);
    dv_require_kernel(op, x);
    dv_check_same_device(op, x, w);
    if (x->ndim != 4) dv_panic("conv2d: x must be (B, Cin, H, W), got %s", dv_shape_str(x, NULL, 0));
    if (w->ndim != 4) dv_panic("conv2d: w must be (Cout, Cin/groups, kh, kw), got %s", dv_shape_str(w, NULL, 0));
    if (w->dtype != x->dtype)
        dv_panic("conv2d: x is %s but w is %s (x %s, w %s)", dv_dtype_name(x->dtype), dv_dtype_name(w->dtype),
                 dv_shape_str(x, NULL, 0), dv_shape_str(w, NULL, 0));
    int s[2] = {1, 1}, pd[2] = {0, 0}, d[2] = {1, 1};
    for (int i = 0; i < 2; i++) {
        if (stride) s[i] = stride[i];
        if (padding) pd[i] = padding[i];
        if (dilation) d[i] = dilation[i];
    }
    if (s[0] < 1 || s[1] < 1 || pd[0] < 0 || pd[1] < 0 || d[0] < 1 || d[1] < 1 || groups < 1)
        dv_panic("conv2d: bad stride (%d, %d), padding (%d, %d), dilation (%d, %d) or groups %d",
                 s[0], s[1], pd[0], pd[1], d[0], d[1], groups);
    const int64_t Cin = x->shape[1], Cout = w->shape[0];
    if (Cin % groups || Cout % groups || w->shape[1] != Cin / groups)
        dv_panic("conv2d: x %s and w %s do not fit groups = %d (need Cin %% groups == 0, Cout %% groups == 0, "
                 "w.shape[1] == Cin / groups)", dv_shape_str(x, NULL, 0), dv_shape_str(w, NULL, 0), groups);
    if (w->shape[2] < 1 || w->shape[3] < 1)
        dv_panic("conv2d: empty kernel in w %s", dv_shape_str(w, NULL, 0));
    if (bias) {
        dv_check_same_device(op, x, bias);
        if (bias->ndim != 1 || bias->shape[0] != Cout || bias->dtype != x->dtype)
            dv_panic("conv2d: bias must be (%lld) %s like w %s, got %s %s", (long long)Cout, dv_dtype_name(x->dtype),
                     dv_shape_str(w, NULL, 0), dv_shape_str(bias, NULL, 0), dv_dtype_name(bias->dtype));
    }
    if (dv_conv2d_out_size(x->shape[2], (int)w->shape[2], s[0], pd[0], d[0]) < 0 ||
        dv_conv2d_out_size(x->shape[3], (int)w->shape[3], s[1], pd[1], d[1]) < 0)
        dv_panic("conv2d: kernel %s (dilation (%d, %d)) does not fit the padded input %s (padding (%d, %d))",
                 dv_shape_str(w, NULL, 0), d[0], d[1], dv_shape_str(x, NULL, 0), pd[0], pd[1]);

    conv_plan p = make_plan(x, w, s, pd, d, groups);

    dv_tensor *xc, *wc, *bc = NULL;
    DV_NO_GRAD_BEGIN
    xc = dv_contiguous(x);
    wc = dv_contiguous(w);
    if (bias) bc = dv_contiguous(bias);
    DV_NO_GRAD_END
    dv_tensor *y = dv_empty_on(x->dtype, DV_SHAPE(p.B, Cout, p.g.OH, p.g.OW), x->device);
    conv_io io = {.x = dv_data(xc), .w = dv_data(wc), .y = dv_data(y)};
    if (p.be == DV_BACKEND_CUDA) {
        dv_cuda_conv2d(&p.g, p.B, Cin, Cout, groups, xc, wc, bc, y);
    } else if (bc) { /* y starts as the bias and the GEMMs add onto it */
        for (int64_t b = 0; b < p.B; b++)
            for (int64_t c = 0; c < Cout; c++) {
                void *r = plane_at(&p, io.y, b, c, Cout, p.N);
                double v = dv_flat_get(bc, c);
                for (int64_t i = 0; i < p.N; i++) {
                    if (p.dt == DV_F64) ((double *)r)[i] = v;
                    else ((float *)r)[i] = (float)v;
                }
            }
        io.beta = 1.0;
    }
    if (p.be != DV_BACKEND_CUDA) run_items(&p, p.B * p.G, forward_item, &io);
    dv_release(xc);
    dv_release(wc);
    dv_release(bc);

    dv_tensor *ins[3] = {x, w, bias};
    int nin = bias ? 3 : 2;
    if (dv_ag_wanted(nin, ins)) {
        dv_node *n = dv_ag_record(y, op, conv2d_backward, nin, ins);
        n->iarg[0] = s[0]; n->iarg[1] = s[1];
        n->iarg[2] = pd[0]; n->iarg[3] = pd[1];
        n->iarg[4] = d[0]; n->iarg[5] = d[1];
        n->iarg[6] = groups;
    }
    return y;
}
