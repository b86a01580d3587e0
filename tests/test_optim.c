/* tests/test_optim.c — optim/: AdamW and SGD trajectories against torch.optim, clip_grad_norm_,
 * LR schedules, the fused AdamW kernel (AVX-512 vs portable, f16/bf16 copies), gradient
 * accumulation, optimiser state save/restore, EMA, decay groups, bad calls.
 * References: tests/reference/gen_optim.py -> optim.bin. */
#include "kernels/adamw.h"
#include "kernels/cpu.h"
#include "kernels/half.h"
#include "optim/optim.h"
#include "tests/util.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define FX "tests/reference/optim.bin"
#define T_STEPS 12

/* a plain copy (no graph, no requires_grad), even of a leaf that requires grad */
static dv_tensor *plain_clone(dv_tensor *t) {
    dv_tensor *c;
    DV_NO_GRAD_BEGIN
    c = dv_clone(t);
    DV_NO_GRAD_END
    return c;
}

static const char *const k_names[4] = {"w1", "w2", "bias", "gain"};

/* the fixture tensor named by the printf-style fmt (new reference), or NULL and a failure */
__attribute__((format(printf, 2, 3))) static dv_tensor *fx_get(ut_fixture_file *f, const char *fmt, ...) {
    char key[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(key, sizeof key, fmt, ap);
    va_end(ap);
    dv_tensor *t = ut_fixture_get(f, key);
    CHECK_MSG(t != NULL, "%s missing from %s", key, FX);
    return t;
}

/* the live state tensor named name, or NULL */
static dv_tensor *state_of(int n, const char *const *names, dv_tensor *const *ts, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], name)) return ts[i];
    return NULL;
}

/* The parameters of an optimiser case (leaves with the initial values) split in two groups
 * as the generator does: w1, w2 | bias, gain. */
typedef struct {
    dv_tensor *p[4];
    dv_params groups[2];
} case_params;

static bool load_params(ut_fixture_file *f, const char *c, case_params *cp) {
    memset(cp, 0, sizeof *cp);
    for (int k = 0; k < 4; k++) {
        dv_tensor *init = fx_get(f, "%s.init.%s", c, k_names[k]);
        if (!init) return false;
        cp->p[k] = dv_clone(init);
        dv_set_requires_grad(cp->p[k], true);
        dv_params_add(&cp->groups[k < 2 ? 0 : 1], k_names[k], cp->p[k]);
        dv_release(init);
    }
    return true;
}

static void free_params(case_params *cp) {
    for (int k = 0; k < 4; k++) dv_release(cp->p[k]);
    dv_params_free(&cp->groups[0]);
    dv_params_free(&cp->groups[1]);
}

/* give each parameter its gradient for step t (or none) */
static void set_grads(ut_fixture_file *f, const char *c, case_params *cp, int t) {
    dv_tensor *has = fx_get(f, "%s.has_grad", c);
    for (int k = 0; k < 4; k++) {
        dv_zero_grad(cp->p[k]);
        if (dv_get(has, (int64_t[]){t, k}) == 0) continue;
        dv_tensor *all = fx_get(f, "%s.grad.%s", c, k_names[k]);
        dv_tensor *row = dv_select(all, 0, t);
        cp->p[k]->grad = dv_clone(row);
        dv_release(row);
        dv_release(all);
    }
    dv_release(has);
}

/* parameter k after step t against torch */
static void check_traj(ut_fixture_file *f, const char *c, case_params *cp, int t, double tol) {
    for (int k = 0; k < 4; k++) {
        dv_tensor *all = fx_get(f, "%s.traj.%s", c, k_names[k]);
        dv_tensor *row = dv_select(all, 0, t);
        double e = ut_max_rel_diff(cp->p[k], row);
        CHECK_MSG(e <= tol, "%s: %s after step %d differs from torch by %.3g (tol %.3g)", c, k_names[k], t + 1,
                  e, tol);
        dv_release(row);
        dv_release(all);
    }
}

static double step_mult(ut_fixture_file *f, const char *c, const dv_lr_schedule *s, int t) {
    dv_tensor *m = fx_get(f, "%s.lr_mult", c);
    double want = dv_flat_get(m, t), got = dv_lr_schedule_at(s, t);
    CHECK_CLOSE(got, want, 1e-15);
    dv_release(m);
    return got;
}

/* torch's final state: "<case>.<key>.<param>" */
static dv_tensor *fx_state(ut_fixture_file *f, const char *c, const char *key, const char *param) {
    return fx_get(f, "%s.%s.%s", c, key, param);
}

