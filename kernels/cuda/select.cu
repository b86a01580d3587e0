/* kernels/cuda/select.cu — where: y = cond ? a : b elementwise, f32, on operands the caller
 * has already broadcast and made contiguous (tensor/ops_binary.c's dv_where, whose mask is
 * 0 / 1 in the operands' dtype). A select, not a blend: an inf or NaN on the side not taken
 * never reaches y, as on the CPU. Not here: broadcasting through strides, other dtypes.
 */
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.cuh"

#include <cuda_runtime.h>

namespace {

__global__ void where_kernel(int64_t n, const float *__restrict__ m, const float *__restrict__ a,
                             const float *__restrict__ b, float *__restrict__ y) {
    DV_CU_GRID_STRIDE(i, n) y[i] = m[i] != 0.0f ? a[i] : b[i];
}

} // namespace

extern "C" int dv_cu_where_f32(int64_t n, const float *m, const float *a, const float *b, float *y,
                               dv_cu_stream stream) {
    if (n <= 0) return 0;
    where_kernel<<<dvcu::grid_for(n), dvcu::kThreads, 0, (cudaStream_t)stream>>>(n, m, a, b, y);
    return (int)cudaGetLastError();
}
