#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_hostile.sh -- hostile records among good ones, with the product's DEFAULT limits
# (input.max.bytes, output.id.max.bytes, the producer's message.max.bytes; output.format=json as
# in the issue's examples): a 1.1 MB record (oversized), 800 KB that are not JSON (undecodable:
# base64 makes its dead letter 4/3 larger), a valid record whose id is 880 KB, a record keyed
# by 200 KB of control characters (its id; JSON escapes each to 6 bytes), a key that is not
# UTF-8. The worker stays up; every input offset gets a result or a dead letter (nothing lost);
# a dead letter too large to produce whole goes out reduced (a prefix of the value, with the
# original size and sha256); ids and keys are capped; every good record after a pill gets its
# result and the committed offsets reach the end of every partition.
# Then Avro records announcing billions of zero-size items (an array of null, an array of an
# empty record: a few bytes each) among good ones, to a second worker reading Avro with the
# array-heavy tests/data/hostile_record.avsc: each gets a dead letter with reason over_limit
# (input.max.items, default), every good record around them its result, and the committed offset
# reaches the end of the partition.
# Only the test's own producer and the dev broker's topics are set up for records over 1 MB.
. "$(dirname "$0")/lib.sh"

# what the broker keeps: input p0 1.3 MB + p1 1.7 MB of pills, the DLQ about 2 MB (2 reduced
# dead letters of < 1 MB), results tiny: all under half of the mock's 5 MiB per partition
start_broker in:2 out:2 dlq:1 inavro:1 outavro:1 dlqavro:1
train_model

$PY - "$B" "$SRC/tests/data/sections-dev.tsv" "$T/produced.tsv" <<'PYEOF' || fail "produce the records"
import json, sys
from confluent_kafka import Producer
brokers, tsv, out = sys.argv[1:4]
p = Producer({"bootstrap.servers": brokers, "message.max.bytes": 4000000, "linger.ms": 0})
lines = [l.rstrip("\n").split("\t", 1)[1] for l in open(tsv, encoding="utf-8")][:200]
pills = {
    0: [("oversized", None, b'{"id":"oversized","text":"' + b"x" * 1100000 + b'"}'),
        ("ctrlkey", bytes(range(1, 32)) * 6600, b'{"text":"hello world"}'),
        ("badkey", b"\xff\xfekey\xc3\x28", b'{"text":"hello world"}')],
    1: [("notjson", None, b"{" + b"x" * 800000),
        ("bigid", None, json.dumps({"id": "i" * 880000, "text": "hello world"}).encode())],
}
rows = []
def dr(err, m, name):
    rows.append((name, m.partition(), m.offset() if not err else -1))
n = 0
for part, ps in pills.items():
    for name, key, value in ps:
        for _ in range(10):  # good records before each pill (and after the last one)
            gid = "g%d" % n
            p.produce("in", partition=part, key=gid.encode(),
                      value=json.dumps({"id": gid, "text": lines[n % len(lines)]}).encode(),
                      on_delivery=lambda e, m, g=gid: dr(e, m, g))
            n += 1
        p.produce("in", partition=part, key=key, value=value,
                  on_delivery=lambda e, m, nm=name: dr(e, m, nm))
    for _ in range(10):
        gid = "g%d" % n
        p.produce("in", partition=part, key=gid.encode(),
                  value=json.dumps({"id": gid, "text": lines[n % len(lines)]}).encode(),
                  on_delivery=lambda e, m, g=gid: dr(e, m, g))
        n += 1
    p.flush(60)
if len(rows) != n + 5 or any(o < 0 for _, _, o in rows):
    sys.exit("not every record was produced: %r" % [r for r in rows if r[2] < 0][:5])
with open(out, "w") as f:
    for name, part, off in rows:
        f.write("%s\t%d\t%d\n" % (name, part, off))
PYEOF
TOTAL=$(wc -l <"$T/produced.tsv")
say "$TOTAL records produced ($(grep -c '^g' "$T/produced.tsv") good)"

# defaults for every limit; the common test settings only (timeouts, windows, the topics)
write_conf "$T/w.conf"
start_worker w "$T/w.conf"
W=$WPID
wait_until 180 bash -c "[ \$($KU count $B out) -ge $((TOTAL - 2)) ] && [ \$($KU count $B dlq) -ge 2 ]"
check "the worker is still running" kill -0 $W
check "worker exits 0 on SIGTERM" stop_worker $W

