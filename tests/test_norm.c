/* tests/test_norm.c — softmax, log_softmax, layer_norm, rms_norm: f64 gradient checks (any dim,
 * non-contiguous inputs, optional affine parameters), AVX-512 vs portable parity on sizes that
 * exercise full vectors and masked tails, LayerNorm on long rows far from zero, PyTorch
 * fixtures, and edge cases. */
#include "tests/util.h"
#include "kernels/cpu.h"

#include <stdlib.h>


typedef struct { int dim; bool log; } sm_ctx;
/* which of weight / bias are given: in[1] / in[2] in that order (in[1] is the bias when there is
 * no weight) */
typedef struct { bool w, b, rms; double eps; } ln_ctx;

static dv_tensor *run_softmax(dv_tensor **in, void *c) {
    sm_ctx *s = c;
    return s->log ? dv_log_softmax(in[0], s->dim) : dv_softmax(in[0], s->dim);
}

static dv_tensor *run_norm(dv_tensor **in, void *c) {
    ln_ctx *l = c;
    dv_tensor *w = l->w ? in[1] : NULL, *b = l->b ? in[l->w ? 2 : 1] : NULL;
    return l->rms ? dv_rms_norm(in[0], w, l->eps) : dv_layer_norm(in[0], w, b, l->eps);
}

TEST(norm_softmax_gradcheck) {
    dv_tensor *x = ut_randn_leaf(DV_F64, DV_SHAPE(3, 4, 5), 11);
    dv_tensor *xn = ut_noncontig(x);
    for (int log = 0; log < 2; log++) {
        for (int dim = -1; dim < 3; dim++) {
            sm_ctx c = {dim, log};
            const char *what = log ? "log_softmax" : "softmax";
            ut_gradcheck(what, run_softmax, &x, 1, &c, 1e-6);
            ut_gradcheck(what, run_softmax, &xn, 1, &c, 1e-6);
        }
    }
    dv_release(x);
    dv_release(xn);
}

TEST(norm_layer_rms_gradcheck) {
    const ln_ctx cases[] = {
        {true, true, false, 1e-5}, {false, false, false, 1e-5}, {true, false, false, 1e-3}, {false, true, false, 1e-5},
        {true, false, true, 1e-6}, {false, false, true, 1e-5},
    };
    for (int k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++) {
        ln_ctx c = cases[k];
        const char *what = c.rms ? "rms_norm" : "layer_norm";
        dv_tensor *x = ut_randn_leaf(DV_F64, DV_SHAPE(2, 3, 7), 20 + k);
        dv_tensor *xn = ut_noncontig(x);
        dv_tensor *w = ut_randn_leaf(DV_F64, DV_SHAPE(7), 30 + k), *b = ut_randn_leaf(DV_F64, DV_SHAPE(7), 40 + k);
        dv_tensor *in[3] = {x, NULL, NULL};
        int n = 1;
        if (c.w) in[n++] = w;
        if (c.b) in[n++] = b;
        ut_gradcheck(what, run_norm, in, n, &c, 1e-6);
        in[0] = xn;
        ut_gradcheck(what, run_norm, in, n, &c, 1e-6);
        /* a frozen input: only the others get (and need) gradients */
        dv_set_requires_grad(x, false);
        in[0] = x;
        if (n > 1) ut_gradcheck(what, run_norm, in, n, &c, 1e-6);
        dv_release(x); dv_release(xn); dv_release(w); dv_release(b);
    }
}

TEST(norm_softmax_parity) {
    const int64_t shapes[][2] = {{7, 37}, {5, 16}, {3, 1}, {4, 100}, {2, 17}, {40, 1024}};
    for (int k = 0; k < 6; k++) {
        dv_tensor *x = ut_randn_leaf(DV_F32, shapes[k], 2, 50 + k);
        for (int log = 0; log < 2; log++) {
            sm_ctx c = {-1, log};
            ut_parity(log ? "log_softmax" : "softmax", run_softmax, &x, 1, &c, 1e-5);
        }
        dv_release(x);
    }
    /* a non-last dim goes through the same kernels after a transpose */
    dv_tensor *x = ut_randn_leaf(DV_F32, DV_SHAPE(3, 33, 5), 60);
    sm_ctx c = {1, false};
    ut_parity("softmax dim 1", run_softmax, &x, 1, &c, 1e-5);
    dv_release(x);
}

