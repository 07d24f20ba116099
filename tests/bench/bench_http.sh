#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench_http.sh -- POST /v1/classify of `kinfer serve --http-only` against the seed's kind of
# service, a Flask + scikit-learn /predict server (tests/bench/flask_predict.py), side by side in
# one run, load from wrk (docs/benchmarks.md, "HTTP"):
#   1. records/s at 1 text per request and at 64 texts per request: wrk, CONNS connections,
#      SECONDS_RUN seconds, as fast as each server answers (records/s = requests/s x texts);
#   2. p50/p99 at half of each server's maximum (1 text per request): every connection waits
#      about DELAY_MS between requests, connections = half the max rate x DELAY_MS / 1000 (wrk's
#      latency distribution; a closed loop with think time, not a true open loop: a stalled
#      server also slows the offered load, so the p99 is a lower bound of an open loop's).
# The texts are the first lines of DATA's dev.tsv, cycled. Prints a Markdown summary.
#   tests/bench/bench_http.sh                  # DATA defaults to ../shared/data/debian-sections
#   SECONDS_RUN=5 tests/bench/bench_http.sh    # a quick run
# Environment: KINFER_BIN (default build/kinfer), DATA, SECONDS_RUN (10), CONNS (32),
# WRK_THREADS (2), DELAY_MS (10), HTTP_EXTRA (more -X key=value for kinfer serve).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DATA=${DATA:-$ROOT/../shared/data/debian-sections}
K=${KINFER_BIN:-$ROOT/build/kinfer}
"$ROOT/deploy/install-bench-deps.sh"   # Flask, scikit-learn, wrk (not installed by the tests)
SECONDS_RUN=${SECONDS_RUN:-10}
CONNS=${CONNS:-32}
WRK_THREADS=${WRK_THREADS:-2}
DELAY_MS=${DELAY_MS:-10}
HTTP_EXTRA=${HTTP_EXTRA:-}
PY=/usr/bin/python3
T=$(mktemp -d /tmp/kinfer-bench-http.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
log() { echo "# $*" >&2; }
wait_until() { local end=$((SECONDS + $1)); shift; until "$@"; do [ $SECONDS -ge $end ] && return 1; sleep 0.2; done; }

[ -x "$K" ] || { echo "bench: no kinfer binary at $K (set KINFER_BIN)" >&2; exit 2; }
[ -f "$DATA/train.tsv" ] || { echo "bench: no $DATA/train.tsv (set DATA)" >&2; exit 2; }
log "logs in $T"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- bodies: 1 text and 64 texts per request ------------------------------------------------
$PY - "$DATA/dev.tsv" "$T" <<'PY'
import json, sys
texts = [l.rstrip("\n").partition("\t")[2] for l in open(sys.argv[1], encoding="utf-8")][:4096]
with open(sys.argv[2] + "/b1.jsonl", "w") as f:
    for t in texts:
        f.write(json.dumps({"text": t}) + "\n")
with open(sys.argv[2] + "/b64.jsonl", "w") as f:
    for i in range(0, len(texts) - 63, 64):
        f.write(json.dumps({"texts": texts[i:i + 64]}) + "\n")
PY

# ---- the two servers ----------------------------------------------------------------------
"$K" train --input "$DATA/train.tsv" --output "$T/model.kinf" >"$T/train.log" 2>&1
log "kinfer model: $(tail -1 "$T/train.log")"
# shellcheck disable=SC2086
"$K" serve --http-only -X model.path="$T/model.kinf" -X http.listen=127.0.0.1:0 $HTTP_EXTRA \
  2>"$T/kinfer.log" &
KPID=$!
PIDS+=($KPID)
wait_until 60 grep -q "serving http on" "$T/kinfer.log" || { cat "$T/kinfer.log" >&2; exit 1; }
KURL=http://$(grep -o "serving http on [^ ]*" "$T/kinfer.log" | head -1 | awk '{print $4}')
FPORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$PY "$ROOT/tests/bench/flask_predict.py" "$DATA/train.tsv" "$FPORT" >"$T/flask.out" 2>"$T/flask.log" &
FPID=$!
PIDS+=($FPID)
FURL=http://127.0.0.1:$FPORT
log "training the Flask server's scikit-learn model (a minute or so)"
wait_until 600 curl -sf -o /dev/null "$FURL/healthz" || { cat "$T/flask.log" >&2; exit 1; }
wait_until 30 curl -sf -o /dev/null "$KURL/readyz" || { cat "$T/kinfer.log" >&2; exit 1; }

# run_wrk NAME URL PATH BODIES CONNS [DELAY_MS] -- wrk output in $T/NAME.wrk
run_wrk() {
  local name=$1 url=$2 path=$3 bodies=$4 conns=$5 delay=${6:-0} threads=$WRK_THREADS
  [ "$conns" -lt "$threads" ] && threads=$conns
  HTTP_PATH=$path BODIES=$bodies DELAY_MS=$delay wrk -t"$threads" -c"$conns" -d"${SECONDS_RUN}s" \
    --latency -s "$ROOT/tests/bench/http_post.lua" "$url" >"$T/$name.wrk" 2>&1
}
rps() { awk '/^Requests\/sec:/ {print $2}' "$T/$1.wrk"; }
# pct NAME P -- wrk's latency percentile P (50, 99) in ms
pct() {
  awk -v p="$2%" '$1 == p {v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
    if (u == "us") v /= 1000; else if (u == "s") v *= 1000; printf "%.2f", v}' "$T/$1.wrk"
}
errors() { awk '/Non-2xx|Socket errors/ {print}' "$T/$1.wrk" | tr '\n' ' '; }
# settle PID -- until the server's CPU time grows by under 10% of a core over 0.5 s (Flask's
# threads go on with the requests wrk left behind; the next run must not meet that backlog)
settle() {
  local pid=$1 a b end=$((SECONDS + 120))
  cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
  while [ $SECONDS -lt $end ]; do
    a=$(cpu); sleep 0.5; b=$(cpu)
    [ $((b - a)) -lt 5 ] && return 0
  done
  log "server $pid still busy after 120 s"
}

