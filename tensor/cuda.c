/* tensor/cuda.c — the CUDA device runtime of tensor/cuda.h: device queries, the caching
 * device allocator, per-device streams, staged host <-> device copies, tensors on cuda:N
 * (copies into contiguous tensors and into non-overlapping strided views), and the op entry
 * points that run kernels/cuda/ on them (convolution as im2col + GEMM over chunks of images).
 *
 * Plain C against the CUDA runtime API (cuda_runtime_api.h); the kernels live in
 * kernels/cuda/. Without DV_HAVE_CUDA the second half of this file is a set of stand-ins
 * that report "built without CUDA".
 */
#include "tensor/cuda.h"

#include "tensor/internal.h"
#include "kernels/copy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *dv_device_str(dv_device d) {
    static __thread char ring[8][32];
    static __thread int next;
    char *b = ring[next++ % 8];
    if (d.type == DV_CPU) snprintf(b, 32, "cpu");
    else snprintf(b, 32, "cuda:%d", d.index);
    return b;
}

int dv_device_parse(const char *s, dv_device *out, char *err, size_t errlen) {
    if (!strcmp(s, "cpu")) { *out = DV_DEVICE_CPU; return 0; }
    if (!strcmp(s, "cuda")) { *out = dv_device_cuda(0); return 0; }
    if (!strncmp(s, "cuda:", 5)) {
        char *end = NULL;
        long i = strtol(s + 5, &end, 10);
        if (end != s + 5 && *end == 0 && i >= 0 && i < 1024) { *out = dv_device_cuda((int)i); return 0; }
    }
    snprintf(err, errlen, "device '%s': expected cpu, cuda or cuda:N", s);
    return -1;
}

void dv_tensors_move_(dv_tensor *const *ts, int n, dv_device d) {
    for (int i = 0; i < n; i++) dv_tensor_move_(ts[i], d);
}

#ifdef DV_HAVE_CUDA

#include <cuda_runtime_api.h>
#include <pthread.h>

#include "kernels/cuda/kernels.h"

#define MAX_DEV 16
#define NCLASS (4 * 41)

/* ---- devices ---------------------------------------------------------------------------- */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_ndev;
static char g_reason[512];

static void probe(void) {
    cudaError_t e = cudaGetDeviceCount(&g_ndev);
    if (e != cudaSuccess) {
        g_ndev = 0;
        const char *why = e == cudaErrorNoDevice ? "no CUDA device is visible"
                        : e == cudaErrorInsufficientDriver ? "no NVIDIA driver, or one too old for this build's CUDA runtime"
                        : "the CUDA runtime could not start";
        snprintf(g_reason, sizeof g_reason, "CUDA unavailable: %s (%s: %s)", why, cudaGetErrorName(e),
                 cudaGetErrorString(e));
        cudaGetLastError(); /* clear it */
    } else if (g_ndev == 0) {
        snprintf(g_reason, sizeof g_reason, "CUDA unavailable: no CUDA device is visible");
    }
    if (g_ndev > MAX_DEV) g_ndev = MAX_DEV;
}

bool dv_cuda_available(void) { pthread_once(&g_once, probe); return g_ndev > 0; }
const char *dv_cuda_unavailable_reason(void) { pthread_once(&g_once, probe); return g_reason; }
int dv_cuda_device_count(void) { pthread_once(&g_once, probe); return g_ndev; }
const char *dv_cuda_error_str(int err) { return cudaGetErrorString((cudaError_t)err); }

void dv_cuda_check(int err, const char *what) {
    if (err != 0) dv_panic("%s: CUDA error %d (%s)", what, err, cudaGetErrorString((cudaError_t)err));
}

static void need_device(int dev, const char *what) {
    if (!dv_cuda_available()) dv_panic("%s: %s", what, g_reason);
    if (dev < 0 || dev >= g_ndev) dv_panic("%s: cuda:%d does not exist (%d device%s)", what, dev, g_ndev, g_ndev == 1 ? "" : "s");
}

static __thread int t_current = -1;
void dv_cuda_set_device(int dev) {
    need_device(dev, "cuda_set_device");
    if (t_current != dev) {
        dv_cuda_check(cudaSetDevice(dev), "cudaSetDevice");
        t_current = dev;
    }
}

int dv_cuda_device_info(int dev, dv_cuda_info *out) {
    if (!dv_cuda_available() || dev < 0 || dev >= g_ndev) return -1;
    struct cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, dev) != cudaSuccess) return -1;
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", p.name);
    out->major = p.major;
    out->minor = p.minor;
    out->sm_count = p.multiProcessorCount;
    out->l2_bytes = p.l2CacheSize;
    int clk = 0, bus = 0;
    cudaDeviceGetAttribute(&clk, cudaDevAttrMemoryClockRate, dev);
    cudaDeviceGetAttribute(&bus, cudaDevAttrGlobalMemoryBusWidth, dev);
    out->mem_clock_khz = clk;
    out->mem_bus_bits = bus;
    dv_cuda_set_device(dev);
    size_t fr = 0, tot = 0;
    cudaMemGetInfo(&fr, &tot);
    out->free_bytes = (int64_t)fr;
    out->total_bytes = (int64_t)tot;
    return 0;
}

/* ---- streams ---------------------------------------------------------------------------- */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static cudaStream_t g_stream[MAX_DEV];

void *dv_cuda_stream(int dev) {
    dv_cuda_set_device(dev);
    pthread_mutex_lock(&g_lock);
    if (!g_stream[dev]) {
        cudaError_t e = cudaStreamCreateWithFlags(&g_stream[dev], cudaStreamNonBlocking);
        if (e != cudaSuccess) {
            pthread_mutex_unlock(&g_lock);
            dv_cuda_check(e, "cudaStreamCreate");
        }
    }
    cudaStream_t s = g_stream[dev];
    pthread_mutex_unlock(&g_lock);
    return s;
}

void dv_cuda_synchronize(int dev) {
    dv_cuda_check(cudaStreamSynchronize((cudaStream_t)dv_cuda_stream(dev)), "cudaStreamSynchronize");
}

void *dv_cuda_stream_of(const dv_tensor *t) {
    DV_ASSERT(t->device.type == DV_CUDA, "cuda_stream_of: tensor %s is on %s", dv_shape_str(t, NULL, 0),
              dv_device_str(t->device));
    return dv_cuda_stream(t->device.index);
}

/* ---- the caching allocator -------------------------------------------------------------- */
/* Size classes as tensor/alloc.c (quarter steps between powers of two), from 512 bytes. A block
 * is reused only by its own class, so no block is ever split and a freed block is whole.
 * Blocks are freed back to the cache at once: every kernel runs on the device's one stream,
 * so a later allocation's work is ordered after the earlier user's. */
typedef struct cblock { void *p; struct cblock *next; } cblock;
static cblock *g_free[MAX_DEV][NCLASS];
static dv_cuda_alloc_stats g_stats[MAX_DEV];
static int64_t g_cache_cap = -2;

static int64_t class_bytes(int c) { return (int64_t)(4 + c % 4) << (c / 4 + 7); } /* 512, 640, ... */
static int size_class(int64_t n) {
    int c = 0;
    while (c < NCLASS && class_bytes(c) < n) c += 4;   /* the power of two at or above n */
    c = c >= 4 ? c - 4 : 0;
    while (c < NCLASS && class_bytes(c) < n) c++;
    return c;
}

static void trim_locked(int dev) {
    for (int c = 0; c < NCLASS; c++) {
        while (g_free[dev][c]) {
            cblock *b = g_free[dev][c];
            g_free[dev][c] = b->next;
            cudaFree(b->p);
            free(b);
        }
    }
    g_stats[dev].cached_bytes = 0;
}

void *dv_cuda_alloc_try(int dev, int64_t nbytes, char *err, size_t errlen) {
    need_device(dev, "cuda_alloc");
    if (nbytes < 0) dv_panic("cuda_alloc: negative size %lld", (long long)nbytes);
    int c = size_class(nbytes ? nbytes : 1);
    dv_cuda_set_device(dev);
    if (c >= NCLASS) { /* more than the largest block there is: out of memory like a failed cudaMalloc */
        size_t fr = 0, tot = 0;
        cudaMemGetInfo(&fr, &tot);
        cudaGetLastError();
        snprintf(err, errlen,
                 "cuda:%d out of memory: requested %lld bytes (%.3f GiB), %.3f GiB free of %.3f GiB: beyond the "
                 "caching allocator's largest block (%lld bytes)",
                 dev, (long long)nbytes, nbytes / 1073741824.0, fr / 1073741824.0, tot / 1073741824.0,
                 (long long)class_bytes(NCLASS - 1));
        return NULL;
    }
    int64_t sz = class_bytes(c);
    pthread_mutex_lock(&g_lock);
    if (g_cache_cap == -2) {
        const char *e = getenv("DV_CUDA_CACHE_MB");
        g_cache_cap = e ? atoll(e) << 20 : -1;
    }
    dv_cuda_alloc_stats *st = &g_stats[dev];
    void *p = NULL;
    cblock *b = g_free[dev][c];
    if (b) {
        g_free[dev][c] = b->next;
        p = b->p;
        free(b);
        st->cached_bytes -= sz;
        st->n_cache_hits++;
    } else {
        cudaError_t e = cudaMalloc(&p, (size_t)sz);
        if (e == cudaErrorMemoryAllocation) {
            cudaGetLastError();
            trim_locked(dev);
            e = cudaMalloc(&p, (size_t)sz);
        }
        if (e != cudaSuccess) {
            cudaGetLastError();
            size_t fr = 0, tot = 0;
            cudaMemGetInfo(&fr, &tot);
            snprintf(err, errlen,
                     "cuda:%d out of memory: requested %lld bytes (%.3f GiB), %.3f GiB free of %.3f GiB "
                     "(%.3f GiB live in this process's tensors): %s",
                     dev, (long long)nbytes, nbytes / 1073741824.0, fr / 1073741824.0, tot / 1073741824.0,
                     st->live_bytes / 1073741824.0, cudaGetErrorString(e));
            pthread_mutex_unlock(&g_lock);
            return NULL;
        }
        st->n_cuda_malloc++;
    }
    st->n_alloc++;
    st->live_bytes += sz;
    if (st->live_bytes > st->peak_bytes) st->peak_bytes = st->live_bytes;
    pthread_mutex_unlock(&g_lock);
    return p;
}

void *dv_cuda_alloc(int dev, int64_t nbytes) {
    char err[512];
    void *p = dv_cuda_alloc_try(dev, nbytes, err, sizeof err);
    if (!p) dv_panic("%s", err);
    return p;
}

void dv_cuda_free(int dev, void *p, int64_t nbytes) {
    if (!p) return;
    int c = size_class(nbytes ? nbytes : 1);
    int64_t sz = class_bytes(c);
    pthread_mutex_lock(&g_lock);
    dv_cuda_alloc_stats *st = &g_stats[dev];
    st->live_bytes -= sz;
    if (g_cache_cap < 0 || st->cached_bytes + sz <= g_cache_cap) {
        cblock *b = malloc(sizeof *b);
        if (!b) dv_panic("cuda_free: out of host memory");
        b->p = p;
        b->next = g_free[dev][c];
        g_free[dev][c] = b;
        st->cached_bytes += sz;
        p = NULL;
    }
    pthread_mutex_unlock(&g_lock);
    if (p) {
        /* going back to the driver: the stream's pending work may still use it */
        dv_cuda_set_device(dev);
        cudaStreamSynchronize(g_stream[dev]);
        cudaFree(p);
    }
}

dv_cuda_alloc_stats dv_cuda_get_stats(int dev) {
    dv_cuda_alloc_stats s = {0};
    if (dev < 0 || dev >= MAX_DEV) return s;
    pthread_mutex_lock(&g_lock);
    s = g_stats[dev];
    pthread_mutex_unlock(&g_lock);
    return s;
}

void dv_cuda_trim(int dev) {
    if (!dv_cuda_available() || dev < 0 || dev >= g_ndev) return;
    dv_cuda_synchronize(dev);
    pthread_mutex_lock(&g_lock);
    trim_locked(dev);
    pthread_mutex_unlock(&g_lock);
}

