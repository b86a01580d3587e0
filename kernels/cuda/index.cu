/* kernels/cuda/index.cu — indexing on the GPU: row selection (embedding, index_select),
 * gather along a dim, and their backward (index-add of rows, scatter-add), and the block copy
 * of concat; the semantics of tensor/ops_index.c. Indices are i64 on the device and already range-checked by the op.
 *
 * The forward moves elements of 1, 2, 4 or 8 bytes (any dtype), one thread per output
 * element. The backward adds f32 gradients into a zeroed destination with atomicAdd: several
 * positions may name one row (repeated token ids), and a gather-style deterministic backward
 * would need the inverse index. The sums are therefore not bit-reproducible run to run (the
 * order of the atomic adds varies); they agree with the CPU to f32 rounding.
 * Not here: f64 / half backward, a sort-based deterministic embedding backward.
 */
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/op_math.h"

namespace {

struct IdxGeom { int ndim, dim; int64_t ish[8], xs[8]; };

/* dst (outer, k, inner) [o][j][c] = src (outer, n, inner) [o][idx[j]][c] */
template <typename U>
__global__ void take_rows_kernel(int64_t total, int64_t k, int64_t n, int64_t inner, const int64_t *__restrict__ idx,
                                 const U *__restrict__ src, U *__restrict__ dst) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t c = e % inner, r = e / inner, j = r % k, o = r / k;
        dst[e] = src[(o * n + idx[j]) * inner + c];
    }
}

/* dst (outer, n, inner) [o][idx[j]][c] += src (outer, k, inner) [o][j][c] */
__global__ void index_add_rows_kernel(int64_t total, int64_t k, int64_t n, int64_t inner,
                                      const int64_t *__restrict__ idx, const float *__restrict__ src,
                                      float *__restrict__ dst) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t c = e % inner, r = e / inner, j = r % k, o = r / k;
        atomicAdd(&dst[(o * n + idx[j]) * inner + c], src[e]);
    }
}

template <typename U>
__global__ void gather_kernel(int64_t m, IdxGeom g, const int64_t *__restrict__ idx, const U *__restrict__ x,
                              U *__restrict__ y) {
    DV_CU_GRID_STRIDE(i, m) y[i] = x[dv_cu_gather_offset(g.ndim, g.ish, g.dim, g.xs, i, idx[i])];
}

__global__ void scatter_add_kernel(int64_t m, IdxGeom g, const int64_t *__restrict__ idx, const float *__restrict__ src,
                                   float *__restrict__ x) {
    DV_CU_GRID_STRIDE(i, m) atomicAdd(&x[dv_cu_gather_offset(g.ndim, g.ish, g.dim, g.xs, i, idx[i])], src[i]);
}

/* dst[o * dst_ld + c] = src[o * src_ld + c], c < width: a block of rows (concat) */
template <typename U>
__global__ void copy_rows_kernel(int64_t total, int64_t width, const U *__restrict__ src, int64_t src_ld,
                                 U *__restrict__ dst, int64_t dst_ld) {
    DV_CU_GRID_STRIDE(e, total) {
        int64_t o = e / width, c = e % width;
        dst[o * dst_ld + c] = src[o * src_ld + c];
    }
}

template <typename U>
void copy_rows_launch(int64_t outer, int64_t width, const void *src, int64_t src_ld, void *dst, int64_t dst_ld,
                      cudaStream_t s) {
    int64_t total = outer * width;
    copy_rows_kernel<U><<<dvcu::grid_for(total), dvcu::kThreads, 0, s>>>(total, width, (const U *)src, src_ld, (U *)dst,
                                                                          dst_ld);
}

template <typename U>
void take_rows_launch(int64_t total, int64_t k, int64_t n, int64_t inner, const int64_t *idx, const void *src,
                      void *dst, cudaStream_t s) {
    take_rows_kernel<U><<<dvcu::grid_for(total), dvcu::kThreads, 0, s>>>(total, k, n, inner, idx, (const U *)src,
                                                                         (U *)dst);
}

template <typename U>
void gather_launch(int64_t m, const IdxGeom &g, const int64_t *idx, const void *x, void *y, cudaStream_t s) {
    gather_kernel<U><<<dvcu::grid_for(m), dvcu::kThreads, 0, s>>>(m, g, idx, (const U *)x, (U *)y);
}

