#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# install-bench-deps.sh -- what only the benchmarks (tests/bench/) need beyond install-deps.sh:
# fastText (the comparison in bench_core and bench_compress), scikit-learn and numpy (the Python
# peer worker of bench_stream), GNU time (peak RSS). The benchmarks run it themselves; the demo
# and the tests never install these. Idempotent; needs root (or sudo).
set -euo pipefail

PKGS=(fasttext python3-fasttext python3-sklearn python3-numpy time)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-bench-deps: installing ${missing[*]} (benchmark comparisons only)" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