static void run_adamw_case(ut_fixture_file *f, const char *c, double tol) {
    case_params cp;
    if (!load_params(f, c, &cp)) return;
    dv_adamw *opt = dv_adamw_new();
    dv_adamw_config g0 = dv_adamw_config_default(), g1 = dv_adamw_config_default();
    g0.lr = 1e-2, g0.weight_decay = 0.1;
    g1.lr = 3e-3, g1.weight_decay = 0.0, g1.beta1 = 0.8, g1.beta2 = 0.99, g1.eps = 1e-6;
    CHECK(dv_adamw_add_group(opt, &cp.groups[0], g0) == 0);
    CHECK(dv_adamw_add_group(opt, &cp.groups[1], g1) == 1);
    dv_lr_schedule sched = dv_lr_warmup_cosine(3, T_STEPS);
    for (int t = 0; t < T_STEPS; t++) {
        set_grads(f, c, &cp, t);
        dv_adamw_step(opt, step_mult(f, c, &sched, t));
        check_traj(f, c, &cp, t, tol);
    }
    /* final state, found by the documented names */
    const char *const *names;
    dv_tensor *const *ts;
    int n = dv_adamw_state(opt, &names, &ts);
    CHECK(n == 12);
    static const char *const keys[3] = {"exp_avg", "exp_avg_sq", "step"};
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 3; j++) {
            char name[64];
            snprintf(name, sizeof name, "adamw.%s.%s", k_names[k], keys[j]);
            dv_tensor *mine = state_of(n, names, ts, name);
            dv_tensor *want = fx_state(f, c, keys[j], k_names[k]);
            CHECK_MSG(mine != NULL, "adamw state %s not found", name);
            if (mine && want) {
                double e = ut_max_rel_diff(mine, want);
                CHECK_MSG(e <= tol, "%s: state %s differs from torch by %.3g", c, name, e);
            }
            dv_release(want);
        }
    dv_adamw_free(opt);
    free_params(&cp);
}

TEST(optim_adamw_torch) {
    ut_fixture_file *f = ut_fixture_open(FX);
    if (!f) return;
    dv_isa prev = dv_cpu_isa();
    run_adamw_case(f, "adamw_f64", 1e-12);
    for (int isa = 0; isa < 2; isa++) {
        if (isa == DV_ISA_AVX512 && !dv_cpu_has_avx512()) continue;
        dv_cpu_set_isa((dv_isa)isa);
        run_adamw_case(f, "adamw_f32", 3e-7);
    }
    dv_cpu_set_isa(prev);
    ut_fixture_close(f);
}

static void run_sgd_case(ut_fixture_file *f, const char *c, bool nesterov, double tol) {
    case_params cp;
    if (!load_params(f, c, &cp)) return;
    dv_sgd *opt = dv_sgd_new();
    dv_sgd_config g0 = dv_sgd_config_default(5e-2), g1 = dv_sgd_config_default(2e-2);
    dv_lr_schedule sched;
    if (nesterov) {
        g0.momentum = 0.9, g0.nesterov = true, g0.weight_decay = 5e-2;
        sched = dv_lr_constant();
    } else {
        g0.momentum = 0.9, g0.dampening = 0.1, g0.weight_decay = 1e-2;
        g1.momentum = 0.5;
        sched = dv_lr_warmup_constant(2);
    }
    dv_sgd_add_group(opt, &cp.groups[0], g0);
    dv_sgd_add_group(opt, &cp.groups[1], g1);
    for (int t = 0; t < T_STEPS; t++) {
        set_grads(f, c, &cp, t);
        dv_sgd_step(opt, step_mult(f, c, &sched, t));
        check_traj(f, c, &cp, t, tol);
    }
    const char *const *names;
    dv_tensor *const *ts;
    int n = dv_sgd_state(opt, &names, &ts);
    CHECK(n == (nesterov ? 6 : 8)); /* nesterov case: group 1 has no momentum, so no buffers */
    if (!nesterov)
        for (int k = 0; k < 4; k++) {
            char name[64];
            snprintf(name, sizeof name, "sgd.%s.momentum_buffer", k_names[k]);
            dv_tensor *mine = state_of(n, names, ts, name), *want = fx_state(f, c, "momentum_buffer", k_names[k]);
            CHECK_MSG(mine != NULL, "sgd state %s not found", name);
            if (mine && want) CHECK_MSG(ut_max_rel_diff(mine, want) <= tol, "%s: %s differs from torch", c, name);
            dv_release(want);
        }
    dv_sgd_free(opt);
    free_params(&cp);
}

TEST(optim_sgd_torch) {
    ut_fixture_file *f = ut_fixture_open(FX);
    if (!f) return;
    run_sgd_case(f, "sgd_momentum_f64", false, 1e-13);
    run_sgd_case(f, "sgd_nesterov_f64", true, 1e-13);
    run_sgd_case(f, "sgd_momentum_f32", false, 1e-6);
    run_sgd_case(f, "sgd_nesterov_f32", true, 1e-6);
    ut_fixture_close(f);
}

