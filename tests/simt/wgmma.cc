/* tests/simt/wgmma.cc — the per-thread face of wgmma for the SIMT emulator (`make test-cuda-sim`):
 * what a kernel compiled with -DDV_SIMT calls instead of its wgmma / fence.proxy.async inline PTX
 * (declared at the end of tests/simt/wgmma.h, whose warpgroup-level function does the math).
 *
 * Every wgmma instruction is .sync.aligned over a warpgroup: here each is a collective of the 128
 * threads of the caller's warpgroup (threads 128 w .. 128 w + 127 of the block, warps 4 w ..
 * 4 w + 3; simt.cc's group_collective), so a thread that skips one, or runs another, deadlocks or
 * aborts with the threads' states instead of passing.
 *
 *   dv_simt_wgmma_bf16f16   wgmma.mma_async.sync.aligned.m64nNk16.f32.{bf16,f16}, both operands
 *                           in shared memory. Each thread leaves a pointer to its n/2 accumulator
 *                           registers; the last to arrive checks that all 128 issued the same
 *                           instruction (n, type, descriptors — the ISA requires them equal across
 *                           the warpgroup —, scale-d, scales, transposes) and that both operands
 *                           lie inside the block's dynamic shared memory (dynsmem.cc; shared
 *                           address 0 is its first byte).
 *   dv_simt_wgmma_commit    wgmma.commit_group: the warpgroup's uncommitted instructions become a
 *                           wgmma-group.
 *   dv_simt_wgmma_wait      wgmma.wait_group N: every wgmma-group but the N most recent completes.
 *   dv_simt_wgmma_fence     wgmma.fence: only the collective (register accesses are not tracked).
 *   dv_simt_fence_proxy_async   nothing: a thread's st.shared is in memory when it returns.
 *
 * When an instruction is performed (dv_simt_wgmma_m64k16_warpgroup on the 128 threads' registers,
 * reading shared memory as it is at that moment). On a GPU wgmma.mma_async is asynchronous: it
 * may read shared memory and write the accumulators at any time until the wgmma.wait_group that
 * completes its group. The emulator takes the latest moment by default: the instructions of a
 * group are performed, in issue order, inside the wait_group that completes it. So a kernel that
 * reads its accumulators before waiting sees their old values, one that overwrites a shared-memory
 * stage (or the accumulators) before waiting feeds the instruction the new data, and one that never
 * waits loses the results (the next block's first wgmma call aborts naming it) — the ways a missing
 * commit / wait shows on a GPU, made deterministic. DV_SIMT_WGMMA=issue performs each instruction
 * as soon as all 128 threads have issued it instead (the earliest moment); a correct kernel passes
 * both ways.
 *
 * Not checked: a missing wgmma.fence between other accesses to the accumulators and a wgmma, a
 * missing fence.proxy.async between st.shared and the wgmma reading it (both only order things a
 * sequential emulator never reorders), and the hardware's accumulation order / precision (see
 * wgmma.h).
 */
#include "tests/simt/include/cuda_runtime.h"

#include "tests/simt/wgmma.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <deque>
#include <vector>

namespace {

/* one wgmma.mma_async of a warpgroup: its operands and the 128 threads' accumulator registers */
struct Op {
    int n, is_bf16, scale_d, scale_a, scale_b, trans_a, trans_b;
    uint64_t desc_a, desc_b;
    float *d[128];
};

/* a warpgroup: the collective its threads are joining, and (completion at wait_group) the
 * instructions issued but not performed yet, uncommitted and in committed wgmma-groups */
struct Warpgroup {
    int arrived;         /* threads that have joined the collective `joining` so far */
    const char *joining;
    Op op;
    int wait_n;
    unsigned long block; /* dv_simt::block_serial() of the block the state below belongs to */
    std::vector<Op> uncommitted;
    std::deque<std::vector<Op>> committed;
};

Warpgroup g_wg[1024 / 128];
const char *const kIssue = "wgmma.mma_async", *const kWait = "wgmma.wait_group";
float g_regs[128 * 128]; /* the 128 threads' registers in the order wgmma.h takes them */

[[noreturn]] void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "SIMT emulator: wgmma, block (%u,%u,%u): ", blockIdx.x, blockIdx.y, blockIdx.z);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* DV_SIMT_WGMMA=issue: perform each instruction when its warpgroup has issued it; otherwise (the
 * default) at the wgmma.wait_group that completes its group */
bool at_issue() {
    static int mode = -1;
    if (mode < 0) {
        const char *e = getenv("DV_SIMT_WGMMA");
        mode = e && !strcmp(e, "issue");
    }
    return mode == 1;
}

void check_operand(const char *name, uint64_t desc, int k_major, int rows) {
    uint32_t end = dv_simt_wgmma_operand_end(desc, k_major, rows);
    size_t have = dv_simt::dynamic_shared_size();
    if (end > have)
        fail("wgmma.mma_async operand %s (descriptor %016llx, %s-major, %d x 16) reads shared bytes up to %u, but the "
             "block has %zu bytes of dynamic shared memory",
             name, (unsigned long long)desc, k_major ? "K" : "MN", rows, end, have);
}

void perform(const Op &o) {
    int nr = o.n / 2;
    for (int t = 0; t < 128; t++) memcpy(&g_regs[t * nr], o.d[t], sizeof(float) * nr);
    dv_simt_wgmma_m64k16_warpgroup(o.n, o.is_bf16, g_regs, o.desc_a, o.desc_b, dv_simt::dynamic_shared(), o.scale_d,
                                   o.scale_a, o.scale_b, o.trans_a, o.trans_b);
    for (int t = 0; t < 128; t++) memcpy(o.d[t], &g_regs[t * nr], sizeof(float) * nr);
}

