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
 * Frame ids are global (the number in the file name), not per episode. The low-dimensional
 * keys may be float32 or float64 (real CALVIN stores float64); they are handed over as float.
 *
 * Only frames inside an annotated [start, end] interval (inclusive) are used for training;
 * each annotation carries its instruction string and task name.
 *
 * Determinism: batch number i of a loader is a pure function of (seed, i) — which samples,
 * their order (a seeded shuffle per epoch) and every random augmentation — whatever the
 * number of threads. A training run resumed at step s asks for batch s and gets exactly the
 * batch the uninterrupted run got. Batches run on across epoch boundaries (sample position
 * p = i·B + b lives in epoch p / N), so no sample is dropped and every batch is full.
 *
 * Tensors are handed over as dv_tensor (f32 unless stated), on the CPU, contiguous.
 * Not here: the synthetic generator (data/calvin/synth.h), the camera model
 * (data/calvin/geometry.h), the file readers (npy.h, pickle.h), any GPU upload.
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

/* dir: a split folder (holding ep_start_end_ids.npy and lang_annotations/). Validates: every
 * annotation window has start <= end, lies inside one episode of ep_start_end_ids.npy, and
 * the npz files of its first and last frame exist; the annotation lists agree in length and
 * are not empty. Errors name the file and the key (and the index of the bad entry). */
int dv_calvin_open(const char *dir, dv_calvin **out, char *err, size_t errlen);
void dv_calvin_close(dv_calvin *d);
const char *dv_calvin_dir(const dv_calvin *d);
int64_t dv_calvin_num_annotations(const dv_calvin *d);
const dv_calvin_ann *dv_calvin_annotation(const dv_calvin *d, int64_t i);
int64_t dv_calvin_num_episodes(const dv_calvin *d);
/* first and last frame id of episode i (named _bounds: synth.h's dv_calvin_episode is a type) */
void dv_calvin_episode_bounds(const dv_calvin *d, int64_t i, int64_t *start, int64_t *end);

/* statistics.yaml, when the split has one: `key` is a top-level key ("robot_obs",
 * "act_min_bound"), `field` a field of its (first) entry ("mean", "std") or NULL for a list
 * given directly under key. Returns the number of values (*vals borrowed), or 0 when absent. */
int dv_calvin_stat(const dv_calvin *d, const char *key, const char *field, const float **vals);

/* one frame, decoded (images owned by the frame) */
typedef struct {
    int64_t id;
    float actions[7], rel_actions[7], robot_obs[15], scene_obs[24];
    uint8_t *rgb_static;   /* (200, 200, 3) */
    uint8_t *rgb_gripper;  /* (84, 84, 3) */
    float *depth_static;   /* (200, 200) metres */
    float *depth_gripper;  /* (84, 84) metres */
    int static_h, static_w, gripper_h, gripper_w;
    /* the tactile sensors, when the frame has them (else NULL): loaded by dv_calvin_frame_load */
    uint8_t *rgb_tactile;  /* (160, 120, 6): both fingers' RGB */
    float *depth_tactile;  /* (160, 120, 2) */
    int tactile_h, tactile_w;
} dv_calvin_frame;
/* every key above, with its dtype and shape checked (errors name the file and the key) */
int dv_calvin_frame_load(dv_calvin *d, int64_t id, dv_calvin_frame *f, char *err, size_t errlen);
void dv_calvin_frame_free(dv_calvin_frame *f);

/* ---- samples ----------------------------------------------------------------------------
 * RoboDual's DiT specialist (RoboDual §3.2, App. B; the released calvin_dataset.py): a
 * sample starts at frame s of an annotated window; the generalist saw frame s and predicts
 * the gen_chunk actions from s; the specialist runs tau frames later, at t = s + tau
 * (tau uniform in [0, max_latency]: the latency-aware augmentation), and is trained on the
 * chunk actions from t. Starts s run over [start, end + 1 - span] with span =
 * max(max_latency + chunk, gen_chunk) (at least `start`), so every frame index stays inside
 * the window; shorter windows are clamped to their last frame (actions repeat the window's
 * last action).
 */
typedef struct {
    int64_t B;
    dv_tensor *rgb_static;    /* (B, S, 3, 224, 224) in [0, 1]; S = static_frames, oldest first */
    dv_tensor *rgb_gripper;   /* (B, 3, 224, 224) in [0, 1] */
    dv_tensor *depth_static;  /* (B, 1, 224, 224) metres */
    dv_tensor *depth_gripper; /* (B, 1, 224, 224) metres */
    dv_tensor *proprio;       /* (B, proprio_dim) robot_obs of frame t (15), or its released
                                 7-D form (tcp xyz, euler xyz, gripper action) */
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
    int max_latency;      /* 7 (released: randint(0, chunk - 1)); 0 disables the augmentation */
    int static_frames;    /* 1 (paper) or 2 (released code: previous + current) */
    int image_size;       /* 224 */
    int proprio_dim;      /* 15 (robot_obs) or 7 (released: robot_obs[0:6] + robot_obs[14]) */
} dv_calvin_dit_opts;

/* 3D Diffuser Actor (calvin packaging of nickgkan/3d_diffuser_actor, as OpenHelix trains
 * it): samples are every `execute_every`-th frame of a window (its last frame excluded);
 * both cameras as RGB + world point clouds on the static camera's grid (the gripper camera
 * upscaled: bilinear RGB, nearest points), cropped by `crop` pixels on each side
 * (200 -> 160), randomly rescaled and cropped when augmenting, and resized to image_size
 * when that is set. Poses are (xyz, quaternion, openness: robot_obs[14] > 0 as 0 or 1, linearly
 * interpolated along trajectories). Batches here count samples; the references' batch of 15
 * counts annotation windows, each bringing all of its (~16) samples. */
