#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# flask_predict.py -- the seed's kind of service, the anchor of tests/bench/bench_http.sh: a
# Flask /predict endpoint over a scikit-learn TF-IDF (uni+bigram) + LinearSVC model (the same
# model as the streaming peer, tests/bench/peer_worker.py), trained at start from TRAIN.tsv
# (label<TAB>text). POST /predict takes kinfer's request bodies, {"text": ...} or
# {"texts": [...]}, and answers label and score (the softmax of the decision values) per text.
# Served by Flask's own threaded server (werkzeug), as a Flask service is usually run.
#   flask_predict.py TRAIN.tsv PORT
import sys

import numpy as np
from flask import Flask, jsonify, request
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC


def load(path):
    labels, texts = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            label, _, text = line.rstrip("\n").partition("\t")
            labels.append(label)
            texts.append(text)
    return labels, texts


labels, texts = load(sys.argv[1])
vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
svc = LinearSVC(C=0.5)
svc.fit(vec.fit_transform(texts), labels)
app = Flask(__name__)


@app.route("/predict", methods=["POST"])
def predict():
    body = request.get_json(force=True)
    batch = body["texts"] if "texts" in body else [body["text"]]
    d = svc.decision_function(vec.transform(batch))
    e = np.exp(d - d.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    best = p.argmax(axis=1)
    res = [{"label": str(svc.classes_[b]), "score": float(p[i, b])} for i, b in enumerate(best)]
    return jsonify(res[0] if "text" in body else {"results": res})


@app.route("/healthz")
def healthz():
    return "ok"


if __name__ == "__main__":
    print("ready", flush=True)
    app.run(host="127.0.0.1", port=int(sys.argv[2]), threaded=True)
