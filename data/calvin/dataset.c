/* data/calvin/dataset.c — open a CALVIN split: episode bounds, language annotations,
 * statistics.yaml, and per-frame npz loading with every key's dtype and shape checked.
 *
 * The layout is CALVIN's (mees/calvin, dataset/README): one episode_%07d.npz per frame,
 * ep_start_end_ids.npy, lang_annotations/auto_lang_ann.npy (a pickled dict) and an optional
 * statistics.yaml. The low-dimensional keys of annotated frames (actions, rel_actions,
 * robot_obs) are cached after their first read, since a trajectory or an action chunk needs
 * them from many frames.
 *
 * statistics.yaml is read with data/calvin/yaml.h; the lists of numbers it holds are kept
 * (top-level lists, and the list fields of each top-level key's first entry).
 *
 * Not here: the samples (samples_*.c), the loader (loader.c), the file formats (npy.c,
 * pickle.c, yaml.c).
 */
#include "data/calvin/dataset.h"
#include "data/calvin/npy.h"
#include "data/calvin/pickle.h"
#include "data/calvin/samples.h"
#include "data/calvin/yaml.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    char key[64], field[32];
    float *vals;
    int n;
} stat_entry;

struct dv_calvin {
    char *dir;
    int64_t n_ep;
    int64_t *ep;              /* (n_ep, 2) */
    int64_t n_ann;
    dv_calvin_ann *ann;
    char *strings;            /* instruction and task strings, one block */
    stat_entry *stats;
    int n_stats;
    /* low-dimensional cache over the union of annotated windows: merged intervals
       [iv_start, iv_end] and the slot of each interval's first frame */
    int64_t n_iv, *iv_start, *iv_end, *iv_slot, n_slots;
    dv_calvin_lowdim *low;
    uint8_t *low_ok;          /* 1 once slot is filled (atomic) */
    pthread_mutex_t low_lock;
    int64_t bytes_read;       /* atomic */
};

static char *path_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

static void frame_path(const dv_calvin *d, int64_t id, char *buf, size_t n) {
    snprintf(buf, n, "%s/episode_%07lld.npz", d->dir, (long long)id);
}

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* ---- ep_start_end_ids.npy ---------------------------------------------------------------- */
static int load_episodes(dv_calvin *d, char *err, size_t errlen) {
    char *path = path_join(d->dir, "ep_start_end_ids.npy");
    dv_npy a = {0};
    int rc = -1;
    if (dv_npy_load(path, &a, err, errlen)) goto done;
    if (a.dtype == DV_NPY_F16 || a.dtype == DV_NPY_F32 || a.dtype == DV_NPY_F64 || a.dtype == DV_NPY_BOOL) {
        dv_errf(err, errlen, "%s: expected an integer array, got %s", path, dv_npy_dtype_name(a.dtype));
        goto done;
    }
    if (a.ndim != 2 || a.shape[1] != 2 || a.shape[0] < 1) {
        dv_errf(err, errlen, "%s: expected shape (E, 2) with E >= 1, got %d dims (%lld, %lld)", path,
                a.ndim, (long long)(a.ndim > 0 ? a.shape[0] : 0), (long long)(a.ndim > 1 ? a.shape[1] : 0));
        goto done;
    }
    d->n_ep = a.shape[0];
    d->ep = malloc(sizeof(int64_t) * 2 * d->n_ep);
    for (int64_t i = 0; i < 2 * d->n_ep; i++) d->ep[i] = dv_npy_get_i64(&a, i);
    for (int64_t i = 0; i < d->n_ep; i++)
        if (d->ep[2 * i] < 0 || d->ep[2 * i] > d->ep[2 * i + 1]) {
            dv_errf(err, errlen, "%s: episode %lld has start %lld > end %lld (or a negative id)", path,
                    (long long)i, (long long)d->ep[2 * i], (long long)d->ep[2 * i + 1]);
            goto done;
        }
    rc = 0;
done:
    dv_npy_free(&a);
    free(path);
    return rc;
}

