#!/usr/bin/env bash
# Runs every Fuzz* target in the module briefly (default 10000 executions
# each). The budget is a count, not a duration: with a duration Go 1.26's
# fuzz coordinator can fail a target with a bare "context deadline
# exceeded" at the deadline and no crasher (golang/go#75804, fixed in Go
# 1.27); it did so in make test here.
set -euo pipefail
t=${1:-10000x}
cd "$(git rev-parse --show-toplevel)"
found=0
while IFS= read -r f; do
  dir=$(dirname "$f")
  for name in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)\(' "$f" | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/'); do
    found=1
    echo "fuzz: ./$dir $name ($t)"
    go test -run='^$' -fuzz="^${name}\$" -fuzztime="$t" -fuzzminimizetime=200x "./$dir"
  done
done < <(git ls-files '*_test.go' | xargs grep -l '^func Fuzz' || true)
[ $found = 1 ] || echo "fuzz: no fuzz targets"
