# dojo — top-level build.
#
#   make            build/dojo, build/libdojo.a, build/libdojo.so (release)
#   make setup      install missing Debian packages (tools/setup.sh)
#   make demo       setup + build + `dojo train` with no arguments
#   make test       setup + build + all tests, normal and under ASan+UBSan
#   make bench      the benchmarks (bench/run.sh)
#   make bench-peers  dojo against PyTorch, training steps side by side
#   make MODE=asan  a sanitizer build in build/asan/
#   make CUDA=0     no CUDA backend even where nvcc and cuDNN are found
#
# Plain GNU make rather than CMake: the tree is one library, one command and
# a folder of tests, all found by wildcard, so a new file needs no edit here.

MODE ?= release
ARCH := $(shell uname -m)

ifeq ($(MODE),release)
  BUILD ?= build
  OPT := -O3 -g
else ifeq ($(MODE),asan)
  BUILD ?= build/asan
  OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
else ifeq ($(MODE),debug)
  BUILD ?= build/debug
  OPT := -O0 -g
else
  $(error MODE must be release, asan or debug, not '$(MODE)')
endif

CC ?= gcc
PKGS := libavformat libavcodec libavutil libswscale libcjson yaml-0.1
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# snprintf truncation is how messages are bounded here, not a bug: not a warning.
WARN := -Wall -Wextra -Werror -Wno-unused-parameter -Wno-format-truncation
CFLAGS ?=
CFLAGS += -std=gnu11 $(OPT) $(WARN) -fPIC -pthread -Iinclude -Isrc $(PKG_CFLAGS) \
          -DDJ_BUILD_TYPE='"$(MODE)"' -MMD -MP
LDLIBS := $(PKG_LIBS) -lm -pthread
SAN_FLAGS := -fsanitize=address,undefined
LDFLAGS_MODE := $(if $(filter asan,$(MODE)),$(SAN_FLAGS))

# The library: everything under src/ except the command line.
LIB_DIRS := src/core src/kernels/cpu src/nn src/video src/data src/train src/dist
LIB_SRC := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
# x86-64 kernel variants are compiled with their instruction set enabled and
# only called after cpuid says the CPU has it; other targets leave them out.
ifneq ($(ARCH),x86_64)
  LIB_SRC := $(filter-out %_avx2.c %_avx512.c,$(LIB_SRC))
