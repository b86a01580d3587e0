/* kernels/elementwise.c — portable elementwise kernels for f32 and f64 (one body, two types:
 * kernels/elementwise_impl.h). */
#include "kernels/elementwise.h"

#include <math.h>
#include <stdbool.h>

static const char *const k_unary_names[DV_UNARY_COUNT] = {
    "neg", "exp", "log", "sqrt", "rsqrt", "abs", "tanh", "sigmoid", "relu", "gelu", "gelu_tanh",
    "quick_gelu", "silu", "square", "pow", "clamp", "affine"};
static const char *const k_binary_names[DV_BINARY_COUNT] = {
    "add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge"};

const char *dv_unary_name(dv_unary_op op) { return (unsigned)op < DV_UNARY_COUNT ? k_unary_names[op] : "?"; }
const char *dv_binary_name(dv_binary_op op) { return (unsigned)op < DV_BINARY_COUNT ? k_binary_names[op] : "?"; }

#define T float
#define M(fn) fn##f
#define SUFFIX f32
#include "kernels/elementwise_impl.h"
#undef T
#undef M
#undef SUFFIX

#define T double
#define M(fn) fn
#define SUFFIX f64
#include "kernels/elementwise_impl.h"
#undef T
#undef M
#undef SUFFIX
