#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_docs.sh -- the documented examples, run as written: every ```sh block of README.md and
# docs/*.md that follows a line "<!-- test: NAME ... -->" is extracted and run by bash -e in a
# scratch directory (bash -e: a failing command fails the test; no pipefail, as in a terminal,
# so `... | head` is fine) that holds a `tests` link to the source tree's tests/ and has the kinfer
# under test first on the PATH (as `cmake --install` or the README's PATH line would), then
# its results are checked. One change is made to what is pasted: the dev broker's port 9092
# becomes a free port, so that several runs (both builds, other checkouts) can share the
# machine. Whatever a block leaves running is stopped (it runs in its own process group).
# Other kinds of marked block: ```sql blocks run with psql (run_sql); ``` blocks of
# "$ command" lines are transcripts, each command is run and the stable parts of the output the
# doc shows must match (run_transcript); synopses (placeholders, not commands) are checked
# against the CLI: each kinfer COMMAND has a help, each --option shown is in it (check_synopsis;
# a marker before an indented block marks it too); configuration snippets are files kinfer
# serve accepts (check_conf); example output (a JSON result, a METRICS line, /v1/classify's
# answer, training's Features: line and auto_features) has the fields of what kinfer prints.
#
#   test_docs.sh            README.md, streaming.md, security.md, operations.md, training.md,
#                           compression.md (test_docs, label kafka: it starts a dev broker)
#   test_docs.sh registry   the blocks that need PostgreSQL (the PG* environment's): registry.md,
#                           README's registry block, fasttext.md (test_docs_registry, label pg)
#
# Not run, and why (a block that cannot run here stays unmarked):
#   README.md: tests/run.sh and deploy/demo.sh (CI and the demo themselves); `sudo cmake
#     --install build` (cmake --install --prefix DIR runs below); "Serving": deploy/kafka.sh
#     needs a JVM broker (the kafka-real tests run it), dev-broker and serve are a synopsis
#     (streaming.md's quick start runs both). "The model's life": a synopsis (checked).
#   registry.md: the deployment ls row (WORKERS and SERVING need a running worker: the header
#     is checked; tests/pg/test_serve_registry.sh checks a live worker's row).
#   security.md, operations.md: the configuration snippets name hosts, certificates and
#     registries of a real deployment (example.com): checked with check_conf, not connected to.
#   operations.md: docker build/run (no container runtime here); the Kubernetes and compose
#     files are test_deploy's.
#   producers.md: the examples need Apache Kafka and the example toolchains
#     (kafka_real_examples runs them).
#   training.md: mpirun with the reader's train.tsv and hosts (test_train_mpi runs mpirun
#     -np 2 and 4); the kinfer options of both lines are checked.
#   benchmarks.md, compression.md's "Reproduce": benchmark runs of minutes on the full data
#     set (../shared/data), not in the repository.
set -u
. "$(dirname "$0")/cli_lib.sh" docs
mkdir -p "$T/bin"
ln -s "$(cd "$(dirname "$K")" && pwd)/$(basename "$K")" "$T/bin/kinfer"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# extract NAME FILE: the block after the marker, without its fences
# (or, for a synopsis, the indented block after the marker, unindented)
extract() {
  awk -v name="$1" '
    $0 ~ "^<!-- test: " name "[ >]" { armed = 1; next }
    armed && /^```/ { if (inside) exit; inside = 1; next }
    inside { print; next }
    armed && /^    / { indented = 1; print substr($0, 5); next }
    indented { exit }' "$2"
}

run_block() { # NAME FILE: run it in $T/NAME; sets $rc, output in $T/NAME.out/.err
  local name=$1 file=$2 dir=$T/$1 port
  mkdir -p "$dir"; ln -s "$SRC/tests" "$dir/tests"
  extract "$name" "$file" >"$dir/block.sh"
  if [ ! -s "$dir/block.sh" ]; then rc=99; echo "no block marked $name in $file" >"$T/$name.err"; return; fi
  port=$(free_port)
  sed -i -e "s/\b9092\b/$port/g" -e "s/kinfer dev-broker /kinfer dev-broker --port $port /" "$dir/block.sh"
  ( cd "$dir" && PATH="$T/bin:$PATH" exec setsid bash -e block.sh ) >"$T/$name.out" 2>"$T/$name.err" &
  local pid=$!
  # bounded: a block that hangs is stopped after 5 minutes (the quick starts take ~10 s)
  local waited=0
  while kill -0 $pid 2>/dev/null && [ $waited -lt 3000 ]; do sleep 0.1; waited=$((waited + 1)); done
  kill -- -$pid 2>/dev/null
  wait $pid; rc=$?
  kill -KILL -- -$pid 2>/dev/null
  [ $waited -ge 3000 ] && echo "the block ran over 5 minutes" >>"$T/$name.err"
}

# run_sql NAME FILE DB [rollback]: run a ```sql block with psql on database DB (stops at the
# first error; with rollback, inside a transaction that is rolled back); sets $rc
run_sql() {
  local name=$1 file=$2 db=$3 dir=$T/$1
  mkdir -p "$dir"
  extract "$name" "$file" >"$dir/block.sql"
  if [ ! -s "$dir/block.sql" ]; then rc=99; echo "no block marked $name in $file" >"$T/$name.err"; return; fi
  if [ "${4:-}" = rollback ]; then
    { echo 'BEGIN;'; cat "$dir/block.sql"; echo 'ROLLBACK;'; } >"$dir/run.sql"
  else
    cp "$dir/block.sql" "$dir/run.sql"
  fi
  timeout 120 psql -X -v ON_ERROR_STOP=1 -d "$db" -f "$dir/run.sql" >"$T/$name.out" 2>"$T/$name.err"; rc=$?
}

# run_transcript NAME FILE DB [NLINES]: a block of "$ command" lines, each followed by the output
# it prints (up to the next "$ " line). Each command runs with bash in $T/NAME (PGDATABASE=DB,
# the kinfer under test first on the PATH) and must exit 0; every line of output the doc shows
# (the first NLINES only, if given) must appear in what it prints, in order, once hashes (12 to
# 64 hex digits), times (...Z and the role after them), sizes (5 digits or more) and runs of
# blanks are normalised.
norm() {
  sed -E -e 's/[0-9a-f]{12,64}/HASH/g' \
    -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z( by)? +[a-z_][a-z0-9_]*/TIME\1 WHO/g' \
    -e 's/\b[0-9]{5,}\b/N/g' -e 's/[[:space:]]+/ /g' -e 's/ $//' -e '/^$/d'
}
subseq() { # WANT GOT: every normalised line of WANT appears in GOT's, in order
  python3 -c '
import sys
want = [l for l in open(sys.argv[1]).read().split("\n") if l]
got = open(sys.argv[2]).read().split("\n"); j = 0
for l in want:
    while j < len(got) and got[j] != l: j += 1
    if j == len(got): sys.exit("missing: " + l)
    j += 1' <(norm <"$1") <(norm <"$2")
}
run_transcript() {
  local name=$1 file=$2 db=$3 nlines=${4:-0} dir=$T/$1 i=0 cmd crc
  mkdir -p "$dir"; [ -e "$dir/tests" ] || ln -s "$SRC/tests" "$dir/tests"
  extract "$name" "$file" >"$dir/transcript"
  [ -s "$dir/transcript" ] || { no "$name: no block marked $name in $file"; return; }
  awk -v d="$dir" '/^\$ / { n++; print substr($0, 3) > (d "/cmd." n); printf "" > (d "/want." n); next }
                   n { print > (d "/want." n) }' "$dir/transcript"
  while [ -f "$dir/cmd.$((i + 1))" ]; do
    i=$((i + 1)); cmd=$(cat "$dir/cmd.$i")
    ( cd "$dir" && PATH="$T/bin:$PATH" PGDATABASE=$db exec timeout 120 bash -c "$cmd" ) >"$dir/got.$i" 2>"$dir/err.$i"
    crc=$?
    if [ $crc -ne 0 ]; then no "$name: \$ $cmd (exit $crc)" "$(cat "$dir/err.$i")"; continue; fi
    sed '/^[[:space:]]*$/d' "$dir/want.$i" >"$dir/want1.$i"
    [ "$nlines" -gt 0 ] && sed -i "$((nlines + 1)),\$d" "$dir/want1.$i"
    if subseq "$dir/want1.$i" "$dir/got.$i" 2>"$dir/diff.$i"; then
      ok "$name: \$ $cmd"
    else
      no "$name: \$ $cmd: the output is not the doc's" "$(cat "$dir/diff.$i"; echo "-- the doc:"; cat "$dir/want1.$i"; echo "-- printed:"; head -n 20 "$dir/got.$i")"
    fi
  done
  [ $i -gt 0 ] || no "$name: no \$ command in the block"
}

part=${1:-main}
# every marked block of README.md and docs/*.md has a check here (test_docs.sh registry runs
# the registry-* blocks)
all_blocks="readme-quickstart streaming-quickstart streaming-result-json readme-registry
readme-commands compression-synopsis operations-classify streaming-dev-broker-synopsis
streaming-produce-synopsis streaming-metrics-line
training-one-machine training-cluster training-features-line training-auto-features
fasttext-import
security-pg-conf security-kafka-sasl-conf security-kafka-mtls-conf
operations-schema-registry-conf operations-prometheus-scrape
registry-cli registry-migrate-status registry-roles registry-lineage registry-activate-sql
registry-deployment-ls registry-workers-sql registry-metrics-sql registry-lineage-sql"
if [ "$part" = main ]; then
  marked=$(grep -ho '^<!-- test: [a-z0-9-]*' "$SRC/README.md" "$SRC"/docs/*.md | sed 's/^<!-- test: //' | sort)
  want=$(printf '%s\n' $all_blocks | sort)
  [ "$marked" = "$want" ] && ok "marked blocks: $(echo $marked)" || no "the marked blocks are not the ones checked here" "$(diff <(echo "$marked") <(echo "$want"))"
fi

# ---- docs/registry.md (test_docs_registry, label pg: the PostgreSQL of the PG* environment) ----
if [ "$part" = registry ]; then
  db_cli=kinfer_t_docs_cli_$$ db_chain=kinfer_t_docs_chain_$$ db_readme=kinfer_t_docs_readme_$$ db_ft=kinfer_t_docs_ft_$$
  drop_dbs() {
    for db in $db_cli $db_chain $db_readme $db_ft; do psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1; done
    rm -rf "$T"
  }
  trap drop_dbs EXIT
  for db in $db_cli $db_chain $db_readme $db_ft; do
    psql -X -q -d postgres -c "CREATE DATABASE $db" >"$T/createdb.log" 2>&1 ||
      { no "CREATE DATABASE $db (PostgreSQL of the PG* environment)" "$(cat "$T/createdb.log")"; finish; exit; }
  done
  # The model files the blocks start from, made here with few epochs (the registry does not
  # care how well they classify): registry-cli's sections.kinf and its quantized copy, and the
  # chain of registry-lineage (train, prune --keep-buckets 20000, quantize, distill --teacher),
  # pushed under the names the doc shows, child first.
  mkdir -p "$T/registry-cli" "$T/registry-lineage" "$T/readme-registry"
  c=$T/registry-cli l=$T/registry-lineage
  if ( "$K" train --input "$SRC/tests/data/sections-train.tsv" --output "$c/sections.kinf" --epoch 2 --no-auto-features &&
       "$K" quantize "$c/sections.kinf" --output "$c/sections-int8.kinf" &&
       cp "$c/sections.kinf" "$l/sections.kinf" && cp "$c/sections.kinf" "$T/readme-registry/model.kinf" &&
       "$K" prune "$l/sections.kinf" --output "$l/sections-pruned.kinf" --keep-buckets 20000 &&
       "$K" quantize "$l/sections-pruned.kinf" --output "$l/sections-int8.kinf" &&
       "$K" distill --teacher "$l/sections-int8.kinf" --data "$SRC/tests/data/sections-train.tsv" --output "$l/sections-student.kinf" &&
       "$K" migrate --pg "dbname=$db_chain" || exit 1
       for m in sections-student sections-int8 sections sections-pruned; do "$K" model push "$l/$m.kinf" --name $m --pg "dbname=$db_chain" || exit 1; done
     ) >"$T/setup.log" 2>&1
  then ok "registry: the model files made, the chain pushed"; else no "registry: making the model files" "$(tail -n 20 "$T/setup.log")"; fi

  export PGDATABASE=$db_cli
  run_block registry-cli "$SRC/docs/registry.md"
  out=$T/registry-cli.out
  if [ $rc -eq 0 ]; then ok "registry-cli runs (migrate, push, activate twice, rollback)"; else no "registry-cli (exit $rc)" "$(tail -n 20 "$T/registry-cli.err")"; fi
  for want in "registered sections:1 " "registered sections-int8:1 " "  quantized_from sections:1" \
              "sections: (none) -> sections:1" "sections: sections:1 -> sections-int8:1" "sections: sections-int8:1 -> sections:1"; do
    grep -qF -- "$want" "$out" && ok "registry-cli printed '$want'" || no "registry-cli did not print '$want'" "$(cat "$out")"
  done
  run_transcript registry-migrate-status "$SRC/docs/registry.md" $db_cli
  run_sql registry-roles "$SRC/docs/registry.md" $db_cli rollback
  [ $rc -eq 0 ] && ok "registry-roles: CREATE ROLE ... IN ROLE kinfer_operator / kinfer_worker" || no "registry-roles (exit $rc)" "$(cat "$T/registry-roles.err")"
  run_sql registry-activate-sql "$SRC/docs/registry.md" $db_cli
  [ $rc -eq 0 ] && ok "registry-activate-sql runs" || no "registry-activate-sql (exit $rc)" "$(cat "$T/registry-activate-sql.err")"
  # the results the block shows as comments
  sed -n 's/^--  //p' "$T/registry-activate-sql/block.sql" >"$T/activate.want"
  [ -s "$T/activate.want" ] && while IFS= read -r want; do
    grep -qF -- "$want" "$T/registry-activate-sql.out" && ok "registry-activate-sql: $want" || no "registry-activate-sql: no '$want'" "$(cat "$T/registry-activate-sql.out")"
  done <"$T/activate.want"
  grep -q 'sections-int8:1' "$T/registry-activate-sql.out" && grep -q 'smaller, same accuracy' "$T/registry-activate-sql.out" &&
    ok "registry-activate-sql: deployment_status and activation_log show the switch and its reason" || no "registry-activate-sql: the views" "$(cat "$T/registry-activate-sql.out")"
  run_transcript registry-deployment-ls "$SRC/docs/registry.md" $db_cli 1
  for b in registry-workers-sql registry-metrics-sql; do
    run_sql $b "$SRC/docs/registry.md" $db_cli
    [ $rc -eq 0 ] && ok "$b runs" || no "$b (exit $rc)" "$(cat "$T/$b.err")"
  done

  # README.md's registry block, with the quick start's model.kinf
  export PGDATABASE=$db_readme
  run_block readme-registry "$SRC/README.md"
  out=$T/readme-registry.out
  if [ $rc -eq 0 ]; then ok "README registry block runs"; else no "README registry block (exit $rc)" "$(tail -n 20 "$T/readme-registry.err")"; fi
  for want in "registered sections:1 " "registered sections:2 " "sections: (none) -> sections:1" \
              "sections: sections:1 -> sections:2" "sections: sections:2 -> sections:1"; do
    grep -qF -- "$want" "$out" && ok "README registry block printed '$want'" || no "README registry block did not print '$want'" "$(cat "$out")"
  done

  # docs/fasttext.md: import a fastText model, predict as fasttext predict-prob, push, quantize
  # (the fastText CLI, Debian's fasttext, trains a small model.bin first: about 2 s)
  f=$T/fasttext-import
  mkdir -p "$f"
  awk -F'\t' '{ print "__label__" $1 " " $2 }' "$SRC/tests/data/sections-train.tsv" >"$f/train.txt"
  awk -F'\t' '{ print "__label__" $1 " " $2 }' "$SRC/tests/data/sections-dev.tsv" >"$f/test.txt"
  if (cd "$f" && fasttext supervised -input train.txt -output model -epoch 2 -dim 10 -bucket 20000 -thread 1) >"$T/ft.log" 2>&1 &&
     "$K" migrate --pg "dbname=$db_ft" >>"$T/ft.log" 2>&1; then
    export PGDATABASE=$db_ft
    run_block fasttext-import "$SRC/docs/fasttext.md"
    if [ $rc -eq 0 ]; then ok "fasttext.md's block runs (import, predict --fasttext, model push, quantize)"; else no "fasttext.md's block (exit $rc)" "$(tail -n 20 "$T/fasttext-import.err")"; fi
    (cd "$f" && fasttext predict-prob model.bin test.txt 3) >"$f/want.txt" 2>/dev/null
    python3 - "$f/want.txt" "$T/fasttext-import.out" <<'PY' 2>"$T/py.err" && ok "fasttext.md: predict --fasttext prints fasttext predict-prob's format and top label on each of the 500 lines" || no "fasttext.md: predict --fasttext" "$(cat "$T/py.err")"
import re, sys
want = open(sys.argv[1]).read().splitlines()
got = [l for l in open(sys.argv[2]).read().splitlines() if l.startswith("__label__")]
assert len(want) == len(got) == 500, (len(want), len(got))
pair = r"__label__\S+ [01](\.[0-9]+)?(e-?[0-9]+)?"
for w, g in zip(want, got):
    assert re.fullmatch(" ".join([pair] * 3), g), g
    assert w.split()[0] == g.split()[0], (w, g)
PY
    grep -q "^registered sections:1 " "$T/fasttext-import.out" && grep -q "imported_from sha256=" "$T/fasttext-import.out" &&
      ok "fasttext.md: model push registers sections:1, imported_from the .bin" || no "fasttext.md: model push" "$(grep -v __label__ "$T/fasttext-import.out")"
    [ -s "$f/model-q8.kinf" ] && "$K" inspect "$f/model-q8.kinf" | grep -q $'^weights\tq8' && ok "fasttext.md: quantize wrote an int8 model-q8.kinf" || no "fasttext.md: model-q8.kinf"
  else
    no "fasttext supervised (Debian's fasttext, deploy/install-test-deps.sh) and migrate" "$(tail -n 20 "$T/ft.log")"
  fi

  export PGDATABASE=$db_chain
  run_transcript registry-lineage "$SRC/docs/registry.md" $db_chain
  cmp -s "$l/m.kinf" "$l/sections-int8.kinf" && ok "registry-lineage: model pull wrote the pushed bytes" || no "registry-lineage: m.kinf differs from sections-int8.kinf"
  run_sql registry-lineage-sql "$SRC/docs/registry.md" $db_chain
  [ $rc -eq 0 ] && ok "registry-lineage-sql runs" || no "registry-lineage-sql (exit $rc)" "$(cat "$T/registry-lineage-sql.err")"
  # the ancestors of sections-student:1 (itself and 3), no parent missing, 3 parent/child pairs
  [ "$(grep -c '^(.* rows\?)$' "$T/registry-lineage-sql.out")" -eq 3 ] && grep -q '^(4 rows)$' "$T/registry-lineage-sql.out" &&
    grep -q '^(0 rows)$' "$T/registry-lineage-sql.out" && grep -q '^(3 rows)$' "$T/registry-lineage-sql.out" &&
    ok "registry-lineage-sql: 4 ancestors (with itself), 0 unresolved parents, 3 pairs" || no "registry-lineage-sql results" "$(cat "$T/registry-lineage-sql.out")"
  finish
  exit
fi

# ---- README.md: train, predict, test, eval, predict --json ----
run_block readme-quickstart "$SRC/README.md"
out=$T/readme-quickstart.out
if [ $rc -eq 0 ]; then ok "README quick start runs"; else no "README quick start (exit $rc)" "$(tail -n 20 "$T/readme-quickstart.err")"; fi
[ -s "$T/readme-quickstart/model.kinf" ] && ok "README: train wrote model.kinf" || no "README: no model.kinf"
[ "$(grep -c $'^[^\t]*\t0\\.[0-9]*\t[^\t]*\t0\\.[0-9]*\t[^\t]*\t0\\.[0-9]*$' "$out")" -eq 3 ] && ok "README: predict ... 3 | head -n 3: three lines of 3 labels" || no "README: predict lines" "$(cat "$out")"
grep -q $'^N\t500$' "$out" && grep -Eq $'^P@1\t0\\.(7|8|9)[0-9]*$' "$out" && grep -Eq $'^R@1\t0\\.(7|8|9)' "$out" && ok "README: test prints N 500, P@1 and R@1 above 0.7" || no "README: test output" "$(cat "$out")"
grep -q $'^accuracy\t' "$out" && grep -q $'^macro_f1\t' "$out" && ok "README: eval prints accuracy and macro_f1" || no "README: eval output" "$(cat "$out")"
tail -n 1 "$out" | python3 -c 'import json, sys; d = json.loads(sys.stdin.read()); assert d["label"] == "python", d' 2>"$T/j.err" && ok "README: predict --json says python for a python module" || no "README: predict --json" "$(tail -n 1 "$out"; cat "$T/j.err")"

# ---- docs/streaming.md: dev broker, train, serve, wait for ready, produce, read 500 results ----
run_block streaming-quickstart "$SRC/docs/streaming.md"
d=$T/streaming-quickstart
if [ $rc -eq 0 ]; then ok "streaming quick start runs (serve and the broker exit 0 on SIGTERM)"; else no "streaming quick start (exit $rc)" "$(tail -n 20 "$T/streaming-quickstart.err"; tail -n 20 "$d/serve.log" 2>/dev/null)"; fi
grep -q "fac=WORKER ready partitions=4 model=model" "$d/serve.log" && ok "serve logged its readiness line" || no "no readiness line" "$(tail -n 20 "$d/serve.log")"
python3 - "$d/results.jsonl" "$SRC/tests/data/sections-dev.tsv" <<'PY' 2>"$T/py.err" && ok "500 JSON results, one per produced record, each with a label and a score" || no "streaming results" "$(cat "$T/py.err")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
n = sum(1 for l in open(sys.argv[2]) if l.strip())
assert len(rows) == n == 500, (len(rows), n)
assert sorted(r["id"] for r in rows) == sorted("r%d" % i for i in range(n)), "ids"
assert all(r["label"] and 0 < r["score"] <= 1 for r in rows)
PY
[ "$(head -n 2 "$d/results.jsonl")" = "$(tail -n 2 "$T/streaming-quickstart.out")" ] && ok "head -n 2 results.jsonl printed two results" || no "the block's output" "$(cat "$T/streaming-quickstart.out")"
# the JSON result streaming.md shows has the fields (and topk entries) of a real one
extract streaming-result-json "$SRC/docs/streaming.md" >"$T/result-doc.json"
python3 - "$T/result-doc.json" "$d/results.jsonl" <<'PY' 2>"$T/py.err" && ok "streaming.md's JSON result: the fields of a real result" || no "streaming.md's JSON result" "$(cat "$T/py.err")"
import json, sys
doc = json.loads(open(sys.argv[1]).read())
real = json.loads(open(sys.argv[2]).readline())
assert list(doc) == list(real), ("doc", list(doc), "real", list(real))
assert list(doc["topk"][0]) == list(real["topk"][0]), (doc["topk"][0], real["topk"][0])
PY

# the METRICS line streaming.md shows has the fields, in order, of the one serve logged for its
# last window when the quick start stopped it
doc_keys=$(extract streaming-metrics-line "$SRC/docs/streaming.md" | tr -s ' \n' '\n\n' | sed -n 's/^\([a-z_0-9]*\)=.*/\1/p' | sed '1,/^fac$/d' | xargs)
got_keys=$(grep 'fac=METRICS' "$d/serve.log" | tail -n 1 | tr ' ' '\n' | sed -n 's/^\([a-z_0-9]*\)=.*/\1/p' | sed '1,/^fac$/d' | xargs)
[ -n "$doc_keys" ] && [ "$doc_keys" = "$got_keys" ] && ok "streaming.md's METRICS line: the fields serve logs" || no "streaming.md's METRICS line" "doc:    $doc_keys"$'\n'"logged: $got_keys"

# ---- configuration snippets (security.md, operations.md): a file of the snippet as shown is
# accepted by kinfer serve (configuration errors exit 2 before anything is loaded; this exits
# 1 at the model file, which does not exist); the keys a worker needs and the snippet does not
# set come from -X. Nothing is contacted: the model is loaded before any connection. Exit 1
# at a file the snippet names that is not on this machine (a certificate, a password file)
# also means the configuration was accepted.
check_conf() { # NAME FILE
  local name=$1 conf=$T/$1.conf key xs=() out crc
  extract "$name" "$2" >"$conf"
  [ -s "$conf" ] || { no "$name: no block marked $name in $2"; return; }
  # a value runs to the end of its line ('#' starts a comment only at the start of a line):
  # a "value   # note" would be taken whole, and a path with it names no file
  if grep -Eq '^[a-z][^=#]*=.*[[:space:]]#' "$conf"; then
    no "$name: a trailing '# ...' after a value is part of the value" "$(grep -E '^[a-z][^=#]*=.*[[:space:]]#' "$conf")"
  fi
  for key in kafka.bootstrap.servers input.topic output.topic; do
    grep -q "^$key=" "$conf" || xs+=(-X "$key=x")
  done
  out=$(cd "$T" && timeout 60 "$K" serve --config "$conf" "${xs[@]}" -X model.path=missing.kinf 2>&1); crc=$?
  # or exit 1 at a file the snippet names (a deployment's certificate or password file)
  local accepted=
  [ $crc -eq 1 ] && grep -q "missing.kinf" <<<"$out" && accepted=1
  for key in $(grep -o '/etc/kinfer/[A-Za-z0-9._-]*' "$conf"); do
    [ $crc -eq 1 ] && grep -qF "$key: No such file" <<<"$out" && accepted=1
  done
  if [ -n "$accepted" ]; then
    ok "$name: kinfer serve accepts the configuration"
  else
    no "$name: kinfer serve --config (exit $crc)" "$out"
  fi
}
check_conf security-pg-conf "$SRC/docs/security.md"
check_conf security-kafka-sasl-conf "$SRC/docs/security.md"
check_conf security-kafka-mtls-conf "$SRC/docs/security.md"
check_conf operations-schema-registry-conf "$SRC/docs/operations.md"
extract operations-prometheus-scrape "$SRC/docs/operations.md" >"$T/scrape.yml"
[ -s "$T/scrape.yml" ] && promtool check config "$T/scrape.yml" >"$T/promtool.log" 2>&1 && ok "operations.md's scrape config: promtool check config" || no "operations.md's scrape config" "$(cat "$T/promtool.log" 2>/dev/null)"

# ---- operations.md: POST /v1/classify with curl, as shown (the token is "..." and the port
# the one serve --http-only bound), against the README quick start's model: the answer has
# the fields, nesting and types the doc shows (its values are elided or the doc's model's) ----
check_classify() {
  local name=operations-classify dir=$T/operations-classify log=$T/operations-classify/serve.log pid addr waited=0 body
  mkdir -p "$dir"
  extract $name "$SRC/docs/operations.md" >"$dir/block"
  [ -s "$dir/block" ] || { no "$name: no block marked $name"; return; }
  "$K" serve --http-only -X model.path="$T/readme-quickstart/model.kinf" -X http.listen=127.0.0.1:0 \
    -X http.auth.token=... 2>"$log" &
  pid=$!
  while [ $waited -lt 600 ]; do # 60 s: the model is applied, /readyz answers 200
    addr=$(grep -o "serving http on [^ ]*" "$log" | head -n 1 | awk '{print $4}')
    [ -n "$addr" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/readyz")" = 200 ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1; waited=$((waited + 1))
  done
  if [ -z "$addr" ]; then no "$name: serve --http-only did not start" "$(tail -n 20 "$log")"; kill $pid 2>/dev/null; wait $pid; return; fi
  # the command: the lines up to the first that does not end in a backslash; then the answer
  awk '{ print > (cmd_done ? "'"$dir"'/want" : "'"$dir"'/cmd.sh") } !/\\$/ { cmd_done = 1 }' "$dir/block"
  sed -i "s/127\.0\.0\.1:8080/$addr/" "$dir/cmd.sh"
  body=$(cd "$dir" && timeout 60 bash -e cmd.sh 2>&1)
  kill $pid 2>/dev/null; wait $pid
  python3 - "$dir/want" "$body" <<'PY' 2>"$T/py.err" && ok "$name: curl as shown answers in the doc's shape" || no "$name" "$(cat "$T/py.err"; echo "-- got: $body")"
import json, re, sys
want = open(sys.argv[1]).read().replace(", ...]", "]")
want = re.sub(r'"[^"]*\.\.\."', '""', want)  # an elided string
want, got = json.loads(want), json.loads(sys.argv[2])
def shape(v):
    if isinstance(v, dict): return {k: shape(x) for k, x in v.items()}
    if isinstance(v, list): return [shape(v[0])] if v else []
    return "number" if isinstance(v, (int, float)) and not isinstance(v, bool) else type(v).__name__
assert shape(want) == shape(got), ("doc", shape(want), "got", shape(got))
assert list(want) == list(got), ("order", list(want), list(got))
PY
}
check_classify

# ---- synopses (placeholders, not commands): every kinfer COMMAND shown has `kinfer help
# COMMAND`, and every --option shown is in that help ----
check_synopsis() { # NAME FILE
  local name=$1 line l cmd= o bad= n=0
  extract "$name" "$2" >"$T/$name.txt"
  [ -s "$T/$name.txt" ] || { no "$name: no block marked $name in $2"; return; }
  while IFS= read -r line; do
    l=${line%%#*}
    case "$l" in
      *"kinfer "*) l=${l#*kinfer }; cmd=${l%% *} ;;
      " "*) [ -n "$cmd" ] || continue ;; # a continuation line: the command above
      *) cmd=; continue ;;
    esac
    "$K" help "$cmd" >"$T/help.txt" 2>&1 || { bad+="kinfer help $cmd: exit $?"$'\n'; continue; }
    for o in $(grep -oE -- '--[a-z][a-z0-9-]*' <<<"$l"); do
      n=$((n + 1))
      grep -qE -- "(^|[ ,\[])$o([ =,]|\$)" "$T/help.txt" || bad+="kinfer $cmd: $o is not in kinfer help $cmd"$'\n'
    done
  done <"$T/$name.txt"
  [ -z "$bad" ] && [ $n -gt 0 ] && ok "$name: $n options, each in its command's help" || no "$name: the synopsis is not the CLI's" "$bad"
}
check_synopsis readme-commands "$SRC/README.md"
check_synopsis compression-synopsis "$SRC/docs/compression.md"
check_synopsis streaming-dev-broker-synopsis "$SRC/docs/streaming.md"
check_synopsis streaming-produce-synopsis "$SRC/docs/streaming.md"
check_synopsis training-one-machine "$SRC/docs/training.md"
check_synopsis training-cluster "$SRC/docs/training.md"

# ---- training.md: the feature choice on tests/data/langid-train.tsv: the "Features:" line
# (numbers aside: the trial's accuracies vary a little from run to run) and the fields of
# hyperparameters.auto_features, as kinfer train prints and records them (about 2 s) ----
mkdir -p "$T/training"
if (cd "$T/training" && "$K" train --input "$SRC/tests/data/langid-train.tsv" --output m.kinf >train.out 2>&1 &&
    "$K" inspect m.kinf >inspect.out 2>&1); then
  num() { sed -E 's/[0-9]+(\.[0-9]+)?/N/g'; }
  want=$(extract training-features-line "$SRC/docs/training.md" | num)
  got=$(grep '^Features:' "$T/training/train.out" | num)
  [ -n "$want" ] && [ "$want" = "$got" ] && ok "training.md's Features: line is what kinfer train prints" || no "training.md's Features: line" "doc: $want"$'\n'"got: $got"
  extract training-auto-features "$SRC/docs/training.md" >"$T/training/doc.json"
  python3 - "$T/training/doc.json" "$T/training/inspect.out" <<'PY' 2>"$T/py.err" && ok "training.md's auto_features: the fields kinfer train records" || no "training.md's auto_features" "$(cat "$T/py.err")"
import json, sys
doc = json.loads("{" + open(sys.argv[1]).read() + "}")["auto_features"]
text = open(sys.argv[2]).read()
got = json.loads(text[text.index("\nmeta\t") + 6:])["hyperparameters"]["auto_features"]
def shape(v):
    if isinstance(v, dict): return [(k, shape(x)) for k, x in v.items()]
    if isinstance(v, list): return [shape(v[0])] if v else []
    return type(v).__name__ if not isinstance(v, (int, float)) or isinstance(v, bool) else "number"
assert shape(doc) == shape(got), ("doc", shape(doc), "got", shape(got))
PY
else
  no "kinfer train on langid-train.tsv" "$(tail -n 5 "$T/training/train.out" "$T/training/inspect.out")"
fi

# ---- README.md: `cmake --install build` puts everything in standard places ----
build=$(dirname "$K")
if [ -f "$build/cmake_install.cmake" ] && cmake --install "$build" --prefix "$T/prefix" >"$T/install.log" 2>&1; then
  ok "cmake --install --prefix DIR"
  for f in bin/kinfer share/man/man1/kinfer.1 share/kinfer/schemas/text_record.avsc \
           share/kinfer/schemas/classification.avsc share/kinfer/schemas/dead_letter.avsc \
           share/kinfer/migrations/0001_registry.sql lib/systemd/system/kinfer@.service \
           share/kinfer/kinfer.conf.example share/doc/kinfer/README.md share/doc/kinfer/streaming.md; do
    [ -e "$T/prefix/$f" ] || { no "installed $f" "$(find "$T/prefix" -type f | sed "s|$T/prefix/||" | sort)"; continue; }
  done
  ok "installed: kinfer, kinfer.1, schemas, migrations, kinfer@.service, example config, docs"
  "$T/prefix/bin/kinfer" --version | grep -q '^kinfer ' && ok "the installed kinfer runs" || no "the installed kinfer runs"
  [ "$(ls "$T/prefix/share/kinfer/migrations" | wc -l)" -eq "$(ls "$SRC/migrations"/*.sql | wc -l)" ] && ok "every migration installed" || no "migrations installed"
else
  no "cmake --install" "$(cat "$T/install.log" 2>/dev/null)"
fi
finish
