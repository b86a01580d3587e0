/* tests/test_safetensors.c — the safetensors reader and writer (tensor/safetensors.c).
 *
 * Round trips of every dtype (contiguous, strided, broadcast, 0-d, empty); the on-disk layout
 * (8-byte aligned buffer, space padding, aligned tensors); zero-copy views that keep the mapping
 * alive; files written by Python (tests/reference/gen_safetensors.py): f16/bf16 specials against
 * torch's widening, misaligned data, a sharded checkpoint with an index; hostile headers, one per
 * rule; a valid file truncated at every byte and with every header byte corrupted many ways
 * (each must give an error or a valid parse, never a crash); atomic saves that fail at create,
 * mid-write (RLIMIT_FSIZE) and at rename, leaving the old file and no temp file.
 */
#define _GNU_SOURCE
#include "tests/util.h"
#include "tensor/safetensors.h"
#include "kernels/half.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------------------------- */

static char g_err[1024];

/* a fresh directory, in memory (/dev/shm) where there is one: the corruption tests rewrite a
 * file thousands of times, and on a disk mounted with discard each rewrite costs milliseconds */
static void mk_tmpdir(char *dir, size_t n) {
    static const char *const base[] = {"/dev/shm", "/tmp"};
    for (int k = 0; k < 2; k++) {
        size_t L = strlen(base[k]);
        if (L + 20 > n) break;
        memcpy(dir, base[k], L);
        memcpy(dir + L, "/dv_st_test_XXXXXX", 19);
        if (mkdtemp(dir)) return;
    }
    perror("mkdtemp");
    abort();
}
static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f) { return remove(p); }
static void rm_tree(const char *dir) { nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static void write_file(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); abort(); }
    if (n && fwrite(buf, 1, n, f) != n) abort();
    fclose(f);
}
/* overwrite the first n bytes of an existing n-byte file (no truncation, no new blocks) */
static void write_file_inplace(const char *path, const void *buf, size_t n) {
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    if (fd < 0 || pwrite(fd, buf, n, 0) != (ssize_t)n) { perror(path); abort(); }
    close(fd);
}
static unsigned char *read_whole(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) { *n = 0; return NULL; }
    fseek(f, 0, SEEK_END);
    long L = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)L + 1);
    *n = fread(b, 1, (size_t)L, f);
    fclose(f);
    return b;
}
/* how many entries of dir contain ".tmp." (left-over temp files) */
static int count_tmp(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    if (d) closedir(d);
    return n;
}
/* a file: u64 length + header text + nbuf zero bytes */
static void write_st_raw(const char *path, const char *header, size_t nbuf) {
    size_t h = strlen(header);
    unsigned char *b = calloc(8 + h + nbuf + 1, 1);
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)((uint64_t)h >> (8 * k));
    memcpy(b + 8, header, h);
    write_file(path, b, 8 + h + nbuf);
    free(b);
}
static bool same_bits(const dv_tensor *a, const dv_tensor *b) {
    if (a->dtype != b->dtype || !dv_same_shape(a, b)) return false;
    dv_tensor *ca = dv_contiguous((dv_tensor *)a), *cb = dv_contiguous((dv_tensor *)b);
    bool same = !memcmp(dv_data(ca), dv_data(cb), (size_t)(dv_numel(a) * (int64_t)dv_dtype_size(a->dtype)));
    dv_release(ca);
    dv_release(cb);
    return same;
}
static dv_tensor *get_ok(dv_st_file *f, const char *name, int flags) {
    dv_tensor *t = NULL;
    int rc = dv_st_get(f, name, flags, &t, g_err, sizeof g_err);
    CHECK_MSG(rc == 0 && t, "dv_st_get('%s') failed: %s", name, g_err);
    return t;
}
static bool is_view(const dv_tensor *t) { return t->storage->free_fn != NULL; }
/* does /proc/self/maps mention path? */
static bool mapped(const char *path) {
    FILE *m = fopen("/proc/self/maps", "r"); /* a /proc file has no size: read it line by line */
    char line[4096];
    bool r = false;
    while (m && !r && fgets(line, sizeof line, m)) r = strstr(line, path) != NULL;
    if (m) fclose(m);
    return r;
}

/* the test tensors: one per dtype, plus strided, broadcast, 0-d and empty ones */
#define N_RT 13
static void make_roundtrip_set(dv_tensor **t, const char **names) {
    dv_rng r = dv_rng_new(99);
    int k = 0;
    names[k] = "f32";                 t[k++] = dv_randn(&r, DV_F32, DV_SHAPE(3, 4));
    names[k] = "f64";                 t[k++] = dv_randn(&r, DV_F64, DV_SHAPE(2, 5));
    dv_tensor *x = dv_randn(&r, DV_F32, DV_SHAPE(7));
    names[k] = "f16";                 t[k++] = dv_cast(x, DV_F16);
    names[k] = "bf16";                t[k++] = dv_cast(x, DV_BF16);
    dv_release(x);
    names[k] = "i32";                 t[k++] = dv_from_data(DV_I32, DV_SHAPE(4), (int32_t[]){INT32_MIN, -1, 0, INT32_MAX});
    names[k] = "i64";                 t[k++] = dv_from_data(DV_I64, DV_SHAPE(2, 2), (int64_t[]){INT64_MIN, -1, 1LL << 53, INT64_MAX});
    uint8_t u[256];
    for (int i = 0; i < 256; i++) u[i] = (uint8_t)i;
    names[k] = "u8";                  t[k++] = dv_from_data(DV_U8, DV_SHAPE(2, 128), u);
    names[k] = "bool";                t[k++] = dv_from_data(DV_BOOL, DV_SHAPE(5), (uint8_t[]){1, 0, 0, 1, 1});
    names[k] = "scalar";              t[k++] = dv_scalar(DV_F32, -3.5);
    names[k] = "empty";               t[k++] = dv_zeros(DV_F16, DV_SHAPE(0, 3));
    dv_tensor *y = dv_randn(&r, DV_F32, DV_SHAPE(4, 6));
    names[k] = "strided.transposed";  t[k++] = dv_transpose(y, 0, 1);
    dv_release(y);
    dv_tensor *z = dv_from_data(DV_I32, DV_SHAPE(1, 3), (int32_t[]){5, 6, 7});
    names[k] = "broadcast";           t[k++] = dv_expand(z, DV_SHAPE(4, 3));
    dv_release(z);
    names[k] = "name \"quoted\" \\ / \n\x01 caf\xc3\xa9"; t[k++] = dv_ones(DV_F64, DV_SHAPE(1));
    DV_ASSERT(k == N_RT, "make_roundtrip_set: %d tensors", k);
}

