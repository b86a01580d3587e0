/* tests/cuda/test_cuda_ops.c — the elementwise, reduction, norm, RNG and AdamW kernels against
 * the CPU's portable kernels on the same inputs (build/test-cuda, needs a GPU; skipped
 * otherwise, see cuda_util.c). GEMM and attention: test_cuda_matmul.c; the ops through the
 * tensor API and autograd: test_cuda_tensor_ops.c.
 * Tolerances (relative, max(1, |x|) scaled): f32 elementwise 2e-6 (1-2 ulp of CUDA's libm),
 * f32 row reductions 1e-5 (f32 tree sums vs the CPU's double sums), RNG uniform / randint
 * and AdamW exact, RNG normal 1e-6 (double libm, then rounding to f32). */
#ifdef DV_HAVE_CUDA
#include "tests/cuda/cuda_util.h"

#include "kernels/adamw.h"
#include "kernels/cuda/common.h"
#include "kernels/cuda/kernels.h"
#include "kernels/elementwise.h"
#include "kernels/norm.h"
#include "kernels/reduce.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CK(call) dv_cuda_check((call), #call)

TEST(cuda_unary_fwd_bwd_match_cpu) {
    int64_t n = 100003;
    float *x = tc_randn(n, 1, 2.0), *gy = tc_randn(n, 2, 1.0);
    float *y = malloc(n * 4), *gx = malloc(n * 4);
    float *dx = tc_upload(x, n * 4), *dgy = tc_upload(gy, n * 4), *dy = tc_dalloc(n * 4), *dgx = tc_dalloc(n * 4);
    for (int op = 0; op < DV_UNARY_COUNT; op++) {
        float *xin = x;
        float *dxin = dx;
        float *xp = NULL, *dxp = NULL;
        if (op == DV_UNARY_LOG || op == DV_UNARY_SQRT || op == DV_UNARY_RSQRT || op == DV_UNARY_POW) {
            xp = malloc(n * 4); /* positive inputs */
            for (int64_t i = 0; i < n; i++) xp[i] = fabsf(x[i]) + 0.1f;
            dxp = tc_upload(xp, n * 4);
            xin = xp, dxin = dxp;
        }
        double p1 = op == DV_UNARY_POW ? 1.7 : op == DV_UNARY_CLAMP ? -0.5 : 0.75, p2 = op == DV_UNARY_CLAMP ? 0.5 : -0.25;
        dv_unary_f32_portable(op, n, xin, y, p1, p2);
        dv_unary_backward_f32_portable(op, n, xin, y, gy, gx, p1, p2);
        CK(dv_cu_unary_f32(op, n, dxin, dy, p1, p2, tc_stream()));
        float *got = tc_download(dy, n * 4);
        tc_compare_f32(dv_unary_name(op), got, y, n, 2e-6);
        free(got);
        /* the backward from the CPU's y, so only the derivative is compared */
        float *dyc = tc_upload(y, n * 4);
        CK(dv_cu_unary_bwd_f32(op, n, dxin, dyc, dgy, dgx, p1, p2, tc_stream()));
        got = tc_download(dgx, n * 4);
        tc_compare_f32(dv_unary_name(op), got, gx, n, 4e-6);
        free(got);
        tc_dfree(dyc, n * 4);
        if (xp) free(xp), tc_dfree(dxp, n * 4);
    }
    free(x), free(gy), free(y), free(gx);
    tc_dfree(dx, n * 4), tc_dfree(dgy, n * 4), tc_dfree(dy, n * 4), tc_dfree(dgx, n * 4);
}

