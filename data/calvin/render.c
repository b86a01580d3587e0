/* data/calvin/render.c — the CALVIN-like play table as boxes and a z-buffer rasteriser for it
 * (see render.h for the scene and what is deliberately left out).
 *
 * Pipeline per box face: backface test in the world, the quad to camera coordinates
 * (x right, y up, z forward, the axes of geometry.c's view matrix), clipped against z >= near,
 * fanned into triangles, projected with X = W/2 + f·x/z, Y = H/2 - f·y/z (pixel i covers
 * [i, i+1), sampled at its centre), and filled with edge functions. 1/z is affine in screen
 * space, so depth is interpolated as 1/z: exact for planar faces.
 */
#include "data/calvin/render.h"

#include <math.h>
#include <string.h>

/* ---- the scene -------------------------------------------------------------------------- */

static const double block_half[3][3] = {
    {0.028, 0.020, 0.020}, /* red: block_red_middle 0.07×0.05×0.05 × 0.8 */
    {0.020, 0.020, 0.020}, /* blue: block_blue_small 0.05³ × 0.8 */
    {0.040, 0.020, 0.020}, /* pink: block_pink_big 0.1×0.05×0.05 × 0.8 */
};
static const float block_rgb[3][3] = {{0.85f, 0.08f, 0.06f}, {0.08f, 0.16f, 0.85f}, {0.92f, 0.25f, 0.78f}};

/* drawer: front face at y = -0.21 - s; slider door centre at x = 0.01 - s */
#define DRAWER_X 0.18
#define DRAWER_FRONT_Y (-0.21)
#define SLIDER_X 0.01
#define SLIDER_Y 0.05

void dv_calvin_block_half_size(int block, double h[3]) {
    for (int i = 0; i < 3; i++) h[i] = block_half[block][i];
}

void dv_calvin_block_region(double *x0, double *x1, double *y0, double *y1) {
    *x0 = -0.10; *x1 = 0.34; *y0 = -0.16; *y1 = -0.02;
}

/* the drawer's knob (half size 0.012 × 0.02 × 0.012) sticks out of its front face */
void dv_calvin_drawer_handle(double s, double p[3]) {
    p[0] = DRAWER_X; p[1] = DRAWER_FRONT_Y - 0.02 - s; p[2] = 0.345;
}

/* the sliding door's vertical bar (half size 0.008 × 0.012 × 0.04) on its front face */
void dv_calvin_slider_handle(double s, double p[3]) {
    p[0] = SLIDER_X - 0.06 - s; p[1] = SLIDER_Y - 0.008 - 0.012; p[2] = 0.575;
}

static const double I3[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};

static dv_box box(double cx, double cy, double cz, double hx, double hy, double hz, const double R[9],
                  float r, float g, float b, int part) {
    dv_box o = {.c = {cx, cy, cz}, .h = {hx, hy, hz}, .rgb = {r, g, b}, .part = part};
    memcpy(o.R, R ? R : I3, sizeof o.R);
    return o;
}

/* a box given in the frame (p, R): centre p + R·c, rotation R */
static dv_box box_in(const double p[3], const double R[9], double cx, double cy, double cz, double hx,
                     double hy, double hz, float r, float g, float b, int part) {
    double c[3];
    for (int i = 0; i < 3; i++) c[i] = p[i] + R[3 * i] * cx + R[3 * i + 1] * cy + R[3 * i + 2] * cz;
    return box(c[0], c[1], c[2], hx, hy, hz, R, r, g, b, part);
}