/* ---- lang_annotations/auto_lang_ann.npy ---------------------------------------------------- */
static bool py_int(const dv_pyobj *o, int64_t *v) {
    if (!o) return false;
    if (o->type == DV_PY_INT) { *v = o->i; return true; }
    if (o->type == DV_PY_NDARRAY && o->array.count == 1 && o->array.dtype != DV_NPY_F16 &&
        o->array.dtype != DV_NPY_F32 && o->array.dtype != DV_NPY_F64) {
        *v = dv_npy_get_i64(&o->array, 0);
        return true;
    }
    return false;
}

/* items of a list / tuple / object array (n and items), or false */
static bool py_seq(const dv_pyobj *o, int64_t *n, dv_pyobj *const **items) {
    if (!o || (o->type != DV_PY_LIST && o->type != DV_PY_TUPLE && o->type != DV_PY_OBJARRAY)) return false;
    *n = o->seq.n;
    *items = o->seq.items;
    return true;
}

static const char *py_str(const dv_pyobj *o) {
    if (!o) return NULL;
    if (o->type == DV_PY_STR || o->type == DV_PY_BYTES) return o->str.s;
    return NULL;
}

static int load_annotations(dv_calvin *d, char *err, size_t errlen) {
    char *path = path_join(d->dir, "lang_annotations/auto_lang_ann.npy");
    dv_pyarena *arena = dv_pyarena_new();
    dv_pyobj *root = NULL;
    int rc = -1;
    if (!arena) { dv_errf(err, errlen, "%s: out of memory", path); goto done; }
    if (dv_npy_load_pickled(path, arena, &root, err, errlen)) goto done;
    if (!root || root->type != DV_PY_DICT) {
        dv_errf(err, errlen, "%s: expected a dict, got %s", path, root ? dv_pytype_name(root->type) : "nothing");
        goto done;
    }
    const dv_pyobj *indx = dv_py_path(root, "info.indx");
    const dv_pyobj *ann = dv_py_path(root, "language.ann");
    const dv_pyobj *task = dv_py_path(root, "language.task");
    if (!indx) { dv_errf(err, errlen, "%s: missing key 'info.indx'", path); goto done; }
    if (!ann) { dv_errf(err, errlen, "%s: missing key 'language.ann'", path); goto done; }
    if (!task) { dv_errf(err, errlen, "%s: missing key 'language.task'", path); goto done; }

    /* info.indx: a sequence of (start, end) pairs, or an (N, 2) integer ndarray */
    int64_t n = 0, n_ann_s = 0, n_task = 0;
    dv_pyobj *const *iv = NULL, *const *as = NULL, *const *ts = NULL;
    bool indx_array = indx->type == DV_PY_NDARRAY;
    if (indx_array) {
        if (indx->array.ndim != 2 || indx->array.shape[1] != 2) {
            dv_errf(err, errlen, "%s: key 'info.indx': expected (N, 2) pairs, got an array of %d dims", path,
                    indx->array.ndim);
            goto done;
        }
        n = indx->array.shape[0];
    } else if (!py_seq(indx, &n, &iv)) {
        dv_errf(err, errlen, "%s: key 'info.indx': expected a list of (start, end), got %s", path,
                dv_pytype_name(indx->type));
        goto done;
    }
    if (!py_seq(ann, &n_ann_s, &as)) {
        dv_errf(err, errlen, "%s: key 'language.ann': expected a list of strings, got %s", path, dv_pytype_name(ann->type));
        goto done;
    }
    if (!py_seq(task, &n_task, &ts)) {
        dv_errf(err, errlen, "%s: key 'language.task': expected a list of strings, got %s", path, dv_pytype_name(task->type));
        goto done;
    }
    if (n == 0) { dv_errf(err, errlen, "%s: key 'info.indx': no annotations", path); goto done; }
    if (n_ann_s != n || n_task != n) {
        dv_errf(err, errlen, "%s: key 'language.ann' has %lld entries and 'language.task' %lld, but 'info.indx' has %lld",
                path, (long long)n_ann_s, (long long)n_task, (long long)n);
        goto done;
    }
    d->n_ann = n;
    d->ann = calloc((size_t)n, sizeof(dv_calvin_ann));
    size_t bytes = 0;
    for (int64_t i = 0; i < n; i++) {
        const char *a = py_str(as[i]), *t = py_str(ts[i]);
        if (!a) { dv_errf(err, errlen, "%s: key 'language.ann'[%lld]: expected a string", path, (long long)i); goto done; }
        if (!t) { dv_errf(err, errlen, "%s: key 'language.task'[%lld]: expected a string", path, (long long)i); goto done; }
        bytes += strlen(a) + strlen(t) + 2;
    }
    d->strings = malloc(bytes ? bytes : 1);
    char *p = d->strings;
    for (int64_t i = 0; i < n; i++) {
        int64_t s, e;
        if (indx_array) {
            s = dv_npy_get_i64(&indx->array, 2 * i);
            e = dv_npy_get_i64(&indx->array, 2 * i + 1);
        } else {
            int64_t m = 0;
            dv_pyobj *const *pair = NULL;
            if (!py_seq(iv[i], &m, &pair) || m != 2 || !py_int(pair[0], &s) || !py_int(pair[1], &e)) {
                dv_errf(err, errlen, "%s: key 'info.indx'[%lld]: expected a pair of integers (start, end)", path,
                        (long long)i);
                goto done;
            }
        }
        d->ann[i].start = s;
        d->ann[i].end = e;
        size_t la = strlen(py_str(as[i])) + 1, lt = strlen(py_str(ts[i])) + 1;
        memcpy(p, py_str(as[i]), la);
        d->ann[i].instruction = p;
        p += la;
        memcpy(p, py_str(ts[i]), lt);
        d->ann[i].task = p;
        p += lt;
    }
    rc = 0;
done:
    dv_pyarena_free(arena);
    free(path);
    return rc;
}