TEST(optim_clip_grad_norm_torch) {
    ut_fixture_file *f = ut_fixture_open(FX);
    if (!f) return;
    static const char *const cases[2] = {"clip", "clip_noop"};
    for (int c = 0; c < 2; c++) {
        dv_params ps = {0};
        dv_tensor *p[4];
        for (int i = 0; i < 4; i++) {
            char key[16];
            snprintf(key, sizeof key, "grad%d", i);
            dv_tensor *g = i < 3 ? fx_get(f, "%s.%s", cases[c], key) : dv_zeros(DV_F32, DV_SHAPE(2, 2));
            p[i] = dv_zeros_like(g);
            dv_set_requires_grad(p[i], true);
            if (i < 3) p[i]->grad = dv_clone(g); /* p[3] has no gradient: skipped */
            dv_params_add(&ps, key, p[i]);
            dv_release(g);
        }
        dv_tensor *tt = fx_get(f, "%s.total", cases[c]), *mt = fx_get(f, "%s.max_norm", cases[c]);
        double total = dv_clip_grad_norm(&ps, dv_item(mt));
        CHECK_CLOSE(total, dv_item(tt), 1e-6);
        CHECK(dv_grad_norm(&ps) <= dv_item(mt) + 1e-5);
        for (int i = 0; i < 3; i++) {
            char key[16];
            snprintf(key, sizeof key, "out%d", i);
            dv_tensor *want = fx_get(f, "%s.%s", cases[c], key);
            ut_check_tensor(key, p[i]->grad, want, 1e-6);
            dv_release(want);
        }
        CHECK(p[3]->grad == NULL);
        dv_release(tt), dv_release(mt);
        for (int i = 0; i < 4; i++) dv_release(p[i]);
        dv_params_free(&ps);
    }
    ut_fixture_close(f);
}

TEST(optim_lr_schedules) {
    ut_fixture_file *f = ut_fixture_open(FX);
    if (!f) return;
    dv_lr_schedule cosw = dv_lr_warmup_cosine(5, 40), wc = dv_lr_warmup_constant(5), k = dv_lr_constant();
    dv_tensor *a = ut_fixture_get(f, "sched.cosine.mult"), *b = ut_fixture_get(f, "sched.constant_with_warmup.mult");
    CHECK(a && b);
    for (int64_t s = 0; a && b && s < dv_numel(a); s++) {
        CHECK_CLOSE(dv_lr_schedule_at(&cosw, s), dv_flat_get(a, s), 1e-15);
        CHECK_CLOSE(dv_lr_schedule_at(&wc, s), dv_flat_get(b, s), 1e-15);
        CHECK(dv_lr_schedule_at(&k, s) == 1.0);
    }
    dv_release(a), dv_release(b);
    /* the formula at a few points: linear warm-up, 1 at the end of it, half way down at the
     * middle of the cosine, 0 at total */
    CHECK_CLOSE(dv_lr_schedule_at(&cosw, 0), 0.0, 1e-15);
    CHECK_CLOSE(dv_lr_schedule_at(&cosw, 2), 0.4, 1e-15);
    CHECK_CLOSE(dv_lr_schedule_at(&cosw, 5), 1.0, 1e-15);
    dv_lr_schedule cos45 = dv_lr_warmup_cosine(5, 45);
    CHECK_CLOSE(dv_lr_schedule_at(&cos45, 25), 0.5, 1e-15);
    CHECK_CLOSE(dv_lr_schedule_at(&cosw, 12), 0.5 * (1 + cos(M_PI * 7 / 35.0)), 1e-15);
    CHECK_CLOSE(dv_lr_schedule_at(&cosw, 40), 0.0, 1e-15);
    dv_lr_schedule none = dv_lr_warmup_cosine(0, 0);
    CHECK_CLOSE(dv_lr_schedule_at(&none, 0), 1.0, 1e-15);
    dv_lr_kind kind;
    CHECK(dv_lr_kind_parse("cosine", &kind) == 0 && kind == DV_LR_WARMUP_COSINE);
    CHECK(dv_lr_kind_parse("constant_with_warmup", &kind) == 0 && kind == DV_LR_WARMUP_CONSTANT);
    CHECK(dv_lr_kind_parse("linear", &kind) == -1);
    CHECK(!strcmp(dv_lr_kind_name(DV_LR_CONSTANT), "constant"));
    ut_fixture_close(f);
}

/* ---- the kernel: AVX-512 vs portable, odd lengths, f16/bf16 copies ----------------------- */

#ifndef DV_NO_AVX512
static float *rand_f32(dv_rng *r, int64_t n, double lo, double hi) {
    float *x = malloc(sizeof(float) * (size_t)(n + 16));
    dv_tensor *t = dv_rand(r, DV_F32, DV_SHAPE(n + 16));
    memcpy(x, dv_data(t), sizeof(float) * (size_t)(n + 16));
    for (int64_t i = 0; i < n + 16; i++) x[i] = (float)(lo + (hi - lo) * x[i]);
    dv_release(t);
    return x;
}
#endif

