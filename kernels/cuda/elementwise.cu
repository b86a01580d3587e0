/* kernels/cuda/elementwise.cu — fill, unary maps and their derivatives, broadcast binary ops
 * and the same-shape binary backward, f32 (kernels/elementwise.h contracts).
 *
 * Grid-stride loops, 256 threads a block, at most 4 blocks per SM's worth of work per wave:
 * memory bound, so each element is one load, a few flops and one store. The unary ops are one
 * kernel with a switch on the op (the op is uniform across the grid, so the branch costs
 * nothing) rather than one template per op: 17 ops x 2 directions would double the build time
 * for no measurable speed.
 * Not here: f16 / bf16 elementwise (the ops cast to f32 first), f64 (the CPU is the f64 path).
 */
#include "kernels/cuda/common.h"
#include "kernels/cuda/kernels.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/copy.h"

namespace {

constexpr int kThreads = 256;

struct Shape8 { int ndim; int64_t shape[8], sa[8], sb[8]; };

inline unsigned grid_for(int64_t n) {
    int64_t b = (n + kThreads - 1) / kThreads;
    if (b > 65535LL * 8) b = 65535LL * 8; /* grid-stride covers the rest */
    return (unsigned)(b > 0 ? b : 1);
}

__device__ __forceinline__ float unary_one(dv_unary_op op, float x, float p1, float p2) {
    switch (op) {
    case DV_UNARY_NEG: return -x;
    case DV_UNARY_EXP: return expf(x);
    case DV_UNARY_LOG: return logf(x);
    case DV_UNARY_SQRT: return sqrtf(x);
    case DV_UNARY_RSQRT: return 1.0f / sqrtf(x);
    case DV_UNARY_ABS: return fabsf(x);
    case DV_UNARY_TANH: return tanhf(x);
    case DV_UNARY_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case DV_UNARY_RELU: return x > 0 ? x : 0.0f;
    case DV_UNARY_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f));
    case DV_UNARY_GELU_TANH: {
        float u = 0.79788456080286535588f * (x + 0.044715f * x * x * x);
        return 0.5f * x * (1.0f + tanhf(u));
    }
    case DV_UNARY_QUICK_GELU: return x / (1.0f + expf(-1.702f * x));
    case DV_UNARY_SILU: return x / (1.0f + expf(-x));
    case DV_UNARY_SQUARE: return x * x;
    case DV_UNARY_POW: return powf(x, p1);
    case DV_UNARY_CLAMP: return x < p1 ? p1 : (x > p2 ? p2 : x);
    case DV_UNARY_AFFINE: return p1 * x + p2;
    default: return x;
    }
}

/* f'(x) given y = f(x), the formulas of kernels/elementwise_impl.h */
__device__ __forceinline__ float unary_deriv(dv_unary_op op, float x, float y, float p1, float p2) {
    switch (op) {
    case DV_UNARY_NEG: return -1.0f;
    case DV_UNARY_EXP: return y;
    case DV_UNARY_LOG: return 1.0f / x;
    case DV_UNARY_SQRT: return 0.5f / y;
    case DV_UNARY_RSQRT: return -0.5f * y * y * y;
    case DV_UNARY_ABS: return x > 0 ? 1.0f : (x < 0 ? -1.0f : 0.0f);
    case DV_UNARY_TANH: return 1.0f - y * y;
    case DV_UNARY_SIGMOID: return y * (1.0f - y);
    case DV_UNARY_RELU: return x > 0 ? 1.0f : 0.0f;
    case DV_UNARY_GELU: {
        float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752440f));
        float pdf = expf(-0.5f * x * x) * 0.39894228040143267794f;
        return cdf + x * pdf;
    }
    case DV_UNARY_GELU_TANH: {
        float k = 0.79788456080286535588f;
        float th = tanhf(k * (x + 0.044715f * x * x * x));
        return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * k * (1.0f + 0.134145f * x * x);
    }
    case DV_UNARY_QUICK_GELU: {
        float s = 1.0f / (1.0f + expf(-1.702f * x));
        return s + 1.702f * x * s * (1.0f - s);
    }
    case DV_UNARY_SILU: {
        float s = 1.0f / (1.0f + expf(-x));
        return s * (1.0f + x * (1.0f - s));
    }
    case DV_UNARY_SQUARE: return 2.0f * x;
    case DV_UNARY_POW: return p1 == 0 ? 0.0f : p1 * powf(x, p1 - 1);
    case DV_UNARY_CLAMP: return (x >= p1 && x <= p2) ? 1.0f : 0.0f;
    case DV_UNARY_AFFINE: return p1;
    default: return 1.0f;
    }
}

template <typename U>
__global__ void fill_kernel(U *dst, int64_t n, U value) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = value;
}

template <typename U>
__global__ void gather_kernel(int64_t n, Shape8 s, U *__restrict__ dst, const U *__restrict__ src) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t o = 0, r = i;
        for (int d = s.ndim - 1; d >= 0; d--) {
            o += (r % s.shape[d]) * s.sa[d];
            r /= s.shape[d];
        }
        dst[i] = src[o];
    }
}

