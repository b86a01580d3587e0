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

__global__ void max_fwd(int64_t total, dv_pool2d_geom g, const float *__restrict__ x, float *__restrict__ y,
                        int32_t *__restrict__ idx) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t ow = e % g.OW, oh = (e / g.OW) % g.OH, p = e / (g.OW * g.OH);
        const float *xp = x + p * g.H * g.W;
        int64_t h0, h1, w0, w1;
        dv_cu_pool_window(oh, g.sh, g.ph, g.kh, g.H, &h0, &h1);
        dv_cu_pool_window(ow, g.sw, g.pw, g.kw, g.W, &w0, &w1);
        int64_t best_i = h0 * g.W + w0;
        float best = -INFINITY;
        for (int64_t ih = h0; ih < h1; ih++)
            for (int64_t iw = w0; iw < w1; iw++) {
                float v = xp[ih * g.W + iw];
                if (v > best || v != v) best = v, best_i = ih * g.W + iw;
            }
        y[e] = best;
        idx[e] = (int32_t)best_i;
    }
}

__global__ void max_bwd(int64_t total, dv_pool2d_geom g, const float *__restrict__ gy, const int32_t *__restrict__ idx,
                        float *__restrict__ gx) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t iw = e % g.W, ih = (e / g.W) % g.H, p = e / (g.W * g.H), out = g.OH * g.OW;
        int64_t o0h, o1h, o0w, o1w;
        dv_cu_pool_outputs_of(ih, g.sh, g.ph, g.kh, g.OH, &o0h, &o1h);
        dv_cu_pool_outputs_of(iw, g.sw, g.pw, g.kw, g.OW, &o0w, &o1w);
        const int32_t me = (int32_t)(ih * g.W + iw);
        float s = 0.0f;
        for (int64_t oh = o0h; oh < o1h; oh++)
            for (int64_t ow = o0w; ow < o1w; ow++) {
                int64_t o = p * out + oh * g.OW + ow;
                if (idx[o] == me) s += gy[o];
            }
        gx[e] = s;
    }
}

__global__ void avg_fwd(int64_t total, dv_pool2d_geom g, const float *__restrict__ x, float *__restrict__ y) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t ow = e % g.OW, oh = (e / g.OW) % g.OH, p = e / (g.OW * g.OH);
        const float *xp = x + p * g.H * g.W;
        int64_t h0, h1, w0, w1;
        dv_cu_pool_window(oh, g.sh, g.ph, g.kh, g.H, &h0, &h1);
        dv_cu_pool_window(ow, g.sw, g.pw, g.kw, g.W, &w0, &w1);
        float s = 0.0f;
        for (int64_t ih = h0; ih < h1; ih++)
            for (int64_t iw = w0; iw < w1; iw++) s += xp[ih * g.W + iw];
        y[e] = s / (float)dv_cu_pool_avg_divisor(oh, ow, g.H, g.W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw);
    }
}

__global__ void avg_bwd(int64_t total, dv_pool2d_geom g, const float *__restrict__ gy, float *__restrict__ gx) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t iw = e % g.W, ih = (e / g.W) % g.H, p = e / (g.W * g.H), out = g.OH * g.OW;
        int64_t o0h, o1h, o0w, o1w;
        dv_cu_pool_outputs_of(ih, g.sh, g.ph, g.kh, g.OH, &o0h, &o1h);
        dv_cu_pool_outputs_of(iw, g.sw, g.pw, g.kw, g.OW, &o0w, &o1w);
        float s = 0.0f;
        for (int64_t oh = o0h; oh < o1h; oh++)
            for (int64_t ow = o0w; ow < o1w; ow++)
                s += gy[p * out + oh * g.OW + ow] /
                     (float)dv_cu_pool_avg_divisor(oh, ow, g.H, g.W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw);
        gx[e] = s;
    }
}

__global__ void adaptive_fwd(int64_t total, int64_t H, int64_t W, int64_t OH, int64_t OW, const float *__restrict__ x,
                             float *__restrict__ y) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t ow = e % OW, oh = (e / OW) % OH, p = e / (OW * OH);
        const float *xp = x + p * H * W;
        int64_t h0 = dv_cu_adaptive_start(oh, H, OH), h1 = dv_cu_adaptive_end(oh, H, OH);
        int64_t w0 = dv_cu_adaptive_start(ow, W, OW), w1 = dv_cu_adaptive_end(ow, W, OW);
        float s = 0.0f;
        for (int64_t ih = h0; ih < h1; ih++)
            for (int64_t iw = w0; iw < w1; iw++) s += xp[ih * W + iw];
        y[e] = s / (float)((h1 - h0) * (w1 - w0));
    }
}

__global__ void adaptive_bwd(int64_t total, int64_t H, int64_t W, int64_t OH, int64_t OW, const float *__restrict__ gy,
                             float *__restrict__ gx) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t iw = e % W, ih = (e / W) % H, p = e / (W * H);
        int64_t o0h, o1h, o0w, o1w;
        dv_cu_adaptive_outputs_of(ih, H, OH, &o0h, &o1h);
        dv_cu_adaptive_outputs_of(iw, W, OW, &o0w, &o1w);
        float s = 0.0f;
        for (int64_t oh = o0h; oh < o1h; oh++) {
            int64_t h0 = dv_cu_adaptive_start(oh, H, OH), h1 = dv_cu_adaptive_end(oh, H, OH);
            if (ih < h0 || ih >= h1) continue;
            for (int64_t ow = o0w; ow < o1w; ow++) {
                int64_t w0 = dv_cu_adaptive_start(ow, W, OW), w1 = dv_cu_adaptive_end(ow, W, OW);
                if (iw < w0 || iw >= w1) continue;
                s += gy[(p * OH + oh) * OW + ow] / (float)((h1 - h0) * (w1 - w0));
            }
        }
        gx[e] = s;
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
