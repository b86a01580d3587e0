/* tools/dit_session.c — the run configuration of the DiT tools, batch -> specialist inputs,
 * checkpoint config and data folder (see dit_session.h). */
#include "tools/dit_session.h"
#include "tensor/cuda.h"
#include "models/dit/rollout.h"
#include "tensor/ops.h"
#include "tensor/safetensors.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


int dv_train_config_preset(dv_train_config *c, const char *name, char *err, size_t errlen) {
    dv_train_config t;
    memset(&t, 0, sizeof t);
    if (dv_dit_config_preset(&t.model, name, err, errlen)) return -1;
    /* the paper's recipe (RoboDual App. B; train_spacialist_calvin.py) */
    t.steps = 20000, t.batch = 64, t.lr = 1e-4, t.weight_decay = 1e-3, t.no_decay_norms = 1;
    t.warmup_steps = 1000, t.cosine_cycles = 0.5, t.grad_clip = 1.0, t.ema_decay = 0.0;
    t.max_latency = t.model.gen_chunk - 1;   /* random.randint(0, chunk - 1) */
    t.holdout = 0.05, t.eval_samples = 64, t.seed = 0;
    snprintf(t.generalist, sizeof t.generalist, "standin");
    t.standin = dv_standin_config_default();
    t.standin.bins = t.model.gen_bins > 0 ? t.model.gen_bins : 256;
    if (!strcmp(name, "released")) {
        /* the released script: every parameter decayed, num_cycles 0.4, an EMA of 0.9999 */
        t.no_decay_norms = 0, t.cosine_cycles = 0.4, t.ema_decay = 0.9999;
    } else if (!strcmp(name, "tiny")) {
        /* a few minutes on 2 cores: small batches, a short warm-up, a larger step size */
        t.steps = 600, t.batch = 16, t.lr = 1e-3, t.warmup_steps = 30;
        t.holdout = 0.1, t.eval_samples = 32;
    }
    *c = t;
    return 0;
}

/* ---- the train.* / standin.* keys -------------------------------------------------------- */
typedef enum { T_I64, T_INT, T_F64, T_U64, T_PATH, T_GEN } tkind;
typedef struct { const char *key; tkind k; size_t off; double lo, hi; const char *help; } tfield;
#define TF(key, field, kd, lo, hi, help) {key, kd, offsetof(dv_train_config, field), lo, hi, help}
static const tfield TFIELDS[] = {
    TF("train.steps", steps, T_I64, 1, 1e12, "optimiser steps of the run"),
    TF("train.batch", batch, T_I64, 1, 1e7, "samples per step"),
    TF("train.lr", lr, T_F64, 0, 10, "AdamW learning rate"),
    TF("train.weight_decay", weight_decay, T_F64, 0, 10, "AdamW decoupled weight decay"),
    TF("train.no_decay_norms", no_decay_norms, T_INT, 0, 1, "1: no decay on norms/biases/positions/queries"),
    TF("train.warmup_steps", warmup_steps, T_I64, 0, 1e12, "linear warm-up steps"),
    TF("train.cosine_cycles", cosine_cycles, T_F64, 0, 100, "cosine cycles (0.5: down to 0)"),
    TF("train.grad_clip", grad_clip, T_F64, 0, 1e12, "max global grad norm (0: off)"),
    TF("train.ema_decay", ema_decay, T_F64, 0, 0.999999999, "EMA decay (0: no EMA)"),
    TF("train.max_latency", max_latency, T_INT, 0, 1e6, "latency augmentation tau in [0, this]"),
    TF("train.holdout", holdout, T_F64, 0, 0.9, "held-out fraction of annotations"),
    TF("train.eval_samples", eval_samples, T_I64, 0, 1e7, "held-out samples for the action error"),
    TF("train.seed", seed, T_U64, 0, 1.8e19, "seed of init, data order, noise"),
    TF("train.generalist", generalist, T_GEN, 0, 0, "standin (no generalist tower yet)"),
    TF("standin.bins", standin.bins, T_INT, 2, 65536, "generalist stand-in: action bins"),
    TF("standin.corrupt", standin.corrupt, T_F64, 0, 1, "stand-in: P(random bin) per dimension"),
    TF("standin.latents", standin.latents_path, T_PATH, 0, 0, "stand-in latents file (none: zeros)"),
};
#undef TF
enum { NTFIELDS = sizeof TFIELDS / sizeof TFIELDS[0] };

