/* tests/simt/dynsmem.cc — dynamic shared memory for the SIMT emulator (`make test-cuda-sim`):
 * what `extern __shared__ T name[];`, the launch's third <<<>>> argument,
 * cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) and
 * __cvta_generic_to_shared give a kernel on a GPU.
 *
 *   the memory      one region for the whole process, mapped once: 227 KiB (Hopper's largest
 *                   per-block opt-in, cudaDevAttrMaxSharedMemoryPerBlockOptin = 232448) on a
 *                   page (so 1024-byte) boundary. Before each block the scheduler (simt.cc) calls
 *                   dynamic_shared_begin_block(bytes): the first `bytes` (rounded up to a page)
 *                   are filled with 0xff (NaN in every float format: a read of shared memory
 *                   nobody wrote shows) and the pages after them made inaccessible, so a kernel
 *                   that reads or writes past the size it launched with faults at once.
 *   extern          the build's sed turns `extern __shared__ [__align__(n)] T name[];` into
 *   __shared__      `T *const name = (T *)dv_simt::dynamic_shared();` — the same address for
 *                   every block and every kernel, as a GPU gives every kernel the same window.
 *   addresses       __cvta_generic_to_shared(p) = p - the region's start: the dynamic shared
 *                   memory begins at shared address 0 (a kernel with no static __shared__ arrays
 *                   on a GPU sees the same), on a 1024-byte boundary. A pointer anywhere else
 *                   aborts: static __shared__ arrays (simt.h) have no shared-window address here.
 *   the limit       a launch may ask for 48 KiB, or more up to 227 KiB once cudaFuncSetAttribute
 *                   allowed it. The launch site does not name its kernel to the emulator
 *                   (template arguments are deduced at the call), so the check is against the
 *                   largest size any kernel was allowed — weaker than the GPU's per-kernel check.
 *
 * Not emulated: shared-memory banks and their conflicts, the carveout preference (accepted and
 * ignored), distributed shared memory of clusters.
 */
#include "tests/simt/include/cuda_runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <map>
#include <mutex>

namespace dv_simt {

cudaError_t runtime_set_error(cudaError_t e); /* runtime.cc */

namespace {

constexpr size_t kDefault = 48 * 1024, kOptinMax = 232448, kPage = 4096;
constexpr size_t kRegion = (kOptinMax + kPage - 1) / kPage * kPage;

std::mutex g_lock;
std::map<const void *, size_t> g_optin; /* per kernel: its cudaFuncSetAttribute size */
size_t g_limit = kDefault;
unsigned char *g_base;      /* the region; a PROT_NONE guard page follows it */
size_t g_size, g_open = kRegion; /* this block's size; bytes now accessible */
unsigned long g_blocks;

unsigned char *region() {
    if (!g_base) {
        void *p = mmap(nullptr, kRegion + kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            perror("SIMT emulator: mmap of the dynamic shared memory");
            abort();
        }
        mprotect((unsigned char *)p + kRegion, kPage, PROT_NONE);
        g_base = (unsigned char *)p;
    }
    return g_base;
}

} // namespace

unsigned char *dynamic_shared() { return region(); }
size_t dynamic_shared_size() { return g_size; }

size_t dynamic_shared_limit() {
    std::lock_guard<std::mutex> l(g_lock);
    return g_limit;
}

void dynamic_shared_begin_block(size_t bytes) {
    unsigned char *r = region();
    size_t open = (bytes + kPage - 1) / kPage * kPage;
    if (open != g_open) {
        if (mprotect(r, open, PROT_READ | PROT_WRITE) || (open < kRegion && mprotect(r + open, kRegion - open, PROT_NONE))) {
            perror("SIMT emulator: mprotect of the dynamic shared memory");
            abort();
        }
        g_open = open;
    }
    g_size = bytes;
    memset(r, 0xff, open);
    g_blocks++;
}

unsigned long block_serial() { return g_blocks; }

} // namespace dv_simt

size_t __cvta_generic_to_shared(const void *p) {
    const unsigned char *b = dv_simt::dynamic_shared(), *q = (const unsigned char *)p;
    if (q < b || q > b + dv_simt::dynamic_shared_size()) {
        fprintf(stderr,
                "SIMT emulator: __cvta_generic_to_shared(%p): not in the block's %zu bytes of dynamic shared memory at %p "
                "(static __shared__ arrays have no shared-window address in the emulator)\n",
                p, dv_simt::dynamic_shared_size(), (const void *)b);
        abort();
    }
    return (size_t)(q - b);
}

extern "C" cudaError_t cudaFuncSetAttribute(const void *func, enum cudaFuncAttribute attr, int value) {
    using namespace dv_simt;
    if (!func) return runtime_set_error(cudaErrorInvalidDeviceFunction);
    if (attr == cudaFuncAttributePreferredSharedMemoryCarveout)
        return value >= -1 && value <= 100 ? cudaSuccess : runtime_set_error(cudaErrorInvalidValue);
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || (size_t)value > kOptinMax)
        return runtime_set_error(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> l(g_lock);
    g_optin[func] = (size_t)value;
    g_limit = kDefault;
    for (auto &kv : g_optin)
        if (kv.second > g_limit) g_limit = kv.second;
    return cudaSuccess;
}
