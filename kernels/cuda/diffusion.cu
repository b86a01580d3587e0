/* kernels/cuda/diffusion.cu — the fused sampler step of the diffusion schedulers on the GPU,
 * f32: kernels/diffusion.h's contract (x0 = ax sample + am model_output, optionally clamped;
 * out = c0 x0 + cx sample + cm model_output + cz noise), one pass, one thread per element.
 * The element arithmetic is dv_cu_diffusion_elem (kernels/cuda/nn_math.h), shared with the
 * host test; the coefficients are rounded to f32 once, as the CPU f32 kernel does.
 * out may alias sample or model_output (each element is read before it is written), so
 * those pointers carry no __restrict__.
 */
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/nn_math.h"

namespace {

__global__ void diffusion_kernel(int64_t n, dv_cu_diff_coef c, const float *m, const float *x,
                                 const float *__restrict__ z, float *out, float *pred_x0) {
    DV_CU_GRID_STRIDE(i, n) {
        float x0;
        float y = dv_cu_diffusion_elem(&c, m[i], x[i], z ? z[i] : 0.0f, z != nullptr, &x0);
        if (pred_x0) pred_x0[i] = x0;
        out[i] = y;
    }
}

} // namespace

extern "C" int dv_cu_diffusion_step_f32(int64_t n, const float *model_output, const float *sample,
                                        const float *noise, float *out, float *pred_x0,
                                        const dv_diffusion_coef *c, dv_cu_stream stream) {
    if (n <= 0) return 0;
    dv_cu_diff_coef k = {(float)c->ax, (float)c->am, (float)c->clip_range, (float)c->c0,
                         (float)c->cx, (float)c->cm, (float)c->cz, c->clip};
    diffusion_kernel<<<dvcu::grid_for(n), dvcu::kThreads, 0, (cudaStream_t)stream>>>(n, k, model_output, sample,
                                                                                      noise, out, pred_x0);
    return (int)cudaGetLastError();
}
