/* tests/simt/runtime.cc — the CUDA runtime API of the SIMT emulator (`make test-cuda-sim`), on
 * host memory: one device named "dualvla SIMT emulator (CPU)" (sm_90, a nominal 16 GiB),
 * cudaMalloc = aligned host memory filled with 0xff bytes (NaN in every float format, so a
 * kernel that reads memory nobody wrote shows it), copies and memsets done at once, streams
 * and events that exist (an unknown handle is an error, as on a GPU) and are always complete,
 * a per-thread last error that cudaGetLastError returns and clears.
 *
 * Not emulated: asynchrony (every call has finished when it returns, so a missing
 * cudaStreamSynchronize is never seen), separate address spaces (device pointers are host
 * pointers; cudaMemcpy's direction is not checked against them), pinned memory, several
 * devices, the sticky errors of a crashed kernel (a wild access here is a segfault).
 */
#include "tests/simt/include/cuda_runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mutex>
#include <set>
#include <unordered_map>

namespace dv_simt {

namespace {
thread_local cudaError_t t_last = cudaSuccess;
std::mutex g_lock;
std::unordered_map<void *, size_t> g_allocs; /* device allocations and their sizes */
size_t g_used;
std::set<void *> g_streams, g_events;
const size_t kTotal = (size_t)16 << 30;

cudaError_t ret(cudaError_t e) {
    if (e != cudaSuccess) t_last = e;
    return e;
}
} // namespace

cudaError_t runtime_set_error(cudaError_t e) { return ret(e); }

bool runtime_stream_ok(cudaStream_t s) {
    std::lock_guard<std::mutex> l(g_lock);
    return s == nullptr || g_streams.count(s);
}

} // namespace dv_simt

using namespace dv_simt;

extern "C" {

cudaError_t cudaGetDeviceCount(int *count) { *count = 1; return cudaSuccess; }
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : ret(cudaErrorInvalidDevice); }
cudaError_t cudaGetDevice(int *device) { *device = 0; return cudaSuccess; }

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int device) {
    if (device != 0) return ret(cudaErrorInvalidDevice);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "dualvla SIMT emulator (CPU; no GPU, kernels run as CPU fibers)");
    p->totalGlobalMem = kTotal;
    p->sharedMemPerBlock = 48 * 1024;
    p->warpSize = 32;
    p->maxThreadsPerBlock = 1024;
    p->maxThreadsDim[0] = 1024, p->maxThreadsDim[1] = 1024, p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 2147483647, p->maxGridSize[1] = 65535, p->maxGridSize[2] = 65535;
    p->major = 9, p->minor = 0;
    p->multiProcessorCount = 1;
    p->l2CacheSize = 0;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device) {
    if (device != 0) return ret(cudaErrorInvalidDevice);
    switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = 48 * 1024; break;
    case cudaDevAttrMultiProcessorCount: *value = 1; break;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; break;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; break;
    default: *value = 0; break; /* clocks, bus width: none */
    }
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    std::lock_guard<std::mutex> l(g_lock);
    *free_bytes = kTotal - g_used;
    *total_bytes = kTotal;
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **ptr, size_t size) {
    *ptr = nullptr;
    std::lock_guard<std::mutex> l(g_lock);
    if (size > kTotal - g_used) return ret(cudaErrorMemoryAllocation);
    size_t n = (size + 255) / 256 * 256;
    void *p = aligned_alloc(256, n ? n : 256);
    if (!p) return ret(cudaErrorMemoryAllocation);
    memset(p, 0xff, n); /* cudaMalloc does not zero: make reads of unwritten memory NaN */
    g_allocs[p] = size;
    g_used += size;
    *ptr = p;
    return cudaSuccess;
}

cudaError_t cudaFree(void *ptr) {
    if (!ptr) return cudaSuccess;
    std::lock_guard<std::mutex> l(g_lock);
    auto it = g_allocs.find(ptr);
    if (it == g_allocs.end()) return ret(cudaErrorInvalidDevicePointer);
    g_used -= it->second;
    g_allocs.erase(it);
    free(ptr);
    return cudaSuccess;
}

cudaError_t cudaHostAlloc(void **ptr, size_t size, unsigned int flags) {
    (void)flags;
    *ptr = aligned_alloc(256, (size + 255) / 256 * 256 + 256);
    return *ptr ? cudaSuccess : ret(cudaErrorMemoryAllocation);
}
cudaError_t cudaFreeHost(void *ptr) { free(ptr); return cudaSuccess; }

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind) {
    if ((unsigned)kind > cudaMemcpyDefault) return ret(cudaErrorInvalidMemcpyDirection);
    if (n) memmove(dst, src, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind, cudaStream_t s) {
    if (!runtime_stream_ok(s)) return ret(cudaErrorInvalidResourceHandle);
    return cudaMemcpy(dst, src, n, kind);
}
cudaError_t cudaMemcpyPeerAsync(void *dst, int dst_dev, const void *src, int src_dev, size_t n, cudaStream_t s) {
    if (dst_dev != 0 || src_dev != 0) return ret(cudaErrorInvalidDevice);
    return cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, s);
}
cudaError_t cudaMemsetAsync(void *dst, int value, size_t n, cudaStream_t s) {
    if (!runtime_stream_ok(s)) return ret(cudaErrorInvalidResourceHandle);
    if (n) memset(dst, value, n);
    return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int flags) {
    (void)flags;
    *s = (cudaStream_t)malloc(1);
    std::lock_guard<std::mutex> l(g_lock);
    g_streams.insert(*s);
    return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, 0); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    std::lock_guard<std::mutex> l(g_lock);
    if (!s || !g_streams.erase(s)) return ret(cudaErrorInvalidResourceHandle);
    free(s);
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    return runtime_stream_ok(s) ? cudaSuccess : ret(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int flags) {
    (void)flags;
    *e = (cudaEvent_t)malloc(1);
    std::lock_guard<std::mutex> l(g_lock);
    g_events.insert(*e);
    return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t *e) { return cudaEventCreateWithFlags(e, 0); }
static bool event_ok(cudaEvent_t e) {
    std::lock_guard<std::mutex> l(g_lock);
    return g_events.count(e) != 0;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    std::lock_guard<std::mutex> l(g_lock);
    if (!g_events.erase(e)) return ret(cudaErrorInvalidResourceHandle);
    free(e);
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    if (!event_ok(e) || !runtime_stream_ok(s)) return ret(cudaErrorInvalidResourceHandle);
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) { return event_ok(e) ? cudaSuccess : ret(cudaErrorInvalidResourceHandle); }

cudaError_t cudaGetLastError(void) {
    cudaError_t e = t_last;
    t_last = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError(void) { return t_last; }

const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    default: return "cudaErrorUnknown";
    }
}

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    default: return "unknown error";
    }
}

} // extern "C"
