/* tensor/tensor.h — the tensor type, views, creation, autograd and the public op API.
 *
 * A dv_tensor is a view (dtype, device, shape, strides in elements, offset in elements) onto a
 * reference-counted dv_storage. Element counts are int64_t everywhere. Memory comes from a
 * 64-byte-aligned caching allocator (tensor/alloc.c).
 *
 * Ownership: every function that returns a dv_tensor* returns a new reference the caller owns;
 * release it with dv_release(). Arguments are borrowed. Model code that makes many
 * intermediates can hand them to a dv_pool and release the pool once at the end of a step.
 *
 * Autograd (tensor/autograd.c) is define-by-run: when grad mode is on and an input needs a
 * gradient (a leaf with requires_grad, or the result of such an op), the op records a dv_node
 * holding its inputs and what its backward needs. dv_backward(loss) walks the graph once in
 * reverse topological order, accumulates into leaf ->grad, and frees the graph. Inputs that
 * need no gradient (frozen weights) get no gradient buffer and ops skip their gradient GEMMs.
 *
 * Devices: the device field picks the kernel set in every op (CPU: portable or AVX-512 by
 * CPUID; CUDA: its own issue). Ops check devices agree and abort otherwise.
 */
#ifndef DV_TENSOR_H
#define DV_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DV_MAX_DIMS 8

typedef enum {
    DV_F32 = 0, DV_F64, DV_F16, DV_BF16, DV_I32, DV_I64, DV_U8, DV_BOOL, DV_NDTYPES
} dv_dtype;

typedef enum { DV_CPU = 0, DV_CUDA = 1 } dv_device_type;
typedef struct { dv_device_type type; int index; } dv_device;
#define DV_DEVICE_CPU ((dv_device){DV_CPU, 0})

size_t dv_dtype_size(dv_dtype dt);
const char *dv_dtype_name(dv_dtype dt);
bool dv_dtype_is_float(dv_dtype dt); /* f32, f64, f16, bf16 */

typedef struct dv_storage {
    void *data;
    int64_t nbytes;
    dv_device device;
    int refcount;
    /* how to give the bytes back: NULL = the caching allocator; else called with ctx */
    void (*free_fn)(void *data, int64_t nbytes, void *ctx);
    void *ctx;
} dv_storage;

struct dv_node;

typedef struct dv_tensor {
    dv_storage *storage;
    int64_t offset;               /* in elements of dtype */
    int ndim;
    int64_t shape[DV_MAX_DIMS];
    int64_t stride[DV_MAX_DIMS];  /* in elements; 0 for broadcast dims */
    dv_dtype dtype;
    dv_device device;
    int refcount;
    bool requires_grad;           /* leaves: set by the user; op results: computed */
    struct dv_tensor *grad;       /* leaves only: accumulated gradient (same shape, contiguous) */
    struct dv_node *grad_fn;      /* the op that produced it, when recorded */
} dv_tensor;

/* ---- shapes ------------------------------------------------------------------------------ */
/* DV_SHAPE(2, 3) expands to the (shape, ndim) argument pair: (const int64_t[]){2,3}, 2 */
#define DV_SHAPE(...)                                                                          \
    (const int64_t[]){__VA_ARGS__}, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))

int64_t dv_numel(const dv_tensor *t);
int64_t dv_size(const dv_tensor *t, int dim);    /* negative dims count from the end */
int dv_dim(const dv_tensor *t, int dim);         /* normalise a possibly negative dim, abort if bad */
bool dv_is_contiguous(const dv_tensor *t);
bool dv_same_shape(const dv_tensor *a, const dv_tensor *b);
/* writes "(2, 3, 4)" into buf (a static ring of buffers when buf is NULL) */
const char *dv_shape_str(const dv_tensor *t, char *buf, size_t n);
void *dv_data(const dv_tensor *t);               /* pointer to the first element (offset applied) */

