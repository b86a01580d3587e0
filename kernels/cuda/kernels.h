/* kernels/cuda/kernels.h — the CUDA kernels as C functions: device pointers, sizes, a stream.
 *
 * Same contracts as the CPU kernels they mirror (kernels/elementwise.h, kernels/norm.h,
 * kernels/reduce.h, kernels/adamw.h, kernels/gemm.h, kernels/attention.h, kernels/rotary.h,
 * kernels/bias_act.h, kernels/modulate.h, kernels/diffusion.h, kernels/pool.h,
 * kernels/resize.h, kernels/conv.h, kernels/reduce_ext.h, optim/sgd.c / ema.c / clip.c, and
 * tensor/ops_index.c / ops_loss.c for indexing and the fused losses); differences are stated
 * at each function. Every pointer is a device pointer (cudaMalloc'd, never managed memory). `stream` is a cudaStream_t (NULL = the legacy default stream); every function only
 * enqueues work and returns the cudaError_t of the launch (0 = cudaSuccess), it never
 * synchronises. Error text: dv_cuda_error_str() in tensor/cuda.h.
 *
 * Sizes are int64_t; a kernel that indexes with 32-bit ints says so and the caller checks.
 * Not here: anything that allocates (the caller passes work buffers, sized by the *_bytes
 * functions), anything that sees a dv_tensor.
 */
#ifndef DV_KERNELS_CUDA_KERNELS_H
#define DV_KERNELS_CUDA_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/adamw.h"
#include "kernels/attention.h"
#include "kernels/bias_act.h"
#include "kernels/conv.h"
#include "kernels/diffusion.h"
#include "kernels/elementwise.h"
#include "kernels/pool.h"
#include "kernels/cuda/reduce_math.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void *dv_cu_stream; /* cudaStream_t */

/* ---- elementwise (elementwise.cu) ------------------------------------------------------ */
/* dst[i] = the esize-byte (1, 2, 4 or 8) pattern, i < n */
int dv_cu_fill(void *dst, int64_t n, int esize, uint64_t pattern, dv_cu_stream stream);
/* dst (contiguous, shape, ndim <= 8) = src read through strides (elements of esize bytes:
 * 1, 2, 4 or 8) — what makes a non-contiguous view contiguous, any dtype */
int dv_cu_copy_strided(int ndim, const int64_t *shape, int esize, void *dst, const void *src,
                       const int64_t *src_stride, dv_cu_stream stream);
/* the adjoint (scatter_strided.cu): dst read through dst_stride (shape, ndim <= 8) = src
 * (contiguous), elements of esize bytes. The view must not overlap itself (each destination
 * element written once; the caller checks). */
int dv_cu_scatter_strided(int ndim, const int64_t *shape, int esize, void *dst, const int64_t *dst_stride,
                          const void *src, dv_cu_stream stream);
/* dst[i] = src[i] converted between dtypes (kernels/copy.h codes DV_K_*), n contiguous
 * elements, through double with kernels/copy.c's rules (f16 / bf16 round to nearest even from
 * the f32 value, bf16 bit-exact with kernels/half.h; bool = nonzero) */
int dv_cu_convert(int64_t n, int dst_dt, void *dst, int src_dt, const void *src, dv_cu_stream stream);
/* kernels/elementwise.h contracts, f32, contiguous */
int dv_cu_unary_f32(dv_unary_op op, int64_t n, const float *x, float *y, double p1, double p2,
                    dv_cu_stream stream);
int dv_cu_unary_bwd_f32(dv_unary_op op, int64_t n, const float *x, const float *y,
                        const float *gy, float *gx, double p1, double p2, dv_cu_stream stream);
/* y (contiguous, shape, ndim <= 8) = a op b through strides (0 = broadcast); comparisons
 * write u8 0/1. Indexes in int64. */
int dv_cu_binary_f32(dv_binary_op op, int ndim, const int64_t *shape, const float *a,
                     const int64_t *sa, const float *b, const int64_t *sb, void *y,
                     dv_cu_stream stream);