TEST(cuda_binary_broadcast_and_backward_match_cpu) {
    /* a (3, 1, 257) op b (5, 257) -> (3, 5, 257) */
    int64_t shape[3] = {3, 5, 257}, sa[3] = {257, 0, 1}, sb[3] = {0, 257, 1};
    int64_t na = 3 * 257, nb = 5 * 257, n = 3 * 5 * 257;
    float *a = tc_randn(na, 3, 1.0), *b = tc_randn(nb, 4, 1.0);
    for (int64_t i = 0; i < nb; i++) b[i] += b[i] >= 0 ? 0.5f : -0.5f; /* away from 0 for div */
    float *da = tc_upload(a, na * 4), *db = tc_upload(b, nb * 4);
    void *dy = tc_dalloc(n * 4);
    float *want = malloc(n * 4);
    for (int op = 0; op < DV_BINARY_COUNT; op++) {
        if (op == DV_BINARY_POW) continue; /* negative bases: NaN on both sides, tested below */
        dv_binary_f32_portable(op, 3, shape, a, sa, b, sb, want);
        CK(dv_cu_binary_f32(op, 3, shape, da, sa, db, sb, dy, tc_stream()));
        if (op >= DV_BINARY_EQ) {
            uint8_t *got = tc_download(dy, n);
            CHECK_MSG(memcmp(got, want, n) == 0, "%s differs", dv_binary_name(op));
            free(got);
        } else {
            float *got = tc_download(dy, n * 4);
            tc_compare_f32(dv_binary_name(op), got, want, n, 1e-6);
            free(got);
        }
    }
    /* backward, same shapes: against finite differences of the CPU forward in f64 */
    int64_t m = 4099;
    float *x = tc_randn(m, 5, 1.0), *z = tc_randn(m, 6, 1.0), *g = tc_randn(m, 7, 1.0);
    for (int64_t i = 0; i < m; i++) x[i] = fabsf(x[i]) + 0.5f, z[i] = z[i] >= 0 ? z[i] + 0.5f : z[i] - 0.5f;
    float *dxx = tc_upload(x, m * 4), *dzz = tc_upload(z, m * 4), *dg = tc_upload(g, m * 4);
    float *dga = tc_dalloc(m * 4), *dgb = tc_dalloc(m * 4);
    const int ops[] = {DV_BINARY_ADD, DV_BINARY_SUB, DV_BINARY_MUL, DV_BINARY_DIV, DV_BINARY_POW, DV_BINARY_MAX, DV_BINARY_MIN};
    for (int k = 0; k < 7; k++) {
        int op = ops[k];
        CK(dv_cu_binary_bwd_f32(op, m, dxx, dzz, dg, dga, dgb, tc_stream()));
        float *ga = tc_download(dga, m * 4), *gb = tc_download(dgb, m * 4);
        int bad = 0;
        for (int64_t i = 0; i < m; i++) {
            double h = 1e-4, one = 1;
            int64_t s1 = 1;
            double xa[2] = {x[i] + h, x[i] - h}, zb[2] = {z[i] + h, z[i] - h}, xs = x[i], zs = z[i], f[4];
            for (int t = 0; t < 2; t++) {
                dv_binary_f64_portable(op, 1, &s1, &xa[t], &s1, &zs, &s1, &f[t]);
                dv_binary_f64_portable(op, 1, &s1, &xs, &s1, &zb[t], &s1, &f[2 + t]);
            }
            double wa = g[i] * (f[0] - f[1]) / (2 * h), wb = g[i] * (f[2] - f[3]) / (2 * h);
            if ((op == DV_BINARY_MAX || op == DV_BINARY_MIN) && fabs(x[i] - z[i]) < 2 * h) continue;
            bad += fabs(ga[i] - wa) > 1e-3 * fmax(one, fabs(wa)) || fabs(gb[i] - wb) > 1e-3 * fmax(one, fabs(wb));
        }
        CHECK_MSG(bad == 0, "%s backward: %d elements off", dv_binary_name(op), bad);
        free(ga), free(gb);
    }
    free(a), free(b), free(want), free(x), free(z), free(g);
    tc_dfree(da, na * 4), tc_dfree(db, nb * 4), tc_dfree(dy, n * 4);
    tc_dfree(dxx, m * 4), tc_dfree(dzz, m * 4), tc_dfree(dg, m * 4), tc_dfree(dga, m * 4), tc_dfree(dgb, m * 4);
}

