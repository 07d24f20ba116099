#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_frozen.sh -- PostgreSQL frozen (SIGSTOP: a hung database host whose kernel still
# accepts and ACKs TCP) under a running `kinfer serve` with `deployment=` (issue 8, "What to
# build" 4). Guarantees checked, not timings:
#   1. classification goes on while PostgreSQL is frozen (results keep arriving);
#   2. SIGTERM ends the worker with exit 0 within shutdown.timeout.ms (5 s here) plus a
#      generous margin (30 s in all; before the fix it waited for PostgreSQL forever);
#   3. nothing is lost: with PostgreSQL thawed, a second worker of the same group gives every
#      record the feeder delivered a result.
# The worker runs worker.threads=2, so the pool, the registry thread and librdkafka's threads
# all run under ThreadSanitizer in tests/run.sh's TSan stage.
. "$(dirname "$0")/../kafka/lib.sh"

start_private_pg frozen
say "postgres on port $PGPORT"
sql() { psql -X -qtA -d postgres -c "$1"; }

"$K" migrate >"$T/migrate.log" 2>&1 || { fail "migrate"; cat "$T/migrate.log" >&2; finish; }
train_model
"$K" model push "$MODEL" --name sections >"$T/push.log" 2>&1 || { fail "push"; cat "$T/push.log" >&2; finish; }
"$K" activate sections sections 1 --reason "test start" >/dev/null || fail "activate"
sql "CREATE ROLE kinfer_test_worker LOGIN IN ROLE kinfer_worker" >/dev/null

# Sizing (lib.sh, "what the dev broker keeps"): at most MAX_CHUNKS x CHUNK records; results are
# at-least-once and the first worker stops mid-stream, so 2 copies.
# The feeder runs for MAX_CHUNKS x CHUNK / RATE = 50 s, far longer than the freeze and the
# shutdown take.
CHUNK=100
RATE=200
MAX_CHUNKS=100
start_broker in:4 out:8 dlq:1
budget_check "input" $((CHUNK * MAX_CHUNKS + 100)) 1 $IN_RECORD_BYTES 4
budget_check "results" $((CHUNK * MAX_CHUNKS + 100)) 2 $OUT_RECORD_BYTES 8

SHUTDOWN_MS=5000
LIMIT_S=30
write_conf "$T/w.conf" model.path= deployment=sections \
  "pg.conninfo=host=127.0.0.1 port=$PGPORT dbname=postgres user=kinfer_test_worker" \
  metrics.interval.ms=500 worker.threads=2 batch.max.records=64 shutdown.timeout.ms=$SHUTDOWN_MS
start_worker w1 "$T/w.conf"
W1=$WPID
check "the worker starts on the registry's model and joins" wait_assigned w1 120
"$K" produce -b "$B" -t in --tsv -n 100 --id-prefix s -q "$SRC/tests/data/sections-dev.tsv" || fail "produce s"
check "the worker classifies" wait_until 120 classified w1
check "the worker loaded sections:1 from the registry" grep -q "model=sections:1" "$T/w1.log"
start_feeder in f $CHUNK $RATE $MAX_CHUNKS
feeding() { [ "$(feeder_chunks f)" -ge 1 ]; }
check "the feeder delivers" wait_until 60 feeding

# ---- 1. freeze PostgreSQL; records keep flowing ----
# every metrics window (500 ms) and heartbeat now meets a server that ACKs and never answers
bash "$SRC/tests/pg/cluster.sh" freeze "$PGD" || fail "freeze postgres"
c0=$($KU count "$B" out)
# 400 more results take at least 2 s at the feeder's rate: several metrics windows and the
# heartbeat are stuck on the frozen server meanwhile
more() { [ "$($KU count "$B" out)" -ge $((c0 + 400)) ]; }
check "classification goes on while PostgreSQL is frozen (from $c0 results)" wait_until 120 more
say "results: $c0 at the freeze, $($KU count "$B" out) now"

# ---- 2. SIGTERM with PostgreSQL still frozen: exit 0 within the bound ----
forget_worker "$W1"
t0=$(date +%s%3N)
kill -TERM "$W1"
gone() { ! kill -0 "$W1" 2>/dev/null || [ "$(ps -o stat= -p "$W1" | cut -c1)" = Z ]; }
wait_until $LIMIT_S gone
ended=$?
ms=$(( $(date +%s%3N) - t0 ))
if [ $ended -eq 0 ]; then
  wait "$W1"; st=$?
  say "the worker ended ${ms} ms after SIGTERM (shutdown.timeout.ms=$SHUTDOWN_MS), status $st"
  check "SIGTERM with PostgreSQL frozen: the worker exits within $LIMIT_S s" true
  check "SIGTERM with PostgreSQL frozen: exit status 0 (got $st)" [ "$st" -eq 0 ]
else
  fail "SIGTERM with PostgreSQL frozen: the worker still runs after $LIMIT_S s"
  tail -n 20 "$T/w1.log" >&2
  kill -9 "$W1" 2>/dev/null; wait "$W1" 2>/dev/null
fi
check "the feeder delivered every chunk" stop_feeder f

# ---- 3. thaw; a second worker finishes the stream: every id has a result ----
bash "$SRC/tests/pg/cluster.sh" thaw "$PGD" || fail "thaw postgres"
check "PostgreSQL answers again" wait_until 60 sql "SELECT 1" >/dev/null
start_worker w2 "$T/w.conf"
W2=$WPID
{ seq 0 99 | sed 's/^/s/'; feeder_ids f; } | sort -u >"$T/expected.txt"
N=$(wc -l <"$T/expected.txt")
say "$N records produced in $(feeder_chunks f) chunks"
all_ids() {
  $KU results "$B" out | cut -f2 | sort -u >"$T/got.txt"
  [ -z "$(comm -23 "$T/expected.txt" "$T/got.txt")" ]
}
check "no record lost: every one of the $N ids has a result" wait_until 180 all_ids
w2_row() { [ "$(sql "SELECT status FROM kinfer.workers WHERE pid = $W2")" = "$1" ]; }
check "the second worker registered in kinfer.workers" wait_until 60 w2_row running
check "the second worker stops cleanly (exit 0)" stop_worker $W2
check "its row says stopped" w2_row stopped
check "the dev broker kept every record of in and out (low watermark 0)" kept_all in out
finish
