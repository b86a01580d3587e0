/* data/calvin/pickle.c — a reader (and a writer) for the subset of Python's pickle format
 * that numpy uses for object arrays (PEP 307 protocol 2, protocol 3, PEP 3154 protocol 4,
 * PEP 574 protocol 5), without Python.
 *
 * The reader is the pickle virtual machine restricted to data: a stack, a mark stack (marks
 * are a sentinel on the stack), and a memo. The only callables are a fixed list of globals,
 * each replaced by a C function that builds data — never an import, never a call into code:
 *   numpy.core.multiarray._reconstruct  (also numpy._core.*)  an empty ndarray to BUILD
 *   numpy.ndarray, numpy.dtype                                 dtype('f4', False, True) + BUILD
 *   numpy.core.multiarray.scalar                               numpy scalars: scalar(dtype, bytes)
 *   numpy.core.numeric._frombuffer                             protocol 5 arrays
 *   _codecs.encode (codecs.encode)                             bytes under protocol 2: encode(str, 'latin1')
 *   __builtin__.bytes (builtins.bytes)                         b'' under protocol 2: bytes()
 * Any other global is an error naming it; so is every opcode outside the data subset (sets,
 * NEWOBJ, INST/OBJ, PERSID, EXT*, out-of-band buffers) and every malformed stream.
 *
 * Objects live in an arena (bump allocator): no per-object free, the arena goes at once. A
 * stream can make only as many objects as it has opcodes, and the memo index is bounded by
 * the stream length, so a hostile stream cannot allocate much more than its own size.
 * Shared references (memo GET) share the object; cycles are possible (a list appended to
 * itself) and are left to the caller — the writer refuses nesting deeper than 1000.
 *
 * The writer emits protocol 3, as np.save does: dict/list/tuple/str/bytes/int/float/None/
 * bool and numeric/object ndarrays through _reconstruct + dtype + BUILD.
 */
#include "data/calvin/pickle.h"
#include "data/calvin/npy_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define ERRF(...) dv_errf(err, errlen, __VA_ARGS__)

/* ---------------------------------------------------------------- arena */

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(64) uint8_t data[];
} chunk;

struct dv_pyarena {
    chunk *head;
};

#define CHUNK_BYTES (64 * 1024)

dv_pyarena *dv_pyarena_new(void) { return calloc(1, sizeof(dv_pyarena)); }

