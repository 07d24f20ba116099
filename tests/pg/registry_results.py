#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# registry_results.py -- read-side helper of the registry's serving tests and benchmark
# (Debian's python3-confluent-kafka; reuses tests/kafka/kafka_util.py's reader):
#   rows BROKERS TOPIC     one line per JSON result:
#                          id partition offset model_version classified_at_ms batch_size worker_id
#   tail BROKERS TOPIC IDLE_S   follow TOPIC from the start while it is written (the dev broker
#                          keeps only ~5 MiB per partition: long runs must be read as they go),
#                          one line per result: model_version classified_at_ms; stops after
#                          IDLE_S seconds without a message
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kafka"))
import kafka_util  # noqa: E402


VER = re.compile(rb'"model_version":(-?\d+)')
CLS = re.compile(rb'"classified_at_ms":(\d+)')


def tail(brokers, topic, idle_s):
    conf = dict(kafka_util.COMMON, **{"bootstrap.servers": brokers, "auto.offset.reset": "earliest",
                                      "enable.partition.eof": False,
                                      "group.id": "registry-bench-tail-%d" % os.getpid()})
    c = kafka_util.Consumer(conf)
    c.subscribe([topic])
    out = sys.stdout
    last = time.time()
    seen = 0
    while True:
        ms = c.consume(10000, 0.2)
        if not ms:
            if seen and time.time() - last > idle_s:
                break
            if not seen and time.time() - last > 120:
                break
            continue
        last = time.time()
        for m in ms:
            if m.error():
                continue
            v = m.value()
            a, b = VER.search(v), CLS.search(v)
            if a and b:
                out.write("%s\t%s\n" % (a.group(1).decode(), b.group(1).decode()))
                seen += 1
    c.close()


def main():
    cmd, brokers, topic = sys.argv[1], sys.argv[2], sys.argv[3]
    if cmd == "tail":
        tail(brokers, topic, float(sys.argv[4]))
        return
    if cmd != "rows":
        sys.exit("unknown command " + cmd)
    out = sys.stdout
    for m in kafka_util.read_all(brokers, topic):
        r = json.loads(m.value())
        out.write("%s\t%d\t%d\t%d\t%d\t%d\t%s\n" % (r["id"], r["input_partition"], r["input_offset"],
                                                    r["model_version"], r["classified_at_ms"],
                                                    r["batch_size"], r.get("worker_id", "")))


if __name__ == "__main__":
    main()
