/* tests/test_geometry.c — CALVIN's camera model and rotation conventions (data/calvin/geometry.c)
 * against numpy references written independently (tests/reference/gen_geometry.py): PyBullet's
 * view / projection matrices, 3D Diffuser Actor's deproject, the OpenGL pixel-centre unprojection
 * from the z-buffer, the gripper camera posed through the URDF's transforms; rotation round trips
 * over random inputs including gimbal lock; the camera config file and its errors. */
#include "data/calvin/geometry.h"
#include "tests/util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIXTURE "tests/reference/geometry.bin"

/* the fixture tensor `name` as doubles (malloc'd, count in *n) */
static double *fx_f64(ut_fixture_file *fx, const char *name, int64_t *n) {
    dv_tensor *t = ut_fixture_get(fx, name);
    if (!t) { CHECK_MSG(0, "%s: tensor '%s' missing", FIXTURE, name); return NULL; }
    int64_t k = dv_numel(t);
    double *d = malloc(sizeof(double) * (size_t)k);
    dv_to_f64(t, d);
    dv_release(t);
    if (n) *n = k;
    return d;
}

static double max_abs_diff(const double *a, const double *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

/* one camera case of the fixture: matrices, both pixel conventions, projection */
static void check_camera_case(ut_fixture_file *fx, const char *name, dv_calvin_camera cam) {
    char key[64];
    int64_t n, nidx;
    double view[16], proj[16];
    dv_camera_view_matrix(&cam, view);
    dv_camera_projection_matrix(&cam, proj);
    snprintf(key, sizeof key, "%s.view", name);
    double *rv = fx_f64(fx, key, &n);
    snprintf(key, sizeof key, "%s.proj", name);
    double *rp = fx_f64(fx, key, &n);
    if (rv && rp) {
        CHECK_MSG(max_abs_diff(view, rv, 16) < 1e-12, "%s view matrix off by %g", name, max_abs_diff(view, rv, 16));
        CHECK_MSG(max_abs_diff(proj, rp, 16) < 1e-12, "%s projection off by %g", name, max_abs_diff(proj, rp, 16));
    }
    free(rv); free(rp);

    const int W = cam.width, H = cam.height;
    snprintf(key, sizeof key, "%s.depth", name);
    double *dd = fx_f64(fx, key, &n);
    snprintf(key, sizeof key, "%s.idx", name);
    double *idx = fx_f64(fx, key, &nidx);
    if (!dd || !idx || n != (int64_t)W * H) { free(dd); free(idx); CHECK_MSG(0, "%s: bad fixture", name); return; }
    float *depth = malloc(sizeof(float) * (size_t)n), *xyz = malloc(sizeof(float) * 3 * (size_t)n);
    for (int64_t i = 0; i < n; i++) depth[i] = (float)dd[i];
    for (int conv = 0; conv < 2; conv++) {
        cam.pixel_centers = conv == 1;
        dv_calvin_depth_to_points(&cam, depth, xyz);
        snprintf(key, sizeof key, "%s.%s", name, conv ? "pts_center" : "pts_3dda");
        double *ref = fx_f64(fx, key, NULL);
        if (!ref) continue;
        double worst = 0;
        for (int64_t k = 0; k < nidx; k++) {
            int64_t p = (int64_t)idx[k];
            for (int c = 0; c < 3; c++) worst = fmax(worst, fabs(xyz[p * 3 + c] - ref[k * 3 + c]));
        }
        CHECK_MSG(worst < 2e-6, "%s %s: points off by %g m", name, conv ? "pixel centres" : "3DDA", worst);
        /* project is the inverse of depth_to_points in the same convention */
        double wu = 0, wd = 0;
        for (int64_t k = 0; k < nidx; k += 7) {
            int64_t p = (int64_t)idx[k];
            double pt[3] = {xyz[p * 3], xyz[p * 3 + 1], xyz[p * 3 + 2]}, u, v, d;
            CHECK(dv_calvin_project(&cam, pt, &u, &v, &d) == 0);
            wu = fmax(wu, fmax(fabs(u - (double)(p % W)), fabs(v - (double)(p / W))));
            wd = fmax(wd, fabs(d - depth[p]));
        }
        CHECK_MSG(wu < 1e-3 && wd < 1e-5, "%s: project(depth_to_points) off by %g px, %g m", name, wu, wd);
        free(ref);
    }
    /* calvin_env's Camera.project (OpenGL: pixel centres at k + 0.5) */
    snprintf(key, sizeof key, "%s.proj_pts", name);
    double *pp = fx_f64(fx, key, &n);
    snprintf(key, sizeof key, "%s.proj_uv", name);
    double *puv = fx_f64(fx, key, NULL);
    for (int64_t k = 0; pp && puv && k < n / 3; k++) {
        double u, v, d;
        cam.pixel_centers = true;
        CHECK(dv_calvin_project(&cam, pp + 3 * k, &u, &v, &d) == 0);
        CHECK_CLOSE(u + 0.5, puv[2 * k], 1e-7);
        CHECK_CLOSE(v + 0.5, puv[2 * k + 1], 1e-7);
        cam.pixel_centers = false;
        CHECK(dv_calvin_project(&cam, pp + 3 * k, &u, &v, &d) == 0);
        CHECK_CLOSE(u, puv[2 * k] - W / 2.0 + (W / 2), 1e-7);
        CHECK_CLOSE(v, puv[2 * k + 1] - H / 2.0 + (H / 2), 1e-7);
    }
    free(pp); free(puv);
    free(dd); free(idx); free(depth); free(xyz);
}

TEST(geometry_static_camera_fixture) {
    dv_calvin_camera_config_reset();
    ut_fixture_file *fx = ut_fixture_open(FIXTURE);
    if (!fx) return;
    dv_calvin_camera cam;
    dv_calvin_static_camera(&cam);
    CHECK(cam.width == 200 && cam.height == 200 && cam.fov_deg == 10 && cam.near_ == 0.01 && cam.far_ == 10);
    CHECK(!cam.pixel_centers);
    check_camera_case(fx, "static", cam);
    /* an odd-sized camera: W // 2 != W / 2 */
    dv_calvin_camera odd = {.look_from = {0.3, -0.2, 1.1}, .look_at = {0, 0.1, 0.4}, .up = {0, 0, 1},
                            .fov_deg = 40, .width = 9, .height = 9, .near_ = 0.01, .far_ = 2};
    check_camera_case(fx, "odd", odd);
    ut_fixture_close(fx);
}

TEST(geometry_gripper_camera_fixture) {
    dv_calvin_camera_config_reset();
    ut_fixture_file *fx = ut_fixture_open(FIXTURE);
    if (!fx) return;
    for (int k = 0; k < 3; k++) {
        char key[64], name[32];
        snprintf(name, sizeof name, "gripper%d", k);
        snprintf(key, sizeof key, "%s.robot_obs", name);
        double *ro = fx_f64(fx, key, NULL);
        snprintf(key, sizeof key, "%s.eye", name);
        double *eye = fx_f64(fx, key, NULL);
        if (!ro || !eye) { free(ro); free(eye); continue; }
        float obs[15];
        for (int i = 0; i < 15; i++) obs[i] = (float)ro[i];
        dv_calvin_camera cam;
        dv_calvin_gripper_camera(obs, &cam);
        CHECK(cam.width == 84 && cam.height == 84 && cam.fov_deg == 75 && cam.far_ == 2);
        for (int i = 0; i < 3; i++) CHECK_CLOSE(cam.look_from[i], eye[i], 1e-12);
        check_camera_case(fx, name, cam);
        free(ro); free(eye);
    }
    ut_fixture_close(fx);
}

TEST(geometry_rotations_fixture) {
    ut_fixture_file *fx = ut_fixture_open(FIXTURE);
    if (!fx) return;
    int64_t n;
    double *eul = fx_f64(fx, "rot.euler", &n), *mat = fx_f64(fx, "rot.matrix", NULL), *quat = fx_f64(fx, "rot.quat_xyzw", NULL);
    for (int64_t k = 0; eul && mat && quat && k < n / 3; k++) {
        double R[9], q[4], e[3], R2[9];
        dv_euler_xyz_to_matrix(eul + 3 * k, R);
        CHECK_MSG(max_abs_diff(R, mat + 9 * k, 9) < 1e-14, "euler->matrix case %ld", (long)k);
        dv_euler_xyz_to_quat(eul + 3 * k, DV_QUAT_XYZW, q);
        CHECK_MSG(max_abs_diff(q, quat + 4 * k, 4) < 1e-14, "euler->quat case %ld", (long)k);
        /* back to euler: the same rotation (the angles themselves differ at gimbal lock) */
        dv_matrix_to_euler_xyz(mat + 9 * k, e);
        dv_euler_xyz_to_matrix(e, R2);
        CHECK_MSG(max_abs_diff(R2, mat + 9 * k, 9) < 1e-9, "matrix->euler->matrix case %ld: %g", (long)k,
                  max_abs_diff(R2, mat + 9 * k, 9));
        if (fabs(fabs(eul[3 * k + 1]) - M_PI / 2) > 1e-3)
            CHECK_MSG(max_abs_diff(e, eul + 3 * k, 3) < 1e-10, "matrix->euler case %ld", (long)k);
    }
    free(eul); free(mat); free(quat);
    ut_fixture_close(fx);
}

static double urand(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) / 9007199254740992.0;
}

