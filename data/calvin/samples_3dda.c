/* data/calvin/samples_3dda.c — 3D Diffuser Actor's CALVIN samples (Ke et al. 2024, §4;
 * nickgkan/3d_diffuser_actor data_preprocessing/package_calvin.py in its close-loop mode and
 * datasets/dataset_calvin.py, as OpenHelix trains it), built straight from the npz frames
 * instead of from a re-packaged copy.
 *
 * Per sample (frame t of an annotated window):
 *   cameras   static and gripper, each as RGB in [0, 1] and a world-frame point cloud from
 *             its depth (geometry.h); the gripper camera is upscaled to the static camera's
 *             grid (bilinear RGB, nearest points, as cv2.resize in the packaging), then both
 *             are cropped by `crop` pixels per side (dataset_calvin.py's [20:180]).
 *   augment   one scale sc ~ U[rescale_lo, rescale_hi] per sample; both cameras, RGB and
 *             points alike, are resized to int(C·sc) by nearest neighbour (datasets/utils.py
 *             Resize, torchvision's NEAREST), reflect-padded right/bottom when smaller and
 *             randomly cropped back to C.
 *   poses     (x, y, z, quaternion, openness): openness is robot_obs[14] > 0; the quaternion
 *             comes from the euler angles in the references' convention (pytorch3d "XYZ",
 *             R = Rx·Ry·Rz — not CALVIN's own extrinsic xyz, selectable) and its sign is
 *             pytorch3d's (the largest component positive).
 *   history   nhist poses execute_every frames apart, ending at t, clamped to the window.
 *   trajectory the raw_traj poses of frames t, t+1, ... (clamped to the window's end) as
 *             (xyz, euler, openness), resampled to traj_len points on [0, 1] (cubic spline
 *             for xyz and euler, linear for openness: TrajectoryInterpolator), made relative
 *             to its first pose when asked (to_relative_action with clip=False: positions
 *             minus, euler angles as wrapped differences), then converted to quaternions.
 *
 * Not here: keypose discovery (the references' CALVIN runs use the close-loop mode), the
 * instruction's text encoding, position normalisation (the model's, with
 * dv_calvin_3dda_bounds).
 */
#include "data/calvin/geometry.h"
#include "data/calvin/image.h"
#include "data/calvin/samples.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void euler_matrix(dv_calvin_euler conv, const double e[3], double R[9]) {
    if (conv == DV_EULER_CALVIN_XYZ) { dv_euler_xyz_to_matrix(e, R); return; }
    /* Rx(e0) · Ry(e1) · Rz(e2) */
    double ca = cos(e[0]), sa = sin(e[0]), cb = cos(e[1]), sb = sin(e[1]), cc = cos(e[2]), sc = sin(e[2]);
    double X[9] = {1, 0, 0, 0, ca, -sa, 0, sa, ca}, Y[9] = {cb, 0, sb, 0, 1, 0, -sb, 0, cb};
    double Z[9] = {cc, -sc, 0, sc, cc, 0, 0, 0, 1}, XY[9];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            XY[i * 3 + j] = 0;
            for (int k = 0; k < 3; k++) XY[i * 3 + j] += X[i * 3 + k] * Y[k * 3 + j];
        }
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            R[i * 3 + j] = 0;
            for (int k = 0; k < 3; k++) R[i * 3 + j] += XY[i * 3 + k] * Z[k * 3 + j];
        }
}

/* (xyz, euler, openness) -> (xyz, quaternion, openness) */
static void pose7_to_8(const dv_calvin_3dda_opts *o, const double p7[7], float pose[8]) {
    double R[9], q[4]; /* q in wxyz */
    euler_matrix(o->euler, p7 + 3, R);
    dv_matrix_to_quat(R, DV_QUAT_WXYZ, q);
    if (o->euler == DV_EULER_PYTORCH3D_XYZ) {
        int big = 0;
        for (int i = 1; i < 4; i++) if (fabs(q[i]) > fabs(q[big])) big = i;
        if (q[big] < 0) for (int i = 0; i < 4; i++) q[i] = -q[i];
    }
    for (int i = 0; i < 3; i++) pose[i] = (float)p7[i];
    if (o->quat_wxyz) for (int i = 0; i < 4; i++) pose[3 + i] = (float)q[i];
    else pose[3] = (float)q[1], pose[4] = (float)q[2], pose[5] = (float)q[3], pose[6] = (float)q[0];
    pose[7] = (float)p7[6];
}

