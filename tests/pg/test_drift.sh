#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_drift.sh -- the drift signal end to end (issue 15, part 3), against a real PostgreSQL (a
# private cluster) and the dev broker: a model trained on a debian-sections sample with a dev
# split carries its drift reference (quantize and prune carry it, training without dev data and
# prune --retrain count their training data); a worker of its registry deployment is fed held-out
# debian-sections records (other records of the same dev split) until a metrics window has
# drift.min.records records: its PSI of labels and confidence is below drift.psi.warn and
# kinfer_drift_alert is 0; then it is fed UI strings in 20 languages (tests/data/langid-*):
# the PSI rises above the threshold, a DRIFT warning is logged, kinfer_drift_alert is 1 (promtool
# passes); kinfer.metrics_windows holds both windows' PSI and every window's confidence
# histogram (10 bins summing to its records; a PSI exactly for windows of >= drift.min.records
# records); `kinfer deployment drift` shows the trend; a registry without migration 0006's
# function still gets the windows (without drift columns, said once); every record fed has a result (a third
# of the langid strings have no feature the model knows: input.no.features=classify gives them
# a result too, where the default would dead-letter them). Waits on
# what it observes; the feeders stop once it has seen it. About 40 s optimised.
. "$(dirname "$0")/../kafka/lib.sh"

start_private_pg drift
for tool in curl promtool; do
  command -v "$tool" >/dev/null || { fail "$tool is not installed (deploy/install-test-deps.sh)"; finish; }
done
sql() { psql -X -qtA -d postgres -c "$1"; }
"$K" migrate >"$T/migrate.log" 2>&1 || { fail "migrate"; cat "$T/migrate.log" >&2; finish; }

# the reference: the first 1600 records of the dev split; live traffic: the next 2000
zcat "$SRC/tests/data/sections-dev-full.tsv.gz" | head -n 1600 >"$T/refdev.tsv"
zcat "$SRC/tests/data/sections-dev-full.tsv.gz" | sed -n '1601,3600p' >"$T/live.tsv"
cat "$SRC/tests/data/langid-train.tsv" "$SRC/tests/data/langid-dev.tsv" >"$T/langid.tsv"
"$KT" train --input "$SRC/tests/data/sections-train.tsv" --dev "$T/refdev.tsv" --output "$T/m.kinf" \
  >"$T/train.log" 2>&1 || { fail "train"; cat "$T/train.log" >&2; finish; }
check "the model carries a reference on its dev data" \
  bash -c "'$K' inspect '$T/m.kinf' | grep -q '^drift_reference	dev refdev.tsv, 1600 records$'"
ref_of() { "$K" inspect "$1" | sed -n 's/^drift_reference	//p'; }
# quantize and prune carry it; training without dev data, and prune --retrain, count the
# training (retrain) data instead
head -n 1000 "$SRC/tests/data/sections-train.tsv" >"$T/tr1000.tsv"
"$K" quantize "$T/m.kinf" -o "$T/q.kinf" -q || fail "quantize"
check "quantize carries the reference" [ "$(ref_of "$T/q.kinf")" = "dev refdev.tsv, 1600 records" ]
"$K" prune "$T/m.kinf" --sparsity 0.5 -o "$T/p.kinf" -q || fail "prune"
check "prune carries it" [ "$(ref_of "$T/p.kinf")" = "dev refdev.tsv, 1600 records" ]
"$K" prune "$T/m.kinf" --sparsity 0.5 --retrain "$T/tr1000.tsv" --epoch 1 -o "$T/pr.kinf" -q || fail "prune --retrain"
check "prune --retrain counts its retrain data" [ "$(ref_of "$T/pr.kinf")" = "train tr1000.tsv, 1000 records" ]
"$KT" train -q --input "$T/tr1000.tsv" --output "$T/t.kinf" --epoch 2 --no-auto-features || fail "train without dev"
check "without --dev: the training data" [ "$(ref_of "$T/t.kinf")" = "train tr1000.tsv, 1000 records" ]
"$K" model push "$T/m.kinf" --name sections >"$T/push.log" 2>&1 || fail "push"
"$K" activate drift sections 1 --reason "drift test" >/dev/null || fail "activate"

