/* tests/cuda/cuda_util.c — see cuda_util.h; and the skip: build/test-cuda without a usable
 * device prints one line and exits 0 before any test runs. */
#include "tests/cuda/cuda_util.h"
#include "kernels/half.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* runs before main (after the TEST registrations, which need nothing) */
__attribute__((constructor(65535))) static void tc_skip_without_device(void) {
    if (!dv_cuda_available()) {
        printf("test-cuda: SKIPPED, no GPU tests run — %s\n", dv_cuda_unavailable_reason());
        fflush(stdout);
        exit(0);
    }
    dv_cuda_info info;
    if (dv_cuda_device_info(0, &info) == 0)
        printf("test-cuda: cuda:0 %s, sm_%d%d, %d SMs, %.1f GiB (%.1f free)\n", info.name, info.major, info.minor,
               info.sm_count, info.total_bytes / 1073741824.0, info.free_bytes / 1073741824.0);
}

void *tc_dalloc(int64_t nbytes) { return dv_cuda_alloc(0, nbytes); }
void tc_dfree(void *d, int64_t nbytes) { dv_cuda_free(0, d, nbytes); }
void *tc_stream(void) { return dv_cuda_stream(0); }

void *tc_upload(const void *host, int64_t nbytes) {
    void *d = dv_cuda_alloc(0, nbytes);
    dv_cuda_copy_h2d(0, d, host, nbytes);
    return d;
}

void *tc_download(const void *dev, int64_t nbytes) {
    void *h = malloc((size_t)(nbytes ? nbytes : 1));
    dv_cuda_synchronize(0);
    dv_cuda_copy_d2h(0, h, dev, nbytes);
    return h;
}

float *tc_randn(int64_t n, uint64_t seed, double s) {
    dv_rng r = dv_rng_new(seed);
    dv_tensor *t = dv_empty(DV_F32, &n, 1);
    dv_rng_fill_normal(&r, t, 0.0, s);
    float *out = malloc((size_t)(n ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) out[i] = ((float *)dv_data(t))[i];
    dv_release(t);
    return out;
}

double tc_compare_f32(const char *what, const float *got, const float *want, int64_t n, double tol) {
    double worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]) / fmax(1.0, fabs((double)want[i]));
        if (isnan(got[i]) != isnan(want[i])) d = INFINITY;
        if (d > worst) worst = d, at = i;
    }
    if (!(worst <= tol))
        dv_test_fail(__FILE__, __LINE__, "%s: max rel diff %.3g > %.3g at %lld (gpu %.9g, cpu %.9g)", what, worst, tol,
                     (long long)at, got[at], want[at]);
    return worst;
}

double tc_compare_f64(const char *what, const double *got, const double *want, int64_t n, double tol) {
    double worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(got[i] - want[i]) / fmax(1.0, fabs(want[i]));
        if (isnan(got[i]) != isnan(want[i])) d = INFINITY;
        if (d > worst) worst = d, at = i;
    }
    if (!(worst <= tol))
        dv_test_fail(__FILE__, __LINE__, "%s: max rel diff %.3g > %.3g at %lld (gpu %.17g, cpu %.17g)", what, worst, tol,
                     (long long)at, got[at], want[at]);
    return worst;
}

void tc_graph_parity(const char *what, tc_graph_fn f, dv_tensor **cpu_in, int n, double tol) {
    dv_tensor *dev_in[8];
    CHECK_MSG(n <= 8, "%s: at most 8 inputs", what);
    for (int i = 0; i < n; i++) {
        dev_in[i] = dv_tensor_to(cpu_in[i], dv_device_cuda(0));
        dv_set_requires_grad(cpu_in[i], true);
        dv_set_requires_grad(dev_in[i], true);
    }
    dv_tensor *yc = f(cpu_in), *yd = f(dev_in);
    CHECK_MSG(yd->device.type == DV_CUDA, "%s: output not on the device", what);
    dv_rng r = dv_rng_new(77);
    dv_tensor *gout = dv_randn(&r, DV_F32, yc->shape, yc->ndim);
    dv_tensor *goutd = dv_tensor_to(gout, dv_device_cuda(0));
    dv_backward_with(yc, gout);
    dv_backward_with(yd, goutd);
    dv_tensor *yb = dv_tensor_to(yd, DV_DEVICE_CPU), *ycc = dv_contiguous(yc);
    char name[160];
    snprintf(name, sizeof name, "%s (output)", what);
    tc_compare_f32(name, dv_data(yb), dv_data(ycc), dv_numel(yc), tol);
    for (int i = 0; i < n; i++) {
        CHECK_MSG((dev_in[i]->grad != NULL) == (cpu_in[i]->grad != NULL), "%s: input %d has a gradient on one side only",
                  what, i);
        if (!dev_in[i]->grad || !cpu_in[i]->grad) continue;
        CHECK_MSG(dev_in[i]->grad->device.type == DV_CUDA, "%s: gradient of input %d not on the device", what, i);
        dv_tensor *gb = dv_tensor_to(dev_in[i]->grad, DV_DEVICE_CPU);
        snprintf(name, sizeof name, "%s (gradient of input %d)", what, i);
        tc_compare_f32(name, dv_data(gb), dv_data(cpu_in[i]->grad), dv_numel(gb), tol);
        dv_release(gb);
    }
    for (int i = 0; i < n; i++) dv_zero_grad(cpu_in[i]), dv_set_requires_grad(cpu_in[i], false), dv_release(dev_in[i]);
    dv_release(yc), dv_release(yd), dv_release(gout), dv_release(goutd), dv_release(yb), dv_release(ycc);
}

