#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_auto_features.sh -- the trainer's automatic feature choice (train.h: auto_features,
# src/train/select.c; issue 12 target 5): on short UI strings in 20 languages
# (tests/data/langid-*.tsv) `kinfer train` with no flags picks char n-grams 1..4, says so
# in its progress output, records it in the model's hyperparameters (kinfer inspect) and
# beats the same training without the choice on held-out strings; on long English text
# (tests/data/sections-train.tsv) it keeps word n-grams; --minn/--maxn, --no-auto-features
# skip the trial, and so does small data (the model says why).
set -u
. "$(dirname "$0")/cli_lib.sh" auto-features
D="$SRC/tests/data"
# hyper FILE EXPR: evaluate a Python expression over h = META's hyperparameters (META is the
# last field of inspect's output, a JSON object over several lines)
hyper() {
  "$K" inspect "$1" | sed -n '/^meta\t/,$p' | sed '1s/^meta\t//' |
    python3 -c 'import json, sys; h = json.load(sys.stdin)["hyperparameters"]; print(eval(sys.argv[1]))' "$2"
}
acc() { "$K" eval "$1" "$2" --json --no-confusion | python3 -c 'import json, sys; print(json.load(sys.stdin)["accuracy"])'; }

# ---- many languages, short strings: char n-grams ----
"$K" train --input "$D/langid-train.tsv" --output "$T/lang.kinf" 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && grep -q '^Features: word n-grams 1..2 + char n-grams 1..4 (held-out accuracy' "$T/err" &&
  ok "langid: the progress output says char n-grams 1..4 were chosen" || no "langid: progress line ($rc)" "$(grep -v Epoch "$T/err")"
[ "$(hyper "$T/lang.kinf" '(h["minn"], h["maxn"], h["auto_features"]["ran"], h["auto_features"]["chosen"])')" = "(1, 4, True, 1)" ] &&
  ok "langid: inspect shows minn 1, maxn 4 and the trial's choice" || no "langid: hyperparameters" "$(hyper "$T/lang.kinf" h)"
[ "$(hyper "$T/lang.kinf" 'len(h["auto_features"]["candidates"]) == 2 and h["auto_features"]["held_out"] == 160')" = True ] &&
  ok "langid: both candidates and the held-out size recorded" || no "langid: candidates" "$(hyper "$T/lang.kinf" h)"
"$K" train -q --no-auto-features --input "$D/langid-train.tsv" --output "$T/lang0.kinf" 2>"$T/err" &&
  [ "$(hyper "$T/lang0.kinf" '(h["maxn"], "auto_features" in h)')" = "(0, False)" ] &&
  ok "langid: --no-auto-features trains word n-grams without a trial" || no "langid: --no-auto-features" "$(cat "$T/err")"
a1=$(acc "$T/lang.kinf" "$D/langid-dev.tsv") a0=$(acc "$T/lang0.kinf" "$D/langid-dev.tsv")
python3 -c "import sys; sys.exit(not ($a1 >= $a0 + 0.15))" &&
  ok "langid dev: the choice pays ($a1 with it, $a0 without)" || no "langid dev accuracy: $a1 with the choice, $a0 without"

# ---- long English text: word n-grams ----
"$K" train --input "$D/sections-train.tsv" --output "$T/sec.kinf" --epoch 5 2>"$T/err"; rc=$?
[ $rc -eq 0 ] && grep -q '^Features: word n-grams 1..2 (held-out accuracy' "$T/err" &&
  ok "sections: the progress output says word n-grams were kept" || no "sections: progress line ($rc)" "$(grep -v Epoch "$T/err")"
[ "$(hyper "$T/sec.kinf" '(h["minn"], h["maxn"], h["auto_features"]["ran"], h["auto_features"]["chosen"])')" = "(0, 0, True, 0)" ] &&
  ok "sections: inspect shows no char n-grams and the trial's choice" || no "sections: hyperparameters" "$(hyper "$T/sec.kinf" h)"

# ---- when the trial does not run ----
"$K" train -q --input "$D/langid-train.tsv" --output "$T/m.kinf" --minn 2 --maxn 3 --epoch 2 &&
  [ "$(hyper "$T/m.kinf" '(h["minn"], h["maxn"], "auto_features" in h)')" = "(2, 3, False)" ] &&
  ok "--minn/--maxn: the caller's settings, no trial" || no "--minn/--maxn" "$(hyper "$T/m.kinf" h)"
head -n 600 "$D/langid-train.tsv" >"$T/small.tsv"
"$K" train --input "$T/small.tsv" --output "$T/s.kinf" --epoch 2 2>"$T/err" &&
  ! grep -q '^Features:' "$T/err" &&
  [ "$(hyper "$T/s.kinf" '(h["auto_features"]["ran"], h["auto_features"]["why"])')" = "(False, 'fewer than 1000 labelled records')" ] &&
  ok "600 records: no trial, and why" || no "small data" "$(hyper "$T/s.kinf" h; cat "$T/err")"
"$K" train -q --input "$D/langid-train.tsv" --output "$T/q.kinf" --epoch 2 2>"$T/err" && [ ! -s "$T/err" ] &&
  ok "-q: the choice is not printed" || no "-q printed" "$(cat "$T/err")"

# ---- reproducible: the trial and two threads, twice (SOURCE_DATE_EPOCH: docs/training.md) ----
for r in 1 2; do
  SOURCE_DATE_EPOCH=1 "$K" train -q -t 2 --name langid --input "$D/langid-train.tsv" --output "$T/r$r.kinf" --epoch 3 ||
    no "reproducible run $r"
done
cmp -s "$T/r1.kinf" "$T/r2.kinf" &&
  ok "SOURCE_DATE_EPOCH, 2 threads, with the trial: two runs write the same file" || no "two runs differ" "$(cmp -l "$T/r1.kinf" "$T/r2.kinf" | head -5)"
[ "$(hyper "$T/r1.kinf" '(h["auto_features"]["ran"], any("seconds" in c for c in h["auto_features"]["candidates"]), h["threads"])')" = "(True, False, 2)" ] &&
  ok "and the trial's wall-clock times are left out" || no "reproducible META" "$(hyper "$T/r1.kinf" h)"
[ "$(hyper "$T/lang.kinf" 'all("seconds" in c for c in h["auto_features"]["candidates"])')" = True ] &&
  ok "without SOURCE_DATE_EPOCH the trial's times are recorded" || no "seconds missing" "$(hyper "$T/lang.kinf" h)"
finish
