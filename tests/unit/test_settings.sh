#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_settings.sh -- every numeric command-line setting with a documented range (issue 16):
# at its minimum, its maximum and two random values between (seeded: the values are printed),
# the command succeeds and what it prints is valid JSON with finite numbers; one below the
# minimum and one above the maximum are refused with exit 2 naming the option. A training run
# at the edge may also stop with the documented divergence error (exit 1, "diverged"), never
# crash or write a model with NaN in it. Tiny data (4 records) keeps it fast; the pool's
# thread x batch split and the config keys have their own exhaustive tests (test_pool,
# test_conf).
set -u
. "$(dirname "$0")/cli_lib.sh" settings
RANDOM=16

printf 'a\tfoo bar baz\nb\tqux quux corge\na\tfoo grault\nb\tquux garply\n' >"$T/d.tsv"
printf 'foo bar\nquux\n...\n' >"$T/texts.txt"
# json_ok FILE: keep FILE for the one JSON check at the end (python3 starts once, not per run)
mkdir "$T/json"
json_n=0
json_ok() { json_n=$((json_n + 1)); cp "$1" "$T/json/$json_n"; }
json_check_all() {
  python3 - "$T/json" <<'EOF'
import json, os, sys
def bad(c): raise ValueError("non-finite number " + c)
d, errs = sys.argv[1], []
for f in sorted(os.listdir(d), key=int):
    lines = [l for l in open(os.path.join(d, f), encoding="utf-8") if l.strip()]
    try:
        if not lines: raise ValueError("no JSON")
        for l in lines: json.loads(l, parse_constant=bad)
    except Exception as e:
        errs.append("output %s: %s: %s" % (f, e, lines[:1]))
print("\n".join(errs))
sys.exit(1 if errs else 0)
EOF
}
# between LO HI: a random integer in [LO, HI] (bash arithmetic, 30 random bits)
between() { echo $(( $1 + ((RANDOM << 15 | RANDOM) % ($2 - $1 + 1)) )); }

# one training run with OPTION=VALUE (plus fixed small settings); the model must then predict
train_at() { # name, args...
  local name=$1; shift
  rm -f "$T/m.kinf"
  "$K" train -i "$T/d.tsv" -o "$T/m.kinf" --min-count 1 --epoch 1 --buckets 1024 -q "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [ $rc -eq 1 ] && grep -q "diverged" "$T/err" && [ ! -e "$T/m.kinf" ]; then ok "$name (diverged, no model)"; return; fi
  if [ $rc -ne 0 ]; then no "$name (exit $rc)" "$(tail -3 "$T/err")"; return; fi
  if "$K" predict "$T/m.kinf" "$T/texts.txt" --json -k 2 >"$T/p.json" 2>"$T/err" && json_ok "$T/p.json" 2>>"$T/err"
  then ok "$name"; else no "$name: predict" "$(tail -3 "$T/err")"; fi
}
# the range of an integer option of train: min, max, two random between, and refusals
int_range() { # option lo hi [extra args...]
  local opt=$1 lo=$2 hi=$3; shift 3
  local v
  for v in "$lo" "$hi" "$(between "$lo" "$hi")"; do
    train_at "train $opt $v" "$opt" "$v" "$@"
  done
  expect "train $opt $((lo - 1)) refused" 2 "" "$K" train -i "$T/d.tsv" -o "$T/x.kinf" "$opt" $((lo - 1)) "$@"
  expect "train $opt $((hi + 1)) refused" 2 "$opt" "$K" train -i "$T/d.tsv" -o "$T/x.kinf" "$opt" $((hi + 1)) "$@"
}

int_range --threads 1 64
int_range --epoch 1 10000
int_range --dim 0 4096
int_range --hidden 0 4096 --dim 2
int_range --word-ngrams 0 5 --minn 1 --maxn 2
int_range --prefix-words 0 255
int_range --max-rows 0 $((1 << 30))
int_range --min-count 1 1000000
int_range --seed 0 2147483647
int_range --patience 1 1000
int_range --sync-every 1 $((1 << 30)) -t 2
int_range --minn 0 16 --maxn 16
int_range --maxn 0 16 --minn 1
for b in 2 $((1 << 24)) $((1 << $(between 1 24))) $((1 << $(between 1 24))); do
  train_at "train --buckets $b" --buckets "$b" --word-ngrams 1