TEST(norm_layer_rms_parity) {
    const int64_t shapes[][2] = {{3, 1}, {4, 15}, {3, 16}, {5, 17}, {2, 100}, {3, 129}, {16, 4096}};
    for (int k = 0; k < 7; k++) {
        dv_tensor *x = ut_randn_leaf(DV_F32, shapes[k], 2, 70 + k);
        dv_tensor *w = ut_randn_leaf(DV_F32, &shapes[k][1], 1, 80 + k), *b = ut_randn_leaf(DV_F32, &shapes[k][1], 1, 90 + k);
        ln_ctx ln = {true, true, false, 1e-5}, ln0 = {false, false, false, 1e-5}, rms = {true, false, true, 1e-6};
        ut_parity("layer_norm", run_norm, (dv_tensor *[]){x, w, b}, 3, &ln, 1e-5);
        ut_parity("layer_norm plain", run_norm, &x, 1, &ln0, 1e-5);
        ut_parity("rms_norm", run_norm, (dv_tensor *[]){x, w}, 2, &rms, 1e-5);
        dv_release(x); dv_release(w); dv_release(b);
    }
}

static dv_tensor *run_ce(dv_tensor **in, void *c) { return dv_cross_entropy(in[0], in[1], -100); }

/* max |a - b| / max |b| (NaN if a has a NaN): for outputs mostly far below 1, like the
 * probabilities of a 32768-way softmax and their gradients, where ut_parity's tolerance
 * (relative to max(1, |ref|) element by element) lets through errors as big as the values */
static double diff_rel_to_max(const dv_tensor *a, const dv_tensor *b) {
    int64_t n = dv_numel(b);
    double *x = malloc(sizeof(double) * (size_t)(n ? n : 1)), *y = malloc(sizeof(double) * (size_t)(n ? n : 1));
    dv_to_f64(a, x);
    dv_to_f64(b, y);
    double d = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(x[i] - y[i]);
        if (!(e <= d)) d = e;
        if (fabs(y[i]) > m) m = fabs(y[i]);
    }
    free(x);
    free(y);
    return m > 0 ? d / m : d;
}

/* Outputs of 16 MiB and more with rows of a multiple of 16 floats are written with streaming
 * stores by the AVX-512 kernels (kernels/avx512/norm.c): parity through that path, on
 * (129, 32768), just over 16 MiB (a vocabulary-sized row; the odd row count leaves the
 * LayerNorm backward a lone row at the end). Cross-entropy's input gradient streams as well.
 * (The AVX-512 weight gradients sum tiles of 32 rows in f32: over 1025 rows of 4096 they drift
 * to ~1e-5 of the portable double sums, over these 129 rows to ~6e-6.) */
TEST(norm_parity_streamed) {
    const int64_t rows = 129, c = 32768;
    dv_tensor *x = ut_randn_leaf(DV_F32, DV_SHAPE(rows, c), 110);
    dv_tensor *w = ut_randn_leaf(DV_F32, DV_SHAPE(c), 111), *b = ut_randn_leaf(DV_F32, DV_SHAPE(c), 112);
    for (int log = 0; log < 2; log++) {
        sm_ctx s = {-1, log};
        ut_parity(log ? "streamed log_softmax" : "streamed softmax", run_softmax, &x, 1, &s, 1e-5);
    }
    ln_ctx ln = {true, true, false, 1e-5}, rms = {true, false, true, 1e-6};
    ut_parity("streamed layer_norm", run_norm, (dv_tensor *[]){x, w, b}, 3, &ln, 1e-5);
    ut_parity("streamed rms_norm", run_norm, (dv_tensor *[]){x, w}, 2, &rms, 1e-5);
    dv_rng r = dv_rng_new(113);
    dv_tensor *t = dv_randint(&r, DV_I64, 0, c, DV_SHAPE(rows));
    dv_flat_set(t, 3, -100);
    ut_parity("streamed cross_entropy", run_ce, (dv_tensor *[]){x, t}, 2, NULL, 1e-5);
    /* softmax, its input gradient and cross-entropy's once more, against their largest values */
    if (dv_cpu_has_avx512()) {
        dv_tensor *gy = ut_randn(DV_F32, DV_SHAPE(rows, c), 114), *out[2][3];
        dv_isa prev = dv_cpu_isa();
        for (int isa = 0; isa < 2; isa++) {
            dv_cpu_set_isa((dv_isa)isa);
            dv_zero_grad(x);
            dv_tensor *y = dv_softmax(x, -1);
            dv_backward_with(y, gy);
            out[isa][0] = dv_detach(y);
            out[isa][1] = dv_clone(x->grad);
            dv_zero_grad(x);
            dv_tensor *l = dv_cross_entropy(x, t, -100);
            dv_backward(l);
            out[isa][2] = dv_clone(x->grad);
            dv_release(y);
            dv_release(l);
        }
        dv_cpu_set_isa(prev);
        const char *what[3] = {"softmax", "softmax grad", "cross_entropy grad"};
        for (int k = 0; k < 3; k++) {
            double e = diff_rel_to_max(out[DV_ISA_AVX512][k], out[DV_ISA_PORTABLE][k]);
            CHECK_MSG(e < 1e-5, "streamed %s: avx512 vs portable differ by %.3g of the largest value", what[k], e);
            if (dv_test_verbose) printf("  streamed %s: avx512 vs portable %.2g of the largest value\n", what[k], e);
            dv_release(out[0][k]);
            dv_release(out[1][k]);
        }
        dv_release(gy);
    }
    dv_release(x); dv_release(w); dv_release(b); dv_release(t);
}