static double clampd(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

int dv_calvin_scene_boxes(const float robot_obs[15], const float scene_obs[24], dv_box *b) {
    int n = 0;
    double slide = clampd(scene_obs[0], 0, DV_CALVIN_SLIDER_MAX), drawer = clampd(scene_obs[1], 0, DV_CALVIN_DRAWER_MAX);
    double button = clampd(scene_obs[2], 0, 0.02), sw = clampd(scene_obs[3], 0, 0.088);
    bool bulb = scene_obs[4] > 0.5f, led = scene_obs[5] > 0.5f;
    const double T = DV_CALVIN_TABLE_Z;

    b[n++] = box(0, 0, -0.01, 2.5, 2.5, 0.01, NULL, 0.50f, 0.50f, 0.52f, DV_PART_FLOOR);
    b[n++] = box(0, 0.01, T / 2, 0.55, 0.21, T / 2, NULL, 0.70f, 0.55f, 0.38f, DV_PART_TABLE);
    /* drawer (solid; the part inside the desk is hidden by the desk) and its handle */
    b[n++] = box(DRAWER_X, DRAWER_FRONT_Y + 0.16 - drawer, 0.335, 0.11, 0.16, 0.065, NULL, 0.82f, 0.80f, 0.74f, DV_PART_DRAWER);
    double hp[3];
    dv_calvin_drawer_handle(drawer, hp);
    b[n++] = box(hp[0], hp[1], hp[2], 0.012, 0.02, 0.012, NULL, 0.22f, 0.22f, 0.24f, DV_PART_DRAWER_HANDLE);
    /* cabinet at the back: back wall, top, two sides */
    b[n++] = box(-0.14, 0.21, T + 0.12, 0.28, 0.01, 0.12, NULL, 0.88f, 0.88f, 0.85f, DV_PART_CABINET);
    b[n++] = box(-0.14, 0.14, T + 0.23, 0.28, 0.08, 0.01, NULL, 0.88f, 0.88f, 0.85f, DV_PART_CABINET);
    b[n++] = box(-0.41, 0.14, T + 0.11, 0.01, 0.08, 0.11, NULL, 0.88f, 0.88f, 0.85f, DV_PART_CABINET);
    b[n++] = box(0.13, 0.14, T + 0.11, 0.01, 0.08, 0.11, NULL, 0.88f, 0.88f, 0.85f, DV_PART_CABINET);
    /* sliding door and its handle */
    b[n++] = box(SLIDER_X - slide, SLIDER_Y, T + 0.115, 0.12, 0.008, 0.105, NULL, 0.55f, 0.40f, 0.26f, DV_PART_SLIDER);
    dv_calvin_slider_handle(slide, hp);
    b[n++] = box(hp[0], hp[1], hp[2], 0.008, 0.012, 0.04, NULL, 0.22f, 0.22f, 0.24f, DV_PART_SLIDER_HANDLE);
    /* button (pressed down by its state), switch (slides up), LED and light bulb */
    double btop = T + 0.02 - button;
    b[n++] = box(-0.28, -0.10, (T + btop) / 2, 0.025, 0.025, (btop - T) / 2 + 1e-4, NULL, 0.15f, 0.15f, 0.17f, DV_PART_BUTTON);
    b[n++] = box(0.26, 0.10, T + 0.04 + sw, 0.012, 0.02, 0.02, NULL, 0.15f, 0.15f, 0.17f, DV_PART_SWITCH);
    b[n++] = box(-0.28, 0.14, T + 0.25, 0.015, 0.015, 0.01, NULL, led ? 0.1f : 0.08f, led ? 1.0f : 0.28f,
                 led ? 0.1f : 0.08f, DV_PART_LED);
    b[n++] = box(0.40, 0.14, T + 0.06, 0.025, 0.025, 0.06, NULL, bulb ? 1.0f : 0.38f, bulb ? 0.95f : 0.36f,
                 bulb ? 0.2f : 0.2f, DV_PART_LIGHTBULB);
    /* blocks */
    for (int k = 0; k < 3; k++) {
        const float *o = scene_obs + 6 + 6 * k;
        double e[3] = {o[3], o[4], o[5]}, R[9];
        dv_euler_xyz_to_matrix(e, R);
        b[n++] = box(o[0], o[1], o[2], block_half[k][0], block_half[k][1], block_half[k][2], R,
                     block_rgb[k][0], block_rgb[k][1], block_rgb[k][2], DV_PART_BLOCK_RED + k);
    }
    /* stand-in gripper in the TCP frame (z towards the finger tips, fingers open along y):
     * hand z in [-0.14, -0.08] (panda_longer_finger: TCP 0.14 from the hand), fingers up to
     * the TCP, a wrist behind the hand */
    double p[3] = {robot_obs[0], robot_obs[1], robot_obs[2]}, e[3] = {robot_obs[3], robot_obs[4], robot_obs[5]}, R[9];
    dv_euler_xyz_to_matrix(e, R);
    double w = clampd(robot_obs[6], 0, 0.08);
    b[n++] = box_in(p, R, 0, 0, -0.11, 0.025, 0.10, 0.03, 0.90f, 0.90f, 0.92f, DV_PART_GRIPPER);
    b[n++] = box_in(p, R, 0, w / 2 + 0.009, -0.04, 0.01, 0.009, 0.04, 0.30f, 0.30f, 0.32f, DV_PART_GRIPPER);
    b[n++] = box_in(p, R, 0, -w / 2 - 0.009, -0.04, 0.01, 0.009, 0.04, 0.30f, 0.30f, 0.32f, DV_PART_GRIPPER);
    b[n++] = box_in(p, R, 0, 0, -0.27, 0.04, 0.04, 0.13, 0.92f, 0.92f, 0.94f, DV_PART_GRIPPER);
    return n;
}

/* ---- rasteriser ------------------------------------------------------------------------- */

typedef struct {
    const dv_calvin_camera *cam;
    double s[3], u[3], f[3], foc;
    int W, H;
    uint8_t *rgb;
    float *depth;
    int16_t *index;
} raster;

/* one triangle in camera coordinates (z > 0 forward), flat colour */
static void fill_triangle(const raster *r, const double v[3][3], const uint8_t col[3], int16_t id) {
    double X[3], Y[3], iz[3];
    for (int k = 0; k < 3; k++) {
        iz[k] = 1.0 / v[k][2];
        X[k] = r->W * 0.5 + r->foc * v[k][0] * iz[k];
        Y[k] = r->H * 0.5 - r->foc * v[k][1] * iz[k];
    }
    double area = (X[1] - X[0]) * (Y[2] - Y[0]) - (X[2] - X[0]) * (Y[1] - Y[0]);
    if (fabs(area) < 1e-12) return;
    double inv = 1.0 / area;
    int x0 = (int)floor(fmin(X[0], fmin(X[1], X[2]))), x1 = (int)ceil(fmax(X[0], fmax(X[1], X[2])));
    int y0 = (int)floor(fmin(Y[0], fmin(Y[1], Y[2]))), y1 = (int)ceil(fmax(Y[0], fmax(Y[1], Y[2])));
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > r->W) x1 = r->W;
    if (y1 > r->H) y1 = r->H;
    const double far_ = r->cam->far_;
    for (int py = y0; py < y1; py++) {
        double cy = py + 0.5;
        for (int px = x0; px < x1; px++) {
            double cx = px + 0.5;
            /* barycentrics from edge functions, normalised by the signed area */
            double b0 = ((X[1] - cx) * (Y[2] - cy) - (X[2] - cx) * (Y[1] - cy)) * inv;
            double b1 = ((X[2] - cx) * (Y[0] - cy) - (X[0] - cx) * (Y[2] - cy)) * inv;
            double b2 = 1.0 - b0 - b1;
            if (b0 < 0 || b1 < 0 || b2 < 0) continue;
            double z = 1.0 / (b0 * iz[0] + b1 * iz[1] + b2 * iz[2]);
            size_t i = (size_t)py * r->W + px;
            if (z >= r->depth[i] || z > far_) continue;
            r->depth[i] = (float)z;
            memcpy(r->rgb + 3 * i, col, 3);
            if (r->index) r->index[i] = id;
        }
    }
}

