/* data/calvin/samples_mllm.c — the MLLM's samples (OpenHelix's asynchronous training: one
 * LLaVA latent per `every` frames, engine_act_simple.py's sample_rate): the static camera's
 * RGB of the frame the latent is computed from, resized bilinearly to size x size in [0, 1],
 * and the instruction.
 *
 * Not here: CLIP's normalisation and the prompt template (models/llava).
 */
#include "data/calvin/image.h"
#include "data/calvin/samples.h"

#include <stdlib.h>
#include <string.h>

int dv_calvin_mllm_build(dv_calvin *d, int size, int every, const dv_calvin_sample *s,
                         int64_t B, dv_calvin_mllm_batch *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    out->B = B;
    out->rgb_static = dv_empty(DV_F32, DV_SHAPE(B, 3, size, size));
    out->frame = calloc((size_t)B, sizeof(int64_t));
    out->serves = calloc((size_t)B, sizeof(int32_t));
    out->instruction = calloc((size_t)B, sizeof(char *));
    float *rgb = dv_data(out->rgb_static);
    for (int64_t b = 0; b < B; b++) {
        const dv_calvin_ann *w = dv_calvin_annotation(d, s[b].ann);
        int64_t t = w->start + s[b].off;
        out->frame[b] = t;
        out->serves[b] = (int32_t)(w->end - t + 1 < every ? w->end - t + 1 : every);
        out->instruction[b] = w->instruction;
        dv_calvin_frame f;
        if (dv_calvin_frame_load_keys(d, t, DV_FRAME_RGB_STATIC, &f, err, errlen)) {
            dv_calvin_batch_free(DV_CALVIN_MLLM, out);
            return -1;
        }
        dv_resize_bilinear_u8_chw(f.rgb_static, f.static_h, f.static_w, 3, rgb + b * 3 * (int64_t)size * size,
                                  size, size, 1.0f / 255);
        dv_calvin_frame_free(&f);
    }
    return 0;
}
