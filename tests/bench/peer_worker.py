#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# peer_worker.py -- the Python worker a user would otherwise write, doing kinfer serve's job
# for the benchmark: confluent-kafka consumer group (offsets stored after delivery), Confluent-
# framed Avro input decoded with python3-avro by schema id, TF-IDF (uni+bigram) + LinearSVC
# from python3-sklearn classifying in micro-batches, JSON results (id, label, score, topk,
# model_version, input topic/partition/offset) produced keyed like the input.
#
#   peer_worker.py --brokers B --topic in --output out --schemas-dir DIR --train TSV --max N
# Prints "peer: trained in S s" and "peer: n=N seconds=S rps=R" on stdout.
import argparse
import io
import json
import sys
import time

import avro.io
import avro.schema
import numpy as np
from confluent_kafka import Consumer, Producer, TopicPartition
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--schemas-dir", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--max", type=int, default=50000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--group", default="peer")
    a = ap.parse_args()

    t = time.time()
    labels, texts = [], []
    with open(a.train, encoding="utf-8") as f:
        for line in f:
            lab, _, text = line.rstrip("\n").partition("\t")
            labels.append(lab)
            texts.append(text)
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    svc = LinearSVC(C=0.5)
    svc.fit(vec.fit_transform(texts), labels)
    print("peer: trained in %.1f s" % (time.time() - t), flush=True)

    readers = {}

    def decode(v):
        sid = int.from_bytes(v[1:5], "big")
        r = readers.get(sid)
        if r is None:
            r = avro.io.DatumReader(avro.schema.parse(open("%s/%d.avsc" % (a.schemas_dir, sid)).read()))
            readers[sid] = r
        return r.read(avro.io.BinaryDecoder(io.BytesIO(v[5:])))

    c = Consumer({"bootstrap.servers": a.brokers, "group.id": a.group, "enable.auto.offset.store": False,
                  "auto.offset.reset": "earliest", "fetch.wait.max.ms": 10})
    p = Producer({"bootstrap.servers": a.brokers, "enable.idempotence": True, "linger.ms": 5})
    c.subscribe([a.topic])
    done = 0
    t0 = None
    classes = svc.classes_
    while done < a.max:
        msgs = c.consume(num_messages=a.batch, timeout=0.005)
        msgs = [m for m in msgs if not m.error()]
        if not msgs:
            continue
        if t0 is None:
            t0 = time.time()
        recs = [decode(m.value()) for m in msgs]
        scores = svc.decision_function(vec.transform([r["text"] for r in recs]))
        top = np.argsort(-scores, axis=1)[:, :3]
        for m, r, s, tk in zip(msgs, recs, scores, top):
            res = {"id": r.get("id") or (m.key() or b"").decode(), "label": classes[tk[0]],
                   "score": float(s[tk[0]]),
                   "topk": [{"label": classes[j], "score": float(s[j])} for j in tk],
                   "model_name": "tfidf-linearsvc", "model_version": 0, "input_topic": m.topic(),
                   "input_partition": m.partition(), "input_offset": m.offset()}
            p.produce(a.output, key=m.key(), value=json.dumps(res))
        p.flush()  # at-least-once: store offsets only after delivery
        c.store_offsets(offsets=[TopicPartition(m.topic(), m.partition(), m.offset() + 1) for m in msgs])
        done += len(msgs)
    secs = time.time() - t0
    c.close()
    print("peer: n=%d seconds=%.2f rps=%.0f" % (done, secs, done / secs), flush=True)


if __name__ == "__main__":
    sys.exit(main())