/* the backward of a same-shape binary op (add, sub, mul, div, pow, max, min), contiguous:
 * ga = gy * d(a op b)/da, gb = gy * d/db; either may be NULL. Broadcast operands are reduced
 * afterwards by the caller (dv_cu_reduce_f32). max/min weigh the gradient as
 * tensor/ops_binary.c does: 1 to the winner, 0.5 to each on a tie, 0 to both at a NaN. */
int dv_cu_binary_bwd_f32(dv_binary_op op, int64_t n, const float *a, const float *b,
                         const float *gy, float *ga, float *gb, dv_cu_stream stream);

/* ---- reductions and norms (reduce.cu) -------------------------------------------------- */
typedef enum { DV_CU_REDUCE_SUM = 0, DV_CU_REDUCE_MEAN, DV_CU_REDUCE_MAX } dv_cu_reduce;
/* x contiguous (outer, n, inner) -> y (outer, inner); f32 accumulation (pairwise through the
 * warp tree, so error grows like log n, not n). max of an empty row is -inf. */
int dv_cu_reduce_f32(dv_cu_reduce kind, int64_t outer, int64_t n, int64_t inner, const float *x,
                     float *y, dv_cu_stream stream);
/* kernels/norm.h contracts, rows of a contiguous (rows, n) f32 buffer; mean / rstd are double
 * as on the CPU (may be NULL). log = 1: log-softmax. */
int dv_cu_softmax_fwd_f32(bool log, int64_t rows, int64_t n, const float *x, float *y,
                          dv_cu_stream stream);
int dv_cu_softmax_bwd_f32(bool log, int64_t rows, int64_t n, const float *y, const float *gy,
                          float *gx, dv_cu_stream stream);
int dv_cu_layernorm_fwd_f32(int64_t rows, int64_t n, const float *x, const float *w,
                            const float *b, double eps, float *y, double *mean, double *rstd,
                            dv_cu_stream stream);
int dv_cu_rmsnorm_fwd_f32(int64_t rows, int64_t n, const float *x, const float *w, double eps,
                          float *y, double *rstd, dv_cu_stream stream);
/* backward: the weight gradients are column sums over rows, done as per-block partial sums in
 * `work` (dv_cu_norm_work_bytes) and a second pass; gx / gw / gb may be NULL. */
size_t dv_cu_norm_work_bytes(int64_t rows, int64_t n);
int dv_cu_layernorm_bwd_f32(int64_t rows, int64_t n, const float *x, const float *w,
                            const double *mean, const double *rstd, const float *gy, float *gx,
                            float *gw, float *gb, void *work, dv_cu_stream stream);
int dv_cu_rmsnorm_bwd_f32(int64_t rows, int64_t n, const float *x, const float *w,
                          const double *rstd, const float *gy, float *gx, float *gw, void *work,
                          dv_cu_stream stream);

/* ---- random numbers (rng.cu): tensor/rng.c's streams, element for element --------------- */
/* y[i] (n elements of f32 when f64 is false, else f64) = element i of the draw from
 * (seed, offset) of kind (kernels/cuda/common.h dv_cu_rng_kind) with parameters a, b. The
 * caller advances its offset by ceil(n / 4) as the CPU does. */
int dv_cu_rng_fill(int kind, uint64_t seed, uint64_t offset, int64_t n, double a, double b,
                   bool f64, void *y, dv_cu_stream stream);

/* ---- AdamW (adamw.cu): kernels/adamw.h's update, same order of operations -------------- */
int dv_cu_adamw_f32(int64_t n, float *p, const float *g, float *m, float *v,
                    const dv_adamw_coefs *c, dv_adamw_copy kind, uint16_t *copy,
                    dv_cu_stream stream);