/* every window inside one episode, and its first and last frame on disk */
static int check_annotations(dv_calvin *d, char *err, size_t errlen) {
    char path[4096];
    for (int64_t i = 0; i < d->n_ann; i++) {
        const dv_calvin_ann *a = &d->ann[i];
        if (a->start < 0 || a->start > a->end)
            return dv_errf(err, errlen, "%s/lang_annotations/auto_lang_ann.npy: key 'info.indx'[%lld] = (%lld, %lld): start > end or negative",
                           d->dir, (long long)i, (long long)a->start, (long long)a->end);
        bool inside = false;
        for (int64_t e = 0; e < d->n_ep && !inside; e++)
            inside = d->ep[2 * e] <= a->start && a->end <= d->ep[2 * e + 1];
        if (!inside)
            return dv_errf(err, errlen, "%s/lang_annotations/auto_lang_ann.npy: key 'info.indx'[%lld] = (%lld, %lld) is not inside any episode of ep_start_end_ids.npy",
                           d->dir, (long long)i, (long long)a->start, (long long)a->end);
        for (int k = 0; k < 2; k++) {
            frame_path(d, k ? a->end : a->start, path, sizeof path);
            if (!file_exists(path))
                return dv_errf(err, errlen, "%s/lang_annotations/auto_lang_ann.npy: key 'info.indx'[%lld] = (%lld, %lld): frame file %s does not exist",
                               d->dir, (long long)i, (long long)a->start, (long long)a->end, path);
        }
    }
    return 0;
}

static int cmp_i64pair(const void *a, const void *b) {
    const int64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : (x[1] < y[1] ? -1 : x[1] > y[1]);
}

/* merged intervals of annotated frames and the cache slots */
static void build_lowdim_index(dv_calvin *d) {
    int64_t *iv = malloc(sizeof(int64_t) * 2 * d->n_ann);
    for (int64_t i = 0; i < d->n_ann; i++) { iv[2 * i] = d->ann[i].start; iv[2 * i + 1] = d->ann[i].end; }
    qsort(iv, (size_t)d->n_ann, 2 * sizeof(int64_t), cmp_i64pair);
    d->iv_start = malloc(sizeof(int64_t) * d->n_ann);
    d->iv_end = malloc(sizeof(int64_t) * d->n_ann);
    d->iv_slot = malloc(sizeof(int64_t) * d->n_ann);
    int64_t m = 0;
    for (int64_t i = 0; i < d->n_ann; i++) {
        if (m > 0 && iv[2 * i] <= d->iv_end[m - 1] + 1) {
            if (iv[2 * i + 1] > d->iv_end[m - 1]) d->iv_end[m - 1] = iv[2 * i + 1];
        } else {
            d->iv_start[m] = iv[2 * i];
            d->iv_end[m] = iv[2 * i + 1];
            m++;
        }
    }
    d->n_iv = m;
    d->n_slots = 0;
    for (int64_t i = 0; i < m; i++) { d->iv_slot[i] = d->n_slots; d->n_slots += d->iv_end[i] - d->iv_start[i] + 1; }
    d->low = calloc((size_t)d->n_slots, sizeof(dv_calvin_lowdim));
    d->low_ok = calloc((size_t)d->n_slots, 1);
    free(iv);
}