/* ---- errors ------------------------------------------------------------------------------ */
/* A broken invariant inside the program: print and abort. */
__attribute__((noreturn, format(printf, 1, 2))) void dv_panic(const char *fmt, ...);
#define DV_ASSERT(cond, ...) do { if (!(cond)) dv_panic(__VA_ARGS__); } while (0)
/* Bad input from outside (a file, a config, a flag), in the `int f(..., char *err, size_t errlen)`
 * convention: the message goes into err (when err and errlen are given) and -1 comes back, so a
 * failure reads `return dv_errf(err, errlen, "%s: ...", path, ...);`. */
__attribute__((format(printf, 3, 4))) int dv_errf(char *err, size_t errlen, const char *fmt, ...);
/* abort unless a and b have the same shape: "op: shape mismatch (2, 3) vs (3, 2)" */
void dv_check_same_shape(const char *op, const dv_tensor *a, const dv_tensor *b);
void dv_check_dtype(const char *op, const dv_tensor *t, dv_dtype dt);
void dv_check_float(const char *op, const dv_tensor *t);       /* f32 or f64 compute dtype */
void dv_check_same_device(const char *op, const dv_tensor *a, const dv_tensor *b);

/* ---- lifetime ---------------------------------------------------------------------------- */
dv_tensor *dv_retain(dv_tensor *t);
void dv_release(dv_tensor *t);                   /* NULL is fine */
/* a list of owned references, released together: x = dv_pool_add(&pool, dv_exp(y)); */
typedef struct { dv_tensor **items; int n, cap; } dv_pool;
dv_tensor *dv_pool_add(dv_pool *p, dv_tensor *t); /* takes t's reference, returns t */
void dv_pool_release(dv_pool *p);                 /* releases all and frees the list; reusable */

/* ---- creation ---------------------------------------------------------------------------- */
dv_tensor *dv_empty(dv_dtype dt, const int64_t *shape, int ndim);
dv_tensor *dv_zeros(dv_dtype dt, const int64_t *shape, int ndim);
dv_tensor *dv_ones(dv_dtype dt, const int64_t *shape, int ndim);
dv_tensor *dv_full(dv_dtype dt, const int64_t *shape, int ndim, double value);
dv_tensor *dv_scalar(dv_dtype dt, double value);                 /* 0-d tensor */
/* copies n = numel elements of dtype dt from data */
dv_tensor *dv_from_data(dv_dtype dt, const int64_t *shape, int ndim, const void *data);
/* converts n doubles into dtype dt */
dv_tensor *dv_from_f64(dv_dtype dt, const int64_t *shape, int ndim, const double *data);
dv_tensor *dv_arange(dv_dtype dt, double start, double stop, double step);
dv_tensor *dv_empty_like(const dv_tensor *t);
dv_tensor *dv_zeros_like(const dv_tensor *t);
/* wrap foreign memory (e.g. an mmap'd file); free_fn(data, nbytes, ctx) is called at the end */
dv_tensor *dv_wrap(dv_dtype dt, const int64_t *shape, int ndim, void *data,
                   void (*free_fn)(void *, int64_t, void *), void *ctx);

/* element access (any dtype, any strides, any device: a GPU element is copied through the host,
 * after the queued work) — for tests, tools and small scalars, not hot loops */
double dv_get(const dv_tensor *t, const int64_t *idx);
void dv_set(dv_tensor *t, const int64_t *idx, double v);
double dv_item(const dv_tensor *t);              /* the single element of a 1-element tensor */
double dv_flat_get(const dv_tensor *t, int64_t i); /* i-th element in row-major order */
void dv_flat_set(dv_tensor *t, int64_t i, double v);
void dv_to_f64(const dv_tensor *t, double *out); /* all elements, row-major */

