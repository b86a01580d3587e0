/* tests/test_render.c — the play-table rasteriser (data/calvin/render.c) against the camera model
 * of data/calvin/geometry.c: every rendered pixel, back-projected with dv_calvin_depth_to_points,
 * lies on the surface of the box it shows; the z-buffer keeps the nearest surface; objects appear
 * where dv_calvin_project says; triangles crossing the near plane are clipped; the scene follows
 * scene_obs / robot_obs. */
#include "data/calvin/render.h"
#include "tests/test.h"

#include <stdlib.h>
#include <string.h>

static void default_state(float ro[15], float so[24]) {
    const float r[15] = {0.05f, -0.10f, 0.55f, 3.10f, 0.02f, 1.57f, 0.07f, 0, 0, 0, 0, 0, 0, 0, 1};
    const float s[24] = {0.10f, 0.08f, 0, 0, 1, 0,
                         0.05f, -0.08f, 0.48f, 0, 0, 0.3f,
                         0.20f, -0.12f, 0.48f, 0, 0, -0.2f,
                         -0.05f, -0.05f, 0.48f, 0, 0, 1.2f};
    memcpy(ro, r, sizeof r);
    memcpy(so, s, sizeof s);
}

/* signed distance-like measure of p to the surface of b: max_k(|local_k| - h_k) is 0 on the
 * surface, < 0 inside, > 0 outside */
static double surface_gap(const dv_box *b, const double p[3]) {
    double d[3] = {p[0] - b->c[0], p[1] - b->c[1], p[2] - b->c[2]}, m = -INFINITY;
    for (int k = 0; k < 3; k++) {
        double l = d[0] * b->R[k] + d[1] * b->R[3 + k] + d[2] * b->R[6 + k];
        m = fmax(m, fabs(l) - b->h[k]);
    }
    return m;
}

/* render, back-project at pixel centres, check every covered pixel lies on its box */
static void check_on_surfaces(const char *what, dv_calvin_camera cam, const float ro[15], const float so[24],
                              int min_parts) {
    dv_box boxes[DV_CALVIN_MAX_BOXES];
    int n = dv_calvin_scene_boxes(ro, so, boxes);
    const int W = cam.width, H = cam.height;
    uint8_t *rgb = malloc((size_t)W * H * 3);
    float *depth = malloc(sizeof(float) * W * H), *xyz = malloc(sizeof(float) * 3 * W * H);
    int16_t *idx = malloc(sizeof(int16_t) * W * H);
    dv_render_boxes(&cam, boxes, n, rgb, depth, idx);
    cam.pixel_centers = true;
    dv_calvin_depth_to_points(&cam, depth, xyz);
    double worst = 0;
    int covered = 0, bad_bg = 0, seen[DV_PART_COUNT] = {0};
    for (int i = 0; i < W * H; i++) {
        if (idx[i] < 0) { bad_bg += depth[i] != (float)cam.far_; continue; }
        covered++;
        seen[boxes[idx[i]].part] = 1;
        CHECK(depth[i] >= cam.near_ && depth[i] <= cam.far_);
        double p[3] = {xyz[3 * i], xyz[3 * i + 1], xyz[3 * i + 2]};
        /* float32 depth: ~1e-7 relative */
        worst = fmax(worst, fabs(surface_gap(&boxes[idx[i]], p)) / fmax(1.0, depth[i]));
    }
    int parts = 0;
    for (int k = 0; k < DV_PART_COUNT; k++) parts += seen[k];
    CHECK_MSG(worst < 2e-6, "%s: back-projected points off their surfaces by up to %g m", what, worst);
    CHECK_MSG(bad_bg == 0, "%s: %d background pixels without depth = far", what, bad_bg);
    CHECK_MSG(covered > W * H / 2 && parts >= min_parts, "%s: %d pixels covered, %d parts seen", what, covered, parts);

    /* the default convention (3D Diffuser Actor's) is half a pixel off: points still lie within
     * a pixel's footprint of their surface, but not on it */
    cam.pixel_centers = false;
    dv_calvin_depth_to_points(&cam, depth, xyz);
    double worst3 = 0, foc = dv_camera_focal(&cam);
    int off = 0;
    for (int i = 0; i < W * H; i++) {
        if (idx[i] < 0) continue;
        double p[3] = {xyz[3 * i], xyz[3 * i + 1], xyz[3 * i + 2]};
        double g = fabs(surface_gap(&boxes[idx[i]], p)) / (depth[i] / foc); /* in pixels */
        worst3 = fmax(worst3, g);
        off += g > 1e-3;
    }
    CHECK_MSG(worst3 < 0.75 && off > covered / 10, "%s: 3DDA convention: worst %g px, %d of %d off", what,
              worst3, off, covered);
    free(rgb); free(depth); free(xyz); free(idx);
}

