/* kernels/cuda/resize.cu — bilinear and nearest resizing on the GPU, f32, forward and
 * backward: kernels/resize.h's contract (PyTorch's interpolate, align_corners, 'nearest').
 *
 * Forward: one thread per output element; its taps come from dv_cu_linear_tap /
 * dv_cu_nearest_src (kernels/cuda/op_math.h, the CPU's f32 formulas, shared with the host
 * test). Backward: one thread per input element, gathering the outputs whose taps land on it:
 * the taps are nondecreasing in the output coordinate, so those outputs are one range per axis
 * (found by binary search), walked in ascending order with the CPU's per-output order of the
 * four taps — no atomics, deterministic.
 * Not here: bicubic, antialiasing, f16 / bf16.
 */
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/op_math.h"

namespace {

__global__ void bilinear_fwd(int64_t total, int64_t H, int64_t W, int64_t OH, int64_t OW, int align,
                             const float *__restrict__ x, float *__restrict__ y) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t ow = e % OW, oh = (e / OW) % OH, p = e / (OW * OH);
        int64_t h0, h1, c0, c1;
        float a0, a1, b0, b1;
        dv_cu_linear_tap(oh, H, OH, align, &h0, &h1, &a0, &a1);
        dv_cu_linear_tap(ow, W, OW, align, &c0, &c1, &b0, &b1);
        const float *r0 = x + (p * H + h0) * W, *r1 = x + (p * H + h1) * W;
        y[e] = a0 * (b0 * r0[c0] + b1 * r0[c1]) + a1 * (b0 * r1[c0] + b1 * r1[c1]);
    }
}

__global__ void bilinear_bwd(int64_t total, int64_t H, int64_t W, int64_t OH, int64_t OW, int align,
                             const float *__restrict__ gy, float *__restrict__ gx) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t iw = e % W, ih = (e / W) % H, p = e / (W * H);
        /* outputs whose first tap is ih - 1 or ih (the second tap is the first + 1, or equal
         * at the last row) */
        int64_t oh0 = dv_cu_linear_first(ih - 1, H, OH, align), oh1 = dv_cu_linear_first(ih + 1, H, OH, align);
        int64_t ow0 = dv_cu_linear_first(iw - 1, W, OW, align), ow1 = dv_cu_linear_first(iw + 1, W, OW, align);
        float s = 0.0f;
        for (int64_t oh = oh0; oh < oh1; oh++) {
            int64_t h0, h1;
            float a0, a1;
            dv_cu_linear_tap(oh, H, OH, align, &h0, &h1, &a0, &a1);
            for (int64_t ow = ow0; ow < ow1; ow++) {
                int64_t c0, c1;
                float b0, b1, g = gy[(p * OH + oh) * OW + ow];
                dv_cu_linear_tap(ow, W, OW, align, &c0, &c1, &b0, &b1);
                if (h0 == ih) {
                    if (c0 == iw) s += a0 * b0 * g;
                    if (c1 == iw) s += a0 * b1 * g;
                }
                if (h1 == ih) {
                    if (c0 == iw) s += a1 * b0 * g;
                    if (c1 == iw) s += a1 * b1 * g;
                }
            }
        }
        gx[e] = s;
    }
}

__global__ void nearest_fwd(int64_t total, int64_t H, int64_t W, int64_t OH, int64_t OW, const float *__restrict__ x,
                            float *__restrict__ y) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t ow = e % OW, oh = (e / OW) % OH, p = e / (OW * OH);
        y[e] = x[(p * H + dv_cu_nearest_src(oh, H, OH)) * W + dv_cu_nearest_src(ow, W, OW)];
    }
}

__global__ void nearest_bwd(int64_t total, int64_t H, int64_t W, int64_t OH, int64_t OW, const float *__restrict__ gy,
                            float *__restrict__ gx) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t iw = e % W, ih = (e / W) % H, p = e / (W * H);
        int64_t oh0 = dv_cu_nearest_first(ih, H, OH), oh1 = dv_cu_nearest_first(ih + 1, H, OH);
        int64_t ow0 = dv_cu_nearest_first(iw, W, OW), ow1 = dv_cu_nearest_first(iw + 1, W, OW);
        float s = 0.0f;
        for (int64_t oh = oh0; oh < oh1; oh++)
            for (int64_t ow = ow0; ow < ow1; ow++) s += gy[(p * OH + oh) * OW + ow];
        gx[e] = s;
    }
}

} // namespace

extern "C" int dv_cu_resize_bilinear_f32(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, int align_corners,
                                         const float *x, float *y, dv_cu_stream stream) {
    int64_t total = P * OH * OW;
    if (total <= 0) return 0;
    bilinear_fwd<<<dvcu::grid_for(total), dvcu::kThreads, 0, (cudaStream_t)stream>>>(total, H, W, OH, OW, align_corners,
                                                                                      x, y);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_resize_bilinear_bwd_f32(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                             int align_corners, const float *gy, float *gx, dv_cu_stream stream) {
    int64_t total = P * H * W;
    if (total <= 0) return 0;
    bilinear_bwd<<<dvcu::grid_for(total), dvcu::kThreads, 0, (cudaStream_t)stream>>>(total, H, W, OH, OW, align_corners,
                                                                                      gy, gx);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_resize_nearest_f32(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, const float *x,
                                        float *y, dv_cu_stream stream) {
    int64_t total = P * OH * OW;
    if (total <= 0) return 0;
    nearest_fwd<<<dvcu::grid_for(total), dvcu::kThreads, 0, (cudaStream_t)stream>>>(total, H, W, OH, OW, x, y);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_resize_nearest_bwd_f32(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, const float *gy,
                                            float *gx, dv_cu_stream stream) {
    int64_t total = P * H * W;
    if (total <= 0) return 0;
    nearest_bwd<<<dvcu::grid_for(total), dvcu::kThreads, 0, (cudaStream_t)stream>>>(total, H, W, OH, OW, gy, gx);
    return (int)cudaGetLastError();
}
