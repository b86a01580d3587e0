/* tests/test_dataset.c — data/calvin/dataset.c and the sample builders on a tiny CALVIN-layout
 * split written here with the npy/npz/pickle writers: opening and validation, frame loading,
 * DiT / 3DDA / MLLM sample contents against values computed by hand from the frame formulas
 * below, the resampling helpers against the tensor ops, the spline, and bad input (missing
 * key, wrong shape, annotation out of range, empty annotation file) naming file and key.
 *
 * The tiny split (built once per process in a mkdtemp folder, shared with test_loader.c
 * through dvt_calvin_tiny_dir):
 *   episodes [0, 39] and [100, 129]; annotations (0, 19), (20, 39), (100, 104), (105, 129);
 *   rgb_static 48x48, rgb_gripper 16x16; every value a formula of the frame id (dvt_*).
 */
#include "data/calvin/dataset.h"
#include "data/calvin/geometry.h"
#include "data/calvin/image.h"
#include "data/calvin/npy.h"
#include "data/calvin/pickle.h"
#include "data/calvin/samples.h"
#include "tensor/ops.h"
#include "tests/test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the tiny split ------------------------------------------------------------------------ */
enum { SH = 48, SW = 48, GH = 16, GW = 16 };

static const struct { int64_t start, end; const char *ann, *task; } TINY_ANN[] = {
    {0, 19, "open the drawer", "open_drawer"},
    {20, 39, "push the red block to the left", "push_red_block_left"},
    {100, 104, "lift the pink block", "lift_pink_block_table"},
    {105, 129, "turn off the led", "turn_off_led"},
};
enum { TINY_NANN = 4 };

void dvt_frame_values(int64_t id, float actions[7], float rel[7], float robot_obs[15], float scene[24]);
uint8_t dvt_rgb(int64_t id, int cam, int y, int x, int c);
float dvt_depth(int64_t id, int cam, int y, int x);
const char *dvt_calvin_tiny_dir(void);
int dvt_write_frame(const char *dir, int64_t id, const char *skip_key, const char *bad_shape_key, bool compress);
int dvt_write_annotations(const char *dir, int n, const int64_t (*iv)[2], bool empty_dict);

void dvt_frame_values(int64_t id, float actions[7], float rel[7], float robot_obs[15], float scene[24]) {
    robot_obs[0] = 0.1f + 0.001f * id, robot_obs[1] = -0.05f + 0.002f * id, robot_obs[2] = 0.5f;
    robot_obs[3] = 0.01f * id, robot_obs[4] = -0.005f * id, robot_obs[5] = 0.3f;
    robot_obs[6] = 0.04f;
    for (int k = 7; k < 14; k++) robot_obs[k] = 0.1f * id + k;
    robot_obs[14] = (id / 4) % 2 ? -1.0f : 1.0f;
    for (int k = 0; k < 6; k++) actions[k] = robot_obs[k] + 0.01f;
    actions[6] = robot_obs[14];
    for (int k = 0; k < 7; k++) rel[k] = (float)(id % 1000) / 1000 + 0.1f * k;
    for (int k = 0; k < 24; k++) scene[k] = 0.5f * k - 0.001f * id;
}

uint8_t dvt_rgb(int64_t id, int cam, int y, int x, int c) {
    return (uint8_t)((id * 7 + y * 3 + x * 5 + c * 11 + cam * 13) % 256);
}