endif
# CUDA: the backend (src/kernels/cuda/*.c host code, *.cu kernels) compiles
# only when nvcc and cuDNN's header are found; CUDA=0 turns it off, and the
# build is then CPU-only and still complete. Kernels are compiled for sm_90
# (H100/H200) plus compute_90 PTX, which newer GPUs JIT-compile; override with
# CUDA_ARCH. NCCL (multi-GPU all-reduce) is added when nccl.h and libnccl are
# found. cuBLASLt is not linked: it is opened with dlopen when a GPU is first
# used, because loading its 540 MB costs about 0.15 s at every start of dojo
# (measured), GPU or not.
CUDA ?= auto
NVCC ?= $(shell command -v nvcc 2>/dev/null)
CUDA_SRC := $(wildcard src/kernels/cuda/*.cu)
ifneq ($(CUDA),0)
  ifneq ($(NVCC),)
    CUDA_HOME ?= $(patsubst %/bin/,%,$(dir $(NVCC)))
    ifneq ($(wildcard $(CUDA_HOME)/include/cudnn.h),)
      CUDA_ON := 1
    endif
  endif
endif
ifeq ($(CUDA_ON),1)
  CUDA_ARCH ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
  CUDA_LIBDIRS := $(wildcard $(CUDA_HOME)/lib64 $(CUDA_HOME)/lib)
  CFLAGS += -DDJ_HAVE_CUDA -I$(CUDA_HOME)/include
  LDLIBS += $(foreach d,$(CUDA_LIBDIRS),-L$(d) -Wl,-rpath,$(d)) -lcudnn -lcudart -ldl -lstdc++
  ifneq ($(wildcard $(CUDA_HOME)/include/nccl.h),)
    ifneq ($(wildcard $(foreach d,$(CUDA_LIBDIRS),$(d)/libnccl.so)),)
      CFLAGS += -DDJ_HAVE_NCCL
      LDLIBS += -lnccl
    endif
  endif
  NVCCFLAGS := -O3 -std=c++17 $(CUDA_ARCH) -Werror all-warnings -Xcompiler -fPIC,-Wall,-Wextra,-Werror,-Wno-unused-parameter \
               -Iinclude -Isrc -DDJ_HAVE_CUDA -MMD -MP
  LIB_SRC += $(wildcard src/kernels/cuda/*.c)
  CUDA_OBJ := $(CUDA_SRC:%.cu=$(BUILD)/obj/%.o)
endif
# MPI: src/dist talks MPI when Open MPI's headers are found (MPI=0 turns it
# off); the library then links libmpi and `dojo version` lists mpi. Without
# it the single-process backend is the only one and the build is complete.
MPI ?= auto
ifneq ($(MPI),0)
  MPI_CFLAGS := $(shell pkg-config --cflags ompi-c 2>/dev/null || mpicc --showme:compile 2>/dev/null)
  MPI_LIBS := $(shell pkg-config --libs ompi-c 2>/dev/null || mpicc --showme:link 2>/dev/null)
  ifneq ($(strip $(MPI_LIBS)),)
    CFLAGS += -DDJ_HAVE_MPI $(MPI_CFLAGS)
    LDLIBS += $(MPI_LIBS)
    MPI_ON := 1
  endif
endif
CLI_SRC := $(wildcard src/cli/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(CUDA_OBJ)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)

TEST_SRC := $(wildcard tests/unit/test_*.c)
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Programs run under mpirun by tests/cli/test_mpi.sh (they also run alone,
# as one rank): tests/mpi/*.c -> BUILD/tests/mpi/*.
MPI_TEST_SRC := $(wildcard tests/mpi/*.c)
MPI_TEST_BIN := $(MPI_TEST_SRC:tests/mpi/%.c=$(BUILD)/tests/mpi/%)
TEST_SUPPORT := $(wildcard tests/unit/support/*.c)
# Shared objects the command-line tests preload into dojo (tests/cli/support/*.c
# -> BUILD/tests/*.so), built without sanitizers: e.g. kill_at.so crashes a
# run at an exact point of a checkpoint write.
PRELOAD_SRC := $(wildcard tests/cli/support/*.c)
PRELOAD_SO := $(PRELOAD_SRC:tests/cli/support/%.c=$(BUILD)/tests/%.so)
TEST_SUPPORT_OBJ := $(TEST_SUPPORT:%.c=$(BUILD)/obj/%.o)

AVX2_FLAGS := -mavx2 -mfma -mf16c
AVX512_FLAGS := $(AVX2_FLAGS) -mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx512bf16 -mavx512vnni

.PHONY: all setup demo test test-one bench bench-peers clean
# keep test objects (otherwise make deletes them as intermediates)
.SECONDARY:

# Short build lines; `make V=1` prints the full commands.
V ?= 0
ifeq ($(V),0)
  Q := @
  say = @printf '  %-6s %s\n' $(1) $(2)
else
  Q :=
  say =
endif
.DEFAULT_GOAL := all

all: $(BUILD)/dojo $(BUILD)/libdojo.a $(BUILD)/libdojo.so $(TEST_BIN) $(MPI_TEST_BIN) $(PRELOAD_SO)

$(BUILD)/obj/%_avx512.o: %_avx512.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS) $(AVX512_FLAGS) -c $< -o $@

$(BUILD)/obj/%_avx2.o: %_avx2.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS) $(AVX2_FLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.cu
	@mkdir -p $(dir $@)
	$(call say,NVCC,$<)
	$(Q)$(NVCC) $(NVCCFLAGS) -MF $(@:.o=.d) -c $< -o $@

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# version.c and device.c report the flags above (DJ_HAVE_MPI, DJ_HAVE_CUDA,
# DJ_HAVE_NCCL): rebuild them when they change.
$(BUILD)/obj/src/core/version.o $(BUILD)/obj/src/core/device.o: Makefile

$(BUILD)/libdojo.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(call say,AR,$@)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/libdojo.so: $(LIB_OBJ)
	$(call say,LD,$@)
	$(Q)$(CC) -shared $(LDFLAGS_MODE) -o $@ $^ $(LDLIBS)

$(BUILD)/dojo: $(CLI_OBJ) $(BUILD)/libdojo.a
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS_MODE) -o $@ $(CLI_OBJ) $(BUILD)/libdojo.a $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(TEST_SUPPORT_OBJ) $(BUILD)/libdojo.a
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS_MODE) -o $@ $< $(TEST_SUPPORT_OBJ) $(BUILD)/libdojo.a $(LDLIBS)

$(BUILD)/tests/mpi/%: $(BUILD)/obj/tests/mpi/%.o $(TEST_SUPPORT_OBJ) $(BUILD)/libdojo.a
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS_MODE) -o $@ $< $(TEST_SUPPORT_OBJ) $(BUILD)/libdojo.a $(LDLIBS)

$(BUILD)/tests/%.so: tests/cli/support/%.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -fPIC -shared -o $@ $< -ldl

setup:
	@sh tools/setup.sh

demo: setup
	$(MAKE) all
	$(BUILD)/dojo train

# Runs the suite twice (release, then ASan+UBSan) and ends with one line
# "N passed, N failed" summing both runs.
test: setup
	$(MAKE) MODE=release all
	$(MAKE) MODE=asan all
	@sh tests/run.sh build build/asan

# One mode only, for quick iteration: make test-one MODE=asan
test-one: all
	@sh tests/run.sh $(BUILD)

bench: setup
	$(MAKE) MODE=release all
	@sh bench/run.sh build

# dojo and PyTorch (eager, torch.compile) in alternation on the same
# networks, input and threads (bench/bench_train_step.sh; it installs
# python3-torch when missing). Override e.g. PEERS_INPUT=2x3x8x112x112.
PEERS_MODELS ?= r3d_18 r2plus1d_18
PEERS_INPUT ?= 8x3x8x112x112
PEERS_THREADS ?= 2
PEERS_ROUNDS ?= 3
bench-peers:
	$(MAKE) MODE=release all
	@MODELS="$(PEERS_MODELS)" INPUT="$(PEERS_INPUT)" THREADS="$(PEERS_THREADS)" ROUNDS="$(PEERS_ROUNDS)" \
	    DOJO=build/dojo sh bench/bench_train_step.sh

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:$(BUILD)/tests/%=$(BUILD)/obj/tests/unit/%.d) $(TEST_SUPPORT_OBJ:.o=.d)
-include $(MPI_TEST_BIN:$(BUILD)/tests/mpi/%=$(BUILD)/obj/tests/mpi/%.d)
