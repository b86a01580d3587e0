/* tests/test_npy.c — .npy / .npz reading and writing against files written by real numpy
 * (tests/reference/gen_npy.py → tests/reference/npy/), round trips, zero copy, and the
 * errors bad files must give. Files our writers produce are also checked by numpy by hand
 * with tests/reference/check_written.py (see that script).
 */
#include "data/calvin/npy_internal.h"
#include "tests/test.h"
#include "tests/util.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REF "tests/reference/npy/"

/* the values gen_npy.py's value() gives element i of a dtype */
static double expect(dv_npy_dtype dt, int64_t i) {
    switch (dt) {
    case DV_NPY_BOOL: return (i % 3) == 1;
    case DV_NPY_U8: return (double)((i * 7 + 3) & 255); /* numpy's astype wraps */
    case DV_NPY_I8: return (double)(int8_t)(uint8_t)((i * 7 + 3) * (i % 2 ? -1 : 1));
    case DV_NPY_U16: case DV_NPY_U32: case DV_NPY_U64: return (double)(i * 7 + 3);
    case DV_NPY_I16: case DV_NPY_I32: case DV_NPY_I64: return (double)((i * 7 + 3) * (i % 2 ? -1 : 1));
    default: return i * 0.25 - 1.5;
    }
}

static bool values_ok(const dv_npy *a, double scale) {
    for (int64_t i = 0; i < a->count; i++)
        if (dv_npy_get_f64(a, i) != scale * expect(a->dtype, i)) {
            printf("    element %lld: %g, expected %g\n", (long long)i, dv_npy_get_f64(a, i),
                   scale * expect(a->dtype, i));
            return false;
        }
    return true;
}

static bool shape_is(const dv_npy *a, int ndim, const int64_t *shape) {
    if (a->ndim != ndim) return false;
    for (int i = 0; i < ndim; i++)
        if (a->shape[i] != shape[i]) return false;
    return true;
}

/* a fresh temporary folder for one test */
static void tmpdir(char *dir, size_t n) {
    snprintf(dir, n, "/tmp/dv_test_npy_XXXXXX");
    if (!mkdtemp(dir)) dir[0] = 0;
}

static void rmdir_all(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(dir);
}

static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

static const struct { const char *file; dv_npy_dtype dt; } g_dt[] = {
    {"b1", DV_NPY_BOOL}, {"u1", DV_NPY_U8},  {"i1", DV_NPY_I8},  {"u2", DV_NPY_U16},
    {"i2", DV_NPY_I16},  {"u4", DV_NPY_U32}, {"i4", DV_NPY_I32}, {"u8", DV_NPY_U64},
    {"i8", DV_NPY_I64},  {"f2", DV_NPY_F16}, {"f4", DV_NPY_F32}, {"f8", DV_NPY_F64},
};

TEST(npy_every_dtype) {
    for (size_t k = 0; k < sizeof g_dt / sizeof g_dt[0]; k++) {
        char path[256], err[256];
        snprintf(path, sizeof path, REF "dt_%s.npy", g_dt[k].file);
        dv_npy a;
        CHECK_MSG(dv_npy_load(path, &a, err, sizeof err) == 0, "%s", err);
        CHECK_MSG(a.dtype == g_dt[k].dt, "%s: dtype %s", path, dv_npy_dtype_name(a.dtype));
        CHECK(shape_is(&a, 2, (int64_t[]){2, 3}) && a.count == 6);
        CHECK_MSG(values_ok(&a, 1), "%s values", path);
        /* C order, little endian, aligned data: a view into the mapping */
        CHECK_MSG(a.release_ == dv_npy_map_unref, "%s not zero copy", path);
        dv_npy_free(&a);
    }
}

