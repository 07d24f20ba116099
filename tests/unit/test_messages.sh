#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_messages.sh -- mistakes that used to pass silently or late: a header line in the data
# (skipped with a notice, not learnt as a label), a KINFER_* variable with a typo (refused like
# an unknown key), a misspelt or invalid kafka.* property (exit 2 before the model is loaded),
# serve without --config (the message says --config). And honest, compact models: a small
# model stores the compact bucket map, and inspect reports the weights, map and shape as they
# are (dim 0 for a linear model, no "pruned" for a model never pruned).
set -u
. "$(dirname "$0")/cli_lib.sh" messages
D="$SRC/tests/data"

# ---- a header line ----
{ printf 'label\ttext\n'; head -n 60 "$D/sections-train.tsv"; } >"$T/h.tsv"
"$K" train -q --input "$T/h.tsv" --output "$T/h.kinf" --epoch 2 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && grep -q "^kinfer train: $T/h.tsv:1: skipped the header line" "$T/err" && ok "train: a header line is skipped with a notice naming file:line" || no "train header notice ($rc)" "$(cat "$T/err")"
"$K" inspect "$T/h.kinf" --labels | grep -q $'^label\t[0-9]*\tlabel$' && no "the header became a label" || ok "the header did not become a label"
[ "$("$K" inspect "$T/h.kinf" | sed -n 's/^labels\t//p')" = "$(head -n 60 "$D/sections-train.tsv" | cut -f1 | sort -u | wc -l)" ] && ok "labels: exactly those of the records" || no "label count" "$("$K" inspect "$T/h.kinf" | head -8)"
{ printf 'Category\tSentence\n'; head -n 20 "$D/sections-dev.tsv"; } >"$T/h2.tsv"
"$K" test "$T/h.kinf" "$T/h2.tsv" >"$T/out" 2>"$T/err"
grep -q $'^N\t20$' "$T/out" && grep -q "kinfer test: $T/h2.tsv:1: skipped the header line" "$T/err" && ok "test: Category<TAB>Sentence skipped, N = 20" || no "test header" "$(cat "$T/out" "$T/err")"
"$K" eval "$T/h.kinf" "$T/h2.tsv" >/dev/null 2>"$T/err" && grep -q "kinfer eval: $T/h2.tsv:1: skipped the header line" "$T/err" && ok "eval: the same notice" || no "eval header" "$(cat "$T/err")"
{ head -n 5 "$D/sections-train.tsv"; printf 'label\ttext\n'; } >"$T/h3.tsv"
"$K" train -q --input "$T/h3.tsv" --output "$T/h3.kinf" --epoch 1 --min-count 1 2>"$T/err"
"$K" inspect "$T/h3.kinf" --labels | grep -q $'\tlabel$' && ok "only the first line can be a header" || no "a later label<TAB>text line was dropped" "$(cat "$T/err")"

