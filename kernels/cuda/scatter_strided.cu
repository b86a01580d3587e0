/* kernels/cuda/scatter_strided.cu — the adjoint of elementwise.cu's dv_cu_copy_strided: a
 * contiguous source written into a destination read through strides (a view such as
 * x[..., a:b:step]), elements of 1, 2, 4 or 8 bytes, any dtype (a pure copy of bits).
 *
 * What it is for: tensor/cuda.c's dv_cuda_copy_tensor_ into a non-contiguous device view,
 * which is how slice / select backward puts the gradient of a strided slice into the zeros
 * of x's shape (tensor/view.c), as the CPU does with dv_copy_ into dv_slice(gx, ...).
 *
 * One thread per source element (grid-stride), which decomposes its flat index into the
 * shape (at most 8 dims, last dim fastest) and dots it with the destination strides. Reads
 * are coalesced; writes are as coalesced as the view allows (stride `step` along the last
 * dim for a slice of it). Each destination element is written by exactly one thread only if
 * the view does not overlap itself: the caller checks that (a stride-0 / expanded view would
 * be a race here; on the CPU its last write wins).
 * Not here: dtype conversion (the caller converts into a contiguous buffer first).
 */
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.cuh"

#include <cuda_runtime.h>

namespace {

struct Strides8 { int ndim; int64_t shape[8], stride[8]; };

template <typename U>
__global__ void scatter_kernel(int64_t n, Strides8 s, U *__restrict__ dst, const U *__restrict__ src) {
    DV_CU_GRID_STRIDE(i, n) {
        int64_t o = 0, r = i;
        for (int d = s.ndim - 1; d >= 0; d--) {
            o += (r % s.shape[d]) * s.stride[d];
            r /= s.shape[d];
        }
        dst[o] = src[i];
    }
}

} // namespace

extern "C" int dv_cu_scatter_strided(int ndim, const int64_t *shape, int esize, void *dst, const int64_t *dst_stride,
                                     const void *src, dv_cu_stream stream) {
    if (ndim < 0 || ndim > 8) return (int)cudaErrorInvalidValue;
    Strides8 s = {};
    s.ndim = ndim;
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        s.shape[d] = shape[d];
        s.stride[d] = dst_stride[d];
        n *= shape[d];
    }
    if (n <= 0) return 0;
    cudaStream_t st = (cudaStream_t)stream;
    unsigned grid = dvcu::grid_for(n);
    switch (esize) {
    case 1: scatter_kernel<<<grid, dvcu::kThreads, 0, st>>>(n, s, (uint8_t *)dst, (const uint8_t *)src); break;
    case 2: scatter_kernel<<<grid, dvcu::kThreads, 0, st>>>(n, s, (uint16_t *)dst, (const uint16_t *)src); break;
    case 4: scatter_kernel<<<grid, dvcu::kThreads, 0, st>>>(n, s, (uint32_t *)dst, (const uint32_t *)src); break;
    case 8: scatter_kernel<<<grid, dvcu::kThreads, 0, st>>>(n, s, (uint64_t *)dst, (const uint64_t *)src); break;
    default: return (int)cudaErrorInvalidValue;
    }
    return (int)cudaGetLastError();
}