/* ---- GEMM on tensor cores (gemm.cu) ---------------------------------------------------- */
/* For each batch index z < batch, with A_z = A + z * stride_a (elements) and so on:
 *   C_z[M,N] = alpha * op(A_z)[M,K] * op(B_z)[K,N] + beta * C_z       (kernels/gemm.h layouts)
 * A and B are f16 or bf16 bits (dtype); products accumulate in f32 on the
 * tensor cores (mma.sync.m16n8k16, sm_80+). C is f32 when c_f32, else the inputs' dtype
 * (rounded to nearest even). beta == 0: C is not read. M <= 16 with ta = 0, tb = 1 takes the
 * skinny path (one warp per output column, B streamed once: decoding and the small policy). */
typedef enum { DV_CU_F16 = 0, DV_CU_BF16 = 1 } dv_cu_half;
int dv_cu_gemm(dv_cu_half dtype, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
               const uint16_t *A, int64_t lda, int64_t stride_a, const uint16_t *B, int64_t ldb,
               int64_t stride_b, float beta, void *C, int64_t ldc, int64_t stride_c, bool c_f32,
               int64_t batch, dv_cu_stream stream);

/* The same GEMM on Hopper's warpgroup tensor-core instruction (gemm_sm90a.cu: wgmma.mma_async
 * m64n256k16, 128 x 256 tiles, operands through 128-byte-swizzled shared memory; built for
 * sm_90a only). NEVER RUN ON A GPU: checked only by the CPU SIMT emulator (`make
 * test-cuda-sim`). Same arguments and results as dv_cu_gemm, all four layouts (an operand that
 * is not K-contiguous is transposed as it is loaded). Returns cudaErrorInvalidValue without
 * launching anything when the current device is not compute capability 9.0 (the code exists
 * only for sm_90a) or an argument is invalid.
 * dv_cu_gemm takes this path only when DV_CUDA_WGMMA=1 is set in the environment (read once),
 * the device is sm_90 (asked once per device) and M >= 128, N >= 128, K >= 64: OFF by default
 * until it has been measured against the mma.sync kernel on an H100.
 * dv_cu_gemm_wgmma_device: the current device can run it; dv_cu_gemm_wgmma_wanted: the
 * conditions above hold for this M, N, K. */
int dv_cu_gemm_wgmma(dv_cu_half dtype, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                     const uint16_t *A, int64_t lda, int64_t stride_a, const uint16_t *B, int64_t ldb,
                     int64_t stride_b, float beta, void *C, int64_t ldc, int64_t stride_c, bool c_f32,
                     int64_t batch, dv_cu_stream stream);
bool dv_cu_gemm_wgmma_device(void);
bool dv_cu_gemm_wgmma_wanted(int64_t M, int64_t N, int64_t K);

/* f32 GEMM on the CUDA cores (sgemm.cu), kernels/gemm.h's contract for one matrix */
int dv_cu_gemm_f32(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                   int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc,
                   dv_cu_stream stream);

/* the same through the TF32 tensor cores (sgemm_tf32.cu, sm_80+): inputs rounded to TF32
 * (cvt.rna), f32 accumulation — faster, ~1e-3 relative per product; opt-in (tensor/cuda.h) */
int dv_cu_gemm_tf32(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                    int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc,
                    dv_cu_stream stream);

/* ---- flash attention (attention.cu, attention_bwd.cu) ------------------------------------ */
/* kernels/attention.h's forward on f16 / bf16 q, k, v (strided as dv_attn_geom says), o f32
 * contiguous (B, Hq, Tq, Dv) (the f32 accumulator, not rounded to the inputs' dtype), lse f32
 * (B, Hq, Tq) (may be NULL). Tensor cores for S = Q K^T and O = P V (P rounded to the inputs'
 * dtype), online softmax in f32 registers.
 * Supported: D == Dv, D a multiple of 8 in [8, 128] (tensor/cuda.c pads other head dims with
 * zeros); causal with offset; keep mask; GQA; the additive bias (f32, NULL = none, read
 * through g->bias_stride); dropout on the weights (g->dropout, g->dropout_seed: the CPU's mask,
 * kernels/attention.h's dv_attn_drop_*). Returns cudaErrorInvalidValue for anything else. */
