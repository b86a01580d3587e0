/* tests/cuda/test_cuda_matmul.c — the tensor-core GEMM (all layouts, batched, skinny, f32 and
 * half outputs, beta, unaligned operands) and flash attention forward (head dims 32-128,
 * causal with offsets, GQA, key padding, rows that see no key) and backward (also with dropout,
 * the additive bias and its gradient) against double / portable CPU references computed from
 * the same half-precision inputs. Needs a GPU (build/test-cuda).
 * Tolerance of an f32 GEMM output: 3e-5 of sum_k |a b| (f32 accumulation over K through the
 * tensor cores' own summation order) plus, for a half output, its rounding (2^-8 bf16, 2^-11
 * f16). Attention: 2e-2 (bf16) / 4e-3 (f16) of max |v|, from P rounded to the input dtype
 * before P V. */
#ifdef DV_HAVE_CUDA
#include "tests/cuda/cuda_util.h"

#include "kernels/attention.h"
#include "kernels/cuda/kernels.h"
#include "kernels/half.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CK(call) dv_cuda_check((call), #call)

/* the file header's tolerance: 3e-5 of sum |a b| (+ 1e-6), plus the half output's rounding */
static double tc_tol(double want, double mag, int64_t K, int bf16, int c_f32) {
    (void)K;
    return 3e-5 * mag + 1e-6 + (c_f32 ? 0 : fabs(want) * (bf16 ? 1.0 / 256 : 1.0 / 2048));
}

/* one GEMM case through dv_cu_gemm against a double reference; returns the number of bad elements */
static int gemm_case(int bf16, int ta, int tb, int64_t M, int64_t N, int64_t K, int64_t batch, int pad, int c_f32,
                     float alpha, float beta, uint64_t seed) {
    return tc_half_gemm_case("gemm", dv_cu_gemm, tc_tol, bf16, ta, tb, M, N, K, batch, pad, c_f32, alpha, beta, seed);
}

TEST(cuda_gemm_tensor_cores_all_layouts) {
    int bad = 0;
    for (int bf16 = 0; bf16 < 2; bf16++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                bad += gemm_case(bf16, ta, tb, 130, 257, 100, 1, 0, 1, 1.0f, 0.0f, 100 + bf16);  /* edges in M, N, K */
                bad += gemm_case(bf16, ta, tb, 256, 128, 64, 2, 8, 0, 0.5f, 1.0f, 200 + bf16);   /* aligned, batched, beta */
                bad += gemm_case(bf16, ta, tb, 33, 45, 37, 3, 1, 1, 1.0f, -0.5f, 300 + bf16);    /* unaligned */
            }
    CHECK(bad == 0);
}

TEST(cuda_gemm_skinny_path) {
    int bad = 0;
    for (int bf16 = 0; bf16 < 2; bf16++)
        for (int64_t M = 1; M <= 16; M += 5) {
            bad += gemm_case(bf16, 0, 1, M, 300, 1100, 1, 0, 1, 1.0f, 0.0f, 400 + M);  /* K over two chunks */
            bad += gemm_case(bf16, 0, 1, M, 17, 77, 2, 3, 0, 2.0f, 1.0f, 500 + M);     /* unaligned, half out */
        }
    CHECK(bad == 0);
}

TEST(cuda_sgemm_f32_all_layouts) {
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int64_t M = 70, N = 131, K = 45, lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
            float *A = tc_randn((ta ? K : M) * lda, 900 + ta, 1.0), *B = tc_randn((tb ? N : K) * ldb, 910 + tb, 1.0);
            float *C = tc_randn(M * ldc, 920, 1.0), *want = malloc(M * ldc * 4);
            for (int64_t m = 0; m < M; m++)
                for (int64_t n = 0; n < N; n++) {
                    double s = 0;
                    for (int64_t k = 0; k < K; k++)
                        s += (double)(ta ? A[k * lda + m] : A[m * lda + k]) * (tb ? B[n * ldb + k] : B[k * ldb + n]);
                    want[m * ldc + n] = (float)(1.5 * s - 0.5 * C[m * ldc + n]);
                }
            float *dA = tc_upload(A, (ta ? K : M) * lda * 4), *dB = tc_upload(B, (tb ? N : K) * ldb * 4);
            float *dC = tc_upload(C, M * ldc * 4);
            CK(dv_cu_gemm_f32(ta, tb, M, N, K, 1.5f, dA, lda, dB, ldb, -0.5f, dC, ldc, tc_stream()));
            float *got = tc_download(dC, M * ldc * 4);
            for (int64_t m = 0; m < M; m++) tc_compare_f32("sgemm", got + m * ldc, want + m * ldc, N, 1e-5);
            free(A), free(B), free(C), free(want), free(got);
            tc_dfree(dA, (ta ? K : M) * lda * 4), tc_dfree(dB, (tb ? N : K) * ldb * 4), tc_dfree(dC, M * ldc * 4);
        }
}

