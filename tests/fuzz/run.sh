#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run.sh -- build the libFuzzer targets with clang (+ASan+UBSan) and run each for SECONDS
# (default 60). Seeds: a small model trained from the bundled sample, and sample lines.
#   tests/fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
command -v clang >/dev/null || { echo "fuzz: needs clang (apt-get install clang)" >&2; exit 1; }
CC=clang cmake -S . -B build-fuzz -DKINFER_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_model fuzz_featurize fuzz_json kinfer >/dev/null
work=$(mktemp -d /tmp/kinfer-fuzz.XXXXXX)
mkdir -p "$work/model" "$work/text" "$work/json"
head -n 300 tests/data/sections-train.tsv >"$work/small.tsv"
build-fuzz/kinfer train -q --input "$work/small.tsv" --output "$work/model/seed.kinf" --buckets 1024 \
  --max-rows 200 --epoch 2
build-fuzz/kinfer train -q --input "$work/small.tsv" --output "$work/model/seed2.kinf" --buckets 512 \
  --dim 8 --hidden 4 --epoch 1
head -n 50 tests/data/sections-dev.tsv | cut -f2 | split -l 1 - "$work/text/line"
build-fuzz/kinfer inspect "$work/model/seed.kinf" | sed -n '/^meta\t/,$p' | sed '1s/^meta\t//' >"$work/json/meta"
printf '%s' '{"a": [1, -2.5e-3, "x\u00e9\ud83d\ude00\n", {"b": null, "c": true}], "d": {}}' >"$work/json/mix"
printf '"caf\303\251 \355\240\200 \364\220\200\200"' >"$work/json/utf8"
status=0
build-fuzz/fuzz_model -artifact_prefix=build-fuzz/ -max_total_time="$secs" -max_len=65536 -rss_limit_mb=4096 "$work/model" || status=1
build-fuzz/fuzz_featurize -artifact_prefix=build-fuzz/ -max_total_time="$secs" -max_len=4096 "$work/text" || status=1
build-fuzz/fuzz_json -artifact_prefix=build-fuzz/ -max_total_time="$secs" -max_len=65536 "$work/json" || status=1
rm -rf "$work"
exit $status