/* clip a convex polygon (camera coordinates) against z >= near and fan it into triangles */
static void fill_polygon(const raster *r, double (*poly)[3], int n, const uint8_t col[3], int16_t id) {
    double out[8][3];
    int m = 0;
    const double zn = r->cam->near_;
    for (int i = 0; i < n; i++) {
        const double *a = poly[i], *b = poly[(i + 1) % n];
        bool ina = a[2] >= zn, inb = b[2] >= zn;
        if (ina) memcpy(out[m++], a, sizeof out[0]);
        if (ina != inb) {
            double t = (zn - a[2]) / (b[2] - a[2]);
            for (int k = 0; k < 3; k++) out[m][k] = a[k] + t * (b[k] - a[k]);
            out[m++][2] = zn;
        }
    }
    for (int i = 1; i + 1 < m; i++) {
        double tri[3][3];
        memcpy(tri[0], out[0], sizeof tri[0]);
        memcpy(tri[1], out[i], sizeof tri[0]);
        memcpy(tri[2], out[i + 1], sizeof tri[0]);
        fill_triangle(r, tri, col, id);
    }
}

void dv_render_boxes(const dv_calvin_camera *cam, const dv_box *boxes, int n, uint8_t *rgb, float *depth,
                     int16_t *index) {
    raster r = {.cam = cam, .W = cam->width, .H = cam->height, .rgb = rgb, .depth = depth, .index = index};
    dv_camera_axes(cam, r.s, r.u, r.f);
    r.foc = dv_camera_focal(cam);
    const size_t npix = (size_t)r.W * r.H;
    static const uint8_t sky[3] = {168, 178, 190};
    for (size_t i = 0; i < npix; i++) {
        depth[i] = (float)cam->far_;
        memcpy(rgb + 3 * i, sky, 3);
        if (index) index[i] = -1;
    }
    /* light from above, a little from the front right */
    const double L[3] = {0.3076923, -0.2307692, 0.9230769};
    /* the 8 corners are indexed by bits (x, y, z sign); each face lists 4 of them in order */
    static const int face[6][4] = {{1, 3, 7, 5}, {0, 4, 6, 2}, {2, 6, 7, 3}, {0, 1, 5, 4}, {4, 5, 7, 6}, {0, 2, 3, 1}};
    for (int bi = 0; bi < n; bi++) {
        const dv_box *b = &boxes[bi];
        double cam_pts[8][3];
        for (int k = 0; k < 8; k++) {
            double l[3] = {(k & 1) ? b->h[0] : -b->h[0], (k & 2) ? b->h[1] : -b->h[1], (k & 4) ? b->h[2] : -b->h[2]}, d[3];
            for (int i = 0; i < 3; i++)
                d[i] = b->c[i] + b->R[3 * i] * l[0] + b->R[3 * i + 1] * l[1] + b->R[3 * i + 2] * l[2] - cam->look_from[i];
            cam_pts[k][0] = d[0] * r.s[0] + d[1] * r.s[1] + d[2] * r.s[2];
            cam_pts[k][1] = d[0] * r.u[0] + d[1] * r.u[1] + d[2] * r.u[2];
            cam_pts[k][2] = d[0] * r.f[0] + d[1] * r.f[1] + d[2] * r.f[2];
        }
        for (int fi = 0; fi < 6; fi++) {
            int axis = fi / 2;
            double sign = (fi & 1) ? -1 : 1, nrm[3], toface[3];
            for (int i = 0; i < 3; i++) {
                nrm[i] = sign * b->R[3 * i + axis];
                toface[i] = b->c[i] + sign * b->h[axis] * b->R[3 * i + axis] - cam->look_from[i];
            }
            if (nrm[0] * toface[0] + nrm[1] * toface[1] + nrm[2] * toface[2] >= 0) continue; /* faces away */
            double lam = nrm[0] * L[0] + nrm[1] * L[1] + nrm[2] * L[2];
            double shade = 0.42 + 0.58 * (lam > 0 ? lam : 0);
            uint8_t col[3];
            for (int i = 0; i < 3; i++) {
                double c = b->rgb[i] * shade * 255.0 + 0.5;
                col[i] = (uint8_t)(c > 255 ? 255 : c < 0 ? 0 : c);
            }
            double poly[4][3];
            for (int k = 0; k < 4; k++) memcpy(poly[k], cam_pts[face[fi][k]], sizeof poly[k]);
            fill_polygon(&r, poly, 4, col, (int16_t)bi);
        }
    }
}

void dv_calvin_render(const dv_calvin_camera *cam, const float robot_obs[15], const float scene_obs[24],
                      uint8_t *rgb, float *depth) {
    dv_box boxes[DV_CALVIN_MAX_BOXES];
    int n = dv_calvin_scene_boxes(robot_obs, scene_obs, boxes);
    dv_render_boxes(cam, boxes, n, rgb, depth, NULL);
}