TEST(cuda_gemm_degenerate_sizes) {
    CHECK(dv_cu_gemm(DV_CU_BF16, 0, 0, 0, 5, 5, 1, NULL, 5, 0, NULL, 5, 0, 0, NULL, 5, 0, true, 1, tc_stream()) == 0);
    CHECK(gemm_case(1, 0, 0, 20, 30, 0, 1, 0, 1, 1.0f, 0.5f, 600) == 0); /* K = 0: C = beta C */
}

/* one forward case against the portable kernel on the same half-rounded inputs; with dropout
 * (the CPU's mask) and an f32 bias: bias_kind 1 a (Tk) row broadcast over b, h, i, 2 a
 * (B, 1, Tq, Tk) one broadcast over the heads, with -inf entries */
static int attn_case(int bf16, int64_t B, int64_t Hq, int64_t Hkv, int64_t Tq, int64_t Tk, int64_t D, bool causal,
                     int64_t off, bool mask, double dropout, int bias_kind, uint64_t seed) {
    int64_t nq = B * Hq * Tq * D, nk = B * Hkv * Tk * D;
    uint16_t *q = tc_rand_half(nq, seed, bf16), *k = tc_rand_half(nk, seed + 1, bf16), *v = tc_rand_half(nk, seed + 2, bf16);
    float *qf = malloc(nq * 4), *kf = malloc(nk * 4), *vf = malloc(nk * 4), *o = malloc(nq * 4), *lse = malloc(B * Hq * Tq * 4);
    for (int64_t i = 0; i < nq; i++) qf[i] = (float)tc_half_val(q[i], bf16);
    for (int64_t i = 0; i < nk; i++) kf[i] = (float)tc_half_val(k[i], bf16), vf[i] = (float)tc_half_val(v[i], bf16);
    uint8_t *keep = NULL, *dkeep = NULL;
    if (mask) {
        keep = malloc(B * Tk);
        for (int64_t i = 0; i < B * Tk; i++) keep[i] = (i * 7919) % 5 != 0;
        for (int64_t j = 0; j < Tk; j++) keep[j] = 0; /* batch 0 sees nothing: O = 0, lse = -inf */
        dkeep = tc_upload(keep, B * Tk);
    }
    dv_attn_geom g = {.B = B, .Hq = Hq, .Hkv = Hkv, .Tq = Tq, .Tk = Tk, .D = D, .Dv = D,
                      .q_stride = {Hq * Tq * D, Tq * D, D}, .k_stride = {Hkv * Tk * D, Tk * D, D},
                      .v_stride = {Hkv * Tk * D, Tk * D, D}, .scale = 1.0 / sqrt((double)D), .causal = causal,
                      .causal_offset = off, .keep = keep, .keep_stride = {Tk, 1}, .dbias_rows = 1, .nthreads = 1,
                      .dropout = dropout, .dropout_seed = seed * 0xD1B54A32D192ED03ull};
    const int64_t nb = bias_kind == 1 ? Tk : bias_kind == 2 ? B * Tq * Tk : 0;
    float *bias = nb ? tc_randn(nb, seed + 3, 1.0) : NULL;
    for (int64_t i = 2; i < nb; i += 11) bias[i] = -INFINITY;
    if (bias_kind == 1) memcpy(g.bias_stride, (int64_t[]){0, 0, 0, 1}, sizeof g.bias_stride);
    if (bias_kind == 2) memcpy(g.bias_stride, (int64_t[]){Tq * Tk, 0, Tk, 1}, sizeof g.bias_stride);
    void *work = malloc(dv_attention_work_bytes_portable(&g, false, 4) + 64);
    dv_attention_fwd_f32_portable(&g, qf, kf, vf, bias, o, lse, work);
    free(work);
    g.keep = dkeep;
    void *dq = tc_upload(q, nq * 2), *dk = tc_upload(k, nk * 2), *dv = tc_upload(v, nk * 2);
    float *dbias = nb ? tc_upload(bias, nb * 4) : NULL;
    float *dout = tc_dalloc(nq * 4), *dlse = tc_dalloc(B * Hq * Tq * 4);
    CK(dv_cu_attention_fwd(bf16 ? DV_CU_BF16 : DV_CU_F16, &g, dq, dk, dv, dbias, dout, dlse, tc_stream()));
    float *go = tc_download(dout, nq * 4);
    float *gl = tc_download(dlse, B * Hq * Tq * 4);
    int bad = 0;
    double tol = bf16 ? 2e-2 : 4e-3;
    for (int64_t i = 0; i < nq; i++) {
        double d = fabs(go[i] - o[i]);
        if (!(d <= tol * 4)) { /* |v| <~ 4 for N(0,1) draws */
            if (bad < 3)
                dv_test_fail(__FILE__, __LINE__,
                             "attention %s D %lld causal %d off %lld mask %d dropout %.2f bias %d: o[%lld] %.5g vs %.5g",
                             bf16 ? "bf16" : "f16", (long long)D, causal, (long long)off, mask, dropout, bias_kind,
                             (long long)i, go[i], o[i]);
            bad++;
        }
    }
    for (int64_t i = 0; i < B * Hq * Tq; i++) {
        bool both_inf = isinf(gl[i]) && isinf(lse[i]) && gl[i] < 0 && lse[i] < 0;
        if (!both_inf && !(fabs(gl[i] - lse[i]) <= 1e-2 * fmax(1.0, fabs(lse[i])))) {
            if (bad < 3) dv_test_fail(__FILE__, __LINE__, "attention lse[%lld] %.6g vs %.6g", (long long)i, gl[i], lse[i]);
            bad++;
        }
    }
    free(q), free(k), free(v), free(qf), free(kf), free(vf), free(o), free(lse), free(go), free(gl), free(keep), free(bias);
    if (nb) tc_dfree(dbias, nb * 4);
    tc_dfree(dq, nq * 2), tc_dfree(dk, nk * 2), tc_dfree(dv, nk * 2), tc_dfree(dout, nq * 4), tc_dfree(dlse, B * Hq * Tq * 4);
    if (dkeep) tc_dfree(dkeep, B * Tk);
    return bad;
}

