#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_examples.sh -- the producer/reader examples in three languages (examples/, docs/producers.md)
# against a real `kinfer serve`: each example produces N Confluent-framed Avro records (schema
# id 1 = schemas/text_record.avsc) with its own Kafka client and Avro library, reads the
# Confluent-framed Avro results back (output.schema.id 2, schemas/classification.avsc), and
# exits 0 only when every id came back with a label. The test then checks each example's
# labels against `kinfer predict` on the same texts (the reader decoded the right field of the
# right record), and that the result topic holds one result per record produced.
# ctest kafka_real_examples (label kafka-real: Apache Kafka via deploy/kafka.sh). Toolchains
# and dependencies: examples/run.sh setup, cached under ~/.cache/kinfer/examples (first run
# a few minutes, then seconds).
. "$(dirname "$0")/lib.sh"

N=200
LANGS=(python java go)
EX_PIDS=()
budget_check "inputs" $((N * ${#LANGS[@]})) 1 $IN_RECORD_BYTES 4
budget_check "results" $((N * ${#LANGS[@]})) 1 $OUT_RECORD_BYTES 4

# the toolchains first (nothing is running yet): cached after the first run
t0=$SECONDS
if ! "$SRC/examples/run.sh" setup "${LANGS[@]}" 2>"$T/setup.log"; then
  cat "$T/setup.log" >&2
  fail "examples/run.sh setup (python venv, mvn + javac, go build)"
  finish
fi
say "examples ready in $((SECONDS - t0)) s$(grep -q ' in [0-9]* s' "$T/setup.log" && echo ": $(grep -o '[a-z]* [a-z]* \(ready\|built\) in [0-9]* s' "$T/setup.log" | tr '\n' ',')")"

# the model trains while the broker starts (both take seconds to a minute on a loaded machine)
MODEL=$T/model.kinf
"$KT" train --input "$SRC/tests/data/sections-train.tsv" --output "$MODEL" >"$T/train.log" 2>&1 &
TRAIN_PID=$!
PIDS+=("$TRAIN_PID")
start_broker in:4 out:4 dlq:1
if ! wait "$TRAIN_PID"; then fail "train a model"; cat "$T/train.log" >&2; finish; fi
mkdir -p "$T/schemas"
cp "$SRC/schemas/text_record.avsc" "$T/schemas/1.avsc"
write_conf "$T/w.conf" input.format=avro-confluent "input.schemas.dir=$T/schemas" \
  output.format=avro-confluent output.schema.id=2 output.dlq.schema.id=3 kafka.group.id=examples
start_worker w "$T/w.conf"
check "worker assigned its partitions" wait_assigned w 120

head -n $N "$SRC/tests/data/sections-dev.tsv" >"$T/texts.tsv"
# what kinfer predicts for the same texts, line by line: the labels the examples must read
"$K" predict "$MODEL" "$T/texts.tsv" 1 | cut -f1 >"$T/predicted.txt"
check "kinfer predict gives $N labels" [ "$(grep -c . "$T/predicted.txt")" -eq $N ]

# the three side by side (distinct ids, each reads with its own consumer group)
for lang in "${LANGS[@]}"; do
  (
    t0=$SECONDS
    "$SRC/examples/run.sh" "$lang" --brokers "$B" --input-topic in --output-topic out \
      --schema-id 1 --result-schema-id 2 --text-schema "$SRC/schemas/text_record.avsc" \
      --result-schema "$SRC/schemas/classification.avsc" --texts "$T/texts.tsv" --n $N \
      --id-prefix "$lang-" --timeout 180 >"$T/$lang.out" 2>"$T/$lang.err"
    echo "$? $((SECONDS - t0))" >"$T/$lang.status"
  ) &
  EX_PIDS+=($!)
done
PIDS+=("${EX_PIDS[@]}")
wait "${EX_PIDS[@]}"
for lang in "${LANGS[@]}"; do
  read -r st secs <"$T/$lang.status" || st=missing
  if [ "$st" = 0 ]; then
    ok "$lang example: exit 0 ($secs s): $(tail -n 1 "$T/$lang.err")"
  else
    fail "$lang example exited $st"; sed 's/^/#   /' "$T/$lang.err" >&2
  fi
  check "$lang example: $N ids, in order, each with a label" \
    [ "$(cut -f1 "$T/$lang.out" | tr '\n' ' ')" = "$(for i in $(seq 0 $((N - 1))); do printf '%s ' "$lang-$i"; done)" ]
  # `kinfer predict` prints the label as the model file names it; results carry the same
  paste "$T/predicted.txt" <(cut -f2 "$T/$lang.out") | awk -F'\t' '$1 != $2' >"$T/$lang.diff"
  check "$lang example: every label read back equals kinfer predict's ($(wc -l <"$T/$lang.diff") differ)" \
    [ "$(wc -l <"$T/$lang.diff")" -eq 0 -a "$(wc -l <"$T/$lang.out")" -eq $N ]
done

check "worker stops cleanly (exit 0)" stop_worker "$WPID"
c=$($KU count "$B" out)
check "the result topic holds one result per record produced ($c for $((N * ${#LANGS[@]})))" \
  [ "$c" -eq $((N * ${#LANGS[@]})) ]
check "no dead letters" [ "$($KU count "$B" dlq)" -eq 0 ]
check "the broker kept every record" kept_all in out
finish