/* the calling thread's warpgroup, its state reset at the first use in a block; a previous block
 * that left instructions no wait_group completed is an error (their results were never seen) */
Warpgroup &warpgroup(unsigned *lane) {
    unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    unsigned nthreads = blockDim.x * blockDim.y * blockDim.z;
    if (t / 128 * 128 + 128 > nthreads)
        fail("thread %u: its warpgroup (threads %u..%u) is not whole in a block of %u threads", t, t / 128 * 128,
             t / 128 * 128 + 127, nthreads);
    Warpgroup &w = g_wg[t / 128];
    if (w.block != dv_simt::block_serial()) {
        size_t pending = w.uncommitted.size();
        for (const auto &g : w.committed) pending += g.size();
        if (pending)
            fail("warpgroup %u of an earlier block exited with %zu wgmma.mma_async not completed by a "
                 "wgmma.wait_group",
                 t / 128, pending);
        w.uncommitted.clear(), w.committed.clear();
        w.block = dv_simt::block_serial();
        w.arrived = 0;
    }
    *lane = t % 128;
    return w;
}

int first_thread() { return (int)((threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)) / 128 * 128); }

/* the last of the 128 threads to arrive: for all of them */
void issued(void *ctx) {
    Warpgroup &w = *(Warpgroup *)ctx;
    w.arrived = 0;
    check_operand("A", w.op.desc_a, !w.op.trans_a, 64);
    check_operand("B", w.op.desc_b, !w.op.trans_b, w.op.n);
    if (at_issue()) perform(w.op);
    else w.uncommitted.push_back(w.op);
}
void committed(void *ctx) {
    Warpgroup &w = *(Warpgroup *)ctx;
    w.arrived = 0;
    w.committed.push_back(std::move(w.uncommitted));
    w.uncommitted.clear();
}
void waited(void *ctx) {
    Warpgroup &w = *(Warpgroup *)ctx;
    w.arrived = 0;
    while ((int)w.committed.size() > w.wait_n) {
        for (const Op &o : w.committed.front()) perform(o);
        w.committed.pop_front();
    }
}
void nothing(void *ctx) { ((Warpgroup *)ctx)->arrived = 0; }

} // namespace

extern "C" void dv_simt_wgmma_bf16f16(int n, int is_bf16, float *d, uint64_t desc_a, uint64_t desc_b, int scale_d,
                                      int scale_a, int scale_b, int trans_a, int trans_b) {
    unsigned lane;
    Warpgroup &w = warpgroup(&lane);
    Op &o = w.op;
    scale_d = scale_d != 0; /* a predicate */
    if (w.arrived == 0 || w.joining != kIssue) { /* (another collective: group_collective says so) */
        w.joining = kIssue;
        o.n = n, o.is_bf16 = is_bf16, o.scale_d = scale_d, o.scale_a = scale_a, o.scale_b = scale_b;
        o.trans_a = trans_a, o.trans_b = trans_b, o.desc_a = desc_a, o.desc_b = desc_b;
    } else if (o.n != n || o.is_bf16 != is_bf16 || o.scale_d != scale_d || o.scale_a != scale_a ||
               o.scale_b != scale_b || o.trans_a != trans_a || o.trans_b != trans_b || o.desc_a != desc_a ||
               o.desc_b != desc_b) {
        fail("thread %d of a warpgroup issues m64n%dk16 %s desc_a %016llx desc_b %016llx scale-d %d scales %d %d "
             "trans %d %d, but %d thread(s) of it issued m64n%dk16 %s desc_a %016llx desc_b %016llx scale-d %d scales "
             "%d %d trans %d %d (.aligned: all 128 threads must issue the same instruction)",
             (int)lane, n, is_bf16 ? "bf16" : "f16", (unsigned long long)desc_a, (unsigned long long)desc_b, scale_d,
             scale_a, scale_b, trans_a, trans_b, w.arrived, o.n, o.is_bf16 ? "bf16" : "f16",
             (unsigned long long)o.desc_a, (unsigned long long)o.desc_b, o.scale_d, o.scale_a, o.scale_b, o.trans_a,
             o.trans_b);
    }
    o.d[lane] = d;
    w.arrived++;
    dv_simt::group_collective(first_thread(), 128, kIssue, issued, &w);
}

extern "C" void dv_simt_wgmma_fence(void) {
    unsigned lane;
    Warpgroup &w = warpgroup(&lane);
    w.arrived++;
    dv_simt::group_collective(first_thread(), 128, "wgmma.fence", nothing, &w);
}

extern "C" void dv_simt_wgmma_commit(void) {
    unsigned lane;
    Warpgroup &w = warpgroup(&lane);
    w.arrived++;
    dv_simt::group_collective(first_thread(), 128, "wgmma.commit_group", committed, &w);
}

extern "C" void dv_simt_wgmma_wait(int n) {
    unsigned lane;
    Warpgroup &w = warpgroup(&lane);
    if (n < 0) fail("wgmma.wait_group %d: N must be a non-negative integer constant", n);
    if (w.arrived == 0 || w.joining != kWait) w.joining = kWait, w.wait_n = n;
    else if (w.wait_n != n)
        fail("thread %u of a warpgroup runs wgmma.wait_group %d, others wgmma.wait_group %d (.aligned)", lane, n,
             w.wait_n);
    w.arrived++;
    dv_simt::group_collective(first_thread(), 128, kWait, waited, &w);
}

/* the generic-proxy stores of this thread are in memory already: nothing to order */
extern "C" void dv_simt_fence_proxy_async(void) {}