uint16_t *tc_rand_half(int64_t n, uint64_t seed, int bf16) {
    float *f = tc_randn(n, seed, 1.0);
    uint16_t *h = malloc((size_t)(n ? n : 1) * 2);
    for (int64_t i = 0; i < n; i++) h[i] = bf16 ? dv_f32_to_bf16(f[i]) : dv_f32_to_f16(f[i]);
    free(f);
    return h;
}

double tc_half_val(uint16_t h, int bf16) { return bf16 ? dv_bf16_to_f32(h) : dv_f16_to_f32(h); }

int tc_half_gemm_case(const char *name, tc_half_gemm_fn gemm, tc_gemm_tol_fn tol, int bf16, int ta, int tb, int64_t M,
                      int64_t N, int64_t K, int64_t batch, int pad, int c_f32, float alpha, float beta, uint64_t seed) {
    int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    int64_t lda = ac + pad, ldb = bc + pad, ldc = N + pad;
    int64_t sa = ar * lda, sb = br * ldb, sc = M * ldc;
    uint16_t *A = tc_rand_half(sa * batch, seed, bf16), *B = tc_rand_half(sb * batch, seed + 1, bf16);
    float *C0 = tc_randn(sc * batch, seed + 2, 1.0);
    uint16_t *C0h = malloc((size_t)(sc * batch > 0 ? sc * batch : 1) * 2);
    for (int64_t i = 0; i < sc * batch; i++) C0h[i] = bf16 ? dv_f32_to_bf16(C0[i]) : dv_f32_to_f16(C0[i]);
    void *dA = tc_upload(A, sa * batch * 2), *dB = tc_upload(B, sb * batch * 2);
    int64_t cbytes = sc * batch * (c_f32 ? 4 : 2);
    void *dC = tc_upload(c_f32 ? (void *)C0 : (void *)C0h, cbytes);
    dv_cuda_check(gemm(bf16 ? DV_CU_BF16 : DV_CU_F16, ta, tb, M, N, K, alpha, dA, lda, sa, dB, ldb, sb, beta, dC, ldc,
                       sc, c_f32, batch, tc_stream()),
                  name);
    void *got = tc_download(dC, cbytes);
    int bad = 0;
    for (int64_t z = 0; z < batch; z++)
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                double s = 0, sabs = 0;
                for (int64_t k = 0; k < K; k++) {
                    double a = tc_half_val(A[z * sa + (ta ? k * lda + m : m * lda + k)], bf16);
                    double b = tc_half_val(B[z * sb + (tb ? n * ldb + k : k * ldb + n)], bf16);
                    s += a * b, sabs += fabs(a * b);
                }
                int64_t o = z * sc + m * ldc + n;
                double c0 = c_f32 ? C0[o] : tc_half_val(C0h[o], bf16);
                double want = alpha * s + (beta != 0 ? beta * c0 : 0);
                double g = c_f32 ? ((float *)got)[o] : tc_half_val(((uint16_t *)got)[o], bf16);
                double mag = fabs(alpha) * sabs + fabs(beta * c0);
                if (!(fabs(g - want) <= tol(want, mag, K, bf16, c_f32))) {
                    if (bad < 3)
                        dv_test_fail(__FILE__, __LINE__,
                                     "%s %s ta%d tb%d %lldx%lldx%lld b%lld c_f32 %d: [%lld,%lld,%lld] %.7g vs %.7g", name,
                                     bf16 ? "bf16" : "f16", ta, tb, (long long)M, (long long)N, (long long)K,
                                     (long long)batch, c_f32, (long long)z, (long long)m, (long long)n, g, want);
                    bad++;
                }
            }
    free(A), free(B), free(C0), free(C0h), free(got);
    tc_dfree(dA, sa * batch * 2), tc_dfree(dB, sb * batch * 2), tc_dfree(dC, cbytes);
    return bad;
}
