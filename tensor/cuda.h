/* tensor/cuda.h — the CUDA device runtime: devices, a caching device allocator, streams,
 * host <-> device copies, and tensors on `cuda:N`.
 *
 * Built on the CUDA runtime (linked statically, so a binary starts on a machine without a
 * driver and can say so) when the build found nvcc (DV_HAVE_CUDA); otherwise every function
 * here still exists, dv_cuda_available() is false and whatever needs a device aborts with
 * "built without CUDA".
 *
 *   if (dv_cuda_available()) {
 *       dv_tensor *xd = dv_tensor_to(x, dv_device_cuda(0));   // a copy on GPU 0
 *       dv_reg_to(&reg, dv_device_cuda(0));                    // every parameter, in place
 *   } else fprintf(stderr, "%s\n", dv_cuda_unavailable_reason());
 *
 * Memory: device blocks come from cudaMalloc (never managed memory) and are cached by size
 * class, like tensor/alloc.c does for the host: a freed block goes back on its class's free
 * list, the next allocation of that class reuses it. When cudaMalloc fails the cache is given
 * back and the allocation retried once; if it fails again the program aborts naming the
 * requested size and the device's free and total memory (dv_cuda_alloc_try returns NULL with
 * that message instead). DV_CUDA_CACHE_MB caps the cache (default: unlimited).
 *
 * Streams: each device has one non-blocking stream (dv_cuda_stream) on which every op
 * enqueues its kernels, so ops on one device run in program order without host syncs. Copies
 * to the host synchronise that stream.
 *
 * Copies: host <-> device go through two pinned staging buffers of 8 MiB per process
 * (cudaHostAlloc'd once), alternating, so the memcpy into one overlaps the DMA of the other.
 *
 * What this does not do: multi-stream scheduling, CUDA graphs, peer-to-peer beyond
 * cudaMemcpyPeer, unified memory, autograd through a device copy (dv_tensor_to records no
 * graph node: move leaves, then build the graph on the device).
 */
#ifndef DV_TENSOR_CUDA_H
#define DV_TENSOR_CUDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/attention.h"
#include "kernels/conv.h"
#include "kernels/diffusion.h"
#include "kernels/pool.h"
#include "tensor/tensor.h"

static inline dv_device dv_device_cuda(int index) { return (dv_device){DV_CUDA, index}; }
/* "cpu" or "cuda:0" (a static ring of buffers) */
const char *dv_device_str(dv_device d);
/* "cpu", "cuda", "cuda:1" -> device; returns 0, or -1 with a message in err */
int dv_device_parse(const char *s, dv_device *out, char *err, size_t errlen);

/* ---- devices ---------------------------------------------------------------------------- */
bool dv_cuda_available(void);                /* a driver and at least one device */
const char *dv_cuda_unavailable_reason(void); /* why not, one line; "" when available */
int dv_cuda_device_count(void);              /* 0 when unavailable */
typedef struct {
    char name[256];
    int major, minor;          /* compute capability */
    int sm_count;
    int64_t total_bytes, free_bytes;
    int64_t l2_bytes;
    double mem_clock_khz;
    int mem_bus_bits;
} dv_cuda_info;
int dv_cuda_device_info(int dev, dv_cuda_info *out); /* 0, or -1 (no such device) */
void dv_cuda_set_device(int dev);            /* makes dev current for this thread */
const char *dv_cuda_error_str(int err);      /* cudaGetErrorString */
/* abort with what and the error text unless err == 0 (the kernels' return values) */
void dv_cuda_check(int err, const char *what);

/* ---- memory ----------------------------------------------------------------------------- */
void *dv_cuda_alloc(int dev, int64_t nbytes);    /* aborts on out-of-memory (see above) */
void *dv_cuda_alloc_try(int dev, int64_t nbytes, char *err, size_t errlen); /* NULL + message */
void dv_cuda_free(int dev, void *p, int64_t nbytes);
typedef struct {
    int64_t live_bytes, cached_bytes, peak_bytes, n_alloc, n_cache_hits, n_cuda_malloc;
} dv_cuda_alloc_stats;
dv_cuda_alloc_stats dv_cuda_get_stats(int dev);
void dv_cuda_trim(int dev);                  /* cudaFree every cached block */
void dv_cuda_reset_peak(int dev);

