# SPDX-License-Identifier: Apache-2.0
# lib.sh -- shared by the kafka-labelled tests: a private `kinfer dev-broker` per test, a model
# trained from the bundled sample, worker start/stop helpers, checks that count passes and
# failures, and a final "N passed, N failed" line. Every process started here is killed by pid
# at exit. Source it; it needs KINFER_BIN and KINFER_SOURCE_DIR (ctest sets both).
# KINFER_TEST_BROKER=kafka runs the same test against a real Apache Kafka (deploy/kafka.sh, one
# node; KINFER_TEST_KAFKA_NODES=3 for three) instead of the dev broker: ctest label kafka-real.
set -uo pipefail

: "${KINFER_BIN:?KINFER_BIN is not set}"
: "${KINFER_SOURCE_DIR:?KINFER_SOURCE_DIR is not set}"
K=$KINFER_BIN
SRC=$KINFER_SOURCE_DIR
PY=/usr/bin/python3           # Debian's python3, which has confluent_kafka and avro
KU="$PY $SRC/tests/kafka/kafka_util.py"
T=$(mktemp -d /tmp/kinfer-kafka-test.XXXXXX)
PIDS=()
WORKERS=() # "pid:name" of the workers started and not yet stopped: a wait gives up when one died
passed=0
failed=0

