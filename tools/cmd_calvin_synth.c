/* tools/cmd_calvin_synth.c — `dualvla calvin-synth`: write a synthetic dataset in CALVIN's
 * on-disk layout (data/calvin/synth.h), the default data of the README's main command.
 *
 *   dualvla calvin-synth --out DIR [--episodes N] [--seed S] [--frames-per-episode F]
 *                        [--val-episodes V] [--compress] [--force] [--threads T]
 *                        [--camera-config FILE]
 */
#include "tools/commands.h"
#include "data/calvin/geometry.h"
#include "data/calvin/synth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: dualvla calvin-synth --out DIR [options]\n\n"
            "Writes DIR/training and DIR/validation in CALVIN's layout (episode_%%07d.npz frames,\n"
            "ep_start_end_ids.npy, scene_info.npy, statistics.yaml, lang_annotations/auto_lang_ann.npy):\n"
            "scripted drawer / sliding door / lift / push / rotate tasks rendered by a small rasteriser.\n\n"
            "  --out DIR                 where to write (must be empty or missing unless --force)\n"
            "  --episodes N              episodes in all (default 10)\n"
            "  --seed S                  the dataset is a pure function of the options and S (default 0)\n"
            "  --frames-per-episode F    frames per episode, >= 16 (default 64)\n"
            "  --val-episodes V          of which validation (default max(1, N/10) for N >= 2)\n"
            "  --compress                deflate the npz members (np.savez_compressed): ~40%% smaller, ~10x slower\n"
            "  --force                   write into a non-empty DIR (files of the same name are replaced)\n"
            "  --threads T               render/write threads (default: max(4, OpenMP's))\n"
            "  --camera-config FILE      camera overrides (see data/calvin/geometry.c)\n");
}

/* a whole-string integer in [lo, hi]; 0 or -1 */
static int parse_int(const char *flag, const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "dualvla calvin-synth: %s expects an integer in [%lld, %lld], got '%s'\n", flag, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int dv_cmd_calvin_synth(int argc, char **argv) {
    dv_calvin_synth_opts o;
    dv_calvin_synth_defaults(&o);
    const char *out = NULL, *camcfg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long long v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        if (!strcmp(a, "--compress")) { o.compress = true; continue; }
        if (!strcmp(a, "--force")) { o.force = true; continue; }
        if (i + 1 >= argc) {
            fprintf(stderr, "dualvla calvin-synth: unknown option or missing value: '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
        const char *val = argv[++i];
        if (!strcmp(a, "--out")) out = val;
        else if (!strcmp(a, "--camera-config")) camcfg = val;
        else if (!strcmp(a, "--episodes")) { if (parse_int(a, val, 1, 1000000, &v)) return 2; o.episodes = (int)v; }
        else if (!strcmp(a, "--seed")) { if (parse_int(a, val, 0, INT64_MAX, &v)) return 2; o.seed = (uint64_t)v; }
        else if (!strcmp(a, "--frames-per-episode")) { if (parse_int(a, val, 16, 100000, &v)) return 2; o.frames_per_episode = (int)v; }
        else if (!strcmp(a, "--val-episodes")) { if (parse_int(a, val, 0, 1000000, &v)) return 2; o.val_episodes = (int)v; }
        else if (!strcmp(a, "--threads")) { if (parse_int(a, val, 0, 1024, &v)) return 2; o.threads = (int)v; }
        else {
            fprintf(stderr, "dualvla calvin-synth: unknown option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!out) {
        fprintf(stderr, "dualvla calvin-synth: --out DIR is required\n\n");
        usage(stderr);
        return 2;
    }
    char err[1024];
    if (camcfg && dv_calvin_camera_config(camcfg, err, sizeof err)) {
        fprintf(stderr, "dualvla calvin-synth: %s\n", err);
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    dv_calvin_synth_report rep;
    if (dv_calvin_synth(out, &o, &rep, err, sizeof err)) {
        fprintf(stderr, "dualvla calvin-synth: %s\n", err);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("calvin-synth: %s: %d training + %d validation episodes, %lld + %lld frames, %.1f MB in %.2f s (seed %llu)\n",
           out, rep.train_episodes, rep.val_episodes, (long long)rep.train_frames, (long long)rep.val_frames,
           rep.bytes / 1e6, secs, (unsigned long long)o.seed);
    return 0;
}
