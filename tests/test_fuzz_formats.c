/* tests/test_fuzz_formats.c — the .npy / .npz / pickle / YAML readers on broken input: every small
 * fixture truncated at every byte offset, and mutated a few bytes at a time at seeded random
 * places. Each parse must return an error or succeed — never crash, never read out of
 * bounds (run it under `make test-asan` to have the second checked). What a successful parse
 * returns is read in full (every array byte, every string byte) so that a bad pointer or
 * length would show. Deterministic: the mutations come from a fixed seed.
 * DV_FUZZ_SCALE=<k> (environment) runs k times as many mutations, e.g. for a long run under
 * AddressSanitizer: DV_FUZZ_SCALE=200 ./build-asan/test fuzz_
 */
#include "data/calvin/pickle.h"
#include "data/calvin/yaml.h"
#include "data/calvin/npy_internal.h"
#include "tests/test.h"
#include "tests/util.h"

#include <stdlib.h>
#include <string.h>

#define REF "tests/reference/npy/"

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) { /* xorshift64* */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 0x2545F4914F6CDD1Dull;
}

static volatile uint64_t g_sink; /* keeps the reads below from being optimised away */

static void touch_array(const dv_npy *a) {
    const uint8_t *p = a->data;
    size_t n = (size_t)a->count * dv_npy_dtype_size(a->dtype);
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++) s += p[i];
    g_sink += s;
}

/* reads every object reachable from o (bounded: cycles and shared objects are revisited up
 * to the budget) */
static void touch_obj(const dv_pyobj *o, int depth, int *budget) {
    if (!o || depth > 200 || --*budget < 0) return;
    switch (o->type) {
    case DV_PY_STR: case DV_PY_BYTES: {
        uint64_t s = 0;
        for (size_t i = 0; i < o->str.len; i++) s += (uint8_t)o->str.s[i];
        g_sink += s + (uint8_t)o->str.s[o->str.len];
        break;
    }
    case DV_PY_LIST: case DV_PY_TUPLE: case DV_PY_OBJARRAY:
        for (int64_t i = 0; i < o->seq.n; i++) touch_obj(o->seq.items[i], depth + 1, budget);
        break;
    case DV_PY_DICT:
        for (int64_t i = 0; i < o->dict.n; i++) {
            touch_obj(o->dict.keys[i], depth + 1, budget);
            touch_obj(o->dict.values[i], depth + 1, budget);
        }
        break;
    case DV_PY_NDARRAY: touch_array(&o->array); break;
    default: break;
    }
}

static void touch_yaml(const dv_yaml *y, int depth) {
    if (!y || depth > 200) return;
    if (y->type == DV_YAML_SCALAR) g_sink += strlen(y->str);
    for (int i = 0; i < y->n; i++) {
        if (y->type == DV_YAML_MAP) g_sink += strlen(y->keys[i]);
        touch_yaml(y->items[i], depth + 1);
    }
}

typedef enum { K_NPY, K_NPZ, K_PICKLED_NPY, K_PICKLE, K_YAML } kind;

/* parse one image; returns 0 when everything in it parsed */
static int parse(kind k, const uint8_t *b, size_t n) {
    char err[256];
    err[0] = 0;
    int rc = 0;
    if (k == K_NPY) {
        dv_npy a;
        rc = dv_npy_parse(b, n, "fuzz.npy", &a, err, sizeof err);
        if (rc == 0) touch_array(&a), dv_npy_free(&a);
    } else if (k == K_NPZ) {
        dv_npz *z;
        rc = dv_npz_open_buffer(b, n, "fuzz.npz", &z, err, sizeof err);
        for (int i = 0; rc == 0 && i < dv_npz_count(z); i++) {
            dv_npy a;
            if (dv_npz_get(z, dv_npz_key(z, i), &a, err, sizeof err) == 0) touch_array(&a), dv_npy_free(&a);
            else rc = -1;
        }
        if (z || rc == 0) dv_npz_close(z);
    } else if (k == K_YAML) {
        dv_yaml_doc *d;
        rc = dv_yaml_parse((const char *)b, n, "fuzz.yaml", &d, err, sizeof err);
        if (rc == 0) touch_yaml(dv_yaml_root(d), 0), dv_yaml_free(d);
    } else {
        dv_pyarena *a = dv_pyarena_new();
        dv_pyobj *o;
        rc = k == K_PICKLE ? dv_pickle_parse(b, n, "fuzz.pkl", a, &o, err, sizeof err)
                           : dv_npy_parse_pickled(b, n, "fuzz.npy", a, &o, err, sizeof err);
        int budget = 100000;
        if (rc == 0) touch_obj(o, 0, &budget);
        dv_pyarena_free(a);
    }
    if (rc != 0) CHECK_MSG(err[0] != 0, "an error without a message");
    return rc;
}

