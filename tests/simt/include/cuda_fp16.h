/* tests/simt/include/cuda_fp16.h — __half for the SIMT emulator build: the storage type and
 * the conversions dualvla's kernels use, via kernels/half.h (round to nearest even, the same
 * bits as the GPU's __float2half_rn for every non-NaN input; NaN payloads may differ).
 * No __half arithmetic operators, no half2: the kernels do their math in f32. */
#ifndef DV_SIMT_CUDA_FP16_H
#define DV_SIMT_CUDA_FP16_H

#include <stdint.h>

#include "kernels/half.h"

struct __half { unsigned short __x; };

static inline __half __float2half_rn(float f) { __half h; h.__x = dv_f32_to_f16(f); return h; }
static inline __half __float2half(float f) { return __float2half_rn(f); }
static inline float __half2float(__half h) { return dv_f16_to_f32(h.__x); }
static inline unsigned short __half_as_ushort(__half h) { return h.__x; }
static inline __half __ushort_as_half(unsigned short u) { __half h; h.__x = u; return h; }

#endif
