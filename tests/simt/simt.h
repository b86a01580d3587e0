/* tests/simt/simt.h — the device side of the SIMT emulator (`make test-cuda-sim`): what lets
 * kernels/cuda/ *.cu, compiled by g++ as C++17 with -DDV_SIMT, run on the CPU.
 *
 *   qualifiers        __global__ __device__ __host__ vanish, __forceinline__ is inline,
 *                     __shared__ is `static` (one block runs at a time), in non-template
 *                     kernels in a section filled with 0xff before every block; __align__ is
 *                     aligned
 *   indices           threadIdx / blockIdx / blockDim / gridDim are globals that the scheduler
 *                     (tests/simt/simt.cc) sets on every switch between emulated threads
 *   launches          the build's sed turns `k<<<g, b, smem, s>>>(args)` into
 *                       dv_simt::cfg(__FILE__, __LINE__, g, b, smem, s) *
 *                           [](auto... dv_a) { return [=] { k(dv_a...); }; }(args)
 *                     (the kernel is called as written, so template arguments are deduced as
 *                     nvcc deduces them); operator* checks the configuration as the CUDA
 *                     runtime does (a bad one sets cudaGetLastError and runs nothing) and runs
 *                     the grid: blocks one after another, each thread of a block a fiber
 *   __syncthreads     a fiber waits until every live thread of its block has arrived
 *   __shfl_*_sync     warp-collective: each lane deposits, waits for the lanes of the mask,
 *                     reads; a mask naming absent lanes, a lane that exits or waits elsewhere
 *                     while its warp waits for it, different collectives in one warp: errors
 *   mma.sync          dv_simt::mma_* — the same collective around tests/simt/mma.h's warp-level
 *                     semantics of the PTX instructions (the .cu files call these under
 *                     #ifdef DV_SIMT instead of their inline asm)
 *   extern __shared__ the build's sed turns `extern __shared__ T name[];` into a pointer to the
 *                     block's dynamic shared memory (tests/simt/dynsmem.cc); shared addresses
 *                     (__cvta_generic_to_shared, wgmma descriptors) are offsets into it
 *   wgmma             dv_simt_wgmma_* — a warpgroup collective around tests/simt/wgmma.h
 *   atomicAdd         a plain read-modify-write (threads never preempt each other)
 *   __f*_rn, __d*_rn  the IEEE operation (the .cu files are compiled with -ffp-contract=off)
 *
 * Deliberately NOT emulated: the memory model (every store is at once visible to every thread,
 * so a missing __syncthreads or __threadfence shows only when the scheduling order exposes it —
 * run with DV_SIMT_ORDER=reverse and random too), data races (sequential scheduling hides them), timing
 * and occupancy, warp divergence beyond the collectives (lanes of a warp run one by one, not in
 * lock-step), __launch_bounds__ and register / shared-memory limits of static __shared__
 * arrays, address spaces (a kernel that dereferences a host pointer works here), nvcc's FMA
 * contraction and the ulp error of the device math library (the CPU's libm is used),
 * cooperative groups, streams (everything is synchronous).
 */
#ifndef DV_SIMT_H
#define DV_SIMT_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <type_traits>
#include <utility>

#include "cuda_runtime_api.h"

#define __global__
#define __device__
#define __host__
#define __noinline__ __attribute__((noinline))
#define __forceinline__ inline
#define __launch_bounds__(...)
/* every __shared__ array of every kernel in one section, which the scheduler fills with 0xff
 * bytes before each block (shared memory starts undefined; NaN shows a read before a write).
 * g++ ignores the section of a static in a template function: those of template kernels
 * (gemm, attention, ...) are ordinary statics, not refilled, holding the previous block's data
 * as a GPU's shared memory might. */
#define __shared__ static __attribute__((section("dv_simt_shared")))
#define __align__(n) __attribute__((aligned(n)))

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 { unsigned x, y, z; };
struct __align__(8) uint2 { unsigned x, y; };
struct __align__(16) uint4 { unsigned x, y, z, w; };
struct __align__(8) int2 { int x, y; };
struct __align__(16) int4 { int x, y, z, w; };
struct __align__(8) float2 { float x, y; };
struct __align__(16) float4 { float x, y, z, w; };
static inline float2 make_float2(float x, float y) { return {x, y}; }
static inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
static inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }

enum { warpSize = 32 };

namespace dv_simt {

/* set by the scheduler before every switch to a thread */
extern uint3 g_threadIdx, g_blockIdx;
extern dim3 g_blockDim, g_gridDim;

void syncthreads();

enum { SHFL_XOR = 0, SHFL_IDX, SHFL_DOWN, SHFL_UP };
uint64_t shfl(int op, unsigned mask, uint64_t v, int arg, int width);

/* one lane's part of a warp-wide mma.sync: d = A B + c over the 32 lanes' fragments */
void mma_m16n8k16(bool bf16, float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]);
void mma_m16n8k8_tf32(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]);
/* cvt.rna.tf32.f32 (per thread, no collective) */
uint32_t cvt_rna_tf32(float x);

