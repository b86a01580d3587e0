/* tools/dualvla.c — the command-line front end.
 *
 *   dualvla info      what this build and this CPU will use (kernel set, threads, sizes)
 *
 * The training / inference commands (train, act, serve, calvin-synth) arrive with the model
 * issues; the kernel benchmarks are build/bench (make bench).
 */
#include "tensor/ops.h"
#include "kernels/cpu.h"

#include <stdio.h>
#include <string.h>

static int cmd_info(void) {
    printf("dualvla tensor engine\n");
    printf("  cpu avx512 (F/BW/VL/DQ + FMA + F16C): %s\n", dv_cpu_has_avx512() ? "yes" : "no");
    printf("  kernel set in use:                    %s%s\n", dv_isa_name(dv_cpu_isa()),
           dv_cpu_has_avx512() && dv_cpu_isa() == DV_ISA_PORTABLE ? " (forced by DV_FORCE_PORTABLE)" : "");
    printf("  OpenMP threads:                       %d (OMP_NUM_THREADS)\n", dv_cpu_threads());
    printf("  devices:                              cpu (the CUDA backend is not built yet)\n");
    /* a one-line self check that the kernels run */
    dv_rng r = dv_rng_new(0);
    dv_tensor *a = dv_randn(&r, DV_F32, DV_SHAPE(64, 64)), *c = dv_matmul(a, a), *s = dv_sum_all(c);
    printf("  smoke test (sum of a 64x64 product):  %.6f\n", dv_item(s));
    dv_release(a); dv_release(c); dv_release(s);
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: dualvla <command>\n\ncommands:\n  info     show the kernel set, threads and a smoke test\n");
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    if (!strcmp(argv[1], "info")) return cmd_info();
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) { usage(stdout); return 0; }
    fprintf(stderr, "dualvla: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
