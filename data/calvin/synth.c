/* data/calvin/synth.c — scripted CALVIN tasks rendered into a dataset in CALVIN's layout
 * (see synth.h for the layout, the conventions and what is made up).
 *
 * An episode: sample a scene for the task (block poses, drawer and door states, lights),
 * write the task as a list of waypoints (TCP position, yaw, gripper command, what the
 * gripper drags along), time them at the speed limit and stretch them to fill the episode,
 * then step frame by frame: the TCP moves to the next pose, the gripper width follows its
 * command at 0.016 m per frame, and whatever is attached (a block, the drawer, the sliding
 * door, a pushed block) moves with the TCP. Rendering and writing the frames runs in
 * parallel (OpenMP), one file per frame.
 *
 * Facts from calvin_env / calvin: to_relative_action (max_pos 0.02, max_orn 0.05, angle
 * difference wrapped to [-pi, pi)), the scene_obs and robot_obs layouts, the task names, the
 * instruction strings (conf/annotations/new_playtable.yaml, a few per task), calvin_scene_D's
 * initial joint angles and table height, the drawer / door ranges (URDF limits × 0.8).
 * Made up: the scene layout (render.c), the trajectories, the joint angles.
 */
#include "data/calvin/synth.h"
#include "data/calvin/geometry.h"
#include "data/calvin/npy.h"
#include "data/calvin/pickle.h"
#include "data/calvin/render.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <omp.h>

#define ERRF(...) (err ? snprintf(err, errlen, __VA_ARGS__) : 0, -1)

/* ---- tasks ------------------------------------------------------------------------------ */

typedef enum {
    K_DRAWER_OPEN, K_DRAWER_CLOSE, K_SLIDER_LEFT, K_SLIDER_RIGHT, K_LIFT, K_PUSH_RIGHT, K_PUSH_LEFT,
    K_ROTATE_RIGHT, K_ROTATE_LEFT
} task_kind;

typedef struct {
    const char *name;
    task_kind kind;
    int block; /* 0 red, 1 blue, 2 pink; -1 none */
    const char *ann[4];
} task_def;

#define BLOCK_TASKS(c, k)                                                                             \
    {"lift_" c "_block_table", K_LIFT, k,                                                             \
     {"lift the " c " block", "pick up the " c " block", "lift the " c " block from the table",       \
      "grasp the " c " block and lift it up"}},                                                       \
    {"push_" c "_block_right", K_PUSH_RIGHT, k,                                                       \
     {"push the " c " block to the right", "slide the " c " block to the right",                      \
      "go push the " c " block to the right", "sweep the " c " block to the right"}},                 \
    {"push_" c "_block_left", K_PUSH_LEFT, k,                                                         \
     {"push the " c " block to the left", "slide the " c " block to the left",                        \
      "go push the " c " block to the left", "sweep the " c " block to the left"}},                   \
    {"rotate_" c "_block_right", K_ROTATE_RIGHT, k,                                                   \
     {"rotate the " c " block to the right", "take the " c " block and rotate it right",              \
      "turn the " c " block right", "grasp the " c " block and turn it right"}},                      \
    {"rotate_" c "_block_left", K_ROTATE_LEFT, k,                                                     \
     {"rotate the " c " block to the left", "take the " c " block and rotate it left",                \
      "turn the " c " block left", "grasp the " c " block and turn it left"}}

static const task_def tasks[] = {
    {"open_drawer", K_DRAWER_OPEN, -1,
     {"open the drawer", "pull the drawer", "grasp the drawer handle and open it", "go open the drawer"}},
    {"close_drawer", K_DRAWER_CLOSE, -1,
     {"close the drawer", "push the drawer", "grasp the drawer handle and close it", "go close the drawer"}},
    {"move_slider_left", K_SLIDER_LEFT, -1,
     {"move the door to the left", "slide the door to the left", "push the sliding door to the left",
      "grasp the door handle and slide the door to the left"}},
    {"move_slider_right", K_SLIDER_RIGHT, -1,
     {"move the door to the right", "slide the door to the right", "push the sliding door to the right",
      "grasp the door handle and slide the door to the right"}},
    BLOCK_TASKS("red", 0),
    BLOCK_TASKS("blue", 1),
    BLOCK_TASKS("pink", 2),
};
enum { NTASKS = sizeof tasks / sizeof tasks[0] };

int dv_calvin_synth_num_tasks(void) { return NTASKS; }
const char *dv_calvin_synth_task_name(int t) { return t >= 0 && t < NTASKS ? tasks[t].name : NULL; }
int dv_calvin_synth_num_instructions(int t) { return t >= 0 && t < NTASKS ? 4 : 0; }
const char *dv_calvin_synth_instruction(int t, int i) {
    return t >= 0 && t < NTASKS && i >= 0 && i < 4 ? tasks[t].ann[i] : NULL;
}
int dv_calvin_synth_task_find(const char *name) {
    for (int t = 0; t < NTASKS; t++)
        if (!strcmp(tasks[t].name, name)) return t;
    return -1;
}

