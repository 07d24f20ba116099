#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_restart.sh -- kill -9 the worker in mid-stream while records keep arriving, restart
# it (with a tight backpressure bound, so that it holds back and resumes): no record is lost
# (every id has a result; duplicates are allowed: at-least-once).
. "$(dirname "$0")/lib.sh"

N=20000
start_broker in:4 out:4 dlq:1
train_model
write_conf "$T/w.conf" worker.id=first
"$K" produce -b "$B" -t in --tsv -n $N --rate 4000 -q "$SRC/tests/data/sections-dev.tsv" &
PROD=$!
PIDS+=("$PROD")
start_worker w1 "$T/w.conf"
W1=$WPID
c=$(wait_count out 3000 60)
kill -9 $W1
wait $W1 2>/dev/null
say "killed the worker after $c results"
check "the worker had produced results before the kill ($c)" [ "$c" -ge 3000 ]
# the restarted worker runs with a tight backpressure bound: it holds and resumes many times
# while it catches up, and must still lose nothing
write_conf "$T/w2.conf" worker.id=second backpressure.max.records=300 backpressure.resume.records=100 \
  batch.max.records=64
start_worker w2 "$T/w2.conf"
W2=$WPID
wait $PROD
check "producer delivered all $N" [ $? -eq 0 ]
# results of the restarted worker until every id is seen
start=$SECONDS
while [ $((SECONDS - start)) -lt 90 ]; do
  $KU results "$B" out | cut -f2 | sort -u >"$T/ids.txt"
  [ "$(wc -l <"$T/ids.txt")" -ge $N ] && break
  sleep 1
done
seq 0 $((N - 1)) | sed 's/^/r/' | sort >"$T/expected.txt"
total=$($KU count "$B" out)
check "every one of $N ids has a result after kill -9 + restart (unique $(wc -l <"$T/ids.txt"), total $total)" \
  cmp -s "$T/expected.txt" "$T/ids.txt"
say "duplicates (redelivered after the kill): $((total - N))"
check "the restarted worker classified records" grep -q "records=[1-9]" "$T/w2.log"
check "... and held back for backpressure" grep -q "backpressure=[1-9]" "$T/w2.log"
check "restarted worker exits 0 on SIGTERM" stop_worker $W2
finish