/* ---- round trips ------------------------------------------------------------------------------ */

TEST(safetensors_roundtrip_every_dtype) {
    char dir[80], path[128];
    mk_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    dv_tensor *t[N_RT];
    const char *names[N_RT];
    make_roundtrip_set(t, names);
    dv_st_kv meta[] = {{"format", "pt"}, {"empty", ""}, {"tricky", "a\"b\\c\nd\te\x02 \xe2\x98\x83 \xf0\x9f\x98\x80"}};
    CHECK_MSG(dv_st_save(path, names, t, N_RT, meta, 3, g_err, sizeof g_err) == 0, "save: %s", g_err);
    CHECK(count_tmp(dir) == 0);

    dv_st_file *f = NULL;
    CHECK_MSG(dv_st_open(path, &f, g_err, sizeof g_err) == 0, "open: %s", g_err);
    if (!f) { rm_tree(dir); return; }
    CHECK(dv_st_count(f) == N_RT);
    CHECK(dv_st_meta_count(f) == 3);
    for (int k = 0; k < 3; k++) {
        const char *v = dv_st_meta(f, meta[k].key);
        CHECK_MSG(v && !strcmp(v, meta[k].value), "metadata '%s' = '%s'", meta[k].key, v ? v : "(missing)");
    }
    CHECK(dv_st_meta(f, "absent") == NULL);
    for (int i = 0; i < N_RT; i++) {
        CHECK_MSG(!strcmp(dv_st_info_at(f, i)->name, names[i]), "header order: %d is '%s'", i, dv_st_info_at(f, i)->name);
        const dv_st_info *in = dv_st_info_at(f, dv_st_find(f, names[i]));
        CHECK(in->dtype == (int)t[i]->dtype && !strcmp(in->dtype_name, dv_st_dtype_name(t[i]->dtype)));
        CHECK(in->ndim == t[i]->ndim);
        /* every tensor aligned to its element size, relative to the file start */
        CHECK_MSG(in->file_offset % (int64_t)dv_dtype_size(t[i]->dtype) == 0, "'%s' at file offset %lld", names[i],
                  (long long)in->file_offset);
        dv_tensor *v = get_ok(f, names[i], 0), *c = get_ok(f, names[i], DV_ST_COPY);
        if (!v || !c) continue;
        CHECK_MSG(same_bits(v, t[i]), "'%s' view differs after the round trip", names[i]);
        CHECK_MSG(same_bits(c, t[i]), "'%s' copy differs after the round trip", names[i]);
        CHECK_MSG(is_view(v) && !is_view(c), "'%s': view/copy flags", names[i]);
        CHECK(dv_is_contiguous(v));
        dv_release(v);
        dv_release(c);
    }
    /* widening: f16/bf16 as f32, other dtypes unchanged */
    for (int i = 2; i <= 3; i++) {
        dv_tensor *w = get_ok(f, names[i], DV_ST_WIDEN);
        if (!w) continue;
        CHECK(w->dtype == DV_F32 && dv_same_shape(w, t[i]));
        for (int64_t e = 0; e < dv_numel(w); e++) CHECK(dv_flat_get(w, e) == dv_flat_get(t[i], e));
        dv_release(w);
    }
    dv_tensor *w = get_ok(f, "f64", DV_ST_WIDEN);
    CHECK(w && w->dtype == DV_F64);
    dv_release(w);
    dv_tensor *missing = (dv_tensor *)1;
    CHECK(dv_st_get(f, "nope", 0, &missing, g_err, sizeof g_err) == -1 && !missing && strstr(g_err, "'nope'") && strstr(g_err, path));
    dv_st_close(f);

    /* the layout on disk: 8-byte aligned buffer after space padding, widest dtype first */
    size_t n;
    unsigned char *b = read_whole(path, &n);
    uint64_t h = 0;
    for (int k = 7; k >= 0; k--) h = h << 8 | b[k];
    CHECK((8 + h) % 8 == 0 && h < n);
    CHECK(b[8] == '{');
    size_t last = 8 + h - 1;
    while (b[last] == ' ') last--;
    CHECK(b[last] == '}');
    free(b);

    for (int i = 0; i < N_RT; i++) dv_release(t[i]);

    /* nothing at all: "{}" padded */
    CHECK(dv_st_save(path, NULL, NULL, 0, NULL, 0, g_err, sizeof g_err) == 0);
    CHECK(dv_st_open(path, &f, g_err, sizeof g_err) == 0 && dv_st_count(f) == 0 && dv_st_meta_count(f) == 0);
    dv_st_close(f);
    b = read_whole(path, &n);
    CHECK(n == 16 && !memcmp(b + 8, "{}      ", 8));
    free(b);
    rm_tree(dir);
}