bool make_geom(int ndim, const int64_t *ish, int dim, const int64_t *xs, IdxGeom *g) {
    if (ndim < 1 || ndim > 8 || dim < 0 || dim >= ndim) return false;
    g->ndim = ndim, g->dim = dim;
    for (int d = 0; d < ndim; d++) g->ish[d] = ish[d], g->xs[d] = xs[d];
    return true;
}

} // namespace

extern "C" int dv_cu_take_rows(int esize, int64_t outer, int64_t k, int64_t n, int64_t inner, const int64_t *idx,
                               const void *src, void *dst, dv_cu_stream stream) {
    int64_t total = outer * k * inner;
    if (total <= 0) return 0;
    cudaStream_t s = (cudaStream_t)stream;
    switch (esize) {
    case 1: take_rows_launch<uint8_t>(total, k, n, inner, idx, src, dst, s); break;
    case 2: take_rows_launch<uint16_t>(total, k, n, inner, idx, src, dst, s); break;
    case 4: take_rows_launch<uint32_t>(total, k, n, inner, idx, src, dst, s); break;
    case 8: take_rows_launch<uint64_t>(total, k, n, inner, idx, src, dst, s); break;
    default: return (int)cudaErrorInvalidValue;
    }
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_copy_rows(int esize, int64_t outer, int64_t width, const void *src, int64_t src_ld, void *dst,
                               int64_t dst_ld, dv_cu_stream stream) {
    if (outer * width <= 0) return 0;
    cudaStream_t s = (cudaStream_t)stream;
    switch (esize) {
    case 1: copy_rows_launch<uint8_t>(outer, width, src, src_ld, dst, dst_ld, s); break;
    case 2: copy_rows_launch<uint16_t>(outer, width, src, src_ld, dst, dst_ld, s); break;
    case 4: copy_rows_launch<uint32_t>(outer, width, src, src_ld, dst, dst_ld, s); break;
    case 8: copy_rows_launch<uint64_t>(outer, width, src, src_ld, dst, dst_ld, s); break;
    default: return (int)cudaErrorInvalidValue;
    }
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_index_add_rows_f32(int64_t outer, int64_t k, int64_t n, int64_t inner, const int64_t *idx,
                                        const float *src, float *dst, dv_cu_stream stream) {
    int64_t total = outer * k * inner;
    if (total <= 0) return 0;
    index_add_rows_kernel<<<dvcu::grid_for(total), dvcu::kThreads, 0, (cudaStream_t)stream>>>(total, k, n, inner, idx,
                                                                                              src, dst);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_gather(int esize, int ndim, const int64_t *ishape, int dim, const int64_t *xstride,
                            const int64_t *idx, const void *x, void *y, dv_cu_stream stream) {
    IdxGeom g;
    if (!make_geom(ndim, ishape, dim, xstride, &g)) return (int)cudaErrorInvalidValue;
    int64_t m = 1;
    for (int d = 0; d < ndim; d++) m *= ishape[d];
    if (m <= 0) return 0;
    cudaStream_t s = (cudaStream_t)stream;
    switch (esize) {
    case 1: gather_launch<uint8_t>(m, g, idx, x, y, s); break;
    case 2: gather_launch<uint16_t>(m, g, idx, x, y, s); break;
    case 4: gather_launch<uint32_t>(m, g, idx, x, y, s); break;
    case 8: gather_launch<uint64_t>(m, g, idx, x, y, s); break;
    default: return (int)cudaErrorInvalidValue;
    }
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_scatter_add_f32(int ndim, const int64_t *ishape, int dim, const int64_t *xstride,
                                     const int64_t *idx, const float *src, float *x, dv_cu_stream stream) {
    IdxGeom g;
    if (!make_geom(ndim, ishape, dim, xstride, &g)) return (int)cudaErrorInvalidValue;
    int64_t m = 1;
    for (int d = 0; d < ndim; d++) m *= ishape[d];
    if (m <= 0) return 0;
    scatter_add_kernel<<<dvcu::grid_for(m), dvcu::kThreads, 0, (cudaStream_t)stream>>>(m, g, idx, src, x);
    return (int)cudaGetLastError();
}