TEST(npy_big_endian_fortran) {
    static const struct { const char *file; dv_npy_dtype dt; int ndim; int64_t shape[3]; } c[] = {
        {"be_f4.npy", DV_NPY_F32, 2, {3, 4}},         {"be_i8.npy", DV_NPY_I64, 1, {5}},
        {"be_f8.npy", DV_NPY_F64, 2, {2, 2}},         {"be_i2.npy", DV_NPY_I16, 1, {3}},
        {"fortran_f4.npy", DV_NPY_F32, 2, {3, 4}},    {"fortran_u1_3d.npy", DV_NPY_U8, 3, {2, 3, 4}},
        {"fortran_be_i4.npy", DV_NPY_I32, 2, {4, 3}}, {"v2_f4.npy", DV_NPY_F32, 2, {2, 3}},
        {"v3_f4.npy", DV_NPY_F32, 2, {2, 3}},         {"nd4_f4.npy", DV_NPY_F32, 3, {2, 1, 3}},
    };
    for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
        char path[256], err[256];
        snprintf(path, sizeof path, REF "%s", c[k].file);
        dv_npy a;
        CHECK_MSG(dv_npy_load(path, &a, err, sizeof err) == 0, "%s", err);
        CHECK_MSG(a.dtype == c[k].dt, "%s: dtype %s", path, dv_npy_dtype_name(a.dtype));
        for (int i = 0; i < c[k].ndim; i++) CHECK_MSG(a.shape[i] == c[k].shape[i], "%s dim %d", path, i);
        CHECK_MSG(values_ok(&a, 1), "%s values (C order, host byte order)", path);
        dv_npy_free(&a);
    }
}

TEST(npy_scalar_empty_vector) {
    char err[256];
    dv_npy a;
    CHECK_MSG(dv_npy_load(REF "scalar_f8.npy", &a, err, sizeof err) == 0, "%s", err);
    CHECK(a.ndim == 0 && a.count == 1 && dv_npy_get_f64(&a, 0) == expect(DV_NPY_F64, 0));
    dv_npy_free(&a);
    CHECK_MSG(dv_npy_load(REF "empty_f4.npy", &a, err, sizeof err) == 0, "%s", err);
    CHECK(shape_is(&a, 2, (int64_t[]){0, 3}) && a.count == 0);
    dv_npy_free(&a);
    CHECK_MSG(dv_npy_load(REF "vec_i8.npy", &a, err, sizeof err) == 0, "%s", err);
    CHECK(shape_is(&a, 1, (int64_t[]){7}) && values_ok(&a, 1) && dv_npy_get_i64(&a, 3) == -24);
    float f[7];
    dv_npy_to_f32(&a, f);
    CHECK(f[6] == 45.0f);
    dv_npy_free(&a);
}

/* dv_npy_save writes the bytes numpy writes */
TEST(npy_save_is_byte_identical_to_numpy) {
    char dir[64], path[256], out[300], err[256];
    tmpdir(dir, sizeof dir);
    const char *files[] = {"dt_b1", "dt_u1", "dt_i2", "dt_u4", "dt_i8", "dt_f2", "dt_f4", "dt_f8",
                           "scalar_f8", "empty_f4", "vec_i8", "nd4_f4"};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        snprintf(path, sizeof path, REF "%s.npy", files[k]);
        snprintf(out, sizeof out, "%s/%s.npy", dir, files[k]);
        dv_npy a;
        CHECK_MSG(dv_npy_load(path, &a, err, sizeof err) == 0, "%s", err);
        CHECK_MSG(dv_npy_save(out, &a, err, sizeof err) == 0, "%s", err);
        size_t n1, n2;
        uint8_t *b1 = ut_read_file(path, &n1), *b2 = ut_read_file(out, &n2);
        CHECK_MSG(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0, "%s: written bytes differ from numpy's", files[k]);
        free(b1), free(b2);
        dv_npy_free(&a);
    }
    /* converted arrays save as C order little endian and load back equal */
    dv_npy a, b;
    CHECK(dv_npy_load(REF "fortran_be_i4.npy", &a, err, sizeof err) == 0);
    snprintf(out, sizeof out, "%s/x.npy", dir);
    CHECK_MSG(dv_npy_save(out, &a, err, sizeof err) == 0, "%s", err);
    CHECK_MSG(dv_npy_load(out, &b, err, sizeof err) == 0, "%s", err);
    CHECK(shape_is(&b, 2, (int64_t[]){4, 3}) && b.dtype == DV_NPY_I32 && values_ok(&b, 1));
    dv_npy_free(&a), dv_npy_free(&b);
    CHECK(count_files(dir) == (int)(sizeof files / sizeof files[0]) + 1); /* no temporaries left */
    rmdir_all(dir);
}

