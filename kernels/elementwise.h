/* kernels/elementwise.h — elementwise kernels: unary maps (and their derivative), binary ops
 * on broadcast strided operands. Outputs are contiguous. f64 versions exist for gradient
 * checks; the AVX-512 set covers f32 and falls back to portable code for what it lacks. */
#ifndef DV_KERNELS_ELEMENTWISE_H
#define DV_KERNELS_ELEMENTWISE_H

#include <stdint.h>

typedef enum {
    DV_UNARY_NEG = 0, DV_UNARY_EXP, DV_UNARY_LOG, DV_UNARY_SQRT, DV_UNARY_RSQRT, DV_UNARY_ABS,
    DV_UNARY_TANH, DV_UNARY_SIGMOID, DV_UNARY_RELU, DV_UNARY_GELU, DV_UNARY_GELU_TANH,
    DV_UNARY_QUICK_GELU, DV_UNARY_SILU, DV_UNARY_SQUARE,
    DV_UNARY_POW,      /* x ^ p1 */
    DV_UNARY_CLAMP,    /* min(max(x, p1), p2); gradient 0 outside [p1, p2] */
    DV_UNARY_AFFINE,   /* p1 * x + p2 (scale, add scalar) */
    DV_UNARY_COUNT
} dv_unary_op;

typedef enum {
    DV_BINARY_ADD = 0, DV_BINARY_SUB, DV_BINARY_MUL, DV_BINARY_DIV, DV_BINARY_POW,
    DV_BINARY_MAX, DV_BINARY_MIN,
    DV_BINARY_EQ, DV_BINARY_NE, DV_BINARY_LT, DV_BINARY_LE, DV_BINARY_GT, DV_BINARY_GE, /* -> bool */
    DV_BINARY_COUNT
} dv_binary_op;

const char *dv_unary_name(dv_unary_op op);
const char *dv_binary_name(dv_binary_op op);

/* y[i] = f(x[i]), n contiguous elements */
void dv_unary_f32_portable(dv_unary_op op, int64_t n, const float *x, float *y, double p1, double p2);
void dv_unary_f64_portable(dv_unary_op op, int64_t n, const double *x, double *y, double p1, double p2);
/* gx[i] = gy[i] * f'(x[i]) (y = f(x) is given too: some derivatives are cheaper from it) */
void dv_unary_backward_f32_portable(dv_unary_op op, int64_t n, const float *x, const float *y,
                                    const float *gy, float *gx, double p1, double p2);
void dv_unary_backward_f64_portable(dv_unary_op op, int64_t n, const double *x, const double *y,
                                    const double *gy, double *gx, double p1, double p2);

/* y (contiguous, shape) = a op b, a and b read through strides (0 = broadcast). Comparison
 * ops write 0/1 bytes into y (uint8_t). */
void dv_binary_f32_portable(dv_binary_op op, int ndim, const int64_t *shape, const float *a,
                            const int64_t *sa, const float *b, const int64_t *sb, void *y);
void dv_binary_f64_portable(dv_binary_op op, int ndim, const int64_t *shape, const double *a,
                            const int64_t *sa, const double *b, const int64_t *sb, void *y);

void dv_unary_f32_avx512(dv_unary_op op, int64_t n, const float *x, float *y, double p1, double p2);
void dv_unary_backward_f32_avx512(dv_unary_op op, int64_t n, const float *x, const float *y,
                                  const float *gy, float *gx, double p1, double p2);
void dv_binary_f32_avx512(dv_binary_op op, int ndim, const int64_t *shape, const float *a,
                          const int64_t *sa, const float *b, const int64_t *sb, void *y);

#endif
