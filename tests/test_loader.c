/* tests/test_loader.c — data/calvin/loader.c on the tiny split of test_dataset.c: batch i is a
 * pure function of (seed, i) whatever the thread count and the access order; an epoch visits
 * every sample once; seeds change the order; the held-out split is disjoint and seeded; a
 * one-batch memory budget still works; errors of a worker reach the caller.
 */
#include "data/calvin/dataset.h"
#include "data/calvin/samples.h"
#include "tests/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *dvt_calvin_tiny_dir(void);
int dvt_write_frame(const char *dir, int64_t id, const char *skip_key, const char *bad_shape_key, bool compress);

static dv_calvin *open_tiny(const char *dir) {
    char err[512] = "";
    dv_calvin *d = NULL;
    if (dv_calvin_open(dir, &d, err, sizeof err)) CHECK_MSG(false, "open: %s", err);
    return d;
}

static dv_calvin_loader *new_loader(dv_calvin *d, const dv_calvin_loader_opts *o) {
    char err[512] = "";
    dv_calvin_loader *l = NULL;
    if (dv_calvin_loader_new(d, o, &l, err, sizeof err)) CHECK_MSG(false, "loader: %s", err);
    return l;
}

static bool same_tensor(const dv_tensor *a, const dv_tensor *b) {
    return a && b && dv_same_shape(a, b) && !memcmp(dv_data(a), dv_data(b), (size_t)dv_numel(a) * dv_dtype_size(a->dtype));
}

/* every field of two batches of kind k bitwise equal */
static bool same_batch(dv_calvin_kind k, const void *x, const void *y) {
    if (k == DV_CALVIN_DIT) {
        const dv_calvin_dit_batch *a = x, *b = y;
        bool ok = a->B == b->B && same_tensor(a->rgb_static, b->rgb_static) && same_tensor(a->rgb_gripper, b->rgb_gripper) &&
                  same_tensor(a->depth_static, b->depth_static) && same_tensor(a->depth_gripper, b->depth_gripper) &&
                  same_tensor(a->proprio, b->proprio) && same_tensor(a->actions, b->actions) &&
                  same_tensor(a->gen_actions, b->gen_actions);
        for (int64_t i = 0; ok && i < a->B; i++)
            ok = a->tau[i] == b->tau[i] && a->frame[i] == b->frame[i] && a->instruction[i] == b->instruction[i];
        return ok;
    }
    if (k == DV_CALVIN_3DDA) {
        const dv_calvin_3dda_batch *a = x, *b = y;
        bool ok = a->B == b->B && same_tensor(a->rgb, b->rgb) && same_tensor(a->pcd, b->pcd) &&
                  same_tensor(a->gripper_hist, b->gripper_hist) && same_tensor(a->trajectory, b->trajectory);
        for (int64_t i = 0; ok && i < a->B; i++) ok = a->frame[i] == b->frame[i];
        return ok;
    }
    const dv_calvin_mllm_batch *a = x, *b = y;
    bool ok = a->B == b->B && same_tensor(a->rgb_static, b->rgb_static);
    for (int64_t i = 0; ok && i < a->B; i++) ok = a->frame[i] == b->frame[i] && a->serves[i] == b->serves[i];
    return ok;
}

typedef union { dv_calvin_dit_batch dit; dv_calvin_3dda_batch dda; dv_calvin_mllm_batch mllm; } any_batch;

static void small_opts(dv_calvin_loader_opts *o, dv_calvin_kind k) {
    dv_calvin_loader_defaults(o, k);
    o->seed = 42;
    o->batch = 5;
    o->dit.image_size = 16;
    o->dit.static_frames = 2;
    o->dda.crop = 4;
    o->dda.image_size = 24;
    o->mllm_size = 16;
}