int dv_cu_attention_fwd(dv_cu_half dtype, const dv_attn_geom *g, const uint16_t *q,
                        const uint16_t *k, const uint16_t *v, const float *bias, float *o,
                        float *lse, dv_cu_stream stream);

/* Backward of dv_cu_attention_fwd (kernels/attention.h formulas, FlashAttention-2 order:
 * Dr = rowsum(dO * O), then dK, dV (and dbias) per key tile and dQ per query tile, each
 * recomputing P = exp(S - lse) and the dropout mask — no atomics, deterministic).
 * q, k, v, bias, lse, dropout as the forward; o (the forward's) and dout f32, contiguous
 * (B, Hq, Tq, ocols) with ocols <= D (the columns past ocols count as 0: v's zero padding).
 * Outputs f32, contiguous, overwritten, any may be NULL: dq (B, Hq, Tq, D), dk and dv
 * (B, Hkv, Tk, D), summed over the query heads of a group, dbias (B, Hq, g->dbias_rows, Tk),
 * summed over the queries when dbias_rows is 1. work: dv_cu_attention_bwd_work_bytes bytes.
 * Two implementations (attention_bwd.cu's header): tensor cores (the default; dO, P and dS
 * rounded to the inputs' dtype for the mma, f32 accumulation; Dr from the same rounded dO) and
 * CUDA cores (f32 FMA on tiles of 16, everything after the inputs f32: the reference).
 * dv_cu_attention_bwd takes the CUDA cores when the environment has DV_CUDA_ATTN_BWD=cores,
 * else the tensor cores; dv_cu_attention_bwd_with names one (AUTO: that same choice). Same
 * limits as the forward. */
typedef enum { DV_CU_ATTN_BWD_AUTO, DV_CU_ATTN_BWD_TC, DV_CU_ATTN_BWD_CORES } dv_cu_attn_bwd_kind;
size_t dv_cu_attention_bwd_work_bytes(const dv_attn_geom *g);
int dv_cu_attention_bwd(dv_cu_half dtype, const dv_attn_geom *g, const uint16_t *q,
                        const uint16_t *k, const uint16_t *v, const float *bias, const float *o,
                        const float *lse, const float *dout, int64_t ocols, float *dq, float *dk,
                        float *dv, float *dbias, void *work, dv_cu_stream stream);
int dv_cu_attention_bwd_with(dv_cu_attn_bwd_kind kind, dv_cu_half dtype, const dv_attn_geom *g,
                             const uint16_t *q, const uint16_t *k, const uint16_t *v,
                             const float *bias, const float *o, const float *lse,
                             const float *dout, int64_t ocols, float *dq, float *dk, float *dv,
                             float *dbias, void *work, dv_cu_stream stream);

/* The kernels' operands from the f32 tensors: dst (B, H, T, DP) bf16, contiguous = src (B, H,
 * T, D) f32 read through src_stride (b, h, t) (unit stride in d), rounded to nearest even,
 * zeros in the columns D .. DP-1 (DP >= D). And back: dst (rows, D) f32 = the first D columns
 * of src (rows, DP) f32. */
int dv_cu_attention_pack_bf16(int64_t B, int64_t H, int64_t T, int64_t D, int64_t DP,
                              const float *src, const int64_t src_stride[3], uint16_t *dst,
                              dv_cu_stream stream);
int dv_cu_attention_unpack_f32(int64_t rows, int64_t D, int64_t DP, const float *src, float *dst,
                               dv_cu_stream stream);

/* ---- fused nn kernels (rotary.cu, bias_act.cu, modulate.cu, diffusion.cu) -------------- */
/* The CPU kernels' contracts, f32, contiguous: kernels/rotary.h, kernels/bias_act.h,
 * kernels/modulate.h, kernels/diffusion.h. The per-element arithmetic is shared with the host
 * through kernels/cuda/nn_math.h. */