static void proprio7(const float robot_obs[15], double p7[7]) {
    for (int i = 0; i < 6; i++) p7[i] = robot_obs[i];
    p7[6] = robot_obs[14] > 0 ? 1.0 : 0.0;
}

void dv_calvin_3dda_pose(const dv_calvin_3dda_opts *o, const float robot_obs[15], float pose[8]) {
    double p7[7];
    proprio7(robot_obs, p7);
    pose7_to_8(o, p7, pose);
}

/* the interpolated (traj_len, 7) trajectory, relative or absolute, still with euler angles */
static int trajectory7(dv_calvin *d, const dv_calvin_3dda_opts *o, int32_t a, int64_t t, double *out,
                       char *err, size_t errlen) {
    const dv_calvin_ann *w = dv_calvin_annotation(d, a);
    const int n = o->raw_traj, m = o->traj_len;
    DV_ASSERT(n >= 1 && n <= 256 && m >= 1, "dv_calvin_3dda_trajectory: raw_traj = %d, traj_len = %d", n, m);
    double raw[7][256], res[256];
    for (int j = 0; j < n; j++) {
        dv_calvin_lowdim low;
        int64_t id = t + j < w->end ? t + j : w->end;
        if (dv_calvin_lowdim_get(d, id, &low, err, errlen)) return -1;
        double p7[7];
        proprio7(low.robot_obs, p7);
        for (int k = 0; k < 7; k++) raw[k][j] = p7[k];
    }
    for (int k = 0; k < 6; k++) {
        dv_spline_resample(raw[k], n, res, m);
        for (int i = 0; i < m; i++) out[i * 7 + k] = res[i];
    }
    for (int i = 0; i < m; i++) { /* openness: linear */
        double x = m == 1 ? 0 : (double)i / (m - 1) * (n - 1);
        int k = (int)x < n - 1 ? (int)x : (n > 1 ? n - 2 : 0);
        double f = n > 1 ? x - k : 0;
        out[i * 7 + 6] = n > 1 ? raw[6][k] * (1 - f) + raw[6][k + 1] * f : raw[6][0];
    }
    if (o->relative) {
        double first[7];
        memcpy(first, out, sizeof first);
        for (int i = 0; i < m; i++) {
            for (int k = 0; k < 3; k++) out[i * 7 + k] -= first[k];
            for (int k = 3; k < 6; k++) out[i * 7 + k] = dv_angle_diff(first[k], out[i * 7 + k]);
        }
    }
    return 0;
}

int dv_calvin_3dda_trajectory(dv_calvin *d, const dv_calvin_3dda_opts *o, int32_t a, int64_t t,
                              float *traj, char *err, size_t errlen) {
    double *t7 = malloc(sizeof(double) * 7 * (size_t)o->traj_len);
    int rc = trajectory7(d, o, a, t, t7, err, errlen);
    for (int i = 0; rc == 0 && i < o->traj_len; i++) pose7_to_8(o, t7 + 7 * i, traj + 8 * i);
    free(t7);
    return rc;
}

int dv_calvin_3dda_bounds(dv_calvin *d, const dv_calvin_3dda_opts *o, double buffer,
                          int64_t max_windows, float lo[3], float hi[3], char *err, size_t errlen) {
    dv_calvin_loader_opts lo_opts;
    dv_calvin_loader_defaults(&lo_opts, DV_CALVIN_3DDA);
    lo_opts.dda = *o;
    int64_t n_ann = dv_calvin_num_annotations(d);
    int64_t use = max_windows > 0 && max_windows < n_ann ? max_windows : n_ann;
    double mn[3] = {INFINITY, INFINITY, INFINITY}, mx[3] = {-INFINITY, -INFINITY, -INFINITY};
    double *t7 = malloc(sizeof(double) * 7 * (size_t)o->traj_len);
    for (int64_t u = 0; u < use; u++) {
        int32_t a = (int32_t)(u * n_ann / use);
        int64_t ns = dv_calvin_samples_of(d, &lo_opts, a, NULL, 0);
        dv_calvin_sample *s = malloc(sizeof *s * (size_t)ns);
        dv_calvin_samples_of(d, &lo_opts, a, s, ns);
        for (int64_t k = 0; k < ns; k++) {
            if (trajectory7(d, o, a, dv_calvin_annotation(d, a)->start + s[k].off, t7, err, errlen)) {
                free(s);
                free(t7);
                return -1;
            }
            for (int i = 0; i < o->traj_len; i++)
                for (int c = 0; c < 3; c++) {
                    double v = t7[i * 7 + c];
                    if (v < mn[c]) mn[c] = v;
                    if (v > mx[c]) mx[c] = v;
                }
        }
        free(s);
    }
    free(t7);
    for (int c = 0; c < 3; c++) lo[c] = (float)(mn[c] - buffer), hi[c] = (float)(mx[c] + buffer);
    return 0;
}

