#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench_hot_swap.sh -- registry hot swap under load: NOTIFY -> first batch on the new model,
# p50/p99 over SWITCHES activations (alternating two versions: after the first switch both
# are verified and cached, as in a switch-and-rollback), plus COLD switches to versions never
# loaded before (fetch from PostgreSQL + verify + warm-up), and the throughput around the
# switches. A private PostgreSQL cluster, the dev broker, one `kinfer serve` with
# deployment=, `kinfer produce --rate RATE`, the results followed as they are written.
#
#   tests/bench/bench_hot_swap.sh [BUILD_DIR]     # default: build
#   SWITCHES=100 INTERVAL_MS=300 COLD=10 RATE=20000 tests/bench/bench_hot_swap.sh build
#
# "NOTIFY" is the moment the activating transaction committed (taken by the operator-side
# driver right after kinfer.activate() returned); "first batch" is the smallest
# classified_at_ms of a result carrying the new version. Both clocks are this machine's.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
K=$build/kinfer
BHS=$build/bench_hot_swap
SWITCHES=${SWITCHES:-100}
INTERVAL_MS=${INTERVAL_MS:-300}
COLD=${COLD:-10}
RATE=${RATE:-20000}
CONTROL_S=${CONTROL_S:-10}   # load without switches first: the baseline of the dip figures
PY=/usr/bin/python3
RR="$PY $src/tests/pg/registry_results.py"
export KINFER_MIGRATIONS_DIR=$src/migrations

T=$(mktemp -d /tmp/kinfer-bench-swap.XXXXXX)
PGD=$(mktemp -d /tmp/kinfer-bench-pg.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  bash "$src/tests/pg/cluster.sh" stop "$PGD" >/dev/null 2>&1 || true
  rm -rf "$PGD"
  [ -n "${KEEP_TMP:-}" ] && echo "# kept $T" >&2 || rm -rf "$T"
}
trap cleanup EXIT
say() { echo "# $*" >&2; }

eval "$(bash "$src/tests/pg/cluster.sh" start "$PGD")"
conninfo="host=127.0.0.1 port=$PGPORT dbname=postgres user=postgres"
"$K" migrate >/dev/null 2>&1
nmodels=$((2 + COLD))
say "training and pushing $nmodels model versions"
for i in $(seq 1 $nmodels); do
  "$K" train -i "$src/tests/data/sections-train.tsv" -o "$T/m$i.kinf" --seed "$i" --name sections -q \
    >/dev/null 2>&1
  "$K" model push "$T/m$i.kinf" >/dev/null
done
size=$(stat -c %s "$T/m1.kinf")
"$K" activate sections sections 1 >/dev/null

"$K" dev-broker --port 0 --topic in:8 --topic out:16 --topic dlq:1 >"$T/broker.out" 2>"$T/broker.err" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$T/broker.out" ] && break; sleep 0.1; done
B=$(head -1 "$T/broker.out")
cat >"$T/w.conf" <<EOF
kafka.bootstrap.servers=$B
deployment=sections
pg.conninfo=$conninfo
input.topic=in
output.topic=out
dlq.topic=dlq
output.format=json
batch.max.records=256
batch.max.wait.ms=5
metrics.interval.ms=1000
kafka.group.id=bench
EOF
"$K" serve --config "$T/w.conf" >"$T/w.out" 2>"$T/w.log" &
WPID=$!
PIDS+=($WPID)
for _ in $(seq 300); do grep -q "fac=CONSUMER assigned" "$T/w.log" && break; sleep 0.1; done

$RR tail "$B" out 4 >"$T/rows.txt" &
TPID=$!
PIDS+=($TPID)
duration_s=$(( 3 + CONTROL_S + (SWITCHES * INTERVAL_MS + COLD * 1000) / 1000 + 3 ))
n=$((RATE * duration_s))
head -n 500 "$src/tests/data/sections-dev.tsv" >"$T/lines.tsv"
say "load: $n records at $RATE/s for ~${duration_s}s; $SWITCHES hot switches every ${INTERVAL_MS} ms, $COLD cold"
"$K" produce -b "$B" -t in --tsv -n "$n" --rate "$RATE" -q "$T/lines.tsv" &
PPID_=$!
PIDS+=($PPID_)
sleep 3
t_ctrl=$(date +%s%3N)
sleep "$CONTROL_S"
# the control period, as if switched every INTERVAL_MS (nothing happens)
for ((t = t_ctrl; t < t_ctrl + CONTROL_S * 1000 - INTERVAL_MS; t += INTERVAL_MS)); do echo "$t 0"; done >"$T/control.txt"
# hot: alternate 2 <-> 1 (the first switch loads v2; then both are cached)
"$BHS" "$conninfo" sections sections "$SWITCHES" "$INTERVAL_MS" 2 1 >"$T/switches.txt"
# cold: versions never loaded before, one per second
cold_versions=$(seq 3 $nmodels | tr '\n' ' ')
[ "$COLD" -gt 0 ] && "$BHS" "$conninfo" sections sections "$COLD" 1000 $cold_versions >"$T/cold.txt"
wait "$PPID_"
wait "$TPID" || true
kill -TERM "$WPID"; wait "$WPID" || true

