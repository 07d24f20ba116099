#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_rollout.sh -- canary and shadow rollouts (issue 15; migration 0005) with `kinfer serve`
# deployment= against a real PostgreSQL (a private cluster) and the dev broker, under load: a
# producer streams L records through every step.
#   1. canary 10% of sections:2 beside sections:1: over 20,000 distinct keys the candidate's
#      share is within 10 +- 2 points (the split is a hash of the key, so it is the same on
#      every run; as a sample of keys, the binomial s.d. is sqrt(0.1 * 0.9 / 20000) = 0.21
#      points: 2 points is 9.4 s.d.), and sticky: the same 20,000 keys produced again get the
#      very version each got before;
#   2. promote: every record produced after it was applied is classified by sections:2;
#   3. rollback, canary 20%, abort: every record after the abort is sections:1 again;
#   4. shadow sections:2: no published result is the shadow's (every result's version is 1),
#      kinfer.shadow_windows rows with 0 <= agree <= records, the label pairs plus `other`
#      summing to the records, and agreement < 1 over all (the two models disagree on some);
#      `kinfer deployment diff` shows that agreement, /metrics has the kinfer_shadow_* series
#      (promtool check metrics passes);
#   5. every step in kinfer.activations, in order; no record lost (every id has its results).
# The worker connects as a LOGIN role that is only a member of kinfer_worker. About 60 s.
. "$(dirname "$0")/../kafka/lib.sh"

RR="$PY $SRC/tests/pg/registry_results.py"
start_private_pg rollout
say "postgres on port $PGPORT"
sql() { psql -X -qtA -d postgres -c "$1"; }

"$K" migrate >"$T/migrate.log" 2>&1 || { fail "migrate"; cat "$T/migrate.log" >&2; finish; }
train_model
# a second model with other settings (one epoch, another seed): it disagrees on some records
"$KT" train --input "$SRC/tests/data/sections-train.tsv" --output "$T/m2.kinf" --seed 7 --epoch 1 \
  -q >"$T/train2.log" 2>&1 || { fail "train model 2"; finish; }
"$K" model push "$MODEL" --name sections >"$T/push.log" 2>&1 || fail "push v1"
"$K" model push "$T/m2.kinf" --name sections >>"$T/push.log" 2>&1 || fail "push v2"
"$K" activate sections sections 1 --reason "test start" >/dev/null || fail "activate v1"
sql "CREATE ROLE kinfer_test_worker LOGIN IN ROLE kinfer_worker" >/dev/null

# the privilege rules of activate/rollback: a worker role cannot start a canary
check "a kinfer_worker role may not call kinfer.canary" \
  bash -c "! psql -X -qtA -d postgres -U kinfer_test_worker -c \"SELECT kinfer.canary('sections', 'sections', 2, 10)\" >/dev/null 2>&1"

start_broker in:8 out:16 dlq:1
write_conf "$T/w.conf" model.path= deployment=sections \
  "pg.conninfo=host=127.0.0.1 port=$PGPORT dbname=postgres user=kinfer_test_worker" \
  metrics.interval.ms=500 batch.max.records=256 http.listen=127.0.0.1:0
start_worker w1 "$T/w.conf"
check "worker starts on the registry's model and joins" wait_assigned w1 30
ADDR=$(sed -n 's/.*fac=HTTP serving http on \([^ ]*\).*/\1/p' "$T/w1.log" | head -1)
M=http://127.0.0.1:${ADDR##*:}/metrics

head -n 500 "$SRC/tests/data/sections-dev.tsv" >"$T/lines.tsv"
# the load: L records all through the steps below
NL=40000
"$K" produce -b "$B" -t in --tsv --id-prefix L -n $NL --rate 1500 -q "$T/lines.tsv" &
PL=$!
PIDS+=("$PL")