typedef struct {
    int64_t B;
    dv_tensor *rgb;          /* (B, 2, 3, S, S) in [0, 1]; cameras static, gripper */
    dv_tensor *pcd;          /* (B, 2, 3, S, S) world xyz, metres */
    dv_tensor *gripper_hist; /* (B, nhist, 8) poses of frames t - (nhist-1)·execute_every .. t
                                (clamped to the window's start), oldest first; absolute */
    dv_tensor *trajectory;   /* (B, traj_len, 8) poses of frames t .. t+raw_traj-1 (clamped to
                                the window's end), densely interpolated to traj_len; index 0 is
                                the current pose (the references train on [:, 1:]) */
    dv_tensor *traj_mask;    /* (B, traj_len) 1 where padded (never, for CALVIN) */
    int64_t *frame;          /* (B) frame ids t */
    const char **instruction;
} dv_calvin_3dda_batch;

typedef enum {
    DV_EULER_PYTORCH3D_XYZ, /* R = Rx·Ry·Rz: what the references' convert_rotation computes */
    DV_EULER_CALVIN_XYZ,    /* R = Rz·Ry·Rx: CALVIN's own (geometry.h) */
} dv_calvin_euler;

typedef struct {
    int nhist;            /* 3 (the dataset always gives 3; OpenHelix's model reads the last 1) */
    int traj_len;         /* 20: interpolation_length */
    int raw_traj;         /* 16: frames in a trajectory before interpolation (traj_len of
                             package_calvin.py) */
    int execute_every;    /* 4: frame stride of samples and of the gripper history */
    bool relative;        /* trajectory relative to its first pose (positions minus, angles
                             wrapped differences of the euler angles) or absolute */
    bool augment;         /* random rescale + crop, applied to RGB and points alike */
    float rescale_lo, rescale_hi; /* 0.75, 1.25 */
    int crop;             /* 20: pixels cut from each side of the 200x200 grid */
    int image_size;       /* 0: keep the cropped size (160); else resize to this */
    dv_calvin_euler euler;   /* DV_EULER_PYTORCH3D_XYZ */
    int quat_wxyz;        /* 1: wxyz (the references' quaternion_format), 0: xyzw */
} dv_calvin_3dda_opts;

/* Workspace bounds of the trajectories' positions (relative or absolute per o), min - buffer
 * and max + buffer over every sample's interpolated trajectory (OpenHelix: relative, buffer
 * 0.01). max_windows > 0 looks at that many annotations, evenly spaced, instead of all. */
int dv_calvin_3dda_bounds(dv_calvin *d, const dv_calvin_3dda_opts *o, double buffer,
                          int64_t max_windows, float lo[3], float hi[3], char *err, size_t errlen);

/* the MLLM (LLaVA): third-view RGB + instruction; one latent serves `every` frames, so the
 * samples are the frames start, start + every, ... of each window (OpenHelix's sample_rate) */
typedef struct {
    int64_t B;
    dv_tensor *rgb_static;    /* (B, 3, size, size) in [0, 1] */
    int64_t *frame;           /* (B) the frame the latent is computed from */
    int32_t *serves;          /* (B) how many frames (from `frame` on) the latent serves */
    const char **instruction;
} dv_calvin_mllm_batch;

typedef enum { DV_CALVIN_DIT, DV_CALVIN_3DDA, DV_CALVIN_MLLM } dv_calvin_kind;

typedef struct {
    dv_calvin_kind kind;
    int64_t batch;          /* B */
    uint64_t seed;
    int threads;            /* prefetch workers (0: one per core) */
    int64_t max_bytes;      /* bound on decoded batches held in memory (0: 4 batches' worth);
                               at least one batch is always held */
    double holdout;         /* fraction of annotations held out (validation), by seed */
    bool heldout;           /* draw from the held-out part instead of the training part */
    dv_calvin_dit_opts dit;
    dv_calvin_3dda_opts dda;
    int mllm_size, mllm_every;
} dv_calvin_loader_opts;

/* fills opts with the references' defaults for kind */
void dv_calvin_loader_defaults(dv_calvin_loader_opts *o, dv_calvin_kind kind);

typedef struct dv_calvin_loader dv_calvin_loader;
/* the loader borrows d: close d only after freeing the loader */
int dv_calvin_loader_new(dv_calvin *d, const dv_calvin_loader_opts *o, dv_calvin_loader **out,
                         char *err, size_t errlen);
void dv_calvin_loader_free(dv_calvin_loader *l);
int64_t dv_calvin_loader_num_samples(const dv_calvin_loader *l); /* per epoch */
/* batch i (0, 1, 2, ...; deterministic, see above). The loader prefetches i+1, i+2, ...
 * so asking in order is fast; any i works. out must be the batch struct of the loader's
 * kind; free it with dv_calvin_batch_free. One consumer thread at a time. */
int dv_calvin_loader_get(dv_calvin_loader *l, int64_t i, void *out, char *err, size_t errlen);
void dv_calvin_batch_free(dv_calvin_kind kind, void *batch);
/* bytes of one decoded batch of these options (what max_bytes is counted in) */
int64_t dv_calvin_batch_bytes(const dv_calvin_loader_opts *o);

#endif
