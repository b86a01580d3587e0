/* data/calvin/geometry.c — CALVIN's camera model (PyBullet view/projection conventions),
 * depth → world points the way 3D Diffuser Actor's CALVIN preprocessing computes them, and the
 * euler / quaternion / matrix / 6-D rotation conversions. See geometry.h for the conventions.
 *
 * Where the numbers come from (calvin_env):
 *   conf/cameras/cameras/static.yaml   fov 10, 200×200, near 0.01, far 10, look_from / look_at /
 *                                      up_vector below
 *   conf/cameras/cameras/gripper.yaml  fov 75, 84×84, near 0.01, far 2
 *   data/franka_panda/panda_longer_finger.urdf (the robot of the recorded play data):
 *       tcp_joint     panda_hand → tcp         xyz (0, 0, 0.14), rpy (0, 0, 0)
 *       camera_joint  panda_hand → gripper_cam xyz (-0.1, 0, 0), rpy (1.3, 0, -1.57)
 *     so the camera link in the TCP frame is xyz (-0.1, 0, -0.14), rpy (1.3, 0, -1.57)
 *     (URDF rpy: R = Rz(yaw)·Ry(pitch)·Rx(roll), the same as euler "xyz" here).
 *   calvin_env/camera/gripper_camera.py: view = computeViewMatrix(p, p + R[:,1], -R[:,2]).
 *
 * Config file (dv_calvin_camera_config): one `key: value` per line, `#` starts a comment,
 * vectors as [x, y, z]. Keys: static.look_from, static.look_at, static.up, static.fov,
 * static.width, static.height, static.near, static.far, gripper.fov, gripper.width,
 * gripper.height, gripper.near, gripper.far, gripper.offset_xyz, gripper.offset_rpy (the
 * camera link in the TCP frame), pixel_centers (true / false).
 */
#include "data/calvin/geometry.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    dv_calvin_camera stat;
    double g_fov, g_near, g_far;
    int g_width, g_height;
    double g_off_xyz[3], g_off_rpy[3];
    bool pixel_centers;
} camera_config;

static const camera_config calvin_defaults = {
    .stat = {
        .look_from = {2.871459009488717, -2.166602199425597, 2.555159848480571},
        .look_at = {-0.026242351159453392, -0.0302329882979393, 0.3920000493526459},
        .up = {0.4041403970338857, 0.22629790978217404, 0.8862616969685161},
        .fov_deg = 10, .width = 200, .height = 200, .near_ = 0.01, .far_ = 10,
        .pixel_centers = false,
    },
    .g_fov = 75, .g_near = 0.01, .g_far = 2, .g_width = 84, .g_height = 84,
    .g_off_xyz = {-0.1, 0.0, -0.14},
    .g_off_rpy = {1.3, 0.0, -1.57},
    .pixel_centers = false,
};

static camera_config config = calvin_defaults;

void dv_calvin_camera_config_reset(void) { config = calvin_defaults; }

void dv_calvin_static_camera(dv_calvin_camera *cam) {
    *cam = config.stat;
    cam->pixel_centers = config.pixel_centers;
}

/* ---- small vector helpers --------------------------------------------------------------- */

static double dot3(const double a[3], const double b[3]) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

static void cross3(const double a[3], const double b[3], double c[3]) {
    double x = a[1] * b[2] - a[2] * b[1], y = a[2] * b[0] - a[0] * b[2], z = a[0] * b[1] - a[1] * b[0];
    c[0] = x; c[1] = y; c[2] = z;
}

static void normalize3(double a[3]) {
    double n = sqrt(dot3(a, a));
    if (n > 0) { a[0] /= n; a[1] /= n; a[2] /= n; }
}

/* ---- rotations -------------------------------------------------------------------------- */

void dv_euler_xyz_to_matrix(const double e[3], double R[9]) {
    double cx = cos(e[0]), sx = sin(e[0]), cy = cos(e[1]), sy = sin(e[1]), cz = cos(e[2]), sz = sin(e[2]);
    /* R = Rz(z) · Ry(y) · Rx(x) */
    R[0] = cz * cy; R[1] = cz * sy * sx - sz * cx; R[2] = cz * sy * cx + sz * sx;
    R[3] = sz * cy; R[4] = sz * sy * sx + cz * cx; R[5] = sz * sy * cx - cz * sx;
    R[6] = -sy;     R[7] = cy * sx;                R[8] = cy * cx;
}