# at most 5 + 8 chunks of 1000 records: budget the results (the larger records)
budget_check "results" 13000 1 "$OUT_RECORD_BYTES" 4
start_broker in:4 out:4 dlq:1
MODEL=$T/m.kinf
write_conf "$T/w.conf" model.path= deployment=drift \
  "pg.conninfo=host=127.0.0.1 port=$PGPORT dbname=postgres" http.listen=127.0.0.1:0 \
  metrics.interval.ms=3000 drift.min.records=1000 drift.psi.warn=0.2 input.no.features=classify
start_worker w "$T/w.conf" -X worker.id=drift-1
W=$WPID
wait_until 60 grep -q "fac=HTTP serving http on" "$T/w.log" || { fail "the worker serves HTTP"; finish; }
ADDR=$(sed -n 's/.*fac=HTTP serving http on \([^ ]*\).*/\1/p' "$T/w.log" | head -1)
M=http://127.0.0.1:${ADDR##*:}/metrics
wait_assigned w || { fail "the worker is assigned"; finish; }

scrape() { curl -sf -o "$T/metrics.txt" "$M"; }
value() { awk -v n="$1" '$1 == n { print $2 }' "$T/metrics.txt"; }
assessed() { scrape && grep -q '^kinfer_drift_psi{kind="labels"} ' "$T/metrics.txt"; }
alert_is() { scrape && [ "$(value kinfer_drift_alert)" = "$1" ]; }
promtool_ok() { promtool check metrics <"$T/metrics.txt" >"$T/promtool.out" 2>&1 || { cat "$T/promtool.out" >&2; return 1; }; }
below() { awk -v v="$1" -v t="$2" 'BEGIN { exit !(v + 0 < t + 0) }'; }

# feed FILE PREFIX MAX_CHUNKS -- chunks of 1000 records at 1000/s until feed_stop (ids PREFIX<k>_<n>)
feed() {
  local file=$1 prefix=$2 max=$3
  : >"$T/feed.$prefix"
  (
    k=0
    while [ $k -lt "$max" ] && [ ! -e "$T/feed.$prefix.stop" ]; do
      "$K" produce -b "$B" -t in --tsv -n 1000 --rate 1000 --id-prefix "$prefix${k}_" -q "$file" \
        2>>"$T/feed.$prefix.err" && echo "$prefix${k}_" >>"$T/feed.$prefix"
      k=$((k + 1))
    done
  ) &
  FEED_PID=$!
  PIDS+=("$FEED_PID")
}
feed_stop() { touch "$T/feed.$1.stop"; wait "$FEED_PID"; }
fed() { awk '{ for (i = 0; i < 1000; i++) print $1 i }' "$T/feed.$1"; }

# ---- held-out records of the reference's own source: no drift --------------------------------
feed "$T/live.tsv" a 5
check "a window of >= 1000 held-out records is assessed" wait_until 120 assessed
feed_stop a
PL=$(value 'kinfer_drift_psi{kind="labels"}'); PC=$(value 'kinfer_drift_psi{kind="confidence"}')
say "held-out window: psi_labels=$PL psi_confidence=$PC"
check "its label PSI is below 0.2" below "$PL" 0.2
check "its confidence PSI is below 0.2" below "$PC" 0.2
check "kinfer_drift_alert is 0" [ "$(value kinfer_drift_alert)" = 0 ]
check "promtool check metrics (no drift)" promtool_ok
N_A=$(($(wc -l <"$T/feed.a") * 1000))
check "all $N_A held-out records classified" [ "$(wait_count out "$N_A" 120)" -ge "$N_A" ]
check "no DRIFT warning for held-out records" bash -c "! grep -q 'fac=DRIFT.*drift above' '$T/w.log'"

# ---- another data set (UI strings in 20 languages): drift ---------------------------------------
feed "$T/langid.tsv" b 8
check "kinfer_drift_alert becomes 1" wait_until 120 alert_is 1
feed_stop b
PL=$(value 'kinfer_drift_psi{kind="labels"}'); PC=$(value 'kinfer_drift_psi{kind="confidence"}')
say "langid window: psi_labels=$PL psi_confidence=$PC"
check "its label PSI is above 0.2" below 0.2 "$PL"
check "promtool check metrics (drift)" promtool_ok
check "a DRIFT warning names the PSI and the window" \
  grep -q 'fac=DRIFT.*drift above drift.psi.warn=0.2: .*psi_labels=[0-9.]* psi_confidence=[0-9.]* records=[0-9]* window_s=[0-9.]* model=sections version=1' "$T/w.log"