TEST(cuda_reduce_sum_mean_max_match_cpu) {
    const int64_t dims[][3] = {{7, 1000, 1}, {3, 129, 33}, {1, 100000, 1}, {5, 0, 1}};
    for (int c = 0; c < 4; c++) {
        int64_t outer = dims[c][0], n = dims[c][1], inner = dims[c][2], tot = outer * n * inner, no = outer * inner;
        float *x = tc_randn(tot, 10 + c, 1.0), *want = malloc(no * 4), *mx = malloc(no * 4);
        float *dx = tc_upload(x, tot * 4), *dy = tc_dalloc(no * 4);
        dv_sum_f32_portable(outer, n, inner, x, want);
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < inner; i++) {
                float m = -INFINITY;
                for (int64_t k = 0; k < n; k++) m = fmaxf(m, x[(o * n + k) * inner + i]);
                mx[o * inner + i] = m;
            }
        for (int kind = 0; kind < 3; kind++) {
            CK(dv_cu_reduce_f32(kind, outer, n, inner, dx, dy, tc_stream()));
            float *got = tc_download(dy, no * 4);
            if (kind == DV_CU_REDUCE_MAX) {
                CHECK_MSG(memcmp(got, mx, no * 4) == 0, "max (%lld, %lld, %lld) differs", (long long)outer, (long long)n, (long long)inner);
            } else if (kind == DV_CU_REDUCE_MEAN && n == 0) {
                for (int64_t i = 0; i < no; i++) CHECK(isnan(got[i])); /* 0 / 0 */
            } else {
                for (int64_t i = 0; i < no && kind == DV_CU_REDUCE_MEAN; i++) got[i] *= (float)n;
                /* f32 tree sum vs double: error ~ log2(n) ulp of sum |x| ~ sqrt(n) */
                tc_compare_f32(kind ? "mean" : "sum", got, want, no, 2e-6 * sqrt((double)n + 1));
            }
            free(got);
        }
        free(x), free(want), free(mx);
        tc_dfree(dx, tot * 4), tc_dfree(dy, no * 4);
    }
}

