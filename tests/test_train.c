/* tests/test_train.c — the training side of the DiT specialist: the generalist stand-in's
 * quantisation (OpenVLA's bins, values from numpy.digitize on numpy.linspace(-1, 1, 256)),
 * corruption and latents file; the CSV / SVG / progress writers of tools/train_log.c; the run
 * configuration text; and `dualvla train dit` end to end on a tiny synthetic CALVIN dataset:
 * an interrupted and resumed run is bitwise identical to an uninterrupted one (parameters,
 * AdamW and EMA state, loss log), and a hundred steps bring the loss down.
 *
 * The tools are not part of libdualvla, so their source is compiled into this test. */
#include "tools/train_log.c"
#include "tools/dit_session.c"
#include "tools/cmd_train.c"
#include "tools/cmd_act.c"

#include "test.h"
#include "tests/util.h"
#include "models/dit/standin.h"
#include "tensor/ops.h"
#include "tensor/safetensors.h"
#include "data/calvin/synth.h"

#include <fcntl.h>
#include <ftw.h>
#include <omp.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void tmp_dir(char *buf, size_t n, const char *tag) {
    snprintf(buf, n, "/tmp/dv_test_%s_%d", tag, (int)getpid());
    mkdir(buf, 0755);
}

TEST(standin_openvla_bins) {
    /* numpy: b = linspace(-1, 1, 256); c = (b[:-1] + b[1:]) / 2; digitize(x, b) - 1 */
    CHECK(dv_action_bin(-1.0, 256) == 0);
    CHECK(dv_action_bin(0.0, 256) == 127);
    CHECK(dv_action_bin(0.5, 256) == 191);
    CHECK(dv_action_bin(-0.3, 256) == 89);
    CHECK(dv_action_bin(0.999, 256) == 254);
    CHECK(dv_action_bin(1.0, 256) == 255);
    CHECK(dv_action_bin(7.0, 256) == 255);     /* clipped */
    CHECK(dv_action_bin(-7.0, 256) == 0);
    CHECK_CLOSE(dv_action_quantise(-1.0, 256), -0.996078431372549, 1e-15);
    CHECK_CLOSE(dv_action_quantise(0.0, 256), 0.0, 1e-15);
    CHECK_CLOSE(dv_action_quantise(0.5, 256), 0.5019607843137255, 1e-15);
    CHECK_CLOSE(dv_action_quantise(-0.3, 256), -0.29803921568627456, 1e-15);
    CHECK_CLOSE(dv_action_quantise(1.0, 256), 0.996078431372549, 1e-15);  /* bin 255 -> centre 254 */
    /* everywhere: the bin is floor((x + 1) * 255 / 2) away from the edges, the error at most
     * half an interval */
    double worst = 0;
    for (int i = 0; i <= 20000; i++) {
        double x = -1.0 + 2.0 * i / 20000 + 1e-7 * ((i % 3) - 1);
        if (x < -1 || x > 1) continue;
        double f = (x + 1) * 255 / 2;
        if (fabs(f - round(f)) > 1e-6) CHECK(dv_action_bin(x, 256) == (int)floor(f) - (f >= 255));
        worst = fmax(worst, fabs(dv_action_quantise(x, 256) - x));
    }
    CHECK(worst <= 1.0 / 255 + 1e-12);
    CHECK(worst > 0.9 / 255);
}

static dv_dit_config latent_cfg(int T, int D) {
    dv_dit_config c;
    memset(&c, 0, sizeof c);
    c.gen_latent_tokens = T, c.gen_latent_dim = D, c.gen_bins = 256;
    return c;
}

