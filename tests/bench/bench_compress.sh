#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench_compress.sh -- every compression variant side by side with fastText, in one run:
#   f32, int8, pruned, pruned+int8, teacher, distilled student, the same student trained on the
#   labels alone, fastText -wordNgrams 2 and fastText quantized (-qnorm -retrain -cutoff 100000).
# For each: file size, dev accuracy, records/s and peak RSS. Runtime records/s come from
# `kinfer bench runtime MODEL dev --threads 1 --batches 256`, run ROUNDS times interleaved over
# the kinfer models (the machine is shared: compare medians side by side, not across runs);
# `predict` lines per CPU second (kinfer predict vs fasttext predict, load subtracted) and peak
# RSS come from classifying one line (RSS ~ the loaded model) and the dev lines x30.
# Usage: tests/bench/bench_compress.sh [OUTDIR]   (DATA defaults to ../shared/data/debian-sections,
#        ROUNDS to 7, KEEP (rows kept by prune) to 100000, BUILD to build-compress; REUSE=1
#        keeps models already in OUTDIR)
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-../shared/data/debian-sections}
ROUNDS=${ROUNDS:-7}
KEEP=${KEEP:-100000}
BUILD=${BUILD:-build-compress}
OUT=${1:-$(mktemp -d /tmp/kinfer-bench-compress.XXXXXX)}
mkdir -p "$OUT"
deploy/install-bench-deps.sh   # fastText, GNU time: the comparison (not installed by the tests)
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && cmake --build "$BUILD" -j2 --target kinfer >/dev/null
K=$BUILD/kinfer
T() { /usr/bin/time -f "%e %M" -o "$OUT/time" "$@"; read -r secs kb <"$OUT/time"; }
mb() { python3 -c "import os,sys; print('%.2f' % (os.path.getsize(sys.argv[1]) / 1e6))" "$1"; }
acc() { $K eval "$1" "$DATA/dev.tsv" --json --no-confusion | python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["accuracy"])'; }

echo "# machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# date: $(date -u +%FT%TZ)  kinfer $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo

# ---- the models -------------------------------------------------------------------------------
declare -a NAMES FILES CMDS
add() { NAMES+=("$1"); FILES+=("$2"); CMDS+=("$3"); }
run() { # name file command...
  local name=$1 file=$2; shift 2
  echo "+ $*" >&2
  if [ -n "${REUSE:-}" ] && [ -s "$file" ]; then add "$name" "$file" "$*"; return; fi
  if "$@" >"$OUT/log" 2>&1; then add "$name" "$file" "$*"; else echo "  ($name failed: $(tail -1 "$OUT/log"))" >&2; fi
}
S="--buckets 262144 --max-rows 100000 --dim 16 --lr 0.2"   # the student shape: ~1/4 of the teacher
run "f32 (kinfer train defaults)" "$OUT/f32.kinf" $K train --input "$DATA/train.tsv" --output "$OUT/f32.kinf" -q
run "int8" "$OUT/q8.kinf" $K quantize "$OUT/f32.kinf" --output "$OUT/q8.kinf" -q
run "int8, --dense-map" "$OUT/q8d.kinf" $K quantize "$OUT/f32.kinf" --output "$OUT/q8d.kinf" --dense-map -q
run "pruned ($KEEP rows)" "$OUT/pruned.kinf" $K prune "$OUT/f32.kinf" --output "$OUT/pruned.kinf" --keep-buckets "$KEEP" -q
run "pruned + int8" "$OUT/pruned-q8.kinf" $K quantize "$OUT/pruned.kinf" --output "$OUT/pruned-q8.kinf" -q
add "teacher (= the f32 model)" "$OUT/f32.kinf" "the f32 model above"
run "student distilled (T=2, alpha=0.5)" "$OUT/student-distilled.kinf" $K distill --teacher "$OUT/f32.kinf" --data "$DATA/train.tsv" --output "$OUT/student-distilled.kinf" $S --temperature 2 --alpha 0.5 -q
run "student from labels" "$OUT/student-labels.kinf" $K train --input "$DATA/train.tsv" --output "$OUT/student-labels.kinf" $S -q
run "fastText -wordNgrams 2" "$OUT/ft.bin" fasttext supervised -input "$DATA/train.txt" -output "$OUT/ft" -wordNgrams 2 -verbose 0
run "fastText quantized" "$OUT/ft.ftz" fasttext quantize -input "$DATA/train.txt" -output "$OUT/ft" -qnorm -retrain -cutoff 100000 -verbose 0
run "fastText -wordNgrams 2 -epoch 25" "$OUT/ft25.bin" fasttext supervised -input "$DATA/train.txt" -output "$OUT/ft25" -wordNgrams 2 -epoch 25 -verbose 0
run "fastText -epoch 25 quantized" "$OUT/ft25.ftz" fasttext quantize -input "$DATA/train.txt" -output "$OUT/ft25" -qnorm -retrain -cutoff 100000 -verbose 0