void dv_matrix_to_euler_xyz(const double R[9], double e[3]) {
    /* R[6] = -sin(y); cos(y) >= 0 by convention */
    double cy = hypot(R[0], R[3]);
    if (cy > 1e-12) {
        e[0] = atan2(R[7], R[8]);
        e[1] = atan2(-R[6], cy);
        /* z from R·Rx(x)^T = Rz·Ry, whose column 1 is (-sin z, cos z, 0): near gimbal lock x
         * alone is ill-conditioned, but this z matches whatever x came out, so the pair still
         * reproduces R to rounding */
        double sx = sin(e[0]), cx = cos(e[0]);
        e[2] = atan2(sx * R[2] - cx * R[1], cx * R[4] - sx * R[5]);
    } else {
        /* gimbal lock: only x - z (y = +pi/2) or x + z (y = -pi/2) is defined; put it all in x.
         * With z = 0: R[4] = cos(x), R[5] = -sin(x) for either sign of y. */
        e[0] = atan2(-R[5], R[4]);
        e[1] = R[6] < 0 ? M_PI / 2 : -M_PI / 2;
        e[2] = 0;
    }
}

static void quat_in(const double q[4], dv_quat_order order, double *w, double *x, double *y, double *z) {
    if (order == DV_QUAT_WXYZ) { *w = q[0]; *x = q[1]; *y = q[2]; *z = q[3]; }
    else { *x = q[0]; *y = q[1]; *z = q[2]; *w = q[3]; }
}

static void quat_out(double w, double x, double y, double z, dv_quat_order order, double q[4]) {
    if (w < 0) { w = -w; x = -x; y = -y; z = -z; }
    if (order == DV_QUAT_WXYZ) { q[0] = w; q[1] = x; q[2] = y; q[3] = z; }
    else { q[0] = x; q[1] = y; q[2] = z; q[3] = w; }
}

void dv_quat_to_matrix(const double q[4], dv_quat_order order, double R[9]) {
    double w, x, y, z;
    quat_in(q, order, &w, &x, &y, &z);
    double n = sqrt(w * w + x * x + y * y + z * z);
    if (n == 0) { w = 1; x = y = z = 0; n = 1; }
    w /= n; x /= n; y /= n; z /= n;
    R[0] = 1 - 2 * (y * y + z * z); R[1] = 2 * (x * y - w * z);     R[2] = 2 * (x * z + w * y);
    R[3] = 2 * (x * y + w * z);     R[4] = 1 - 2 * (x * x + z * z); R[5] = 2 * (y * z - w * x);
    R[6] = 2 * (x * z - w * y);     R[7] = 2 * (y * z + w * x);     R[8] = 1 - 2 * (x * x + y * y);
}

void dv_matrix_to_quat(const double R[9], dv_quat_order order, double q[4]) {
    /* Shepperd: pivot on the largest of w², x², y², z² so the division is well conditioned */
    double tr = R[0] + R[4] + R[8], w, x, y, z;
    if (tr >= R[0] && tr >= R[4] && tr >= R[8]) {
        double s = 2 * sqrt(fmax(0, 1 + tr));
        w = 0.25 * s; x = (R[7] - R[5]) / s; y = (R[2] - R[6]) / s; z = (R[3] - R[1]) / s;
    } else if (R[0] >= R[4] && R[0] >= R[8]) {
        double s = 2 * sqrt(fmax(0, 1 + R[0] - R[4] - R[8]));
        x = 0.25 * s; w = (R[7] - R[5]) / s; y = (R[1] + R[3]) / s; z = (R[2] + R[6]) / s;
    } else if (R[4] >= R[8]) {
        double s = 2 * sqrt(fmax(0, 1 + R[4] - R[0] - R[8]));
        y = 0.25 * s; w = (R[2] - R[6]) / s; x = (R[1] + R[3]) / s; z = (R[5] + R[7]) / s;
    } else {
        double s = 2 * sqrt(fmax(0, 1 + R[8] - R[0] - R[4]));
        z = 0.25 * s; w = (R[3] - R[1]) / s; x = (R[2] + R[6]) / s; y = (R[5] + R[7]) / s;
    }
    double n = sqrt(w * w + x * x + y * y + z * z);
    quat_out(w / n, x / n, y / n, z / n, order, q);
}