static char *ds_trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

/* The model lines of a segment (the lines between two `preset` lines) are handed to
 * dv_dit_config_parse together, as a text where every other line is blank: its checks see
 * the segment's final values, and its messages carry the file's line numbers. */
static int parse_model_lines(dv_dit_config *m, char **lines, const bool *is_model, int from,
                             int to, const char *what, char *err, size_t errlen) {
    size_t len = 1;
    bool any = false;
    for (int i = 0; i < to; i++) {
        if (i >= from && is_model[i]) len += strlen(lines[i]), any = true;
        len++;
    }
    if (!any) return 0;
    char *t = malloc(len), *q = t;
    for (int i = 0; i < to; i++) {
        if (i >= from && is_model[i]) q += sprintf(q, "%s", lines[i]);
        *q++ = '\n';
    }
    *q = 0;
    int rc = dv_dit_config_parse(m, t, what, err, errlen);
    free(t);
    return rc;
}

int dv_train_config_parse(dv_train_config *cfg, const char *text, const char *what, char *err,
                          size_t errlen) {
    dv_train_config c = *cfg;
    char *buf = strdup(text ? text : "");
    int nlines = 1;
    for (char *p = buf; *p; p++) nlines += *p == '\n';
    char **lines = malloc(sizeof(char *) * nlines);
    bool *is_model = calloc(nlines, sizeof(bool));
    int n = 0;
    for (char *p = buf, *next; p; p = next) {
        next = strchr(p, '\n');
        if (next) *next++ = 0;
        lines[n++] = p;
    }
    int rc = 0, seg = 0;
    for (int li = 0; li < n && rc == 0; li++) {
        int line = li + 1;
        char copy[2048];
        snprintf(copy, sizeof copy, "%s", lines[li]);
        char *hash = strchr(copy, '#');
        if (hash) *hash = 0;
        char *s = ds_trim(copy);
        if (!*s) continue;
        char *eq = strchr(s, '=');
        char key[128] = "";
        if (eq) {
            *eq = 0;
            snprintf(key, sizeof key, "%s", ds_trim(s));
        }
        if (eq && !strcmp(key, "preset")) {
            /* finish (check) the segment before, then reset everything */
            if (parse_model_lines(&c.model, lines, is_model, seg, li, what, err, errlen)) { rc = -1; break; }
            seg = li + 1;
            char *val = ds_trim(eq + 1);
            char e2[256];
            if (dv_train_config_preset(&c, val, e2, sizeof e2))
                rc = dv_errf(err, errlen, "%s:%d: key 'preset': %s", what, line, e2);
            continue;
        }
        if (!eq || (strncmp(key, "train.", 6) && strncmp(key, "standin.", 8))) {
            is_model[li] = true;   /* a model key, or a malformed line the DiT parser reports */
            continue;
        }
        char *val = ds_trim(eq + 1);
        const tfield *f = NULL;
        for (int i = 0; i < NTFIELDS; i++)
            if (!strcmp(TFIELDS[i].key, key)) f = &TFIELDS[i];
        if (!f) { rc = dv_errf(err, errlen, "%s:%d: unknown key '%s'", what, line, key); break; }
        void *dst = (char *)&c + f->off;
        if (f->k == T_GEN) {
            if (strcmp(val, "standin")) {
                rc = dv_errf(err, errlen, "%s:%d: key '%s': '%s' is not available: the generalist "
                             "tower does not exist yet; the only source is 'standin' "
                             "(models/dit/standin.h)", what, line, key, val);
                break;
            }
            snprintf((char *)dst, sizeof c.generalist, "%s", val);
            continue;
        }
        if (f->k == T_PATH) {
            if (!strcmp(val, "none")) val = "";
            if (strlen(val) >= sizeof c.standin.latents_path) {
                rc = dv_errf(err, errlen, "%s:%d: key '%s': path too long", what, line, key);
                break;
            }
            snprintf((char *)dst, sizeof c.standin.latents_path, "%s", val);
            continue;
        }
        char *end = NULL;
        errno = 0;
        double v = f->k == T_F64 ? strtod(val, &end) : (double)strtoull(val, &end, 10);
        bool bad = !*val || *end || errno || v != v || v < f->lo || v > f->hi ||
                   (f->k != T_F64 && val[0] == '-');
        if (bad) {
            rc = dv_errf(err, errlen, "%s:%d: key '%s': '%s' is not %s in [%g, %g] (%s)", what, line,
                         key, val, f->k == T_F64 ? "a number" : "an integer", f->lo, f->hi, f->help);
            break;
        }
        if (f->k == T_I64) *(int64_t *)dst = (int64_t)strtoll(val, NULL, 10);
        else if (f->k == T_INT) *(int *)dst = (int)v;
        else if (f->k == T_U64) *(uint64_t *)dst = strtoull(val, NULL, 10);
        else *(double *)dst = v;
    }
    if (rc == 0) rc = parse_model_lines(&c.model, lines, is_model, seg, n, what, err, errlen);
    free(lines);
    free(is_model);
    free(buf);
    if (rc == 0) {
        if (c.max_latency > c.model.gen_chunk)
            rc = dv_errf(err, errlen, "%s: train.max_latency = %d exceeds gen_chunk = %d", what,
                         c.max_latency, c.model.gen_chunk);
        else if (c.warmup_steps > c.steps)
            rc = dv_errf(err, errlen, "%s: train.warmup_steps = %lld exceeds train.steps = %lld", what,
                         (long long)c.warmup_steps, (long long)c.steps);
    }
    if (rc == 0) *cfg = c;
    return rc;
}

