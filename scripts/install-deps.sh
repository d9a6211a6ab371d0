#!/usr/bin/env bash
# Installs the Debian packages Vireo needs to build, test and run its demo.
# Idempotent: installs only what is missing. Uses sudo only when not root.
set -euo pipefail

pkgs=(
  build-essential pkg-config
  libopenblas-dev          # cblas_sgemm for the CPU backend
  libopencv-dev            # gocv v0.31.0 (OpenCV 4.6)
  opencv-doc               # real test videos and images (vtest.avi, messi5.jpg, ...)
  opencv-data              # Haar cascades (pseudo ground truth for megamind-face)
  dataset-fashion-mnist    # the fashion demo datasets
  libonnx-testdata         # ONNX per-operator conformance cases
  python3-onnx python3-numpy  # reference checks of our ONNX writer (onnx.checker)
)
extra=("$@")

missing=()
for p in "${pkgs[@]}" "${extra[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all system packages present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
