/* data/calvin/samples_dit.c — RoboDual's DiT specialist samples (RoboDual §3.2–3.3, App. B;
 * the released prismatic/vla/datasets/calvin_dataset.py).
 *
 * A sample starts at frame s; tau is drawn uniformly from [0, max_latency] (the released
 * code's pred_actions = randint(0, chunk - 1)); the specialist sees frame t = s + tau:
 * both RGB cameras and both depth maps, resized bilinearly to image_size (224), and
 * robot_obs of t; its targets are the rel_actions of t .. t + chunk - 1; the generalist's
 * actions are the rel_actions of s .. s + gen_chunk - 1. With static_frames = 2 the static
 * camera is given at t - 1 and t (t - 1 clamped to the window's start; the released code
 * repeats frame t when tau <= 1, a quirk not copied). Frame indices past the window's end
 * are clamped to it.
 *
 * Not here: depth normalisation (the released code subtracts a constant; the model does
 * what it wants with metres), ImageNet normalisation of RGB (the encoder's job), the
 * generalist's action tokenisation.
 */
#include "data/calvin/image.h"
#include "data/calvin/samples.h"

#include <stdlib.h>
#include <string.h>

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

int dv_calvin_dit_build(dv_calvin *d, const dv_calvin_dit_opts *o, const dv_calvin_sample *s,
                        const uint64_t *seeds, int64_t B, dv_calvin_dit_batch *out, char *err,
                        size_t errlen) {
    const int64_t I = o->image_size, S = o->static_frames, P = o->proprio_dim;
    DV_ASSERT(S == 1 || S == 2, "dv_calvin_dit_build: static_frames = %lld (1 or 2)", (long long)S);
    DV_ASSERT(P == 15 || P == 7, "dv_calvin_dit_build: proprio_dim = %lld (15 or 7)", (long long)P);
    memset(out, 0, sizeof *out);
    out->B = B;
    out->rgb_static = dv_empty(DV_F32, DV_SHAPE(B, S, 3, I, I));
    out->rgb_gripper = dv_empty(DV_F32, DV_SHAPE(B, 3, I, I));
    out->depth_static = dv_empty(DV_F32, DV_SHAPE(B, 1, I, I));
    out->depth_gripper = dv_empty(DV_F32, DV_SHAPE(B, 1, I, I));
    out->proprio = dv_empty(DV_F32, DV_SHAPE(B, P));
    out->actions = dv_empty(DV_F32, DV_SHAPE(B, o->chunk, 7));
    out->gen_actions = dv_empty(DV_F32, DV_SHAPE(B, o->gen_chunk, 7));
    out->tau = calloc((size_t)B, sizeof(int32_t));
    out->frame = calloc((size_t)B, sizeof(int64_t));
    out->instruction = calloc((size_t)B, sizeof(char *));
    float *rgb_s = dv_data(out->rgb_static), *rgb_g = dv_data(out->rgb_gripper);
    float *dep_s = dv_data(out->depth_static), *dep_g = dv_data(out->depth_gripper);
    float *prop = dv_data(out->proprio), *act = dv_data(out->actions), *gen = dv_data(out->gen_actions);
    const int64_t plane = I * I;

    for (int64_t b = 0; b < B; b++) {
        const dv_calvin_ann *w = dv_calvin_annotation(d, s[b].ann);
        int64_t start = w->start + s[b].off;
        dv_srng rng = {seeds[b]};
        int64_t tau = o->max_latency > 0 ? dv_srng_int(&rng, 0, o->max_latency) : 0;
        int64_t t = clamp64(start + tau, w->start, w->end);
        out->tau[b] = (int32_t)(t - start);
        out->frame[b] = t;
        out->instruction[b] = w->instruction;

        dv_calvin_frame f;
        if (dv_calvin_frame_load_keys(d, t, DV_FRAME_ALL, &f, err, errlen)) goto fail;
        float *dst = rgb_s + (b * S + S - 1) * 3 * plane;
        dv_resize_bilinear_u8_chw(f.rgb_static, f.static_h, f.static_w, 3, dst, (int)I, (int)I, 1.0f / 255);
        dv_resize_bilinear_u8_chw(f.rgb_gripper, f.gripper_h, f.gripper_w, 3, rgb_g + b * 3 * plane, (int)I,
                                  (int)I, 1.0f / 255);
        dv_resize_bilinear_f32_chw(f.depth_static, f.static_h, f.static_w, 1, dep_s + b * plane, (int)I, (int)I);
        dv_resize_bilinear_f32_chw(f.depth_gripper, f.gripper_h, f.gripper_w, 1, dep_g + b * plane, (int)I, (int)I);
        if (P == 15) memcpy(prop + b * P, f.robot_obs, sizeof f.robot_obs);
        else { memcpy(prop + b * P, f.robot_obs, 6 * sizeof(float)); prop[b * P + 6] = f.robot_obs[14]; }
        if (S == 2) {
            int64_t prev = t - 1 >= w->start ? t - 1 : t;
            float *pdst = rgb_s + b * S * 3 * plane;
            if (prev == t) {
                memcpy(pdst, dst, sizeof(float) * 3 * plane);
            } else {
                dv_calvin_frame pf;
                if (dv_calvin_frame_load_keys(d, prev, DV_FRAME_RGB_STATIC, &pf, err, errlen)) {
                    dv_calvin_frame_free(&f);
                    goto fail;
                }
                dv_resize_bilinear_u8_chw(pf.rgb_static, pf.static_h, pf.static_w, 3, pdst, (int)I, (int)I, 1.0f / 255);
                dv_calvin_frame_free(&pf);
            }
        }
        dv_calvin_frame_free(&f);

        dv_calvin_lowdim low;
        for (int k = 0; k < o->chunk; k++) {
            if (dv_calvin_lowdim_get(d, clamp64(t + k, w->start, w->end), &low, err, errlen)) goto fail;
            memcpy(act + (b * o->chunk + k) * 7, low.rel_actions, sizeof low.rel_actions);
        }
        for (int k = 0; k < o->gen_chunk; k++) {
            if (dv_calvin_lowdim_get(d, clamp64(start + k, w->start, w->end), &low, err, errlen)) goto fail;
            memcpy(gen + (b * o->gen_chunk + k) * 7, low.rel_actions, sizeof low.rel_actions);
        }
    }
    return 0;
fail:
    dv_calvin_batch_free(DV_CALVIN_DIT, out);
    return -1;
}
