/* kernels/copy.h — strided copy with dtype conversion, and fill: the kernels behind
 * contiguous(), cast() and every view materialisation. Dtype codes are those of dv_dtype
 * (tensor/tensor.h checks they agree). Strides are in elements. */
#ifndef DV_KERNELS_COPY_H
#define DV_KERNELS_COPY_H

#include <stdint.h>

enum { DV_K_F32 = 0, DV_K_F64, DV_K_F16, DV_K_BF16, DV_K_I32, DV_K_I64, DV_K_U8, DV_K_BOOL };

void dv_copy_strided_portable(int ndim, const int64_t *shape, int dst_dt, void *dst,
                              const int64_t *dst_stride, int src_dt, const void *src,
                              const int64_t *src_stride);
void dv_fill_strided_portable(int ndim, const int64_t *shape, int dt, void *dst,
                              const int64_t *stride, double value);
/* convert n contiguous elements */
void dv_convert_portable(int64_t n, int dst_dt, void *dst, int src_dt, const void *src);

#endif