TEST(safetensors_views_keep_the_mapping_alive) {
    char dir[80], path[128];
    mk_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/live.safetensors", dir);
    dv_tensor *a = dv_arange(DV_F32, 0, 1000, 1), *b = dv_full(DV_F64, DV_SHAPE(3), 2.5);
    CHECK(dv_st_save(path, (const char *[]){"a", "b"}, (dv_tensor *[]){a, b}, 2, NULL, 0, g_err, sizeof g_err) == 0);
    dv_st_file *f;
    CHECK_MSG(dv_st_open(path, &f, g_err, sizeof g_err) == 0, "%s", g_err);
    CHECK(mapped(path));
    dv_tensor *va = get_ok(f, "a", 0), *vb = get_ok(f, "b", 0);
    dv_st_close(f);
    CHECK(mapped(path)); /* the views hold it */
    CHECK(dv_flat_get(va, 999) == 999 && dv_flat_get(vb, 2) == 2.5);
    dv_release(va);
    CHECK(mapped(path));
    /* writing into a view changes the private copy, never the file */
    dv_fill_(vb, -1.0);
    CHECK(dv_flat_get(vb, 0) == -1.0);
    dv_release(vb);
    CHECK(!mapped(path)); /* the last view gone: unmapped */
    CHECK(dv_st_open(path, &f, g_err, sizeof g_err) == 0);
    vb = get_ok(f, "b", 0);
    CHECK(dv_flat_get(vb, 1) == 2.5);
    dv_release(vb);
    dv_st_close(f);
    CHECK(!mapped(path));
    dv_release(a); dv_release(b);
    rm_tree(dir);
}

/* ---- files written by Python ------------------------------------------------------------------ */

static bool same_f32(float x, float y) { return (isnan(x) && isnan(y)) || dv_f32_bits(x) == dv_f32_bits(y); }

TEST(safetensors_reads_python_files) {
    dv_st_file *f = NULL;
    const char *path = "tests/reference/st_dtypes.safetensors";
    CHECK_MSG(dv_st_open(path, &f, g_err, sizeof g_err) == 0, "%s", g_err);
    if (!f) return;
    CHECK(dv_st_count(f) == 20);
    const char *note = dv_st_meta(f, "note");
    CHECK(note && !strcmp(note, "quote \" backslash \\ slash / newline \n tab \t e-acute \xc3\xa9 snowman \xe2\x98\x83 "
                                "emoji \xf0\x9f\x98\x80"));
    CHECK(dv_st_meta(f, "empty") && !strcmp(dv_st_meta(f, "empty"), ""));

    /* f16 / bf16: widened by us == widened by torch, bit for bit (NaN as NaN) */
    const char *halfs[] = {"f16.special", "f16.rand", "bf16.special", "bf16.rand"};
    for (int k = 0; k < 4; k++) {
        char ref_name[64];
        snprintf(ref_name, sizeof ref_name, "%s.f32", halfs[k]);
        dv_tensor *h = get_ok(f, halfs[k], 0), *w = get_ok(f, halfs[k], DV_ST_WIDEN), *ref = get_ok(f, ref_name, 0);
        if (!h || !w || !ref) continue;
        CHECK(h->dtype == (k < 2 ? DV_F16 : DV_BF16) && w->dtype == DV_F32 && dv_same_shape(w, ref));
        const float *wp = dv_data(w), *rp = dv_data(ref);
        const uint16_t *hp = dv_data(h);
        int bad = 0;
        for (int64_t i = 0; i < dv_numel(ref); i++) {
            float hv = k < 2 ? dv_f16_to_f32(hp[i]) : dv_bf16_to_f32(hp[i]);
            if (!same_f32(wp[i], rp[i]) || !same_f32(hv, rp[i])) bad++;
        }
        CHECK_MSG(!bad, "%s: %d values differ from torch's widening", halfs[k], bad);
        dv_release(h); dv_release(w); dv_release(ref);
    }
    /* narrowing f32 -> f16 / bf16 (as our writer would store them) == torch's rounding */
    dv_tensor *src = get_ok(f, "narrow.src", 0);
    for (int k = 0; src && k < 2; k++) {
        dv_tensor *ref = get_ok(f, k ? "narrow.bf16" : "narrow.f16", 0), *ours = dv_cast(src, k ? DV_BF16 : DV_F16);
        CHECK_MSG(ref && same_bits(ours, ref), "f32 -> %s rounding differs from torch", k ? "bf16" : "f16");
        dv_release(ref); dv_release(ours);
    }
    dv_release(src);

    /* integers, bools, 0-d, empty */
    dv_tensor *t = get_ok(f, "i64", 0);
    int64_t i64[] = {0, -1, (1LL << 40) + 7, -(1LL << 62) - 3, INT64_MAX};
    CHECK(t && t->ndim == 1 && t->shape[0] == 5 && !memcmp(dv_data(t), i64, sizeof i64));
    dv_release(t);
    t = get_ok(f, "i32", 0);
    int32_t i32[] = {0, -7, INT32_MAX, INT32_MIN, 12345, 9};
    CHECK(t && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && !memcmp(dv_data(t), i32, sizeof i32));
    dv_release(t);
    t = get_ok(f, "u8", 0);
    for (int i = 0; t && i < 256; i++) CHECK(((uint8_t *)dv_data(t))[i] == i);
    dv_release(t);
    t = get_ok(f, "bool", 0);
    CHECK(t && t->dtype == DV_BOOL && !memcmp(dv_data(t), (uint8_t[]){1, 0, 0, 1, 1, 0}, 6));
    dv_release(t);
    t = get_ok(f, "scalar", 0);
    CHECK(t && t->ndim == 0 && dv_item(t) == 3.25);
    dv_release(t);
    t = get_ok(f, "empty", 0);
    CHECK(t && t->ndim == 2 && t->shape[0] == 0 && t->shape[1] == 3 && dv_numel(t) == 0);
    dv_release(t);
    /* I8 is a valid dtype of the format, listed but not loadable */
    int i8 = dv_st_find(f, "i8");
    CHECK(i8 >= 0 && dv_st_info_at(f, i8)->dtype == -1 && !strcmp(dv_st_info_at(f, i8)->dtype_name, "I8"));
    t = (dv_tensor *)1;
    CHECK(dv_st_load(f, i8, 0, &t, g_err, sizeof g_err) == -1 && !t && strstr(g_err, "I8") && strstr(g_err, "'i8'"));
    dv_st_close(f);

    /* misaligned data: copied, not viewed; values right with and without widening */
    path = "tests/reference/st_unaligned.safetensors";
    CHECK_MSG(dv_st_open(path, &f, g_err, sizeof g_err) == 0, "%s", g_err);
    if (!f) return;
    CHECK(dv_st_info_at(f, dv_st_find(f, "f32"))->file_offset % 4 != 0);
    t = get_ok(f, "f32", 0);
    CHECK(t && !is_view(t));
    for (int i = 0; t && i < 5; i++) CHECK(dv_flat_get(t, i) == i * 0.5 - 1.0);
    dv_release(t);
    const double f16v[] = {1.0, -2.0, 0.5}, bf16v[] = {3.0, -0.25, 1024.0};
    for (int wide = 0; wide < 2; wide++) {
        dv_tensor *a = get_ok(f, "f16", wide ? DV_ST_WIDEN : 0), *b = get_ok(f, "bf16", wide ? DV_ST_WIDEN : 0);
        CHECK(a && b && a->dtype == (wide ? DV_F32 : DV_F16) && b->dtype == (wide ? DV_F32 : DV_BF16));
        for (int i = 0; a && b && i < 3; i++) CHECK(dv_flat_get(a, i) == f16v[i] && dv_flat_get(b, i) == bf16v[i]);
        dv_release(a); dv_release(b);
    }
    t = get_ok(f, "i64", 0);
    CHECK(t && dv_flat_get(t, 0) == (double)(-(1LL << 40) - 1) && ((int64_t *)dv_data(t))[1] == (1LL << 62) + 3);
    dv_release(t);
    t = get_ok(f, "u8.head", 0);
    CHECK(t && is_view(t) && dv_flat_get(t, 2) == 9); /* bytes are always aligned: a view */
    dv_release(t);
    dv_st_close(f);
}

