/* optim/schedule.c — learning-rate multipliers per optimiser step, as the lambdas of
 * transformers' get_constant_schedule, get_constant_schedule_with_warmup and
 * get_cosine_schedule_with_warmup (which diffusers' get_scheduler re-exports). Under torch's
 * LambdaLR the k-th update (k = 0, 1, ...) runs with lr = base_lr * lambda(k); so does
 * dv_adamw_step(opt, dv_lr_schedule_at(&s, k)).
 */
#include "optim/optim.h"

#include <math.h>
#include <string.h>

dv_lr_schedule dv_lr_constant(void) { return (dv_lr_schedule){DV_LR_CONSTANT, 0, 0, 0.5}; }

dv_lr_schedule dv_lr_warmup_constant(int64_t warmup_steps) {
    DV_ASSERT(warmup_steps >= 0, "lr schedule: warmup_steps %lld < 0", (long long)warmup_steps);
    return (dv_lr_schedule){DV_LR_WARMUP_CONSTANT, warmup_steps, 0, 0.5};
}

dv_lr_schedule dv_lr_warmup_cosine(int64_t warmup_steps, int64_t total_steps) {
    DV_ASSERT(warmup_steps >= 0 && total_steps >= 0, "lr schedule: warmup_steps %lld, total_steps %lld",
              (long long)warmup_steps, (long long)total_steps);
    return (dv_lr_schedule){DV_LR_WARMUP_COSINE, warmup_steps, total_steps, 0.5};
}

double dv_lr_schedule_at(const dv_lr_schedule *s, int64_t step) {
    if (s->kind == DV_LR_CONSTANT) return 1.0;
    if (step < s->warmup_steps) return (double)step / (double)(s->warmup_steps > 1 ? s->warmup_steps : 1);
    if (s->kind == DV_LR_WARMUP_CONSTANT) return 1.0;
    int64_t span = s->total_steps - s->warmup_steps;
    double progress = (double)(step - s->warmup_steps) / (double)(span > 1 ? span : 1);
    double m = 0.5 * (1.0 + cos(M_PI * s->num_cycles * 2.0 * progress));
    return m > 0 ? m : 0.0;
}

static const char *const k_names[] = {"constant", "constant_with_warmup", "cosine"};

int dv_lr_kind_parse(const char *name, dv_lr_kind *out) {
    for (int k = 0; k < 3; k++)
        if (!strcmp(name, k_names[k])) {
            *out = (dv_lr_kind)k;
            return 0;
        }
    return -1;
}

const char *dv_lr_kind_name(dv_lr_kind kind) {
    return (unsigned)kind < 3 ? k_names[kind] : "?";
}
