/* tests/cuda/test_simt_wgmma_emu.c — the SIMT emulator's wgmma plumbing (make test-cuda-sim
 * only): a warpgroup collective per 128 threads, two warpgroups in one block computing different
 * rows, dynamic shared memory above 48 KiB after cudaFuncSetAttribute (refused before it),
 * __cvta_generic_to_shared, scale-d / imm-scale-b through the per-thread call, and misuse that
 * must abort with the emulator's message: threads of a warpgroup issuing different descriptors,
 * an operand past the dynamic shared memory, a shared address of a non-shared pointer, a thread
 * that exits while its warpgroup waits for it. The kernels are in tests/simt/wgmma_selftest.cc.
 * On a real CUDA build there is nothing to test here (the file compiles to nothing). */
#ifdef DV_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

#ifdef DV_SIMT_CUDA_RUNTIME_API_H /* the emulator's own header: the `make test-cuda-sim` build */
#include "tests/test.h"
#include "tests/util.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

int dv_simt_wgmma_selftest(int mode, int n, char *err, size_t errlen);

static void run_mode(void *ctx) {
    char err[256];
    dv_simt_wgmma_selftest(*(int *)ctx, 64, err, sizeof err);
}

TEST(simt_wgmma_emu_dynamic_smem_needs_opt_in) {
    char err[256];
    CHECK_MSG(dv_simt_wgmma_selftest(1, 64, err, sizeof err) == 0, "%s", err);
}

TEST(simt_wgmma_emu_two_warpgroups) {
    int ns[] = {8, 64, 256};
    for (int i = 0; i < 3; i++) {
        char err[256];
        int rc = dv_simt_wgmma_selftest(0, ns[i], err, sizeof err);
        CHECK_MSG(rc == 0, "%s", err);
    }
}

/* completion at wait_group (the default; DV_SIMT_WGMMA=issue completes at issue, where these
 * kernels pass): reading the accumulators before the wait sees the old values, shared memory
 * overwritten before the wait is what the instruction reads, a block that never waits aborts */
TEST(simt_wgmma_emu_completion_at_wait_group) {
    const char *e = getenv("DV_SIMT_WGMMA");
    int late = !(e && !strcmp(e, "issue"));
    char err[256];
    CHECK_MSG((dv_simt_wgmma_selftest(6, 64, err, sizeof err) != 0) == late, "read before wait_group: %s",
              late ? "not seen" : err);
    CHECK_MSG((dv_simt_wgmma_selftest(8, 64, err, sizeof err) != 0) == late, "overwrite before wait_group: %s",
              late ? "not seen" : err);
    if (late) {
        int m7 = 7;
        CHECK(ut_aborts_with(run_mode, &m7, "not completed by a wgmma.wait_group"));
    }
}

TEST(simt_wgmma_emu_misuse_aborts) {
    int m2 = 2, m3 = 3, m4 = 4, m5 = 5;
    CHECK(ut_aborts_with(run_mode, &m2, "all 128 threads must issue the same instruction"));
    CHECK(ut_aborts_with(run_mode, &m3, "bytes of dynamic shared memory"));
    CHECK(ut_aborts_with(run_mode, &m4, "not in the block's"));
    CHECK(ut_aborts_with(run_mode, &m5, "in a group collective"));
}
#endif