TEST(cuda_flash_attention_fwd_matches_cpu) {
    int bad = 0;
    const int64_t dims[] = {32, 40, 64, 80, 128};
    for (int bf16 = 0; bf16 < 2; bf16++)
        for (int di = 0; di < 5; di++) {
            int64_t D = dims[di];
            bad += attn_case(bf16, 2, 4, 2, 70, 133, D, false, 0, false, 0, 0, 700 + di);   /* cross, GQA */
            bad += attn_case(bf16, 1, 2, 2, 129, 129, D, true, 0, false, 0, 0, 710 + di);   /* causal */
            bad += attn_case(bf16, 2, 2, 1, 5, 200, D, true, 195, true, 0, 0, 720 + di);    /* decode step, MQA, mask */
            bad += attn_case(bf16, 1, 1, 1, 64, 64, D, true, -70, false, 0, 0, 730 + di);   /* rows that see no key */
        }
    for (int bf16 = 0; bf16 < 2; bf16++) { /* dropout and the bias, f16 and bf16 */
        bad += attn_case(bf16, 2, 4, 2, 70, 133, 32, false, 0, true, 0.1, 0, 740);      /* dropout, GQA, mask */
        bad += attn_case(bf16, 1, 2, 2, 80, 80, 64, true, 0, false, 0.3, 1, 750);       /* dropout, (Tk) bias */
        bad += attn_case(bf16, 2, 4, 4, 33, 70, 16, false, 0, false, 0, 2, 760);        /* (B, 1, Tq, Tk) bias */
        bad += attn_case(bf16, 2, 2, 1, 5, 90, 128, true, 85, true, 0.2, 2, 770);       /* all of it, decode */
    }
    CHECK(bad == 0);
    dv_attn_geom g = {.B = 1, .Hq = 1, .Hkv = 1, .Tq = 1, .Tk = 1, .D = 48, .Dv = 32};
    CHECK(dv_cu_attention_fwd(DV_CU_BF16, &g, NULL, NULL, NULL, NULL, NULL, NULL, tc_stream()) != 0); /* Dv != D */
}

