/* optim/params.c — named parameter lists, the decay / no-decay split, zero_grad. */
#include "optim/internal.h"
#include "tensor/cuda.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *dv_optim_realloc(void *p, size_t bytes) {
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) dv_panic("optim: out of memory (%zu bytes)", bytes);
    return q;
}

char *dv_optim_state_name(const char *prefix, const char *name, const char *suffix) {
    size_t n = strlen(prefix) + strlen(name) + (suffix ? strlen(suffix) : 0) + 3;
    char *s = dv_optim_realloc(NULL, n);
    snprintf(s, n, suffix ? "%s.%s.%s" : "%s.%s", prefix, name, suffix ? suffix : "");
    return s;
}

void dv_optim_check_param(const char *op, const char *name, const dv_tensor *t) {
    DV_ASSERT(t->dtype == DV_F32 || t->dtype == DV_F64,
              "%s: parameter '%s' %s is %s; optimisers update f32 (or f64) master weights", op,
              name, dv_shape_str(t, NULL, 0), dv_dtype_name(t->dtype));
    DV_ASSERT(t->device.type == DV_CPU || t->dtype == DV_F32, "%s: parameter '%s' is f64 on %s; f64 is updated on the CPU only",
              op, name, dv_device_str(t->device));
    DV_ASSERT(dv_is_contiguous(t), "%s: parameter '%s' %s is not contiguous", op, name,
              dv_shape_str(t, NULL, 0));
}

dv_tensor *dv_optim_grad(const char *op, const char *name, const dv_tensor *t) {
    dv_tensor *g = t->grad;
    if (!g) return NULL;
    if (!dv_same_shape(g, t) || g->dtype != t->dtype)
        dv_panic("%s: parameter '%s' %s %s has a gradient %s %s", op, name, dv_shape_str(t, NULL, 0),
                 dv_dtype_name(t->dtype), dv_shape_str(g, NULL, 0), dv_dtype_name(g->dtype));
    return dv_contiguous(g);
}

void dv_params_add(dv_params *ps, const char *name, dv_tensor *t) {
    DV_ASSERT(t, "dv_params_add: NULL tensor for '%s'", name ? name : "");
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? 2 * ps->cap : 16;
        ps->names = dv_optim_realloc(ps->names, sizeof(char *) * (size_t)ps->cap);
        ps->tensors = dv_optim_realloc(ps->tensors, sizeof(dv_tensor *) * (size_t)ps->cap);
    }
    ps->names[ps->n] = strdup(name ? name : "");
    if (!ps->names[ps->n]) dv_panic("optim: out of memory");
    ps->tensors[ps->n] = dv_retain(t);
    ps->n++;
}

void dv_params_free(dv_params *ps) {
    for (int i = 0; i < ps->n; i++) {
        free(ps->names[i]);
        dv_release(ps->tensors[i]);
    }
    free(ps->names);
    free(ps->tensors);
    memset(ps, 0, sizeof *ps);
}

int64_t dv_params_numel(const dv_params *ps) {
    int64_t n = 0;
    for (int i = 0; i < ps->n; i++) n += dv_numel(ps->tensors[i]);
    return n;
}

int dv_params_find(const dv_params *ps, const dv_tensor *t) {
    for (int i = 0; i < ps->n; i++)
        if (ps->tensors[i] == t) return i;
    return -1;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

bool dv_param_no_decay_default(const char *name, const dv_tensor *t, void *ctx) {
    if (t->ndim < 2) return true; /* biases, norm gains, scalars */
    if (!name) return false;
    return ends_with(name, "bias") || strstr(name, "norm") || strstr(name, "ln_") ||
           strstr(name, "embed");
}

void dv_params_split_decay(const dv_params *all, dv_param_pred no_decay_pred, void *ctx,
                           dv_params *decay, dv_params *no_decay) {
    if (!no_decay_pred) no_decay_pred = dv_param_no_decay_default;
    for (int i = 0; i < all->n; i++) {
        bool nd = no_decay_pred(all->names[i], all->tensors[i], ctx);
        dv_params_add(nd ? no_decay : decay, all->names[i], all->tensors[i]);
    }
}

void dv_optim_zero_grad(const dv_params *ps) {
    for (int i = 0; i < ps->n; i++) dv_zero_grad(ps->tensors[i]);
}
