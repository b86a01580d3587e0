/* tests/test_synth.c — the synthetic CALVIN dataset (data/calvin/synth.c): every scripted task
 * is consistent frame to frame (actions are the next frame's pose, rel_actions follow
 * calvin_env's to_relative_action and integrate back to the trajectory) and succeeds by
 * calvin_env's own task checks (drawer / door moved by the task's threshold, block lifted,
 * pushed 0.1 m, turned 60°); a tiny dataset written to disk reads back through the npy / npz /
 * pickle readers with CALVIN's keys, shapes and dtypes, annotation windows inside episodes,
 * images equal to a fresh render; the dataset reader (data/calvin/dataset.h) opens it and every
 * loader kind draws a batch; the same seed gives the same bytes with 1 or 2 threads. */
#include "data/calvin/synth.h"
#include "data/calvin/dataset.h"
#include "data/calvin/npy.h"
#include "data/calvin/pickle.h"
#include "data/calvin/render.h"
#include "tests/test.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* independent of dv_calvin_rel_action: calvin_env's formula written out again */
static double angle_diff(double a, double b) {
    double d = b - a + M_PI;
    d -= 2 * M_PI * floor(d / (2 * M_PI));
    return d - M_PI;
}

static void check_episode(const dv_calvin_synth_episode *ep, bool expect_unclipped, const char *what) {
    const int F = ep->frames;
    int bad_next = 0, bad_rel = 0, bad_int = 0, bad_grip = 0;
    for (int t = 0; t < F; t++) {
        const float *a = ep->actions[t], *o = ep->robot_obs[t], *r = ep->rel_actions[t];
        for (int i = 0; i < 3; i++) {
            double d = ((double)a[i] - o[i]) / 0.02;
            bad_rel += fabs(r[i] - fmax(-1, fmin(1, d))) > 1e-5;
            double e = angle_diff(o[3 + i], a[3 + i]) / 0.05;
            bad_rel += fabs(r[3 + i] - fmax(-1, fmin(1, e))) > 1e-5;
        }
        bad_rel += r[6] != a[6];
        bad_grip += !(a[6] == 1 || a[6] == -1) || !(o[14] == 1 || o[14] == -1) || o[6] < 0 || o[6] > 0.0801f;
        if (t + 1 < F) {
            const float *n = ep->robot_obs[t + 1];
            for (int i = 0; i < 6; i++) bad_next += n[i] != a[i];
            bad_next += n[14] != a[6];
            if (expect_unclipped)
                for (int i = 0; i < 3; i++) {
                    bad_int += fabs(r[i]) >= 1 || fabs(o[i] + r[i] / 50.0 - n[i]) > 1e-6;
                    bad_int += fabs(r[3 + i]) >= 1 || fabs(angle_diff(o[3 + i], n[3 + i]) - r[3 + i] / 20.0) > 1e-6;
                }
        } else {
            for (int i = 0; i < 6; i++) bad_next += a[i] != o[i]; /* the last frame holds */
        }
    }
    CHECK_MSG(!bad_next && !bad_rel && !bad_int && !bad_grip, "%s: next-pose %d, rel_actions %d, integration %d, gripper %d",
              what, bad_next, bad_rel, bad_int, bad_grip);
    /* the rest frames before the annotated window: the robot holds still, gripper open */
    CHECK(ep->ann_start == F / 16);
    for (int t = 0; t < ep->ann_start; t++) {
        CHECK(ep->actions[t][6] == 1);
        for (int i = 0; i < 6; i++) CHECK(ep->actions[t][i] == ep->robot_obs[t][i]);
    }
}