touch "$T/cold.txt"
$PY - "$T/rows.txt" "$T/switches.txt" "$T/cold.txt" "$T/w.log" "$RATE" "$size" "$T/control.txt" <<'EOF'
import bisect, re, statistics, sys
rows_f, sw_f, cold_f, log_f, rate, size, ctrl_f = sys.argv[1:8]
rows = []
for line in open(rows_f):
    v, t = line.split()
    rows.append((int(t), int(v)))
rows.sort()
ts = [r[0] for r in rows]

def lat(sw_file):
    out = []
    for line in open(sw_file):
        t, v = map(int, line.split())
        i = bisect.bisect_left(ts, t)
        while i < len(rows) and rows[i][1] != v:
            i += 1
        out.append((t, rows[i][0] - t if i < len(rows) else None))
    return out

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]

hot = lat(sw_f)
cold = lat(cold_f) if open(cold_f).read().strip() else []
# throughput: 100 ms buckets of classified_at_ms, steady part of the run
b0, b1 = ts[0] // 100 + 20, ts[-1] // 100 - 20
counts = {}
for t in ts:
    counts[t // 100] = counts.get(t // 100, 0) + 1
steady = [counts.get(b, 0) for b in range(b0, b1)]
med = statistics.median(steady)
def dips(sws):
    d = []
    for t, _ in sws:
        b = t // 100
        w = [counts.get(b + k, 0) for k in range(0, 3)]   # the 300 ms after the switch
        d.append(sum(w) / (3 * med))
    return d
log = open(log_f).read()
applied = [float(x) for x in re.findall(r"notify_to_applied_ms=([0-9.]+)", log)]
cold_fetch = [float(x) for x in re.findall(r"posted model=\S+ sha256=\w+ fetch_ms=([0-9.]+)", log)]
cold_load = [float(x) for x in re.findall(r"posted model=\S+ sha256=\w+ fetch_ms=[0-9.]+ load_ms=([0-9.]+)", log)]

def row(name, sws, control=False):
    if control:  # no switch happened: only the throughput figures
        d = dips(sws)
        print("| %s | %d | - | - | - | - | %.0f%% | %.0f%% |" % (name, len(sws), 100 * statistics.median(d), 100 * min(d)))
        return
    l = [x for _, x in sws if x is not None]
    miss = sum(1 for _, x in sws if x is None)
    d = dips(sws)
    print("| %s | %d | %d | %d | %d | %d | %.0f%% | %.0f%% |%s" % (
        name, len(sws), pct(l, 50), pct(l, 90), pct(l, 99), max(l),
        100 * statistics.median(d), 100 * min(d), " (%d never seen)" % miss if miss else ""))

print("records classified: %d, steady throughput %.0f records/s (input rate %s/s), model %.1f MB"
      % (len(rows), med * 10, rate, int(size) / 1e6))
print()
print("| switches | n | p50 ms | p90 ms | p99 ms | max ms | records/s in the 300 ms after, median | worst |")
print("|---|---|---|---|---|---|---|---|")
ctrl = [(int(l.split()[0]), None) for l in open(ctrl_f)]
if ctrl:
    row("control: same load, no switch", ctrl, control=True)
row("hot (2 versions alternating, verified before)", hot[1:])
if cold:
    row("cold (new version: fetch + verify + warm-up)", cold)
print()
print("worker side, notification received -> swap applied between batches: p50 %.1f ms, p99 %.1f ms, max %.1f ms (n=%d)"
      % (pct(applied, 50), pct(applied, 99), max(applied), len(applied)))
if cold_fetch:
    print("cold loads: fetch p50 %.0f ms, verify + warm-up p50 %.0f ms (n=%d)"
          % (pct(cold_fetch, 50), pct(cold_load, 50), len(cold_fetch)))
EOF
