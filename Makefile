# dualvla — top-level build. gcc + OpenMP; nothing else is needed for the CPU build.
#
#   make            library, CLI, tests and benchmarks into build/
#   make test       build and run every test (last line: "N passed, N failed")
#   make test-asan  the tests under AddressSanitizer / UBSan (build-asan/)
#   make bench      build and run the kernel benchmarks
#   make run        the README's main job (tools/demo.sh)
#   make test-cuda  build/test-cuda: every CUDA kernel against the CPU (skips without a GPU)
#   make test-cuda-sim  the same tests with every CUDA kernel run on the CPU by tests/simt's
#                   SIMT emulator (build-sim/; needs g++ only, no nvcc, no GPU);
#                   test-cuda-sim-asan: that under AddressSanitizer + UBSan
#
# The portable C files are compiled for baseline x86-64 (or whatever the host is), so the
# binary runs on any CPU; kernels/avx512/*.c get their own -mavx512* flags and are only
# called after a run-time CPUID check (kernels/cpu.c).
#
# CUDA: when nvcc is found (NVCC, else $(CUDA_HOME)/bin/nvcc, else nvcc on PATH) and CUDA is
# not 0, kernels/cuda/*.cu are compiled for sm_80 and sm_90 plus compute_90 PTX (files named
# *_sm90a.cu, Hopper-only, for sm_90a alone), the C code sees DV_HAVE_CUDA, and the binaries
# link the static CUDA runtime, so they start on machines without a driver and say so.
# `make CUDA=0` (or no nvcc) is the CPU-only build, as before (`make test-cuda` still builds
# and says it skipped).

CC      ?= gcc
BUILD   ?= build
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
CFLAGS  += -std=gnu11 -fopenmp -fno-math-errno -Wall -Wextra -Wno-unused-parameter -I. -MMD -MP
LDLIBS  += -lm -ldl -lpthread -fopenmp

