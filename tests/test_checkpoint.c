/* tests/test_checkpoint.c — training checkpoints (tensor/checkpoint.c): a save/load round trip
 * that resumes the same random stream, into fresh and strided tensors; every load error (shape,
 * dtype, missing, unexpected, rng, step, not a checkpoint) leaves the run's state untouched; a
 * failed save keeps the previous checkpoint. */
#define _GNU_SOURCE
#include "tests/util.h"
#include "tensor/checkpoint.h"
#include "tensor/safetensors.h"

#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_err[1024];

static void mk_tmpdir(char *dir, size_t n) {
    snprintf(dir, n, "/dev/shm/dv_ckpt_test_XXXXXX");
    if (mkdtemp(dir)) return;
    snprintf(dir, n, "/tmp/dv_ckpt_test_XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); abort(); }
}
static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f) { return remove(p); }
static void rm_tree(const char *dir) { nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static bool equal_values(const dv_tensor *a, const dv_tensor *b) {
    if (!dv_same_shape(a, b) || a->dtype != b->dtype) return false;
    for (int64_t i = 0; i < dv_numel(a); i++)
        if (dv_flat_get(a, i) != dv_flat_get(b, i)) return false;
    return true;
}

/* a small "run": parameters, AdamW-like state, two rng streams */
typedef struct {
    dv_tensor *w, *b, *e, *m, *v, *t; /* e is bf16; t an i64 counter */
    dv_rng data, drop;
} run;

static void run_init(run *r, uint64_t seed) {
    dv_rng g = dv_rng_new(seed);
    r->w = dv_randn(&g, DV_F32, DV_SHAPE(4, 3));
    r->b = dv_randn(&g, DV_F32, DV_SHAPE(3));
    r->e = dv_randn(&g, DV_BF16, DV_SHAPE(2, 2));
    r->m = dv_randn(&g, DV_F32, DV_SHAPE(4, 3));
    r->v = dv_rand(&g, DV_F32, DV_SHAPE(4, 3));
    r->t = dv_full(DV_I64, DV_SHAPE(1), (double)(seed * 1000 + 7));
    r->data = dv_rng_new(seed + 1);
    r->drop = dv_rng_new(seed + 2);
}
static void run_free(run *r) {
    dv_release(r->w); dv_release(r->b); dv_release(r->e); dv_release(r->m); dv_release(r->v); dv_release(r->t);
}

#define N_T 6
static void run_ckpt(run *r, dv_ckpt_tensor *ts, dv_ckpt_rng *rs, dv_checkpoint *ck) {
    ts[0] = (dv_ckpt_tensor){"w", r->w};
    ts[1] = (dv_ckpt_tensor){"b", r->b};
    ts[2] = (dv_ckpt_tensor){"emb.bf16", r->e};
    ts[3] = (dv_ckpt_tensor){"optim.exp_avg.w", r->m};
    ts[4] = (dv_ckpt_tensor){"optim.exp_avg_sq.w", r->v};
    ts[5] = (dv_ckpt_tensor){"optim.step", r->t};
    rs[0] = (dv_ckpt_rng){"data", &r->data};
    rs[1] = (dv_ckpt_rng){"dropout", &r->drop};
    *ck = (dv_checkpoint){.step = 0, .tensors = ts, .n_tensors = N_T, .rngs = rs, .n_rngs = 2, .config = NULL};
}

static const char *k_config = "model: dit\nlr: 1e-4 # \"quoted\"\nname: caf\xc3\xa9 \xe2\x98\x83\n\ttab\\slash";

TEST(checkpoint_roundtrip_resumes_the_run) {
    char dir[80], path[128];
    mk_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    run a;
    run_init(&a, 1);
    dv_tensor *burn = dv_randn(&a.data, DV_F32, DV_SHAPE(5)); /* advance the stream before saving */
    dv_release(burn);
    dv_ckpt_tensor ts[N_T];
    dv_ckpt_rng rs[2];
    dv_checkpoint ck;
    run_ckpt(&a, ts, rs, &ck);
    ck.step = 1234;
    ck.config = k_config;
    CHECK_MSG(dv_checkpoint_save(path, &ck, g_err, sizeof g_err) == 0, "%s", g_err);
    /* what the run draws next, had it gone on */
    dv_tensor *next = dv_randn(&a.data, DV_F32, DV_SHAPE(6));

    /* a fresh run with other values; w restored into a strided (transposed) view */
    run b;
    run_init(&b, 50);
    dv_tensor *wt_buf = dv_zeros(DV_F32, DV_SHAPE(3, 4)), *wt = dv_transpose(wt_buf, 0, 1);
    dv_release(b.w);
    b.w = wt;
    dv_ckpt_tensor tb[N_T];
    dv_ckpt_rng rb[2];
    dv_checkpoint cb;
    run_ckpt(&b, tb, rb, &cb);
    char *config = NULL;
    CHECK_MSG(dv_checkpoint_load(path, &cb, &config, g_err, sizeof g_err) == 0, "%s", g_err);
    CHECK(cb.step == 1234);
    CHECK(config && !strcmp(config, k_config));
    free(config);
    for (int i = 0; i < N_T; i++) CHECK_MSG(equal_values(tb[i].tensor, ts[i].tensor), "tensor '%s' differs", ts[i].name);
    CHECK(dv_flat_get(wt_buf, 1) == dv_flat_get(a.w, 3)); /* (4,3) element (1,0) lives at buffer (0,1) */
    CHECK(b.drop.seed == a.drop.seed && b.drop.offset == a.drop.offset);
    dv_tensor *again = dv_randn(&b.data, DV_F32, DV_SHAPE(6));
    CHECK_MSG(equal_values(again, next), "the data stream does not resume where it was saved");

    /* the file is a plain safetensors file: weights load by name, the metadata is readable */
    dv_st_file *f;
    CHECK(dv_st_open(path, &f, g_err, sizeof g_err) == 0);
    dv_tensor *w = NULL;
    CHECK(dv_st_get(f, "w", 0, &w, g_err, sizeof g_err) == 0 && equal_values(w, a.w));
    CHECK(dv_st_meta(f, "dualvla.step") && !strcmp(dv_st_meta(f, "dualvla.step"), "1234"));
    dv_release(w);
    dv_st_close(f);

    /* no config, no rngs, no tensors, negative step */
    dv_checkpoint bare = {.step = -3};
    CHECK(dv_checkpoint_save(path, &bare, g_err, sizeof g_err) == 0);
    bare.step = 99;
    config = (char *)1;
    CHECK(dv_checkpoint_load(path, &bare, &config, g_err, sizeof g_err) == 0 && bare.step == -3 && config == NULL);

    dv_release(next); dv_release(again); dv_release(wt_buf);
    run_free(&a); run_free(&b);
    rm_tree(dir);
}

/* the state of run b, to check a failed load changed nothing */
static double fingerprint(const run *r) {
    double s = (double)(r->data.seed * 3 + r->data.offset * 5 + r->drop.seed * 7 + r->drop.offset * 11);
    const dv_tensor *ts[] = {r->w, r->b, r->e, r->m, r->v, r->t};
    for (int k = 0; k < 6; k++)
        for (int64_t i = 0; i < dv_numel(ts[k]); i++) s += dv_flat_get(ts[k], i) * (double)(k + 1) * (double)(i + 1);
    return s;
}

static void expect_load_error(const char *path, run *b, dv_checkpoint *cb, const char *want) {
    double before = fingerprint(b);
    int64_t step = cb->step;
    char *config = (char *)1;
    g_err[0] = 0;
    int rc = dv_checkpoint_load(path, cb, &config, g_err, sizeof g_err);
    CHECK_MSG(rc == -1 && strstr(g_err, want), "load: rc %d, message '%s', want '%s'", rc, g_err, want);
    CHECK_MSG(fingerprint(b) == before && cb->step == step && config == NULL, "a failed load ('%s') changed the run", want);
}

TEST(checkpoint_load_errors_change_nothing) {
    char dir[80], path[128], other[160];
    mk_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    snprintf(other, sizeof other, "%s/other.safetensors", dir);
    run a, b;
    run_init(&a, 1);
    run_init(&b, 2);
    dv_ckpt_tensor ta[N_T], tb[N_T];
    dv_ckpt_rng ra[2], rb[2];
    dv_checkpoint ca, cb;
    run_ckpt(&a, ta, ra, &ca);
    run_ckpt(&b, tb, rb, &cb);
    ca.step = 10;
    cb.step = -5;
    CHECK(dv_checkpoint_save(path, &ca, g_err, sizeof g_err) == 0);

    /* shape and dtype */
    dv_tensor *wrong = dv_zeros(DV_F32, DV_SHAPE(3, 4));
    tb[0].tensor = wrong;
    expect_load_error(path, &b, &cb, "tensor 'w': the file has shape (4, 3), the run's tensor is (3, 4)");
    dv_release(wrong);
    wrong = dv_zeros(DV_F64, DV_SHAPE(4, 3));
    tb[0].tensor = wrong;
    expect_load_error(path, &b, &cb, "tensor 'w': the file has dtype F32, the run's tensor is F64");
    dv_release(wrong);
    wrong = dv_zeros(DV_F32, DV_SHAPE(2, 2));
    tb[2].tensor = wrong; /* bf16 in the file */
    tb[0].tensor = b.w;
    expect_load_error(path, &b, &cb, "tensor 'emb.bf16': the file has dtype BF16, the run's tensor is F32");
    dv_release(wrong);
    tb[2].tensor = b.e;
    /* missing, unexpected, twice */
    tb[1].name = "bias";
    expect_load_error(path, &b, &cb, "no tensor 'bias' in the checkpoint");
    tb[1].name = "b";
    cb.n_tensors = N_T - 1;
    expect_load_error(path, &b, &cb, "the file has tensor 'optim.step' that the run does not have");
    cb.n_tensors = N_T;
    tb[1].name = "w";
    expect_load_error(path, &b, &cb, "tensor 'w' asked for twice");
    tb[1].name = "b";
    /* rngs */
    rb[1].name = "noise";
    expect_load_error(path, &b, &cb, "no state for rng 'noise'");
    rb[1].name = "dropout";
    cb.n_rngs = 1;
    expect_load_error(path, &b, &cb, "the file has rng 'dropout' that the run does not have");
    cb.n_rngs = 2;
    /* a plain safetensors file, hand-made bad metadata, no file */
    const char *nm[] = {"w"};
    CHECK(dv_st_save(other, nm, &a.w, 1, NULL, 0, g_err, sizeof g_err) == 0);
    expect_load_error(other, &b, &cb, "not a dualvla checkpoint");
    dv_st_kv bad_step[] = {{"dualvla.checkpoint", "1"}, {"dualvla.step", "12x"}};
    CHECK(dv_st_save(other, nm, &a.w, 1, bad_step, 2, g_err, sizeof g_err) == 0);
    expect_load_error(other, &b, &cb, "\"dualvla.step\" is \"12x\", expected a decimal integer");
    dv_st_kv bad_rng[] = {{"dualvla.checkpoint", "1"}, {"dualvla.step", "1"}, {"dualvla.rng.data", "5"}};
    CHECK(dv_st_save(other, nm, &a.w, 1, bad_rng, 3, g_err, sizeof g_err) == 0);
    expect_load_error(other, &b, &cb, "\"dualvla.rng.data\" is \"5\", expected \"<seed>:<offset>\"");
    bad_rng[2].value = "1:-2";
    CHECK(dv_st_save(other, nm, &a.w, 1, bad_rng, 3, g_err, sizeof g_err) == 0);
    expect_load_error(other, &b, &cb, "expected \"<seed>:<offset>\"");
    bad_rng[2].value = "18446744073709551616:0"; /* 2^64 */
    CHECK(dv_st_save(other, nm, &a.w, 1, bad_rng, 3, g_err, sizeof g_err) == 0);
    expect_load_error(other, &b, &cb, "expected \"<seed>:<offset>\"");
    snprintf(other, sizeof other, "%s/none.safetensors", dir);
    expect_load_error(other, &b, &cb, "cannot open");
    /* the good load still works after all that */
    CHECK_MSG(dv_checkpoint_load(path, &cb, NULL, g_err, sizeof g_err) == 0 && cb.step == 10, "%s", g_err);
    CHECK(equal_values(b.w, a.w) && b.data.seed == a.data.seed);

    /* a failed save keeps the previous checkpoint */
    ca.step = 11;
    ta[1].name = "w"; /* duplicate name */
    CHECK(dv_checkpoint_save(path, &ca, g_err, sizeof g_err) == -1 && strstr(g_err, "duplicate tensor name 'w'"));
    ta[1].name = "b";
    ra[1].name = "data"; /* duplicate rng */
    CHECK(dv_checkpoint_save(path, &ca, g_err, sizeof g_err) == -1 && strstr(g_err, "duplicate metadata key 'dualvla.rng.data'"));
    ra[1].name = "dropout";
    snprintf(other, sizeof other, "%s/missing/ckpt.safetensors", dir);
    CHECK(dv_checkpoint_save(other, &ca, g_err, sizeof g_err) == -1);
    CHECK(dv_checkpoint_load(path, &cb, NULL, g_err, sizeof g_err) == 0 && cb.step == 10);

    run_free(&a); run_free(&b);
    rm_tree(dir);
}