int dv_cu_rotary_f32(int64_t nb, int64_t nh, int64_t T, int64_t D, int64_t rot, int interleaved,
                     int transpose, const float *x, const float *cos, const float *sin,
                     int64_t tab_bstride, float *y, dv_cu_stream stream);
int dv_cu_bias_act_fwd_f32(dv_bias_act_kind act, int64_t R, int64_t N, const float *x,
                           const float *b, float *y, dv_cu_stream stream);
/* gb needs dv_cu_bias_act_work_bytes of work (the per-row-block partial sums; the blocks are
 * the CPU's, dv_bias_act_blocks, summed in the same order); gx may alias gy */
size_t dv_cu_bias_act_work_bytes(int64_t R, int64_t N);
int dv_cu_bias_act_bwd_f32(dv_bias_act_kind act, int64_t R, int64_t N, const float *x,
                           const float *b, const float *gy, float *gx, float *gb, void *work,
                           dv_cu_stream stream);
int dv_cu_modulate_f32(int64_t B, int64_t T, int64_t C, const float *x, const float *shift,
                       const float *scale, float one, float *y, dv_cu_stream stream);
int dv_cu_modulate_bwd_f32(int64_t B, int64_t T, int64_t C, const float *x, const float *scale,
                           float one, const float *g, float *gx, float *gshift, float *gscale,
                           dv_cu_stream stream);
int dv_cu_ln_modulate_f32(int64_t B, int64_t T, int64_t C, const float *x, const float *shift,
                          const float *scale, double eps, float *y, float *mean, float *rstd,
                          dv_cu_stream stream);
int dv_cu_ln_modulate_bwd_f32(int64_t B, int64_t T, int64_t C, const float *x, const float *mean,
                              const float *rstd, const float *scale, const float *g, float *gx,
                              float *gshift, float *gscale, dv_cu_stream stream);
int dv_cu_gated_residual_f32(int64_t B, int64_t T, int64_t C, const float *x, const float *gate,
                             const float *h, float *y, dv_cu_stream stream);
/* out may alias sample or model_output; noise / pred_x0 may be NULL */
int dv_cu_diffusion_step_f32(int64_t n, const float *model_output, const float *sample,
                             const float *noise, float *out, float *pred_x0,
                             const dv_diffusion_coef *c, dv_cu_stream stream);

/* ---- indexing (index.cu): tensor/ops_index.c's selections, idx i64 on the device, in range - */
/* dst (outer, k, inner)[o][j][c] = src (outer, n, inner)[o][idx[j]][c], elements of esize
 * (1, 2, 4, 8) bytes: embedding (outer 1) and index_select */
int dv_cu_take_rows(int esize, int64_t outer, int64_t k, int64_t n, int64_t inner, const int64_t *idx,
                    const void *src, void *dst, dv_cu_stream stream);
/* dst[o * dst_ld + c] = src[o * src_ld + c] for o < outer, c < width (elements of esize bytes):
 * one input's block of a concat */
int dv_cu_copy_rows(int esize, int64_t outer, int64_t width, const void *src, int64_t src_ld, void *dst,
                    int64_t dst_ld, dv_cu_stream stream);
/* the adjoint: dst (outer, n, inner)[o][idx[j]][c] += src[o][j][c] (atomic adds: repeated ids
 * sum up, in an order that varies run to run) */
int dv_cu_index_add_rows_f32(int64_t outer, int64_t k, int64_t n, int64_t inner, const int64_t *idx,
                             const float *src, float *dst, dv_cu_stream stream);
/* y (contiguous, the index's shape ishape, ndim <= 8)[i] = x[offset of i with the index value
 * along dim] read through x's strides (elements); and the scatter-add adjoint into x */
int dv_cu_gather(int esize, int ndim, const int64_t *ishape, int dim, const int64_t *xstride,
                 const int64_t *idx, const void *x, void *y, dv_cu_stream stream);