void dv_cuda_reset_peak(int dev) {
    if (dev < 0 || dev >= MAX_DEV) return;
    pthread_mutex_lock(&g_lock);
    g_stats[dev].peak_bytes = g_stats[dev].live_bytes;
    pthread_mutex_unlock(&g_lock);
}

/* ---- staged copies ---------------------------------------------------------------------- */
#define STAGE_BYTES ((int64_t)8 << 20)
static pthread_mutex_t g_copy_lock = PTHREAD_MUTEX_INITIALIZER;
static void *g_stage[2];
static cudaEvent_t g_stage_done[MAX_DEV][2];

static void stage_init(int dev) {
    if (!g_stage[0]) {
        for (int i = 0; i < 2; i++)
            dv_cuda_check(cudaHostAlloc(&g_stage[i], (size_t)STAGE_BYTES, cudaHostAllocPortable), "cudaHostAlloc (staging)");
    }
    if (!g_stage_done[dev][0]) {
        for (int i = 0; i < 2; i++)
            dv_cuda_check(cudaEventCreateWithFlags(&g_stage_done[dev][i], cudaEventDisableTiming), "cudaEventCreate");
    }
}

/* Small uploads (timesteps, masks, a batch's proprio, a DDIM step's coefficients) go through
 * a per-device ring of pinned slots instead: the bytes are copied into the next slot, the DMA is
 * queued, and the call returns without waiting for the stream, so the kernels queued before it
 * keep the GPU busy while the host goes on. A slot is reused only after the DMA recorded on it
 * SMALL_SLOTS uploads ago has finished (its event). */
#define SMALL_BYTES ((int64_t)64 << 10)
#define SMALL_SLOTS 32
static char *g_small[MAX_DEV];
static cudaEvent_t g_small_done[MAX_DEV][SMALL_SLOTS];
static bool g_small_used[MAX_DEV][SMALL_SLOTS];
static int g_small_next[MAX_DEV];

static void small_h2d(int dev, void *dst, const void *src, int64_t n, cudaStream_t s) {
    if (!g_small[dev]) {
        dv_cuda_set_device(dev);
        dv_cuda_check(cudaHostAlloc((void **)&g_small[dev], (size_t)(SMALL_BYTES * SMALL_SLOTS), cudaHostAllocPortable),
                      "cudaHostAlloc (small uploads)");
        for (int i = 0; i < SMALL_SLOTS; i++)
            dv_cuda_check(cudaEventCreateWithFlags(&g_small_done[dev][i], cudaEventDisableTiming), "cudaEventCreate");
    }
    int i = g_small_next[dev];
    g_small_next[dev] = (i + 1) % SMALL_SLOTS;
    if (g_small_used[dev][i]) dv_cuda_check(cudaEventSynchronize(g_small_done[dev][i]), "h2d (small) slot");
    char *slot = g_small[dev] + (int64_t)i * SMALL_BYTES;
    memcpy(slot, src, (size_t)n);
    dv_cuda_check(cudaMemcpyAsync(dst, slot, (size_t)n, cudaMemcpyHostToDevice, s), "h2d copy");
    dv_cuda_check(cudaEventRecord(g_small_done[dev][i], s), "h2d (small) slot");
    g_small_used[dev][i] = true;
}

void dv_cuda_copy_h2d(int dev, void *dst, const void *src, int64_t n) {
    if (n <= 0) return;
    cudaStream_t s = dv_cuda_stream(dev);
    pthread_mutex_lock(&g_copy_lock);
    if (n <= SMALL_BYTES) {
        small_h2d(dev, dst, src, n, s);
        pthread_mutex_unlock(&g_copy_lock);
        return;
    }
    stage_init(dev);
    for (int64_t off = 0, k = 0; off < n; off += STAGE_BYTES, k++) {
        int i = (int)(k & 1);
        int64_t len = n - off < STAGE_BYTES ? n - off : STAGE_BYTES;
        /* the buffer's previous DMA must be over before we overwrite it */
        dv_cuda_check(cudaEventSynchronize(g_stage_done[dev][i]), "h2d staging");
        memcpy(g_stage[i], (const char *)src + off, (size_t)len);
        dv_cuda_check(cudaMemcpyAsync((char *)dst + off, g_stage[i], (size_t)len, cudaMemcpyHostToDevice, s), "h2d copy");
        dv_cuda_check(cudaEventRecord(g_stage_done[dev][i], s), "h2d staging");
    }
    /* the caller may free src at once (it did not go to the device directly), but the pinned
     * buffers are shared: wait for the last DMAs so the next copy (any device) may reuse them */
    dv_cuda_check(cudaStreamSynchronize(s), "h2d copy");
    pthread_mutex_unlock(&g_copy_lock);
}

void dv_cuda_copy_d2h(int dev, void *dst, const void *src, int64_t n) {
    if (n <= 0) return;
    cudaStream_t s = dv_cuda_stream(dev);
    pthread_mutex_lock(&g_copy_lock);
    stage_init(dev);
    int64_t nchunks = (n + STAGE_BYTES - 1) / STAGE_BYTES;
    /* chunk k goes to buffer k&1; the copy out of chunk k overlaps the DMA of chunk k+1 */
    for (int64_t k = 0; k <= nchunks; k++) {
        if (k < nchunks) {
            int i = (int)(k & 1);
            int64_t off = k * STAGE_BYTES, len = n - off < STAGE_BYTES ? n - off : STAGE_BYTES;
            dv_cuda_check(cudaMemcpyAsync(g_stage[i], (const char *)src + off, (size_t)len, cudaMemcpyDeviceToHost, s), "d2h copy");
            dv_cuda_check(cudaEventRecord(g_stage_done[dev][i], s), "d2h staging");
        }
        if (k > 0) {
            int64_t j = k - 1;
            int i = (int)(j & 1);
            int64_t off = j * STAGE_BYTES, len = n - off < STAGE_BYTES ? n - off : STAGE_BYTES;
            dv_cuda_check(cudaEventSynchronize(g_stage_done[dev][i]), "d2h copy");
            memcpy((char *)dst + off, g_stage[i], (size_t)len);
        }
    }
    pthread_mutex_unlock(&g_copy_lock);
}

void dv_cuda_copy_d2d(int dev, void *dst, const void *src, int64_t n) {
    if (n <= 0) return;
    cudaStream_t s = dv_cuda_stream(dev);
    dv_cuda_check(cudaMemcpyAsync(dst, src, (size_t)n, cudaMemcpyDeviceToDevice, s), "d2d copy");
}

/* ---- tensors ---------------------------------------------------------------------------- */
static void storage_free_cuda(void *data, int64_t nbytes, void *ctx) {
    dv_cuda_free((int)(intptr_t)ctx, data, nbytes);
}

static dv_storage *cuda_storage(int dev, int64_t nbytes) {
    dv_storage *s = calloc(1, sizeof *s);
    if (!s) dv_panic("out of memory");
    s->nbytes = nbytes;
    s->data = dv_cuda_alloc(dev, nbytes);
    s->device = dv_device_cuda(dev);
    s->refcount = 1;
    s->free_fn = storage_free_cuda;
    s->ctx = (void *)(intptr_t)dev;
    return s;
}

dv_tensor *dv_empty_on(dv_dtype dt, const int64_t *shape, int ndim, dv_device d) {
    if (d.type == DV_CPU) return dv_empty(dt, shape, ndim);
    need_device(d.index, "empty_on");
    DV_ASSERT((unsigned)dt < DV_NDTYPES, "empty_on: bad dtype %d", (int)dt);
    dv_tensor *t = dv_tensor_header(dt, shape, ndim);
    t->storage = cuda_storage(d.index, dv_numel(t) * (int64_t)dv_dtype_size(dt));
    t->device = d;
    return t;
}

dv_tensor *dv_zeros_on(dv_dtype dt, const int64_t *shape, int ndim, dv_device d) {
    if (d.type == DV_CPU) return dv_zeros(dt, shape, ndim);
    dv_tensor *t = dv_empty_on(dt, shape, ndim, d);
    dv_cuda_check(cudaMemsetAsync(t->storage->data, 0, (size_t)t->storage->nbytes,
                                  (cudaStream_t)dv_cuda_stream(d.index)), "zeros_on");
    return t;
}

/* a contiguous device tensor of t (t on that device already): t itself or a gathered copy */
static dv_tensor *cuda_contiguous(dv_tensor *t) {
    if (dv_is_contiguous(t)) return dv_retain(t);
    dv_tensor *c = dv_empty_on(t->dtype, t->shape, t->ndim, t->device);
    dv_cuda_check(dv_cu_copy_strided(t->ndim, t->shape, (int)dv_dtype_size(t->dtype), dv_data(c), dv_data(t),
                                     t->stride, dv_cuda_stream_of(t)),
                  "contiguous (cuda)");
    return c;
}

dv_tensor *dv_tensor_to(dv_tensor *t, dv_device d) {
    int64_t nbytes = dv_numel(t) * (int64_t)dv_dtype_size(t->dtype);
    if (t->device.type == d.type && t->device.index == d.index && dv_is_contiguous(t)) return dv_retain(t);
    if (d.type == DV_CPU && t->device.type == DV_CPU) return dv_clone(t);
    dv_tensor *out;
    DV_NO_GRAD_BEGIN
    if (d.type == DV_CUDA && t->device.type == DV_CPU) {
        dv_tensor *c = dv_contiguous(t);
        out = dv_empty_on(t->dtype, t->shape, t->ndim, d);
        dv_cuda_copy_h2d(d.index, out->storage->data, dv_data(c), nbytes);
        dv_release(c);
    } else {
        dv_tensor *c = cuda_contiguous(t);
        if (d.type == DV_CPU) {
            out = dv_empty(t->dtype, t->shape, t->ndim);
            dv_cuda_copy_d2h(t->device.index, out->storage->data, dv_data(c), nbytes);
        } else if (d.index == t->device.index) {
            out = dv_retain(c);
        } else {
            dv_cuda_synchronize(t->device.index);
            out = dv_empty_on(t->dtype, t->shape, t->ndim, d);
            dv_cuda_check(cudaMemcpyPeerAsync(out->storage->data, d.index, dv_data(c), t->device.index, (size_t)nbytes,
                                              (cudaStream_t)dv_cuda_stream(d.index)),
                          "tensor_to (peer copy)");
            /* the copy runs on the destination's stream, but its source block belongs to the
             * source device's cache, where the next kernel may reuse it as soon as c (or the
             * caller's t) is released: finish the copy first */
            dv_cuda_synchronize(d.index);
        }
        dv_release(c);
    }
    DV_NO_GRAD_END
    return out;
}

/* true when no two elements of the view t share a memory location: the dims of size > 1,
 * taken by ascending stride, each step over the extent of the ones before (what slices,
 * selects, permutes and reshapes of a contiguous tensor give; an expanded view does not) */
static bool view_one_to_one(const dv_tensor *t) {
    int64_t sh[DV_MAX_DIMS], sd[DV_MAX_DIMS];
    int m = 0;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] == 0) return true; /* empty: nothing is written */
        if (t->shape[d] == 1) continue;
        int k = m++; /* insertion by stride */
        while (k > 0 && sd[k - 1] > t->stride[d]) sh[k] = sh[k - 1], sd[k] = sd[k - 1], k--;
        sh[k] = t->shape[d], sd[k] = t->stride[d];
    }
    int64_t extent = 1; /* elements spanned by the dims so far */
    for (int k = 0; k < m; k++) {
        if (sd[k] < extent) return false;
        extent = sd[k] * (sh[k] - 1) + extent;
    }
    return true;
}