/* calvin_env's Tasks checks (conf/tasks/new_playtable_tasks.yaml) between the window's ends */
static bool task_succeeded(const dv_calvin_synth_episode *ep, double *how) {
    const char *name = dv_calvin_synth_task_name(ep->task);
    const float *s0 = ep->scene_obs[ep->ann_start], *s1 = ep->scene_obs[ep->frames - 1];
    int block = strstr(name, "red") ? 0 : strstr(name, "blue") ? 1 : 2;
    const float *b0 = s0 + 6 + 6 * block, *b1 = s1 + 6 + 6 * block;
    if (!strcmp(name, "open_drawer")) return (*how = s1[1] - s0[1]) > 0.12;
    if (!strcmp(name, "close_drawer")) return (*how = s1[1] - s0[1]) < -0.12;
    if (!strcmp(name, "move_slider_left")) return (*how = s1[0] - s0[0]) > 0.15;
    if (!strcmp(name, "move_slider_right")) return (*how = s1[0] - s0[0]) < -0.15;
    if (strstr(name, "lift_")) {
        /* lifted > 5 cm and still between closed fingers */
        *how = b1[2] - b0[2];
        const float *ro = ep->robot_obs[ep->frames - 1];
        return *how > 0.05 && ro[14] == -1 && fabs(ro[6] - 0.04) < 1e-6 && fabs(ro[2] - b1[2]) < 1e-4;
    }
    if (strstr(name, "push_")) {
        *how = b1[0] - b0[0];
        return strstr(name, "right") ? *how > 0.1 : *how < -0.1;
    }
    if (strstr(name, "rotate_")) {
        *how = angle_diff(b0[5], b1[5]) * 180 / M_PI;
        bool upright = fabs(b1[3]) < 1e-6 && fabs(b1[4]) < 1e-6 && fabs(b1[2] - b0[2]) < 1e-5;
        return upright && (strstr(name, "right") ? *how < -60 : *how > 60);
    }
    *how = NAN;
    return false;
}

TEST(synth_tasks_consistent_and_successful) {
    CHECK(dv_calvin_synth_num_tasks() == 19);
    for (int task = 0; task < dv_calvin_synth_num_tasks(); task++) {
        const char *name = dv_calvin_synth_task_name(task);
        CHECK(dv_calvin_synth_task_find(name) == task);
        for (int pass = 0; pass < 2; pass++) {
            dv_calvin_synth_episode ep;
            char err[256], what[96];
            int frames = pass ? 20 : 64;
            if (dv_calvin_synth_episode_make(7 + pass, task, frames, task, &ep, err, sizeof err)) {
                CHECK_MSG(0, "%s: %s", name, err);
                continue;
            }
            snprintf(what, sizeof what, "%s, %d frames", name, frames);
            CHECK(ep.task == task && ep.frames == frames);
            bool known = false;
            for (int i = 0; i < dv_calvin_synth_num_instructions(task); i++)
                known |= !strcmp(ep.instruction, dv_calvin_synth_instruction(task, i));
            CHECK_MSG(known, "%s: instruction '%s' not among the task's", what, ep.instruction);
            /* 64 frames is enough for every task at the speed limit; 20 squeezes and clips */
            check_episode(&ep, frames == 64, what);
            double how;
            CHECK_MSG(task_succeeded(&ep, &how), "%s: task not achieved (%g)", what, how);
            dv_calvin_synth_episode_free(&ep);
        }
    }
    char err[256];
    dv_calvin_synth_episode ep;
    CHECK(dv_calvin_synth_episode_make(0, 0, 15, -1, &ep, err, sizeof err) == -1 && strstr(err, "16"));
}

TEST(synth_episodes_deterministic) {
    dv_calvin_synth_episode a, b, c;
    CHECK(dv_calvin_synth_episode_make(3, 5, 32, -1, &a, NULL, 0) == 0);
    CHECK(dv_calvin_synth_episode_make(3, 5, 32, -1, &b, NULL, 0) == 0);
    CHECK(dv_calvin_synth_episode_make(4, 5, 32, -1, &c, NULL, 0) == 0);
    CHECK(a.task == b.task && !strcmp(a.instruction, b.instruction));
    CHECK(!memcmp(a.robot_obs, b.robot_obs, sizeof(float) * 15 * 32) && !memcmp(a.scene_obs, b.scene_obs, sizeof(float) * 24 * 32));
    CHECK(memcmp(a.scene_obs, c.scene_obs, sizeof(float) * 24 * 32) != 0);
    dv_calvin_synth_episode_free(&a); dv_calvin_synth_episode_free(&b); dv_calvin_synth_episode_free(&c);
    /* consecutive episodes cycle through the five task families */
    int fam[5] = {0};
    for (int i = 0; i < 5; i++) {
        CHECK(dv_calvin_synth_episode_make(11, i, 16, -1, &a, NULL, 0) == 0);
        const char *n = dv_calvin_synth_task_name(a.task);
        fam[strstr(n, "drawer") ? 0 : strstr(n, "slider") ? 1 : strstr(n, "lift") ? 2 : strstr(n, "push") ? 3 : 4]++;
        dv_calvin_synth_episode_free(&a);
    }
    for (int k = 0; k < 5; k++) CHECK(fam[k] == 1);
}

