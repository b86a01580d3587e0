/* data/calvin/render.h — a small z-buffer rasteriser and a CALVIN-like play table built from
 * boxes, so that synthetic frames have RGB and metric depth consistent with the camera model
 * of data/calvin/geometry.h (back-projecting a rendered depth map lands on the rendered
 * surfaces).
 *
 * The scene (world frame of calvin_env, metres; the robot stands at y < 0 facing +y, "right"
 * is +x): the floor (z = 0), a desk whose top is at z = 0.46 (calvin_scene_D's table height),
 * a drawer under the top at the front right that slides out towards -y by scene_obs[1]
 * metres, a cabinet at the back with a sliding door that moves towards -x by scene_obs[0],
 * a button, a switch, a yellow light bulb and a green LED (lit by scene_obs[4] / [5]), the
 * three blocks of calvin_scene_D (red 0.056×0.04×0.04, blue 0.04 cube, pink 0.08×0.04×0.04 m:
 * the URDF sizes × the scene's global scaling 0.8) posed by scene_obs[6:24], and a stand-in
 * gripper (hand, two fingers opened by robot_obs[6], a wrist) posed by the TCP of robot_obs.
 * The layout is ours, not CALVIN's meshes: only the sizes, ranges and conventions above are
 * CALVIN's.
 *
 * Rendering: the pinhole camera of dv_calvin_camera, pixel centres sampled as OpenGL does,
 * flat Lambert shading (one directional light + ambient), z-buffer, triangles clipped at the
 * near plane; background pixels get depth = far (what PyBullet's z-buffer of 1 converts to)
 * and a plain sky colour. Depth is metric z along the camera axis, as in the dataset.
 *
 * Not here: textures, shadows, anti-aliasing, the robot arm's links beyond a stand-in wrist.
 */
#ifndef DV_DATA_CALVIN_RENDER_H
#define DV_DATA_CALVIN_RENDER_H

#include "data/calvin/geometry.h"

#include <stdint.h>

/* an oriented box */
typedef struct {
    double c[3];   /* centre, world */
    double R[9];   /* row-major rotation; its columns are the box's axes in the world */
    double h[3];   /* half extents along those axes */
    float rgb[3];  /* albedo in [0, 1] */
    int part;      /* dv_calvin_part */
} dv_box;

typedef enum {
    DV_PART_FLOOR, DV_PART_TABLE, DV_PART_DRAWER, DV_PART_DRAWER_HANDLE, DV_PART_CABINET,
    DV_PART_SLIDER, DV_PART_SLIDER_HANDLE, DV_PART_BUTTON, DV_PART_SWITCH, DV_PART_LED,
    DV_PART_LIGHTBULB, DV_PART_BLOCK_RED, DV_PART_BLOCK_BLUE, DV_PART_BLOCK_PINK, DV_PART_GRIPPER,
    DV_PART_COUNT
} dv_calvin_part;

#define DV_CALVIN_TABLE_Z 0.46       /* desk top */
#define DV_CALVIN_DRAWER_MAX 0.22    /* base__drawer upper limit 0.275 × scaling 0.8 */
#define DV_CALVIN_SLIDER_MAX 0.28    /* base__slide upper limit 0.35 × 0.8 */
#define DV_CALVIN_MAX_BOXES 40

/* the scene of one frame as boxes; returns how many were written (<= DV_CALVIN_MAX_BOXES) */
int dv_calvin_scene_boxes(const float robot_obs[15], const float scene_obs[24], dv_box *boxes);

/* fixed layout facts the trajectory scripts need */
void dv_calvin_drawer_handle(double drawer_state, double p[3]);  /* grasp point */
void dv_calvin_slider_handle(double slider_state, double p[3]);  /* grasp point */
void dv_calvin_block_half_size(int block, double h[3]);          /* 0 red, 1 blue, 2 pink */
/* the region of the desk top where blocks may rest: x in [x0, x1], y in [y0, y1] */
void dv_calvin_block_region(double *x0, double *x1, double *y0, double *y1);

/* rasterise boxes into rgb (H, W, 3) u8 and depth (H, W) metres; index (H, W), when not
 * NULL, gets the index into boxes of what each pixel shows (-1 for background) */
void dv_render_boxes(const dv_calvin_camera *cam, const dv_box *boxes, int n, uint8_t *rgb,
                     float *depth, int16_t *index);

/* the scene of (robot_obs, scene_obs) seen by cam */
void dv_calvin_render(const dv_calvin_camera *cam, const float robot_obs[15], const float scene_obs[24],
                      uint8_t *rgb, float *depth);

#endif
