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

/* one thread per output (forward) or per input element (backward); the bodies are op_math.h's */
__global__ void bilinear_fwd(int64_t total, int64_t H, int64_t W, int64_t OH, int64_t OW, int align,
                             const float *__restrict__ x, float *__restrict__ y) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t ow = e % OW, oh = (e / OW) % OH, p = e / (OW * OH);
        y[e] = dv_cu_bilinear_elem(x, p, oh, ow, H, W, OH, OW, align);
    }
}

__global__ void bilinear_bwd(int64_t total, int64_t H, int64_t W, int64_t OH, int64_t OW, int align,
                             const float *__restrict__ gy, float *__restrict__ gx) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t iw = e % W, ih = (e / W) % H, p = e / (W * H);
        gx[e] = dv_cu_bilinear_grad_elem(gy, p, ih, iw, H, W, OH, OW, align);
    }
}

__global__ void nearest_fwd(int64_t total, int64_t H, int64_t W, int64_t OH, int64_t OW, const float *__restrict__ x,
                            float *__restrict__ y) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t ow = e % OW, oh = (e / OW) % OH, p = e / (OW * OH);
        y[e] = dv_cu_nearest_elem(x, p, oh, ow, H, W, OH, OW);
    }
}

__global__ void nearest_bwd(int64_t total, int64_t H, int64_t W, int64_t OH, int64_t OW, const float *__restrict__ gy,
                            float *__restrict__ gx) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t iw = e % W, ih = (e / W) % H, p = e / (W * H);
        gx[e] = dv_cu_nearest_grad_elem(gy, p, ih, iw, H, W, OH, OW);
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
