/* tests/cuda/test_cuda_wgmma.c — the Hopper wgmma GEMM (dv_cu_gemm_wgmma, kernels/cuda/gemm_sm90a.cu)
 * against a double-precision CPU GEMM on the same f16 / bf16 inputs: exact tiles, ragged
 * edges in M, N and K, K not a multiple of 64, batches, beta != 0, alpha != 1, all four
 * layouts, unaligned operands (element-wise loads), C f32 and C in the inputs' dtype.
 * K up to 650 (11 K steps), so each of the 4 shared-memory stages is refilled while the
 * pipeline runs — under the emulator's default, a wgmma reads shared memory only at the
 * wait_group that completes it, so a stage overwritten too early shows.
 * Tolerance: an f32 output within 1e-5 sqrt(K) of sum_k |alpha a b| + |beta c| (f32
 * accumulation in the tensor cores' order); a half output within that plus one ulp of its
 * dtype at the exact value (round to nearest is half an ulp).
 * Runs where the device is compute capability 9.0 — an H100 / H200, or the SIMT emulator of
 * `make test-cuda-sim`, which reports sm 9.0 — and prints one skip line elsewhere.
 */
#ifdef DV_HAVE_CUDA
#include "tests/cuda/cuda_util.h"

#include "kernels/cuda/kernels.h"
#include "kernels/half.h"

#include <math.h>
#include <stdlib.h>

#define CK(call) dv_cuda_check((call), #call)

/* one ulp of the half dtype at |x| (8 significant bits for bf16, 11 for f16, f16 subnormals
 * spaced 2^-24) */
static double half_ulp(double x, int bf16) {
    int e;
    frexp(fabs(x), &e); /* |x| = m 2^e, m in [0.5, 1) */
    double u = ldexp(1.0, e - (bf16 ? 8 : 11));
    double floor_ulp = bf16 ? ldexp(1.0, -133) : ldexp(1.0, -24);
    return u > floor_ulp ? u : floor_ulp;
}

/* the one skip line (printed once) when the device is not sm_90 */
static int skip_unless_sm90(void) {
    static int said;
    if (dv_cu_gemm_wgmma_device()) return 0;
    if (!said++) {
        dv_cuda_info info;
        int ok = dv_cuda_device_info(0, &info) == 0;
        printf("  cuda_wgmma: SKIPPED, needs compute capability 9.0 (cuda:0 is sm_%d%d)\n", ok ? info.major : 0,
               ok ? info.minor : 0);
    }
    return 1;
}

/* the file header's tolerance: 1e-5 sqrt(K) of sum |alpha a b| + |beta c|, plus one ulp of a
 * half output */
static double wg_tol(double want, double mag, int64_t K, int bf16, int c_f32) {
    return 1e-5 * sqrt((double)(K > 1 ? K : 1)) * mag + 1e-30 + (c_f32 ? 0 : half_ulp(want, bf16));
}

/* one GEMM through dv_cu_gemm_wgmma against a double reference; returns the bad elements */
static int wg_case(int bf16, int ta, int tb, int64_t M, int64_t N, int64_t K, int64_t batch, int pad, int c_f32,
                   float alpha, float beta, uint64_t seed) {
    return tc_half_gemm_case("wgmma", dv_cu_gemm_wgmma, wg_tol, bf16, ta, tb, M, N, K, batch, pad, c_f32, alpha, beta,
                             seed);
}

TEST(cuda_wgmma_gemm_tiles_edges_dtypes) {
    if (skip_unless_sm90()) return;
    int bad = 0;
    for (int bf16 = 0; bf16 < 2; bf16++) {
        bad += wg_case(bf16, 0, 1, 256, 256, 128, 1, 0, 1, 1.0f, 0.0f, 10 + bf16);  /* exact tiles, C f32 */
        bad += wg_case(bf16, 0, 1, 256, 256, 128, 1, 0, 0, 1.0f, 0.0f, 20 + bf16);  /* exact tiles, C half */
        bad += wg_case(bf16, 0, 1, 200, 130, 72, 1, 0, 1, 1.0f, 0.0f, 30 + bf16);   /* ragged M, N, K */
        bad += wg_case(bf16, 0, 1, 129, 257, 100, 1, 0, 0, 0.5f, 0.0f, 40 + bf16);  /* K % 64 != 0, half out */
        bad += wg_case(bf16, 0, 1, 130, 140, 200, 3, 8, 1, 1.0f, -0.5f, 50 + bf16); /* batched, beta, padded */
        bad += wg_case(bf16, 0, 1, 128, 256, 650, 1, 0, 1, 1.0f, 0.0f, 55 + bf16);  /* 11 K steps: stages reused */
        bad += wg_case(bf16, 0, 1, 140, 150, 64, 2, 8, 0, 2.0f, 1.0f, 60 + bf16);   /* batched, beta, half out */
    }
    CHECK(bad == 0);
}

TEST(cuda_wgmma_gemm_layouts_unaligned) {
    if (skip_unless_sm90()) return;
    int bad = 0;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int bf16 = (ta + tb) % 2;
            bad += wg_case(bf16, ta, tb, 136, 264, 330, 2, 0, 1, 1.0f, 0.25f, 70 + 2 * ta + tb); /* transposed loads */
            bad += wg_case(!bf16, ta, tb, 131, 129, 67, 1, 1, 0, 1.0f, 0.0f, 80 + 2 * ta + tb); /* unaligned */
        }
    CHECK(bad == 0);
}

TEST(cuda_wgmma_gemm_degenerate_and_refusals) {
    if (skip_unless_sm90()) return;
    /* K = 0: C = beta C; empty M: nothing to do; bad arguments refused before any launch */
    CHECK(wg_case(1, 0, 1, 130, 260, 0, 1, 0, 1, 1.0f, 0.5f, 90) == 0);
    CHECK(dv_cu_gemm_wgmma(DV_CU_BF16, 0, 1, 0, 5, 5, 1, NULL, 5, 0, NULL, 5, 0, 0, NULL, 5, 0, true, 1,
                           tc_stream()) == 0);
    CHECK(dv_cu_gemm_wgmma(DV_CU_BF16, 2, 1, 8, 8, 8, 1, NULL, 8, 0, NULL, 8, 0, 0, NULL, 8, 0, true, 1,
                           tc_stream()) != 0);
    CHECK(dv_cu_gemm_wgmma(DV_CU_BF16, 0, 1, -1, 8, 8, 1, NULL, 8, 0, NULL, 8, 0, 0, NULL, 8, 0, true, 1,
                           tc_stream()) != 0);
}

/* off sm_90 the entry refuses (cudaErrorInvalidValue = 1) rather than launch code that is not
 * there for this GPU */
TEST(cuda_wgmma_refuses_other_gpus) {
    if (dv_cu_gemm_wgmma_device()) return; /* sm_90: nothing to check here */
    CHECK(dv_cu_gemm_wgmma(DV_CU_BF16, 0, 1, 256, 256, 64, 1, NULL, 64, 0, NULL, 64, 0, 0, NULL, 256, 0, true, 1,
                           tc_stream()) == 1);
    CHECK(!dv_cu_gemm_wgmma_wanted(4096, 4096, 4096));
}

#endif