float dvt_depth(int64_t id, int cam, int y, int x) {
    return cam == 0 ? 2.0f + 0.01f * ((y + x + (int)id) % 7) : 0.3f + 0.01f * (y % 5);
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* one frame npz; skip_key is left out, bad_shape_key is written with a wrong shape */
int dvt_write_frame(const char *dir, int64_t id, const char *skip_key, const char *bad_shape_key, bool compress) {
    char name[64], err[512];
    snprintf(name, sizeof name, "episode_%07lld.npz", (long long)id);
    char *path = join(dir, name);
    float act[7], rel[7], robot[15], scene[24];
    dvt_frame_values(id, act, rel, robot, scene);
    double robot64[15]; /* real CALVIN stores float64 low-dimensional keys */
    for (int k = 0; k < 15; k++) robot64[k] = robot[k];
    static uint8_t rs[SH * SW * 3], rg[GH * GW * 3];
    static float ds[SH * SW], dg[GH * GW];
    for (int y = 0; y < SH; y++)
        for (int x = 0; x < SW; x++) {
            for (int c = 0; c < 3; c++) rs[(y * SW + x) * 3 + c] = dvt_rgb(id, 0, y, x, c);
            ds[y * SW + x] = dvt_depth(id, 0, y, x);
        }
    for (int y = 0; y < GH; y++)
        for (int x = 0; x < GW; x++) {
            for (int c = 0; c < 3; c++) rg[(y * GW + x) * 3 + c] = dvt_rgb(id, 1, y, x, c);
            dg[y * GW + x] = dvt_depth(id, 1, y, x);
        }
    struct { const char *key; dv_npy a; } m[] = {
        {"actions", dv_npy_wrap(DV_NPY_F32, 1, (int64_t[]){7}, act)},
        {"rel_actions", dv_npy_wrap(DV_NPY_F32, 1, (int64_t[]){7}, rel)},
        {"robot_obs", dv_npy_wrap(DV_NPY_F64, 1, (int64_t[]){15}, robot64)},
        {"scene_obs", dv_npy_wrap(DV_NPY_F32, 1, (int64_t[]){24}, scene)},
        {"rgb_static", dv_npy_wrap(DV_NPY_U8, 3, (int64_t[]){SH, SW, 3}, rs)},
        {"rgb_gripper", dv_npy_wrap(DV_NPY_U8, 3, (int64_t[]){GH, GW, 3}, rg)},
        {"depth_static", dv_npy_wrap(DV_NPY_F32, 2, (int64_t[]){SH, SW}, ds)},
        {"depth_gripper", dv_npy_wrap(DV_NPY_F32, 2, (int64_t[]){GH, GW}, dg)},
    };
    dv_npz_writer *w;
    int rc = dv_npz_writer_open(path, compress, &w, err, sizeof err);
    for (size_t k = 0; rc == 0 && k < sizeof m / sizeof m[0]; k++) {
        if (skip_key && !strcmp(skip_key, m[k].key)) continue;
        dv_npy a = m[k].a;
        if (bad_shape_key && !strcmp(bad_shape_key, m[k].key)) { /* flatten it */
            a.shape[0] = a.count;
            a.ndim = 1;
        }
        rc = dv_npz_writer_add(w, m[k].key, &a, err, sizeof err);
        if (rc) dv_npz_writer_abort(w);
    }
    if (rc == 0) rc = dv_npz_writer_close(w, err, sizeof err);
    if (rc) fprintf(stderr, "dvt_write_frame: %s\n", err);
    free(path);
    return rc;
}

/* lang_annotations/auto_lang_ann.npy with the first n windows of TINY_ANN, or iv when given */
int dvt_write_annotations(const char *dir, int n, const int64_t (*iv)[2], bool empty_dict) {
    char *ld = join(dir, "lang_annotations");
    mkdir(ld, 0755);
    char *path = join(ld, "auto_lang_ann.npy");
    dv_pyarena *A = dv_pyarena_new();
    dv_pyobj *root = dv_py_dict(A);
    if (!empty_dict) {
        dv_pyobj *info = dv_py_dict(A), *lang = dv_py_dict(A);
        dv_pyobj *indx = dv_py_list(A), *ann = dv_py_list(A), *task = dv_py_list(A);
        for (int i = 0; i < n; i++) {
            dv_pyobj *pair[2] = {dv_py_int(A, iv ? iv[i][0] : TINY_ANN[i].start),
                                 dv_py_int(A, iv ? iv[i][1] : TINY_ANN[i].end)};
            dv_py_append(A, indx, dv_py_tuple(A, 2, pair));
            dv_py_append(A, ann, dv_py_str(A, TINY_ANN[i % TINY_NANN].ann));
            dv_py_append(A, task, dv_py_str(A, TINY_ANN[i % TINY_NANN].task));
        }
        dv_py_set(A, info, "indx", indx);
        dv_py_set(A, info, "episodes", dv_py_list(A));
        dv_py_set(A, lang, "ann", ann);
        dv_py_set(A, lang, "task", task);
        dv_py_set(A, root, "info", info);
        dv_py_set(A, root, "language", lang);
    }
    char err[512];
    int rc = dv_npy_save_pickled(path, root, err, sizeof err);
    if (rc) fprintf(stderr, "dvt_write_annotations: %s\n", err);
    dv_pyarena_free(A);
    free(path);
    free(ld);
    return rc;
}

static int write_split(const char *dir) {
    char err[512];
    int64_t ep[4] = {0, 39, 100, 129};
    char *p = join(dir, "ep_start_end_ids.npy");
    dv_npy a = dv_npy_wrap(DV_NPY_I64, 2, (int64_t[]){2, 2}, ep);
    int rc = dv_npy_save(p, &a, err, sizeof err);
    free(p);
    if (rc) { fprintf(stderr, "write_split: %s\n", err); return -1; }
    for (int e = 0; e < 2; e++)
        for (int64_t id = ep[2 * e]; id <= ep[2 * e + 1]; id++)
            if (dvt_write_frame(dir, id, NULL, NULL, id == 7)) return -1;
    if (dvt_write_annotations(dir, TINY_NANN, NULL, false)) return -1;
    p = join(dir, "statistics.yaml");
    FILE *f = fopen(p, "w");
    free(p);
    if (!f) return -1;
    fprintf(f, "robot_obs:\n- _target_: calvin_models.calvin_agent.utils.transforms.NormalizeVector\n"
               "  mean: [0.1, 0.2,\n    0.3]   # wraps\n  std: [1.0, 2.0, 3.0]\n"
               "act_min_bound: [-1, -2.5e-1]\n");
    fclose(f);
    return 0;
}

static char g_tiny[256];

static void remove_tree(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static void cleanup_tiny(void) { if (g_tiny[0]) remove_tree(g_tiny); }

const char *dvt_calvin_tiny_dir(void) {
    if (g_tiny[0]) return g_tiny;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_tiny, sizeof g_tiny, "%s/dv_calvin_tiny_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_tiny) || write_split(g_tiny)) {
        fprintf(stderr, "dvt_calvin_tiny_dir: cannot build the tiny split in %s\n", g_tiny);
        abort();
    }
    atexit(cleanup_tiny);
    return g_tiny;
}

static dv_calvin *open_tiny(void) {
    char err[512] = "";
    dv_calvin *d = NULL;
    if (dv_calvin_open(dvt_calvin_tiny_dir(), &d, err, sizeof err)) {
        CHECK_MSG(false, "open: %s", err);
        return NULL;
    }
    return d;
}

/* a scratch copy of the tiny split's metadata (frames linked) for bad-input tests */
static void scratch_copy(char *dir, size_t n) {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, n, "%s/dv_calvin_bad_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) abort();
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp -rs '%s'/. '%s'/ && rm -f '%s'/lang_annotations/auto_lang_ann.npy && "
             "cp '%s'/lang_annotations/auto_lang_ann.npy '%s'/lang_annotations/",
             dvt_calvin_tiny_dir(), dir, dir, dvt_calvin_tiny_dir(), dir);
    if (system(cmd) != 0) abort();
}

