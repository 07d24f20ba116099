#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_revoke.sh -- a rebalance while the brokers hold the results back (ctest kafka_revoke).
# An at-least-once worker drains what it consumed before giving partitions up (on revoke it
# flushes its producer, bounded by shutdown.timeout.ms). When the brokers do not take the results
# in that time -- a cluster outage; the fault suite saw it after its whole cluster came back --
# the worker must not stop (a whole group would stop on a broker outage, and a restart would only
# do the same again): it stores offsets only up to the first undelivered record, forgets the
# revoked partitions' records in flight, logs it, and keeps serving. The records are consumed
# again by the partitions' next owner: none is lost (duplicates are allowed at-least-once).
#
# The dev broker's fault injection makes broker 2, the output topic's leader, answer every request
# 30 s late (the input's leader and the group's coordinator are broker 1, so the feeder and the
# rebalance are not slowed); worker A has shutdown.timeout.ms=1500, and worker B joins while A's
# results are held back. Broker 2 answers on time again once A has said so.
. "$(dirname "$0")/lib.sh"

if real_broker; then
  say "needs the dev broker's fault injection (kinfer dev-broker --control): nothing to run on Apache Kafka"
  finish
fi

start_control_broker 2 in:2 out:2 dlq:1
for p in 0 1; do
  check "control: leader of in[$p] is broker 1" ctl leader in $p 1
  check "control: leader of out[$p] is broker 2" ctl leader out $p 2
done
check "control: leader of dlq is broker 2" ctl leader dlq 0 2
check "control: group coordinator is broker 1" ctl coordinator group test 1

train_model
write_conf "$T/a.conf" worker.id=A shutdown.timeout.ms=1500
write_conf "$T/b.conf" worker.id=B shutdown.timeout.ms=1500

start_feeder in f 200 200 40
start_worker A "$T/a.conf"; WA=$WPID
check "A classifies" wait_until 120 classified A

check "control: broker 2 answers 30 s late" ctl rtt 2 30000
start_worker B "$T/b.conf"; WB=$WPID
held() { grep -q "fac=WORKER partitions revoked before [1-9][0-9]* results were delivered" "$T/A.log"; }
check "A gave partitions up with results still held back, said so, and kept serving" \
  wait_until 180 held
grep "partitions revoked before" "$T/A.log" | head -2 | sed 's/^/#   /' >&2
check "control: broker 2 answers on time again" ctl rtt 2 0
check "A is still running" kill -0 "$WA"
check "B joined and classified records" wait_until 180 classified B

check "the feeder delivered every chunk" stop_feeder f
feeder_ids f | sort >"$T/expected.txt"
n=$(wc -l <"$T/expected.txt")
wait_until 180 have_all_ids
total=$(wc -l <"$T/results.txt")
check "every one of $n ids has a result (unique $(wc -l <"$T/ids.txt"), total $total)" \
  cmp -s "$T/expected.txt" "$T/ids.txt"
say "duplicates (results delivered late, and records consumed again): $((total - $(wc -l <"$T/ids.txt")))"
# nothing in flight any more (the last metrics window of each): results sent while broker 2 held
# everything back are answered up to 30 s later, and a stop waits only shutdown.timeout.ms
drained() { grep "fac=METRICS" "$T/$1.log" | tail -1 | grep -q " in_flight=0 "; }
check "A and B have nothing in flight" wait_until 180 bash -c "$(declare -f drained); T=$T; drained A && drained B"
stop_both() { stop_worker "$WA" && stop_worker "$WB"; }
check "A and B exit 0 on SIGTERM" stop_both
finish