static bool is_rotation(const double R[9], double tol) {
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            double s = 0;
            for (int k = 0; k < 3; k++) s += R[3 * k + i] * R[3 * k + j];
            if (fabs(s - (i == j)) > tol) return false;
        }
    double det = R[0] * (R[4] * R[8] - R[5] * R[7]) - R[1] * (R[3] * R[8] - R[5] * R[6]) + R[2] * (R[3] * R[7] - R[4] * R[6]);
    return fabs(det - 1) < tol;
}

TEST(geometry_rotation_round_trips) {
    uint64_t s = 42;
    const double near_lock[] = {M_PI / 2, -M_PI / 2, M_PI / 2 - 1e-9, -M_PI / 2 + 1e-9, M_PI / 2 - 1e-6, -M_PI / 2 + 1e-5};
    double worst_e = 0, worst_q = 0, worst_6 = 0;
    for (int it = 0; it < 2000; it++) {
        double e[3] = {(2 * urand(&s) - 1) * M_PI, (2 * urand(&s) - 1) * M_PI / 2, (2 * urand(&s) - 1) * M_PI};
        if (it < 60) e[1] = near_lock[it % 6];
        double R[9], R2[9], q[4], q2[4], e2[3], r6[6];
        dv_euler_xyz_to_matrix(e, R);
        CHECK(is_rotation(R, 1e-12));
        /* euler -> matrix -> euler -> matrix */
        dv_matrix_to_euler_xyz(R, e2);
        CHECK(fabs(e2[1]) <= M_PI / 2 + 1e-12);
        dv_euler_xyz_to_matrix(e2, R2);
        worst_e = fmax(worst_e, max_abs_diff(R, R2, 9));
        /* quaternions, both orders: from euler and from the matrix agree; back to the matrix */
        for (int o = 0; o < 2; o++) {
            dv_quat_order order = o ? DV_QUAT_XYZW : DV_QUAT_WXYZ;
            dv_euler_xyz_to_quat(e, order, q);
            dv_matrix_to_quat(R, order, q2);
            CHECK(q[o ? 3 : 0] >= 0 && q2[o ? 3 : 0] >= 0);
            /* w = 0 leaves the sign free: compare up to sign */
            double d = fmin(max_abs_diff(q, q2, 4), fabs(q[0] + q2[0]) + fabs(q[1] + q2[1]) + fabs(q[2] + q2[2]) + fabs(q[3] + q2[3]));
            worst_q = fmax(worst_q, d);
            dv_quat_to_matrix(q, order, R2);
            worst_q = fmax(worst_q, max_abs_diff(R, R2, 9));
            dv_quat_to_euler_xyz(q, order, e2);
            dv_euler_xyz_to_matrix(e2, R2);
            worst_e = fmax(worst_e, max_abs_diff(R, R2, 9));
        }
        /* 6-D: exact on rotations; Gram-Schmidt makes any perturbed pair a rotation, and keeps
         * the first column's direction */
        dv_matrix_to_rot6d(R, r6);
        dv_rot6d_to_matrix(r6, R2);
        worst_6 = fmax(worst_6, max_abs_diff(R, R2, 9));
        for (int i = 0; i < 6; i++) r6[i] = r6[i] * (1 + 0.3 * urand(&s)) + 0.1 * (urand(&s) - 0.5);
        dv_rot6d_to_matrix(r6, R2);
        CHECK(is_rotation(R2, 1e-12));
        double na = sqrt(r6[0] * r6[0] + r6[1] * r6[1] + r6[2] * r6[2]);
        for (int i = 0; i < 3; i++) CHECK_CLOSE(R2[3 * i], r6[i] / na, 1e-12);
    }
    CHECK_MSG(worst_e < 1e-9, "euler round trip: %g", worst_e);
    CHECK_MSG(worst_q < 1e-12, "quaternion round trip: %g", worst_q);
    CHECK_MSG(worst_6 < 1e-14, "6-D round trip: %g", worst_6);
    /* xyzw and wxyz are the same quaternion reordered */
    double e[3] = {0.3, -0.4, 2.0}, a[4], b[4];
    dv_euler_xyz_to_quat(e, DV_QUAT_WXYZ, a);
    dv_euler_xyz_to_quat(e, DV_QUAT_XYZW, b);
    CHECK(a[0] == b[3] && a[1] == b[0] && a[2] == b[1] && a[3] == b[2]);
    /* gimbal lock puts everything in x: y = +pi/2 with (x, z) = (0.7, 0.2) is x - z = 0.5 */
    double lock[3] = {0.7, M_PI / 2, 0.2}, R[9], el[3];
    dv_euler_xyz_to_matrix(lock, R);
    dv_matrix_to_euler_xyz(R, el);
    CHECK_CLOSE(el[0], 0.5, 1e-9);
    CHECK_CLOSE(el[1], M_PI / 2, 1e-9);
    CHECK(el[2] == 0);
}

