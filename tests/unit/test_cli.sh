#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_cli.sh -- the CLI as a user meets it: --help everywhere, errors that name the file and
# the line, train -> predict/eval/inspect on the bundled sample, corrupt models refused.
set -u
. "$(dirname "$0")/cli_lib.sh" cli

for c in train eval predict bench inspect; do
  expect "$c --help" 0 "" "$K" "$c" --help
  "$K" "$c" --help | grep -q "Usage: kinfer $c" && ok "$c --help prints usage" || no "$c --help prints usage"
done
expect "unknown command" 2 "unknown command" "$K" frobnicate
expect "train without args" 2 "--input and --output are required" "$K" train
expect "missing input file" 1 "$T/nope.tsv: No such file or directory" "$K" train --input "$T/nope.tsv" --output "$T/m.kinf"
printf 'libs\tone\ndoc\ttwo\nno tab on this line\n' >"$T/bad.tsv"
expect "malformed TSV names file and line" 1 "$T/bad.tsv:3: no tab" "$K" train --input "$T/bad.tsv" --output "$T/m.kinf"
expect "bad option value" 2 "--epoch: expected a whole number" "$K" train --input x --output y --epoch abc

# train on the bundled sample (quiet, then with progress to a non-terminal: one line per epoch)
"$K" train --input "$SRC/tests/data/sections-train.tsv" --output "$T/m.kinf" --epoch 3 2>"$T/train.log"
[ -s "$T/m.kinf" ] && ok "train writes a model" || no "train writes a model" "$(cat "$T/train.log")"
[ "$(grep -c '^Epoch' "$T/train.log")" -eq 3 ] && grep -q 'words/sec' "$T/train.log" && ok "progress: one line per epoch off a terminal" || no "progress lines" "$(cat "$T/train.log")"

# predict: stdin, TSV input, -k
n=$(cut -f2 "$SRC/tests/data/sections-dev.tsv" | head -n 37 | "$K" predict "$T/m.kinf" | wc -l)
[ "$n" -eq 37 ] && ok "predict: one line out per line in" || no "predict line count ($n)"
line=$(head -n 1 "$SRC/tests/data/sections-dev.tsv" | "$K" predict "$T/m.kinf" - -k 3)
[ "$(awk -F'\t' '{print NF}' <<<"$line")" -eq 6 ] && ok "predict -k 3 prints 3 label/prob pairs" || no "predict -k 3" "$line"
json=$(echo "a python module for parsing" | "$K" predict "$T/m.kinf" --json)
grep -q '"label":"python"' <<<"$json" && ok "predict --json (python module -> python)" || no "predict --json" "$json"
expect "predict on missing file" 1 "$T/none.txt: No such file" "$K" predict "$T/m.kinf" "$T/none.txt"

# eval
acc=$("$K" eval "$T/m.kinf" "$SRC/tests/data/sections-dev.tsv" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["accuracy"] if len(d["per_class"])==51 and len(d["confusion"])==52 else -1)')
python3 -c "import sys; sys.exit(0 if float('$acc') > 0.6 else 1)" && ok "eval --json: accuracy $acc, per-class and confusion" || no "eval --json ($acc)"
"$K" eval "$T/m.kinf" "$SRC/tests/data/sections-dev.tsv" 2>/dev/null | grep -q '^macro_f1' && ok "eval text report" || no "eval text report"

# inspect and corrupt models
"$K" inspect "$T/m.kinf" | grep -q '^lineage	train' && ok "inspect shows lineage" || no "inspect"
head -c 1000 "$T/m.kinf" >"$T/trunc.kinf"
expect "truncated model refused" 1 "$T/trunc.kinf: truncated" "$K" predict "$T/trunc.kinf" "$SRC/tests/data/sections-dev.tsv"
cp "$T/m.kinf" "$T/flip.kinf"; printf '\x01' | dd of="$T/flip.kinf" bs=1 seek=5000 conv=notrunc 2>/dev/null
expect "corrupt model refused" 1 "checksum mismatch" "$K" eval "$T/flip.kinf" "$SRC/tests/data/sections-dev.tsv"
echo "not a model" >"$T/text.kinf"
expect "non-model refused" 1 "truncated: 12 bytes" "$K" inspect "$T/text.kinf"

# bench
"$K" bench runtime "$T/m.kinf" "$SRC/tests/data/sections-dev.tsv" --batches 1,64 --threads 1 --seconds 0.1 --json >"$T/bench.json"
[ "$(grep -c records_per_sec "$T/bench.json")" -eq 2 ] && ok "bench runtime --json" || no "bench runtime" "$(cat "$T/bench.json")"

finish
