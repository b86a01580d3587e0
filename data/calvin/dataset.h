/* data/calvin/dataset.h — a CALVIN split on disk, its language-annotated windows, and the
 * training samples both policies and the MLLM are fed, batched by a seeded multi-threaded
 * loader.
 *
 * On disk (one split, e.g. task_ABC_D/training/):
 *   episode_0000000.npz ...           one frame each: actions (7), rel_actions (7),
 *                                     robot_obs (15), scene_obs (24), rgb_static (200,200,3) u8,
 *                                     rgb_gripper (84,84,3) u8, depth_static (200,200) f32,
 *                                     depth_gripper (84,84) f32, [rgb_tactile, depth_tactile]
 *   ep_start_end_ids.npy              (E, 2) int: first and last frame id of each episode
 *   scene_info.npy                    pickled dict (which scene each range of frames is from)
 *   statistics.yaml                   per-key mean / std (a tiny YAML subset is read)
 *   lang_annotations/auto_lang_ann.npy  pickled dict: info.indx [(start, end)], language.ann,
 *                                     language.task, language.emb (data/calvin/pickle.h)
 * Frame ids are global (the number in the file name), not per episode.
 *
 * Only frames inside an annotated [start, end] interval (inclusive) are used for training;
 * each annotation carries its instruction string and task name.
 *
 * Determinism: batch number i of a loader is a pure function of (seed, i) — which samples,
 * their order (a seeded shuffle per epoch) and every random augmentation — whatever the
 * number of threads. A training run resumed at step s asks for batch s and gets exactly the
 * batch the uninterrupted run got.
 *
 * Tensors are handed over as dv_tensor (f32 unless stated), on the CPU, contiguous.
 */
#ifndef DV_DATA_CALVIN_DATASET_H
#define DV_DATA_CALVIN_DATASET_H

#include "tensor/tensor.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct dv_calvin dv_calvin;

typedef struct {
    int64_t start, end;        /* frame ids, inclusive */
    const char *instruction;   /* "open the drawer" */
    const char *task;          /* "open_drawer" */
} dv_calvin_ann;

/* dir: a split folder (holding ep_start_end_ids.npy and lang_annotations/) */
int dv_calvin_open(const char *dir, dv_calvin **out, char *err, size_t errlen);
void dv_calvin_close(dv_calvin *d);
int64_t dv_calvin_num_annotations(const dv_calvin *d);
const dv_calvin_ann *dv_calvin_annotation(const dv_calvin *d, int64_t i);
int64_t dv_calvin_num_episodes(const dv_calvin *d);
void dv_calvin_episode(const dv_calvin *d, int64_t i, int64_t *start, int64_t *end);

/* one frame, decoded (images owned by the frame) */
typedef struct {
    int64_t id;
    float actions[7], rel_actions[7], robot_obs[15], scene_obs[24];
    uint8_t *rgb_static;   /* (200, 200, 3) */
    uint8_t *rgb_gripper;  /* (84, 84, 3) */
    float *depth_static;   /* (200, 200) metres */
    float *depth_gripper;  /* (84, 84) metres */
    int static_h, static_w, gripper_h, gripper_w;
} dv_calvin_frame;
int dv_calvin_frame_load(dv_calvin *d, int64_t id, dv_calvin_frame *f, char *err, size_t errlen);
void dv_calvin_frame_free(dv_calvin_frame *f);

/* ---- samples ----------------------------------------------------------------------------
 * RoboDual's DiT specialist (RoboDual §3.2, App. B): frame t of an annotated window.
 */