/* ---- small helpers ---------------------------------------------------------------------- */

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static double unif(uint64_t *s, double lo, double hi) {
    return lo + (hi - lo) * ((double)(splitmix(s) >> 11) / 9007199254740992.0);
}
static double wrap_pi(double a) { /* to [-pi, pi), Python's (a + pi) % 2pi - pi */
    double m = fmod(a + M_PI, 2 * M_PI);
    if (m < 0) m += 2 * M_PI;
    return m - M_PI;
}
static double clampd(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

void dv_calvin_rel_action(const float a[7], const float obs[15], float rel[7]) {
    for (int i = 0; i < 3; i++) rel[i] = (float)(clampd((double)a[i] - obs[i], -0.02, 0.02) / 0.02);
    for (int i = 3; i < 6; i++) rel[i] = (float)(clampd(wrap_pi((double)a[i] - obs[i]), -0.05, 0.05) / 0.05);
    rel[6] = a[6];
}

/* hashed character trigrams of " text " (lower-cased), each a fixed ±1 vector of 384 signs
 * drawn from splitmix64 seeded by the trigram's FNV-1a hash; summed and L2-normalised */
void dv_calvin_text_embedding(const char *text, float emb[DV_CALVIN_EMB_DIM]) {
    size_t n = strlen(text);
    double acc[DV_CALVIN_EMB_DIM] = {0};
    char *s = malloc(n + 3);
    if (!s) { fprintf(stderr, "dv_calvin_text_embedding: out of memory\n"); abort(); }
    s[0] = ' ';
    for (size_t i = 0; i < n; i++) s[i + 1] = (char)((text[i] >= 'A' && text[i] <= 'Z') ? text[i] + 32 : text[i]);
    s[n + 1] = ' ';
    s[n + 2] = 0;
    for (size_t i = 0; i + 3 <= n + 2; i++) {
        uint64_t h = 0xcbf29ce484222325ULL;
        for (int k = 0; k < 3; k++) h = (h ^ (uint8_t)s[i + k]) * 0x100000001b3ULL;
        for (int w = 0; w < DV_CALVIN_EMB_DIM / 64; w++) {
            uint64_t bits = splitmix(&h);
            for (int b = 0; b < 64; b++) acc[w * 64 + b] += (bits >> b & 1) ? 1.0 : -1.0;
        }
    }
    free(s);
    double norm = 0;
    for (int j = 0; j < DV_CALVIN_EMB_DIM; j++) norm += acc[j] * acc[j];
    norm = norm > 0 ? 1.0 / sqrt(norm) : 0;
    for (int j = 0; j < DV_CALVIN_EMB_DIM; j++) emb[j] = (float)(acc[j] * norm);
}

/* ---- scripting -------------------------------------------------------------------------- */

#define MAX_STEP_POS 0.018 /* m per frame and axis: under to_relative_action's 0.02 clip */
#define MAX_STEP_ROT 0.045 /* rad per frame: under its 0.05 clip */
#define WIDTH_OPEN 0.08
#define WIDTH_RATE 0.016   /* gripper opening change per frame */

typedef enum { ATT_NONE, ATT_BLOCK, ATT_DRAWER, ATT_SLIDER, ATT_PUSH } attach_kind;

typedef struct {
    double p[3], yaw;
    int grip;           /* gripper command during the move to this waypoint */
    double grip_width;  /* width the fingers stop at when closing (the object's width) */
    attach_kind att;    /* what moves with the TCP during the move */
    int dwell;          /* minimum frames (for the gripper to open / close) */
} waypoint;

typedef struct {
    waypoint w[16];
    int n;
} script;

static void add(script *s, const double p[3], double yaw, int grip, double gw, attach_kind att, int dwell) {
    waypoint *w = &s->w[s->n++];
    memcpy(w->p, p, sizeof w->p);
    w->yaw = yaw;
    w->grip = grip;
    w->grip_width = gw;
    w->att = att;
    w->dwell = dwell;
}
/* the previous waypoint, moved by (dx, dy, dz, dyaw) */
static void add_rel(script *s, double dx, double dy, double dz, double dyaw, int grip, double gw,
                    attach_kind att, int dwell) {
    const waypoint *q = &s->w[s->n - 1];
    double p[3] = {q->p[0] + dx, q->p[1] + dy, q->p[2] + dz};
    add(s, p, q->yaw + dyaw, grip, gw, att, dwell);
}

/* CALVIN's calvin_scene_D initial joint angles and a made-up linear response to the TCP */
static const double q_home[7] = {-1.21779206, 1.03987646, 2.11978261, -2.34205014, -0.87015947, 1.64119353, 0.55344866};
static const double tcp_home[4] = {0.04, -0.12, 0.51, M_PI / 2};
static const double q_gain[7][4] = {
    {1.9, 1.1, 0.0, 0.0}, {0.6, -1.6, -1.2, 0.0}, {-0.9, 0.4, 0.3, 0.0}, {0.3, 1.7, 1.5, 0.0},
    {0.5, -0.4, 0.8, 0.1}, {-0.2, 0.9, -1.4, 0.0}, {-0.6, -0.3, 0.0, 1.0},
};

/* ensures the block's yaw gives a grasp yaw near pi/2 (fingers close across its short side) */
static double grasp_yaw(int block, double theta) {
    double period = block == 1 ? M_PI / 2 : M_PI, best = theta, bd = INFINITY;
    for (int k = -4; k <= 4; k++) {
        double y = theta + k * period;
        if (fabs(y - M_PI / 2) < bd) { bd = fabs(y - M_PI / 2); best = y; }
    }
    return best;
}

/* half extent of a block along world x */
static double block_ext_x(int block, double theta) {
    double h[3];
    dv_calvin_block_half_size(block, h);
    return fabs(cos(theta)) * h[0] + fabs(sin(theta)) * h[1];
}

typedef struct {
    double scene[24];
    double tilt[2];   /* euler x, y of the TCP (constant over the episode) */
    double start[4];  /* TCP x, y, z, yaw at the start */
    script s;
} plan;

/* the scene and waypoints of one task */
static void make_plan(const task_def *t, uint64_t *r, plan *pl) {
    double *sc = pl->scene;
    memset(pl, 0, sizeof *pl);
    double x0, x1, y0, y1;
    dv_calvin_block_region(&x0, &x1, &y0, &y1);
    /* articulated parts and lights */
    sc[0] = unif(r, 0, DV_CALVIN_SLIDER_MAX);
    sc[1] = unif(r, 0, 0.18);
    if (t->kind == K_SLIDER_LEFT) sc[0] = unif(r, 0, 0.08);
    if (t->kind == K_SLIDER_RIGHT) sc[0] = unif(r, 0.20, DV_CALVIN_SLIDER_MAX);
    if (t->kind == K_DRAWER_OPEN) sc[1] = unif(r, 0, 0.04);
    if (t->kind == K_DRAWER_CLOSE) sc[1] = unif(r, 0.15, 0.21);
    sc[2] = 0;
    sc[3] = unif(r, 0, 1) < 0.5 ? 0 : unif(r, 0.07, 0.088);
    sc[4] = sc[3] > 0.044;
    sc[5] = unif(r, 0, 1) < 0.5;
    /* blocks: on the desk top, 0.1 m apart; a pushed block has room in its direction */
    for (int tries = 0;; tries++) {
        for (int k = 0; k < 3; k++) {
            double lo = x0, hi = x1;
            if (k == t->block && t->kind == K_PUSH_RIGHT) hi = x1 - 0.16;
            if (k == t->block && t->kind == K_PUSH_LEFT) lo = x0 + 0.16;
            double *b = sc + 6 + 6 * k, h[3];
            dv_calvin_block_half_size(k, h);
            b[0] = unif(r, lo, hi);
            b[1] = unif(r, y0, y1);
            b[2] = DV_CALVIN_TABLE_Z + h[2];
            b[3] = b[4] = 0;
            b[5] = unif(r, -M_PI, M_PI);
        }
        bool ok = true;
        for (int a = 0; a < 3; a++)
            for (int b = a + 1; b < 3; b++)
                if (hypot(sc[6 + 6 * a] - sc[6 + 6 * b], sc[7 + 6 * a] - sc[7 + 6 * b]) < 0.10) ok = false;
        /* nothing in a pushed block's way (0.16 m in its direction) */
        if (t->kind == K_PUSH_RIGHT || t->kind == K_PUSH_LEFT) {
            const double *p = sc + 6 + 6 * t->block, dir = t->kind == K_PUSH_RIGHT ? 1 : -1;
            for (int k = 0; k < 3; k++) {
                const double *q = sc + 6 + 6 * k;
                double along = (q[0] - p[0]) * dir;
                if (k != t->block && fabs(q[1] - p[1]) < 0.075 && along > -0.07 && along < 0.16 + 0.07) ok = false;
            }
        }
        if (ok || tries > 1000) break;
    }
    pl->tilt[0] = M_PI - unif(r, 0.0, 0.06);
    pl->tilt[1] = unif(r, -0.04, 0.04);

    script *s = &pl->s;
    double p[3], yaw = M_PI / 2 + unif(r, -0.15, 0.15);
    const double *blk = t->block >= 0 ? sc + 6 + 6 * t->block : NULL;
    switch (t->kind) {
    case K_DRAWER_OPEN:
    case K_DRAWER_CLOSE: {
        dv_calvin_drawer_handle(sc[1], p);
        double pre[3] = {p[0], p[1], p[2] + 0.10};
        add(s, pre, yaw, 1, 0, ATT_NONE, 0);
        add(s, p, yaw, 1, 0, ATT_NONE, 0);
        add_rel(s, 0, 0, 0, 0, -1, 0.024, ATT_NONE, 5);
        double d = t->kind == K_DRAWER_OPEN ? -unif(r, 0.14, 0.17) : sc[1] - unif(r, 0, 0.02);
        add_rel(s, 0, d, 0, 0, -1, 0.024, ATT_DRAWER, 0);
        add_rel(s, 0, 0, 0, 0, 1, 0, ATT_NONE, 4);
        add_rel(s, 0, 0, 0.08, 0, 1, 0, ATT_NONE, 0);
        break;
    }
    case K_SLIDER_LEFT:
    case K_SLIDER_RIGHT: {
        dv_calvin_slider_handle(sc[0], p);
        p[2] += 0.025; /* near the bar's top, so the hand clears the door */
        double pre[3] = {p[0], p[1], p[2] + 0.08};
        add(s, pre, yaw, 1, 0, ATT_NONE, 0);
        add(s, p, yaw, 1, 0, ATT_NONE, 0);
        add_rel(s, 0, 0, 0, 0, -1, 0.016, ATT_NONE, 5);
        double d = t->kind == K_SLIDER_LEFT ? -unif(r, 0.16, 0.20) : unif(r, 0.16, fmin(0.20, sc[0]));
        add_rel(s, d, 0, 0, 0, -1, 0.016, ATT_SLIDER, 0);
        add_rel(s, 0, 0, 0, 0, 1, 0, ATT_NONE, 4);
        add_rel(s, 0, 0, 0.08, 0, 1, 0, ATT_NONE, 0);
        break;
    }
    case K_LIFT:
    case K_ROTATE_RIGHT:
    case K_ROTATE_LEFT: {
        double gy = grasp_yaw(t->block, blk[5]);
        double pre[3] = {blk[0], blk[1], blk[2] + 0.10};
        add(s, pre, gy, 1, 0, ATT_NONE, 0);
        add(s, blk, gy, 1, 0, ATT_NONE, 0);
        add_rel(s, 0, 0, 0, 0, -1, 0.04, ATT_NONE, 5);
        if (t->kind == K_LIFT) {
            add_rel(s, 0, 0, unif(r, 0.10, 0.14), 0, -1, 0.04, ATT_BLOCK, 0);
        } else {
            double turn = unif(r, 1.1, 1.3) * (t->kind == K_ROTATE_LEFT ? 1 : -1);
            add_rel(s, 0, 0, 0.03, 0, -1, 0.04, ATT_BLOCK, 0);
            add_rel(s, 0, 0, 0, turn, -1, 0.04, ATT_BLOCK, 0);
            add_rel(s, 0, 0, -0.03, 0, -1, 0.04, ATT_BLOCK, 0);
            add_rel(s, 0, 0, 0, 0, 1, 0, ATT_NONE, 4);
            add_rel(s, 0, 0, 0.08, 0, 1, 0, ATT_NONE, 0);
        }
        break;
    }
    case K_PUSH_RIGHT:
    case K_PUSH_LEFT: {
        double dir = t->kind == K_PUSH_RIGHT ? 1 : -1;
        /* closed fingers (0.018 m half width along x at yaw pi/2) touching the block's side */
        double touch[3] = {blk[0] - dir * (block_ext_x(t->block, blk[5]) + 0.018), blk[1], blk[2]};
        double pre[3] = {touch[0], touch[1], touch[2] + 0.08};
        add(s, pre, M_PI / 2, -1, 0, ATT_NONE, 4);
        add(s, touch, M_PI / 2, -1, 0, ATT_NONE, 0);
        add_rel(s, dir * unif(r, 0.12, 0.14), 0, 0, 0, -1, 0, ATT_PUSH, 0);
        add_rel(s, 0, 0, 0.08, 0, -1, 0, ATT_NONE, 0);
        break;
    }
    }
    /* start somewhere near the first waypoint, a little higher */
    const waypoint *w0 = &s->w[0];
    pl->start[0] = w0->p[0] + unif(r, -0.08, 0.08);
    pl->start[1] = w0->p[1] + unif(r, -0.06, 0.06);
    pl->start[2] = w0->p[2] + unif(r, 0.02, 0.10);
    pl->start[3] = w0->yaw + unif(r, -0.3, 0.3);
}

/* frames needed for one waypoint at the speed limit */
static int seg_frames(const double a[4], const waypoint *w) {
    double m = 0;
    for (int i = 0; i < 3; i++) m = fmax(m, fabs(w->p[i] - a[i]) / MAX_STEP_POS);
    m = fmax(m, fabs(w->yaw - a[3]) / MAX_STEP_ROT);
    int n = (int)ceil(m - 1e-9);
    if (n < w->dwell) n = w->dwell;
    return n < 1 ? 1 : n;
}

static uint64_t episode_seed(uint64_t seed, int index) {
    uint64_t s = seed ^ 0x5DEECE66DULL;
    uint64_t a = splitmix(&s);
    s = a ^ ((uint64_t)index * 0xD1B54A32D192ED03ULL);
    return splitmix(&s);
}

void dv_calvin_synth_episode_free(dv_calvin_synth_episode *ep) {
    free(ep->actions); free(ep->rel_actions); free(ep->robot_obs); free(ep->scene_obs);
    memset(ep, 0, sizeof *ep);
}

int dv_calvin_synth_episode_make(uint64_t seed, int index, int frames, int task, dv_calvin_synth_episode *ep, char *err,
                           size_t errlen) {
    memset(ep, 0, sizeof *ep);
    if (frames < 16) return ERRF("frames per episode must be >= 16 (got %d)", frames);
    uint64_t r = episode_seed(seed, index);
    if (task < 0) {
        /* families (drawer, door, lift, push, rotate) in turn from a seeded offset */
        uint64_t rs = seed ^ 0xA5A5A5A5ULL;
        int family = (int)((splitmix(&rs) % 5 + (uint64_t)index) % 5);
        int c = (int)(splitmix(&r) % 6), col = c % 3;
        switch (family) {
        case 0: task = c & 1 ? dv_calvin_synth_task_find("close_drawer") : dv_calvin_synth_task_find("open_drawer"); break;
        case 1: task = c & 1 ? dv_calvin_synth_task_find("move_slider_right") : dv_calvin_synth_task_find("move_slider_left"); break;
        case 2: task = 4 + 5 * col; break;                 /* lift_<col>_block_table */
        case 3: task = 4 + 5 * col + 1 + (c >= 3); break;  /* push right / left */
        default: task = 4 + 5 * col + 3 + (c >= 3); break; /* rotate right / left */
        }
    }
    if (task < 0 || task >= NTASKS) return ERRF("task %d out of range [0, %d)", task, NTASKS);
    const task_def *t = &tasks[task];
    plan pl;
    make_plan(t, &r, &pl);

    /* timing: rest frames, then each waypoint's share of the remaining transitions */
    const int rest = frames / 16, avail = frames - 1 - rest, nw = pl.s.n;
    int need[16], total = 0;
    double at[4] = {pl.start[0], pl.start[1], pl.start[2], pl.start[3]};
    for (int i = 0; i < nw; i++) {
        need[i] = seg_frames(at, &pl.s.w[i]);
        total += need[i];
        memcpy(at, pl.s.w[i].p, sizeof pl.s.w[i].p);
        at[3] = pl.s.w[i].yaw;
    }
    if (avail < nw) return ERRF("frames per episode %d too short for task %s", frames, t->name);
    int alloc[16], used = 0;
    for (int i = 0; i < nw; i++) {
        /* stretch (or, when too short, squeeze) in proportion to the need */
        alloc[i] = (int)floor((double)need[i] * avail / total);
        if (alloc[i] < 1) alloc[i] = 1;
        used += alloc[i];
    }
    for (int i = 0; used != avail; i = (i + 1) % nw) {
        if (used < avail) { alloc[i]++; used++; }
        else if (alloc[i] > 1) { alloc[i]--; used--; }
    }

    ep->frames = frames;
    ep->task = task;
    ep->ann_start = rest;
    ep->instruction = t->ann[splitmix(&r) % 4];
    ep->actions = calloc(frames, sizeof *ep->actions);
    ep->rel_actions = calloc(frames, sizeof *ep->rel_actions);
    ep->robot_obs = calloc(frames, sizeof *ep->robot_obs);
    ep->scene_obs = calloc(frames, sizeof *ep->scene_obs);
    if (!ep->actions || !ep->rel_actions || !ep->robot_obs || !ep->scene_obs) {
        dv_calvin_synth_episode_free(ep);
        return ERRF("out of memory for an episode of %d frames", frames);
    }

    /* per transition: target pose, gripper command, closing width, attachment */
    double (*pose)[4] = malloc(sizeof *pose * frames);
    int *grip = malloc(sizeof *grip * frames);
    double *gw = malloc(sizeof *gw * frames);
    attach_kind *att = malloc(sizeof *att * frames);
    if (!pose || !grip || !gw || !att) {
        free(pose); free(grip); free(gw); free(att);
        dv_calvin_synth_episode_free(ep);
        return ERRF("out of memory for an episode of %d frames", frames);
    }
    memcpy(pose[0], pl.start, sizeof pose[0]);
    int f = 0;
    for (; f < rest; f++) {
        memcpy(pose[f + 1], pl.start, sizeof pose[0]);
        grip[f] = 1; /* resting, open */
        gw[f] = 0;
        att[f] = ATT_NONE;
    }
    double from[4];
    memcpy(from, pl.start, sizeof from);
    for (int i = 0; i < nw; i++) {
        const waypoint *w = &pl.s.w[i];
        for (int j = 1; j <= alloc[i]; j++, f++) {
            double a = (double)j / alloc[i];
            for (int k = 0; k < 3; k++) pose[f + 1][k] = from[k] + a * (w->p[k] - from[k]);
            pose[f + 1][3] = from[3] + a * (w->yaw - from[3]);
            grip[f] = w->grip;
            gw[f] = w->grip_width;
            att[f] = w->att;
        }
        memcpy(from, w->p, sizeof w->p);
        from[3] = w->yaw;
    }
    if (f != frames - 1) {
        fprintf(stderr, "dv_calvin_synth_episode_make: %d transitions scheduled for %d frames\n", f, frames);
        abort();
    }

    /* step through the frames */
    double scene[24], width = WIDTH_OPEN, last_grip = 1;
    memcpy(scene, pl.scene, sizeof scene);
    for (int fi = 0; fi < frames; fi++) {
        const double *P = pose[fi];
        float *ro = ep->robot_obs[fi];
        ro[0] = (float)P[0]; ro[1] = (float)P[1]; ro[2] = (float)P[2];
        ro[3] = (float)wrap_pi(pl.tilt[0]); ro[4] = (float)pl.tilt[1]; ro[5] = (float)wrap_pi(P[3]);
        ro[6] = (float)width;
        double d[4] = {P[0] - tcp_home[0], P[1] - tcp_home[1], P[2] - tcp_home[2], P[3] - tcp_home[3]};
        for (int j = 0; j < 7; j++)
            ro[7 + j] = (float)(q_home[j] + q_gain[j][0] * d[0] + q_gain[j][1] * d[1] + q_gain[j][2] * d[2] + q_gain[j][3] * d[3]);
        ro[14] = (float)last_grip;
        for (int k = 0; k < 24; k++) ep->scene_obs[fi][k] = (float)(k >= 6 && (k - 6) % 6 >= 3 ? wrap_pi(scene[k]) : scene[k]);

        /* the action: the next pose (the last frame holds its own) */
        const double *Q = fi + 1 < frames ? pose[fi + 1] : P;
        int g = fi + 1 < frames ? grip[fi] : (int)last_grip;
        float *ac = ep->actions[fi];
        ac[0] = (float)Q[0]; ac[1] = (float)Q[1]; ac[2] = (float)Q[2];
        ac[3] = (float)wrap_pi(pl.tilt[0]); ac[4] = (float)pl.tilt[1]; ac[5] = (float)wrap_pi(Q[3]);
        ac[6] = (float)g;
        dv_calvin_rel_action(ac, ro, ep->rel_actions[fi]);
        if (fi + 1 == frames) break;

        /* apply it: the gripper width, then whatever is attached follows the TCP */
        double wt = g > 0 ? WIDTH_OPEN : gw[fi];
        width = width < wt ? fmin(wt, width + WIDTH_RATE) : fmax(wt, width - WIDTH_RATE);
        double dx = Q[0] - P[0], dy = Q[1] - P[1], dz = Q[2] - P[2], dyaw = Q[3] - P[3];
        double *b = t->block >= 0 ? scene + 6 + 6 * t->block : NULL;
        switch (att[fi]) {
        case ATT_DRAWER: scene[1] = clampd(scene[1] - dy, 0, DV_CALVIN_DRAWER_MAX); break;
        case ATT_SLIDER: scene[0] = clampd(scene[0] - dx, 0, DV_CALVIN_SLIDER_MAX); break;
        case ATT_PUSH: b[0] += dx; break;
        case ATT_BLOCK: {
            double ox = b[0] - P[0], oy = b[1] - P[1], c = cos(dyaw), s = sin(dyaw);
            b[0] = Q[0] + c * ox - s * oy;
            b[1] = Q[1] + s * ox + c * oy;
            b[2] += dz;
            b[5] += dyaw;
            break;
        }
        case ATT_NONE: break;
        }
        last_grip = g;
    }
    free(pose); free(grip); free(gw); free(att);
    return 0;
}

/* ---- writing ---------------------------------------------------------------------------- */

void dv_calvin_synth_defaults(dv_calvin_synth_opts *o) {
    memset(o, 0, sizeof *o);
    o->episodes = 10;
    o->frames_per_episode = 64;
    o->val_episodes = -1;
    o->seed = 0;
}

static int mkdir_p(const char *path, char *err, size_t errlen) {
    char buf[4096];
    if (strlen(path) >= sizeof buf) return ERRF("%s: path too long", path);
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) && errno != EEXIST) return ERRF("%s: cannot create directory: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) && errno != EEXIST) return ERRF("%s: cannot create directory: %s", buf, strerror(errno));
    struct stat st;
    if (stat(buf, &st) || !S_ISDIR(st.st_mode)) return ERRF("%s: not a directory", buf);
    return 0;
}