/* the backward against kernels/attention.h's portable f32 backward on the same (half-rounded)
 * q, k, v and the same f32 o, lse and dO, both implementations (kernels/cuda/attention_bwd.cu):
 *   CUDA cores    everything after the inputs is f32 on both sides, so the gradients agree to
 *                 f32 summation-order noise: 1e-4 of the largest
 *   tensor cores  dO, P and dS rounded to the inputs' dtype for the mma (unit roundoff u = 2^-8
 *                 bf16, 2^-11 f16), f32 accumulation. Each gradient is a sum of products of
 *                 two operands each off by at most u relative (dV: (Z P)^T dO; dK: dS^T Q with
 *                 dS itself from the rounded dO; dQ: dS K), so an element moves by about
 *                 2u sum|terms|, which for these random inputs is a few u of the largest
 *                 element; Dr uses the same rounded dO, so no cancellation error is added.
 *                 Tolerance 1.5e-2 (bf16, ~4u) / 2e-3 (f16, ~4u) of the largest, against the
 *                 CPU and against the CUDA cores. Under `make test-cuda-sim` the largest error
 *                 of any case is 4.9e-3 (bf16) / 5.1e-4 (f16) of the largest element, about u:
 *                 the tolerance leaves 3-4x for the GPU's exp2f and FMA contraction
 *                 (DV_TEST_ATTN_ERR=1 prints every case's error).
 * With dropout (the CPU's mask, regenerated on the GPU) and the additive bias: bias_kind 1 a
 * (Tk) row broadcast over b, h, i (dbias rows summed), 2 a full (B, Hq, Tq, Tk) one, with -inf
 * entries. The outputs start as NaN, so an element a kernel forgets to write fails. */
static const double attn_tol_cores = 1e-4, attn_tol_tc[2] = {2e-3, 1.5e-2}; /* [bf16] */

/* bad elements of got against want, tol relative to max(1e-3, max |want|) */
static int attn_cmp(const char *what, const char *name, const float *got, const float *want, int64_t n, double tol,
                    int *bad) {
    double scale = 1e-3, worst = 0;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
    int nbad = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (!(e <= tol * scale)) {
            if (*bad + nbad < 3)
                dv_test_fail(__FILE__, __LINE__, "%s: %s[%lld] %.6g vs %.6g (tol %.1e of %.3g)", what, name,
                             (long long)i, got[i], want[i], tol, scale);
            nbad++;
        }
        if (e > worst || e != e) worst = e;
    }
    if (getenv("DV_TEST_ATTN_ERR")) printf("  %-60s %-5s max err %.3e of %.3g = %.2e\n", what, name, worst, scale, worst / scale);
    *bad += nbad;
    return nbad;
}

