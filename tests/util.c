/* tests/util.c — gradient check, AVX-512/portable parity and PyTorch fixture checks. */
#include "tests/util.h"
#include "kernels/cpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

dv_tensor *ut_randn(dv_dtype dt, const int64_t *shape, int ndim, uint64_t seed) {
    dv_rng r = dv_rng_new(seed);
    return dv_randn(&r, dt, shape, ndim);
}

dv_tensor *ut_randn_leaf(dv_dtype dt, const int64_t *shape, int ndim, uint64_t seed) {
    dv_tensor *t = ut_randn(dt, shape, ndim, seed);
    dv_set_requires_grad(t, true);
    return t;
}

dv_tensor *ut_noncontig(dv_tensor *t) {
    /* buffer with dims reversed and the (new) last dim doubled, then view it back */
    int nd = t->ndim;
    if (nd == 0) { dv_tensor *c = dv_clone(t); dv_tensor *d = dv_detach(c); dv_release(c); d->requires_grad = t->requires_grad; return d; }
    int64_t sh[DV_MAX_DIMS] = {0};
    for (int d = 0; d < nd; d++) sh[d] = t->shape[nd - 1 - d];
    sh[nd - 1] *= 2;
    dv_tensor *buf = dv_full(t->dtype, sh, nd, NAN);
    dv_tensor *sl = dv_slice(buf, nd - 1, 0, sh[nd - 1], 2);
    int perm[DV_MAX_DIMS];
    for (int d = 0; d < nd; d++) perm[d] = nd - 1 - d;
    dv_tensor *v = dv_permute(sl, perm);
    dv_tensor *leaf = dv_detach(v);
    dv_copy_(leaf, t);
    leaf->requires_grad = t->requires_grad;
    dv_release(v); dv_release(sl); dv_release(buf);
    return leaf;
}

double ut_max_rel_diff(const dv_tensor *a, const dv_tensor *b) {
    int64_t n = dv_numel(b);
    double *x = malloc(sizeof(double) * (size_t)(n ? n : 1)), *y = malloc(sizeof(double) * (size_t)(n ? n : 1));
    dv_to_f64(a, x);
    dv_to_f64(b, y);
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(x[i] - y[i]) / fmax(1.0, fabs(y[i]));
        if (isnan(x[i]) != isnan(y[i])) e = INFINITY;
        else if (isnan(x[i])) e = 0;
        if (e > worst) worst = e;
    }
    free(x); free(y);
    return worst;
}

void ut_check_tensor(const char *what, const dv_tensor *a, const dv_tensor *b, double tol) {
    if (!dv_same_shape(a, b)) {
        CHECK_MSG(0, "%s: shape %s vs expected %s", what, dv_shape_str(a, NULL, 0), dv_shape_str(b, NULL, 0));
        return;
    }
    double e = ut_max_rel_diff(a, b);
    CHECK_MSG(e <= tol, "%s: max error %.3g > tol %.3g", what, e, tol);
}

/* loss = sum(out * r), r fixed random of out's shape (f64 or f32 like out) */
static dv_tensor *weighted_loss(dv_tensor *out, dv_tensor **r) {
    if (!*r) *r = ut_randn(out->dtype, out->shape, out->ndim, 999);
    dv_tensor *p = dv_mul(out, *r);
    dv_tensor *l = dv_sum_all(p);
    dv_release(p);
    return l;
}

static double eval_loss(dv_test_op op, dv_tensor **in, void *ctx, dv_tensor **r) {
    double v;
    DV_NO_GRAD_BEGIN
    dv_tensor *out = op(in, ctx);
    dv_tensor *l = weighted_loss(out, r);
    v = dv_item(l);
    dv_release(l);
    dv_release(out);
    DV_NO_GRAD_END
    return v;
}

