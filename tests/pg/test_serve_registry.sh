#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_serve_registry.sh -- `kinfer serve` with `deployment=` against a real PostgreSQL (a
# private cluster, so it can be stopped) and the real dev broker:
#   1. activation and rollback under continuous load: no record lost or duplicated, every
#      batch classified by one version, per partition the versions follow the switches, swap
#      each swap applied (notify -> applied) within KINFER_SWAP_LIMIT_MS, a generous bound
#      (10 s; the 1 s target is a benchmark figure: tests/bench/bench_hot_swap.sh);
#   2. a corrupt artifact activated: refused, recorded in kinfer.workers, serving goes on
#      with the old model;
#   3. PostgreSQL stopped and restarted while serving: records keep flowing, the metrics
#      windows of the outage arrive afterwards, an activation after the restart is applied;
#   4. SIGTERM: worker row "stopped", every classified record counted in the metrics windows.
# The worker connects as a LOGIN role that is only a member of kinfer_worker.
. "$(dirname "$0")/../kafka/lib.sh"

RR="$PY $SRC/tests/pg/registry_results.py"
start_private_pg serve
say "postgres on port $PGPORT"
sql() { psql -X -qtA -d postgres -c "$1"; }
now_ms() { date +%s%3N; }

# ---- registry: two versions, one active ----
"$K" migrate >"$T/migrate.log" 2>&1 || { fail "migrate"; cat "$T/migrate.log" >&2; finish; }
train_model
"$K" train --input "$SRC/tests/data/sections-train.tsv" --output "$T/m2.kinf" --seed 7 --epoch 8 \
  -q >"$T/train2.log" 2>&1 || { fail "train model 2"; finish; }
"$K" model push "$MODEL" --name sections >"$T/push.log" 2>&1 || fail "push v1"
"$K" model push "$T/m2.kinf" --name sections >>"$T/push.log" 2>&1 || fail "push v2"
"$K" activate sections sections 1 --reason "test start" >/dev/null || fail "activate v1"
sql "CREATE ROLE kinfer_test_worker LOGIN IN ROLE kinfer_worker" >/dev/null

start_broker in:8 out:16 dlq:1   # the dev broker keeps ~5 MiB per partition
write_conf "$T/w.conf" model.path= deployment=sections \
  "pg.conninfo=host=127.0.0.1 port=$PGPORT dbname=postgres user=kinfer_test_worker" \
  metrics.interval.ms=500 batch.max.records=256
start_worker w1 "$T/w.conf"
W1=$WPID
check "worker starts on the registry's model and joins" wait_assigned w1 30
check "the worker loaded sections:1 from the registry" grep -q "model=sections:1" "$T/w1.log"