/* 0 when dir is missing or an empty directory, 1 when it holds anything, -1 when it is not a
 * directory (or cannot be read) */
static int dir_state(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : -1;
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n ? 1 : 0;
}

static int64_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) ? 0 : (int64_t)st.st_size;
}

/* a small text file, atomically (tmp, fsync, rename) */
static int write_text_atomic(const char *path, const char *text, char *err, size_t errlen) {
    char tmp[4300];
    if (strlen(path) > 4096) return ERRF("%s: path too long", path);
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return ERRF("%s: cannot create: %s", tmp, strerror(errno));
    size_t n = strlen(text), off = 0;
    while (off < n) {
        ssize_t k = write(fd, text + off, n - off);
        if (k <= 0) { close(fd); unlink(tmp); return ERRF("%s: write failed: %s", tmp, strerror(errno)); }
        off += (size_t)k;
    }
    if (fsync(fd) || close(fd)) { unlink(tmp); return ERRF("%s: fsync/close failed: %s", tmp, strerror(errno)); }
    if (rename(tmp, path)) { unlink(tmp); return ERRF("%s: rename failed: %s", path, strerror(errno)); }
    return 0;
}

/* one frame into <split>/episode_<id>.npz */
static int write_frame(const char *split, int64_t id, const dv_calvin_synth_episode *ep, int t, bool compress,
                       uint8_t *rgb_s, float *dep_s, uint8_t *rgb_g, float *dep_g, char *err, size_t errlen) {
    dv_calvin_camera cs, cg;
    dv_calvin_static_camera(&cs);
    dv_calvin_gripper_camera(ep->robot_obs[t], &cg);
    dv_calvin_render(&cs, ep->robot_obs[t], ep->scene_obs[t], rgb_s, dep_s);
    dv_calvin_render(&cg, ep->robot_obs[t], ep->scene_obs[t], rgb_g, dep_g);
    char path[4200];
    snprintf(path, sizeof path, "%s/episode_%07lld.npz", split, (long long)id);
    dv_npz_writer *w;
    if (dv_npz_writer_open(path, compress, &w, err, errlen)) return -1;
    const int64_t s7[1] = {7}, s15[1] = {15}, s24[1] = {24};
    const int64_t ss[3] = {cs.height, cs.width, 3}, sg[3] = {cg.height, cg.width, 3};
    const dv_npy arrs[8] = {
        dv_npy_wrap(DV_NPY_F32, 1, s7, ep->actions[t]), dv_npy_wrap(DV_NPY_F32, 1, s7, ep->rel_actions[t]),
        dv_npy_wrap(DV_NPY_F32, 1, s15, ep->robot_obs[t]), dv_npy_wrap(DV_NPY_F32, 1, s24, ep->scene_obs[t]),
        dv_npy_wrap(DV_NPY_U8, 3, ss, rgb_s), dv_npy_wrap(DV_NPY_U8, 3, sg, rgb_g),
        dv_npy_wrap(DV_NPY_F32, 2, ss, dep_s), dv_npy_wrap(DV_NPY_F32, 2, sg, dep_g),
    };
    static const char *const keys[8] = {"actions", "rel_actions", "robot_obs", "scene_obs",
                                        "rgb_static", "rgb_gripper", "depth_static", "depth_gripper"};
    for (int k = 0; k < 8; k++)
        if (dv_npz_writer_add(w, keys[k], &arrs[k], err, errlen)) { dv_npz_writer_abort(w); return -1; }
    return dv_npz_writer_close(w, err, errlen);
}