TEST(standin_corruption) {
    dv_dit_config cfg = latent_cfg(0, 0);
    char err[512];
    const int64_t B = 40, K = 8, A = 7, n = B * K * A;
    dv_rng r = dv_rng_new(3);
    dv_tensor *gt = dv_rand(&r, DV_F32, DV_SHAPE(B, K, A));
    dv_tensor *gt2 = dv_scale(gt, 2.0), *gtc = dv_add_scalar(gt2, -1.0);   /* U[-1, 1) */
    const float *g = dv_data(gtc);
    for (int pass = 0; pass < 3; pass++) {
        double rate = pass == 0 ? 0.0 : pass == 1 ? 0.3 : 1.0;
        dv_standin_config sc = dv_standin_config_default();
        sc.corrupt = rate;
        dv_standin *s = NULL;
        CHECK(dv_standin_new(&sc, &cfg, &s, err, sizeof err) == 0);
        dv_rng r1 = dv_rng_new(11), r2 = dv_rng_new(11);
        dv_tensor *a = dv_standin_actions(s, gtc, &r1), *b = dv_standin_actions(s, gtc, &r2);
        CHECK(!memcmp(dv_data(a), dv_data(b), sizeof(float) * n));   /* seeded */
        CHECK(r1.offset == r2.offset && r1.offset > 0);
        const float *q = dv_data(a);
        int64_t changed = 0;
        for (int64_t i = 0; i < n; i++) {
            if (q[i] != (float)dv_action_quantise(g[i], 256)) changed++;
            CHECK(q[i] == (float)dv_action_bin_center(dv_action_bin(q[i], 256), 256)); /* a centre */
        }
        double frac = (double)changed / n, want = rate * 255.0 / 256.0;  /* a random bin may hit */
        CHECK_MSG(fabs(frac - want) < 0.03, "corrupt %.1f: changed %.4f, want %.4f", rate, frac, want);
        dv_release(a), dv_release(b);
        dv_standin_free(s);
    }
    dv_standin_config bad = dv_standin_config_default();
    bad.corrupt = 1.5;
    dv_standin *s = NULL;
    CHECK(dv_standin_new(&bad, &cfg, &s, err, sizeof err) == -1 && strstr(err, "corrupt"));
    dv_release(gt), dv_release(gt2), dv_release(gtc);
}

TEST(standin_latents) {
    char dir[256], path[512], err[512];
    tmp_dir(dir, sizeof dir, "standin");
    snprintf(path, sizeof path, "%s/lat.safetensors", dir);
    dv_dit_config cfg = latent_cfg(2, 3);
    dv_standin_config sc = dv_standin_config_default();
    dv_standin *s = NULL;
    /* zeros */
    CHECK(dv_standin_new(&sc, &cfg, &s, err, sizeof err) == 0);
    dv_tensor *l = NULL;
    int64_t frames[2] = {40, 17};
    CHECK(dv_standin_latents(s, frames, 2, &l, err, sizeof err) == 0);
    CHECK(l && l->shape[0] == 2 && l->shape[1] == 2 && l->shape[2] == 3);
    for (int i = 0; i < 12; i++) CHECK(dv_flat_get(l, i) == 0.0);
    dv_release(l);
    dv_standin_free(s);
    /* per frame: frames 17 and 40 (given out of order) */
    double v[12];
    for (int i = 0; i < 12; i++) v[i] = i + 1;
    int64_t ids[2] = {40, 17};
    dv_tensor *lat = dv_from_f64(DV_F32, DV_SHAPE(2, 2, 3), v);
    dv_tensor *fid = dv_from_data(DV_I64, DV_SHAPE(2), ids);
    const char *names[2] = {"latents", "frame_ids"};
    dv_tensor *ts[2] = {lat, fid};
    CHECK(dv_st_save(path, names, ts, 2, NULL, 0, err, sizeof err) == 0);
    snprintf(sc.latents_path, sizeof sc.latents_path, "%s", path);
    CHECK(dv_standin_new(&sc, &cfg, &s, err, sizeof err) == 0);
    int64_t want[3] = {17, 40, 17};
    CHECK(dv_standin_latents(s, want, 3, &l, err, sizeof err) == 0);
    CHECK(dv_flat_get(l, 0) == 7 && dv_flat_get(l, 6) == 1 && dv_flat_get(l, 17) == 12);
    dv_release(l);
    int64_t missing[1] = {18};
    CHECK(dv_standin_latents(s, missing, 1, &l, err, sizeof err) == -1 && strstr(err, "frame 18"));
    dv_standin_free(s);
    /* a width that does not match the specialist */
    dv_dit_config cfg2 = latent_cfg(2, 4);
    CHECK(dv_standin_new(&sc, &cfg2, &s, err, sizeof err) == -1 && strstr(err, "shape"));
    dv_release(lat), dv_release(fid);
    unlink(path);
    rmdir(dir);
}

