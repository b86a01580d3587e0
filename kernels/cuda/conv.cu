/* kernels/cuda/conv.cu — the data movement of a 2-D convolution on the GPU, f32: im2col and
 * col2im (kernels/conv.h's layout), for one image or a batch of images and all groups at once,
 * the bias broadcast and the (channel, image) -> (image, channel) transpose of a batched
 * forward, for tensor/cuda.c's im2col + GEMM convolution (the GEMM is kernels/cuda/sgemm.cu).
 *
 * Layout of a batched col: (G, K, nb, N) with K = C kh kw, N = OH OW — for group g a (K, nb N)
 * matrix whose columns are image 0's N columns, then image 1's, ..., so one GEMM per group
 * covers nb images (its K dimension is the per-image one: the same sums as image by image).
 * im2col: one thread per column entry (dv_cu_im2col_elem). col2im: one thread per INPUT
 * element, gathering the entries that read it over the kernel taps in ascending order
 * (dv_cu_col2im_elem_ld) — no atomics, deterministic, the CPU's order of additions; the
 * one-image kernel accumulates into x (x += col2im(col), as on the CPU), the batched one
 * overwrites (0 + s is s: the same bits as accumulating into zeros).
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

/* col (G, K, nb, N) of the nb images x (nb, Cin, H, W), Cin = G C */
__global__ void im2col_batch_kernel(int64_t total, int64_t nb, int64_t G, dv_conv2d_geom g,
                                    const float *__restrict__ x, float *__restrict__ col) {
    const int64_t N = g.OH * g.OW, K = g.C * g.kh * g.kw, HW = g.H * g.W;
    DV_CU_GRID_STRIDE(e, total) {
        int64_t n = e % N, b = e / N % nb, r = e / (N * nb) % K, gi = e / (N * nb * K);
        col[e] = dv_cu_im2col_elem(&g, x + (b * G + gi) * g.C * HW, r, n);
    }
}

/* x (nb, Cin, H, W) = col2im of col (G, K, nb, N), overwritten */
__global__ void col2im_batch_kernel(int64_t total, int64_t nb, int64_t G, dv_conv2d_geom g,
                                    const float *__restrict__ col, float *__restrict__ x) {
    const int64_t N = g.OH * g.OW, K = g.C * g.kh * g.kw;
    DV_CU_GRID_STRIDE(e, total) {
        int64_t iw = e % g.W, ih = e / g.W % g.H, ci = e / (g.W * g.H) % (G * g.C), b = e / (g.W * g.H * G * g.C);
        int64_t gi = ci / g.C, c = ci % g.C;
        x[e] = dv_cu_col2im_elem_ld(&g, col + gi * K * nb * N + b * N, nb * N, c, ih, iw);
    }
}

/* y (nb, C, N) [b][c][n] = t (C, nb, N) [c][b][n] (+ bias[c]) */
__global__ void conv_out_kernel(int64_t total, int64_t nb, int64_t C, int64_t N, const float *__restrict__ t,
                                const float *__restrict__ bias, float *__restrict__ y) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t n = e % N, c = e / N % C, b = e / (N * C);
        float v = t[(c * nb + b) * N + n];
        y[e] = bias ? v + bias[c] : v;
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

extern "C" int dv_cu_im2col_batch_f32(const dv_conv2d_geom *g, int64_t nb, int64_t G, const float *x, float *col,
                                      dv_cu_stream stream) {
    int64_t total = G * g->C * g->kh * g->kw * nb * g->OH * g->OW;
    if (total <= 0) return 0;
    im2col_batch_kernel<<<dvcu::grid_for(total), dvcu::kThreads, 0, (cudaStream_t)stream>>>(total, nb, G, *g, x, col);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_col2im_batch_f32(const dv_conv2d_geom *g, int64_t nb, int64_t G, const float *col, float *x,
                                      dv_cu_stream stream) {
    int64_t total = nb * G * g->C * g->H * g->W;
    if (total <= 0) return 0;
    col2im_batch_kernel<<<dvcu::grid_for(total), dvcu::kThreads, 0, (cudaStream_t)stream>>>(total, nb, G, *g, col, x);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_conv_out_f32(int64_t nb, int64_t C, int64_t N, const float *t, const float *bias, float *y,
                                  dv_cu_stream stream) {
    int64_t total = nb * C * N;
    if (total <= 0) return 0;
    conv_out_kernel<<<dvcu::grid_for(total), dvcu::kThreads, 0, (cudaStream_t)stream>>>(total, nb, C, N, t, bias, y);
    return (int)cudaGetLastError();
}
