#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_fasttext.sh -- kinfer import fasttext against the fasttext CLI (issue 14 item 4): small
# models trained here on the bundled sample (softmax, hs, ns, ova; word n-grams; char n-grams;
# quantized .ftz: plain, qnorm + cutoff (pruned), qout on a 300-label model), imported, and
# `kinfer predict --fasttext` compared with `fasttext predict-prob` on every line: top-1 agrees
# on >= 99.9% of the lines and every probability both print is within 1e-4. Then lineage
# (imported_from the file's sha256), quantize and prune of an imported model, and hostile files
# (wrong magic, unsupported version, truncation at many offsets, absurd counts, trailing bytes,
# a cbow model) refused with messages naming the problem. About 1 min of CPU (6 min on the loaded 2-core machine).
set -u
. "$(dirname "$0")/cli_lib.sh" fasttext
command -v fasttext >/dev/null || { echo "not ok - the fasttext CLI is missing (deploy/install-test-deps.sh installs it)"; exit 1; }
D="$SRC/tests/data"
CMP="$SRC/tests/unit/ft_compare.py"
awk -F'\t' '{print "__label__"$1" "$2}' "$D/sections-train.tsv" >"$T/train.txt"
awk -F'\t' '{print "__label__"$1" "$2}' "$D/sections-dev.tsv" >"$T/dev.txt"
FT="-epoch 5 -lr 0.5 -dim 16 -bucket 50000 -thread 1 -seed 1 -verbose 0"

compare() { # name model-file kinf test-file
  fasttext predict-prob "$2" "$4" 3 >"$T/$1.ft" 2>/dev/null
  "$K" predict "$3" "$4" 3 --fasttext >"$T/$1.ki"
  local out
  if out=$(python3 "$CMP" "$T/$1.ft" "$T/$1.ki" 0.999 1e-4); then ok "$1: $out"; else no "$1" "$out"; fi
}
model() { # name fasttext-options...
  local n=$1; shift
  # shellcheck disable=SC2086
  fasttext supervised -input "$T/train.txt" -output "$T/$n" $FT "$@" >/dev/null 2>&1 || { no "$n: fasttext supervised"; return 1; }
  "$K" import fasttext "$T/$n.bin" --output "$T/$n.kinf" -q || { no "$n: import"; return 1; }
  compare "$n" "$T/$n.bin" "$T/$n.kinf" "$T/dev.txt"
}
model softmax -wordNgrams 2
model hs -loss hs -wordNgrams 2
model ns -loss ns -neg 5 -wordNgrams 2
model ova -loss ova
model char -minn 2 -maxn 5 -wordNgrams 2
model hs_char3 -loss hs -wordNgrams 3 -minn 3 -maxn 3

ftz() { # name base-model fasttext-quantize-options...
  local n=$1 b=$2; shift 2
  cp "$T/$b.bin" "$T/$n.bin"
  fasttext quantize -input "$T/train.txt" -output "$T/$n" "$@" >/dev/null 2>&1 || { no "$n: fasttext quantize"; return 1; }
  "$K" import fasttext "$T/$n.ftz" --output "$T/$n.kinf" -q || { no "$n: import"; return 1; }
  compare "$n" "$T/$n.ftz" "$T/$n.kinf" "${TEST_FILE:-$T/dev.txt}"
}
ftz char_ftz char -dsub 2
ftz char_ftz_qnorm_cutoff char -qnorm -cutoff 20000 -dsub 2
ftz hs_ftz_cutoff hs -cutoff 5000
# qout needs at least 256 output rows: a 300-label model (labels by line number), tested on its
# own training lines
awk -F'\t' '{print "__label__c" NR%300 " " $2}' "$D/sections-train.tsv" >"$T/many.txt"
head -n 500 "$T/many.txt" >"$T/many-test.txt"
# shellcheck disable=SC2086
fasttext supervised -input "$T/many.txt" -output "$T/many" -epoch 10 -lr 1.0 -dim 16 -bucket 20000 -wordNgrams 2 \
  -thread 1 -seed 1 -verbose 0 >/dev/null 2>&1
fasttext quantize -input "$T/many.txt" -output "$T/many" -qnorm -qout -cutoff 5000 -dsub 2 >/dev/null 2>&1
"$K" import fasttext "$T/many.ftz" --output "$T/many.kinf" -q && compare many_ftz_qout "$T/many.ftz" "$T/many.kinf" "$T/many-test.txt" ||
  no "many_ftz_qout: import"

