/* tools/dit_session.h — what `dualvla train dit` and `dualvla act dit` share: the run's
 * configuration (the specialist's config plus training keys), turning a CALVIN batch into the
 * specialist's inputs through the generalist stand-in, and reading a checkpoint back.
 *
 * Configuration text: the DiT config format (models/dit/dit.h: "key = value", '#' comments,
 * a `preset = NAME` line resets everything before it) with two more families of keys:
 *   train.*    optimiser, schedule, batch, steps, latency augmentation, held-out split
 *   standin.*  the generalist stand-in (models/dit/standin.h)
 * A checkpoint stores the whole text (dv_train_config_format), so a checkpoint alone rebuilds
 * its model.
 *
 * Not here: the training loop (tools/cmd_train.c), the sampler (models/dit).
 */
#ifndef DV_TOOLS_DIT_SESSION_H
#define DV_TOOLS_DIT_SESSION_H

#include "data/calvin/dataset.h"
#include "models/dit/dit.h"
#include "models/dit/standin.h"

typedef struct {
    dv_dit_config model;
    /* train.* */
    int64_t steps;            /* optimiser steps of the whole run */
    int64_t batch;            /* 64 */
    double lr;                /* 1e-4 */
    double weight_decay;      /* 1e-3 */
    int no_decay_norms;       /* 1: norms, biases, positions, queries not decayed; 0: all (released) */
    int64_t warmup_steps;     /* 1000 */
    double cosine_cycles;     /* 0.5: half a cosine to 0 (released script: 0.4) */
    double grad_clip;         /* 1.0 (0: off) */
    double ema_decay;         /* 0: off; else the EMA's decay (diffusers-style fixed decay) */
    int max_latency;          /* latency augmentation tau in [0, max_latency] (released: k_g - 1) */
    double holdout;           /* fraction of annotations held out for the action error */
    int64_t eval_samples;     /* held-out samples the action error is measured on */
    uint64_t seed;
    /* where the generalist's actions and latents come from: "standin" (models/dit/standin.h)
     * is the only source until the generalist tower exists; the key makes the choice explicit
     * in every config and checkpoint */
    char generalist[16];
    /* standin.* */
    dv_standin_config standin;
} dv_train_config;

/* the model preset `name` with the training defaults that go with it (paper / released:
 * the paper's recipe; tiny: a short run on 2 cores) */
int dv_train_config_preset(dv_train_config *c, const char *name, char *err, size_t errlen);
/* apply the lines of text (errors name `what`, the line and the key) */
int dv_train_config_parse(dv_train_config *c, const char *text, const char *what, char *err,
                          size_t errlen);
char *dv_train_config_format(const dv_train_config *c);   /* malloc'd */
/* the first line where two formatted configs differ, ignoring keys in `ignore` (NULL-ended);
 * returns 0 when they agree, else 1 with both lines in a / b */
int dv_train_config_diff(const char *ta, const char *tb, const char *const *ignore, char *a,
                         char *b, size_t n);

/* loader options for this config (held-out or training part of the split) */
void dv_train_loader_opts(const dv_train_config *c, bool heldout, int64_t batch,
                          dv_calvin_loader_opts *o);

/* The specialist's inputs for a batch: images and proprio as loaded, the stand-in's actions
 * (quantised and corrupted ground truth, drawn from rng) in the shifted window of each
 * sample's latency, the stand-in's latents. Every tensor made here goes into pool.
 * Returns 0, or -1 (latents file without a frame). */
int dv_train_inputs(const dv_dit_config *cfg, const dv_standin *s, const dv_calvin_dit_batch *b,
                    dv_rng *rng, dv_pool *pool, dv_dit_inputs *in, char *err, size_t errlen);

/* --device: "cpu", "cuda" or "cuda:N", checked against the machine (a CUDA device that is not
 * there, or a build without CUDA, is an error naming the flag's value and the reason) */
int dv_session_device(const char *s, dv_device *d, char *err, size_t errlen);

/* the config text saved in a checkpoint (malloc'd), -1 with a message when the file is not a
 * dualvla checkpoint with a config */
int dv_ckpt_read_config(const char *path, char **text, char *err, size_t errlen);

/* the data folder: DIR itself when it holds a split, else DIR/training; *val (when val is
 * not NULL) gets DIR/validation when DIR is such a parent and it exists, else NULL */
int dv_train_open_data(const char *dir, dv_calvin **train, dv_calvin **val, char *err,
                       size_t errlen);

#endif