# ---- configuration errors: exit 2, before anything is loaded ----
base=(-X kafka.bootstrap.servers=127.0.0.1:1 -X input.topic=in -X output.topic=out -X "model.path=$T/no-such-model.kinf")
KINFER_INPUT_TOPC=x "$K" serve "${base[@]}" >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 2 ] && grep -q 'unknown configuration variable KINFER_INPUT_TOPC (did you mean KINFER_INPUT_TOPIC' "$T/err" && ok "KINFER_INPUT_TOPC: refused, exit 2, names the variable it resembles" || no "env typo ($rc)" "$(cat "$T/err")"
KINFER_KAFKA_BOOTSTRAP_SERVER=x "$K" serve "${base[@]}" >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 2 ] && grep -q 'KINFER_KAFKA_BOOTSTRAP_SERVERS' "$T/err" && ok "KINFER_KAFKA_BOOTSTRAP_SERVER: refused, exit 2" || no "kafka env typo ($rc)" "$(cat "$T/err")"
KINFER_FROBNICATE=1 "$K" serve "${base[@]}" >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 2 ] && grep -q 'unknown configuration variable KINFER_FROBNICATE: not the variable of a key' "$T/err" && ok "KINFER_FROBNICATE (far from any key): refused, exit 2" || no "far env name ($rc)" "$(cat "$T/err")"
KINFER_KAFKA_HEAP=1g KINFER_SKIP_ASAN=1 KINFER_MIGRATIONS_DIR=/nonexistent "$K" serve "${base[@]}" --dump-config >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && ok "kafka.sh's KINFER_KAFKA_HEAP, KINFER_SKIP_*, KINFER_MIGRATIONS_DIR are not configuration" || no "script vars ($rc)" "$(cat "$T/err")"
KINFER_BIN=x KINFER_TEST_ANYTHING=y KINFER_PG_DIR=z "$K" serve "${base[@]}" --dump-config >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && ok "other programs' KINFER_ variables (KINFER_BIN, KINFER_TEST_*, KINFER_PG_DIR) are left alone" || no "other KINFER_ vars ($rc)" "$(cat "$T/err")"
KINFER_INPUT_TOPIC=fromenv "$K" serve "${base[@]}" --dump-config 2>/dev/null | grep -q '^input.topic=fromenv' && ok "KINFER_INPUT_TOPIC still sets input.topic" || no "KINFER_INPUT_TOPIC"
"$K" serve "${base[@]}" -X kafka.bootstrap.server=x >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 2 ] && grep -q 'kafka.bootstrap.server: No such configuration property' "$T/err" && ! grep -q 'no-such-model' "$T/err" && ok "-X kafka.bootstrap.server=x: exit 2 before the model is loaded" || no "kafka property typo ($rc)" "$(cat "$T/err")"
"$K" serve "${base[@]}" -X kafka.consumer.fetch.wait.max.ms=soon >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 2 ] && grep -q 'fetch.wait.max.ms' "$T/err" && ok "an invalid kafka.consumer.* value: exit 2" || no "kafka value ($rc)" "$(cat "$T/err")"
"$K" serve "${base[@]}" >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q 'no-such-model.kinf' "$T/err" && ok "a valid configuration gets as far as loading the model (exit 1, the file named)" || no "valid config ($rc)" "$(cat "$T/err")"
"$K" serve >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- '--config' "$T/err" && ok "serve without --config: exit 2, mentions --config" || no "serve without --config ($rc)" "$(cat "$T/err")"
# ---- compact, honest models ----
head -n 90 "$D/sections-train.tsv" >"$T/s90.tsv"
"$K" train -q --input "$T/s90.tsv" --output "$T/small.kinf" --epoch 3 --threads 1
"$K" train -q --input "$T/s90.tsv" --output "$T/dense.kinf" --epoch 3 --threads 1 --dense-map
size=$(stat -c %s "$T/small.kinf"); dsize=$(stat -c %s "$T/dense.kinf")
[ "$size" -lt 1000000 ] && [ "$dsize" -gt 8000000 ] && ok "90 lines: $size bytes with the default map, $dsize with --dense-map" || no "model sizes $size / $dsize"
cmp -s <("$K" predict "$T/small.kinf" "$D/sections-dev.tsv" 3) <("$K" predict "$T/dense.kinf" "$D/sections-dev.tsv" 3) && ok "both maps give the same predictions" || no "the maps' predictions differ"
"$K" inspect "$T/small.kinf" >"$T/i.txt"
grep -q $'^bucket_map	rank index' "$T/i.txt" && grep -q $'^weights	f32$' "$T/i.txt" && ok "inspect: weights f32, bucket_map rank index" || no "inspect map" "$(cat "$T/i.txt")"
grep -q $'^dim	0$' "$T/i.txt" && grep -q '"dim": 0' "$T/i.txt" && grep -Eq $'^shape	[0-9]+ rows x [0-9]+ labels$' "$T/i.txt" && ok "inspect: a linear model says dim 0, as its hyperparameters, and rows x labels" || no "inspect shape" "$(cat "$T/i.txt")"
grep -qi 'pruned' <(grep -v '^meta' "$T/i.txt") && no "inspect says pruned for a model never pruned" "$(cat "$T/i.txt")" || ok "inspect does not say pruned"
"$K" inspect "$T/dense.kinf" | grep -q $'^bucket_map	dense (8388608 bytes)' && ok "inspect: --dense-map stores 4 bytes per bucket" || no "inspect dense"
"$K" train -q --input "$T/s90.tsv" --output "$T/emb.kinf" --epoch 1 --threads 1 --dim 8
"$K" inspect "$T/emb.kinf" | grep -q $'^dim	8$' && "$K" inspect "$T/emb.kinf" | grep -Eq $'^shape	[0-9]+ rows x 8 dim -> 0 hidden layer\(s\) -> [0-9]+ labels$' && ok "inspect: an embedding model says dim 8" || no "inspect embedding" "$("$K" inspect "$T/emb.kinf" | head -16)"
"$K" quantize "$T/small.kinf" --output "$T/q.kinf" --dense-map -q && "$K" inspect "$T/q.kinf" | grep -q $'^bucket_map	dense' && ok "quantize --dense-map of a compact model stores the dense map" || no "quantize --dense-map"
finish
