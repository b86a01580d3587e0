/* tests/main.c — runs every registered TEST; last line "N passed, N failed". */
#include "test.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TESTS 4096
static struct { const char *name; dv_test_fn fn; } g_tests[MAX_TESTS];
static int g_ntests;
static int g_failed_now;
static const char *g_current;
int dv_test_verbose;

void dv_test_register(const char *name, dv_test_fn fn) {
    if (g_ntests == MAX_TESTS) { fprintf(stderr, "too many tests\n"); exit(2); }
    g_tests[g_ntests].name = name;
    g_tests[g_ntests].fn = fn;
    g_ntests++;
}

void dv_test_fail(const char *file, int line, const char *fmt, ...) {
    if (g_failed_now < 20) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stdout, "  FAIL %s (%s:%d): ", g_current, file, line);
        vfprintf(stdout, fmt, ap);
        fputc('\n', stdout);
        va_end(ap);
    }
    g_failed_now++;
}

static int cmp_tests(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    const char *filter = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v")) dv_test_verbose = 1;
        else filter = argv[i];
    }
    qsort(g_tests, g_ntests, sizeof g_tests[0], cmp_tests);
    int passed = 0, failed = 0;
    double t0 = now_s();
    for (int i = 0; i < g_ntests; i++) {
        if (filter && !strstr(g_tests[i].name, filter)) continue;
        g_current = g_tests[i].name;
        g_failed_now = 0;
        double t = now_s();
        g_tests[i].fn();
        double dt = now_s() - t;
        if (g_failed_now) {
            failed++;
            printf("FAIL %-48s %7.3fs (%d checks failed)\n", g_current, dt, g_failed_now);
        } else {
            passed++;
            printf("ok   %-48s %7.3fs\n", g_current, dt);
        }
        fflush(stdout);
    }
    printf("total %.1fs\n", now_s() - t0);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