/* one camera of a frame on the G = gh x gw grid, as HWC float RGB [0, 1] and points */
static void camera_grid(const dv_calvin_camera *cam, const uint8_t *rgb, const float *depth, int h, int w,
                        int gh, int gw, float *rgb_g, float *pcd_g) {
    float *xyz = malloc(sizeof(float) * 3 * (size_t)h * w);
    dv_calvin_depth_to_points(cam, depth, xyz);
    if (h == gh && w == gw) {
        for (int64_t i = 0; i < (int64_t)h * w * 3; i++) rgb_g[i] = rgb[i] * (1.0f / 255);
        memcpy(pcd_g, xyz, sizeof(float) * 3 * (size_t)h * w);
    } else {
        float *rgbf = malloc(sizeof(float) * 3 * (size_t)h * w);
        for (int64_t i = 0; i < (int64_t)h * w * 3; i++) rgbf[i] = rgb[i] * (1.0f / 255);
        dv_resize_bilinear_f32_hwc(rgbf, h, w, 3, rgb_g, gh, gw);
        dv_resize_nearest_f32_hwc(xyz, h, w, 3, pcd_g, gh, gw, DV_NEAREST_CV2); /* cv2.resize */
        free(rgbf);
    }
    free(xyz);
}

/* the rows (or columns) of the grid the C output positions read: crop, then the augmentation's
 * nearest rescale to r = int(C·sc), reflect padding to C when smaller, and a crop at off */
void dv_calvin_3dda_axis_map(int crop, int C, int r, int off, int *map) {
    for (int i = 0; i < C; i++) {
        int p = i + off;                          /* in the padded, rescaled image */
        while (p >= r) p = 2 * (r - 1) - p;       /* reflect (torchvision pad "reflect") */
        if (p < 0) p = 0;
        map[i] = crop + dv_nearest_index(DV_NEAREST_TORCH, C, r, p); /* torchvision */
    }
}

