/* tensor/checkpoint.h — training checkpoints: everything needed to resume a run, in one
 * safetensors file (tensor/safetensors.h), written atomically.
 *
 * What goes in:
 *   tensors   named tensors, saved in their own dtype and shape: the parameters (plain names,
 *             e.g. "dit.blocks.0.attn.qkv.weight", so the file doubles as a weights file) and
 *             the optimiser state, by convention "optim.<state>.<param>"
 *             (e.g. "optim.exp_avg.dit.blocks.0.attn.qkv.weight"). Any names work; the
 *             checkpoint does not know what an optimiser is.
 *   step      the training step, __metadata__ "dualvla.step" (decimal)
 *   rngs      named dv_rng streams, __metadata__ "dualvla.rng.<name>" = "<seed>:<offset>"
 *   config    a free-form string (the run's config file, say), __metadata__ "dualvla.config"
 * and __metadata__ "dualvla.checkpoint" = "1" marks the file as a checkpoint.
 *
 * Loading restores into tensors and rngs that already exist (the model and optimiser are
 * built first, from the config, then filled). It is strict, because a resumed run that
 * silently skipped a tensor is worse than one that stops: every tensor and rng asked for must
 * be in the file with the same dtype and shape, and every tensor and rng in the file must be
 * asked for. Everything is checked before anything is written, so a failed load leaves the
 * tensors, rngs and step as they were. Errors name the file, the tensor and what differs.
 * (To load only some weights, e.g. fine-tuning from pretrained ones, use dv_st_open/dv_st_get.)
 *
 * Example:
 *   dv_ckpt_tensor ts[] = {{"w", w}, {"optim.exp_avg.w", m}, {"optim.exp_avg_sq.w", v}};
 *   dv_ckpt_rng rs[] = {{"data", &data_rng}, {"dropout", &drop_rng}};
 *   dv_checkpoint ck = {.step = step, .tensors = ts, .n_tensors = 3, .rngs = rs, .n_rngs = 2,
 *                       .config = config_text};
 *   if (dv_checkpoint_save("run/ckpt.safetensors", &ck, err, sizeof err)) { puts(err); ... }
 *   ... later, in a fresh process with w, m, v, the rngs built:
 *   char *config = NULL;
 *   if (dv_checkpoint_load("run/ckpt.safetensors", &ck, &config, err, sizeof err)) ...
 *   step = ck.step; free(config);
 */
#ifndef DV_TENSOR_CHECKPOINT_H
#define DV_TENSOR_CHECKPOINT_H

#include "tensor/tensor.h"

typedef struct { const char *name; dv_tensor *tensor; } dv_ckpt_tensor;
typedef struct { const char *name; dv_rng *rng; } dv_ckpt_rng;

typedef struct {
    int64_t step;
    const dv_ckpt_tensor *tensors;
    int n_tensors;
    const dv_ckpt_rng *rngs;
    int n_rngs;
    const char *config; /* save only (NULL = none); load returns it through its own argument */
} dv_checkpoint;

/* Writes ck to path atomically (temp file, fsync, rename): on failure the old file is kept.
 * Tensors may be any dtype and strides (CPU). Returns 0, or -1 with a message in err. */
int dv_checkpoint_save(const char *path, const dv_checkpoint *ck, char *err, size_t errlen);

/* Checks the file against ck, then copies every tensor into ck->tensors[i].tensor (any
 * strides), sets *ck->rngs[i].rng and ck->step. config (may be NULL) gets a malloc'd copy of
 * the saved config string (free it), or NULL if none was saved. Returns 0, or -1 with a
 * message in err and nothing changed. */
int dv_checkpoint_load(const char *path, dv_checkpoint *ck, char **config, char *err, size_t errlen);

#endif
