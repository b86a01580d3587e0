/* optim/clip.c — global-norm gradient clipping, as torch.nn.utils.clip_grad_norm_ (L2):
 *
 *   total = sqrt(sum over parameters with a gradient of sum(g^2))
 *   coef  = max_norm / (total + 1e-6);   if coef < 1: every g *= coef
 *
 * Sums run in f64 for both f32 and f64 gradients. The gradients are contiguous leaf
 * buffers (the tensor core accumulates them so); other layouts are handled through a copy.
 */
#include "optim/internal.h"
#include "tensor/cuda.h"
#include "tensor/internal.h"

#include <math.h>
#include <stdlib.h>

static double sum_squares(const dv_tensor *g) {
    dv_require_cpu("clip_grad_norm", g);
    int64_t n = dv_numel(g);
    double s = 0;
    if (g->dtype == DV_F32) {
        const float *x = dv_data(g);
        #pragma omp parallel for reduction(+ : s) schedule(static) if (n > (1 << 16))
        for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    } else {
        const double *x = dv_data(g);
        #pragma omp parallel for reduction(+ : s) schedule(static) if (n > (1 << 16))
        for (int64_t i = 0; i < n; i++) s += x[i] * x[i];
    }
    return s;
}

static void scale_in_place(dv_tensor *g, double coef) {
    if (dv_backend_of(g) == DV_BACKEND_CUDA) {
        dv_cuda_mul_scalar_(g, coef);
        return;
    }
    dv_require_cpu("clip_grad_norm", g);
    int64_t n = dv_numel(g);
    if (g->dtype == DV_F32) {
        float *x = dv_data(g), c = (float)coef;
        #pragma omp parallel for schedule(static) if (n > (1 << 16))
        for (int64_t i = 0; i < n; i++) x[i] *= c;
    } else {
        double *x = dv_data(g);
        #pragma omp parallel for schedule(static) if (n > (1 << 16))
        for (int64_t i = 0; i < n; i++) x[i] *= coef;
    }
}

double dv_grad_norm(const dv_params *ps) {
    /* per-parameter sums, added in parameter order; those of CUDA gradients are computed
     * together (dv_cuda_sum_squares_batch: one wait per device, not one per parameter) */
    size_t cap = (size_t)(ps->n > 0 ? ps->n : 1);
    double *part = dv_optim_realloc(NULL, sizeof(double) * cap), *dpart = dv_optim_realloc(NULL, sizeof(double) * cap);
    dv_tensor **dg = dv_optim_realloc(NULL, sizeof(dv_tensor *) * cap);
    int *di = dv_optim_realloc(NULL, sizeof(int) * cap), nd = 0;
    for (int i = 0; i < ps->n; i++) {
        part[i] = 0;
        dv_tensor *g = dv_optim_grad("grad_norm", ps->names[i], ps->tensors[i]);
        if (!g) continue;
        if (dv_backend_of(g) == DV_BACKEND_CUDA) {
            di[nd] = i, dg[nd++] = g; /* released below */
            continue;
        }
        part[i] = sum_squares(g);
        dv_release(g);
    }
    if (nd > 0) dv_cuda_sum_squares_batch(dg, nd, dpart);
    for (int k = 0; k < nd; k++) part[di[k]] = dpart[k], dv_release(dg[k]);
    double s = 0;
    for (int i = 0; i < ps->n; i++) s += part[i];
    free(part), free(dpart), free(dg), free(di);
    return sqrt(s);
}

double dv_clip_grad_norm(const dv_params *ps, double max_norm) {
    double total = dv_grad_norm(ps);
    double coef = max_norm / (total + 1e-6);
    if (!(coef < 1.0) && !isnan(coef)) return total; /* nothing to clip */
    for (int i = 0; i < ps->n; i++) {
        dv_tensor *p = ps->tensors[i];
        if (!p->grad) continue;
        dv_check_float("clip_grad_norm", p->grad);
        if (dv_is_contiguous(p->grad)) {
            scale_in_place(p->grad, coef);
        } else { /* scale a contiguous copy and write it back */
            dv_tensor *g = dv_contiguous(p->grad);
            scale_in_place(g, coef);
            dv_copy_(p->grad, g);
            dv_release(g);
        }
    }
    return total;
}