void dv_cuda_copy_tensor_(dv_tensor *dst, const dv_tensor *src) {
    DV_ASSERT(dst->device.type == DV_CUDA && src->device.type == DV_CUDA && dst->device.index == src->device.index,
              "copy_: %s on %s from %s on %s: copies between devices go through dv_tensor_to",
              dv_shape_str(dst, NULL, 0), dv_device_str(dst->device), dv_shape_str(src, NULL, 0), dv_device_str(src->device));
    if (!dv_is_contiguous(dst)) {
        /* a view (e.g. a strided slice, slice_backward's x[..., a:b:step]): the source, gathered
         * and converted to dst's dtype in a contiguous buffer, scattered through dst's strides */
        DV_ASSERT(view_one_to_one(dst), "copy_: the CUDA destination %s overlaps itself (an expanded view); "
                  "its elements would be written in no defined order", dv_shape_str(dst, NULL, 0));
        dv_tensor *c;
        if (src->dtype == dst->dtype) c = cuda_contiguous((dv_tensor *)src);
        else {
            c = dv_empty_on(dst->dtype, dst->shape, dst->ndim, dst->device);
            dv_cuda_copy_tensor_(c, src);
        }
        dv_cuda_check(dv_cu_scatter_strided(dst->ndim, dst->shape, (int)dv_dtype_size(dst->dtype), dv_data(dst),
                                            dst->stride, dv_data(c), dv_cuda_stream_of(dst)),
                      "copy_ (cuda, strided destination)");
        dv_release(c);
        return;
    }
    if (dst->dtype != src->dtype) { /* gather in the source dtype if needed, then convert */
        dv_tensor *sc = cuda_contiguous((dv_tensor *)src);
        dv_cuda_check(dv_cu_convert(dv_numel(dst), (int)dst->dtype, dv_data(dst), (int)src->dtype, dv_data(sc),
                                    dv_cuda_stream_of(dst)),
                      "copy_ (cuda, dtype conversion)");
        dv_release(sc);
        return;
    }
    int64_t nbytes = dv_numel(dst) * (int64_t)dv_dtype_size(dst->dtype);
    if (dv_is_contiguous(src)) dv_cuda_copy_d2d(dst->device.index, dv_data(dst), dv_data(src), nbytes);
    else dv_cuda_check(dv_cu_copy_strided(src->ndim, src->shape, (int)dv_dtype_size(src->dtype), dv_data(dst),
                                          dv_data(src), src->stride, dv_cuda_stream_of(dst)),
                       "copy_ (cuda)");
}

void dv_cuda_fill_tensor_(dv_tensor *t, double value) {
    DV_ASSERT(dv_is_contiguous(t), "fill_: a CUDA tensor must be contiguous (%s)", dv_shape_str(t, NULL, 0));
    uint64_t pattern = 0;     /* the value's bits in t's dtype, as the CPU fill writes them */
    int64_t one = 1;
    dv_fill_strided_portable(1, &one, (int)t->dtype, &pattern, &one, value);
    dv_cuda_check(dv_cu_fill(dv_data(t), dv_numel(t), (int)dv_dtype_size(t->dtype), pattern, dv_cuda_stream_of(t)),
                  "fill_ (cuda)");
}

/* ---- op entry points ---------------------------------------------------------------------- */
/* f32 GEMMs through TF32 (kernels/cuda/sgemm_tf32.cu): -1 = not decided yet (DV_CUDA_TF32 is read
 * at the first GEMM), 0 off, 1 on */
static int g_tf32 = -1;
void dv_cuda_set_tf32(bool on) { g_tf32 = on; }
bool dv_cuda_tf32(void) {
    if (g_tf32 < 0) {
        const char *e = getenv("DV_CUDA_TF32");
        g_tf32 = e && e[0] == '1';
    }
    return g_tf32 == 1;
}
/* every f32 GEMM of the ops goes through here: the CUDA-core kernel, or TF32 when enabled */
static int gemm_f32_any(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                        const float *B, int64_t ldb, float beta, float *C, int64_t ldc, void *stream) {
    return dv_cuda_tf32() ? dv_cu_gemm_tf32(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, stream)
                          : dv_cu_gemm_f32(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, stream);
}

void dv_require_kernel(const char *op, const dv_tensor *t) {
    if (t->device.type == DV_CPU) return;
    if (t->dtype != DV_F32)
        dv_panic("%s: the CUDA kernels take f32 (operand %s is %s on %s); cast first", op, dv_shape_str(t, NULL, 0),
                 dv_dtype_name(t->dtype), dv_device_str(t->device));
}

static void *dp(const dv_tensor *t) { return t ? dv_data(t) : NULL; }
static void *st(const dv_tensor *t) { return dv_cuda_stream_of(t); }

void dv_cuda_unary(int op, const dv_tensor *x, dv_tensor *y, double p1, double p2) {
    dv_cuda_check(dv_cu_unary_f32((dv_unary_op)op, dv_numel(x), dp(x), dp(y), p1, p2, st(x)), dv_unary_name(op));
}
void dv_cuda_unary_bwd(int op, const dv_tensor *x, const dv_tensor *y, const dv_tensor *gy, dv_tensor *gx,
                       double p1, double p2) {
    dv_cuda_check(dv_cu_unary_bwd_f32((dv_unary_op)op, dv_numel(x), dp(x), dp(y), dp(gy), dp(gx), p1, p2, st(x)),
                  dv_unary_name(op));
}
void dv_cuda_binary(int op, int ndim, const int64_t *shape, const dv_tensor *a, const int64_t *sa,
                    const dv_tensor *b, const int64_t *sb, dv_tensor *y) {
    dv_cuda_check(dv_cu_binary_f32((dv_binary_op)op, ndim, shape, dp(a), sa, dp(b), sb, dp(y), st(a)), dv_binary_name(op));
}
void dv_cuda_sum_dim(int64_t outer, int64_t n, int64_t inner, const dv_tensor *x, dv_tensor *y) {
    dv_cuda_check(dv_cu_reduce_f32(DV_CU_REDUCE_SUM, outer, n, inner, dp(x), dp(y), st(x)), "sum (cuda)");
}
void dv_cuda_scale_(dv_tensor *t, double s) {
    DV_ASSERT(dv_is_contiguous(t), "scale_ (cuda): %s is not contiguous", dv_shape_str(t, NULL, 0));
    dv_cuda_check(dv_cu_unary_f32(DV_UNARY_AFFINE, dv_numel(t), dp(t), dp(t), s, 0, st(t)), "scale (cuda)");
}
void dv_cuda_softmax_fwd(bool log, int64_t rows, int64_t n, const dv_tensor *x, dv_tensor *y) {
    dv_cuda_check(dv_cu_softmax_fwd_f32(log, rows, n, dp(x), dp(y), st(x)), log ? "log_softmax (cuda)" : "softmax (cuda)");
}
void dv_cuda_softmax_bwd(bool log, int64_t rows, int64_t n, const dv_tensor *y, const dv_tensor *gy, dv_tensor *gx) {
    dv_cuda_check(dv_cu_softmax_bwd_f32(log, rows, n, dp(y), dp(gy), dp(gx), st(y)),
                  log ? "log_softmax backward (cuda)" : "softmax backward (cuda)");
}
void dv_cuda_layernorm_fwd(int64_t rows, int64_t n, const dv_tensor *x, const dv_tensor *w, const dv_tensor *b,
                           double eps, dv_tensor *y, dv_tensor *mean, dv_tensor *rstd) {
    dv_cuda_check(dv_cu_layernorm_fwd_f32(rows, n, dp(x), dp(w), dp(b), eps, dp(y), dp(mean), dp(rstd), st(x)),
                  "layer_norm (cuda)");
}
void dv_cuda_rmsnorm_fwd(int64_t rows, int64_t n, const dv_tensor *x, const dv_tensor *w, double eps, dv_tensor *y,
                         dv_tensor *rstd) {
    dv_cuda_check(dv_cu_rmsnorm_fwd_f32(rows, n, dp(x), dp(w), eps, dp(y), dp(rstd), st(x)), "rms_norm (cuda)");
}
void dv_cuda_gemm_f32_half(int dev, dv_dtype bdt, int ta, int tb, int64_t M, int64_t N, int64_t K, double alpha,
                           const float *A, int64_t lda, const void *B, int64_t ldb, double beta, float *C,
                           int64_t ldc) {
    DV_ASSERT(bdt == DV_F16 || bdt == DV_BF16 || bdt == DV_F32, "gemm (cuda): right operand %s (f32, f16, bf16)",
              dv_dtype_name(bdt));
    if (M == 0 || N == 0) return;
    if (bdt == DV_F32) {
        dv_cuda_check(gemm_f32_any(ta, tb, M, N, K, (float)alpha, A, lda, (const float *)B, ldb, (float)beta, C, ldc,
                                     dv_cuda_stream(dev)),
                      "gemm f32 (cuda)");
        return;
    }
    /* A as stored: (M, K) rows of lda when ta = 0, (K, M) rows of lda when ta = 1; gather it
     * dense (ld = its row length) and round it to B's dtype */
    int64_t rows = ta ? K : M, cols = ta ? M : K;
    void *s = dv_cuda_stream(dev);
    float *dense = dv_cuda_alloc(dev, rows * cols * 4);
    uint16_t *ah = dv_cuda_alloc(dev, rows * cols * 2);
    dv_cuda_check(dv_cu_copy_strided(2, (const int64_t[]){rows, cols}, 4, dense, A, (const int64_t[]){lda, 1}, s),
                  "gemm (cuda): gather A");
    dv_cuda_check(dv_cu_convert(rows * cols, (int)bdt, ah, DV_F32, dense, s), "gemm (cuda): round A");
    dv_cuda_check(dv_cu_gemm(bdt == DV_BF16 ? DV_CU_BF16 : DV_CU_F16, ta, tb, M, N, K, (float)alpha, ah, cols, 0,
                             (const uint16_t *)B, ldb,
                             0, (float)beta, C, ldc, 0, true, 1, s),
                  "gemm (cuda)");
    dv_cuda_free(dev, dense, rows * cols * 4);
    dv_cuda_free(dev, ah, rows * cols * 2);
}

void dv_cuda_rng_fill(int kind, uint64_t seed, uint64_t offset, dv_tensor *t, double a, double b) {
    DV_ASSERT((t->dtype == DV_F32 || t->dtype == DV_F64) && dv_is_contiguous(t),
              "rng on %s: the CUDA generator fills contiguous f32 / f64 tensors (got %s %s)", dv_device_str(t->device),
              dv_dtype_name(t->dtype), dv_shape_str(t, NULL, 0));
    dv_cuda_check(dv_cu_rng_fill(kind, seed, offset, dv_numel(t), a, b, t->dtype == DV_F64, dp(t), st(t)), "rng (cuda)");
}

/* the weight-gradient partial sums live in a block of the caching allocator for the call:
 * freed at once, safe because every later user of the block is ordered after on the stream */
void dv_cuda_layernorm_bwd(int64_t rows, int64_t n, const dv_tensor *x, const dv_tensor *w, const dv_tensor *mean,
                           const dv_tensor *rstd, const dv_tensor *gy, dv_tensor *gx, dv_tensor *gw, dv_tensor *gb) {
    int dev = x->device.index;
    int64_t wb = (gw || gb) ? (int64_t)dv_cu_norm_work_bytes(rows, n) : 0;
    void *work = wb ? dv_cuda_alloc(dev, wb) : NULL;
    dv_cuda_check(dv_cu_layernorm_bwd_f32(rows, n, dp(x), dp(w), dp(mean), dp(rstd), dp(gy), dp(gx), dp(gw), dp(gb), work,
                                          st(x)),
                  "layer_norm backward (cuda)");
    dv_cuda_free(dev, work, wb);
}
void dv_cuda_rmsnorm_bwd(int64_t rows, int64_t n, const dv_tensor *x, const dv_tensor *w, const dv_tensor *rstd,
                         const dv_tensor *gy, dv_tensor *gx, dv_tensor *gw) {
    int dev = x->device.index;
    int64_t wb = gw ? (int64_t)dv_cu_norm_work_bytes(rows, n) : 0;
    void *work = wb ? dv_cuda_alloc(dev, wb) : NULL;
    dv_cuda_check(dv_cu_rmsnorm_bwd_f32(rows, n, dp(x), dp(w), dp(rstd), dp(gy), dp(gx), dp(gw), work, st(x)),
                  "rms_norm backward (cuda)");
    dv_cuda_free(dev, work, wb);
}

