/* tests/cuda/cuda_util.h — helpers of the GPU-vs-CPU tests (build/test-cuda): device buffers
 * filled from host arrays, copied back, and compared with per-dtype tolerances. */
#ifndef DV_TESTS_CUDA_UTIL_H
#define DV_TESTS_CUDA_UTIL_H

#include <stdint.h>

#include "kernels/cuda/kernels.h"
#include "tensor/cuda.h"
#include "tests/test.h"

/* a device copy of n bytes of host data (dv_cuda_alloc on cuda:0) / an uninitialised one */
void *tc_upload(const void *host, int64_t nbytes);
void *tc_dalloc(int64_t nbytes);
void tc_dfree(void *d, int64_t nbytes);
/* synchronises cuda:0 and copies n bytes back into a malloc'd buffer the caller frees */
void *tc_download(const void *dev, int64_t nbytes);
void *tc_stream(void);
/* n floats from N(0, 1) scaled by s (deterministic in seed) into a malloc'd buffer */
float *tc_randn(int64_t n, uint64_t seed, double s);
/* max over i of |got - want| / max(1, |want|); records a failure naming what when > tol */
double tc_compare_f32(const char *what, const float *got, const float *want, int64_t n, double tol);
double tc_compare_f64(const char *what, const double *got, const double *want, int64_t n, double tol);

/* run f on the CPU leaves cpu_in[0..n) and on their device copies (requires_grad on both),
 * back-propagate the same random output gradient through both graphs, and compare the
 * outputs and every input gradient (tc_compare_f32 with tol). n <= 8; f's inputs are
 * f32. Records failures naming what. */
typedef dv_tensor *(*tc_graph_fn)(dv_tensor **in);
void tc_graph_parity(const char *what, tc_graph_fn f, dv_tensor **cpu_in, int n, double tol);

/* n f16 / bf16 values (bits) drawn from N(0, 1) and rounded (deterministic in seed) / their value */
uint16_t *tc_rand_half(int64_t n, uint64_t seed, int bf16);
double tc_half_val(uint16_t h, int bf16);

/* One half-precision GEMM case (dv_cu_gemm's contract) through gemm: random A, B (and C for
 * beta), leading dimensions padded by pad elements (odd pads: unaligned operands), checked
 * element by element against a double product of the same rounded inputs. An element passes
 * when |got - want| <= tol(want, mag, K, bf16, c_f32), with mag = |alpha| sum_k |a b| +
 * |beta c|. Records a failure naming `name` for the first bad elements; returns their count. */
typedef int (*tc_half_gemm_fn)(dv_cu_half dtype, int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                               const uint16_t *A, int64_t lda, int64_t stride_a, const uint16_t *B, int64_t ldb,
                               int64_t stride_b, float beta, void *C, int64_t ldc, int64_t stride_c, bool c_f32,
                               int64_t batch, dv_cu_stream stream);
typedef double (*tc_gemm_tol_fn)(double want, double mag, int64_t K, int bf16, int c_f32);
int tc_half_gemm_case(const char *name, tc_half_gemm_fn gemm, tc_gemm_tol_fn tol, int bf16, int ta, int tb, int64_t M,
                      int64_t N, int64_t K, int64_t batch, int pad, int c_f32, float alpha, float beta, uint64_t seed);

#endif
