/* tools/cmd_info.c — `dualvla info`: the kernel set this build and this CPU use, the thread
 * count, and a one-line smoke test that the kernels run. */
#include "tools/commands.h"
#include "tensor/ops.h"
#include "kernels/cpu.h"
#include "tensor/cuda.h"

#include <stdio.h>

int dv_cmd_info(int argc, char **argv) {
    (void)argc; (void)argv;
    printf("dualvla tensor engine\n");
    printf("  cpu avx512 (F/BW/VL/DQ + FMA + F16C): %s\n", dv_cpu_has_avx512() ? "yes" : "no");
    printf("  kernel set in use:                    %s%s\n", dv_isa_name(dv_cpu_isa()),
           dv_cpu_has_avx512() && dv_cpu_isa() == DV_ISA_PORTABLE ? " (forced by DV_FORCE_PORTABLE)" : "");
    printf("  OpenMP threads:                       %d (OMP_NUM_THREADS)\n", dv_cpu_threads());
#ifdef DV_HAVE_CUDA
    if (dv_cuda_available()) {
        printf("  devices:                              cpu");
        for (int i = 0; i < dv_cuda_device_count(); i++) {
            dv_cuda_info info;
            if (dv_cuda_device_info(i, &info) == 0)
                printf(", cuda:%d (%s, sm_%d%d, %.1f GiB)", i, info.name, info.major, info.minor,
                       info.total_bytes / (double)(1 << 30));
        }
        printf("\n");
    } else
        printf("  devices:                              cpu (CUDA built in; %s)\n", dv_cuda_unavailable_reason());
#else
    printf("  devices:                              cpu (built without CUDA: no nvcc found)\n");
#endif
    dv_rng r = dv_rng_new(0);
    dv_tensor *a = dv_randn(&r, DV_F32, DV_SHAPE(64, 64)), *c = dv_matmul(a, a), *s = dv_sum_all(c);
    printf("  smoke test (sum of a 64x64 product):  %.6f\n", dv_item(s));
    dv_release(a); dv_release(c); dv_release(s);
    return 0;
}
