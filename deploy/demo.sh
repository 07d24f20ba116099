#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# demo.sh -- the whole kinfer loop on one machine, from a fresh Debian:
#   install dependencies, build, start a throwaway PostgreSQL (initdb into .demo/pg, run as a
#   non-root user) and a Kafka-protocol dev broker, apply the migrations, train a model on the
#   bundled sample and quantize it, push both with their lineage, activate one, stream Avro
#   records through a worker, switch to the other version live, roll back, and show the
#   results and the metrics tables.
# Everything it starts is stopped when it exits. Usage: deploy/demo.sh [--keep]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO=$ROOT/.demo
KEEP=${1:-}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
why() { printf '\033[2m%s\033[0m\n' "$@"; }   # what a step does and why, before it runs

rm -rf "$DEMO"
mkdir -p "$DEMO/schemas"
step "1. dependencies and build"
why "Installs the build, run and test packages with apt (deploy/install-deps.sh; nothing when" \
    "they are there; the benchmarks' fastText and scikit-learn are not installed), then builds" \
    "build/kinfer: about a minute on 2 cores, the compiler's output goes to .demo/build.log."
deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$DEMO/build.log"
cmake --build build -j"$(nproc)" --target kinfer >>"$DEMO/build.log"
K=$ROOT/build/kinfer
echo "built $K ($("$K" --version))"
PIDS=()
PGDIR=$(mktemp -d /tmp/kinfer-demo-pg.XXXXXX)   # PostgreSQL's data must be reachable by its user
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  tests/pg/cluster.sh stop "$PGDIR" >/dev/null 2>&1 || true
  rm -rf "$PGDIR"
}
trap cleanup EXIT

step "2. PostgreSQL (throwaway cluster) and migrations"
why "The model registry: versions, lineage, which model each deployment serves, metrics." \
    "A private cluster in a temporary directory, removed at the end; kinfer migrate creates" \
    "the kinfer schema."
eval "$(tests/pg/cluster.sh start "$PGDIR")"
echo "PostgreSQL on 127.0.0.1:$PGPORT"
"$K" migrate
"$K" migrate --status

step "3. Kafka-protocol dev broker"
why "kinfer dev-broker hosts librdkafka's mock cluster: a Kafka broker in one process, no JVM." \
    "Topics: records in, results out, and a dead-letter topic for records kinfer cannot read." \
    "--port 0 takes any free port, so the demo runs beside a broker on the default 9092."
"$K" dev-broker --port 0 --topic sections.in:4 --topic sections.out:4 --topic sections.dlq:1 >"$DEMO/broker.out" 2>"$DEMO/broker.log" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$DEMO/broker.out" ] && break; sleep 0.1; done
B=$(head -n 1 "$DEMO/broker.out")
echo "bootstrap servers: $B"

step "4. train on the bundled sample, quantize, push both with lineage"
why "Trains on tests/data/sections-train.tsv: a 4,000-record sample of debian-sections (51" \
    "classes). Expect about 0.74 dev accuracy here; the README's 0.848 is the same command on" \
    "the full training set (50,734 records): fewer examples per class, lower accuracy." \
    "quantize makes an int8 copy (a quarter of the size); both go to the registry, the int8" \
    "one recording the f32 one as its parent."
"$K" train --input tests/data/sections-train.tsv --output "$DEMO/sections.kinf" --name sections \
  --dev tests/data/sections-dev.tsv
"$K" eval "$DEMO/sections.kinf" tests/data/sections-dev.tsv --no-confusion | head -n 5
"$K" quantize "$DEMO/sections.kinf" --output "$DEMO/sections-int8.kinf"
"$K" model push "$DEMO/sections.kinf" --name sections
"$K" model push "$DEMO/sections-int8.kinf" --name sections-int8
"$K" model ls
"$K" model lineage sections-int8:1

step "5. activate sections:1 and start a worker for deployment 'sections'"
why "A deployment names the model workers serve; activation is one SQL call. The worker reads" \
    "its model from the registry (deployment=sections), not from a file, and waits for its" \
    "readiness line (partitions and a model) before records are sent."
