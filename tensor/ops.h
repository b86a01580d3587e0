/* tensor/ops.h — the op vocabulary. Every op has a forward and a backward (where the op is
 * differentiable), works on any strides (non-contiguous views are fine), computes in f32 or
 * f64 (f64 is for gradient checks), and dispatches to the portable, AVX-512 or CUDA kernel by
 * the tensor's device and the CPU's features. Results are new references.
 *
 * Shape conventions follow PyTorch: negative dims count from the end; binary ops broadcast
 * by numpy rules; reductions take a list of dims (NULL / 0 dims = all) and keepdim.
 * A bad call (shapes that do not fit, wrong dtype, mixed devices) aborts naming the op and
 * the shapes.
 */
#ifndef DV_TENSOR_OPS_H
#define DV_TENSOR_OPS_H

#include "tensor/tensor.h"
#include "kernels/elementwise.h" /* dv_unary_op, dv_binary_op */

/* ---- elementwise unary (tensor/ops_unary.c) ---------------------------------------------- */
dv_tensor *dv_unary(dv_unary_op op, dv_tensor *x, double p1, double p2);
dv_tensor *dv_neg(dv_tensor *x);
dv_tensor *dv_exp(dv_tensor *x);
dv_tensor *dv_log(dv_tensor *x);
dv_tensor *dv_sqrt(dv_tensor *x);
dv_tensor *dv_rsqrt(dv_tensor *x);
dv_tensor *dv_abs(dv_tensor *x);
dv_tensor *dv_tanh(dv_tensor *x);
dv_tensor *dv_sigmoid(dv_tensor *x);
dv_tensor *dv_relu(dv_tensor *x);
dv_tensor *dv_gelu(dv_tensor *x);        /* exact: x * Phi(x) */
dv_tensor *dv_gelu_tanh(dv_tensor *x);   /* tanh approximation */
dv_tensor *dv_quick_gelu(dv_tensor *x);  /* x * sigmoid(1.702 x), CLIP */
dv_tensor *dv_silu(dv_tensor *x);
dv_tensor *dv_square(dv_tensor *x);
dv_tensor *dv_pow_scalar(dv_tensor *x, double p);
dv_tensor *dv_clamp(dv_tensor *x, double lo, double hi);
dv_tensor *dv_scale(dv_tensor *x, double s);
dv_tensor *dv_add_scalar(dv_tensor *x, double s);

/* ---- elementwise binary with broadcasting (tensor/ops_binary.c) -------------------------- */
dv_tensor *dv_binary(dv_binary_op op, dv_tensor *a, dv_tensor *b);
dv_tensor *dv_add(dv_tensor *a, dv_tensor *b);
dv_tensor *dv_sub(dv_tensor *a, dv_tensor *b);
dv_tensor *dv_mul(dv_tensor *a, dv_tensor *b);
dv_tensor *dv_div(dv_tensor *a, dv_tensor *b);
dv_tensor *dv_pow(dv_tensor *a, dv_tensor *b);
dv_tensor *dv_maximum(dv_tensor *a, dv_tensor *b);
dv_tensor *dv_minimum(dv_tensor *a, dv_tensor *b);
/* where(cond, a, b): cond bool (or any dtype, nonzero = true), all three broadcast */
dv_tensor *dv_where(dv_tensor *cond, dv_tensor *a, dv_tensor *b);
dv_tensor *dv_masked_fill(dv_tensor *x, dv_tensor *mask, double value);

/* ---- reductions (tensor/ops_reduce.c) ---------------------------------------------------- */
dv_tensor *dv_sum(dv_tensor *x, const int *dims, int ndims, bool keepdim);
dv_tensor *dv_mean(dv_tensor *x, const int *dims, int ndims, bool keepdim);
dv_tensor *dv_var(dv_tensor *x, const int *dims, int ndims, int correction, bool keepdim);
dv_tensor *dv_sum_all(dv_tensor *x);     /* 0-d */
dv_tensor *dv_mean_all(dv_tensor *x);    /* 0-d */
dv_tensor *dv_max(dv_tensor *x, int dim, bool keepdim);        /* values; grad to the argmax */
dv_tensor *dv_min(dv_tensor *x, int dim, bool keepdim);
dv_tensor *dv_argmax(dv_tensor *x, int dim, bool keepdim);     /* i64, first maximum */
dv_tensor *dv_logsumexp(dv_tensor *x, int dim, bool keepdim);
dv_tensor *dv_cumsum(dv_tensor *x, int dim);

