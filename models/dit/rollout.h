/* models/dit/rollout.h — running the specialist in closed loop: temporal aggregation of
 * overlapping action chunks and shifted-window conditioning on the generalist's chunk
 * (RoboDual §3.3, "Inference"; ACT, Zhao et al. 2023, §3.3 "temporal ensembling").
 *
 * Temporal aggregation. The specialist predicts a chunk of k actions at every control step,
 * so at step t up to k chunks (predicted at t, t-1, ..., t-k+1) each hold an action for t.
 * The executed action is their weighted mean with w_i = exp(-m i), m = 0.1. Which chunk is
 * i = 0 differs between the two references:
 *   DV_AGG_NEWEST_FIRST  RoboDual's released evaluation (vla-scripts/dual_sys_evaluation.py:
 *                        action_buffer[0] is the newest chunk, temporal_weights[0] = 1):
 *                        i = 0 is the chunk predicted now, so recent predictions dominate.
 *   DV_AGG_OLDEST_FIRST  ACT (imitate_episodes.py, and the paper: "w_0 is the weight for the
 *                        oldest action"): i = 0 is the oldest chunk still covering t.
 * The default is RoboDual's. i counts the chunks that cover t, in the chosen order; when a
 * chunk is pushed every step (as both references do) it is the chunk's age, or k-1-age.
 *
 * Shifted-window conditioning. The generalist runs every k_g steps (slow); between its runs
 * the specialist runs tau_s = 0, 1, ... steps after the generalist's observation. Its chunk
 * covered steps [0, k_g) of that window, so only the latest k_g - tau_s of its actions still
 * lie in the future: they condition the specialist, moved to the front, the rest zeros
 * (dual_sys_evaluation.py builds exactly this `ref_actions`; train_spacialist_calvin.py does
 * the same for training, with tau the latency augmentation of the sample). tau_s >= k_g
 * leaves only zeros.
 *
 * Not here: the gripper binarisation RoboDual applies to the aggregated action, the
 * simulator loop (CALVIN's environment is out of scope), batching several rollouts.
 */
#ifndef DV_MODELS_DIT_ROLLOUT_H
#define DV_MODELS_DIT_ROLLOUT_H

#include "tensor/tensor.h"

#include <stdbool.h>

/* ---- shifted window ---------------------------------------------------------------------- */
/* gen (k_g, A) -> out (k_g, A): out[j] = gen[j + tau_s] for j < k_g - tau_s, else 0.
 * out may not alias gen. tau_s < 0 aborts. */
void dv_dit_shift_window(const float *gen, int kg, int A, int tau_s, float *out);
/* batched: gen (B, k_g, A), tau (B) -> a new (B, k_g, A) f32 tensor */
dv_tensor *dv_dit_shift_window_batch(dv_tensor *gen, const int32_t *tau);

/* ---- temporal aggregation ---------------------------------------------------------------- */
typedef enum { DV_AGG_NEWEST_FIRST = 0, DV_AGG_OLDEST_FIRST = 1 } dv_agg_order;

typedef struct {
    int k, A;           /* chunk length, action dimensions */
    double m;           /* 0.1 */
    dv_agg_order order;
    int64_t t;          /* the current control step (0 after reset) */
    /* ring of the last k chunks: slot s holds the chunk predicted at born[s] (-1 = empty) */
    float *chunks;      /* (k, k, A) */
    int64_t *born;      /* (k) */
} dv_dit_aggregator;

void dv_dit_aggregator_init(dv_dit_aggregator *g, int k, int A, double m, dv_agg_order order);
void dv_dit_aggregator_free(dv_dit_aggregator *g);
void dv_dit_aggregator_reset(dv_dit_aggregator *g);   /* a new episode */
/* One control step: chunk (k, A) predicted now (its row 0 is the action for this step), or
 * NULL when no new chunk was predicted this step. Writes the aggregated action for this step
 * into action (A) and moves to the next step. Returns the number of chunks that were
 * averaged (0: nothing covers this step; action is then zeros). */
int dv_dit_aggregator_step(dv_dit_aggregator *g, const float *chunk, float *action);

/* ---- both together: the state of a running episode --------------------------------------- */
typedef struct {
    dv_dit_aggregator agg;
    int kg;               /* generalist chunk length */
    float *gen;           /* (k_g, A): the generalist's last chunk */
    bool have_gen;
    int tau_s;            /* specialist steps since the generalist's observation */
} dv_dit_rollout;

void dv_dit_rollout_init(dv_dit_rollout *r, int k, int kg, int A, double m, dv_agg_order order);
void dv_dit_rollout_free(dv_dit_rollout *r);
void dv_dit_rollout_reset(dv_dit_rollout *r);
/* a new generalist chunk (k_g, A), for the observation of the current step: tau_s = 0 */
void dv_dit_rollout_set_generalist(dv_dit_rollout *r, const float *gen);
/* the generalist actions that condition the specialist now (k_g, A): the shifted window of
 * the last generalist chunk (zeros before the first one) */
void dv_dit_rollout_condition(const dv_dit_rollout *r, float *out);
/* the specialist's chunk (k, A) for this step (or NULL) -> the executed action (A); advances
 * the step and tau_s. Returns as dv_dit_aggregator_step. */
int dv_dit_rollout_step(dv_dit_rollout *r, const float *chunk, float *action);

#endif
