/* kernels/attention.h — fused scaled-dot-product attention kernels (pointers, sizes, strides).
 *
 *   O[b,h,i,:] = sum_j P[i,j] V[b,g(h),j,:],   P[i,:] = softmax_j( S[i,:] ),
 *   S[i,j]     = scale * Q[b,h,i,:] . K[b,g(h),j,:] + bias[b,h,i,j]    (-inf where masked)
 *
 * with q (B, Hq, Tq, D), k (B, Hkv, Tk, D), v (B, Hkv, Tk, Dv), o (B, Hq, Tq, Dv). Grouped-query
 * attention: query head h reads key/value head g(h) = h / (Hq / Hkv) (Hq a multiple of Hkv;
 * Hq == Hkv is plain multi-head attention, Hkv == 1 multi-query attention).
 *
 * Masks. Key j is visible to query i of batch b when
 *   (not causal, or j <= i + causal_offset)  and  (no keep mask, or keep[b, j] != 0).
 * causal_offset = 0 is torch's is_causal (the top-left aligned tril(ones(Tq, Tk))); a decode
 * step with a KV cache (query i sits at position P + i, the cache holds Tk = P + Tq keys) uses
 * causal_offset = Tk - Tq (bottom-right alignment). The additive bias may also carry -inf.
 * A query row that sees no key (all masked) gets O = 0 and logsumexp = -inf, and sends no
 * gradient anywhere — rather than the 0/0 = NaN of a naive softmax.
 *
 * Forward (FlashAttention style): each query row keeps a running maximum m and sum l while it
 * walks the keys, rescaling its output accumulator when m grows, so the (Tq, Tk) score matrix
 * is never stored. It also writes the row's logsumexp L = m + log l, all backward needs.
 * Backward (FlashAttention-2): recompute S tile by tile, P = exp(S - L), and with
 *   Dr_i = sum_d dO[i,d] O[i,d],   dP = dO V^T,   dS = P * (dP - Dr_i)
 *   dV = P^T dO,   dQ = scale dS K,   dK = scale dS^T Q,   dbias = dS
 * (dK, dV summed over the query heads of a group). Any of dq, dk, dv, dbias may be NULL (not
 * wanted). All gradient outputs are contiguous and overwritten (the kernel zeroes them).
 *
 * Layouts: q, k, v are read through (b, h, t) strides in elements and must be unit-stride in
 * the head dim (the op copies otherwise). bias is read through four strides (b, h, i, j), 0 for
 * a broadcast dim; its j stride must be 0 or 1. keep is u8 through (b, j) strides. o is
 * contiguous (B, Hq, Tq, Dv); lse, and Dr, contiguous (B, Hq, Tq); dq (B, Hq, Tq, D);
 * dk (B, Hkv, Tk, D); dv (B, Hkv, Tk, Dv); dbias (B, Hq, dbias_rows, Tk) with dbias_rows 1
 * (the bias is broadcast over queries: the rows are summed) or Tq.
 *
 * Dropout (training): with probability `dropout` an attention weight is zeroed after the
 * softmax and the kept ones are scaled by 1 / (1 - dropout), as torch's dropout on the weights:
 *   O = (Z o P) V,   Z[i,j] = keep(b,h,i,j) / (1 - dropout)
 * The row sums (and the logsumexp) are those of P before dropout. Backward: dV = (Z o P)^T dO,
 * dS = P * (Z o dP - Dr) — Dr = rowsum(dO o O) is still the right row term, O being the dropped
 * output. keep(b,h,i,j) is a pure function of (dropout_seed, b, h, i, j) (dv_attn_drop_row and
 * dv_attn_drop_hash below): the backward regenerates the mask instead of storing it, and the
 * portable, AVX-512 and CUDA kernels draw the same one.
 *
 * Work memory: the kernels get a buffer of dv_attention_work_bytes*() bytes from the caller
 * (so the allocator sees it). It is O(Tq + Tk) per head — packed copies of K and V, per-row
 * values, per-thread tiles — never O(Tq * Tk).
 */