typedef struct {
    int64_t B;
    dv_tensor *rgb_static;    /* (B, S, 3, 224, 224) in [0, 1]; S = static_frames, oldest first */
    dv_tensor *rgb_gripper;   /* (B, 3, 224, 224) in [0, 1] */
    dv_tensor *depth_static;  /* (B, 1, 224, 224) metres */
    dv_tensor *depth_gripper; /* (B, 1, 224, 224) metres */
    dv_tensor *proprio;       /* (B, 15) robot_obs of frame t */
    dv_tensor *actions;       /* (B, chunk, 7) rel_actions of frames t .. t+chunk-1 (clamped
                                 to the window's end by repeating its last action) */
    dv_tensor *gen_actions;   /* (B, gen_chunk, 7) rel_actions of frames t-tau .. : what the
                                 generalist, run tau frames ago, would have been trained on */
    int32_t *tau;             /* (B) latency of this sample, uniform in [0, max_latency] */
    int64_t *frame;           /* (B) frame ids t */
    const char **instruction; /* (B) borrowed from the dataset */
} dv_calvin_dit_batch;

typedef struct {
    int chunk;            /* 8 */
    int gen_chunk;        /* k_g, 8 */
    int max_latency;      /* 0 disables the latency augmentation */
    int static_frames;    /* 1 (paper) or 2 (released code: previous + current) */
    int image_size;       /* 224 */
} dv_calvin_dit_opts;

/* 3D Diffuser Actor (OpenHelix configuration): both cameras at 256×256 as RGB + world
 * point clouds, gripper history and the future trajectory. */
typedef struct {
    int64_t B;
    dv_tensor *rgb;          /* (B, 2, 3, 256, 256) in [0, 1]; cameras static, gripper */
    dv_tensor *pcd;          /* (B, 2, 3, 256, 256) world xyz, metres */
    dv_tensor *gripper_hist; /* (B, nhist, 8) position, quaternion (wxyz), opening */
    dv_tensor *trajectory;   /* (B, traj_len, 8) future poses, interpolated */
    dv_tensor *traj_mask;    /* (B, traj_len) 1 where padded */
    int64_t *frame;
    const char **instruction;
} dv_calvin_3dda_batch;

typedef struct {
    int nhist;            /* 3 */
    int traj_len;         /* 20 */
    bool relative;        /* relative (to the current gripper) or absolute positions */
    bool augment;         /* random rescale + crop, applied to RGB and points alike */
    int image_size;       /* 256 */
} dv_calvin_3dda_opts;

/* the MLLM (LLaVA): third-view RGB + instruction; one latent serves `every` frames */
typedef struct {
    int64_t B;
    dv_tensor *rgb_static;    /* (B, 3, size, size) in [0, 1] */
    int64_t *frame;
    const char **instruction;
} dv_calvin_mllm_batch;

typedef enum { DV_CALVIN_DIT, DV_CALVIN_3DDA, DV_CALVIN_MLLM } dv_calvin_kind;

typedef struct {
    dv_calvin_kind kind;
    int64_t batch;          /* B */
    uint64_t seed;
    int threads;            /* prefetch workers (0: one per core) */
    int64_t max_bytes;      /* bound on decoded batches held in memory (0: 4 batches' worth) */
    double holdout;         /* fraction of annotations held out (validation), by seed */
    bool heldout;           /* draw from the held-out part instead of the training part */
    dv_calvin_dit_opts dit;
    dv_calvin_3dda_opts dda;
    int mllm_size, mllm_every;
} dv_calvin_loader_opts;

/* fills opts with the references' defaults for kind */
void dv_calvin_loader_defaults(dv_calvin_loader_opts *o, dv_calvin_kind kind);

typedef struct dv_calvin_loader dv_calvin_loader;
int dv_calvin_loader_new(dv_calvin *d, const dv_calvin_loader_opts *o, dv_calvin_loader **out,
                         char *err, size_t errlen);
void dv_calvin_loader_free(dv_calvin_loader *l);
int64_t dv_calvin_loader_num_samples(const dv_calvin_loader *l); /* per epoch */
/* batch i (0, 1, 2, ...; deterministic, see above). The loader prefetches i+1, i+2, ...
 * so asking in order is fast; any i works. out must be the batch struct of the loader's
 * kind; free it with dv_calvin_batch_free. */
int dv_calvin_loader_get(dv_calvin_loader *l, int64_t i, void *out, char *err, size_t errlen);
void dv_calvin_batch_free(dv_calvin_kind kind, void *batch);

#endif
