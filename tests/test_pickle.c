/* tests/test_pickle.c — the pickle subset against pickles written by real Python / numpy
 * (tests/reference/gen_npy.py): CALVIN's auto_lang_ann.npy layout, scene_info with numpy
 * scalars, object arrays, protocols 2..5 of every modelled type, refusal of other globals,
 * and the writer's round trip (np.load of its output is checked by
 * tests/reference/check_written.py, run by hand).
 */
#include "data/calvin/pickle.h"
#include "tests/test.h"
#include "tests/util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REF "tests/reference/npy/"

static bool is_str(const dv_pyobj *o, const char *s) {
    return o && o->type == DV_PY_STR && o->str.len == strlen(s) && strcmp(o->str.s, s) == 0;
}

static bool is_int(const dv_pyobj *o, int64_t v) {
    int64_t x;
    return o && dv_py_as_i64(o, &x) && x == v;
}

/* gen_npy.py lang_ann(n) */
static void check_lang_ann(const dv_pyobj *d, int n, const char *what) {
    static const char *ann[] = {"open the drawer", "push the red block to the left",
                                "lift the blue block from the table"};
    static const char *task[] = {"open_drawer", "push_red_block_left", "lift_blue_block_table"};
    CHECK_MSG(d && d->type == DV_PY_DICT, "%s: not a dict", what);
    const dv_pyobj *a = dv_py_path(d, "language.ann"), *t = dv_py_path(d, "language.task");
    const dv_pyobj *e = dv_py_path(d, "language.emb"), *ix = dv_py_path(d, "info.indx");
    const dv_pyobj *ep = dv_py_path(d, "info.episodes");
    CHECK_MSG(a && a->type == DV_PY_LIST && a->seq.n == n, "%s: language.ann", what);
    CHECK_MSG(t && t->type == DV_PY_LIST && t->seq.n == n, "%s: language.task", what);
    for (int i = 0; a && t && i < n && i < a->seq.n && i < t->seq.n; i++) {
        CHECK(is_str(a->seq.items[i], ann[i]));
        CHECK(is_str(t->seq.items[i], task[i]));
    }
    CHECK_MSG(e && e->type == DV_PY_NDARRAY && e->array.dtype == DV_NPY_F32 && e->array.ndim == 3, "%s: emb", what);
    if (e && e->type == DV_PY_NDARRAY) {
        CHECK(e->array.shape[0] == n && e->array.shape[1] == 1 && e->array.shape[2] == 384);
        bool ok = true;
        for (int64_t i = 0; i < e->array.count; i++)
            ok &= dv_npy_get_f64(&e->array, i) == (double)((float)i / 1000.0f - 0.5f);
        CHECK_MSG(ok, "%s: emb values", what);
    }
    CHECK_MSG(ix && ix->type == DV_PY_LIST && ix->seq.n == n, "%s: info.indx", what);
    for (int i = 0; ix && i < n && i < ix->seq.n; i++) {
        const dv_pyobj *p = ix->seq.items[i];
        CHECK(p->type == DV_PY_TUPLE && p->seq.n == 2 && is_int(p->seq.items[0], 10 * i) &&
              is_int(p->seq.items[1], 10 * i + 7));
    }
    CHECK(ep && ep->type == DV_PY_LIST && ep->seq.n == 0);
    CHECK(dv_py_path(d, "language.nothing") == NULL && dv_py_path(d, "language.ann.x") == NULL);
}

TEST(pickle_auto_lang_ann) {
    dv_pyarena *a = dv_pyarena_new();
    dv_pyobj *d;
    char err[256];
    CHECK_MSG(dv_npy_load_pickled(REF "auto_lang_ann.npy", a, &d, err, sizeof err) == 0, "%s", err);
    check_lang_ann(d, 3, "auto_lang_ann.npy");
    dv_pyarena_free(a);
}