void dv_pyarena_free(dv_pyarena *a) {
    if (!a) return;
    for (chunk *c = a->head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    free(a);
}

/* n zeroed bytes aligned to 64, or NULL when out of memory */
static void *arena_try(dv_pyarena *a, size_t n) {
    n = (n + 63) & ~(size_t)63;
    if (n == 0) n = 64;
    chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK_BYTES / 4 ? n : CHUNK_BYTES;
        chunk *nc = malloc(sizeof *nc + cap);
        if (!nc) return NULL;
        nc->used = 0;
        nc->cap = cap;
        if (cap == n && c) { /* a big block: keep the current chunk on top for small ones */
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            a->head = nc;
        }
        c = nc;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

/* for builders, which have no error channel: out of memory is fatal */
static void *arena_must(dv_pyarena *a, size_t n) {
    void *p = arena_try(a, n);
    if (!p) {
        fprintf(stderr, "dv_pyarena: out of memory (%zu bytes)\n", n);
        abort();
    }
    return p;
}

/* ---------------------------------------------------------------- objects */

/* private object kinds that only exist while a pickle is being run (they can end up in the
 * output only inside tuples of a hand-made stream; dv_pytype_name names them) */
enum { PY_GLOBAL = 100, PY_DTYPE, PY_PENDING, PY_MARK };
enum { G_RECONSTRUCT, G_NDARRAY, G_DTYPE, G_SCALAR, G_FROMBUFFER, G_ENCODE, G_BYTES };

typedef struct {
    dv_pyobj o;
    dv_npy_dtype dt;
    bool swap;
} pydtype;

const char *dv_pytype_name(dv_pytype t) {
    switch ((int)t) {
    case DV_PY_NONE: return "None";
    case DV_PY_BOOL: return "bool";
    case DV_PY_INT: return "int";
    case DV_PY_FLOAT: return "float";
    case DV_PY_STR: return "str";
    case DV_PY_BYTES: return "bytes";
    case DV_PY_LIST: return "list";
    case DV_PY_TUPLE: return "tuple";
    case DV_PY_DICT: return "dict";
    case DV_PY_NDARRAY: return "ndarray";
    case DV_PY_OBJARRAY: return "object ndarray";
    case PY_GLOBAL: return "numpy global";
    case PY_DTYPE: return "numpy.dtype";
    case PY_PENDING: return "ndarray (not built)";
    case PY_MARK: return "mark";
    default: return "?";
    }
}

static dv_pyobj *obj_try(dv_pyarena *a, int type) {
    dv_pyobj *o = arena_try(a, type == PY_DTYPE ? sizeof(pydtype) : sizeof(dv_pyobj));
    if (o) o->type = (dv_pytype)type;
    return o;
}

static dv_pyobj *obj_must(dv_pyarena *a, int type) {
    dv_pyobj *o = arena_must(a, sizeof(dv_pyobj));
    o->type = (dv_pytype)type;
    return o;
}

/* room for one more item in a LIST or DICT of n items, whose capacity is implied by n (the
 * next power of two >= max(n, 8)); 0, or -1 when out of memory */
static int grow(dv_pyarena *a, dv_pyobj *o, bool must) {
    int64_t n = o->type == DV_PY_DICT ? o->dict.n : o->seq.n;
    bool full = n == 0 || (n >= 8 && (n & (n - 1)) == 0); /* capacities are 8, 16, 32, ... */
    if (!full) return 0;
    int64_t cap = n == 0 ? 8 : 2 * n;
    size_t bytes = (size_t)cap * sizeof(dv_pyobj *);
    if (o->type == DV_PY_DICT) {
        dv_pyobj **k = must ? arena_must(a, bytes) : arena_try(a, bytes);
        dv_pyobj **v = k ? (must ? arena_must(a, bytes) : arena_try(a, bytes)) : NULL;
        if (!k || !v) return -1;
        if (n) memcpy(k, o->dict.keys, (size_t)n * sizeof *k), memcpy(v, o->dict.values, (size_t)n * sizeof *v);
        o->dict.keys = k, o->dict.values = v;
    } else {
        dv_pyobj **it = must ? arena_must(a, bytes) : arena_try(a, bytes);
        if (!it) return -1;
        if (n) memcpy(it, o->seq.items, (size_t)n * sizeof *it);
        o->seq.items = it;
    }
    return 0;
}

static bool key_equal(const dv_pyobj *x, const dv_pyobj *y) {
    if (x->type != y->type) return false;
    if (x->type == DV_PY_STR || x->type == DV_PY_BYTES)
        return x->str.len == y->str.len && memcmp(x->str.s, y->str.s, x->str.len) == 0;
    if (x->type == DV_PY_INT) return x->i == y->i;
    return x == y;
}

static int dict_set(dv_pyarena *a, dv_pyobj *d, dv_pyobj *k, dv_pyobj *v, bool must) {
    for (int64_t i = 0; i < d->dict.n; i++)
        if (key_equal(d->dict.keys[i], k)) {
            d->dict.values[i] = v;
            return 0;
        }
    if (grow(a, d, must) != 0) return -1;
    d->dict.keys[d->dict.n] = k;
    d->dict.values[d->dict.n] = v;
    d->dict.n++;
    return 0;
}

static int list_append(dv_pyarena *a, dv_pyobj *l, dv_pyobj *v, bool must) {
    if (grow(a, l, must) != 0) return -1;
    l->seq.items[l->seq.n++] = v;
    return 0;
}

/* ---------------------------------------------------------------- lookups and builders */

const dv_pyobj *dv_py_get(const dv_pyobj *d, const char *key) {
    if (!d || d->type != DV_PY_DICT) return NULL;
    size_t n = strlen(key);
    for (int64_t i = d->dict.n - 1; i >= 0; i--) {
        const dv_pyobj *k = d->dict.keys[i];
        if (k->type == DV_PY_STR && k->str.len == n && memcmp(k->str.s, key, n) == 0) return d->dict.values[i];
    }
    return NULL;
}

const dv_pyobj *dv_py_path(const dv_pyobj *root, const char *dotted) {
    const dv_pyobj *o = root;
    char part[256];
    while (o && *dotted) {
        const char *dot = strchr(dotted, '.');
        size_t n = dot ? (size_t)(dot - dotted) : strlen(dotted);
        if (n >= sizeof part) return NULL;
        memcpy(part, dotted, n);
        part[n] = 0;
        o = dv_py_get(o, part);
        dotted += n + (dot ? 1 : 0);
    }
    return o;
}

bool dv_py_as_i64(const dv_pyobj *o, int64_t *v) {
    if (!o) return false;
    switch (o->type) {
    case DV_PY_BOOL: *v = o->b; return true;
    case DV_PY_INT: *v = o->i; return true;
    case DV_PY_FLOAT:
        if (!(o->f == o->f) || o->f != (double)(int64_t)o->f) return false;
        *v = (int64_t)o->f;
        return true;
    case DV_PY_NDARRAY:
        if (o->array.count != 1 || o->array.dtype == DV_NPY_F16 || o->array.dtype == DV_NPY_F32 ||
            o->array.dtype == DV_NPY_F64)
            return false;
        *v = dv_npy_get_i64(&o->array, 0);
        return true;
    default: return false;
    }
}

bool dv_py_as_f64(const dv_pyobj *o, double *v) {
    if (!o) return false;
    switch (o->type) {
    case DV_PY_BOOL: *v = o->b; return true;
    case DV_PY_INT: *v = (double)o->i; return true;
    case DV_PY_FLOAT: *v = o->f; return true;
    case DV_PY_NDARRAY:
        if (o->array.count != 1) return false;
        *v = dv_npy_get_f64(&o->array, 0);
        return true;
    default: return false;
    }
}

dv_pyobj *dv_py_none(dv_pyarena *a) { return obj_must(a, DV_PY_NONE); }

dv_pyobj *dv_py_bool(dv_pyarena *a, bool v) {
    dv_pyobj *o = obj_must(a, DV_PY_BOOL);
    o->b = v;
    return o;
}

dv_pyobj *dv_py_int(dv_pyarena *a, int64_t v) {
    dv_pyobj *o = obj_must(a, DV_PY_INT);
    o->i = v;
    return o;
}

dv_pyobj *dv_py_float(dv_pyarena *a, double v) {
    dv_pyobj *o = obj_must(a, DV_PY_FLOAT);
    o->f = v;
    return o;
}

static dv_pyobj *py_strn(dv_pyarena *a, int type, const char *s, size_t n, bool must) {
    dv_pyobj *o = must ? obj_must(a, type) : obj_try(a, type);
    char *p = o ? (must ? arena_must(a, n + 1) : arena_try(a, n + 1)) : NULL;
    if (!p) return NULL;
    if (n) memcpy(p, s, n);
    p[n] = 0;
    o->str.s = p;
    o->str.len = n;
    return o;
}

dv_pyobj *dv_py_str(dv_pyarena *a, const char *s) { return py_strn(a, DV_PY_STR, s, strlen(s), true); }
dv_pyobj *dv_py_bytes(dv_pyarena *a, const void *p, size_t n) { return py_strn(a, DV_PY_BYTES, p, n, true); }
dv_pyobj *dv_py_list(dv_pyarena *a) { return obj_must(a, DV_PY_LIST); }
dv_pyobj *dv_py_dict(dv_pyarena *a) { return obj_must(a, DV_PY_DICT); }

dv_pyobj *dv_py_tuple(dv_pyarena *a, int n, dv_pyobj *const *items) {
    dv_pyobj *o = obj_must(a, DV_PY_TUPLE);
    o->seq.items = arena_must(a, (size_t)(n > 0 ? n : 1) * sizeof(dv_pyobj *));
    for (int i = 0; i < n; i++) o->seq.items[i] = items[i];
    o->seq.n = n;
    return o;
}

dv_pyobj *dv_py_ndarray(dv_pyarena *a, const dv_npy *arr) {
    if (arr->dtype >= DV_NPY_OBJECT) {
        fprintf(stderr, "dv_py_ndarray: dtype %s is not numeric\n", dv_npy_dtype_name(arr->dtype));
        abort();
    }
    dv_pyobj *o = obj_must(a, DV_PY_NDARRAY);
    size_t bytes = (size_t)arr->count * dv_npy_dtype_size(arr->dtype);
    void *p = arena_must(a, bytes);
    if (bytes) memcpy(p, arr->data, bytes);
    o->array = dv_npy_wrap(arr->dtype, arr->ndim, arr->shape, p);
    return o;
}

void dv_py_append(dv_pyarena *a, dv_pyobj *list, dv_pyobj *item) {
    if (list->type != DV_PY_LIST) {
        fprintf(stderr, "dv_py_append: not a list but a %s\n", dv_pytype_name(list->type));
        abort();
    }
    list_append(a, list, item, true);
}

void dv_py_set(dv_pyarena *a, dv_pyobj *dict, const char *key, dv_pyobj *value) {
    if (dict->type != DV_PY_DICT) {
        fprintf(stderr, "dv_py_set: not a dict but a %s\n", dv_pytype_name(dict->type));
        abort();
    }
    dict_set(a, dict, dv_py_str(a, key), value, true);
}

/* ---------------------------------------------------------------- the reader */

typedef struct {
    const uint8_t *b;
    size_t len, pos, op_at;
    int op;
    const char *what;
    dv_pyarena *a;
    char *err;
    size_t errlen;
    dv_pyobj **stack;
    size_t sp, scap;
    dv_pyobj **memo;
    size_t mcap, mcount; /* slots, slots in use (MEMOIZE stores at mcount) */
} vm;

static dv_pyobj g_mark = {.type = (dv_pytype)PY_MARK};

__attribute__((format(printf, 2, 3))) static int fail(vm *m, const char *fmt, ...) {
    if (!m->err || !m->errlen) return -1;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int c = m->op;
    snprintf(m->err, m->errlen, "%s: pickle offset %zu, opcode 0x%02x%s%c%s: %s", m->what, m->op_at, c & 255,
             c >= 33 && c < 127 ? " '" : "", c >= 33 && c < 127 ? c : ' ', c >= 33 && c < 127 ? "'" : "", msg);
    return -1;
}

#define OOM(m) fail(m, "out of memory")

static int need(vm *m, size_t n) {
    return m->len - m->pos < n ? fail(m, "stream ends inside the opcode (%zu bytes needed)", n) : 0;
}

static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static int push(vm *m, dv_pyobj *o) {
    if (!o) return OOM(m);
    if (m->sp == m->scap) {
        size_t cap = m->scap ? 2 * m->scap : 64;
        dv_pyobj **s = realloc(m->stack, cap * sizeof *s);
        if (!s) return OOM(m);
        m->stack = s, m->scap = cap;
    }
    m->stack[m->sp++] = o;
    return 0;
}

/* the object on top (not a mark) */
static dv_pyobj *top(vm *m) {
    if (m->sp == 0 || m->stack[m->sp - 1] == &g_mark) {
        fail(m, m->sp ? "a mark where an object was expected" : "stack underflow");
        return NULL;
    }
    return m->stack[m->sp - 1];
}

static dv_pyobj *pop(vm *m) {
    dv_pyobj *o = top(m);
    if (o) m->sp--;
    return o;
}

/* index of the topmost mark, or -1 (error set) */
static int64_t find_mark(vm *m) {
    for (size_t i = m->sp; i-- > 0;)
        if (m->stack[i] == &g_mark) return (int64_t)i;
    fail(m, "no mark on the stack");
    return -1;
}

static dv_pyobj *make_tuple(vm *m, dv_pyobj **items, int64_t n) {
    dv_pyobj *t = obj_try(m->a, DV_PY_TUPLE);
    if (!t) return NULL;
    t->seq.items = arena_try(m->a, (size_t)(n ? n : 1) * sizeof(dv_pyobj *));
    if (!t->seq.items) return NULL;
    if (n) memcpy(t->seq.items, items, (size_t)n * sizeof(dv_pyobj *));
    t->seq.n = n;
    return t;
}

static int memo_put(vm *m, uint64_t idx) {
    dv_pyobj *o = top(m);
    if (!o) return -1;
    if (idx > m->len) return fail(m, "memo index %llu out of range", (unsigned long long)idx);
    if (idx >= m->mcap) {
        size_t cap = m->mcap ? m->mcap : 64;
        while (cap <= idx) cap *= 2;
        dv_pyobj **p = realloc(m->memo, cap * sizeof *p);
        if (!p) return OOM(m);
        memset(p + m->mcap, 0, (cap - m->mcap) * sizeof *p);
        m->memo = p, m->mcap = cap;
    }
    if (!m->memo[idx]) m->mcount++;
    m->memo[idx] = o;
    return 0;
}

static int memo_get(vm *m, uint64_t idx) {
    if (idx >= m->mcap || !m->memo[idx]) return fail(m, "memo index %llu was never stored", (unsigned long long)idx);
    return push(m, m->memo[idx]);
}

static int global(vm *m, const char *mod, size_t mn, const char *name, size_t nn) {
    static const struct { const char *mod, *name; int id; } ok[] = {
        {"numpy.core.multiarray", "_reconstruct", G_RECONSTRUCT},
        {"numpy._core.multiarray", "_reconstruct", G_RECONSTRUCT},
        {"numpy.core.multiarray", "scalar", G_SCALAR},
        {"numpy._core.multiarray", "scalar", G_SCALAR},
        {"numpy.core.numeric", "_frombuffer", G_FROMBUFFER},
        {"numpy._core.numeric", "_frombuffer", G_FROMBUFFER},
        {"numpy", "ndarray", G_NDARRAY},
        {"numpy", "dtype", G_DTYPE},
        {"_codecs", "encode", G_ENCODE},
        {"codecs", "encode", G_ENCODE},
        {"__builtin__", "bytes", G_BYTES},
        {"builtins", "bytes", G_BYTES},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strlen(ok[i].mod) == mn && memcmp(ok[i].mod, mod, mn) == 0 && strlen(ok[i].name) == nn &&
            memcmp(ok[i].name, name, nn) == 0) {
            dv_pyobj *g = obj_try(m->a, PY_GLOBAL);
            if (!g) return OOM(m);
            g->i = ok[i].id;
            return push(m, g);
        }
    return fail(m, "global '%.*s.%.*s' is not allowed (only numpy's array reconstruction is)",
                (int)(mn > 200 ? 200 : mn), mod, (int)(nn > 200 ? 200 : nn), name);
}

static bool is_global(const dv_pyobj *o, int id) { return o && (int)o->type == PY_GLOBAL && o->i == id; }

static bool is_str(const dv_pyobj *o, const char *s) {
    return o && o->type == DV_PY_STR && o->str.len == strlen(s) && memcmp(o->str.s, s, o->str.len) == 0;
}

/* a tuple of non-negative ints as a shape */
static int get_shape(vm *m, const dv_pyobj *t, int *ndim, int64_t *shape) {
    if (!t || t->type != DV_PY_TUPLE) return fail(m, "array shape is not a tuple");
    if (t->seq.n > DV_NPY_MAX_DIMS) return fail(m, "array has %lld dimensions", (long long)t->seq.n);
    *ndim = (int)t->seq.n;
    int64_t count = 1;
    for (int i = 0; i < *ndim; i++) {
        int64_t d;
        if (!dv_py_as_i64(t->seq.items[i], &d) || d < 0) return fail(m, "array shape has a bad dimension");
        if (d && count > ((int64_t)1 << 40) / d) return fail(m, "array shape too large");
        count *= d;
        shape[i] = d;
    }
    return 0;
}

/* turn o (any object) into a numeric NDARRAY from raw bytes in the file's layout */
static int build_numeric(vm *m, dv_pyobj *o, const pydtype *dt, int ndim, const int64_t *shape, bool fortran,
                         const dv_pyobj *data) {
    if (!data || (data->type != DV_PY_BYTES && data->type != DV_PY_STR))
        return fail(m, "array data is not bytes but %s", data ? dv_pytype_name(data->type) : "nothing");
    dv_npy_header h = {.dtype = dt->dt, .swap = dt->swap, .fortran = fortran, .ndim = ndim};
    if (ndim) memcpy(h.shape, shape, (size_t)ndim * sizeof *shape);
    h.count = 1;
    for (int i = 0; i < ndim; i++) h.count *= shape[i];
    size_t bytes = (size_t)h.count * dv_npy_dtype_size(dt->dt);
    if (data->str.len != bytes)
        return fail(m, "array data has %zu bytes, shape and dtype %s say %zu", data->str.len,
                    dv_npy_dtype_name(dt->dt), bytes);
    void *p;
    if (!h.swap && (!fortran || ndim <= 1)) {
        p = data->str.s; /* already in the arena, 64-byte aligned and in place: share it */
    } else {
        if (!(p = arena_try(m->a, bytes))) return OOM(m);
        dv_npy_convert(&h, (const uint8_t *)data->str.s, p);
    }
    memset(o, 0, sizeof *o);
    o->type = DV_PY_NDARRAY;
    o->array = dv_npy_wrap(dt->dt, ndim, shape, p);
    return 0;
}

static const pydtype *as_dtype(vm *m, const dv_pyobj *o) {
    if (!o || (int)o->type != PY_DTYPE) {
        fail(m, "expected a numpy.dtype, got %s", o ? dv_pytype_name(o->type) : "nothing");
        return NULL;
    }
    return (const pydtype *)o;
}

/* REDUCE: callable(*args) for the allowed globals */
static int reduce(vm *m) {
    dv_pyobj *args = pop(m), *fn = pop(m);
    if (!args || !fn) return -1;
    if ((int)fn->type != PY_GLOBAL)
        return fail(m, "REDUCE of a %s (only numpy globals can be called)", dv_pytype_name(fn->type));
    if (args->type != DV_PY_TUPLE) return fail(m, "REDUCE arguments are a %s, not a tuple", dv_pytype_name(args->type));
    dv_pyobj **v = args->seq.items;
    int64_t n = args->seq.n;
    switch (fn->i) {
    case G_RECONSTRUCT: {
        if (n != 3 || !is_global(v[0], G_NDARRAY))
            return fail(m, "_reconstruct expects (numpy.ndarray, shape, typecode)");
        return push(m, obj_try(m->a, PY_PENDING));
    }
    case G_DTYPE: {
        if (n < 1 || n > 3 || v[0]->type != DV_PY_STR) return fail(m, "numpy.dtype expects (typestr, align, copy)");
        char d[16];
        const char *s = v[0]->str.s;
        if (v[0]->str.len > 8) return fail(m, "unsupported dtype '%.16s'", s);
        snprintf(d, sizeof d, "%s%s", strchr("<>|=", s[0]) && s[0] ? "" : "|", s);
        dv_npy_header h;
        char buf[128];
        int hn = snprintf(buf, sizeof buf, "\x93NUMPY\x01%c%c%c{'descr': '%s', 'fortran_order': False, 'shape': (), }",
                          0, 0, 0, d);
        /* reuse the .npy descr parser through a minimal header */
        buf[8] = (char)(hn - 10), buf[9] = 0;
        if (dv_npy_parse_header((const uint8_t *)buf, (size_t)hn, m->what, &h, NULL, 0) != 0)
            return fail(m, "unsupported dtype '%s'", s);
        pydtype *t = (pydtype *)obj_try(m->a, PY_DTYPE);
        if (!t) return OOM(m);
        t->dt = h.dtype;
        t->swap = h.swap;
        return push(m, &t->o);
    }
    case G_SCALAR: {
        const pydtype *dt = n >= 1 ? as_dtype(m, v[0]) : NULL;
        if (!dt) return n >= 1 ? -1 : fail(m, "scalar expects (dtype, data)");
        if (dt->dt == DV_NPY_OBJECT) {
            if (n != 2) return fail(m, "object scalar expects (dtype, object)");
            return push(m, v[1]);
        }
        if (n != 2) return fail(m, "scalar expects (dtype, bytes)");
        dv_pyobj *o = obj_try(m->a, DV_PY_NDARRAY);
        if (!o) return OOM(m);
        if (build_numeric(m, o, dt, 0, NULL, false, v[1]) != 0) return -1;
        return push(m, o);
    }
    case G_FROMBUFFER: {
        if (n != 4) return fail(m, "_frombuffer expects (buffer, dtype, shape, order)");
        const pydtype *dt = as_dtype(m, v[1]);
        if (!dt) return -1;
        if (dt->dt == DV_NPY_OBJECT) return fail(m, "_frombuffer of an object dtype");
        int ndim;
        int64_t shape[DV_NPY_MAX_DIMS];
        if (get_shape(m, v[2], &ndim, shape) != 0) return -1;
        bool f = is_str(v[3], "F");
        if (!f && !is_str(v[3], "C")) return fail(m, "_frombuffer order is not 'C' or 'F'");
        dv_pyobj *o = obj_try(m->a, DV_PY_NDARRAY);
        if (!o) return OOM(m);
        if (build_numeric(m, o, dt, ndim, shape, f, v[0]) != 0) return -1;
        return push(m, o);
    }
    case G_ENCODE: {
        if (n != 2 || v[0]->type != DV_PY_STR || !(is_str(v[1], "latin1") || is_str(v[1], "latin-1")))
            return fail(m, "encode expects (str, 'latin1')");
        /* UTF-8 code points < 256 to bytes */
        const uint8_t *s = (const uint8_t *)v[0]->str.s;
        size_t sn = v[0]->str.len, k = 0;
        char *out = arena_try(m->a, sn + 1);
        dv_pyobj *o = obj_try(m->a, DV_PY_BYTES);
        if (!out || !o) return OOM(m);
        for (size_t i = 0; i < sn;) {
            if (s[i] < 0x80) out[k++] = (char)s[i++];
            else if ((s[i] & 0xE0) == 0xC0 && i + 1 < sn && (s[i + 1] & 0xC0) == 0x80 && s[i] <= 0xC3) {
                out[k++] = (char)(((s[i] & 3) << 6) | (s[i + 1] & 0x3F));
                i += 2;
            } else return fail(m, "encode: character outside latin-1");
        }
        out[k] = 0;
        o->str.s = out, o->str.len = k;
        return push(m, o);
    }
    case G_BYTES:
        if (n != 0) return fail(m, "bytes() with arguments is not supported");
        return push(m, py_strn(m->a, DV_PY_BYTES, "", 0, false));
    default: return fail(m, "%s cannot be called", dv_pytype_name(fn->type));
    }
}

/* BUILD: obj.__setstate__(state) for dtypes and ndarrays */
static int build(vm *m) {
    dv_pyobj *state = pop(m), *o = top(m);
    if (!state || !o) return -1;
    if ((int)o->type == PY_DTYPE) {
        pydtype *t = (pydtype *)o;
        if (state->type != DV_PY_TUPLE || state->seq.n < 8 || state->seq.n > 9 ||
            state->seq.items[1]->type != DV_PY_STR)
            return fail(m, "numpy.dtype state is not (version, byteorder, ...)");
        for (int i = 2; i <= 4; i++)
            if (state->seq.items[i]->type != DV_PY_NONE)
                return fail(m, "structured or sub-array dtypes are not supported");
        const char *bo = state->seq.items[1]->str.s;
        if (strcmp(bo, ">") == 0) t->swap = dv_npy_dtype_size(t->dt) > 1;
        else if (strcmp(bo, "<") == 0 || strcmp(bo, "|") == 0 || strcmp(bo, "=") == 0) t->swap = false;
        else return fail(m, "dtype byte order '%.4s'", bo);
        return 0;
    }
    if ((int)o->type != PY_PENDING)
        return fail(m, "BUILD of a %s (only arrays and dtypes have a state)", dv_pytype_name(o->type));
    if (state->type != DV_PY_TUPLE || (state->seq.n != 5 && state->seq.n != 4))
        return fail(m, "ndarray state is not (version, shape, dtype, is_fortran, data)");
    dv_pyobj **v = state->seq.items + (state->seq.n == 5);
    int ndim;
    int64_t shape[DV_NPY_MAX_DIMS];
    if (get_shape(m, v[0], &ndim, shape) != 0) return -1;
    const pydtype *dt = as_dtype(m, v[1]);
    if (!dt) return -1;
    if (v[2]->type != DV_PY_BOOL && v[2]->type != DV_PY_INT) return fail(m, "ndarray is_fortran flag is not a bool");
    bool fortran = v[2]->type == DV_PY_BOOL ? v[2]->b : v[2]->i != 0;
    if (dt->dt != DV_NPY_OBJECT) return build_numeric(m, o, dt, ndim, shape, fortran, v[3]);
    /* object array: a list of its elements in C order (numpy pickles them that way whatever
     * the memory layout) */
    int64_t count = 1;
    for (int i = 0; i < ndim; i++) count *= shape[i];
    if (v[3]->type != DV_PY_LIST) return fail(m, "object array data is a %s, not a list", dv_pytype_name(v[3]->type));
    if (v[3]->seq.n != count) return fail(m, "object array has %lld elements, shape says %lld", (long long)v[3]->seq.n,
                                          (long long)count);
    o->type = DV_PY_OBJARRAY;
    o->seq = v[3]->seq;
    o->ndim = ndim;
    memcpy(o->shape, shape, (size_t)ndim * sizeof *shape);
    return 0;
}

static int run(vm *m, dv_pyobj **out) {
    for (;;) {
        if (m->pos >= m->len) return fail(m, "stream ends without STOP");
        m->op_at = m->pos;
        m->op = m->b[m->pos++];
        const uint8_t *p = m->b + m->pos;
        int rc = 0;
        switch (m->op) {
        case 0x80: /* PROTO */
            if (need(m, 1)) return -1;
            if (p[0] > 5) return fail(m, "pickle protocol %d is not supported", p[0]);
            m->pos += 1;
            break;
        case 0x95: /* FRAME: a length prefix, nothing to do */
            if (need(m, 8)) return -1;
            m->pos += 8;
            break;
        case '.': /* STOP */
            if (!(*out = pop(m))) return -1;
            return 0;
        case '(': rc = push(m, &g_mark); break;
        case '0': rc = pop(m) ? 0 : -1; break; /* POP */
        case '1': { /* POP_MARK */
            int64_t k = find_mark(m);
            if (k < 0) return -1;
            m->sp = (size_t)k;
            break;
        }
        case '2': { /* DUP */
            dv_pyobj *o = top(m);
            rc = o ? push(m, o) : -1;
            break;
        }
        case 'N': rc = push(m, obj_try(m->a, DV_PY_NONE)); break;
        case 0x88: case 0x89: { /* NEWTRUE NEWFALSE */
            dv_pyobj *o = obj_try(m->a, DV_PY_BOOL);
            if (o) o->b = m->op == 0x88;
            rc = push(m, o);
            break;
        }
        case 'J': case 'K': case 'M': { /* BININT BININT1 BININT2 */
            int n = m->op == 'J' ? 4 : m->op == 'K' ? 1 : 2;
            if (need(m, (size_t)n)) return -1;
            dv_pyobj *o = obj_try(m->a, DV_PY_INT);
            if (o) o->i = n == 4 ? (int64_t)(int32_t)(uint32_t)le(p, 4) : (int64_t)le(p, n);
            m->pos += (size_t)n;
            rc = push(m, o);
            break;
        }
        case 0x8a: case 0x8b: { /* LONG1 LONG4: little-endian two's complement */
            int w = m->op == 0x8a ? 1 : 4;
            if (need(m, (size_t)w)) return -1;
            uint64_t n = le(p, w);
            m->pos += (size_t)w;
            if (need(m, n)) return -1;
            if (n > 8) return fail(m, "int of %llu bytes does not fit in 64 bits", (unsigned long long)n);
            uint64_t u = n ? le(m->b + m->pos, (int)n) : 0;
            if (n && n < 8 && (u >> (8 * n - 1)) & 1) u |= ~(uint64_t)0 << (8 * n); /* sign extend */
            m->pos += n;
            dv_pyobj *o = obj_try(m->a, DV_PY_INT);
            if (o) o->i = (int64_t)u;
            rc = push(m, o);
            break;
        }
        case 'G': { /* BINFLOAT: big-endian double */
            if (need(m, 8)) return -1;
            uint64_t u = 0;
            for (int i = 0; i < 8; i++) u = u << 8 | p[i];
            dv_pyobj *o = obj_try(m->a, DV_PY_FLOAT);
            if (o) memcpy(&o->f, &u, 8);
            m->pos += 8;
            rc = push(m, o);
            break;
        }
        case 0x8c: case 'X': case 0x8d: /* SHORT_BINUNICODE BINUNICODE BINUNICODE8 */
        case 'C': case 'B': case 0x8e: case 0x96: /* SHORT_BINBYTES BINBYTES BINBYTES8 BYTEARRAY8 */
        case 'U': case 'T': { /* SHORT_BINSTRING BINSTRING (Python 2 str: bytes) */
            int w = (m->op == 0x8c || m->op == 'C' || m->op == 'U')     ? 1
                    : (m->op == 0x8d || m->op == 0x8e || m->op == 0x96) ? 8
                                                                        : 4;
            if (need(m, (size_t)w)) return -1;
            uint64_t n = le(p, w);
            if (m->op == 'T' && n >> 31) return fail(m, "negative string length");
            m->pos += (size_t)w;
            if (need(m, n)) return -1;
            int type = (m->op == 0x8c || m->op == 'X' || m->op == 0x8d) ? DV_PY_STR : DV_PY_BYTES;
            rc = push(m, py_strn(m->a, type, (const char *)m->b + m->pos, n, false));
            m->pos += n;
            break;
        }
        case ']': rc = push(m, obj_try(m->a, DV_PY_LIST)); break;
        case '}': rc = push(m, obj_try(m->a, DV_PY_DICT)); break;
        case ')': rc = push(m, make_tuple(m, NULL, 0)); break;
        case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
            size_t n = (size_t)(m->op - 0x84);
            if (m->sp < n) return fail(m, "stack underflow");
            for (size_t i = 0; i < n; i++)
                if (m->stack[m->sp - 1 - i] == &g_mark) return fail(m, "a mark inside a tuple");
            dv_pyobj *t = make_tuple(m, m->stack + m->sp - n, (int64_t)n);
            m->sp -= n;
            rc = push(m, t);
            break;
        }
        case 't': case 'l': case 'd': { /* TUPLE LIST DICT: the items above the mark */
            int64_t k = find_mark(m);
            if (k < 0) return -1;
            dv_pyobj **items = m->stack + k + 1;
            int64_t n = (int64_t)m->sp - k - 1;
            dv_pyobj *o;
            if (m->op == 't') o = make_tuple(m, items, n);
            else if (m->op == 'l') {
                o = obj_try(m->a, DV_PY_LIST);
                for (int64_t i = 0; o && i < n; i++)
                    if (list_append(m->a, o, items[i], false) != 0) o = NULL;
            } else {
                if (n % 2) return fail(m, "odd number of items for a dict");
                o = obj_try(m->a, DV_PY_DICT);
                for (int64_t i = 0; o && i < n; i += 2)
                    if (dict_set(m->a, o, items[i], items[i + 1], false) != 0) o = NULL;
            }
            m->sp = (size_t)k;
            rc = push(m, o);
            break;
        }
        case 'a': { /* APPEND */
            dv_pyobj *v = pop(m), *l = top(m);
            if (!v || !l) return -1;
            if (l->type != DV_PY_LIST) return fail(m, "APPEND to a %s", dv_pytype_name(l->type));
            rc = list_append(m->a, l, v, false) ? OOM(m) : 0;
            break;
        }
        case 'e': { /* APPENDS */
            int64_t k = find_mark(m);
            if (k < 1) return k < 0 ? -1 : fail(m, "APPENDS without a list");
            dv_pyobj *l = m->stack[k - 1];
            if (l->type != DV_PY_LIST) return fail(m, "APPENDS to a %s", dv_pytype_name(l->type));
            for (size_t i = (size_t)k + 1; i < m->sp; i++)
                if (list_append(m->a, l, m->stack[i], false) != 0) return OOM(m);
            m->sp = (size_t)k;
            break;
        }
        case 's': { /* SETITEM */
            dv_pyobj *v = pop(m), *k = pop(m), *d = top(m);
            if (!v || !k || !d) return -1;
            if (d->type != DV_PY_DICT) return fail(m, "SETITEM on a %s", dv_pytype_name(d->type));
            rc = dict_set(m->a, d, k, v, false) ? OOM(m) : 0;
            break;
        }
        case 'u': { /* SETITEMS */
            int64_t k = find_mark(m);
            if (k < 1) return k < 0 ? -1 : fail(m, "SETITEMS without a dict");
            dv_pyobj *d = m->stack[k - 1];
            if (d->type != DV_PY_DICT) return fail(m, "SETITEMS on a %s", dv_pytype_name(d->type));
            if ((m->sp - (size_t)k - 1) % 2) return fail(m, "odd number of items for SETITEMS");
            for (size_t i = (size_t)k + 1; i < m->sp; i += 2)
                if (dict_set(m->a, d, m->stack[i], m->stack[i + 1], false) != 0) return OOM(m);
            m->sp = (size_t)k;
            break;
        }
        case 'c': { /* GLOBAL module\nname\n */
            const uint8_t *e1 = memchr(p, '\n', m->len - m->pos);
            const uint8_t *e2 = e1 ? memchr(e1 + 1, '\n', (size_t)(m->b + m->len - e1 - 1)) : NULL;
            if (!e2) return fail(m, "GLOBAL without two newline-terminated names");
            m->pos = (size_t)(e2 + 1 - m->b);
            rc = global(m, (const char *)p, (size_t)(e1 - p), (const char *)e1 + 1, (size_t)(e2 - e1 - 1));
            break;
        }
        case 0x93: { /* STACK_GLOBAL */
            dv_pyobj *name = pop(m), *mod = pop(m);
            if (!name || !mod) return -1;
            if (name->type != DV_PY_STR || mod->type != DV_PY_STR) return fail(m, "STACK_GLOBAL names are not str");
            rc = global(m, mod->str.s, mod->str.len, name->str.s, name->str.len);
            break;
        }
        case 'R': rc = reduce(m); break;
        case 'b': rc = build(m); break;
        case 'q': case 'r': { /* BINPUT LONG_BINPUT */
            int w = m->op == 'q' ? 1 : 4;
            if (need(m, (size_t)w)) return -1;
            rc = memo_put(m, le(p, w));
            m->pos += (size_t)w;
            break;
        }
        case 0x94: /* MEMOIZE */
            rc = memo_put(m, m->mcount); /* at len(memo), as Python's Unpickler */
            break;
        case 'h': case 'j': { /* BINGET LONG_BINGET */
            int w = m->op == 'h' ? 1 : 4;
            if (need(m, (size_t)w)) return -1;
            rc = memo_get(m, le(p, w));
            m->pos += (size_t)w;
            break;
        }
        case 0x98: /* READONLY_BUFFER: a no-op on in-band data */
            rc = top(m) ? 0 : -1;
            break;
        case 0x97: return fail(m, "out-of-band buffers (NEXT_BUFFER) are not supported");
        default: return fail(m, "opcode not supported (only the data subset numpy writes is)");
        }
        if (rc != 0) return -1;
    }
}

int dv_pickle_parse(const void *buf, size_t len, const char *what, dv_pyarena *arena, dv_pyobj **out, char *err,
                    size_t errlen) {
    *out = NULL;
    vm m = {.b = buf, .len = len, .what = what, .a = arena, .err = err, .errlen = errlen};
    int rc = run(&m, out);
    if (rc != 0) *out = NULL;
    free(m.stack);
    free(m.memo);
    return rc;
}

int dv_npy_parse_pickled(const void *buf_, size_t len, const char *what, dv_pyarena *arena, dv_pyobj **out,
                         char *err, size_t errlen) {
    const uint8_t *buf = buf_;
    *out = NULL;
    dv_npy_header h;
    if (dv_npy_parse_header(buf, len, what, &h, err, errlen) != 0) return -1;
    if (h.dtype != DV_NPY_OBJECT) {
        /* a numeric .npy: hand it over as an ndarray, as np.load would */
        size_t bytes = (size_t)h.count * dv_npy_dtype_size(h.dtype);
        if (len - h.data_offset != bytes)
            return ERRF("%s: %zu bytes of data, shape says %zu", what, len - h.data_offset, bytes);
        dv_pyobj *o = obj_try(arena, DV_PY_NDARRAY);
        void *p = o ? arena_try(arena, bytes) : NULL;
        if (!p) return ERRF("%s: out of memory", what);
        dv_npy_convert(&h, buf + h.data_offset, p);
        o->array = dv_npy_wrap(h.dtype, h.ndim, h.shape, p);
        *out = o;
        return 0;
    }
    dv_pyobj *o;
    if (dv_pickle_parse(buf + h.data_offset, len - h.data_offset, what, arena, &o, err, errlen) != 0) return -1;
    if (o->type != DV_PY_OBJARRAY)
        return ERRF("%s: the pickle holds a %s, not an object array", what, dv_pytype_name(o->type));
    if (o->ndim != h.ndim || memcmp(o->shape, h.shape, (size_t)h.ndim * sizeof *h.shape) != 0)
        return ERRF("%s: the pickled array's shape differs from the .npy header's", what);
    *out = h.ndim == 0 ? o->seq.items[0] : o;
    return 0;
}

int dv_npy_load_pickled(const char *path, dv_pyarena *arena, dv_pyobj **out, char *err, size_t errlen) {
    *out = NULL;
    dv_npy_map *map;
    if (dv_npy_map_file(path, &map, err, errlen) != 0) return -1;
    int rc = dv_npy_parse_pickled(map->base, map->len, path, arena, out, err, errlen);
    dv_npy_map_unref(map);
    return rc;
}

/* ---------------------------------------------------------------- the writer (protocol 3) */

typedef struct {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} obuf;

static void put(obuf *b, const void *p, size_t n) {
    if (b->oom || n == 0) return;
    if (b->cap - b->n < n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->n < n) cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q, b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void put1(obuf *b, int c) {
    uint8_t x = (uint8_t)c;
    put(b, &x, 1);
}

static void put_le(obuf *b, uint64_t v, int n) {
    uint8_t x[8];
    for (int i = 0; i < n; i++) x[i] = (uint8_t)(v >> (8 * i));
    put(b, x, (size_t)n);
}

static void w_int(obuf *b, int64_t v) {
    if (v >= 0 && v < 256) put1(b, 'K'), put1(b, (int)v);
    else if (v >= 0 && v < 65536) put1(b, 'M'), put_le(b, (uint64_t)v, 2);
    else if (v >= INT32_MIN && v <= INT32_MAX) put1(b, 'J'), put_le(b, (uint64_t)v, 4);
    else { /* LONG1: the shortest two's complement */
        int n = 8;
        while (n > 1) {
            int64_t lo = -((int64_t)1 << (8 * (n - 1) - 1)), hi = ((int64_t)1 << (8 * (n - 1) - 1)) - 1;
            if (v < lo || v > hi) break;
            n--;
        }
        put1(b, 0x8a), put1(b, n), put_le(b, (uint64_t)v, n);
    }
}

static void w_str(obuf *b, const char *s, size_t n) { put1(b, 'X'), put_le(b, n, 4), put(b, s, n); }

static void w_bytes(obuf *b, const void *p, size_t n) {
    if (n < 256) put1(b, 'C'), put1(b, (int)n);
    else if (n <= 0xFFFFFFFFu) put1(b, 'B'), put_le(b, n, 4);
    else put1(b, 0x8e), put_le(b, n, 8);
    put(b, p, n);
}

static void w_global(obuf *b, const char *mod, const char *name) {
    put1(b, 'c'), put(b, mod, strlen(mod)), put1(b, '\n'), put(b, name, strlen(name)), put1(b, '\n');
}

/* numpy.dtype('f4', False, True) with state (3, '<', None, None, None, -1, -1, flags) */
static void w_dtype(obuf *b, dv_npy_dtype dt) {
    const char *name = dt == DV_NPY_OBJECT ? "|O8" : dv_npy_dtype_name(dt);
    w_global(b, "numpy", "dtype");
    w_str(b, name + 1, strlen(name + 1));
    put1(b, 0x89), put1(b, 0x88), put1(b, 0x87), put1(b, 'R');
    put1(b, '('), w_int(b, 3), w_str(b, name, 1);
    put1(b, 'N'), put1(b, 'N'), put1(b, 'N');
    w_int(b, -1), w_int(b, -1), w_int(b, dt == DV_NPY_OBJECT ? 63 : 0);
    put1(b, 't'), put1(b, 'b');
}

static int w_obj(obuf *b, const dv_pyobj *o, int depth, char *err, size_t errlen);

/* _reconstruct(ndarray, (0,), b'b') + BUILD (1, shape, dtype, False, data) */
static int w_array(obuf *b, dv_npy_dtype dt, int ndim, const int64_t *shape, const dv_pyobj *o, int depth, char *err,
                   size_t errlen) {
    w_global(b, "numpy.core.multiarray", "_reconstruct");
    w_global(b, "numpy", "ndarray");
    w_int(b, 0), put1(b, 0x85), w_bytes(b, "b", 1), put1(b, 0x87), put1(b, 'R');
    put1(b, '('), w_int(b, 1);
    if (ndim == 0) put1(b, ')');
    else {
        put1(b, '(');
        for (int i = 0; i < ndim; i++) w_int(b, shape[i]);
        put1(b, 't');
    }
    w_dtype(b, dt);
    put1(b, 0x89);
    if (dt == DV_NPY_OBJECT) {
        put1(b, ']');
        if (o->seq.n) {
            put1(b, '(');
            for (int64_t i = 0; i < o->seq.n; i++)
                if (w_obj(b, o->seq.items[i], depth + 1, err, errlen) != 0) return -1;
            put1(b, 'e');
        }
    } else {
        w_bytes(b, o->array.data, (size_t)o->array.count * dv_npy_dtype_size(dt));
    }
    put1(b, 't'), put1(b, 'b');
    return 0;
}

static int w_obj(obuf *b, const dv_pyobj *o, int depth, char *err, size_t errlen) {
    if (depth > 1000) return ERRF("dv_npy_save_pickled: objects nested more than 1000 deep (a cycle?)");
    switch ((int)o->type) {
    case DV_PY_NONE: put1(b, 'N'); return 0;
    case DV_PY_BOOL: put1(b, o->b ? 0x88 : 0x89); return 0;
    case DV_PY_INT: w_int(b, o->i); return 0;
    case DV_PY_FLOAT: {
        uint64_t u;
        memcpy(&u, &o->f, 8);
        put1(b, 'G');
        for (int i = 7; i >= 0; i--) put1(b, (int)(u >> (8 * i)) & 255);
        return 0;
    }
    case DV_PY_STR: w_str(b, o->str.s, o->str.len); return 0;
    case DV_PY_BYTES: w_bytes(b, o->str.s, o->str.len); return 0;
    case DV_PY_LIST:
        put1(b, ']');
        for (int64_t i = 0; i < o->seq.n; i += 1000) { /* APPENDS in batches, as pickle does */
            put1(b, '(');
            for (int64_t j = i; j < o->seq.n && j < i + 1000; j++)
                if (w_obj(b, o->seq.items[j], depth + 1, err, errlen) != 0) return -1;
            put1(b, 'e');
        }
        return 0;
    case DV_PY_TUPLE:
        if (o->seq.n == 0) {
            put1(b, ')');
            return 0;
        }
        if (o->seq.n > 3) put1(b, '(');
        for (int64_t i = 0; i < o->seq.n; i++)
            if (w_obj(b, o->seq.items[i], depth + 1, err, errlen) != 0) return -1;
        put1(b, o->seq.n > 3 ? 't' : 0x84 + (int)o->seq.n);
        return 0;
    case DV_PY_DICT:
        put1(b, '}');
        for (int64_t i = 0; i < o->dict.n; i += 1000) {
            put1(b, '(');
            for (int64_t j = i; j < o->dict.n && j < i + 1000; j++)
                if (w_obj(b, o->dict.keys[j], depth + 1, err, errlen) != 0 ||
                    w_obj(b, o->dict.values[j], depth + 1, err, errlen) != 0)
                    return -1;
            put1(b, 'u');
        }
        return 0;
    case DV_PY_NDARRAY:
        return w_array(b, o->array.dtype, o->array.ndim, o->array.shape, o, depth, err, errlen);
    case DV_PY_OBJARRAY: return w_array(b, DV_NPY_OBJECT, o->ndim, o->shape, o, depth, err, errlen);
    default: return ERRF("dv_npy_save_pickled: cannot write a %s", dv_pytype_name(o->type));
    }
}

int dv_npy_save_pickled(const char *path, const dv_pyobj *obj, char *err, size_t errlen) {
    /* a 0-d object array holding obj (an object array is written as itself) */
    dv_pyobj holder = {.type = DV_PY_OBJARRAY, .ndim = 0};
    dv_pyobj *items[1] = {(dv_pyobj *)obj};
    const dv_pyobj *arr = obj;
    if (obj->type != DV_PY_OBJARRAY) {
        holder.seq.items = items;
        holder.seq.n = 1;
        arr = &holder;
    }
    obuf b = {0};
    put1(&b, 0x80), put1(&b, 3);
    if (w_obj(&b, arr, 0, err, errlen) != 0) {
        free(b.p);
        return -1;
    }
    put1(&b, '.');
    if (b.oom) {
        free(b.p);
        return ERRF("%s: out of memory", path);
    }
    char hdr[4096];
    size_t hn = dv_npy_header_bytes(DV_NPY_OBJECT, "|O", arr->ndim, arr->shape, hdr, sizeof hdr);
    dv_npy_atomic w;
    if (!hn || dv_npy_atomic_open(&w, path, err, errlen) != 0) {
        free(b.p);
        return hn ? -1 : ERRF("%s: header too long", path);
    }
    dv_npy_atomic_write(&w, hdr, hn, err, errlen);
    dv_npy_atomic_write(&w, b.p, b.n, err, errlen);
    free(b.p);
    return dv_npy_atomic_commit(&w, err, errlen);
}
