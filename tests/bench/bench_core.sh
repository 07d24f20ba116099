#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench_core.sh -- the model core side by side with fastText, in one run:
#   training wall time, peak RSS, model size, dev accuracy (kinfer defaults vs fastText
#   -wordNgrams 2 -epoch 25 and fastText defaults); runtime records/s by batch and threads;
#   `kinfer predict` vs `fasttext predict` on the same lines (model load time subtracted).
# Usage: tests/bench/bench_core.sh [OUTDIR]     (DATA defaults to ../shared/data/debian-sections)
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-../shared/data/debian-sections}
OUT=${1:-$(mktemp -d /tmp/kinfer-bench.XXXXXX)}
mkdir -p "$OUT"
deploy/install-bench-deps.sh   # fastText, GNU time: the comparison (not installed by the tests)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && cmake --build build -j2 --target kinfer >/dev/null
K=build/kinfer
T() { /usr/bin/time -f "%e %M" -o "$OUT/time" "$@"; read -r secs kb <"$OUT/time"; }

echo "# machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
echo "# date: $(date -u +%FT%TZ)  kinfer $(git rev-parse --short HEAD 2>/dev/null || echo '?')  $(fasttext 2>&1 | head -0)"
echo
echo "| model | train wall s | train peak RSS MB | model MB | dev accuracy | macro-F1 |"
echo "|---|---|---|---|---|---|"
T $K train --input "$DATA/train.tsv" --output "$OUT/kinfer.kinf" --threads 2 -q
acc=$($K eval "$OUT/kinfer.kinf" "$DATA/dev.tsv" --json --no-confusion | python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.4f | %.4f" % (d["accuracy"], d["macro_f1"]))')
echo "| kinfer train (defaults, 2 threads) | $secs | $((kb / 1024)) | $(du -m "$OUT/kinfer.kinf" | cut -f1) | $acc |"
T fasttext supervised -input "$DATA/train.txt" -output "$OUT/ft2" -wordNgrams 2 -epoch 25 -thread 2 -verbose 0
acc=$(fasttext test "$OUT/ft2.bin" "$DATA/dev.txt" | awk '/^P@1/{print $2}')
echo "| fastText -wordNgrams 2 -epoch 25 (2 threads) | $secs | $((kb / 1024)) | $(du -m "$OUT/ft2.bin" | cut -f1) | $acc | |"
T fasttext supervised -input "$DATA/train.txt" -output "$OUT/ftd" -thread 2 -verbose 0
acc=$(fasttext test "$OUT/ftd.bin" "$DATA/dev.txt" | awk '/^P@1/{print $2}')
echo "| fastText defaults (2 threads) | $secs | $((kb / 1024)) | $(du -m "$OUT/ftd.bin" | cut -f1) | $acc | |"
echo

echo "## runtime: kinfer bench runtime (dev texts, top-1)"
echo '```'
$K bench runtime "$OUT/kinfer.kinf" "$DATA/dev.tsv" --batches 1,16,64,256,1024 --threads 1,2 --seconds 3
echo '```'
echo

# predict throughput: N lines minus the 1-line run (the model load), same lines for both
# tools; each run 3 times, the fastest kept (warm page cache), so the load time cancels out.
cut -f2 "$DATA/dev.tsv" >"$OUT/dev1.txt"
for i in $(seq 20); do cat "$OUT/dev1.txt"; done >"$OUT/devN.txt"
head -n 1 "$OUT/dev1.txt" >"$OUT/one.txt"
n=$(wc -l <"$OUT/devN.txt")
best3() { local b=999999 i; for i in 1 2 3; do T "$@"; b=$(python3 -c "print(min($b, $secs))"); done; secs=$b; }
rate() { # name, command (the input file is appended)
  local name=$1; shift
  best3 "$@" "$OUT/one.txt"; local t1=$secs
  best3 "$@" "$OUT/devN.txt"; local tn=$secs
  python3 -c "print('| $name | %.2f | %.2f | %.0f |' % ($t1, $tn, ($n - 1) / max($tn - $t1, 1e-3)))"
}
echo "## predict, command line: $n lines (dev x20), lines/s = (N-1) / (t(N) - t(1 line)), best of 3"
echo "| command | 1-line s | N-line s | lines/s |"
echo "|---|---|---|---|"
rate "fasttext predict ft2.bin (1 thread)" bash -c 'fasttext predict "$0" "$1" >/dev/null' "$OUT/ft2.bin"
rate "kinfer predict (batch 256, 1 thread)" bash -c '"$0" predict "$1" "$2" >/dev/null' "$K" "$OUT/kinfer.kinf"
echo
echo "## predict, in-process (no model load, no I/O): fastText's multilinePredict via python3-fasttext"
echo "fastText ft2.bin: $(/usr/bin/python3 tests/bench/ft_predict_rate.py "$OUT/ft2.bin" "$OUT/dev1.txt" 5 2>/dev/null)"
echo "kinfer runtime, 1 thread, batch 256: see the runtime table above"