static int64_t lowdim_slot(const dv_calvin *d, int64_t id) {
    int64_t lo = 0, hi = d->n_iv - 1;
    while (lo <= hi) {
        int64_t mid = (lo + hi) / 2;
        if (id < d->iv_start[mid]) hi = mid - 1;
        else if (id > d->iv_end[mid]) lo = mid + 1;
        else return d->iv_slot[mid] + (id - d->iv_start[mid]);
    }
    return -1;
}

/* ---- statistics.yaml ------------------------------------------------------------------------ */
/* a sequence of numbers into a new entry (key, field); -1 naming file:line when it is a
 * sequence holding something else */
static int add_stat(dv_calvin *d, const char *path, const char *key, const char *field, const dv_yaml *seq,
                    int *cap, char *err, size_t errlen) {
    stat_entry e = {0};
    snprintf(e.key, sizeof e.key, "%s", key);
    snprintf(e.field, sizeof e.field, "%s", field);
    e.vals = malloc(sizeof(float) * (size_t)(seq->n ? seq->n : 1));
    for (int i = 0; i < seq->n; i++) {
        double v;
        if (!dv_yaml_number(seq->items[i], &v)) {
            free(e.vals);
            return dv_errf(err, errlen, "%s:%d: key '%s%s%s': item %d is not a number", path, seq->items[i]->line, key,
                           *field ? "." : "", field, i);
        }
        e.vals[e.n++] = (float)v;
    }
    if (d->n_stats == *cap) d->stats = realloc(d->stats, sizeof(stat_entry) * (size_t)(*cap = *cap ? 2 * *cap : 8));
    d->stats[d->n_stats++] = e;
    return 0;
}

/* top-level `key: [numbers]` and, for `key: [{field: [numbers], ...}, ...]`, the fields of
 * the first entry (CALVIN's NormalizeVector mean / std) */
static int load_statistics(dv_calvin *d, char *err, size_t errlen) {
    char *path = path_join(d->dir, "statistics.yaml");
    if (!file_exists(path)) { free(path); return 0; } /* optional */
    dv_yaml_doc *doc = NULL;
    int rc = dv_yaml_load(path, &doc, err, errlen), cap = 0;
    const dv_yaml *root = rc == 0 ? dv_yaml_root(doc) : NULL;
    for (int i = 0; rc == 0 && root && root->type == DV_YAML_MAP && i < root->n; i++) {
        const dv_yaml *v = root->items[i];
        if (v->type != DV_YAML_SEQ || v->n == 0) continue;
        if (v->items[0]->type == DV_YAML_SCALAR) {
            rc = add_stat(d, path, root->keys[i], "", v, &cap, err, errlen);
        } else if (v->items[0]->type == DV_YAML_MAP) {
            const dv_yaml *m = v->items[0];
            for (int j = 0; rc == 0 && j < m->n; j++)
                if (m->items[j]->type == DV_YAML_SEQ)
                    rc = add_stat(d, path, root->keys[i], m->keys[j], m->items[j], &cap, err, errlen);
        }
    }
    dv_yaml_free(doc);
    free(path);
    return rc;
}

int dv_calvin_stat(const dv_calvin *d, const char *key, const char *field, const float **vals) {
    for (int i = 0; i < d->n_stats; i++)
        if (!strcmp(d->stats[i].key, key) && !strcmp(d->stats[i].field, field ? field : "")) {
            *vals = d->stats[i].vals;
            return d->stats[i].n;
        }
    return 0;
}

