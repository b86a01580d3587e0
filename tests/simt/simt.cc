/* tests/simt/simt.cc — the SIMT emulator's scheduler (`make test-cuda-sim`): runs a CUDA grid
 * on the calling CPU thread. Blocks run one after another; within a block every CUDA thread is
 * a fiber with its own stack, switched by a 14-instruction x86-64 context switch (ucontext on
 * other hosts, or with -DDV_SIMT_UCONTEXT: swapcontext makes a system call per switch — the whole
 * tests/cuda suite took 242 s that way against 29 s with this switch, on the shared 2 cores). A fiber runs until it exits, reaches __syncthreads (it waits until every live
 * thread of the block is there) or a warp collective (a shuffle or an mma.sync: it waits until
 * every lane of the mask has deposited its operands; the last lane to arrive computes every
 * lane's result). Threads are resumed in increasing index order, decreasing with
 * DV_SIMT_ORDER=reverse, or pseudo-randomly with DV_SIMT_ORDER=random[:seed], so code that relies
 * on an order the hardware does not promise (a missing barrier) gives a different answer.
 *
 * Launch checks, as the CUDA runtime makes them: block size 0 or above 1024 threads (x, y
 * <= 1024, z <= 64), grid 0 or above 2^31-1 x 65535 x 65535, dynamic shared memory above
 * 48 KiB unless cudaFuncSetAttribute raised the limit (dynsmem.cc), an unknown stream: cudaErrorInvalidConfiguration / InvalidValue /
 * InvalidResourceHandle from cudaGetLastError and nothing runs. Misuse the hardware would
 * hang on or leave undefined — a barrier or collective nobody can complete, a full-mask
 * shuffle in a partial warp, lanes of one warp in different collectives — aborts with the
 * launch site, the block and the threads' states.
 *
 * Not emulated: see tests/simt/simt.h (memory model, races, timing, lock-step divergence).
 */
#include "tests/simt/include/cuda_runtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <mutex>

#if __has_include("tests/simt/mma.h")
#include "tests/simt/mma.h"
#define DV_SIMT_HAVE_MMA 1
#endif

/* the hand-written switch on x86-64 (-DDV_SIMT_UCONTEXT: swapcontext, for comparison) */
#if defined(__x86_64__) && !defined(DV_SIMT_UCONTEXT)
#define DV_SIMT_ASM_SWITCH 1
#else
#include <ucontext.h>
#endif

