#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_restart.sh -- kill -9 the worker in mid-stream, produce more while it is down, restart
# it while records keep arriving: no record is lost (every id has a result; duplicates are
# allowed, at-least-once, and counted). The restarted worker runs with a backpressure bound so
# small that it must hold back (see below), and the test checks the metric that says it did.
. "$(dirname "$0")/lib.sh"

# Sizing (see "what the dev broker keeps" in lib.sh): N1 while the first worker runs, N2 while
# no worker runs, N3 while the restarted one catches up; 4 input and 8 output partitions;
# results budget 2 copies (what the killed worker had not committed is redone).
N1=6000
N2=2000
N3=2000
N=$((N1 + N2 + N3))
start_broker in:4 out:8 dlq:1
budget_check "input" $N 1 $IN_RECORD_BYTES 4
budget_check "results" $N 2 $OUT_RECORD_BYTES 8
train_model
write_conf "$T/w.conf" worker.id=first
start_worker w1 "$T/w.conf"
W1=$WPID
# records start once the worker has its partitions, so that the kill comes while they flow
check "the first worker got its partitions" wait_assigned w1 120
"$K" produce -b "$B" -t in --tsv -n $N1 --rate 2000 --id-prefix a -q "$SRC/tests/data/sections-dev.tsv" &
PROD=$!
PIDS+=("$PROD")
c=$(wait_count out 1000 180)
running=no; kill -0 $PROD 2>/dev/null && running=yes
forget_worker $W1
kill -9 $W1
wait $W1 2>/dev/null
say "killed the worker after $c results (producer still running: $running)"
check "the worker had produced results before the kill ($c)" [ "$c" -ge 1000 ]
wait $PROD
check "producer delivered all $N1 of the first part" [ $? -eq 0 ]
# while no worker runs: a backlog of at least N2 records for the restarted worker
"$K" produce -b "$B" -t in --tsv -n $N2 --id-prefix b -q "$SRC/tests/data/sections-dev.tsv"
check "producer delivered all $N2 of the second part" [ $? -eq 0 ]
# The restarted worker holds back when backpressure.max.records (100) records are consumed but
# not yet delivered. Records count from the moment they are consumed, and a batch is only
# classified when it is full (batch.max.records=256), after batch.max.wait.ms (1000) or on a
# hold; so with a backlog of thousands of records, the worker consumes 100 records of its first
# batch (microseconds each) long before that batch could be due: the hold must happen, on every
# run, however slow the machine. It resumes at 20 in flight, and holds again on the next 100.
write_conf "$T/w2.conf" worker.id=second backpressure.max.records=100 backpressure.resume.records=20 \
  batch.max.records=256 batch.max.wait.ms=1000
start_worker w2 "$T/w2.conf"
W2=$WPID
"$K" produce -b "$B" -t in --tsv -n $N3 --rate 1000 --id-prefix c -q "$SRC/tests/data/sections-dev.tsv" &
PROD=$!
PIDS+=("$PROD")
wait $PROD
check "producer delivered all $N3 of the third part (while the restarted worker ran)" [ $? -eq 0 ]
{ seq 0 $((N1 - 1)) | sed 's/^/a/'; seq 0 $((N2 - 1)) | sed 's/^/b/'; seq 0 $((N3 - 1)) | sed 's/^/c/'; } |
  sort >"$T/expected.txt"
wait_until 180 have_all_ids
total=$(wc -l <"$T/results.txt")
check "every one of $N ids has a result after kill -9 + restart (unique $(wc -l <"$T/ids.txt"), total $total)" \
  cmp -s "$T/expected.txt" "$T/ids.txt"
say "duplicates (redone after the kill): $((total - $(wc -l <"$T/ids.txt")))"
check "the restarted worker classified records" \
  [ "$(awk -F'\t' '$7 == "second"' "$T/results.txt" | wc -l)" -gt 0 ]
check "restarted worker exits 0 on SIGTERM" stop_worker $W2
# after the stop every metrics window with records is in the log
check "... and it held back for backpressure (backpressure= in its metrics)" \
  grep -q "fac=METRICS.* backpressure=[1-9]" "$T/w2.log"
check "the dev broker kept every record of in and out (low watermark 0)" kept_all in out
finish
