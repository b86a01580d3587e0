/* tests/test_rollout.c — temporal aggregation (both weight orders) and shifted-window
 * conditioning of models/dit/rollout.h, against values computed by hand:
 *   w_i = exp(-0.1 i); e.g. two chunks covering a step with values 10 (newest) and 2:
 *   newest first (10 + 2 e^-0.1) / (1 + e^-0.1) = 6.19983349983152. */
#include "test.h"
#include "models/dit/rollout.h"

#include <string.h>

TEST(rollout_shift_window) {
    /* k_g = 4, A = 2: row j = (j + 1, -(j + 1)) */
    float gen[8] = {1, -1, 2, -2, 3, -3, 4, -4}, out[8];
    dv_dit_shift_window(gen, 4, 2, 0, out);
    CHECK(!memcmp(out, gen, sizeof gen));
    dv_dit_shift_window(gen, 4, 2, 1, out);
    float want1[8] = {2, -2, 3, -3, 4, -4, 0, 0};
    CHECK(!memcmp(out, want1, sizeof out));
    dv_dit_shift_window(gen, 4, 2, 3, out);
    float want3[8] = {4, -4, 0, 0, 0, 0, 0, 0};
    CHECK(!memcmp(out, want3, sizeof out));
    for (int tau = 4; tau <= 6; tau++) {
        dv_dit_shift_window(gen, 4, 2, tau, out);
        for (int i = 0; i < 8; i++) CHECK(out[i] == 0.0f);
    }
    /* batched: two samples with different latencies */
    float g2[16];
    memcpy(g2, gen, sizeof gen);
    for (int i = 0; i < 8; i++) g2[8 + i] = 10 * gen[i];
    dv_tensor *t = dv_from_data(DV_F32, DV_SHAPE(2, 4, 2), g2);
    int32_t tau[2] = {1, 2};
    dv_tensor *s = dv_dit_shift_window_batch(t, tau);
    const float *p = dv_data(s);
    CHECK(!memcmp(p, want1, sizeof want1));
    float want2[8] = {30, -30, 40, -40, 0, 0, 0, 0};
    CHECK(!memcmp(p + 8, want2, sizeof want2));
    dv_release(s), dv_release(t);
}

/* chunks of k = 3, A = 1: c0 = (1 2 3) at step 0, c1 = (10 20 30) at 1, c2 = (100 200 300)
 * at 2, nothing at 3 (c1, c2 still cover it), nothing at 4 (c2 only), nothing at 5 */
static void run_agg(dv_agg_order order, float out[6], int n[6]) {
    float c0[3] = {1, 2, 3}, c1[3] = {10, 20, 30}, c2[3] = {100, 200, 300};
    const float *seq[6] = {c0, c1, c2, NULL, NULL, NULL};
    dv_dit_aggregator g;
    dv_dit_aggregator_init(&g, 3, 1, 0.1, order);
    for (int t = 0; t < 6; t++) n[t] = dv_dit_aggregator_step(&g, seq[t], &out[t]);
    dv_dit_aggregator_free(&g);
}

TEST(rollout_aggregation_newest_first) {
    float a[6];
    int n[6];
    run_agg(DV_AGG_NEWEST_FIRST, a, n);
    int wn[6] = {1, 2, 3, 2, 1, 0};
    for (int t = 0; t < 6; t++) CHECK(n[t] == wn[t]);
    CHECK_CLOSE(a[0], 1.0, 1e-6);
    CHECK_CLOSE(a[1], 6.19983349983152, 1e-6);     /* (10 + 2 e^-.1) / (1 + e^-.1) */
    CHECK_CLOSE(a[2], 44.26286879782667, 1e-6);    /* (100 + 20 e^-.1 + 3 e^-.2) / (...) */
    CHECK_CLOSE(a[3], 119.2464618714198, 1e-6);    /* (200 + 30 e^-.1) / (1 + e^-.1) */
    CHECK_CLOSE(a[4], 300.0, 1e-6);
    CHECK(a[5] == 0.0f);
}

TEST(rollout_aggregation_oldest_first) {
    float a[6];
    int n[6];
    run_agg(DV_AGG_OLDEST_FIRST, a, n);
    CHECK_CLOSE(a[0], 1.0, 1e-6);
    CHECK_CLOSE(a[1], 5.80016650016848, 1e-6);     /* (2 + 10 e^-.1) / (1 + e^-.1) */
    CHECK_CLOSE(a[2], 37.80695660957245, 1e-6);    /* (3 + 20 e^-.1 + 100 e^-.2) / (...) */
    CHECK_CLOSE(a[3], 110.75353812858019, 1e-6);   /* (30 + 200 e^-.1) / (1 + e^-.1) */
    CHECK_CLOSE(a[4], 300.0, 1e-6);
}

TEST(rollout_aggregation_reset_and_m0) {
    /* m = 0: a plain mean; after a reset nothing old remains */
    dv_dit_aggregator g;
    dv_dit_aggregator_init(&g, 2, 2, 0.0, DV_AGG_NEWEST_FIRST);
    float c0[4] = {1, 5, 3, 7}, c1[4] = {-1, 1, 0, 0}, a[2];
    dv_dit_aggregator_step(&g, c0, a);
    CHECK(a[0] == 1 && a[1] == 5);
    CHECK(dv_dit_aggregator_step(&g, c1, a) == 2);
    CHECK_CLOSE(a[0], 1.0, 1e-7);    /* (3 + -1) / 2 */
    CHECK_CLOSE(a[1], 4.0, 1e-7);    /* (7 + 1) / 2 */
    dv_dit_aggregator_reset(&g);
    CHECK(dv_dit_aggregator_step(&g, c1, a) == 1);
    CHECK(a[0] == -1 && a[1] == 1);
    dv_dit_aggregator_free(&g);
}

TEST(rollout_generalist_window) {
    /* generalist chunk of 3, specialist chunk of 2, A = 1 */
    dv_dit_rollout r;
    dv_dit_rollout_init(&r, 2, 3, 1, 0.1, DV_AGG_NEWEST_FIRST);
    float cond[3], act, chunk[2] = {0.5f, 0.25f};
    dv_dit_rollout_condition(&r, cond);
    CHECK(cond[0] == 0 && cond[1] == 0 && cond[2] == 0);   /* no generalist yet */
    float gen[3] = {7, 8, 9};
    dv_dit_rollout_set_generalist(&r, gen);
    dv_dit_rollout_condition(&r, cond);
    CHECK(cond[0] == 7 && cond[1] == 8 && cond[2] == 9);
    dv_dit_rollout_step(&r, chunk, &act);
    CHECK(act == 0.5f);
    dv_dit_rollout_condition(&r, cond);
    CHECK(cond[0] == 8 && cond[1] == 9 && cond[2] == 0);
    dv_dit_rollout_step(&r, chunk, &act);
    dv_dit_rollout_step(&r, chunk, &act);
    dv_dit_rollout_condition(&r, cond);
    CHECK(cond[0] == 0 && cond[1] == 0 && cond[2] == 0);   /* tau_s = 3 = k_g */
    float gen2[3] = {1, 2, 3};
    dv_dit_rollout_set_generalist(&r, gen2);
    dv_dit_rollout_condition(&r, cond);
    CHECK(cond[0] == 1 && cond[1] == 2 && cond[2] == 3);
    dv_dit_rollout_free(&r);
}
