/* tensor/tensor.c — tensor lifetime, creation, element access, errors, and dtype facts.
 * Views live in tensor/view.c, autograd in tensor/autograd.c. */
#include "tensor/tensor.h"
#include "tensor/autograd.h"
#include "tensor/internal.h"
#include "tensor/cuda.h"
#include "kernels/copy.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(DV_K_F32 == (int)DV_F32 && DV_K_F64 == (int)DV_F64 && DV_K_F16 == (int)DV_F16 &&
               DV_K_BF16 == (int)DV_BF16 && DV_K_I32 == (int)DV_I32 && DV_K_I64 == (int)DV_I64 &&
               DV_K_U8 == (int)DV_U8 && DV_K_BOOL == (int)DV_BOOL,
               "kernel dtype codes must match dv_dtype");

static const size_t k_dtype_size[DV_NDTYPES] = {4, 8, 2, 2, 4, 8, 1, 1};
static const char *const k_dtype_name[DV_NDTYPES] = {"f32", "f64", "f16", "bf16", "i32", "i64", "u8", "bool"};

size_t dv_dtype_size(dv_dtype dt) {
    DV_ASSERT((unsigned)dt < DV_NDTYPES, "dv_dtype_size: bad dtype %d", (int)dt);
    return k_dtype_size[dt];
}
const char *dv_dtype_name(dv_dtype dt) { return (unsigned)dt < DV_NDTYPES ? k_dtype_name[dt] : "?"; }
bool dv_dtype_is_float(dv_dtype dt) { return dt == DV_F32 || dt == DV_F64 || dt == DV_F16 || dt == DV_BF16; }

/* ---- errors ---- */
void dv_panic(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "dualvla: fatal: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
    abort();
}

int dv_errf(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

const char *dv_shape_str(const dv_tensor *t, char *buf, size_t n) {
    static _Thread_local char ring[8][160];
    static _Thread_local int k;
    if (!buf) { buf = ring[k++ & 7]; n = sizeof ring[0]; }
    size_t off = (size_t)snprintf(buf, n, "(");
    for (int d = 0; d < t->ndim && off < n; d++)
        off += (size_t)snprintf(buf + off, n - off, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    if (off < n) snprintf(buf + off, n - off, ")");
    return buf;
}

void dv_check_same_shape(const char *op, const dv_tensor *a, const dv_tensor *b) {
    if (!dv_same_shape(a, b))
        dv_panic("%s: shape mismatch %s vs %s", op, dv_shape_str(a, NULL, 0), dv_shape_str(b, NULL, 0));
}
void dv_check_dtype(const char *op, const dv_tensor *t, dv_dtype dt) {
    if (t->dtype != dt)
        dv_panic("%s: expected dtype %s, got %s (shape %s)", op, dv_dtype_name(dt),
                 dv_dtype_name(t->dtype), dv_shape_str(t, NULL, 0));
}
void dv_check_float(const char *op, const dv_tensor *t) {
    if (t->dtype != DV_F32 && t->dtype != DV_F64)
        dv_panic("%s: expected a f32 or f64 tensor, got %s (shape %s); cast it first", op,
                 dv_dtype_name(t->dtype), dv_shape_str(t, NULL, 0));
}
void dv_check_same_device(const char *op, const dv_tensor *a, const dv_tensor *b) {
    if (a->device.type != b->device.type || a->device.index != b->device.index)
        dv_panic("%s: tensors on different devices (%s:%d vs %s:%d)", op,
                 a->device.type == DV_CUDA ? "cuda" : "cpu", a->device.index,
                 b->device.type == DV_CUDA ? "cuda" : "cpu", b->device.index);
}

/* ---- shape facts ---- */
int64_t dv_numel(const dv_tensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}
int dv_dim(const dv_tensor *t, int dim) {
    int d = dim < 0 ? dim + t->ndim : dim;
    if (d < 0 || d >= t->ndim) dv_panic("dim %d out of range for a %d-d tensor %s", dim, t->ndim, dv_shape_str(t, NULL, 0));
    return d;
}
int64_t dv_size(const dv_tensor *t, int dim) { return t->shape[dv_dim(t, dim)]; }
bool dv_is_contiguous(const dv_tensor *t) {
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != s) return false;
        s *= t->shape[d];
    }
    return true;
}
bool dv_same_shape(const dv_tensor *a, const dv_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return false;
    return true;
}
void *dv_data(const dv_tensor *t) {
    return (char *)t->storage->data + t->offset * (int64_t)dv_dtype_size(t->dtype);
}

/* ---- lifetime ---- */
static dv_storage *storage_new(int64_t nbytes) {
    dv_storage *s = calloc(1, sizeof *s);
    if (!s) dv_panic("out of memory");
    s->nbytes = nbytes;
    s->data = dv_alloc(nbytes);
    s->device = DV_DEVICE_CPU;
    s->refcount = 1;
    return s;
}
static void storage_release(dv_storage *s) {
    if (--s->refcount > 0) return;
    if (s->free_fn) s->free_fn(s->data, s->nbytes, s->ctx);
    else dv_free(s->data, s->nbytes);
    free(s);
}