double ut_gradcheck(const char *what, dv_test_op op, dv_tensor **in, int n, void *ctx, double tol) {
    dv_tensor *r = NULL;
    for (int i = 0; i < n; i++) if (in[i]) dv_zero_grad(in[i]);
    dv_tensor *out = op(in, ctx);
    dv_tensor *loss = weighted_loss(out, &r);
    dv_backward(loss);
    dv_release(loss);
    dv_release(out);
    double worst = 0;
    const double eps = 1e-6;
    for (int i = 0; i < n; i++) {
        dv_tensor *x = in[i];
        if (!x || !x->requires_grad) continue;
        CHECK_MSG(x->dtype == DV_F64, "%s: gradcheck input %d must be f64", what, i);
        int64_t m = dv_numel(x);
        if (m > 0 && !x->grad) { CHECK_MSG(0, "%s: input %d got no gradient", what, i); continue; }
        for (int64_t k = 0; k < m; k++) {
            double x0 = dv_flat_get(x, k);
            dv_flat_set(x, k, x0 + eps);
            double lp = eval_loss(op, in, ctx, &r);
            dv_flat_set(x, k, x0 - eps);
            double lm = eval_loss(op, in, ctx, &r);
            dv_flat_set(x, k, x0);
            double num = (lp - lm) / (2 * eps), ana = dv_flat_get(x->grad, k);
            double e = fabs(num - ana) / fmax(1.0, fabs(num));
            if (e > worst) worst = e;
            if (e > tol) {
                CHECK_MSG(0, "%s: d/d in%d[%lld]: autograd %.10g vs numeric %.10g", what, i, (long long)k, ana, num);
                break;
            }
        }
    }
    dv_release(r);
    return worst;
}

/* run op with the given ISA: output and input grads (clones) */
static void run_once(dv_isa isa, dv_test_op op, dv_tensor **in, int n, void *ctx, dv_tensor **out, dv_tensor **grads) {
    dv_isa prev = dv_cpu_isa();
    dv_cpu_set_isa(isa);
    for (int i = 0; i < n; i++) if (in[i]) dv_zero_grad(in[i]);
    dv_tensor *r = NULL;
    dv_tensor *o = op(in, ctx);
    bool any = false;
    for (int i = 0; i < n; i++) any |= in[i] && in[i]->requires_grad;
    if (any && dv_dtype_is_float(o->dtype)) {
        dv_tensor *l = weighted_loss(o, &r);
        dv_backward(l);
        dv_release(l);
    }
    *out = dv_detach(o);
    dv_release(o);
    for (int i = 0; i < n; i++) grads[i] = in[i] && in[i]->grad ? dv_clone(in[i]->grad) : NULL;
    dv_release(r);
    dv_cpu_set_isa(prev);
}

double ut_parity(const char *what, dv_test_op op, dv_tensor **in, int n, void *ctx, double tol) {
    if (!dv_cpu_has_avx512()) return 0;
    dv_tensor *oa, *op_, *ga[16], *gp[16];
    DV_ASSERT(n <= 16, "ut_parity: too many inputs");
    run_once(DV_ISA_AVX512, op, in, n, ctx, &oa, ga);
    run_once(DV_ISA_PORTABLE, op, in, n, ctx, &op_, gp);
    char buf[256];
    snprintf(buf, sizeof buf, "%s: avx512 vs portable output", what);
    ut_check_tensor(buf, oa, op_, tol);
    double worst = dv_same_shape(oa, op_) ? ut_max_rel_diff(oa, op_) : INFINITY;
    for (int i = 0; i < n; i++) {
        if (!ga[i] && !gp[i]) continue;
        snprintf(buf, sizeof buf, "%s: avx512 vs portable grad of input %d", what, i);
        if (!ga[i] || !gp[i]) { CHECK_MSG(0, "%s: only one side has a gradient", buf); continue; }
        ut_check_tensor(buf, ga[i], gp[i], tol);
        double e = ut_max_rel_diff(ga[i], gp[i]);
        if (e > worst) worst = e;
        dv_release(ga[i]); dv_release(gp[i]);
    }
    dv_release(oa); dv_release(op_);
    return worst;
}

/* ---- fixture files ----
 * "DVFX0001", u32 count, then per tensor: u32 name_len, name, u32 dtype (dv_dtype code),
 * u32 ndim, i64 shape[ndim], raw little-endian data. */
struct ut_fixture_file { int n; char **names; dv_tensor **ts; };

ut_fixture_file *ut_fixture_open(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { CHECK_MSG(0, "cannot open fixture %s (run from the repository root)", path); return NULL; }
    char magic[8];
    uint32_t count;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "DVFX0001", 8) || fread(&count, 4, 1, f) != 1) {
        CHECK_MSG(0, "%s: not a fixture file", path);
        fclose(f);
        return NULL;
    }
    ut_fixture_file *fx = calloc(1, sizeof *fx);
    fx->names = calloc(count, sizeof(char *));
    fx->ts = calloc(count, sizeof(dv_tensor *));
    for (uint32_t i = 0; i < count; i++) {
        uint32_t len, dt, nd;
        int64_t shape[DV_MAX_DIMS];
        if (fread(&len, 4, 1, f) != 1 || len > 4096) goto bad;
        char *name = calloc(len + 1, 1);
        if (fread(name, 1, len, f) != len) { free(name); goto bad; }
        if (fread(&dt, 4, 1, f) != 1 || fread(&nd, 4, 1, f) != 1 || dt >= DV_NDTYPES || nd > DV_MAX_DIMS) { free(name); goto bad; }
        if (nd && fread(shape, 8, nd, f) != nd) { free(name); goto bad; }
        dv_tensor *t = dv_empty((dv_dtype)dt, shape, (int)nd);
        size_t bytes = (size_t)dv_numel(t) * dv_dtype_size(t->dtype);
        if (bytes && fread(dv_data(t), 1, bytes, f) != bytes) { free(name); dv_release(t); goto bad; }
        fx->names[fx->n] = name;
        fx->ts[fx->n++] = t;
    }
    fclose(f);
    return fx;