int dv_calvin_3dda_build(dv_calvin *d, const dv_calvin_3dda_opts *o, const dv_calvin_sample *s,
                         const uint64_t *seeds, int64_t B, dv_calvin_3dda_batch *out, char *err,
                         size_t errlen) {
    memset(out, 0, sizeof *out);
    out->B = B;
    out->frame = calloc((size_t)B, sizeof(int64_t));
    out->instruction = calloc((size_t)B, sizeof(char *));
    out->gripper_hist = dv_empty(DV_F32, DV_SHAPE(B, o->nhist, 8));
    out->trajectory = dv_empty(DV_F32, DV_SHAPE(B, o->traj_len, 8));
    out->traj_mask = dv_zeros(DV_F32, DV_SHAPE(B, o->traj_len));
    int64_t S = 0;
    float *grid = NULL, *tmp = NULL;
    int *ymap = NULL, *xmap = NULL;
    for (int64_t b = 0; b < B; b++) {
        const dv_calvin_ann *w = dv_calvin_annotation(d, s[b].ann);
        int64_t t = w->start + s[b].off;
        dv_srng rng = {seeds[b]};
        out->frame[b] = t;
        out->instruction[b] = w->instruction;

        dv_calvin_frame f;
        if (dv_calvin_frame_load_keys(d, t, DV_FRAME_ALL, &f, err, errlen)) goto fail;
        const int gh = f.static_h, gw = f.static_w, Ch = gh - 2 * o->crop, Cw = gw - 2 * o->crop;
        if (Ch < 1 || Cw < 1 || Ch != Cw) {
            if (err && errlen)
                snprintf(err, errlen, "%s: frame %lld: a %dx%d static camera cannot be cropped by %d to a square",
                     dv_calvin_dir(d), (long long)t, gh, gw, o->crop);
            dv_calvin_frame_free(&f);
            goto fail;
        }
        const int C = Ch, Sout = o->image_size > 0 ? o->image_size : C;
        if (!out->rgb) {
            S = Sout;
            out->rgb = dv_empty(DV_F32, DV_SHAPE(B, 2, 3, S, S));
            out->pcd = dv_empty(DV_F32, DV_SHAPE(B, 2, 3, S, S));
        } else if (Sout != S) {
            if (err && errlen)
                snprintf(err, errlen, "%s: frame %lld: static camera %dx%d differs from the batch's other frames",
                     dv_calvin_dir(d), (long long)t, gh, gw);
            dv_calvin_frame_free(&f);
            goto fail;
        }
        free(grid), free(tmp), free(ymap), free(xmap);
        grid = malloc(sizeof(float) * 4 * 3 * (size_t)gh * gw); /* rgb_s, pcd_s, rgb_g, pcd_g */
        tmp = malloc(sizeof(float) * 3 * (size_t)C * C);
        ymap = malloc(sizeof(int) * (size_t)C), xmap = malloc(sizeof(int) * (size_t)C);

        dv_calvin_camera cs, cg;
        dv_calvin_static_camera(&cs);
        cs.width = f.static_w, cs.height = f.static_h;
        dv_calvin_gripper_camera(f.robot_obs, &cg);
        cg.width = f.gripper_w, cg.height = f.gripper_h;
        const size_t gsz = 3 * (size_t)gh * gw;
        camera_grid(&cs, f.rgb_static, f.depth_static, gh, gw, gh, gw, grid, grid + gsz);
        camera_grid(&cg, f.rgb_gripper, f.depth_gripper, f.gripper_h, f.gripper_w, gh, gw, grid + 2 * gsz,
                    grid + 3 * gsz);
        dv_calvin_frame_free(&f);

        int r = C, oy = 0, ox = 0;
        if (o->augment) {
            double sc = o->rescale_lo + (o->rescale_hi - o->rescale_lo) * dv_srng_uniform(&rng);
            r = (int)(C * sc);
            if (r < 1) r = 1;
            int padded = r > C ? r : C;
            oy = (int)dv_srng_int(&rng, 0, padded - C);
            ox = (int)dv_srng_int(&rng, 0, padded - C);
        }
        dv_calvin_3dda_axis_map(o->crop, C, r, oy, ymap);
        dv_calvin_3dda_axis_map(o->crop, C, r, ox, xmap);
        for (int cam = 0; cam < 2; cam++)
            for (int kind = 0; kind < 2; kind++) { /* 0 rgb, 1 pcd */
                const float *src = grid + (size_t)(2 * cam + kind) * gsz;
                for (int y = 0; y < C; y++)
                    for (int x = 0; x < C; x++)
                        memcpy(tmp + ((size_t)y * C + x) * 3, src + ((size_t)ymap[y] * gw + xmap[x]) * 3,
                               3 * sizeof(float));
                float *dst = (float *)dv_data(kind ? out->pcd : out->rgb) + ((b * 2 + cam) * 3) * S * S;
                if (kind == 0) dv_resize_bilinear_f32_chw(tmp, C, C, 3, dst, (int)S, (int)S);
                else dv_resize_nearest_f32_chw(tmp, C, C, 3, dst, (int)S, (int)S, DV_NEAREST_TORCH);
            }

        float *hist = (float *)dv_data(out->gripper_hist) + b * o->nhist * 8;
        for (int h = 0; h < o->nhist; h++) {
            int64_t id = t - (int64_t)(o->nhist - 1 - h) * o->execute_every;
            dv_calvin_lowdim low;
            if (dv_calvin_lowdim_get(d, id < w->start ? w->start : id, &low, err, errlen)) goto fail;
            dv_calvin_3dda_pose(o, low.robot_obs, hist + h * 8);
        }
        if (dv_calvin_3dda_trajectory(d, o, s[b].ann, t, (float *)dv_data(out->trajectory) + b * o->traj_len * 8,
                                      err, errlen))
            goto fail;
    }
    free(grid), free(tmp), free(ymap), free(xmap);
    return 0;
fail:
    free(grid), free(tmp), free(ymap), free(xmap);
    dv_calvin_batch_free(DV_CALVIN_3DDA, out);
    return -1;
}
