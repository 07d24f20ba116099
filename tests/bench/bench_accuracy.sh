#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench_accuracy.sh -- the trainer's defaults against chosen flags and other tools, in one run
# (docs/benchmarks.md, "Accuracy and the defaults"; issue 12 targets 4 and 5):
#   debian-sections (DATA, ../shared/data/debian-sections): train on train, accuracy on dev;
#   langid (tests/bench/make_langid.sh: UI strings of Debian's translation catalogs, 94
#   languages): train on train, accuracy on dev.
# Each line: wall s, user s, sys s of the training (GNU time, 2 threads), accuracy.
# Usage: tests/bench/bench_accuracy.sh [OUTDIR] [sections|langid|all]
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-../shared/data/debian-sections}
OUT=${1:-$(mktemp -d /tmp/kinfer-acc.XXXXXX)}
WHAT=${2:-all}
K=${KINFER:-build/kinfer}
mkdir -p "$OUT"
deploy/install-bench-deps.sh >/dev/null  # fastText, scikit-learn (Debian's: /usr/bin/python3), GNU time
[ -x "$K" ] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && cmake --build build -j2 --target kinfer >/dev/null; }
echo "# $(date -u +%FT%TZ) kinfer $(git rev-parse --short HEAD 2>/dev/null || echo '?'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
acc() { "$K" eval "$1" "$2" --json --no-confusion | python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["accuracy"])'; }
kt() { # name train dev flags...
  local name=$1 tr=$2 dv=$3; shift 3
  /usr/bin/time -f "%e %U %S" -o "$OUT/$name.time" "$K" train --input "$tr" --output "$OUT/$name.kinf" --threads 2 "$@" 2>"$OUT/$name.log"
  echo "| kinfer train ${*:-(defaults)} | $(tr ' ' '|' <"$OUT/$name.time" | sed 's/|/ | /g') | $(acc "$OUT/$name.kinf" "$dv") | $(grep '^Features:' "$OUT/$name.log" | sed 's/ on .*//;s/|/-/g') |"
}
ft() { # name train.tsv dev.tsv flags...
  local name=$1 tr=$2 dv=$3; shift 3
  sed 's/^\([^\t]*\)\t/__label__\1 /' "$tr" >"$OUT/$name.train.txt"
  sed 's/^\([^\t]*\)\t/__label__\1 /' "$dv" >"$OUT/$name.dev.txt"
  /usr/bin/time -f "%e %U %S" -o "$OUT/$name.time" fasttext supervised -input "$OUT/$name.train.txt" -output "$OUT/$name" -thread 2 -verbose 0 "$@"
  echo "| fasttext supervised $* | $(tr ' ' '|' <"$OUT/$name.time" | sed 's/|/ | /g') | $(fasttext test "$OUT/$name.bin" "$OUT/$name.dev.txt" | awk '/^P@1/{print $2}') | |"
}
sk() { # name train dev kind
  echo "| TF-IDF ($4) + LinearSVC, scikit-learn | | | | $(/usr/bin/python3 tests/bench/sk_tfidf_svc.py "$2" "$3" "$4" | awk '{print $2}') | |"
}
hdr() { echo; echo "## $1"; echo "| training | wall s | user s | sys s | dev accuracy | feature choice |"; echo "|---|---|---|---|---|---|"; }
if [ "$WHAT" != langid ]; then
  hdr "debian-sections ($DATA)"
  kt sec "$DATA/train.tsv" "$DATA/dev.tsv"
  kt sec_old "$DATA/train.tsv" "$DATA/dev.tsv" --no-auto-features --epoch 15
  kt sec_char "$DATA/train.tsv" "$DATA/dev.tsv" --minn 1 --maxn 4
  sk sec_sk "$DATA/train.tsv" "$DATA/dev.tsv" words
fi
if [ "$WHAT" != sections ]; then
  L=${LANGID:-$HOME/.cache/kinfer/langid}
  [ -s "$L/train.tsv" ] || tests/bench/make_langid.sh "$L" >/dev/null
  hdr "langid ($(sed -n 's/ records.*//p' "$L/README.txt" | tail -n 1) records)"
  kt lang "$L/train.tsv" "$L/dev.tsv"
  kt lang_words "$L/train.tsv" "$L/dev.tsv" --no-auto-features
  kt lang_c14 "$L/train.tsv" "$L/dev.tsv" --minn 1 --maxn 4
  kt lang_c14_all "$L/train.tsv" "$L/dev.tsv" --minn 1 --maxn 4 --max-rows 0
  kt lang_c25 "$L/train.tsv" "$L/dev.tsv" --minn 2 --maxn 5
  ft lang_ft "$L/train.tsv" "$L/dev.tsv" -minn 1 -maxn 4 -wordNgrams 2 -epoch 25
  sk lang_sk "$L/train.tsv" "$L/dev.tsv" both
fi
