/* tests/test_cuda_host_nn.c — the per-element arithmetic of the fused nn CUDA kernels
 * (kernels/cuda/nn_math.h: rotary pairs, the bias_act activations and derivatives, the
 * diffusion step) compiled for the host and checked against the portable CPU kernels inside
 * `make test`, without a GPU or nvcc. The GPU kernels call exactly these functions; what this
 * cannot check (grids, block reductions, partial sums) is tests/cuda/test_cuda_nn.c. */
#include "kernels/bias_act.h"
#include "kernels/cuda/nn_math.h"
#include "kernels/diffusion.h"
#include "kernels/rotary.h"
#include "tests/test.h"
#include "tests/util.h"

#include <math.h>
#include <stdlib.h>

static void fill(float *p, int64_t n, uint64_t seed, float s) {
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        z ^= z << 13, z ^= z >> 7, z ^= z << 17;
        p[i] = s * ((float)(z >> 40) / 16777216.0f * 2.0f - 1.0f);
    }
}

/* every output of dv_cu_rotary_elem (and the pass-through channels) against the portable
 * kernel, both pair layouts, both directions, shared and per-batch tables, rot < D */
TEST(cuda_host_rotary_elem_matches_portable) {
    const int64_t nb = 2, nh = 3, T = 5, D = 22;
    const int64_t rots[2] = {22, 14};
    float *x = malloc(nb * nh * T * D * 4), *y = malloc(nb * nh * T * D * 4);
    float *c = malloc(nb * T * D * 4), *s = malloc(nb * T * D * 4);
    fill(x, nb * nh * T * D, 1, 2.0f), fill(c, nb * T * D, 2, 1.0f), fill(s, nb * T * D, 3, 1.0f);
    int bad = 0;
    for (int ri = 0; ri < 2; ri++)
        for (int inter = 0; inter < 2; inter++)
            for (int tr = 0; tr < 2; tr++)
                for (int per_batch = 0; per_batch < 2; per_batch++) {
                    int64_t rot = rots[ri], tab_b = per_batch ? T * rot : 0;
                    dv_rotary_f32_portable(nb, nh, T, D, rot, inter, tr, x, c, s, tab_b, y);
                    for (int64_t r = 0; r < nb * nh * T; r++) {
                        int64_t b = r / (nh * T), t = r % T;
                        for (int64_t ch = 0; ch < D; ch++) {
                            float got = ch < rot ? dv_cu_rotary_elem(ch, rot, inter, tr, x + r * D,
                                                                     c + b * tab_b + t * rot, s + b * tab_b + t * rot)
                                                 : x[r * D + ch];
                            bad += fabsf(got - y[r * D + ch]) > 1e-6f * fmaxf(1.0f, fabsf(y[r * D + ch]));
                        }
                    }
                }
    CHECK_MSG(bad == 0, "rotary: %d elements differ from the portable kernel", bad);
    free(x), free(y), free(c), free(s);
}

/* dv_cu_act / dv_cu_dact against the portable forward and backward (b = NULL, gy = 1, so
 * y = act(x) and gx = act'(x)), over a range that covers both tails and zero */
TEST(cuda_host_bias_act_math_matches_portable) {
    const int64_t n = 2001;
    float *x = malloc(n * 4), *y = malloc(n * 4), *one = malloc(n * 4), *gx = malloc(n * 4);
    for (int64_t i = 0; i < n; i++) x[i] = -10.0f + 20.0f * (float)i / (float)(n - 1), one[i] = 1.0f;
    for (int a = 0; a < DV_BIAS_ACT_COUNT; a++) {
        dv_bias_act_fwd_f32_portable((dv_bias_act_kind)a, 1, n, x, NULL, y);
        dv_bias_act_bwd_f32_portable((dv_bias_act_kind)a, 1, n, x, NULL, one, gx, NULL);
        int bad = 0;
        for (int64_t i = 0; i < n; i++) {
            float f = dv_cu_act((dv_bias_act_kind)a, x[i]), d = dv_cu_dact((dv_bias_act_kind)a, x[i]);
            bad += fabsf(f - y[i]) > 1e-6f * fmaxf(1.0f, fabsf(y[i]));
            bad += fabsf(d - gx[i]) > 1e-6f * fmaxf(1.0f, fabsf(gx[i]));
        }
        CHECK_MSG(bad == 0, "bias_act %s: %d values differ from the portable kernel", dv_bias_act_name(a), bad);
    }
    free(x), free(y), free(one), free(gx);
}

/* dv_cu_diffusion_elem against the portable step: with and without noise, clipping on and off
 * (inputs wide enough that the clamp bites), pred_x0 too, and a NaN that must stay NaN */
TEST(cuda_host_diffusion_elem_matches_portable) {
    const int64_t n = 777;
    float *m = malloc(n * 4), *x = malloc(n * 4), *z = malloc(n * 4), *out = malloc(n * 4), *x0 = malloc(n * 4);
    fill(m, n, 4, 3.0f), fill(x, n, 5, 3.0f), fill(z, n, 6, 1.0f);
    m[5] = NAN;
    for (int clip = 0; clip < 2; clip++)
        for (int noisy = 0; noisy < 2; noisy++) {
            dv_diffusion_coef c = {.ax = 1.3, .am = -0.7, .clip = clip, .clip_range = 1.0,
                                   .c0 = 0.4, .cx = 0.55, .cm = 0.05, .cz = 0.12};
            dv_cu_diff_coef k = {(float)c.ax, (float)c.am, (float)c.clip_range, (float)c.c0,
                                 (float)c.cx, (float)c.cm, (float)c.cz, c.clip};
            dv_diffusion_step_f32_portable(n, m, x, noisy ? z : NULL, out, x0, &c);
            int bad = 0;
            for (int64_t i = 0; i < n; i++) {
                float p, y = dv_cu_diffusion_elem(&k, m[i], x[i], noisy ? z[i] : 0.0f, noisy, &p);
                if (isnan(out[i]) || isnan(y)) { bad += isnan(out[i]) != isnan(y) || isnan(p) != isnan(x0[i]); continue; }
                bad += fabsf(y - out[i]) > 1e-6f * fmaxf(1.0f, fabsf(out[i])) || fabsf(p - x0[i]) > 1e-6f * fmaxf(1.0f, fabsf(x0[i]));
            }
            CHECK_MSG(bad == 0, "diffusion step clip %d noise %d: %d elements differ", clip, noisy, bad);
        }
    free(m), free(x), free(z), free(out), free(x0);
}