$PY - "$B" "$T/produced.tsv" <<'PYEOF' >"$T/verdict.txt" 2>&1
import base64, hashlib, json, sys
from confluent_kafka import Consumer, TopicPartition
brokers, produced = sys.argv[1:3]
def read(topic):
    c = Consumer({"bootstrap.servers": brokers, "group.id": "hostile-reader",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    md = c.list_topics(topic, timeout=10)
    tps = [TopicPartition(topic, p, 0) for p in md.topics[topic].partitions]
    c.assign(tps)
    left, out, idle = {tp.partition for tp in tps}, [], 0
    while left and idle < 200:
        m = c.poll(0.1)
        if m is None:
            idle += 1
            continue
        idle = 0
        if m.error():
            left.discard(m.partition())
            continue
        out.append(m)
    c.close()
    return out
bad = 0
def check(ok, what):
    global bad
    print(("ok: " if ok else "FAIL: ") + what)
    bad += 0 if ok else 1
rows = [l.split("\t") for l in open(produced).read().splitlines()]
where = {(int(p), int(o)): name for name, p, o in rows}
results, dls = {}, {}
for m in read("out"):
    r = json.loads(m.value())  # strict UTF-8: bytes that are not UTF-8 raise here
    results.setdefault((r["input_partition"], r["input_offset"]), []).append((m, r))
for m in read("dlq"):
    d = json.loads(m.value())
    dls.setdefault((d["partition"], d["offset"]), []).append((m, d))
lost = [where[k] for k in where if k not in results and k not in dls]
check(not lost, "every record has a result or a dead letter (missing: %s)" % lost[:10])
good_missing = [where[k] for k in where if where[k].startswith("g") and k not in results]
check(not good_missing, "every good record has a result, before and after the pills (missing: %s)" % good_missing[:10])
by = {v: k for k, v in where.items()}
orig = {"oversized": b'{"id":"oversized","text":"' + b"x" * 1100000 + b'"}', "notjson": b"{" + b"x" * 800000}
for name, reason in (("oversized", "oversized"), ("notjson", "undecodable")):
    d = dls.get(by[name], [(None, None)])[0][1]
    check(d is not None and d["reason"] == reason, "%s: dead letter with reason %s" % (name, reason))
    if d is None:
        continue
    v = base64.b64decode(d["value_base64"])
    check(d["truncated"] is True and d["value_size"] == len(orig[name]) and len(v) < len(orig[name])
          and orig[name].startswith(v) and len(v) > 500000,
          "%s: reduced dead letter: a prefix of %d of %d bytes, truncated=true, value_size kept" % (name, len(v), len(orig[name])))
    check(d["value_sha256"] == hashlib.sha256(orig[name]).hexdigest(), "%s: the original sha256 kept" % name)
    hdr = dict(dls[by[name]][0][0].headers())
    check(hdr.get("kinfer.dlq.form") == b"reduced" and hdr.get("kinfer.dlq.value.size") == str(len(orig[name])).encode(),
          "%s: headers kinfer.dlq.form=reduced, kinfer.dlq.value.size" % name)
r = results.get(by["bigid"], [(None, None)])[0][1]
check(r is not None and r["id"] == "i" * 4096, "880 KB id: a result with the id capped to output.id.max.bytes (4096)")
m, r = results.get(by["ctrlkey"], [(None, None)])[0]
key = bytes(range(1, 32)) * 6600
check(r is not None and r["id"].encode() == key[:4096] and m.key() == key[:4096],
      "200 KB control-character key: a result, id and Kafka key capped to 4096 bytes")
m, r = results.get(by["badkey"], [(None, None)])[0]
check(r is not None, "key that is not UTF-8: a result, valid UTF-8 JSON (id %r)" % (r and r["id"]))
sys.exit(1 if bad else 0)
PYEOF
st=$?
sed 's/^/#   /' "$T/verdict.txt" >&2
check "hostile records: results and dead letters as above" [ $st -eq 0 ]
check "the worker logged the reduced dead letters" grep -q "dead letter sent reduced" "$T/w.log"
$KU committed "$B" test in >"$T/committed.txt"
$KU ends "$B" in >"$T/ends.txt"
check "committed offsets = end of every partition ($(tr '\n' ' ' <"$T/committed.txt"))" cmp -s "$T/committed.txt" "$T/ends.txt"
check "the broker kept every record" kept_all in out dlq

# ---- Avro: billions of zero-size items announced in a few bytes ------------------------------
mkdir -p "$T/schemas"
cp "$SRC/tests/data/hostile_record.avsc" "$T/schemas/5.avsc"
$PY - "$B" >"$T/avro.tsv" <<'PYEOF' || fail "produce the Avro records"
import sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1], "linger.ms": 0})
def zz(n):  # Avro long: zigzag varint
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)
def s(t):
    t = t.encode()
    return zz(len(t)) + t