cleanup() {
  local p
  # each by its pid: stopped first so that it starts no new child, its children (a feeder's
  # producer), then itself
  for p in "${PIDS[@]}"; do
    kill -STOP "$p" 2>/dev/null && pkill -9 -P "$p" 2>/dev/null
    kill -9 "$p" 2>/dev/null
  done
  # the real broker last, with SIGTERM: kafka.sh stops its nodes and removes their log dirs
  # (a failed test keeps each node's own log first)
  if [ "$failed" -ne 0 ] && [ -n "${KAFKA_DIR:-}" ]; then
    for p in "$KAFKA_DIR"/node*/log; do [ -f "$p" ] && cp "$p" "$T/kafka-$(basename "$(dirname "$p")").log"; done
  fi
  if [ -n "${KAFKA_SH_PID:-}" ]; then kill -TERM "$KAFKA_SH_PID" 2>/dev/null; wait "$KAFKA_SH_PID" 2>/dev/null; fi
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
finish() { # a run that checked nothing fails: it could not have failed otherwise
  echo "$passed passed, $failed failed"
  [ "$passed" -gt 0 ] || echo "FAIL: no check ran" >&2
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
  exit $?
}

BROKER_KIND=${KINFER_TEST_BROKER:-dev}
# real_broker -- true when the test runs against Apache Kafka
real_broker() { [ "$BROKER_KIND" = kafka ]; }

# start_broker TOPIC:PARTS... -- sets B (bootstrap list) and BROKER_PID (the dev broker), or
# KAFKA_DIR and KAFKA_SH_PID (Apache Kafka: deploy/kafka.sh creates the topics)
start_broker() {
  local args=() t
  if real_broker; then
    for t in "$@"; do args+=(--topic "$t"); done
    "$SRC/deploy/kafka.sh" --nodes "${KINFER_TEST_KAFKA_NODES:-1}" "${args[@]}" >"$T/broker.out" 2>"$T/broker.err" &
    KAFKA_SH_PID=$!
    for _ in $(seq 1800); do [ -s "$T/broker.out" ] && break; kill -0 "$KAFKA_SH_PID" 2>/dev/null || break; sleep 0.1; done
    B=$(head -1 "$T/broker.out")
    if [ -z "$B" ]; then fail "deploy/kafka.sh printed no bootstrap list"; cat "$T/broker.err" >&2; finish; fi
    KAFKA_DIR=$(sed -n 's/^kafka.sh: Apache Kafka .* node(s) in \(.*\), up in.*/\1/p' "$T/broker.err")
    say "Apache Kafka $B ($KAFKA_DIR)"
    return
  fi
  for t in "$@"; do args+=(--topic "$t"); done
  "$K" dev-broker --port 0 "${args[@]}" >"$T/broker.out" 2>"$T/broker.err" &  # any free port: tests run side by side
  BROKER_PID=$!
  PIDS+=("$BROKER_PID")
  wait_until 60 test -s "$T/broker.out"
  B=$(head -1 "$T/broker.out")
  if [ -z "$B" ]; then fail "dev-broker printed no bootstrap list"; cat "$T/broker.err" >&2; finish; fi
  say "broker $B"
}

# have_all_ids -- every id of $T/expected.txt (sorted) has a result in topic out: reads the results
# into $T/results.txt (one a line, id in column 2) and their distinct ids into $T/ids.txt
have_all_ids() {
  $KU results "$B" out >"$T/results.txt"
  cut -f2 "$T/results.txt" | sort -u >"$T/ids.txt"
  [ -z "$(comm -23 "$T/expected.txt" "$T/ids.txt" | head -1)" ]
}

# start_control_broker N TOPIC:PARTITIONS... -- a dev broker of N brokers with its fault-injection
# channel (`kinfer dev-broker --control`, fed through fd 7); sets B and BROKER_PID
start_control_broker() {
  local n=$1 args=() t; shift
  for t in "$@"; do args+=(--topic "$t"); done
  mkfifo "$T/ctl"
  exec 7<>"$T/ctl" # read-write: neither side blocks on open, and the broker's stdin stays open
  "$K" dev-broker --port 0 --brokers "$n" --control "${args[@]}" \
    <"$T/ctl" >"$T/broker.out" 2>"$T/broker.err" &
  BROKER_PID=$!
  PIDS+=("$BROKER_PID")
  wait_until 60 test -s "$T/broker.out"
  B=$(head -1 "$T/broker.out")
  if [ -z "$B" ]; then fail "dev-broker printed no bootstrap list"; cat "$T/broker.err" >&2; finish; fi
  say "broker $B"
  echo 0 >"$T/ctl.n"
}
# ctl COMMAND... -- send one control line and wait for its answer; true when it is "ok: ..."
# (answers are counted in a file: ctl may run in a command substitution's subshell)
ctl() {
  local n; n=$(($(cat "$T/ctl.n") + 1)); echo "$n" >"$T/ctl.n"
  echo "$*" >&7
  wait_until 60 bash -c "[ \$(grep -c '^\(ok\|error\): ' '$T/broker.out') -ge $n ]" || return 1
  grep '^\(ok\|error\): ' "$T/broker.out" | sed -n "${n}p" | grep -q '^ok: '
}

# start_private_pg NAME -- a throwaway PostgreSQL cluster of this test's own (tests/pg/cluster.sh)
# in /tmp/kinfer-NAME-pg.* (not under $T: the postgres user must reach it), its PG* exported,
# kinfer migrate pointed at the source tree; on exit it is thawed (a frozen server cannot stop),
# stopped and removed, then the usual cleanup runs. Sets PGD.
start_private_pg() {
  PGD=$(mktemp -d "/tmp/kinfer-$1-pg.XXXXXX")
  export KINFER_MIGRATIONS_DIR=$SRC/migrations
  local env_out
  if ! env_out=$(bash "$SRC/tests/pg/cluster.sh" start "$PGD"); then
    fail "start a private PostgreSQL cluster"; finish
  fi
  eval "$env_out"
  trap pg_cleanup EXIT
}
pg_cleanup() {
  bash "$SRC/tests/pg/cluster.sh" thaw "$PGD" >/dev/null 2>&1
  bash "$SRC/tests/pg/cluster.sh" stop "$PGD" >/dev/null 2>&1; rm -rf "$PGD"; cleanup
}

# KT trains the tests' models: KINFER_TEST_TRAIN_BIN when set (the ThreadSanitizer stage of
# tests/run.sh points it at the optimised build, where training takes seconds, not minutes;
# the models are the same files), else the kinfer under test
KT=${KINFER_TEST_TRAIN_BIN:-$K}

# train_model -- sets MODEL (trained from the bundled sample, a few seconds)
train_model() {
  MODEL=$T/model.kinf
  if ! "$KT" train --input "$SRC/tests/data/sections-train.tsv" --output "$MODEL" >"$T/train.log" 2>&1; then
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
  WORKERS+=("$WPID:$name")
}

# forget_worker PID -- it is meant to end now (stop_worker, kill -9): not a death to report
forget_worker() {
  local w keep=()
  for w in "${WORKERS[@]}"; do [ "${w%%:*}" = "$1" ] || keep+=("$w"); done
  WORKERS=("${keep[@]}")
}

# worker_died -- true (and says which, with the end of its log) when a started worker has
# exited on its own: waiting for anything any longer is pointless, so every later wait gives up
# at once too (a file, as waits may run in a subshell)
worker_died() {
  local w pid st
  [ -e "$T/worker-died" ] && return 0
  for w in "${WORKERS[@]}"; do
    pid=${w%%:*}
    st=$(ps -o stat= -p "$pid" 2>/dev/null)
    if [ -z "$st" ] || [ "${st:0:1}" = Z ]; then
      # a test may act as the workers' supervisor for exits the product documents
      if declare -F supervise >/dev/null && supervise "$pid" "${w#*:}"; then continue; fi
      say "worker ${w#*:} (pid $pid) exited on its own; the end of its log:"
      tail -n 15 "$T/${w#*:}.log" | sed 's/^/#   /' >&2
      forget_worker "$pid"
      echo "${w#*:}" >"$T/worker-died"
      return 0
    fi
  done
  return 1
}

# wait_assigned NAME [timeout s] -- until the worker's log shows an assignment
wait_assigned() {
  local name=$1 limit=${2:-60}
  wait_until "$limit" grep -q "fac=CONSUMER assigned" "$T/$name.log"
}

# wait_count TOPIC N [timeout s] -- until TOPIC holds >= N messages; prints the count
wait_count() {
  local topic=$1 n=$2 limit=${3:-120} c=0 start=$SECONDS
  while [ $((SECONDS - start)) -lt "$limit" ]; do
    c=$($KU count "$B" "$topic")
    [ "$c" -ge "$n" ] && break
    worker_died && break
    sleep 0.5
  done
  echo "$c"
}

# stop_worker PID -- SIGTERM, wait; returns the exit status
stop_worker() {
  local pid=$1 st
  forget_worker "$pid"
  kill -TERM "$pid" 2>/dev/null
  wait "$pid"; st=$?
  return $st
}

# wait_until TIMEOUT_S command... -- run the command every 0.2 s until it succeeds (0) or the
# time is up or a worker died (1). Tests wait on what they can observe, with generous bounds
# (an ASan build on a loaded machine is many times slower), never on a fixed sleep.
wait_until() {
  local limit=$1 start=$SECONDS; shift
  while :; do
    "$@" 2>/dev/null && return 0
    [ $((SECONDS - start)) -ge "$limit" ] && return 1
    worker_died && return 1
    sleep 0.2
  done
}

# classified NAME -- the worker's log shows a metrics window with records
classified() { grep -q "fac=METRICS.* records=[1-9]" "$T/$1.log" 2>/dev/null; }

# ---- what the dev broker keeps --------------------------------------------------------------
# librdkafka's mock cluster keeps, per partition, at most 5 MiB of record batches and at most
# 100000 batches (rdkafka_mock.c: rd_kafka_mock_partition_init sets max_size = 1024 * 1024 * 5
# and max_cnt = 100000; rd_kafka_mock_msgset_new counts the bytes of each batch as produced,
# uncompressed here, and on every append drops the oldest batches until both hold: the low
# watermark moves up and the records are gone without an error). Same in v2.0.2 (Debian) and in
# later releases. A test that writes more than that to one partition loses its oldest records,
# which is how kafka_group once missed its oldest ids.
#
# So each test sizes its topics from the limit: its worst case per partition,
#   records x copies x bytes per record / partitions x 5/4 (keys do not hash evenly),
# must stay under half of the 5 MiB (budget_check), and it checks at the end that the broker
# kept every record of its topics (kept_all: low watermark 0 on every partition). copies is
# how often a record can be written: 1 for input and for exactly-once checks; results are
# at-least-once, and a worker that is killed or loses partitions redoes what it had not
# committed yet, so a test with rebalances or kill -9 budgets 2.
# Bytes per stored record, measured with tests/data/sections-dev.tsv: an input record (JSON) has
# a value of 385 bytes on average (1092 at most), a JSON result 474 (499 at most); plus the key
# (<= 8), the record's framing (<= 20) and, at worst one record per batch, the 61-byte batch
# header. The batch count limit is far away: a batch holds one record or more, and no test
# writes more than a few thousand records to one partition.
MOCK_PARTITION_BYTES=$((5 * 1024 * 1024))
IN_RECORD_BYTES=500
OUT_RECORD_BYTES=600

# budget_check WHAT RECORDS COPIES BYTES_PER_RECORD PARTITIONS -- fail (and stop) when the plan
# could come near what the broker keeps
budget_check() {
  local what=$1 records=$2 copies=$3 bytes=$4 parts=$5 worst
  real_broker && return 0 # Apache Kafka keeps everything a test writes (retention 7 days, no size limit)
  worst=$((records * copies * bytes * 5 / (parts * 4)))
  if [ "$worst" -gt $((MOCK_PARTITION_BYTES / 2)) ]; then
    fail "$what: worst case $worst bytes per partition, over half of the dev broker's $MOCK_PARTITION_BYTES"
    finish
  fi
  say "$what: at most $worst bytes per partition (the dev broker keeps $MOCK_PARTITION_BYTES)"
}

# kept_all TOPIC... -- the broker dropped nothing (either broker): low watermark 0 on every partition
kept_all() {
  local t out
  for t in "$@"; do
    out=$($KU lows "$B" "$t") || return 1
    [ -n "$out" ] || return 1
    echo "$out" | awk '$2 != 0 { bad = 1 } END { exit bad }' || { say "$t: $(echo "$out" | tr '\n' ' ')"; return 1; }
  done
}

# ---- a feeder: records keep arriving until the test has seen what it waits for ----------------
# start_feeder TOPIC PREFIX CHUNK RATE MAX_CHUNKS -- in the background, produce chunk after chunk
# of CHUNK records (ids PREFIX<k>_<n>, at most RATE/s) until stop_feeder or MAX_CHUNKS; each
# delivered chunk is a line "PREFIX<k>_ CHUNK" of $T/feeder.PREFIX, a failed one "FAILED ...".
# MAX_CHUNKS x CHUNK bounds what the test writes (budget_check it).
start_feeder() {
  local topic=$1 prefix=$2 chunk=$3 rate=$4 max=$5
  : >"$T/feeder.$prefix"
  rm -f "$T/feeder.$prefix.stop"
  (
    k=0
    while [ $k -lt "$max" ] && [ ! -e "$T/feeder.$prefix.stop" ]; do
      if "$K" produce -b "$B" -t "$topic" --tsv -n "$chunk" --rate "$rate" --id-prefix "$prefix${k}_" -q \
        "$SRC/tests/data/sections-dev.tsv" 2>>"$T/feeder.$prefix.err"; then
        echo "$prefix${k}_ $chunk" >>"$T/feeder.$prefix"
      else
        echo "FAILED $prefix${k}_ $chunk" >>"$T/feeder.$prefix"
      fi
      k=$((k + 1))
    done
  ) &
  FEEDER_PID=$!
  PIDS+=("$FEEDER_PID")
}
# feeder_chunks PREFIX -- chunks delivered so far
feeder_chunks() { grep -vc '^FAILED' "$T/feeder.$1"; }
# stop_feeder PREFIX -- let the chunk in progress finish, stop; true when no chunk failed
stop_feeder() {
  touch "$T/feeder.$1.stop"
  wait "$FEEDER_PID"
  ! grep -q '^FAILED' "$T/feeder.$1"
}
# feeder_ids PREFIX -- every id the feeder delivered, one a line
feeder_ids() { awk '$1 != "FAILED" { for (i = 0; i < $2; i++) print $1 i }' "$T/feeder.$1"; }