void dv_euler_xyz_to_quat(const double e[3], dv_quat_order order, double q[4]) {
    /* q = qz · qy · qx (half angles) */
    double cx = cos(e[0] / 2), sx = sin(e[0] / 2), cy = cos(e[1] / 2), sy = sin(e[1] / 2);
    double cz = cos(e[2] / 2), sz = sin(e[2] / 2);
    double w = cz * cy * cx + sz * sy * sx;
    double x = cz * cy * sx - sz * sy * cx;
    double y = cz * sy * cx + sz * cy * sx;
    double z = sz * cy * cx - cz * sy * sx;
    quat_out(w, x, y, z, order, q);
}

void dv_quat_to_euler_xyz(const double q[4], dv_quat_order order, double e[3]) {
    double R[9];
    dv_quat_to_matrix(q, order, R);
    dv_matrix_to_euler_xyz(R, e);
}

void dv_matrix_to_rot6d(const double R[9], double r6[6]) {
    r6[0] = R[0]; r6[1] = R[3]; r6[2] = R[6]; /* first column */
    r6[3] = R[1]; r6[4] = R[4]; r6[5] = R[7]; /* second column */
}

void dv_rot6d_to_matrix(const double r6[6], double R[9]) {
    double a[3] = {r6[0], r6[1], r6[2]}, b[3] = {r6[3], r6[4], r6[5]}, c[3];
    normalize3(a);
    double d = dot3(a, b);
    for (int i = 0; i < 3; i++) b[i] -= d * a[i];
    normalize3(b);
    cross3(a, b, c);
    for (int i = 0; i < 3; i++) { R[3 * i] = a[i]; R[3 * i + 1] = b[i]; R[3 * i + 2] = c[i]; }
}

/* ---- cameras ---------------------------------------------------------------------------- */

void dv_calvin_gripper_camera_at(const double tcp_pos[3], const double tcp_euler[3], dv_calvin_camera *cam) {
    double Rt[9], Ro[9], Rc[9], p[3];
    dv_euler_xyz_to_matrix(tcp_euler, Rt);
    dv_euler_xyz_to_matrix(config.g_off_rpy, Ro);
    /* camera link in the world: p = tcp + Rt·offset, Rc = Rt·Ro */
    for (int i = 0; i < 3; i++) {
        p[i] = tcp_pos[i];
        for (int k = 0; k < 3; k++) p[i] += Rt[3 * i + k] * config.g_off_xyz[k];
        for (int j = 0; j < 3; j++) {
            double s = 0;
            for (int k = 0; k < 3; k++) s += Rt[3 * i + k] * Ro[3 * k + j];
            Rc[3 * i + j] = s;
        }
    }
    memset(cam, 0, sizeof *cam);
    for (int i = 0; i < 3; i++) {
        cam->look_from[i] = p[i];
        cam->look_at[i] = p[i] + Rc[3 * i + 1]; /* along the link's +y */
        cam->up[i] = -Rc[3 * i + 2];            /* "up" is the link's -z */
    }
    cam->fov_deg = config.g_fov;
    cam->width = config.g_width;
    cam->height = config.g_height;
    cam->near_ = config.g_near;
    cam->far_ = config.g_far;
    cam->pixel_centers = config.pixel_centers;
}

void dv_calvin_gripper_camera(const float robot_obs[15], dv_calvin_camera *cam) {
    double p[3] = {robot_obs[0], robot_obs[1], robot_obs[2]}, e[3] = {robot_obs[3], robot_obs[4], robot_obs[5]};
    dv_calvin_gripper_camera_at(p, e, cam);
}

void dv_camera_axes(const dv_calvin_camera *cam, double s[3], double u[3], double f[3]) {
    /* computeViewMatrix: f = normalize(at - from), s = normalize(f × normalize(up)), u = s × f */
    double up[3] = {cam->up[0], cam->up[1], cam->up[2]};
    for (int i = 0; i < 3; i++) f[i] = cam->look_at[i] - cam->look_from[i];
    normalize3(f);
    normalize3(up);
    cross3(f, up, s);
    normalize3(s);
    cross3(s, f, u);
}