TEST(geometry_zbuffer_depth) {
    dv_calvin_camera cam;
    dv_calvin_camera_config_reset();
    dv_calvin_static_camera(&cam);
    CHECK_CLOSE(dv_calvin_zbuffer_to_depth(&cam, 0.0), 0.01, 1e-12);
    CHECK_CLOSE(dv_calvin_zbuffer_to_depth(&cam, 1.0), 10.0, 1e-12);
    for (double d = 0.02; d < 10; d *= 1.7) CHECK_CLOSE(dv_calvin_zbuffer_to_depth(&cam, dv_calvin_depth_to_zbuffer(&cam, d)), d, 1e-12);
    /* the z-buffer is the window depth of the projection: NDC z = P·(x, y, -d, 1), mapped to [0, 1] */
    double P[16], d = 3.7;
    dv_camera_projection_matrix(&cam, P);
    double zc = P[10] * -d + P[14], wc = P[11] * -d;
    CHECK_CLOSE((zc / wc + 1) / 2, dv_calvin_depth_to_zbuffer(&cam, d), 1e-12);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) { CHECK_MSG(0, "cannot write %s", path); return; }
    fputs(text, f);
    fclose(f);
}

TEST(geometry_camera_config) {
    char path[] = "/tmp/dv_geom_cfg_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) { CHECK_MSG(0, "mkstemp"); return; }
    close(fd);
    char err[256];
    dv_calvin_camera a, b;
    dv_calvin_camera_config_reset();
    float obs[15] = {0.1f, -0.1f, 0.5f, 3.1f, 0.05f, 1.6f};
    dv_calvin_gripper_camera(obs, &a);

    write_file(path, "# overrides\nstatic.fov: 12.5\nstatic.look_at: [0, 0.1, 0.4]  # target\n"
                     "gripper.offset_xyz: [-0.1, 0, -0.24]\npixel_centers: true\ngripper.width: 96\n");
    CHECK(dv_calvin_camera_config(path, err, sizeof err) == 0);
    dv_calvin_static_camera(&b);
    CHECK(b.fov_deg == 12.5 && b.look_at[1] == 0.1 && b.look_at[2] == 0.4 && b.pixel_centers);
    CHECK(b.look_from[0] == 2.871459009488717); /* untouched keys keep CALVIN's value */
    dv_calvin_gripper_camera(obs, &b);
    CHECK(b.width == 96 && b.height == 84);
    /* the camera moved 0.1 m further back along the TCP's z axis */
    double R[9], e[3] = {obs[3], obs[4], obs[5]}, d = 0;
    dv_euler_xyz_to_matrix(e, R);
    for (int i = 0; i < 3; i++) d += (b.look_from[i] - a.look_from[i]) * R[3 * i + 2];
    CHECK_CLOSE(d, -0.1, 1e-9);

    /* errors name the file, the line and the key; a failed file changes nothing */
    write_file(path, "static.fov: 20\nstatic.fvo: 10\n");
    CHECK(dv_calvin_camera_config(path, err, sizeof err) == -1);
    CHECK(strstr(err, path) && strstr(err, ":2:") && strstr(err, "static.fvo"));
    dv_calvin_static_camera(&b);
    CHECK(b.fov_deg == 12.5);
    write_file(path, "static.look_from: [1, 2]\n");
    CHECK(dv_calvin_camera_config(path, err, sizeof err) == -1);
    CHECK(strstr(err, ":1:") && strstr(err, "static.look_from"));
    write_file(path, "gripper.near: 3\n");
    CHECK(dv_calvin_camera_config(path, err, sizeof err) == -1 && strstr(err, "near"));
    write_file(path, "static.width: 0\n");
    CHECK(dv_calvin_camera_config(path, err, sizeof err) == -1 && strstr(err, "static.width"));
    write_file(path, "static.up: [0, 0, 1\n");
    CHECK(dv_calvin_camera_config(path, err, sizeof err) == -1 && strstr(err, "static.up"));
    write_file(path, "just words\n");
    CHECK(dv_calvin_camera_config(path, err, sizeof err) == -1 && strstr(err, "key: value"));
    unlink(path);
    CHECK(dv_calvin_camera_config(path, err, sizeof err) == -1 && strstr(err, "cannot open"));

    dv_calvin_camera_config_reset();
    dv_calvin_static_camera(&b);
    CHECK(b.fov_deg == 10 && !b.pixel_centers);
}
