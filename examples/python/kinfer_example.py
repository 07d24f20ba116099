#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""kinfer-example (Python): produce Confluent-framed Avro text records to kinfer's input topic,
read kinfer's Confluent-framed Avro results back, and check that every id came back with a label.
Kafka client: confluent-kafka; Avro: fastavro (both from PyPI, examples/python/requirements.txt).

A Confluent-framed record is: magic byte 0, the writer schema id (4 bytes, big-endian), then the
Avro binary encoding of the record. kinfer reads the writer schema of id N from
<input.schemas.dir>/N.avsc (or from the Schema Registry) and writes its results with
output.schema.id. See docs/producers.md.

stdout: one line per id, "id<TAB>label<TAB>score", in the order produced; stderr: a summary.
Exit status 0 only when every id produced came back with a non-empty label.
"""
import argparse
import io
import json
import os
import struct
import sys
import time

import fastavro
from confluent_kafka import Consumer, KafkaError, Producer


def die(msg):
    sys.exit("python example: " + msg)


def read_texts(path, n):
    """Up to n texts from path (a line, or what follows the first TAB), cycled when fewer."""
    lines = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            text = line.split("\t", 1)[1] if "\t" in line else line
            if text.strip():
                lines.append(text)
            if len(lines) == n:
                break
    if not lines:
        die(path + ": no text")
    return [lines[i % len(lines)] for i in range(n)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--brokers", default="127.0.0.1:9092")
    ap.add_argument("--input-topic", default="sections.in")
    ap.add_argument("--output-topic", default="sections.out")
    ap.add_argument("--schema-id", type=int, default=1,
                    help="writer schema id framed into each record (kinfer reads <input.schemas.dir>/<id>.avsc)")
    ap.add_argument("--result-schema-id", type=int, default=-1,
                    help="schema id expected in each result's framing (kinfer's output.schema.id); -1: any")
    ap.add_argument("--text-schema", default="schemas/text_record.avsc")
    ap.add_argument("--result-schema", default="schemas/classification.avsc")
    ap.add_argument("--texts", required=True, help="file of texts: one a line, or label<TAB>text")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--id-prefix", default="py-")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for every result")
    a = ap.parse_args()
    if not 1 <= a.n <= 1000000:
        die("--n must be 1..1000000")
    with open(a.text_schema) as f:
        writer = fastavro.parse_schema(json.load(f))
    with open(a.result_schema) as f:
        reader = fastavro.parse_schema(json.load(f))
    texts = read_texts(a.texts, a.n)
    ids = [a.id_prefix + str(i) for i in range(a.n)]
    deadline = time.monotonic() + a.timeout

    # produce: key = id, value = 0x00 + schema id + Avro binary
    failed = []
    p = Producer({"bootstrap.servers": a.brokers, "enable.idempotence": True, "linger.ms": 10})
    frame = struct.pack(">bI", 0, a.schema_id)
    for rid, text in zip(ids, texts):
        buf = io.BytesIO()
        buf.write(frame)
        fastavro.schemaless_writer(buf, writer, {"id": rid, "text": text})
        while True:
            try:
                p.produce(a.input_topic, key=rid.encode(), value=buf.getvalue(),
                          on_delivery=lambda err, msg: err and failed.append(err))
                break
            except BufferError:  # local queue full: serve delivery reports, then retry
                p.poll(0.1)
        p.poll(0)
    left = p.flush(max(1.0, deadline - time.monotonic()))
    if left or failed:
        die("%d records undelivered, %d failed (%s)" % (left, len(failed), failed[:1]))
    print("python example: %d records produced to %s" % (a.n, a.input_topic), file=sys.stderr)

    # read every partition of the result topic from the start (a fresh group each run) until
    # every id has its result; results are at-least-once, so an id may come twice
    want = set(ids)
    got = {}
    c = Consumer({"bootstrap.servers": a.brokers, "auto.offset.reset": "earliest",
                  "group.id": "kinfer-example-py-%d-%d" % (os.getpid(), time.time_ns()),
                  "enable.auto.commit": False})
    c.subscribe([a.output_topic])
    try:
        while len(got) < len(want) and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                if m.error().code() in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                    continue
                die("read %s: %s" % (a.output_topic, m.error()))
            v = m.value() or b""
            where = "%s[%d]@%d" % (m.topic(), m.partition(), m.offset())
            if len(v) < 5 or v[0] != 0:
                die(where + ": not Confluent-framed")
            sid = struct.unpack(">I", v[1:5])[0]
            if a.result_schema_id >= 0 and sid != a.result_schema_id:
                die("%s: schema id %d, expected %d" % (where, sid, a.result_schema_id))
            body = io.BytesIO(v[5:])
            rec = fastavro.schemaless_reader(body, reader)
            if body.tell() != len(v) - 5:
                die(where + ": bytes left after the Classification record")
            if rec["id"] in want:
                got[rec["id"]] = (rec["label"], rec["score"])
    finally:
        c.close()

    missing = [i for i in ids if i not in got]
    unlabelled = [i for i in ids if i in got and not got[i][0]]
    for i in ids:
        if i in got and got[i][0]:
            print("%s\t%s\t%.6f" % (i, got[i][0], got[i][1]))
    if missing or unlabelled:
        die("%d of %d ids without a result (first: %s), %d with an empty label (after %g s)"
            % (len(missing), a.n, missing[:3], len(unlabelled), a.timeout))
    print("python example: %d records produced, %d results read, every id labelled" % (a.n, len(got)),
          file=sys.stderr)


if __name__ == "__main__":
    main()
