#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench_ab.sh OLD_KINFER NEW_KINFER -- two kinfer binaries and fastText, alternated round by
# round in one run (docs/benchmarks.md): on a shared machine only figures measured side by side
# compare.
#   1. CLI: `fasttext predict FT_BIN LINES` against `kinfer predict MODEL LINES` (whole processes);
#   2. runtime: `kinfer bench runtime MODEL DEV --batches 256 --threads 1 --seconds 3`;
#   3. the fastText import, when FT_KINF is set: `kinfer predict FT_KINF LINES` against
#      `fasttext predict FT_BIN LINES`, each also on one line (the model load), so that the
#      prediction alone compares (loads subtracted) as well as the whole processes.
# Environment: FT_BIN (a fastText .bin), MODEL (a kinfer model), LINES (e.g. dev.txt x 50),
# DEV (dev.tsv), FT_KINF (optional: FT_BIN imported with `kinfer import fasttext`), ROUNDS (3).
set -euo pipefail
old=${1:?usage: bench_ab.sh OLD_KINFER NEW_KINFER}
new=${2:?usage: bench_ab.sh OLD_KINFER NEW_KINFER}
: "${FT_BIN:?FT_BIN: a fastText .bin}" "${MODEL:?MODEL: a kinfer model}" "${LINES:?LINES: a text file}" "${DEV:?DEV: dev.tsv}"
rounds=${ROUNDS:-3}
one=$(mktemp /tmp/kinfer-ab.XXXXXX)
trap 'rm -f "$one"' EXIT
head -n 1 "$LINES" >"$one"
t() { # wall seconds of a command, output discarded
  local s e
  s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N)
  printf '%.2f' "$(echo "$e - $s" | bc)"
}
x() { printf '%.1f' "$(echo "$1" | bc -l)"; }
us() { "$1" bench runtime "$MODEL" "$DEV" --batches 256 --threads 1 --seconds 3 2>&1 | awk '/^ *1 +256 /{print $4}'; }
echo "## CLI: fasttext predict $(basename "$FT_BIN") vs kinfer predict $(basename "$MODEL"), $(wc -l <"$LINES") lines, whole processes"
for r in $(seq "$rounds"); do
  ft=$(t fasttext predict "$FT_BIN" "$LINES"); o=$(t "$old" predict "$MODEL" "$LINES"); n=$(t "$new" predict "$MODEL" "$LINES")
  echo "round $r: fasttext $ft s | old $o s ($(x "$ft / $o")x) | new $n s ($(x "$ft / $n")x)"
done
echo "## runtime: kinfer bench, batch 256, 1 thread (us/record)"
for r in $(seq "$rounds"); do
  echo "round $r: old $(us "$old") | new $(us "$new")"
done
[ -n "${FT_KINF:-}" ] || exit 0
echo "## the fastText import: kinfer predict $(basename "$FT_KINF") vs fasttext predict $(basename "$FT_BIN") (load: one line)"
for r in $(seq "$rounds"); do
  ft=$(t fasttext predict "$FT_BIN" "$LINES"); fl=$(t fasttext predict "$FT_BIN" "$one")
  o=$(t "$old" predict "$FT_KINF" "$LINES"); ol=$(t "$old" predict "$FT_KINF" "$one")
  n=$(t "$new" predict "$FT_KINF" "$LINES"); nl=$(t "$new" predict "$FT_KINF" "$one")
  echo "round $r: fasttext $ft s (load $fl) | old $o s (load $ol): $(x "($ft - $fl) / ($o - $ol)")x loads subtracted, $(x "$ft / $o")x whole | new $n s (load $nl): $(x "($ft - $fl) / ($n - $nl)")x, $(x "$ft / $n")x"
done
