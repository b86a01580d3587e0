/* tests/simt/include/cuda_bf16.h — __nv_bfloat16 for the SIMT emulator build: the storage
 * type and the conversions dualvla's kernels use, via kernels/half.h (round to nearest even;
 * NaN payloads may differ from the GPU's). No bf16 arithmetic operators, no bfloat162. */
#ifndef DV_SIMT_CUDA_BF16_H
#define DV_SIMT_CUDA_BF16_H

#include <stdint.h>

#include "kernels/half.h"

struct __nv_bfloat16 { unsigned short __x; };

static inline __nv_bfloat16 __float2bfloat16_rn(float f) { __nv_bfloat16 h; h.__x = dv_f32_to_bf16(f); return h; }
static inline __nv_bfloat16 __float2bfloat16(float f) { return __float2bfloat16_rn(f); }
static inline float __bfloat162float(__nv_bfloat16 h) { return dv_bf16_to_f32(h.__x); }
static inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.__x; }
static inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) { __nv_bfloat16 h; h.__x = u; return h; }

#endif
