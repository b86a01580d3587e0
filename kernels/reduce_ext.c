/* kernels/reduce_ext.c — portable max / min / logsumexp / cumsum along one axis, f32 and f64
 * (one body, two types: kernels/reduce_ext_impl.h). */
#include "kernels/reduce_ext.h"

#include <math.h>

/* outer * n * inner above this: output positions are split across OpenMP threads */
#define DV_REDUCE_EXT_PAR_MIN (1 << 16)

#define T float
#define M(fn) fn##f
#define SUFFIX f32
#include "kernels/reduce_ext_impl.h"
#undef T
#undef M
#undef SUFFIX

#define T double
#define M(fn) fn
#define SUFFIX f64
#include "kernels/reduce_ext_impl.h"
#undef T
#undef M
#undef SUFFIX