TEST(npy_bad_files) {
    char err[256];
    dv_npy a;
    CHECK(dv_npy_load("tests/reference/npy/no_such_file.npy", &a, err, sizeof err) != 0);
    CHECK(strstr(err, "no_such_file.npy") != NULL);
    size_t n;
    uint8_t *b = ut_read_file(REF "dt_f4.npy", &n);
    CHECK(b != NULL);
    if (!b) return;
    CHECK(dv_npy_parse(b, n, "x.npy", &a, err, sizeof err) == 0);
    dv_npy_free(&a);
    CHECK(dv_npy_parse(b, n - 1, "x.npy", &a, err, sizeof err) != 0 && strstr(err, "x.npy") &&
          strstr(err, "truncated"));
    CHECK(dv_npy_parse(b, 40, "x.npy", &a, err, sizeof err) != 0 && strstr(err, "truncated"));
    uint8_t *c = malloc(n + 4);
    memcpy(c, b, n);
    CHECK(dv_npy_parse(c, n + 4, "x.npy", &a, err, sizeof err) != 0 && strstr(err, "after the data"));
    memcpy(c, b, n);
    memcpy(c + 21, "<c8", 3); /* complex: not modelled */
    CHECK(dv_npy_parse(c, n, "x.npy", &a, err, sizeof err) != 0 && strstr(err, "unsupported dtype '<c8'"));
    memcpy(c, b, n);
    c[0] = 'X';
    CHECK(dv_npy_parse(c, n, "x.npy", &a, err, sizeof err) != 0 && strstr(err, "magic"));
    memcpy(c, b, n);
    c[6] = 4;
    CHECK(dv_npy_parse(c, n, "x.npy", &a, err, sizeof err) != 0 && strstr(err, "version 4.0"));
    memcpy(c, b, n);
    memcpy(c + 12, "DESCR", 5);
    CHECK(dv_npy_parse(c, n, "x.npy", &a, err, sizeof err) != 0 && strstr(err, "unexpected key 'DESCR'"));
    free(c);
    free(b);
    /* object arrays go through dv_npy_load_pickled */
    CHECK(dv_npy_load(REF "auto_lang_ann.npy", &a, err, sizeof err) != 0 && strstr(err, "dv_npy_load_pickled"));
}

static void check_frame(dv_npz *z, const char *what) {
    static const struct { const char *key; dv_npy_dtype dt; int ndim; int64_t shape[3]; } c[] = {
        {"actions", DV_NPY_F64, 1, {7}},          {"rel_actions", DV_NPY_F64, 1, {7}},
        {"robot_obs", DV_NPY_F64, 1, {15}},       {"scene_obs", DV_NPY_F64, 1, {24}},
        {"rgb_static", DV_NPY_U8, 3, {8, 8, 3}},  {"depth_static", DV_NPY_F32, 2, {8, 8}},
        {"big_endian", DV_NPY_F32, 1, {3}},       {"fortran", DV_NPY_I32, 2, {2, 3}},
    };
    char err[256];
    CHECK_MSG(dv_npz_count(z) == 8, "%s: %d members", what, dv_npz_count(z));
    for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
        CHECK(dv_npz_has(z, c[k].key));
        dv_npy a;
        CHECK_MSG(dv_npz_get(z, c[k].key, &a, err, sizeof err) == 0, "%s", err);
        CHECK_MSG(a.dtype == c[k].dt && a.ndim == c[k].ndim, "%s %s", what, c[k].key);
        for (int i = 0; i < c[k].ndim; i++) CHECK(a.shape[i] == c[k].shape[i]);
        CHECK_MSG(values_ok(&a, 1), "%s %s values", what, c[k].key);
        dv_npy_free(&a);
    }
    dv_npy a;
    CHECK(dv_npz_get(z, "rgb_gripper", &a, err, sizeof err) != 0);
    CHECK_MSG(strstr(err, "rgb_gripper") && strstr(err, what), "error names file and key: %s", err);
    CHECK(!dv_npz_has(z, "rgb_gripper"));
}

