/* tests/simt/wgmma_selftest.cc — small kernels that exercise the SIMT emulator's wgmma plumbing
 * (wgmma.cc, dynsmem.cc, simt.cc's group collective) without any dualvla kernel; called by
 * tests/cuda/test_simt_wgmma_emu.c in the `make test-cuda-sim` build only.
 *
 * The kernel: a block of 256 threads (two warpgroups) with 100 KB of dynamic shared memory
 * (so cudaFuncSetAttribute is needed) stages A (128 x 16) at shared address 0 and B (n x 16) at
 * 64 KiB, both K-major without swizzle (core matrices of 8 rows x 16 bytes; A's 8-row groups
 * 256 B apart, the K halves 128 B apart; B's likewise), builds the descriptors from
 * __cvta_generic_to_shared, and each warpgroup w computes rows 64 w .. 64 w + 63 of
 * D = A B + C (C = 0.5 in every register, scale-d 1) with one m64nNk16 instruction, then a second
 * one with imm-scale-b -1 and scale-d 1, which must bring D back to C + A B - A B = C... so the
 * first result is written out before it. Each thread writes its registers to out through the
 * accumulator map of Figure 149. The host checks every element against a double product.
 * The misuse modes must abort with the emulator's message (the C test checks the text).
 */
#include "tests/simt/include/cuda_runtime.h"

#include "tests/simt/wgmma.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

namespace {

enum { SBO = 256, LBO = 128, B_AT = 65536, SMEM = 100 * 1024 };

uint64_t desc_k_none(uint32_t addr) {
    return (uint64_t)((addr & 0x3FFFF) >> 4) | (uint64_t)(LBO >> 4) << 16 | (uint64_t)(SBO >> 4) << 32;
}

/* mode 0: as described; 2: thread 5 passes another B descriptor; 3: B's descriptor points past
 * the dynamic shared memory; 4: __cvta_generic_to_shared of a global pointer; 5: thread 200
 * returns before the instruction; 6: the first result is read before its wait_group; 7: the
 * second instruction is never waited for (and the grid has 2 blocks); 8: A is overwritten with
 * zeros between the first instruction's commit and its wait */
void kernel(const uint16_t *A, const uint16_t *B, float *out, float *out2, int n, int mode) {
    unsigned char *sm = dv_simt::dynamic_shared();
    int t = threadIdx.x, wg = t / 128, i = t % 128, nr = n / 2;
    for (int e = t; e < 128 * 16; e += blockDim.x) {
        int r = e / 16, k = e % 16;
        memcpy(sm + (r / 8) * SBO + (k / 8) * LBO + (r % 8) * 16 + (k % 8) * 2, &A[e], 2);
    }
    for (int e = t; e < n * 16; e += blockDim.x) {
        int r = e / 16, k = e % 16;
        memcpy(sm + B_AT + (r / 8) * SBO + (k / 8) * LBO + (r % 8) * 16 + (k % 8) * 2, &B[e], 2);
    }
    dv_simt_fence_proxy_async();
    __syncthreads();
    if (mode == 5 && t == 200) return;
    uint32_t a_addr = (uint32_t)__cvta_generic_to_shared(sm + wg * 8 * SBO);
    uint32_t b_addr = (uint32_t)__cvta_generic_to_shared(sm + B_AT);
    if (mode == 4) b_addr = (uint32_t)__cvta_generic_to_shared(B);
    if (mode == 3) b_addr = SMEM - 1024;
    uint64_t da = desc_k_none(a_addr), db = desc_k_none(b_addr);
    if (mode == 2 && t == 5) db = desc_k_none(b_addr + 16);
    float d[128];
    for (int r = 0; r < nr; r++) d[r] = 0.5f;
    int w = i / 32, g = i % 32 / 4, q = i % 4;
    dv_simt_wgmma_fence();
    dv_simt_wgmma_bf16f16(n, 1, d, da, db, 1, 1, 1, 0, 0);
    dv_simt_wgmma_commit();
    if (mode == 8) {
        __syncthreads();
        for (int e = t; e < 128 * 16; e += blockDim.x) memset(sm + e * 2, 0, 2); /* A's 4 KiB */
        __syncthreads();
    }
    if (mode != 6) dv_simt_wgmma_wait(0);
    for (int r = 0; r < nr; r++)
        out[(64 * wg + 16 * w + g + 8 * (r / 2 % 2)) * n + 8 * (r / 4) + 2 * q + r % 2] = d[r];
    if (mode == 6) dv_simt_wgmma_wait(0);
    if (mode == 8) { /* A back for the second instruction */
        __syncthreads();
        for (int e = t; e < 128 * 16; e += blockDim.x) {
            int r = e / 16, k = e % 16;
            memcpy(sm + (r / 8) * SBO + (k / 8) * LBO + (r % 8) * 16 + (k % 8) * 2, &A[e], 2);
        }
        __syncthreads();
    }
    dv_simt_wgmma_fence();
    dv_simt_wgmma_bf16f16(n, 1, d, da, db, 1, 1, -1, 0, 0);
    dv_simt_wgmma_commit();
    if (mode == 7) return;
    dv_simt_wgmma_wait(0);
    for (int r = 0; r < nr; r++)
        out2[(64 * wg + 16 * w + g + 8 * (r / 2 % 2)) * n + 8 * (r / 4) + 2 * q + r % 2] = d[r];
}

uint16_t bf16_bits(double v) { /* v has <= 8 significant bits: exact */
    float f = (float)v;
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}

} // namespace