/* ---- open / close ------------------------------------------------------------------------- */
int dv_calvin_open(const char *dir, dv_calvin **out, char *err, size_t errlen) {
    *out = NULL;
    struct stat st;
    if (stat(dir, &st) != 0) return dv_errf(err, errlen, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return dv_errf(err, errlen, "%s: not a directory", dir);
    dv_calvin *d = calloc(1, sizeof *d);
    d->dir = strdup(dir);
    size_t n = strlen(d->dir);
    while (n > 1 && d->dir[n - 1] == '/') d->dir[--n] = 0;
    pthread_mutex_init(&d->low_lock, NULL);
    if (load_episodes(d, err, errlen) || load_annotations(d, err, errlen) ||
        check_annotations(d, err, errlen) || load_statistics(d, err, errlen)) {
        dv_calvin_close(d);
        return -1;
    }
    build_lowdim_index(d);
    *out = d;
    return 0;
}

void dv_calvin_close(dv_calvin *d) {
    if (!d) return;
    free(d->dir);
    free(d->ep);
    free(d->ann);
    free(d->strings);
    for (int i = 0; i < d->n_stats; i++) free(d->stats[i].vals);
    free(d->stats);
    free(d->iv_start);
    free(d->iv_end);
    free(d->iv_slot);
    free(d->low);
    free(d->low_ok);
    pthread_mutex_destroy(&d->low_lock);
    free(d);
}

const char *dv_calvin_dir(const dv_calvin *d) { return d->dir; }
int64_t dv_calvin_num_annotations(const dv_calvin *d) { return d->n_ann; }
int64_t dv_calvin_num_episodes(const dv_calvin *d) { return d->n_ep; }

const dv_calvin_ann *dv_calvin_annotation(const dv_calvin *d, int64_t i) {
    DV_ASSERT(i >= 0 && i < d->n_ann, "dv_calvin_annotation: index %lld outside [0, %lld)", (long long)i,
              (long long)d->n_ann);
    return &d->ann[i];
}

void dv_calvin_episode_bounds(const dv_calvin *d, int64_t i, int64_t *start, int64_t *end) {
    DV_ASSERT(i >= 0 && i < d->n_ep, "dv_calvin_episode_bounds: index %lld outside [0, %lld)", (long long)i,
              (long long)d->n_ep);
    *start = d->ep[2 * i];
    *end = d->ep[2 * i + 1];
}

int64_t dv_calvin_bytes_read(const dv_calvin *d) { return __atomic_load_n(&d->bytes_read, __ATOMIC_RELAXED); }

/* ---- frames -------------------------------------------------------------------------------- */
static bool is_float(dv_npy_dtype t) { return t == DV_NPY_F16 || t == DV_NPY_F32 || t == DV_NPY_F64; }

static const char *shape_str(const dv_npy *a, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < a->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)a->shape[i]);
    if (k < n) snprintf(buf + k, n - k, a->ndim == 1 ? ",)" : ")");
    return buf;
}

/* a float vector of exactly n values */
static int get_vec(dv_npz *z, const char *path, const char *key, int n, float *dst, char *err, size_t errlen) {
    dv_npy a = {0};
    if (dv_npz_get(z, key, &a, err, errlen)) return -1;
    char sb[96];
    if (!is_float(a.dtype) || a.ndim != 1 || a.shape[0] != n) {
        dv_errf(err, errlen, "%s: key '%s': expected a float vector of shape (%d,), got %s %s", path, key, n,
                dv_npy_dtype_name(a.dtype), shape_str(&a, sb, sizeof sb));
        dv_npy_free(&a);
        return -1;
    }
    dv_npy_to_f32(&a, dst);
    dv_npy_free(&a);
    return 0;
}

/* an image: uint8 (H, W, 3) when rgb, else float (H, W) */
/* an image key: rgb = uint8 (H, W, channels); else float (H, W) for channels 1, (H, W, channels)
 * otherwise (the tactile depth) */