static int attn_bwd_case(int bf16, int64_t B, int64_t Hq, int64_t Hkv, int64_t Tq, int64_t Tk, int64_t D, bool causal,
                         int64_t off, bool mask, double dropout, int bias_kind, uint64_t seed) {
    int64_t nq = B * Hq * Tq * D, nk = B * Hkv * Tk * D, nr = B * Hq * Tq;
    uint16_t *q = tc_rand_half(nq, seed, bf16), *k = tc_rand_half(nk, seed + 1, bf16), *v = tc_rand_half(nk, seed + 2, bf16);
    float *df = tc_randn(nq, seed + 3, 1.0);
    float *qf = malloc(nq * 4), *kf = malloc(nk * 4), *vf = malloc(nk * 4), *o = malloc(nq * 4);
    float *lse = malloc(nr * 4), *dq = malloc(nq * 4), *dk = malloc(nk * 4), *dv = malloc(nk * 4);
    for (int64_t i = 0; i < nq; i++) qf[i] = (float)tc_half_val(q[i], bf16);
    for (int64_t i = 0; i < nk; i++) kf[i] = (float)tc_half_val(k[i], bf16), vf[i] = (float)tc_half_val(v[i], bf16);
    uint8_t *keep = NULL, *dkeep = NULL;
    if (mask) {
        keep = malloc(B * Tk);
        for (int64_t i = 0; i < B * Tk; i++) keep[i] = (i * 7919) % 3 != 0;
        dkeep = tc_upload(keep, B * Tk);
    }
    const int64_t nb = bias_kind == 1 ? Tk : bias_kind == 2 ? nr * Tk : 0;
    const int64_t dbr = bias_kind == 2 ? Tq : 1, ndb = nr / Tq * dbr * Tk;
    float *bias = nb ? tc_randn(nb, seed + 4, 1.0) : NULL, *db = nb ? malloc(ndb * 4) : NULL;
    for (int64_t i = 5; i < nb; i += 13) bias[i] = -INFINITY;
    dv_attn_geom g = {.B = B, .Hq = Hq, .Hkv = Hkv, .Tq = Tq, .Tk = Tk, .D = D, .Dv = D,
                      .q_stride = {Hq * Tq * D, Tq * D, D}, .k_stride = {Hkv * Tk * D, Tk * D, D},
                      .v_stride = {Hkv * Tk * D, Tk * D, D}, .scale = 1.0 / sqrt((double)D), .causal = causal,
                      .causal_offset = off, .keep = keep, .keep_stride = {Tk, 1}, .dbias_rows = dbr, .nthreads = 1,
                      .dropout = dropout, .dropout_seed = seed * 0x9E3779B97F4A7C15ull};
    if (bias_kind == 2) memcpy(g.bias_stride, (int64_t[]){Hq * Tq * Tk, Tq * Tk, Tk, 1}, sizeof g.bias_stride);
    if (bias_kind == 1) memcpy(g.bias_stride, (int64_t[]){0, 0, 0, 1}, sizeof g.bias_stride);
    void *work = malloc(dv_attention_work_bytes_portable(&g, true, 4) + 64);
    dv_attention_fwd_f32_portable(&g, qf, kf, vf, bias, o, lse, work);
    dv_attention_bwd_f32_portable(&g, qf, kf, vf, bias, o, lse, df, dq, dk, dv, db, work);
    free(work);
    g.keep = dkeep;
    void *dq_ = tc_upload(q, nq * 2), *dk_ = tc_upload(k, nk * 2), *dv_ = tc_upload(v, nk * 2), *do_ = tc_upload(df, nq * 4);
    void *dof = tc_upload(o, nq * 4), *dl = tc_upload(lse, nr * 4), *dbias = nb ? tc_upload(bias, nb * 4) : NULL;
    const int64_t nmax = nq > nk ? (nq > ndb ? nq : ndb) : (nk > ndb ? nk : ndb);
    float *nans = malloc(nmax * 4);
    for (int64_t i = 0; i < nmax; i++) nans[i] = NAN;
    int64_t wb = (int64_t)dv_cu_attention_bwd_work_bytes(&g);
    void *dwork = tc_dalloc(wb);
    char what[160];
    snprintf(what, sizeof what, "attention bwd %s B %lld Hq %lld Hkv %lld Tq %lld Tk %lld D %lld causal %d off %lld "
             "mask %d dropout %.2f bias %d", bf16 ? "bf16" : "f16", (long long)B, (long long)Hq, (long long)Hkv,
             (long long)Tq, (long long)Tk, (long long)D, causal, (long long)off, mask, dropout, bias_kind);
    const int64_t cnt[4] = {nq, nk, nk, nb ? ndb : 0};
    const char *names[4] = {"dq", "dk", "dv", "dbias"};
    float *res[2][4]; /* [tensor cores][dq dk dv dbias], downloaded */
    for (int tc = 0; tc < 2; tc++) {
        float *gq = tc_upload(nans, nq * 4), *gk = tc_upload(nans, nk * 4), *gv = tc_upload(nans, nk * 4);
        float *gb = nb ? tc_upload(nans, ndb * 4) : NULL;
        CK(dv_cu_attention_bwd_with(tc ? DV_CU_ATTN_BWD_TC : DV_CU_ATTN_BWD_CORES, bf16 ? DV_CU_BF16 : DV_CU_F16, &g,
                                    dq_, dk_, dv_, dbias, dof, dl, do_, D, gq, gk, gv, gb, dwork, tc_stream()));
        res[tc][0] = tc_download(gq, nq * 4), res[tc][1] = tc_download(gk, nk * 4), res[tc][2] = tc_download(gv, nk * 4);
        res[tc][3] = nb ? tc_download(gb, ndb * 4) : NULL;
        tc_dfree(gq, nq * 4), tc_dfree(gk, nk * 4), tc_dfree(gv, nk * 4);
        if (nb) tc_dfree(gb, ndb * 4);
    }
    int bad = 0;
    const float *want[4] = {dq, dk, dv, db};
    char w2[200];
    for (int t = 0; t < 4; t++) {
        if (!cnt[t]) continue;
        snprintf(w2, sizeof w2, "%s, cuda cores vs cpu", what);
        attn_cmp(w2, names[t], res[0][t], want[t], cnt[t], attn_tol_cores, &bad);
        snprintf(w2, sizeof w2, "%s, tensor cores vs cpu", what);
        attn_cmp(w2, names[t], res[1][t], want[t], cnt[t], attn_tol_tc[bf16], &bad);
        snprintf(w2, sizeof w2, "%s, tensor cores vs cuda cores", what);
        attn_cmp(w2, names[t], res[1][t], res[0][t], cnt[t], attn_tol_tc[bf16], &bad);
    }
    for (int tc = 0; tc < 2; tc++)
        for (int t = 0; t < 4; t++) free(res[tc][t]);
    free(q), free(k), free(v), free(df), free(qf), free(kf), free(vf), free(o), free(lse), free(nans);
    free(dq), free(dk), free(dv), free(keep), free(bias), free(db);
    tc_dfree(dq_, nq * 2), tc_dfree(dk_, nk * 2), tc_dfree(dv_, nk * 2), tc_dfree(do_, nq * 4), tc_dfree(dof, nq * 4);
    tc_dfree(dl, nr * 4), tc_dfree(dwork, wb);
    if (nb) tc_dfree(dbias, nb * 4);
    if (dkeep) tc_dfree(dkeep, B * Tk);
    return bad;
}