dv_tensor *dv_retain(dv_tensor *t) {
    if (t) t->refcount++;
    return t;
}

void dv_release(dv_tensor *t) {
    if (!t) return;
    DV_ASSERT(t->refcount > 0, "dv_release: tensor %s already freed", dv_shape_str(t, NULL, 0));
    if (--t->refcount > 0) return;
    if (t->grad_fn) dv_node_release(t->grad_fn);
    dv_release(t->grad);
    storage_release(t->storage);
    t->refcount = -1;
    free(t);
}

dv_tensor *dv_pool_add(dv_pool *p, dv_tensor *t) {
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 64;
        p->items = realloc(p->items, (size_t)p->cap * sizeof *p->items);
        if (!p->items) dv_panic("out of memory");
    }
    p->items[p->n++] = t;
    return t;
}
void dv_pool_release(dv_pool *p) {
    for (int i = p->n - 1; i >= 0; i--) dv_release(p->items[i]);
    free(p->items);
    p->items = NULL;
    p->n = p->cap = 0;
}

/* a tensor struct (no storage yet) with contiguous strides */
dv_tensor *dv_tensor_header(dv_dtype dt, const int64_t *shape, int ndim) {
    if (ndim < 0 || ndim > DV_MAX_DIMS) dv_panic("tensor: %d dims (at most %d)", ndim, DV_MAX_DIMS);
    dv_tensor *t = calloc(1, sizeof *t);
    if (!t) dv_panic("out of memory");
    t->dtype = dt;
    t->device = DV_DEVICE_CPU;
    t->ndim = ndim;
    t->refcount = 1;
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        if (shape[d] < 0) dv_panic("tensor: negative size %lld in dim %d", (long long)shape[d], d);
        t->shape[d] = shape[d];
        t->stride[d] = s;
        s *= shape[d];
    }
    return t;
}

/* a new view header onto t's storage (retained); caller fills shape/stride/offset */
dv_tensor *dv_tensor_alias(const dv_tensor *t) {
    dv_tensor *v = calloc(1, sizeof *v);
    if (!v) dv_panic("out of memory");
    v->storage = t->storage;
    t->storage->refcount++;
    v->offset = t->offset;
    v->ndim = t->ndim;
    memcpy(v->shape, t->shape, sizeof v->shape);
    memcpy(v->stride, t->stride, sizeof v->stride);
    v->dtype = t->dtype;
    v->device = t->device;
    v->refcount = 1;
    return v;
}

/* ---- creation ---- */
dv_tensor *dv_empty(dv_dtype dt, const int64_t *shape, int ndim) {
    DV_ASSERT((unsigned)dt < DV_NDTYPES, "dv_empty: bad dtype %d", (int)dt);
    dv_tensor *t = dv_tensor_header(dt, shape, ndim);
    int64_t n = dv_numel(t);
    if (n > (INT64_MAX / 16)) dv_panic("dv_empty: %lld elements is too many", (long long)n);
    t->storage = storage_new(n * (int64_t)k_dtype_size[dt]);
    return t;
}
dv_tensor *dv_full(dv_dtype dt, const int64_t *shape, int ndim, double value) {
    dv_tensor *t = dv_empty(dt, shape, ndim);
    dv_fill_(t, value);
    return t;
}
dv_tensor *dv_zeros(dv_dtype dt, const int64_t *shape, int ndim) {
    dv_tensor *t = dv_empty(dt, shape, ndim);
    memset(t->storage->data, 0, (size_t)t->storage->nbytes);
    return t;
}
dv_tensor *dv_ones(dv_dtype dt, const int64_t *shape, int ndim) { return dv_full(dt, shape, ndim, 1.0); }
dv_tensor *dv_scalar(dv_dtype dt, double value) { return dv_full(dt, NULL, 0, value); }
/* on t's device (tensor/cuda.h) */
dv_tensor *dv_empty_like(const dv_tensor *t) { return dv_empty_on(t->dtype, t->shape, t->ndim, t->device); }
dv_tensor *dv_zeros_like(const dv_tensor *t) { return dv_zeros_on(t->dtype, t->shape, t->ndim, t->device); }

dv_tensor *dv_from_data(dv_dtype dt, const int64_t *shape, int ndim, const void *data) {
    dv_tensor *t = dv_empty(dt, shape, ndim);
    memcpy(t->storage->data, data, (size_t)(dv_numel(t) * (int64_t)k_dtype_size[dt]));
    return t;
}
dv_tensor *dv_from_f64(dv_dtype dt, const int64_t *shape, int ndim, const double *data) {
    dv_tensor *t = dv_empty(dt, shape, ndim);
    dv_convert_portable(dv_numel(t), dt, t->storage->data, DV_K_F64, data);
    return t;
}
dv_tensor *dv_arange(dv_dtype dt, double start, double stop, double step) {
    DV_ASSERT(step != 0, "dv_arange: step is 0");
    int64_t n = (int64_t)ceil((stop - start) / step);
    if (n < 0) n = 0;
    dv_tensor *t = dv_empty(dt, &n, 1);
    for (int64_t i = 0; i < n; i++) dv_flat_set(t, i, start + (double)i * step);
    return t;
}
dv_tensor *dv_wrap(dv_dtype dt, const int64_t *shape, int ndim, void *data,
                   void (*free_fn)(void *, int64_t, void *), void *ctx) {
    dv_tensor *t = dv_tensor_header(dt, shape, ndim);
    dv_storage *s = calloc(1, sizeof *s);
    if (!s) dv_panic("out of memory");
    s->data = data;
    s->nbytes = dv_numel(t) * (int64_t)k_dtype_size[dt];
    s->device = DV_DEVICE_CPU;
    s->refcount = 1;
    s->free_fn = free_fn;
    s->ctx = ctx;
    t->storage = s;
    return t;
}