"$K" deployment create sections --input-topic sections.in --output-topic sections.out
"$K" activate sections sections 1 --reason "demo: first version"
cp schemas/text_record.avsc "$DEMO/schemas/1.avsc"
cat >"$DEMO/kinfer.conf" <<CONF
kafka.bootstrap.servers=$B
kafka.group.id=kinfer-demo
input.topic=sections.in
output.topic=sections.out
dlq.topic=sections.dlq
input.format=avro-confluent
input.schemas.dir=$DEMO/schemas
output.format=json
deployment=sections
pg.conninfo=host=127.0.0.1 port=$PGPORT user=postgres dbname=postgres
metrics.interval.ms=1000
batch.max.wait.ms=5
CONF
"$K" serve --config "$DEMO/kinfer.conf" >"$DEMO/worker.out" 2>"$DEMO/worker.log" &
PIDS+=($!)
for _ in $(seq 300); do grep -q "fac=WORKER ready" "$DEMO/worker.log" 2>/dev/null && break; sleep 0.1; done
grep "fac=WORKER ready" "$DEMO/worker.log" || { echo "the worker did not get ready in 30 s: see .demo/worker.log"; exit 1; }

show_results() { # TITLE PREFIX N: the last N results whose id starts with PREFIX (kcat reads the JSON)
  sleep 1.5
  echo "-- $1"
  kcat -b "$B" -C -t sections.out -o beginning -e -q -f '%s\n' 2>/dev/null |
    /usr/bin/python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
rows = [r for r in rows if r["id"].startswith(sys.argv[1])][-int(sys.argv[2]):]
for r in rows:
    print("  id=%-6s label=%-10s score=%.3f model=%s:%d" % (r["id"], r["label"], r["score"], r["model_name"], r["model_version"]))
' "$2" "$3"
}

step "6. stream 500 Avro records (Confluent framing) through the worker"
why "kinfer produce writes the dev sample as Avro records with a schema id; the worker" \
    "classifies them in micro-batches and writes one JSON result per record."
"$K" produce -b "$B" -t sections.in -f avro-confluent --schemas-dir "$DEMO/schemas" --schema-id 1 \
  --tsv --id-prefix a tests/data/sections-dev.tsv
show_results "results (label, score and the model that classified each record)" a 5
# a malformed record goes to the dead-letter topic with its reason
why "Next, on purpose, one record that is not Avro: the worker cannot decode it, so instead of" \
    "stalling the partition it writes it to sections.dlq with the reason, and goes on."
printf 'not avro at all\n' | "$K" produce -b "$B" -t sections.in -f text -q
sleep 1
/usr/bin/python3 tests/kafka/kafka_util.py dlq "$B" sections.dlq | awk '{print "  dead letter: reason=" $1 " partition=" $2 " offset=" $3}'

step "7. live switch to sections-int8:1, then roll back"
why "kinfer.activate() notifies every worker; each loads and checks the new model and swaps" \
    "it in between two batches, without stopping. The results name the model that made them."
psql -qAt -c "SELECT kinfer.activate('sections', 'sections-int8', 1, 'demo: int8 is smaller');"
sleep 1
"$K" produce -b "$B" -t sections.in -f avro-confluent --schemas-dir "$DEMO/schemas" --schema-id 1 \
  --tsv --id-prefix b -n 200 tests/data/sections-dev.tsv -q
show_results "after the switch" b 3
psql -qAt -c "SELECT kinfer.rollback('sections', 'demo: back to f32');"
sleep 1
"$K" produce -b "$B" -t sections.in -f avro-confluent --schemas-dir "$DEMO/schemas" --schema-id 1 \
  --tsv --id-prefix c -n 200 tests/data/sections-dev.tsv -q
show_results "after the rollback" c 3

step "8. what the database knows"
why "Every activation and rollback is logged; workers write metrics windows per model."
sleep 2
psql -c "SELECT action, at, who, from_model, to_model, reason FROM kinfer.activation_log ORDER BY id"
psql -c "SELECT model_name || ':' || model_version AS model, sum(records) AS records, sum(batches) AS batches,
                round(max(latency_p99_ms)::numeric, 2) AS max_p99_ms, sum(dlq) AS dead_letters,
                round((sum(mean_confidence * records) / nullif(sum(records), 0))::numeric, 3) AS mean_confidence
           FROM kinfer.metrics_windows GROUP BY 1 ORDER BY 1"
echo
echo "Done. Logs in .demo/ (worker.log, broker.log)."
if [ "$KEEP" = "--keep" ]; then echo "--keep: press Enter to stop the broker, worker and PostgreSQL"; read -r _; fi
