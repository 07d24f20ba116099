#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_refused.sh -- a broker that refuses deliveries for good (issue 8: "any permanent delivery
# error for one record is fatal today"). The dev broker's fault injection (`kinfer dev-broker
# --control`) makes the leader of the output and DLQ topics refuse the worker's next produce
# requests with MSG_SIZE_TOO_LARGE, POLICY_VIOLATION or INVALID_RECORD, one record at a time
# (not TOPIC_AUTHORIZATION_FAILED: librdkafka then refuses further messages to that topic
# locally until its next metadata refresh, so the minimal form never reaches the broker), and the test checks each step of the refused path (docs/streaming.md, "Refused
# deliveries"):
#   1. a refused result becomes an `undeliverable` dead letter that carries it (form full);
#   2. ... whose dead letter, refused too, goes out in the minimal form;
#   3. a refused dead letter of an undecodable record goes out minimal, keeping its reason;
#   4. when even the minimal one is refused, delivery.refused.policy=skip (the default) logs
#      and counts the record and moves on: later records get their results and the committed
#      offset reaches the end of the partition;
#   5. delivery.refused.policy=fail stops the worker (exit 1) with nothing committed past the
#      record, and the next worker redoes it;
#   6. a LeaveGroup answered 100 s late does not hold a SIGTERM past shutdown.timeout.ms (the
#      teardown watchdog cuts librdkafka's own 5 s wait for that request);
#   7. nor do OffsetCommits answered 100 s late (the final commit and the revoke's);
#   8. nor does a result answered 100 s late: the worker exits 1 without committing past it,
#      and the next worker redoes it.
# The input topic's leader is broker 1 and the output and DLQ topics' is broker 2: errors are
# injected on broker 2 alone, so the test's own producer is never refused. Each step waits until
# the injected errors are used up (errors-left 0) and its outcome is visible.
. "$(dirname "$0")/lib.sh"

if real_broker; then
  say "needs the dev broker's fault injection (kinfer dev-broker --control): nothing to run on Apache Kafka"
  finish
fi

start_control_broker 2 in:1 out:1 dlq:1
# errors_left -- produce errors broker 2 still has to serve
errors_left() { ctl errors-left 2 produce && sed -n 's/^ok: errors-left 2 produce -> //p' "$T/broker.out" | tail -1; }
used_up() { [ "$(errors_left)" = 0 ]; }

if ctl errors 2 produce NO_SUCH_ERROR 1; then fail "control: an unknown error name is refused"; else ok "control: an unknown error name is refused"; fi
check "control: leader of in is broker 1" ctl leader in 0 1
check "control: leader of out is broker 2" ctl leader out 0 2
check "control: leader of dlq is broker 2" ctl leader dlq 0 2

train_model
# produce_one ID TEXT -- one JSON input record with that id (key = id)
produce_one() {
  $PY - "$B" "$1" "$2" <<'PYEOF'
import json, sys
from confluent_kafka import Producer
b, rid, text = sys.argv[1:4]
p = Producer({"bootstrap.servers": b, "linger.ms": 0})
p.produce("in", key=rid.encode(), value=text.encode() if rid.startswith("raw") else json.dumps({"id": rid, "text": text}).encode())
sys.exit(0 if p.flush(30) == 0 else 1)
PYEOF
}
dlq_count() { $KU count "$B" dlq; }
out_count() { $KU count "$B" out; }

write_conf "$T/w.conf"
start_worker w "$T/w.conf"
W=$WPID
check "worker assigned" wait_assigned w

# 1. the result refused: an undeliverable dead letter carrying it
check "inject: 1 produce refused (MSG_SIZE_TOO_LARGE)" ctl errors 2 produce MSG_SIZE_TOO_LARGE 1
produce_one r1 "the kernel panics on boot" || fail "produce r1"
check "1: a dead letter for the refused result" wait_until 120 bash -c "[ \$($KU count $B dlq) -ge 1 ]"
check "1: the injected error was used" used_up

# 2. the result and its full dead letter refused: a minimal dead letter
check "inject: 2 produce refused (POLICY_VIOLATION)" ctl errors 2 produce POLICY_VIOLATION 2
produce_one r2 "printer driver for the office" || fail "produce r2"
check "2: a minimal dead letter" wait_until 120 bash -c "[ \$($KU count $B dlq) -ge 2 ]"
check "2: both injected errors were used" used_up