static void check_sharded(dv_st_file *f, const char *where) {
    CHECK_MSG(dv_st_count(f) == 6, "%s: %d tensors", where, dv_st_count(f));
    for (int k = 0; k < 3; k++) {
        char wn[32], bn[32];
        snprintf(wn, sizeof wn, "layer%d.weight", k);
        snprintf(bn, sizeof bn, "layer%d.bias", k);
        dv_tensor *w = get_ok(f, wn, 0), *b = get_ok(f, bn, 0);
        if (!w || !b) continue;
        CHECK(w->ndim == 2 && w->shape[0] == 2 && w->shape[1] == 3 && b->ndim == 1 && b->shape[0] == 3);
        for (int i = 0; i < 6; i++) CHECK_CLOSE(dv_flat_get(w, i), k + i / 10.0, 1e-6);
        for (int i = 0; i < 3; i++) CHECK(dv_flat_get(b, i) == -k);
        const char *file = dv_st_info_at(f, dv_st_find(f, wn))->file;
        CHECK_MSG(strstr(file, k < 2 ? "model-00001-of-00002" : "model-00002-of-00002"), "%s: %s in %s", where, wn, file);
        dv_release(w); dv_release(b);
    }
    CHECK(dv_st_meta(f, "format") && !strcmp(dv_st_meta(f, "format"), "pt"));
}