/* LayerNorm on (8, 4096) rows of mean 100 and std 1, in f32 on both kernel sets, against the
 * f64 kernels on the same values. The one-pass variance E[x^2] - E[x]^2 would be off by ~1e-3
 * here, a plain f32 running sum for the mean by ~2e-5, and a mean saved in f32 would cost the
 * backward ~2e-5; what we do stays within ~1e-6. */
TEST(norm_layer_norm_long_rows) {
    const int64_t rows = 8, c = 4096;
    dv_tensor *x = ut_randn(DV_F32, DV_SHAPE(rows, c), 100);
    dv_tensor *off = dv_add_scalar(x, 100.0);
    dv_release(x);
    x = off;
    dv_set_requires_grad(x, true);
    dv_tensor *w = ut_randn_leaf(DV_F32, DV_SHAPE(c), 101), *b = ut_randn_leaf(DV_F32, DV_SHAPE(c), 102);
    dv_tensor *gy = ut_randn(DV_F32, DV_SHAPE(rows, c), 103);

    /* the f64 reference, from the same f32 values */
    dv_tensor *x64 = dv_cast(x, DV_F64), *w64 = dv_cast(w, DV_F64), *b64 = dv_cast(b, DV_F64), *gy64 = dv_cast(gy, DV_F64);
    dv_tensor *xl = dv_detach(x64), *wl = dv_detach(w64), *bl = dv_detach(b64);
    dv_set_requires_grad(xl, true); dv_set_requires_grad(wl, true); dv_set_requires_grad(bl, true);
    dv_tensor *yref = dv_layer_norm(xl, wl, bl, 1e-5);
    dv_backward_with(yref, gy64);

    for (int isa = 0; isa < 2; isa++) {
        if (isa == DV_ISA_AVX512 && !dv_cpu_has_avx512()) continue;
        dv_isa prev = dv_cpu_isa();
        dv_cpu_set_isa((dv_isa)isa);
        dv_zero_grad(x); dv_zero_grad(w); dv_zero_grad(b);
        dv_tensor *y = dv_layer_norm(x, w, b, 1e-5);
        dv_backward_with(y, gy);
        const char *name = isa ? "long rows avx512" : "long rows portable";
        char buf[96];
        snprintf(buf, sizeof buf, "%s: y", name);
        ut_check_tensor(buf, y, yref, 5e-6);
        snprintf(buf, sizeof buf, "%s: dx", name);
        ut_check_tensor(buf, x->grad, xl->grad, 5e-6);
        snprintf(buf, sizeof buf, "%s: dw", name);
        ut_check_tensor(buf, w->grad, wl->grad, 5e-6);
        snprintf(buf, sizeof buf, "%s: db", name);
        ut_check_tensor(buf, b->grad, bl->grad, 5e-6);
        if (dv_test_verbose)
            printf("  %s: max error y %.2g, dx %.2g, dw %.2g, db %.2g\n", name, ut_max_rel_diff(y, yref),
                   ut_max_rel_diff(x->grad, xl->grad), ut_max_rel_diff(w->grad, wl->grad), ut_max_rel_diff(b->grad, bl->grad));
        dv_release(y);
        dv_cpu_set_isa(prev);
    }
    dv_release(yref);
    dv_release(x); dv_release(w); dv_release(b); dv_release(gy);
    dv_release(x64); dv_release(w64); dv_release(b64); dv_release(gy64);
    dv_release(xl); dv_release(wl); dv_release(bl);
}

TEST(norm_fixtures) {
    static sm_ctx last = {-1, false}, d1 = {1, false}, llast = {-1, true}, l0 = {0, true};
    static ln_ctx aff = {true, true, false, 1e-5}, plain = {false, false, false, 1e-6}, wonly = {true, false, false, 1e-5};
    static ln_ctx rmsw = {true, false, true, 1e-6}, rms0 = {false, false, true, 1e-5};
    const struct { const char *name; dv_test_op op; void *ctx; } cases[] = {
        {"softmax_last", run_softmax, &last}, {"softmax_d1", run_softmax, &d1},
        {"softmax_big", run_softmax, &last},  {"log_softmax_last", run_softmax, &llast},
        {"log_softmax_d0", run_softmax, &l0}, {"layer_norm_affine", run_norm, &aff},
        {"layer_norm_plain", run_norm, &plain}, {"layer_norm_weight", run_norm, &wonly},
        {"rms_norm_weight", run_norm, &rmsw}, {"rms_norm_plain", run_norm, &rms0},
        {"layer_norm_f64", run_norm, &aff},
    };
    for (int k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++)
        ut_fixture("norm.bin", cases[k].name, cases[k].op, cases[k].ctx, 1e-5);
    /* the same f32 cases through the portable kernels */
    dv_isa prev = dv_cpu_isa();
    dv_cpu_set_isa(DV_ISA_PORTABLE);
    for (int k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++)
        ut_fixture("norm.bin", cases[k].name, cases[k].op, cases[k].ctx, 1e-5);
    dv_cpu_set_isa(prev);
}