/* returns 0 when everything matched, else writes what did not to err; mode 1: a launch above
 * the dynamic shared memory limit is refused until cudaFuncSetAttribute raises it */
extern "C" int dv_simt_wgmma_selftest(int mode, int n, char *err, size_t errlen) {
    uint16_t *A = (uint16_t *)malloc(2 * 128 * 16), *B = (uint16_t *)malloc(2 * 256 * 16);
    float *out = (float *)malloc(4 * 128 * 256), *out2 = (float *)malloc(4 * 128 * 256);
    double *a = (double *)malloc(8 * 128 * 16), *b = (double *)malloc(8 * 256 * 16);
    for (int e = 0; e < 128 * 16; e++) a[e] = ((e * 37 % 29) - 14) / 8.0, A[e] = bf16_bits(a[e]);
    for (int e = 0; e < n * 16; e++) b[e] = ((e * 11 % 23) - 11) / 4.0, B[e] = bf16_bits(b[e]);
    int rc = 0;
    err[0] = 0;
    cudaGetLastError();
    if (mode == 1) {
        /* above the current limit (48 KiB, or what some kernel of this process opted into):
         * refused until this kernel opts in, then it runs */
        size_t bytes = dv_simt::dynamic_shared_limit() + 1024;
        if (bytes < SMEM) bytes = SMEM;
        if (bytes > 232448) goto done; /* some kernel already has the whole 227 KiB */
        dv_simt::cfg(__FILE__, __LINE__, dim3(1), dim3(256), bytes, 0) * [=] { kernel(A, B, out, out2, n, 0); };
        cudaError_t e = cudaGetLastError();
        if (e != cudaErrorInvalidValue) {
            snprintf(err, errlen, "a %zu-byte launch above the limit gave error %d", bytes, (int)e), rc = 1;
            goto done;
        }
        if (cudaFuncSetAttribute((const void *)&kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes)) {
            snprintf(err, errlen, "cudaFuncSetAttribute(%zu) refused", bytes), rc = 1;
            goto done;
        }
        dv_simt::cfg(__FILE__, __LINE__, dim3(1), dim3(256), bytes, 0) * [=] { kernel(A, B, out, out2, n, 0); };
        if ((e = cudaGetLastError()) != cudaSuccess)
            snprintf(err, errlen, "a %zu-byte launch after opting in gave error %d", bytes, (int)e), rc = 1;
        goto done;
    }
    if (cudaFuncSetAttribute((const void *)&kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, SMEM) != cudaSuccess) {
        snprintf(err, errlen, "cudaFuncSetAttribute(%d) refused", SMEM), rc = 1;
        goto done;
    }
    if (cudaFuncSetAttribute((const void *)&kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 300 * 1024) !=
        cudaErrorInvalidValue) {
        snprintf(err, errlen, "cudaFuncSetAttribute(300 KiB) accepted"), rc = 1;
        goto done;
    }
    cudaGetLastError();
    dv_simt::cfg(__FILE__, __LINE__, dim3(mode == 7 ? 2 : 1), dim3(256), SMEM, 0) * [=] {
        kernel(A, B, out, out2, n, mode);
    };
    if (cudaGetLastError() != cudaSuccess) {
        snprintf(err, errlen, "the launch failed"), rc = 1;
        goto done;
    }
    for (int r = 0; r < 128 && !rc; r++)
        for (int c = 0; c < n; c++) {
            double s = 0.5;
            for (int k = 0; k < 16; k++) s += a[r * 16 + k] * b[c * 16 + k];
            if (out[r * n + c] != (float)s || out2[r * n + c] != 0.5f) {
                snprintf(err, errlen, "n=%d D[%d][%d] = %.9g then %.9g, want %.9g then 0.5", n, r, c, out[r * n + c],
                         out2[r * n + c], (float)s);
                rc = 1;
                break;
            }
        }
done:
    free(A), free(B), free(out), free(out2), free(a), free(b);
    return rc;
}
