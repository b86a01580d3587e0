/* optim/ema.c — exponential moving average of the weights (Polyak averaging), the diffusion
 * policy's evaluation weights. After each optimiser step:
 *
 *   shadow <- shadow - (1 - decay) * (shadow - param)         (diffusers EMAModel.step's form)
 *
 * with a fixed decay (no warm-up schedule of the decay). For evaluation the averages are
 * swapped into the live parameter tensors — the model keeps pointing at the same tensors — and
 * swapped back before training goes on. Swapping exchanges contents in place: no extra memory.
 */
#include "optim/internal.h"
#include "tensor/cuda.h"
#include "tensor/internal.h"

#include <stdlib.h>

dv_ema *dv_ema_new(const dv_params *ps, double decay) {
    DV_ASSERT(decay >= 0 && decay <= 1, "ema: decay %g must be in [0, 1]", decay);
    dv_ema *e = calloc(1, sizeof *e);
    if (!e) dv_panic("dv_ema_new: out of memory");
    e->decay = decay;
    e->shadow = dv_optim_realloc(NULL, sizeof(dv_tensor *) * (size_t)ps->n);
    e->state_names = dv_optim_realloc(NULL, sizeof(char *) * (size_t)ps->n);
    for (int i = 0; i < ps->n; i++) {
        dv_optim_check_param("ema", ps->names[i], ps->tensors[i]);
        dv_params_add(&e->params, ps->names[i], ps->tensors[i]);
        DV_NO_GRAD_BEGIN
        e->shadow[i] = dv_clone(ps->tensors[i]); /* a plain tensor: no graph, no grad */
        DV_NO_GRAD_END
        e->state_names[i] = dv_optim_state_name("ema", ps->names[i], NULL);
    }
    return e;
}

void dv_ema_free(dv_ema *e) {
    if (!e) return;
    for (int i = 0; i < e->params.n; i++) {
        dv_release(e->shadow[i]);
        free(e->state_names[i]);
    }
    free(e->shadow), free(e->state_names);
    dv_params_free(&e->params);
    free(e);
}

void dv_ema_update(dv_ema *e) {
    DV_ASSERT(!e->swapped, "ema_update: the averaged weights are swapped in; swap them out first");
    double a = 1.0 - e->decay;
    for (int k = 0; k < e->params.n; k++) {
        dv_tensor *p = e->params.tensors[k], *s = e->shadow[k];
        if (dv_backend_of(p) == DV_BACKEND_CUDA) { /* kernels/cuda/optim.cu, the same arithmetic */
            dv_cuda_ema(s, p, a);
            continue;
        }
        int64_t n = dv_numel(p);
        if (p->dtype == DV_F32) {
            float *x = dv_data(p), *y = dv_data(s), af = (float)a;
            #pragma omp parallel for schedule(static) if (n > (1 << 16))
            for (int64_t i = 0; i < n; i++) y[i] -= af * (y[i] - x[i]);
        } else {
            double *x = dv_data(p), *y = dv_data(s);
            #pragma omp parallel for schedule(static) if (n > (1 << 16))
            for (int64_t i = 0; i < n; i++) y[i] -= a * (y[i] - x[i]);
        }
    }
}

/* exchange the bytes of every parameter and its shadow */
static void swap_all(dv_ema *e) {
    for (int k = 0; k < e->params.n; k++) {
        dv_tensor *p = e->params.tensors[k];
        if (dv_backend_of(p) == DV_BACKEND_CUDA) {
            dv_cuda_swap_(p, e->shadow[k]);
            continue;
        }
        dv_require_cpu("ema_swap", p);
        unsigned char *x = dv_data(p), *y = dv_data(e->shadow[k]);
        int64_t nbytes = dv_numel(p) * (int64_t)dv_dtype_size(p->dtype);
        #pragma omp parallel for schedule(static) if (nbytes > (1 << 18))
        for (int64_t i = 0; i < nbytes; i++) {
            unsigned char t = x[i];
            x[i] = y[i];
            y[i] = t;
        }
    }
}

void dv_ema_swap_in(dv_ema *e) {
    DV_ASSERT(!e->swapped, "ema_swap_in: the averaged weights are already swapped in");
    swap_all(e);
    e->swapped = true;
}

void dv_ema_swap_out(dv_ema *e) {
    DV_ASSERT(e->swapped, "ema_swap_out: the averaged weights are not swapped in");
    swap_all(e);
    e->swapped = false;
}

int dv_ema_state(dv_ema *e, const char *const **names, dv_tensor *const **tensors) {
    DV_ASSERT(!e->swapped, "ema_state: the averaged weights are swapped in; swap them out first");
    *names = (const char *const *)e->state_names;
    *tensors = e->shadow;
    return e->params.n;
}
