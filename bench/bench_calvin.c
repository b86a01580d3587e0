/* bench/bench_calvin.c — build/bench calvin: how fast the CALVIN loader feeds the policies.
 *
 * Writes a CALVIN-layout split into a temporary folder (200x200 static and 84x84 gripper
 * cameras, 4 annotated windows of 65 frames: CALVIN's sizes; smooth images with a little
 * noise so deflate sees realistic data), then measures
 *   - npz decoding: MB/s of npz files read and decoded by dv_calvin_frame_load, for np.savez
 *     (stored) and np.savez_compressed (deflated) frames;
 *   - samples/s of 3D Diffuser Actor batches (B = 15, OpenHelix's defaults: crop 160,
 *     augmentation on) and DiT batches (B = 64, 224x224, latency augmentation) drawn in
 *     order from the prefetching loader with --threads workers (default 2);
 *   - the target, loading >= 10x the policy's training-step rate, turned into the
 *     slowest training step each loader keeps up with 10 times over (the policies are not
 *     built into this binary, so their step time is not measured here).
 * The machine is shared: numbers are noisy; the best of a few rounds is reported.
 *
 * Not here: reading the real dataset (point --dir at a split to time it instead).
 */
#include "bench/bench.h"
#include "data/calvin/dataset.h"
#include "data/calvin/npy.h"
#include "data/calvin/pickle.h"
#include "data/calvin/samples.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { NWIN = 4, WIN = 65, NFRAMES = NWIN * WIN, SH = 200, GH = 84 };

static int write_frame(const char *dir, int64_t id, bool compress, char *err, size_t errlen) {
    char path[1024];
    snprintf(path, sizeof path, "%s/episode_%07lld.npz", dir, (long long)id);
    double act[7], rel[7], robot[15], scene[24];
    double ph = 0.05 * id;
    for (int k = 0; k < 15; k++) robot[k] = 0.1 * sin(ph + k);
    robot[2] = 0.55 + 0.05 * sin(ph), robot[14] = (id / 20) % 2 ? -1 : 1;
    for (int k = 0; k < 7; k++) act[k] = robot[k] + 0.01, rel[k] = 0.5 * sin(ph + 0.3 * k);
    for (int k = 0; k < 24; k++) scene[k] = 0.01 * k;
    static uint8_t rs[SH * SH * 3], rg[GH * GH * 3];
    static float ds[SH * SH], dg[GH * GH];
    uint32_t lcg = (uint32_t)id * 2654435761u + 1;
    for (int y = 0; y < SH; y++)
        for (int x = 0; x < SH; x++) {
            for (int c = 0; c < 3; c++) {
                lcg = lcg * 1664525u + 1013904223u;
                rs[(y * SH + x) * 3 + c] = (uint8_t)((x + 2 * y + 40 * c + id) / 3 % 256 + (lcg >> 30));
            }
            ds[y * SH + x] = 3.5f + 0.004f * y + 0.001f * ((x * 7 + y) % 13);
        }
    for (int y = 0; y < GH; y++)
        for (int x = 0; x < GH; x++) {
            for (int c = 0; c < 3; c++) rg[(y * GH + x) * 3 + c] = (uint8_t)((3 * x + y + 50 * c + id) % 256);
            dg[y * GH + x] = 0.2f + 0.002f * x;
        }
    struct { const char *key; dv_npy a; } m[] = {
        {"actions", dv_npy_wrap(DV_NPY_F64, 1, (int64_t[]){7}, act)},
        {"rel_actions", dv_npy_wrap(DV_NPY_F64, 1, (int64_t[]){7}, rel)},
        {"robot_obs", dv_npy_wrap(DV_NPY_F64, 1, (int64_t[]){15}, robot)},
        {"scene_obs", dv_npy_wrap(DV_NPY_F64, 1, (int64_t[]){24}, scene)},
        {"rgb_static", dv_npy_wrap(DV_NPY_U8, 3, (int64_t[]){SH, SH, 3}, rs)},
        {"rgb_gripper", dv_npy_wrap(DV_NPY_U8, 3, (int64_t[]){GH, GH, 3}, rg)},
        {"depth_static", dv_npy_wrap(DV_NPY_F32, 2, (int64_t[]){SH, SH}, ds)},
        {"depth_gripper", dv_npy_wrap(DV_NPY_F32, 2, (int64_t[]){GH, GH}, dg)},
    };
    dv_npz_writer *w;
    if (dv_npz_writer_open(path, compress, &w, err, errlen)) return -1;
    for (size_t k = 0; k < sizeof m / sizeof m[0]; k++)
        if (dv_npz_writer_add(w, m[k].key, &m[k].a, err, errlen)) { dv_npz_writer_abort(w); return -1; }
    return dv_npz_writer_close(w, err, errlen);
}