TEST(calvin_loader_threads_and_order) {
    dv_calvin *d = open_tiny(dvt_calvin_tiny_dir());
    if (!d) return;
    char err[512] = "";
    const dv_calvin_kind kinds[3] = {DV_CALVIN_DIT, DV_CALVIN_3DDA, DV_CALVIN_MLLM};
    for (int k = 0; k < 3; k++) {
        enum { NB = 6 };
        any_batch seq[NB];
        dv_calvin_loader_opts o;
        small_opts(&o, kinds[k]);
        o.threads = 1;
        dv_calvin_loader *l1 = new_loader(d, &o);
        o.threads = 2;
        dv_calvin_loader *l2 = new_loader(d, &o);
        o.threads = 2;
        o.max_bytes = 1; /* one slot */
        dv_calvin_loader *l3 = new_loader(d, &o);
        if (!l1 || !l2 || !l3) { dv_calvin_loader_free(l1), dv_calvin_loader_free(l2), dv_calvin_loader_free(l3); continue; }
        /* sequential with one thread is the reference */
        for (int i = 0; i < NB; i++) CHECK_MSG(dv_calvin_loader_get(l1, i, &seq[i], err, sizeof err) == 0, "%s", err);
        /* two threads, sequential */
        for (int i = 0; i < NB; i++) {
            any_batch b;
            CHECK_MSG(dv_calvin_loader_get(l2, i, &b, err, sizeof err) == 0, "%s", err);
            CHECK_MSG(same_batch(kinds[k], &seq[i], &b), "kind %d batch %d: 2 threads differ from 1", k, i);
            dv_calvin_batch_free(kinds[k], &b);
        }
        /* random access, restarts, repeats, with a one-batch budget */
        const int order[] = {4, 1, 5, 5, 0, 3, 2};
        for (size_t j = 0; j < sizeof order / sizeof order[0]; j++) {
            any_batch b;
            CHECK_MSG(dv_calvin_loader_get(l3, order[j], &b, err, sizeof err) == 0, "%s", err);
            CHECK_MSG(same_batch(kinds[k], &seq[order[j]], &b), "kind %d batch %d: random access differs", k, order[j]);
            dv_calvin_batch_free(kinds[k], &b);
        }
        /* a different seed gives different batches */
        o.seed = 43;
        o.max_bytes = 0;
        dv_calvin_loader *l4 = new_loader(d, &o);
        any_batch b;
        if (l4 && dv_calvin_loader_get(l4, 0, &b, err, sizeof err) == 0) {
            CHECK(!same_batch(kinds[k], &seq[0], &b));
            dv_calvin_batch_free(kinds[k], &b);
        }
        dv_calvin_loader_free(l4);
        for (int i = 0; i < NB; i++) dv_calvin_batch_free(kinds[k], &seq[i]);
        dv_calvin_loader_free(l1), dv_calvin_loader_free(l2), dv_calvin_loader_free(l3);
    }
    dv_calvin_close(d);
}