/* ---- fused nn kernels (kernels/cuda/{rotary,bias_act,modulate,diffusion}.cu) --------------- */
void dv_cuda_rotary(int64_t B, int64_t H, int64_t T, int64_t D, int64_t rot, int interleaved, int transpose,
                    const dv_tensor *x, const dv_tensor *cos, const dv_tensor *sin, int64_t tab_bstride, dv_tensor *y) {
    dv_cuda_check(dv_cu_rotary_f32(B, H, T, D, rot, interleaved, transpose, dp(x), dp(cos), dp(sin), tab_bstride, dp(y),
                                   st(x)),
                  transpose ? "rotary backward (cuda)" : "rotary (cuda)");
}
void dv_cuda_bias_act_fwd(int act, int64_t R, int64_t N, const dv_tensor *x, const dv_tensor *b, dv_tensor *y) {
    dv_cuda_check(dv_cu_bias_act_fwd_f32((dv_bias_act_kind)act, R, N, dp(x), dp(b), dp(y), st(x)), "bias_act (cuda)");
}
void dv_cuda_bias_act_bwd(int act, int64_t R, int64_t N, const dv_tensor *x, const dv_tensor *b, const dv_tensor *gy,
                          dv_tensor *gx, dv_tensor *gb) {
    int dev = x->device.index;
    int64_t wb = gb ? (int64_t)dv_cu_bias_act_work_bytes(R, N) : 0;
    void *work = wb ? dv_cuda_alloc(dev, wb) : NULL;
    dv_cuda_check(dv_cu_bias_act_bwd_f32((dv_bias_act_kind)act, R, N, dp(x), dp(b), dp(gy), dp(gx), dp(gb), work,
                                         st(x)),
                  "bias_act backward (cuda)");
    dv_cuda_free(dev, work, wb);
}
void dv_cuda_modulate(int64_t B, int64_t T, int64_t C, const dv_tensor *x, const dv_tensor *shift,
                      const dv_tensor *scale, double one, dv_tensor *y) {
    dv_cuda_check(dv_cu_modulate_f32(B, T, C, dp(x), dp(shift), dp(scale), (float)one, dp(y), st(x)), "modulate (cuda)");
}
void dv_cuda_modulate_bwd(int64_t B, int64_t T, int64_t C, const dv_tensor *x, const dv_tensor *scale, double one,
                          const dv_tensor *g, dv_tensor *gx, dv_tensor *gshift, dv_tensor *gscale) {
    dv_cuda_check(dv_cu_modulate_bwd_f32(B, T, C, dp(x), dp(scale), (float)one, dp(g), dp(gx), dp(gshift), dp(gscale),
                                         st(x)),
                  "modulate backward (cuda)");
}
void dv_cuda_ln_modulate(int64_t B, int64_t T, int64_t C, const dv_tensor *x, const dv_tensor *shift,
                         const dv_tensor *scale, double eps, dv_tensor *y, dv_tensor *mean, dv_tensor *rstd) {
    dv_cuda_check(dv_cu_ln_modulate_f32(B, T, C, dp(x), dp(shift), dp(scale), eps, dp(y), dp(mean), dp(rstd), st(x)),
                  "layer_norm_modulate (cuda)");
}
void dv_cuda_ln_modulate_bwd(int64_t B, int64_t T, int64_t C, const dv_tensor *x, const dv_tensor *mean,
                             const dv_tensor *rstd, const dv_tensor *scale, const dv_tensor *g, dv_tensor *gx,
                             dv_tensor *gshift, dv_tensor *gscale) {
    dv_cuda_check(dv_cu_ln_modulate_bwd_f32(B, T, C, dp(x), dp(mean), dp(rstd), dp(scale), dp(g), dp(gx), dp(gshift),
                                            dp(gscale), st(x)),
                  "layer_norm_modulate backward (cuda)");
}
void dv_cuda_gated_residual(int64_t B, int64_t T, int64_t C, const dv_tensor *x, const dv_tensor *gate,
                            const dv_tensor *h, dv_tensor *y) {
    dv_cuda_check(dv_cu_gated_residual_f32(B, T, C, dp(x), dp(gate), dp(h), dp(y), st(x)), "gated_residual (cuda)");
}
void dv_cuda_diffusion_step(const dv_tensor *model_output, const dv_tensor *sample, const dv_tensor *noise,
                            dv_tensor *out, dv_tensor *pred_x0, const dv_diffusion_coef *c) {
    dv_cuda_check(dv_cu_diffusion_step_f32(dv_numel(sample), dp(model_output), dp(sample), dp(noise), dp(out),
                                           dp(pred_x0), c, st(sample)),
                  "diffusion step (cuda)");
}

/* ---- flash attention (kernels/cuda/attention*.cu) ------------------------------------------ */
/* The kernels take one head width, a multiple of 8 up to 128, for q, k and v alike. The op
 * hands them dense bf16 copies anyway, so those copies are padded with zero columns to DP =
 * max(D, Dv) rounded up to 8: zero q / k columns add nothing to the scores (the scale is
 * g->scale, already resolved from the real D by nn/attention.c), zero v columns give output
 * columns that are dropped, and the gradients' padded columns are dropped too. */
static int64_t attn_dp(const dv_attn_geom *g) {
    int64_t m = g->D > g->Dv ? g->D : g->Dv;
    m = (m + 7) / 8 * 8;
    return m < 8 ? 8 : m;
}

void dv_cuda_attention_check(const dv_attn_geom *g) {
    if (g->D < 0 || g->Dv < 0 || g->D > 128 || g->Dv > 128)
        dv_panic("attention on cuda: head dims D = %lld, Dv = %lld; the CUDA flash kernels take up to 128",
                 (long long)g->D, (long long)g->Dv);
    if (g->B * g->Hq > 65535 || g->B * g->Hkv > 65535)
        dv_panic("attention on cuda: B * Hq = %lld > 65535 (one grid row per (batch, head))", (long long)(g->B * g->Hq));
}

/* a contiguous bf16 (B, H, T, DP) copy of the f32 (B, H, T, D) operand p read through strides
 * s (b, h, t), zeros in the columns D .. DP-1 */
static uint16_t *attn_pack(int dev, const float *p, const int64_t s[3], int64_t B, int64_t H, int64_t T, int64_t D,
                           int64_t DP, void *stream) {
    uint16_t *h = dv_cuda_alloc(dev, B * H * T * DP * 2);
    dv_cuda_check(dv_cu_attention_pack_bf16(B, H, T, D, DP, p, s, h, stream), "attention (cuda): pack to bf16");
    return h;
}

/* the geometry of the padded bf16 copies (o, dout and the gradients are f32) */
static dv_attn_geom attn_dense_geom(const dv_attn_geom *g, int64_t DP) {
    dv_attn_geom d = *g;
    d.D = d.Dv = DP;
    int64_t qs[3] = {g->Hq * g->Tq * DP, g->Tq * DP, DP}, ks[3] = {g->Hkv * g->Tk * DP, g->Tk * DP, DP};
    for (int i = 0; i < 3; i++) d.q_stride[i] = qs[i], d.k_stride[i] = ks[i], d.v_stride[i] = ks[i];
    return d;
}

/* where the kernel writes an f32 result t of `width` columns as (rows, DP): t itself when DP is
 * its width, else a scratch buffer unpacked into t afterwards (attn_unpad) */
static float *attn_padded_out(int dev, dv_tensor *t, int64_t rows, int64_t width, int64_t DP) {
    if (!t) return NULL;
    return width == DP ? dp(t) : dv_cuda_alloc(dev, rows * DP * 4);
}
static void attn_unpad(int dev, dv_tensor *t, float *buf, int64_t rows, int64_t width, int64_t DP, void *s) {
    if (!t || width == DP) return;
    dv_cuda_check(dv_cu_attention_unpack_f32(rows, width, DP, buf, dp(t), s), "attention (cuda): unpad");
    dv_cuda_free(dev, buf, rows * DP * 4);
}

void dv_cuda_attention_fwd(const dv_attn_geom *g, const dv_tensor *q, const dv_tensor *k, const dv_tensor *v,
                           const dv_tensor *bias, dv_tensor *o, dv_tensor *lse) {
    dv_cuda_attention_check(g);
    int dev = q->device.index;
    void *s = st(q);
    const int64_t DP = attn_dp(g), rows = g->B * g->Hq * g->Tq, nq = rows * DP, nk = g->B * g->Hkv * g->Tk * DP;
    if (rows == 0) return;
    uint16_t *qh = attn_pack(dev, dp(q), g->q_stride, g->B, g->Hq, g->Tq, g->D, DP, s);
    uint16_t *kh = attn_pack(dev, dp(k), g->k_stride, g->B, g->Hkv, g->Tk, g->D, DP, s);
    uint16_t *vh = attn_pack(dev, dp(v), g->v_stride, g->B, g->Hkv, g->Tk, g->Dv, DP, s);
    float *op = attn_padded_out(dev, o, rows, g->Dv, DP);
    dv_attn_geom d = attn_dense_geom(g, DP);
    dv_cuda_check(dv_cu_attention_fwd(DV_CU_BF16, &d, qh, kh, vh, dp(bias), op, dp(lse), s), "attention (cuda)");
    attn_unpad(dev, o, op, rows, g->Dv, DP, s);
    dv_cuda_free(dev, qh, nq * 2);
    dv_cuda_free(dev, kh, nk * 2), dv_cuda_free(dev, vh, nk * 2);
}

void dv_cuda_attention_bwd(const dv_attn_geom *g, const dv_tensor *q, const dv_tensor *k, const dv_tensor *v,
                           const dv_tensor *bias, const dv_tensor *o, const dv_tensor *lse, const dv_tensor *dout,
                           dv_tensor *dq, dv_tensor *dk, dv_tensor *dv, dv_tensor *dbias) {
    dv_cuda_attention_check(g);
    int dev = q->device.index;
    void *s = st(q);
    const int64_t DP = attn_dp(g), rows = g->B * g->Hq * g->Tq, krows = g->B * g->Hkv * g->Tk;
    if (rows == 0 || krows == 0) { /* no keys or no queries: every gradient is zero */
        if (dq) dv_cuda_fill_tensor_(dq, 0.0);
        if (dk) dv_cuda_fill_tensor_(dk, 0.0);
        if (dv) dv_cuda_fill_tensor_(dv, 0.0);
        if (dbias) dv_cuda_fill_tensor_(dbias, 0.0);
        return;
    }
    const int64_t nq = rows * DP, nk = krows * DP;
    uint16_t *qh = attn_pack(dev, dp(q), g->q_stride, g->B, g->Hq, g->Tq, g->D, DP, s);
    uint16_t *kh = attn_pack(dev, dp(k), g->k_stride, g->B, g->Hkv, g->Tk, g->D, DP, s);
    uint16_t *vh = attn_pack(dev, dp(v), g->v_stride, g->B, g->Hkv, g->Tk, g->Dv, DP, s);
    float *gq = attn_padded_out(dev, dq, rows, g->D, DP), *gk = attn_padded_out(dev, dk, krows, g->D, DP);
    float *gv = attn_padded_out(dev, dv, krows, g->Dv, DP);
    dv_attn_geom d = attn_dense_geom(g, DP);
    int64_t wb = (int64_t)dv_cu_attention_bwd_work_bytes(&d);
    void *work = dv_cuda_alloc(dev, wb);
    /* o and dout: f32, contiguous (B, Hq, Tq, Dv), read as they are */
    dv_cuda_check(dv_cu_attention_bwd(DV_CU_BF16, &d, qh, kh, vh, dp(bias), dp(o), dp(lse), dp(dout), g->Dv, gq, gk, gv,
                                      dp(dbias), work, s),
                  "attention backward (cuda)");
    attn_unpad(dev, dq, gq, rows, g->D, DP, s);
    attn_unpad(dev, dk, gk, krows, g->D, DP, s);
    attn_unpad(dev, dv, gv, krows, g->Dv, DP, s);
    dv_cuda_free(dev, work, wb);
    dv_cuda_free(dev, qh, nq * 2);
    dv_cuda_free(dev, kh, nk * 2), dv_cuda_free(dev, vh, nk * 2);
}