TEST(norm_edges) {
    for (int isa = 0; isa < 2; isa++) {
        if (isa == DV_ISA_AVX512 && !dv_cpu_has_avx512()) continue;
        dv_isa prev = dv_cpu_isa();
        dv_cpu_set_isa((dv_isa)isa);
        /* masked attention rows: -inf entries get 0, an all -inf row is NaN (as torch) */
        dv_tensor *x = dv_from_f64(DV_F32, DV_SHAPE(2, 3), (double[]){1, -INFINITY, 1, -INFINITY, -INFINITY, -INFINITY});
        dv_tensor *y = dv_softmax(x, -1), *ly = dv_log_softmax(x, -1);
        CHECK_CLOSE(dv_flat_get(y, 0), 0.5, 1e-7);
        CHECK(dv_flat_get(y, 1) == 0 && dv_flat_get(ly, 1) == -INFINITY);
        CHECK(isnan(dv_flat_get(y, 3)));
        dv_release(x); dv_release(y); dv_release(ly);
        /* huge logits do not overflow */
        dv_tensor *h = dv_from_f64(DV_F32, DV_SHAPE(1, 2), (double[]){1e4, 1e4 - 1});
        dv_tensor *hy = dv_softmax(h, 1);
        CHECK_CLOSE(dv_flat_get(hy, 0), 1 / (1 + exp(-1.0)), 1e-6);
        dv_release(h); dv_release(hy);
        /* zero-size inputs give empty results */
        dv_tensor *e0 = dv_zeros(DV_F32, DV_SHAPE(0, 5)), *e1 = dv_zeros(DV_F32, DV_SHAPE(3, 0));
        dv_tensor *r[6] = {dv_softmax(e0, -1), dv_softmax(e1, -1), dv_log_softmax(e1, 0), dv_layer_norm(e0, NULL, NULL, 1e-5),
                           dv_layer_norm(e1, NULL, NULL, 1e-5), dv_rms_norm(e1, NULL, 1e-5)};
        for (int k = 0; k < 6; k++) { CHECK(dv_numel(r[k]) == 0); dv_release(r[k]); }
        dv_release(e0); dv_release(e1);
        /* a 0-d softmax is 1 */
        dv_tensor *s = dv_scalar(DV_F32, 3), *sy = dv_softmax(s, 0);
        CHECK(sy->ndim == 0 && dv_item(sy) == 1);
        dv_release(s); dv_release(sy);
        /* a constant row normalises to 0 (var = 0: rstd = 1/sqrt(eps)) */
        dv_tensor *cst = dv_full(DV_F32, DV_SHAPE(2, 33), 7.0);
        dv_tensor *cy = dv_layer_norm(cst, NULL, NULL, 1e-5);
        for (int64_t i = 0; i < 66; i++) CHECK(dv_flat_get(cy, i) == 0);
        dv_release(cst); dv_release(cy);
        dv_cpu_set_isa(prev);
    }
}

static void ln_bad_weight(void *ctx) {
    dv_tensor *x = dv_zeros(DV_F32, DV_SHAPE(2, 8)), *w = dv_ones(DV_F32, DV_SHAPE(7));
    dv_layer_norm(x, w, NULL, 1e-5);
}
static void ln_bad_dtype(void *ctx) {
    dv_tensor *x = dv_zeros(DV_F32, DV_SHAPE(2, 8)), *w = dv_ones(DV_F64, DV_SHAPE(8));
    dv_rms_norm(x, w, 1e-5);
}
static void softmax_bad_dim(void *ctx) {
    dv_tensor *x = dv_zeros(DV_F32, DV_SHAPE(2, 8));
    dv_softmax(x, 2);
}

TEST(norm_bad_calls_abort) {
    CHECK(ut_aborts_with(ln_bad_weight, NULL, "layer_norm: weight (7) does not match the last dim of x (2, 8)"));
    CHECK(ut_aborts_with(ln_bad_dtype, NULL, "rms_norm: weight is f64 but x is f32"));
    CHECK(ut_aborts_with(softmax_bad_dim, NULL, "dim 2 out of range"));
}
