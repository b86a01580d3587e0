/* kernels/cuda/mma.cuh — the tensor-core building blocks shared by gemm.cu, gemm_sm90a.cu,
 * attention.cu and attention_bwd.cu: f16 / bf16 bits <-> f32 chosen by a template flag, two
 * halves packed into one 32-bit register, and mma.sync.aligned.m16n8k16 with f32 accumulators
 * (sm_80+; under DV_SIMT, `make test-cuda-sim`, the CPU emulator's reading of the PTX ISA
 * fragment tables, tests/simt/mma.h). CUDA only (never included by C code).
 *
 * Fragment conventions of m16n8k16 (PTX ISA "Matrix Fragments for mma.m16n8k16"): with
 * g = lane / 4 and t = lane % 4, A registers a0..a3 hold A[g][2t..2t+1], A[g+8][2t..2t+1],
 * A[g][2t+8..], A[g+8][2t+8..]; B registers b0, b1 hold B[2t..2t+1][g], B[2t+8..][g]; the
 * accumulator d0..d3 holds D[g][2t], D[g][2t+1], D[g+8][2t], D[g+8][2t+1]. In each 32-bit
 * register the lower 16 bits hold the lower column (A) or row (B) index: pack(lo, hi).
 */
#ifndef DV_KERNELS_CUDA_MMA_CUH
#define DV_KERNELS_CUDA_MMA_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

namespace dvcu {

template <bool BF16> __device__ __forceinline__ float to_f32(uint16_t h);
template <> __device__ __forceinline__ float to_f32<true>(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }
template <> __device__ __forceinline__ float to_f32<false>(uint16_t h) { return __half2float(__ushort_as_half(h)); }

/* round to nearest even */
template <bool BF16> __device__ __forceinline__ uint16_t from_f32(float x);
template <> __device__ __forceinline__ uint16_t from_f32<true>(float x) { return __bfloat16_as_ushort(__float2bfloat16_rn(x)); }
template <> __device__ __forceinline__ uint16_t from_f32<false>(float x) { return __half_as_ushort(__float2half_rn(x)); }

/* two halves into one 32-bit register, lo = the lower column / row index */
__device__ __forceinline__ uint32_t pack(uint16_t lo, uint16_t hi) { return (uint32_t)lo | ((uint32_t)hi << 16); }
template <bool BF16>
__device__ __forceinline__ uint32_t pack_f32(float lo, float hi) { return pack(from_f32<BF16>(lo), from_f32<BF16>(hi)); }

/* D += A B for one m16n8k16 tile; a: 4 x 32-bit (8 halves), b: 2 x 32-bit, d: 4 f32 */
template <bool BF16>
__device__ __forceinline__ void mma16816(float d[4], const uint32_t a[4], const uint32_t b[2]) {
#ifdef DV_SIMT /* the CPU emulator of `make test-cuda-sim` (tests/simt/simt.h) */
    dv_simt::mma_m16n8k16(BF16, d, a, b, d);
#else
    if (BF16)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                     "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    else
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                     "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

/* the m16n8 accumulators of two adjacent n tiles (lo: columns 0-7, hi: 8-15 of a 16-wide
 * k block) are exactly the m16k16 A fragment of the next mma: the scores of a flash attention
 * go from the S = Q K^T accumulators into P V without touching shared memory */
template <bool BF16>
__device__ __forceinline__ void acc_pair_to_a(uint32_t a[4], const float lo[4], const float hi[4]) {
    a[0] = pack_f32<BF16>(lo[0], lo[1]), a[1] = pack_f32<BF16>(lo[2], lo[3]);
    a[2] = pack_f32<BF16>(hi[0], hi[1]), a[3] = pack_f32<BF16>(hi[2], hi[3]);
}

/* the B fragment (k16 x n8) of column n of a tile stored k by k in shared memory, S[k * ld + n]:
 * b0 = S[k0][n], S[k0 + 1][n]; b1 = S[k0 + 8][n], S[k0 + 9][n], with k0 = the block's first k
 * + 2 (lane % 4) and n = the tile's first column + lane / 4 */
__device__ __forceinline__ void b_from_k_rows(uint32_t b[2], const uint16_t *S, int ld, int k0, int n) {
    b[0] = pack(S[k0 * ld + n], S[(k0 + 1) * ld + n]);
    b[1] = pack(S[(k0 + 8) * ld + n], S[(k0 + 9) * ld + n]);
}

} // namespace dvcu

#endif
