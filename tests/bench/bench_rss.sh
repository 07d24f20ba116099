#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench_rss.sh -- worker peak RSS under a flood of 1 MB records (docs/streaming.md, "Batching,
# backpressure, memory"; issue 8 item 9): N_OK records just under input.max.bytes (default
# 917,504: JSON {"id","text"} of random words, the whole value about 900,000 bytes) and N_OVER
# records over it (1.1 MB: oversized, each a reduced dead letter of about 900 KB), all in the
# input topic before the worker starts, so that it drains them as fast as it can. The worker
# runs with the DEFAULT limits (input.max.bytes, batch.max.bytes, backpressure.*, the consumer's
# prefetch queue, the producer's queue, worker.arena.max.bytes); its peak RSS is VmHWM from
# /proc/PID/status once every record has its result or dead letter.
#
#   tests/bench/bench_rss.sh                     # default model (word n-grams)
#   MODEL_ARGS="--minn 2 --maxn 5" tests/bench/bench_rss.sh   # char n-grams: the largest arena
#   N_OK=20000 OK_BYTES=4000 N_OVER=0 MODEL_ARGS="--minn 2 --maxn 5" WORKER_EXTRA=... \
#     tests/bench/bench_rss.sh   # full 4 MB batches of 4 KB texts: the runtime arena's case
# Environment: KINFER_BIN (default build/kinfer), N_OK (200), OK_BYTES (899900), N_OVER (50),
# OUTPUT_FORMAT (avro, the default; json makes dead letters base64), THREADS (worker.threads,
# default 1), WORKER_EXTRA (more key=value lines for the worker, e.g. worker.arena.max.bytes).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
K=${KINFER_BIN:-$ROOT/build/kinfer}
N_OK=${N_OK:-200}
N_OVER=${N_OVER:-50}
OUTPUT_FORMAT=${OUTPUT_FORMAT:-avro}
THREADS=${THREADS:-1}
MODEL_ARGS=${MODEL_ARGS:-}
OK_BYTES=${OK_BYTES:-899900}
WORKER_EXTRA=${WORKER_EXTRA:-}
PY=/usr/bin/python3
KU="$PY $ROOT/tests/kafka/kafka_util.py"
T=$(mktemp -d /tmp/kinfer-rss.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# the dev broker keeps about 5 MiB per partition: 64 input partitions hold 320 such records
"$K" dev-broker --port 0 --topic in:64 --topic out:8 --topic dlq:32 >"$T/broker.out" 2>"$T/broker.err" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$T/broker.out" ] && break; sleep 0.1; done
B=$(head -1 "$T/broker.out")
echo "# broker $B, logs in $T" >&2

# shellcheck disable=SC2086
"$K" train --input "$ROOT/tests/data/sections-train.tsv" --output "$T/model.kinf" $MODEL_ARGS >"$T/train.log" 2>&1

$PY - "$B" "$N_OK" "$N_OVER" "$OK_BYTES" <<'PYEOF'
import json, random, sys
from confluent_kafka import Producer
b, n_ok, n_over, ok_bytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
p = Producer({"bootstrap.servers": b, "message.max.bytes": 4000000, "linger.ms": 5,
              "queue.buffering.max.kbytes": 262144})
rnd = random.Random(1)
words = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 10)))
         for _ in range(50000)]
def text(size):
    out, n = [], 0
    while n < size:
        w = rnd.choice(words)
        out.append(w)
        n += len(w) + 1
    return " ".join(out)[:size]
bad = []
for i in range(n_ok + n_over):
    size = ok_bytes if i < n_ok else 1100000
    rid = ("ok%d" if i < n_ok else "over%d") % i
    v = json.dumps({"id": rid, "text": text(size - 30)}).encode()
    p.produce("in", key=rid.encode(), value=v, partition=i % 64,
              on_delivery=lambda e, m: e and bad.append(e))
    p.poll(0)
p.flush(120)
sys.exit("produce failed: %r" % bad[:3] if bad else 0)
PYEOF

cat >"$T/w.conf" <<EOF
kafka.bootstrap.servers=$B
model.path=$T/model.kinf
input.topic=in
output.topic=out
dlq.topic=dlq
input.format=json
output.format=$OUTPUT_FORMAT
worker.threads=$THREADS
kafka.group.id=rss
$(for kv in $WORKER_EXTRA; do echo "$kv"; done)
EOF
"$K" serve --config "$T/w.conf" >"$T/w.out" 2>"$T/w.log" &
W=$!
PIDS+=("$W")
start=$SECONDS
want=$((N_OK + N_OVER))
while :; do
  got=$(($($KU count "$B" out) + $($KU count "$B" dlq)))
  [ "$got" -ge "$want" ] && break
  if ! kill -0 "$W" 2>/dev/null; then echo "the worker died:" >&2; tail "$T/w.log" >&2; exit 1; fi
  if [ $((SECONDS - start)) -gt 1200 ]; then echo "timed out at $got of $want" >&2; exit 1; fi
  sleep 1
done
secs=$((SECONDS - start))
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$W/status")
kill -TERM "$W"
wait "$W" || true
echo "| model | records | output | worker.threads | peak RSS (VmHWM) | drained in |"
echo "|---|---|---|---|---|---|"
echo "| ${MODEL_ARGS:-default} ${WORKER_EXTRA} | $N_OK x $OK_BYTES B + $N_OVER x 1.1 MB | $OUTPUT_FORMAT | $THREADS | $((hwm / 1024)) MiB | ${secs} s |"