namespace dv_simt {

uint3 g_threadIdx, g_blockIdx;
dim3 g_blockDim, g_gridDim;

cudaError_t runtime_set_error(cudaError_t e); /* runtime.cc */
bool runtime_stream_ok(cudaStream_t s);

namespace {

constexpr size_t kStack = 64 << 10; /* per fiber; the kernels' register arrays are < 2 KiB */
constexpr int kMaxThreads = 1024;

enum State { RUNNABLE, WAIT_BAR, WAIT_WARP, WAIT_GROUP, DONE };
enum Coll { C_NONE, C_SHFL, C_MMA_BF16, C_MMA_F16, C_MMA_TF32 };
const char *const kCollName[] = {"-", "shuffle", "mma.m16n8k16.bf16", "mma.m16n8k16.f16", "mma.m16n8k8.tf32"};

struct Fiber {
    void *sp;              /* saved stack pointer while switched out */
    char *stack;           /* lowest usable byte; a guard page lies below */
    State state;
    uint3 idx;
#if !defined(DV_SIMT_ASM_SWITCH)
    ucontext_t uc;
#endif
};

struct Warp {
    int arrived, need;     /* lanes deposited so far, lanes the mask names */
    int coll, op, width;   /* what they are doing */
    unsigned mask;
    uint64_t val[32], out[32];
    int arg[32];
    uint32_t a[32][4], b[32][2];
    float c[32][4], d[32][4];
};

/* a group_collective in progress, kept at the warp index of its first thread */
struct Group {
    int arrived, count;
    const char *what;
};

struct Sched {
    Fiber fib[kMaxThreads];
    Warp warp[kMaxThreads / 32];
    Group group[kMaxThreads / 32];
    int n, live, at_bar, cur;
    int order;             /* ORDER_* */
    uint64_t rng;          /* xorshift state of ORDER_RANDOM */
    void (*body)(void *);
    void *ctx;
    const char *file;
    int line;
    void *main_sp;
#if !defined(DV_SIMT_ASM_SWITCH)
    ucontext_t main_uc;
#endif
};

Sched S;

/* the linker's bounds of simt.h's __shared__ section (every kernel's shared arrays) */
extern "C" char __start_dv_simt_shared[] __attribute__((weak)), __stop_dv_simt_shared[] __attribute__((weak));
std::mutex g_launch_lock;

[[noreturn]] void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "SIMT emulator: kernel launched at %s:%d, block (%u,%u,%u) of (%u,%u,%u), %d threads: ", S.file,
            S.line, g_blockIdx.x, g_blockIdx.y, g_blockIdx.z, g_gridDim.x, g_gridDim.y, g_gridDim.z, S.n);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    /* the first threads of each state, then abort */
    static const char *names[] = {"runnable", "at __syncthreads", "in a warp collective", "in a group collective",
                                  "exited"};
    for (int st = 0; st < 5; st++) {
        int shown = 0, count = 0;
        for (int t = 0; t < S.n; t++)
            if (S.fib[t].state == st) {
                if (shown < 8) fprintf(stderr, "%s%d", shown ? "," : "  ", t), shown++;
                count++;
            }
        if (count) fprintf(stderr, "%s: %d thread%s %s\n", count > shown ? ",..." : "", count, count == 1 ? "" : "s",
                           names[st]);
    }
    for (int w = 0; w < (S.n + 31) / 32; w++)
        if (S.warp[w].arrived)
            fprintf(stderr, "  warp %d: %d of %d lanes in %s (mask %08x)\n", w, S.warp[w].arrived, S.warp[w].need,
                    kCollName[S.warp[w].coll], S.warp[w].mask);
    for (int w = 0; w < (S.n + 31) / 32; w++)
        if (S.group[w].arrived)
            fprintf(stderr, "  threads %d..%d: %d of %d in %s\n", w * 32, w * 32 + S.group[w].count - 1,
                    S.group[w].arrived, S.group[w].count, S.group[w].what);
    abort();
}

/* ---- fibers ------------------------------------------------------------------------------ */
#if defined(DV_SIMT_ASM_SWITCH)
/* void dv_simt_switch(void **save_sp, void *to_sp): push the callee-saved registers, park the
 * stack pointer in *save_sp, take to_sp, pop the other fiber's registers and return into it */
extern "C" void dv_simt_switch(void **save_sp, void *to_sp);
asm(".text\n"
    ".globl dv_simt_switch\n"
    ".type dv_simt_switch,@function\n"
    "dv_simt_switch:\n"
    "    pushq %rbp\n"
    "    pushq %rbx\n"
    "    pushq %r12\n"
    "    pushq %r13\n"
    "    pushq %r14\n"
    "    pushq %r15\n"
    "    movq %rsp, (%rdi)\n"
    "    movq %rsi, %rsp\n"
    "    popq %r15\n"
    "    popq %r14\n"
    "    popq %r13\n"
    "    popq %r12\n"
    "    popq %rbx\n"
    "    popq %rbp\n"
    "    ret\n"
    ".size dv_simt_switch,.-dv_simt_switch\n");
#endif

void fiber_main();

void fiber_init(Fiber &f) {
#if defined(DV_SIMT_ASM_SWITCH)
    /* as if fiber_main had been called and had switched out: 6 saved registers, then the
     * return address fiber_main, then a fake return address of fiber_main itself, so that its
     * entry sees rsp = 8 mod 16 as after a call */
    uintptr_t top = ((uintptr_t)f.stack + kStack) & ~(uintptr_t)15;
    void **sp = (void **)top;
    *--sp = nullptr;
    *--sp = (void *)&fiber_main;
    for (int i = 0; i < 6; i++) *--sp = nullptr;
    f.sp = sp;
#else
    getcontext(&f.uc);
    f.uc.uc_stack.ss_sp = f.stack;
    f.uc.uc_stack.ss_size = kStack;
    f.uc.uc_link = nullptr;
    makecontext(&f.uc, fiber_main, 0);
#endif
}

