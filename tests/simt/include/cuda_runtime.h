/* tests/simt/include/cuda_runtime.h — what a .cu file sees of CUDA in the SIMT emulator build
 * (`make test-cuda-sim`): the runtime API (cuda_runtime_api.h) and the device side of
 * tests/simt/simt.h (qualifiers, thread indices, barriers, shuffles, atomics, launches).
 * C++ only, like the real one for device code. See tests/simt/simt.h for what is emulated. */
#ifndef DV_SIMT_CUDA_RUNTIME_H
#define DV_SIMT_CUDA_RUNTIME_H

#include "cuda_runtime_api.h"
#include "../simt.h"

/* as the real header: a kernel (a function, or a template's instance) for the C API's pointer */
template <class T> static inline cudaError_t cudaFuncSetAttribute(T *entry, enum cudaFuncAttribute attr, int value) {
    return cudaFuncSetAttribute((const void *)entry, attr, value);
}

#endif