bad:
    CHECK_MSG(0, "%s: truncated or corrupt after %d tensors", path, fx->n);
    fclose(f);
    ut_fixture_close(fx);
    return NULL;
}

dv_tensor *ut_fixture_get(ut_fixture_file *f, const char *name) {
    for (int i = 0; f && i < f->n; i++)
        if (!strcmp(f->names[i], name)) return dv_retain(f->ts[i]);
    return NULL;
}

void ut_fixture_close(ut_fixture_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) { free(f->names[i]); dv_release(f->ts[i]); }
    free(f->names); free(f->ts); free(f);
}

static double rel_to_max_err(const dv_tensor *a, const dv_tensor *b) {
    int64_t n = dv_numel(b);
    double *x = malloc(sizeof(double) * (size_t)(n ? n : 1)), *y = malloc(sizeof(double) * (size_t)(n ? n : 1));
    dv_to_f64(a, x); dv_to_f64(b, y);
    double m = 0, e = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(y[i]));
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(x[i] - y[i]);
        if (isnan(x[i]) != isnan(y[i])) d = INFINITY; else if (isnan(x[i])) d = 0;
        e = fmax(e, d);
    }
    free(x); free(y);
    return e / fmax(1.0, m);
}

double ut_fixture(const char *file, const char *name, dv_test_op op, void *ctx, double tol) {
    char path[512], key[256];
    snprintf(path, sizeof path, "tests/reference/%s", file);
    ut_fixture_file *fx = ut_fixture_open(path);
    if (!fx) return INFINITY;
    dv_tensor *in[16] = {0};
    int n = 0;
    for (; n < 16; n++) {
        snprintf(key, sizeof key, "%s.in%d", name, n);
        dv_tensor *t = ut_fixture_get(fx, key);
        if (!t) break;
        snprintf(key, sizeof key, "%s.grad%d", name, n);
        dv_tensor *g = ut_fixture_get(fx, key);
        if (g) { dv_set_requires_grad(t, true); dv_release(g); }
        in[n] = t;
    }
    snprintf(key, sizeof key, "%s.out", name);
    dv_tensor *want = ut_fixture_get(fx, key);
    double worst = 0;
    if (!n || !want) {
        CHECK_MSG(0, "%s: case '%s' missing from the fixture file", path, name);
        worst = INFINITY;
        goto done;
    }
    dv_tensor *out = op(in, ctx);
    if (!dv_same_shape(out, want)) {
        CHECK_MSG(0, "%s/%s: output shape %s vs torch %s", file, name, dv_shape_str(out, NULL, 0), dv_shape_str(want, NULL, 0));
        dv_release(out);
        worst = INFINITY;
        goto done;
    }
    worst = rel_to_max_err(out, want);
    CHECK_MSG(worst <= tol, "%s/%s: output differs from torch by %.3g (tol %.3g)", file, name, worst, tol);
    snprintf(key, sizeof key, "%s.gout", name);
    dv_tensor *gout = ut_fixture_get(fx, key);
    if (gout && out->requires_grad) {
        dv_backward_with(out, gout);
        for (int i = 0; i < n; i++) {
            snprintf(key, sizeof key, "%s.grad%d", name, i);
            dv_tensor *g = ut_fixture_get(fx, key);
            if (!g) continue;
            if (!in[i]->grad) { CHECK_MSG(0, "%s/%s: input %d got no gradient", file, name, i); dv_release(g); continue; }
            double e = rel_to_max_err(in[i]->grad, g);
            CHECK_MSG(e <= tol, "%s/%s: grad of input %d differs from torch by %.3g (tol %.3g)", file, name, i, e, tol);
            if (e > worst) worst = e;
            dv_release(g);
        }
    }
    dv_release(gout);
    dv_release(out);
done:
    dv_release(want);
    for (int i = 0; i < n; i++) dv_release(in[i]);
    ut_fixture_close(fx);
    return worst;
}

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>
#include <omp.h>

