/* tests/cuda/test_cuda_conv.c — dv_conv2d on cuda:0 (im2col / col2im of kernels/cuda/conv.cu
 * and the f32 GEMM of sgemm.cu, orchestrated in tensor/cuda.c) against the CPU: forward and
 * the gradients of x, w and bias through autograd, over strides, padding, dilation, groups
 * (depthwise included), the 1x1 direct path and odd sizes. Tolerance 1e-4 relative (f32
 * GEMMs with K up to 3*3*12 summed in another order than the CPU's). */
#ifdef DV_HAVE_CUDA
#include "tests/cuda/cuda_util.h"

#include "tensor/ops.h"

#include <stdio.h>

static int g_conv[7]; /* stride h w, padding h w, dilation h w, groups */
static dv_tensor *g_conv2d(dv_tensor **in) {
    return dv_conv2d(in[0], in[1], in[2], g_conv, g_conv + 2, g_conv + 4, g_conv[6]);
}
static dv_tensor *g_conv2d_nobias(dv_tensor **in) {
    return dv_conv2d(in[0], in[1], NULL, g_conv, g_conv + 2, g_conv + 4, g_conv[6]);
}

TEST(cuda_conv2d_matches_cpu) {
    /* Cin, Cout, kh, kw, then g_conv */
    const int cases[][11] = {
        {12, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1},  /* plain 3x3 same */
        {12, 8, 3, 2, 2, 3, 1, 0, 1, 1, 1},  /* strides, asymmetric kernel and padding */
        {12, 6, 3, 3, 1, 1, 2, 2, 2, 2, 3},  /* dilation, 3 groups */
        {12, 12, 3, 3, 1, 1, 1, 1, 1, 1, 12}, /* depthwise */
        {12, 7, 1, 1, 1, 1, 0, 0, 1, 1, 1},  /* 1x1: the direct path (no im2col) */
    };
    dv_rng r = dv_rng_new(31);
    for (int ci = 0; ci < 5; ci++) {
        const int *c = cases[ci];
        for (int i = 0; i < 7; i++) g_conv[i] = c[4 + i];
        dv_tensor *x = dv_randn(&r, DV_F32, DV_SHAPE(2, c[0], 13, 10));
        dv_tensor *w = dv_randn(&r, DV_F32, DV_SHAPE(c[1], c[0] / g_conv[6], c[2], c[3]));
        dv_tensor *b = dv_randn(&r, DV_F32, DV_SHAPE(c[1]));
        char what[64];
        snprintf(what, sizeof what, "conv2d case %d", ci);
        tc_graph_parity(what, g_conv2d, (dv_tensor *[]){x, w, b}, 3, 1e-4);
        snprintf(what, sizeof what, "conv2d case %d without bias", ci);
        tc_graph_parity(what, g_conv2d_nobias, (dv_tensor *[]){x, w}, 2, 1e-4);
        dv_release(x), dv_release(w), dv_release(b);
    }
}
#endif
