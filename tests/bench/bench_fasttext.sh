#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench_fasttext.sh MODEL.bin|MODEL.ftz LINES.txt [OUT_DIR] -- kinfer import fasttext against
# fastText on the same lines, side by side (issue 14 item 4; figures in docs/benchmarks.md):
#   1. agreement: `fasttext predict-prob` vs `kinfer predict --fasttext` (top-1, probabilities)
#      on every line (tests/unit/ft_compare.py);
#   2. speed, one thread each, best of REPEAT (default 3) runs: `fasttext predict MODEL LINES 1`
#      and `kinfer predict M.kinf LINES 1` on LINES repeated REPS times (default 10), each also
#      timed on an empty file (the model load), so that lines/s = lines / (time on the lines -
#      time on the empty file);
#   3. `kinfer bench` on the lines (batch sizes, threads) for the runtime alone.
# Needs the fasttext CLI and python3. KINFER (default build/kinfer).
set -euo pipefail
K=${KINFER:-build/kinfer}
model=${1:?usage: bench_fasttext.sh MODEL.bin LINES.txt [OUT_DIR]}
lines=${2:?usage: bench_fasttext.sh MODEL.bin LINES.txt [OUT_DIR]}
out=${3:-$(mktemp -d /tmp/kinfer-bench-ft.XXXXXX)}
repeat=${REPEAT:-3}
src=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"
: >"$out/empty.txt"
for _ in $(seq "${REPS:-10}"); do cat "$lines"; done >"$out/lines.txt"
n=$(wc -l <"$out/lines.txt")
t0=$(date +%s.%N)
"$K" import fasttext "$model" --output "$out/m.kinf" -q
echo "import: $(echo "$(date +%s.%N) - $t0" | bc) s, $(stat -c %s "$model") -> $(stat -c %s "$out/m.kinf") bytes"

fasttext predict-prob "$model" "$lines" 1 >"$out/ft.out"
"$K" predict "$out/m.kinf" "$lines" 1 --fasttext >"$out/ki.out"
echo "agreement: $(python3 "$src/tests/unit/ft_compare.py" "$out/ft.out" "$out/ki.out" 0.999 1e-4 || true)"

best() { # best wall seconds of $repeat runs of the command
  local b=999999 s e d
  for _ in $(seq "$repeat"); do
    s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N)
    d=$(echo "$e - $s" | bc); if [ "$(echo "$d < $b" | bc)" = 1 ]; then b=$d; fi
  done
  echo "$b"
}
ft_all=$(best fasttext predict "$model" "$out/lines.txt" 1)
ft_load=$(best fasttext predict "$model" "$out/empty.txt" 1)
ki_all=$(best "$K" predict "$out/m.kinf" "$out/lines.txt" 1)
ki_load=$(best "$K" predict "$out/m.kinf" "$out/empty.txt" 1)
ft_rate=$(echo "$n / ($ft_all - $ft_load)" | bc -l)
ki_rate=$(echo "$n / ($ki_all - $ki_load)" | bc -l)
printf 'fasttext predict: %d lines in %.2f s, load %.2f s -> %.0f lines/s\n' "$n" "$ft_all" "$ft_load" "$ft_rate"
printf 'kinfer predict:   %d lines in %.2f s, load %.2f s -> %.0f lines/s\n' "$n" "$ki_all" "$ki_load" "$ki_rate"
printf 'speed-up (prediction): %.1fx; end to end (load included): %.1fx\n' "$(echo "$ki_rate / $ft_rate" | bc -l)" \
  "$(echo "$ft_all / $ki_all" | bc -l)"
"$K" bench "$out/m.kinf" "$lines" 2>&1 | tail -n 12