# ---- lineage, inspect, quantize, prune ----
sha=$(sha256sum "$T/softmax.bin" | cut -d' ' -f1)
"$K" inspect "$T/softmax.kinf" | grep -qF "imported_from softmax.bin $sha" &&
  ok "lineage: imported_from the .bin's sha256" || no "lineage" "$("$K" inspect "$T/softmax.kinf" | grep -i parent)"
"$K" inspect "$T/softmax.kinf" | grep -q '"featurizer": "fasttext"' && ok "inspect shows the fasttext featurizer" ||
  no "inspect: featurizer"
"$K" quantize "$T/char.kinf" --output "$T/char-q8.kinf" -q && ok "quantize an imported model" || no "quantize"
"$K" predict "$T/char-q8.kinf" "$T/dev.txt" 3 --fasttext >"$T/q8.ki"
out=$(python3 "$CMP" "$T/char.ft" "$T/q8.ki" 0.97 0.02) && ok "int8 imported model: $out" || no "int8 imported model" "$out"
"$K" prune "$T/char.kinf" --output "$T/char-pruned.kinf" --keep-buckets 20000 -q && ok "prune an imported model" || no "prune"
"$K" predict "$T/char-pruned.kinf" "$T/dev.txt" 1 >/dev/null && ok "the pruned model predicts" || no "pruned predict"
echo "a python module for parsing yaml files" | "$K" predict "$T/hs.kinf" - --json | grep -q '"label"' &&
  ok "predict --json from stdin" || no "predict --json"

# ---- hostile files ----
B="$T/softmax.bin"
size=$(stat -c %s "$B")
expect "--help" 0 "" "$K" import --help
"$K" import --help | grep -q "Usage: kinfer import fasttext" && ok "--help prints usage" || no "--help prints usage"
expect "no output" 2 "expected: import fasttext" "$K" import fasttext "$B"
expect "missing file" 1 "$T/nope.bin: No such file or directory" "$K" import fasttext "$T/nope.bin" --output "$T/x.kinf"
expect "a kinfer model is not a fastText one" 1 "not a fastText model: magic" "$K" import fasttext "$T/softmax.kinf" --output "$T/x.kinf"
: >"$T/empty.bin"
expect "empty file" 1 "truncated: magic at offset 0" "$K" import fasttext "$T/empty.bin" --output "$T/x.kinf"
cp "$B" "$T/v13.bin"; printf '\x0d' | dd of="$T/v13.bin" bs=1 seek=4 conv=notrunc status=none
expect "version 13" 1 "unsupported fastText version 13 at offset 4" "$K" import fasttext "$T/v13.bin" --output "$T/x.kinf"
cp "$B" "$T/cbow.bin"; printf '\x01' | dd of="$T/cbow.bin" bs=1 seek=36 conv=notrunc status=none
expect "a cbow model" 1 "only supervised classifiers" "$K" import fasttext "$T/cbow.bin" --output "$T/x.kinf"
cp "$B" "$T/dim.bin"; printf '\xff\xff\xff\x7f' | dd of="$T/dim.bin" bs=1 seek=8 conv=notrunc status=none
expect "absurd dim" 1 "args.dim at offset 8" "$K" import fasttext "$T/dim.bin" --output "$T/x.kinf"
cp "$B" "$T/nw.bin"; printf '\xff\xff\xff\x70' | dd of="$T/nw.bin" bs=1 seek=64 conv=notrunc status=none
expect "absurd dictionary size" 1 "dictionary at offset 64" "$K" import fasttext "$T/nw.bin" --output "$T/x.kinf"
cp "$B" "$T/tail.bin"; printf 'xx' >>"$T/tail.bin"
expect "trailing bytes" 1 "2 bytes after the output matrix" "$K" import fasttext "$T/tail.bin" --output "$T/x.kinf"
bad=0
for cut in 3 7 40 63 64 80 200 5000 $((size / 2)) $((size - 5000)) $((size - 1)); do
  head -c "$cut" "$B" >"$T/cut.bin"
  msg=$("$K" import fasttext "$T/cut.bin" --output "$T/cut.kinf" 2>&1 >/dev/null); rc=$?
  if [ "$rc" -ne 1 ] || ! grep -q "truncated" <<<"$msg" || [ -e "$T/cut.kinf" ]; then bad=$((bad + 1)); echo "# cut $cut: rc $rc: $msg"; fi
done
[ "$bad" -eq 0 ] && ok "truncated files are refused ('truncated', the field, the offset), nothing written" || no "truncation ($bad)"
head -c 100000 /dev/urandom >"$T/random.bin"
expect "random bytes" 1 "not a fastText model" "$K" import fasttext "$T/random.bin" --output "$T/x.kinf"
expect "a limit on the decoded size" 1 "over the limit" "$K" import fasttext "$B" --output "$T/x.kinf" --max-mb 1
finish
