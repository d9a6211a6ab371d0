#!/usr/bin/env bash
# Runs every Fuzz* target in the module for a short time each (default 5s).
set -euo pipefail
t=${1:-5s}
cd "$(git rev-parse --show-toplevel)"
found=0
while IFS= read -r f; do
  dir=$(dirname "$f")
  for name in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)\(' "$f" | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/'); do
    found=1
    echo "fuzz: ./$dir $name ($t)"
    go test -run='^$' -fuzz="^${name}\$" -fuzztime="$t" "./$dir"
  done
done < <(git ls-files '*_test.go' | xargs grep -l '^func Fuzz' || true)
[ $found = 1 ] || echo "fuzz: no fuzz targets"