/* ---- views (share storage; recorded by autograd) ----------------------------------------- */
dv_tensor *dv_reshape(dv_tensor *t, const int64_t *shape, int ndim); /* one dim may be -1; copies if needed */
dv_tensor *dv_view(dv_tensor *t, const int64_t *shape, int ndim);    /* aborts if not viewable */
dv_tensor *dv_flatten(dv_tensor *t, int start_dim, int end_dim);
dv_tensor *dv_permute(dv_tensor *t, const int *perm);
dv_tensor *dv_transpose(dv_tensor *t, int d0, int d1);
dv_tensor *dv_slice(dv_tensor *t, int dim, int64_t start, int64_t end, int64_t step);
dv_tensor *dv_select(dv_tensor *t, int dim, int64_t index);          /* drops dim */
dv_tensor *dv_unsqueeze(dv_tensor *t, int dim);
dv_tensor *dv_squeeze(dv_tensor *t, int dim);
dv_tensor *dv_expand(dv_tensor *t, const int64_t *shape, int ndim);  /* broadcast, stride 0 */
dv_tensor *dv_contiguous(dv_tensor *t);          /* new reference; a copy only when needed */
dv_tensor *dv_clone(dv_tensor *t);               /* always a contiguous copy */
dv_tensor *dv_detach(dv_tensor *t);              /* same storage, no graph, no grad */
dv_tensor *dv_cast(dv_tensor *t, dv_dtype dt);   /* differentiable between float dtypes */

/* in-place, no autograd: dst <- src (shapes equal, any strides, casts dtype) */
void dv_copy_(dv_tensor *dst, const dv_tensor *src);
void dv_fill_(dv_tensor *t, double value);

/* ---- broadcasting helpers ---------------------------------------------------------------- */
/* numpy rules; aborts naming op and both shapes when they do not broadcast */
int dv_broadcast_shape(const char *op, const dv_tensor *a, const dv_tensor *b, int64_t *out);
/* sum g down to the given shape (the backward of a broadcast) */
dv_tensor *dv_sum_to_shape(dv_tensor *g, const int64_t *shape, int ndim);

/* ---- autograd ---------------------------------------------------------------------------- */
void dv_set_requires_grad(dv_tensor *t, bool on); /* leaves only */
bool dv_needs_grad(const dv_tensor *t);           /* leaf with requires_grad, or recorded result */
void dv_backward(dv_tensor *loss);                /* loss must have one element */
void dv_backward_with(dv_tensor *out, dv_tensor *gout);  /* explicit output gradient */
void dv_zero_grad(dv_tensor *t);                  /* release ->grad */
bool dv_grad_enabled(void);
bool dv_set_grad_enabled(bool on);                /* returns the previous mode */
#define DV_NO_GRAD_BEGIN { bool dv__prev_grad_ = dv_set_grad_enabled(false);
#define DV_NO_GRAD_END dv_set_grad_enabled(dv__prev_grad_); }

/* ---- RNG (tensor/rng.c): Philox4x32-10, counter based ------------------------------------ */
/* Element i of a draw uses counter (offset + i/4 ... ), lane i%4, so the same (seed, offset)
 * gives the same numbers on any device and any thread count. Each draw advances offset. */
typedef struct { uint64_t seed; uint64_t offset; } dv_rng;
dv_rng dv_rng_new(uint64_t seed);
void dv_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
void dv_rng_fill_uniform(dv_rng *r, dv_tensor *t, double lo, double hi);    /* [lo, hi) */
void dv_rng_fill_normal(dv_rng *r, dv_tensor *t, double mean, double std);  /* Box-Muller */
void dv_rng_fill_randint(dv_rng *r, dv_tensor *t, int64_t lo, int64_t hi);  /* [lo, hi) */
dv_tensor *dv_rand(dv_rng *r, dv_dtype dt, const int64_t *shape, int ndim);
dv_tensor *dv_randn(dv_rng *r, dv_dtype dt, const int64_t *shape, int ndim);
dv_tensor *dv_randint(dv_rng *r, dv_dtype dt, int64_t lo, int64_t hi, const int64_t *shape, int ndim);
uint32_t dv_rng_u32(dv_rng *r); /* one draw, for shuffles and dropout seeds */

/* ---- allocator (tensor/alloc.c) ---------------------------------------------------------- */
void *dv_alloc(int64_t nbytes);                  /* 64-byte aligned; cached by size class */
void dv_free(void *p, int64_t nbytes);
typedef struct { int64_t live_bytes, cached_bytes, peak_bytes, n_alloc, n_cache_hits; } dv_alloc_stats;
dv_alloc_stats dv_alloc_get_stats(void);
void dv_alloc_trim(void);                         /* give cached blocks back to the OS */
void dv_alloc_reset_peak(void);                   /* peak_bytes = live_bytes, to measure one call */

#endif