/* `count` consecutive threads of the block from `first` (a warpgroup: wgmma) meet: each waits
 * until all have called it with the same `what`; the last to arrive runs done(ctx) before any of
 * them goes on (a thread of the group that exits or waits elsewhere meanwhile: a deadlock error) */
void group_collective(int first, int count, const char *what, void (*done)(void *), void *ctx);

/* dynamic shared memory (tests/simt/dynsmem.cc): the running block's `extern __shared__` bytes
 * (the launch's size, 1024-byte aligned, 0xff-filled before each block, a guard page after), and
 * the largest size a launch may ask for: 48 KiB, or what cudaFuncSetAttribute raised it to */
unsigned char *dynamic_shared();
size_t dynamic_shared_size();
size_t dynamic_shared_limit();
void dynamic_shared_begin_block(size_t bytes); /* called by the scheduler */
unsigned long block_serial(); /* counts the blocks run, for per-block state elsewhere (wgmma.cc) */

/* the order in which the threads of a block are resumed: increasing index, decreasing, or
 * pseudo-random; returns the previous one. The default comes from DV_SIMT_ORDER=forward,
 * reverse or random[:seed]. */
enum { ORDER_FORWARD, ORDER_REVERSE, ORDER_RANDOM };
int set_thread_order(int order);

/* runs body(ctx) as every thread of the grid; returns the launch error (also left for
 * cudaGetLastError), cudaSuccess when it ran */
cudaError_t launch(const char *file, int line, dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                   void (*body)(void *), void *ctx);

struct Cfg {
    const char *file;
    int line;
    dim3 grid, block;
    size_t smem;
    cudaStream_t stream;
};
inline Cfg cfg(const char *file, int line, dim3 grid, dim3 block, size_t smem = 0, cudaStream_t s = 0) {
    return {file, line, grid, block, smem, s};
}

/* `cfg(...) * thunk`: thunk (built by the sed'ed launch site from the kernel and copies of its
 * arguments, evaluated once, as a launch evaluates them) is what every thread of the grid runs;
 * calling the kernel with the copies gives each thread its own parameters, as on the GPU */
template <class F> void operator*(const Cfg &c, F thunk) {
    launch(c.file, c.line, c.grid, c.block, c.smem, c.stream, [](void *f) { (*(F *)f)(); }, &thunk);
}

} // namespace dv_simt

#define threadIdx dv_simt::g_threadIdx
#define blockIdx dv_simt::g_blockIdx
#define blockDim dv_simt::g_blockDim
#define gridDim dv_simt::g_gridDim

static inline void __syncthreads() { dv_simt::syncthreads(); }

/* the shared-window address of p: its byte offset from the block's dynamic shared memory (the
 * only shared memory with addresses here; a pointer outside it aborts) — dynsmem.cc */
size_t __cvta_generic_to_shared(const void *p);

template <class T> static inline T dv_simt_shfl(int op, unsigned mask, T v, int arg, int width) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a type CUDA has no shuffle for");
    uint64_t u = 0;
    memcpy(&u, &v, sizeof v);
    u = dv_simt::shfl(op, mask, u, arg, width);
    T r;
    memcpy(&r, &u, sizeof r);
    return r;
}
template <class T> static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    return dv_simt_shfl(dv_simt::SHFL_XOR, mask, v, lane_mask, width);
}
template <class T> static inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
    return dv_simt_shfl(dv_simt::SHFL_IDX, mask, v, src, width);
}
template <class T> static inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    return dv_simt_shfl(dv_simt::SHFL_DOWN, mask, v, (int)delta, width);
}
template <class T> static inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    return dv_simt_shfl(dv_simt::SHFL_UP, mask, v, (int)delta, width);
}

/* threads of the emulator never run at the same time and never switch inside these */
template <class T> static inline T dv_simt_atomic_add(T *p, T v) {
    T old = *p;
    *p = old + v;
    return old;
}
static inline float atomicAdd(float *p, float v) { return dv_simt_atomic_add(p, v); }
static inline double atomicAdd(double *p, double v) { return dv_simt_atomic_add(p, v); }
static inline int atomicAdd(int *p, int v) { return dv_simt_atomic_add(p, v); }
static inline unsigned atomicAdd(unsigned *p, unsigned v) { return dv_simt_atomic_add(p, v); }
static inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v) { return dv_simt_atomic_add(p, v); }

/* exactly rounded single operations: what they are on the GPU, given -ffp-contract=off here */
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fsqrt_rn(float a) { return sqrtf(a); }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
/* the device math library's rsqrtf has an error of up to 2 ulp; this is the CPU's closer one */
static inline float rsqrtf(float a) { return 1.0f / sqrtf(a); }

static inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }
static inline float __uint_as_float(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
static inline int __float_as_int(float f) { int u; memcpy(&u, &f, 4); return u; }
static inline float __int_as_float(int u) { float f; memcpy(&f, &u, 4); return f; }

#endif