TEST(cuda_softmax_and_norms_match_cpu) {
    const int64_t shapes[][2] = {{33, 1}, {64, 77}, {5, 4096}, {3, 11008}};
    for (int c = 0; c < 4; c++) {
        int64_t rows = shapes[c][0], n = shapes[c][1], tot = rows * n;
        float *x = tc_randn(tot, 20 + c, 3.0), *gy = tc_randn(tot, 30 + c, 1.0);
        float *w = tc_randn(n, 40 + c, 1.0), *b = tc_randn(n, 50 + c, 1.0);
        for (int64_t i = 0; i < tot; i++) x[i] += 5.0f; /* a mean far from 0 */
        float *y = malloc(tot * 4), *gx = malloc(tot * 4), *gw = malloc(n * 4), *gb = malloc(n * 4);
        double *mean = malloc(rows * 8), *rstd = malloc(rows * 8);
        float *dx = tc_upload(x, tot * 4), *dgy = tc_upload(gy, tot * 4), *dw = tc_upload(w, n * 4), *db = tc_upload(b, n * 4);
        float *dy = tc_dalloc(tot * 4), *dgx = tc_dalloc(tot * 4), *dgw = tc_dalloc(n * 4), *dgb = tc_dalloc(n * 4);
        double *dmean = tc_dalloc(rows * 8), *drstd = tc_dalloc(rows * 8);
        size_t wb = dv_cu_norm_work_bytes(rows, n);
        void *work = tc_dalloc((int64_t)wb);
        for (int lg = 0; lg < 2; lg++) {
            if (lg) dv_log_softmax_fwd_f32_portable(rows, n, x, y), dv_log_softmax_bwd_f32_portable(rows, n, y, gy, gx);
            else dv_softmax_fwd_f32_portable(rows, n, x, y), dv_softmax_bwd_f32_portable(rows, n, y, gy, gx);
            CK(dv_cu_softmax_fwd_f32(lg, rows, n, dx, dy, tc_stream()));
            float *got = tc_download(dy, tot * 4);
            tc_compare_f32(lg ? "log_softmax" : "softmax", got, y, tot, 1e-5);
            free(got);
            float *dyc = tc_upload(y, tot * 4);
            CK(dv_cu_softmax_bwd_f32(lg, rows, n, dyc, dgy, dgx, tc_stream()));
            got = tc_download(dgx, tot * 4);
            tc_compare_f32(lg ? "log_softmax bwd" : "softmax bwd", got, gx, tot, 1e-5);
            free(got);
            tc_dfree(dyc, tot * 4);
        }
        for (int rms = 0; rms < 2; rms++) {
            const char *nm = rms ? "rms_norm" : "layer_norm";
            if (rms) dv_rmsnorm_fwd_f32_portable(rows, n, x, w, 1e-5, y, rstd);
            else dv_layernorm_fwd_f32_portable(rows, n, x, w, b, 1e-5, y, mean, rstd);
            if (rms) CK(dv_cu_rmsnorm_fwd_f32(rows, n, dx, dw, 1e-5, dy, drstd, tc_stream()));
            else CK(dv_cu_layernorm_fwd_f32(rows, n, dx, dw, db, 1e-5, dy, dmean, drstd, tc_stream()));
            float *got = tc_download(dy, tot * 4);
            tc_compare_f32(nm, got, y, tot, 2e-5);
            free(got);
            double *gr = tc_download(drstd, rows * 8);
            tc_compare_f64(nm, gr, rstd, rows, 1e-5);
            free(gr);
            /* backward from the CPU's saved statistics */
            double *cm = tc_upload(mean, rows * 8), *cr = tc_upload(rstd, rows * 8);
            if (rms) {
                dv_rmsnorm_bwd_f32_portable(rows, n, x, w, rstd, gy, gx, gw);
                CK(dv_cu_rmsnorm_bwd_f32(rows, n, dx, dw, cr, dgy, dgx, dgw, work, tc_stream()));
            } else {
                dv_layernorm_bwd_f32_portable(rows, n, x, w, mean, rstd, gy, gx, gw, gb);
                CK(dv_cu_layernorm_bwd_f32(rows, n, dx, dw, cm, cr, dgy, dgx, dgw, dgb, work, tc_stream()));
                float *g2 = tc_download(dgb, n * 4);
                tc_compare_f32("layer_norm gb", g2, gb, n, 1e-5 * sqrt((double)rows));
                free(g2);
            }
            got = tc_download(dgx, tot * 4);
            tc_compare_f32(nm, got, gx, tot, 5e-5);
            free(got);
            got = tc_download(dgw, n * 4);
            tc_compare_f32(nm, got, gw, n, 1e-5 * sqrt((double)rows));
            free(got);
            tc_dfree(cm, rows * 8), tc_dfree(cr, rows * 8);
        }
        free(x), free(gy), free(w), free(b), free(y), free(gx), free(gw), free(gb), free(mean), free(rstd);
        tc_dfree(dx, tot * 4), tc_dfree(dgy, tot * 4), tc_dfree(dw, n * 4), tc_dfree(db, n * 4), tc_dfree(dy, tot * 4);
        tc_dfree(dgx, tot * 4), tc_dfree(dgw, n * 4), tc_dfree(dgb, n * 4), tc_dfree(dmean, rows * 8);
        tc_dfree(drstd, rows * 8), tc_dfree(work, (int64_t)wb);
    }
    /* no rows: the weight and bias gradients are empty sums, 0 as on the CPU (not the
     * buffers' previous contents) */
    const int64_t n = 37;
    float nan_fill[37], *got;
    for (int i = 0; i < 37; i++) nan_fill[i] = NAN;
    float *dgw = tc_upload(nan_fill, n * 4), *dgb = tc_upload(nan_fill, n * 4), *dw = tc_upload(nan_fill, n * 4);
    void *work = tc_dalloc((int64_t)dv_cu_norm_work_bytes(0, n) + 4);
    CK(dv_cu_layernorm_bwd_f32(0, n, NULL, dw, NULL, NULL, NULL, NULL, dgw, dgb, work, tc_stream()));
    got = tc_download(dgw, n * 4);
    for (int i = 0; i < n; i++) CHECK_MSG(got[i] == 0.0f, "layer_norm gw of 0 rows: [%d] = %g", i, got[i]);
    free(got);
    got = tc_download(dgb, n * 4);
    for (int i = 0; i < n; i++) CHECK_MSG(got[i] == 0.0f, "layer_norm gb of 0 rows: [%d] = %g", i, got[i]);
    free(got);
    tc_dfree(dgw, n * 4), tc_dfree(dgb, n * 4);
    dgw = tc_upload(nan_fill, n * 4);
    CK(dv_cu_rmsnorm_bwd_f32(0, n, NULL, dw, NULL, NULL, NULL, dgw, work, tc_stream()));
    got = tc_download(dgw, n * 4);
    for (int i = 0; i < n; i++) CHECK_MSG(got[i] == 0.0f, "rms_norm gw of 0 rows: [%d] = %g", i, got[i]);
    free(got);
    tc_dfree(dgw, n * 4), tc_dfree(dw, n * 4), tc_dfree(work, (int64_t)dv_cu_norm_work_bytes(0, n) + 4);
}

