/* kernels/adamw.h — the fused AdamW update: one pass over (param, grad, exp_avg, exp_avg_sq).
 *
 * For each element, with the step's scalars precomputed once per tensor (dv_adamw_coefs_at):
 *
 *   p  <- p * (1 - lr * weight_decay)              decoupled weight decay (Loshchilov & Hutter)
 *   m  <- beta1 * m + (1 - beta1) * g              first moment
 *   v  <- beta2 * v + (1 - beta2) * g * g          second moment
 *   p  <- p - step_size * m / (sqrt(v) / bc2_sqrt + eps)
 *        step_size = lr / (1 - beta1^t),  bc2_sqrt = sqrt(1 - beta2^t)      (bias correction)
 *
 * This is the order of operations of torch.optim.AdamW (amsgrad = False, maximize = False,
 * the single-tensor CPU path), so trajectories agree with PyTorch to rounding.
 *
 * The f32 kernels can also write a rounded 16-bit copy of the updated weight in the same pass
 * (f16 or bf16, round to nearest even as kernels/half.h): the weights the forward pass reads
 * when a model runs in half precision while the optimiser keeps f32 master weights.
 * 7 f32 streams per element (read p, g, m, v; write p, m, v) plus 2 bytes for the copy: the
 * update is memory bound, and the kernels are written to stream.
 *
 * f64 exists so the optimiser can be checked against PyTorch's f64 trajectories to ~1e-15.
 * Arrays are contiguous; n may be 0. OpenMP splits large arrays.
 */
#ifndef DV_KERNELS_ADAMW_H
#define DV_KERNELS_ADAMW_H

#include <stdint.h>

/* the per-step scalars of one parameter tensor (doubles; the f32 kernels round them once) */
typedef struct {
    double decay;     /* 1 - lr * weight_decay */
    double beta1, beta2;
    double step_size; /* lr / (1 - beta1^t) */
    double bc2_sqrt;  /* sqrt(1 - beta2^t) */
    double eps;
} dv_adamw_coefs;

/* the scalars for step t (1-based: the first update is t = 1) */
dv_adamw_coefs dv_adamw_coefs_at(double lr, double beta1, double beta2, double eps,
                                 double weight_decay, int64_t t);

/* which rounded copy to write next to the f32 master weight */
typedef enum { DV_ADAMW_COPY_NONE = 0, DV_ADAMW_COPY_F16, DV_ADAMW_COPY_BF16 } dv_adamw_copy;

/* p, m, v updated in place from g; copy (n uint16_t) written when kind != NONE */
void dv_adamw_f32_portable(int64_t n, float *p, const float *g, float *m, float *v,
                           const dv_adamw_coefs *c, dv_adamw_copy kind, uint16_t *copy);
void dv_adamw_f64_portable(int64_t n, double *p, const double *g, double *m, double *v,
                           const dv_adamw_coefs *c);

void dv_adamw_f32_avx512(int64_t n, float *p, const float *g, float *m, float *v,
                         const dv_adamw_coefs *c, dv_adamw_copy kind, uint16_t *copy);

#endif
