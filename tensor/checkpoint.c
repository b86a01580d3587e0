/* tensor/checkpoint.c — training checkpoints on top of tensor/safetensors.c (see checkpoint.h).
 *
 * Saving is a dv_st_save of the tensors with the step, rng states and config in __metadata__.
 * Loading is two passes: first check everything (marker, step, every rng and tensor asked for
 * present with the right dtype and shape, nothing extra in the file), then copy. A failed load
 * therefore changes nothing.
 *
 * Tensors on a GPU: saving first copies every device tensor to the host (so the save needs host
 * memory for the device-resident part of the checkpoint, once), loading reads the file's bytes
 * on the host and copies each tensor to its device. A run may therefore resume on another device
 * than the one that saved it.
 */
#define _GNU_SOURCE /* vasprintf */
#include "tensor/checkpoint.h"
#include "tensor/cuda.h"
#include "tensor/safetensors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MARK "dualvla.checkpoint"
#define KEY_STEP "dualvla.step"
#define KEY_CONFIG "dualvla.config"
#define KEY_RNG "dualvla.rng." /* + the rng's name */

static char *xprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) dv_panic("checkpoint: out of memory");
    va_end(ap);
    return s;
}

/* strict decimal: digits only, no sign or spaces, fits in uint64; *end is where it stopped */
static bool parse_u64(const char *s, uint64_t *out, const char **end) {
    uint64_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9') return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    *end = p;
    return true;
}

int dv_checkpoint_save(const char *path, const dv_checkpoint *ck, char *err, size_t errlen) {
    int n = ck->n_tensors, nm = 0;
    const char **names = malloc(((size_t)n + 1) * sizeof *names);
    dv_tensor **ts = malloc(((size_t)n + 1) * sizeof *ts);
    dv_st_kv *meta = malloc(((size_t)ck->n_rngs + 3) * sizeof *meta);
    char **owned = malloc((2 * (size_t)ck->n_rngs + 1) * sizeof *owned); /* step, rng keys and values */
    int nowned = 0, rc = 0;
    if (!names || !ts || !meta || !owned) dv_panic("checkpoint: out of memory");
    for (int i = 0; i < n; i++) {
        names[i] = ck->tensors[i].name;
        dv_tensor *t = ck->tensors[i].tensor;
        ts[i] = t && t->device.type != DV_CPU ? dv_tensor_to(t, DV_DEVICE_CPU) : dv_retain(t);
    }
    meta[nm++] = (dv_st_kv){KEY_MARK, "1"};
    meta[nm++] = (dv_st_kv){KEY_STEP, owned[nowned++] = xprintf("%lld", (long long)ck->step)};
    for (int k = 0; k < ck->n_rngs && !rc; k++) {
        const dv_ckpt_rng *r = &ck->rngs[k];
        if (!r->name || !*r->name || !r->rng) {
            rc = dv_errf(err, errlen, "%s: checkpoint save: rng %d has no name or no state", path, k);
            break;
        }
        char *key = owned[nowned++] = xprintf(KEY_RNG "%s", r->name);
        char *val = xprintf("%llu:%llu", (unsigned long long)r->rng->seed, (unsigned long long)r->rng->offset);
        owned[nowned++] = val;
        meta[nm++] = (dv_st_kv){key, val};
    }
    if (ck->config) meta[nm++] = (dv_st_kv){KEY_CONFIG, ck->config};
    if (!rc) rc = dv_st_save(path, names, ts, n, meta, nm, err, errlen);
    for (int k = 0; k < nowned; k++) free(owned[k]);
    for (int i = 0; i < n; i++) dv_release(ts[i]);
    free(owned); free(meta); free(ts); free(names);
    return rc;
}

