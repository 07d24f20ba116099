#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_group.sh -- two workers in one group split the partitions; a third joins while records
# flow, classifies some, and leaves (SIGTERM) while records still flow; the first two take its
# partitions back. Nothing is lost (at-least-once: every id has a result, duplicates allowed
# and counted), and all three workers shared the work.
#
# Every step waits on something it can observe (assignments in the logs, metrics windows,
# results), with generous bounds; records are produced by a feeder that keeps going, chunk by
# chunk, until the test has seen the third worker join, classify, leave and the other two
# re-split, and then two chunks more: so there are always records to hand over, however slow
# the machine is.
. "$(dirname "$0")/lib.sh"

# Sizing (see "what the dev broker keeps" in lib.sh): at most MAX_CHUNKS x CHUNK records; the
# feeder's own pace (one `kinfer produce` per chunk, at most RATE/s) makes that about a minute.
# 8 input and 8 output partitions; results budget 2 copies (rebalances redo what was not yet
# committed).
CHUNK=200
RATE=400
MAX_CHUNKS=60
MAXREC=$((CHUNK * MAX_CHUNKS))
start_broker in:8 out:8 dlq:1
budget_check "input" $MAXREC 1 $IN_RECORD_BYTES 8
budget_check "results" $MAXREC 2 $OUT_RECORD_BYTES 8
train_model
write_conf "$T/a.conf" worker.id=A
write_conf "$T/b.conf" worker.id=B
write_conf "$T/c.conf" worker.id=C
start_worker A "$T/a.conf"; WA=$WPID
start_worker B "$T/b.conf"; WB=$WPID
# current assignment of a worker: its last CONSUMER line, if that is an assignment (eager
# protocol: each assignment replaces the previous one)
current() { grep "fac=CONSUMER" "$T/$1.log" | tail -1 | grep "assigned" | sed 's/.*partitions=//' | tr ',' '\n'; }
# the workers named split the 8 partitions between them (each has some, none shared)
split_ok() {
  local w all="" one
  for w in "$@"; do
    one=$(current "$w" | sort)
    [ -n "$one" ] || return 1
    all+="$one"$'\n'
  done
  [ "$(echo -n "$all" | sort | uniq -d | wc -l)" -eq 0 ] && [ "$(echo -n "$all" | sort -u | wc -l)" -eq 8 ]
}
check "A and B split the 8 partitions between them" wait_until 120 split_ok A B
say "A: $(current A | tr '\n' ' ')  B: $(current B | tr '\n' ' ')"

start_feeder in f $CHUNK $RATE $MAX_CHUNKS
check "A and B classify the first records" wait_until 120 classified A
start_worker C "$T/c.conf"; WC=$WPID
# joined = assigned and classifying (the dev broker may revoke a first assignment at once when
# the others are slow to rejoin, and take seconds to settle; the feeder keeps records coming)
check "the third worker joined, got partitions and classified records" wait_until 180 classified C
say "C: $(current C | tr '\n' ' ') after $(feeder_chunks f) chunks"
stop_worker $WC
check "the third worker left cleanly (exit 0)" [ $? -eq 0 ]
check "A and B split the 8 partitions again after C left" wait_until 120 split_ok A B
say "A: $(current A | tr '\n' ' ')  B: $(current B | tr '\n' ' ')"
# two more chunks after the re-split: records on C's old partitions that only A and B can take
more_chunks() { [ "$(feeder_chunks f)" -ge $(($1 + 2)) ]; }
check "the feeder delivered two chunks after the re-split" wait_until 120 more_chunks "$(feeder_chunks f)"
check "the feeder delivered every chunk" stop_feeder f
feeder_ids f | sort >"$T/expected.txt"
n=$(wc -l <"$T/expected.txt")
say "$n records produced in $(feeder_chunks f) chunks"

wait_until 120 have_all_ids
total=$(wc -l <"$T/results.txt")
check "every one of $n ids has a result (unique $(wc -l <"$T/ids.txt"), total $total)" \
  cmp -s "$T/expected.txt" "$T/ids.txt"
say "duplicates (redone after a rebalance): $((total - $(wc -l <"$T/ids.txt")))"
for w in A B C; do
  say "worker $w: $(awk -F'\t' -v w=$w '$7 == w' "$T/results.txt" | wc -l) results on partitions" \
    "$(awk -F'\t' -v w=$w '$7 == w { print $3 }' "$T/results.txt" | sort -un | tr '\n' ' ')"
done
check "A, B and C all classified records" \
  [ "$(cut -f7 "$T/results.txt" | sort -u | tr '\n' ' ')" = "A B C " ]
stop_both() { stop_worker $WA && stop_worker $WB; }
check "A and B exit 0 on SIGTERM" stop_both
check "the dev broker kept every record of in and out (low watermark 0)" kept_all in out
finish