/* ---- indexing, losses, pooling, resizing (kernels/cuda/{index,loss,pool,resize}.cu) ------- */
static void require_f32(const char *op, const dv_tensor *t) {
    if (t->dtype != DV_F32)
        dv_panic("%s: the CUDA kernel takes f32, got %s %s on %s; cast first", op, dv_dtype_name(t->dtype),
                 dv_shape_str(t, NULL, 0), dv_device_str(t->device));
}
void dv_cuda_take_rows(int64_t outer, int64_t k, int64_t n, int64_t inner, const dv_tensor *idx, const dv_tensor *src,
                       dv_tensor *dst) {
    dv_cuda_check(dv_cu_take_rows((int)dv_dtype_size(src->dtype), outer, k, n, inner, dp(idx), dp(src), dp(dst), st(src)),
                  "take rows (embedding / index_select, cuda)");
}
void dv_cuda_concat_piece(const dv_tensor *x, dv_tensor *y, int d, int64_t off) {
    int64_t outer = 1, inner = 1, es = (int64_t)dv_dtype_size(y->dtype), len = x->shape[d];
    for (int k = 0; k < d; k++) outer *= y->shape[k];
    for (int k = d + 1; k < y->ndim; k++) inner *= y->shape[k];
    dv_tensor *xc = dv_contiguous((dv_tensor *)x);
    dv_cuda_check(dv_cu_copy_rows((int)es, outer, len * inner, dp(xc), len * inner, (char *)dp(y) + off * inner * es,
                                  y->shape[d] * inner, st(y)),
                  "concat (cuda)");
    dv_release(xc);
}
void dv_cuda_index_add_rows(int64_t outer, int64_t k, int64_t n, int64_t inner, const dv_tensor *idx,
                            const dv_tensor *src, dv_tensor *dst) {
    require_f32("index_add (embedding / index_select backward)", src);
    dv_cuda_check(dv_cu_index_add_rows_f32(outer, k, n, inner, dp(idx), dp(src), dp(dst), st(src)),
                  "index_add (embedding / index_select backward, cuda)");
}
void dv_cuda_gather(int dim, const dv_tensor *idx, const dv_tensor *x, dv_tensor *y) {
    dv_cuda_check(dv_cu_gather((int)dv_dtype_size(x->dtype), idx->ndim, idx->shape, dim, x->stride, dp(idx), dp(x),
                               dp(y), st(x)),
                  "gather (cuda)");
}
void dv_cuda_scatter_add(int dim, const dv_tensor *idx, const dv_tensor *src, dv_tensor *x) {
    require_f32("scatter_add (gather backward)", src);
    dv_cuda_check(dv_cu_scatter_add_f32(idx->ndim, idx->shape, dim, x->stride, dp(idx), dp(src), dp(x), st(src)),
                  "scatter_add (gather backward, cuda)");
}
dv_tensor *dv_cuda_bce_logits(const dv_tensor *x, const dv_tensor *t) {
    require_f32("bce_with_logits", x);
    int dev = x->device.index;
    int64_t n = dv_numel(x), wb = (int64_t)dv_cu_loss_work_bytes();
    dv_tensor *y = dv_empty_on(DV_F32, NULL, 0, x->device);
    void *work = dv_cuda_alloc(dev, wb);
    dv_cuda_check(dv_cu_bce_logits_f32(n, dp(x), dp(t), 1.0 / (double)n, dp(y), work, st(x)), "bce_with_logits (cuda)");
    dv_cuda_free(dev, work, wb);
    return y;
}
void dv_cuda_bce_logits_bwd(const dv_tensor *x, const dv_tensor *t, const dv_tensor *g, dv_tensor *gx, dv_tensor *gt) {
    dv_tensor *gc = dv_contiguous((dv_tensor *)g);
    require_f32("bce_with_logits backward", gc);
    dv_cuda_check(dv_cu_bce_logits_bwd_f32(dv_numel(x), dp(x), dp(t), dp(gc), 1.0 / (double)dv_numel(x), dp(gx), dp(gt),
                                           st(x)),
                  "bce_with_logits backward (cuda)");
    dv_release(gc);
}
dv_tensor *dv_cuda_cross_entropy(int64_t rows, int64_t n, const dv_tensor *x, const dv_tensor *target, int64_t ignore,
                                 int64_t count, dv_tensor *lse) {
    require_f32("cross_entropy", x);
    int dev = x->device.index;
    int64_t wb = (int64_t)dv_cu_loss_work_bytes();
    dv_tensor *y = dv_empty_on(DV_F32, NULL, 0, x->device), *loss = dv_empty_on(DV_F32, &rows, 1, x->device);
    void *work = dv_cuda_alloc(dev, wb);
    dv_cuda_check(dv_cu_cross_entropy_f32(rows, n, dp(x), dp(target), ignore, 1.0 / (double)count, dp(loss), dp(lse),
                                          dp(y), work, st(x)),
                  "cross_entropy (cuda)");
    dv_cuda_free(dev, work, wb);
    dv_release(loss);
    return y;
}
void dv_cuda_cross_entropy_bwd(int64_t rows, int64_t n, const dv_tensor *x, const dv_tensor *target, int64_t ignore,
                               const dv_tensor *lse, const dv_tensor *g, int64_t count, dv_tensor *gx) {
    dv_tensor *gc = dv_contiguous((dv_tensor *)g);
    require_f32("cross_entropy backward", gc);
    dv_cuda_check(dv_cu_cross_entropy_bwd_f32(rows, n, dp(x), dp(target), ignore, dp(lse), dp(gc), 1.0 / (double)count,
                                              dp(gx), st(x)),
                  "cross_entropy backward (cuda)");
    dv_release(gc);
}
void dv_cuda_max_pool2d(const dv_pool2d_geom *g, int64_t P, const dv_tensor *x, dv_tensor *y, dv_tensor *idx) {
    dv_cuda_check(dv_cu_max_pool2d_f32(g, P, dp(x), dp(y), dp(idx), st(x)), "max_pool2d (cuda)");
}
void dv_cuda_max_pool2d_bwd(const dv_pool2d_geom *g, int64_t P, const dv_tensor *gy, const dv_tensor *idx, dv_tensor *gx) {
    dv_cuda_check(dv_cu_max_pool2d_bwd_f32(g, P, dp(gy), dp(idx), dp(gx), st(gy)), "max_pool2d backward (cuda)");
}
void dv_cuda_avg_pool2d(const dv_pool2d_geom *g, int64_t P, const dv_tensor *x, dv_tensor *y) {
    dv_cuda_check(dv_cu_avg_pool2d_f32(g, P, dp(x), dp(y), st(x)), "avg_pool2d (cuda)");
}
void dv_cuda_avg_pool2d_bwd(const dv_pool2d_geom *g, int64_t P, const dv_tensor *gy, dv_tensor *gx) {
    dv_cuda_check(dv_cu_avg_pool2d_bwd_f32(g, P, dp(gy), dp(gx), st(gy)), "avg_pool2d backward (cuda)");
}
void dv_cuda_adaptive_avg_pool2d(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, const dv_tensor *x,
                                 dv_tensor *y) {
    dv_cuda_check(dv_cu_adaptive_avg_pool2d_f32(P, H, W, OH, OW, dp(x), dp(y), st(x)), "adaptive_avg_pool2d (cuda)");
}
void dv_cuda_adaptive_avg_pool2d_bwd(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, const dv_tensor *gy,
                                     dv_tensor *gx) {
    dv_cuda_check(dv_cu_adaptive_avg_pool2d_bwd_f32(P, H, W, OH, OW, dp(gy), dp(gx), st(gy)),
                  "adaptive_avg_pool2d backward (cuda)");
}
void dv_cuda_resize(bool bilinear, int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, int align_corners,
                    const dv_tensor *x, dv_tensor *y) {
    if (bilinear)
        dv_cuda_check(dv_cu_resize_bilinear_f32(P, H, W, OH, OW, align_corners, dp(x), dp(y), st(x)), "resize_bilinear (cuda)");
    else
        dv_cuda_check(dv_cu_resize_nearest_f32(P, H, W, OH, OW, dp(x), dp(y), st(x)), "resize_nearest (cuda)");
}
void dv_cuda_resize_bwd(bool bilinear, int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, int align_corners,
                        const dv_tensor *gy, dv_tensor *gx) {
    if (bilinear)
        dv_cuda_check(dv_cu_resize_bilinear_bwd_f32(P, H, W, OH, OW, align_corners, dp(gy), dp(gx), st(gy)),
                      "resize_bilinear backward (cuda)");
    else
        dv_cuda_check(dv_cu_resize_nearest_bwd_f32(P, H, W, OH, OW, dp(gy), dp(gx), st(gy)), "resize_nearest backward (cuda)");
}

/* ---- convolution: im2col (kernels/cuda/conv.cu) + the f32 GEMM (kernels/cuda/sgemm.cu) ----- */
/* Images go in chunks of nb: one im2col launch for the chunk's images and groups into col
 * (G, K, nb, N), one GEMM per group whose N dimension spans the nb images, and one launch that
 * transposes the (Cout, nb, N) result into y's (nb, Cout, N) with the bias. Every output is the
 * same K-long dot product as in a GEMM per (image, group), so the result is the per-image
 * path's bits. The backward batches im2col / col2im and the dx GEMMs the same way (gy
 * transposed to (Cout, nb, N) first); the dW GEMMs stay one per (image, group), accumulating
 * image after image as the CPU does (batching them would merge the images into the GEMM's K
 * dimension: another summation order). nb is as many images as the workspace cap allows
 * (DV_CUDA_CONV_WORKSPACE_KB, default 256 MiB); a chunk of one image needs no transpose (its
 * GEMMs write y / dx directly, and a 1x1 / stride-1 / unpadded conv reads x in place); when not
 * even one image's columns fit, each (image, group) gets its own im2col + GEMM, as before. */
static bool conv_direct(const dv_conv2d_geom *g) {
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0;
}

static int64_t conv_workspace_cap(void) {
    const char *e = getenv("DV_CUDA_CONV_WORKSPACE_KB");
    long long kb = e ? atoll(e) : 0;
    return kb > 0 ? (int64_t)kb << 10 : (int64_t)256 << 20;
}

/* images per chunk: per_image bytes of workspace each, at most B; 0 when one does not fit */
static int64_t conv_chunk(int64_t B, int64_t per_image) {
    int64_t cap = conv_workspace_cap();
    if (per_image <= 0) return B;
    int64_t nb = cap / per_image;
    return nb < B ? nb : B;
}

/* the forward of images [b0, b0 + nb) (nb >= 1); col: G K nb N floats unless nb == 1 and
 * direct; t: Cout nb N floats when nb > 1 */
static void conv_fwd_chunk(const dv_conv2d_geom *g, int64_t b0, int64_t nb, int64_t Cin, int64_t Cout, int64_t G,
                           const float *X, const float *Wt, const float *bias, float *Y, float *col, float *t,
                           void *s) {
    const int64_t Og = Cout / G, K = g->C * g->kh * g->kw, N = g->OH * g->OW, HW = g->H * g->W;
    const bool in_place = nb == 1 && conv_direct(g);
    if (!in_place)
        dv_cuda_check(dv_cu_im2col_batch_f32(g, nb, G, X + b0 * Cin * HW, col, s), "conv2d (cuda): im2col");
    if (nb == 1 && bias) dv_cuda_check(dv_cu_bias_fill_f32(1, Cout, N, bias, Y + b0 * Cout * N, s), "conv2d (cuda): bias");
    for (int64_t gi = 0; gi < G; gi++) {
        const float *xg = in_place ? X + (b0 * Cin + gi * g->C) * HW : col + gi * K * nb * N;
        if (nb == 1) /* straight into y, the bias already there */
            dv_cuda_check(gemm_f32_any(0, 0, Og, N, K, 1.0f, Wt + gi * Og * K, K, xg, N, bias ? 1.0f : 0.0f,
                                       Y + (b0 * Cout + gi * Og) * N, N, s),
                          "conv2d (cuda): gemm");
        else
            dv_cuda_check(gemm_f32_any(0, 0, Og, nb * N, K, 1.0f, Wt + gi * Og * K, K, xg, nb * N, 0.0f,
                                       t + gi * Og * nb * N, nb * N, s),
                          "conv2d (cuda): gemm");
    }
    if (nb > 1)
        dv_cuda_check(dv_cu_conv_out_f32(nb, Cout, N, t, bias, Y + b0 * Cout * N, s), "conv2d (cuda): transpose + bias");
}