static void check_copy(const char *what, int64_t n, const float *p, const uint16_t *copy, dv_adamw_copy kind) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        uint16_t want = kind == DV_ADAMW_COPY_F16 ? dv_f32_to_f16(p[i]) : dv_f32_to_bf16(p[i]);
        if (copy[i] != want) bad++;
    }
    CHECK_MSG(bad == 0, "%s: %lld of %lld copies are not the rounded master weight", what, (long long)bad,
              (long long)n);
}

#ifndef DV_NO_AVX512
TEST(optim_adamw_kernel_parity) {
    if (!dv_cpu_has_avx512()) return;
    static const int64_t lens[] = {0, 1, 7, 15, 16, 17, 31, 33, 1007, 70001};
    dv_rng r = dv_rng_new(42);
    dv_adamw_coefs c = dv_adamw_coefs_at(1e-2, 0.9, 0.999, 1e-8, 0.05, 3);
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        int64_t n = lens[li];
        for (int kind = 0; kind < 3; kind++) {
            float *p0 = rand_f32(&r, n, -2, 2), *g = rand_f32(&r, n, -1, 1);
            float *m0 = rand_f32(&r, n, -0.1, 0.1), *v0 = rand_f32(&r, n, 0, 0.01);
            /* a few weights in the f16 subnormal range and near bf16 / f16 ties */
            for (int64_t i = 0; i < n; i += 5) p0[i] *= (i % 3 == 0) ? 1e-6f : 1.0f;
            size_t bytes = sizeof(float) * (size_t)(n + 16);
            float *p[2], *m[2], *v[2];
            uint16_t *cp[2];
            for (int k = 0; k < 2; k++) {
                p[k] = malloc(bytes), m[k] = malloc(bytes), v[k] = malloc(bytes);
                cp[k] = malloc(sizeof(uint16_t) * (size_t)(n + 16));
                memcpy(p[k], p0, bytes), memcpy(m[k], m0, bytes), memcpy(v[k], v0, bytes);
                memset(cp[k], 0xab, sizeof(uint16_t) * (size_t)(n + 16));
            }
            dv_adamw_f32_portable(n, p[0], g, m[0], v[0], &c, (dv_adamw_copy)kind, cp[0]);
            dv_adamw_f32_avx512(n, p[1], g, m[1], v[1], &c, (dv_adamw_copy)kind, cp[1]);
            /* errors relative to each array's largest value (fused multiply-adds round once
             * where the portable code rounds twice) */
            double ep = 0, em = 0, ev = 0, sp = 1e-30, sm = 1e-30, sv = 1e-30;
            for (int64_t i = 0; i < n; i++) {
                sp = fmax(sp, fabs(p[0][i])), sm = fmax(sm, fabs(m[0][i])), sv = fmax(sv, fabs(v[0][i]));
                ep = fmax(ep, fabs(p[1][i] - p[0][i]));
                em = fmax(em, fabs(m[1][i] - m[0][i]));
                ev = fmax(ev, fabs(v[1][i] - v[0][i]));
            }
            ep /= sp, em /= sm, ev /= sv;
            CHECK_MSG(ep <= 1e-6 && em <= 1e-6 && ev <= 1e-6,
                      "adamw kernel n=%lld copy=%d: avx512 vs portable p %.3g m %.3g v %.3g", (long long)n, kind,
                      ep, em, ev);
            /* nothing past n was touched (masked tail) */
            for (int k = 0; k < 2; k++) {
                CHECK(!memcmp(p[k] + n, p0 + n, 16 * sizeof(float)));
                CHECK(!memcmp(m[k] + n, m0 + n, 16 * sizeof(float)));
                CHECK(!memcmp(v[k] + n, v0 + n, 16 * sizeof(float)));
                for (int i = 0; i < 16; i++) CHECK(cp[k][n + i] == 0xabab);
                if (kind) check_copy(k ? "avx512" : "portable", n, p[k], cp[k], (dv_adamw_copy)kind);
            }
            for (int k = 0; k < 2; k++) free(p[k]), free(m[k]), free(v[k]), free(cp[k]);
            free(p0), free(g), free(m0), free(v0);
        }
    }
}
#endif