static int get_image_c(dv_npz *z, const char *path, const char *key, bool rgb, int channels, void **dst, int *h,
                       int *w, char *err, size_t errlen) {
    dv_npy a = {0};
    if (dv_npz_get(z, key, &a, err, errlen)) return -1;
    char sb[96];
    bool shape_ok = (!rgb && channels == 1) ? a.ndim == 2 : (a.ndim == 3 && a.shape[2] == channels);
    bool ok = shape_ok && (rgb ? a.dtype == DV_NPY_U8 : is_float(a.dtype));
    ok = ok && a.shape[0] > 0 && a.shape[1] > 0 && a.shape[0] <= 8192 && a.shape[1] <= 8192;
    if (!ok) {
        char want[64];
        if (!rgb && channels == 1) snprintf(want, sizeof want, "float of shape (H, W)");
        else snprintf(want, sizeof want, "%s of shape (H, W, %d)", rgb ? "uint8" : "float", channels);
        dv_errf(err, errlen, "%s: key '%s': expected %s, got %s %s", path, key, want, dv_npy_dtype_name(a.dtype),
                shape_str(&a, sb, sizeof sb));
        dv_npy_free(&a);
        return -1;
    }
    *h = (int)a.shape[0];
    *w = (int)a.shape[1];
    size_t bytes = rgb ? (size_t)a.count : (size_t)a.count * sizeof(float);
    *dst = malloc(bytes);
    if (rgb) memcpy(*dst, a.data, bytes);
    else dv_npy_to_f32(&a, *dst);
    dv_npy_free(&a);
    return 0;
}

static int get_image(dv_npz *z, const char *path, const char *key, bool rgb, void **dst, int *h, int *w,
                     char *err, size_t errlen) {
    return get_image_c(z, path, key, rgb, rgb ? 3 : 1, dst, h, w, err, errlen);
}

/* rgb_tactile (H, W, 6) u8 and depth_tactile (H, W, 2), both or neither */
static int get_tactile(dv_npz *z, const char *path, dv_calvin_frame *f, char *err, size_t errlen) {
    bool has_rgb = dv_npz_has(z, "rgb_tactile"), has_depth = dv_npz_has(z, "depth_tactile");
    if (!has_rgb && !has_depth) return 0;
    if (!has_rgb || !has_depth) {
        dv_errf(err, errlen, "%s: key '%s' is present but '%s' is missing", path,
                has_rgb ? "rgb_tactile" : "depth_tactile", has_rgb ? "depth_tactile" : "rgb_tactile");
        return -1;
    }
    int h, w;
    if (get_image_c(z, path, "rgb_tactile", true, 6, (void **)&f->rgb_tactile, &f->tactile_h, &f->tactile_w, err,
                    errlen) ||
        get_image_c(z, path, "depth_tactile", false, 2, (void **)&f->depth_tactile, &h, &w, err, errlen))
        return -1;
    if (h != f->tactile_h || w != f->tactile_w) {
        dv_errf(err, errlen, "%s: key 'depth_tactile': shape (%d, %d, 2) differs from rgb_tactile's (%d, %d, 6)", path,
                h, w, f->tactile_h, f->tactile_w);
        return -1;
    }
    return 0;
}