done
expect "train --buckets 3 (not a power of two) refused" 2 "power of two" "$K" train -i "$T/d.tsv" -o "$T/x.kinf" --buckets 3
expect "train --buckets 2^24+1 refused" 2 "--buckets" "$K" train -i "$T/d.tsv" -o "$T/x.kinf" --buckets $(((1 << 24) + 1))
for v in 1e-9 1000 0.37 42; do train_at "train --lr $v" --lr "$v"; done
for v in 1e-9 1000; do train_at "train --lr $v --dim 8 --hidden 4" --lr "$v" --dim 8 --hidden 4; done
for v in 0 1 0.5; do train_at "train --l2 $v" --l2 "$v"; done
expect "train --lr 0 refused" 2 "--lr" "$K" train -i "$T/d.tsv" -o "$T/x.kinf" --lr 0
expect "train --l2 1.5 refused" 2 "--l2" "$K" train -i "$T/d.tsv" -o "$T/x.kinf" --l2 1.5

# the other commands' ranges, on one model
"$K" train -i "$T/d.tsv" -o "$T/m.kinf" --min-count 1 --epoch 2 --buckets 1024 -q --dim 4
for k in 1 16 $(between 1 16) $(between 1 16); do
  for b in 1 65536 $(between 1 65536); do
    if "$K" predict "$T/m.kinf" "$T/texts.txt" --json -k "$k" --batch "$b" >"$T/p.json" 2>"$T/err" && json_ok "$T/p.json" \
      && [ "$(wc -l <"$T/p.json")" -eq 3 ]; then ok "predict -k $k --batch $b"; else no "predict -k $k --batch $b" "$(cat "$T/err")"; fi
  done
done
expect "predict -k 0 refused" 2 "-k" "$K" predict "$T/m.kinf" "$T/texts.txt" -k 0
expect "predict -k 17 refused" 2 "-k" "$K" predict "$T/m.kinf" "$T/texts.txt" -k 17
expect "predict --batch 65537 refused" 2 "--batch" "$K" predict "$T/m.kinf" "$T/texts.txt" --batch 65537
for t in 1 64 $(between 1 64); do
  if "$K" eval "$T/m.kinf" "$T/d.tsv" --json -t "$t" >"$T/e.json" 2>"$T/err" && json_ok "$T/e.json"; then ok "eval -t $t"; else no "eval -t $t" "$(cat "$T/err")"; fi
done
for kb in 1 $((1 << 30)) $(between 1 100); do
  if "$K" prune "$T/m.kinf" -o "$T/p.kinf" --keep-buckets "$kb" -q 2>"$T/err" && "$K" predict "$T/p.kinf" "$T/texts.txt" --json >"$T/p.json" && json_ok "$T/p.json"
  then ok "prune --keep-buckets $kb"; else no "prune --keep-buckets $kb" "$(cat "$T/err")"; fi
done
for s in 0 0.5 0.999999; do
  "$K" prune "$T/m.kinf" -o "$T/p.kinf" --sparsity "$s" -q 2>"$T/err"; rc=$?
  if [ $rc -eq 0 ] || { [ $rc -eq 1 ] && grep -q "would keep no" "$T/err"; }; then ok "prune --sparsity $s (exit $rc)"; else no "prune --sparsity $s (exit $rc)" "$(cat "$T/err")"; fi
done
for v in "--temperature 0.001" "--temperature 1000" "--alpha 0" "--alpha 1" "--temperature 3.7 --alpha 0.3"; do
  "$K" distill --teacher "$T/m.kinf" --data "$T/d.tsv" -o "$T/s.kinf" --min-count 1 --epoch 1 --buckets 1024 -q $v 2>"$T/err"; rc=$?
  if { [ $rc -eq 0 ] && "$K" predict "$T/s.kinf" "$T/texts.txt" --json >"$T/p.json" && json_ok "$T/p.json"; } ||
     { [ $rc -eq 1 ] && grep -q diverged "$T/err"; }; then ok "distill $v (exit $rc)"; else no "distill $v (exit $rc)" "$(cat "$T/err")"; fi
done
out=$(json_check_all) && ok "all $json_n JSON outputs valid, numbers finite" || no "JSON outputs" "$out"
expect "distill --alpha 1.1 refused" 2 "--alpha" "$K" distill --teacher "$T/m.kinf" --data "$T/d.tsv" -o "$T/s.kinf" --alpha 1.1
finish
