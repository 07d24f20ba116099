#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_registry_cli.sh -- the registry CLI against a real PostgreSQL (PG* environment, started
# by tests/run.sh): migrate (+ --status, re-run), model push/ls/show/lineage/pull on a
# trained -> quantized -> pruned -> distilled chain, activate/rollback, a corrupt file refused,
# the worker role denied activation, --help of every command. A database of its own.
#
# Needs KINFER_BIN (the kinfer binary) and KINFER_MAKE_TEST_MODELS (tests/pg/make_test_models).
set -uo pipefail

: "${KINFER_BIN:?KINFER_BIN must point at the kinfer binary}"
: "${KINFER_MAKE_TEST_MODELS:?KINFER_MAKE_TEST_MODELS must point at make_test_models}"
src=${KINFER_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
export KINFER_MIGRATIONS_DIR=$src/migrations

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "== $1: ok" >&2; }
fail() { failed=$((failed + 1)); echo "== $1: FAILED: $2" >&2; }
# check NAME CONDITION-COMMAND...: one sub-test per call
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name" "$*"; fi; }

db=kinfer_t_cli_$$
wrole=kinfer_t_cli_worker_$$
work=$(mktemp -d /tmp/kinfer-cli-test.XXXXXX)
cleanup() {
  if [ -z "${KINFER_TEST_KEEP_DB:-}" ]; then
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
    psql -X -q -d postgres -c "DROP ROLE IF EXISTS $wrole" >/dev/null 2>&1
  fi
  rm -rf "$work"
}
trap cleanup EXIT

if ! psql -X -q -d postgres -c "CREATE DATABASE $db" >/dev/null; then
  echo "no PostgreSQL (PG* environment): cannot create $db" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
pg="--pg dbname=$db"
k() { "$KINFER_BIN" "$@"; }
sql() { psql -X -qtA -d "$db" -c "$1"; }

"$KINFER_MAKE_TEST_MODELS" "$work" || { echo "0 passed, 1 failed"; exit 1; }

# ---- migrate ----
out=$(k migrate --status $pg); rc=$?
check migrate_status_pending test "$rc" -eq 1 -a -n "$(grep -E '0001_registry.sql +pending' <<<"$out")"
out=$(k migrate $pg 2>/dev/null)
check migrate_applies grep -qE "applied [0-9]+ migration" <<<"$out"
out=$(k migrate $pg 2>/dev/null)
check migrate_rerun_noop grep -q "up to date" <<<"$out"
out=$(k migrate --status $pg); rc=$?
check migrate_status_applied test "$rc" -eq 0 -a -n "$(grep -E '0001_registry.sql +applied' <<<"$out")"
out=$(k migrate $pg --dir "$work/nonexistent" 2>&1); rc=$?
check migrate_bad_dir test "$rc" -eq 1 -a -n "$(grep nonexistent <<<"$out")"

# ---- push (child first: its parent resolves when pushed later) ----
out=$(k model push "$work/distill.kinf" $pg)
check push_unresolved_parent grep -q "distilled_from sha256=.*not registered" <<<"$out"
for f in train quantize prune; do k model push "$work/$f.kinf" $pg >/dev/null || fail "push_$f" "exit $?"; done
out=$(k model push "$work/train2.kinf" $pg)
check push_assigns_version grep -q "registered sections:2" <<<"$out"
out=$(k model push "$work/train2.kinf" --name sections $pg); rc=$?
check push_same_again_noop test "$rc" -eq 0 -a -n "$(grep 'already registered' <<<"$out")"
out=$(k model push "$work/corrupt.kinf" $pg 2>&1); rc=$?
check push_corrupt_refused test "$rc" -eq 1 -a -n "$(grep 'corrupt.kinf' <<<"$out" | grep -i 'checksum')"
check push_corrupt_not_stored test "$(sql 'SELECT count(*) FROM kinfer.models')" = 5
out=$(k model push "$work/missing.kinf" $pg 2>&1); rc=$?
check push_missing_file test "$rc" -eq 1 -a -n "$(grep 'missing.kinf' <<<"$out")"

# ---- ls / show / lineage / pull ----
out=$(k model ls $pg)
check ls_lists_all test "$(grep -cE '^sections' <<<"$out")" -eq 5
out=$(k model show sections-int8:1 $pg)
check show_details grep -q "parents:      quantized_from sections:1" <<<"$out"
out=$(k model show nope:4 $pg 2>&1); rc=$?
check show_missing_names_it test "$rc" -eq 1 -a -n "$(grep 'nope:4' <<<"$out")"
out=$(k model lineage sections-student:1 $pg)
echo "$out" >&2
want=$'sections-student:1\n└── distilled_from sections-pruned:1\n    └── pruned_from sections-int8:1\n        └── quantized_from sections:1'
got=$(sed -E 's/  sha256=.*//' <<<"$out")
check lineage_tree test "$got" = "$want"
out=$(k model lineage sections:1 --descendants $pg)
check lineage_descendants test "$(tail -n 1 <<<"$out" | grep -c 'distilled_from sections-student:1')" -eq 1
k model pull sections-pruned:1 --output "$work/pulled.kinf" $pg >/dev/null
check pull_same_bytes cmp -s "$work/pulled.kinf" "$work/prune.kinf"
k model pull sections --output "$work/latest.kinf" $pg >/dev/null
check pull_latest cmp -s "$work/latest.kinf" "$work/train2.kinf"

