#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# install-bench-deps.sh -- what only the benchmarks (tests/bench/) need beyond install-deps.sh:
# fastText (the comparison in bench_core and bench_compress), scikit-learn and numpy (the Python
# peer worker of bench_stream), GNU time (peak RSS), Flask and wrk (bench_http). The benchmarks
# run it themselves; the demo and the tests never install these. Idempotent; needs root (or sudo).
set -euo pipefail

PKGS=(fasttext python3-fasttext python3-sklearn python3-numpy time
  # bench_http.sh: the Flask + scikit-learn /predict peer and the load generator
  python3-flask wrk)

"$(dirname "$0")/apt-install.sh" "install-bench-deps (benchmark comparisons only)" "${PKGS[@]}"
