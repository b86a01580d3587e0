/* kernels/cuda/rotary.cu — rotary position embedding on the GPU, f32: kernels/rotary.h's
 * contract (rotate-half or interleaved pairs, per-batch or shared tables, pass-through
 * channels rot..D-1, transpose = 1 for the backward).
 *
 * One thread per output element in a grid-stride loop; the element's pair arithmetic is
 * dv_cu_rotary_elem (kernels/cuda/nn_math.h), shared with the host test. Each partner x_j is
 * read twice (once by each member of the pair): both reads hit the same cache line, and the
 * kernel is bound by the one write per element anyway.
 * Not here: f16 / bf16, fusing the rotation into the attention's Q / K loads.
 */
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/nn_math.h"

namespace {

__global__ void rotary_kernel(int64_t n, int64_t nhT, int64_t T, int64_t D, int64_t rot, int inter, int transpose,
                              const float *__restrict__ x, const float *__restrict__ cs,
                              const float *__restrict__ sn, int64_t tab_b, float *__restrict__ y) {
    DV_CU_GRID_STRIDE(e, n) {
        int64_t r = e / D, ch = e % D;
        const float *xr = x + r * D;
        if (ch >= rot) {
            y[e] = xr[ch];
            continue;
        }
        int64_t b = r / nhT, t = r % T;
        const float *cr = cs + b * tab_b + t * rot, *sr = sn + b * tab_b + t * rot;
        y[e] = dv_cu_rotary_elem(ch, rot, inter, transpose, xr, cr, sr);
    }
}

} // namespace

extern "C" int dv_cu_rotary_f32(int64_t nb, int64_t nh, int64_t T, int64_t D, int64_t rot, int interleaved,
                                int transpose, const float *x, const float *cos, const float *sin,
                                int64_t tab_bstride, float *y, dv_cu_stream stream) {
    int64_t n = nb * nh * T * D;
    if (n <= 0) return 0;
    if (rot < 0 || rot > D || rot % 2) return (int)cudaErrorInvalidValue;
    rotary_kernel<<<dvcu::grid_for(n), dvcu::kThreads, 0, (cudaStream_t)stream>>>(n, nh * T, T, D, rot, interleaved,
                                                                                   transpose, x, cos, sin,
                                                                                   tab_bstride, y);
    return (int)cudaGetLastError();
}