/* each case: the CUDA cores and the tensor cores against the CPU, and against each other */
TEST(cuda_attention_bwd_matches_cpu) {
    int bad = 0;
    for (int bf16 = 0; bf16 < 2; bf16++) {
        bad += attn_bwd_case(bf16, 2, 4, 2, 37, 50, 32, false, 0, true, 0, 0, 800);   /* cross, GQA, mask */
        bad += attn_bwd_case(bf16, 1, 2, 2, 45, 45, 64, true, 0, false, 0, 0, 810);   /* causal */
        bad += attn_bwd_case(bf16, 1, 2, 1, 9, 40, 128, true, 31, false, 0, 0, 820);  /* decode offset, MQA */
        bad += attn_bwd_case(bf16, 1, 1, 1, 20, 24, 40, true, -8, false, 0, 0, 830);  /* rows that see nothing */
    }
    /* dropout, the bias and its gradient (bf16) */
    bad += attn_bwd_case(1, 2, 4, 2, 37, 50, 32, false, 0, true, 0.2, 0, 840);    /* dropout, GQA, mask */
    bad += attn_bwd_case(1, 1, 2, 2, 45, 45, 16, true, 0, false, 0.3, 0, 850);    /* dropout, causal */
    bad += attn_bwd_case(1, 2, 2, 1, 33, 21, 24, false, 0, false, 0, 1, 860);     /* (Tk) bias, rows summed */
    bad += attn_bwd_case(1, 2, 2, 2, 19, 19, 8, true, 0, true, 0, 2, 870);        /* full bias, causal */
    bad += attn_bwd_case(1, 1, 4, 2, 40, 35, 32, true, 3, false, 0.1, 2, 880);    /* all of it */
    CHECK(bad == 0);
}