TEST(npz_numpy_stored_and_deflated) {
    const char *files[] = {REF "frame_stored.npz", REF "frame_deflated.npz"};
    for (int k = 0; k < 2; k++) {
        char err[256];
        dv_npz *z;
        CHECK_MSG(dv_npz_open(files[k], &z, err, sizeof err) == 0, "%s", err);
        if (!z) continue;
        check_frame(z, files[k]);
        /* arrays stay valid after the archive is closed */
        dv_npy a;
        CHECK(dv_npz_get(z, "depth_static", &a, err, sizeof err) == 0);
        dv_npz_close(z);
        CHECK(values_ok(&a, 1));
        dv_npy_free(&a);
    }
}

TEST(npz_zip64_and_multiblock_deflate) {
    char err[256];
    dv_npz *z;
    CHECK_MSG(dv_npz_open(REF "zip64.npz", &z, err, sizeof err) == 0, "%s", err);
    if (z) {
        CHECK(dv_npz_count(z) == 3 && strcmp(dv_npz_key(z, 2), "c") == 0);
        dv_npy a;
        CHECK(dv_npz_get(z, "a", &a, err, sizeof err) == 0 && shape_is(&a, 2, (int64_t[]){4, 5}) && values_ok(&a, 1));
        dv_npy_free(&a);
        CHECK(dv_npz_get(z, "b", &a, err, sizeof err) == 0 && values_ok(&a, 2));
        dv_npy_free(&a);
        CHECK(dv_npz_get(z, "c", &a, err, sizeof err) == 0 && a.dtype == DV_NPY_I64 && values_ok(&a, 1));
        dv_npy_free(&a);
        dv_npz_close(z);
    }
    CHECK_MSG(dv_npz_open(REF "noise_deflated.npz", &z, err, sizeof err) == 0, "%s", err);
    if (z) {
        dv_npy a;
        CHECK_MSG(dv_npz_get(z, "ramp", &a, err, sizeof err) == 0, "%s", err);
        CHECK(a.count == 3000 && values_ok(&a, 1));
        dv_npy_free(&a);
        CHECK_MSG(dv_npz_get(z, "noise", &a, err, sizeof err) == 0, "%s", err);
        CHECK(shape_is(&a, 2, (int64_t[]){40, 50}));
        /* values are multiples of 0.1 in [0, 4] */
        bool ok = true;
        for (int64_t i = 0; i < a.count; i++) {
            double v = dv_npy_get_f64(&a, i);
            ok &= v >= 0 && v <= 4 && fabs(v * 10 - round(v * 10)) < 1e-4;
        }
        CHECK(ok);
        dv_npy_free(&a);
        dv_npz_close(z);
    }
}

static void fill(dv_npy *a, dv_npy_dtype dt, int ndim, const int64_t *shape) {
    char err[128];
    if (dv_npy_alloc(a, dt, ndim, shape, err, sizeof err) != 0) return;
    for (int64_t i = 0; i < a->count; i++) {
        double v = expect(dt, i);
        void *p = (void *)a->data;
        switch (dt) {
        case DV_NPY_BOOL: case DV_NPY_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
        case DV_NPY_I32: ((int32_t *)p)[i] = (int32_t)v; break;
        case DV_NPY_I64: ((int64_t *)p)[i] = (int64_t)v; break;
        case DV_NPY_F32: ((float *)p)[i] = (float)v; break;
        case DV_NPY_F64: ((double *)p)[i] = v; break;
        default: break;
        }
    }
}