__device__ __forceinline__ double load_as(int dt, const void *p, int64_t i) {
    switch (dt) {
    case DV_K_F32: return ((const float *)p)[i];
    case DV_K_F64: return ((const double *)p)[i];
    case DV_K_F16: return __half2float(__ushort_as_half(((const uint16_t *)p)[i]));
    case DV_K_BF16: return __uint_as_float((uint32_t)((const uint16_t *)p)[i] << 16);
    case DV_K_I32: return ((const int32_t *)p)[i];
    case DV_K_I64: return (double)((const int64_t *)p)[i];
    case DV_K_U8: return ((const uint8_t *)p)[i];
    default: return ((const uint8_t *)p)[i] != 0;
    }
}

/* kernels/half.h's dv_f32_to_bf16, bit for bit (NaN kept quiet with its payload) */
__device__ __forceinline__ uint16_t f32_to_bf16(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

__device__ __forceinline__ void store_as(int dt, void *p, int64_t i, double v) {
    switch (dt) {
    case DV_K_F32: ((float *)p)[i] = (float)v; break;
    case DV_K_F64: ((double *)p)[i] = v; break;
    case DV_K_F16: ((uint16_t *)p)[i] = __half_as_ushort(__float2half_rn((float)v)); break;
    case DV_K_BF16: ((uint16_t *)p)[i] = f32_to_bf16((float)v); break;
    case DV_K_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    case DV_K_I64: ((int64_t *)p)[i] = (int64_t)v; break;
    case DV_K_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    default: ((uint8_t *)p)[i] = v != 0; break;
    }
}

__global__ void convert_kernel(int64_t n, int ddt, void *__restrict__ dst, int sdt, const void *__restrict__ src) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        store_as(ddt, dst, i, load_as(sdt, src, i));
}

__global__ void unary_kernel(dv_unary_op op, int64_t n, const float *__restrict__ x,
                             float *__restrict__ y, float p1, float p2) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = unary_one(op, x[i], p1, p2);
}

__global__ void unary_bwd_kernel(dv_unary_op op, int64_t n, const float *__restrict__ x,
                                 const float *__restrict__ y, const float *__restrict__ gy,
                                 float *__restrict__ gx, float p1, float p2) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        gx[i] = gy[i] * unary_deriv(op, x[i], y[i], p1, p2);
}

__device__ __forceinline__ float binary_one(dv_binary_op op, float a, float b) {
    switch (op) {
    case DV_BINARY_ADD: return a + b;
    case DV_BINARY_SUB: return a - b;
    case DV_BINARY_MUL: return a * b;
    case DV_BINARY_DIV: return a / b;
    case DV_BINARY_POW: return powf(a, b);
    case DV_BINARY_MAX: return (a >= b || a != a) ? a : b;
    case DV_BINARY_MIN: return (a <= b || a != a) ? a : b;
    default: return 0.0f;
    }
}

__device__ __forceinline__ uint8_t compare_one(dv_binary_op op, float a, float b) {
    switch (op) {
    case DV_BINARY_EQ: return a == b;
    case DV_BINARY_NE: return a != b;
    case DV_BINARY_LT: return a < b;
    case DV_BINARY_LE: return a <= b;
    case DV_BINARY_GT: return a > b;
    default: return a >= b;
    }
}

__global__ void binary_kernel(dv_binary_op op, int64_t n, Shape8 s, const float *__restrict__ a,
                              const float *__restrict__ b, void *__restrict__ y) {
    bool cmp = op >= DV_BINARY_EQ;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t oa = 0, ob = 0, r = i;
        for (int d = s.ndim - 1; d >= 0; d--) {
            int64_t k = r % s.shape[d];
            r /= s.shape[d];
            oa += k * s.sa[d];
            ob += k * s.sb[d];
        }
        if (cmp) ((uint8_t *)y)[i] = compare_one(op, a[oa], b[ob]);
        else ((float *)y)[i] = binary_one(op, a[oa], b[ob]);
    }
}

__global__ void binary_bwd_kernel(dv_binary_op op, int64_t n, const float *__restrict__ a,
                                  const float *__restrict__ b, const float *__restrict__ gy,
                                  float *__restrict__ ga, float *__restrict__ gb) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float x = a[i], z = b[i], g = gy[i], da = 0, db = 0;
        switch (op) {
        case DV_BINARY_ADD: da = g; db = g; break;
        case DV_BINARY_SUB: da = g; db = -g; break;
        case DV_BINARY_MUL: da = g * z; db = g * x; break;
        case DV_BINARY_DIV: da = g / z; db = -g * x / (z * z); break;
        case DV_BINARY_POW: {
            float p = powf(x, z);
            da = z == 0 ? 0.0f : g * z * powf(x, z - 1);
            db = x > 0 ? g * p * logf(x) : 0.0f;
            break;
        }
        case DV_BINARY_MAX:
        case DV_BINARY_MIN: { /* tensor/ops_binary.c's weights: 1 to the winner, 0.5 each on a tie */
            float d = op == DV_BINARY_MAX ? x - z : z - x;
            float wa = d > 0 ? 1.0f : (d == 0 ? 0.5f : 0.0f), wb = d < 0 ? 1.0f : (d == 0 ? 0.5f : 0.0f);
            da = g * wa;
            db = g * wb;
            break;
        }
        default: break;
        }
        if (ga) ga[i] = da;
        if (gb) gb[i] = db;
    }
}

} // namespace

