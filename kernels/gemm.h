/* kernels/gemm.h — general matrix multiply kernels (pointers and sizes, no tensors).
 *
 *   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C        all row-major
 *
 * ta = 0: A is stored (M,K), element (m,k) at A[m*lda + k]; ta = 1: stored (K,M), at A[k*lda + m].
 * tb = 0: B is stored (K,N), element (k,n) at B[k*ldb + n]; tb = 1: stored (N,K), at B[n*ldb + k].
 * beta == 0 means C is written without being read (NaNs in C do not propagate).
 * The *_f16b / *_bf16b variants take B as raw f16 / bf16 bits (stored weights) and widen them
 * to f32 on the fly; A and C stay f32. Kernels thread themselves with OpenMP.
 * The *_bias variants are the Linear layer's epilogue: afterwards C[m,n] += bias[n] (bias holds
 * N floats; NULL adds nothing). The AVX-512 ones add it while the tile is in registers, which
 * saves a second pass over C and a second OpenMP region per layer.
 * dv_gemm_f32_bias_act_avx512 then applies an activation (a dv_bias_act_kind, kernels/bias_act.h,
 * 0 = none) to C as well: y = act(x W^T + b), the MLP layer in inference, with the activation
 * in the packed and broadcast paths' epilogues (the small-M paths make a pass over C after).
 */
#ifndef DV_KERNELS_GEMM_H
#define DV_KERNELS_GEMM_H

#include <stdint.h>

#define DV_GEMM_ARGS(TA, TB, TC)                                                              \
    int ta, int tb, int64_t M, int64_t N, int64_t K, TC alpha, const TA *A, int64_t lda,      \
        const TB *B, int64_t ldb, TC beta, TC *C, int64_t ldc

void dv_gemm_f32_portable(DV_GEMM_ARGS(float, float, float));
void dv_gemm_f64_portable(DV_GEMM_ARGS(double, double, double));
void dv_gemm_f16b_portable(DV_GEMM_ARGS(float, uint16_t, float));
void dv_gemm_bf16b_portable(DV_GEMM_ARGS(float, uint16_t, float));

void dv_gemm_f32_avx512(DV_GEMM_ARGS(float, float, float));
void dv_gemm_f16b_avx512(DV_GEMM_ARGS(float, uint16_t, float));
void dv_gemm_bf16b_avx512(DV_GEMM_ARGS(float, uint16_t, float));

void dv_gemm_f32_bias_portable(DV_GEMM_ARGS(float, float, float), const float *bias);
void dv_gemm_f16b_bias_portable(DV_GEMM_ARGS(float, uint16_t, float), const float *bias);
void dv_gemm_bf16b_bias_portable(DV_GEMM_ARGS(float, uint16_t, float), const float *bias);
void dv_gemm_f32_bias_avx512(DV_GEMM_ARGS(float, float, float), const float *bias);
void dv_gemm_f16b_bias_avx512(DV_GEMM_ARGS(float, uint16_t, float), const float *bias);
void dv_gemm_bf16b_bias_avx512(DV_GEMM_ARGS(float, uint16_t, float), const float *bias);
void dv_gemm_f32_bias_act_avx512(DV_GEMM_ARGS(float, float, float), const float *bias, int act);

#endif