TEST(pickle_scene_info_and_object_arrays) {
    dv_pyarena *a = dv_pyarena_new();
    dv_pyobj *d;
    char err[256];
    CHECK_MSG(dv_npy_load_pickled(REF "scene_info.npy", a, &d, err, sizeof err) == 0, "%s", err);
    const dv_pyobj *s = dv_py_get(d, "calvin_scene_A");
    CHECK(s && s->type == DV_PY_LIST && s->seq.n == 2 && is_int(s->seq.items[0], 100) && is_int(s->seq.items[1], 219));
    CHECK(s && s->seq.items[0]->type == DV_PY_NDARRAY && s->seq.items[0]->array.dtype == DV_NPY_I64 &&
          s->seq.items[0]->array.ndim == 0);
    const char *files[] = {REF "objarray.npy", REF "objarray_fortran.npy"};
    for (int k = 0; k < 2; k++) {
        CHECK_MSG(dv_npy_load_pickled(files[k], a, &d, err, sizeof err) == 0, "%s", err);
        CHECK(d && d->type == DV_PY_OBJARRAY && d->ndim == 2 && d->shape[0] == 2 && d->shape[1] == 2 && d->seq.n == 4);
        if (!d || d->type != DV_PY_OBJARRAY) continue;
        /* [[ "a", 1 ], [ None, array([-1.5, -1.25], f4) ]] in C order */
        CHECK_MSG(is_str(d->seq.items[0], "a") && is_int(d->seq.items[1], 1) && d->seq.items[2]->type == DV_PY_NONE,
                  "%s: element order", files[k]);
        const dv_pyobj *x = d->seq.items[3];
        CHECK(x->type == DV_PY_NDARRAY && x->array.count == 2 && dv_npy_get_f64(&x->array, 1) == -1.25);
    }
    /* a numeric .npy through the same call: an ndarray */
    CHECK_MSG(dv_npy_load_pickled(REF "be_i8.npy", a, &d, err, sizeof err) == 0, "%s", err);
    CHECK(d && d->type == DV_PY_NDARRAY && d->array.count == 5 && dv_npy_get_i64(&d->array, 1) == -10);
    dv_pyarena_free(a);
}

static void check_mix(const dv_pyobj *d, const char *what) {
    CHECK_MSG(d && d->type == DV_PY_DICT, "%s: not a dict", what);
    if (!d || d->type != DV_PY_DICT) return;
    const dv_pyobj *o;
    CHECK((o = dv_py_get(d, "none")) && o->type == DV_PY_NONE);
    CHECK((o = dv_py_get(d, "t")) && o->type == DV_PY_BOOL && o->b);
    CHECK((o = dv_py_get(d, "f")) && o->type == DV_PY_BOOL && !o->b);
    CHECK(is_int(dv_py_get(d, "small"), 7));
    CHECK(is_int(dv_py_get(d, "neg"), -300));
    CHECK(is_int(dv_py_get(d, "i32"), 2147483647));
    CHECK_MSG(is_int(dv_py_get(d, "big"), ((int64_t)1 << 62) + 5), "%s: big", what);
    CHECK(is_int(dv_py_get(d, "negbig"), -((int64_t)1 << 40)));
    CHECK((o = dv_py_get(d, "pi")) && o->type == DV_PY_FLOAT && o->f == 3.25);
    CHECK((o = dv_py_get(d, "nan_free")) && o->type == DV_PY_FLOAT && o->f == 0 && signbit(o->f));
    CHECK(is_str(dv_py_get(d, "s"), "h\xc3\xa9llo \xe2\x98\x83"));
    CHECK(is_str(dv_py_get(d, "empty_s"), ""));
    CHECK_MSG((o = dv_py_get(d, "b")) && o->type == DV_PY_BYTES && o->str.len == 8 &&
                  memcmp(o->str.s,
                         "\0\1\xff"
                         "bytes",
                         8) == 0,
              "%s: bytes", what);
    CHECK_MSG((o = dv_py_get(d, "empty_b")) && o->type == DV_PY_BYTES && o->str.len == 0, "%s: empty bytes", what);
    o = dv_py_get(d, "list");
    CHECK(o && o->type == DV_PY_LIST && o->seq.n == 5);
    if (o && o->seq.n == 5) {
        CHECK(is_int(o->seq.items[0], 1) && is_str(o->seq.items[1], "two") && o->seq.items[2]->f == 3.0 &&
              o->seq.items[3]->type == DV_PY_NONE);
        const dv_pyobj *l = o->seq.items[4];
        CHECK(l->type == DV_PY_LIST && l->seq.n == 2 && l->seq.items[1]->type == DV_PY_TUPLE &&
              is_int(l->seq.items[1]->seq.items[1], 6));
    }
    const char *tk[] = {"tuple0", "tuple1", "tuple2", "tuple3", "tuple5"};
    int tn[] = {0, 1, 2, 3, 5};
    for (int k = 0; k < 5; k++) {
        o = dv_py_get(d, tk[k]);
        CHECK_MSG(o && o->type == DV_PY_TUPLE && o->seq.n == tn[k], "%s: %s", what, tk[k]);
        for (int i = 0; o && i < o->seq.n; i++) CHECK(is_int(o->seq.items[i], i + 1));
    }
    o = dv_py_path(d, "nested.a.b.c");
    CHECK(o && o->type == DV_PY_LIST && o->seq.n == 1 && o->seq.items[0]->b);
    CHECK_MSG(dv_py_get(d, "shared1") == dv_py_get(d, "shared2"), "%s: memo sharing", what);
    /* the int key 7 */
    bool found = false;
    for (int64_t i = 0; i < d->dict.n; i++)
        if (d->dict.keys[i]->type == DV_PY_INT && d->dict.keys[i]->i == 7) found = is_str(d->dict.values[i], "int key");
    CHECK(found);
    o = dv_py_get(d, "long_list");
    CHECK(o && o->type == DV_PY_LIST && o->seq.n == 1500);
    bool ok = o != NULL;
    for (int64_t i = 0; o && i < o->seq.n; i++) ok &= is_int(o->seq.items[i], i);
    CHECK(ok);
    o = dv_py_get(d, "long_str");
    CHECK(o && o->type == DV_PY_STR && o->str.len == 300 && o->str.s[299] == 'x');
}

