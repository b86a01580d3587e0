/* kernels/conv.h — im2col / col2im: the data movement that turns a 2-D convolution into a GEMM.
 *
 * One image plane stack x (C, H, W), contiguous. For a kernel (kh, kw) with stride, padding and
 * dilation, the column matrix is
 *
 *   col (C*kh*kw, OH*OW):   col[(c*kh + i)*kw + j][oh*OW + ow] = x[c][ih][iw]
 *                           ih = oh*sh - ph + i*dh,  iw = ow*sw - pw + j*dw   (0 outside x)
 *
 * so that conv(x) for one group = W (Cout, C*kh*kw) · col. col2im is the adjoint: every column
 * entry is added back to the x element it was read from (entries over padding are dropped),
 * which is the input gradient given d col. Both are written once for float and double
 * (kernels/conv_impl.h) and thread over channels with OpenMP when the work is large.
 *
 * Not here: the GEMM itself (kernels/gemm.h), batching and groups (tensor/ops_conv.c).
 */
#ifndef DV_KERNELS_CONV_H
#define DV_KERNELS_CONV_H

#include <stdint.h>

typedef struct {
    int64_t C, H, W;      /* input channels (of one group), height, width */
    int64_t OH, OW;       /* output height, width */
    int kh, kw;           /* kernel */
    int sh, sw;           /* stride */
    int ph, pw;           /* zero padding on each side */
    int dh, dw;           /* dilation */
} dv_conv2d_geom;

/* output size of one spatial dim, or -1 when the (dilated) kernel does not fit */
int64_t dv_conv2d_out_size(int64_t in, int k, int stride, int pad, int dil);

/* col (C*kh*kw, OH*OW) <- x (C, H, W) */
void dv_im2col_f32_portable(const dv_conv2d_geom *g, const float *x, float *col);
void dv_im2col_f64_portable(const dv_conv2d_geom *g, const double *x, double *col);
/* x (C, H, W) += col2im(col): the adjoint of im2col (x is accumulated into, not overwritten) */
void dv_col2im_f32_portable(const dv_conv2d_geom *g, const float *col, float *x);
void dv_col2im_f64_portable(const dv_conv2d_geom *g, const double *col, double *x);

#endif