def record(rid, text, nulls=b"", empties=b""):
    # Confluent framing, schema id 5 (Hostile): id (union: string), nulls, empties, tree (null),
    # attrs (empty map), text (union: string)
    return (b"\0\0\0\0\5" + zz(1) + s(rid) + nulls + zz(0) + empties + zz(0) + zz(0) + zz(0)
            + zz(1) + s(text))
pills = {
    "nulls3e9": record("nulls3e9", "three billion nulls", nulls=zz(3000000000)),
    "empties2e62": record("empties2e62", "2^62 empty records", empties=zz(1 << 62)),
}
rows, n = [], 0
def dr(err, m, name):
    rows.append((name, m.offset() if not err else -1))
for name, value in [("g%d" % i, None) for i in range(5)] + [("nulls3e9", 1)] + \
        [("g%d" % i, None) for i in range(5, 10)] + [("empties2e62", 1)] + [("g%d" % i, None) for i in range(10, 15)]:
    v = pills[name] if value else record(name, "mount the disk and compile the kernel %s" % name)
    p.produce("inavro", partition=0, key=name.encode(), value=v, on_delivery=lambda e, m, nm=name: dr(e, m, nm))
p.flush(30)
if len(rows) != 17 or any(o < 0 for _, o in rows):
    sys.exit("not every Avro record was produced")
for name, off in rows:
    print("%s\t%d" % (name, off))
print("# pills of %d and %d bytes" % (len(pills["nulls3e9"]), len(pills["empties2e62"])), file=sys.stderr)
PYEOF
write_conf "$T/a.conf" input.topic=inavro output.topic=outavro dlq.topic=dlqavro kafka.group.id=test-avro \
  input.format=avro-confluent "input.schemas.dir=$T/schemas"
start_worker a "$T/a.conf"
A=$WPID
check "avro: 15 results and 2 dead letters" wait_until 180 bash -c "[ \$($KU count $B outavro) -ge 15 ] && [ \$($KU count $B dlqavro) -ge 2 ]"
check "avro: the worker is still running" kill -0 $A
check "avro: worker exits 0 on SIGTERM" stop_worker $A
$KU dlq "$B" dlqavro json >"$T/avro.dlq"
$KU results "$B" outavro json >"$T/avro.results"
for pill in nulls3e9 empties2e62; do
  off=$(awk -v n=$pill '$1 == n { print $2 }' "$T/avro.tsv")
  check "avro: $pill (offset $off) has a dead letter with reason over_limit" \
    awk -v o="$off" '$1 == "over_limit" && $3 == o && $5 == "over_limit" { f = 1 } END { exit !f }' "$T/avro.dlq"
done
check "avro: exactly the two pills are dead letters" [ "$(wc -l <"$T/avro.dlq")" -eq 2 ]
check "avro: every good record has its result, before and after the pills" \
  cmp -s <(awk '$1 ~ /^g/ { print $1 }' "$T/avro.tsv" | sort) <(cut -f2 "$T/avro.results" | sort)
check "avro: the worker logged the bound it hit" grep -q "reason=over_limit detail=.*input.max.items" "$T/a.log"
$KU committed "$B" test-avro inavro >"$T/committed.txt"
$KU ends "$B" inavro >"$T/ends.txt"
check "avro: committed offset = end of the partition ($(tr '\n' ' ' <"$T/committed.txt"))" cmp -s "$T/committed.txt" "$T/ends.txt"
finish
