#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_backpressure.sh -- the producer side of the worker's memory is bounded in bytes (issue 8:
# "memory bounds are counted in records, not bytes"; docs/streaming.md, "Batching,
# backpressure, memory"). The dev broker's fault injection answers the worker's produce requests
# to the dead-letter topic's leader 15 s late, and 20 undecodable records of 64 KB each arrive:
# each one's dead letter carries the whole value (about 86 KB in JSON), far fewer records than
# backpressure.max.records but more bytes than backpressure.max.bytes (1 MiB here). The test
# checks that
#   1. the worker holds: a metrics window counts a hold while the sends are unanswered;
#   2. the bytes sent and not yet delivered (in_flight_bytes in every metrics line) reach the
#      bound and never pass it by more than the documented slack (two batches of messages);
#   3. once the broker answers, every record gets its dead letter and nothing else is lost.
# The figures depend on no timing: the unanswered sends last 15 s whatever the machine, and the
# bound is checked on every line.
. "$(dirname "$0")/lib.sh"

if real_broker; then
  say "needs the dev broker's fault injection (kinfer dev-broker --control): nothing to run on Apache Kafka"
  finish
fi

N=20
SIZE=64000
BP=1048576
BATCH=65536
start_control_broker 2 in:1 out:1 dlq:1
check "control: leader of in is broker 1" ctl leader in 0 1
check "control: leader of dlq is broker 2" ctl leader dlq 0 2
budget_check "dead letters" "$N" 1 $((SIZE * 4 / 3 + 2048)) 1
train_model

write_conf "$T/w.conf" backpressure.max.bytes=$BP batch.max.bytes=$BATCH
start_worker w "$T/w.conf"
W=$WPID
check "worker assigned" wait_assigned w
# every produce request to broker 2 (the dead-letter topic's leader) is answered 15 s late,
# and the broker answers a connection's requests in order: nothing is delivered for 15 s
check "inject: produce to broker 2 answered 15 s late" ctl errors 2 produce NO_ERROR 5 15000
$PY - "$B" "$N" "$SIZE" <<'PYEOF' || fail "produce the undecodable records"
import sys
from confluent_kafka import Producer
b, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
p = Producer({"bootstrap.servers": b, "linger.ms": 0, "message.max.bytes": 2000000})
for i in range(n):
    # not JSON: each becomes an `undecodable` dead letter that carries the whole value
    p.produce("in", key=b"raw%d" % i, value=(b"%08d" % i) + b"x" * (size - 8))
sys.exit(0 if p.flush(30) == 0 else 1)
PYEOF

holding() { grep -q "fac=METRICS.* backpressure=[1-9]" "$T/w.log"; }
check "1: the worker holds while its dead letters are unanswered" wait_until 120 holding
max_in_flight() { sed -n 's/.*fac=METRICS.* in_flight_bytes=\([0-9]*\).*/\1/p' "$T/w.log" | sort -n | tail -1; }
reached() { [ "$(max_in_flight)" -ge "$BP" ]; }
check "2: the bytes in flight reach backpressure.max.bytes=$BP" wait_until 60 reached
# the slack the docs give: the hold is checked between batches, so at most two batches of
# messages past the bound; a batch of BATCH bytes of input makes dead letters of 4/3 of it
# (base64) plus a header each
slack=$((2 * (BATCH * 4 / 3 + SIZE * 4 / 3 + 4096)))
check "3: every record gets its dead letter once the broker answers" wait_until 180 bash -c "[ \$($KU count $B dlq) -ge $N ]"
m=$(max_in_flight)
check "2: in_flight_bytes never passed the bound by more than two batches (max $m, bound $BP + $slack)" [ "$m" -le $((BP + slack)) ]
check "worker exits 0 on SIGTERM" stop_worker $W
check "3: the broker kept every record" kept_all in dlq
# one undecodable dead letter per offset, each carrying the whole value
$KU dlq "$B" dlq >"$T/dlq.txt"
want=$(seq 0 $((N - 1)) | awk -v s="$SIZE" '{ print "undecodable\t0\t" $1 "\t" s }')
got=$(awk -F'\t' '{ print $1 "\t" $2 "\t" $3 "\t" $4 }' "$T/dlq.txt" | sort -t$'\t' -k3,3n)
check "3: one undecodable dead letter for each of the $N offsets, with its whole value" [ "$got" = "$want" ]
finish