# a quick check that both answer the same kind of thing
curl -s -d "$(head -1 "$T/b1.jsonl")" "$KURL/v1/classify" >"$T/k1.json"
curl -s -d "$(head -1 "$T/b1.jsonl")" "$FURL/predict" >"$T/f1.json"
log "kinfer: $(head -c 200 "$T/k1.json")"
log "flask:  $(head -c 200 "$T/f1.json")"

for s in kinfer flask; do
  if [ $s = kinfer ]; then url=$KURL path=/v1/classify pid=$KPID; else url=$FURL path=/predict pid=$FPID; fi
  settle "$pid"
  log "$s: max load, 1 text/request"
  run_wrk "${s}_1" "$url" "$path" "$T/b1.jsonl" "$CONNS"
  max=$(rps "${s}_1")
  # half of it: connections x 1 request per delay (delay ~DELAY_MS; at least one connection)
  half=$(awk -v m="$max" 'BEGIN {h = m / 2; if (h < 1) h = 1; printf "%.1f", h}')
  conns=$(awk -v h="$half" -v d="$DELAY_MS" 'BEGIN {c = int(h * d / 1000 + 0.5); if (c < 1) c = 1; print c}')
  delay=$(awk -v h="$half" -v c="$conns" 'BEGIN {printf "%d", c * 1000 / h + 0.5}')
  settle "$pid"
  log "$s: half load, ~$half requests/s offered ($conns connections x 1 request / $delay ms)"
  run_wrk "${s}_half" "$url" "$path" "$T/b1.jsonl" "$conns" "$delay"
  echo "$half $conns $delay" >"$T/${s}_half.offered"
  settle "$pid"
  log "$s: max load, 64 texts/request"
  run_wrk "${s}_64" "$url" "$path" "$T/b64.jsonl" "$CONNS"
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

k1=$(rps kinfer_1) f1=$(rps flask_1) k64=$(rps kinfer_64) f64=$(rps flask_64)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.1f", a / b; else print "-"}'; }
cat <<EOF

### HTTP classify: kinfer vs Flask + scikit-learn (one run)

- machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); load average $LOAD0 before, $LOAD1 after
- data: $(basename "$DATA") dev.tsv texts, cycled; wrk -t$WRK_THREADS -c$CONNS -d${SECONDS_RUN}s (max load); half load: connections x 1 request per ${DELAY_MS} ms
- kinfer: \`kinfer serve --http-only\` $HTTP_EXTRA; Flask: tests/bench/flask_predict.py (werkzeug, threaded)

| | kinfer | Flask | kinfer / Flask |
|---|---:|---:|---:|
| records/s, 1 text/request | $(printf '%.0f' "$k1") | $(printf '%.0f' "$f1") | $(ratio "$k1" "$f1") |
| records/s, 64 texts/request | $(awk -v r="$k64" 'BEGIN {printf "%.0f", r * 64}') | $(awk -v r="$f64" 'BEGIN {printf "%.0f", r * 64}') | $(ratio "$k64" "$f64") |
| half load: requests/s offered (connections x 1 / delay ms) | $(awk '{printf "%.0f (%d x 1/%d)", $1, $2, $3}' "$T/kinfer_half.offered") | $(awk '{printf "%.0f (%d x 1/%d)", $1, $2, $3}' "$T/flask_half.offered") | |
| half load: requests/s done | $(printf '%.0f' "$(rps kinfer_half)") | $(printf '%.0f' "$(rps flask_half)") | |
| half load: p50 ms | $(pct kinfer_half 50) | $(pct flask_half 50) | |
| half load: p99 ms | $(pct kinfer_half 99) | $(pct flask_half 99) | |

errors: kinfer [$(errors kinfer_1)$(errors kinfer_64)$(errors kinfer_half)] flask [$(errors flask_1)$(errors flask_64)$(errors flask_half)]
EOF