TEST(pickle_protocols_2_to_5) {
    for (int proto = 2; proto <= 5; proto++) {
        char path[128], err[256];
        dv_pyarena *a = dv_pyarena_new();
        size_t n;
        snprintf(path, sizeof path, REF "mix_p%d.pkl", proto);
        void *b = ut_read_file(path, &n);
        CHECK(b != NULL);
        dv_pyobj *d = NULL;
        CHECK_MSG(b && dv_pickle_parse(b, n, path, a, &d, err, sizeof err) == 0, "%s", err);
        check_mix(d, path);
        free(b);

        snprintf(path, sizeof path, REF "arrays_p%d.pkl", proto);
        b = ut_read_file(path, &n);
        CHECK_MSG(b && dv_pickle_parse(b, n, path, a, &d, err, sizeof err) == 0, "%s", err);
        free(b);
        const dv_pyobj *o;
        CHECK_MSG((o = dv_py_get(d, "f4")) && o->type == DV_PY_NDARRAY && o->array.dtype == DV_NPY_F32 &&
                      o->array.ndim == 2 && o->array.shape[1] == 3 && dv_npy_get_f64(&o->array, 5) == -0.25,
                  "%s: f4", path);
        CHECK_MSG((o = dv_py_get(d, "be_i8")) && o->type == DV_PY_NDARRAY && o->array.dtype == DV_NPY_I64 &&
                      dv_npy_get_i64(&o->array, 3) == -24,
                  "%s: big-endian i8", path);
        /* (2, 3) Fortran order: element [1, 0] is 3 * 0.25 - 1.5 */
        CHECK_MSG((o = dv_py_get(d, "fortran_f8")) && o->type == DV_PY_NDARRAY &&
                      dv_npy_get_f64(&o->array, 3) == -0.75 && dv_npy_get_f64(&o->array, 1) == -1.25,
                  "%s: fortran", path);
        CHECK((o = dv_py_get(d, "u1")) && o->type == DV_PY_NDARRAY && o->array.dtype == DV_NPY_U8 &&
              dv_npy_get_i64(&o->array, 4) == 31);
        CHECK((o = dv_py_get(d, "b1")) && o->type == DV_PY_NDARRAY && o->array.dtype == DV_NPY_BOOL &&
              dv_npy_get_i64(&o->array, 1) == 1 && dv_npy_get_i64(&o->array, 2) == 0);
        double f;
        CHECK_MSG((o = dv_py_get(d, "scalar_f4")) && o->type == DV_PY_NDARRAY && o->array.ndim == 0 &&
                      dv_py_as_f64(o, &f) && f == 2.5,
                  "%s: numpy scalar", path);
        CHECK(is_int(dv_py_get(d, "scalar_i8"), -9));
        check_lang_ann(dv_py_get(d, "lang"), 2, path);
        dv_pyarena_free(a);
    }
}