int dv_cu_scatter_add_f32(int ndim, const int64_t *ishape, int dim, const int64_t *xstride,
                          const int64_t *idx, const float *src, float *x, dv_cu_stream stream);

/* ---- losses (loss.cu): tensor/ops_loss.c's fused losses, f32 ------------------------------ */
/* y (one f32 on the device) = mul * sum of the terms; work: dv_cu_loss_work_bytes */
size_t dv_cu_loss_work_bytes(void);
int dv_cu_bce_logits_f32(int64_t n, const float *x, const float *t, double mul, float *y, void *work,
                         dv_cu_stream stream);
/* gx = s (sigmoid(x) - t), gt = -s x with s = gscale[0] * mul (gscale on the device) */
int dv_cu_bce_logits_bwd_f32(int64_t n, const float *x, const float *t, const float *gscale,
                             double mul, float *gx, float *gt, dv_cu_stream stream);
/* loss (rows) and lse (rows, double) as kernels/norm.h's cross_entropy_fwd; y = mul * sum(loss) */
int dv_cu_cross_entropy_f32(int64_t rows, int64_t n, const float *x, const int64_t *target,
                            int64_t ignore, double mul, float *loss, double *lse, float *y, void *work,
                            dv_cu_stream stream);
int dv_cu_cross_entropy_bwd_f32(int64_t rows, int64_t n, const float *x, const int64_t *target,
                                int64_t ignore, const double *lse, const float *gscale, double mul,
                                float *gx, dv_cu_stream stream);

/* ---- pooling (pool.cu) and resizing (resize.cu): kernels/pool.h, kernels/resize.h, f32 ---- */
/* the backward kernels overwrite gx (one thread per input element gathers its outputs) */
int dv_cu_max_pool2d_f32(const dv_pool2d_geom *g, int64_t P, const float *x, float *y, int32_t *idx,
                         dv_cu_stream stream);
int dv_cu_max_pool2d_bwd_f32(const dv_pool2d_geom *g, int64_t P, const float *gy, const int32_t *idx,
                             float *gx, dv_cu_stream stream);
int dv_cu_avg_pool2d_f32(const dv_pool2d_geom *g, int64_t P, const float *x, float *y, dv_cu_stream stream);
int dv_cu_avg_pool2d_bwd_f32(const dv_pool2d_geom *g, int64_t P, const float *gy, float *gx,
                             dv_cu_stream stream);
int dv_cu_adaptive_avg_pool2d_f32(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                  const float *x, float *y, dv_cu_stream stream);
int dv_cu_adaptive_avg_pool2d_bwd_f32(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                      const float *gy, float *gx, dv_cu_stream stream);
int dv_cu_resize_bilinear_f32(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW,
                              int align_corners, const float *x, float *y, dv_cu_stream stream);
int dv_cu_resize_bilinear_bwd_f32(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                  int align_corners, const float *gy, float *gx, dv_cu_stream stream);
int dv_cu_resize_nearest_f32(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, const float *x,
                             float *y, dv_cu_stream stream);
int dv_cu_resize_nearest_bwd_f32(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 const float *gy, float *gx, dv_cu_stream stream);

/* ---- convolution pieces (conv.cu): kernels/conv.h's layout, f32 ---------------------------- */
int dv_cu_im2col_f32(const dv_conv2d_geom *g, const float *x, float *col, dv_cu_stream stream);
/* x (C, H, W) += col2im(col), deterministic (a gather per input element) */
int dv_cu_col2im_f32(const dv_conv2d_geom *g, const float *col, float *x, dv_cu_stream stream);
/* y (B, C, N) [b][c][:] = bias[c] */
int dv_cu_bias_fill_f32(int64_t B, int64_t C, int64_t N, const float *bias, float *y, dv_cu_stream stream);
/* nb images and G groups at once (g the per-group geometry, Cin = G g->C, K = g->C kh kw,
 * N = OH OW): col (G, K, nb, N) = im2col of x (nb, Cin, H, W); x (nb, Cin, H, W) = col2im of
 * col (overwritten, not accumulated); y (nb, C, N) = t (C, nb, N) transposed, + bias[c] when
 * bias is not NULL */