# 3. an undecodable record whose dead letter is refused: minimal, with its own reason
check "inject: 1 produce refused (INVALID_RECORD)" ctl errors 2 produce INVALID_RECORD 1
produce_one raw3 "{this is not json" || fail "produce raw3"
check "3: a minimal dead letter of the undecodable record" wait_until 120 bash -c "[ \$($KU count $B dlq) -ge 3 ]"
check "3: the injected error was used" used_up

# 4. result, dead letter and minimal dead letter refused: skipped (default policy), and on
check "inject: 3 produce refused (MSG_SIZE_TOO_LARGE)" ctl errors 2 produce MSG_SIZE_TOO_LARGE 3
produce_one r4 "mount the usb disk" || fail "produce r4"
check "4: the record is skipped and logged" wait_until 120 grep -q "skipped topic=in partition=0 offset=3: dead letter refused: .*delivery.refused.policy=skip" "$T/w.log"
check "4: the injected errors were used" used_up
produce_one r5 "compile the kernel module" || fail "produce r5"
check "4: the next record gets its result" wait_until 120 bash -c "[ \$($KU count $B out) -ge 1 ]"
committed_end() { [ "$($KU committed "$B" test in)" = "0 $1" ]; }
check "4: the committed offset reaches the end (5)" wait_until 60 committed_end 5
check "4: the metrics line counts the skip" wait_until 30 grep -q "fac=METRICS.* skipped=1" "$T/w.log"
check "the worker is still running" kill -0 $W
check "worker exits 0 on SIGTERM" stop_worker $W

# 5. delivery.refused.policy=fail: the worker stops, nothing committed past the record
write_conf "$T/f.conf" delivery.refused.policy=fail
start_worker f "$T/f.conf"
F=$WPID
forget_worker $F # it is meant to die here
check "policy=fail: worker assigned" wait_assigned f
check "inject: 3 produce refused (MSG_SIZE_TOO_LARGE)" ctl errors 2 produce MSG_SIZE_TOO_LARGE 3
produce_one r6 "wifi drops after suspend" || fail "produce r6"
gone() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null); [ -z "$st" ] || [ "${st:0:1}" = Z ]; }
check "policy=fail: the worker stops by itself" wait_until 120 gone $F
gone $F || kill -9 $F 2>/dev/null
wait "$F"
st=$?
check "policy=fail: the worker exits 1 (got $st)" [ "$st" -eq 1 ]
check "policy=fail: it says why" grep -q "offset=5 refused: .*(delivery.refused.policy=fail)" "$T/f.log"
check "policy=fail: the injected errors were used" used_up
check "policy=fail: nothing committed past the record" committed_end 5
start_worker g "$T/w.conf"
G=$WPID
check "the next worker redoes the record" wait_until 120 bash -c "[ \$($KU count $B out) -ge 2 ]"
check "... and commits past it" wait_until 60 committed_end 6
check "worker exits 0 on SIGTERM" stop_worker $G

# 6. a group leave the coordinator never answers does not hold the shutdown: kinfer stops
# waiting for the close before shutdown.timeout.ms, and librdkafka's destroy, which would wait
# for its LeaveGroup request another 5 s (a fixed timeout in librdkafka 2.0), is cut by the
# teardown watchdog at shutdown.timeout.ms: exit 0, because the drain had finished. The
# watchdog's line is the deterministic check (the leave cannot finish: its answer comes 100 s
# late); the elapsed time is only checked against a gross overrun.
# stop_timed PID -- SIGTERM, wait; returns the exit status and sets EL to the milliseconds it took
stop_timed() {
  local t0 st
  t0=$(date +%s%N)
  forget_worker "$1"
  kill -TERM "$1" 2>/dev/null
  wait "$1"; st=$?
  EL=$(( ($(date +%s%N) - t0) / 1000000 ))
  return $st
}
# start_step STEP NAME -- a worker with shutdown.timeout.ms=4000 for that step; sets WPID
start_step() {
  write_conf "$T/$2.conf" shutdown.timeout.ms=4000
  start_worker "$2" "$T/$2.conf"
  check "$1: worker assigned" wait_assigned "$2"
}
# within_deadline STEP -- the last stop_timed took at most shutdown.timeout.ms (4 s) + 10 s
within_deadline() { check "$1: gone within shutdown.timeout.ms (+ 10 s for a loaded machine): $EL ms" [ "$EL" -le 14000 ]; }
start_step leave l
L=$WPID
check "leave: the next LeaveGroup to broker 1 is answered 100 s late" ctl errors 1 leavegroup NO_ERROR 1 100000
check "leave: ... and to broker 2" ctl errors 2 leavegroup NO_ERROR 1 100000
check "leave: worker exits 0 on SIGTERM" stop_timed $L
check "leave: the watchdog ended librdkafka's wait for the leave (the drain had finished)" \
  grep -q "shutdown.timeout.ms is over and the teardown .*has not finished; exiting without it: the drain had finished" "$T/l.log"