static void lowdim_store(dv_calvin *d, int64_t id, const dv_calvin_frame *f) {
    int64_t slot = lowdim_slot(d, id);
    if (slot < 0 || __atomic_load_n(&d->low_ok[slot], __ATOMIC_ACQUIRE)) return;
    pthread_mutex_lock(&d->low_lock);
    if (!d->low_ok[slot]) {
        memcpy(d->low[slot].actions, f->actions, sizeof f->actions);
        memcpy(d->low[slot].rel_actions, f->rel_actions, sizeof f->rel_actions);
        memcpy(d->low[slot].robot_obs, f->robot_obs, sizeof f->robot_obs);
        __atomic_store_n(&d->low_ok[slot], 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&d->low_lock);
}

int dv_calvin_frame_load_keys(dv_calvin *d, int64_t id, unsigned keys, dv_calvin_frame *f, char *err,
                              size_t errlen) {
    memset(f, 0, sizeof *f);
    f->id = id;
    char path[4096];
    frame_path(d, id, path, sizeof path);
    dv_npz *z = NULL;
    if (dv_npz_open(path, &z, err, errlen)) return -1;
    struct stat st;
    if (stat(path, &st) == 0) __atomic_fetch_add(&d->bytes_read, (int64_t)st.st_size, __ATOMIC_RELAXED);
    int rc = -1;
    if (get_vec(z, path, "actions", 7, f->actions, err, errlen) ||
        get_vec(z, path, "rel_actions", 7, f->rel_actions, err, errlen) ||
        get_vec(z, path, "robot_obs", 15, f->robot_obs, err, errlen))
        goto done;
    if (keys == DV_FRAME_ALL && get_vec(z, path, "scene_obs", 24, f->scene_obs, err, errlen)) goto done;
    if ((keys & DV_FRAME_RGB_STATIC) &&
        get_image(z, path, "rgb_static", true, (void **)&f->rgb_static, &f->static_h, &f->static_w, err, errlen))
        goto done;
    if ((keys & DV_FRAME_RGB_GRIPPER) &&
        get_image(z, path, "rgb_gripper", true, (void **)&f->rgb_gripper, &f->gripper_h, &f->gripper_w, err, errlen))
        goto done;
    int h, w;
    if (keys & DV_FRAME_DEPTH_STATIC) {
        if (get_image(z, path, "depth_static", false, (void **)&f->depth_static, &h, &w, err, errlen)) goto done;
        if ((keys & DV_FRAME_RGB_STATIC) && (h != f->static_h || w != f->static_w)) {
            dv_errf(err, errlen, "%s: key 'depth_static': shape (%d, %d) differs from rgb_static's (%d, %d)", path, h, w,
                    f->static_h, f->static_w);
            goto done;
        }
        f->static_h = h, f->static_w = w;
    }
    if (keys & DV_FRAME_DEPTH_GRIPPER) {
        if (get_image(z, path, "depth_gripper", false, (void **)&f->depth_gripper, &h, &w, err, errlen)) goto done;
        if ((keys & DV_FRAME_RGB_GRIPPER) && (h != f->gripper_h || w != f->gripper_w)) {
            dv_errf(err, errlen, "%s: key 'depth_gripper': shape (%d, %d) differs from rgb_gripper's (%d, %d)", path, h,
                    w, f->gripper_h, f->gripper_w);
            goto done;
        }
        f->gripper_h = h, f->gripper_w = w;
    }
    if (keys == DV_FRAME_ALL && get_tactile(z, path, f, err, errlen)) goto done;
    lowdim_store(d, id, f);
    rc = 0;
done:
    dv_npz_close(z);
    if (rc) dv_calvin_frame_free(f);
    return rc;
}

int dv_calvin_frame_load(dv_calvin *d, int64_t id, dv_calvin_frame *f, char *err, size_t errlen) {
    return dv_calvin_frame_load_keys(d, id, DV_FRAME_ALL, f, err, errlen);
}

void dv_calvin_frame_free(dv_calvin_frame *f) {
    if (!f) return;
    free(f->rgb_static);
    free(f->rgb_gripper);
    free(f->depth_static);
    free(f->depth_gripper);
    free(f->rgb_tactile);
    free(f->depth_tactile);
    f->rgb_static = f->rgb_gripper = f->rgb_tactile = NULL;
    f->depth_static = f->depth_gripper = f->depth_tactile = NULL;
}

int dv_calvin_lowdim_get(dv_calvin *d, int64_t id, dv_calvin_lowdim *out, char *err, size_t errlen) {
    int64_t slot = lowdim_slot(d, id);
    if (slot >= 0 && __atomic_load_n(&d->low_ok[slot], __ATOMIC_ACQUIRE)) {
        *out = d->low[slot];
        return 0;
    }
    dv_calvin_frame f;
    if (dv_calvin_frame_load_keys(d, id, 0, &f, err, errlen)) return -1;
    memcpy(out->actions, f.actions, sizeof f.actions);
    memcpy(out->rel_actions, f.rel_actions, sizeof f.rel_actions);
    memcpy(out->robot_obs, f.robot_obs, sizeof f.robot_obs);
    dv_calvin_frame_free(&f);
    return 0;
}
