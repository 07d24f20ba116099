#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_roundtrip.sh -- N records in, exactly N results out, every id matched, key = id, and
# both input schema versions (Avro, Confluent framing, fields added) decoded by name. Then
# two input topics of raw text with Avro output, read back by a plain Avro reader with
# schemas/classification.avsc; then plain Avro input with a configured writer schema.
. "$(dirname "$0")/lib.sh"

N=3000
start_broker in:4 out:4 dlq:1 in2:2 in3:1 out2:2 in4:1 out4:1 in5:4 out5:4
train_model
mkdir -p "$T/schemas"
cp "$SRC/schemas/text_record.avsc" "$T/schemas/1.avsc"
cp "$SRC/schemas/text_record_v2.avsc" "$T/schemas/2.avsc"

# half the records with schema 1, half with the evolved schema 2
head -n 500 "$SRC/tests/data/sections-dev.tsv" >"$T/lines.tsv"
"$K" produce -b "$B" -t in -f avro-confluent --schemas-dir "$T/schemas" --schema-id 1 --tsv \
  --id-prefix a -n $((N / 2)) -q "$T/lines.tsv" || fail "produce schema 1"
"$K" produce -b "$B" -t in -f avro-confluent --schemas-dir "$T/schemas" --schema-id 2 --tsv \
  --id-prefix b -n $((N / 2)) -q "$T/lines.tsv" || fail "produce schema 2"

# two classification threads: batches of 64 are split across them
write_conf "$T/w.conf" input.format=avro-confluent "input.schemas.dir=$T/schemas" batch.max.records=64 \
  worker.threads=2
start_worker w1 "$T/w.conf"
W1=$WPID
c=$(wait_count out $N 120)
# after a clean stop everything the worker did is in the topic: the exact count is final
check "worker stops cleanly (exit 0)" stop_worker $W1
$KU results "$B" out >"$T/results.txt"
check "exactly $N results (got $(wc -l <"$T/results.txt"), topic count $c)" [ "$(wc -l <"$T/results.txt")" -eq $N ]
{ for i in $(seq 0 $((N / 2 - 1))); do echo "a$i"; echo "b$i"; done; } | sort >"$T/expected.txt"
cut -f2 "$T/results.txt" | sort >"$T/got.txt"
check "every id matched once" cmp -s "$T/expected.txt" "$T/got.txt"
check "key = id for every result" [ "$(awk -F'\t' '$1 != $2' "$T/results.txt" | wc -l)" -eq 0 ]
check "every result has a label" [ "$(awk -F'\t' '$5 == ""' "$T/results.txt" | wc -l)" -eq 0 ]
check "no dead letters" [ "$($KU count "$B" dlq)" -eq 0 ]

# Avro output, read with the schema file by a plain Avro reader
# (two input topics, raw text input: the id is the key)
write_conf "$T/w2.conf" "input.topic=in2, in3" output.topic=out2 output.format=avro input.format=text \
  kafka.group.id=test2 model.version=7
printf 'a tool to edit text files\nlibrary for parsing XML\nPython bindings for GTK\n' |
  "$K" produce -b "$B" -t in2 -f text --id-prefix t -q || fail "produce text"
printf 'kernel module for a network card\nfonts for Japanese\n' |
  "$K" produce -b "$B" -t in3 -f text --id-prefix u -q || fail "produce text"
start_worker w2 "$T/w2.conf"
W2=$WPID
wait_count out2 5 120 >/dev/null
check "worker 2 stops cleanly" stop_worker $W2
$KU results "$B" out2 avro "$SRC/schemas/classification.avsc" >"$T/avro.txt" 2>"$T/avro.err"
check "5 Avro results from 2 input topics, readable with schemas/classification.avsc" \
  [ "$(wc -l <"$T/avro.txt")" -eq 5 ]
check "Avro results carry model_version 7 and the key as id" \
  [ "$(awk -F'\t' '$6 == 7 && $2 == $1' "$T/avro.txt" | wc -l)" -eq 5 ]

# plain Avro (no framing) with a configured writer schema
write_conf "$T/w3.conf" input.topic=in4 output.topic=out4 input.format=avro \
  "input.schema=$SRC/schemas/text_record_v2.avsc" kafka.group.id=test3
head -n 4 "$SRC/tests/data/sections-dev.tsv" |
  "$K" produce -b "$B" -t in4 -f avro --schema "$SRC/schemas/text_record_v2.avsc" --tsv --id-prefix p -q ||
  fail "produce plain avro"
start_worker w3 "$T/w3.conf"
W3=$WPID
wait_count out4 4 120 >/dev/null
check "worker 3 stops cleanly" stop_worker $W3
$KU results "$B" out4 | cut -f2 | sort >"$T/plain.txt"
check "plain Avro input: ids p0..p3 classified" [ "$(tr '\n' ' ' <"$T/plain.txt")" = "p0 p1 p2 p3 " ]

# a backlog drained through a tiny prefetch queue (64 KiB, ~150 records): librdkafka 2.0.2 stops
# fetching for a second each time the queue is full, and the consumer wakes its fetcher when a
# poll finds nothing while a partition has records beyond the position (consumer.c,
# nudge_fetcher); every record is classified once, and the worker says it had to
N5=20000
"$K" produce -b "$B" -t in5 --tsv --id-prefix q -n $N5 -q "$SRC/tests/data/sections-dev.tsv" ||
  fail "produce the backlog"
write_conf "$T/w5.conf" input.topic=in5 output.topic=out5 kafka.group.id=test5 \
  kafka.consumer.queued.max.messages.kbytes=64
start_worker w5 "$T/w5.conf"
W5=$WPID
c=$(wait_count out5 $N5 300)
check "worker 5 stops cleanly" stop_worker $W5
$KU results "$B" out5 | cut -f2 | sort >"$T/q.txt"
check "a backlog of $N5 through a 64 KiB prefetch queue: every id once (topic count $c)" \
  cmp -s "$T/q.txt" <(seq 0 $((N5 - 1)) | sed 's/^/q/' | sort)
if grep -q "fac=CONSUMER fetch_nudges=[1-9]" "$T/w5.log"; then
  ok "the stalled fetcher was woken ($(grep -o 'fetch_nudges=[0-9]* (librdkafka [^)]*)' "$T/w5.log"))"
elif grep -q "fac=CONSUMER fetch_nudges=off" "$T/w5.log"; then
  ok "librdkafka >= 2.2: fetch.queue.backoff.ms instead of nudges"
else
  fail "the stalled fetcher was woken: $(grep 'fetch_nudges' "$T/w5.log" || echo 'no fetch_nudges line')"
fi
finish
