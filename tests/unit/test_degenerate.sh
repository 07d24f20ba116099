#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_degenerate.sh -- every model command with degenerate but valid inputs (issue 16): one
# record, one label, one feature, a model whose every feature was pruned away, texts with no
# feature at all; linear, embedding and hidden-layer models, one and two threads. Every command
# must succeed (or fail with a message, never a crash: under the sanitizer build UBSan and ASan
# stop on the first report), and every JSON it prints must parse with only finite numbers.
# Also the issue's own examples: a diverging training run exits non-zero and writes nothing;
# `predict --json` escapes a label such as a"b\c and uses the stream's field names.
set -u
. "$(dirname "$0")/cli_lib.sh" degenerate

# json_ok NAME FILE: every line of FILE (or the whole file with --whole) is JSON with finite numbers
json_ok() {
  python3 - "$@" <<'EOF'
import json, sys
def bad(c): raise ValueError("non-finite number " + c)
text = open(sys.argv[1], encoding="utf-8").read()
docs = [text] if len(sys.argv) > 2 else [l for l in text.splitlines() if l.strip()]
if not docs: sys.exit("no JSON at all")
for d in docs: json.loads(d, parse_constant=bad)
EOF
}
run() { # name, command...: exit 0 and no sanitizer report
  local name=$1; shift
  if "$@" >"$T/out" 2>"$T/err"; then ok "$name"; else no "$name (exit $?)" "$(tail -5 "$T/err")"; fi
}
jrun() { # name, command... : exit 0 and stdout JSON lines with finite numbers
  local name=$1; shift
  if "$@" >"$T/out" 2>"$T/err" && json_ok "$T/out" 2>"$T/jerr"; then ok "$name"
  else no "$name" "$(tail -3 "$T/err") $(tail -3 "$T/jerr" 2>/dev/null) $(head -c 300 "$T/out")"; fi
}

printf 'only\tword\n' >"$T/one.tsv"                       # 1 record, 1 label, 1 feature
printf 'a\tfoo\nb\tbar\n' >"$T/two.tsv"                    # 2 records, 2 labels, 1 feature each
printf 'word\n...\n\n  \t \nonly word\n' >"$T/texts.txt"   # incl. texts with no feature
printf 'a\t...\nb\t- -\n' >"$T/nofeat.tsv"               # records with no feature at all

# training needs two labels: one is refused with a message, not a crash
expect "train on 1 label is refused" 1 "need at least 2 distinct labels" \
  "$K" train -i "$T/one.tsv" -o "$T/one.kinf" --min-count 1 -q
