#!/usr/bin/env bash
# The prepared GPU check for the CUDA backend, for a session whose task is
# lent an NVIDIA GPU machine through the device tool. It builds nothing
# there (that machine has no Go toolchain): build here first with
#
#   make build-cuda        # bin/cuda.test and bin/vireo-cuda (-tags cuda)
#
# then one device call: carry ["bin/cuda.test", "bin/parity.test.gz"],
# timeout_s 560, command: bash scripts/gpu-check.sh
# (not "bin": with bin/vireo and bin/vireo-cuda, ~42 MB each, it exceeds
# the 64 MiB the tool carries. bin/vireo-cuda links OpenCV through gocv,
# 268 shared libraries / ~370 MB here, so step 3 runs only where the
# device machine has them; otherwise it records which are missing.)
#
# It writes at most 8 files under $OUT (the tool brings back 8):
#   summary.txt        one line per step: PASS / FAIL / SKIP and why
#   device.txt         nvidia-smi, driver, libcuda found
#   conformance.txt    bin/cuda.test -test.v -test.run 'TestConformance|TestTensorCoreMath'
#                      (the suite, then the fp16/bf16 tensor-core modes vs fp32)
#   sgemm.jsonl        GEMM GFLOP/s per math mode: fp32 SGEMM, fp16 and bf16
#                      tensor cores (TestDeviceSGEMM)
#   bench-kernels.jsonl  vireo-cuda bench kernels --backend cuda --json
#   bench-model.json   vireo-cuda bench model --backend cuda (resnet18, 224, b8)
#   parity.txt         parity.test -test.v -test.run 'TestModelParity|TestTrainStepParity'
#   log.txt            everything else
# Each step has its own time limit so the whole script ends in ~5 minutes.
set -u
OUT=${OUT:-out/gpu-check}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
sum=$OUT/summary.txt
log=$OUT/log.txt
: >"$sum"
note() { echo "$*" | tee -a "$sum"; }

{
  date -u
  nvidia-smi 2>&1 || echo "nvidia-smi: not available"
  ls -l /dev/nvidia* 2>&1
} >"$OUT/device.txt"

# /dev/nvidiactl alone is no GPU (libcuda's cuInit creates it even on a
# machine without one); /dev/nvidia0 is the first device.
if [ ! -e /dev/nvidia0 ]; then
  note "SKIP all: no /dev/nvidia0: not a GPU machine (gorgonia.org/cu would exit at init)"
  exit 0
fi
# libcuda.so.1 comes with the driver; the device machine mounts it under
# /usr/local/nvidia, which may not be in the loader's cache.
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda.so.1 '; then
  for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/local/cuda/compat; do
    [ -e "$d/libcuda.so.1" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" && break
  done
fi
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}" >>"$OUT/device.txt"

missing() { ldd "$1" 2>&1 | grep 'not found'; }

# 1. The kernel conformance suite against the CUDA backend.
if [ ! -x bin/cuda.test ]; then
  note "FAIL conformance: bin/cuda.test missing (run make build-cuda here and carry bin)"
elif m=$(missing bin/cuda.test); [ -n "$m" ]; then
  note "FAIL conformance: bin/cuda.test cannot load: $m"
else
  timeout 100 bin/cuda.test -test.v -test.count=1 -test.run 'TestConformance|TestTensorCoreMath' >"$OUT/conformance.txt" 2>&1
  rc=$?
  note "$([ $rc = 0 ] && echo PASS || echo "FAIL rc=$rc") conformance: $(grep -c -- '--- PASS' "$OUT/conformance.txt") subtests passed, $(grep -c -- '--- FAIL' "$OUT/conformance.txt") failed"
  grep -- '--- FAIL' "$OUT/conformance.txt" | head -n 40 >>"$sum"
  grep -E -- '--- (PASS|FAIL): TestTensorCoreMath' "$OUT/conformance.txt" >>"$sum"
  [ $rc = 0 ] || tail -n 3 "$OUT/conformance.txt" >>"$sum"

  # 2. GEMM GFLOP/s: fp32 (CUDA cores), fp16 and bf16 (tensor cores).
  VIREO_CUDA_BENCH_DIR=$OUT timeout 40 bin/cuda.test -test.v -test.count=1 -test.run 'TestDeviceSGEMM' >>"$log" 2>&1
  rc=$?
  note "$([ $rc = 0 ] && echo PASS || echo "FAIL rc=$rc") sgemm timing: $(tr '\n' ' ' 2>/dev/null <"$OUT/sgemm.jsonl" | head -c 2400)"