/* the tensor-core backward's tiles of 64: ragged Tq, Tk (not multiples of 64, several tiles,
 * so a key tile walks query tiles and the causal start tile is not 0), Tq != Tk with a causal
 * offset of either sign, 4 query heads per key head (dK, dV summed over them in one block),
 * head dims 40 (fragments padded to 48) and 128 (8 fragments of 16), and key tiles past every
 * query's causal horizon */
TEST(cuda_attention_bwd_tensor_cores_tiles) {
    int bad = 0;
    bad += attn_bwd_case(1, 1, 4, 1, 150, 93, 40, false, 0, true, 0, 0, 900);     /* ragged, Hq/Hkv 4, D 40 */
    bad += attn_bwd_case(1, 1, 2, 2, 130, 200, 64, true, 70, false, 0, 0, 910);   /* Tq < Tk, causal offset 70 */
    bad += attn_bwd_case(1, 1, 4, 1, 200, 77, 40, true, -60, false, 0.2, 1, 920); /* Tq > Tk, offset -60, dropout, (Tk) bias */
    bad += attn_bwd_case(1, 1, 4, 1, 70, 129, 128, true, 59, true, 0, 2, 930);    /* D 128, full bias, mask */
    bad += attn_bwd_case(0, 1, 4, 1, 97, 66, 128, false, 0, false, 0.1, 0, 940);  /* f16, D 128, dropout */
    bad += attn_bwd_case(0, 1, 4, 1, 81, 130, 40, true, 49, true, 0, 0, 950);     /* f16, D 40, causal */
    /* key tiles that no query sees (k0 = 128 > Tq - 1 + offset): their dK, dV, dbias are 0 */
    bad += attn_bwd_case(1, 1, 2, 1, 20, 150, 32, true, 10, false, 0, 1, 960);   /* (Tk) bias, rows summed */
    bad += attn_bwd_case(1, 1, 2, 1, 20, 150, 32, true, 10, false, 0, 2, 970);   /* full bias */
    CHECK(bad == 0);
}

/* dv_cu_attention_bwd's choice: the tensor cores, or the CUDA cores when the environment has
 * DV_CUDA_ATTN_BWD=cores — bit for bit the kernel dv_cu_attention_bwd_with names, and the two
 * kernels differ (their roundings do) */
