/* tests/cuda/test_cuda_conv.c — dv_conv2d on cuda:0 (im2col / col2im of kernels/cuda/conv.cu
 * and the f32 GEMM of sgemm.cu, orchestrated in tensor/cuda.c) against the CPU: forward and
 * the gradients of x, w and bias through autograd, over strides, padding, dilation, groups
 * (depthwise included), the 1x1 direct path and odd sizes; and the image chunking (one chunk,
 * several with a last chunk of one image, one image alone, and the per-(image, group) path
 * when the workspace cap is below one image) against the CPU and bit for bit against each
 * other. Tolerance 1e-4 relative against the CPU (f32 GEMMs with K up to 3*3*12 summed in
 * another order than the CPU's); 0 between the GPU's own paths (each output is the same
 * K-long GEMM dot product, dW accumulates image after image in every path). */
#ifdef DV_HAVE_CUDA
#include "tests/cuda/cuda_util.h"

#include "tensor/ops.h"

#include <stdio.h>
#include <stdlib.h>

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

/* y, dx, dw, db of g_conv2d on cuda:0 for the CPU tensors x, w, b under the upstream gradient
 * gout, downloaded into out[0..3]; the workspace cap DV_CUDA_CONV_WORKSPACE_KB = kb (0: unset) */
static void conv_on_device(dv_tensor *x, dv_tensor *w, dv_tensor *b, dv_tensor *gout, long kb, dv_tensor *out[4]) {
    char v[32];
    snprintf(v, sizeof v, "%ld", kb);
    if (kb > 0) setenv("DV_CUDA_CONV_WORKSPACE_KB", v, 1);
    else unsetenv("DV_CUDA_CONV_WORKSPACE_KB");
    dv_tensor *in[3];
    dv_tensor *cpu[3] = {x, w, b};
    for (int i = 0; i < 3; i++) {
        in[i] = dv_tensor_to(cpu[i], dv_device_cuda(0));
        dv_set_requires_grad(in[i], true);
    }
    dv_tensor *y = g_conv2d(in), *gd = dv_tensor_to(gout, dv_device_cuda(0));
    dv_backward_with(y, gd);
    out[0] = dv_tensor_to(y, DV_DEVICE_CPU);
    for (int i = 0; i < 3; i++) out[i + 1] = dv_tensor_to(in[i]->grad, DV_DEVICE_CPU);
    for (int i = 0; i < 3; i++) dv_release(in[i]);
    dv_release(y), dv_release(gd);
    unsetenv("DV_CUDA_CONV_WORKSPACE_KB");
}

TEST(cuda_conv2d_image_chunks_match_per_image_path) {
    const int cases[][11] = {
        {12, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1},  /* plain 3x3 same */
        {12, 6, 3, 3, 2, 1, 2, 0, 2, 1, 3},  /* strides, dilation, 3 groups */
        {12, 12, 3, 3, 1, 1, 1, 1, 1, 1, 12}, /* depthwise */
        {12, 7, 1, 1, 1, 1, 0, 0, 1, 1, 1},  /* 1x1: in place for a chunk of one image */
    };
    static const char *names[] = {"y", "dx", "dw", "db"};
    dv_rng r = dv_rng_new(32);
    for (int ci = 0; ci < 4; ci++) {
        const int *c = cases[ci];
        for (int i = 0; i < 7; i++) g_conv[i] = c[4 + i];
        for (int B = 1; B <= 5; B += 4) {
            dv_tensor *x = dv_randn(&r, DV_F32, DV_SHAPE(B, c[0], 11, 9));
            dv_tensor *w = dv_randn(&r, DV_F32, DV_SHAPE(c[1], c[0] / g_conv[6], c[2], c[3]));
            dv_tensor *b = dv_randn(&r, DV_F32, DV_SHAPE(c[1]));
            dv_tensor *yc = g_conv2d((dv_tensor *[]){x, w, b});
            dv_tensor *gout = dv_randn(&r, DV_F32, yc->shape, yc->ndim);
            /* the workspace of one image as tensor/cuda.c sizes it: G K + Cout columns of N */
            int64_t N = yc->shape[2] * yc->shape[3], K = (int64_t)(c[0] / g_conv[6]) * c[2] * c[3];
            int64_t per = (g_conv[6] * K + c[1]) * N * 4;
            const long caps[3] = {0, (long)(per * 5 / 2 / 1024 + 1), 1}; /* all B; 2 a chunk; below one */
            dv_tensor *ref[4], *got[4];
            conv_on_device(x, w, b, gout, caps[2], ref);
            for (int k = 0; k < 2; k++) {
                conv_on_device(x, w, b, gout, caps[k], got);
                for (int i = 0; i < 4; i++) {
                    char what[96];
                    snprintf(what, sizeof what, "conv2d case %d, B %d, cap %ld KiB: %s vs per (image, group)", ci, B,
                             caps[k], names[i]);
                    tc_compare_f32(what, dv_data(got[i]), dv_data(ref[i]), dv_numel(ref[i]), 0);
                    dv_release(got[i]);
                }
            }
            char what[64];
            snprintf(what, sizeof what, "conv2d case %d, B %d, two images a chunk", ci, B);
            char v[32];
            snprintf(v, sizeof v, "%ld", caps[1]);
            setenv("DV_CUDA_CONV_WORKSPACE_KB", v, 1);
            tc_graph_parity(what, g_conv2d, (dv_tensor *[]){x, w, b}, 3, 1e-4);
            setenv("DV_CUDA_CONV_WORKSPACE_KB", "1", 1);
            snprintf(what, sizeof what, "conv2d case %d, B %d, per (image, group)", ci, B);
            tc_graph_parity(what, g_conv2d, (dv_tensor *[]){x, w, b}, 3, 1e-4);
            unsetenv("DV_CUDA_CONV_WORKSPACE_KB");
            for (int i = 0; i < 4; i++) dv_release(ref[i]);
            dv_release(x), dv_release(w), dv_release(b), dv_release(yc), dv_release(gout);
        }
    }
}
#endif