#ifndef DV_KERNELS_ATTENTION_H
#define DV_KERNELS_ATTENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t B, Hq, Hkv, Tq, Tk, D, Dv;
    int64_t q_stride[3], k_stride[3], v_stride[3]; /* (b, h, t), elements; unit stride in d */
    double scale;
    bool causal;
    int64_t causal_offset;      /* key j visible to query i when j <= i + causal_offset */
    const uint8_t *keep;        /* (B, Tk) key padding mask, nonzero = keep; NULL = none */
    int64_t keep_stride[2];     /* (b, j) */
    int64_t bias_stride[4];     /* (b, h, i, j); the bias pointer itself goes to the kernel */
    int64_t dbias_rows;         /* rows of the dbias buffer: 1 or Tq */
    int nthreads;               /* OpenMP threads the kernel may use (sizes the work buffer) */
    double dropout;             /* in [0, 1): probability of zeroing a weight; 0 = no dropout */
    uint64_t dropout_seed;      /* the mask's seed */
} dv_attn_geom;

/* DV_HD: a plain static inline function under gcc, __host__ __device__ under nvcc, so the CUDA
 * kernels (kernels/cuda/attention*.cu) draw the mask with this very code. The same tokens as
 * kernels/cuda/common.h's definition (a repeated identical #define is allowed). */
#ifndef DV_HD
#ifdef __CUDACC__
#define DV_HD __host__ __device__ __forceinline__
#else
#define DV_HD static inline
#endif
#endif

/* The dropout mask. Row key: a 64-bit mix (splitmix64's finaliser) of the seed and (b, h, i);
 * weight j of the row is kept when the 32-bit mix (murmur3's finaliser) of row key ^ j * golden
 * ratio is >= dv_attn_drop_threshold(dropout). One definition for the CPU and the GPU. */
DV_HD uint32_t dv_attn_drop_row(uint64_t seed, int64_t b, int64_t h, int64_t i) {
    uint64_t x = seed ^ ((uint64_t)b * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)h * 0xC2B2AE3D27D4EB4Full) ^
                 ((uint64_t)i * 0x165667B19E3779F9ull);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return (uint32_t)((x ^ (x >> 31)) >> 32);
}
DV_HD uint32_t dv_attn_drop_hash(uint32_t row, uint32_t j) {
    uint32_t x = row ^ (j * 0x9E3779B9u);
    x ^= x >> 16, x *= 0x85EBCA6Bu;
    x ^= x >> 13, x *= 0xC2B2AE35u;
    return x ^ (x >> 16);
}
DV_HD uint32_t dv_attn_drop_threshold(double dropout) {
    return dropout <= 0 ? 0 : dropout >= 1 ? UINT32_MAX : (uint32_t)(dropout * 4294967296.0);
}

/* bytes of work memory for the portable kernels (element size esize) and the AVX-512 ones */
size_t dv_attention_work_bytes_portable(const dv_attn_geom *g, bool backward, size_t esize);
size_t dv_attention_work_bytes_f32_avx512(const dv_attn_geom *g, bool backward);

void dv_attention_fwd_f32_portable(const dv_attn_geom *g, const float *q, const float *k,
                                   const float *v, const float *bias, float *o, float *lse,
                                   void *work);
void dv_attention_fwd_f64_portable(const dv_attn_geom *g, const double *q, const double *k,
                                   const double *v, const double *bias, double *o, double *lse,
                                   void *work);
void dv_attention_bwd_f32_portable(const dv_attn_geom *g, const float *q, const float *k,
                                   const float *v, const float *bias, const float *o,
                                   const float *lse, const float *dout, float *dq, float *dk,
                                   float *dv, float *dbias, void *work);
void dv_attention_bwd_f64_portable(const dv_attn_geom *g, const double *q, const double *k,
                                   const double *v, const double *bias, const double *o,
                                   const double *lse, const double *dout, double *dq, double *dk,
                                   double *dv, double *dbias, void *work);

void dv_attention_fwd_f32_avx512(const dv_attn_geom *g, const float *q, const float *k,
                                 const float *v, const float *bias, float *o, float *lse,
                                 void *work);
void dv_attention_bwd_f32_avx512(const dv_attn_geom *g, const float *q, const float *k,
                                 const float *v, const float *bias, const float *o,
                                 const float *lse, const float *dout, float *dq, float *dk,
                                 float *dv, float *dbias, void *work);

#endif
