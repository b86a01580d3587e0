/* kernels/cuda/pool.cu — 2-D max / average / adaptive-average pooling on the GPU, f32,
 * forward and backward: kernels/pool.h's contract (planes (P, H, W), argmax as int32 flat
 * positions, count_include_pad, torch's adaptive windows).
 *
 * Forward: one thread per output element, scanning its window as the CPU does (NaN wins,
 * the first maximum is kept). Backward: one thread per INPUT element, gathering the outputs
 * whose window holds it (kernels/cuda/op_math.h inverts the window maps) in ascending output
 * order — no atomics, deterministic, and the same order of additions as the CPU's scatter.
 * Not here: f16 / bf16, ceil_mode, dilation (the op does not have them either).
 */
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/op_math.h"

#include <math.h>

namespace {

/* one thread per output (forward) or per input element (backward); the bodies are op_math.h's */
__global__ void max_fwd(int64_t total, dv_pool2d_geom g, const float *__restrict__ x, float *__restrict__ y,
                        int32_t *__restrict__ idx) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t ow = e % g.OW, oh = (e / g.OW) % g.OH, p = e / (g.OW * g.OH), arg;
        y[e] = dv_cu_max_pool_elem(&g, x + p * g.H * g.W, oh, ow, &arg);
        idx[e] = (int32_t)arg;
    }
}

__global__ void max_bwd(int64_t total, dv_pool2d_geom g, const float *__restrict__ gy, const int32_t *__restrict__ idx,
                        float *__restrict__ gx) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t iw = e % g.W, ih = (e / g.W) % g.H, p = e / (g.W * g.H);
        gx[e] = dv_cu_max_pool_grad_elem(&g, gy, idx, p, ih, iw);
    }
}

__global__ void avg_fwd(int64_t total, dv_pool2d_geom g, const float *__restrict__ x, float *__restrict__ y) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t ow = e % g.OW, oh = (e / g.OW) % g.OH, p = e / (g.OW * g.OH);
        y[e] = dv_cu_avg_pool_elem(&g, x + p * g.H * g.W, oh, ow);
    }
}

__global__ void avg_bwd(int64_t total, dv_pool2d_geom g, const float *__restrict__ gy, float *__restrict__ gx) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t iw = e % g.W, ih = (e / g.W) % g.H, p = e / (g.W * g.H);
        gx[e] = dv_cu_avg_pool_grad_elem(&g, gy, p, ih, iw);
    }
}

__global__ void adaptive_fwd(int64_t total, int64_t H, int64_t W, int64_t OH, int64_t OW, const float *__restrict__ x,
                             float *__restrict__ y) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t ow = e % OW, oh = (e / OW) % OH, p = e / (OW * OH);
        y[e] = dv_cu_adaptive_pool_elem(x + p * H * W, oh, ow, H, W, OH, OW);
    }
}

__global__ void adaptive_bwd(int64_t total, int64_t H, int64_t W, int64_t OH, int64_t OW, const float *__restrict__ gy,
                             float *__restrict__ gx) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t iw = e % W, ih = (e / W) % H, p = e / (W * H);
        gx[e] = dv_cu_adaptive_pool_grad_elem(gy, p, ih, iw, H, W, OH, OW);
    }
}

} // namespace

extern "C" int dv_cu_max_pool2d_f32(const dv_pool2d_geom *g, int64_t P, const float *x, float *y, int32_t *idx,
                                    dv_cu_stream stream) {
    int64_t total = P * g->OH * g->OW;
    if (total <= 0) return 0;
    max_fwd<<<dvcu::grid_for(total), dvcu::kThreads, 0, (cudaStream_t)stream>>>(total, *g, x, y, idx);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_max_pool2d_bwd_f32(const dv_pool2d_geom *g, int64_t P, const float *gy, const int32_t *idx,
                                        float *gx, dv_cu_stream stream) {
    int64_t total = P * g->H * g->W;
    if (total <= 0) return 0;
    max_bwd<<<dvcu::grid_for(total), dvcu::kThreads, 0, (cudaStream_t)stream>>>(total, *g, gy, idx, gx);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_avg_pool2d_f32(const dv_pool2d_geom *g, int64_t P, const float *x, float *y, dv_cu_stream stream) {
    int64_t total = P * g->OH * g->OW;
    if (total <= 0) return 0;
    avg_fwd<<<dvcu::grid_for(total), dvcu::kThreads, 0, (cudaStream_t)stream>>>(total, *g, x, y);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_avg_pool2d_bwd_f32(const dv_pool2d_geom *g, int64_t P, const float *gy, float *gx,
                                        dv_cu_stream stream) {
    int64_t total = P * g->H * g->W;
    if (total <= 0) return 0;
    avg_bwd<<<dvcu::grid_for(total), dvcu::kThreads, 0, (cudaStream_t)stream>>>(total, *g, gy, gx);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_adaptive_avg_pool2d_f32(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, const float *x,
                                             float *y, dv_cu_stream stream) {
    int64_t total = P * OH * OW;
    if (total <= 0) return 0;
    adaptive_fwd<<<dvcu::grid_for(total), dvcu::kThreads, 0, (cudaStream_t)stream>>>(total, H, W, OH, OW, x, y);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_adaptive_avg_pool2d_bwd_f32(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                                 const float *gy, float *gx, dv_cu_stream stream) {
    int64_t total = P * H * W;
    if (total <= 0) return 0;
    adaptive_bwd<<<dvcu::grid_for(total), dvcu::kThreads, 0, (cudaStream_t)stream>>>(total, H, W, OH, OW, gy, gx);
    return (int)cudaGetLastError();
}
