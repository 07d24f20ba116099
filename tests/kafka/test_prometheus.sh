#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_prometheus.sh -- GET /metrics of a live `kinfer serve` (dev broker, records flowing),
# scraped by a real Prometheus (Debian's prometheus), and the Grafana dashboard's queries:
#  1. the exposition after 200 good records, one undecodable and one with no feature: `promtool
#     check metrics` passes; records in = 202, results out = 200, dead letters counted under
#     their reasons, results per label add up to 200, kinfer_model_info carries the model file's
#     sha256, the lag of both partitions is 0 once everything is consumed;
#  2. Prometheus (generated config, 1 s scrape interval, deploy/prometheus/kinfer-alerts.yml
#     loaded) scrapes the worker: PromQL over its HTTP API returns the same values, the target
#     is up, every alerting rule evaluates without error;
#  3. with a feeder producing 40 records/s: rates are positive and the latency quantile is
#     finite; every query of every panel of deploy/grafana/kinfer-dashboard.json
#     ($__rate_interval as 1m) returns a non-empty result;
#  4. `kinfer serve --http-only`: /metrics passes promtool, says ready and which model.
# Needs prometheus and promtool (deploy/install-test-deps.sh): missing, the test fails.
. "$(dirname "$0")/lib.sh"

for tool in prometheus promtool curl jq; do
  command -v "$tool" >/dev/null || { fail "$tool is not installed (deploy/install-test-deps.sh installs it)"; finish; }
done

start_broker in:2 out:2 dlq:1
# a model from a quarter of the sample: what it predicts does not matter here, and training
# under AddressSanitizer takes a quarter of the time
MODEL=$T/model.kinf
head -n 1000 "$SRC/tests/data/sections-train.tsv" >"$T/train.tsv"
"$KT" train --input "$T/train.tsv" --output "$MODEL" >"$T/train.log" 2>&1 || { fail "train a model"; cat "$T/train.log" >&2; finish; }
DASH=$SRC/deploy/grafana/kinfer-dashboard.json
RULES=$SRC/deploy/prometheus/kinfer-alerts.yml
check "promtool check rules $RULES" promtool check rules "$RULES"

head -n 200 "$SRC/tests/data/sections-dev.tsv" >"$T/lines.tsv"
"$K" produce -b "$B" -t in --tsv --id-prefix g -q "$T/lines.tsv" || fail "produce 200 records"
$PY - "$B" <<'PYEOF' || fail "produce the bad records"
import sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1]})
p.produce("in", key=b"bad", value=b"not JSON at all", partition=0)               # undecodable
p.produce("in", key=b"nofeat", value=b'{"id": "nf", "text": "..,;!"}', partition=1)  # no_features
p.flush(10)
PYEOF

write_conf "$T/w.conf" http.listen=127.0.0.1:0
start_worker w "$T/w.conf"
WPID_W=$WPID
wait_until 120 grep -q "fac=HTTP.*serving http on" "$T/w.log" || { fail "the worker serves HTTP"; finish; }
# "fac=HTTP serving http on 127.0.0.1:PORT (http.listen=127.0.0.1:0)"
ADDR=$(sed -n 's/.*fac=HTTP serving http on \([^ ]*\).*/\1/p' "$T/w.log" | head -1)
PORT=${ADDR##*:}
case $PORT in ''|0|*[!0-9]*) fail "the worker's HTTP port in its log (\"$ADDR\")"; finish ;; esac
M=http://127.0.0.1:$PORT/metrics
say "worker /metrics at $M"

# value NAME{LABELS} -- the sample's value in $T/metrics.txt (empty when absent)
value() { awk -v n="$1" '$1 == n { print $2 }' "$T/metrics.txt"; }
scrape() { curl -sf -o "$T/metrics.txt" "$M"; }
records_in_is() { scrape && [ "$(value kinfer_records_in_total)" = "$1" ]; }
# everything consumed, classified and delivered: nothing in flight, lag known and 0
settled() {
  records_in_is 202 && [ "$(value kinfer_records_in_flight)" = 0 ] &&
    [ "$(value 'kinfer_consumer_lag_records{topic="in",partition="0"}')" = 0 ] &&
    [ "$(value 'kinfer_consumer_lag_records{topic="in",partition="1"}')" = 0 ]
}
check "the worker's /metrics counts the 202 records, none in flight, lag 0 on both partitions" wait_until 120 settled
check "Content-Type is the text format 0.0.4" \
  bash -c "curl -sf -D - -o /dev/null '$M' | tr -d '\r' | grep -qi '^content-type: text/plain; version=0.0.4'"
