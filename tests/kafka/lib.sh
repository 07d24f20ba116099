# SPDX-License-Identifier: Apache-2.0
# lib.sh -- shared by the kafka-labelled tests: a private `kinfer dev-broker` per test, a model
# trained from the bundled sample, worker start/stop helpers, checks that count passes and
# failures, and a final "N passed, N failed" line. Every process started here is killed by pid
# at exit. Source it; it needs KINFER_BIN and KINFER_SOURCE_DIR (ctest sets both).
set -uo pipefail

: "${KINFER_BIN:?KINFER_BIN is not set}"
: "${KINFER_SOURCE_DIR:?KINFER_SOURCE_DIR is not set}"
K=$KINFER_BIN
SRC=$KINFER_SOURCE_DIR
PY=/usr/bin/python3           # Debian's python3, which has confluent_kafka and avro
KU="$PY $SRC/tests/kafka/kafka_util.py"
T=$(mktemp -d /tmp/kinfer-kafka-test.XXXXXX)
PIDS=()
passed=0
failed=0

cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  if [ "$failed" -ne 0 ] || [ -n "${KEEP_TMP:-}" ]; then echo "# logs kept in $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT

say() { echo "# $*" >&2; }
ok() { passed=$((passed + 1)); echo "ok: $*" >&2; }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
check() { # check "description" command...
  local what=$1; shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}

# start_broker TOPIC:PARTS... -- sets B (bootstrap list) and BROKER_PID
start_broker() {
  local args=() t
  for t in "$@"; do args+=(--topic "$t"); done
  "$K" dev-broker "${args[@]}" >"$T/broker.out" 2>"$T/broker.err" &
  BROKER_PID=$!
  PIDS+=("$BROKER_PID")
  for _ in $(seq 100); do [ -s "$T/broker.out" ] && break; sleep 0.1; done
  B=$(head -1 "$T/broker.out")
  if [ -z "$B" ]; then fail "dev-broker printed no bootstrap list"; cat "$T/broker.err" >&2; finish; fi
  say "broker $B"
}

# train_model -- sets MODEL (trained from the bundled sample, a few seconds)
train_model() {
  MODEL=$T/model.kinf
  if ! "$K" train --input "$SRC/tests/data/sections-train.tsv" --output "$MODEL" >"$T/train.log" 2>&1; then
    fail "train a model"; cat "$T/train.log" >&2; finish
  fi
}

# write_conf FILE key=value... -- a worker config for this broker and model, plus overrides
write_conf() {
  local f=$1; shift
  {
    echo "kafka.bootstrap.servers=$B"
    echo "model.path=$MODEL"
    echo "input.topic=in"
    echo "output.topic=out"
    echo "dlq.topic=dlq"
    echo "output.format=json"
    echo "batch.max.wait.ms=5"
    echo "metrics.interval.ms=1000"
    echo "kafka.consumer.session.timeout.ms=6000"
    echo "kafka.consumer.heartbeat.interval.ms=500"
    echo "kafka.group.id=test"
    local kv; for kv in "$@"; do echo "$kv"; done
  } >"$f"
}

# start_worker NAME CONF [args] -- sets WPID; log in $T/NAME.log
start_worker() {
  local name=$1 conf=$2; shift 2
  "$K" serve --config "$conf" "$@" >"$T/$name.out" 2>"$T/$name.log" &
  WPID=$!
  PIDS+=("$WPID")
}

# wait_assigned NAME [timeout s] -- until the worker's log shows an assignment
wait_assigned() {
  local name=$1 limit=${2:-30} i
  for i in $(seq $((limit * 10))); do
    grep -q "fac=CONSUMER assigned" "$T/$name.log" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# wait_results TOPIC N [timeout s] -- until TOPIC holds >= N messages; prints the count
wait_count() {
  local topic=$1 n=$2 limit=${3:-60} c=0 start=$SECONDS
  while [ $((SECONDS - start)) -lt "$limit" ]; do
    c=$($KU count "$B" "$topic")
    [ "$c" -ge "$n" ] && break
    sleep 0.5
  done
  echo "$c"
}

# stop_worker PID -- SIGTERM, wait; returns the exit status
stop_worker() {
  local pid=$1 st
  kill -TERM "$pid" 2>/dev/null
  wait "$pid"; st=$?
  return $st
}