TEST(cuda_attention_bwd_env_picks_the_kernel) {
    const int64_t H = 2, T = 70, D = 32, n = H * T * D, nr = H * T;
    uint16_t *q = tc_rand_half(n, 960, 1), *k = tc_rand_half(n, 961, 1), *v = tc_rand_half(n, 962, 1);
    float *o = tc_randn(n, 963, 1.0), *dout = tc_randn(n, 964, 1.0), *lse = tc_randn(nr, 965, 1.0);
    for (int64_t i = 0; i < nr; i++) lse[i] += 4.0f;
    dv_attn_geom g = {.B = 1, .Hq = H, .Hkv = H, .Tq = T, .Tk = T, .D = D, .Dv = D, .q_stride = {n, T * D, D},
                      .k_stride = {n, T * D, D}, .v_stride = {n, T * D, D}, .scale = 1.0 / sqrt((double)D),
                      .causal = true, .dbias_rows = 1};
    void *dq_ = tc_upload(q, n * 2), *dk_ = tc_upload(k, n * 2), *dv_ = tc_upload(v, n * 2);
    void *dof = tc_upload(o, n * 4), *ddo = tc_upload(dout, n * 4), *dl = tc_upload(lse, nr * 4);
    int64_t wb = (int64_t)dv_cu_attention_bwd_work_bytes(&g);
    void *dwork = tc_dalloc(wb);
    char *saved = getenv("DV_CUDA_ATTN_BWD") ? strdup(getenv("DV_CUDA_ATTN_BWD")) : NULL;
    float *res[4]; /* named tensor cores, named CUDA cores, default, default with DV_CUDA_ATTN_BWD=cores */
    for (int c = 0; c < 4; c++) {
        float *gq = tc_dalloc(n * 4);
        if (c == 2) unsetenv("DV_CUDA_ATTN_BWD");
        if (c == 3) setenv("DV_CUDA_ATTN_BWD", "cores", 1);
        if (c < 2)
            CK(dv_cu_attention_bwd_with(c == 0 ? DV_CU_ATTN_BWD_TC : DV_CU_ATTN_BWD_CORES, DV_CU_BF16, &g, dq_, dk_, dv_,
                                        NULL, dof, dl, ddo, D, gq, NULL, NULL, NULL, dwork, tc_stream()));
        else
            CK(dv_cu_attention_bwd(DV_CU_BF16, &g, dq_, dk_, dv_, NULL, dof, dl, ddo, D, gq, NULL, NULL, NULL, dwork,
                                   tc_stream()));
        res[c] = tc_download(gq, n * 4);
        tc_dfree(gq, n * 4);
    }
    if (saved) setenv("DV_CUDA_ATTN_BWD", saved, 1);
    else unsetenv("DV_CUDA_ATTN_BWD");
    CHECK_MSG(memcmp(res[2], res[0], n * 4) == 0, "the default backward is not the tensor-core one");
    CHECK_MSG(memcmp(res[3], res[1], n * 4) == 0, "DV_CUDA_ATTN_BWD=cores does not give the CUDA-core backward");
    CHECK_MSG(memcmp(res[0], res[1], n * 4) != 0, "the two backward kernels agree bit for bit: one is not run");
    for (int c = 0; c < 4; c++) free(res[c]);
    free(q), free(k), free(v), free(o), free(dout), free(lse), free(saved);
    tc_dfree(dq_, n * 2), tc_dfree(dk_, n * 2), tc_dfree(dv_, n * 2), tc_dfree(dof, n * 4), tc_dfree(ddo, n * 4);
    tc_dfree(dl, nr * 4), tc_dfree(dwork, wb);
}

/* empty geometries: nothing launched (a 0-block grid is a launch error that would stick to the
 * next call), and with no keys dq is zero */
TEST(cuda_attention_degenerate_sizes) {
    dv_attn_geom g = {.B = 2, .Hq = 0, .Hkv = 1, .Tq = 5, .Tk = 7, .D = 32, .Dv = 32, .scale = 1.0};
    CHECK(dv_cu_attention_fwd(DV_CU_BF16, &g, NULL, NULL, NULL, NULL, NULL, NULL, tc_stream()) == 0);
    CHECK(dv_cu_attention_bwd(DV_CU_BF16, &g, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 32, NULL, NULL, NULL, NULL,
                              NULL, tc_stream()) == 0);
    g.Hq = 2, g.Tq = 0;
    CHECK(dv_cu_attention_fwd(DV_CU_BF16, &g, NULL, NULL, NULL, NULL, NULL, NULL, tc_stream()) == 0);
    g.Tq = 5, g.Tk = 0;
    const int64_t nq = 2 * 2 * 5 * 32;
    float *junk = malloc(nq * 4);
    for (int64_t i = 0; i < nq; i++) junk[i] = NAN;
    float *dq = tc_upload(junk, nq * 4);
    CHECK(dv_cu_attention_bwd(DV_CU_BF16, &g, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 32, dq, NULL, NULL, NULL,
                              NULL, tc_stream()) == 0);
    float *got = tc_download(dq, nq * 4);
    int nonzero = 0;
    for (int64_t i = 0; i < nq; i++) nonzero += got[i] != 0.0f;
    CHECK_MSG(nonzero == 0, "attention backward without keys: %d of %lld dq elements are not 0", nonzero, (long long)nq);
    free(junk), free(got);
    tc_dfree(dq, nq * 4);
}
#endif