TEST(train_log_csv_resume) {
    char dir[256], path[512], err[512];
    tmp_dir(dir, sizeof dir, "csv");
    snprintf(path, sizeof path, "%s/loss.csv", dir);
    dv_loss_csv c;
    CHECK(dv_loss_csv_open(&c, path, -1, err, sizeof err) == 0);
    for (int s = 0; s < 6; s++) CHECK(dv_loss_csv_append(&c, s, 1.0 / (s + 1), 1e-4, 0.5, s * 0.1, err, sizeof err) == 0);
    dv_loss_csv_close(&c);
    /* a row cut by a crash */
    FILE *f = fopen(path, "a");
    fputs("6,0.1", f);
    fclose(f);
    int64_t *st, n;
    double *lo;
    CHECK(dv_loss_csv_read(path, &st, &lo, &n, err, sizeof err) == 0);
    CHECK(n == 7);   /* the reader takes what is there */
    free(st), free(lo);
    /* resume at step 4: rows 0..3 stay, the rest goes; the run appends 4, 5 */
    CHECK(dv_loss_csv_open(&c, path, 4, err, sizeof err) == 0);
    CHECK(dv_loss_csv_append(&c, 4, 0.25, 1e-4, 0.5, 0.4, err, sizeof err) == 0);
    CHECK(dv_loss_csv_append(&c, 5, 0.125, 1e-4, 0.5, 0.5, err, sizeof err) == 0);
    dv_loss_csv_close(&c);
    CHECK(dv_loss_csv_read(path, &st, &lo, &n, err, sizeof err) == 0);
    CHECK(n == 6);
    for (int i = 0; i < n && i < 6; i++) CHECK(st[i] == i);
    CHECK_CLOSE(lo[3], 0.25, 1e-9);
    CHECK_CLOSE(lo[4], 0.25, 1e-9);
    CHECK_CLOSE(lo[5], 0.125, 1e-9);
    free(st), free(lo);
    /* a fresh run truncates */
    CHECK(dv_loss_csv_open(&c, path, -1, err, sizeof err) == 0);
    dv_loss_csv_close(&c);
    CHECK(dv_loss_csv_read(path, &st, &lo, &n, err, sizeof err) == 0 && n == 0);
    free(st), free(lo);
    /* a file that is not a loss log */
    f = fopen(path, "w");
    fputs("hello\n", f);
    fclose(f);
    CHECK(dv_loss_csv_read(path, &st, &lo, &n, err, sizeof err) == -1 && strstr(err, ":1:"));
    unlink(path);
    rmdir(dir);
}

static int count(const char *s, const char *sub) {
    int n = 0;
    for (const char *p = strstr(s, sub); p; p = strstr(p + 1, sub)) n++;
    return n;
}

TEST(train_log_svg) {
    int64_t st[50];
    double lo[50];
    for (int i = 0; i < 50; i++) st[i] = i * 10, lo[i] = 2.0 * exp(-0.1 * i);
    lo[7] = NAN;
    char *svg = dv_loss_svg(st, lo, 50, false, "loss <tiny>");
    CHECK(!strncmp(svg, "<?xml", 5) && strstr(svg, "</svg>"));
    CHECK(strstr(svg, "loss &lt;tiny&gt;") != NULL);
    CHECK(count(svg, "<polyline") == 2);
    /* 49 finite points in each polyline: count the pairs of the first */
    const char *p = strstr(svg, "points=\"") + 8;
    int pairs = 0;
    for (; *p != '"'; p++) pairs += *p == ',';
    CHECK(pairs == 49);
    free(svg);
    /* log-y: non-positive losses are skipped, decades are labelled */
    lo[3] = 0.0;
    svg = dv_loss_svg(st, lo, 50, true, NULL);
    p = strstr(svg, "points=\"") + 8;
    pairs = 0;
    for (; *p != '"'; p++) pairs += *p == ',';
    CHECK(pairs == 48);
    CHECK(strstr(svg, "log scale") != NULL);
    CHECK(strstr(svg, ">1</text>") != NULL);
    free(svg);
    svg = dv_loss_svg(NULL, NULL, 0, false, NULL);   /* empty axes, no crash */
    CHECK(strstr(svg, "</svg>") != NULL);
    free(svg);
    char dir[256], path[512], err[512];
    tmp_dir(dir, sizeof dir, "svg");
    snprintf(path, sizeof path, "%s/loss.svg", dir);
    CHECK(dv_loss_svg_write(path, st, lo, 50, false, "x", err, sizeof err) == 0);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && sb.st_size > 500);
    unlink(path);
    rmdir(dir);   /* fails (and the check below too) if a temp file was left behind */
    CHECK(stat(dir, &sb) != 0);
    snprintf(path, sizeof path, "/nonexistent_dir_dv/loss.svg");
    CHECK(dv_loss_svg_write(path, st, lo, 50, false, "x", err, sizeof err) == -1 && strstr(err, path));
}