TEST(safetensors_sharded) {
    dv_st_file *f = NULL;
    /* the Python-written index, named directly and through its directory */
    CHECK_MSG(dv_st_open("tests/reference/st_sharded/model.safetensors.index.json", &f, g_err, sizeof g_err) == 0, "%s", g_err);
    if (f) { check_sharded(f, "index"); dv_st_close(f); }
    CHECK_MSG(dv_st_open("tests/reference/st_sharded", &f, g_err, sizeof g_err) == 0, "%s", g_err);
    if (f) { check_sharded(f, "dir"); dv_st_close(f); }

    /* a directory of shards without an index; then the errors */
    char dir[80], p[160];
    mk_tmpdir(dir, sizeof dir);
    dv_tensor *x = dv_ones(DV_F32, DV_SHAPE(2)), *y = dv_zeros(DV_F32, DV_SHAPE(3));
    snprintf(p, sizeof p, "%s/a.safetensors", dir);
    CHECK(dv_st_save(p, (const char *[]){"x"}, &x, 1, NULL, 0, g_err, sizeof g_err) == 0);
    snprintf(p, sizeof p, "%s/b.safetensors", dir);
    CHECK(dv_st_save(p, (const char *[]){"y"}, &y, 1, NULL, 0, g_err, sizeof g_err) == 0);
    CHECK_MSG(dv_st_open(dir, &f, g_err, sizeof g_err) == 0, "%s", g_err);
    if (f) {
        CHECK(dv_st_count(f) == 2 && dv_st_find(f, "x") == 0 && dv_st_find(f, "y") == 1);
        dv_tensor *t = get_ok(f, "y", 0);
        CHECK(t && t->shape[0] == 3);
        dv_release(t);
        t = (dv_tensor *)1;
        CHECK(dv_st_get(f, "z", 0, &t, g_err, sizeof g_err) == -1 && strstr(g_err, "other shards") && strstr(g_err, "'z'"));
        dv_st_close(f);
    }
    /* the same name in two shards */
    snprintf(p, sizeof p, "%s/c.safetensors", dir);
    CHECK(dv_st_save(p, (const char *[]){"x"}, &y, 1, NULL, 0, g_err, sizeof g_err) == 0);
    CHECK(dv_st_open(dir, &f, g_err, sizeof g_err) == -1 && !f && strstr(g_err, "'x' is also in"));
    unlink(p);

    struct { const char *json, *want; } bad[] = {
        {"{\"weight_map\": {\"x\": \"a.safetensors\", \"y\": \"missing.safetensors\"}}", "missing.safetensors: cannot open"},
        {"{\"weight_map\": {\"x\": \"b.safetensors\"}}", "puts tensor 'x' in"},
        {"{\"weight_map\": {\"x\": \"../a.safetensors\"}}", "expected a file name"},
        {"{\"weight_map\": {\"x\": \"\"}}", "expected a file name"},
        {"{\"metadata\": {}}", "no \"weight_map\""},
        {"{\"weight_map\": {\"x\": 3}}", "expected a string"},
        {"{\"weight_map\": {\"x\": \"a.safetensors\", \"x\": \"a.safetensors\"}}", "duplicate key \"x\""},
        {"{\"weight_map\": {}, \"metadata\": {\"total_size\": 1.5e}}", "digit in the exponent"},
        {"{\"weight_map\": {}} []", "end of the JSON text"},
        {"[]", "must be a JSON object"},
    };
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        write_file(p, bad[k].json, strlen(bad[k].json));
        f = (dv_st_file *)1;
        g_err[0] = 0;
        CHECK_MSG(dv_st_open(dir, &f, g_err, sizeof g_err) == -1 && !f && strstr(g_err, bad[k].want),
                  "index %s: got '%s', want '%s'", bad[k].json, g_err, bad[k].want);
    }
    /* the Python index with every byte damaged four ways, next to copies of its shards */
    rm_tree(dir);
    mkdir(dir, 0700);
    const char *files[] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    for (int k = 0; k < 2; k++) {
        char src[160];
        size_t n;
        snprintf(src, sizeof src, "tests/reference/st_sharded/%s", files[k]);
        unsigned char *b = read_whole(src, &n);
        snprintf(p, sizeof p, "%s/%s", dir, files[k]);
        if (b) write_file(p, b, n);
        free(b);
    }
    size_t n;
    unsigned char *idx = read_whole("tests/reference/st_sharded/model.safetensors.index.json", &n), *c = malloc(n + 1);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    int trials = 0, refused = 0;
    for (size_t i = 0; idx && i < n; i++) {
        static const unsigned char to[] = {'"', '}', '9', 0x80};
        for (int v = 0; v < 5; v++) {
            memcpy(c, idx, n);
            c[i] = v < 4 ? to[v] : (unsigned char)(idx[i] ^ 0x20);
            if (c[i] == idx[i]) continue;
            write_file_inplace(p, c, n);
            trials++;
            f = (dv_st_file *)1;
            if (dv_st_open(dir, &f, g_err, sizeof g_err)) {
                refused++;
                CHECK(!f && g_err[0]);
            } else {
                for (int t = 0; t < dv_st_count(f); t++) {
                    dv_tensor *x = NULL;
                    CHECK(dv_st_load(f, t, DV_ST_COPY, &x, g_err, sizeof g_err) == 0 && x);
                    dv_release(x);
                }
                dv_st_close(f);
            }
        }
    }
    CHECK_MSG(refused > trials / 2, "%d of %d damaged indexes refused", refused, trials);
    CHECK(!mapped(dir));
    if (dv_test_verbose) printf("  %d damaged indexes, %d refused\n", trials, refused);
    free(idx); free(c);
    /* nesting is bounded */
    char deep[512] = "{\"metadata\": ";
    for (int k = 0; k < 100; k++) strcat(deep, "[");
    strcat(deep, "]}");
    write_file(p, deep, strlen(deep));
    CHECK(dv_st_open(p, &f, g_err, sizeof g_err) == -1 && strstr(g_err, "nested deeper"));
    /* an empty directory */
    rm_tree(dir);
    mkdir(dir, 0700);
    CHECK(dv_st_open(dir, &f, g_err, sizeof g_err) == -1 && strstr(g_err, "no *.safetensors"));
    dv_release(x); dv_release(y);
    rm_tree(dir);
}

/* ---- hostile headers --------------------------------------------------------------------------- */

#define T8(name) "\"" name "\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