ARCH := $(shell uname -m)
ifeq ($(ARCH),x86_64)
  AVX512_SRC   := $(wildcard kernels/avx512/*.c)
  AVX512_FLAGS := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c
else
  AVX512_SRC   :=
  CFLAGS       += -DDV_NO_AVX512
endif

CUDA      ?= 1
CUDA_HOME ?= /usr/local/cuda
ifeq ($(origin NVCC),undefined)
  NVCC := $(firstword $(wildcard $(CUDA_HOME)/bin/nvcc) $(shell command -v nvcc 2>/dev/null))
endif
HAVE_CUDA :=
ifneq ($(CUDA),0)
  ifneq ($(strip $(NVCC)),)
    ifneq ($(SIMT),1)
      HAVE_CUDA := 1
    endif
  endif
endif
ifeq ($(HAVE_CUDA),1)
  CUDA_ROOT   := $(patsubst %/bin/nvcc,%,$(NVCC))
  CUDA_SRC    := $(wildcard kernels/cuda/*.cu)
  NVCC_GENCODE      := -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
                       -gencode arch=compute_90,code=compute_90
  NVCC_GENCODE_90A  := -gencode=arch=compute_90a,code=sm_90a
  NVCC_FLAGS  ?= -O3 -lineinfo
  NVCC_FLAGS  += -std=c++17 -I. -DDV_HAVE_CUDA -Xcompiler -Wall,-Wno-unused-parameter -MMD -MP
  CFLAGS      += -DDV_HAVE_CUDA -isystem $(CUDA_ROOT)/include
  LDLIBS      += -L$(CUDA_ROOT)/lib64 -L$(CUDA_ROOT)/targets/x86_64-linux/lib -lcudart_static -lstdc++ -lrt \
                 -ldl -lpthread
else
  CUDA_SRC    :=
endif

# SIMT=1 (what `make test-cuda-sim` builds into build-sim/): the CUDA C code against the fake
# CUDA headers of tests/simt/include, and kernels/cuda/*.cu compiled by g++ for the CPU: each is
# piped through sed into $(OBJ)/kernels/cuda/x.cc, k<<<g, b, sm, s>>>(args) becoming a call of
# tests/simt/simt.h's launch with a thunk that calls k(args) (see there); -ffp-contract=off so
# that the CPU does each f32 operation as written
SIM_BUILD ?= build-sim
CXX       ?= g++
SIMT_SRC  :=
ifeq ($(SIMT),1)
  CUDA_SRC    := $(wildcard kernels/cuda/*.cu)
  SIMT_SRC    := $(wildcard tests/simt/*.cc)
  TCUDA_SIMT  := $(wildcard tests/simt/*.cu)
  CFLAGS      += -DDV_HAVE_CUDA -Itests/simt/include
  SIMT_CXXFLAGS := $(OPT) -g -std=c++17 -I. -Itests/simt/include -DDV_HAVE_CUDA -DDV_SIMT -D__CUDACC__ \
                   -D__CUDA_ARCH__=900 -ffp-contract=off -fno-strict-aliasing -fno-math-errno -Wall -Wextra -Wno-unused-parameter \
                   -Wno-unknown-pragmas -Wno-sign-compare -MMD -MP
  LDLIBS      += -lstdc++
  SIMT_LAUNCH := dv_simt::cfg(__FILE__, __LINE__, \3) * [](auto... dv_a) { return [=] { \1(dv_a...); }; }
  # `extern __shared__ [__align__(n)] T name[];` -> a T pointer to tests/simt/dynsmem.cc's region
  # (page-aligned, so any __align__ holds)
  SIMT_DYNSHARED := extern __shared__ \(__align__([0-9]*) *\)\{0,1\}\([^;[]*[^ ;[]\) \{1,\}\([A-Za-z_][A-Za-z0-9_]*\) *\[ *\] *;
endif

LIB_SRC   := $(wildcard tensor/*.c kernels/*.c nn/*.c optim/*.c data/calvin/*.c \
                        models/llava/*.c models/diffuser_actor/*.c models/dit/*.c)
TEST_SRC  := $(wildcard tests/*.c)
BENCH_SRC := $(wildcard bench/*.c)
TOOL_SRC  := $(wildcard tools/*.c)

# objects under build/obj/ so that build/bench (the binary) is not also a folder
OBJ       := $(BUILD)/obj
LIB_OBJ   := $(LIB_SRC:%.c=$(OBJ)/%.o) $(AVX512_SRC:%.c=$(OBJ)/%.o) $(CUDA_SRC:%.cu=$(OBJ)/%.o) \
             $(SIMT_SRC:%.cc=$(OBJ)/%.o)
# build/test-cuda: the GPU-vs-CPU parity tests (tests/cuda/) with the shared runner and helpers
TCUDA_SRC := $(wildcard tests/cuda/*.c)
TCUDA_OBJ := $(TCUDA_SRC:%.c=$(OBJ)/%.o) $(OBJ)/tests/main.o $(OBJ)/tests/util.o $(TCUDA_SIMT:%.cu=$(OBJ)/%.o)
TEST_OBJ  := $(TEST_SRC:%.c=$(OBJ)/%.o)
BENCH_OBJ := $(BENCH_SRC:%.c=$(OBJ)/%.o)
TOOL_OBJ  := $(TOOL_SRC:%.c=$(OBJ)/%.o)

LIB := $(BUILD)/libdualvla.a

.PHONY: all test test-asan test-cuda test-cuda-sim test-cuda-sim-asan bench run clean deps print-nvcc
all: $(LIB) $(BUILD)/dualvla $(BUILD)/test $(BUILD)/bench $(if $(HAVE_CUDA),$(BUILD)/test-cuda)

# system headers the build needs (stb); installs them when root, else says what to install
DEPS_STAMP := $(BUILD)/.deps-ok
$(DEPS_STAMP): tools/deps.sh
	@bash tools/deps.sh
	@mkdir -p $(BUILD) && touch $@
deps: $(DEPS_STAMP)

$(OBJ)/kernels/avx512/%.o: kernels/avx512/%.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX512_FLAGS) -c $< -o $@

ifeq ($(SIMT),1)
# kernels/cuda/*.cu and the emulator's own test kernels (tests/simt/*.cu)
.PRECIOUS: $(OBJ)/%.cc
$(OBJ)/%.cc: %.cu
	@mkdir -p $(dir $@)
	sed -e '1i #line 1 "$<"' -e 's/\([A-Za-z_][A-Za-z0-9_]*\(<[^<>]*>\)\{0,1\}\)<<<\([^;]*\)>>>/$(SIMT_LAUNCH)/' \
	    -e 's/$(SIMT_DYNSHARED)/\2 *const \3 = (\2 *)dv_simt::dynamic_shared();/' $< > $@

$(OBJ)/kernels/cuda/%.o: $(OBJ)/kernels/cuda/%.cc
	$(CXX) $(SIMT_CXXFLAGS) -include cuda_runtime.h -c $< -o $@

$(OBJ)/tests/simt/%.o: $(OBJ)/tests/simt/%.cc
	$(CXX) $(SIMT_CXXFLAGS) -include cuda_runtime.h -c $< -o $@

$(OBJ)/tests/simt/%.o: tests/simt/%.cc
	@mkdir -p $(dir $@)
	$(CXX) $(SIMT_CXXFLAGS) -c $< -o $@
else
# Hopper-only kernels (wgmma, TMA): sm_90a, no PTX for other GPUs
$(OBJ)/kernels/cuda/%_sm90a.o: kernels/cuda/%_sm90a.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) $(NVCC_GENCODE_90A) -c $< -o $@

$(OBJ)/kernels/cuda/%.o: kernels/cuda/%.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) $(NVCC_GENCODE) -c $< -o $@
endif

$(OBJ)/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/dualvla: $(TOOL_OBJ) $(LIB)
	$(CC) -o $@ $(TOOL_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/test: $(TEST_OBJ) $(LIB)
	$(CC) -o $@ -Wl,--whole-archive $(TEST_OBJ) -Wl,--no-whole-archive $(LIB) $(LDLIBS)

$(BUILD)/bench: $(BENCH_OBJ) $(LIB)
	$(CC) -o $@ $(BENCH_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/test-cuda: $(TCUDA_OBJ) $(LIB)
	$(CC) -o $@ -Wl,--whole-archive $(TCUDA_OBJ) -Wl,--no-whole-archive $(LIB) $(LDLIBS)

test: $(BUILD)/test
	./$(BUILD)/test

# needs no GPU to pass: without a device (or without nvcc) it prints one skip line, exits 0
test-cuda: $(BUILD)/test-cuda
	./$(BUILD)/test-cuda

# the tests/cuda suite on the CPU: every kernel executed by the SIMT emulator (tests/simt/);
# DV_SIMT_ORDER=reverse runs the threads of a block in the opposite order; DV_SIMT_WGMMA=issue
# completes each wgmma.mma_async at issue instead of at its wgmma.wait_group (tests/simt/wgmma.cc)
test-cuda-sim:
	$(MAKE) BUILD=$(SIM_BUILD) SIMT=1 $(SIM_BUILD)/test-cuda
	./$(SIM_BUILD)/test-cuda

# the same under AddressSanitizer + UBSan (a kernel reading past a device buffer is reported, up
# to the caching allocator's size-class rounding); ~3 min to build, ~1.5 min to run
test-cuda-sim-asan:
	$(MAKE) BUILD=$(SIM_BUILD)-asan SIMT=1 CC="$(ASAN_CC)" CXX="$(CXX) -fsanitize=address,undefined \
	    -fno-omit-frame-pointer -fno-sanitize-recover=undefined" OPT=-O1 $(SIM_BUILD)-asan/test-cuda
	ASAN_OPTIONS=detect_leaks=0 ./$(SIM_BUILD)-asan/test-cuda

# every test under AddressSanitizer + UndefinedBehaviorSanitizer (the sanitizer flags ride on
# CC so the Makefile's own CFLAGS stay intact)
ASAN_BUILD ?= build-asan
ASAN_CC := $(CC) -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
test-asan:
	$(MAKE) BUILD=$(ASAN_BUILD) CC="$(ASAN_CC)" OPT=-O1 $(ASAN_BUILD)/test
	ASAN_OPTIONS=detect_leaks=1 ./$(ASAN_BUILD)/test

bench: $(BUILD)/bench
	@bash tools/peer_blas.sh
	./$(BUILD)/bench all

run: $(BUILD)/dualvla $(BUILD)/bench
	BUILD=$(BUILD) bash tools/demo.sh

# the nvcc the build uses (empty without one or with CUDA=0), for scripts
print-nvcc:
	@echo $(if $(HAVE_CUDA),$(NVCC))

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BENCH_OBJ:.o=.d) $(TOOL_OBJ:.o=.d) $(TCUDA_OBJ:.o=.d)