TEST(npz_write_read_round_trip) {
    char dir[64], path[256], err[256];
    tmpdir(dir, sizeof dir);
    dv_npy arrs[5];
    fill(&arrs[0], DV_NPY_F32, 2, (int64_t[]){33, 17});
    fill(&arrs[1], DV_NPY_U8, 3, (int64_t[]){20, 20, 3});
    fill(&arrs[2], DV_NPY_F64, 1, (int64_t[]){7});
    fill(&arrs[3], DV_NPY_I64, 0, NULL);
    fill(&arrs[4], DV_NPY_BOOL, 1, (int64_t[]){0});
    const char *keys[] = {"depth", "rgb_static", "actions", "scalar", "empty"};
    for (int compress = 0; compress < 2; compress++) {
        snprintf(path, sizeof path, "%s/frame_%d.npz", dir, compress);
        dv_npz_writer *w;
        CHECK_MSG(dv_npz_writer_open(path, compress, &w, err, sizeof err) == 0, "%s", err);
        for (int k = 0; k < 5; k++) CHECK_MSG(dv_npz_writer_add(w, keys[k], &arrs[k], err, sizeof err) == 0, "%s", err);
        CHECK_MSG(dv_npz_writer_close(w, err, sizeof err) == 0, "%s", err);
        dv_npz *z;
        CHECK_MSG(dv_npz_open(path, &z, err, sizeof err) == 0, "%s", err);
        if (!z) continue;
        CHECK(dv_npz_count(z) == 5);
        for (int k = 0; k < 5; k++) {
            dv_npy a;
            CHECK_MSG(dv_npz_get(z, keys[k], &a, err, sizeof err) == 0, "%s", err);
            CHECK(a.dtype == arrs[k].dtype && shape_is(&a, arrs[k].ndim, arrs[k].shape) && values_ok(&a, 1));
            /* stored members are aligned by the writer: zero copy */
            if (!compress) CHECK_MSG(a.release_ == dv_npy_map_unref, "stored member %s not zero copy", keys[k]);
            dv_npy_free(&a);
        }
        dv_npz_close(z);
    }
    size_t n0, n1;
    uint8_t *b0 = ut_read_file(path, &n1);
    snprintf(path, sizeof path, "%s/frame_0.npz", dir);
    uint8_t *b1 = ut_read_file(path, &n0);
    CHECK_MSG(n1 < n0, "compressed %zu bytes vs stored %zu", n1, n0);
    free(b0), free(b1);
    /* noise does not deflate: stored even in a compressed archive (then a zero-copy view) */
    {
        dv_npy noise;
        CHECK(dv_npy_alloc(&noise, DV_NPY_U8, 1, (int64_t[]){5000}, err, sizeof err) == 0);
        uint64_t x = 7;
        for (int i = 0; i < 5000; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            ((uint8_t *)noise.data)[i] = (uint8_t)(x >> 56);
        }
        snprintf(path, sizeof path, "%s/noise.npz", dir);
        dv_npz_writer *w;
        CHECK(dv_npz_writer_open(path, true, &w, err, sizeof err) == 0);
        CHECK(dv_npz_writer_add(w, "noise", &noise, err, sizeof err) == 0);
        CHECK(dv_npz_writer_add(w, "ramp", &arrs[0], err, sizeof err) == 0);
        CHECK(dv_npz_writer_close(w, err, sizeof err) == 0);
        dv_npz *z;
        dv_npy a, b;
        CHECK(dv_npz_open(path, &z, err, sizeof err) == 0);
        CHECK(dv_npz_get(z, "noise", &a, err, sizeof err) == 0 && a.count == 5000 &&
              memcmp(a.data, noise.data, 5000) == 0);
        CHECK_MSG(a.release_ == dv_npy_map_unref, "incompressible member not stored");
        CHECK(dv_npz_get(z, "ramp", &b, err, sizeof err) == 0 && values_ok(&b, 1) && b.release_ != dv_npy_map_unref);
        dv_npy_free(&a), dv_npy_free(&b), dv_npy_free(&noise);
        dv_npz_close(z);
        unlink(path);
    }
    /* abort leaves an existing file alone and no temporary behind */
    snprintf(path, sizeof path, "%s/frame_0.npz", dir);
    dv_npz_writer *w;
    CHECK(dv_npz_writer_open(path, false, &w, err, sizeof err) == 0);
    CHECK(dv_npz_writer_add(w, "x", &arrs[2], err, sizeof err) == 0);
    dv_npz_writer_abort(w);
    uint8_t *kept = ut_read_file(path, &n1);
    CHECK(kept != NULL && n1 == n0);
    free(kept);
    CHECK(count_files(dir) == 2);
    /* an object dtype is refused with the key named */
    dv_npy o = {.dtype = DV_NPY_OBJECT};
    CHECK(dv_npz_writer_open(path, false, &w, err, sizeof err) == 0);
    CHECK(dv_npz_writer_add(w, "objs", &o, err, sizeof err) != 0 && strstr(err, "objs"));
    dv_npz_writer_abort(w);
    /* a folder that does not exist: an error naming the path */
    CHECK(dv_npz_writer_open("/nonexistent_dir/x.npz", false, &w, err, sizeof err) != 0 &&
          strstr(err, "/nonexistent_dir/x.npz"));
    for (int k = 0; k < 5; k++) dv_npy_free(&arrs[k]);
    rmdir_all(dir);
}

