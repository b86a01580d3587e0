/* tests/cuda/cuda_util.h — helpers of the GPU-vs-CPU tests (build/test-cuda): device buffers
 * filled from host arrays, copied back, and compared with per-dtype tolerances. */
#ifndef DV_TESTS_CUDA_UTIL_H
#define DV_TESTS_CUDA_UTIL_H

#include <stdint.h>

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

#endif
