/* optim/sgd.c — stochastic gradient descent with momentum, as torch.optim.SGD:
 *
 *   d   = g + weight_decay * p                          (coupled weight decay)
 *   buf = d                                  at the parameter's first update,
 *   buf = momentum * buf + (1 - dampening) * d          after it
 *   d   = d + momentum * buf   (nesterov)   or   d = buf
 *   p   = p - lr * d
 *
 * (without momentum: p = p - lr * d). The update is small and rarely hot — the policy trains
 * with AdamW — so its loops live here rather than in kernels/: plain C over contiguous data,
 * f32 and f64, split by OpenMP when large.
 */
#include "optim/internal.h"
#include "tensor/cuda.h"
#include "tensor/internal.h"

#include <stdlib.h>

typedef struct {
    double lr, momentum, dampening, weight_decay;
    bool nesterov, use_momentum, first; /* first: the buffer starts as d */
} sgd_args;

static void sgd_f32(int64_t n, float *p, const float *g, float *buf, const sgd_args *a) {
    const float lr = (float)a->lr, wd = (float)a->weight_decay, mom = (float)a->momentum;
    const float omd = (float)(1.0 - a->dampening);
    #pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; i++) {
        float d = g[i];
        if (a->weight_decay != 0) d = d + wd * p[i];
        if (a->use_momentum) {
            float b = a->first ? d : mom * buf[i] + omd * d;
            buf[i] = b;
            d = a->nesterov ? d + mom * b : b;
        }
        p[i] = p[i] - lr * d;
    }
}

static void sgd_f64(int64_t n, double *p, const double *g, double *buf, const sgd_args *a) {
    const double lr = a->lr, wd = a->weight_decay, mom = a->momentum, omd = 1.0 - a->dampening;
    #pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t i = 0; i < n; i++) {
        double d = g[i];
        if (wd != 0) d = d + wd * p[i];
        if (a->use_momentum) {
            double b = a->first ? d : mom * buf[i] + omd * d;
            buf[i] = b;
            d = a->nesterov ? d + mom * b : b;
        }
        p[i] = p[i] - lr * d;
    }
}

dv_sgd_config dv_sgd_config_default(double lr) {
    return (dv_sgd_config){.lr = lr, .momentum = 0, .dampening = 0, .weight_decay = 0, .nesterov = false};
}

dv_sgd *dv_sgd_new(void) {
    dv_sgd *o = calloc(1, sizeof *o);
    if (!o) dv_panic("dv_sgd_new: out of memory");
    return o;
}

void dv_sgd_free(dv_sgd *o) {
    if (!o) return;
    for (int i = 0; i < o->params.n; i++) {
        dv_release(o->momentum_buffer[i]);
        dv_release(o->step[i]);
    }
    for (int i = 0; i < o->nstate; i++) free(o->state_names[i]);
    free(o->momentum_buffer), free(o->step), free(o->state_names), free(o->state_tensors);
    free(o->groups);
    dv_params_free(&o->params);
    free(o);
}

int dv_sgd_add_group(dv_sgd *o, const dv_params *ps, dv_sgd_config cfg) {
    DV_ASSERT(cfg.lr >= 0 && cfg.momentum >= 0 && cfg.weight_decay >= 0,
              "sgd: bad group config lr %g momentum %g weight_decay %g", cfg.lr, cfg.momentum, cfg.weight_decay);
    DV_ASSERT(!cfg.nesterov || (cfg.momentum > 0 && cfg.dampening == 0),
              "sgd: nesterov needs momentum > 0 and dampening 0 (got momentum %g, dampening %g)",
              cfg.momentum, cfg.dampening);
    int first = o->params.n;
    for (int i = 0; i < ps->n; i++) {
        dv_optim_check_param("sgd", ps->names[i], ps->tensors[i]);
        DV_ASSERT(dv_params_find(&o->params, ps->tensors[i]) < 0, "sgd: parameter '%s' is already in a group",
                  ps->names[i]);
        dv_params_add(&o->params, ps->names[i], ps->tensors[i]);
    }
    int n = o->params.n;
    o->groups = dv_optim_realloc(o->groups, sizeof *o->groups * (size_t)(o->ngroups + 1));
    o->groups[o->ngroups] = (dv_sgd_group){cfg, first, ps->n};
    o->momentum_buffer = dv_optim_realloc(o->momentum_buffer, sizeof(dv_tensor *) * (size_t)n);
    o->step = dv_optim_realloc(o->step, sizeof(dv_tensor *) * (size_t)n);
    o->state_names = dv_optim_realloc(o->state_names, sizeof(char *) * (size_t)(2 * n));
    o->state_tensors = dv_optim_realloc(o->state_tensors, sizeof(dv_tensor *) * (size_t)(2 * n));
    for (int i = first; i < n; i++) {
        const char *name = o->params.names[i];
        o->momentum_buffer[i] = cfg.momentum != 0 ? dv_zeros_like(o->params.tensors[i]) : NULL;
        o->step[i] = dv_scalar(DV_I64, 0);
        if (o->momentum_buffer[i]) {
            o->state_names[o->nstate] = dv_optim_state_name("sgd", name, "momentum_buffer");
            o->state_tensors[o->nstate++] = o->momentum_buffer[i];
        }
        o->state_names[o->nstate] = dv_optim_state_name("sgd", name, "step");
        o->state_tensors[o->nstate++] = o->step[i];
    }
    return o->ngroups++;
}

void dv_sgd_step(dv_sgd *o, double lr_scale) {
    for (int gi = 0; gi < o->ngroups; gi++) {
        const dv_sgd_group *grp = &o->groups[gi];
        const dv_sgd_config *cfg = &grp->cfg;
        for (int i = grp->first; i < grp->first + grp->count; i++) {
            dv_tensor *p = o->params.tensors[i];
            dv_tensor *g = dv_optim_grad("sgd", o->params.names[i], p);
            if (!g) continue; /* no gradient: skipped, the momentum buffer is left alone */
            DV_ASSERT(o->step[i]->device.type == DV_CPU, "sgd: the step counter of '%s' is on %s; the counters "
                      "stay on the host (move the parameters and the other state only)", o->params.names[i],
                      dv_device_str(o->step[i]->device));
            int64_t *t = dv_data(o->step[i]);
            DV_ASSERT(cfg->momentum == 0 || o->momentum_buffer[i],
                      "sgd: group %d's momentum was changed from 0 after the group was added", gi);
            sgd_args a = {cfg->lr * lr_scale, cfg->momentum, cfg->dampening, cfg->weight_decay,
                          cfg->nesterov, cfg->momentum != 0, *t == 0};
            void *buf = a.use_momentum ? dv_data(o->momentum_buffer[i]) : NULL;
            if (dv_backend_of(p) == DV_BACKEND_CUDA) /* kernels/cuda/optim.cu, the same arithmetic */
                dv_cuda_sgd(p, g, a.use_momentum ? o->momentum_buffer[i] : NULL, a.lr, a.momentum, a.dampening,
                            a.weight_decay, a.nesterov, a.first);
            else if (p->dtype == DV_F64) sgd_f64(dv_numel(p), dv_data(p), dv_data(g), buf, &a);
            else sgd_f32(dv_numel(p), dv_data(p), dv_data(g), buf, &a);
            *t += 1;
            dv_release(g);
        }
    }
}

int dv_sgd_state(dv_sgd *o, const char *const **names, dv_tensor *const **tensors) {
    *names = (const char *const *)o->state_names;
    *tensors = o->state_tensors;
    return o->nstate;
}