TEST(train_log_progress_line) {
    char buf[256], d[32];
    dv_progress_format(buf, sizeof buf, 5, 10, 0.123456, 1e-4, 212.34, 65, 10);
    CHECK(strstr(buf, "step 5/10") != NULL);
    CHECK(strstr(buf, "[#####.....]") != NULL);
    CHECK(strstr(buf, "loss 0.12346") != NULL);
    CHECK(strstr(buf, "lr 1.00e-04") != NULL);
    CHECK(strstr(buf, "212.3 samples/s") != NULL);
    CHECK(strstr(buf, "ETA 1m05s") != NULL);
    dv_format_duration(d, sizeof d, 3725);
    CHECK(!strcmp(d, "1h02m"));
    dv_format_duration(d, sizeof d, -1);
    CHECK(!strcmp(d, "?"));
    /* plain mode (not a tty): a line at the first step, every `every` steps and the last */
    FILE *f = tmpfile();
    dv_progress p;
    dv_progress_init(&p, f, 0, 10, 4, 4, true);
    for (int s = 0; s < 10; s++) dv_progress_update(&p, s, 1.0, 1e-4);
    dv_progress_end(&p);
    rewind(f);
    int lines = 0, c;
    bool cr = false;
    while ((c = fgetc(f)) != EOF) lines += c == '\n', cr |= c == '\r';
    CHECK(lines == 4);   /* steps 1, 4, 8, 10 */
    CHECK(!cr);
    fclose(f);
}

/* ---- end to end: dualvla train dit on a tiny synthetic CALVIN dataset -------------------- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}
static char e2e_dir[256];
static void e2e_cleanup(void) {
    if (e2e_dir[0]) nftw(e2e_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* a tiny dataset (made once per test run) and a micro-DiT config: 1 block, 32x32 images */
static const char *e2e_root(void) {
    char *root = e2e_dir;
    if (root[0]) return root;
    snprintf(root, sizeof e2e_dir, "/tmp/dv_test_train_e2e_%d", (int)getpid());
    mkdir(root, 0755);
    atexit(e2e_cleanup);
    char data[512], err[512];
    snprintf(data, sizeof data, "%s/data", root);
    dv_calvin_synth_opts so;
    dv_calvin_synth_defaults(&so);
    so.episodes = 3, so.frames_per_episode = 24, so.val_episodes = 1, so.seed = 5, so.threads = 1;
    if (dv_calvin_synth(data, &so, NULL, err, sizeof err)) {
        dv_test_fail(__FILE__, __LINE__, "calvin synth: %s", err);
        root[0] = 0;
        return NULL;
    }
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/micro.cfg", root);
    FILE *f = fopen(cfg, "w");
    fputs("preset = tiny\nlayers = 1\nhidden = 32\nheads = 2\nrotary_dims = 16\n"
          "image_size = 32\nvit_hidden = 32\nvit_heads = 2\nrgb_vit_hidden = 32\nrgb_vit_heads = 2\n"
          "gen_latent_dim = 8\ngen_latent_tokens = 2\nattn_dropout = 0.1\n"
          "train.warmup_steps = 5\ntrain.eval_samples = 4\ntrain.ema_decay = 0.9\nstandin.corrupt = 0.1\n", f);
    fclose(f);
    return root;
}

static int run_train(const char *const *args, int n) { return ut_run_cli(dv_cmd_train, "train", "dit", args, n); }
static int run_act(const char *const *args, int n) { return ut_run_cli(dv_cmd_act, "act", "dit", args, n); }