TEST(safetensors_rejects_bad_headers) {
    struct { const char *header; size_t nbuf; const char *want; } bad[] = {
        {"", 8, "must be a JSON object, found the end"},
        {"[]", 0, "must be a JSON object"},
        {"{" T8("a") "}x", 8, "expected the end of the JSON text, found 'x'"},
        {"{" T8("a") ",}", 8, "expected a quoted key"},
        {"{" T8("a") T8("b") "}", 16, "expected ',' or '}'"},
        {"{\"a\":{\"dtype\":\"F17\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype \"F17\""},
        {"{\"a\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "hold 8 bytes but dtype F32 shape (3) needs 12"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", 8, "dim 0 is -1, expected a size >= 0"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, "more bytes than int64"},
        {"{\"a\":{\"dtype\":\"F64\",\"shape\":[9223372036854775807],\"data_offsets\":[0,8]}}", 8, "more bytes than int64"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}", 8, "int64 range"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,-8]}}", 8, "expected 0 <= begin <= end"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "expected 0 <= begin <= end"},
        {"{" T8("a") "," T8("a") "}", 8, "duplicate tensor name 'a'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "run past the data buffer (4 bytes)"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         12, "'b' (data_offsets [4, 12]) overlaps tensor 'a'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
         12, "bytes [4, 8) belong to no tensor"},
        {"{" T8("a") "}", 12, "4 bytes after the last tensor"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         8, "overlaps"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8, "fraction or exponent"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2e0],\"data_offsets\":[0,8]}}", 8, "fraction or exponent"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", 8, "leading zeros"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[+2],\"data_offsets\":[0,8]}}", 8, "expected an integer, found '+'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[true],\"data_offsets\":[0,8]}}", 8, "expected an integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, "expected '[' to open a shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, "more than 8 dims"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8, "third entry"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "found 1 entries"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "missing \"data_offsets\""},
        {"{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "missing \"dtype\""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":1}}", 8, "unexpected key \"extra\""},
        {"{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "duplicate key \"dtype\""},
        {"{\"a\":{\"dtype\":5,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "expected a string, found '5'"},
        {"{\"a\":3}", 0, "tensor 'a': expected an object"},
        {"{\"__metadata__\":{\"k\":1}," T8("a") "}", 8, "the value of \"k\" is '1', expected a string"},
        {"{\"__metadata__\":[]," T8("a") "}", 8, "\"__metadata__\" must be an object"},
        {"{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"}}", 0, "duplicate key \"k\""},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate \"__metadata__\""},
        {"{\"__metadata__\":{\"k\":\"v\"}", 0, "expected ',' or '}' in an object, found the end"},
        {"{\"a\\x\":1}", 0, "invalid escape '\\x'"},
        {"{\"a\tb\":1}", 0, "raw control character 0x09"},
        {"{\"a\xff\":1}", 0, "invalid UTF-8"},
        {"{\"a\xc0\xaf\":1}", 0, "invalid UTF-8"},           /* overlong '/' */
        {"{\"a\xed\xa0\x80\":1}", 0, "invalid UTF-8"},       /* an encoded surrogate */
        {"{\"a\\udc00\":1}", 0, "unpaired low surrogate"},
        {"{\"a\\ud800\":1}", 0, "not followed by a low one"},
        {"{\"a\\ud800\\u0041\":1}", 0, "not a low surrogate"},
        {"{\"a\\u00g0\":1}", 0, "4 hex digits"},
        {"{\"a\\u0000\":1}", 0, "\\u0000 is not allowed"},
        {"{\"a", 0, "unterminated string"},
        {"{\"a\\", 0, "unterminated string"},
        {"{\"\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4, "empty tensor name"},
        {"{a:1}", 0, "expected a quoted key, found 'a'"},
        {"{\"a\" 1}", 0, "expected ':' after an object key"},
        {"{'a':1}", 0, "expected a quoted key"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} /* c */", 8, "end of the JSON text"},
    };
    char dir[80], path[128];
    mk_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        const char *h = bad[k].header;
        write_st_raw(path, h, bad[k].nbuf);
        dv_st_file *f = (dv_st_file *)1;
        g_err[0] = 0;
        int rc = dv_st_open(path, &f, g_err, sizeof g_err);
        CHECK_MSG(rc == -1 && !f && strstr(g_err, bad[k].want) && !strncmp(g_err, path, strlen(path)),
                  "case %zu %s: rc %d, message '%s', want '%s'", k, h, rc, g_err, bad[k].want);
        if (!rc) dv_st_close(f);
    }
    /* NUL padding instead of spaces */
    write_file(path, "\x0a\0\0\0\0\0\0\0{}\0\0\0\0\0\0\0\0", 18);
    dv_st_file *f;
    CHECK(dv_st_open(path, &f, g_err, sizeof g_err) == -1 && strstr(g_err, "header byte 2 (file offset 10): expected the end of the "
                                                                    "JSON text, found byte 0x00"));
    /* file-level: too short, absurd or overlong header length */
    write_file(path, "\x02\0\0\0\0\0\0", 7);
    CHECK(dv_st_open(path, &f, g_err, sizeof g_err) == -1 && strstr(g_err, "7 bytes, too short"));
    write_file(path, "\x00\xe1\xf5\x05\0\0\0\0{}", 10); /* 100,000,000 is the largest allowed */
    CHECK(dv_st_open(path, &f, g_err, sizeof g_err) == -1 && strstr(g_err, "header length 100000000 (file offset 0) runs past"));
    write_file(path, "\x01\xe1\xf5\x05\0\0\0\0{}", 10);
    CHECK(dv_st_open(path, &f, g_err, sizeof g_err) == -1 && strstr(g_err, "over the 100000000-byte limit"));
    write_file(path, "\xff\xff\xff\xff\xff\xff\xff\xff{}", 10);
    CHECK(dv_st_open(path, &f, g_err, sizeof g_err) == -1 && strstr(g_err, "over the"));
    write_file(path, "\x03\0\0\0\0\0\0\0{}", 10);
    CHECK(dv_st_open(path, &f, g_err, sizeof g_err) == -1 && strstr(g_err, "runs past the end of the file (10 bytes"));
    CHECK(dv_st_open("/nonexistent/x.safetensors", &f, g_err, sizeof g_err) == -1 && strstr(g_err, "cannot open"));

    /* and some valid oddities */
    struct { const char *header; size_t nbuf; int n; } good[] = {
        {"{}", 0, 0},
        {" \t\r\n{ } \n  ", 0, 0},
        {"{\"__metadata__\":{}}", 0, 0},
        {"{ \"a\\/\\u00e9\\ud83d\\ude00\" : { \"data_offsets\" : [ 0 , 0 ] , \"shape\" : [ 0 , 5 ] , \"dtype\" : \"BF16\" } }", 0, 1},
        {"{\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},\"y\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]},"
         "\"x\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},\"w\":{\"dtype\":\"I8\",\"shape\":[],\"data_offsets\":[2,3]}}", 3, 4},
    };
    for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
        write_st_raw(path, good[k].header, good[k].nbuf);
        f = NULL;
        CHECK_MSG(dv_st_open(path, &f, g_err, sizeof g_err) == 0 && dv_st_count(f) == good[k].n, "good %zu: %s", k, g_err);
        dv_st_close(f);
    }
    write_st_raw(path, good[3].header, 0);
    CHECK(dv_st_open(path, &f, g_err, sizeof g_err) == 0 && dv_st_find(f, "a/\xc3\xa9\xf0\x9f\x98\x80") == 0);
    dv_st_close(f);
    rm_tree(dir);
}