static bool contains(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

/* ---- opening ------------------------------------------------------------------------------ */
TEST(calvin_dataset_open) {
    dv_calvin *d = open_tiny();
    if (!d) return;
    CHECK(dv_calvin_num_episodes(d) == 2);
    int64_t s, e;
    dv_calvin_episode_bounds(d, 1, &s, &e);
    CHECK(s == 100 && e == 129);
    CHECK(dv_calvin_num_annotations(d) == TINY_NANN);
    for (int i = 0; i < TINY_NANN; i++) {
        const dv_calvin_ann *a = dv_calvin_annotation(d, i);
        CHECK(a->start == TINY_ANN[i].start && a->end == TINY_ANN[i].end);
        CHECK(!strcmp(a->instruction, TINY_ANN[i].ann));
        CHECK(!strcmp(a->task, TINY_ANN[i].task));
    }
    const float *v;
    CHECK(dv_calvin_stat(d, "robot_obs", "mean", &v) == 3 && v[0] == 0.1f && v[2] == 0.3f);
    CHECK(dv_calvin_stat(d, "robot_obs", "std", &v) == 3 && v[1] == 2.0f);
    CHECK(dv_calvin_stat(d, "act_min_bound", NULL, &v) == 2 && v[1] == -0.25f);
    CHECK(dv_calvin_stat(d, "scene_obs", "mean", &v) == 0);
    dv_calvin_close(d);
}

TEST(calvin_dataset_frame_load) {
    dv_calvin *d = open_tiny();
    if (!d) return;
    char err[512] = "";
    for (int k = 0; k < 2; k++) {
        int64_t id = k ? 7 : 103; /* 7 is written deflated */
        dv_calvin_frame f;
        CHECK_MSG(dv_calvin_frame_load(d, id, &f, err, sizeof err) == 0, "%s", err);
        float act[7], rel[7], robot[15], scene[24];
        dvt_frame_values(id, act, rel, robot, scene);
        CHECK(f.static_h == SH && f.static_w == SW && f.gripper_h == GH && f.gripper_w == GW);
        CHECK(!memcmp(f.actions, act, sizeof act) && !memcmp(f.rel_actions, rel, sizeof rel));
        CHECK(!memcmp(f.robot_obs, robot, sizeof robot) && !memcmp(f.scene_obs, scene, sizeof scene));
        CHECK(f.rgb_static[(5 * SW + 9) * 3 + 2] == dvt_rgb(id, 0, 5, 9, 2));
        CHECK(f.rgb_gripper[(15 * GW + 1) * 3 + 0] == dvt_rgb(id, 1, 15, 1, 0));
        CHECK(f.depth_static[11 * SW + 40] == dvt_depth(id, 0, 11, 40));
        CHECK(f.depth_gripper[3 * GW + 3] == dvt_depth(id, 1, 3, 3));
        dv_calvin_frame_free(&f);
    }
    dv_calvin_lowdim low;
    CHECK(dv_calvin_lowdim_get(d, 21, &low, err, sizeof err) == 0);
    CHECK(dv_calvin_lowdim_get(d, 21, &low, err, sizeof err) == 0); /* cached the second time */
    float act[7], rel[7], robot[15], scene[24];
    dvt_frame_values(21, act, rel, robot, scene);
    CHECK(!memcmp(low.rel_actions, rel, sizeof rel) && !memcmp(low.robot_obs, robot, sizeof robot));
    dv_calvin_frame f;
    CHECK(dv_calvin_frame_load(d, 55, &f, err, sizeof err) == -1 && contains(err, "episode_0000055.npz"));
    dv_calvin_close(d);
}

/* ---- bad input ------------------------------------------------------------------------------ */
TEST(calvin_dataset_bad_frames) {
    char dir[300], err[512] = "";
    scratch_copy(dir, sizeof dir);
    /* frames 3 (missing robot_obs), 4 (rgb_static flattened), 5 (depth_gripper flattened) */
    CHECK(dvt_write_frame(dir, 3, "robot_obs", NULL, false) == 0);
    CHECK(dvt_write_frame(dir, 4, NULL, "rgb_static", false) == 0);
    CHECK(dvt_write_frame(dir, 5, NULL, "depth_gripper", true) == 0);
    dv_calvin *d = NULL;
    CHECK_MSG(dv_calvin_open(dir, &d, err, sizeof err) == 0, "%s", err);
    if (!d) { remove_tree(dir); return; }
    dv_calvin_frame f;
    CHECK(dv_calvin_frame_load(d, 3, &f, err, sizeof err) == -1);
    CHECK_MSG(contains(err, "episode_0000003.npz") && contains(err, "robot_obs"), "%s", err);
    CHECK(dv_calvin_frame_load(d, 4, &f, err, sizeof err) == -1);
    CHECK_MSG(contains(err, "episode_0000004.npz") && contains(err, "rgb_static"), "%s", err);
    CHECK(dv_calvin_frame_load(d, 5, &f, err, sizeof err) == -1);
    CHECK_MSG(contains(err, "episode_0000005.npz") && contains(err, "depth_gripper"), "%s", err);
    /* a sample that needs frame 4 fails with the same message */
    dv_calvin_dit_opts o = {.chunk = 8, .gen_chunk = 8, .max_latency = 0, .static_frames = 1,
                            .image_size = 16, .proprio_dim = 15};
    dv_calvin_sample s = {0, 4};
    uint64_t seed = 1;
    dv_calvin_dit_batch b;
    CHECK(dv_calvin_dit_build(d, &o, &s, &seed, 1, &b, err, sizeof err) == -1);
    CHECK_MSG(contains(err, "episode_0000004.npz") && contains(err, "rgb_static"), "%s", err);
    CHECK(b.rgb_static == NULL && b.frame == NULL); /* freed on error */
    dv_calvin_close(d);
    remove_tree(dir);
}

/* rewrite frame id's npz with the tactile keys added: rgb (th, tw, 6) u8 and depth (th, tw, dc) */
static int add_tactile(const char *dir, int64_t id, int dc, bool only_rgb) {
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/episode_%07lld.npz", dir, (long long)id);
    dv_npz *z = NULL;
    dv_npz_writer *w = NULL;
    if (dv_npz_open(path, &z, err, sizeof err)) return -1;
    if (dv_npz_writer_open(path, false, &w, err, sizeof err)) { dv_npz_close(z); return -1; }
    for (int i = 0; i < dv_npz_count(z); i++) {
        dv_npy a = {0};
        if (dv_npz_get(z, dv_npz_key(z, i), &a, err, sizeof err) ||
            dv_npz_writer_add(w, dv_npz_key(z, i), &a, err, sizeof err)) {
            dv_npy_free(&a), dv_npz_close(z), dv_npz_writer_abort(w);
            return -1;
        }
        dv_npy_free(&a);
    }
    dv_npz_close(z);
    enum { TH = 16, TW = 12 };
    static uint8_t rgb[TH * TW * 6];
    static float depth[TH * TW * 3];
    for (int i = 0; i < TH * TW * 6; i++) rgb[i] = (uint8_t)(i * 7 + id);
    for (int i = 0; i < TH * TW * dc; i++) depth[i] = 0.001f * i;
    dv_npy r = dv_npy_wrap(DV_NPY_U8, 3, (int64_t[]){TH, TW, 6}, rgb);
    dv_npy dpt = dv_npy_wrap(DV_NPY_F32, 3, (int64_t[]){TH, TW, dc}, depth);
    if (dv_npz_writer_add(w, "rgb_tactile", &r, err, sizeof err) ||
        (!only_rgb && dv_npz_writer_add(w, "depth_tactile", &dpt, err, sizeof err))) {
        dv_npz_writer_abort(w);
        return -1;
    }
    return dv_npz_writer_close(w, err, sizeof err);
}

TEST(calvin_dataset_tactile_keys) {
    char dir[300], err[512] = "";
    scratch_copy(dir, sizeof dir);
    CHECK(add_tactile(dir, 3, 2, false) == 0);
    CHECK(add_tactile(dir, 4, 3, false) == 0); /* depth_tactile with 3 channels */
    CHECK(add_tactile(dir, 5, 2, true) == 0);  /* rgb_tactile without depth_tactile */
    dv_calvin *d = NULL;
    CHECK_MSG(dv_calvin_open(dir, &d, err, sizeof err) == 0, "%s", err);
    if (!d) { remove_tree(dir); return; }
    dv_calvin_frame f;
    CHECK_MSG(dv_calvin_frame_load(d, 3, &f, err, sizeof err) == 0, "%s", err);
    CHECK(f.tactile_h == 16 && f.tactile_w == 12 && f.rgb_tactile && f.depth_tactile);
    if (f.rgb_tactile) CHECK(f.rgb_tactile[(2 * 12 + 5) * 6 + 4] == (uint8_t)(((2 * 12 + 5) * 6 + 4) * 7 + 3));
    if (f.depth_tactile) CHECK_CLOSE(f.depth_tactile[(7 * 12 + 1) * 2 + 1], 0.001f * ((7 * 12 + 1) * 2 + 1), 1e-7);
    dv_calvin_frame_free(&f);
    CHECK(dv_calvin_frame_load(d, 4, &f, err, sizeof err) == -1);
    CHECK_MSG(contains(err, "episode_0000004.npz") && contains(err, "depth_tactile") && contains(err, "(H, W, 2)"),
              "%s", err);
    CHECK(dv_calvin_frame_load(d, 5, &f, err, sizeof err) == -1);
    CHECK_MSG(contains(err, "episode_0000005.npz") && contains(err, "depth_tactile"), "%s", err);
    /* frames without the keys load with NULL tactile images */
    CHECK_MSG(dv_calvin_frame_load(d, 6, &f, err, sizeof err) == 0, "%s", err);
    CHECK(f.rgb_tactile == NULL && f.depth_tactile == NULL);
    dv_calvin_frame_free(&f);
    dv_calvin_close(d);
    remove_tree(dir);
}

static void expect_open_error(const char *dir, const char *want1, const char *want2) {
    char err[512] = "";
    dv_calvin *d = NULL;
    int rc = dv_calvin_open(dir, &d, err, sizeof err);
    CHECK(rc == -1 && d == NULL);
    CHECK_MSG(contains(err, want1) && contains(err, want2), "error '%s' should name '%s' and '%s'", err, want1, want2);
    if (d) dv_calvin_close(d);
}

TEST(calvin_dataset_bad_annotations) {
    char dir[300];
    scratch_copy(dir, sizeof dir);
    int64_t iv[TINY_NANN][2];
    for (int i = 0; i < TINY_NANN; i++) iv[i][0] = TINY_ANN[i].start, iv[i][1] = TINY_ANN[i].end;
    /* crosses episodes */
    iv[1][1] = 100;
    CHECK(dvt_write_annotations(dir, TINY_NANN, iv, false) == 0);
    expect_open_error(dir, "auto_lang_ann.npy", "info.indx'[1]");
    /* start > end */
    iv[1][1] = 39, iv[2][0] = 105, iv[2][1] = 104;
    CHECK(dvt_write_annotations(dir, TINY_NANN, iv, false) == 0);
    expect_open_error(dir, "auto_lang_ann.npy", "info.indx'[2]");
    /* inside the episode but a frame file missing */
    iv[2][0] = 100, iv[2][1] = 104;
    CHECK(dvt_write_annotations(dir, TINY_NANN, iv, false) == 0);
    char *frame = join(dir, "episode_0000104.npz");
    CHECK(unlink(frame) == 0);
    free(frame);
    expect_open_error(dir, "episode_0000104.npz", "info.indx'[2]");
    /* no annotations; a dict without keys; an empty file */
    CHECK(dvt_write_annotations(dir, 0, NULL, false) == 0);
    expect_open_error(dir, "auto_lang_ann.npy", "no annotations");
    CHECK(dvt_write_annotations(dir, 0, NULL, true) == 0);
    expect_open_error(dir, "auto_lang_ann.npy", "info.indx");
    char *ann = join(dir, "lang_annotations/auto_lang_ann.npy");
    FILE *f = fopen(ann, "w");
    if (f) fclose(f);
    expect_open_error(dir, "auto_lang_ann.npy", "");
    /* episodes file with the wrong shape */
    CHECK(dvt_write_annotations(dir, TINY_NANN, NULL, false) == 0);
    char err[512];
    char *eps = join(dir, "ep_start_end_ids.npy");
    int64_t bad[3] = {0, 39, 100};
    dv_npy a = dv_npy_wrap(DV_NPY_I64, 1, (int64_t[]){3}, bad);
    unlink(eps);
    CHECK(dv_npy_save(eps, &a, err, sizeof err) == 0);
    expect_open_error(dir, "ep_start_end_ids.npy", "(E, 2)");
    free(eps);
    free(ann);
    /* not a folder */
    expect_open_error("/nonexistent/calvin/training", "/nonexistent/calvin/training", "No such file");
    /* a broken statistics.yaml */
    remove_tree(dir);
    scratch_copy(dir, sizeof dir);
    char *st = join(dir, "statistics.yaml");
    unlink(st);
    f = fopen(st, "w");
    if (f) { fprintf(f, "robot_obs:\n- mean: [0.1, oops]\n"); fclose(f); }
    expect_open_error(dir, "statistics.yaml:2", "robot_obs.mean");
    free(st);
    remove_tree(dir);
}

/* ---- samples -------------------------------------------------------------------------------- */
static float rgb01(int64_t id, int cam, int y, int x, int c) { return dvt_rgb(id, cam, y, x, c) / 255.0f; }

TEST(calvin_samples_dit) {
    dv_calvin *d = open_tiny();
    if (!d) return;
    char err[512] = "";
    dv_calvin_loader_opts lo;
    dv_calvin_loader_defaults(&lo, DV_CALVIN_DIT);
    /* windows of 20, 20, 5, 25 frames; span = chunk + max_latency = 15 */
    CHECK(dv_calvin_samples_of(d, &lo, 0, NULL, 0) == 6);
    CHECK(dv_calvin_samples_of(d, &lo, 2, NULL, 0) == 1);
    CHECK(dv_calvin_samples_of(d, &lo, 3, NULL, 0) == 11);

    dv_calvin_dit_opts o = lo.dit;
    o.image_size = SH;   /* bilinear to the same size is a copy */
    o.static_frames = 2;
    o.proprio_dim = 7;
    dv_calvin_sample s[3] = {{0, 5}, {2, 0}, {3, 0}};
    uint64_t seeds[3] = {11, 12, 13};
    dv_calvin_dit_batch b;
    CHECK_MSG(dv_calvin_dit_build(d, &o, s, seeds, 3, &b, err, sizeof err) == 0, "%s", err);
    if (!b.rgb_static) { dv_calvin_close(d); return; }
    CHECK(b.rgb_static->shape[1] == 2 && b.rgb_static->shape[4] == SW && b.proprio->shape[1] == 7);
    for (int k = 0; k < 3; k++) {
        const dv_calvin_ann *w = dv_calvin_annotation(d, s[k].ann);
        int64_t st = w->start + s[k].off, t = b.frame[k];
        CHECK(b.tau[k] >= 0 && b.tau[k] <= o.max_latency && t == (st + b.tau[k] < w->end ? st + b.tau[k] : w->end));
        CHECK(!strcmp(b.instruction[k], w->instruction));
        int64_t prev = t - 1 >= w->start ? t - 1 : t;
        float act[7], rel[7], robot[15], scene[24];
        for (int c = 0; c < 3; c++) {
            CHECK_CLOSE(dv_get(b.rgb_static, (int64_t[]){k, 1, c, 7, 30}), rgb01(t, 0, 7, 30, c), 1e-6);
            CHECK_CLOSE(dv_get(b.rgb_static, (int64_t[]){k, 0, c, 40, 2}), rgb01(prev, 0, 40, 2, c), 1e-6);
        }
        CHECK_CLOSE(dv_get(b.depth_static, (int64_t[]){k, 0, 13, 17}), dvt_depth(t, 0, 13, 17), 1e-6);
        /* the gripper camera is upsampled 16 -> 48: pixel (3y+1, 3x+1) is the source pixel centre */
        CHECK_CLOSE(dv_get(b.rgb_gripper, (int64_t[]){k, 2, 3 * 5 + 1, 3 * 9 + 1}), rgb01(t, 1, 5, 9, 2), 1e-6);
        CHECK_CLOSE(dv_get(b.depth_gripper, (int64_t[]){k, 0, 3 * 4 + 1, 3 * 2 + 1}), dvt_depth(t, 1, 4, 2), 1e-6);
        dvt_frame_values(t, act, rel, robot, scene);
        for (int j = 0; j < 6; j++) CHECK(dv_get(b.proprio, (int64_t[]){k, j}) == robot[j]);
        CHECK(dv_get(b.proprio, (int64_t[]){k, 6}) == robot[14]);
        for (int j = 0; j < o.chunk; j++) {
            int64_t id = t + j < w->end ? t + j : w->end; /* clamped at the window's end */
            dvt_frame_values(id, act, rel, robot, scene);
            for (int c = 0; c < 7; c++) CHECK(dv_get(b.actions, (int64_t[]){k, j, c}) == rel[c]);
        }
        for (int j = 0; j < o.gen_chunk; j++) {
            int64_t id = st + j < w->end ? st + j : w->end;
            dvt_frame_values(id, act, rel, robot, scene);
            for (int c = 0; c < 7; c++) CHECK(dv_get(b.gen_actions, (int64_t[]){k, j, c}) == rel[c]);
        }
    }
    /* the 5-frame window clamps: frames 100..104, all actions past 104 repeat frame 104's */
    CHECK(b.frame[1] <= 104);
    dv_calvin_batch_free(DV_CALVIN_DIT, &b);
    CHECK(b.rgb_static == NULL);

    /* the latency draw covers [0, max_latency] and is a function of the seed */
    int seen[8] = {0};
    for (uint64_t sd = 0; sd < 64; sd++) {
        dv_srng r = {sd};
        seen[dv_srng_int(&r, 0, 7)]++;
    }
    for (int k = 0; k < 8; k++) CHECK(seen[k] > 0);
    dv_calvin_close(d);
}

TEST(calvin_samples_3dda) {
    dv_calvin *d = open_tiny();
    if (!d) return;
    char err[512] = "";
    dv_calvin_loader_opts lo;
    dv_calvin_loader_defaults(&lo, DV_CALVIN_3DDA);
    dv_calvin_3dda_opts o = lo.dda;
    o.crop = 4;
    o.augment = false;
    lo.dda = o;
    /* window (0, 19): t = 0, 4, 8, 12, 16 (<= end - 1); (100, 104): 100 only */
    dv_calvin_sample list[8];
    CHECK(dv_calvin_samples_of(d, &lo, 0, list, 8) == 5 && list[4].off == 16);
    CHECK(dv_calvin_samples_of(d, &lo, 2, NULL, 0) == 1);

    /* trajectory: positions and angles are linear in the frame id, so the not-a-knot spline
       reproduces them (t = 0: frames 0..15, all inside the window) */
    float traj[20 * 8];
    CHECK(dv_calvin_3dda_trajectory(d, &o, 0, 0, traj, err, sizeof err) == 0);
    for (int i = 0; i < o.traj_len; i++) {
        double x = (double)i / (o.traj_len - 1) * (o.raw_traj - 1); /* frame offset */
        CHECK_CLOSE(traj[i * 8 + 0], 0.001 * x, 2e-6); /* relative x */
        CHECK_CLOSE(traj[i * 8 + 1], 0.002 * x, 2e-6);
        CHECK_CLOSE(traj[i * 8 + 2], 0.0, 1e-6);
        /* pytorch3d "XYZ": R = Rx Ry Rz; Rz(0) = I, so R = Rx(e0) Ry(e1) */
        double e[2] = {0.01 * x, -0.005 * x}, q[4];
        double ca = cos(e[0]), sa = sin(e[0]), cb = cos(e[1]), sb = sin(e[1]);
        double R[9] = {cb, 0, sb, sa * sb, ca, -sa * cb, -ca * sb, sa, ca * cb};
        dv_matrix_to_quat(R, DV_QUAT_WXYZ, q);
        for (int c = 0; c < 4; c++) CHECK_CLOSE(traj[i * 8 + 3 + c], q[c], 2e-6);
    }
    /* t = 8: frames 8..23 clamp to 19, so the last pose is frame 19's (the spline interpolates
       its knots: output 19 is raw point 15) */
    const int64_t t = 8;
    CHECK(dv_calvin_3dda_trajectory(d, &o, 0, t, traj, err, sizeof err) == 0);
    CHECK_CLOSE(traj[19 * 8 + 0], 0.001 * (19 - t), 2e-6);
    CHECK_CLOSE(traj[19 * 8 + 1], 0.002 * (19 - t), 2e-6);
    /* openness is linear between 0/1 values: at frame offsets 0..3 of t = 8 it is 1 (8/4 even) */
    CHECK(traj[7] == 1.0f);
    /* absolute: the first pose is frame t's */
    o.relative = false;
    CHECK(dv_calvin_3dda_trajectory(d, &o, 0, t, traj, err, sizeof err) == 0);
    CHECK_CLOSE(traj[0], 0.1 + 0.001 * t, 1e-6);
    CHECK_CLOSE(traj[1], -0.05 + 0.002 * t, 1e-6);
    o.relative = true;

    /* a batch: frames 12 (window 0) and 100 (the 5-frame window) */
    dv_calvin_sample s[2] = {{0, 12}, {2, 0}};
    uint64_t seeds[2] = {5, 6};
    dv_calvin_3dda_batch b;
    CHECK_MSG(dv_calvin_3dda_build(d, &o, s, seeds, 2, &b, err, sizeof err) == 0, "%s", err);
    if (!b.rgb) { dv_calvin_close(d); return; }
    const int C = SH - 2 * o.crop;
    CHECK(b.rgb->shape[0] == 2 && b.rgb->shape[1] == 2 && b.rgb->shape[3] == C && b.pcd->shape[4] == C);
    CHECK(b.frame[0] == 12 && b.frame[1] == 100);
    /* static camera: a crop of the frame; points = depth_to_points of its depth */
    dv_calvin_frame f;
    CHECK(dv_calvin_frame_load(d, 12, &f, err, sizeof err) == 0);
    dv_calvin_camera cam;
    dv_calvin_static_camera(&cam);
    cam.width = SW, cam.height = SH;
    float *xyz = malloc(sizeof(float) * 3 * SH * SW);
    dv_calvin_depth_to_points(&cam, f.depth_static, xyz);
    for (int y = 0; y < C; y += 7)
        for (int x = 0; x < C; x += 5)
            for (int c = 0; c < 3; c++) {
                CHECK_CLOSE(dv_get(b.rgb, (int64_t[]){0, 0, c, y, x}), rgb01(12, 0, y + 4, x + 4, c), 1e-6);
                CHECK_CLOSE(dv_get(b.pcd, (int64_t[]){0, 0, c, y, x}), xyz[((y + 4) * SW + x + 4) * 3 + c], 1e-6);
            }
    /* gripper points: nearest upscale 16 -> 48 of the gripper camera's points */
    dv_calvin_gripper_camera(f.robot_obs, &cam);
    cam.width = GW, cam.height = GH;
    dv_calvin_depth_to_points(&cam, f.depth_gripper, xyz);
    for (int y = 0; y < C; y += 3)
        for (int c = 0; c < 3; c++)
            CHECK_CLOSE(dv_get(b.pcd, (int64_t[]){0, 1, c, y, 9}), xyz[(((y + 4) / 3) * GW + (9 + 4) / 3) * 3 + c], 1e-6);
    dv_calvin_frame_free(&f);
    free(xyz);
    /* history: frames 4, 8, 12 for t = 12; 100, 100, 100 at a window's start */
    float pose[8], act[7], rel[7], robot[15], scene[24];
    for (int h = 0; h < 3; h++) {
        dvt_frame_values(4 + 4 * h, act, rel, robot, scene);
        dv_calvin_3dda_pose(&o, robot, pose);
        for (int c = 0; c < 8; c++) CHECK(dv_get(b.gripper_hist, (int64_t[]){0, h, c}) == pose[c]);
        CHECK(pose[7] == (robot[14] > 0 ? 1.0f : 0.0f));
        dvt_frame_values(100, act, rel, robot, scene);
        dv_calvin_3dda_pose(&o, robot, pose);
        CHECK(dv_get(b.gripper_hist, (int64_t[]){1, h, 0}) == pose[0]);
    }
    /* conventions: CALVIN's extrinsic xyz (geometry.h, w >= 0) and the xyzw order */
    dvt_frame_values(37, act, rel, robot, scene);
    dv_calvin_3dda_opts oc = o;
    oc.euler = DV_EULER_CALVIN_XYZ;
    oc.quat_wxyz = 0;
    dv_calvin_3dda_pose(&oc, robot, pose);
    double e3[3] = {robot[3], robot[4], robot[5]}, q3[4];
    dv_euler_xyz_to_quat(e3, DV_QUAT_XYZW, q3);
    for (int c = 0; c < 4; c++) CHECK_CLOSE(pose[3 + c], q3[c], 1e-6);
    CHECK(pose[0] == robot[0] && pose[7] == 0.0f); /* frame 37: (37 / 4) % 2 = 1, gripper closed */
    /* pytorch3d's sign: the largest component is positive */
    dv_calvin_3dda_pose(&o, robot, pose);
    int big = 3;
    for (int c = 4; c < 7; c++) if (fabsf(pose[c]) > fabsf(pose[big])) big = c;
    CHECK(pose[big] > 0);
    /* trajectory of the 5-frame window: the last poses are frame 104's */
    CHECK_CLOSE(dv_get(b.trajectory, (int64_t[]){1, 19, 0}), 0.001 * 4, 2e-6);
    CHECK(dv_get(b.traj_mask, (int64_t[]){0, 3}) == 0);
    dv_calvin_batch_free(DV_CALVIN_3DDA, &b);

    /* augmentation: RGB and points move together. rgb_static's red channel at (y, x) is
       (7 id + 3y + 5x) % 256 — for frame 12 and 48x48, (y, x) is recoverable from rgb + the
       point (depth varies with y + x), so check every output pixel's pair is one source pixel */
    o.augment = true;
    int moved = 0;
    for (uint64_t sd = 0; sd < 4; sd++) {
        CHECK(dv_calvin_3dda_build(d, &o, s, &sd, 1, &b, err, sizeof err) == 0);
        if (!b.rgb) continue;
        CHECK(dv_calvin_frame_load(d, 12, &f, err, sizeof err) == 0);
        dv_calvin_static_camera(&cam);
        cam.width = SW, cam.height = SH;
        xyz = malloc(sizeof(float) * 3 * SH * SW);
        dv_calvin_depth_to_points(&cam, f.depth_static, xyz);
        int bad = 0;
        for (int y = 0; y < C; y++)
            for (int x = 0; x < C; x++) {
                float r = dv_get(b.rgb, (int64_t[]){0, 0, 0, y, x}), px = dv_get(b.pcd, (int64_t[]){0, 0, 0, y, x});
                bool found = false;
                for (int sy = o.crop; sy < SH - o.crop && !found; sy++)
                    for (int sx = o.crop; sx < SW - o.crop && !found; sx++)
                        found = fabsf(r - rgb01(12, 0, sy, sx, 0)) < 1e-6f && xyz[(sy * SW + sx) * 3] == px &&
                                fabs(dv_get(b.rgb, (int64_t[]){0, 0, 1, y, x}) - rgb01(12, 0, sy, sx, 1)) < 1e-6;
                bad += !found;
                moved += fabsf(r - rgb01(12, 0, y + o.crop, x + o.crop, 0)) > 1e-6f;
            }
        CHECK_MSG(bad == 0, "seed %llu: %d pixels whose RGB and point come from different source pixels",
                  (unsigned long long)sd, bad);
        dv_calvin_frame_free(&f);
        free(xyz);
        dv_calvin_batch_free(DV_CALVIN_3DDA, &b);
    }
    CHECK(moved > 0); /* the augmentation did something */

    /* bounds: relative x over every trajectory lies in [0, 0.015] (15 frames ahead at most) */
    float lo3[3], hi3[3];
    o.augment = false;
    CHECK(dv_calvin_3dda_bounds(d, &o, 0.01, 0, lo3, hi3, err, sizeof err) == 0);
    CHECK_CLOSE(lo3[0], -0.01, 1e-5);
    CHECK_CLOSE(hi3[0], 0.015 + 0.01, 1e-5);
    CHECK_CLOSE(hi3[2], 0.01, 1e-5);
    dv_calvin_close(d);
}

TEST(calvin_samples_mllm) {
    dv_calvin *d = open_tiny();
    if (!d) return;
    char err[512] = "";
    dv_calvin_loader_opts lo;
    dv_calvin_loader_defaults(&lo, DV_CALVIN_MLLM);
    lo.mllm_every = 3;
    CHECK(dv_calvin_samples_of(d, &lo, 0, NULL, 0) == 7); /* 0, 3, ..., 18 */
    CHECK(dv_calvin_samples_of(d, &lo, 2, NULL, 0) == 2); /* 100, 103 */
    dv_calvin_sample s[2] = {{0, 18}, {2, 3}};
    dv_calvin_mllm_batch b;
    CHECK_MSG(dv_calvin_mllm_build(d, SH, 3, s, 2, &b, err, sizeof err) == 0, "%s", err);
    if (b.rgb_static) {
        CHECK(b.frame[0] == 18 && b.serves[0] == 2 && b.frame[1] == 103 && b.serves[1] == 2);
        CHECK(!strcmp(b.instruction[1], TINY_ANN[2].ann));
        CHECK_CLOSE(dv_get(b.rgb_static, (int64_t[]){1, 1, 20, 30}), rgb01(103, 0, 20, 30, 1), 1e-6);
        dv_calvin_batch_free(DV_CALVIN_MLLM, &b);
    }
    dv_calvin_close(d);
}

/* ---- helpers ------------------------------------------------------------------------------------ */
TEST(calvin_image_resize_matches_ops) {
    /* bilinear / nearest against the tensor ops (align_corners = false), up and down */
    const int sizes[][4] = {{16, 16, 48, 48}, {200, 200, 224, 224}, {48, 40, 20, 30}, {160, 160, 148, 184}, {84, 84, 200, 168}};
    for (int k = 0; k < 5; k++) {
        int sh = sizes[k][0], sw = sizes[k][1], dh = sizes[k][2], dw = sizes[k][3];
        dv_rng r = dv_rng_new(7 + k);
        dv_tensor *x = dv_rand(&r, DV_F32, DV_SHAPE(1, 3, sh, sw));
        float *hwc = malloc(sizeof(float) * 3 * sh * sw), *out = malloc(sizeof(float) * 3 * dh * dw);
        uint8_t *u8 = malloc(3 * (size_t)sh * sw);
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < sh * sw; i++) {
                u8[i * 3 + c] = (uint8_t)(255 * ((float *)dv_data(x))[c * sh * sw + i]);
                hwc[i * 3 + c] = u8[i * 3 + c];
                ((float *)dv_data(x))[c * sh * sw + i] = u8[i * 3 + c];
            }
        dv_tensor *bl = dv_resize_bilinear(x, dh, dw, false), *nn = dv_resize_nearest(x, dh, dw);
        dv_resize_bilinear_f32_chw(hwc, sh, sw, 3, out, dh, dw);
        double e1 = 0, e2 = 0, e3 = 0;
        for (int i = 0; i < 3 * dh * dw; i++) e1 = fmax(e1, fabs(out[i] - ((float *)dv_data(bl))[i]));
        dv_resize_bilinear_u8_chw(u8, sh, sw, 3, out, dh, dw, 1.0f);
        for (int i = 0; i < 3 * dh * dw; i++) e2 = fmax(e2, fabs(out[i] - ((float *)dv_data(bl))[i]));
        dv_resize_nearest_f32_chw(hwc, sh, sw, 3, out, dh, dw, DV_NEAREST_TORCH);
        for (int i = 0; i < 3 * dh * dw; i++) e3 = fmax(e3, fabs(out[i] - ((float *)dv_data(nn))[i]));
        CHECK_MSG(e1 < 1e-4 && e2 < 1e-4 && e3 == 0, "%dx%d -> %dx%d: %g %g %g", sh, sw, dh, dw, e1, e2, e3);
        dv_release(x), dv_release(bl), dv_release(nn);
        free(hwc), free(out), free(u8);
    }
}

