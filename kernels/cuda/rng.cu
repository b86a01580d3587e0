/* kernels/cuda/rng.cu — Philox4x32-10 draws on the GPU, element for element those of
 * tensor/rng.c: one thread per 128-bit block (4 elements), the arithmetic shared with the
 * host through kernels/cuda/common.h (dv_cu_rng_block), computed in double and rounded once
 * to the output dtype. Uniform and randint are then bit-identical to the CPU (IEEE add/mul);
 * normal goes through CUDA's double log/sqrt/cos/sin, within an ulp or two of glibc's in
 * double, which the rounding to f32 almost always hides.
 * Not here: dropout masks (the dropout op draws a uniform tensor), f16/bf16 outputs.
 */
#include "kernels/cuda/common.h"
#include "kernels/cuda/kernels.h"

#include <cuda_runtime.h>

namespace {

template <typename T>
__global__ void rng_kernel(dv_cu_rng_kind kind, uint64_t seed, uint64_t offset, int64_t n,
                           double a, double b, T *__restrict__ y) {
    int64_t nblocks = (n + 3) / 4;
    for (int64_t bi = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; bi < nblocks;
         bi += (int64_t)gridDim.x * blockDim.x) {
        double z[4];
        dv_cu_rng_block(kind, seed, offset, (uint64_t)bi, a, b, z);
        for (int p = 0; p < 4 && bi * 4 + p < n; p++) y[bi * 4 + p] = (T)z[p];
    }
}

} // namespace

extern "C" int dv_cu_rng_fill(int kind, uint64_t seed, uint64_t offset, int64_t n, double a,
                              double b, bool f64, void *y, dv_cu_stream stream) {
    if (n <= 0) return 0;
    if (kind < DV_CU_RNG_UNIFORM || kind > DV_CU_RNG_RANDINT) return (int)cudaErrorInvalidValue;
    int64_t nblocks = (n + 3) / 4, grid = (nblocks + 255) / 256;
    if (grid > 65535LL * 8) grid = 65535LL * 8;
    cudaStream_t s = (cudaStream_t)stream;
    if (f64) rng_kernel<double><<<(unsigned)grid, 256, 0, s>>>((dv_cu_rng_kind)kind, seed, offset, n, a, b, (double *)y);
    else rng_kernel<float><<<(unsigned)grid, 256, 0, s>>>((dv_cu_rng_kind)kind, seed, offset, n, a, b, (float *)y);
    return (int)cudaGetLastError();
}