void dv_cuda_conv2d(const dv_conv2d_geom *g, int64_t B, int64_t Cin, int64_t Cout, int64_t G, const dv_tensor *x,
                    const dv_tensor *w, const dv_tensor *bias, dv_tensor *y) {
    require_f32("conv2d", x);
    int dev = x->device.index;
    void *s = st(x);
    const int64_t Og = Cout / G, K = g->C * g->kh * g->kw, N = g->OH * g->OW, HW = g->H * g->W;
    const float *X = dp(x), *Wt = dp(w), *Bi = dp(bias);
    float *Y = dp(y);
    if (B * Cout * N == 0) return;
    int64_t nb = conv_chunk(B, (G * K + Cout) * N * 4);
    if (nb == 0 && G * K * N * 4 <= conv_workspace_cap()) nb = 1; /* one image without the transpose buffer */
    if (nb >= 1) {
        int64_t cb = nb == 1 && conv_direct(g) ? 0 : G * K * nb * N * 4, tb = nb > 1 ? Cout * nb * N * 4 : 0;
        float *col = cb ? dv_cuda_alloc(dev, cb) : NULL, *t = tb ? dv_cuda_alloc(dev, tb) : NULL;
        for (int64_t b0 = 0; b0 < B; b0 += nb)
            conv_fwd_chunk(g, b0, B - b0 < nb ? B - b0 : nb, Cin, Cout, G, X, Wt, Bi, Y, col, t, s);
        if (col) dv_cuda_free(dev, col, cb);
        if (t) dv_cuda_free(dev, t, tb);
        return;
    }
    /* not one image's columns fit the cap: per (image, group), one group's columns at a time */
    const bool direct = conv_direct(g);
    if (bias) dv_cuda_check(dv_cu_bias_fill_f32(B, Cout, N, Bi, Y, s), "conv2d (cuda): bias");
    int64_t cb = direct ? 0 : K * N * 4;
    float *col = cb ? dv_cuda_alloc(dev, cb) : NULL;
    for (int64_t b = 0; b < B; b++)
        for (int64_t gi = 0; gi < G; gi++) {
            const float *xg = X + (b * Cin + gi * g->C) * HW;
            if (!direct) {
                dv_cuda_check(dv_cu_im2col_f32(g, xg, col, s), "conv2d (cuda): im2col");
                xg = col;
            }
            dv_cuda_check(gemm_f32_any(0, 0, Og, N, K, 1.0f, Wt + gi * Og * K, K, xg, N, bias ? 1.0f : 0.0f,
                                       Y + (b * Cout + gi * Og) * N, N, s),
                          "conv2d (cuda): gemm");
        }
    if (col) dv_cuda_free(dev, col, cb);
}

/* the backward of images [b0, b0 + nb): dW accumulated (beta 0 for image 0), dx overwritten.
 * col: G K nb N floats unless nb == 1 and direct; gyt: Cout nb N floats when nb > 1 and dx */
static void conv_bwd_chunk(const dv_conv2d_geom *g, int64_t b0, int64_t nb, int64_t Cin, int64_t Cout, int64_t G,
                           const float *X, const float *Wt, const float *GY, float *DX, float *DW, float *col,
                           float *gyt, void *s) {
    const int64_t Og = Cout / G, K = g->C * g->kh * g->kw, N = g->OH * g->OW, HW = g->H * g->W;
    const bool in_place = nb == 1 && conv_direct(g);
    if (DW) {
        if (!in_place)
            dv_cuda_check(dv_cu_im2col_batch_f32(g, nb, G, X + b0 * Cin * HW, col, s), "conv2d backward (cuda): im2col");
        for (int64_t gi = 0; gi < G; gi++)
            for (int64_t b = b0; b < b0 + nb; b++) {
                const float *xg = in_place ? X + (b * Cin + gi * g->C) * HW : col + gi * K * nb * N + (b - b0) * N;
                dv_cuda_check(gemm_f32_any(0, 1, Og, K, N, 1.0f, GY + (b * Cout + gi * Og) * N, N, xg,
                                           in_place ? N : nb * N, b == 0 ? 0.0f : 1.0f, DW + gi * Og * K, K, s),
                              "conv2d backward (cuda): dW gemm");
            }
    }
    if (DX) {
        float *dxc = DX + b0 * Cin * HW;
        if (nb == 1) {
            for (int64_t gi = 0; gi < G; gi++)
                dv_cuda_check(gemm_f32_any(1, 0, K, N, Og, 1.0f, Wt + gi * Og * K, K, GY + (b0 * Cout + gi * Og) * N, N,
                                           0.0f, in_place ? dxc + gi * g->C * HW : col + gi * K * N, N, s),
                              "conv2d backward (cuda): dx gemm");
        } else {
            /* gy (nb, Cout, N) of the chunk -> (Cout, nb, N), so that a group's rows are one matrix */
            dv_cuda_check(dv_cu_copy_strided(3, (const int64_t[]){Cout, nb, N}, 4, gyt, GY + b0 * Cout * N,
                                             (const int64_t[]){N, Cout * N, 1}, s),
                          "conv2d backward (cuda): transpose gy");
            for (int64_t gi = 0; gi < G; gi++)
                dv_cuda_check(gemm_f32_any(1, 0, K, nb * N, Og, 1.0f, Wt + gi * Og * K, K, gyt + gi * Og * nb * N,
                                           nb * N, 0.0f, col + gi * K * nb * N, nb * N, s),
                              "conv2d backward (cuda): dx gemm");
        }
        if (!in_place) dv_cuda_check(dv_cu_col2im_batch_f32(g, nb, G, col, dxc, s), "conv2d backward (cuda): col2im");
    }
}

void dv_cuda_conv2d_bwd(const dv_conv2d_geom *g, int64_t B, int64_t Cin, int64_t Cout, int64_t G, const dv_tensor *x,
                        const dv_tensor *w, const dv_tensor *gy, dv_tensor *dx, dv_tensor *dw, dv_tensor *db) {
    require_f32("conv2d backward", gy);
    int dev = gy->device.index;
    void *s = st(gy);
    const int64_t Og = Cout / G, K = g->C * g->kh * g->kw, N = g->OH * g->OW, HW = g->H * g->W;
    const bool direct = conv_direct(g);
    const float *GY = dp(gy), *X = dp(x), *Wt = dp(w);
    float *DX = dp(dx), *DW = dp(dw);
    if (db) { /* sum over the plane, then over the batch: two deterministic reductions */
        if (B * Cout == 0) dv_cuda_fill_tensor_(db, 0.0);
        else {
            float *tmp = dv_cuda_alloc(dev, B * Cout * 4);
            dv_cuda_check(dv_cu_reduce_f32(DV_CU_REDUCE_SUM, B * Cout, N, 1, GY, tmp, s), "conv2d backward (cuda): dbias");
            dv_cuda_check(dv_cu_reduce_f32(DV_CU_REDUCE_SUM, 1, B, Cout, tmp, dp(db), s), "conv2d backward (cuda): dbias");
            dv_cuda_free(dev, tmp, B * Cout * 4);
        }
    }
    if (dw && (B == 0 || N == 0)) { /* no products: dW is 0 */
        dv_cuda_fill_tensor_(dw, 0.0);
        DW = NULL;
    }
    if (dx && N == 0) { /* no output reads x: dx is 0 */
        dv_cuda_fill_tensor_(dx, 0.0);
        DX = NULL;
    }
    if (B == 0 || (!DW && !DX)) return;
    int64_t nb = conv_chunk(B, (G * K + (DX ? Cout : 0)) * N * 4);
    if (nb == 0 && G * K * N * 4 <= conv_workspace_cap()) nb = 1;
    if (nb >= 1) {
        int64_t cb = nb == 1 && direct ? 0 : G * K * nb * N * 4, tb = nb > 1 && DX ? Cout * nb * N * 4 : 0;
        float *col = cb ? dv_cuda_alloc(dev, cb) : NULL, *gyt = tb ? dv_cuda_alloc(dev, tb) : NULL;
        for (int64_t b0 = 0; b0 < B; b0 += nb)
            conv_bwd_chunk(g, b0, B - b0 < nb ? B - b0 : nb, Cin, Cout, G, X, Wt, GY, DX, DW, col, gyt, s);
        if (col) dv_cuda_free(dev, col, cb);
        if (gyt) dv_cuda_free(dev, gyt, tb);
        return;
    }
    /* not one image's columns fit the cap: per (image, group), as the forward */
    int64_t cb = direct ? 0 : K * N * 4;
    float *col = cb ? dv_cuda_alloc(dev, cb) : NULL;
    if (DW)
        for (int64_t gi = 0; gi < G; gi++)
            for (int64_t b = 0; b < B; b++) {
                const float *xg = X + (b * Cin + gi * g->C) * HW;
                if (!direct) {
                    dv_cuda_check(dv_cu_im2col_f32(g, xg, col, s), "conv2d backward (cuda): im2col");
                    xg = col;
                }
                dv_cuda_check(gemm_f32_any(0, 1, Og, K, N, 1.0f, GY + (b * Cout + gi * Og) * N, N, xg, N,
                                           b == 0 ? 0.0f : 1.0f, DW + gi * Og * K, K, s),
                              "conv2d backward (cuda): dW gemm");
            }
    if (DX) {
        if (!direct) dv_cuda_fill_tensor_(dx, 0.0);
        for (int64_t b = 0; b < B; b++)
            for (int64_t gi = 0; gi < G; gi++) {
                float *dxg = DX + (b * Cin + gi * g->C) * HW;
                dv_cuda_check(gemm_f32_any(1, 0, K, N, Og, 1.0f, Wt + gi * Og * K, K, GY + (b * Cout + gi * Og) * N, N,
                                           0.0f, direct ? dxg : col, N, s),
                              "conv2d backward (cuda): dx gemm");
                if (!direct) dv_cuda_check(dv_cu_col2im_f32(g, col, dxg, s), "conv2d backward (cuda): col2im");
            }
    }
    if (col) dv_cuda_free(dev, col, cb);
}

