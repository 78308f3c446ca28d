#!/usr/bin/env bash
# Runs every fuzz target of the module, one after the other, each for the given time.
# Usage: test/fuzz.sh [DURATION]      (default 5m per target; CI uses a short setting)
# A failing input is saved under the package's testdata/fuzz/ by go test; the script exits 1.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
T=${1:-5m}
cd "$REPO" || exit 2
fail=0 n=0
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz'); do
    n=$((n+1))
    start=$(date +%s)
    if go test -run='^$' -fuzz="^${target}\$" -fuzztime="$T" "$pkg" >"/tmp/fuzz-$target.log" 2>&1; then
      echo "PASS  $pkg $target ($(( $(date +%s) - start ))s)"
    else
      echo "FAIL  $pkg $target"; sed -n '1,40p' "/tmp/fuzz-$target.log"; fail=$((fail+1))
    fi
  done
done
echo "fuzz: $((n-fail)) passed, $fail failed"
[ $fail = 0 ]