static int write_split(const char *dir, bool compress, char *err, size_t errlen) {
    char path[1024];
    int64_t ep[2] = {0, NFRAMES - 1};
    snprintf(path, sizeof path, "%s/ep_start_end_ids.npy", dir);
    dv_npy a = dv_npy_wrap(DV_NPY_I64, 2, (int64_t[]){1, 2}, ep);
    if (dv_npy_save(path, &a, err, errlen)) return -1;
    for (int64_t id = 0; id < NFRAMES; id++)
        if (write_frame(dir, id, compress, err, errlen)) return -1;
    snprintf(path, sizeof path, "%s/lang_annotations", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/lang_annotations/auto_lang_ann.npy", dir);
    dv_pyarena *A = dv_pyarena_new();
    dv_pyobj *root = dv_py_dict(A), *info = dv_py_dict(A), *lang = dv_py_dict(A);
    dv_pyobj *indx = dv_py_list(A), *ann = dv_py_list(A), *task = dv_py_list(A);
    for (int i = 0; i < NWIN; i++) {
        dv_pyobj *pair[2] = {dv_py_int(A, i * WIN), dv_py_int(A, i * WIN + WIN - 1)};
        dv_py_append(A, indx, dv_py_tuple(A, 2, pair));
        dv_py_append(A, ann, dv_py_str(A, "open the drawer"));
        dv_py_append(A, task, dv_py_str(A, "open_drawer"));
    }
    dv_py_set(A, info, "indx", indx);
    dv_py_set(A, lang, "ann", ann);
    dv_py_set(A, lang, "task", task);
    dv_py_set(A, root, "info", info);
    dv_py_set(A, root, "language", lang);
    int rc = dv_npy_save_pickled(path, root, err, errlen);
    dv_pyarena_free(A);
    return rc;
}

/* MB/s of npz files decoded by full frame loads (best of 3 passes) */
static double decode_rate(dv_calvin *d, int64_t nframes, double *decoded_mb_s) {
    double best = 0, best_dec = 0;
    char err[512];
    for (int r = 0; r < 3; r++) {
        int64_t b0 = dv_calvin_bytes_read(d);
        double t = dv_bench_now(), raw = 0;
        for (int64_t id = 0; id < nframes; id++) {
            dv_calvin_frame f;
            if (dv_calvin_frame_load(d, id, &f, err, sizeof err)) { fprintf(stderr, "bench calvin: %s\n", err); return 0; }
            raw += 3.0 * (f.static_h * f.static_w + f.gripper_h * f.gripper_w) +
                   4.0 * (f.static_h * f.static_w + f.gripper_h * f.gripper_w);
            dv_calvin_frame_free(&f);
        }
        double dt = dv_bench_now() - t, mb = (dv_calvin_bytes_read(d) - b0) / 1e6;
        if (mb / dt > best) best = mb / dt, best_dec = raw / 1e6 / dt;
    }
    *decoded_mb_s = best_dec;
    return best;
}

/* samples/s of batches drawn in order (the first, which waits for a cold start, not timed) */
static double loader_rate(dv_calvin *d, dv_calvin_kind kind, int64_t B, int threads, int nbatches) {
    dv_calvin_loader_opts o;
    dv_calvin_loader_defaults(&o, kind);
    o.batch = B;
    o.threads = threads;
    o.seed = 1;
    dv_calvin_loader *l;
    char err[512];
    if (dv_calvin_loader_new(d, &o, &l, err, sizeof err)) { fprintf(stderr, "bench calvin: %s\n", err); return 0; }
    union { dv_calvin_dit_batch dit; dv_calvin_3dda_batch dda; } b;
    double t = 0;
    for (int i = 0; i <= nbatches; i++) {
        if (i == 1) t = dv_bench_now();
        if (dv_calvin_loader_get(l, i, &b, err, sizeof err)) { fprintf(stderr, "bench calvin: %s\n", err); break; }
        dv_calvin_batch_free(kind, &b);
    }
    double dt = dv_bench_now() - t;
    dv_calvin_loader_free(l);
    return nbatches * B / dt;
}

int dv_bench_calvin(int argc, char **argv) {
    int threads = dv_bench_threads_arg(argc, argv);
    if (threads < 0) return 1;
    if (threads == 0) threads = 2;
    const char *user_dir = NULL;
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc) user_dir = argv[++i];
        if (!strcmp(argv[i], "--quick")) quick = true;
    }
    char err[512], stored[512], deflated[512];
    const char *tmp = getenv("TMPDIR");
    snprintf(stored, sizeof stored, "%s/dv_bench_calvin_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    snprintf(deflated, sizeof deflated, "%s/dv_bench_calvin_z_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int rc = 1;
    dv_calvin *d = NULL, *dz = NULL;
    if (!user_dir) {
        if (!mkdtemp(stored) || !mkdtemp(deflated)) { perror("bench calvin: mkdtemp"); return 1; }
        double t = dv_bench_now();
        if (write_split(stored, false, err, sizeof err) || write_split(deflated, true, err, sizeof err)) {
            fprintf(stderr, "bench calvin: writing the synthetic split: %s\n", err);
            goto done;
        }
        printf("synthetic split: %d frames (200x200 + 84x84 cameras), %d windows, written twice (stored, deflated) in %.1f s\n",
               NFRAMES, NWIN, dv_bench_now() - t);
    }
    if (dv_calvin_open(user_dir ? user_dir : stored, &d, err, sizeof err) ||
        (!user_dir && dv_calvin_open(deflated, &dz, err, sizeof err))) {
        fprintf(stderr, "bench calvin: %s\n", err);
        goto done;
    }
    int64_t nframes = user_dir ? 0 : NFRAMES;
    if (!user_dir) {
        double dec, decz, mb = decode_rate(d, nframes, &dec), mbz = decode_rate(dz, nframes, &decz);
        printf("npz decode (1 thread): stored %.0f MB/s of files (%.0f MB/s of arrays), deflated %.0f MB/s of files (%.0f MB/s of arrays)\n",
               mb, dec, mbz, decz);
    }
    int nb3 = quick ? 4 : 12, nbd = quick ? 2 : 6;
    double r3 = loader_rate(d, DV_CALVIN_3DDA, 15, threads, nb3);
    double rd = loader_rate(d, DV_CALVIN_DIT, 64, threads, nbd);
    printf("3DDA batches (B=15, 2 cameras 160x160 RGB + points, augmented): %.0f samples/s = %.1f batches/s with %d threads\n",
           r3, r3 / 15, threads);
    printf("DiT  batches (B=64, 224x224 RGB x2 + depth x2, latency aug.):   %.0f samples/s = %.1f batches/s with %d threads\n",
           rd, rd / 64, threads);
    printf("target: loading >= 10x the policy's training-step rate. The policies are not built into build/bench,\n"
           "so their step is not measured here: 3DDA loading stays 10x ahead of any training step slower than %.0f ms\n"
           "(B=15), DiT loading of any step slower than %.0f ms (B=64). Compare with build/dualvla train's step time.\n",
           r3 > 0 ? 10 * 15 / r3 * 1e3 : 0, rd > 0 ? 10 * 64 / rd * 1e3 : 0);
    rc = 0;
done:
    dv_calvin_close(d);
    dv_calvin_close(dz);
    if (!user_dir) {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", stored, deflated);
        if (system(cmd) != 0) fprintf(stderr, "bench calvin: could not remove %s\n", stored);
    }
    return rc;
}