/* MLLM samples are identified by their frame: one epoch shows each exactly once */
TEST(calvin_loader_epoch_and_split) {
    dv_calvin *d = open_tiny(dvt_calvin_tiny_dir());
    if (!d) return;
    char err[512] = "";
    dv_calvin_loader_opts o;
    small_opts(&o, DV_CALVIN_MLLM);
    o.batch = 4;
    o.mllm_every = 2;
    o.threads = 2;
    dv_calvin_loader *l = new_loader(d, &o);
    if (!l) { dv_calvin_close(d); return; }
    int64_t n = dv_calvin_loader_num_samples(l); /* 10 + 10 + 3 + 13 */
    CHECK(n == 36);
    int count[130] = {0}, first_epoch[36];
    for (int64_t i = 0; i < 2 * n / o.batch; i++) {
        dv_calvin_mllm_batch b;
        CHECK_MSG(dv_calvin_loader_get(l, i, &b, err, sizeof err) == 0, "%s", err);
        for (int64_t k = 0; k < b.B; k++) {
            int64_t p = i * o.batch + k;
            if (p < n) { count[b.frame[k]]++; first_epoch[p] = (int)b.frame[k]; }
            else CHECK(p - n < 36);
        }
        dv_calvin_batch_free(DV_CALVIN_MLLM, &b);
    }
    int bad = 0, inorder = 0;
    for (int f = 0; f < 130; f++) {
        bool sample = (f <= 39 && f % 2 == 0) || (f >= 100 && f <= 104 && f % 2 == 0) || (f >= 105 && (f - 105) % 2 == 0);
        bad += count[f] != (sample ? 1 : 0);
    }
    for (int p = 1; p < 36; p++) inorder += first_epoch[p] > first_epoch[p - 1];
    CHECK_MSG(bad == 0, "%d frames not seen exactly once in the first epoch", bad);
    CHECK(inorder < 30); /* shuffled */
    dv_calvin_loader_free(l);

    /* held-out split: 25% of 4 annotations = 1; training + held-out = everything, disjoint */
    int seen[2][4] = {{0}};
    for (int part = 0; part < 2; part++) {
        o.holdout = 0.25;
        o.heldout = part == 1;
        l = new_loader(d, &o);
        if (!l) continue;
        for (int64_t i = 0; i < (dv_calvin_loader_num_samples(l) + 3) / 4; i++) {
            dv_calvin_mllm_batch b;
            if (dv_calvin_loader_get(l, i, &b, err, sizeof err)) break;
            for (int64_t k = 0; k < b.B; k++)
                for (int a = 0; a < 4; a++)
                    if (b.frame[k] >= dv_calvin_annotation(d, a)->start && b.frame[k] <= dv_calvin_annotation(d, a)->end)
                        seen[part][a] = 1;
            dv_calvin_batch_free(DV_CALVIN_MLLM, &b);
        }
        dv_calvin_loader_free(l);
    }
    int held = 0;
    for (int a = 0; a < 4; a++) {
        CHECK(seen[0][a] + seen[1][a] == 1);
        held += seen[1][a];
    }
    CHECK(held == 1);
    /* the whole split held out is an error */
    o.holdout = 0.999;
    o.heldout = false;
    dv_calvin_loader *bad_l = NULL;
    CHECK(dv_calvin_loader_new(d, &o, &bad_l, err, sizeof err) == -1 && strstr(err, "training part"));
    o.holdout = 0;
    o.batch = 0;
    CHECK(dv_calvin_loader_new(d, &o, &bad_l, err, sizeof err) == -1 && strstr(err, "batch"));
    dv_calvin_close(d);
}

TEST(calvin_loader_worker_error) {
    /* a copy of the split where frame 104 lacks rgb_static: a batch that needs it fails with
       the file and key, and the loader goes on serving other batches */
    char dir[300], cmd[800], err[512] = "";
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/dv_calvin_err_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) return;
    snprintf(cmd, sizeof cmd, "cp -rs '%s'/. '%s'/ && rm '%s'/episode_0000104.npz", dvt_calvin_tiny_dir(), dir, dir);
    CHECK(system(cmd) == 0);
    CHECK(dvt_write_frame(dir, 104, "rgb_static", NULL, false) == 0);
    dv_calvin *d = open_tiny(dir);
    if (d) {
        dv_calvin_loader_opts o;
        small_opts(&o, DV_CALVIN_MLLM);
        o.batch = 1;
        o.mllm_every = 4; /* samples 0, 4, ..., 100, 104, 105, ... */
        o.threads = 2;
        dv_calvin_loader *l = new_loader(d, &o);
        int failures = 0, ok = 0;
        for (int64_t i = 0; l && i < dv_calvin_loader_num_samples(l); i++) {
            dv_calvin_mllm_batch b;
            if (dv_calvin_loader_get(l, i, &b, err, sizeof err) == 0) {
                ok++;
                dv_calvin_batch_free(DV_CALVIN_MLLM, &b);
            } else {
                failures++;
                CHECK_MSG(strstr(err, "episode_0000104.npz") && strstr(err, "rgb_static"), "%s", err);
            }
        }
        CHECK(failures == 1 && ok > 5);
        dv_calvin_loader_free(l);
        dv_calvin_close(d);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}