/* ---- matrix products (tensor/ops_matmul.c) ----------------------------------------------- */
/* torch.matmul semantics for ndim >= 1, batch dims broadcast. Transposed operands are just
 * views (dv_transpose): they reach the GEMM as transpose flags, not copies. b may be f16/bf16
 * (stored weights; no gradient flows into a half tensor). */
dv_tensor *dv_matmul(dv_tensor *a, dv_tensor *b);
/* x (..., in) · w(out, in)^T + bias(out); w may be f32, f16 or bf16; bias may be NULL */
dv_tensor *dv_linear(dv_tensor *x, dv_tensor *w, dv_tensor *bias);

/* ---- normalisation and softmax (tensor/ops_norm.c) --------------------------------------- */
dv_tensor *dv_softmax(dv_tensor *x, int dim);
dv_tensor *dv_log_softmax(dv_tensor *x, int dim);
/* over the last dim; weight / bias (C) may be NULL */
dv_tensor *dv_layer_norm(dv_tensor *x, dv_tensor *weight, dv_tensor *bias, double eps);
dv_tensor *dv_rms_norm(dv_tensor *x, dv_tensor *weight, double eps);

/* ---- indexing and joining (tensor/ops_index.c) ------------------------------------------- */
dv_tensor *dv_embedding(dv_tensor *weight, dv_tensor *ids);   /* (V, C), ids any shape -> (..., C) */
dv_tensor *dv_index_select(dv_tensor *x, int dim, dv_tensor *index);   /* index 1-D i32/i64 */
dv_tensor *dv_gather(dv_tensor *x, int dim, dv_tensor *index);         /* torch.gather */
dv_tensor *dv_concat(dv_tensor *const *xs, int n, int dim);
dv_tensor *dv_stack(dv_tensor *const *xs, int n, int dim);
/* out[i] = slice of sizes[i] along dim (views) */
void dv_split(dv_tensor *x, const int64_t *sizes, int n, int dim, dv_tensor **out);
dv_tensor *dv_one_hot(dv_tensor *index, int64_t num_classes, dv_dtype dt);

/* ---- convolution, pooling, resizing (tensor/ops_conv.c, ops_pool.c, ops_resize.c) -------- */
/* x (B, Cin, H, W), w (Cout, Cin/groups, kh, kw), bias (Cout) or NULL */
dv_tensor *dv_conv2d(dv_tensor *x, dv_tensor *w, dv_tensor *bias, const int stride[2],
                     const int padding[2], const int dilation[2], int groups);
dv_tensor *dv_max_pool2d(dv_tensor *x, const int kernel[2], const int stride[2], const int padding[2]);
/* count_include_pad as PyTorch's default (true) */
dv_tensor *dv_avg_pool2d(dv_tensor *x, const int kernel[2], const int stride[2], const int padding[2]);
dv_tensor *dv_adaptive_avg_pool2d(dv_tensor *x, int64_t out_h, int64_t out_w);
dv_tensor *dv_resize_bilinear(dv_tensor *x, int64_t out_h, int64_t out_w, bool align_corners);
dv_tensor *dv_resize_nearest(dv_tensor *x, int64_t out_h, int64_t out_w);

/* ---- losses (tensor/ops_loss.c): all reduce by mean to a 0-d tensor ---------------------- */
dv_tensor *dv_mse_loss(dv_tensor *pred, dv_tensor *target);
dv_tensor *dv_l1_loss(dv_tensor *pred, dv_tensor *target);
dv_tensor *dv_bce_with_logits(dv_tensor *logits, dv_tensor *target);
/* logits (N, C), target (N) i32/i64; mean over targets != ignore_index */
dv_tensor *dv_cross_entropy(dv_tensor *logits, dv_tensor *target, int64_t ignore_index);

#endif
