#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_exactly_once.sh -- processing.guarantee=exactly_once against Apache Kafka (the dev broker
# ignores read_committed and does not store transactional offsets, so this test runs on the real
# broker only: ctest kafka_real_exactly_once). Checked by the independent verifier (kafka_util.py
# verify: a read_committed consumer comparing input ids with result ids):
#   - a clean run: every input once, the group's committed offsets at the end of the input;
#   - kill -9 mid-stream, restart with the same worker.id: 0 lost, 0 duplicates, and the killed
#     instance's open transaction is aborted (a read_uncommitted reader sees more records than
#     a read_committed one, or the kill landed between windows);
#   - a second instance with the same worker.id fences the first (which exits with an error);
#   - exactly_once without worker.id is refused at start.
. "$(dirname "$0")/lib.sh"

if ! real_broker; then
  say "exactly-once needs Apache Kafka (KINFER_TEST_BROKER=kafka): nothing to do on the dev broker"
  finish
fi

start_broker in:4 out:4 dlq:1
train_model
EOS=(processing.guarantee=exactly_once transaction.interval.ms=100 kafka.consumer.session.timeout.ms=10000)

# -- refused without worker.id
write_conf "$T/noid.conf" "${EOS[@]}"
"$K" serve --config "$T/noid.conf" >/dev/null 2>"$T/noid.log"
st=$?
check "exactly_once without worker.id is refused (exit $st)" test "$st" -ne 0
check "the refusal names worker.id" grep -q "worker.id" "$T/noid.log"

# -- a clean run
N=3000
"$K" produce -b "$B" -t in --tsv -n $N --id-prefix a -q "$SRC/tests/data/sections-dev.tsv"
write_conf "$T/w.conf" "${EOS[@]}" worker.id=w1
start_worker w1 "$T/w.conf"
W1=$WPID
verified() { # verified N -- the verifier sees N results (read_committed); sets V
  V=$($KU verify "$B" in out dlq)
  [[ $V == *" results=$1 "* ]]
}
check "clean run: $N results committed" wait_until 120 verified $N
say "$V"
check "clean run: 0 lost, 0 duplicates" bash -c "[[ '$V' == *' lost=0 duplicates=0 extra=0 '* ]]"
stop_worker "$W1"; st=$?
check "the worker stops cleanly (exit $st)" test "$st" -eq 0
committed_at_end() {
  diff <($KU committed "$B" test in | sort) <($KU ends "$B" in | sort) >/dev/null
}
check "the group's committed offsets are the end of the input" committed_at_end
check "windows were committed as transactions" grep -q "fac=TXN.*transactional producer ready" "$T/w1.log"

# -- kill -9 mid-stream, restart with the same worker.id
start_feeder in b 1000 2000 6
start_worker w1b "$T/w.conf"
W1=$WPID
check "the restarted worker classifies" wait_until 60 classified w1b
forget_worker "$W1"; kill -9 "$W1"; wait "$W1" 2>/dev/null
say "killed w1b (kill -9) mid-stream"
start_worker w1c "$T/w.conf"
W1=$WPID
check "the feeder delivered every chunk" stop_feeder b
M=$((N + $(feeder_chunks b) * 1000))
check "after kill -9 and restart: $M results committed" wait_until 180 verified $M
say "$V"
check "after kill -9 and restart: 0 lost, 0 duplicates" bash -c "[[ '$V' == *' lost=0 duplicates=0 extra=0 '* ]]"

# -- a second instance with the same worker.id fences the first: the first learns it at its next
# transaction (records arrive on its partitions), stops with an error, and the second takes over
start_worker w1d "$T/w.conf"
W2=$WPID
check "the second instance with the same worker.id joins" wait_assigned w1d 120
forget_worker "$W1"
"$K" produce -b "$B" -t in --tsv -n 500 --id-prefix c -q "$SRC/tests/data/sections-dev.tsv"
M=$((M + 500))
fenced() { ! kill -0 "$W1" 2>/dev/null; }
if wait_until 120 fenced; then
  ok "the older instance is fenced by the newer one and stops"
  wait "$W1"; st=$?
  check "the fenced instance exits with an error (exit $st)" test "$st" -ne 0
  check "its log says it was fenced" grep -qiE "fenc" "$T/w1c.log"
else
  fail "the older instance is fenced by the newer one and stops"
fi
check "the newer instance goes on: $M results committed" wait_until 120 verified $M
say "$V"
check "still 0 lost, 0 duplicates" bash -c "[[ '$V' == *' lost=0 duplicates=0 extra=0 '* ]]"
stop_worker "$W2"
check "the dev broker's limits do not apply: Apache Kafka kept every record" kept_all in
finish