TEST(calvin_image_nearest_rules) {
    /* PyTorch's float rule and OpenCV's double rule disagree at a few pixels; values from
       torch.nn.functional.interpolate(mode="nearest") and floor(x * (1 / (out / in))) */
    CHECK(dv_nearest_index(DV_NEAREST_TORCH, 84, 200, 150) == 62);
    CHECK(dv_nearest_index(DV_NEAREST_CV2, 84, 200, 150) == 63);
    int diff = 0;
    for (int i = 0; i < 200; i++)
        diff += dv_nearest_index(DV_NEAREST_TORCH, 84, 200, i) != dv_nearest_index(DV_NEAREST_CV2, 84, 200, i);
    CHECK(diff == 1);
    CHECK(dv_nearest_index(DV_NEAREST_TORCH, 160, 148, 111) == 119); /* torch; exact arithmetic: 120 */
    CHECK(dv_nearest_index(DV_NEAREST_TORCH, 8, 16, 5) == 2 && dv_nearest_index(DV_NEAREST_TORCH, 9, 9, 8) == 8);
}

TEST(calvin_3dda_augment_geometry) {
    /* torchvision: resize 8 -> int(8 * 0.75) = 6 by nearest (source floor(p * 8 / 6)), pad
       right by 2 with "reflect" (p = 6, 7 read 4, 3), crop at 0 (the values torch gives for
       F.pad(F.interpolate(arange(8), 6, mode="nearest"), (0, 2), mode="reflect")) */
    int map[8];
    const int want_small[8] = {0, 1, 2, 4, 5, 6, 5, 4};
    dv_calvin_3dda_axis_map(0, 8, 6, 0, map);
    for (int i = 0; i < 8; i++) CHECK(map[i] == want_small[i]);
    /* resize 8 -> 10 (source floor(p * 0.8)), crop at 2, all shifted by a 20-pixel border */
    const int want_big[8] = {1, 2, 3, 4, 4, 5, 6, 7};
    dv_calvin_3dda_axis_map(20, 8, 10, 2, map);
    for (int i = 0; i < 8; i++) CHECK(map[i] == 20 + want_big[i]);
    dv_calvin_3dda_axis_map(4, 8, 8, 0, map); /* no augmentation: the crop */
    for (int i = 0; i < 8; i++) CHECK(map[i] == 4 + i);
}