# ---- no record lost; the windows in PostgreSQL --------------------------------------------------
{ fed a; fed b; } | sort >"$T/expected.txt"
N=$(wc -l <"$T/expected.txt")
check "every record fed has a result" wait_until 120 have_all_ids
check "the worker stops cleanly" stop_worker "$W"
check "the broker kept every record" kept_all in out

W0="deployment = 'drift'"
check "a window below the threshold in kinfer.metrics_windows" \
  [ "$(sql "SELECT count(*) FROM kinfer.metrics_windows WHERE $W0 AND psi_labels < 0.2 AND psi_confidence < 0.2")" -ge 1 ]
check "a window above it" \
  [ "$(sql "SELECT count(*) FROM kinfer.metrics_windows WHERE $W0 AND psi_labels > 0.2")" -ge 1 ]
check "a PSI exactly for the windows of >= 1000 records" \
  [ "$(sql "SELECT count(*) FROM kinfer.metrics_windows WHERE $W0 AND records > 0 AND ((psi_labels IS NULL) <> (records < 1000) OR (psi_confidence IS NULL) <> (records < 1000))")" = 0 ]
check "every window's confidence histogram has 10 bins summing to its records" \
  [ "$(sql "SELECT count(*) FROM kinfer.metrics_windows WHERE $W0 AND records > 0 AND (cardinality(confidence_hist) IS DISTINCT FROM 10 OR (SELECT sum(x) FROM unnest(confidence_hist) x) <> records)")" = 0 ]
check "the windows count every record" \
  [ "$(sql "SELECT sum(records) FROM kinfer.metrics_windows WHERE $W0")" -ge "$N" ]

"$K" deployment drift drift --bucket window >"$T/trend.txt" 2>"$T/trend.err" || fail "kinfer deployment drift"
check "the trend shows a window above 0.2 for sections:1" \
  awk '$2 == "sections:1" && $5 + 0 > 0.2 { found = 1 } END { exit !found }' "$T/trend.txt"
check "and one below" \
  awk '$2 == "sections:1" && $5 != "-" && $5 + 0 < 0.2 { found = 1 } END { exit !found }' "$T/trend.txt"
"$K" deployment drift drift >"$T/trend-min.txt" 2>&1 || fail "kinfer deployment drift (per minute)"
check "per minute: the records add up" \
  [ "$(awk 'NR > 1 { s += $4 } END { print s + 0 }' "$T/trend-min.txt")" -ge "$N" ]
check "deployment drift --help" bash -c "'$K' deployment drift --help | grep -q '^Usage: kinfer deployment drift DEPLOYMENT'"

# ---- a registry without migration 0006's function (workers upgraded first) ------------------------
# the windows are still written, without their drift columns, and nothing is counted as dropped
sql "DROP FUNCTION kinfer.metrics_drift(text, timestamptz, text, double precision, double precision, bigint[])" >/dev/null
start_worker w2 "$T/w.conf" -X worker.id=drift-2
W2=$WPID
wait_assigned w2 || fail "the second worker is assigned"
head -n 100 "$T/live.tsv" >"$T/c.tsv"
"$K" produce -b "$B" -t in --tsv --id-prefix c -q "$T/c.tsv" || fail "produce 100 records"
seq 0 99 | sed 's/^/c/' >>"$T/expected.txt"
sort -o "$T/expected.txt" "$T/expected.txt"
check "the 100 records are classified" wait_until 120 have_all_ids
check "the second worker stops cleanly" stop_worker "$W2"
check "its windows are written, without drift columns" \
  [ "$(sql "SELECT coalesce(sum(records), 0) FROM kinfer.metrics_windows WHERE worker_id = 'drift-2' AND confidence_hist IS NULL")" = 100 ]
check "it said so once, and dropped no window" \
  bash -c "[ \$(grep -c 'written without their drift columns' '$T/w2.log') = 1 ] && ! grep -q 'metrics window dropped' '$T/w2.log'"
finish