# ---- runtime records/s, interleaved -------------------------------------------------------------
: >"$OUT/rps"
: >"$OUT/lps"
for r in $(seq "$ROUNDS"); do
  for i in "${!NAMES[@]}"; do
    f=${FILES[$i]}
    case "$f" in *.kinf) ;; *) continue ;; esac
    v=$($K bench runtime "$f" "$DATA/dev.tsv" --threads 1 --batches 256 --seconds 1 --json 2>/dev/null | tail -1 |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["records_per_sec"])')
    echo "$i $v" >>"$OUT/rps"
  done
done

# ---- predict: lines per CPU second and peak RSS (same lines for kinfer and fastText) ------------
# CPU time (user + sys) of classifying the dev lines x30 minus that of one line (the load), median
# over ROUNDS interleaved runs: on a shared machine CPU time is far steadier than wall time.
cut -f2 "$DATA/dev.tsv" >"$OUT/dev1.txt"
for i in $(seq 30); do cat "$OUT/dev1.txt"; done >"$OUT/dev30.txt"
head -n 1 "$OUT/dev1.txt" >"$OUT/one.txt"
n=$(wc -l <"$OUT/dev30.txt")
predict() { # file input
  case "$1" in
  *.kinf) "$K" predict "$1" "$2" >/dev/null ;;
  *) fasttext predict "$1" "$2" >/dev/null ;;
  esac
}
export -f predict; export K
C() { /usr/bin/time -f "%U %S %M" -o "$OUT/time" bash -c 'predict "$0" "$1"' "$@"; read -r u s kb <"$OUT/time"; cpu=$(python3 -c "print($u + $s)"); }
for r in $(seq "$ROUNDS"); do
  for i in "${!NAMES[@]}"; do
    C "${FILES[$i]}" "$OUT/one.txt"; c1=$cpu; k1=$kb
    C "${FILES[$i]}" "$OUT/dev30.txt"; cn=$cpu; kn=$kb
    echo "$i $(python3 -c "print('%.0f' % (($n - 1) / max($cn - $c1, 1e-3)))") $((k1 / 1024)) $((kn / 1024))" >>"$OUT/lps"
  done
done

echo "| variant | file MB | dev accuracy | runtime records/s, wall (median (best) of $ROUNDS) | predict lines per CPU s (median of $ROUNDS) | peak RSS MB (1 line / $n lines) | command |"
echo "|---|---|---|---|---|---|---|"
for i in "${!NAMES[@]}"; do
  f=${FILES[$i]}
  case "$f" in
  *.kinf) a=$(acc "$f")
          rps=$(awk -v i="$i" '$1 == i {print $2}' "$OUT/rps" | sort -n | awk '{v[NR]=$1} END {if (NR) printf "%d (%d)", v[int((NR+1)/2)], v[NR]; else print "-"}') ;;
  *)      a=$(fasttext test "$f" "$DATA/dev.txt" | awk '/^P@1/{print $2}'); rps="-" ;;
  esac
  lps=$(awk -v i="$i" '$1 == i {print $2}' "$OUT/lps" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
  rss=$(awk -v i="$i" '$1 == i {print $3 " / " $4}' "$OUT/lps" | sort | tail -1)
  echo "| ${NAMES[$i]} | $(mb "$f") | $a | $rps | $lps | $rss | \`${CMDS[$i]//$OUT\//}\` |"
done
echo
echo "# outputs in $OUT"