/* ---- truncation and corruption ----------------------------------------------------------------- */

/* open path; on success load every loadable tensor both ways and read each byte. Returns rc. */
static int open_and_touch(const char *path, int64_t file_size, uint64_t *sum) {
    dv_st_file *f = (dv_st_file *)1;
    g_err[0] = 0;
    int rc = dv_st_open(path, &f, g_err, sizeof g_err);
    if (rc) {
        CHECK_MSG(rc == -1 && !f && g_err[0] && !strncmp(g_err, path, strlen(path)), "rc %d f %p err '%s'", rc, (void *)f, g_err);
        return rc;
    }
    for (int i = 0; i < dv_st_count(f); i++) {
        const dv_st_info *in = dv_st_info_at(f, i);
        CHECK(in->begin >= 0 && in->begin <= in->end && in->file_offset + (in->end - in->begin) <= file_size);
        for (int flags = 0; flags < 4; flags++) {
            dv_tensor *t = NULL;
            if (dv_st_load(f, i, flags, &t, g_err, sizeof g_err)) { CHECK(in->dtype < 0 && !t); continue; }
            const unsigned char *p = dv_data(t);
            int64_t nb = dv_numel(t) * (int64_t)dv_dtype_size(t->dtype);
            for (int64_t b = 0; b < nb; b++) *sum += p[b];
            dv_release(t);
        }
    }
    dv_st_close(f);
    return 0;
}

/* a small valid file with metadata, every dtype, no zero-size tensors */
static unsigned char *valid_file(const char *path, size_t *n, uint64_t *hlen) {
    dv_tensor *t[8];
    const char *names[8] = {"w.f32", "b.f64", "h.f16", "g.bf16", "i.i32", "j.i64", "u\\8", "m.bool"};
    dv_rng r = dv_rng_new(3);
    t[0] = dv_randn(&r, DV_F32, DV_SHAPE(2, 3));
    t[1] = dv_randn(&r, DV_F64, DV_SHAPE(2));
    t[2] = dv_randn(&r, DV_F16, DV_SHAPE(3));
    t[3] = dv_randn(&r, DV_BF16, DV_SHAPE(1, 3));
    t[4] = dv_full(DV_I32, DV_SHAPE(2), -5);
    t[5] = dv_full(DV_I64, DV_SHAPE(1), 1e12);
    t[6] = dv_full(DV_U8, DV_SHAPE(3), 200);
    t[7] = dv_full(DV_BOOL, DV_SHAPE(2, 1), 1);
    dv_st_kv meta[] = {{"step", "12"}, {"c\xc3\xa9", "x\"y"}};
    DV_ASSERT(dv_st_save(path, names, t, 8, meta, 2, g_err, sizeof g_err) == 0, "%s", g_err);
    for (int i = 0; i < 8; i++) dv_release(t[i]);
    unsigned char *b = read_whole(path, n);
    *hlen = 0;
    for (int k = 7; k >= 0; k--) *hlen = *hlen << 8 | b[k];
    return b;
}

TEST(safetensors_truncated_at_every_byte) {
    char dir[80], path[128], cut[160];
    mk_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/valid.safetensors", dir);
    snprintf(cut, sizeof cut, "%s/cut.safetensors", dir);
    size_t n;
    uint64_t h, sum = 0;
    unsigned char *b = valid_file(path, &n, &h);
    CHECK(open_and_touch(path, (int64_t)n, &sum) == 0);
    int errors = 0;
    for (size_t len = 0; len < n; len++) {
        write_file(cut, b, len);
        if (open_and_touch(cut, (int64_t)len, &sum)) errors++;
    }
    CHECK_MSG(errors == (int)n, "%d of %zu truncations were refused", errors, n);
    CHECK(!mapped(cut));
    /* one byte too many */
    unsigned char *b2 = malloc(n + 1);
    memcpy(b2, b, n);
    b2[n] = 0;
    write_file(cut, b2, n + 1);
    CHECK(open_and_touch(cut, (int64_t)n + 1, &sum) == -1 && strstr(g_err, "1 bytes after the last tensor"));
    if (dv_test_verbose) printf("  %zu-byte file (header %llu): %zu truncations refused\n", n, (unsigned long long)h, n);
    free(b); free(b2);
    rm_tree(dir);
}