if promtool check metrics <"$T/metrics.txt" >"$T/promtool.out" 2>&1; then ok "promtool check metrics"
else fail "promtool check metrics"; cat "$T/promtool.out" >&2; fi
check "results out = 200" [ "$(value kinfer_results_out_total)" = 200 ]
check "one dead letter with reason undecodable" [ "$(value 'kinfer_dead_letters_total{reason="undecodable"}')" = 1 ]
check "one dead letter with reason no_features" [ "$(value 'kinfer_dead_letters_total{reason="no_features"}')" = 1 ]
check "no dead letter with reason oversized" [ "$(value 'kinfer_dead_letters_total{reason="oversized"}')" = 0 ]
labels_sum=$(awk '/^kinfer_results_by_label_total\{/ { s += $2 } END { print s + 0 }' "$T/metrics.txt")
check "results by label add up to 200 ($labels_sum)" [ "$labels_sum" = 200 ]
batches=$(value kinfer_batches_total)
check "batches = the batch size histogram's count ($batches)" [ "$(value kinfer_batch_size_records_count)" = "$batches" ]
check "latency histogram: 202 records ($(value kinfer_record_latency_seconds_count))" \
  [ "$(value kinfer_record_latency_seconds_count)" = 202 ]
SHA=$(sha256sum "$MODEL" | cut -d' ' -f1)
check "kinfer_model_info carries the model's sha256" grep -q "^kinfer_model_info{.*sha256=\"$SHA\"} 1$" "$T/metrics.txt"
check "ready, 2 partitions, flowing" [ "$(value kinfer_ready)/$(value kinfer_partitions_assigned)/$(value kinfer_backpressure_state)" = 1/2/0 ]

# ---- a real Prometheus scrapes it ----------------------------------------------------------
PPORT=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$T/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["$RULES"]
scrape_configs:
  - job_name: kinfer
    static_configs:
      - targets: ["127.0.0.1:$PORT"]
EOF
check "promtool check config" promtool check config "$T/prometheus.yml"
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom-data" \
  --web.listen-address="127.0.0.1:$PPORT" --log.level=warn >"$T/prometheus.log" 2>&1 &
PIDS+=("$!")
P=http://127.0.0.1:$PPORT
wait_until 60 curl -sf "$P/-/ready" -o /dev/null || { fail "Prometheus is ready"; tail "$T/prometheus.log" >&2; finish; }
say "Prometheus at $P"

# query EXPR -- the instant query's JSON in $T/q.json; true when it succeeded
query() { curl -sf -o "$T/q.json" "$P/api/v1/query" --data-urlencode "query=$1" && [ "$(jq -r .status "$T/q.json")" = success ]; }
# q1 EXPR -- the value of the query's single sample ("" when none)
q1() { query "$1" && jq -r 'if (.data.result | length) == 1 then .data.result[0].value[1] else "" end' "$T/q.json"; }
scraped_202() { [ "$(q1 'kinfer_records_in_total{job="kinfer"}')" = 202 ]; }
check "Prometheus scraped the worker: kinfer_records_in_total = 202" wait_until 60 scraped_202
check "up{job=\"kinfer\"} = 1" [ "$(q1 'up{job="kinfer"}')" = 1 ]
check "PromQL: results out = 200" [ "$(q1 'kinfer_results_out_total')" = 200 ]
check "PromQL: dead letters by reason (undecodable 1)" [ "$(q1 'kinfer_dead_letters_total{reason="undecodable"}')" = 1 ]
check "PromQL: all dead letters = 2" [ "$(q1 'sum(kinfer_dead_letters_total)')" = 2 ]
check "PromQL: results per label add up to results out" \
  [ "$(q1 'sum(kinfer_results_by_label_total) - sum(kinfer_results_out_total)')" = 0 ]
