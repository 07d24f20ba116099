#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# registry_results.py -- read-side helper of the registry's serving tests and benchmark
# (Debian's python3-confluent-kafka; reuses tests/kafka/kafka_util.py's reader):
#   rows BROKERS TOPIC     one line per JSON result:
#                          id partition offset model_version classified_at_ms batch_size worker_id
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kafka"))
import kafka_util  # noqa: E402


def main():
    cmd, brokers, topic = sys.argv[1], sys.argv[2], sys.argv[3]
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
