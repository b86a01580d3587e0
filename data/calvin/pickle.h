/* data/calvin/pickle.h — the subset of Python's pickle format that numpy writes for object
 * arrays, read (and written) without Python.
 *
 * CALVIN's lang_annotations/auto_lang_ann.npy is a dict saved with
 * np.save(path, d, allow_pickle=True): a .npy whose descr is '|O' and whose data is a pickle
 * of a 0-d object ndarray holding the dict. Its layout:
 *   {'info': {'episodes': [...], 'indx': [(start, end), ...]},
 *    'language': {'ann': ['open the drawer', ...], 'task': ['open_drawer', ...],
 *                 'emb': ndarray (N, 1, 384) float32}}
 *
 * Supported: protocols 2–5; dict, list, tuple, str, bytes, int (up to 64 bits), float, None,
 * True/False, the memo (objects referenced twice), and numpy arrays rebuilt the way numpy
 * pickles them (numpy.core.multiarray._reconstruct + dtype + __setstate__, and
 * numpy.core.multiarray.scalar for numpy scalars) — including object arrays whose elements
 * are themselves any of the above. Nothing is ever imported or executed: any other global,
 * any unknown opcode, and any malformed stream is an error naming `what`, the byte offset and
 * the opcode.
 *
 * All objects of one parse (or one build) live in a dv_pyarena and are freed with it.
 */
#ifndef DV_DATA_CALVIN_PICKLE_H
#define DV_DATA_CALVIN_PICKLE_H

#include "data/calvin/npy.h"

typedef enum {
    DV_PY_NONE, DV_PY_BOOL, DV_PY_INT, DV_PY_FLOAT, DV_PY_STR, DV_PY_BYTES,
    DV_PY_LIST, DV_PY_TUPLE, DV_PY_DICT,
    DV_PY_NDARRAY, /* numeric ndarray or numpy scalar (0-d): in .array */
    DV_PY_OBJARRAY /* ndarray of objects: shape in .objarray, elements in .seq (C order) */
} dv_pytype;

typedef struct dv_pyobj dv_pyobj;
struct dv_pyobj {
    dv_pytype type;
    union {
        bool b;
        int64_t i;
        double f;
        struct { char *s; size_t len; } str;        /* STR (UTF-8, NUL-terminated) and BYTES */
        struct { dv_pyobj **items; int64_t n; } seq; /* LIST, TUPLE, OBJARRAY elements */
        struct { dv_pyobj **keys, **values; int64_t n; } dict; /* insertion order */
        dv_npy array;                                /* NDARRAY (owned by the arena) */
    };
    int ndim;                                        /* OBJARRAY only */
    int64_t shape[DV_NPY_MAX_DIMS];
};

typedef struct dv_pyarena dv_pyarena;
dv_pyarena *dv_pyarena_new(void);
void dv_pyarena_free(dv_pyarena *a);           /* frees every object made in it */

/* parse a pickle stream; the objects are allocated in arena */
int dv_pickle_parse(const void *buf, size_t len, const char *what, dv_pyarena *arena,
                    dv_pyobj **out, char *err, size_t errlen);

/* a .npy of dtype object (np.save(..., allow_pickle=True)): a 0-d array gives its item
 * (for auto_lang_ann.npy: the dict), any other shape an OBJARRAY; a numeric .npy gives an
 * NDARRAY (copied into the arena) */
int dv_npy_load_pickled(const char *path, dv_pyarena *arena, dv_pyobj **out, char *err, size_t errlen);
/* the same for a .npy image in memory (`what` names it in errors) */
int dv_npy_parse_pickled(const void *buf, size_t len, const char *what, dv_pyarena *arena, dv_pyobj **out,
                         char *err, size_t errlen);
/* writes obj the way np.save(path, np.array(obj, dtype=object), allow_pickle=True) would for
 * a dict (a 0-d object array holding it): loadable by np.load(path, allow_pickle=True).item().
 * Atomic like dv_npy_save. */
int dv_npy_save_pickled(const char *path, const dv_pyobj *obj, char *err, size_t errlen);

/* lookups (NULL when absent or when d is not a dict / the path runs into a non-dict) */
const dv_pyobj *dv_py_get(const dv_pyobj *d, const char *key);      /* str keys */
const dv_pyobj *dv_py_path(const dv_pyobj *root, const char *dotted); /* "language.ann" */
const char *dv_pytype_name(dv_pytype t);                              /* "dict", "list", ... */
/* a number as int64 / double: Python int, bool, float (integral for _i64), or a 1-element
 * numeric ndarray (numpy scalars such as np.int64(5) arrive as 0-d arrays); false otherwise */
bool dv_py_as_i64(const dv_pyobj *o, int64_t *v);
bool dv_py_as_f64(const dv_pyobj *o, double *v);

/* builders (for writers and tests); strings are copied, arrays are copied into the arena */
dv_pyobj *dv_py_none(dv_pyarena *a);
dv_pyobj *dv_py_bool(dv_pyarena *a, bool v);
dv_pyobj *dv_py_int(dv_pyarena *a, int64_t v);
dv_pyobj *dv_py_float(dv_pyarena *a, double v);
dv_pyobj *dv_py_str(dv_pyarena *a, const char *s);
dv_pyobj *dv_py_bytes(dv_pyarena *a, const void *p, size_t n);
dv_pyobj *dv_py_list(dv_pyarena *a);                 /* empty; grow with dv_py_append */
dv_pyobj *dv_py_tuple(dv_pyarena *a, int n, dv_pyobj *const *items);
dv_pyobj *dv_py_dict(dv_pyarena *a);                 /* empty; grow with dv_py_set */
dv_pyobj *dv_py_ndarray(dv_pyarena *a, const dv_npy *arr);
void dv_py_append(dv_pyarena *a, dv_pyobj *list, dv_pyobj *item);
void dv_py_set(dv_pyarena *a, dv_pyobj *dict, const char *key, dv_pyobj *value);

#endif
