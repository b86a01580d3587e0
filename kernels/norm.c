/* kernels/norm.c — portable softmax, log-softmax, LayerNorm, RMSNorm and loss kernels for f32
 * and f64 (one body, two types: kernels/norm_impl.h). */
#include "kernels/norm.h"

#include <math.h>
#include <stddef.h>

/* rows * n above this: rows are split across OpenMP threads */
#define DV_NORM_PAR_MIN (1 << 15)

#define T float
#define M(fn) fn##f
#define SUFFIX f32
#include "kernels/norm_impl.h"
#undef T
#undef M
#undef SUFFIX

#define T double
#define M(fn) fn
#define SUFFIX f64
#include "kernels/norm_impl.h"
#undef T
#undef M
#undef SUFFIX