void dv_camera_view_matrix(const dv_calvin_camera *cam, double view[16]) {
    double s[3], u[3], f[3];
    dv_camera_axes(cam, s, u, f);
    /* column-major: element (row r, col c) at [c * 4 + r]; rows s, u, -f */
    for (int i = 0; i < 3; i++) {
        view[i * 4 + 0] = s[i];
        view[i * 4 + 1] = u[i];
        view[i * 4 + 2] = -f[i];
        view[i * 4 + 3] = 0;
    }
    view[12] = -dot3(s, cam->look_from);
    view[13] = -dot3(u, cam->look_from);
    view[14] = dot3(f, cam->look_from);
    view[15] = 1;
}

void dv_camera_projection_matrix(const dv_calvin_camera *cam, double proj[16]) {
    double aspect = (double)cam->width / cam->height;
    double ys = 1.0 / tan(cam->fov_deg * M_PI / 360.0), xs = ys / aspect;
    double n = cam->near_, fa = cam->far_;
    memset(proj, 0, 16 * sizeof *proj);
    proj[0] = xs;
    proj[5] = ys;
    proj[10] = (fa + n) / (n - fa);
    proj[11] = -1;
    proj[14] = 2 * fa * n / (n - fa);
}

double dv_camera_focal(const dv_calvin_camera *cam) {
    return cam->height / (2.0 * tan(cam->fov_deg * M_PI / 360.0));
}

double dv_calvin_zbuffer_to_depth(const dv_calvin_camera *cam, double zbuf) {
    double n = cam->near_, f = cam->far_;
    return f * n / (f - (f - n) * zbuf);
}

double dv_calvin_depth_to_zbuffer(const dv_calvin_camera *cam, double depth) {
    double n = cam->near_, f = cam->far_;
    return (f - f * n / depth) / (f - n);
}

/* the principal point in the camera's pixel convention: x_cam = (u - cx)·z/f */
static void principal_point(const dv_calvin_camera *cam, double *cx, double *cy) {
    if (cam->pixel_centers) { *cx = cam->width / 2.0 - 0.5; *cy = cam->height / 2.0 - 0.5; }
    else { *cx = (double)(cam->width / 2); *cy = (double)(cam->height / 2); }
}

void dv_calvin_depth_to_points(const dv_calvin_camera *cam, const float *depth, float *xyz) {
    double s[3], u[3], f[3], cx, cy, foc = dv_camera_focal(cam);
    dv_camera_axes(cam, s, u, f);
    principal_point(cam, &cx, &cy);
    const int W = cam->width, H = cam->height;
    /* world = eye + xc·s + yc·u + z·f with xc = (col - cx)·z/foc, yc = -(row - cy)·z/foc */
    for (int r = 0; r < H; r++) {
        double ny = -(r - cy) / foc;
        for (int c = 0; c < W; c++) {
            double z = depth[(size_t)r * W + c], nx = (c - cx) / foc;
            float *o = xyz + ((size_t)r * W + c) * 3;
            for (int i = 0; i < 3; i++)
                o[i] = (float)(cam->look_from[i] + z * (nx * s[i] + ny * u[i] + f[i]));
        }
    }
}

int dv_calvin_project(const dv_calvin_camera *cam, const double p[3], double *u, double *v, double *depth) {
    double s[3], up[3], f[3], d[3], cx, cy, foc = dv_camera_focal(cam);
    dv_camera_axes(cam, s, up, f);
    principal_point(cam, &cx, &cy);
    for (int i = 0; i < 3; i++) d[i] = p[i] - cam->look_from[i];
    double z = dot3(d, f);
    *depth = z;
    if (!(z > 0)) { *u = *v = NAN; return -1; }
    *u = cx + foc * dot3(d, s) / z;
    *v = cy - foc * dot3(d, up) / z;
    return 0;
}

/* ---- config file ------------------------------------------------------------------------ */

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) s[--n] = 0;
    return s;
}

/* "[a, b, c]" → 3 doubles; "x" → 1 double; returns the count parsed or -1 */
static int parse_numbers(const char *v, double *out, int max) {
    const char *p = v;
    bool bracket = false;
    if (*p == '[') { bracket = true; p++; }
    int n = 0;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        if (bracket && *p == ']') { p++; break; }
        if (!bracket && !*p) break;
        if (n == max) return -1;
        char *end;
        out[n] = strtod(p, &end);
        if (end == p || !isfinite(out[n])) return -1;
        n++;
        p = end;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == ',') { p++; continue; }
        if (bracket && *p == ']') { p++; break; }
        if (!bracket && !*p) break;
        return -1;
    }
    while (*p == ' ' || *p == '\t') p++;
    return *p ? -1 : n;
}

