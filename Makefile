# Barton: the two commands a fresh machine needs are `make demo` and `make test`.
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_SLOPPINESS := pch_defines,time_macros,include_file_mtime,include_file_ctime
export CCACHE_COMPRESS := 1
export CCACHE_MAXSIZE := 5G

CMAKE_FLAGS ?= -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER_LAUNCHER=ccache

.PHONY: all deps configure build viewer test test-fast demo bench bench-serve bench-clicks bench-dextr3d clean format format-check lint docs cuda-check parity sanitize sanitize-all fuzz tsan

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS)

configure: $(BUILD_DIR)/build.ninja

build: deps configure viewer
	cmake --build $(BUILD_DIR) -j $(JOBS)

# The browser viewer of barton serve (/viewer): NiiVue and the app bundled by esbuild from the
# packages viewer/package-lock.json pins (installed by scripts/install-deps.sh); nothing is
# fetched at run time.
viewer: viewer/dist/viewer.js
viewer/dist/viewer.js: viewer/src/main.js viewer/package-lock.json
	cd viewer && npm run build --silent

test: deps build
	cd $(BUILD_DIR) && ctest --output-on-failure --no-tests=error -j $(JOBS) --timeout 900; \
	  rc=$$?; bash $(CURDIR)/scripts/test-skips.sh $(abspath $(BUILD_DIR)); exit $$rc

test-fast: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -L fast

demo: deps build
	bash scripts/demo.sh $(BUILD_DIR)/barton

bench: deps configure
	cmake -S . -B $(BUILD_DIR) -DBARTON_BUILD_BENCH=ON > /dev/null
	cmake --build $(BUILD_DIR) -j $(JOBS)
	bash bench/run.sh $(BUILD_DIR)
	bash bench/serve/run.sh $(BUILD_DIR)

# The annotation server's targets alone (issue #17): overhead against `barton infer`, 50 clients.
bench-serve: build
	bash bench/serve/run.sh $(BUILD_DIR)

# Per-click latency of the sample DeepGrow 3D and 2D models and their pipeline through the server
# (issue #18), stage split.
bench-clicks: build
	bash bench/serve/clicks.sh $(BUILD_DIR)

# DEXTR3D from exact extreme points against the automatic model on unseen cases (after make demo).
bench-dextr3d: build
	bash bench/annotation/dextr3d_vs_auto.sh $(BUILD_DIR)

# The CUDA build against LibTorch 2.x headers, compile only (scripts/cuda-compile-check.sh; CI runs it).
cuda-check:
	bash scripts/cuda-compile-check.sh

# Sanitizers and fuzzing (issue #20; fuzz/README.md). One build in $(SAN_DIR) with
# AddressSanitizer + UndefinedBehaviorSanitizer and coverage hooks for libFuzzer serves both.
# `make sanitize` (in .ci/run) builds and runs the tests labelled "sanitize": core_test (config
# JSON, registry, atomic files), io_test (NIfTI, DICOM, ITK formats, torch files) and the fuzz
# replays of NIfTI, DICOM, torch files, multipart and datalists. Not the transforms, engine or
# server: their sanitizer build does not fit CI's time (run `make sanitize-all`).
# `make fuzz` builds the libFuzzer binaries and runs each for FUZZ_SECONDS (default 600).
SAN_DIR ?= build-san
SAN_FLAGS := -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
  -DBARTON_SANITIZE=ON -DBARTON_FUZZ=ON
SAN_TARGETS := core_test io_test fuzz_replay_nifti fuzz_replay_dicom fuzz_replay_torch_file \
  fuzz_replay_multipart fuzz_replay_datalist fuzz_replay_zip
export ASAN_OPTIONS ?= detect_leaks=1:abort_on_error=1:detect_container_overflow=0
export LSAN_OPTIONS ?= suppressions=$(CURDIR)/fuzz/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1

$(SAN_DIR)/build.ninja:
	cmake -S . -B $(SAN_DIR) $(SAN_FLAGS)

sanitize: deps $(SAN_DIR)/build.ninja
	cmake --build $(SAN_DIR) -j $(JOBS) --target $(SAN_TARGETS)
	cd $(SAN_DIR) && ctest --output-on-failure --no-tests=error -j $(JOBS) -L sanitize

# Everything under the sanitizers, every fast test (not in CI: about an hour of building on 2 cores).
sanitize-all: deps $(SAN_DIR)/build.ninja
	cmake --build $(SAN_DIR) -j $(JOBS)
	cd $(SAN_DIR) && ctest --output-on-failure -j $(JOBS) -L fast

FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?=
fuzz: deps $(SAN_DIR)/build.ninja
	bash scripts/fuzz.sh $(SAN_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# ThreadSanitizer (issue #20; in .ci/run): a third build in $(TSAN_DIR), all of Barton under
# -fsanitize=thread (LibTorch is Debian's, uninstrumented), of two test binaries: the data loader,
# the cache fills and PersistentDataset's writers (tests/tsan/data_race_test.cpp), and barton serve
# with models loaded under concurrent clients (tests/tsan/serve_race_test.cpp). The server's HTTP
# threads, task queue and token store also have a torch-free TSan test in the main build (ctest
# Tsan.ServerConcurrency).
TSAN_DIR ?= build-tsan
# -O1 -g1 (line tables: reports keep file:line): a third faster to compile than -O2 -g.
TSAN_FLAGS := -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
  -DBARTON_TSAN=ON -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG"
$(TSAN_DIR)/build.ninja:
	cmake -S . -B $(TSAN_DIR) $(TSAN_FLAGS)

tsan: deps $(TSAN_DIR)/build.ninja
	cmake --build $(TSAN_DIR) -j $(JOBS) --target tsan_data_test tsan_serve_test
	cd $(TSAN_DIR) && ctest --output-on-failure --no-tests=error -L tsan_data

# Barton against the MONAI twin loop over twelve seeds (bench/parity; about an hour on 2 cores).
parity: build
	/usr/bin/python3 bench/parity/parity.py --barton $(BUILD_DIR)/barton --config unet_bn --seeds 0,1,2,3,4,5,6,7,8,9,10,11

docs: build
	$(BUILD_DIR)/barton list-components --markdown > docs/components.md

# Formatting (.clang-format: Google style, 100 columns). `make format` rewrites the files;
# `make format-check` (in .ci/run) fails on any file clang-format would change.
CLANG_FORMAT ?= clang-format
format:
	$(CLANG_FORMAT) -i $$(git ls-files '*.cpp' '*.h')

format-check:
	$(CLANG_FORMAT) --dry-run -Werror $$(git ls-files '*.cpp' '*.h')

# No function in src/ longer than 120 lines (tables of data aside).
lint: format-check
	python3 scripts/function-length.py 120

clean:
	rm -rf $(BUILD_DIR)
