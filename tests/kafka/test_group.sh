#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_group.sh -- two workers in one group split the partitions; a third joins and then
# leaves (SIGTERM) while records flow; nothing is lost.
. "$(dirname "$0")/lib.sh"

N=30000
start_broker in:8 out:4 dlq:1
train_model
write_conf "$T/a.conf" worker.id=A
write_conf "$T/b.conf" worker.id=B
write_conf "$T/c.conf" worker.id=C
start_worker A "$T/a.conf"; WA=$WPID
start_worker B "$T/b.conf"; WB=$WPID
# current assignment of a worker: its last CONSUMER line, if that is an assignment (eager
# protocol: each assignment replaces the previous one)
current() { grep "fac=CONSUMER" "$T/$1.log" | tail -1 | grep "assigned" | sed 's/.*partitions=//' | tr ',' '\n'; }
split_ok() {
  local a b
  a=$(current A | sort); b=$(current B | sort)
  [ -n "$a" ] && [ -n "$b" ] && [ -z "$(comm -12 <(echo "$a") <(echo "$b"))" ] &&
    [ "$( (echo "$a"; echo "$b") | sort -u | wc -l)" -eq 8 ]
}
wait_split() { for _ in $(seq 300); do split_ok && return 0; sleep 0.1; done; return 1; }
check "A and B split the 8 partitions between them" wait_split
say "A: $(current A | tr '\n' ' ')  B: $(current B | tr '\n' ' ')"
"$K" produce -b "$B" -t in --tsv -n $N --rate 3000 -q "$SRC/tests/data/sections-dev.tsv" &
PROD=$!
PIDS+=("$PROD")
sleep 2
start_worker C "$T/c.conf"; WC=$WPID
# joined = assigned and classifying (the dev broker may revoke a first assignment at once
# when the others are slow to rejoin, and take seconds to settle)
c_working() { for _ in $(seq 600); do grep -q "fac=METRICS.* records=[1-9]" "$T/C.log" && return 0; sleep 0.1; done; return 1; }
check "the third worker joined, got partitions and classified records" c_working
sleep 1
stop_worker $WC
check "the third worker left cleanly (exit 0)" [ $? -eq 0 ]
wait $PROD
check "producer delivered all $N" [ $? -eq 0 ]
start=$SECONDS
while [ $((SECONDS - start)) -lt 60 ]; do
  $KU results "$B" out >"$T/results.txt"
  [ "$(cut -f2 "$T/results.txt" | sort -u | wc -l)" -ge $N ] && break
  sleep 1
done
cut -f2 "$T/results.txt" | sort -u >"$T/ids.txt"
seq 0 $((N - 1)) | sed 's/^/r/' | sort >"$T/expected.txt"
check "every one of $N ids has a result (unique $(wc -l <"$T/ids.txt"), total $(wc -l <"$T/results.txt"))" \
  cmp -s "$T/expected.txt" "$T/ids.txt"
for w in A B C; do
  say "worker $w: $(awk -F'\t' -v w=$w '$7 == w' "$T/results.txt" | wc -l) results on partitions" \
    "$(awk -F'\t' -v w=$w '$7 == w { print $3 }' "$T/results.txt" | sort -un | tr '\n' ' ')"
done
check "A, B and C all classified records" \
  [ "$(cut -f7 "$T/results.txt" | sort -u | tr '\n' ' ')" = "A B C " ]
stop_both() { stop_worker $WA && stop_worker $WB; }
check "A and B exit 0 on SIGTERM" stop_both
finish
