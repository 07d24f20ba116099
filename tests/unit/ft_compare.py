#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# ft_compare.py FASTTEXT_OUT KINFER_OUT [MIN_AGREE] [TOL] -- compare `fasttext predict-prob`
# with `kinfer predict --fasttext` line by line (both "__label__X P ..."): the top-1 labels
# agree on at least MIN_AGREE of the lines (default 0.999) and, where they agree, every label
# both list has probabilities within TOL (default 1e-4). Prints the figures; exit 1 if not.
import sys


def parse(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            t = line.split()
            rows.append([(t[i], float(t[i + 1])) for i in range(0, len(t) - 1, 2)])
    return rows


ft, ki = parse(sys.argv[1]), parse(sys.argv[2])
min_agree = float(sys.argv[3]) if len(sys.argv) > 3 else 0.999
tol = float(sys.argv[4]) if len(sys.argv) > 4 else 1e-4
if len(ft) != len(ki) or not ft:
    print("line counts differ: fasttext %d, kinfer %d" % (len(ft), len(ki)))
    sys.exit(1)
agree, worst, worst_line, compared = 0, 0.0, -1, 0
for i, (a, b) in enumerate(zip(ft, ki)):
    if not a or not b:
        agree += (not a) == (not b)
        continue
    if a[0][0] != b[0][0]:
        continue
    agree += 1
    pb = dict(b)
    for lab, p in a:
        if lab in pb:
            compared += 1
            d = abs(p - pb[lab])
            if d > worst:
                worst, worst_line = d, i + 1
rate = agree / len(ft)
print("lines %d top1_agree %.5f max_prob_diff %.2e (line %d) probs_compared %d" %
      (len(ft), rate, worst, worst_line, compared))
sys.exit(0 if rate >= min_agree and worst <= tol else 1)