/* ---- reductions beyond sum, where, optimisers (kernels/cuda/{reduce_ext,select,optim}.cu) -- */
void dv_cuda_binary_bwd(int op, const dv_tensor *a, const dv_tensor *b, const dv_tensor *gy, dv_tensor *ga,
                        dv_tensor *gb) {
    dv_cuda_check(dv_cu_binary_bwd_f32((dv_binary_op)op, dv_numel(gy), dp(a), dp(b), dp(gy), dp(ga), dp(gb), st(gy)),
                  "binary backward (cuda)");
}
void dv_cuda_extreme(bool is_max, int64_t outer, int64_t n, int64_t inner, const dv_tensor *x, dv_tensor *y,
                     dv_tensor *idx) {
    require_f32(is_max ? "max / argmax" : "min", x);
    dv_cuda_check(dv_cu_extreme_f32(is_max, outer, n, inner, dp(x), dp(y), dp(idx), st(x)),
                  is_max ? "max / argmax (cuda)" : "min (cuda)");
}
void dv_cuda_logsumexp(int64_t outer, int64_t n, int64_t inner, const dv_tensor *x, dv_tensor *y) {
    require_f32("logsumexp", x);
    dv_cuda_check(dv_cu_logsumexp_f32(outer, n, inner, dp(x), dp(y), st(x)), "logsumexp (cuda)");
}
void dv_cuda_cumsum(int64_t outer, int64_t n, int64_t inner, const dv_tensor *x, dv_tensor *y, int reverse) {
    require_f32("cumsum", x);
    dv_cuda_check(dv_cu_cumsum_f32(outer, n, inner, dp(x), dp(y), reverse, st(x)),
                  reverse ? "cumsum backward (cuda)" : "cumsum (cuda)");
}
void dv_cuda_scatter_dim(int64_t outer, int64_t n, int64_t inner, const dv_tensor *idx, const dv_tensor *g,
                         dv_tensor *gx) {
    require_f32("max / min backward", g);
    dv_cuda_check(dv_cu_scatter_dim_f32(outer, n, inner, dp(idx), dp(g), dp(gx), st(g)), "max / min backward (cuda)");
}
void dv_cuda_where(const dv_tensor *m, const dv_tensor *a, const dv_tensor *b, dv_tensor *y) {
    require_f32("where", a);
    dv_cuda_check(dv_cu_where_f32(dv_numel(y), dp(m), dp(a), dp(b), dp(y), st(a)), "where (cuda)");
}
void dv_cuda_sgd(dv_tensor *p, const dv_tensor *g, dv_tensor *buf, double lr, double momentum, double dampening,
                 double weight_decay, bool nesterov, bool first) {
    require_f32("sgd_step", p);
    DV_ASSERT(g->device.type == DV_CUDA && g->device.index == p->device.index &&
                  (!buf || (buf->device.type == DV_CUDA && buf->device.index == p->device.index)),
              "sgd_step (cuda): the gradient and momentum buffer must be on %s with the parameter (move the "
              "parameters before creating the optimiser)", dv_device_str(p->device));
    dv_cu_sgd_coefs c = {(float)lr, (float)weight_decay, (float)momentum, (float)(1.0 - dampening),
                         weight_decay != 0, buf != NULL, nesterov, first};
    dv_cuda_check(dv_cu_sgd_f32(dv_numel(p), dp(p), dp(g), dp(buf), &c, st(p)), "sgd_step (cuda)");
}
void dv_cuda_ema(dv_tensor *shadow, const dv_tensor *param, double a) {
    require_f32("ema_update", param);
    DV_ASSERT(shadow->device.type == DV_CUDA && shadow->device.index == param->device.index,
              "ema_update (cuda): the average of %s is on %s (move the parameters before creating the EMA)",
              dv_device_str(param->device), dv_device_str(shadow->device));
    dv_cuda_check(dv_cu_ema_f32(dv_numel(param), dp(shadow), dp(param), (float)a, st(param)), "ema_update (cuda)");
}
void dv_cuda_swap_(dv_tensor *a, dv_tensor *b) {
    DV_ASSERT(dv_is_contiguous(a) && dv_is_contiguous(b) && dv_numel(a) == dv_numel(b) && a->dtype == b->dtype &&
                  b->device.type == DV_CUDA && b->device.index == a->device.index,
              "swap (cuda): %s and %s must be contiguous, of one size, dtype and device", dv_shape_str(a, NULL, 0),
              dv_shape_str(b, NULL, 0));
    dv_cuda_check(dv_cu_swap_bytes(dv_numel(a) * (int64_t)dv_dtype_size(a->dtype), dp(a), dp(b), st(a)), "swap (cuda)");
}
/* per device: every tensor's kernels on its stream (one shared partial-sum buffer, safe in
 * stream order), each total into its own slot, then one download of the slots */
void dv_cuda_sum_squares_batch(dv_tensor *const *gs, int n, double *out) {
    int64_t wb = (int64_t)dv_cu_sum_squares_work_bytes();
    int *which = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    double *host = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    unsigned char *done = calloc((size_t)(n > 0 ? n : 1), 1);
    if (!which || !host || !done) dv_panic("sum of squares (cuda): out of memory");
    for (int k = 0; k < n; k++) {
        if (done[k]) continue;
        int dev = gs[k]->device.index, m = 0;
        for (int j = k; j < n; j++) m += !done[j] && gs[j]->device.index == dev;
        void *work = dv_cuda_alloc(dev, wb + 8 * (int64_t)m);
        double *slots = (double *)((char *)work + wb);
        int s = 0;
        for (int j = k; j < n; j++) {
            const dv_tensor *g = gs[j];
            if (done[j] || g->device.index != dev) continue;
            require_f32("sum of squares (clip_grad_norm)", g);
            DV_ASSERT(g->device.type == DV_CUDA && dv_is_contiguous(g), "sum of squares (cuda): %s on %s must be a "
                      "contiguous device tensor", dv_shape_str(g, NULL, 0), dv_device_str(g->device));
            dv_cuda_check(dv_cu_sum_squares_f32(dv_numel(g), dp(g), slots + s, work, st(g)), "sum of squares (cuda)");
            which[s++] = j;
            done[j] = 1;
        }
        dv_cuda_copy_d2h(dev, host, slots, 8 * (int64_t)m); /* synchronises the stream */
        for (int i = 0; i < m; i++) out[which[i]] = host[i];
        dv_cuda_free(dev, work, wb + 8 * (int64_t)m);
    }
    free(which), free(host), free(done);
}
double dv_cuda_sum_squares(const dv_tensor *g) {
    double s = 0;
    dv_tensor *one = (dv_tensor *)g;
    dv_cuda_sum_squares_batch(&one, 1, &s);
    return s;
}
void dv_cuda_mul_scalar_(dv_tensor *t, double c) {
    require_f32("clip_grad_norm", t);
    DV_ASSERT(dv_is_contiguous(t), "mul_scalar_ (cuda): %s is not contiguous", dv_shape_str(t, NULL, 0));
    dv_cuda_check(dv_cu_scale_f32(dv_numel(t), dp(t), (float)c, st(t)), "mul_scalar_ (cuda)");
}

#else /* ---- built without CUDA ---------------------------------------------------------- */

static const char k_no_cuda[] = "CUDA unavailable: this build has no CUDA (nvcc was not found, or CUDA=0)";

bool dv_cuda_available(void) { return false; }
const char *dv_cuda_unavailable_reason(void) { return k_no_cuda; }
int dv_cuda_device_count(void) { return 0; }
int dv_cuda_device_info(int dev, dv_cuda_info *out) { (void)dev; (void)out; return -1; }
void dv_cuda_set_device(int dev) { (void)dev; dv_panic("cuda_set_device: %s", k_no_cuda); }
const char *dv_cuda_error_str(int err) { (void)err; return k_no_cuda; }
void dv_cuda_check(int err, const char *what) { if (err) dv_panic("%s: %s", what, k_no_cuda); }
void *dv_cuda_alloc(int dev, int64_t nbytes) { (void)dev; (void)nbytes; dv_panic("cuda_alloc: %s", k_no_cuda); }
void *dv_cuda_alloc_try(int dev, int64_t nbytes, char *err, size_t errlen) {
    (void)dev; (void)nbytes;
    snprintf(err, errlen, "%s", k_no_cuda);
    return NULL;
}
void dv_cuda_free(int dev, void *p, int64_t nbytes) { (void)dev; (void)p; (void)nbytes; }
dv_cuda_alloc_stats dv_cuda_get_stats(int dev) { (void)dev; return (dv_cuda_alloc_stats){0}; }
void dv_cuda_trim(int dev) { (void)dev; }
void dv_cuda_reset_peak(int dev) { (void)dev; }
void *dv_cuda_stream(int dev) { (void)dev; dv_panic("cuda_stream: %s", k_no_cuda); }
void dv_cuda_synchronize(int dev) { (void)dev; }
void *dv_cuda_stream_of(const dv_tensor *t) { (void)t; dv_panic("cuda_stream_of: %s", k_no_cuda); }
void dv_cuda_copy_h2d(int dev, void *dst, const void *src, int64_t n) {
    (void)dev; (void)dst; (void)src; (void)n;
    dv_panic("cuda_copy_h2d: %s", k_no_cuda);
}
void dv_cuda_copy_d2h(int dev, void *dst, const void *src, int64_t n) {
    (void)dev; (void)dst; (void)src; (void)n;
    dv_panic("cuda_copy_d2h: %s", k_no_cuda);
}
void dv_cuda_copy_d2d(int dev, void *dst, const void *src, int64_t n) {
    (void)dev; (void)dst; (void)src; (void)n;
    dv_panic("cuda_copy_d2d: %s", k_no_cuda);
}
dv_tensor *dv_empty_on(dv_dtype dt, const int64_t *shape, int ndim, dv_device d) {
    if (d.type == DV_CPU) return dv_empty(dt, shape, ndim);
    dv_panic("empty_on(%s): %s", dv_device_str(d), k_no_cuda);
}
dv_tensor *dv_zeros_on(dv_dtype dt, const int64_t *shape, int ndim, dv_device d) {
    if (d.type == DV_CPU) return dv_zeros(dt, shape, ndim);
    dv_panic("zeros_on(%s): %s", dv_device_str(d), k_no_cuda);
}
void dv_cuda_copy_tensor_(dv_tensor *dst, const dv_tensor *src) {
    (void)src;
    dv_panic("copy_ to %s: %s", dv_device_str(dst->device), k_no_cuda);
}
void dv_cuda_fill_tensor_(dv_tensor *t, double value) {
    (void)value;
    dv_panic("fill_ on %s: %s", dv_device_str(t->device), k_no_cuda);
}
dv_tensor *dv_tensor_to(dv_tensor *t, dv_device d) {
    if (d.type == DV_CPU && t->device.type == DV_CPU) return dv_is_contiguous(t) ? dv_retain(t) : dv_clone(t);
    dv_panic("tensor_to(%s): %s", dv_device_str(d), k_no_cuda);
}