void switch_fiber(int from, int to) { /* -1: the launching (main) context */
    if (to >= 0) {
        S.cur = to;
        g_threadIdx = S.fib[to].idx;
    }
#if defined(DV_SIMT_ASM_SWITCH)
    dv_simt_switch(from >= 0 ? &S.fib[from].sp : &S.main_sp, to >= 0 ? S.fib[to].sp : S.main_sp);
#else
    swapcontext(from >= 0 ? &S.fib[from].uc : &S.main_uc, to >= 0 ? &S.fib[to].uc : &S.main_uc);
#endif
}

/* the current thread stops running (it waits or has exited): switch to the next runnable
 * thread in scheduling order, or back to the launcher when all have exited */
int random_thread() {
    S.rng ^= S.rng << 13, S.rng ^= S.rng >> 7, S.rng ^= S.rng << 17;
    return (int)(S.rng % (uint64_t)S.n);
}

void yield() {
    int me = S.cur;
    if (S.order == ORDER_RANDOM) me = random_thread(); /* scan from a random thread instead */
    for (int k = 1; k <= S.n; k++) {
        int t = S.order == ORDER_REVERSE ? (me - k + S.n) % S.n : (me + k) % S.n;
        if (S.fib[t].state == RUNNABLE) {
            if (t != S.cur) switch_fiber(S.cur, t);
            return;
        }
    }
    if (S.live == 0) {
        switch_fiber(S.cur, -1);
        die("a finished thread was resumed");
    }
    die("deadlock: no thread can run");
}

/* the thread a block, or the phase after a barrier, starts with: the first in order (a random
 * one in random order) */
int first_thread() {
    if (S.order == ORDER_RANDOM) return random_thread();
    return S.order == ORDER_REVERSE ? S.n - 1 : 0;
}

/* every live thread is at the barrier: release them and restart from the first in order */
void release_barrier() {
    for (int t = 0; t < S.n; t++)
        if (S.fib[t].state == WAIT_BAR) S.fib[t].state = RUNNABLE;
    S.at_bar = 0;
    int first = first_thread();
    while (S.fib[first].state != RUNNABLE) first = S.order == ORDER_REVERSE ? (first + S.n - 1) % S.n : (first + 1) % S.n;
    if (first != S.cur) switch_fiber(S.cur, first);
}

void fiber_main() {
    S.body(S.ctx);
    Fiber &f = S.fib[S.cur];
    f.state = DONE;
    S.live--;
    if (S.live > 0 && S.at_bar == S.live) {
        /* the others all wait at a barrier this thread skipped by exiting: since Volta the
         * barrier counts only threads that have not exited, so it completes */
        for (int t = 0; t < S.n; t++)
            if (S.fib[t].state == WAIT_BAR) S.fib[t].state = RUNNABLE;
        S.at_bar = 0;
    }
    yield();
    die("an exited thread was resumed");
}

char *stack_pool[kMaxThreads];

char *get_stack(int t) {
    if (!stack_pool[t]) {
        size_t page = 4096;
        void *p = mmap(nullptr, kStack + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            perror("SIMT emulator: mmap of a fiber stack");
            abort();
        }
        mprotect(p, page, PROT_NONE); /* overflow faults instead of corrupting the next stack */
        stack_pool[t] = (char *)p + page;
    }
    return stack_pool[t];
}

/* ---- warp collectives -------------------------------------------------------------------- */
/* the lanes of the current thread's warp that exist (a partial last warp has fewer) */
unsigned warp_lanes(int w) {
    int nl = S.n - w * 32;
    return nl >= 32 ? 0xffffffffu : (1u << nl) - 1;
}