TEST(npz_corruption_is_detected) {
    size_t n;
    uint8_t *b = ut_read_file(REF "frame_stored.npz", &n);
    CHECK(b != NULL);
    if (!b) return;
    char err[256];
    dv_npz *z;
    /* flip one byte inside the data of the first member (rgb_static's? any): CRC mismatch */
    uint8_t *c = malloc(n);
    memcpy(c, b, n);
    c[200] ^= 0x40;
    CHECK(dv_npz_open_buffer(c, n, "bad.npz", &z, err, sizeof err) == 0);
    int bad = 0;
    for (int i = 0; z && i < dv_npz_count(z); i++) {
        dv_npy a;
        if (dv_npz_get(z, dv_npz_key(z, i), &a, err, sizeof err) != 0) {
            bad++;
            CHECK_MSG(strstr(err, "CRC-32") && strstr(err, "bad.npz"), "%s", err);
        } else dv_npy_free(&a);
    }
    CHECK(bad == 1);
    dv_npz_close(z);
    /* the end of central directory record cut off */
    CHECK(dv_npz_open_buffer(b, n - 10, "cut.npz", &z, err, sizeof err) != 0 && strstr(err, "cut.npz"));
    free(b);
    /* a deflate stream with a flipped bit */
    b = ut_read_file(REF "frame_deflated.npz", &n);
    memcpy(c, b, n < 2936 ? n : 2936);
    c[120] ^= 0x10;
    CHECK(dv_npz_open_buffer(c, n, "bad.npz", &z, err, sizeof err) == 0);
    bad = 0;
    for (int i = 0; z && i < dv_npz_count(z); i++) {
        dv_npy a;
        if (dv_npz_get(z, dv_npz_key(z, i), &a, err, sizeof err) != 0) bad++;
        else dv_npy_free(&a);
    }
    CHECK(bad == 1);
    dv_npz_close(z);
    free(c);
    free(b);
}