int dv_calvin_camera_config(const char *path, char *err, size_t errlen) {
    FILE *fp = fopen(path, "r");
    if (!fp) { if (err) snprintf(err, errlen, "%s: cannot open", path); return -1; }
    camera_config c = config;
    char line[512];
    int lineno = 0;
    while (fgets(line, sizeof line, fp)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(fp)) {
            if (err) snprintf(err, errlen, "%s:%d: line longer than %zu characters", path, lineno, sizeof line - 2);
            fclose(fp);
            return -1;
        }
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *s = trim(line);
        if (!*s) continue;
        char *colon = strchr(s, ':');
        if (!colon) {
            if (err) snprintf(err, errlen, "%s:%d: expected 'key: value', got '%s'", path, lineno, s);
            fclose(fp);
            return -1;
        }
        *colon = 0;
        char *key = trim(s), *val = trim(colon + 1);
        double x[3];
        struct { const char *name; double *dst; int n; } vec[] = {
            {"static.look_from", c.stat.look_from, 3}, {"static.look_at", c.stat.look_at, 3},
            {"static.up", c.stat.up, 3}, {"static.fov", &c.stat.fov_deg, 1},
            {"static.near", &c.stat.near_, 1}, {"static.far", &c.stat.far_, 1},
            {"gripper.fov", &c.g_fov, 1}, {"gripper.near", &c.g_near, 1}, {"gripper.far", &c.g_far, 1},
            {"gripper.offset_xyz", c.g_off_xyz, 3}, {"gripper.offset_rpy", c.g_off_rpy, 3},
        };
        struct { const char *name; int *dst; } ints[] = {
            {"static.width", &c.stat.width}, {"static.height", &c.stat.height},
            {"gripper.width", &c.g_width}, {"gripper.height", &c.g_height},
        };
        bool known = false, bad = false;
        for (size_t i = 0; i < sizeof vec / sizeof vec[0] && !known; i++) {
            if (strcmp(key, vec[i].name)) continue;
            known = true;
            if (parse_numbers(val, x, 3) != vec[i].n) bad = true;
            else memcpy(vec[i].dst, x, vec[i].n * sizeof(double));
        }
        for (size_t i = 0; i < sizeof ints / sizeof ints[0] && !known; i++) {
            if (strcmp(key, ints[i].name)) continue;
            known = true;
            if (parse_numbers(val, x, 1) != 1 || x[0] < 1 || x[0] > 16384 || x[0] != floor(x[0])) bad = true;
            else *ints[i].dst = (int)x[0];
        }
        if (!known && !strcmp(key, "pixel_centers")) {
            known = true;
            if (!strcmp(val, "true") || !strcmp(val, "1")) c.pixel_centers = true;
            else if (!strcmp(val, "false") || !strcmp(val, "0")) c.pixel_centers = false;
            else bad = true;
        }
        if (!known) {
            if (err) snprintf(err, errlen, "%s:%d: unknown key '%s'", path, lineno, key);
            fclose(fp);
            return -1;
        }
        if (bad) {
            if (err) snprintf(err, errlen, "%s:%d: bad value '%s' for key '%s'", path, lineno, val, key);
            fclose(fp);
            return -1;
        }
    }
    fclose(fp);
    /* sanity of the whole camera, not only each value */
    const char *why = NULL;
    if (!(c.stat.fov_deg > 0 && c.stat.fov_deg < 180) || !(c.g_fov > 0 && c.g_fov < 180)) why = "fov must be in (0, 180)";
    else if (!(c.stat.near_ > 0 && c.stat.far_ > c.stat.near_) || !(c.g_near > 0 && c.g_far > c.g_near))
        why = "need 0 < near < far";
    else {
        double d[3], cr[3];
        for (int i = 0; i < 3; i++) d[i] = c.stat.look_at[i] - c.stat.look_from[i];
        cross3(d, c.stat.up, cr);
        if (dot3(d, d) == 0 || dot3(cr, cr) < 1e-18) why = "static look_from, look_at and up must span a frame";
    }
    if (why) { if (err) snprintf(err, errlen, "%s: %s", path, why); return -1; }
    config = c;
    return 0;
}