bool ut_aborts_with(void (*fn)(void *), void *ctx, const char *want) {
    int fds[2];
    if (pipe(fds)) return false;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        dup2(fds[1], 2);
        close(fds[0]);
        fn(ctx);
        _exit(0); /* did not abort */
    }
    close(fds[1]);
    char buf[4096];
    size_t got = 0;
    ssize_t k;
    while (got < sizeof buf - 1 && (k = read(fds[0], buf + got, sizeof buf - 1 - got)) > 0) got += (size_t)k;
    buf[got] = 0;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    bool aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
    if (!aborted) CHECK_MSG(0, "expected an abort with '%s'; the call returned", want);
    else if (!strstr(buf, want)) CHECK_MSG(0, "abort message '%s' lacks '%s'", buf, want);
    return aborted && strstr(buf, want);
}

bool ut_fixture_ints(const char *file, const char *key, int64_t *out, int n) {
    char path[512];
    snprintf(path, sizeof path, "tests/reference/%s", file);
    ut_fixture_file *f = ut_fixture_open(path);
    dv_tensor *t = ut_fixture_get(f, key);
    bool ok = t && dv_numel(t) == n;
    CHECK_MSG(ok, "%s: %s missing or not %d long", file, key, n);
    for (int i = 0; ok && i < n; i++) out[i] = (int64_t)dv_flat_get(t, i);
    dv_release(t);
    ut_fixture_close(f);
    return ok;
}

uint8_t *ut_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = n >= 0 ? malloc(n > 0 ? (size_t)n : 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = b ? (size_t)n : 0;
    return b;
}

dv_pyobj *ut_calvin_lang_ann(dv_pyarena *a, int n) {
    static const char *anns[] = {"open the drawer", "push the red block to the left",
                                 "lift the blue block from the table"};
    static const char *tasks[] = {"open_drawer", "push_red_block_left", "lift_blue_block_table"};
    DV_ASSERT(n >= 1 && n <= 3, "ut_calvin_lang_ann: n = %d, want 1..3", n);
    dv_pyobj *root = dv_py_dict(a), *lang = dv_py_dict(a), *info = dv_py_dict(a);
    dv_pyobj *ann = dv_py_list(a), *task = dv_py_list(a), *indx = dv_py_list(a);
    float emb[3 * 384]; /* copied into the arena by dv_py_ndarray */
    for (int i = 0; i < n * 384; i++) emb[i] = (float)i / 1000.0f - 0.5f;
    for (int i = 0; i < n; i++) {
        dv_py_append(a, ann, dv_py_str(a, anns[i]));
        dv_py_append(a, task, dv_py_str(a, tasks[i]));
        dv_pyobj *se[2] = {dv_py_int(a, 10 * i), dv_py_int(a, 10 * i + 7)};
        dv_py_append(a, indx, dv_py_tuple(a, 2, se));
    }
    dv_npy e = dv_npy_wrap(DV_NPY_F32, 3, (int64_t[]){n, 1, 384}, emb);
    dv_py_set(a, lang, "ann", ann);
    dv_py_set(a, lang, "task", task);
    dv_py_set(a, lang, "emb", dv_py_ndarray(a, &e));
    dv_py_set(a, info, "episodes", dv_py_list(a));
    dv_py_set(a, info, "indx", indx);
    dv_py_set(a, root, "language", lang);
    dv_py_set(a, root, "info", info);
    return root;
}

int ut_run_cli(int (*cmd)(int, char **), const char *name, const char *sub, const char *const *args, int n) {
    char *argv[64];
    DV_ASSERT(n + 3 <= 64, "ut_run_cli: %d arguments", n);
    argv[0] = (char *)name, argv[1] = (char *)sub;
    for (int i = 0; i < n; i++) argv[2 + i] = (char *)args[i];
    argv[2 + n] = NULL;
    fflush(stdout), fflush(stderr);
    int out = dup(1), errfd = dup(2), null = open("/dev/null", O_WRONLY);
    if (!dv_test_verbose) dup2(null, 1), dup2(null, 2);
    int threads = omp_get_max_threads();
    int rc = cmd(2 + n, argv);
    omp_set_num_threads(threads);
    fflush(stdout), fflush(stderr);
    dup2(out, 1), dup2(errfd, 2);
    close(out), close(errfd), close(null);
    return rc;
}