/* ---- element access ---- */
static int64_t elem_offset(const dv_tensor *t, const int64_t *idx) {
    int64_t o = t->offset;
    for (int d = 0; d < t->ndim; d++) {
        if (idx[d] < 0 || idx[d] >= t->shape[d])
            dv_panic("index %lld out of range in dim %d of %s", (long long)idx[d], d, dv_shape_str(t, NULL, 0));
        o += idx[d] * t->stride[d];
    }
    return o;
}
static int64_t flat_offset(const dv_tensor *t, int64_t i) {
    int64_t o = t->offset;
    for (int d = t->ndim - 1; d >= 0; d--) {
        o += (i % t->shape[d]) * t->stride[d];
        i /= t->shape[d];
    }
    return o;
}
/* On a GPU tensor one element travels through a host buffer: the read waits for the work
 * queued on the device's stream (dv_item(loss) after a step is the usual case), the write is
 * queued behind it. One element at a time: loops over elements belong on the host. */
static double get_at(const dv_tensor *t, int64_t o) {
    double v;
    int64_t one = 1;
    size_t es = k_dtype_size[t->dtype];
    const char *src = (const char *)t->storage->data + o * (int64_t)es;
    uint64_t host[2];
    if (t->device.type != DV_CPU) {
        dv_cuda_copy_d2h(t->device.index, host, src, (int64_t)es);
        src = (const char *)host;
    }
    dv_copy_strided_portable(1, &one, DV_K_F64, &v, &one, t->dtype, src, &one);
    return v;
}
static void set_at(dv_tensor *t, int64_t o, double v) {
    int64_t one = 1;
    size_t es = k_dtype_size[t->dtype];
    char *dst = (char *)t->storage->data + o * (int64_t)es;
    uint64_t host[2];
    dv_copy_strided_portable(1, &one, t->dtype, t->device.type != DV_CPU ? (char *)host : dst, &one, DV_K_F64, &v, &one);
    if (t->device.type != DV_CPU) dv_cuda_copy_h2d(t->device.index, dst, host, (int64_t)es);
}
double dv_get(const dv_tensor *t, const int64_t *idx) { return get_at(t, elem_offset(t, idx)); }
void dv_set(dv_tensor *t, const int64_t *idx, double v) { set_at(t, elem_offset(t, idx), v); }
double dv_flat_get(const dv_tensor *t, int64_t i) { return get_at(t, flat_offset(t, i)); }
void dv_flat_set(dv_tensor *t, int64_t i, double v) { set_at(t, flat_offset(t, i), v); }
double dv_item(const dv_tensor *t) {
    if (dv_numel(t) != 1) dv_panic("dv_item: tensor %s has %lld elements, not 1", dv_shape_str(t, NULL, 0), (long long)dv_numel(t));
    return dv_flat_get(t, 0);
}
void dv_to_f64(const dv_tensor *t, double *out) {
    dv_require_cpu("to_f64", t);
    int64_t st[DV_MAX_DIMS], s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) { st[d] = s; s *= t->shape[d]; }
    dv_copy_strided_portable(t->ndim, t->shape, DV_K_F64, out, st, t->dtype, dv_data(t), t->stride);
}

/* ---- in-place copy / fill (no autograd) ---- */
void dv_copy_(dv_tensor *dst, const dv_tensor *src) {
    dv_check_same_shape("copy_", dst, src);
    dv_check_same_device("copy_", dst, src);
    if (dst->device.type == DV_CUDA) { dv_cuda_copy_tensor_(dst, src); return; }
    dv_copy_strided_portable(dst->ndim, dst->shape, dst->dtype, dv_data(dst), dst->stride,
                             src->dtype, dv_data(src), src->stride);
}
void dv_fill_(dv_tensor *t, double value) {
    if (t->device.type == DV_CUDA) { dv_cuda_fill_tensor_(t, value); return; }
    dv_fill_strided_portable(t->ndim, t->shape, t->dtype, dv_data(t), t->stride, value);
}

void dv_require_cpu(const char *op, const dv_tensor *t) {
    if (t->device.type != DV_CPU)
        dv_panic("%s: no CUDA kernel for this op yet (operand %s on %s); move it to the CPU with dv_tensor_to",
                 op, dv_shape_str(t, NULL, 0), dv_device_str(t->device));
}