TEST(npy_crc32_known_values) {
    CHECK(dv_crc32(0, "123456789", 9) == 0xCBF43926u);
    CHECK(dv_crc32(0, "", 0) == 0);
    /* incremental == one shot, across the 8-byte fast path */
    uint8_t buf[1000];
    for (int i = 0; i < 1000; i++) buf[i] = (uint8_t)(i * 37 + 11);
    CHECK(dv_crc32(dv_crc32(0, buf, 333), buf + 333, 667) == dv_crc32(0, buf, 1000));
    /* the folding (PCLMULQDQ) path against the tables, at every length and alignment */
    static uint8_t big[4096 + 16];
    uint64_t x = 12345;
    for (size_t i = 0; i < sizeof big; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        big[i] = (uint8_t)(x >> 56);
    }
    int bad = 0;
    for (size_t n = 0; n <= 300; n++)
        for (size_t off = 0; off < 4; off++) bad += dv_crc32(7, big + off, n) != dv_crc32_portable(7, big + off, n);
    for (size_t n = 300; n <= 4096; n += 61) bad += dv_crc32(0, big + 3, n) != dv_crc32_portable(0, big + 3, n);
    CHECK_MSG(bad == 0, "%d CRC mismatches between the fast and the table path", bad);
    CHECK(dv_crc32(0, "123456789123456789123456789123456789123456789123456789123456789123456789", 72) ==
          dv_crc32_portable(0, "123456789123456789123456789123456789123456789123456789123456789123456789", 72));
    /* deflate round trip */
    uint8_t *z;
    size_t zn;
    CHECK(dv_deflate_raw(buf, sizeof buf, &z, &zn) == 0);
    uint8_t back[1000];
    CHECK(dv_inflate_raw(z, zn, 0, back, sizeof back) == 0 && memcmp(back, buf, sizeof buf) == 0);
    CHECK(dv_inflate_raw(z, zn, 0, back, 999) != 0);  /* more output than announced */
    CHECK(dv_inflate_raw(z, zn / 2, 0, back, sizeof back) != 0);
    free(z);
}

/* files for numpy to check (tests/reference/check_written.py): with DV_TEST_KEEP=<dir> they
 * are written there and kept; otherwise into a temporary folder, loaded back and removed.
 *   dt_<t>.npy   each dtype, shape (2, 3), values of gen_npy.py's value()
 *   frame_stored.npz / frame_deflated.npz   keys f4 (5, 7), u1 (4, 4, 3), i8 (6,), f8 scalar ()
 *   auto_lang_ann.npy   gen_npy.py's lang_ann(2) built with the pickle builders */
#include "data/calvin/pickle.h"

TEST(npy_written_for_numpy) {
    char dir[256], path[512], err[256];
    const char *keep = getenv("DV_TEST_KEEP");
    if (keep) snprintf(dir, sizeof dir, "%s", keep);
    else tmpdir(dir, sizeof dir);
    static const struct { const char *t; dv_npy_dtype dt;
    } all[] = {
        {"b1", DV_NPY_BOOL}, {"u1", DV_NPY_U8},  {"i4", DV_NPY_I32},
        {"i8", DV_NPY_I64},  {"f4", DV_NPY_F32}, {"f8", DV_NPY_F64},
    };
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) {
        dv_npy a, b;
        fill(&a, all[k].dt, 2, (int64_t[]){2, 3});
        snprintf(path, sizeof path, "%s/dt_%s.npy", dir, all[k].t);
        CHECK_MSG(dv_npy_save(path, &a, err, sizeof err) == 0, "%s", err);
        CHECK(dv_npy_load(path, &b, err, sizeof err) == 0 && values_ok(&b, 1));
        dv_npy_free(&a), dv_npy_free(&b);
    }
    dv_npy m[4];
    fill(&m[0], DV_NPY_F32, 2, (int64_t[]){5, 7});
    fill(&m[1], DV_NPY_U8, 3, (int64_t[]){4, 4, 3});
    fill(&m[2], DV_NPY_I64, 1, (int64_t[]){6});
    fill(&m[3], DV_NPY_F64, 0, NULL);
    const char *keys[] = {"f4", "u1", "i8", "f8"};
    for (int c = 0; c < 2; c++) {
        snprintf(path, sizeof path, "%s/frame_%s.npz", dir, c ? "deflated" : "stored");
        dv_npz_writer *w;
        CHECK(dv_npz_writer_open(path, c, &w, err, sizeof err) == 0);
        for (int k = 0; k < 4; k++) CHECK(dv_npz_writer_add(w, keys[k], &m[k], err, sizeof err) == 0);
        CHECK_MSG(dv_npz_writer_close(w, err, sizeof err) == 0, "%s", err);
    }
    for (int k = 0; k < 4; k++) dv_npy_free(&m[k]);
    dv_pyarena *a = dv_pyarena_new();
    dv_pyobj *root = ut_calvin_lang_ann(a, 2);
    snprintf(path, sizeof path, "%s/auto_lang_ann.npy", dir);
    CHECK_MSG(dv_npy_save_pickled(path, root, err, sizeof err) == 0, "%s", err);
    dv_pyarena_free(a);
    if (!keep) rmdir_all(dir);
}

