/* optim/adamw.c — AdamW with parameter groups (Loshchilov & Hutter, "Decoupled Weight Decay
 * Regularization", ICLR 2019, Algorithm 2), as torch.optim.AdamW.
 *
 * Each parameter carries exp_avg (m), exp_avg_sq (v) and its own step count t; a step calls the
 * fused kernel (kernels/adamw.h) once per parameter that has a gradient, which reads p, g, m, v
 * and writes p, m, v — and the parameter's f16/bf16 copy, when one is registered — in one pass.
 */
#include "optim/internal.h"

#include "kernels/adamw.h"
#include "tensor/cuda.h"
#include "tensor/internal.h"
#ifdef DV_HAVE_CUDA
#include "kernels/cuda/kernels.h"
#endif

#include <stdlib.h>
#include <string.h>

dv_adamw_config dv_adamw_config_default(void) {
    return (dv_adamw_config){.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01};
}

dv_adamw *dv_adamw_new(void) {
    dv_adamw *o = calloc(1, sizeof *o);
    if (!o) dv_panic("dv_adamw_new: out of memory");
    return o;
}

void dv_adamw_free(dv_adamw *o) {
    if (!o) return;
    for (int i = 0; i < o->params.n; i++) {
        dv_release(o->exp_avg[i]);
        dv_release(o->exp_avg_sq[i]);
        dv_release(o->step[i]);
        dv_release(o->copy[i]);
    }
    for (int i = 0; i < 3 * o->params.n; i++) free(o->state_names[i]);
    free(o->exp_avg), free(o->exp_avg_sq), free(o->step), free(o->copy);
    free(o->state_names), free(o->state_tensors);
    free(o->groups);
    dv_params_free(&o->params);
    free(o);
}

int dv_adamw_add_group(dv_adamw *o, const dv_params *ps, dv_adamw_config cfg) {
    DV_ASSERT(cfg.lr >= 0 && cfg.eps >= 0 && cfg.weight_decay >= 0,
              "adamw: bad group config lr %g eps %g weight_decay %g", cfg.lr, cfg.eps, cfg.weight_decay);
    DV_ASSERT(cfg.beta1 >= 0 && cfg.beta1 < 1 && cfg.beta2 >= 0 && cfg.beta2 < 1,
              "adamw: betas (%g, %g) must be in [0, 1)", cfg.beta1, cfg.beta2);
    int first = o->params.n;
    for (int i = 0; i < ps->n; i++) {
        dv_optim_check_param("adamw", ps->names[i], ps->tensors[i]);
        DV_ASSERT(dv_params_find(&o->params, ps->tensors[i]) < 0,
                  "adamw: parameter '%s' is already in a group", ps->names[i]);
        dv_params_add(&o->params, ps->names[i], ps->tensors[i]);
    }
    int n = o->params.n;
    o->groups = dv_optim_realloc(o->groups, sizeof *o->groups * (size_t)(o->ngroups + 1));
    o->groups[o->ngroups] = (dv_adamw_group){cfg, first, ps->n};
    o->exp_avg = dv_optim_realloc(o->exp_avg, sizeof(dv_tensor *) * (size_t)n);
    o->exp_avg_sq = dv_optim_realloc(o->exp_avg_sq, sizeof(dv_tensor *) * (size_t)n);
    o->step = dv_optim_realloc(o->step, sizeof(dv_tensor *) * (size_t)n);
    o->copy = dv_optim_realloc(o->copy, sizeof(dv_tensor *) * (size_t)n);
    o->state_names = dv_optim_realloc(o->state_names, sizeof(char *) * (size_t)(3 * n));
    o->state_tensors = dv_optim_realloc(o->state_tensors, sizeof(dv_tensor *) * (size_t)(3 * n));
    for (int i = first; i < n; i++) {
        dv_tensor *p = o->params.tensors[i];
        const char *name = o->params.names[i];
        o->exp_avg[i] = dv_zeros_like(p);
        o->exp_avg_sq[i] = dv_zeros_like(p);
        o->step[i] = dv_scalar(DV_I64, 0);
        o->copy[i] = NULL;
        o->state_names[3 * i + 0] = dv_optim_state_name("adamw", name, "exp_avg");
        o->state_names[3 * i + 1] = dv_optim_state_name("adamw", name, "exp_avg_sq");
        o->state_names[3 * i + 2] = dv_optim_state_name("adamw", name, "step");
        o->state_tensors[3 * i + 0] = o->exp_avg[i];
        o->state_tensors[3 * i + 1] = o->exp_avg_sq[i];
        o->state_tensors[3 * i + 2] = o->step[i];
    }
    return o->ngroups++;
}

