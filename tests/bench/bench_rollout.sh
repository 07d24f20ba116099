#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench_rollout.sh -- the cost of a rollout (docs/benchmarks.md, "Rollouts"; issue 15): one
# backlog of N records drained by `kinfer serve` with deployment= (a throwaway PostgreSQL) in
# three deployments side by side in one run, alternated ROUNDS times:
#   none    sections:1 alone
#   canary  sections:1 with sections:2 on 10% of the keys (two classify calls per batch)
#   shadow  sections:1 with sections:2 in the shadow (every record classified twice)
# Per run: records/s from the first result to the N-th, the worker's CPU-us per record (user +
# sys over N, its whole life), and for the shadow the classify time per record of each model
# from its fac=SHADOW lines (what "one extra classification per record" is compared with).
#
#   tests/bench/bench_rollout.sh                 # DATA defaults to ../shared/data/debian-sections
#   N=50000 ROUNDS=1 tests/bench/bench_rollout.sh   # a quick run
# Environment: KINFER_BIN (default build/kinfer), DATA, N (default 200000), ROUNDS (default 2),
# BATCH (batch.max.records, default 256).
# Prints a Markdown summary on stdout; logs stay in the printed folder.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DATA=${DATA:-$ROOT/../shared/data/debian-sections}
K=${KINFER_BIN:-$ROOT/build/kinfer}
N=${N:-200000}
ROUNDS=${ROUNDS:-2}
BATCH=${BATCH:-256}
PY=/usr/bin/python3
KU="$PY $ROOT/tests/kafka/kafka_util.py"
T=$(mktemp -d /tmp/kinfer-bench-rollout.XXXXXX)
PGD=$(mktemp -d /tmp/kinfer-bench-rollout-pg.XXXXXX) # its own: the server runs as postgres
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  bash "$ROOT/tests/pg/cluster.sh" stop "$PGD" >/dev/null 2>&1 || true
  rm -rf "$PGD"
}
trap cleanup EXIT
log() { echo "# $*" >&2; }

[ -x "$K" ] || { echo "bench: no kinfer binary at $K (set KINFER_BIN)" >&2; exit 2; }
TRAIN=$DATA/train.tsv
[ -f "$TRAIN" ] || { TRAIN=$ROOT/tests/data/sections-train.tsv; log "no $DATA/train.tsv: using $TRAIN"; }
log "logs in $T"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

eval "$(bash "$ROOT/tests/pg/cluster.sh" start "$PGD")"
export KINFER_MIGRATIONS_DIR=$ROOT/migrations
"$K" migrate >"$T/migrate.log" 2>&1
"$K" train --input "$TRAIN" --output "$T/m1.kinf" >"$T/train1.log" 2>&1
"$K" train --input "$TRAIN" --output "$T/m2.kinf" --seed 7 --epoch 2 >"$T/train2.log" 2>&1
"$K" model push "$T/m1.kinf" --name sections >/dev/null
"$K" model push "$T/m2.kinf" --name sections >/dev/null
for d in none canary shadow; do "$K" activate "r_$d" sections 1 >/dev/null; done
"$K" canary r_canary sections 2 10 >/dev/null
"$K" shadow r_shadow sections 2 >/dev/null

topics=(--topic in:64 --topic dlq:1)
for r in $(seq "$ROUNDS"); do for d in none canary shadow; do topics+=(--topic "out_${d}_$r:16"); done; done
"$K" dev-broker --port 0 "${topics[@]}" >"$T/broker.out" 2>"$T/broker.err" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$T/broker.out" ] && break; sleep 0.1; done
B=$(head -1 "$T/broker.out")
"$K" produce -b "$B" -t in --tsv -n "$N" "$TRAIN" 2>"$T/produce.log"
PRODUCED=$(grep -o 'produced.*' "$T/produce.log")
log "input: $PRODUCED"

declare -A RPS CPU
SH_A=() SH_C=()
for r in $(seq "$ROUNDS"); do
  for d in none canary shadow; do
    cf=$T/${d}_$r.conf
    printf '%s\n' "kafka.bootstrap.servers=$B" input.topic=in "output.topic=out_${d}_$r" \
      output.format=json dlq.topic=dlq "kafka.group.id=g_${d}_$r" "deployment=r_$d" \
      "pg.conninfo=host=127.0.0.1 port=$PGPORT dbname=postgres user=postgres" \
      metrics.interval.ms=1000 "batch.max.records=$BATCH" http.listen= >"$cf"
    "$K" serve --config "$cf" 2>"$T/${d}_$r.log" &
    wp=$!
    PIDS+=($wp)
    res=$($KU rate "$B" "out_${d}_$r" "$N" 900)
    read -r ut st < <(sed 's/^.*) //' "/proc/$wp/stat" | cut -d' ' -f12,13)
    kill -TERM $wp; wait $wp || true
    rps=$(sed 's/.*rps=\([0-9]*\).*/\1/' <<<"$res")
    cpu=$($PY -c "print('%.2f' % (($ut + $st) / $(getconf CLK_TCK) / $N * 1e6))")
    RPS[$d]="${RPS[$d]:-}${RPS[$d]:+ }$rps"
    CPU[$d]="${CPU[$d]:-}${CPU[$d]:+ }$cpu"
    if [ "$d" = shadow ]; then
      # records-weighted classify time per record of each model over the run's windows
      read -r a c < <(awk '/fac=SHADOW/ { for (i = 1; i <= NF; i++) { split($i, kv, "=");
          v[kv[1]] = kv[2] } n += v["records"]; a += v["records"] * v["active_us_per_record"];
          c += v["records"] * v["candidate_us_per_record"] }
          END { if (n) printf "%.2f %.2f\n", a / n, c / n; else print "- -" }' "$T/${d}_$r.log")
      SH_A+=("$a"); SH_C+=("$c")
    fi
    log "round $r, $d: $res, CPU-us/record $cpu"
  done
done

best() { tr ' ' '\n' <<<"$1" | sort -n | tail -1; }
least() { tr ' ' '\n' <<<"$1" | sort -n | head -1; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load average before the run: $LOAD0"
echo "input: $PRODUCED; batch.max.records=$BATCH, worker.threads=1, $ROUNDS round(s) alternated"
echo
echo "| deployment | records/s (each round) | best | CPU-us/record (each round) | least |"
echo "|---|---|---:|---|---:|"
for d in none canary shadow; do
  echo "| $d | ${RPS[$d]} | $(best "${RPS[$d]}") | ${CPU[$d]} | $(least "${CPU[$d]}") |"
done
echo
n=$(best "${RPS[none]}"); c=$(best "${RPS[canary]}")
echo "canary 10% throughput: $($PY -c "print('%.1f%%' % (100.0 * $c / $n))") of none's (best of each)"
echo "shadow classify time per record (worker's timing, per round): active ${SH_A[*]} us, candidate ${SH_C[*]} us"
cn=$(least "${CPU[none]}"); cs=$(least "${CPU[shadow]}")
echo "shadow extra CPU per record: $($PY -c "print('%.2f' % ($cs - $cn))") us (least of each)"