TEST(render_points_on_surfaces_static) {
    dv_calvin_camera_config_reset();
    float ro[15], so[24];
    default_state(ro, so);
    dv_calvin_camera cam;
    dv_calvin_static_camera(&cam);
    check_on_surfaces("static", cam, ro, so, 10);
    /* drawer open, slider moved, LED on */
    so[0] = 0.25f; so[1] = 0.2f; so[5] = 1;
    check_on_surfaces("static, drawer open", cam, ro, so, 10);
}

TEST(render_points_on_surfaces_gripper) {
    dv_calvin_camera_config_reset();
    float ro[15], so[24];
    default_state(ro, so);
    /* above the blocks, tilted, low over the table (the floor and table cross the near plane) */
    const float poses[4][6] = {{0.05f, -0.10f, 0.55f, 3.10f, 0.02f, 1.57f}, {0.15f, -0.05f, 0.62f, 2.9f, -0.2f, 1.2f},
                               {0.0f, -0.12f, 0.49f, 3.14f, 0.0f, 2.0f}, {0.20f, -0.30f, 0.38f, 2.2f, 0.1f, 1.6f}};
    for (int k = 0; k < 4; k++) {
        memcpy(ro, poses[k], sizeof poses[k]);
        dv_calvin_camera cam;
        dv_calvin_gripper_camera(ro, &cam);
        char what[32];
        snprintf(what, sizeof what, "gripper pose %d", k);
        check_on_surfaces(what, cam, ro, so, 2);
    }
}

