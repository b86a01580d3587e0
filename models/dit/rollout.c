/* models/dit/rollout.c — temporal aggregation of overlapping chunks and shifted-window
 * conditioning (see rollout.h for the scheme and which reference does what). */
#include "models/dit/rollout.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void dv_dit_shift_window(const float *gen, int kg, int A, int tau_s, float *out) {
    DV_ASSERT(tau_s >= 0 && kg > 0 && A > 0, "dv_dit_shift_window: tau_s %d, k_g %d, A %d", tau_s, kg, A);
    int keep = kg - tau_s > 0 ? kg - tau_s : 0;
    if (keep) memcpy(out, gen + (size_t)tau_s * A, sizeof(float) * keep * A);
    memset(out + (size_t)keep * A, 0, sizeof(float) * (kg - keep) * A);
}

dv_tensor *dv_dit_shift_window_batch(dv_tensor *gen, const int32_t *tau) {
    DV_ASSERT(gen->ndim == 3, "dv_dit_shift_window_batch: expected (B, k_g, A), got %s",
              dv_shape_str(gen, NULL, 0));
    dv_tensor *g32 = dv_cast(gen, DV_F32), *g = dv_contiguous(g32);
    dv_release(g32);
    int64_t B = gen->shape[0], kg = gen->shape[1], A = gen->shape[2];
    dv_tensor *out = dv_empty(DV_F32, gen->shape, 3);
    const float *src = dv_data(g);
    float *dst = dv_data(out);
    for (int64_t b = 0; b < B; b++)
        dv_dit_shift_window(src + b * kg * A, (int)kg, (int)A, tau[b], dst + b * kg * A);
    dv_release(g);
    return out;
}

void dv_dit_aggregator_init(dv_dit_aggregator *g, int k, int A, double m, dv_agg_order order) {
    DV_ASSERT(k > 0 && A > 0, "dv_dit_aggregator_init: k %d, A %d", k, A);
    memset(g, 0, sizeof *g);
    g->k = k, g->A = A, g->m = m, g->order = order;
    g->chunks = calloc((size_t)k * k * A, sizeof(float));
    g->born = malloc(sizeof(int64_t) * k);
    dv_dit_aggregator_reset(g);
}

void dv_dit_aggregator_free(dv_dit_aggregator *g) {
    free(g->chunks);
    free(g->born);
    memset(g, 0, sizeof *g);
}

void dv_dit_aggregator_reset(dv_dit_aggregator *g) {
    g->t = 0;
    for (int s = 0; s < g->k; s++) g->born[s] = -1;
}

int dv_dit_aggregator_step(dv_dit_aggregator *g, const float *chunk, float *action) {
    int k = g->k, A = g->A;
    if (chunk) {   /* slot t mod k: the chunk it held was born at t - k or earlier, now useless */
        int s = (int)(g->t % k);
        memcpy(g->chunks + (size_t)s * k * A, chunk, sizeof(float) * k * A);
        g->born[s] = g->t;
    }
    /* the chunks covering t, oldest first: age = t - born in [0, k) */
    int slot[64], n = 0;
    int *sl = k <= 64 ? slot : malloc(sizeof(int) * k);
    for (int age = k - 1; age >= 0; age--) {
        if (g->t - age < 0) continue;
        int s = (int)((g->t - age) % k);
        if (g->born[s] == g->t - age) sl[n++] = s;
    }
    double acc[64], *a = A <= 64 ? acc : malloc(sizeof(double) * A);
    for (int j = 0; j < A; j++) a[j] = 0.0;
    double wsum = 0.0;
    for (int r = 0; r < n; r++) {
        int i = g->order == DV_AGG_OLDEST_FIRST ? r : n - 1 - r;
        double w = exp(-g->m * i);
        int s = sl[r];
        int64_t age = g->t - g->born[s];
        const float *row = g->chunks + ((size_t)s * k + age) * A;
        for (int j = 0; j < A; j++) a[j] += w * row[j];
        wsum += w;
    }
    for (int j = 0; j < A; j++) action[j] = n ? (float)(a[j] / wsum) : 0.0f;
    if (sl != slot) free(sl);
    if (a != acc) free(a);
    g->t++;
    return n;
}

void dv_dit_rollout_init(dv_dit_rollout *r, int k, int kg, int A, double m, dv_agg_order order) {
    memset(r, 0, sizeof *r);
    dv_dit_aggregator_init(&r->agg, k, A, m, order);
    r->kg = kg;
    r->gen = calloc((size_t)kg * A, sizeof(float));
}

void dv_dit_rollout_free(dv_dit_rollout *r) {
    dv_dit_aggregator_free(&r->agg);
    free(r->gen);
    memset(r, 0, sizeof *r);
}

void dv_dit_rollout_reset(dv_dit_rollout *r) {
    dv_dit_aggregator_reset(&r->agg);
    memset(r->gen, 0, sizeof(float) * r->kg * r->agg.A);
    r->have_gen = false;
    r->tau_s = 0;
}

void dv_dit_rollout_set_generalist(dv_dit_rollout *r, const float *gen) {
    memcpy(r->gen, gen, sizeof(float) * r->kg * r->agg.A);
    r->have_gen = true;
    r->tau_s = 0;
}

void dv_dit_rollout_condition(const dv_dit_rollout *r, float *out) {
    if (!r->have_gen) { memset(out, 0, sizeof(float) * r->kg * r->agg.A); return; }
    dv_dit_shift_window(r->gen, r->kg, r->agg.A, r->tau_s, out);
}

int dv_dit_rollout_step(dv_dit_rollout *r, const float *chunk, float *action) {
    int n = dv_dit_aggregator_step(&r->agg, chunk, action);
    r->tau_s++;
    return n;
}
