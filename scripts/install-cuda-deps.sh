#!/usr/bin/env bash
# Installs Debian 12's CUDA 11.8 toolkit (nvcc, headers, libcuda stub) for the
# GPU variant of Vireo (`go build -tags cuda`, `make ptx`). Never part of
# `make test`: ~1.6 GB download, ~5.5 GB on disk.
#
# The packages live in Debian's contrib and non-free components, which the
# default sources do not enable. This adds a separate sources file (deb822)
# with the same mirror as the system's bookworm entry and
# `Components: contrib non-free`; the system sources file is left untouched.
# Idempotent: installs only what is missing. Uses sudo only when not root.
set -euo pipefail

pkgs=(
  nvidia-cuda-toolkit   # nvcc 11.8 (make ptx)
  nvidia-cuda-dev       # cuda.h for gorgonia.org/cu
  libcuda1              # libcuda.so to link against (the driver API)
)
list=/etc/apt/sources.list.d/vireo-cuda-contrib-non-free.sources

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-cuda-deps: all CUDA packages present ($(nvcc --version | tail -n 2 | head -n 1))"
  exit 0
fi

. /etc/os-release
if [ "${VERSION_CODENAME:-}" != bookworm ]; then
  echo "install-cuda-deps: want Debian 12 (bookworm), got ${PRETTY_NAME:-unknown}" >&2
  exit 1
fi

# The mirror of the system's bookworm entry: deb822 files first, then
# one-line sources.list entries.
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] && [ "$f" != "$list" ] || continue
  mirror=$(awk '
    /^[[:space:]]*$/ { if (ok && uri != "") { print uri; exit } ok=0; uri=""; next }
    /^URIs:/   { uri=$2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") ok=1 }
    END { if (ok && uri != "") print uri }' "$f" | head -n 1)
  [ -n "$mirror" ] && break
done
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list)
fi
if [ -z "$mirror" ]; then
  echo "install-cuda-deps: no bookworm entry found in the apt sources to take the mirror from" >&2
  exit 1
fi

if [ ! -f "$list" ]; then
  echo "install-cuda-deps: enabling contrib non-free for bookworm in $list"
  printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: contrib non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" | $SUDO tee "$list" >/dev/null
fi

avail=$(df -Pk /usr | awk 'NR == 2 { print $4 }')
if [ "$avail" -lt $((8 * 1024 * 1024)) ]; then
  echo "install-cuda-deps: need ~8 GiB free under /usr (download + unpack), have $((avail / 1024)) MiB" >&2
  exit 1
fi

echo "install-cuda-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
$SUDO apt-get clean
nvcc --version | tail -n 2
