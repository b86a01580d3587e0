/* tensor/internal.h — helpers shared by the files of tensor/ (not part of the public API). */
#ifndef DV_TENSOR_INTERNAL_H
#define DV_TENSOR_INTERNAL_H

#include "tensor/tensor.h"
#include "kernels/cpu.h"

/* a header with contiguous strides and no storage */
dv_tensor *dv_tensor_header(dv_dtype dt, const int64_t *shape, int ndim);
/* a new header onto t's storage (storage retained), same view; caller edits it */
dv_tensor *dv_tensor_alias(const dv_tensor *t);

/* which kernel set an op on t uses */
typedef enum { DV_BACKEND_PORTABLE = 0, DV_BACKEND_AVX512, DV_BACKEND_CUDA } dv_backend;
static inline dv_backend dv_backend_of(const dv_tensor *t) {
    if (t->device.type == DV_CUDA) return DV_BACKEND_CUDA;
    return dv_cpu_isa() == DV_ISA_AVX512 ? DV_BACKEND_AVX512 : DV_BACKEND_PORTABLE;
}
/* abort for ops without a kernel on t's device yet */
void dv_require_cpu(const char *op, const dv_tensor *t);

/* call the CPU kernel dv_<name>_{f64_portable, f32_avx512, f32_portable} that fits t: f64 runs
 * the portable kernel, f32 the AVX-512 one when the CPU has it */
#ifndef DV_NO_AVX512
#define DV_DISPATCH_FLOAT(t, name, ...)                                                        \
    do {                                                                                       \
        if ((t)->dtype == DV_F64) dv_##name##_f64_portable(__VA_ARGS__);                       \
        else if (dv_backend_of(t) == DV_BACKEND_AVX512) dv_##name##_f32_avx512(__VA_ARGS__);   \
        else dv_##name##_f32_portable(__VA_ARGS__);                                            \
    } while (0)
#else
#define DV_DISPATCH_FLOAT(t, name, ...)                                                        \
    do {                                                                                       \
        if ((t)->dtype == DV_F64) dv_##name##_f64_portable(__VA_ARGS__);                       \
        else dv_##name##_f32_portable(__VA_ARGS__);                                            \
    } while (0)
#endif

/* data pointer of an optional tensor, or NULL */
#define DV_DATA_OR_NULL(t) ((t) ? dv_data(t) : NULL)

#endif