void dv_require_kernel(const char *op, const dv_tensor *t) {
    if (t->device.type != DV_CPU) dv_panic("%s: %s (operand on %s)", op, k_no_cuda, dv_device_str(t->device));
}
#define NO_CUDA_OP(name) dv_panic("%s: %s", name, k_no_cuda)
void dv_cuda_unary(int op, const dv_tensor *x, dv_tensor *y, double p1, double p2) {
    (void)op, (void)x, (void)y, (void)p1, (void)p2;
    NO_CUDA_OP("unary");
}
void dv_cuda_unary_bwd(int op, const dv_tensor *x, const dv_tensor *y, const dv_tensor *gy, dv_tensor *gx,
                       double p1, double p2) {
    (void)op, (void)x, (void)y, (void)gy, (void)gx, (void)p1, (void)p2;
    NO_CUDA_OP("unary backward");
}
void dv_cuda_binary(int op, int ndim, const int64_t *shape, const dv_tensor *a, const int64_t *sa,
                    const dv_tensor *b, const int64_t *sb, dv_tensor *y) {
    (void)op, (void)ndim, (void)shape, (void)a, (void)sa, (void)b, (void)sb, (void)y;
    NO_CUDA_OP("binary");
}
void dv_cuda_sum_dim(int64_t outer, int64_t n, int64_t inner, const dv_tensor *x, dv_tensor *y) {
    (void)outer, (void)n, (void)inner, (void)x, (void)y;
    NO_CUDA_OP("sum");
}
void dv_cuda_scale_(dv_tensor *t, double s) { (void)t, (void)s; NO_CUDA_OP("scale"); }
void dv_cuda_softmax_fwd(bool log, int64_t rows, int64_t n, const dv_tensor *x, dv_tensor *y) {
    (void)log, (void)rows, (void)n, (void)x, (void)y;
    NO_CUDA_OP("softmax");
}
void dv_cuda_softmax_bwd(bool log, int64_t rows, int64_t n, const dv_tensor *y, const dv_tensor *gy, dv_tensor *gx) {
    (void)log, (void)rows, (void)n, (void)y, (void)gy, (void)gx;
    NO_CUDA_OP("softmax backward");
}
void dv_cuda_layernorm_fwd(int64_t rows, int64_t n, const dv_tensor *x, const dv_tensor *w, const dv_tensor *b,
                           double eps, dv_tensor *y, dv_tensor *mean, dv_tensor *rstd) {
    (void)rows, (void)n, (void)x, (void)w, (void)b, (void)eps, (void)y, (void)mean, (void)rstd;
    NO_CUDA_OP("layer_norm");
}
void dv_cuda_layernorm_bwd(int64_t rows, int64_t n, const dv_tensor *x, const dv_tensor *w, const dv_tensor *mean,
                           const dv_tensor *rstd, const dv_tensor *gy, dv_tensor *gx, dv_tensor *gw, dv_tensor *gb) {
    (void)rows, (void)n, (void)x, (void)w, (void)mean, (void)rstd, (void)gy, (void)gx, (void)gw, (void)gb;
    NO_CUDA_OP("layer_norm backward");
}
void dv_cuda_rmsnorm_fwd(int64_t rows, int64_t n, const dv_tensor *x, const dv_tensor *w, double eps, dv_tensor *y,
                         dv_tensor *rstd) {
    (void)rows, (void)n, (void)x, (void)w, (void)eps, (void)y, (void)rstd;
    NO_CUDA_OP("rms_norm");
}
void dv_cuda_gemm_f32_half(int dev, dv_dtype bdt, int ta, int tb, int64_t M, int64_t N, int64_t K, double alpha,
                           const float *A, int64_t lda, const void *B, int64_t ldb, double beta, float *C,
                           int64_t ldc) {
    (void)dev, (void)bdt, (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda, (void)B;
    (void)ldb, (void)beta, (void)C, (void)ldc;
    NO_CUDA_OP("gemm");
}
void dv_cuda_rng_fill(int kind, uint64_t seed, uint64_t offset, dv_tensor *t, double a, double b) {
    (void)kind, (void)seed, (void)offset, (void)t, (void)a, (void)b;
    NO_CUDA_OP("rng");
}
void dv_cuda_rmsnorm_bwd(int64_t rows, int64_t n, const dv_tensor *x, const dv_tensor *w, const dv_tensor *rstd,
                         const dv_tensor *gy, dv_tensor *gx, dv_tensor *gw) {
    (void)rows, (void)n, (void)x, (void)w, (void)rstd, (void)gy, (void)gx, (void)gw;
    NO_CUDA_OP("rms_norm backward");
}


void dv_cuda_rotary(int64_t B, int64_t H, int64_t T, int64_t D, int64_t rot, int interleaved, int transpose,
                    const dv_tensor *x, const dv_tensor *cos, const dv_tensor *sin, int64_t tab_bstride, dv_tensor *y) {
    NO_CUDA_OP("rotary");
}
void dv_cuda_bias_act_fwd(int act, int64_t R, int64_t N, const dv_tensor *x, const dv_tensor *b, dv_tensor *y) {
    NO_CUDA_OP("bias_act");
}
void dv_cuda_bias_act_bwd(int act, int64_t R, int64_t N, const dv_tensor *x, const dv_tensor *b, const dv_tensor *gy,
                          dv_tensor *gx, dv_tensor *gb) {
    NO_CUDA_OP("bias_act backward");
}
void dv_cuda_modulate(int64_t B, int64_t T, int64_t C, const dv_tensor *x, const dv_tensor *shift,
                      const dv_tensor *scale, double one, dv_tensor *y) {
    NO_CUDA_OP("modulate");
}
void dv_cuda_modulate_bwd(int64_t B, int64_t T, int64_t C, const dv_tensor *x, const dv_tensor *scale, double one,
                          const dv_tensor *g, dv_tensor *gx, dv_tensor *gshift, dv_tensor *gscale) {
    NO_CUDA_OP("modulate backward");
}
void dv_cuda_ln_modulate(int64_t B, int64_t T, int64_t C, const dv_tensor *x, const dv_tensor *shift,
                         const dv_tensor *scale, double eps, dv_tensor *y, dv_tensor *mean, dv_tensor *rstd) {
    NO_CUDA_OP("layer_norm_modulate");
}
void dv_cuda_ln_modulate_bwd(int64_t B, int64_t T, int64_t C, const dv_tensor *x, const dv_tensor *mean,
                             const dv_tensor *rstd, const dv_tensor *scale, const dv_tensor *g, dv_tensor *gx,
                             dv_tensor *gshift, dv_tensor *gscale) {
    NO_CUDA_OP("layer_norm_modulate backward");
}
void dv_cuda_gated_residual(int64_t B, int64_t T, int64_t C, const dv_tensor *x, const dv_tensor *gate,
                            const dv_tensor *h, dv_tensor *y) {
    NO_CUDA_OP("gated_residual");
}
void dv_cuda_diffusion_step(const dv_tensor *model_output, const dv_tensor *sample, const dv_tensor *noise,
                            dv_tensor *out, dv_tensor *pred_x0, const dv_diffusion_coef *c) {
    NO_CUDA_OP("diffusion step");
}
void dv_cuda_attention_check(const dv_attn_geom *g) { NO_CUDA_OP("attention"); }
void dv_cuda_attention_fwd(const dv_attn_geom *g, const dv_tensor *q, const dv_tensor *k, const dv_tensor *v,
                           const dv_tensor *bias, dv_tensor *o, dv_tensor *lse) {
    NO_CUDA_OP("attention");
}
void dv_cuda_attention_bwd(const dv_attn_geom *g, const dv_tensor *q, const dv_tensor *k, const dv_tensor *v,
                           const dv_tensor *bias, const dv_tensor *o, const dv_tensor *lse, const dv_tensor *dout,
                           dv_tensor *dq, dv_tensor *dk, dv_tensor *dv, dv_tensor *dbias) {
    NO_CUDA_OP("attention backward");
}

void dv_cuda_take_rows(int64_t outer, int64_t k, int64_t n, int64_t inner, const dv_tensor *idx, const dv_tensor *src,
                       dv_tensor *dst) {
    NO_CUDA_OP("take rows");
}
void dv_cuda_index_add_rows(int64_t outer, int64_t k, int64_t n, int64_t inner, const dv_tensor *idx,
                            const dv_tensor *src, dv_tensor *dst) {
    NO_CUDA_OP("index_add");
}
void dv_cuda_gather(int dim, const dv_tensor *idx, const dv_tensor *x, dv_tensor *y) { NO_CUDA_OP("gather"); }
void dv_cuda_concat_piece(const dv_tensor *x, dv_tensor *y, int d, int64_t off) { NO_CUDA_OP("concat"); }
void dv_cuda_scatter_add(int dim, const dv_tensor *idx, const dv_tensor *src, dv_tensor *x) { NO_CUDA_OP("scatter_add"); }
dv_tensor *dv_cuda_bce_logits(const dv_tensor *x, const dv_tensor *t) { NO_CUDA_OP("bce_with_logits"); }
void dv_cuda_bce_logits_bwd(const dv_tensor *x, const dv_tensor *t, const dv_tensor *g, dv_tensor *gx, dv_tensor *gt) {
    NO_CUDA_OP("bce_with_logits backward");
}
dv_tensor *dv_cuda_cross_entropy(int64_t rows, int64_t n, const dv_tensor *x, const dv_tensor *target, int64_t ignore,
                                 int64_t count, dv_tensor *lse) {
    NO_CUDA_OP("cross_entropy");
}
void dv_cuda_cross_entropy_bwd(int64_t rows, int64_t n, const dv_tensor *x, const dv_tensor *target, int64_t ignore,
                               const dv_tensor *lse, const dv_tensor *g, int64_t count, dv_tensor *gx) {
    NO_CUDA_OP("cross_entropy backward");
}
void dv_cuda_max_pool2d(const dv_pool2d_geom *g, int64_t P, const dv_tensor *x, dv_tensor *y, dv_tensor *idx) {
    NO_CUDA_OP("max_pool2d");
}
void dv_cuda_max_pool2d_bwd(const dv_pool2d_geom *g, int64_t P, const dv_tensor *gy, const dv_tensor *idx, dv_tensor *gx) {
    NO_CUDA_OP("max_pool2d backward");
}
void dv_cuda_avg_pool2d(const dv_pool2d_geom *g, int64_t P, const dv_tensor *x, dv_tensor *y) { NO_CUDA_OP("avg_pool2d"); }
void dv_cuda_avg_pool2d_bwd(const dv_pool2d_geom *g, int64_t P, const dv_tensor *gy, dv_tensor *gx) {
    NO_CUDA_OP("avg_pool2d backward");
}
void dv_cuda_adaptive_avg_pool2d(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, const dv_tensor *x,
                                 dv_tensor *y) {
    NO_CUDA_OP("adaptive_avg_pool2d");
}
void dv_cuda_adaptive_avg_pool2d_bwd(int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, const dv_tensor *gy,
                                     dv_tensor *gx) {
    NO_CUDA_OP("adaptive_avg_pool2d backward");
}
void dv_cuda_resize(bool bilinear, int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, int align_corners,
                    const dv_tensor *x, dv_tensor *y) {
    NO_CUDA_OP("resize");
}
void dv_cuda_resize_bwd(bool bilinear, int64_t P, int64_t H, int64_t W, int64_t OH, int64_t OW, int align_corners,
                        const dv_tensor *gy, dv_tensor *gx) {
    NO_CUDA_OP("resize backward");
}

void dv_cuda_conv2d(const dv_conv2d_geom *g, int64_t B, int64_t Cin, int64_t Cout, int64_t G, const dv_tensor *x,
                    const dv_tensor *w, const dv_tensor *bias, dv_tensor *y) {
    NO_CUDA_OP("conv2d");
}
void dv_cuda_conv2d_bwd(const dv_conv2d_geom *g, int64_t B, int64_t Cin, int64_t Cout, int64_t G, const dv_tensor *x,
                        const dv_tensor *w, const dv_tensor *gy, dv_tensor *dx, dv_tensor *dw, dv_tensor *db) {
    NO_CUDA_OP("conv2d backward");
}
void dv_cuda_binary_bwd(int op, const dv_tensor *a, const dv_tensor *b, const dv_tensor *gy, dv_tensor *ga,
                        dv_tensor *gb) {
    NO_CUDA_OP("binary backward");
}
void dv_cuda_extreme(bool is_max, int64_t outer, int64_t n, int64_t inner, const dv_tensor *x, dv_tensor *y,
                     dv_tensor *idx) {
    NO_CUDA_OP("max / min");
}
void dv_cuda_logsumexp(int64_t outer, int64_t n, int64_t inner, const dv_tensor *x, dv_tensor *y) {
    NO_CUDA_OP("logsumexp");
}
void dv_cuda_cumsum(int64_t outer, int64_t n, int64_t inner, const dv_tensor *x, dv_tensor *y, int reverse) {
    NO_CUDA_OP("cumsum");
}
void dv_cuda_scatter_dim(int64_t outer, int64_t n, int64_t inner, const dv_tensor *idx, const dv_tensor *g,
                         dv_tensor *gx) {
    NO_CUDA_OP("max / min backward");
}
void dv_cuda_where(const dv_tensor *m, const dv_tensor *a, const dv_tensor *b, dv_tensor *y) { NO_CUDA_OP("where"); }
void dv_cuda_sgd(dv_tensor *p, const dv_tensor *g, dv_tensor *buf, double lr, double momentum, double dampening,
                 double weight_decay, bool nesterov, bool first) {
    NO_CUDA_OP("sgd_step");
}
void dv_cuda_ema(dv_tensor *shadow, const dv_tensor *param, double a) { NO_CUDA_OP("ema_update"); }
void dv_cuda_swap_(dv_tensor *a, dv_tensor *b) { NO_CUDA_OP("swap"); }
double dv_cuda_sum_squares(const dv_tensor *g) { NO_CUDA_OP("sum of squares"); }
void dv_cuda_sum_squares_batch(dv_tensor *const *gs, int n, double *out) { NO_CUDA_OP("sum of squares"); }
void dv_cuda_mul_scalar_(dv_tensor *t, double c) { NO_CUDA_OP("mul_scalar_"); }
void dv_cuda_set_tf32(bool on) { (void)on; }
bool dv_cuda_tf32(void) { return false; }
#endif

void dv_tensor_move_(dv_tensor *t, dv_device d) {
    DV_ASSERT(!t->grad_fn, "tensor_move_: %s is the result of an op, not a leaf; use dv_tensor_to",
              dv_shape_str(t, NULL, 0));
    if (t->device.type == d.type && t->device.index == d.index) return;
    dv_tensor *c = dv_tensor_to(t, d);
    /* take c's storage and layout */
    dv_storage *old = t->storage;
    t->storage = c->storage;
    c->storage->refcount++;
    t->offset = c->offset;
    memcpy(t->stride, c->stride, sizeof t->stride);
    t->device = d;
    dv_release(c);
    if (--old->refcount == 0) {
        if (old->free_fn) old->free_fn(old->data, old->nbytes, old->ctx);
        else dv_free(old->data, old->nbytes);
        free(old);
    }
    if (t->grad) dv_tensor_move_(t->grad, d);
}
