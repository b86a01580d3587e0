# dualvla — top-level build. gcc + OpenMP; nothing else is needed for the CPU build.
#
#   make            library, CLI, tests and benchmarks into build/
#   make test       build and run every test (last line: "N passed, N failed")
#   make test-asan  the tests under AddressSanitizer / UBSan (build-asan/)
#   make bench      build and run the kernel benchmarks
#   make run        the README's main job (tools/demo.sh)
#
# The portable C files are compiled for baseline x86-64 (or whatever the host is), so the
# binary runs on any CPU; kernels/avx512/*.c get their own -mavx512* flags and are only
# called after a run-time CPUID check (kernels/cpu.c).

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

LIB_SRC   := $(wildcard tensor/*.c kernels/*.c nn/*.c optim/*.c data/calvin/*.c \
                        models/llava/*.c models/diffuser_actor/*.c models/dit/*.c)
TEST_SRC  := $(wildcard tests/*.c)
BENCH_SRC := $(wildcard bench/*.c)
TOOL_SRC  := $(wildcard tools/*.c)

# objects under build/obj/ so that build/bench (the binary) is not also a folder
OBJ       := $(BUILD)/obj
LIB_OBJ   := $(LIB_SRC:%.c=$(OBJ)/%.o) $(AVX512_SRC:%.c=$(OBJ)/%.o)
TEST_OBJ  := $(TEST_SRC:%.c=$(OBJ)/%.o)
BENCH_OBJ := $(BENCH_SRC:%.c=$(OBJ)/%.o)
TOOL_OBJ  := $(TOOL_SRC:%.c=$(OBJ)/%.o)

LIB := $(BUILD)/libdualvla.a

.PHONY: all test test-asan bench run clean deps
all: $(LIB) $(BUILD)/dualvla $(BUILD)/test $(BUILD)/bench

# system headers the build needs (stb); installs them when root, else says what to install
DEPS_STAMP := $(BUILD)/.deps-ok
$(DEPS_STAMP): tools/deps.sh
	@bash tools/deps.sh
	@mkdir -p $(BUILD) && touch $@
deps: $(DEPS_STAMP)

$(OBJ)/kernels/avx512/%.o: kernels/avx512/%.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(AVX512_FLAGS) -c $< -o $@

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

test: $(BUILD)/test
	./$(BUILD)/test

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

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BENCH_OBJ:.o=.d) $(TOOL_OBJ:.o=.d)
