#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# kafka_util.py -- read-side helpers for the kafka-labelled tests and benchmarks (separate
# client process, confluent-kafka + avro from Debian):
#   count BROKERS TOPIC                    messages in TOPIC (sum of high watermarks - low)
#   results BROKERS TOPIC [json|avro SCHEMA] one line per result:
#                                          key id input_partition input_offset label model_version
#                                          worker_id model_sha256
#   dlq BROKERS TOPIC [json|avro SCHEMA]   one line per dead letter:
#                                          reason partition offset value_len header_reason
#                                          original_headers source_topic
#   committed BROKERS GROUP TOPIC          "partition committed_offset" (-1001 = none)
#   ends BROKERS TOPIC                     "partition high_watermark"
#   lows BROKERS TOPIC                     "partition low_watermark high_watermark"; exits 1 when
#                                          the topic cannot be read (a low watermark above 0 means
#                                          the dev broker dropped the oldest records)
#   rate BROKERS TOPIC N [timeout]         wait for N messages; rate from the first to the N-th
#   verify BROKERS IN OUT [DLQ]            the independent verifier of exactly-once and the fault
#                                          tests: every input id (JSON "id") against the result ids
#                                          (read_committed): "inputs=N results=N lost=N
#                                          duplicates=N extra=N dead_letters=N" (a dead letter
#                                          counts as the input's outcome)
#   latency BROKERS TOPIC [json|avro SCHEMA]  p50/p95/p99 of result - input timestamps, split
#                                          into the broker path and the time in the worker
import io
import json
import sys

from confluent_kafka import Consumer, TopicPartition

COMMON = {"bootstrap.servers": None, "enable.auto.commit": False, "fetch.wait.max.ms": 10,
          "enable.partition.eof": True, "group.id": "kafka-util-reader"}


def parts(c, topic):
    md = c.list_topics(topic, timeout=10)
    return sorted(md.topics[topic].partitions.keys())


def consumer(brokers, group="kafka-util-reader", **extra):
    conf = dict(COMMON, **{"bootstrap.servers": brokers, "group.id": group}, **extra)
    return Consumer(conf)


def read_all(brokers, topic):
    c = consumer(brokers)  # librdkafka reads read_committed unless told otherwise
    ps = parts(c, topic)
    tps = []
    for p in ps:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if hi > lo:
            tps.append(TopicPartition(topic, p, lo))
    if not tps:
        c.close()
        return
    c.assign(tps)
    left = set(tp.partition for tp in tps)
    idle = 0
    while left and idle < 100:
        m = c.poll(0.1)
        if m is None:
            idle += 1
            continue
        idle = 0
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                left.discard(m.partition())
            continue
        yield m
    c.close()


def decoder(args, schema_kind):
    if not args or args[0] == "json":
        return lambda v: json.loads(v)
    import avro.io
    import avro.schema
    schema = avro.schema.parse(open(args[1]).read())
    reader = avro.io.DatumReader(schema)

    def dec(v):
        if v[:1] == b"\0" and len(args) > 2 and args[2] == "confluent":
            v = v[5:]
        return reader.read(avro.io.BinaryDecoder(io.BytesIO(v)))
    return dec