within_deadline leave

# 7. an offset commit the coordinator answers 100 s late holds neither the final commit nor
# the revoke's: each waits only for what is left of the shutdown (a synchronous
# rd_kafka_commit waits socket.timeout.ms, 60 s, for each). The record consumed before the
# SIGTERM has its result.
# The group's coordinator is broker 1 for this step and broker 2 after it, so that the delays
# left unused here reach no later worker.
check "commit: broker 1 coordinates group test" ctl coordinator group test 1
start_step commit c
C=$WPID
check "commit: every OffsetCommit to broker 1 is answered 100 s late" ctl errors 1 offsetcommit NO_ERROR 20 100000
n_out=$(out_count)
produce_one r7 "the sound card is silent" || fail "produce r7"
check "commit: r7 has its result" wait_until 120 bash -c "[ \$($KU count $B out) -gt $n_out ]"
check "commit: worker exits 0 on SIGTERM" stop_timed $C
check "commit: the final commit gave up at the shutdown's deadline" grep -q "final commit: commit: Local: Timed out" "$T/c.log"
within_deadline commit
check "commit: broker 2 coordinates group test from now on" ctl coordinator group test 2

# 8. a result the output topic's leader answers 100 s late: the final flush gives up at the
# shutdown's deadline, the worker exits 1 within shutdown.timeout.ms, nothing is committed past
# the record, and the next worker redoes it (the broker took the first copy, whose answer
# never came: a duplicate, which at-least-once allows)
start_step flush d
D=$WPID
check "flush: the next produce to broker 2 is answered 100 s late" ctl errors 2 produce NO_ERROR 1 100000
produce_one r8 "the screen stays black after resume" || fail "produce r8"
check "flush: r8 consumed, its result sent and unanswered" wait_until 120 grep -q "fac=METRICS.* in_flight=1 " "$T/d.log"
stop_timed $D
st=$?
check "flush: the worker exits 1 (a drain that did not finish; got $st)" [ "$st" -eq 1 ]
check "flush: it says the flush gave up" grep -q "fac=WORKER shutdown: " "$T/d.log"
within_deadline flush
# r8 is offset 7; 7 itself when step 7's late-answered commit was applied (the dev broker
# applies a request at once and delays only its answer), 6 when it was not
committed_at_most() { local c; c=$($KU committed "$B" test in | awk '{ print $2 }'); [ -n "$c" ] && [ "$c" -le "$1" ]; }
check "flush: nothing committed past r8" committed_at_most 7
start_worker e "$T/w.conf"
E=$WPID
check "flush: the next worker redoes r8 and commits past it" wait_until 120 committed_end 8
check "flush: that worker exits 0 on SIGTERM" stop_worker $E

# what each record got
$PY - "$B" >"$T/verdict.txt" 2>&1 <<'PYEOF'
import base64, hashlib, json, sys
from confluent_kafka import Consumer, TopicPartition
b = sys.argv[1]
def read(topic):
    c = Consumer({"bootstrap.servers": b, "group.id": "refused-reader", "enable.auto.commit": False,
                  "enable.partition.eof": True})
    c.assign([TopicPartition(topic, 0, 0)])
    out, idle = [], 0
    while idle < 100:
        m = c.poll(0.1)
        if m is None:
            idle += 1
            continue
        if m.error():
            break
        out.append(m)
    c.close()
    return out