/* "[a, b, ...]" with enough digits to round-trip a float */
static void yaml_list(char **p, const char *end, const double *v, int n) {
    *p += snprintf(*p, end - *p, "[");
    for (int i = 0; i < n && *p < end; i++) *p += snprintf(*p, end - *p, "%s%.9g", i ? ", " : "", v[i]);
    if (*p < end) *p += snprintf(*p, end - *p, "]\n");
}

static int write_statistics(const char *path, dv_calvin_synth_episode *eps, int n, char *err, size_t errlen) {
    double sum_r[15] = {0}, sq_r[15] = {0}, sum_s[24] = {0}, sq_s[24] = {0}, amin[7], amax[7];
    for (int i = 0; i < 7; i++) { amin[i] = INFINITY; amax[i] = -INFINITY; }
    int64_t cnt = 0;
    for (int e = 0; e < n; e++)
        for (int t = 0; t < eps[e].frames; t++, cnt++) {
            for (int i = 0; i < 15; i++) { sum_r[i] += eps[e].robot_obs[t][i]; sq_r[i] += (double)eps[e].robot_obs[t][i] * eps[e].robot_obs[t][i]; }
            for (int i = 0; i < 24; i++) { sum_s[i] += eps[e].scene_obs[t][i]; sq_s[i] += (double)eps[e].scene_obs[t][i] * eps[e].scene_obs[t][i]; }
            for (int i = 0; i < 7; i++) { amin[i] = fmin(amin[i], eps[e].actions[t][i]); amax[i] = fmax(amax[i], eps[e].actions[t][i]); }
        }
    double mr[15], sr[15], ms[24], ss[24];
    /* population std like np.std; a constant component gets std 1 so normalising is a no-op */
    for (int i = 0; i < 15; i++) {
        mr[i] = sum_r[i] / cnt;
        sr[i] = sqrt(fmax(0, sq_r[i] / cnt - mr[i] * mr[i]));
        if (sr[i] < 1e-6) sr[i] = 1;
    }
    for (int i = 0; i < 24; i++) {
        ms[i] = sum_s[i] / cnt;
        ss[i] = sqrt(fmax(0, sq_s[i] / cnt - ms[i] * ms[i]));
        if (ss[i] < 1e-6) ss[i] = 1;
    }
    char buf[8192], *p = buf, *end = buf + sizeof buf;
    p += snprintf(p, end - p, "robot_obs:\n  - _target_: calvin_agent.utils.transforms.NormalizeVector\n    mean: ");
    yaml_list(&p, end, mr, 15);
    p += snprintf(p, end - p, "    std: ");
    yaml_list(&p, end, sr, 15);
    p += snprintf(p, end - p, "scene_obs:\n  - _target_: calvin_agent.utils.transforms.NormalizeVector\n    mean: ");
    yaml_list(&p, end, ms, 24);
    p += snprintf(p, end - p, "    std: ");
    yaml_list(&p, end, ss, 24);
    p += snprintf(p, end - p, "act_min_bound: ");
    yaml_list(&p, end, amin, 7);
    p += snprintf(p, end - p, "act_max_bound: ");
    yaml_list(&p, end, amax, 7);
    return write_text_atomic(path, buf, err, errlen);
}

