/* kernels/cuda/conv.cu — the data movement of a 2-D convolution on the GPU, f32: im2col and
 * col2im (kernels/conv.h's layout), the bias broadcast of the forward, for tensor/cuda.c's
 * im2col + GEMM convolution (the GEMM is kernels/cuda/sgemm.cu).
 *
 * im2col: one thread per column entry (dv_cu_im2col_elem). col2im: one thread per INPUT
 * element, gathering the entries that read it over the kernel taps in ascending order
 * (dv_cu_col2im_elem) — no atomics, deterministic, the CPU's order of additions; x is
 * accumulated into (x += col2im(col)), as on the CPU.
 * Not here: implicit GEMM (no col buffer), tensor cores, transposed / 3-D convolution.
 */
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/op_math.h"

namespace {

__global__ void im2col_kernel(int64_t total, int64_t N, dv_conv2d_geom g, const float *__restrict__ x,
                              float *__restrict__ col) {
    DV_CU_GRID_STRIDE(e, total) col[e] = dv_cu_im2col_elem(&g, x, e / N, e % N);
}

__global__ void col2im_kernel(int64_t total, dv_conv2d_geom g, const float *__restrict__ col, float *__restrict__ x) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t iw = e % g.W, ih = (e / g.W) % g.H, c = e / (g.W * g.H);
        x[e] += dv_cu_col2im_elem(&g, col, c, ih, iw);
    }
}

__global__ void bias_fill_kernel(int64_t total, int64_t C, int64_t N, const float *__restrict__ bias,
                                 float *__restrict__ y) {
    DV_CU_GRID_STRIDE(e, total) y[e] = bias[(e / N) % C];
}

} // namespace

extern "C" int dv_cu_im2col_f32(const dv_conv2d_geom *g, const float *x, float *col, dv_cu_stream stream) {
    int64_t N = g->OH * g->OW, total = g->C * g->kh * g->kw * N;
    if (total <= 0) return 0;
    im2col_kernel<<<dvcu::grid_for(total), dvcu::kThreads, 0, (cudaStream_t)stream>>>(total, N, *g, x, col);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_col2im_f32(const dv_conv2d_geom *g, const float *col, float *x, dv_cu_stream stream) {
    int64_t total = g->C * g->H * g->W;
    if (total <= 0) return 0;
    col2im_kernel<<<dvcu::grid_for(total), dvcu::kThreads, 0, (cudaStream_t)stream>>>(total, *g, col, x);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_bias_fill_f32(int64_t B, int64_t C, int64_t N, const float *bias, float *y, dv_cu_stream stream) {
    int64_t total = B * C * N;
    if (total <= 0) return 0;
    bias_fill_kernel<<<dvcu::grid_for(total), dvcu::kThreads, 0, (cudaStream_t)stream>>>(total, C, N, bias, y);
    return (int)cudaGetLastError();
}