# ---- 1. switches under load ----
N1=30000
head -n 500 "$SRC/tests/data/sections-dev.tsv" >"$T/lines.tsv"
"$K" produce -b "$B" -t in --tsv --id-prefix a -n $N1 --rate 10000 -q "$T/lines.tsv" &
P1=$!
PIDS+=("$P1")
# switches while the producer runs; each waits for what it can observe (the worker's
# "applied" line; NV records produced after v2 was applied and classified before the
# rollback is issued, so v2 certainly served some), never for a fixed time
NV=500
applied() { grep -q "model=sections:$1 applied notify_to_applied_ms" "$T/w1.log"; }
v_done() { [ "$($RR rows "$B" out | grep -c '^v')" -ge $NV ]; }
"$K" activate sections sections 2 --reason "load test" >/dev/null || fail "activate v2"
check "phase 1: v2 applied" wait_until 60 applied 2
"$K" produce -b "$B" -t in --tsv --id-prefix v -n $NV -q "$T/lines.tsv" || fail "produce v records"
check "phase 1: records produced under v2 classified" wait_until 120 v_done
"$K" rollback sections --reason "load test" >/dev/null || fail "rollback"
check "phase 1: v1 applied again" wait_until 60 applied 1
wait "$P1" || fail "produce phase 1"
c=$(wait_count out $((N1 + NV)) 120)
$RR rows "$B" out >"$T/rows1.txt"
check "phase 1: $((N1 + NV)) results (got $(wc -l <"$T/rows1.txt"), topic $c)" [ "$(wc -l <"$T/rows1.txt")" -eq $((N1 + NV)) ]
{ seq 0 $((N1 - 1)) | sed 's/^/a/'; seq 0 $((NV - 1)) | sed 's/^/v/'; } | sort >"$T/exp1.txt"
cut -f1 "$T/rows1.txt" | sort >"$T/got1.txt"
check "phase 1: every id exactly once (no loss, no duplicate)" cmp -s "$T/exp1.txt" "$T/got1.txt"
check "phase 1: both versions served" [ "$(cut -f4 "$T/rows1.txt" | sort -u | tr '\n' ' ')" = "1 2 " ]
# per partition, by offset, versions go 1 -> 2 -> 1 (a part of that: no flapping; a partition
# whose first records came after the activation starts at 2)
bad=$(sort -t$'\t' -k2,2n -k3,3n "$T/rows1.txt" | awk -F'\t' '
  { if ($2 != p) { if (p != "") print p, s; p = $2; s = ""; last = "" }
    if ($4 != last) { s = s $4; last = $4 } }
  END { print p, s }' | awk '$2 != "1" && $2 != "12" && $2 != "121" && $2 != "2" && $2 != "21"')
check "phase 1: per partition the versions follow the switches 1 -> 2 -> 1 ($bad)" [ -z "$bad" ]
# one version per batch: results of one batch share classified_at_ms and batch_size
mixed=$(awk -F'\t' '{ k = $5 "/" $6; n[k]++; v[k] = v[k] == "" || v[k] == $4 ? $4 : "mixed"; bs[k] = $6 }
  END { for (k in n) if (n[k] == bs[k] && v[k] == "mixed") print k }' "$T/rows1.txt" | head -3)
check "phase 1: every batch classified by one version ($mixed)" [ -z "$mixed" ]
grep -o "notify_to_applied_ms=[0-9.]*" "$T/w1.log" | cut -d= -f2 >"$T/swap_ms.txt"
say "swap latency (notify -> applied between batches), ms: $(tr '\n' ' ' <"$T/swap_ms.txt")"
limit=${KINFER_SWAP_LIMIT_MS:-1000}
check "phase 1: two swaps applied, each under $limit ms" \
  [ "$(awk -v l="$limit" '$1 < l' "$T/swap_ms.txt" | wc -l)" -eq 2 ]
check "phase 1: history has activate + rollback by the CLI's user" \
  [ "$(sql "SELECT string_agg(action, ',' ORDER BY id) FROM kinfer.activations")" = "activate,activate,rollback" ]

out=$("$K" deployment ls)
check "deployment ls: sections:1 active, one live worker serving it" \
  [ -n "$(grep -E '^sections +sections:1 +sections:2 +- +1  sections:1 ' <<<"$out")" ]

# ---- 2. a corrupt artifact is refused, serving goes on ----
# (META and labels intact, so the registry takes it; one flipped byte of the weights, so the
# content checksum fails and the worker refuses it)
sql "SELECT kinfer.register_model('junk', set_byte(m.artifact, octet_length(m.artifact) - 5, get_byte(m.artifact, octet_length(m.artifact) - 5) # 16), m.format, m.labels, m.meta) FROM kinfer.models m WHERE m.name = 'sections' AND m.version = 1" >/dev/null
"$K" activate sections junk 1 --reason "corrupt" >/dev/null || fail "activate junk"
N2=2000
"$K" produce -b "$B" -t in --tsv --id-prefix b -n $N2 -q "$T/lines.tsv" || fail "produce phase 2"
c=$(wait_count out $((N1 + NV + N2)) 120)
$RR rows "$B" out | grep '^b' >"$T/rows2.txt"
check "phase 2: $N2 results while the bad model is active" [ "$(wc -l <"$T/rows2.txt")" -eq $N2 ]
check "phase 2: all classified by the old model (v1)" [ "$(awk -F'\t' '$4 != 1' "$T/rows2.txt" | wc -l)" -eq 0 ]
check "phase 2: the refusal is logged" grep -q "keeping model=sections:1: model junk:1 refused" "$T/w1.log"
check "phase 2: and recorded in kinfer.workers" \
  [ -n "$(sql "SELECT 1 FROM kinfer.workers WHERE last_error LIKE 'model junk:1 refused%' AND model_version = 1")" ]

# ---- 3. PostgreSQL stops and restarts while serving ----
N3=20000
"$K" produce -b "$B" -t in --tsv --id-prefix c -n $N3 --rate 4000 -q "$T/lines.tsv" &
P3=$!
PIDS+=("$P3")
wait_count out $((N1 + NV + N2 + 1)) 120 >/dev/null # serving phase 3's records
bash "$SRC/tests/pg/cluster.sh" stop "$PGD" || fail "stop postgres"
t_down=$(now_ms) # the server is gone: a window that closes from here on must wait for it
c_stop=$($KU count "$B" out)
# classification goes on while PostgreSQL is down: 2,000 records produced now (whatever the
# background producer still has to send) give 2,000 more results before it is back
"$K" produce -b "$B" -t in --tsv --id-prefix d -n 2000 -q "$T/lines.tsv" || fail "produce while down"
c_down=$(wait_count out $((c_stop + 2000)) 120)
check "phase 3: records keep flowing while PostgreSQL is down ($c_stop -> $c_down)" [ "$c_down" -ge $((c_stop + 2000)) ]
# the metrics window holding the last of them closes while the server is still down
log_lines=$(wc -l <"$T/w1.log")
window_closed() { tail -n +$((log_lines + 1)) "$T/w1.log" | grep "fac=METRICS" | grep -qv " records=0 "; }
check "phase 3: a metrics window with records closed during the outage" wait_until 60 window_closed
t_up=$(now_ms)
# its record count, to find it in the table afterwards
R=$(tail -n +$((log_lines + 1)) "$T/w1.log" | grep "fac=METRICS" | grep -v " records=0 " | head -1 |
  sed 's/.* records=\([0-9]*\) .*/\1/')
bash "$SRC/tests/pg/cluster.sh" restart-stopped "$PGD" || fail "restart postgres"
wait "$P3" || fail "produce phase 3"
c=$(wait_count out $((N1 + NV + N2 + N3 + 2000)) 120)
check "phase 3: all $((N1 + NV + N2 + N3 + 2000)) results (got $c)" [ "$c" -eq $((N1 + NV + N2 + N3 + 2000)) ]
# the window that closed while the server was down (its record count R, from the log) reaches
# the table after the restart
outage_windows() {
  w=$(sql "SELECT count(*) FROM kinfer.metrics_windows WHERE records = ${R:-0} AND window_end > to_timestamp($t_down / 1000.0) AND window_end < to_timestamp($t_up / 1000.0)")
  [ "${w:-0}" -ge 1 ]
}
wait_until 60 outage_windows
check "phase 3: the window of $R records closed during the outage arrived afterwards ($w)" [ "${w:-0}" -ge 1 ]
[ "${w:-0}" -ge 1 ] || { say "down at $t_down ms, up at $t_up ms; the windows around them:"
  sql "SELECT (extract(epoch FROM window_start) * 1000)::bigint, (extract(epoch FROM window_end) * 1000)::bigint, records FROM kinfer.metrics_windows WHERE window_end > to_timestamp($t_down / 1000.0 - 3) AND window_start < to_timestamp($t_up / 1000.0 + 3) ORDER BY 2" >&2; }
check "phase 3: the worker reconnected" grep -q "reconnected to PostgreSQL" "$T/w1.log"
"$K" activate sections sections 2 --reason "after outage" >/dev/null || fail "activate after restart"
last_applied_is_v2() { grep "applied" "$T/w1.log" | tail -1 | grep -q "model=sections:2 applied"; }
wait_until 60 last_applied_is_v2
check "phase 3: an activation after the restart is applied" last_applied_is_v2

# ---- 4. stop ----
check "worker stops cleanly (exit 0)" stop_worker $W1
check "worker row says stopped" [ "$(sql "SELECT status FROM kinfer.workers")" = "stopped" ]
total=$(sql "SELECT sum(records) FROM kinfer.metrics_windows")
check "metrics windows count every classified record ($total of $((N1 + NV + N2 + N3 + 2000)))" [ "$total" -eq $((N1 + NV + N2 + N3 + 2000)) ]
check "metrics windows carry label counts" \
  [ "$(sql "SELECT sum(v::bigint) FROM kinfer.metrics_windows, jsonb_each_text(label_counts) AS l(k, v)")" -eq "$total" ]
check "metrics windows per version" [ "$(sql "SELECT count(DISTINCT model_version) FROM kinfer.metrics_windows")" -eq 2 ]
finish
