#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_sigterm.sh -- SIGTERM in mid-stream drains cleanly: exit 0, the committed offset of
# every partition is one past the last record that has a result (everything processed is
# committed, nothing unprocessed is), and a new worker of the group then produces exactly
# the rest: N results in total, no duplicate, none missing. Also a second signal exits at once.
. "$(dirname "$0")/lib.sh"

# Sizing (see "what the dev broker keeps" in lib.sh): NA records while the first worker runs,
# NB after it stopped (so it stops in mid-stream on every run, however fast it is); exactly
# once here, so 1 copy; 8 input and 8 output partitions.
NA=12000
NB=2000
N=$((NA + NB))
start_broker in:8 out:8 dlq:1
budget_check "input" $N 1 $IN_RECORD_BYTES 8
budget_check "results" $N 1 $OUT_RECORD_BYTES 8
train_model
write_conf "$T/w.conf" batch.max.records=32
start_worker w1 "$T/w.conf"
W1=$WPID
check "the first worker got its partitions" wait_assigned w1 120
# records keep arriving during the drain (about 4 s of input from when the worker has its
# partitions; SIGTERM comes after the first 2000 results)
"$K" produce -b "$B" -t in --tsv -n $NA --rate 3000 --id-prefix a -q "$SRC/tests/data/sections-dev.tsv" &
PROD=$!
PIDS+=("$PROD")
c=$(wait_count out 2000 180)
running=no; kill -0 $PROD 2>/dev/null && running=yes
say "SIGTERM after $c results (producer still running: $running)"
forget_worker $W1
kill -TERM $W1
wait $W1
st=$?
check "first worker exits 0 after SIGTERM (status $st)" [ $st -eq 0 ]
check "it logged a clean stop" grep -q "fac=WORKER stopped" "$T/w1.log"
$KU results "$B" out >"$T/r1.txt"
n1=$(wc -l <"$T/r1.txt")
check "stopped in mid-stream ($n1 of $N)" [ "$n1" -gt 0 -a "$n1" -lt $N ]
# per partition: last offset with a result + 1 == committed offset
awk -F'\t' '{ if (!($3 in m) || $4 > m[$3]) m[$3] = $4 } END { for (p in m) print p, m[p] + 1 }' "$T/r1.txt" |
  sort -n >"$T/last.txt"
$KU committed "$B" test in | awk '$2 >= 0' | sort -n >"$T/committed.txt"
check "committed offsets = last processed + 1 on every partition ($(tr '\n' ' ' <"$T/committed.txt"))" \
  cmp -s "$T/last.txt" "$T/committed.txt"
check "no duplicate among the first worker's results" [ "$(cut -f2 "$T/r1.txt" | sort | uniq -d | wc -l)" -eq 0 ]

wait $PROD
check "producer delivered all $NA" [ $? -eq 0 ]
"$K" produce -b "$B" -t in --tsv -n $NB --id-prefix b -q "$SRC/tests/data/sections-dev.tsv"
check "producer delivered $NB more after the first worker stopped" [ $? -eq 0 ]
start_worker w2 "$T/w.conf"
W2=$WPID
wait_count out $N 180 >/dev/null
# after a clean stop everything the worker did is in the topic: the exact count is final
check "second worker exits 0 on SIGTERM" stop_worker $W2
$KU results "$B" out | cut -f2 | sort >"$T/all.txt"
{ seq 0 $((NA - 1)) | sed 's/^/a/'; seq 0 $((NB - 1)) | sed 's/^/b/'; } | sort >"$T/expected.txt"
check "after a restart: exactly $N results (got $(wc -l <"$T/all.txt"))" [ "$(wc -l <"$T/all.txt")" -eq $N ]
check "... each id once, none missing" cmp -s "$T/expected.txt" "$T/all.txt"
check "the dev broker kept every record of in and out (low watermark 0)" kept_all in out

# two signals: the second one exits at once, without waiting for the drain (SIGTERM then
# SIGINT: two different signals are not merged while pending)
start_worker w3 "$T/w.conf" -X kafka.group.id=other -X shutdown.timeout.ms=60000
W3=$WPID
check "the third worker got its partitions" wait_assigned w3 120
forget_worker $W3
kill -TERM $W3; kill -INT $W3
wait $W3
st=$?
check "a second signal exits at once with 128+signal (status $st)" [ $st -eq 143 -o $st -eq 130 ]
finish