char *dv_train_config_format(const dv_train_config *c) {
    char *model = dv_dit_config_format(&c->model);
    size_t cap = strlen(model) + 4096, n = 0;
    char *out = malloc(cap);
    n += snprintf(out + n, cap - n, "%s\n# training (tools/dit_session.h)\n", model);
    free(model);
    for (int i = 0; i < NTFIELDS; i++) {
        const tfield *f = &TFIELDS[i];
        const void *src = (const char *)c + f->off;
        char v[1100];
        if (f->k == T_I64) snprintf(v, sizeof v, "%lld", (long long)*(const int64_t *)src);
        else if (f->k == T_INT) snprintf(v, sizeof v, "%d", *(const int *)src);
        else if (f->k == T_U64) snprintf(v, sizeof v, "%llu", (unsigned long long)*(const uint64_t *)src);
        else if (f->k == T_F64) snprintf(v, sizeof v, "%.9g", *(const double *)src);
        else if (f->k == T_GEN) snprintf(v, sizeof v, "%s", (const char *)src);
        else snprintf(v, sizeof v, "%s", *(const char *)src ? (const char *)src : "none");
        n += snprintf(out + n, cap - n, "%-19s = %-18s # %s\n", f->key, v, f->help);
        DV_ASSERT(n < cap, "dv_train_config_format: buffer too small");
    }
    return out;
}

/* the next non-empty, non-comment line of *p (comments stripped), or NULL */
static const char *next_line(const char **p, char *buf, size_t n) {
    while (**p) {
        const char *s = *p, *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        *p = e ? e + 1 : s + len;
        snprintf(buf, n, "%.*s", (int)len, s);
        char *h = strchr(buf, '#');
        if (h) *h = 0;
        char *t = ds_trim(buf);
        if (*t) { memmove(buf, t, strlen(t) + 1); return buf; }
    }
    return NULL;
}

static bool ignored(const char *line, const char *const *ignore) {
    for (int i = 0; ignore && ignore[i]; i++) {
        size_t k = strlen(ignore[i]);
        if (!strncmp(line, ignore[i], k) && (line[k] == ' ' || line[k] == '=')) return true;
    }
    return false;
}

int dv_train_config_diff(const char *ta, const char *tb, const char *const *ignore, char *a,
                         char *b, size_t n) {
    const char *pa = ta, *pb = tb;
    for (;;) {
        const char *la, *lb;
        do la = next_line(&pa, a, n); while (la && ignored(la, ignore));
        do lb = next_line(&pb, b, n); while (lb && ignored(lb, ignore));
        if (!la && !lb) return 0;
        if (!la) snprintf(a, n, "(nothing)");
        if (!lb) snprintf(b, n, "(nothing)");
        if (!la || !lb || strcmp(a, b)) return 1;
    }
}

