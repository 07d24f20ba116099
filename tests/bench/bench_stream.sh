#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench_stream.sh -- end-to-end streaming benchmark on the dev broker (docs/benchmarks.md,
# "Streaming"):
#   1. throughput: N (default 1M) debian-sections records as Avro (Confluent framing) are
#      produced first, then one `kinfer serve` drains them for every batch.max.records x
#      batch.max.wait.ms; records/s from its first result to its N-th, and the worker's
#      CPU-us per record (user + sys over N, its whole life) and peak RSS (VmHWM);
#   2. latency at half the best throughput: records produced at that rate while a worker
#      serves them; p50/p95/p99 of (result produced - input produced), per wait;
#   3. the peer: tests/bench/peer_worker.py (confluent-kafka + python3-avro + sklearn TF-IDF
#      + LinearSVC) on PEER_N of the same records, in the same run.
#
#   tests/bench/bench_stream.sh            # DATA defaults to ../shared/data/debian-sections
#   N=200000 BATCHES="256" WAITS="5" tests/bench/bench_stream.sh   # a quick run
# Environment: KINFER_BIN (default build/kinfer), DATA, N, BATCHES, WAITS, LAT_SECONDS,
# PEER_N (0 skips the peer), THREADS (worker.threads, default 1 as shipped), FETCH_WAIT (consumer fetch.wait.max.ms in the
# latency runs, default 10), BROKER (dev: `kinfer dev-broker`, the default; kafka: Apache Kafka,
# one node, from deploy/kafka.sh). Exactly-once: WORKER_EXTRA="processing.guarantee=exactly_once
# worker.id=bench" with BROKER=kafka (its rate counts the transaction markers too: one per
# partition and window, well under 1% at these rates).
# Prints a Markdown summary on stdout; logs stay in the printed folder.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DATA=${DATA:-$ROOT/../shared/data/debian-sections}
K=${KINFER_BIN:-$ROOT/build/kinfer}
"$ROOT/deploy/install-bench-deps.sh"   # scikit-learn, numpy: the Python peer (not installed by the tests)
N=${N:-1000000}
BATCHES=${BATCHES:-"64 256 1024"}
WAITS=${WAITS:-"1 5 20"}
LAT_SECONDS=${LAT_SECONDS:-10}
PEER_N=${PEER_N:-30000}
THREADS=${THREADS:-1}          # worker.threads (1: the shipped default)
WORKER_EXTRA=${WORKER_EXTRA:-} # more key=value lines for the workers' configuration
FETCH_WAIT=${FETCH_WAIT:-10}   # kafka.consumer.fetch.wait.max.ms of the latency runs
LAT_LINGER=${LAT_LINGER:-20}   # linger.ms of the load generator in the latency runs (5: the dev broker
                               # falls behind at ~70k/s and its p99 swings to 100-700 ms)
