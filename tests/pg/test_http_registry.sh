#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_http_registry.sh -- the HTTP server with registry deployments, against a real
# PostgreSQL (a private cluster) and the dev broker:
#   1. HTTP-only mode (`kinfer serve --http-only`, deployment=): /readyz 200 once the model is
#      loaded; /v1/classify answers with sections:1; after `kinfer activate ... 2` it answers
#      with version 2, after a rollback with version 1 again (the registry thread's swaps);
#   2. Kafka mode with http.listen: /readyz is 503 until partitions are assigned, 200 after;
#      a second worker of the group on a one-partition topic is 503 (no partition) until the
#      first one stops, then 200 (readiness flips both ways); an activation reaches
#      /v1/classify and the Kafka results alike (the worker's slot: one model for both).
# About 40 s optimised.
. "$(dirname "$0")/../kafka/lib.sh"

start_private_pg http
command -v curl >/dev/null || { fail "curl is required (deploy/install-test-deps.sh)"; finish; }

"$K" migrate >"$T/migrate.log" 2>&1 || { fail "migrate"; cat "$T/migrate.log" >&2; finish; }
train_model
"$K" train --input "$SRC/tests/data/sections-train.tsv" --output "$T/m2.kinf" --seed 7 --epoch 8 \
  -q >"$T/train2.log" 2>&1 || { fail "train model 2"; finish; }
"$K" model push "$MODEL" --name sections >"$T/push.log" 2>&1 || fail "push v1"
"$K" model push "$T/m2.kinf" --name sections >>"$T/push.log" 2>&1 || fail "push v2"
"$K" activate sections sections 1 --reason "test start" >/dev/null || fail "activate v1"
CONNINFO="host=127.0.0.1 port=$PGPORT dbname=postgres"

# url_of LOG -- the server's base URL from its "serving http on HOST:PORT" line
url_of() { grep -o "serving http on [^ ]*" "$1" | head -1 | awk '{print "http://" $4}'; }
status_of() { curl -s -o /dev/null -w '%{http_code}' "$1"; }
# version_is URL V -- /v1/classify answers with model version V
version_is() {
  curl -s -d '{"text": "the linux kernel scheduler"}' "$1/v1/classify" |
    $PY -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["model"]["version"] == int(sys.argv[1]) else 1)' "$2"
}

# ---- 1. HTTP-only mode, model from the registry ----------------------------------------------
"$K" serve --http-only -X deployment=sections -X "pg.conninfo=$CONNINFO" -X http.listen=127.0.0.1:0 \
  -X worker.id=http-only-1 2>"$T/h.log" &
H=$!; PIDS+=("$H"); WORKERS+=("$H:h")
check "http-only: serving" wait_until 30 grep -q "serving http on" "$T/h.log"
U=$(url_of "$T/h.log")
check "http-only: /readyz 200 with the deployment's model" wait_until 30 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' $U/readyz)\" = 200 ]"
check "http-only: /v1/classify answers with sections:1" version_is "$U" 1
"$K" activate sections sections 2 --reason "http swap" >/dev/null || fail "activate v2"
check "http-only: after the activation /v1/classify answers with version 2" wait_until 60 version_is "$U" 2
check "http-only: the name stays" bash -c "curl -s -d '{\"text\": \"x\"}' $U/v1/classify | grep -q '\"name\": \"sections\"'"
"$K" rollback sections --reason "http rollback" >/dev/null || fail "rollback"
check "http-only: after the rollback version 1 again" wait_until 60 version_is "$U" 1
forget_worker "$H"; kill -TERM "$H"; wait "$H"; rc=$?
check "http-only: SIGTERM exit 0" [ $rc -eq 0 ]

# ---- 2. Kafka mode with http.listen ---------------------------------------------------------
start_broker in:1 out:1 dlq:1
write_conf "$T/w.conf" model.path= deployment=sections "pg.conninfo=$CONNINFO" \
  http.listen=127.0.0.1:0
start_worker w1 "$T/w.conf" -X worker.id=w1
W1=$WPID
check "kafka: w1 serving http" wait_until 30 grep -q "serving http on" "$T/w1.log"
U1=$(url_of "$T/w1.log")
check "kafka: w1 /healthz 200" [ "$(status_of "$U1/healthz")" = 200 ]
check "kafka: w1 /readyz 200 once assigned" wait_until 60 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' $U1/readyz)\" = 200 ]"
start_worker w2 "$T/w.conf" -X worker.id=w2
W2=$WPID
check "kafka: w2 serving http" wait_until 30 grep -q "serving http on" "$T/w2.log"
U2=$(url_of "$T/w2.log")
# one partition, two workers: after the rebalance exactly one holds it
one_ready() { local a b; a=$(status_of "$U1/readyz"); b=$(status_of "$U2/readyz"); [ "$a$b" = 200503 ] || [ "$a$b" = 503200 ]; }
check "kafka: one partition, two workers: one ready, the other 503" wait_until 60 one_ready
if [ "$(status_of "$U1/readyz")" = 200 ]; then HOLD=$W1 HU=$U1 OTHER=$U2 OW=w2; else HOLD=$W2 HU=$U2 OTHER=$U1 OW=w1; fi
check "kafka: the 503 says why" bash -c "curl -s $OTHER/readyz | grep -q 'no partition'"
check "kafka: /v1/classify answers on the worker without partitions too (its model is loaded)" version_is "$OTHER" 1
forget_worker "$HOLD"; stop_worker "$HOLD" || fail "stop the worker holding the partition"
check "kafka: the other worker takes the partition: /readyz flips to 200" wait_until 60 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' $OTHER/readyz)\" = 200 ]"
"$K" activate sections sections 2 --reason "kafka+http swap" >/dev/null || fail "activate v2 again"
check "kafka: the activation reaches /v1/classify" wait_until 60 version_is "$OTHER" 2
check "kafka: and the worker's log (applied)" wait_until 60 grep -q "model=sections:2 applied" "$T/$OW.log"
head -n 20 "$SRC/tests/data/sections-dev.tsv" >"$T/lines.tsv"
"$K" produce -b "$B" -t in --tsv --id-prefix s -n 20 -q "$T/lines.tsv" || fail "produce"
check "kafka: 20 results" [ "$(wait_count out 20 60)" -ge 20 ]
check "kafka: the Kafka results carry version 2 as /v1/classify does" bash -c "$PY '$SRC/tests/pg/registry_results.py' rows '$B' out | awk -F'\t' '\$4 != 2 {bad=1} END {exit bad}'"
finish