/* every tensor of a equals (bytes) the same-named tensor of b, and the names agree */
static int ckpt_equal(const char *a, const char *b, int *ntensors) {
    dv_st_file *fa = NULL, *fb = NULL;
    char err[512];
    if (dv_st_open(a, &fa, err, sizeof err) || dv_st_open(b, &fb, err, sizeof err)) {
        dv_test_fail(__FILE__, __LINE__, "%s", err);
        if (fa) dv_st_close(fa);
        return -1;
    }
    int same = dv_st_count(fa) == dv_st_count(fb);
    *ntensors = dv_st_count(fa);
    for (int i = 0; i < dv_st_count(fa) && same; i++) {
        dv_tensor *ta = NULL, *tb = NULL;
        const char *name = dv_st_info_at(fa, i)->name;
        if (dv_st_get(fa, name, 0, &ta, err, sizeof err) || dv_st_get(fb, name, 0, &tb, err, sizeof err)) {
            same = 0;
        } else {
            same = dv_same_shape(ta, tb) && ta->dtype == tb->dtype &&
                   !memcmp(dv_data(ta), dv_data(tb), dv_numel(ta) * dv_dtype_size(ta->dtype));
        }
        dv_release(ta), dv_release(tb);
    }
    const char *sa = dv_st_meta(fa, "dualvla.step"), *sb = dv_st_meta(fb, "dualvla.step");
    same = same && sa && sb && !strcmp(sa, sb);
    dv_st_close(fa), dv_st_close(fb);
    return same;
}

TEST(train_resume_bitwise) {
    const char *root = e2e_root();
    if (!root) return;
    char data[512], cfg[512], a[512], b[512], c[512], ca[600], cb[600], cc[600];
    snprintf(data, sizeof data, "%s/data", root);
    snprintf(cfg, sizeof cfg, "%s/micro.cfg", root);
    snprintf(a, sizeof a, "%s/a", root), snprintf(b, sizeof b, "%s/b", root), snprintf(c, sizeof c, "%s/c", root);
    snprintf(ca, sizeof ca, "%s/ckpt.safetensors", a);
    snprintf(cb, sizeof cb, "%s/ckpt.safetensors", b);
    snprintf(cc, sizeof cc, "%s/ckpt.safetensors", c);
    /* uninterrupted: 8 steps */
    const char *ra[] = {"--data", data, "--config", cfg, "--steps", "8", "--batch", "2", "--out", a,
                        "--threads", "1", "--quiet", "--ckpt-every", "0"};
    CHECK(run_train(ra, 15) == 0);
    /* interrupted at 4 (checkpoint), resumed in a fresh model from the checkpoint's config */
    const char *rb[] = {"--data", data, "--config", cfg, "--steps", "8", "--batch", "2", "--out", b,
                        "--threads", "1", "--quiet", "--stop-at", "4"};
    CHECK(run_train(rb, 15) == 0);
    const char *rb2[] = {"--data", data, "--out", b, "--resume", "--threads", "1", "--quiet"};
    CHECK(run_train(rb2, 8) == 0);
    int n = 0;
    CHECK(ckpt_equal(ca, cb, &n) == 1);
    CHECK(n > 50);   /* parameters + AdamW state */
    /* the loss logs agree row for row (the resumed CSV was cut back to step 4) */
    char pa[600], pb[600], err[512];
    snprintf(pa, sizeof pa, "%s/loss.csv", a), snprintf(pb, sizeof pb, "%s/loss.csv", b);
    int64_t *sa, *sb, na, nb;
    double *la, *lb;
    CHECK(dv_loss_csv_read(pa, &sa, &la, &na, err, sizeof err) == 0);
    CHECK(dv_loss_csv_read(pb, &sb, &lb, &nb, err, sizeof err) == 0);
    CHECK(na == 8 && nb == 8);
    for (int i = 0; i < na && i < nb; i++) CHECK(sa[i] == i && sb[i] == i && la[i] == lb[i]);
    free(sa), free(sb), free(la), free(lb);
    /* the comparison can fail: another seed gives other parameters */
    const char *rc_[] = {"--data", data, "--config", cfg, "--steps", "8", "--batch", "2", "--out", c,
                         "--threads", "1", "--quiet", "--seed", "1"};
    CHECK(run_train(rc_, 15) == 0);
    CHECK(ckpt_equal(ca, cc, &n) == 0);
    /* a resume whose config contradicts the checkpoint's is refused (exit 2) */
    const char *rbad[] = {"--data", data, "--out", b, "--resume", "--batch", "3", "--quiet"};
    CHECK(run_train(rbad, 8) == 2);
}