/* special values through the copy: f16 overflow, subnormals, ties, NaN; both kernels */
TEST(optim_adamw_copy_rounding) {
    static const float vals[] = {
        0.0f, -0.0f, 1.0f, 65504.0f, 65520.0f, 1e6f, -1e6f, 6.0e-8f, 3.0e-8f, 1e-5f, -2.5e-6f,
        1.00048828125f /* f16 tie */, 1.0f + 1.0f / 256 /* bf16 tie */, 1.0f + 3.0f / 256, 3.14159265f, NAN,
        -INFINITY, 1.17549435e-38f, 123.456f,
    };
    int64_t n = sizeof vals / sizeof vals[0];
    /* with lr = 0 and no decay the update leaves p unchanged: p is exactly vals */
    dv_adamw_coefs c = dv_adamw_coefs_at(0.0, 0.9, 0.999, 1e-8, 0.0, 1);
    for (int kind = 1; kind < 3; kind++)
        for (int k = 0; k < 2; k++) {
            if (k == 1 && !dv_cpu_has_avx512()) continue;
            float p[32], g[32] = {0}, m[32] = {0}, v[32] = {0};
            uint16_t cp[32];
            memcpy(p, vals, sizeof vals);
            if (k == 0) dv_adamw_f32_portable(n, p, g, m, v, &c, (dv_adamw_copy)kind, cp);
#ifndef DV_NO_AVX512
            else dv_adamw_f32_avx512(n, p, g, m, v, &c, (dv_adamw_copy)kind, cp);
#endif
            for (int64_t i = 0; i < n; i++) {
                if (isnan(vals[i])) {
                    float back = kind == DV_ADAMW_COPY_F16 ? dv_f16_to_f32(cp[i]) : dv_bf16_to_f32(cp[i]);
                    CHECK_MSG(isnan(back), "copy of NaN is not NaN (kind %d, %s)", kind, k ? "avx512" : "portable");
                    continue;
                }
                CHECK_MSG(!memcmp(&p[i], &vals[i], 4), "lr 0 changed p[%lld]", (long long)i);
                uint16_t want = kind == DV_ADAMW_COPY_F16 ? dv_f32_to_f16(vals[i]) : dv_f32_to_bf16(vals[i]);
                CHECK_MSG(cp[i] == want, "%s copy of %.9g: 0x%04x, want 0x%04x (%s)",
                          kind == DV_ADAMW_COPY_F16 ? "f16" : "bf16", vals[i], cp[i], want, k ? "avx512" : "portable");
            }
        }
}

/* the optimiser writes registered copies (both ISAs): equal to the rounded master weight */
TEST(optim_adamw_half_copy) {
    dv_isa prev = dv_cpu_isa();
    for (int isa = 0; isa < 2; isa++) {
        if (isa == DV_ISA_AVX512 && !dv_cpu_has_avx512()) continue;
        dv_cpu_set_isa((dv_isa)isa);
        dv_tensor *w = ut_randn_leaf(DV_F32, DV_SHAPE(37, 3), 1), *b = ut_randn_leaf(DV_F32, DV_SHAPE(19), 2);
        dv_tensor *wh = dv_empty(DV_BF16, DV_SHAPE(37, 3)), *bh = dv_empty(DV_F16, DV_SHAPE(19));
        dv_params ps = {0};
        dv_params_add(&ps, "w", w), dv_params_add(&ps, "b", b);
        dv_adamw *opt = dv_adamw_new();
        dv_adamw_add_group(opt, &ps, dv_adamw_config_default());
        dv_adamw_set_copy(opt, w, wh);
        dv_adamw_set_copy(opt, b, bh);
        check_copy("set_copy bf16", dv_numel(w), dv_data(w), dv_data(wh), DV_ADAMW_COPY_BF16);
        for (int t = 0; t < 3; t++) {
            w->grad = ut_randn(DV_F32, DV_SHAPE(37, 3), 10 + t);
            b->grad = ut_randn(DV_F32, DV_SHAPE(19), 20 + t);
            dv_tensor *w0 = plain_clone(w);
            dv_adamw_step(opt, 1.0);
            CHECK(ut_max_rel_diff(w, w0) > 0); /* it moved */
            check_copy("step bf16", dv_numel(w), dv_data(w), dv_data(wh), DV_ADAMW_COPY_BF16);
            check_copy("step f16", dv_numel(b), dv_data(b), dv_data(bh), DV_ADAMW_COPY_F16);
            dv_release(w0);
            dv_optim_zero_grad(&ps);
            CHECK(w->grad == NULL && b->grad == NULL);
        }
        dv_adamw_free(opt);
        dv_params_free(&ps);
        dv_release(w), dv_release(b), dv_release(wh), dv_release(bh);
    }
    dv_cpu_set_isa(prev);
}

/* ---- gradient accumulation --------------------------------------------------------------- */

/* mean((x[lo:hi] w^T - y[lo:hi])^2) * scale, backward */
static void backward_chunk(dv_tensor *w, dv_tensor *x, dv_tensor *y, int64_t lo, int64_t hi, double scale) {
    dv_pool pool = {0};
    dv_tensor *xs = dv_pool_add(&pool, dv_slice(x, 0, lo, hi, 1));
    dv_tensor *ys = dv_pool_add(&pool, dv_slice(y, 0, lo, hi, 1));
    dv_tensor *d = dv_pool_add(&pool, dv_sub(dv_pool_add(&pool, dv_linear(xs, w, NULL)), ys));
    dv_tensor *l = dv_pool_add(&pool, dv_scale(dv_pool_add(&pool, dv_mean_all(dv_pool_add(&pool, dv_square(d)))), scale));
    dv_backward(l);
    dv_pool_release(&pool);
}

