/* models/dit/standin.h — a documented stand-in for RoboDual's generalist (OpenVLA-7B), used to
 * train and run the DiT specialist until the generalist tower exists.
 *
 * What the specialist takes from the generalist (RoboDual §3.2, App. B):
 *   - its discretised actions for a chunk of k_g steps. OpenVLA emits one token per action
 *     dimension out of 256 uniform bins over [-1, 1]; RoboDual decodes them back to bin
 *     centres (prismatic/vla/action_tokenizer.py) and feeds those to the specialist;
 *   - its hidden states (task and action latents, width 4096 for OpenVLA-7B).
 * The stand-in replaces the generalist's predictions by the ground truth seen through the
 * same discretisation:
 *   actions  the ground-truth (latency-shifted) actions, quantised with OpenVLA's scheme and
 *            decoded to bin centres; each action dimension is independently replaced by a
 *            uniformly random bin with probability `corrupt` (a generalist that is sometimes
 *            wrong). corrupt = 0 gives a perfect but quantised generalist.
 *   latents  zeros (the specialist learns to ignore them), or read from a safetensors file.
 *
 * OpenVLA's bins (action_tokenizer.py): edges = linspace(-1, 1, 256) — 256 edges, so 255
 * intervals — and centres = the 255 interval midpoints. An action x is clipped to [-1, 1] and
 * digitised as numpy.digitize(x, edges) in [1, 256]; decoding subtracts 1 and clips to
 * [0, 254]. Here a "bin" is that digitised value minus 1, in [0, 255], and bin 255 (x = 1
 * exactly) decodes to the last centre, as in OpenVLA.
 *
 * Latents file (safetensors):
 *   "latents"    (T, D) f32      one set of latents used for every sample, or
 *                (F, T, D) f32   one set per frame, together with
 *   "frame_ids"  (F) i64         the global CALVIN frame id of each set.
 * T must equal cfg.gen_latent_tokens and D cfg.gen_latent_dim.
 *
 * Not here: the generalist itself (models/llava, its own issue), its language conditioning.
 */
#ifndef DV_MODELS_DIT_STANDIN_H
#define DV_MODELS_DIT_STANDIN_H

#include "models/dit/dit.h"
#include "tensor/tensor.h"

#include <stdio.h>

/* OpenVLA's discretisation, bins = 256 (any bins >= 2 works) */
int dv_action_bin(double x, int bins);             /* [0, bins - 1] */
double dv_action_bin_center(int bin, int bins);    /* the decoded value of a bin */
double dv_action_quantise(double x, int bins);     /* dv_action_bin_center(dv_action_bin(x)) */

typedef struct {
    int bins;                 /* 256 */
    double corrupt;           /* [0, 1]: probability that an action dimension gets a random bin */
    char latents_path[1024];  /* "" = zeros */
} dv_standin_config;

dv_standin_config dv_standin_config_default(void);  /* 256 bins, corrupt 0, zero latents */

typedef struct dv_standin dv_standin;

/* checks the config against the specialist's (latent width and count); reads the latents
 * file when one is named. Returns 0, or -1 with a message naming the file / tensor. */
int dv_standin_new(const dv_standin_config *sc, const dv_dit_config *cfg, dv_standin **out,
                   char *err, size_t errlen);
void dv_standin_free(dv_standin *s);
/* one line saying that the stand-in is in use and what it does ("generalist: stand-in ...") */
void dv_standin_describe(const dv_standin *s, FILE *f);

/* The generalist's decoded actions for ground-truth actions gt (B, k_g, A) in any float
 * dtype: quantised, with corruption drawn from rng (one draw per call, whatever B).
 * Returns (B, k_g, A) f32. */
dv_tensor *dv_standin_actions(const dv_standin *s, dv_tensor *gt, dv_rng *rng);

/* The generalist's latents for the frames frame[0..B) (global frame ids): (B, T, D) f32,
 * or NULL when cfg.gen_latent_dim == 0. Returns -1 with a message when a per-frame file
 * lacks a frame. */
int dv_standin_latents(const dv_standin *s, const int64_t *frame, int64_t B, dv_tensor **out,
                       char *err, size_t errlen);

#endif