/* one split: frames, ep_start_end_ids.npy, ep_lens.npy, scene_info.npy, lang annotations */
static int write_split(const char *dir, const char *name, dv_calvin_synth_episode *eps, int n, int64_t first_id,
                       dv_calvin_synth_episode *train_eps, int ntrain, const dv_calvin_synth_opts *o, int64_t *bytes,
                       char *err, size_t errlen) {
    char split[4096], path[4200];
    snprintf(split, sizeof split, "%s/%s", dir, name);
    snprintf(path, sizeof path, "%s/lang_annotations", split);
    if (mkdir_p(path, err, errlen)) return -1;

    /* frames, in parallel: (episode, t) flattened */
    int64_t total = 0, *start = malloc(sizeof(int64_t) * (n + 1));
    if (!start) return ERRF("out of memory");
    for (int e = 0; e < n; e++) { start[e] = total; total += eps[e].frames; }
    start[n] = total;
    int failed = 0;
    char first_err[512] = "";
    int64_t written = 0;
    dv_calvin_camera cs, cg;
    dv_calvin_static_camera(&cs);
    dv_calvin_gripper_camera_at((const double[3]){0, 0, 0}, (const double[3]){0, 0, 0}, &cg);
    const size_t npix_s = (size_t)cs.width * cs.height, npix_g = (size_t)cg.width * cg.height;
    /* writing is mostly waiting for fsync: a few more threads than cores overlap it */
    const int nthreads = o->threads > 0 ? o->threads : (omp_get_max_threads() > 4 ? omp_get_max_threads() : 4);
#pragma omp parallel num_threads(nthreads) reduction(+ : written)
    {
        /* per-thread image buffers */
        uint8_t *rgb_s = malloc(npix_s * 3), *rgb_g = malloc(npix_g * 3);
        float *dep_s = malloc(sizeof(float) * npix_s), *dep_g = malloc(sizeof(float) * npix_g);
#pragma omp for schedule(dynamic, 4)
        for (int64_t i = 0; i < total; i++) {
            if (__atomic_load_n(&failed, __ATOMIC_RELAXED)) continue;
            int e = 0;
            while (start[e + 1] <= i) e++;
            char lerr[512];
            if (!rgb_s || !rgb_g || !dep_s || !dep_g) snprintf(lerr, sizeof lerr, "out of memory");
            int rc = !rgb_s || !rgb_g || !dep_s || !dep_g ? -1
                     : write_frame(split, first_id + i, &eps[e], (int)(i - start[e]), o->compress, rgb_s, dep_s,
                                   rgb_g, dep_g, lerr, sizeof lerr);
            if (rc) {
#pragma omp critical(dv_synth_err)
                {
                    if (!failed) snprintf(first_err, sizeof first_err, "%s", lerr);
                    failed = 1;
                }
            } else {
                char fp[4200];
                snprintf(fp, sizeof fp, "%s/episode_%07lld.npz", split, (long long)(first_id + i));
                written += file_size(fp);
            }
        }
        free(rgb_s); free(rgb_g); free(dep_s); free(dep_g);
    }
    free(start);
    if (failed) return ERRF("%s", first_err);
    *bytes += written;

    /* episode ranges */
    int64_t *ids = malloc(sizeof(int64_t) * 2 * (n ? n : 1)), *lens = malloc(sizeof(int64_t) * (n ? n : 1));
    if (!ids || !lens) { free(ids); free(lens); return ERRF("out of memory"); }
    int64_t id = first_id;
    for (int e = 0; e < n; e++) {
        ids[2 * e] = id;
        ids[2 * e + 1] = id + eps[e].frames - 1;
        lens[e] = eps[e].frames;
        id += eps[e].frames;
    }
    int64_t shp[2] = {n, 2};
    dv_npy a = dv_npy_wrap(DV_NPY_I64, 2, shp, ids);
    snprintf(path, sizeof path, "%s/ep_start_end_ids.npy", split);
    int rc = dv_npy_save(path, &a, err, errlen);
    *bytes += file_size(path);
    if (!rc) {
        a = dv_npy_wrap(DV_NPY_I64, 1, shp, lens);
        snprintf(path, sizeof path, "%s/ep_lens.npy", split);
        rc = dv_npy_save(path, &a, err, errlen);
        *bytes += file_size(path);
    }
    free(lens);
    if (rc) { free(ids); return -1; }

    dv_pyarena *ar = dv_pyarena_new();
    if (!ar) { free(ids); return ERRF("out of memory"); }
    /* scene_info.npy: {"calvin_scene_D": [first, last]} */
    dv_pyobj *si = dv_py_dict(ar), *range = dv_py_list(ar);
    dv_py_append(ar, range, dv_py_int(ar, first_id));
    dv_py_append(ar, range, dv_py_int(ar, id - 1));
    dv_py_set(ar, si, "calvin_scene_D", range);
    snprintf(path, sizeof path, "%s/scene_info.npy", split);
    rc = dv_npy_save_pickled(path, si, err, errlen);
    *bytes += file_size(path);

    /* lang_annotations/auto_lang_ann.npy */
    if (!rc) {
        dv_pyobj *root = dv_py_dict(ar), *info = dv_py_dict(ar), *lang = dv_py_dict(ar);
        dv_pyobj *indx = dv_py_list(ar), *ann = dv_py_list(ar), *task = dv_py_list(ar);
        int64_t eshape[3] = {n, 1, DV_CALVIN_EMB_DIM};
        float *emb = malloc(sizeof(float) * DV_CALVIN_EMB_DIM * (n ? n : 1));
        if (!emb) rc = ERRF("out of memory");
        for (int e = 0; !rc && e < n; e++) {
            dv_pyobj *se[2] = {dv_py_int(ar, ids[2 * e] + eps[e].ann_start), dv_py_int(ar, ids[2 * e + 1])};
            dv_py_append(ar, indx, dv_py_tuple(ar, 2, se));
            dv_py_append(ar, ann, dv_py_str(ar, eps[e].instruction));
            dv_py_append(ar, task, dv_py_str(ar, tasks[eps[e].task].name));
            dv_calvin_text_embedding(eps[e].instruction, emb + (size_t)e * DV_CALVIN_EMB_DIM);
        }
        if (!rc) {
            dv_npy ea = dv_npy_wrap(DV_NPY_F32, 3, eshape, emb);
            dv_py_set(ar, info, "episodes", dv_py_list(ar));
            dv_py_set(ar, info, "indx", indx);
            dv_py_set(ar, lang, "ann", ann);
            dv_py_set(ar, lang, "task", task);
            dv_py_set(ar, lang, "emb", dv_py_ndarray(ar, &ea));
            dv_py_set(ar, root, "info", info);
            dv_py_set(ar, root, "language", lang);
            snprintf(path, sizeof path, "%s/lang_annotations/auto_lang_ann.npy", split);
            rc = dv_npy_save_pickled(path, root, err, errlen);
            *bytes += file_size(path);
        }
        free(emb);
    }
    dv_pyarena_free(ar);
    free(ids);
    if (rc) return -1;

    snprintf(path, sizeof path, "%s/statistics.yaml", split);
    if (write_statistics(path, train_eps, ntrain, err, errlen)) return -1;
    *bytes += file_size(path);
    return 0;
}