TEST(calvin_spline) {
    /* not-a-knot reproduces a cubic exactly, from 4 points on */
    for (int n = 4; n <= 16; n += 3) {
        double y[16], out[20];
        for (int i = 0; i < n; i++) { double x = (double)i / (n - 1); y[i] = 2 - x + 3 * x * x - 5 * x * x * x; }
        dv_spline_resample(y, n, out, 20);
        for (int i = 0; i < 20; i++) {
            double x = i / 19.0;
            CHECK_CLOSE(out[i], 2 - x + 3 * x * x - 5 * x * x * x, 1e-10);
        }
    }
    double y3[3] = {1, 0, 3}, o3[5]; /* a parabola through 3 points: 1 - 6x + 8x^2 */
    dv_spline_resample(y3, 3, o3, 5);
    for (int i = 0; i < 5; i++) { double x = i / 4.0; CHECK_CLOSE(o3[i], 1 - 6 * x + 8 * x * x, 1e-12); }
    double y2[2] = {1, 3}, o2[3];
    dv_spline_resample(y2, 2, o2, 3);
    CHECK_CLOSE(o2[1], 2, 1e-12);
    /* not-a-knot on [0,1,0,1,0] at x = 0, .25, .5, .75, 1: the first two intervals are one
       cubic p with p(0) = 0, p(.25) = 1, p(.5) = 0 and, by symmetry, p'(.5) = 0, so
       p = 32 u^2 + 64 u^3 with u = x - .5, and p(.125) = 1.125 (a natural spline differs) */
    double y5[5] = {0, 1, 0, 1, 0}, o5[9];
    dv_spline_resample(y5, 5, o5, 9);
    CHECK_CLOSE(o5[1], 1.125, 1e-9);
    CHECK_CLOSE(dv_angle_diff(3.0, -3.0), 2 * M_PI - 6.0, 1e-12);
    CHECK_CLOSE(dv_angle_diff(-3.0, 3.0), 6.0 - 2 * M_PI, 1e-12);
    CHECK_CLOSE(dv_angle_diff(0.5, 0.25), -0.25, 1e-12);
}