# "rollout applied" lines the worker logged for MODE so far
applied_n() { grep -c "rollout applied mode=$1 " "$T/w1.log"; }
applied_ge() { [ "$(applied_n "$1")" -ge "$2" ]; }
# results of the records with id prefix $1 (id, version), once all $2 are in
rows_of() { $RR rows "$B" out | awk -F'\t' -v p="$1" 'index($1, p) == 1 { print $1 "\t" $4 }'; }
have_n() { [ "$($RR rows "$B" out | awk -F'\t' -v p="$1" 'index($1, p) == 1' | wc -l)" -ge "$2" ]; }
step() { # step NAME COMMAND...: run a CLI step, fail loudly
  "$@" >>"$T/steps.log" 2>&1 || fail "$1 ($*)"
}

# ---- 1. canary 10% ----
NC=20000
step "$K" canary sections sections 2 10 --reason "canary 10"
check "canary applied" wait_until 60 applied_ge canary 1
"$K" produce -b "$B" -t in --tsv --id-prefix c -n $NC -q "$T/lines.tsv" || fail "produce c"
check "canary: $NC results of distinct keys" wait_until 120 have_n c $NC
rows_of c | sort -u >"$T/c1.txt"
n2=$(awk -F'\t' '$2 == 2' "$T/c1.txt" | wc -l)
n1=$(awk -F'\t' '$2 == 1' "$T/c1.txt" | wc -l)
say "canary 10%: $n2 of $NC keys on sections:2, $n1 on sections:1"
check "canary: every key classified by 1 or 2 ($((n1 + n2)) of $NC)" [ $((n1 + n2)) -eq $NC ]
check "canary: the candidate's share within 10 +- 2 points ($n2 / $NC)" \
  [ "$n2" -ge $((NC * 8 / 100)) -a "$n2" -le $((NC * 12 / 100)) ]
"$K" produce -b "$B" -t in --tsv --id-prefix c -n $NC -q "$T/lines.tsv" || fail "produce c again"
check "canary: the keys again ($((2 * NC)) results)" wait_until 120 have_n c $((2 * NC))
rows_of c | sort -u >"$T/c2.txt"
flip=$(cut -f1 "$T/c2.txt" | uniq -d | head -3 | tr '\n' ' ')
check "canary: sticky, every key got one version both times ($flip)" [ -z "$flip" ]
"$K" deployment ls >"$T/ls.txt" 2>&1
check "deployment ls shows the canary" grep -q "canary sections:2 10.00%" "$T/ls.txt"

# ---- 2. promote ----
step "$K" promote sections --reason "looks good"
check "promote applied (sections:2 active, no candidate)" wait_until 60 applied_ge none 1
check "promote: the worker swapped to sections:2" grep -q "model swapped .*to=sections:2" "$T/w1.log"
"$K" produce -b "$B" -t in --tsv --id-prefix p -n 2000 -q "$T/lines.tsv" || fail "produce p"
check "promote: 2000 results" wait_until 120 have_n p 2000
check "promote: every record after it on sections:2" [ -z "$(rows_of p | awk -F'\t' '$2 != 2' | head -1)" ]

# ---- 3. rollback, canary 20%, abort ----
step "$K" rollback sections --reason "back to 1"
check "rollback applied" wait_until 60 grep -q "model swapped from=sections:2 to=sections:1" "$T/w1.log"
step "$K" canary sections sections:2 20 --reason "canary 20"
check "canary 20% applied" wait_until 60 applied_ge canary 2
step "$K" abort-canary sections --reason "abort"
check "abort applied" wait_until 60 applied_ge none 2
"$K" produce -b "$B" -t in --tsv --id-prefix b -n 2000 -q "$T/lines.tsv" || fail "produce b"
check "abort: 2000 results" wait_until 120 have_n b 2000
check "abort: every record after it on sections:1" [ -z "$(rows_of b | awk -F'\t' '$2 != 1' | head -1)" ]