int dv_cu_im2col_batch_f32(const dv_conv2d_geom *g, int64_t nb, int64_t G, const float *x, float *col,
                           dv_cu_stream stream);
int dv_cu_col2im_batch_f32(const dv_conv2d_geom *g, int64_t nb, int64_t G, const float *col, float *x,
                           dv_cu_stream stream);
int dv_cu_conv_out_f32(int64_t nb, int64_t C, int64_t N, const float *t, const float *bias, float *y,
                       dv_cu_stream stream);

/* ---- reductions beyond sum (reduce_ext.cu): kernels/reduce_ext.h's contracts, f32 ------- */
/* x contiguous (outer, n, inner); y and idx (outer, inner). The CPU's loops per output
 * (kernels/cuda/reduce_math.h), so the results are its bits: the first extreme index, a NaN
 * wins (the first one); logsumexp -inf for n == 0; cumsum accumulates in double. Long lines
 * are shared by a warp or block (reduce_ext.cu): max / min keep the bits, logsumexp's double
 * sum and cumsum's double scan are reassociated (cumsum within one f32 ulp of the CPU). */
/* max (is_max 1) or min (0), n >= 1; y or idx may be NULL */
int dv_cu_extreme_f32(int is_max, int64_t outer, int64_t n, int64_t inner, const float *x, float *y,
                      int64_t *idx, dv_cu_stream stream);
int dv_cu_logsumexp_f32(int64_t outer, int64_t n, int64_t inner, const float *x, float *y, dv_cu_stream stream);
/* y (outer, n, inner); reverse: suffix sums (the backward of cumsum) */
int dv_cu_cumsum_f32(int64_t outer, int64_t n, int64_t inner, const float *x, float *y, int reverse,
                     dv_cu_stream stream);
/* gx (outer, n, inner) = 0 except gx[o, idx[o,j], j] = g[o,j] (idx in [0, n), from the forward) */
int dv_cu_scatter_dim_f32(int64_t outer, int64_t n, int64_t inner, const int64_t *idx, const float *g, float *gx,
                          dv_cu_stream stream);

/* ---- where (select.cu): y[i] = m[i] != 0 ? a[i] : b[i], n contiguous f32 ----------------- */
int dv_cu_where_f32(int64_t n, const float *m, const float *a, const float *b, float *y, dv_cu_stream stream);

/* ---- optimisers besides AdamW (optim.cu), f32, contiguous -------------------------------- */
/* optim/sgd.c's step (buf read / written only with c->use_momentum) */
int dv_cu_sgd_f32(int64_t n, float *p, const float *g, float *buf, const dv_cu_sgd_coefs *c, dv_cu_stream stream);
/* optim/ema.c's update: shadow -= a (shadow - param), a = 1 - decay */
int dv_cu_ema_f32(int64_t n, float *shadow, const float *param, float a, dv_cu_stream stream);
/* x *= c */
int dv_cu_scale_f32(int64_t n, float *x, float c, dv_cu_stream stream);
/* exchange nbytes bytes of a and b (the EMA swap) */
int dv_cu_swap_bytes(int64_t nbytes, void *a, void *b, dv_cu_stream stream);
/* out[0] (one double on the device) = sum x[i]^2 accumulated in double by a fixed-shape tree:
 * deterministic, run to run and GPU to GPU. work: dv_cu_sum_squares_work_bytes bytes. */
size_t dv_cu_sum_squares_work_bytes(void);
int dv_cu_sum_squares_f32(int64_t n, const float *x, double *out, void *work, dv_cu_stream stream);

#ifdef __cplusplus
}
#endif

#endif