for shape in "" "--dim 4" "--dim 4 --hidden 2"; do
  tag=${shape:-linear}; tag=${tag// /}
  for th in 1 2; do
    run "train $tag 2 records $th threads" "$K" train -i "$T/two.tsv" -o "$T/m2.kinf" --min-count 1 --epoch 2 -t "$th" --buckets 1024 -q $shape
  done
  run "train $tag with every feature under min-count" "$K" train -i "$T/two.tsv" -o "$T/m0.kinf" --epoch 1 -q $shape
  run "train $tag on texts with no feature" "$K" train -i "$T/nofeat.tsv" -o "$T/mn.kinf" --min-count 1 --epoch 1 -q $shape
  for m in m0 mn m2; do
    [ -s "$T/$m.kinf" ] || { no "$tag $m.kinf written"; continue; }
    run "inspect $tag $m" "$K" inspect "$T/$m.kinf" --labels
    jrun "eval --json $tag $m on 1 record" "$K" eval "$T/$m.kinf" "$T/one.tsv" --json -t 2
    jrun "predict --json $tag $m" "$K" predict "$T/$m.kinf" "$T/texts.txt" --json -k 16
    run "predict --fasttext $tag $m" "$K" predict "$T/$m.kinf" "$T/texts.txt" --fasttext -k 3 --batch 1
    [ "$(wc -l <"$T/out")" -eq 5 ] && ok "predict $tag $m: one line per input line" || no "predict $tag $m lines" "$(cat "$T/out")"
  done
  run "eval $tag (text) on 2 records" "$K" eval "$T/m2.kinf" "$T/two.tsv" -t 1
  jrun "bench --json $tag" "$K" bench runtime "$T/m2.kinf" "$T/texts.txt" --batches 1,3 --threads 1,2 --seconds 0.02 --json
  run "quantize $tag" "$K" quantize "$T/m2.kinf" -o "$T/q.kinf" -q
  jrun "predict q8 $tag" "$K" predict "$T/q.kinf" "$T/texts.txt" --json
  # prune to one row: one of the two records keeps no feature (both orders lead once);
  # --retrain then starts from a record with no kept feature (memcpy from NULL under UBSan)
  run "prune $tag to 1 row" "$K" prune "$T/m2.kinf" -o "$T/p.kinf" --keep-buckets 1 -q
  printf 'b\tbar\na\tfoo\n' >"$T/two-rev.tsv"
  for d in two two-rev; do
    run "prune --retrain $tag $d" "$K" prune "$T/m2.kinf" -o "$T/pr.kinf" --keep-buckets 1 --retrain "$T/$d.tsv" --epoch 1 -t 1 -q
    jrun "predict pruned+retrained $tag $d" "$K" predict "$T/pr.kinf" "$T/two.tsv" --json
  done
  run "prune $tag --sparsity" "$K" prune "$T/m2.kinf" -o "$T/ps.kinf" --sparsity 0.5 -q
  expect "prune $tag to no row is refused" 1 "would keep no embedding row" "$K" prune "$T/m2.kinf" -o "$T/ps.kinf" --sparsity 0.99
  run "quantize pruned $tag" "$K" quantize "$T/p.kinf" -o "$T/pq.kinf" -q
  jrun "eval pruned+q8 $tag" "$K" eval "$T/pq.kinf" "$T/two.tsv" --json
  run "distill $tag from 1 record" "$K" distill --teacher "$T/m2.kinf" --data "$T/one.tsv" -o "$T/s.kinf" --min-count 1 --epoch 1 -q --dim 2
  run "distill $tag unlabelled" "$K" distill --teacher "$T/m2.kinf" --unlabelled "$T/texts.txt" -o "$T/s2.kinf" --min-count 1 --epoch 1 -q
done

# issue 16's examples
head -300 "$SRC/tests/data/sections-train.tsv" >"$T/small.tsv"
expect "train with a diverging learning rate fails naming epoch and rate" 1 "diverged in epoch" \
  "$K" train -i "$T/small.tsv" -o "$T/div.kinf" --dim 16 --lr 1000 -t 1 --epoch 2 -q
[ ! -e "$T/div.kinf" ] && ok "a diverged run writes no model" || no "a diverged run wrote $T/div.kinf"
printf 'a"b\\c\tquoted thing\nx\ty z\n' >"$T/esc.tsv"
run "train with a label a\"b\\c" "$K" train -i "$T/esc.tsv" -o "$T/esc.kinf" --min-count 1 --epoch 2 -q
echo "quoted thing" | "$K" predict "$T/esc.kinf" --json -k 2 >"$T/esc.json" 2>"$T/err"
json_ok "$T/esc.json" && python3 -c '
import json, sys
d = json.loads(open(sys.argv[1]).read())
assert set(d) == {"label", "score", "topk"}, d
assert {t["label"] for t in d["topk"]} == {"a\"b\\c", "x"}, d' "$T/esc.json" \
  && ok "predict --json escapes a\"b\\c, fields label/score/topk" || no "predict --json escaping" "$(cat "$T/esc.json" "$T/err")"
# the issue's NaN model (a diverged run used to write one, then kinfer eval segfaulted on a NaN
# score): a valid model with one embedding weight set to NaN and the content hash recomputed is
# refused by every command that loads it, naming the tensor
python3 - "$T/m2.kinf" "$T/nan.kinf" <<'EOF'
import hashlib, struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack_from("<I", b, 8)[0]
for i in range(n):
    kind, dtype, rows, cols, off, size = struct.unpack_from("<IIIIQQ", b, 64 + 32 * i)
    if kind == 7 and dtype == 0:  # EMBED, f32
        struct.pack_into("<f", b, off + 4, float("nan"))
b[24:56] = hashlib.sha256(bytes(b[64:])).digest()
open(sys.argv[2], "wb").write(b)
EOF
for c in "eval $T/nan.kinf $T/two.tsv" "eval $T/nan.kinf $T/two.tsv --json" "predict $T/nan.kinf $T/texts.txt --json" "inspect $T/nan.kinf" \
         "quantize $T/nan.kinf -o $T/nanq.kinf" "prune $T/nan.kinf -o $T/nanp.kinf --keep-buckets 1"; do
  expect "${c%% *} on a model with a NaN weight is refused naming the tensor" 1 "embedding table: the value at row 0, column 1 is not a finite number" "$K" $c
done
printf 'bad\x1b[31m\tx\n' >"$T/badlabel.tsv"
expect "train refuses a label with ESC naming file:line" 1 "$T/badlabel.tsv:1: the label holds a control character" \
  "$K" train -i "$T/badlabel.tsv" -o "$T/bad.kinf" --min-count 1 -q
finish
