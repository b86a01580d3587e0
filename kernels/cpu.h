/* kernels/cpu.h — which CPU kernel set runs: portable C or AVX-512.
 *
 * Chosen once at run time from CPUID (AVX-512 F/BW/VL/DQ + FMA + F16C, and the OS saving the
 * ZMM state). DV_FORCE_PORTABLE=1 in the environment forces the portable set; tests switch
 * between the two with dv_cpu_set_isa() to check that both agree.
 */
#ifndef DV_KERNELS_CPU_H
#define DV_KERNELS_CPU_H

typedef enum { DV_ISA_PORTABLE = 0, DV_ISA_AVX512 = 1 } dv_isa;

int dv_cpu_has_avx512(void);      /* hardware + OS support, ignoring the override */
dv_isa dv_cpu_isa(void);          /* what kernels should use now */
void dv_cpu_set_isa(dv_isa isa);  /* tests: force a set (AVX-512 only if the CPU has it) */
const char *dv_isa_name(dv_isa isa);
int dv_cpu_threads(void);         /* OpenMP threads kernels use */

#endif