void compute(Warp &w, int wi) {
    if (w.coll == C_SHFL) {
        for (int l = 0; l < 32; l++) {
            if (!(w.mask >> l & 1)) continue;
            int width = w.width, base = l & ~(width - 1), src = l;
            int arg = w.arg[l];
            switch (w.op) {
            case SHFL_XOR: src = l ^ arg; if (src >= base + width) src = l; break;
            case SHFL_IDX: src = base + (arg & (width - 1)); break;
            case SHFL_DOWN: src = l + arg; if (src >= base + width) src = l; break;
            case SHFL_UP: src = l - arg; if (src < base) src = l; break;
            }
            if (!(w.mask >> src & 1))
                die("warp %d lane %d reads lane %d in a shuffle, which is not in the mask %08x (undefined)", wi, l, src,
                    w.mask);
            w.out[l] = w.val[src];
        }
        return;
    }
#ifdef DV_SIMT_HAVE_MMA
    if (w.coll == C_MMA_TF32) dv_simt_mma_m16n8k8_tf32_warp(w.d, w.a, w.b, w.c);
    else dv_simt_mma_m16n8k16_warp(w.coll == C_MMA_BF16, w.d, w.a, w.b, w.c);
#else
    die("%s: this build has no tensor-core emulation (tests/simt/mma.h is missing)", kCollName[w.coll]);
#endif
}

/* the current thread joins its warp's collective; returns its lane once every lane of the mask
 * has joined and the results are in the warp's out / d arrays */
int collective(int coll, unsigned mask, int op, int width) {
    int t = S.cur, wi = t / 32, lane = t % 32;
    Warp &w = S.warp[wi];
    unsigned lanes = warp_lanes(wi);
    if (mask & ~lanes)
        die("%s with mask %08x in warp %d, which has only lanes %08x (blockDim %u x %u x %u): undefined", kCollName[coll],
            mask, wi, lanes, g_blockDim.x, g_blockDim.y, g_blockDim.z);
    if (!(mask >> lane & 1)) die("thread %d runs a %s whose mask %08x leaves it out", t, kCollName[coll], mask);
    if (coll == C_SHFL && (width <= 0 || width > 32 || (width & (width - 1))))
        die("shuffle width %d is not a power of two <= 32", width);
    if (w.arrived == 0) {
        w.coll = coll, w.mask = mask, w.op = op, w.width = width;
        w.need = __builtin_popcount(mask);
    } else if (w.coll != coll || w.mask != mask || w.op != op || w.width != width) {
        die("lanes of warp %d are in different warp collectives: %s (mask %08x) and %s (mask %08x)", wi,
            kCollName[w.coll], w.mask, kCollName[coll], mask);
    }
    if (++w.arrived == w.need) {
        compute(w, wi);
        w.arrived = 0;
        for (int l = 0; l < 32; l++)
            if ((mask >> l & 1) && l != lane) S.fib[wi * 32 + l].state = RUNNABLE;
    } else {
        S.fib[t].state = WAIT_WARP;
        yield();
    }
    return lane;
}

} // namespace

void syncthreads() {
    S.fib[S.cur].state = WAIT_BAR;
    if (++S.at_bar == S.live) release_barrier();
    else yield();
}

uint64_t shfl(int op, unsigned mask, uint64_t v, int arg, int width) {
    Warp &w = S.warp[S.cur / 32];
    int lane = S.cur % 32;
    w.val[lane] = v;
    w.arg[lane] = arg;
    collective(C_SHFL, mask, op, width);
    return w.out[lane];
}

static void mma_common(int coll, float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
    Warp &w = S.warp[S.cur / 32];
    int lane = S.cur % 32;
    for (int r = 0; r < 4; r++) w.a[lane][r] = a[r], w.c[lane][r] = c[r];
    for (int r = 0; r < 2; r++) w.b[lane][r] = b[r];
    collective(coll, 0xffffffffu, 0, 32); /* mma.sync.aligned: the whole warp */
    for (int r = 0; r < 4; r++) d[r] = w.d[lane][r];
}

void mma_m16n8k16(bool bf16, float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
    mma_common(bf16 ? C_MMA_BF16 : C_MMA_F16, d, a, b, c);
}

void mma_m16n8k8_tf32(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
    mma_common(C_MMA_TF32, d, a, b, c);
}