TEST(render_visibility_and_zbuffer) {
    dv_calvin_camera cam;
    dv_calvin_camera_config_reset();
    dv_calvin_static_camera(&cam);
    cam.pixel_centers = true;
    const int W = cam.width, H = cam.height;
    uint8_t *rgb = malloc((size_t)W * H * 3);
    float *depth = malloc(sizeof(float) * W * H);
    int16_t *idx = malloc(sizeof(int16_t) * W * H);
    /* two unit-colour boxes on the line of sight: the nearer one wins wherever it covers */
    double s[3], u[3], f[3];
    dv_camera_axes(&cam, s, u, f);
    dv_box b[2];
    const double R[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    for (int k = 0; k < 2; k++) {
        double dist = k == 0 ? 4.2 : 3.6; /* box 1 is nearer */
        memset(&b[k], 0, sizeof b[k]);
        for (int i = 0; i < 3; i++) b[k].c[i] = cam.look_from[i] + dist * f[i];
        memcpy(b[k].R, R, sizeof R);
        b[k].h[0] = b[k].h[1] = b[k].h[2] = k == 0 ? 0.1 : 0.03;
        b[k].rgb[k] = 1.0f;
    }
    dv_render_boxes(&cam, b, 2, rgb, depth, idx);
    int centre = (H / 2) * W + W / 2;
    CHECK(idx[centre] == 1);
    CHECK(rgb[3 * centre + 1] > 60 && rgb[3 * centre] == 0 && rgb[3 * centre + 2] == 0);
    /* the box's own nearest surface along the axis: centre distance minus at most sqrt(3) h */
    CHECK(depth[centre] < 3.6 && depth[centre] > 3.6 - 0.03 * 1.7321);
    /* rendered the other way round, the answer is the same */
    dv_box swapped[2] = {b[1], b[0]};
    float *depth2 = malloc(sizeof(float) * W * H);
    dv_render_boxes(&cam, swapped, 2, rgb, depth2, idx);
    CHECK(idx[centre] == 0 && depth2[centre] == depth[centre]);
    int diff = 0;
    for (int i = 0; i < W * H; i++) diff += depth[i] != depth2[i];
    CHECK_MSG(diff == 0, "draw order changed %d depths", diff);

    /* a block shows up where dv_calvin_project puts its top face's centre, in its colour */
    float ro[15], so[24];
    default_state(ro, so);
    so[12] = 0.25f; so[13] = -0.1f; /* blue block, away from the gripper */
    dv_box boxes[DV_CALVIN_MAX_BOXES];
    int n = dv_calvin_scene_boxes(ro, so, boxes);
    dv_render_boxes(&cam, boxes, n, rgb, depth, idx);
    double top[3] = {so[12], so[13], so[14] + 0.02}, pu, pv, pd;
    CHECK(dv_calvin_project(&cam, top, &pu, &pv, &pd) == 0);
    int px = (int)lround(pu), py = (int)lround(pv), i = py * W + px;
    CHECK(px >= 0 && px < W && py >= 0 && py < H);
    CHECK(idx[i] >= 0 && boxes[idx[i]].part == DV_PART_BLOCK_BLUE);
    CHECK(rgb[3 * i + 2] > 2 * rgb[3 * i] && rgb[3 * i + 2] > 2 * rgb[3 * i + 1]);
    CHECK_CLOSE(depth[i], pd, 2e-3);

    /* the scene follows the state: opening the drawer moves its handle's pixels */
    double h0[3], h1[3];
    dv_calvin_drawer_handle(0.0, h0);
    dv_calvin_drawer_handle(0.2, h1);
    CHECK_CLOSE(h0[1] - h1[1], 0.2, 1e-12);
    so[1] = 0.2f;
    n = dv_calvin_scene_boxes(ro, so, boxes);
    dv_render_boxes(&cam, boxes, n, rgb, depth, idx);
    CHECK(dv_calvin_project(&cam, h1, &pu, &pv, &pd) == 0);
    i = (int)lround(pv) * W + (int)lround(pu);
    CHECK(idx[i] >= 0 && boxes[idx[i]].part == DV_PART_DRAWER_HANDLE);
    free(rgb); free(depth); free(depth2); free(idx);
}

TEST(render_near_plane_clipping) {
    /* a camera inside a big box's span, close to its face: the face crosses the near plane and
     * the view must still be covered, every depth in [near, far] */
    dv_calvin_camera cam = {.look_from = {0, 0, 0.5}, .look_at = {0, 1, 0.3}, .up = {0, 0, 1},
                            .fov_deg = 75, .width = 32, .height = 32, .near_ = 0.01, .far_ = 2,
                            .pixel_centers = true};
    dv_box floor = {.c = {0, 0, -0.01}, .R = {1, 0, 0, 0, 1, 0, 0, 0, 1}, .h = {5, 5, 0.01}, .rgb = {1, 1, 1}};
    uint8_t rgb[32 * 32 * 3];
    float depth[32 * 32], xyz[32 * 32 * 3];
    int16_t idx[32 * 32];
    dv_render_boxes(&cam, &floor, 1, rgb, depth, idx);
    dv_calvin_depth_to_points(&cam, depth, xyz);
    int hit = 0;
    for (int i = 0; i < 32 * 32; i++) {
        CHECK(depth[i] >= 0.01f && depth[i] <= 2.0f);
        if (idx[i] == 0) { hit++; CHECK(fabs(xyz[3 * i + 2]) < 1e-5); }
        else CHECK(depth[i] == 2.0f);
    }
    /* the lower part of the image sees the floor up to the far plane, the upper part sky */
    CHECK(hit > 32 * 8 && hit < 32 * 32);
    CHECK(idx[31 * 32 + 16] == 0 && idx[16] == -1);
}