/* ---- streams and copies ----------------------------------------------------------------- */
void *dv_cuda_stream(int dev);               /* cudaStream_t of dev */
void dv_cuda_synchronize(int dev);           /* wait for everything enqueued on dev's stream */
/* n bytes; host memory is ordinary (pageable) memory: the copy is staged through pinned
 * buffers. Both return when the host side may be reused (h2d) or holds the data (d2h). An
 * upload of up to 64 KiB is queued behind the stream's work without waiting for it; a larger
 * one waits for the stream to drain. */
void dv_cuda_copy_h2d(int dev, void *dst, const void *src, int64_t n);
void dv_cuda_copy_d2h(int dev, void *dst, const void *src, int64_t n);
void dv_cuda_copy_d2d(int dev, void *dst, const void *src, int64_t n); /* same device, async */

/* ---- tensors ---------------------------------------------------------------------------- */
/* an uninitialised / zeroed contiguous tensor on device d (CPU: dv_empty / dv_zeros) */
dv_tensor *dv_empty_on(dv_dtype dt, const int64_t *shape, int ndim, dv_device d);
dv_tensor *dv_zeros_on(dv_dtype dt, const int64_t *shape, int ndim, dv_device d);
/* a contiguous copy of t on device d (a new reference to t itself when it is already there
 * and contiguous). No graph node is recorded; requires_grad is not carried over. */
dv_tensor *dv_tensor_to(dv_tensor *t, dv_device d);
/* move a leaf in place: its storage is replaced by a contiguous copy on d (and its ->grad
 * moved too), so every pointer to the tensor — a layer field, an optimiser list — stays
 * valid. Tensors sharing one storage (tied weights) become separate copies. */
void dv_tensor_move_(dv_tensor *t, dv_device d);
/* dv_tensor_move_ on n tensors (a dv_params / dv_registry's list) */
void dv_tensors_move_(dv_tensor *const *ts, int n, dv_device d);

/* for ops: the stream of t's device (and makes the device current) */
void *dv_cuda_stream_of(const dv_tensor *t);

/* tensor/tensor.c's dv_copy_ / dv_fill_ on a CUDA tensor: copies from any source strides with
 * any dtype conversion, into a contiguous destination or a view that does not overlap itself
 * (an expanded destination aborts); fills of a contiguous tensor */
void dv_cuda_copy_tensor_(dv_tensor *dst, const dv_tensor *src);
void dv_cuda_fill_tensor_(dv_tensor *t, double value);


/* ---- op entry points: the tensor/ ops call these for tensors on a CUDA device ------------- */
/* abort unless t is on the CPU, or on a CUDA device with an f32 kernel for op in this build */
void dv_require_kernel(const char *op, const dv_tensor *t);
/* contiguous f32 operands on one device; y / gx / gw / gb already allocated there; optional
 * tensors may be NULL (kernels/cuda/kernels.h contracts) */
void dv_cuda_unary(int op, const dv_tensor *x, dv_tensor *y, double p1, double p2);
void dv_cuda_unary_bwd(int op, const dv_tensor *x, const dv_tensor *y, const dv_tensor *gy, dv_tensor *gx,
                       double p1, double p2);
void dv_cuda_binary(int op, int ndim, const int64_t *shape, const dv_tensor *a, const int64_t *sa,
                    const dv_tensor *b, const int64_t *sb, dv_tensor *y);
void dv_cuda_sum_dim(int64_t outer, int64_t n, int64_t inner, const dv_tensor *x, dv_tensor *y);
void dv_cuda_scale_(dv_tensor *t, double s); /* t *= s in place */
void dv_cuda_softmax_fwd(bool log, int64_t rows, int64_t n, const dv_tensor *x, dv_tensor *y);
void dv_cuda_softmax_bwd(bool log, int64_t rows, int64_t n, const dv_tensor *y, const dv_tensor *gy, dv_tensor *gx);
void dv_cuda_layernorm_fwd(int64_t rows, int64_t n, const dv_tensor *x, const dv_tensor *w, const dv_tensor *b,
                           double eps, dv_tensor *y, dv_tensor *mean, dv_tensor *rstd);
void dv_cuda_layernorm_bwd(int64_t rows, int64_t n, const dv_tensor *x, const dv_tensor *w, const dv_tensor *mean,
                           const dv_tensor *rstd, const dv_tensor *gy, dv_tensor *gx, dv_tensor *gw, dv_tensor *gb);
