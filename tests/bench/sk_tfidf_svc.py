#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""TF-IDF + LinearSVC (scikit-learn) on TSV files: the accuracy a standard linear baseline
reaches, for docs/benchmarks.md. Usage: sk_tfidf_svc.py TRAIN.tsv DEV.tsv [words|chars|both]
words: word uni+bigrams; chars: char_wb 1..4; both: the two concatenated. Prints
'accuracy A seconds S'."""
import sys, time
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import make_union
from sklearn.svm import LinearSVC


def read(path):
    y, x = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            lab, _, text = line.rstrip("\n").partition("\t")
            y.append(lab)
            x.append(text)
    return y, x


def main():
    ytr, xtr = read(sys.argv[1])
    ydv, xdv = read(sys.argv[2])
    kind = sys.argv[3] if len(sys.argv) > 3 else "words"
    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True, min_df=2)
    vec = {"words": words, "chars": chars, "both": make_union(words, chars)}[kind]
    t0 = time.time()
    clf = LinearSVC(C=1.0)
    clf.fit(vec.fit_transform(xtr), ytr)
    pred = clf.predict(vec.transform(xdv))
    acc = sum(p == y for p, y in zip(pred, ydv)) / len(ydv)
    print("accuracy %.4f seconds %.1f" % (acc, time.time() - t0))


if __name__ == "__main__":
    main()