/* The pattern of optim.h: backward N times on loss/N, step, zero — the same update as one
 * backward over the whole batch. */
TEST(optim_grad_accumulation) {
    dv_tensor *x = ut_randn(DV_F64, DV_SHAPE(8, 4), 1), *y = ut_randn(DV_F64, DV_SHAPE(8, 3), 2);
    dv_tensor *wa = ut_randn_leaf(DV_F64, DV_SHAPE(3, 4), 3), *wb = plain_clone(wa);
    dv_set_requires_grad(wb, true);
    dv_params pa = {0}, pb = {0};
    dv_params_add(&pa, "w", wa), dv_params_add(&pb, "w", wb);
    dv_adamw *oa = dv_adamw_new(), *ob = dv_adamw_new();
    dv_adamw_add_group(oa, &pa, dv_adamw_config_default());
    dv_adamw_add_group(ob, &pb, dv_adamw_config_default());
    for (int step = 0; step < 3; step++) {
        backward_chunk(wa, x, y, 0, 8, 1.0);               /* the whole batch at once */
        for (int k = 0; k < 4; k++) backward_chunk(wb, x, y, 2 * k, 2 * k + 2, 0.25); /* 4 micro-batches */
        CHECK(wa->grad && wb->grad);
        if (wa->grad && wb->grad) ut_check_tensor("accumulated grad", wb->grad, wa->grad, 1e-13);
        dv_adamw_step(oa, 1.0);
        dv_adamw_step(ob, 1.0);
        ut_check_tensor("params after accumulated step", wb, wa, 1e-13);
        dv_optim_zero_grad(&pa);
        dv_optim_zero_grad(&pb);
        CHECK(wa->grad == NULL && wb->grad == NULL);
    }
    dv_adamw_free(oa), dv_adamw_free(ob);
    dv_params_free(&pa), dv_params_free(&pb);
    dv_release(x), dv_release(y), dv_release(wa), dv_release(wb);
}

/* ---- state save / restore ----------------------------------------------------------------- */

static void feed_grads(dv_tensor *const *ps, int n, int step) {
    for (int k = 0; k < n; k++) {
        dv_zero_grad(ps[k]);
        if ((step + k) % 4 == 3) continue; /* sometimes no gradient */
        ps[k]->grad = ut_randn(ps[k]->dtype, ps[k]->shape, ps[k]->ndim, 100 * step + k);
    }
}

/* Train 4 steps, snapshot parameters and state (as a checkpoint would), train 4 more; then
 * restore the snapshot into a fresh optimiser and train the same 4: identical. */
TEST(optim_adamw_state_roundtrip) {
    dv_tensor *p[3] = {ut_randn_leaf(DV_F32, DV_SHAPE(5, 6), 1), ut_randn_leaf(DV_F32, DV_SHAPE(6), 2),
                       ut_randn_leaf(DV_F32, DV_SHAPE(2, 3, 4), 3)};
    dv_params ps = {0};
    dv_params_add(&ps, "enc.w", p[0]), dv_params_add(&ps, "enc.b", p[1]), dv_params_add(&ps, "head.w", p[2]);
    dv_adamw_config cfg = dv_adamw_config_default();
    dv_adamw *o = dv_adamw_new();
    dv_adamw_add_group(o, &ps, cfg);
    for (int s = 0; s < 4; s++) feed_grads(p, 3, s), dv_adamw_step(o, 1.0);
    const char *const *names;
    dv_tensor *const *ts;
    int n = dv_adamw_state(o, &names, &ts);
    CHECK(n == 9);
    CHECK(n == 9 && !strcmp(names[0], "adamw.enc.w.exp_avg") && !strcmp(names[4], "adamw.enc.b.exp_avg_sq") &&
          !strcmp(names[8], "adamw.head.w.step"));
    CHECK(ts[2]->dtype == DV_I64 && ts[2]->ndim == 0 && dv_item(ts[2]) == 3); /* enc.w had no grad at s = 3 */
    dv_tensor *saved_state[9], *saved_p[3];
    for (int i = 0; i < n && i < 9; i++) saved_state[i] = plain_clone(ts[i]);
    for (int k = 0; k < 3; k++) saved_p[k] = plain_clone(p[k]);
    for (int s = 4; s < 8; s++) feed_grads(p, 3, s), dv_adamw_step(o, 1.0);

    dv_tensor *q[3];
    dv_params qs = {0};
    for (int k = 0; k < 3; k++) {
        q[k] = plain_clone(saved_p[k]);
        dv_set_requires_grad(q[k], true);
        dv_params_add(&qs, ps.names[k], q[k]);
    }
    dv_adamw *o2 = dv_adamw_new();
    dv_adamw_add_group(o2, &qs, cfg);
    const char *const *names2;
    dv_tensor *const *ts2;
    int n2 = dv_adamw_state(o2, &names2, &ts2);
    CHECK(n2 == n);
    for (int i = 0; i < n2 && i < 9; i++) { /* restore by name, as a checkpoint reader would */
        dv_tensor *dst = state_of(n2, names2, ts2, names[i]);
        CHECK(dst != NULL);
        if (dst) dv_copy_(dst, saved_state[i]);
    }
    for (int s = 4; s < 8; s++) feed_grads(q, 3, s), dv_adamw_step(o2, 1.0);
    for (int k = 0; k < 3; k++) CHECK(ut_max_rel_diff(q[k], p[k]) == 0);
    for (int i = 0; i < 9; i++) dv_release(saved_state[i]);
    for (int k = 0; k < 3; k++) dv_release(saved_p[k]), dv_release(p[k]), dv_release(q[k]);
    dv_adamw_free(o), dv_adamw_free(o2);
    dv_params_free(&ps), dv_params_free(&qs);
}

