#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_help.sh -- every command's help, walked from the top-level list: `kinfer CMD --help`,
# `-h` and `kinfer help CMD` print the same usage on stdout and exit 0, list -h/--help, and a
# wrong option is an error prefixed "kinfer CMD:" (exit 2); -V/--version/version; the man page
# holds every command's help. Then fastText's habits: -input/-output/... spellings, a fastText
# option kinfer lacks names what to use, `kinfer test MODEL DATA [K]`, `predict MODEL FILE K`.
set -u
. "$(dirname "$0")/cli_lib.sh" help

top=$("$K" --help); rc=$?
[ $rc -eq 0 ] && grep -q '^Usage: kinfer <command>' <<<"$top" && ok "kinfer --help" || no "kinfer --help ($rc)" "$top"
[ "$("$K" -h)" = "$top" ] && [ "$("$K" help)" = "$top" ] && ok "-h and help print the same" || no "-h / help differ"
grep -q -- '-V, --version' <<<"$top" && ok "--help lists -V, --version" || no "--help lists -V, --version"
for v in -V --version version; do
  out=$("$K" $v); [ $? -eq 0 ] && grep -Eq '^kinfer [0-9]+\.[0-9]+\.[0-9]+$' <<<"$out" && ok "kinfer $v" || no "kinfer $v" "$out"
done
expect "unknown command" 2 'kinfer: unknown command "frobnicate"' "$K" frobnicate
expect "help of an unknown command" 2 'kinfer: unknown command "frobnicate"' "$K" help frobnicate

cmds=$(sed -n '/^Commands:/,/^$/p' <<<"$top" | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p')
[ "$(wc -l <<<"$cmds")" -ge 17 ] && ok "the command list ($(wc -l <<<"$cmds") commands)" || no "the command list" "$cmds"
for c in $cmds; do
  out=$("$K" "$c" --help 2>"$T/err"); rc=$?
  if [ $rc -eq 0 ] && [ ! -s "$T/err" ] && grep -q "^Usage: kinfer $c" <<<"$out"; then ok "$c --help"; else no "$c --help ($rc)" "$out$(cat "$T/err")"; fi
  grep -Eq -- '^ +-h, --help ' <<<"$out" && ok "$c --help lists -h, --help" || no "$c --help lists -h, --help" "$out"
  [ "$("$K" "$c" -h 2>&1)" = "$out" ] && ok "$c -h = $c --help" || no "$c -h differs"
  [ "$("$K" help "$c" 2>&1)" = "$out" ] && ok "help $c = $c --help" || no "help $c differs"
  # a wrong option: "kinfer CMD: ..." first, exit 2 (model and deployment take a subcommand)
  case $c in model|deployment) bad=(--no-such-option) ;; inspect) bad=(m.kinf --no-such-option) ;; *) bad=(--no-such-option) ;; esac
  "$K" "$c" "${bad[@]}" >/dev/null 2>"$T/err"; rc=$?
  if [ $rc -eq 2 ] && head -1 "$T/err" | grep -q "^kinfer $c: "; then ok "$c: a wrong option is 'kinfer $c: ...', exit 2"; else no "$c wrong option ($rc)" "$(cat "$T/err")"; fi
done

# the man page is generated from the same text (CMake target man, installed as kinfer.1)
if [ -n "${KINFER_MAN:-}" ] && [ -f "$KINFER_MAN" ]; then
  for c in $cmds; do
    first=$("$K" "$c" --help | head -1 | sed 's/-/\\-/g')
    grep -qF -- "$first" "$KINFER_MAN" || { no "man page has $c's usage" "$first"; continue; }
  done
  ok "the man page holds every command's usage line"
  if command -v man >/dev/null && man -l "$KINFER_MAN" >/dev/null 2>&1; then ok "man -l renders kinfer.1"; else ok "man not installed: rendering skipped"; fi
else
  no "the man page is built (KINFER_MAN=${KINFER_MAN:-unset})"
fi