int dv_calvin_synth(const char *dir, const dv_calvin_synth_opts *o, dv_calvin_synth_report *rep, char *err,
                    size_t errlen) {
    if (o->episodes < 1) return ERRF("--episodes must be >= 1 (got %d)", o->episodes);
    if (o->frames_per_episode < 16) return ERRF("--frames-per-episode must be >= 16 (got %d)", o->frames_per_episode);
    if ((int64_t)o->episodes * o->frames_per_episode > 9999999)
        return ERRF("%d episodes × %d frames exceed CALVIN's 7-digit frame ids", o->episodes, o->frames_per_episode);
    int nval = o->val_episodes;
    if (nval < 0) nval = o->episodes >= 2 ? (o->episodes / 10 > 1 ? o->episodes / 10 : 1) : 0;
    if (nval >= o->episodes) return ERRF("--val-episodes %d leaves no training episode of %d", nval, o->episodes);
    int ntrain = o->episodes - nval;
    int st = dir_state(dir);
    if (st < 0) return ERRF("%s: not a directory that can be read: %s", dir, strerror(errno));
    if (st > 0 && !o->force) return ERRF("%s: exists and is not empty (--force writes into it)", dir);
    if (mkdir_p(dir, err, errlen)) return -1;

    dv_calvin_synth_episode *eps = calloc(o->episodes, sizeof *eps);
    if (!eps) return ERRF("out of memory");
    int rc = 0;
    for (int e = 0; e < o->episodes && !rc; e++)
        rc = dv_calvin_synth_episode_make(o->seed, e, o->frames_per_episode, -1, &eps[e], err, errlen);
    int64_t bytes = 0, ntrain_frames = (int64_t)ntrain * o->frames_per_episode;
    if (!rc) rc = write_split(dir, "training", eps, ntrain, 0, eps, ntrain, o, &bytes, err, errlen);
    if (!rc && nval) rc = write_split(dir, "validation", eps + ntrain, nval, ntrain_frames, eps, ntrain, o, &bytes, err, errlen);
    for (int e = 0; e < o->episodes; e++) dv_calvin_synth_episode_free(&eps[e]);
    free(eps);
    if (rc) return -1;
    if (rep) {
        rep->train_episodes = ntrain;
        rep->val_episodes = nval;
        rep->train_frames = ntrain_frames;
        rep->val_frames = (int64_t)nval * o->frames_per_episode;
        rep->bytes = bytes;
    }
    return 0;
}