TEST(pickle_refuses_globals_and_bad_streams) {
    dv_pyarena *a = dv_pyarena_new();
    char err[256];
    size_t n;
    void *b = ut_read_file(REF "evil_p3.pkl", &n);
    dv_pyobj *d;
    CHECK(b && dv_pickle_parse(b, n, "evil.pkl", a, &d, err, sizeof err) != 0);
    CHECK_MSG(strstr(err, "evil.pkl") && strstr(err, "'os.system'"), "%s", err);
    free(b);
    /* an opcode outside the subset: EMPTY_SET */
    CHECK(dv_pickle_parse("\x80\x04\x8f.", 4, "set.pkl", a, &d, err, sizeof err) != 0);
    CHECK_MSG(strstr(err, "offset 2") && strstr(err, "0x8f"), "%s", err);
    /* no STOP, stack underflow, a mark where an object must be, memo never stored */
    CHECK(dv_pickle_parse("\x80\x03N", 3, "x", a, &d, err, sizeof err) != 0 && strstr(err, "without STOP"));
    CHECK(dv_pickle_parse("\x80\x03.", 3, "x", a, &d, err, sizeof err) != 0 && strstr(err, "underflow"));
    CHECK(dv_pickle_parse("](a.", 4, "x", a, &d, err, sizeof err) != 0 && strstr(err, "mark"));
    CHECK(dv_pickle_parse("h\x05.", 3, "x", a, &d, err, sizeof err) != 0 && strstr(err, "memo"));
    /* an int wider than 64 bits (LONG1 of 9 bytes) */
    CHECK(dv_pickle_parse("\x8a\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09.", 12, "x", a, &d, err, sizeof err) != 0 &&
          strstr(err, "64 bits"));
    /* REDUCE of something that is not a numpy global */
    CHECK(dv_pickle_parse("N)R.", 4, "x", a, &d, err, sizeof err) != 0 && strstr(err, "REDUCE"));
    dv_pyarena_free(a);
}

TEST(pickle_writer_round_trip) {
    char dir[64] = "/tmp/dv_test_pickle_XXXXXX", path[128], err[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/auto_lang_ann.npy", dir);
    /* the same dict as gen_npy.py's lang_ann(3), built with the builders */
    dv_pyarena *a = dv_pyarena_new();
    dv_pyobj *root = ut_calvin_lang_ann(a, 3);
    /* every other type too */
    dv_py_set(a, root, "mix", dv_py_list(a));
    dv_pyobj *mix = (dv_pyobj *)dv_py_get(root, "mix");
    dv_py_append(a, mix, dv_py_none(a));
    dv_py_append(a, mix, dv_py_bool(a, true));
    dv_py_append(a, mix, dv_py_float(a, -2.75));
    dv_py_append(a, mix, dv_py_int(a, -((int64_t)1 << 50)));
    dv_py_append(a, mix, dv_py_int(a, INT64_MIN));
    dv_py_append(a, mix, dv_py_bytes(a, "\0ab", 3));
    dv_pyobj *info = (dv_pyobj *)dv_py_get(root, "info");
    dv_py_set(a, root, "info", info); /* setting a key again replaces it */
    CHECK(root->dict.n == 3);
    CHECK_MSG(dv_npy_save_pickled(path, root, err, sizeof err) == 0, "%s", err);

    dv_pyarena *b = dv_pyarena_new();
    dv_pyobj *d;
    CHECK_MSG(dv_npy_load_pickled(path, b, &d, err, sizeof err) == 0, "%s", err);
    check_lang_ann(d, 3, "written auto_lang_ann.npy");
    const dv_pyobj *m = dv_py_get(d, "mix");
    CHECK(m && m->type == DV_PY_LIST && m->seq.n == 6);
    if (m && m->seq.n == 6) {
        CHECK(m->seq.items[0]->type == DV_PY_NONE && m->seq.items[1]->b && m->seq.items[2]->f == -2.75);
        CHECK(is_int(m->seq.items[3], -((int64_t)1 << 50)) && is_int(m->seq.items[4], INT64_MIN));
        CHECK(m->seq.items[5]->type == DV_PY_BYTES && m->seq.items[5]->str.len == 3 &&
              m->seq.items[5]->str.s[2] == 'b');
    }
    dv_pyarena_free(b);
    dv_pyarena_free(a);
    unlink(path);
    rmdir(dir);
}