TEST(train_loss_falls) {
    const char *root = e2e_root();
    if (!root) return;
    char data[512], cfg[512], o[512], p[600], err[512];
    snprintf(data, sizeof data, "%s/data", root);
    snprintf(cfg, sizeof cfg, "%s/micro.cfg", root);
    snprintf(o, sizeof o, "%s/falls", root);
    const char *args[] = {"--data", data, "--config", cfg, "--steps", "100", "--batch", "4", "--out", o,
                          "--threads", "1", "--quiet", "--ckpt-every", "0"};
    CHECK(run_train(args, 15) == 0);
    snprintf(p, sizeof p, "%s/loss.csv", o);
    int64_t *s, n;
    double *l;
    CHECK(dv_loss_csv_read(p, &s, &l, &n, err, sizeof err) == 0);
    CHECK(n == 100);
    double first = 0, last = 0;
    for (int i = 0; i < 15 && i < n; i++) first += l[i] / 15, last += l[n - 1 - i] / 15;
    CHECK_MSG(last < 0.5 * first, "loss: first 15 steps %.4f, last 15 %.4f", first, last);
    free(s), free(l);
    snprintf(p, sizeof p, "%s/loss.svg", o);
    struct stat sb;
    CHECK(stat(p, &sb) == 0 && sb.st_size > 1000);
}

TEST(train_cli_errors) {
    const char *a1[] = {"--steps", "10"};                 /* no --data */
    CHECK(run_train(a1, 2) == 2);
    const char *a2[] = {"--data", "/nonexistent_dv", "--steps", "x"};
    CHECK(run_train(a2, 4) == 2);
    const char *a3[] = {"--data", "/nonexistent_dv", "--bogus"};
    CHECK(run_train(a3, 3) == 2);
    const char *a4[] = {"--data", "/nonexistent_dv", "--preset", "huge"};
    CHECK(run_train(a4, 4) == 2);
    const char *a5[] = {"--data", "/nonexistent_dv", "--preset", "tiny", "--out", "/tmp"};
    CHECK(run_train(a5, 6) == 1);                         /* a run-time failure: no such data */
    const char *a6[] = {"--data", "/tmp", "--out", "/nonexistent_dv/x", "--resume"};
    CHECK(run_train(a6, 5) == 1);                         /* nothing to resume */
    const char *a7[] = {"--data", "/nonexistent_dv", "--device", "gpu"};
    CHECK(run_train(a7, 4) == 2);                         /* not a device name */
    const char *a8[] = {"--data", "/nonexistent_dv", "--device", "cuda:63"};
    CHECK(run_train(a8, 4) == 2);                         /* no such device (or no CUDA at all) */
    if (!dv_cuda_available()) {
        const char *a9[] = {"--data", "/nonexistent_dv", "--device", "cuda"};
        CHECK(run_train(a9, 4) == 2);                     /* checked before any work */
    }
    char err[512];
    dv_device d;
    CHECK(dv_session_device("cuda:63", &d, err, sizeof err) == -1 && strstr(err, "cuda:63"));
    CHECK(dv_session_device("cpu", &d, err, sizeof err) == 0 && d.type == DV_CPU);
    CHECK(dv_session_device("cuda:x", &d, err, sizeof err) == -1 && strstr(err, "--device"));
}