/* ---- EMA ------------------------------------------------------------------------------------ */

TEST(optim_ema) {
    dv_tensor *w = ut_randn_leaf(DV_F32, DV_SHAPE(4, 5), 1), *b = ut_randn_leaf(DV_F64, DV_SHAPE(3), 2);
    dv_params ps = {0};
    dv_params_add(&ps, "w", w), dv_params_add(&ps, "b", b);
    dv_ema *e = dv_ema_new(&ps, 0.9);
    double sw[20], sb[3];
    dv_to_f64(w, sw), dv_to_f64(b, sb);
    for (int s = 0; s < 5; s++) {
        /* an "optimiser step": move the weights */
        for (int64_t i = 0; i < 20; i++) dv_flat_set(w, i, dv_flat_get(w, i) + 0.1 * (s + 1) + 0.01 * i);
        for (int64_t i = 0; i < 3; i++) dv_flat_set(b, i, dv_flat_get(b, i) - 0.2 * (s + 1));
        dv_ema_update(e);
        for (int64_t i = 0; i < 20; i++) sw[i] -= 0.1 * (sw[i] - dv_flat_get(w, i));
        for (int64_t i = 0; i < 3; i++) sb[i] -= 0.1 * (sb[i] - dv_flat_get(b, i));
    }
    dv_tensor *ew = dv_from_f64(DV_F32, DV_SHAPE(4, 5), sw), *eb = dv_from_f64(DV_F64, DV_SHAPE(3), sb);
    ut_check_tensor("ema w", e->shadow[0], ew, 1e-6);
    ut_check_tensor("ema b", e->shadow[1], eb, 1e-14);
    dv_tensor *w_train = plain_clone(w), *b_train = plain_clone(b);
    dv_ema_swap_in(e); /* evaluate with the averages, through the same tensors */
    ut_check_tensor("swapped-in w", w, ew, 1e-6);
    ut_check_tensor("swapped-in b", b, eb, 1e-14);
    dv_ema_swap_out(e);
    CHECK(ut_max_rel_diff(w, w_train) == 0 && ut_max_rel_diff(b, b_train) == 0);
    ut_check_tensor("shadow after swap out", e->shadow[0], ew, 1e-6);
    const char *const *names;
    dv_tensor *const *ts;
    CHECK(dv_ema_state(e, &names, &ts) == 2 && !strcmp(names[1], "ema.b") && ts[0] == e->shadow[0]);
    dv_ema_free(e);
    dv_params_free(&ps);
    dv_release(w), dv_release(b), dv_release(ew), dv_release(eb), dv_release(w_train), dv_release(b_train);
}

/* ---- decay / no-decay groups ------------------------------------------------------------- */

static bool only_bias(const char *name, const dv_tensor *t, void *ctx) {
    (void)t;
    return strstr(name, (const char *)ctx) != NULL;
}

TEST(optim_params_split_decay) {
    struct { const char *name; int64_t shape[2]; int ndim; bool no_decay; } ps_def[] = {
        {"tok_embed.weight", {100, 8}, 2, true}, {"blocks.0.attn.qkv.weight", {24, 8}, 2, false},
        {"blocks.0.attn.qkv.bias", {24}, 1, true}, {"blocks.0.norm1.weight", {8}, 1, true},
        {"blocks.0.mlp.fc1.weight", {32, 8}, 2, false}, {"ln_f.weight", {8}, 1, true},
        {"adaln.modulation.bias", {16}, 1, true}, {"pos_embedding", {16, 8}, 2, true},
    };
    int n = sizeof ps_def / sizeof ps_def[0];
    dv_params all = {0}, decay = {0}, no_decay = {0};
    for (int i = 0; i < n; i++) {
        dv_tensor *t = dv_zeros(DV_F32, ps_def[i].shape, ps_def[i].ndim);
        dv_params_add(&all, ps_def[i].name, t);
        dv_release(t);
    }
    dv_params_split_decay(&all, NULL, NULL, &decay, &no_decay);
    CHECK(decay.n == 2 && no_decay.n == 6);
    for (int i = 0; i < n; i++) {
        bool in_nd = dv_params_find(&no_decay, all.tensors[i]) >= 0, in_d = dv_params_find(&decay, all.tensors[i]) >= 0;
        CHECK_MSG(in_nd == ps_def[i].no_decay && in_d != in_nd, "%s in the wrong group", ps_def[i].name);
    }
    CHECK(!strcmp(decay.names[0], "blocks.0.attn.qkv.weight") && dv_params_numel(&decay) == 24 * 8 + 32 * 8);
    dv_params d2 = {0}, nd2 = {0};
    dv_params_split_decay(&all, only_bias, "bias", &d2, &nd2); /* a custom predicate */
    CHECK(nd2.n == 2 && d2.n == 6);
    dv_params_free(&all), dv_params_free(&decay), dv_params_free(&no_decay);
    dv_params_free(&d2), dv_params_free(&nd2);
}