/* inflate.c on zlib's streams of every strategy (stored, fixed and dynamic Huffman blocks,
 * several blocks per stream), and against stb's decoder on stb's own output */
TEST(npy_inflate_zlib_streams_and_stb_parity) {
    char err[256];
    dv_npz *z;
    CHECK_MSG(dv_npz_open(REF "deflate_streams.npz", &z, err, sizeof err) == 0, "%s", err);
    if (!z) return;
    dv_npy src;
    CHECK(dv_npz_get(z, "src", &src, err, sizeof err) == 0);
    size_t n = (size_t)src.count;
    uint8_t *out = malloc(n + 1);
    int streams = 0;
    for (int i = 0; i < dv_npz_count(z); i++) {
        const char *key = dv_npz_key(z, i);
        if (strncmp(key, "z_", 2) != 0) continue;
        dv_npy zs;
        CHECK(dv_npz_get(z, key, &zs, err, sizeof err) == 0);
        memset(out, 0xAA, n);
        CHECK_MSG(dv_inflate_raw(zs.data, (size_t)zs.count, 0, out, n) == 0 && memcmp(out, src.data, n) == 0, "%s",
                  key);
        CHECK_MSG(dv_inflate_raw(zs.data, (size_t)zs.count, 0, out, n - 1) != 0, "%s: short output accepted", key);
        CHECK_MSG(dv_inflate_raw(zs.data, (size_t)zs.count, 0, out, n + 1) != 0, "%s: long output accepted", key);
        CHECK_MSG(dv_inflate_raw(zs.data, (size_t)zs.count - 1, 0, out, n) != 0, "%s: truncated stream accepted", key);
        streams++;
        dv_npy_free(&zs);
    }
    CHECK(streams == 8);
    /* stb's compressor on data of several kinds, both decoders */
    uint8_t *buf = malloc(20000), *a = malloc(20000), *b = malloc(20000);
    uint64_t x = 99;
    for (int kind = 0; kind < 4; kind++) {
        size_t len = 1000 + 4000 * (size_t)kind;
        for (size_t i = 0; i < len; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            buf[i] = kind == 0   ? (uint8_t)(x >> 56)
                     : kind == 1 ? (uint8_t)(i % 7)
                     : kind == 2 ? (uint8_t)((i / 64) ^ (x >> 62))
                                 : (uint8_t) "abcab"[i % 5];
        }
        uint8_t *zz;
        size_t zn;
        CHECK(dv_deflate_raw(buf, len, &zz, &zn) == 0);
        CHECK_MSG(dv_inflate_raw(zz, zn, 0, a, len) == 0 && memcmp(a, buf, len) == 0, "kind %d", kind);
        CHECK_MSG(dv_inflate_raw_stb(zz, zn, 0, b, len) == 0 && memcmp(b, buf, len) == 0, "kind %d (stb)", kind);
        free(zz);
    }
    free(buf), free(a), free(b);
    free(out);
    dv_npy_free(&src);
    dv_npz_close(z);
}