# fastText habits
D="$SRC/tests/data"
head -n 120 "$D/sections-train.tsv" >"$T/small.tsv"
"$K" train -input "$T/small.tsv" -output "$T/ft.kinf" -epoch 3 -lr 5 -wordNgrams 2 -dim 0 -thread 1 -minCount 1 -bucket 65536 2>"$T/err"
rc=$?; [ $rc -eq 0 ] && [ -s "$T/ft.kinf" ] && ok "train with fastText's -input -output -epoch -lr -wordNgrams -dim -thread -minCount -bucket" || no "fastText spellings ($rc)" "$(cat "$T/err")"
"$K" inspect "$T/ft.kinf" | grep -q '"epochs": 3' && ok "-epoch 3 reached the model" || no "-epoch 3 in META" "$("$K" inspect "$T/ft.kinf" | tail -1)"
"$K" train -input "$T/small.tsv" -output "$T/ft2.kinf" -minn 2 -maxn 4 -epoch 1 -thread 1 -q 2>"$T/err" && ok "train -minn -maxn" || no "train -minn -maxn" "$(cat "$T/err")"
expect "-loss names what kinfer does instead" 2 "kinfer train: fastText's -loss has no kinfer equivalent: kinfer trains a softmax" "$K" train -input "$T/small.tsv" -output "$T/x.kinf" -loss hs
expect "-autotune-validation points at --dev" 2 "--dev FILE" "$K" train -input "$T/small.tsv" -output "$T/x.kinf" -autotune-validation "$T/small.tsv"
expect "an option's value is not rewritten" 1 "-input: No such file" "$K" train --input -input --output "$T/x.kinf"

cut -f2 "$D/sections-dev.tsv" | head -n 20 >"$T/new.txt"
out=$("$K" predict "$T/ft.kinf" "$T/new.txt" 3); rc=$?
[ $rc -eq 0 ] && [ "$(wc -l <<<"$out")" -eq 20 ] && [ "$(awk -F'\t' '{print NF}' <<<"$out" | sort -u)" = 6 ] && ok "predict MODEL FILE 3: 3 labels per line" || no "predict MODEL FILE K ($rc)" "$out"
[ "$out" = "$("$K" predict "$T/ft.kinf" "$T/new.txt" -k 3)" ] && ok "predict MODEL FILE 3 = -k 3" || no "predict K and -k differ"
expect "predict: K twice" 2 "K given twice" "$K" predict "$T/ft.kinf" "$T/new.txt" 3 -k 2
expect "predict: a bad K" 2 "kinfer predict: K: expected a whole number" "$K" predict "$T/ft.kinf" "$T/new.txt" x

div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", a / b }'; }
# kinfer test: N, P@K, R@K as fastText prints them, checked against predict's answers
head -n 50 "$D/sections-dev.tsv" >"$T/dev.tsv"
out=$("$K" test "$T/ft.kinf" "$T/dev.tsv"); rc=$?
hits=$(paste <(cut -f1 "$T/dev.tsv") <("$K" predict "$T/ft.kinf" "$T/dev.tsv" | cut -f1) | awk -F'\t' '$1 == $2' | wc -l)
want=$(printf 'N\t50\nP@1\t%.3f\nR@1\t%.3f' "$(div "$hits" 50)" "$(div "$hits" 50)")
[ $rc -eq 0 ] && [ "$out" = "$want" ] && ok "test MODEL DATA: N, P@1, R@1 ($hits of 50)" || no "kinfer test ($rc)" "$out
want:
$want"
hits2=$(paste <(cut -f1 "$T/dev.tsv") <("$K" predict "$T/ft.kinf" "$T/dev.tsv" 2)  | awk -F'\t' '$1 == $2 || $1 == $4' | wc -l)
out=$("$K" test "$T/ft.kinf" "$T/dev.tsv" 2)
want=$(printf 'N\t50\nP@2\t%.3f\nR@2\t%.3f' "$(div "$hits2" 100)" "$(div "$hits2" 50)")
[ "$out" = "$want" ] && ok "test MODEL DATA 2: P@2 over 100 predictions, R@2 over 50 labels" || no "kinfer test K=2" "$out
want:
$want"
# a fastText line with two labels: both count as true labels (R over 2, P over K)
l1=$(head -1 "$T/dev.tsv" | cut -f1)
printf '__label__%s __label__zz-not-in-model %s\n' "$l1" "$(head -1 "$T/dev.tsv" | cut -f2)" >"$T/multi.txt"
p1=$("$K" predict "$T/ft.kinf" "$T/multi.txt" | cut -f1)
h=$([ "$p1" = "$l1" ] && echo 1 || echo 0)
out=$("$K" test "$T/ft.kinf" "$T/multi.txt")
want=$(printf 'N\t1\nP@1\t%.3f\nR@1\t%.3f' "$h" "$(div "$h" 2)")
[ "$out" = "$want" ] && ok "test: every __label__ of a line is a true label" || no "multi-label test" "$out
want:
$want"
expect "test without DATA" 2 "kinfer test: expected MODEL DATA [K]" "$K" test "$T/ft.kinf"
finish