extern "C" int dv_cu_fill(void *dst, int64_t n, int esize, uint64_t pattern, dv_cu_stream stream) {
    if (n <= 0) return 0;
    cudaStream_t s = (cudaStream_t)stream;
    switch (esize) {
    case 1: fill_kernel<<<grid_for(n), kThreads, 0, s>>>((uint8_t *)dst, n, (uint8_t)pattern); break;
    case 2: fill_kernel<<<grid_for(n), kThreads, 0, s>>>((uint16_t *)dst, n, (uint16_t)pattern); break;
    case 4: fill_kernel<<<grid_for(n), kThreads, 0, s>>>((uint32_t *)dst, n, (uint32_t)pattern); break;
    case 8: fill_kernel<<<grid_for(n), kThreads, 0, s>>>((uint64_t *)dst, n, pattern); break;
    default: return (int)cudaErrorInvalidValue;
    }
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_copy_strided(int ndim, const int64_t *shape, int esize, void *dst,
                                  const void *src, const int64_t *src_stride, dv_cu_stream stream) {
    if (ndim < 0 || ndim > 8) return (int)cudaErrorInvalidValue;
    Shape8 s = {};
    s.ndim = ndim;
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        s.shape[d] = shape[d];
        s.sa[d] = src_stride[d];
        n *= shape[d];
    }
    if (n <= 0) return 0;
    cudaStream_t st = (cudaStream_t)stream;
    switch (esize) {
    case 1: gather_kernel<<<grid_for(n), kThreads, 0, st>>>(n, s, (uint8_t *)dst, (const uint8_t *)src); break;
    case 2: gather_kernel<<<grid_for(n), kThreads, 0, st>>>(n, s, (uint16_t *)dst, (const uint16_t *)src); break;
    case 4: gather_kernel<<<grid_for(n), kThreads, 0, st>>>(n, s, (uint32_t *)dst, (const uint32_t *)src); break;
    case 8: gather_kernel<<<grid_for(n), kThreads, 0, st>>>(n, s, (uint64_t *)dst, (const uint64_t *)src); break;
    default: return (int)cudaErrorInvalidValue;
    }
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_convert(int64_t n, int dst_dt, void *dst, int src_dt, const void *src, dv_cu_stream stream) {
    if (n <= 0) return 0;
    if (dst_dt < DV_K_F32 || dst_dt > DV_K_BOOL || src_dt < DV_K_F32 || src_dt > DV_K_BOOL) return (int)cudaErrorInvalidValue;
    convert_kernel<<<grid_for(n), kThreads, 0, (cudaStream_t)stream>>>(n, dst_dt, dst, src_dt, src);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_unary_f32(dv_unary_op op, int64_t n, const float *x, float *y, double p1,
                               double p2, dv_cu_stream stream) {
    if (n <= 0) return 0;
    unary_kernel<<<grid_for(n), kThreads, 0, (cudaStream_t)stream>>>(op, n, x, y, (float)p1, (float)p2);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_unary_bwd_f32(dv_unary_op op, int64_t n, const float *x, const float *y,
                                   const float *gy, float *gx, double p1, double p2,
                                   dv_cu_stream stream) {
    if (n <= 0) return 0;
    unary_bwd_kernel<<<grid_for(n), kThreads, 0, (cudaStream_t)stream>>>(op, n, x, y, gy, gx, (float)p1, (float)p2);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_binary_f32(dv_binary_op op, int ndim, const int64_t *shape, const float *a,
                                const int64_t *sa, const float *b, const int64_t *sb, void *y,
                                dv_cu_stream stream) {
    if (ndim < 0 || ndim > 8) return (int)cudaErrorInvalidValue;
    Shape8 s = {};
    s.ndim = ndim;
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        s.shape[d] = shape[d];
        s.sa[d] = sa[d];
        s.sb[d] = sb[d];
        n *= shape[d];
    }
    if (n <= 0) return 0;
    binary_kernel<<<grid_for(n), kThreads, 0, (cudaStream_t)stream>>>(op, n, s, a, b, y);
    return (int)cudaGetLastError();
}

extern "C" int dv_cu_binary_bwd_f32(dv_binary_op op, int64_t n, const float *a, const float *b,
                                    const float *gy, float *ga, float *gb, dv_cu_stream stream) {
    if (n <= 0 || (!ga && !gb)) return 0;
    if (op >= DV_BINARY_EQ) return (int)cudaErrorInvalidValue;
    binary_bwd_kernel<<<grid_for(n), kThreads, 0, (cudaStream_t)stream>>>(op, n, a, b, gy, ga, gb);
    return (int)cudaGetLastError();
}
