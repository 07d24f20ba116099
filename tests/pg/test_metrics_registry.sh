#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_metrics_registry.sh -- /metrics of `kinfer serve` with a registry deployment, against a
# real PostgreSQL (a private cluster) and the dev broker: the registry series say configured
# and connected, kinfer_model_info follows an activation (version 2, swaps 1), a corrupt
# artifact activated is refused and counted (kinfer_model_swap_failures_total 1, the model
# stays version 2), PostgreSQL stopped shows as kinfer_registry_connected 0 while serving goes
# on; promtool check metrics passes at each step. About 30 s optimised.
. "$(dirname "$0")/../kafka/lib.sh"

start_private_pg metrics
for tool in curl promtool; do
  command -v "$tool" >/dev/null || { fail "$tool is not installed (deploy/install-test-deps.sh)"; finish; }
done
sql() { psql -X -qtA -d postgres -c "$1"; }

"$K" migrate >"$T/migrate.log" 2>&1 || { fail "migrate"; cat "$T/migrate.log" >&2; finish; }
head -n 1000 "$SRC/tests/data/sections-train.tsv" >"$T/train.tsv"
"$KT" train --input "$T/train.tsv" --output "$T/m1.kinf" >"$T/train1.log" 2>&1 || { fail "train model 1"; finish; }
"$KT" train --input "$T/train.tsv" --output "$T/m2.kinf" --seed 7 >"$T/train2.log" 2>&1 || { fail "train model 2"; finish; }
"$K" model push "$T/m1.kinf" --name sections >"$T/push.log" 2>&1 || fail "push v1"
"$K" model push "$T/m2.kinf" --name sections >>"$T/push.log" 2>&1 || fail "push v2"
"$K" activate sections sections 1 --reason "test start" >/dev/null || fail "activate v1"
SHA2=$(sha256sum "$T/m2.kinf" | cut -d' ' -f1)

start_broker in:1 out:1 dlq:1
MODEL=$T/m1.kinf # write_conf's model.path, emptied below: the model comes from the registry
write_conf "$T/w.conf" model.path= deployment=sections \
  "pg.conninfo=host=127.0.0.1 port=$PGPORT dbname=postgres" http.listen=127.0.0.1:0
start_worker w "$T/w.conf" -X worker.id=metrics-1
W=$WPID
wait_until 60 grep -q "fac=HTTP serving http on" "$T/w.log" || { fail "the worker serves HTTP"; finish; }
ADDR=$(sed -n 's/.*fac=HTTP serving http on \([^ ]*\).*/\1/p' "$T/w.log" | head -1)
M=http://127.0.0.1:${ADDR##*:}/metrics

value() { awk -v n="$1" '$1 == n { print $2 }' "$T/metrics.txt"; }
scrape() { curl -sf -o "$T/metrics.txt" "$M"; }
promtool_ok() { promtool check metrics <"$T/metrics.txt" >"$T/promtool.out" 2>&1 || { cat "$T/promtool.out" >&2; return 1; }; }
version_is() { scrape && grep -q "^kinfer_model_info{name=\"sections\",version=\"$1\"," "$T/metrics.txt"; }
connected_is() { scrape && [ "$(value kinfer_registry_connected)" = "$1" ]; }

v1_connected() { version_is 1 && connected_is 1; }
check "connected to the registry, serving sections:1" wait_until 60 v1_connected
check "registry configured" [ "$(value kinfer_registry_configured)" = 1 ]
check "no swap yet, no failure" [ "$(value kinfer_model_swaps_total)/$(value kinfer_model_swap_failures_total)" = 0/0 ]
check "promtool check metrics (v1)" promtool_ok

"$K" activate sections sections 2 --reason "metrics swap" >/dev/null || fail "activate v2"
check "after the activation: sections:2" wait_until 60 version_is 2
check "kinfer_model_info has v2's sha256" grep -q "^kinfer_model_info{name=\"sections\",version=\"2\",sha256=\"$SHA2\"} 1$" "$T/metrics.txt"
# the counters are handed over every 50 ms, the model's record is read at the scrape
swaps_is() { scrape && [ "$(value kinfer_model_swaps_total)" = "$1" ]; }
check "one swap" wait_until 30 swaps_is 1

# a corrupt artifact (one flipped byte of the weights: the content checksum fails) is refused
sql "SELECT kinfer.register_model('junk', set_byte(m.artifact, octet_length(m.artifact) - 5, get_byte(m.artifact, octet_length(m.artifact) - 5) # 16), m.format, m.labels, m.meta) FROM kinfer.models m WHERE m.name = 'sections' AND m.version = 1" >/dev/null
"$K" activate sections junk 1 --reason "corrupt" >/dev/null || fail "activate junk"
failures_is() { scrape && [ "$(value kinfer_model_swap_failures_total)" = "$1" ]; }
check "the corrupt model is refused and counted" wait_until 60 failures_is 1
check "still sections:2, still one swap" bash -c "grep -q '^kinfer_model_info{name=\"sections\",version=\"2\",' '$T/metrics.txt' && grep -q '^kinfer_model_swaps_total 1$' '$T/metrics.txt'"
check "promtool check metrics (after the refusal)" promtool_ok

# PostgreSQL away: the registry series say so, the worker keeps serving
bash "$SRC/tests/pg/cluster.sh" stop "$PGD" >/dev/null 2>&1 || fail "stop PostgreSQL"
check "PostgreSQL stopped: kinfer_registry_connected 0" wait_until 60 connected_is 0
head -n 20 "$SRC/tests/data/sections-dev.tsv" >"$T/lines.tsv"
"$K" produce -b "$B" -t in --tsv --id-prefix p -q "$T/lines.tsv" || fail "produce 20 records"
check "records are classified without PostgreSQL" [ "$(wait_count out 20 120)" -ge 20 ]
check "promtool check metrics (disconnected)" promtool_ok
check "the worker stops cleanly" stop_worker "$W"
finish