TEST(train_config_text) {
    dv_train_config c, d;
    char err[512];
    CHECK(dv_train_config_preset(&c, "tiny", err, sizeof err) == 0);
    CHECK(c.model.layers == 2 && c.batch == 16);
    CHECK(dv_train_config_parse(&c, "train.lr = 3e-4  # comment\nlayers = 3\nstandin.corrupt = 0.25\n"
                                    "standin.latents = /x/y.safetensors\n", "cfg", err, sizeof err) == 0);
    CHECK(c.lr == 3e-4 && c.model.layers == 3 && c.standin.corrupt == 0.25);
    CHECK(!strcmp(c.standin.latents_path, "/x/y.safetensors"));
    /* format -> parse gives the same config back */
    char *t = dv_train_config_format(&c);
    CHECK(dv_train_config_preset(&d, "paper", err, sizeof err) == 0);
    CHECK(dv_train_config_parse(&d, t, "formatted", err, sizeof err) == 0);
    char *t2 = dv_train_config_format(&d);
    CHECK(!strcmp(t, t2));
    char la[256], lb[256];
    CHECK(dv_train_config_diff(t, t2, NULL, la, lb, sizeof la) == 0);
    free(t2);
    d.lr = 1e-5;
    t2 = dv_train_config_format(&d);
    CHECK(dv_train_config_diff(t, t2, NULL, la, lb, sizeof la) == 1 && strstr(la, "train.lr") && strstr(lb, "1e-05"));
    static const char *const ign[] = {"train.lr", NULL};
    CHECK(dv_train_config_diff(t, t2, ign, la, lb, sizeof la) == 0);
    free(t), free(t2);
    /* errors name the line and the key, for model keys and training keys alike */
    CHECK(dv_train_config_parse(&c, "\n\ntrain.bogus = 1\n", "f.cfg", err, sizeof err) == -1);
    CHECK(strstr(err, "f.cfg:3") && strstr(err, "train.bogus"));
    CHECK(dv_train_config_parse(&c, "# x\nlayers = -4\n", "f.cfg", err, sizeof err) == -1);
    CHECK(strstr(err, "f.cfg:2") && strstr(err, "layers"));
    CHECK(dv_train_config_parse(&c, "train.batch = 0\n", "f.cfg", err, sizeof err) == -1 && strstr(err, "train.batch"));
    CHECK(dv_train_config_parse(&c, "standin.corrupt = 2\n", "f.cfg", err, sizeof err) == -1);
    CHECK(dv_train_config_parse(&c, "train.generalist = openvla\n", "f.cfg", err, sizeof err) == -1 &&
          strstr(err, "standin"));
    CHECK(!strcmp(c.generalist, "standin"));
    CHECK(dv_train_config_parse(&c, "preset = huge\n", "f.cfg", err, sizeof err) == -1 && strstr(err, "huge"));
    /* a preset line resets what came before it */
    CHECK(dv_train_config_parse(&c, "train.lr = 0.5\npreset = paper\n", "f.cfg", err, sizeof err) == 0);
    CHECK(c.lr == 1e-4 && c.model.layers == 6 && c.batch == 64 && c.warmup_steps == 1000);
}

TEST(train_then_act) {
    const char *root = e2e_root();
    if (!root) return;
    char data[512], cfg[512], o[512], ck[600], val[600];
    snprintf(data, sizeof data, "%s/data", root);
    snprintf(val, sizeof val, "%s/data/validation", root);
    snprintf(cfg, sizeof cfg, "%s/micro.cfg", root);
    snprintf(o, sizeof o, "%s/act", root);
    snprintf(ck, sizeof ck, "%s/ckpt.safetensors", o);
    const char *t[] = {"--data", data, "--config", cfg, "--steps", "2", "--batch", "2", "--out", o,
                       "--threads", "1", "--quiet"};
    CHECK(run_train(t, 13) == 0);
    const char *a1[] = {"--ckpt", ck, "--data", val, "--episode", "0", "--frame", "5", "--threads", "1",
                        "--rollout", "3"};
    CHECK(run_act(a1, 12) == 0);
    const char *a2[] = {"--ckpt", ck, "--data", val, "--episode", "7", "--frame", "5"};
    CHECK(run_act(a2, 8) == 2);                           /* no such episode */
    const char *a3[] = {"--ckpt", ck, "--data", val, "--episode", "0", "--frame", "999"};
    CHECK(run_act(a3, 8) == 2);                           /* no such frame */
    const char *a4[] = {"--ckpt", data, "--data", val, "--episode", "0", "--frame", "5"};
    CHECK(run_act(a4, 8) == 1);                           /* not a checkpoint */
    const char *a5[] = {"--ckpt", ck, "--episode", "0"};
    CHECK(run_act(a5, 4) == 2);                           /* missing flags */
    const char *a6[] = {"--ckpt", ck, "--data", val, "--episode", "0", "--frame", "5", "--device", "cuda:63"};
    CHECK(run_act(a6, 10) == 2);                          /* no such device */
}