bad = 0
def check(ok, what):
    global bad
    print(("ok: " if ok else "FAIL: ") + what)
    bad += 0 if ok else 1
dls = {}
for m in read("dlq"):
    d = json.loads(m.value())
    dls.setdefault(d["offset"], []).append((m, d, dict(m.headers() or [])))
res = {}
for m in read("out"):
    r = json.loads(m.value())
    res.setdefault(r["input_offset"], []).append(r)
check(sorted(dls) == [0, 1, 2], "dead letters for offsets 0, 1, 2 only (got %s)" % sorted(dls))
check(sorted(res) == [4, 5, 6, 7], "results for offsets 4 to 7 only (got %s)" % sorted(res))
check(all(len(v) == 1 for v in dls.values()), "one dead letter per record")
# 1: undeliverable, full, carries the refused result
m, d, h = dls.get(0, [(None, {}, {})])[0]
carried = base64.b64decode(d.get("value_base64") or "")
check(d.get("reason") == "undeliverable" and h.get("kinfer.dlq.form") == b"full",
      "r1: reason undeliverable, form full (%s, %s)" % (d.get("reason"), h.get("kinfer.dlq.form")))
try:
    r = json.loads(carried)
except ValueError:
    r = {}
check(r.get("id") == "r1" and r.get("input_offset") == 0 and "label" in r,
      "r1: the dead letter carries the refused result (id %r)" % r.get("id"))
check("MSG_SIZE_TOO_LARGE" in d.get("detail", "") or "too large" in d.get("detail", "").lower(),
      "r1: the detail names the broker's error (%r)" % d.get("detail"))
check(m is not None and m.key() == b"r1", "r1: keyed like the input")
# 2: minimal, undeliverable, no value, the size and sha256 of the refused result
m, d, h = dls.get(1, [(None, {}, {})])[0]
check(d.get("reason") == "undeliverable" and h.get("kinfer.dlq.form") == b"minimal",
      "r2: reason undeliverable, form minimal (%s, %s)" % (d.get("reason"), h.get("kinfer.dlq.form")))
check(not d.get("value_base64") and d.get("truncated") is True and d.get("value_size", 0) > 100
      and len(d.get("value_sha256") or "") == 64 and m.key() is None,
      "r2: no key or value, truncated, the result's size (%s) and sha256 kept" % d.get("value_size"))
check("dead letter was refused" in d.get("detail", "") and ("POLICY" in d.get("detail", "") or "olicy" in d.get("detail", "")),
      "r2: the detail says both refusals (%r)" % d.get("detail"))
# 3: minimal, undecodable kept, size and sha256 of the original value
orig = b"{this is not json"
m, d, h = dls.get(2, [(None, {}, {})])[0]
check(d.get("reason") == "undecodable" and h.get("kinfer.dlq.form") == b"minimal",
      "raw3: reason undecodable kept, form minimal (%s, %s)" % (d.get("reason"), h.get("kinfer.dlq.form")))
check(d.get("value_size") == len(orig) and d.get("value_sha256") == hashlib.sha256(orig).hexdigest(),
      "raw3: the original size and sha256 kept")
check([r["id"] for r in res.get(4, [])] == ["r5"], "r5 (after the skipped r4) has its result")
check([r["id"] for r in res.get(5, [])] == ["r6"], "r6 (refused under policy=fail) has its result from the next worker")
check(len(res.get(6, [])) >= 1 and all(r["id"] == "r7" for r in res[6]),
      "r7 (its commit answered late) has its result (%d copies)" % len(res.get(6, [])))
check(len(res.get(7, [])) >= 1 and all(r["id"] == "r8" for r in res[7]),
      "r8 (its result answered late) has its result (%d copies)" % len(res.get(7, [])))
sys.exit(1 if bad else 0)
PYEOF
st=$?
sed 's/^/#   /' "$T/verdict.txt" >&2
check "refused deliveries: results and dead letters as above" [ $st -eq 0 ]
check "the broker kept every record" kept_all in out dlq
finish