TEST(synth_text_embedding) {
    float a[DV_CALVIN_EMB_DIM], b[DV_CALVIN_EMB_DIM], c[DV_CALVIN_EMB_DIM], a2[DV_CALVIN_EMB_DIM];
    dv_calvin_text_embedding("open the drawer", a);
    dv_calvin_text_embedding("Open the drawer", a2);
    dv_calvin_text_embedding("go open the drawer", b);
    dv_calvin_text_embedding("turn the blue block left", c);
    double n = 0, ab = 0, ac = 0;
    for (int i = 0; i < DV_CALVIN_EMB_DIM; i++) { n += a[i] * a[i]; ab += a[i] * b[i]; ac += a[i] * c[i]; }
    CHECK_CLOSE(n, 1.0, 1e-6);
    CHECK(!memcmp(a, a2, sizeof a)); /* case-insensitive */
    CHECK_MSG(ab > ac + 0.3, "similar sentences %g vs different %g", ab, ac);
}

/* ---- the dataset on disk ------------------------------------------------------------------ */

static void mk_tmpdir(char *dir, size_t n) {
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, n, "%s/dv_synth_test_XXXXXX", base);
    if (!mkdtemp(dir)) { perror("mkdtemp"); abort(); }
}

static void rm_rf(const char *path) {
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", path, e->d_name);
            rm_rf(p);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static bool same_file(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool same = fa && fb;
    while (same) {
        int x = fgetc(fa), y = fgetc(fb);
        if (x != y) same = false;
        if (x == EOF || y == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

typedef struct { const char *key; dv_npy_dtype dt; int ndim; int64_t shape[3]; } key_spec;
static const key_spec frame_keys[8] = {
    {"actions", DV_NPY_F32, 1, {7}}, {"rel_actions", DV_NPY_F32, 1, {7}}, {"robot_obs", DV_NPY_F32, 1, {15}},
    {"scene_obs", DV_NPY_F32, 1, {24}}, {"rgb_static", DV_NPY_U8, 3, {200, 200, 3}},
    {"rgb_gripper", DV_NPY_U8, 3, {84, 84, 3}}, {"depth_static", DV_NPY_F32, 2, {200, 200}},
    {"depth_gripper", DV_NPY_F32, 2, {84, 84}},
};

/* a split read back: layout, frames against the generator, annotations */
static void check_split(const char *dir, const char *split, int first_episode, int nep, int F, int64_t first_id,
                        uint64_t seed) {
    char path[1200], err[512];
    dv_npy ids = {0};
    snprintf(path, sizeof path, "%s/%s/ep_start_end_ids.npy", dir, split);
    if (dv_npy_load(path, &ids, err, sizeof err)) { CHECK_MSG(0, "%s", err); return; }
    CHECK(ids.dtype == DV_NPY_I64 && ids.ndim == 2 && ids.shape[0] == nep && ids.shape[1] == 2);
    for (int e = 0; e < nep && ids.count == 2 * nep; e++) {
        CHECK(dv_npy_get_i64(&ids, 2 * e) == first_id + (int64_t)e * F);
        CHECK(dv_npy_get_i64(&ids, 2 * e + 1) == first_id + (int64_t)(e + 1) * F - 1);
    }

    /* every frame: keys, dtypes, shapes; values equal to the generator's */
    for (int e = 0; e < nep; e++) {
        dv_calvin_synth_episode ep;
        if (dv_calvin_synth_episode_make(seed, first_episode + e, F, -1, &ep, err, sizeof err)) { CHECK_MSG(0, "%s", err); continue; }
        for (int t = 0; t < F; t++) {
            snprintf(path, sizeof path, "%s/%s/episode_%07lld.npz", dir, split, (long long)(first_id + (int64_t)e * F + t));
            dv_npz *z;
            if (dv_npz_open(path, &z, err, sizeof err)) { CHECK_MSG(0, "%s", err); continue; }
            CHECK(dv_npz_count(z) == 8);
            dv_npy arr[8] = {{0}};
            for (int k = 0; k < 8; k++) {
                const key_spec *ks = &frame_keys[k];
                if (dv_npz_get(z, ks->key, &arr[k], err, sizeof err)) { CHECK_MSG(0, "%s", err); continue; }
                bool ok = arr[k].dtype == ks->dt && arr[k].ndim == ks->ndim;
                for (int d = 0; ok && d < ks->ndim; d++) ok = arr[k].shape[d] == ks->shape[d];
                CHECK_MSG(ok, "%s: key %s has the wrong dtype or shape", path, ks->key);
            }
            if (arr[0].data && arr[2].data && arr[3].data && arr[1].data) {
                CHECK(!memcmp(arr[0].data, ep.actions[t], 28) && !memcmp(arr[1].data, ep.rel_actions[t], 28));
                CHECK(!memcmp(arr[2].data, ep.robot_obs[t], 60) && !memcmp(arr[3].data, ep.scene_obs[t], 96));
            }
            /* one frame per episode: the images are a fresh render of the stored state */
            if (t == F / 2 && arr[4].data && arr[6].data && arr[5].data && arr[7].data) {
                static uint8_t rgb[200 * 200 * 3];
                static float depth[200 * 200];
                dv_calvin_camera cam;
                dv_calvin_static_camera(&cam);
                dv_calvin_render(&cam, ep.robot_obs[t], ep.scene_obs[t], rgb, depth);
                CHECK(!memcmp(arr[4].data, rgb, sizeof rgb) && !memcmp(arr[6].data, depth, sizeof depth));
                dv_calvin_gripper_camera(ep.robot_obs[t], &cam);
                dv_calvin_render(&cam, ep.robot_obs[t], ep.scene_obs[t], rgb, depth);
                CHECK(!memcmp(arr[5].data, rgb, 84 * 84 * 3) && !memcmp(arr[7].data, depth, 84 * 84 * 4));
            }
            for (int k = 0; k < 8; k++) dv_npy_free(&arr[k]);
            dv_npz_close(z);
        }
        dv_calvin_synth_episode_free(&ep);
    }

    /* annotations: windows inside their episodes, strings and embeddings */
    dv_pyarena *ar = dv_pyarena_new();
    dv_pyobj *root;
    snprintf(path, sizeof path, "%s/%s/lang_annotations/auto_lang_ann.npy", dir, split);
    if (dv_npy_load_pickled(path, ar, &root, err, sizeof err)) { CHECK_MSG(0, "%s", err); goto done; }
    const dv_pyobj *indx = dv_py_path(root, "info.indx"), *ann = dv_py_path(root, "language.ann");
    const dv_pyobj *task = dv_py_path(root, "language.task"), *emb = dv_py_path(root, "language.emb");
    const dv_pyobj *eps = dv_py_path(root, "info.episodes");
    if (!indx || !ann || !task || !emb || !eps) { CHECK_MSG(0, "%s: keys missing", path); goto done; }
    CHECK(indx->type == DV_PY_LIST && indx->seq.n == nep && ann->seq.n == nep && task->seq.n == nep);
    CHECK(eps->type == DV_PY_LIST && eps->seq.n == 0);
    CHECK(emb->type == DV_PY_NDARRAY && emb->array.dtype == DV_NPY_F32 && emb->array.ndim == 3 &&
          emb->array.shape[0] == nep && emb->array.shape[1] == 1 && emb->array.shape[2] == DV_CALVIN_EMB_DIM);
    for (int e = 0; e < nep && indx->seq.n == nep && ann->seq.n == nep && task->seq.n == nep; e++) {
        const dv_pyobj *w = indx->seq.items[e];
        int64_t s = -1, t = -1;
        CHECK(w->type == DV_PY_TUPLE && w->seq.n == 2 && dv_py_as_i64(w->seq.items[0], &s) && dv_py_as_i64(w->seq.items[1], &t));
        int64_t es = dv_npy_get_i64(&ids, 2 * e), ee = dv_npy_get_i64(&ids, 2 * e + 1);
        CHECK_MSG(es <= s && s < t && t <= ee, "%s: window %d [%lld, %lld] outside episode [%lld, %lld]", path, e,
                  (long long)s, (long long)t, (long long)es, (long long)ee);
        int tk = dv_calvin_synth_task_find(task->seq.items[e]->str.s);
        CHECK(tk >= 0);
        bool known = false;
        for (int i = 0; tk >= 0 && i < dv_calvin_synth_num_instructions(tk); i++)
            known |= !strcmp(ann->seq.items[e]->str.s, dv_calvin_synth_instruction(tk, i));
        CHECK(known);
        float want[DV_CALVIN_EMB_DIM];
        dv_calvin_text_embedding(ann->seq.items[e]->str.s, want);
        if (emb->array.count == (int64_t)nep * DV_CALVIN_EMB_DIM)
            CHECK(!memcmp((const float *)emb->array.data + (size_t)e * DV_CALVIN_EMB_DIM, want, sizeof want));
    }
    /* scene_info: {"calvin_scene_D": [first, last]} */
    snprintf(path, sizeof path, "%s/%s/scene_info.npy", dir, split);
    dv_pyobj *si;
    if (dv_npy_load_pickled(path, ar, &si, err, sizeof err)) { CHECK_MSG(0, "%s", err); goto done; }
    const dv_pyobj *range = dv_py_get(si, "calvin_scene_D");
    int64_t r0, r1;
    CHECK(range && range->type == DV_PY_LIST && range->seq.n == 2 && dv_py_as_i64(range->seq.items[0], &r0) &&
          dv_py_as_i64(range->seq.items[1], &r1) && r0 == first_id && r1 == first_id + (int64_t)nep * F - 1);
done:
    dv_pyarena_free(ar);
    dv_npy_free(&ids);
}

TEST(synth_dataset_on_disk) {
    char dir[256], dir2[256], err[512];
    mk_tmpdir(dir, sizeof dir);
    mk_tmpdir(dir2, sizeof dir2);
    dv_calvin_camera_config_reset();
    dv_calvin_synth_opts o;
    dv_calvin_synth_defaults(&o);
    o.episodes = 3;
    o.frames_per_episode = 16;
    o.seed = 5;
    o.threads = 2;
    dv_calvin_synth_report rep;
    if (dv_calvin_synth(dir, &o, &rep, err, sizeof err)) { CHECK_MSG(0, "%s", err); rm_rf(dir); rm_rf(dir2); return; }
    CHECK(rep.train_episodes == 2 && rep.val_episodes == 1 && rep.train_frames == 32 && rep.val_frames == 16);
    CHECK(rep.bytes > 48 * 300000);
    check_split(dir, "training", 0, 2, 16, 0, 5);
    check_split(dir, "validation", 2, 1, 16, 32, 5);

    /* statistics.yaml: the keys the readers look for */
    char path[600];
    snprintf(path, sizeof path, "%s/validation/statistics.yaml", dir);
    FILE *f = fopen(path, "r");
    char text[8192] = "";
    if (f) { size_t n = fread(text, 1, sizeof text - 1, f); text[n] = 0; fclose(f); }
    CHECK(strstr(text, "robot_obs:\n  - _target_: calvin_agent.utils.transforms.NormalizeVector\n    mean: ["));
    CHECK(strstr(text, "scene_obs:") && strstr(text, "act_min_bound: [") && strstr(text, "act_max_bound: ["));

    /* the dataset reader and the three loaders take it as they take CALVIN's */
    for (int sp = 0; sp < 2; sp++) {
        char split[600];
        snprintf(split, sizeof split, "%s/%s", dir, sp ? "validation" : "training");
        dv_calvin *d;
        if (dv_calvin_open(split, &d, err, sizeof err)) { CHECK_MSG(0, "dv_calvin_open: %s", err); continue; }
        CHECK(dv_calvin_num_episodes(d) == (sp ? 1 : 2) && dv_calvin_num_annotations(d) == (sp ? 1 : 2));
        const dv_calvin_ann *an = dv_calvin_annotation(d, 0);
        int64_t es, ee;
        dv_calvin_episode_bounds(d, 0, &es, &ee);
        CHECK(an && an->start == es + 1 && an->end == ee && dv_calvin_synth_task_find(an->task) >= 0);
        dv_calvin_frame fr;
        if (dv_calvin_frame_load(d, an->start, &fr, err, sizeof err)) CHECK_MSG(0, "frame load: %s", err);
        else {
            dv_calvin_synth_episode ep;
            CHECK(dv_calvin_synth_episode_make(5, sp ? 2 : 0, 16, -1, &ep, NULL, 0) == 0);
            CHECK(!memcmp(fr.robot_obs, ep.robot_obs[1], sizeof fr.robot_obs) && !strcmp(an->instruction, ep.instruction));
            CHECK(fr.static_h == 200 && fr.gripper_w == 84);
            dv_calvin_synth_episode_free(&ep);
            dv_calvin_frame_free(&fr);
        }
        for (int k = 0; k < 3; k++) {
            dv_calvin_loader_opts lo;
            dv_calvin_loader_defaults(&lo, (dv_calvin_kind)k);
            lo.batch = 2;
            lo.threads = 1;
            dv_calvin_loader *l;
            if (dv_calvin_loader_new(d, &lo, &l, err, sizeof err)) { CHECK_MSG(0, "loader %d: %s", k, err); continue; }
            union { dv_calvin_dit_batch dit; dv_calvin_3dda_batch dda; dv_calvin_mllm_batch mllm; } b;
            memset(&b, 0, sizeof b);
            if (dv_calvin_loader_get(l, 0, &b, err, sizeof err)) CHECK_MSG(0, "loader %d batch: %s", k, err);
            else {
                CHECK(b.dit.B == 2); /* every batch struct opens with B */
                dv_calvin_batch_free((dv_calvin_kind)k, &b);
            }
            dv_calvin_loader_free(l);
        }
        dv_calvin_close(d);
    }

    /* a non-empty DIR is refused without --force and left alone */
    CHECK(dv_calvin_synth(dir, &o, &rep, err, sizeof err) == -1 && strstr(err, "--force") && strstr(err, dir));
    /* one thread, other dir: the same bytes */
    o.threads = 1;
    o.val_episodes = 1;
    CHECK(dv_calvin_synth(dir2, &o, &rep, err, sizeof err) == 0);
    const char *files[] = {"training/episode_0000000.npz", "training/episode_0000021.npz", "validation/episode_0000047.npz",
                           "training/lang_annotations/auto_lang_ann.npy", "training/statistics.yaml",
                           "validation/ep_start_end_ids.npy"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char a[600], b[600];
        snprintf(a, sizeof a, "%s/%s", dir, files[i]);
        snprintf(b, sizeof b, "%s/%s", dir2, files[i]);
        CHECK_MSG(same_file(a, b), "%s differs between 2 threads and 1", files[i]);
    }
    /* --force rewrites; another seed changes the data */
    o.force = true;
    o.seed = 6;
    o.episodes = 2;
    o.val_episodes = 0;
    CHECK(dv_calvin_synth(dir2, &o, &rep, err, sizeof err) == 0 && rep.val_episodes == 0);
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/training/episode_0000000.npz", dir);
    snprintf(b, sizeof b, "%s/training/episode_0000000.npz", dir2);
    CHECK(!same_file(a, b));
    /* a file where DIR should be */
    char file[600];
    snprintf(file, sizeof file, "%s/training/statistics.yaml", dir2);
    CHECK(dv_calvin_synth(file, &o, &rep, err, sizeof err) == -1 && strstr(err, "not a directory"));
    /* bad options */
    o.frames_per_episode = 8;
    CHECK(dv_calvin_synth(dir2, &o, &rep, err, sizeof err) == -1 && strstr(err, "frames-per-episode"));
    o.frames_per_episode = 16;
    o.val_episodes = 2;
    CHECK(dv_calvin_synth(dir2, &o, &rep, err, sizeof err) == -1 && strstr(err, "val-episodes"));
    rm_rf(dir);
    rm_rf(dir2);
}