TEST(safetensors_corrupt_header_bytes) {
    char dir[80], path[128], bad[160];
    mk_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/valid.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    size_t n;
    uint64_t h, sum = 0;
    unsigned char *b = valid_file(path, &n, &h);
    unsigned char *c = malloc(n);
    static const unsigned char set_to[] = {0, '"', '\\', '}', ']', ',', ':', '-', '9', ' ', 0xff};
    int trials = 0, refused = 0;
    /* every byte of the length field and the JSON: 8 bit flips and 11 replacement values */
    for (size_t p = 0; p < 8 + h; p++) {
        for (int v = 0; v < 8 + (int)sizeof set_to; v++) {
            memcpy(c, b, n);
            c[p] = v < 8 ? (unsigned char)(b[p] ^ (1u << v)) : set_to[v - 8];
            if (c[p] == b[p]) continue;
            write_file_inplace(bad, c, n);
            trials++;
            if (open_and_touch(bad, (int64_t)n, &sum)) refused++;
        }
    }
    /* random multi-byte damage anywhere in the file */
    dv_rng r = dv_rng_new(17);
    for (int it = 0; it < 1000; it++) {
        memcpy(c, b, n);
        int k = 1 + (int)(dv_rng_u32(&r) % 4);
        for (int j = 0; j < k; j++) c[dv_rng_u32(&r) % (8 + h)] = (unsigned char)dv_rng_u32(&r);
        write_file_inplace(bad, c, n);
        trials++;
        if (open_and_touch(bad, (int64_t)n, &sum)) refused++;
    }
    /* most damage must be caught; a few changes are harmless (a digit of a random value's
     * neighbour in metadata, whitespace for whitespace, ...) */
    CHECK_MSG(refused > trials * 9 / 10, "%d of %d corruptions refused", refused, trials);
    CHECK(!mapped(bad)); /* error paths unmap too */
    if (dv_test_verbose) printf("  %d corruptions, %d refused, %d parsed (and loaded) fine\n", trials, refused, trials - refused);
    free(b); free(c);
    rm_tree(dir);
}

/* ---- atomic saves ------------------------------------------------------------------------------ */

static bool file_is(const char *path, const unsigned char *want, size_t n) {
    size_t m;
    unsigned char *b = read_whole(path, &m);
    bool same = b && m == n && !memcmp(b, want, n);
    free(b);
    return same;
}

TEST(safetensors_save_is_atomic) {
    char dir[80], path[128], p2[160];
    mk_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    dv_tensor *small = dv_full(DV_F32, DV_SHAPE(4), 1.0), *big = dv_full(DV_F32, DV_SHAPE(1 << 16), 2.0);
    const char *nm[] = {"x"};
    CHECK(dv_st_save(path, nm, &small, 1, NULL, 0, g_err, sizeof g_err) == 0);
    size_t n0;
    unsigned char *old = read_whole(path, &n0);

    /* (1) the disk "fills up" mid-write: a child with a 4 KiB file size limit */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl;
        getrlimit(RLIMIT_FSIZE, &rl);
        rl.rlim_cur = 4096;
        setrlimit(RLIMIT_FSIZE, &rl);
        char e[512];
        int rc = dv_st_save(path, nm, &big, 1, NULL, 0, e, sizeof e);
        _exit(rc == -1 && strstr(e, "could not write tensor data") && strstr(e, "untouched") ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's save did not fail as expected (status %d)", status);
    CHECK(file_is(path, old, n0));
    CHECK(count_tmp(dir) == 0);

    /* (2) the rename fails: the target is a directory */
    snprintf(p2, sizeof p2, "%s/adir", dir);
    mkdir(p2, 0700);
    CHECK(dv_st_save(p2, nm, &small, 1, NULL, 0, g_err, sizeof g_err) == -1 && strstr(g_err, "rename"));
    struct stat st;
    CHECK(stat(p2, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(count_tmp(dir) == 0);

    /* (3) the directory does not exist: nothing is created */
    snprintf(p2, sizeof p2, "%s/no/such/dir/x.safetensors", dir);
    CHECK(dv_st_save(p2, nm, &small, 1, NULL, 0, g_err, sizeof g_err) == -1 && strstr(g_err, "cannot create"));

    /* (4) bad arguments fail before the disk is touched */
    CHECK(dv_st_save(path, (const char *[]){"a", "a"}, (dv_tensor *[]){small, big}, 2, NULL, 0, g_err, sizeof g_err) == -1 &&
          strstr(g_err, "duplicate tensor name 'a'"));
    CHECK(dv_st_save(path, (const char *[]){""}, &small, 1, NULL, 0, g_err, sizeof g_err) == -1 && strstr(g_err, "empty"));
    CHECK(dv_st_save(path, (const char *[]){"__metadata__"}, &small, 1, NULL, 0, g_err, sizeof g_err) == -1);
    CHECK(dv_st_save(path, (const char *[]){"bad\xff"}, &small, 1, NULL, 0, g_err, sizeof g_err) == -1 && strstr(g_err, "UTF-8"));
    dv_st_kv dup[] = {{"k", "1"}, {"k", "2"}};
    CHECK(dv_st_save(path, nm, &small, 1, dup, 2, g_err, sizeof g_err) == -1 && strstr(g_err, "duplicate metadata key 'k'"));
    CHECK(file_is(path, old, n0));

    /* (5) a good save replaces the file and leaves no temp file */
    CHECK(dv_st_save(path, nm, &big, 1, NULL, 0, g_err, sizeof g_err) == 0);
    dv_st_file *f;
    CHECK(dv_st_open(path, &f, g_err, sizeof g_err) == 0);
    dv_tensor *t = get_ok(f, "x", 0);
    CHECK(t && dv_numel(t) == 1 << 16 && dv_flat_get(t, 12345) == 2.0);
    dv_release(t);
    dv_st_close(f);
    CHECK(count_tmp(dir) == 0);
    free(old);
    dv_release(small); dv_release(big);
    rm_tree(dir);
}
