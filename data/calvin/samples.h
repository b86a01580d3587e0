/* data/calvin/samples.h — internal to data/calvin: what the loader (loader.c) and the sample
 * builders (samples_dit.c, samples_3dda.c, samples_mllm.c) share with the dataset
 * (dataset.c). Not a public interface: tools and models use dataset.h.
 *
 * A sample is (annotation, offset): the offset of its frame (DiT: the start s; 3DDA and
 * MLLM: the frame t) from the annotation's first frame. A batch is built from B samples and
 * B 64-bit seeds, one per sample, from which every random choice of that sample is drawn —
 * so a sample's content does not depend on which thread builds it.
 */
#ifndef DV_DATA_CALVIN_SAMPLES_H
#define DV_DATA_CALVIN_SAMPLES_H

#include "data/calvin/dataset.h"

#include <stddef.h>
#include <stdint.h>

typedef struct { int32_t ann, off; } dv_calvin_sample;

/* ---- dataset internals (dataset.c) ---------------------------------------------------------- */
/* the low-dimensional keys of a frame, read once and cached (thread-safe) */
typedef struct { float actions[7], rel_actions[7], robot_obs[15]; } dv_calvin_lowdim;
int dv_calvin_lowdim_get(dv_calvin *d, int64_t id, dv_calvin_lowdim *out, char *err, size_t errlen);

/* which keys dv_calvin_frame_load_keys decodes (the low-dimensional ones always) */
enum {
    DV_FRAME_RGB_STATIC = 1, DV_FRAME_RGB_GRIPPER = 2,
    DV_FRAME_DEPTH_STATIC = 4, DV_FRAME_DEPTH_GRIPPER = 8, DV_FRAME_ALL = 15,
};
int dv_calvin_frame_load_keys(dv_calvin *d, int64_t id, unsigned keys, dv_calvin_frame *f,
                              char *err, size_t errlen);
/* bytes of npz files read by frame loads so far (for the benchmark's MB/s) */
int64_t dv_calvin_bytes_read(const dv_calvin *d);

/* ---- samples --------------------------------------------------------------------------------- */
/* the samples of annotation a for the loader options o: writes up to cap entries into out
 * (out may be NULL) and returns how many there are */
int64_t dv_calvin_samples_of(const dv_calvin *d, const dv_calvin_loader_opts *o, int32_t a,
                             dv_calvin_sample *out, int64_t cap);

/* allocate the batch struct for o (B samples), fill it, or free it */
int dv_calvin_dit_build(dv_calvin *d, const dv_calvin_dit_opts *o, const dv_calvin_sample *s,
                        const uint64_t *seeds, int64_t B, dv_calvin_dit_batch *out, char *err,
                        size_t errlen);
int dv_calvin_3dda_build(dv_calvin *d, const dv_calvin_3dda_opts *o, const dv_calvin_sample *s,
                         const uint64_t *seeds, int64_t B, dv_calvin_3dda_batch *out, char *err,
                         size_t errlen);
int dv_calvin_mllm_build(dv_calvin *d, int size, int every, const dv_calvin_sample *s,
                         int64_t B, dv_calvin_mllm_batch *out, char *err, size_t errlen);

/* the 3DDA side, exposed for tests and bounds:
 * the pose (xyz, quaternion, openness) of a robot_obs, in o's euler convention and order */
void dv_calvin_3dda_pose(const dv_calvin_3dda_opts *o, const float robot_obs[15], float pose[8]);
/* the trajectory of frame t of annotation a: (traj_len, 8) */
int dv_calvin_3dda_trajectory(dv_calvin *d, const dv_calvin_3dda_opts *o, int32_t a, int64_t t,
                              float *traj, char *err, size_t errlen);

/* the grid rows (or columns) that C output positions read: crop, then the augmentation's
 * nearest rescale of the C-wide crop to r, reflect padding back to C when r < C, a crop at off */
void dv_calvin_3dda_axis_map(int crop, int C, int r, int off, int *map);

/* scipy's CubicSpline(linspace(0, 1, n), y) (not-a-knot ends; a parabola for n = 3, a line
 * for n = 2) evaluated at linspace(0, 1, m); n <= 256 */
void dv_spline_resample(const double *y, int n, double *out, int m);
/* the angle b - a wrapped into [-pi, pi) (calvin_env's angle_between_angles) */
double dv_angle_diff(double a, double b);

/* ---- seeded randomness ---------------------------------------------------------------------- */
/* splitmix64: a good 64-bit mix, used to derive per-epoch and per-sample seeds */
static inline uint64_t dv_mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
/* a tiny stream for one sample: next 64 bits, a double in [0, 1), an int in [lo, hi] */
typedef struct { uint64_t s; } dv_srng;
static inline uint64_t dv_srng_next(dv_srng *r) { r->s += 0x9e3779b97f4a7c15ull; return dv_mix64(r->s); }
static inline double dv_srng_uniform(dv_srng *r) { return (double)(dv_srng_next(r) >> 11) * 0x1p-53; }
static inline int64_t dv_srng_int(dv_srng *r, int64_t lo, int64_t hi) {
    return lo + (int64_t)(dv_srng_next(r) % (uint64_t)(hi - lo + 1));
}

#endif