void dv_adamw_set_copy(dv_adamw *o, dv_tensor *param, dv_tensor *copy) {
    int i = dv_params_find(&o->params, param);
    DV_ASSERT(i >= 0, "adamw_set_copy: %s is not a parameter of this optimiser", dv_shape_str(param, NULL, 0));
    const char *name = o->params.names[i];
    DV_ASSERT(param->dtype == DV_F32, "adamw_set_copy: '%s' is %s; copies are of f32 master weights",
              name, dv_dtype_name(param->dtype));
    DV_ASSERT(copy->dtype == DV_F16 || copy->dtype == DV_BF16, "adamw_set_copy: copy of '%s' is %s, not f16/bf16",
              name, dv_dtype_name(copy->dtype));
    DV_ASSERT(dv_numel(copy) == dv_numel(param) && dv_is_contiguous(copy) && copy->device.type == param->device.type &&
                  copy->device.index == param->device.index,
              "adamw_set_copy: copy %s of '%s' %s must be a contiguous tensor of the same size on the same device",
              dv_shape_str(copy, NULL, 0), name, dv_shape_str(param, NULL, 0));
    dv_release(o->copy[i]);
    o->copy[i] = dv_retain(copy);
    /* bring the copy up to date now: dv_copy_ casts with the same round-to-nearest-even */
    DV_NO_GRAD_BEGIN
    dv_tensor *same_shape = dv_view(copy, param->shape, param->ndim);
    dv_copy_(same_shape, param);
    dv_release(same_shape);
    DV_NO_GRAD_END
}

/* one parameter: pick the kernel by dtype and CPU */
static void update_one(dv_adamw *o, int i, const dv_adamw_coefs *c, dv_tensor *g) {
    dv_tensor *p = o->params.tensors[i];
    int64_t n = dv_numel(p);
    if (p->dtype == DV_F64) {
        dv_require_cpu("adamw (f64)", p);
        dv_adamw_f64_portable(n, dv_data(p), dv_data(g), dv_data(o->exp_avg[i]), dv_data(o->exp_avg_sq[i]), c);
        return;
    }
    dv_tensor *cp = o->copy[i];
    dv_adamw_copy kind = !cp ? DV_ADAMW_COPY_NONE : cp->dtype == DV_F16 ? DV_ADAMW_COPY_F16 : DV_ADAMW_COPY_BF16;
    uint16_t *cdata = cp ? dv_data(cp) : NULL;
    if (dv_backend_of(p) == DV_BACKEND_CUDA) {
#ifdef DV_HAVE_CUDA
        DV_ASSERT(g->device.type == DV_CUDA && o->exp_avg[i]->device.type == DV_CUDA,
                  "adamw: parameter '%s' is on %s but its gradient or state is not", o->params.names[i],
                  dv_device_str(p->device));
        dv_cuda_check(dv_cu_adamw_f32(n, dv_data(p), dv_data(g), dv_data(o->exp_avg[i]), dv_data(o->exp_avg_sq[i]), c,
                                      kind, cdata, dv_cuda_stream_of(p)),
                      "adamw (cuda)");
        return;
#endif
    }
#ifndef DV_NO_AVX512
    if (dv_backend_of(p) == DV_BACKEND_AVX512) {
        dv_adamw_f32_avx512(n, dv_data(p), dv_data(g), dv_data(o->exp_avg[i]), dv_data(o->exp_avg_sq[i]), c,
                            kind, cdata);
        return;
    }
#endif
    dv_adamw_f32_portable(n, dv_data(p), dv_data(g), dv_data(o->exp_avg[i]), dv_data(o->exp_avg_sq[i]), c,
                          kind, cdata);
}

void dv_adamw_step(dv_adamw *o, double lr_scale) {
    for (int gi = 0; gi < o->ngroups; gi++) {
        const dv_adamw_group *grp = &o->groups[gi];
        const dv_adamw_config *cfg = &grp->cfg;
        double lr = cfg->lr * lr_scale;
        for (int i = grp->first; i < grp->first + grp->count; i++) {
            dv_tensor *g = dv_optim_grad("adamw", o->params.names[i], o->params.tensors[i]);
            if (!g) continue; /* no gradient this step: skipped entirely, as in torch */
            DV_ASSERT(o->step[i]->device.type == DV_CPU, "adamw: the step counter of '%s' is on %s; the counters "
                      "stay on the host (move the parameters and the other state only)", o->params.names[i],
                      dv_device_str(o->step[i]->device));
            int64_t *t = dv_data(o->step[i]);
            *t += 1;
            dv_adamw_coefs c = dv_adamw_coefs_at(lr, cfg->beta1, cfg->beta2, cfg->eps, cfg->weight_decay, *t);
            update_one(o, i, &c, g);
            dv_release(g);
        }
    }
}

int dv_adamw_state(dv_adamw *o, const char *const **names, dv_tensor *const **tensors) {
    *names = (const char *const *)o->state_names;
    *tensors = o->state_tensors;
    return 3 * o->params.n;
}
