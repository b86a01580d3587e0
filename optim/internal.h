/* optim/internal.h — helpers shared by the files of optim/ (not part of the public API). */
#ifndef DV_OPTIM_INTERNAL_H
#define DV_OPTIM_INTERNAL_H

#include "optim/optim.h"

#include <stddef.h>

/* realloc that aborts on failure */
void *dv_optim_realloc(void *p, size_t bytes);
/* a malloc'd "<prefix>.<name>.<suffix>" (suffix may be NULL: "<prefix>.<name>") */
char *dv_optim_state_name(const char *prefix, const char *name, const char *suffix);
/* abort unless t can be updated in place by an optimiser: a contiguous f32 / f64 CPU tensor */
void dv_optim_check_param(const char *op, const char *name, const dv_tensor *t);
/* t's gradient as a contiguous tensor of t's shape and dtype (new reference), or NULL */
dv_tensor *dv_optim_grad(const char *op, const char *name, const dv_tensor *t);

#endif