/* the first pass: everything the copy pass needs, checked */
static int check(dv_st_file *f, const char *path, const dv_checkpoint *ck, int *idx, dv_rng *rng_vals,
                 int64_t *step, char *err, size_t errlen) {
    const char *mark = dv_st_meta(f, KEY_MARK);
    if (!mark || strcmp(mark, "1"))
        return dv_errf(err, errlen, "%s: not a dualvla checkpoint (expected __metadata__ \"" KEY_MARK "\": \"1\", found %s%s%s)",
                       path, mark ? "\"" : "", mark ? mark : "none", mark ? "\"" : "");
    /* step */
    const char *s = dv_st_meta(f, KEY_STEP), *end;
    uint64_t u;
    bool neg = s && s[0] == '-';
    if (!s || !parse_u64(s + neg, &u, &end) || *end || u > (uint64_t)INT64_MAX)
        return dv_errf(err, errlen, "%s: __metadata__ \"" KEY_STEP "\" is %s%s%s, expected a decimal integer", path,
                       s ? "\"" : "", s ? s : "missing", s ? "\"" : "");
    *step = neg ? -(int64_t)u : (int64_t)u;

    /* rngs: each asked for is present and well formed; none in the file is unasked for */
    for (int k = 0; k < ck->n_rngs; k++) {
        if (!ck->rngs[k].name || !ck->rngs[k].rng)
            return dv_errf(err, errlen, "%s: checkpoint load: rng %d has no name or no state", path, k);
        char *key = xprintf(KEY_RNG "%s", ck->rngs[k].name);
        const char *v = dv_st_meta(f, key);
        uint64_t seed = 0, off = 0;
        int rc = 0;
        if (!v) rc = dv_errf(err, errlen, "%s: no state for rng '%s' (__metadata__ \"%s\")", path, ck->rngs[k].name, key);
        else if (!parse_u64(v, &seed, &end) || *end != ':' || !parse_u64(end + 1, &off, &end) || *end)
            rc = dv_errf(err, errlen, "%s: __metadata__ \"%s\" is \"%s\", expected \"<seed>:<offset>\" in decimal", path, key, v);
        free(key);
        if (rc) return rc;
        rng_vals[k] = (dv_rng){seed, off};
    }
    for (int i = 0; i < dv_st_meta_count(f); i++) {
        const char *key = dv_st_meta_at(f, i).key;
        if (strncmp(key, KEY_RNG, strlen(KEY_RNG))) continue;
        bool asked = false;
        for (int k = 0; k < ck->n_rngs && !asked; k++) asked = !strcmp(key + strlen(KEY_RNG), ck->rngs[k].name);
        if (!asked)
            return dv_errf(err, errlen, "%s: the file has rng '%s' that the run does not have (%d rngs asked for)", path,
                           key + strlen(KEY_RNG), ck->n_rngs);
    }

    /* tensors: each asked for once, present, same dtype and shape; none in the file unasked for */
    int nf = dv_st_count(f);
    char *claimed = calloc((size_t)nf + 1, 1);
    if (!claimed) dv_panic("checkpoint: out of memory");
    int rc = 0;
    for (int i = 0; i < ck->n_tensors && !rc; i++) {
        const char *name = ck->tensors[i].name;
        const dv_tensor *t = ck->tensors[i].tensor;
        int j = name ? dv_st_find(f, name) : -1;
        if (!name || !t) { rc = dv_errf(err, errlen, "%s: checkpoint load: tensor %d has no name or no tensor", path, i); break; }
        if (j < 0) { rc = dv_errf(err, errlen, "%s: no tensor '%s' in the checkpoint (%d tensors in the file)", path, name, nf); break; }
        if (claimed[j]) { rc = dv_errf(err, errlen, "%s: checkpoint load: tensor '%s' asked for twice", path, name); break; }
        claimed[j] = 1;
        idx[i] = j;
        const dv_st_info *in = dv_st_info_at(f, j);
        bool same = in->ndim == t->ndim;
        for (int d = 0; same && d < t->ndim; d++) same = in->shape[d] == t->shape[d];
        char fs[200] = "(";
        size_t o = 1;
        for (int d = 0; d < in->ndim && o < sizeof fs; d++)
            o += (size_t)snprintf(fs + o, sizeof fs - o, d ? ", %lld" : "%lld", (long long)in->shape[d]);
        if (o < sizeof fs) snprintf(fs + o, sizeof fs - o, ")");
        if (in->dtype != (int)t->dtype)
            rc = dv_errf(err, errlen, "%s: tensor '%s': the file has dtype %s, the run's tensor is %s", path, name,
                         in->dtype_name, dv_st_dtype_name(t->dtype));
        else if (!same)
            rc = dv_errf(err, errlen, "%s: tensor '%s': the file has shape %s, the run's tensor is %s", path, name, fs,
                         dv_shape_str(t, NULL, 0));
    }
    for (int j = 0; j < nf && !rc; j++)
        if (!claimed[j])
            rc = dv_errf(err, errlen, "%s: the file has tensor '%s' that the run does not have (%d asked for, %d in the file)",
                         path, dv_st_info_at(f, j)->name, ck->n_tensors, nf);
    free(claimed);
    return rc;
}

int dv_checkpoint_load(const char *path, dv_checkpoint *ck, char **config, char *err, size_t errlen) {
    if (config) *config = NULL;
    dv_st_file *f;
    if (dv_st_open(path, &f, err, errlen)) return -1;
    int *idx = malloc(((size_t)ck->n_tensors + 1) * sizeof *idx);
    dv_rng *rng_vals = malloc(((size_t)ck->n_rngs + 1) * sizeof *rng_vals);
    if (!idx || !rng_vals) dv_panic("checkpoint: out of memory");
    int64_t step = 0;
    int rc = check(f, path, ck, idx, rng_vals, &step, err, errlen);
    for (int i = 0; i < ck->n_tensors && !rc; i++) {
        dv_tensor *src;
        rc = dv_st_load(f, idx[i], 0, &src, err, errlen); /* a view of the mapping: no extra copy */
        if (rc) break; /* cannot happen after check(): the dtype is one of ours */
        dv_tensor *dst = ck->tensors[i].tensor;
        if (dst->device.type != DV_CPU) { /* host bytes -> the tensor's device */
            dv_tensor *up = dv_tensor_to(src, dst->device);
            dv_release(src);
            src = up;
        }
        dv_copy_(dst, src);
        dv_release(src);
    }
    if (!rc) {
        for (int k = 0; k < ck->n_rngs; k++) *ck->rngs[k].rng = rng_vals[k];
        ck->step = step;
        const char *c = dv_st_meta(f, KEY_CONFIG);
        if (config && c) {
            *config = strdup(c);
            if (!*config) dv_panic("checkpoint: out of memory");
        }
    }
    free(idx);
    free(rng_vals);
    dv_st_close(f);
    return rc;
}
