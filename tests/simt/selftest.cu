/* tests/simt/selftest.cu — tests of the SIMT emulator itself (build-sim/test-cuda only: this file
 * is built by `make test-cuda-sim`, never by nvcc). Ordinary CUDA kernels whose right answers are
 * known, run through the same sed'ed launch path as the files of kernels/cuda/:
 *   barrier        a block-wide exchange through shared memory is right in both thread orders;
 *                  the same exchange without __syncthreads is wrong in one of them (the emulator
 *                  shows a missing barrier), and threads that exit do not hold the barrier up
 *   shuffles       xor / idx / down / up, widths 32 and 8, int and double, against the PTX rules
 *   atomics        every thread of a 37-block grid adds 1
 *   launch checks  block > 1024, grid.y > 65535, dynamic shared memory past the limit, an unknown
 *                  stream: cudaGetLastError's code, nothing runs, the error is then cleared
 *   misuse         a shuffle that some lanes of the warp never reach, a full-mask shuffle in a
 *                  partial warp: the emulator aborts naming the problem
 * What it does not test: mma.sync (tests/test_simt_mma.c tests tests/simt/mma.h; the GEMM and
 * attention tests of tests/cuda/ run it through the kernels).
 */
#include <cuda_runtime.h>

#include <stdint.h>
#include <string.h>

extern "C" {
#include "tests/test.h"
bool ut_aborts_with(void (*fn)(void *), void *ctx, const char *want);
}

namespace {

/* out[t] = what thread t + 1 wrote (the last thread: its own), through shared memory */
__global__ void exchange(int *out, bool barrier) {
    __shared__ int sh[1024];
    int t = threadIdx.x, n = blockDim.x;
    sh[t] = 1000 * blockIdx.x + t + 1;
    if (barrier) __syncthreads();
    out[blockIdx.x * n + t] = sh[t + 1 < n ? t + 1 : t];
}

/* threads t >= live exit at once; the others meet at two barriers and count each other */
__global__ void early_exit(int *out, int live) {
    __shared__ int count;
    if ((int)threadIdx.x >= live) return;
    if (threadIdx.x == 0) count = 0;
    __syncthreads();
    atomicAdd(&count, 1);
    __syncthreads();
    out[threadIdx.x] = count;
}

__global__ void shuffles(int *o_xor, int *o_idx, int *o_down, int *o_up, double *o_dbl, int width) {
    int t = threadIdx.x;
    int v = 100 + t;
    o_xor[t] = __shfl_xor_sync(0xffffffffu, v, 5, width);
    o_idx[t] = __shfl_sync(0xffffffffu, v, 3, width);
    o_down[t] = __shfl_down_sync(0xffffffffu, v, 3, width);
    o_up[t] = __shfl_up_sync(0xffffffffu, v, 3, width);
    o_dbl[t] = __shfl_xor_sync(0xffffffffu, 0.5 + t, 1, width);
}

__global__ void count_all(unsigned long long *n) { atomicAdd(n, 1ull); }

__global__ void write_one(int *p) { *p = 1; }

/* lanes >= 16 leave before the shuffle their warp waits in */
__global__ void half_warp_shuffle(int *out) {
    if (threadIdx.x % 32 >= 16) return;
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 1);
}

__global__ void full_mask_shuffle(int *out) { out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 1); }

int run_exchange(int *d, int n, int blocks, bool barrier, bool reverse, int *host) {
    int was = dv_simt::set_thread_order(reverse ? dv_simt::ORDER_REVERSE : dv_simt::ORDER_FORWARD);
    memset(d, 0, sizeof(int) * n * blocks);
    exchange<<<blocks, n>>>(d, barrier);
    dv_simt::set_thread_order(was);
    int wrong = 0;
    for (int b = 0; b < blocks; b++)
        for (int t = 0; t < n; t++) {
            host[b * n + t] = d[b * n + t];
            wrong += d[b * n + t] != 1000 * b + (t + 1 < n ? t + 1 : t) + 1;
        }
    return wrong;
}

} // namespace

TEST(simt_barrier_orders_and_missing_barrier) {
    const int n = 256, blocks = 3;
    int *d = nullptr;
    static int h[n * blocks];
    CHECK(cudaMalloc((void **)&d, sizeof(int) * n * blocks) == cudaSuccess);
    for (int rev = 0; rev < 2; rev++) {
        CHECK_MSG(run_exchange(d, n, blocks, true, rev, h) == 0, "with __syncthreads, %s order: wrong values",
                  rev ? "reverse" : "forward");
        CHECK(cudaGetLastError() == cudaSuccess);
    }
    /* without the barrier thread t reads sh[t + 1] before thread t + 1 has written it when the
     * threads run in increasing order: every thread but the last is wrong; in decreasing order
     * the writes come first and the bug hides — which is why CI runs both orders (and
     * DV_SIMT_ORDER=random[:seed] mixes them) */
    int wrong_fwd = run_exchange(d, n, blocks, false, false, h);
    CHECK_MSG(h[0] == -1, "an unwritten shared int reads %d, not the 0xff fill", h[0]);
    int wrong_rev = run_exchange(d, n, blocks, false, true, h);
    CHECK_MSG(wrong_fwd == (n - 1) * blocks, "missing barrier, forward order: %d wrong, expected %d", wrong_fwd,
              (n - 1) * blocks);
    CHECK_MSG(wrong_rev == 0, "missing barrier, reverse order: %d wrong", wrong_rev);
    cudaFree(d);
}

