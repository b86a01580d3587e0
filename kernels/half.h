/* kernels/half.h — IEEE binary16 (f16) and bfloat16 (bf16) <-> f32 conversions, portable C.
 *
 * Stored weights of the 7B language model are f16 or bf16; kernels widen them to f32 on the
 * fly. These scalar routines are the reference the F16C / AVX-512 paths are tested against.
 * f32 -> f16 and f32 -> bf16 round to nearest, ties to even; NaN stays NaN.
 */
#ifndef DV_KERNELS_HALF_H
#define DV_KERNELS_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t dv_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float dv_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline float dv_bf16_to_f32(uint16_t h) { return dv_bits_f32((uint32_t)h << 16); }

static inline uint16_t dv_f32_to_bf16(float f) {
    uint32_t u = dv_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);                                          /* RNE */
    return (uint16_t)(u >> 16);
}

static inline float dv_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0) {
        if (man == 0) return dv_bits_f32(sign);
        /* subnormal: value = man * 2^-24 */
        float v = (float)man * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    if (exp == 31) return dv_bits_f32(sign | 0x7f800000u | (man << 13));
    return dv_bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

static inline uint16_t dv_f32_to_f16(float f) {
    uint32_t u = dv_f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) return sign | 0x7c00u | (a > 0x7f800000u ? 0x200u : 0); /* inf / nan */
    if (a >= 0x477ff000u) return sign | 0x7c00u;       /* rounds to >= 65520: overflow to inf */
    if (a < 0x38800000u) {                             /* below 2^-14: subnormal or zero */
        if (a < 0x33000000u) return sign;              /* below 2^-25: rounds to zero */
        uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e;                      /* 14..24 + 1 */
        uint32_t half = m >> shift, rem = m & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1u))) half++;
        return sign | (uint16_t)half;
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1u) - (112u << 23); /* rebias and RNE */
    return sign | (uint16_t)(r >> 13);
}

#endif