void dv_cuda_rmsnorm_fwd(int64_t rows, int64_t n, const dv_tensor *x, const dv_tensor *w, double eps, dv_tensor *y,
                         dv_tensor *rstd);
/* C (f32, row-major, ldc) = alpha op(A) op(B) + beta C on device dev, kernels/gemm.h layouts:
 * A f32 (rounded to B's dtype on the way in, as mixed-precision training does), B f16 / bf16
 * (bdt), through the tensor-core GEMM; or B f32 (bdt DV_F32) through the f32 CUDA-core GEMM. */
void dv_cuda_gemm_f32_half(int dev, dv_dtype bdt, int ta, int tb, int64_t M, int64_t N, int64_t K, double alpha,
                           const float *A, int64_t lda, const void *B, int64_t ldb, double beta, float *C,
                           int64_t ldc);
/* f32 GEMMs on the GPU (dv_cuda_gemm_f32_half with an f32 B, conv2d) through the TF32 tensor
 * cores (kernels/cuda/sgemm_tf32.cu: inputs rounded to 10 mantissa bits, f32 accumulation;
 * ~1e-3 relative instead of ~1e-6, several times faster). Off by default; DV_CUDA_TF32=1 in
 * the environment turns it on at start, dv_cuda_set_tf32 at any time (process-wide). */
void dv_cuda_set_tf32(bool on);
bool dv_cuda_tf32(void);
/* tensor/rng.c's fill on a contiguous f32 / f64 CUDA tensor: kind 0 uniform [a, b), 1 normal
 * (mean a, std b), 2 randint [a, b); the same numbers as the CPU for the same (seed, offset) */
void dv_cuda_rng_fill(int kind, uint64_t seed, uint64_t offset, dv_tensor *t, double a, double b);
void dv_cuda_rmsnorm_bwd(int64_t rows, int64_t n, const dv_tensor *x, const dv_tensor *w, const dv_tensor *rstd,
                         const dv_tensor *gy, dv_tensor *gx, dv_tensor *gw);

/* the fused nn kernels (kernels/cuda/kernels.h contracts, f32, contiguous operands on one
 * device; outputs allocated there by the caller): nn/rotary.c, nn/bias_act.c, nn/modulate.c,
 * nn/diffusion.c call these for tensors on a CUDA device */
void dv_cuda_rotary(int64_t B, int64_t H, int64_t T, int64_t D, int64_t rot, int interleaved, int transpose,
                    const dv_tensor *x, const dv_tensor *cos, const dv_tensor *sin, int64_t tab_bstride, dv_tensor *y);
void dv_cuda_bias_act_fwd(int act, int64_t R, int64_t N, const dv_tensor *x, const dv_tensor *b, dv_tensor *y);
void dv_cuda_bias_act_bwd(int act, int64_t R, int64_t N, const dv_tensor *x, const dv_tensor *b, const dv_tensor *gy,
                          dv_tensor *gx, dv_tensor *gb);
void dv_cuda_modulate(int64_t B, int64_t T, int64_t C, const dv_tensor *x, const dv_tensor *shift,
                      const dv_tensor *scale, double one, dv_tensor *y);
void dv_cuda_modulate_bwd(int64_t B, int64_t T, int64_t C, const dv_tensor *x, const dv_tensor *scale, double one,
                          const dv_tensor *g, dv_tensor *gx, dv_tensor *gshift, dv_tensor *gscale);
/* mean / rstd: f32 (B * T) on the device */
void dv_cuda_ln_modulate(int64_t B, int64_t T, int64_t C, const dv_tensor *x, const dv_tensor *shift,
                         const dv_tensor *scale, double eps, dv_tensor *y, dv_tensor *mean, dv_tensor *rstd);
void dv_cuda_ln_modulate_bwd(int64_t B, int64_t T, int64_t C, const dv_tensor *x, const dv_tensor *mean,
                             const dv_tensor *rstd, const dv_tensor *scale, const dv_tensor *g, dv_tensor *gx,
                             dv_tensor *gshift, dv_tensor *gscale);
void dv_cuda_gated_residual(int64_t B, int64_t T, int64_t C, const dv_tensor *x, const dv_tensor *gate,
                            const dv_tensor *h, dv_tensor *y);
void dv_cuda_diffusion_step(const dv_tensor *model_output, const dv_tensor *sample, const dv_tensor *noise,
                            dv_tensor *out, dv_tensor *pred_x0, const dv_diffusion_coef *c);