/* zero-size parameters: nothing to do, no crash */
TEST(optim_zero_size) {
    dv_tensor *a = ut_randn_leaf(DV_F32, DV_SHAPE(0), 1), *b = ut_randn_leaf(DV_F32, DV_SHAPE(3, 0), 2);
    dv_params ps = {0};
    dv_params_add(&ps, "a", a), dv_params_add(&ps, "b", b);
    a->grad = dv_zeros(DV_F32, DV_SHAPE(0));
    b->grad = dv_zeros(DV_F32, DV_SHAPE(3, 0));
    dv_adamw *o = dv_adamw_new();
    dv_adamw_add_group(o, &ps, dv_adamw_config_default());
    dv_adamw_step(o, 1.0);
    dv_sgd *s = dv_sgd_new();
    dv_sgd_config sc = dv_sgd_config_default(0.1);
    sc.momentum = 0.9;
    dv_sgd_add_group(s, &ps, sc);
    dv_sgd_step(s, 1.0);
    CHECK(dv_clip_grad_norm(&ps, 1.0) == 0.0);
    dv_ema *e = dv_ema_new(&ps, 0.99);
    dv_ema_update(e);
    dv_ema_free(e);
    dv_sgd_free(s), dv_adamw_free(o);
    dv_params_free(&ps);
    dv_release(a), dv_release(b);
}

/* ---- bad calls abort with a message naming the parameter ----------------------------------- */

static void bad_dtype(void *ctx) {
    dv_tensor *t = dv_zeros(DV_I32, DV_SHAPE(3));
    dv_params ps = {0};
    dv_params_add(&ps, "ids", t);
    dv_adamw_add_group(dv_adamw_new(), &ps, dv_adamw_config_default());
}
static void bad_nesterov(void *ctx) {
    dv_params ps = {0};
    dv_sgd_config c = dv_sgd_config_default(0.1);
    c.nesterov = true, c.momentum = 0.9, c.dampening = 0.1;
    dv_sgd_add_group(dv_sgd_new(), &ps, c);
}
static void bad_copy(void *ctx) {
    dv_tensor *w = dv_zeros(DV_F32, DV_SHAPE(3, 4)), *h = dv_zeros(DV_F16, DV_SHAPE(11));
    dv_params ps = {0};
    dv_params_add(&ps, "proj.w", w);
    dv_adamw *o = dv_adamw_new();
    dv_adamw_add_group(o, &ps, dv_adamw_config_default());
    dv_adamw_set_copy(o, w, h);
}
static void bad_duplicate(void *ctx) {
    dv_tensor *w = dv_zeros(DV_F32, DV_SHAPE(3));
    dv_params ps = {0};
    dv_params_add(&ps, "w", w);
    dv_adamw *o = dv_adamw_new();
    dv_adamw_add_group(o, &ps, dv_adamw_config_default());
    dv_adamw_add_group(o, &ps, dv_adamw_config_default());
}
static void bad_grad_shape(void *ctx) {
    dv_tensor *w = dv_zeros(DV_F32, DV_SHAPE(3, 2));
    dv_params ps = {0};
    dv_params_add(&ps, "w", w);
    w->grad = dv_zeros(DV_F32, DV_SHAPE(2, 3));
    dv_adamw *o = dv_adamw_new();
    dv_adamw_add_group(o, &ps, dv_adamw_config_default());
    dv_adamw_step(o, 1.0);
}

TEST(optim_bad_calls) {
    CHECK(ut_aborts_with(bad_dtype, NULL, "'ids' (3) is i32"));
    CHECK(ut_aborts_with(bad_nesterov, NULL, "nesterov needs momentum > 0 and dampening 0"));
    CHECK(ut_aborts_with(bad_copy, NULL, "copy (11) of 'proj.w' (3, 4)"));
    CHECK(ut_aborts_with(bad_duplicate, NULL, "'w' is already in a group"));
    CHECK(ut_aborts_with(bad_grad_shape, NULL, "'w' (3, 2) f32 has a gradient (2, 3) f32"));
}