# ---- the real chain, in the issue's order: train -> quantize -> prune -> distill ----
if "$KINFER_BIN" quantize --help >/dev/null 2>&1 && "$KINFER_BIN" distill --help >/dev/null 2>&1; then
  data=$src/tests/data/sections-train.tsv
  if k train -i "$data" -o "$work/r-sec.kinf" --name r-sections -q >/dev/null 2>&1 &&
     k quantize "$work/r-sec.kinf" -o "$work/r-int8.kinf" --name r-int8 >/dev/null 2>&1 &&
     k prune "$work/r-int8.kinf" -o "$work/r-pruned.kinf" --keep-buckets 20000 --name r-pruned >/dev/null 2>&1 &&
     k distill --teacher "$work/r-pruned.kinf" -i "$data" -o "$work/r-student.kinf" --name r-student >/dev/null 2>&1; then
    for f in r-student r-sec r-int8 r-pruned; do k model push "$work/$f.kinf" $pg >/dev/null || fail "push_$f" "exit $?"; done
    got=$(k model lineage r-student:1 $pg | sed -E 's/  sha256=[0-9a-f]+//')
    want=$'r-student:1  distill  f32\n└── distilled_from r-pruned:1  prune  q8+pruned\n    └── pruned_from r-int8:1  quantize  q8\n        └── quantized_from r-sections:1  train  f32'
    echo "$got" >&2
    check real_chain_lineage test "$got" = "$want"
    check real_chain_params k model lineage r-student:1 --params $pg
    check real_chain_params_has_temperature grep -q '"temperature"' <(k model lineage r-student:1 --params $pg)
  else
    fail real_chain "train/prune/quantize/distill failed"
  fi
else
  echo "# kinfer quantize/distill not built: real chain skipped" >&2
fi

# ---- activate / rollback ----
out=$(k activate sections sections 1 --reason "first" $pg)
check activate_first test "$out" = "sections: (none) -> sections:1"
out=$(k activate sections sections-int8:1 -r "smaller" $pg)
check activate_second test "$out" = "sections: sections:1 -> sections-int8:1"
out=$(k rollback sections --reason "regression" $pg)
check rollback test "$out" = "sections: sections-int8:1 -> sections:1"
check rollback_active test "$(sql "SELECT active_model || ':' || active_version FROM kinfer.deployment_status WHERE deployment = 'sections'")" = "sections:1"
check history_reasons test "$(sql "SELECT string_agg(coalesce(reason, '-'), ',' ORDER BY id) FROM kinfer.activations")" = "first,smaller,regression"
out=$(k activate sections sections 9 $pg 2>&1); rc=$?
check activate_unknown_version test "$rc" -eq 1 -a -n "$(grep 'sections:9 is not registered' <<<"$out")"
out=$(k rollback nodep $pg 2>&1); rc=$?
check rollback_unknown_deployment test "$rc" -eq 1 -a -n "$(grep 'deployment nodep does not exist' <<<"$out")"
out=$(k deployment create other --input-topic in --output-topic out $pg)
check deployment_create test "$(sql "SELECT input_topic || '>' || output_topic FROM kinfer.deployments WHERE name = 'other'")" = "in>out"
out=$(k deployment ls $pg)
echo "$out" >&2
check deployment_ls test -n "$(grep -E '^sections +sections:1 +sections-int8:1 +- +0 ' <<<"$out")" -a -n "$(grep -E '^other +- +- +- +0 ' <<<"$out")"

# ---- the worker role may not activate ----
psql -X -q -d postgres -c "DROP ROLE IF EXISTS $wrole" 2>/dev/null
psql -X -q -d postgres -c "CREATE ROLE $wrole LOGIN IN ROLE kinfer_worker" >/dev/null
out=$(k activate sections sections-int8 1 --pg "dbname=$db user=$wrole" 2>&1); rc=$?
check worker_denied_activate test "$rc" -eq 1 -a -n "$(grep 'permission denied' <<<"$out")"
out=$(k rollback sections --pg "dbname=$db user=$wrole" 2>&1); rc=$?
check worker_denied_rollback test "$rc" -eq 1 -a -n "$(grep 'permission denied' <<<"$out")"
out=$(k model push "$work/spare.kinf" --pg "dbname=$db user=$wrole" 2>&1); rc=$?
check worker_denied_push test "$rc" -eq 1 -a -n "$(grep 'permission denied' <<<"$out")"
check worker_reads_models k model ls --pg "dbname=$db user=$wrole" >/dev/null
check still_sections1 test "$(sql "SELECT active_version FROM kinfer.deployment_status WHERE deployment = 'sections'")" = 1

# ---- usage ----
for c in migrate model activate rollback deployment; do
  k "$c" --help >/dev/null 2>&1 || fail "help_$c" "exit $?"
done
ok help
k model frobnicate $pg >/dev/null 2>&1; rc=$?
check unknown_subcommand test "$rc" -eq 2

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