/* nn/attention.c on CUDA tensors: the flash kernels of kernels/cuda/attention*.cu. q, k, v are
 * f32 on the device (read through g's strides, unit stride in d); they are rounded to bf16 for
 * the tensor cores (as dv_cuda_gemm_f32_half rounds A, and P before P V), the softmax
 * statistics and the output accumulator stay f32, o
 * (contiguous (B, Hq, Tq, Dv)), lse (f32 (B, Hq, Tq)) and the gradients dq, dk, dv, dbias
 * (contiguous, overwritten, any may be NULL; dbias (B, Hq, g->dbias_rows, Tk)) are f32. The
 * bias (NULL = none) stays f32, read through g->bias_stride. Expect bf16-level agreement with
 * the CPU (~1e-2). Supported: causal with offset, key padding mask (u8 / bool on the device),
 * GQA, the additive bias, dropout (the CPU's mask, bit for bit), any D, Dv up to 128 (padded to
 * a common multiple of 8 in the bf16 copies). dv_cuda_attention_check aborts with a clear
 * message for anything else. */
void dv_cuda_attention_check(const dv_attn_geom *g);
void dv_cuda_attention_fwd(const dv_attn_geom *g, const dv_tensor *q, const dv_tensor *k, const dv_tensor *v,
                           const dv_tensor *bias, dv_tensor *o, dv_tensor *lse);
void dv_cuda_attention_bwd(const dv_attn_geom *g, const dv_tensor *q, const dv_tensor *k, const dv_tensor *v,
                           const dv_tensor *bias, const dv_tensor *o, const dv_tensor *lse, const dv_tensor *dout,
                           dv_tensor *dq, dv_tensor *dk, dv_tensor *dv, dv_tensor *dbias);

/* tensor/ops_index.c, ops_loss.c, ops_pool.c, ops_resize.c on CUDA tensors
 * (kernels/cuda/kernels.h contracts). Index tensors are i64, contiguous, on the device and
 * already range-checked on the host; the backward kernels and the losses take f32. */
void dv_cuda_take_rows(int64_t outer, int64_t k, int64_t n, int64_t inner, const dv_tensor *idx, const dv_tensor *src,
                       dv_tensor *dst);
void dv_cuda_index_add_rows(int64_t outer, int64_t k, int64_t n, int64_t inner, const dv_tensor *idx,
                            const dv_tensor *src, dv_tensor *dst);
void dv_cuda_gather(int dim, const dv_tensor *idx, const dv_tensor *x, dv_tensor *y); /* x through its strides */
/* concat: x (any strides, any dtype) into y[..., off : off + x.shape[d], ...] along dim d (y contiguous) */
void dv_cuda_concat_piece(const dv_tensor *x, dv_tensor *y, int d, int64_t off);
void dv_cuda_scatter_add(int dim, const dv_tensor *idx, const dv_tensor *src, dv_tensor *x); /* x contiguous */
/* the mean loss as a 0-d f32 tensor on x's device; the backward reads the upstream gradient g
 * (0-d, on the device) there, so nothing waits for the host */
dv_tensor *dv_cuda_bce_logits(const dv_tensor *x, const dv_tensor *t);
void dv_cuda_bce_logits_bwd(const dv_tensor *x, const dv_tensor *t, const dv_tensor *g, dv_tensor *gx, dv_tensor *gt);
dv_tensor *dv_cuda_cross_entropy(int64_t rows, int64_t n, const dv_tensor *x, const dv_tensor *target, int64_t ignore,
                                 int64_t count, dv_tensor *lse);
void dv_cuda_cross_entropy_bwd(int64_t rows, int64_t n, const dv_tensor *x, const dv_tensor *target, int64_t ignore,
                               const dv_tensor *lse, const dv_tensor *g, int64_t count, dv_tensor *gx);
void dv_cuda_max_pool2d(const dv_pool2d_geom *g, int64_t P, const dv_tensor *x, dv_tensor *y, dv_tensor *idx);
void dv_cuda_max_pool2d_bwd(const dv_pool2d_geom *g, int64_t P, const dv_tensor *gy, const dv_tensor *idx, dv_tensor *gx);
void dv_cuda_avg_pool2d(const dv_pool2d_geom *g, int64_t P, const dv_tensor *x, dv_tensor *y);
void dv_cuda_avg_pool2d_bwd(const dv_pool2d_geom *g, int64_t P, const dv_tensor *gy, dv_tensor *gx);
void dv_cuda_adaptive_avg_pool2d(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, const dv_tensor *x,
                                 dv_tensor *y);