fi

# 3. vireo bench on the GPU (the full binary links OpenCV, which the
#    device machine may lack: then this step says which libraries).
if [ ! -x bin/vireo-cuda ]; then
  note "SKIP bench: bin/vireo-cuda not carried (43 MB, and it links OpenCV, which the GPU machine lacks; the test binaries above do not)"
elif m=$(missing bin/vireo-cuda); [ -n "$m" ]; then
  note "SKIP bench: bin/vireo-cuda cannot load here: $(echo "$m" | awk '{print $1}' | tr '\n' ' ')"
else
  timeout 100 bin/vireo-cuda bench kernels --backend cuda --json >"$OUT/bench-kernels.jsonl" 2>>"$log"
  rc=$?
  note "$([ $rc = 0 ] && echo PASS || echo "FAIL rc=$rc") bench kernels: $(wc -l <"$OUT/bench-kernels.jsonl") cases; $(tail -n 2 "$log" | tr '\n' ' ')"
  timeout 100 bin/vireo-cuda bench model --backend cuda --arch resnet18 --size 224 --batch 8 --json >"$OUT/bench-model.json" 2>>"$log"
  rc=$?
  note "$([ $rc = 0 ] && echo PASS || echo "FAIL rc=$rc") bench model: $(head -c 400 "$OUT/bench-model.json"); $(tail -n 1 "$log")"
fi

# 4. Model parity CPU vs CUDA on the bundled models (models/*/model.onnx,
#    found from the repository root): pkg/backend's TestModelParity, built
#    as bin/parity.test.gz (OpenBLAS linked statically; see the Makefile's
#    build-cuda). It also logs the CUDA images/s at batch 16. Then
#    TestTrainStepParity: three SGD training steps of one native
#    architecture on both backends (losses and final weights compared),
#    and once more on CUDA in bf16 (MixedPrecision's mode). Each model
#    runs on CUDA in fp32, fp16 and bf16 math modes.
if [ ! -f bin/parity.test.gz ]; then
  note "FAIL parity: bin/parity.test.gz missing (make build-cuda here and carry it)"
else
  ptest=$(mktemp -d)/parity.test
  if ! gunzip -c bin/parity.test.gz >"$ptest" 2>>"$log"; then
    note "FAIL parity: cannot gunzip bin/parity.test.gz"
  elif chmod +x "$ptest" && m=$(missing "$ptest"); [ -n "$m" ]; then
    note "FAIL parity: parity.test cannot load: $m"
  else
    OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell} timeout 150 "$ptest" -test.v -test.count=1 -test.run 'TestModelParity|TestTrainStepParity' >"$OUT/parity.txt" 2>&1
    rc=$?
    note "$([ $rc = 0 ] && echo PASS || echo "FAIL rc=$rc") parity: $(grep -c -- '--- PASS' "$OUT/parity.txt") passed, $(grep -c -- '--- FAIL' "$OUT/parity.txt") failed, $(grep -c -- '--- SKIP' "$OUT/parity.txt") skipped"
    grep -E -- 'max abs diff|images/s|loss: cpu|largest relative|--- FAIL|--- SKIP' "$OUT/parity.txt" | sed 's/^ *//' | cut -c1-300 | head -n 60 >>"$sum"
    [ $rc = 0 ] || tail -n 5 "$OUT/parity.txt" >>"$sum"
  fi
  rm -f "$ptest"
fi
echo "gpu-check: done; see $sum"