/* truncations at every offset + `mutations` seeded mutations of 1..4 bytes */
static void fuzz(const char *file, kind k, int mutations) {
    size_t n;
    uint8_t *b = ut_read_file(file, &n);
    CHECK_MSG(b != NULL, "cannot read %s", file);
    if (!b) return;
    CHECK_MSG(parse(k, b, n) == 0, "%s: the intact file does not parse", file);
    uint8_t *c = malloc(n);
    int ok = 0;
    for (size_t cut = 0; cut < n; cut++) {
        /* a copy of exactly `cut` bytes, so that reading past it is an ASan error */
        uint8_t *t = malloc(cut ? cut : 1);
        memcpy(t, b, cut);
        ok += parse(k, t, cut) == 0;
        free(t);
    }
    /* a truncated npy/npz/pickle can never be complete (a truncated YAML file often is) (a pickle needs its STOP, an
     * npz its end record, an npy its data) */
    if (k != K_YAML) CHECK_MSG(ok == 0, "%s: %d truncated images parsed", file, ok);
    static const uint8_t special[] = {0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe};
    const char *scale = getenv("DV_FUZZ_SCALE");
    if (scale && atoi(scale) > 1) mutations *= atoi(scale);
    for (int m = 0; m < mutations; m++) {
        memcpy(c, b, n);
        int nb = 1 + (int)(rnd() % 4);
        for (int j = 0; j < nb; j++) {
            size_t at = rnd() % n;
            uint64_t r = rnd();
            c[at] = r & 1     ? (uint8_t)(r >> 8)
                    : (r & 2) ? special[(r >> 8) % sizeof special]
                              : (uint8_t)(c[at] ^ (1u << ((r >> 8) & 7)));
        }
        parse(k, c, n);
    }
    free(c);
    free(b);
}

TEST(fuzz_npy) {
    fuzz(REF "dt_f4.npy", K_NPY, 2000);
    fuzz(REF "fortran_be_i4.npy", K_NPY, 2000);
    fuzz(REF "v3_f4.npy", K_NPY, 1000);
    fuzz(REF "scalar_f8.npy", K_NPY, 1000);
}

TEST(fuzz_npz) {
    fuzz(REF "frame_stored.npz", K_NPZ, 2000);
    fuzz(REF "frame_deflated.npz", K_NPZ, 2000);
    fuzz(REF "zip64.npz", K_NPZ, 2000);
}

TEST(fuzz_pickle) {
    fuzz(REF "fuzz_lang_ann.npy", K_PICKLED_NPY, 2000);
    fuzz(REF "scene_info.npy", K_PICKLED_NPY, 1500);
    fuzz(REF "objarray_fortran.npy", K_PICKLED_NPY, 1500);
    fuzz(REF "fuzz_mix_p2.pkl", K_PICKLE, 1500);
    fuzz(REF "fuzz_mix_p5.pkl", K_PICKLE, 1500);
    fuzz(REF "fuzz_arrays_p2.pkl", K_PICKLE, 1500);
    fuzz(REF "fuzz_arrays_p5.pkl", K_PICKLE, 1500);
}

TEST(fuzz_yaml) {
    fuzz(REF "statistics.yaml", K_YAML, 3000);
}

/* inflate.c against stb's decoder on mutated and truncated zlib streams: both may refuse
 * (not always the same streams: stb is laxer about truncation), but whenever both decode a
 * stream to the announced size their outputs must be the same bytes */
TEST(fuzz_inflate_vs_stb) {
    char err[256];
    dv_npz *z;
    CHECK_MSG(dv_npz_open(REF "deflate_streams.npz", &z, err, sizeof err) == 0, "%s", err);
    if (!z) return;
    dv_npy src;
    CHECK(dv_npz_get(z, "src", &src, err, sizeof err) == 0);
    size_t n = (size_t)src.count;
    uint8_t *a = malloc(n), *b = malloc(n);
    int both = 0, differ = 0, runs = 0;
    const char *scale = getenv("DV_FUZZ_SCALE");
    int reps = 300 * (scale && atoi(scale) > 1 ? atoi(scale) : 1);
    for (int i = 0; i < dv_npz_count(z); i++) {
        if (strncmp(dv_npz_key(z, i), "z_", 2) != 0) continue;
        dv_npy zs;
        CHECK(dv_npz_get(z, dv_npz_key(z, i), &zs, err, sizeof err) == 0);
        size_t zn = (size_t)zs.count;
        uint8_t *c = malloc(zn);
        for (int m = 0; m < reps; m++) {
            memcpy(c, zs.data, zn);
            size_t len = zn;
            if (m % 4 == 3) len = rnd() % zn; /* truncated */
            else
                for (int j = 0, nb = 1 + (int)(rnd() % 3); j < nb; j++) c[rnd() % zn] ^= (uint8_t)(1u << (rnd() % 8));
            uint8_t *t = malloc(len ? len : 1); /* exactly len bytes: reading past them is an ASan error */
            memcpy(t, c, len);
            int ra = dv_inflate_raw(t, len, 0, a, n), rb = dv_inflate_raw_stb(t, len, 0, b, n);
            if (ra == 0 && rb == 0) both++, differ += memcmp(a, b, n) != 0;
            runs++;
            free(t);
        }
        free(c);
        dv_npy_free(&zs);
    }
    if (dv_test_verbose || getenv("DV_FUZZ_STATS"))
        printf("    inflate fuzz: %d runs, %d decoded by both\n", runs, both);
    CHECK_MSG(differ == 0, "%d of %d streams decoded differently by inflate.c and stb", differ, both);
    CHECK(runs > 0 && both > 0);
    free(a), free(b);
    dv_npy_free(&src);
    dv_npz_close(z);
}
