#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_compress_cli.sh -- quantize, prune and distill as a user meets them: --help, errors that
# name the file, and a chain train -> prune -> quantize -> distill on the bundled sample whose
# every step `kinfer inspect` shows with its parent's sha256.
set -u
. "$(dirname "$0")/cli_lib.sh" compress-cli
sha() { "$K" inspect "$1" | awk -F'\t' '$1 == "sha256" {print $2}'; }
parent() { "$K" inspect "$1" | awk -F'\t' '$1 == "parent" {print $2}'; }
method() { "$K" inspect "$1" | awk -F'\t' '$1 == "lineage" {print $2}'; }

for c in quantize prune distill; do
  "$K" "$c" --help | grep -q "Usage: kinfer $c" && ok "$c --help prints usage" || no "$c --help prints usage"
done
expect "quantize without output" 2 "expected IN and --output OUT" "$K" quantize "$T/m.kinf"
expect "prune without a size" 2 "give --keep-buckets N or --sparsity S" "$K" prune "$T/m.kinf" --output "$T/p.kinf"
expect "prune: missing model names the file" 1 "$T/nope.kinf: No such file or directory" "$K" prune "$T/nope.kinf" --output "$T/p.kinf" --keep-buckets 10
expect "prune: bad sparsity" 2 "--sparsity: expected a number" "$K" prune "$T/m.kinf" --output "$T/p.kinf" --sparsity 2
expect "distill without teacher" 2 "--teacher, --output and --data or --unlabelled are required" "$K" distill --data x --output y

D="$SRC/tests/data"
"$K" train --input "$D/sections-train.tsv" --output "$T/m.kinf" --buckets 131072 --epoch 4 -q
[ -s "$T/m.kinf" ] && ok "train" || no "train"
expect "distill: missing data names the file" 1 "$T/nope.tsv: No such file or directory" "$K" distill --teacher "$T/m.kinf" --data "$T/nope.tsv" --output "$T/s.kinf"
"$K" prune "$T/m.kinf" --output "$T/p.kinf" --keep-buckets 4000 -q && ok "prune" || no "prune"
"$K" quantize "$T/p.kinf" --output "$T/q.kinf" -q && ok "quantize" || no "quantize"
expect "quantize twice is refused" 1 "already quantized" "$K" quantize "$T/q.kinf" --output "$T/qq.kinf"
[ ! -e "$T/qq.kinf" ] && ok "refused quantize writes nothing" || no "refused quantize wrote a file"
cut -f2 "$D/sections-train.tsv" >"$T/plain.txt"
"$K" distill --teacher "$T/q.kinf" --data "$D/sections-train.tsv" --unlabelled "$T/plain.txt" --output "$T/s.kinf" \
  --dim 8 --lr 0.1 --epoch 2 --buckets 65536 -q && ok "distill" || no "distill"

[ "$(method "$T/p.kinf")" = prune ] && [ "$(parent "$T/p.kinf")" = "pruned_from m $(sha "$T/m.kinf")" ] &&
  ok "prune lineage names the trained model" || no "prune lineage" "$(parent "$T/p.kinf")"
[ "$(method "$T/q.kinf")" = quantize ] && [ "$(parent "$T/q.kinf")" = "quantized_from m $(sha "$T/p.kinf")" ] &&
  ok "quantize lineage names the pruned model" || no "quantize lineage" "$(parent "$T/q.kinf")"
[ "$(method "$T/s.kinf")" = distill ] && [ "$(parent "$T/s.kinf")" = "distilled_from m $(sha "$T/q.kinf")" ] &&
  ok "distill lineage names the teacher" || no "distill lineage" "$(parent "$T/s.kinf")"
"$K" inspect "$T/q.kinf" | grep -q '^weights	q8$' && ok "quantized weights q8" || no "quantized weights"
a=$("$K" eval "$T/m.kinf" "$D/sections-dev.tsv" --json --no-confusion | sed 's/.*"accuracy": \([0-9.]*\).*/\1/')
b=$("$K" eval "$T/q.kinf" "$D/sections-dev.tsv" --json --no-confusion | sed 's/.*"accuracy": \([0-9.]*\).*/\1/')
awk -v a="$a" -v b="$b" 'BEGIN {exit !(b >= a - 0.03)}' && ok "prune+quantize keeps accuracy ($a -> $b)" || no "accuracy $a -> $b"

finish
