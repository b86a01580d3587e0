/* tests/util.h — shared checks for op tests.
 *
 * An op under test is wrapped in a dv_test_op: it gets the input tensors and returns the
 * output (a new reference). Three checks use it:
 *   ut_gradcheck  — f64 central finite differences vs autograd, for every input that
 *                   requires grad (loss = sum(out * r) with a fixed random r).
 *   ut_parity     — the same f32 inputs through the AVX-512 and the portable kernel sets:
 *                   outputs and input gradients must agree (skipped without AVX-512).
 *   ut_fixture    — PyTorch reference values from tests/reference/<file>.bin (written by the
 *                   generator scripts there): case.in0.., case.out, case.gout, case.grad0..
 */
#ifndef DV_TESTS_UTIL_H
#define DV_TESTS_UTIL_H

#include "data/calvin/pickle.h"
#include "tensor/ops.h"
#include "tests/test.h"

typedef dv_tensor *(*dv_test_op)(dv_tensor **in, void *ctx);

/* random leaves; ut_randn_leaf gives requires_grad = true */
dv_tensor *ut_randn(dv_dtype dt, const int64_t *shape, int ndim, uint64_t seed);
dv_tensor *ut_randn_leaf(dv_dtype dt, const int64_t *shape, int ndim, uint64_t seed);
/* a leaf with the same values but non-contiguous strides (every other element of a bigger
 * buffer, dims reversed in memory) */
dv_tensor *ut_noncontig(dv_tensor *t);

/* returns the max error found; records a test failure (naming what) when above tol */
double ut_gradcheck(const char *what, dv_test_op op, dv_tensor **in, int n, void *ctx, double tol);
double ut_parity(const char *what, dv_test_op op, dv_tensor **in, int n, void *ctx, double tol);
/* loads file, runs op on case's inputs; checks out and grads within tol (relative to max|ref|) */
double ut_fixture(const char *file, const char *name, dv_test_op op, void *ctx, double tol);

/* max |a - b| / max(1e-12, max|b|)... as a plain helper; shapes must match */
double ut_max_rel_diff(const dv_tensor *a, const dv_tensor *b);
/* all elements within tol*max(1,|b|) of b? records a failure naming what */
void ut_check_tensor(const char *what, const dv_tensor *a, const dv_tensor *b, double tol);

/* fixture files */
typedef struct ut_fixture_file ut_fixture_file;
ut_fixture_file *ut_fixture_open(const char *path);  /* NULL + test failure when unreadable */
dv_tensor *ut_fixture_get(ut_fixture_file *f, const char *name); /* new ref or NULL */
void ut_fixture_close(ut_fixture_file *f);
/* n integers stored under key in tests/reference/<file> (op arguments of a case) */
bool ut_fixture_ints(const char *file, const char *key, int64_t *out, int n);



/* the whole file in a malloc'd buffer (free it), its size in *len; NULL when unreadable */
uint8_t *ut_read_file(const char *path, size_t *len);

/* run fn(ctx) in a child process; true when it aborted and its stderr contains want
 * (checks that bad calls die loudly with a message naming the op and the shapes) */
bool ut_aborts_with(void (*fn)(void *), void *ctx, const char *want);
/* tests/reference/gen_npy.py's lang_ann(n), n <= 3: CALVIN's auto_lang_ann dict ("language":
 * ann, task, emb (n, 1, 384) f32; "info": episodes, indx) built with the pickle builders in a */
dv_pyobj *ut_calvin_lang_ann(dv_pyarena *a, int n);

/* a CLI command (tools/: dv_cmd_train, dv_cmd_act, ...) run in this process as
 * `name sub args...`, its stdout and stderr sent to /dev/null unless the tests run verbose,
 * the OpenMP thread count restored afterwards (--threads changes it); returns its exit code */
int ut_run_cli(int (*cmd)(int, char **), const char *name, const char *sub, const char *const *args, int n);

#endif