def main():
    cmd, brokers = sys.argv[1], sys.argv[2]
    if cmd == "count":
        c = consumer(brokers)
        total = 0
        try:
            for p in parts(c, sys.argv[3]):
                lo, hi = c.get_watermark_offsets(TopicPartition(sys.argv[3], p), timeout=10)
                total += hi - lo
        except Exception:
            total = 0
        c.close()
        print(total)
    elif cmd == "rate":
        # wait until TOPIC holds N messages; time from the first to the N-th
        import time
        topic, n = sys.argv[3], int(sys.argv[4])
        limit = float(sys.argv[5]) if len(sys.argv) > 5 else 600
        c = consumer(brokers)
        tps = [TopicPartition(topic, p) for p in parts(c, topic)]
        start = time.time()
        t0 = None
        total = 0
        while time.time() - start < limit:
            total = sum(c.get_watermark_offsets(tp, timeout=10, cached=False)[1] for tp in tps)
            now = time.time()
            if total > 0 and t0 is None:
                t0, n0 = now, total
            if total >= n:
                break
            time.sleep(0.05)
        c.close()
        if t0 is None or total < n:
            print("n=%d seconds=0 rps=0 incomplete=1" % total)
        else:
            secs = now - t0
            print("n=%d seconds=%.2f rps=%.0f" % (total, secs, (total - n0) / secs if secs > 0 else 0))
    elif cmd == "ends":
        c = consumer(brokers)
        for p in parts(c, sys.argv[3]):
            lo, hi = c.get_watermark_offsets(TopicPartition(sys.argv[3], p), timeout=10)
            print(p, hi)
        c.close()
    elif cmd == "lows":
        c = consumer(brokers)
        try:
            for p in parts(c, sys.argv[3]):
                lo, hi = c.get_watermark_offsets(TopicPartition(sys.argv[3], p), timeout=10, cached=False)
                print(p, lo, hi)
        except Exception as e:
            sys.exit("lows %s: %s" % (sys.argv[3], e))
        finally:
            c.close()
    elif cmd == "committed":
        group, topic = sys.argv[3], sys.argv[4]
        # read_uncommitted: the offsets committed so far, without waiting (require_stable off)
        # for a transaction that holds offsets of the group -- one of a worker killed in the
        # middle of its commit stays open until the broker aborts it (transaction.timeout.ms)
        c = consumer(brokers, group, **{"isolation.level": "read_uncommitted"})
        tps = [TopicPartition(topic, p) for p in parts(c, topic)]
        for tp in c.committed(tps, timeout=10):
            print(tp.partition, tp.offset)
        c.close()
    elif cmd == "results":
        dec = decoder(sys.argv[4:], "result")
        for m in read_all(brokers, sys.argv[3]):
            r = dec(m.value())
            key = m.key().decode("utf-8", "replace") if m.key() is not None else "-"
            print(key, r["id"], r["input_partition"], r["input_offset"], r["label"],
                  r["model_version"], r["worker_id"], r["model_sha256"], sep="\t")
    elif cmd == "dlq":
        dec = decoder(sys.argv[4:], "dlq")
        for m in read_all(brokers, sys.argv[3]):
            d = dec(m.value())
            hdr = dict((k, v.decode()) for k, v in (m.headers() or []))
            if "value_base64" in d:
                import base64
                vlen = len(base64.b64decode(d["value_base64"])) if d["value_base64"] is not None else -1
            else:
                vlen = len(d["value"]) if d["value"] is not None else -1
            orig = ",".join("%s=%s" % (k, v) for k, v in sorted(hdr.items()) if not k.startswith("kinfer."))
            print(d["reason"], d["partition"], d["offset"], vlen, hdr.get("kinfer.dlq.reason", "-"),
                  orig or "-", d["topic"], sep="\t")
    elif cmd == "verify":
        from collections import Counter
        ins = Counter()
        for m in read_all(brokers, sys.argv[3]):
            try:
                ins[str(json.loads(m.value())["id"])] += 1
            except Exception:
                ins["%d:%d" % (m.partition(), m.offset())] += 1
        outs = Counter(str(json.loads(m.value())["id"]) for m in read_all(brokers, sys.argv[4]))
        dls = 0
        if len(sys.argv) > 5:
            for m in read_all(brokers, sys.argv[5]):
                dls += 1
                hdr = dict((k, v.decode()) for k, v in (m.headers() or []))
                outs["%s:%s" % (hdr.get("kinfer.dlq.partition"), hdr.get("kinfer.dlq.offset"))] += 1
        lost = [i for i in ins if outs[i] == 0]
        dups = sum(max(0, outs[i] - ins[i]) for i in ins)
        extra = sum(n for i, n in outs.items() if i not in ins)
        print("inputs=%d results=%d lost=%d duplicates=%d extra=%d dead_letters=%d"
              % (sum(ins.values()), sum(outs.values()), len(lost), dups, extra, dls))
        if lost:
            print("lost ids (first 10): " + " ".join(sorted(lost)[:10]), file=sys.stderr)
    elif cmd == "latency":
        # e2e: result produced (its CreateTime) - input produced (input_timestamp_ms);
        # broker: worker received it (consumed_at_ms) - input produced: the broker/consumer path;
        # worker: result produced - worker received it: batching, classification, encoding
        dec = decoder(sys.argv[4:], "result")
        e2e, brk, wrk = [], [], []
        for m in read_all(brokers, sys.argv[3]):
            r = dec(m.value())
            ts = m.timestamp()[1]
            e2e.append(ts - r["input_timestamp_ms"])
            brk.append(r["consumed_at_ms"] - r["input_timestamp_ms"])
            wrk.append(ts - r["consumed_at_ms"])
        if not e2e:
            print("n=0")
            return

        def pct(v):
            v.sort()
            n = len(v)
            p = lambda q: v[min(n - 1, int(q * n))]
            return "%d/%d/%d" % (p(0.5), p(0.95), p(0.99))
        print("n=%d e2e_p50/p95/p99_ms=%s broker_path=%s in_worker=%s" % (len(e2e), pct(e2e), pct(brk), pct(wrk)))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