TEST(simt_barrier_ignores_exited_threads) {
    int *d = nullptr;
    CHECK(cudaMalloc((void **)&d, sizeof(int) * 256) == cudaSuccess);
    early_exit<<<1, 256>>>(d, 100);
    CHECK(cudaGetLastError() == cudaSuccess);
    for (int t = 0; t < 100; t++) CHECK_MSG(d[t] == 100, "thread %d counted %d", t, d[t]);
    cudaFree(d);
}

TEST(simt_shuffles_follow_ptx_rules) {
    const int n = 64; /* two warps */
    int *x, *i, *dn, *up;
    double *db;
    cudaMalloc((void **)&x, n * 4), cudaMalloc((void **)&i, n * 4), cudaMalloc((void **)&dn, n * 4);
    cudaMalloc((void **)&up, n * 4), cudaMalloc((void **)&db, n * 8);
    const int widths[2] = {32, 8};
    for (int wi = 0; wi < 2; wi++) {
        int w = widths[wi];
        shuffles<<<1, n>>>(x, i, dn, up, db, w);
        CHECK(cudaGetLastError() == cudaSuccess);
        for (int t = 0; t < n; t++) {
            int lane = t % 32, seg = lane / w * w, base = t - lane;
            int sx = lane ^ 5, si = seg + 3 % w, sd = lane + 3, su = lane - 3;
            if (sx >= seg + w) sx = lane; /* a later segment: own value */
            if (sd >= seg + w) sd = lane;
            if (su < seg) su = lane;
            CHECK_MSG(x[t] == 100 + base + sx, "xor width %d thread %d: %d", w, t, x[t]);
            CHECK_MSG(i[t] == 100 + base + si, "idx width %d thread %d: %d", w, t, i[t]);
            CHECK_MSG(dn[t] == 100 + base + sd, "down width %d thread %d: %d", w, t, dn[t]);
            CHECK_MSG(up[t] == 100 + base + su, "up width %d thread %d: %d", w, t, up[t]);
            CHECK_MSG(db[t] == 0.5 + (t ^ 1), "double xor width %d thread %d: %g", w, t, db[t]);
        }
    }
    cudaFree(x), cudaFree(i), cudaFree(dn), cudaFree(up), cudaFree(db);
}

TEST(simt_atomic_add_over_a_grid) {
    unsigned long long *n = nullptr;
    cudaMalloc((void **)&n, 8);
    *n = 0;
    count_all<<<37, 96>>>(n);
    CHECK(cudaGetLastError() == cudaSuccess);
    CHECK_MSG(*n == 37ull * 96, "%llu adds", *n);
    cudaFree(n);
}

TEST(simt_launch_errors_as_cuda_reports_them) {
    int *p = nullptr;
    cudaMalloc((void **)&p, 4);
    cudaStream_t bogus = (cudaStream_t)(uintptr_t)0x1234;
    struct {
        dim3 grid, block;
        size_t smem;
        cudaStream_t s;
        cudaError_t want;
    } cases[] = {
        {dim3(1), dim3(1025), 0, nullptr, cudaErrorInvalidConfiguration},
        {dim3(1), dim3(32, 32, 2), 0, nullptr, cudaErrorInvalidConfiguration},
        {dim3(1, 65536), dim3(32), 0, nullptr, cudaErrorInvalidConfiguration},
        {dim3(0), dim3(32), 0, nullptr, cudaErrorInvalidConfiguration},
        /* 48 KiB unless a cudaFuncSetAttribute raised it (tests/simt/dynsmem.cc) */
        {dim3(1), dim3(32), dv_simt::dynamic_shared_limit() + 1, nullptr, cudaErrorInvalidValue},
        {dim3(1), dim3(32), 0, bogus, cudaErrorInvalidResourceHandle},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        *p = 0;
        write_one<<<cases[c].grid, cases[c].block, cases[c].smem, cases[c].s>>>(p);
        cudaError_t e = cudaGetLastError();
        CHECK_MSG(e == cases[c].want, "case %zu: %s, expected %s", c, cudaGetErrorName(e), cudaGetErrorName(cases[c].want));
        CHECK_MSG(*p == 0, "case %zu: the kernel ran", c);
        CHECK_MSG(cudaGetLastError() == cudaSuccess, "case %zu: the error was not cleared", c);
    }
    cudaStream_t s;
    cudaStreamCreate(&s);
    write_one<<<1, 1024, 48 * 1024, s>>>(p); /* the limits themselves are fine */
    CHECK(cudaGetLastError() == cudaSuccess && *p == 1);
    cudaStreamDestroy(s);
    cudaFree(p);
}

static void run_half_warp(void *) {
    int *p;
    cudaMalloc((void **)&p, 64 * 4);
    half_warp_shuffle<<<1, 64>>>(p);
}
static void run_partial_warp(void *) {
    int *p;
    cudaMalloc((void **)&p, 48 * 4);
    full_mask_shuffle<<<1, 48>>>(p);
}

TEST(simt_aborts_on_collective_misuse) {
    CHECK(ut_aborts_with(run_half_warp, nullptr, "deadlock: no thread can run"));
    CHECK(ut_aborts_with(run_partial_warp, nullptr, "which has only lanes 0000ffff"));
}