void dv_train_loader_opts(const dv_train_config *c, bool heldout, int64_t batch,
                          dv_calvin_loader_opts *o) {
    dv_calvin_loader_defaults(o, DV_CALVIN_DIT);
    o->batch = batch;
    o->seed = c->seed;
    o->threads = 1;               /* one prefetch worker: the model uses the cores */
    o->holdout = c->holdout;
    o->heldout = heldout;
    o->dit.chunk = c->model.chunk;
    o->dit.gen_chunk = c->model.gen_chunk;
    o->dit.max_latency = c->max_latency;
    o->dit.static_frames = c->model.static_frames;
    o->dit.image_size = c->model.image_size;
    o->dit.proprio_dim = c->model.proprio_dim;
}

int dv_train_inputs(const dv_dit_config *cfg, const dv_standin *s, const dv_calvin_dit_batch *b,
                    dv_rng *rng, dv_pool *pool, dv_dit_inputs *in, char *err, size_t errlen) {
    memset(in, 0, sizeof *in);
    in->rgb_static = b->rgb_static;
    in->rgb_gripper = cfg->use_gripper ? b->rgb_gripper : NULL;
    in->depth_static = cfg->use_depth ? b->depth_static : NULL;
    in->depth_gripper = cfg->use_depth ? b->depth_gripper : NULL;
    in->proprio = b->proprio;
    /* what the generalist, run tau frames ago, says; then only its still-future part */
    dv_tensor *gen = dv_pool_add(pool, dv_standin_actions(s, b->gen_actions, rng));
    in->gen_actions = dv_pool_add(pool, dv_dit_shift_window_batch(gen, b->tau));
    dv_tensor *lat = NULL;
    if (dv_standin_latents(s, b->frame, b->B, &lat, err, errlen)) return -1;
    in->gen_latents = lat ? dv_pool_add(pool, lat) : NULL;
    return 0;
}

int dv_session_device(const char *s, dv_device *d, char *err, size_t errlen) {
    char why[256];
    if (dv_device_parse(s, d, why, sizeof why)) return dv_errf(err, errlen, "--device: %s", why);
    if (d->type == DV_CPU) return 0;
    if (!dv_cuda_available()) return dv_errf(err, errlen, "--device %s: %s", s, dv_cuda_unavailable_reason());
    if (d->index >= dv_cuda_device_count())
        return dv_errf(err, errlen, "--device %s: this machine has %d CUDA device(s) (cuda:0 .. cuda:%d)", s,
                       dv_cuda_device_count(), dv_cuda_device_count() - 1);
    return 0;
}

int dv_ckpt_read_config(const char *path, char **text, char *err, size_t errlen) {
    *text = NULL;
    dv_st_file *f = NULL;
    if (dv_st_open(path, &f, err, errlen)) return -1;
    const char *mark = dv_st_meta(f, "dualvla.checkpoint"), *cfg = dv_st_meta(f, "dualvla.config");
    int rc = 0;
    if (!mark) rc = dv_errf(err, errlen, "%s: not a dualvla checkpoint (no __metadata__ 'dualvla.checkpoint')", path);
    else if (!cfg) rc = dv_errf(err, errlen, "%s: the checkpoint holds no config ('dualvla.config')", path);
    else *text = strdup(cfg);
    dv_st_close(f);
    return rc;
}

int dv_train_open_data(const char *dir, dv_calvin **train, dv_calvin **val, char *err,
                       size_t errlen) {
    char probe[1200];
    struct stat sb;
    *train = NULL;
    if (val) *val = NULL;
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode))
        return dv_errf(err, errlen, "--data %s: not a folder", dir);
    snprintf(probe, sizeof probe, "%s/ep_start_end_ids.npy", dir);
    if (!stat(probe, &sb)) return dv_calvin_open(dir, train, err, errlen);
    snprintf(probe, sizeof probe, "%s/training/ep_start_end_ids.npy", dir);
    if (stat(probe, &sb))
        return dv_errf(err, errlen, "--data %s: neither it nor %s/training holds a CALVIN split "
                    "(ep_start_end_ids.npy)", dir, dir);
    snprintf(probe, sizeof probe, "%s/training", dir);
    if (dv_calvin_open(probe, train, err, errlen)) return -1;
    snprintf(probe, sizeof probe, "%s/validation/ep_start_end_ids.npy", dir);
    if (val && !stat(probe, &sb)) {
        snprintf(probe, sizeof probe, "%s/validation", dir);
        if (dv_calvin_open(probe, val, err, errlen)) {
            dv_calvin_close(*train);
            *train = NULL;
            return -1;
        }
    }
    return 0;
}