PY=/usr/bin/python3
KU="$PY $ROOT/tests/kafka/kafka_util.py"
T=$(mktemp -d /tmp/kinfer-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
log() { echo "# $*" >&2; }

[ -x "$K" ] || { echo "bench: no kinfer binary at $K (set KINFER_BIN)" >&2; exit 2; }
[ -f "$DATA/train.tsv" ] || { echo "bench: no $DATA/train.tsv (set DATA)" >&2; exit 2; }
log "logs in $T"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- model, broker, input --------------------------------------------------------------------
"$K" train --input "$DATA/train.tsv" --output "$T/model.kinf" >"$T/train.log" 2>&1
log "model: $(tail -1 "$T/train.log")"
# 5 MiB kept per partition: 1M records of ~500 bytes need >= 100 partitions
topics=(--topic in:128 --topic dlq:1 --topic peer_out:8)
for b in $BATCHES; do for w in $WAITS; do topics+=(--topic "out_${b}_${w}:32"); done; done
for w in $WAITS; do topics+=(--topic "lat_in_$w:16" --topic "lat_out_$w:16"); done
BROKER=${BROKER:-dev}
if [ "$BROKER" = kafka ]; then
  "$ROOT/deploy/kafka.sh" "${topics[@]}" >"$T/broker.out" 2>"$T/broker.err" &
  KAFKA_SH_PID=$!
  # stopped first: cleanup's wait waits for every child, and kafka.sh serves until signalled
  trap 'kill -TERM $KAFKA_SH_PID 2>/dev/null; wait $KAFKA_SH_PID 2>/dev/null || true; cleanup' EXIT
  for _ in $(seq 1800); do [ -s "$T/broker.out" ] && break; sleep 0.1; done
else
  "$K" dev-broker --port 0 "${topics[@]}" >"$T/broker.out" 2>"$T/broker.err" &
  PIDS+=($!)
  for _ in $(seq 100); do [ -s "$T/broker.out" ] && break; sleep 0.1; done
fi
B=$(head -1 "$T/broker.out")
mkdir -p "$T/schemas"
cp "$ROOT/schemas/text_record.avsc" "$T/schemas/1.avsc"
"$K" produce -b "$B" -t in -f avro-confluent --schemas-dir "$T/schemas" --tsv -n "$N" \
  "$DATA/train.tsv" 2>"$T/produce.log"
PRODUCED=$(grep -o 'produced.*' "$T/produce.log")
log "input: $PRODUCED"

conf() { # conf FILE key=value...
  local f=$1; shift
  {
    echo "kafka.bootstrap.servers=$B"
    echo "model.path=$T/model.kinf"
    echo "input.format=avro-confluent"
    echo "input.schemas.dir=$T/schemas"
    echo "output.format=avro"
    echo "dlq.topic=dlq"
    echo "metrics.interval.ms=1000"
    echo "worker.threads=$THREADS"
    local kv; for kv in $WORKER_EXTRA "$@"; do echo "$kv"; done
  } >"$f"
}

# ---- 1. throughput -------------------------------------------------------------------------
declare -A RPS CPU RSS
best=0
for b in $BATCHES; do
  for w in $WAITS; do
    conf "$T/t_${b}_$w.conf" input.topic=in "output.topic=out_${b}_$w" "kafka.group.id=t_${b}_$w" \
      "batch.max.records=$b" "batch.max.wait.ms=$w"
    "$K" serve --config "$T/t_${b}_$w.conf" 2>"$T/t_${b}_$w.log" &
    wp=$!
    PIDS+=($wp)
    r=$($KU rate "$B" "out_${b}_$w" "$N" 600)
    # the worker's CPU (user + sys, its whole life: model load, start, the drain) and peak
    # RSS, read once its N-th result is out and before it is stopped
    read -r ut st < <(sed 's/^.*) //' "/proc/$wp/stat" | cut -d' ' -f12,13)
    hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$wp/status")
    kill -TERM $wp; wait $wp || true
    rps=$(sed 's/.*rps=\([0-9]*\).*/\1/' <<<"$r")
    RPS[$b,$w]=$rps
    CPU[$b,$w]=$(python3 -c "print('%.2f' % (($ut + $st) / $(getconf CLK_TCK) / $N * 1e6))")
    RSS[$b,$w]=$((hwm / 1024))
    [ "$rps" -gt "$best" ] && best=$rps
    log "batch=$b wait=${w}ms: $r"
  done
done

# ---- 2. latency at half the best throughput -------------------------------------------------
half=$((best / 2))
declare -A LAT
for w in $WAITS; do
  conf "$T/l_$w.conf" "input.topic=lat_in_$w" "output.topic=lat_out_$w" "kafka.group.id=l_$w" \
    batch.max.records=256 "batch.max.wait.ms=$w" "kafka.consumer.fetch.wait.max.ms=$FETCH_WAIT"
  "$K" serve --config "$T/l_$w.conf" 2>"$T/l_$w.log" &
  wp=$!
  PIDS+=($wp)
  for _ in $(seq 300); do grep -q "CONSUMER assigned" "$T/l_$w.log" && break; sleep 0.1; done
  "$K" produce -b "$B" -t "lat_in_$w" -f avro-confluent --schemas-dir "$T/schemas" --tsv \
    -n $((half * LAT_SECONDS)) --rate "$half" -X "linger.ms=$LAT_LINGER" "$DATA/train.tsv" 2>"$T/l_$w.produce.log"
  sleep 1
  kill -TERM $wp; wait $wp || true
  # only what the broker still holds (the last ~5 MiB per partition): the steady state
  LAT[$w]=$($KU latency "$B" "lat_out_$w" avro "$ROOT/schemas/classification.avsc")
  log "latency at ${half}/s, batch=256 wait=${w}ms: ${LAT[$w]} ($(grep -o 'produced.*' "$T/l_$w.produce.log"))"
done

# ---- 3. the peer ---------------------------------------------------------------------------
if [ "$PEER_N" -gt 0 ]; then
  $PY "$ROOT/tests/bench/peer_worker.py" --brokers "$B" --topic in --output peer_out \
    --schemas-dir "$T/schemas" --train "$DATA/train.tsv" --max "$PEER_N" >"$T/peer.out" 2>"$T/peer.err" || true
else
  echo "peer: skipped (PEER_N=0)" >"$T/peer.out"
fi
PEER=$(grep 'peer: n=' "$T/peer.out" || echo "peer: failed (see $T/peer.err)")
peer_rps=$(sed -n 's/.*rps=\([0-9]*\).*/\1/p' <<<"$PEER")
log "$(head -1 "$T/peer.out")"
log "$PEER"

# ---- summary -------------------------------------------------------------------------------
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem/ {print $2}') GiB"
echo "input: $PRODUCED"
echo "worker.threads=$THREADS; load average before the run: $LOAD0"
echo
echo "| batch.max.records | batch.max.wait.ms | records/s | worker CPU-us/record | worker peak RSS MiB |"
echo "|---:|---:|---:|---:|---:|"
for b in $BATCHES; do for w in $WAITS; do echo "| $b | $w | ${RPS[$b,$w]} | ${CPU[$b,$w]} | ${RSS[$b,$w]} |"; done; done
echo
echo "latency at half the best throughput (${half} records/s offered), batch.max.records=256:"
echo
echo "| batch.max.wait.ms | result |"
echo "|---:|---|"
for w in $WAITS; do echo "| $w | ${LAT[$w]} |"; done
echo
echo "peer (Python, TF-IDF + LinearSVC): $PEER"
if [ -n "$peer_rps" ] && [ "$peer_rps" -gt 0 ]; then
  echo "kinfer best / peer: $((best / peer_rps))x"
fi
