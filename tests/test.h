/* tests/test.h — the project's own tiny test runner.
 *
 *   TEST(name) { CHECK(x > 0); CHECK_CLOSE(a, b, tol); ... }
 *
 * Every TEST registers itself (constructor attribute); tests/main.c runs them all, or those whose
 * name contains argv[1], and ends with "N passed, N failed" (exit 1 on any failure).
 * A failing CHECK prints file:line and the expression and marks the test failed (it goes on,
 * so one run shows every broken assertion of a test).
 */
#ifndef DV_TESTS_TEST_H
#define DV_TESTS_TEST_H

#include <math.h>
#include <stdio.h>

typedef void (*dv_test_fn)(void);
void dv_test_register(const char *name, dv_test_fn fn);
void dv_test_fail(const char *file, int line, const char *fmt, ...);
extern int dv_test_verbose;

#define TEST(name)                                                                     \
    static void test_##name(void);                                                     \
    __attribute__((constructor)) static void register_##name(void) {                   \
        dv_test_register(#name, test_##name);                                          \
    }                                                                                  \
    static void test_##name(void)

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) dv_test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);             \
    } while (0)

#define CHECK_MSG(cond, ...)                                                           \
    do {                                                                               \
        if (!(cond)) dv_test_fail(__FILE__, __LINE__, __VA_ARGS__);                    \
    } while (0)

/* |a - b| <= tol * max(1, |b|): relative for large values, absolute near zero */
#define CHECK_CLOSE(a, b, tol)                                                         \
    do {                                                                               \
        double a_ = (double)(a), b_ = (double)(b);                                     \
        if (!(fabs(a_ - b_) <= (tol) * fmax(1.0, fabs(b_))))                           \
            dv_test_fail(__FILE__, __LINE__, "CHECK_CLOSE(%s, %s): %.9g vs %.9g", #a,  \
                         #b, a_, b_);                                                  \
    } while (0)

#endif