TEST(cuda_rng_matches_cpu_stream) {
    int64_t n = 1000003;
    for (int kind = 0; kind < 3; kind++)
        for (int f64 = 0; f64 < 2; f64++) {
            dv_rng r = dv_rng_new(1234);
            r.offset = 99;
            dv_tensor *t = dv_empty(f64 ? DV_F64 : DV_F32, &n, 1);
            double a = kind == 2 ? -3 : 0.25, b = kind == 2 ? 70000 : 1.5;
            if (kind == 0) dv_rng_fill_uniform(&r, t, a, b);
            else if (kind == 1) dv_rng_fill_normal(&r, t, a, b);
            else dv_rng_fill_randint(&r, t, (int64_t)a, (int64_t)b);
            int64_t bytes = n * (f64 ? 8 : 4);
            void *d = tc_dalloc(bytes);
            CK(dv_cu_rng_fill(kind, 1234, 99, n, a, b, f64, d, tc_stream()));
            void *got = tc_download(d, bytes);
            double tol = kind == 1 ? (f64 ? 1e-14 : 1e-6) : 0;
            if (f64) tc_compare_f64("rng f64", got, dv_data(t), n, tol);
            else tc_compare_f32("rng f32", got, dv_data(t), n, tol);
            free(got);
            tc_dfree(d, bytes);
            dv_release(t);
        }
}

TEST(cuda_adamw_matches_cpu_bitwise) {
    int64_t n = 100001; /* odd: the float4 body and the scalar tail */
    for (int kind = 0; kind < 3; kind++) {
        float *p = tc_randn(n, 60, 1.0), *g = tc_randn(n, 61, 0.1), *m = tc_randn(n, 62, 0.01), *v = tc_randn(n, 63, 0.01);
        for (int64_t i = 0; i < n; i++) v[i] = v[i] * v[i];
        float *dp = tc_upload(p, n * 4), *dg = tc_upload(g, n * 4), *dm = tc_upload(m, n * 4), *dvv = tc_upload(v, n * 4);
        uint16_t *copy = malloc(n * 2), *dcopy = tc_dalloc(n * 2);
        for (int t = 1; t <= 3; t++) {
            dv_adamw_coefs c = dv_adamw_coefs_at(1e-3, 0.9, 0.999, 1e-8, 0.01, t);
            dv_adamw_f32_portable(n, p, g, m, v, &c, kind, copy);
            CK(dv_cu_adamw_f32(n, dp, dg, dm, dvv, &c, kind, dcopy, tc_stream()));
        }
        float *gp = tc_download(dp, n * 4), *gm = tc_download(dm, n * 4), *gv = tc_download(dvv, n * 4);
        CHECK_MSG(memcmp(gp, p, n * 4) == 0 && memcmp(gm, m, n * 4) == 0 && memcmp(gv, v, n * 4) == 0,
                  "adamw (copy %d): p/m/v not bit-identical (max rel p %.3g)", kind, tc_compare_f32("adamw p", gp, p, n, 1e-6));
        if (kind) {
            uint16_t *gc = tc_download(dcopy, n * 2);
            CHECK_MSG(memcmp(gc, copy, n * 2) == 0, "adamw: the %s copy differs", kind == 1 ? "f16" : "bf16");
            free(gc);
        }
        free(gp), free(gm), free(gv), free(p), free(g), free(m), free(v), free(copy);
        tc_dfree(dp, n * 4), tc_dfree(dg, n * 4), tc_dfree(dm, n * 4), tc_dfree(dvv, n * 4), tc_dfree(dcopy, n * 2);
    }
}
#endif
