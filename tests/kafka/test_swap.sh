#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_swap.sh -- hot swap through the library interface (tests/kafka/test_worker_api.c)
# while records flow: every record gets exactly one result, and along each input partition
# the model version never goes back (1, then 2, then 3) and always matches its sha256.
. "$(dirname "$0")/lib.sh"
API=${KINFER_TEST_WORKER_API:?KINFER_TEST_WORKER_API is not set}

# Sizing (see "what the dev broker keeps" in lib.sh): a feeder keeps records coming until the
# program has seen all three versions classify (however long that takes on a slow machine),
# at most MAX_CHUNKS x CHUNK records; exactly once here, so 1 copy.
CHUNK=200
RATE=400
MAX_CHUNKS=50
start_broker in:4 out:4
budget_check "input" $((CHUNK * MAX_CHUNKS)) 1 $IN_RECORD_BYTES 4
budget_check "results" $((CHUNK * MAX_CHUNKS)) 1 $OUT_RECORD_BYTES 4
train_model
MODEL_A=$MODEL
MODEL_B=$T/model_b.kinf
"$KT" train --input "$SRC/tests/data/sections-train.tsv" --output "$MODEL_B" --epoch 3 >"$T/train_b.log" 2>&1 ||
  { fail "train model B"; cat "$T/train_b.log" >&2; finish; }
# records keep flowing until the program is done; it swaps as soon as each version has
# classified some (each wait bounded by 60 s)
start_feeder in f $CHUNK $RATE $MAX_CHUNKS
"$API" "$B" "$MODEL_A" "$MODEL_B" 60 >"$T/api.out" 2>"$T/api.log"
st=$?
check "worker API test program ($(tail -1 "$T/api.out"))" [ $st -eq 0 ]
[ $st -eq 0 ] || grep -E "FAIL|error" "$T/api.log" >&2
check "the feeder delivered every chunk" stop_feeder f
N=$(feeder_ids f | wc -l)
say "$N records produced in $(feeder_chunks f) chunks"
# the rest of the records, by a kinfer serve of the same group (model A as version 3)
write_conf "$T/w.conf" kafka.group.id=api model.name=sections model.version=3
start_worker rest "$T/w.conf"
W=$WPID
wait_count out $N 180 >/dev/null
# after a clean stop everything the worker did is in the topic: the exact count is final
check "the last worker exits 0 on SIGTERM" stop_worker $W
$KU results "$B" out >"$T/results.txt"
check "exactly $N results (got $(wc -l <"$T/results.txt"))" [ "$(wc -l <"$T/results.txt")" -eq $N ]
check "each id once" [ "$(cut -f2 "$T/results.txt" | sort | uniq -d | wc -l)" -eq 0 ]
check "every id the feeder delivered has a result" cmp -s <(feeder_ids f | sort) <(cut -f2 "$T/results.txt" | sort -u)
# versions along each partition, in offset order: never decreasing
mono=$(sort -t$'\t' -k3,3n -k4,4n "$T/results.txt" |
  awk -F'\t' '$3 != p { p = $3; v = 0 } $6 < v { bad++ } { v = $6 } END { print bad + 0 }')
check "model_version never goes back along a partition" [ "$mono" -eq 0 ]
check "versions 1, 2 and 3 all served" [ "$(cut -f6 "$T/results.txt" | sort -u | tr '\n' ' ')" = "1 2 3 " ]
check "no result from the replaced hand-over (version 99)" [ "$(awk -F'\t' '$6 == 99' "$T/results.txt" | wc -l)" -eq 0 ]
# each version carries one sha256; 1 and 3 (model A) share it, 2 (model B) differs
cut -f6,8 "$T/results.txt" | sort -u >"$T/vsha.txt"
shas() { awk -v v=$1 '$1 == v { print $2 }' "$T/vsha.txt"; }
vsha_ok() { [ "$(wc -l <"$T/vsha.txt")" -eq 3 ] && [ "$(shas 1)" = "$(shas 3)" ] && [ "$(shas 1)" != "$(shas 2)" ]; }
check "model_sha256 matches the version (v1 = v3 = model A, v2 = model B)" vsha_ok
check "the dev broker kept every record of in and out (low watermark 0)" kept_all in out
finish
