#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run.sh -- build the libFuzzer targets with clang (+ASan+UBSan), replay every saved crash
# (tests/fuzz/regressions/<target>/*, without fuzzing), then fuzz each target for SECONDS
# (default 40) from its committed seeds (tests/fuzz/corpus/<target>/, written by make_seeds.py)
# plus generated ones (models trained from the bundled sample, their META). New corpus entries
# stay in a temporary directory: the committed corpus only changes by hand. Any crash, leak,
# sanitizer report, or input that runs over 10 s (a decoding-time explosion) fails the run; the
# input is kept under $FUZZ_BUILD_DIR/artifacts/ and becomes a file in tests/fuzz/regressions/.
#   tests/fuzz/run.sh [SECONDS]
#   FUZZ_BUILD_DIR=build-fuzz   FUZZ_TARGETS="fuzz_codec fuzz_conf"   (defaults: all targets)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-40}
bdir=${FUZZ_BUILD_DIR:-build-fuzz}
read -r -a targets <<<"${FUZZ_TARGETS:-fuzz_featurize fuzz_codec fuzz_model fuzz_json fuzz_conf fuzz_fasttext}"
command -v clang >/dev/null || { echo "fuzz: needs clang (deploy/install-deps.sh)" >&2; exit 1; }
CC=clang cmake -S . -B "$bdir" -DKINFER_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$bdir" -j"$(nproc)" --target "${targets[@]}" kinfer >/dev/null
work=$(mktemp -d /tmp/kinfer-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$bdir/artifacts"
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  if [ -d "tests/fuzz/corpus/$t" ]; then cp tests/fuzz/corpus/"$t"/* "$work/$t/"; fi
done
# generated seeds: two small models (linear; embedding + hidden layer) and a real META
head -n 300 tests/data/sections-train.tsv >"$work/small.tsv"
if [ -d "$work/fuzz_model" ]; then
  "$bdir/kinfer" train -q --input "$work/small.tsv" --output "$work/fuzz_model/seed.kinf" --buckets 1024 \
    --max-rows 200 --epoch 2
  "$bdir/kinfer" train -q --input "$work/small.tsv" --output "$work/fuzz_model/seed2.kinf" --buckets 512 \
    --dim 8 --hidden 4 --epoch 1 --minn 2 --maxn 4
fi
if [ -d "$work/fuzz_json" ] && [ -f "$work/fuzz_model/seed.kinf" ]; then
  "$bdir/kinfer" inspect "$work/fuzz_model/seed.kinf" | sed -n '/^meta\t/,$p' | sed '1s/^meta\t//' \
    >"$work/fuzz_json/model_meta"
fi
if [ -d "$work/fuzz_featurize" ]; then
  head -n 30 tests/data/sections-dev.tsv | cut -f2 | split -l 1 - "$work/fuzz_featurize/line"
  for f in "$work"/fuzz_featurize/line*; do printf '\020\002\000\000' | cat - "$f" >"$f.x" && mv "$f.x" "$f"; done
fi
if [ -d "$work/fuzz_fasttext" ]; then # small fastText models: .bin (softmax, hs + char n-grams), .ftz
  command -v fasttext >/dev/null || { echo "fuzz: fuzz_fasttext needs the fasttext CLI (deploy/install-test-deps.sh)" >&2; exit 1; }
  sed 's/^\([^\t]*\)\t/__label__\1 /' "$work/small.tsv" >"$work/small.txt"
  fasttext supervised -input "$work/small.txt" -output "$work/ft1" -dim 4 -bucket 512 -minCount 3 -epoch 1 \
    -wordNgrams 2 -thread 1 -verbose 0 >/dev/null
  fasttext supervised -input "$work/small.txt" -output "$work/ft2" -dim 4 -bucket 512 -minCount 3 -epoch 1 \
    -loss hs -minn 2 -maxn 3 -thread 1 -verbose 0 >/dev/null
  cp "$work/ft1.bin" "$work/ft3.bin"
  fasttext quantize -input "$work/small.txt" -output "$work/ft3" -dsub 2 -qnorm -cutoff 300 >/dev/null 2>&1
  cp "$work/ft1.bin" "$work/ft2.bin" "$work/ft3.ftz" "$work/fuzz_fasttext/"
fi
declare -A maxlen=([fuzz_model]=65536 [fuzz_featurize]=8192 [fuzz_codec]=16384 [fuzz_json]=65536 [fuzz_conf]=4096
  [fuzz_fasttext]=131072)
# fuzz_fasttext gets half the time (CI's budget; the import is also covered by test_fasttext)
declare -A secs_of=([fuzz_fasttext]=$(( (secs + 1) / 2 )))
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "${targets[@]}"; do
  regs=()
  if [ -d "tests/fuzz/regressions/$t" ]; then
    while IFS= read -r -d '' f; do regs+=("$f"); done < <(find "tests/fuzz/regressions/$t" -type f -print0)
  fi
  if [ ${#regs[@]} -gt 0 ]; then
    echo "== $t: replaying ${#regs[@]} saved inputs"
    "$bdir/$t" -timeout=10 -rss_limit_mb=2048 "${regs[@]}" >"$work/$t.replay.log" 2>&1 ||
      { status=1; tail -n 40 "$work/$t.replay.log"; echo "FAIL: $t: a saved regression input fails" >&2; }
  fi
  echo "== $t: fuzzing for ${secs_of[$t]:-$secs}s"
  if ! "$bdir/$t" -artifact_prefix="$bdir/artifacts/$t-" -max_total_time="${secs_of[$t]:-$secs}" -timeout=10 \
      -rss_limit_mb=2048 -max_len="${maxlen[$t]:-8192}" -print_final_stats=1 "$work/$t" >"$work/$t.log" 2>&1; then
    status=1
    tail -n 60 "$work/$t.log"
    echo "FAIL: $t: see the input in $bdir/artifacts/$t-*; save it as tests/fuzz/regressions/$t/<name>" >&2
  else
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)' "$work/$t.log" | tr '\n' ' '; echo
  fi
done
exit $status