uint32_t cvt_rna_tf32(float x) {
#ifdef DV_SIMT_HAVE_MMA
    return dv_simt_cvt_rna_tf32(x);
#else
    (void)x;
    die("cvt.rna.tf32.f32: this build has no tensor-core emulation (tests/simt/mma.h is missing)");
#endif
}

void group_collective(int first, int count, const char *what, void (*done)(void *), void *ctx) {
    int t = S.cur;
    if (first < 0 || first % 32 || count <= 0 || first + count > S.n || t < first || t >= first + count)
        die("%s: thread %d is not in a whole group of %d threads from thread %d (the block has %d)", what, t, count,
            first, S.n);
    Group &g = S.group[first / 32];
    if (g.arrived == 0) {
        g.what = what, g.count = count;
    } else if (g.count != count || strcmp(g.what, what)) {
        die("threads %d.. are in different group collectives: %s and %s", first, g.what, what);
    }
    if (++g.arrived == count) {
        done(ctx);
        g.arrived = 0;
        for (int i = first; i < first + count; i++)
            if (i != t) S.fib[i].state = RUNNABLE;
    } else {
        S.fib[t].state = WAIT_GROUP;
        yield();
    }
}

static int g_order = -1; /* -1: not read from the environment yet, else ORDER_* */
static uint64_t g_seed = 1;

/* DV_SIMT_ORDER: forward (default), reverse, or random[:seed] (a reproducible pseudo-random
 * thread after every wait) */
static int thread_order() {
    if (g_order < 0) {
        const char *e = getenv("DV_SIMT_ORDER");
        g_order = ORDER_FORWARD;
        if (e && !strcmp(e, "reverse")) g_order = ORDER_REVERSE;
        else if (e && !strncmp(e, "random", 6)) {
            g_order = ORDER_RANDOM;
            if (e[6] == ':') g_seed = strtoull(e + 7, nullptr, 10);
        } else if (e && *e && strcmp(e, "forward")) {
            fprintf(stderr, "SIMT emulator: DV_SIMT_ORDER=%s: expected forward, reverse or random[:seed]\n", e);
            abort();
        }
    }
    return g_order;
}

int set_thread_order(int order) {
    int was = thread_order();
    g_order = order;
    return was;
}

cudaError_t launch(const char *file, int line, dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                   void (*body)(void *), void *ctx) {
    uint64_t nt = (uint64_t)block.x * block.y * block.z;
    if (nt == 0 || nt > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 ||
        grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535)
        return runtime_set_error(cudaErrorInvalidConfiguration);
    if (smem > dynamic_shared_limit()) return runtime_set_error(cudaErrorInvalidValue);
    if (!runtime_stream_ok(s)) return runtime_set_error(cudaErrorInvalidResourceHandle);

    std::lock_guard<std::mutex> lock(g_launch_lock);
    S.order = thread_order();
    S.rng = g_seed * 0x9E3779B97F4A7C15ull + 1; /* the same order for the same launch sequence */
    S.body = body, S.ctx = ctx, S.file = file, S.line = line;
    S.n = (int)nt;
    g_gridDim = grid, g_blockDim = block;
    for (int t = 0; t < S.n; t++) {
        S.fib[t].stack = get_stack(t);
        S.fib[t].idx = {t % block.x, t / block.x % block.y, t / (block.x * block.y)};
    }
    for (int w = 0; w < (S.n + 31) / 32; w++) S.warp[w].arrived = 0, S.group[w].arrived = 0;
    const size_t shared_bytes = (uintptr_t)__stop_dv_simt_shared - (uintptr_t)__start_dv_simt_shared;
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                g_blockIdx = {bx, by, bz};
                if (shared_bytes) memset(__start_dv_simt_shared, 0xff, shared_bytes);
                dynamic_shared_begin_block(smem);
                for (int t = 0; t < S.n; t++) {
                    S.fib[t].state = RUNNABLE;
                    fiber_init(S.fib[t]);
                }
                S.live = S.n, S.at_bar = 0;
                switch_fiber(-1, first_thread());
                /* back here when every thread of the block has exited */
            }
    return cudaSuccess;
}

} // namespace dv_simt