check "PromQL: kinfer_model_info{sha256=the model's}" [ "$(q1 "kinfer_model_info{sha256=\"$SHA\"}")" = 1 ]
check "PromQL: lag of the 2 partitions sums to 0" [ "$(q1 'sum(kinfer_consumer_lag_records)')" = 0 ]
check "PromQL: 2 lag series" [ "$(q1 'count(kinfer_consumer_lag_records)')" = 2 ]
check "PromQL: build info" [ "$(q1 'count(kinfer_build_info{version!=""})')" = 1 ]
check "PromQL: registry not configured, not connected" \
  [ "$(q1 'kinfer_registry_configured + kinfer_registry_connected')" = 0 ]

# ---- records flowing: rates, quantiles, the dashboard -------------------------------------
"$K" produce -b "$B" -t in --tsv --id-prefix f -q -n 1000000 --rate 40 "$T/lines.tsv" 2>"$T/feeder.log" &
PIDS+=("$!")
# rates over 1m need two scrapes with new records in between
flowing() { v=$(q1 'sum(rate(kinfer_records_in_total[1m]))') && [ -n "$v" ] && awk -v v="$v" 'BEGIN { exit !(v > 0) }'; }
check "PromQL: records in per second > 0 while the feeder runs" wait_until 60 flowing
finite_p99() {
  v=$(q1 'histogram_quantile(0.99, sum by (le) (rate(kinfer_record_latency_seconds_bucket[1m])))') &&
    awk -v v="$v" 'BEGIN { exit !(v > 0 && v < 120) }'
}
check "PromQL: p99 end-to-end latency is finite and positive" wait_until 60 finite_p99
rules_ok() {
  curl -sf "$P/api/v1/rules" -o "$T/rules.json" &&
    [ "$(jq '[.data.groups[].rules[]] | length' "$T/rules.json")" = 12 ] &&
    [ "$(jq '[.data.groups[].rules[] | select(.health != "ok")] | length' "$T/rules.json")" = 0 ] &&
    [ "$(jq '[.data.groups[].rules[] | select(.lastEvaluation | startswith("0001"))] | length' "$T/rules.json")" = 0 ]
}
check "the 12 alerting rules are loaded and evaluate without error" wait_until 60 rules_ok

n_expr=0
while IFS=$'\t' read -r title expr; do
  n_expr=$((n_expr + 1))
  e=${expr//\$__rate_interval/1m}
  has_data() { query "$e" && [ "$(jq '.data.result | length' "$T/q.json")" -gt 0 ]; }
  check "dashboard \"$title\": $e returns data" wait_until 30 has_data
done < <(jq -r '.panels[] | .title as $t | .targets[] | [$t, .expr] | @tsv' "$DASH")
panels=$(jq '.panels | length' "$DASH")
check "the dashboard has 11 panels and 20 queries ($panels, $n_expr)" [ "$panels/$n_expr" = 11/20 ]

check "the worker stops cleanly" stop_worker "$WPID_W"

# ---- HTTP-only mode (no Kafka): /metrics says which model, and ready ------------------------
"$K" serve --http-only -X http.listen=127.0.0.1:0 -X "model.path=$MODEL" -X model.version=7 \
  >"$T/h.out" 2>"$T/h.log" &
HPID=$!
PIDS+=("$HPID")
WORKERS+=("$HPID:h")
wait_until 60 grep -q "fac=HTTP serving http on" "$T/h.log" || { fail "HTTP-only serves"; finish; }
ADDR=$(sed -n 's/.*fac=HTTP serving http on \([^ ]*\).*/\1/p' "$T/h.log" | head -1)
M=http://127.0.0.1:${ADDR##*:}/metrics
h_ready() { scrape && [ "$(value kinfer_ready)" = 1 ]; }
check "HTTP-only: /metrics says ready" wait_until 30 h_ready
if promtool check metrics <"$T/metrics.txt" >"$T/promtool.out" 2>&1; then ok "HTTP-only: promtool check metrics"
else fail "HTTP-only: promtool check metrics"; cat "$T/promtool.out" >&2; fi
check "HTTP-only: kinfer_model_info with version 7 and the model's sha256" \
  grep -q "^kinfer_model_info{.*version=\"7\",sha256=\"$SHA\"} 1$" "$T/metrics.txt"
check "HTTP-only: stops cleanly" stop_worker "$HPID"
finish