void dv_cuda_adaptive_avg_pool2d_bwd(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, const dv_tensor *gy,
                                     dv_tensor *gx);
void dv_cuda_resize(bool bilinear, int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, int align_corners,
                    const dv_tensor *x, dv_tensor *y);
void dv_cuda_resize_bwd(bool bilinear, int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, int align_corners,
                        const dv_tensor *gy, dv_tensor *gx);

/* tensor/ops_conv.c on CUDA tensors: im2col + the f32 GEMM over chunks of images (one GEMM per
 * group and chunk; the workspace capped by DV_CUDA_CONV_WORKSPACE_KB, default 256 MiB), g the
 * per-group geometry (C = Cin / G); x (B, Cin, H, W), w (Cout, Cin / G, kh, kw), y, gy
 * (B, Cout, OH, OW), all contiguous f32 on one device. The backward computes what is non-NULL
 * (dx, dw overwritten; db the sum of gy over b, OH, OW). */
void dv_cuda_conv2d(const dv_conv2d_geom *g, int64_t B, int64_t Cin, int64_t Cout, int64_t G, const dv_tensor *x,
                    const dv_tensor *w, const dv_tensor *bias, dv_tensor *y);
void dv_cuda_conv2d_bwd(const dv_conv2d_geom *g, int64_t B, int64_t Cin, int64_t Cout, int64_t G, const dv_tensor *x,
                        const dv_tensor *w, const dv_tensor *gy, dv_tensor *dx, dv_tensor *dw, dv_tensor *db);

/* tensor/ops_reduce.c (max / min / argmax, logsumexp, cumsum), ops_binary.c's where and the
 * optimisers (optim/sgd.c, ema.c, clip.c) on CUDA tensors: f32, contiguous, one device,
 * outputs allocated there by the caller (kernels/cuda/kernels.h contracts) */
void dv_cuda_extreme(bool is_max, int64_t outer, int64_t n, int64_t inner, const dv_tensor *x, dv_tensor *y,
                     dv_tensor *idx); /* y may be NULL (argmax); idx i64 */
void dv_cuda_logsumexp(int64_t outer, int64_t n, int64_t inner, const dv_tensor *x, dv_tensor *y);
void dv_cuda_cumsum(int64_t outer, int64_t n, int64_t inner, const dv_tensor *x, dv_tensor *y, int reverse);
void dv_cuda_scatter_dim(int64_t outer, int64_t n, int64_t inner, const dv_tensor *idx, const dv_tensor *g,
                         dv_tensor *gx);
/* the backward of a same-shape binary op (contiguous a, b, gy; ga / gb may be NULL):
 * dv_cu_binary_bwd_f32, used for max / min (1 to the winner, 0.5 on a tie, 0 at a NaN) */
void dv_cuda_binary_bwd(int op, const dv_tensor *a, const dv_tensor *b, const dv_tensor *gy, dv_tensor *ga,
                        dv_tensor *gb);
void dv_cuda_where(const dv_tensor *m, const dv_tensor *a, const dv_tensor *b, dv_tensor *y); /* m 0 / 1 f32 */
/* one SGD step of optim/sgd.c on p (buf: the momentum buffer, NULL without momentum) */
void dv_cuda_sgd(dv_tensor *p, const dv_tensor *g, dv_tensor *buf, double lr, double momentum, double dampening,
                 double weight_decay, bool nesterov, bool first);
void dv_cuda_ema(dv_tensor *shadow, const dv_tensor *param, double a); /* shadow -= a (shadow - param) */
void dv_cuda_swap_(dv_tensor *a, dv_tensor *b);                      /* exchange the contents */
/* sum of g^2 in double (deterministic order on the device); waits for g's stream */
double dv_cuda_sum_squares(const dv_tensor *g);
/* out[k] = the sum of squares of gs[k] (contiguous f32 on CUDA devices, any mix of devices):
 * one wait per device instead of one per tensor (clip_grad_norm's per-parameter sums) */
void dv_cuda_sum_squares_batch(dv_tensor *const *gs, int n, double *out);
void dv_cuda_mul_scalar_(dv_tensor *t, double c); /* t *= (float)c, as optim/clip.c's scaling */

#endif
