/* data/calvin/synth.h — a synthetic dataset in exactly CALVIN's on-disk layout, so that the
 * whole pipeline runs on a fresh machine with nothing downloaded (`dualvla calvin-synth`).
 *
 * Layout written under DIR (see data/calvin/dataset.h and mees/calvin dataset/README.md):
 *   training/ and validation/, each with
 *     episode_%07d.npz        one frame: actions (7) f32, rel_actions (7) f32, robot_obs (15) f32,
 *                             scene_obs (24) f32, rgb_static (200,200,3) u8, rgb_gripper
 *                             (84,84,3) u8, depth_static (200,200) f32, depth_gripper (84,84) f32
 *     ep_start_end_ids.npy    (E, 2) i64, first and last frame id of each episode
 *     ep_lens.npy             (E,) i64
 *     scene_info.npy          pickled {"calvin_scene_D": [first id, last id]}
 *     statistics.yaml         robot_obs / scene_obs mean and std (NormalizeVector entries),
 *                             act_min_bound, act_max_bound — of the training split, in both
 *     lang_annotations/auto_lang_ann.npy
 *                             pickled {"info": {"indx": [(start, end)], "episodes": []},
 *                                      "language": {"ann": [...], "task": [...],
 *                                                   "emb": (N, 1, 384) f32}}
 * Frame ids are global and contiguous: training first, then validation.
 *
 * Content: each episode is one scripted CALVIN task in a freshly sampled scene (render.h):
 * open_drawer, close_drawer, move_slider_left/right, lift_{red,blue,pink}_block_table,
 * push_{red,blue,pink}_block_{left,right}, rotate_{red,blue,pink}_block_{left,right}, with
 * instruction strings from CALVIN's conf/annotations/new_playtable.yaml. The robot holds
 * still for the first F/16 frames, which are left out of the annotated window. Frame t holds
 * the observation and the action taken from it:
 *   actions[t]      = the TCP pose of frame t+1 (position, euler xyz) + gripper ±1
 *                     (the last frame of an episode repeats its own pose)
 *   rel_actions[t]  = calvin_env's to_relative_action: clip(Δpos, ±0.02)/0.02 (×50),
 *                     clip(wrap(Δeuler), ±0.05)/0.05 (×20), gripper
 *   robot_obs[t]    = TCP position, euler xyz, gripper opening width (m), 7 arm joints,
 *                     previous gripper action. The joints are made up (a fixed linear map of
 *                     the TCP offset from CALVIN's home joint angles), not inverse kinematics.
 *   scene_obs[t]    = sliding door, drawer, button, switch, lightbulb, green light, then
 *                     red, blue, pink block (x, y, z, euler xyz).
 * Motion is piecewise linear, at most 0.018 m per axis and 0.045 rad per frame, so rel_actions
 * are unclipped unless F is too short for the task (then the script is sped up and clips, as
 * real teleoperated data sometimes does).
 *
 * language.emb is no language model: a 384-d hashed character-trigram embedding
 * (dv_calvin_text_embedding) — deterministic, similar for similar sentences, and the size of
 * CALVIN's MiniLM embeddings so that code reading it runs unchanged.
 *
 * Determinism: the dataset is a pure function of (episodes, frames per episode, validation
 * episodes, seed, camera config): same bytes whatever the number of threads.
 *
 * Not here: the tactile keys (rgb_tactile, depth_tactile), validation/lang_annotations/
 * embeddings.npy (only CALVIN's rollouts read it), scenes A–C (every frame is "scene D"),
 * physics (objects move only when the script drags them), several tasks in one episode.
 */
#ifndef DV_DATA_CALVIN_SYNTH_H
#define DV_DATA_CALVIN_SYNTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DV_CALVIN_EMB_DIM 384

typedef struct {
    int episodes;            /* total, both splits */
    int frames_per_episode;  /* F >= 16; 64 by default (CALVIN's annotation windows are ~64) */
    int val_episodes;        /* -1: max(1, episodes / 10) when episodes >= 2, else 0 */
    uint64_t seed;
    bool compress;           /* np.savez_compressed (like the released dataset) vs np.savez */
    bool force;              /* write into a non-empty DIR */
    int threads;             /* 0: max(4, OpenMP's default) (writing waits on fsync) */
} dv_calvin_synth_opts;

void dv_calvin_synth_defaults(dv_calvin_synth_opts *o);

typedef struct {
    int train_episodes, val_episodes;
    int64_t train_frames, val_frames;
    int64_t bytes;           /* written */
} dv_calvin_synth_report;

/* writes the dataset; 0, or -1 with a message naming the file and what went wrong */
int dv_calvin_synth(const char *dir, const dv_calvin_synth_opts *o, dv_calvin_synth_report *rep,
                    char *err, size_t errlen);

/* ---- the pieces, for tests and other generators ----------------------------------------- */

int dv_calvin_synth_num_tasks(void);
const char *dv_calvin_synth_task_name(int task);          /* "open_drawer" */
int dv_calvin_synth_task_find(const char *name);          /* -1 when unknown */
/* instruction strings of a task (CALVIN's, a few per task) */
int dv_calvin_synth_num_instructions(int task);
const char *dv_calvin_synth_instruction(int task, int i);

/* one scripted episode, frame by frame */
typedef struct {
    int frames;
    int task;
    int ann_start;               /* first annotated frame (0-based, within the episode) */
    const char *instruction;
    float (*actions)[7], (*rel_actions)[7], (*robot_obs)[15], (*scene_obs)[24];
} dv_calvin_synth_episode;

/* episode `index` of a dataset with this seed; task < 0 picks it from (seed, index) */
int dv_calvin_synth_episode_make(uint64_t seed, int index, int frames, int task, dv_calvin_synth_episode *ep,
                           char *err, size_t errlen);
void dv_calvin_synth_episode_free(dv_calvin_synth_episode *ep);

/* calvin_env's to_relative_action with the dataset's scaling (×50 position, ×20 orientation) */
void dv_calvin_rel_action(const float action[7], const float robot_obs[15], float rel[7]);

/* the placeholder-free instruction embedding (unit L2 norm) */
void dv_calvin_text_embedding(const char *text, float emb[DV_CALVIN_EMB_DIM]);

#endif
