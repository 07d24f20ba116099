#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# ft_predict_rate.py MODEL.bin LINES_FILE [REPEAT] -- fastText's own predict loop (the C++
# multilinePredict behind Debian's python3-fasttext), timed in-process so that loading an
# 800 MB model does not blur the figure. Prints "lines/s N".
import sys
import time

import fasttext

model = fasttext.load_model(sys.argv[1])
lines = [l.rstrip("\n") for l in open(sys.argv[2], encoding="utf-8")]
repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 5
model.predict(lines[:1000], k=1)  # warm up
best = 0.0
for _ in range(repeat):
    t0 = time.perf_counter()
    model.predict(lines, k=1)
    dt = time.perf_counter() - t0
    best = max(best, len(lines) / dt)
print("lines/s %.0f" % best)