# ---- 4. shadow ----
NS=5000
step "$K" shadow sections sections 2 --reason "shadow"
check "shadow applied" wait_until 60 applied_ge shadow 1
"$K" produce -b "$B" -t in --tsv --id-prefix s -n $NS -q "$T/lines.tsv" || fail "produce s"
check "shadow: $NS results" wait_until 120 have_n s $NS
check "shadow: no result of the shadow model published" [ -z "$(rows_of s | awk -F'\t' '$2 != 1' | head -1)" ]
shadow_rows() { [ "$(sql "SELECT coalesce(sum(records), 0) FROM kinfer.shadow_windows")" -ge $NS ]; }
check "shadow: kinfer.shadow_windows has the shadow's records" wait_until 60 shadow_rows
curl -sf "$M" >"$T/metrics.txt" || fail "GET /metrics"
check "shadow: /metrics passes promtool check metrics" promtool check metrics <"$T/metrics.txt"
ratio=$(sed -n 's/^kinfer_shadow_agreement_ratio \([0-9.e-]*\)$/\1/p' "$T/metrics.txt")
check "shadow: /metrics has kinfer_shadow_agreement_ratio in [0, 1] ($ratio)" \
  awk -v r="$ratio" 'BEGIN { exit !(r != "" && r >= 0 && r <= 1) }'
check "shadow: /metrics counts the shadow's records" \
  awk '$1 == "kinfer_shadow_records_total" { exit !($2 >= '$NS') }' "$T/metrics.txt"
step "$K" end-shadow sections --reason "seen enough"
check "end-shadow applied" wait_until 60 applied_ge none 3
sql "SELECT records, agree, confusion_other, confusion::text FROM kinfer.shadow_windows" >"$T/shadow.txt"
bad=$(sql "SELECT id FROM kinfer.shadow_windows WHERE agree < 0 OR agree > records OR records <= 0
           OR candidate_version <> 2 OR active_version <> 1
           OR (SELECT coalesce(sum((p ->> 2)::bigint), 0) FROM jsonb_array_elements(confusion) p)
              + confusion_other <> records")
check "shadow: every window's agreement in [0, 1], pairs + other = records ($bad)" [ -z "$bad" ]
agr=$(sql "SELECT round(sum(agree)::numeric / sum(records), 4) FROM kinfer.shadow_windows")
say "shadow agreement sections:2 vs sections:1: $agr"
"$K" deployment diff sections >"$T/diff.txt" 2>&1 || fail "deployment diff"
check "deployment diff: sections:1 against sections:2 with its agreement" \
  grep -q "^sections:1  *sections:2  *[0-9][0-9]*  *[0-9][0-9]*  *$agr" "$T/diff.txt"
check "shadow: the models disagree on some records (agreement $agr < 1)" \
  [ "$(sql "SELECT sum(agree) < sum(records) AND sum(agree) > 0 FROM kinfer.shadow_windows")" = t ]

# ---- 5. history and no loss ----
wait "$PL" || fail "produce L"
hist=$(sql "SELECT string_agg(action, ' ' ORDER BY id) FROM kinfer.activations WHERE deployment = 'sections'")
check "every step in kinfer.activations ($hist)" \
  [ "$hist" = "activate canary promote rollback canary abort shadow end_shadow" ]
total=$((NL + 2 * NC + 2000 + 2000 + NS))
c=$(wait_count out $total 120)
$RR rows "$B" out | cut -f1 | sort >"$T/got.txt"
{ seq 0 $((NL - 1)) | sed 's/^/L/'; seq 0 $((NC - 1)) | sed 's/^/c/'; seq 0 $((NC - 1)) | sed 's/^/c/'
  seq 0 1999 | sed 's/^/p/'; seq 0 1999 | sed 's/^/b/'; seq 0 $((NS - 1)) | sed 's/^/s/'; } | sort >"$T/exp.txt"
check "no record lost, none twice: every id has its results ($(wc -l <"$T/got.txt") of $total)" \
  cmp -s "$T/exp.txt" "$T/got.txt"
check "no dead letter" [ "$($KU count "$B" dlq)" -eq 0 ]
W1=$(echo "${WORKERS[0]}" | cut -d: -f1); stop_worker "$W1" || fail "worker exit status"
finish
