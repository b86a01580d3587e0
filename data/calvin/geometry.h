/* data/calvin/geometry.h — CALVIN's cameras and the rotation conventions of its actions.
 *
 * Cameras. CALVIN renders with PyBullet: a view matrix from (look_from, look_at, up) as
 * computeViewMatrix builds it and a perspective projection from (fov, aspect, near, far) as
 * computeProjectionMatrixFOV builds it (OpenGL conventions, column-major 4×4). Depth in the
 * dataset (depth_static, depth_gripper) is metric z-depth along the camera axis, already
 * converted from the z-buffer (far·near / (far − (far − near)·zbuf)). The static camera is
 * fixed (fov 10°, 200×200, near 0.01, far 10, pose from calvin_env's conf/cameras/cameras/
 * static.yaml); the gripper camera (fov 75°, 84×84, near 0.01, far 2) rides on the gripper:
 * its pose is the TCP pose of robot_obs composed with the fixed offset of the `gripper_cam`
 * link, and it looks along that link's +y axis with −z as "up" (calvin_env's GripperCamera).
 * Every value can be overridden from a config file (see dv_calvin_camera_config).
 *
 * Pixels. 3D Diffuser Actor's CALVIN preprocessing (utils_with_calvin.deproject) maps pixel
 * (u, v) of a depth map to camera coordinates ((u − W//2)·z/f, −(v − H//2)·z/f, −z) with
 * f = H / (2 tan(fov/2)): half a pixel away from the ray OpenGL actually sampled, which runs
 * through the pixel centre (u + 0.5 − W/2). Our point clouds follow 3D Diffuser Actor by
 * default (pixel_centers = false), so models trained by the reference code see the same
 * points; pixel_centers = true gives the exact back-projection of what was rendered.
 *
 * Rotations. CALVIN actions and robot_obs carry orientation as euler angles "xyz" (extrinsic
 * x, then y, then z: R = Rz·Ry·Rx, as scipy's Rotation.from_euler("xyz") and PyBullet's
 * getQuaternionFromEuler). Quaternions are wxyz or xyzw (selectable); the 6-D rotation of 3D
 * Diffuser Actor and RoboDual is the first two columns of R, turned back into R by
 * Gram–Schmidt. Doubles throughout (the cost is nothing next to the images).
 *
 * Not here: lens distortion (PyBullet has none), non-square pixels, the tactile sensors.
 */
#ifndef DV_DATA_CALVIN_GEOMETRY_H
#define DV_DATA_CALVIN_GEOMETRY_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    double look_from[3], look_at[3], up[3]; /* world frame */
    double fov_deg;                         /* vertical field of view */
    int width, height;
    double near_, far_;
    bool pixel_centers;                     /* see "Pixels" above; false = 3D Diffuser Actor */
} dv_calvin_camera;

/* CALVIN's defaults (the values of calvin_env's camera configs, or the overrides) */
void dv_calvin_static_camera(dv_calvin_camera *cam);
/* the gripper camera for a frame: posed from robot_obs[0:6] (TCP position + euler xyz) */
void dv_calvin_gripper_camera(const float robot_obs[15], dv_calvin_camera *cam);
/* the same from a TCP pose in doubles */
void dv_calvin_gripper_camera_at(const double tcp_pos[3], const double tcp_euler[3], dv_calvin_camera *cam);

/* optional overrides from a small "key: value" file (keys such as static.fov, static.look_from,
 * gripper.offset_xyz ...; documented in geometry.c); 0, or -1 naming the file, line and key.
 * Process-wide: call before any camera is made (not thread safe against concurrent readers). */
int dv_calvin_camera_config(const char *path, char *err, size_t errlen);
void dv_calvin_camera_config_reset(void); /* back to CALVIN's values */

/* PyBullet-convention matrices (column-major 4×4) */
void dv_camera_view_matrix(const dv_calvin_camera *cam, double view[16]);
void dv_camera_projection_matrix(const dv_calvin_camera *cam, double proj[16]);
/* the camera's frame in world coordinates: right (s), up (u), forward (f) unit vectors (the
 * rows of the view matrix's rotation, f negated) */
void dv_camera_axes(const dv_calvin_camera *cam, double s[3], double u[3], double f[3]);
/* focal length in pixels, H / (2 tan(fov/2)) */
double dv_camera_focal(const dv_calvin_camera *cam);

/* PyBullet's z-buffer value (0 at near, 1 at far) ↔ metric depth, as calvin_env converts it:
 * depth = far·near / (far − (far − near)·zbuf) */
double dv_calvin_zbuffer_to_depth(const dv_calvin_camera *cam, double zbuf);
double dv_calvin_depth_to_zbuffer(const dv_calvin_camera *cam, double depth);

/* metric depth (H, W) → world-frame points (H, W, 3); pixel (0, 0) is the top-left of the
 * image as stored in the dataset */
void dv_calvin_depth_to_points(const dv_calvin_camera *cam, const float *depth, float *xyz);
/* world point → pixel (u right, v down, continuous) and its metric depth; the inverse of
 * dv_calvin_depth_to_points in the camera's pixel convention (integer (u, v) are the pixels
 * it reads). 0 when in front of the camera, -1 when behind it */
int dv_calvin_project(const dv_calvin_camera *cam, const double p[3], double *u, double *v, double *depth);

/* rotations: R is row-major 3×3 */
typedef enum { DV_QUAT_WXYZ, DV_QUAT_XYZW } dv_quat_order;
void dv_euler_xyz_to_matrix(const double e[3], double R[9]);
/* e[1] in [-pi/2, pi/2], e[0] and e[2] in (-pi, pi]; at gimbal lock (|e[1]| = pi/2) e[2] = 0 */
void dv_matrix_to_euler_xyz(const double R[9], double e[3]);
void dv_quat_to_matrix(const double q[4], dv_quat_order order, double R[9]); /* normalises q */
void dv_matrix_to_quat(const double R[9], dv_quat_order order, double q[4]); /* w >= 0 */
void dv_euler_xyz_to_quat(const double e[3], dv_quat_order order, double q[4]); /* w >= 0 */
void dv_quat_to_euler_xyz(const double q[4], dv_quat_order order, double e[3]);
void dv_matrix_to_rot6d(const double R[9], double r6[6]);  /* (R[:,0], R[:,1]) */
void dv_rot6d_to_matrix(const double r6[6], double R[9]);  /* Gram–Schmidt */

#endif
