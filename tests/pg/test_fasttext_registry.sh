#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_fasttext_registry.sh -- an imported fastText model in the registry (PG* environment,
# started by tests/run.sh; issue 14): migrations up to 0004 accept the relation imported_from,
# `kinfer model push` records the edge to the source file's sha256 (a parent that is a file, not
# a registered model), `kinfer model lineage` shows it, and the pulled model predicts as the
# file does. A database of its own; needs the fasttext CLI. About 5 s.
set -uo pipefail
: "${KINFER_BIN:?KINFER_BIN must point at the kinfer binary}"
src=${KINFER_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
export KINFER_MIGRATIONS_DIR=$src/migrations
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "== $1: ok" >&2; }
fail() { failed=$((failed + 1)); echo "== $1: FAILED: $2" >&2; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name" "$*"; fi; }
command -v fasttext >/dev/null || { echo "the fasttext CLI is missing (deploy/install-test-deps.sh)" >&2; echo "0 passed, 1 failed"; exit 1; }
db=kinfer_t_ft_$$
work=$(mktemp -d /tmp/kinfer-ft-reg.XXXXXX)
cleanup() {
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
if ! psql -X -q -d postgres -c "CREATE DATABASE $db" >/dev/null; then
  echo "no PostgreSQL (PG* environment): cannot create $db" >&2; echo "0 passed, 1 failed"; exit 1
fi
pg="--pg dbname=$db"
k() { "$KINFER_BIN" "$@"; }
check migrate k migrate $pg
awk -F'\t' '{print "__label__"$1" "$2}' "$src/tests/data/sections-train.tsv" >"$work/train.txt"
fasttext supervised -input "$work/train.txt" -output "$work/ft" -epoch 5 -dim 8 -bucket 20000 -wordNgrams 2 \
  -thread 1 -verbose 0 >/dev/null 2>&1
check import k import fasttext "$work/ft.bin" --output "$work/ft.kinf" --name sections-ft -q
sha=$(sha256sum "$work/ft.bin" | cut -d' ' -f1)
out=$(k model push "$work/ft.kinf" $pg 2>&1); rc=$?
check push test "$rc" -eq 0
check push_names_version grep -q "sections-ft" <<<"$out"
n=$(psql -X -A -t -d "$db" -c "SELECT count(*) FROM kinfer.lineage WHERE relation = 'imported_from' AND parent_sha256 = '$sha' AND parent_id IS NULL AND parent_name = 'ft.bin'")
check lineage_row test "$n" = 1
out=$(k model lineage sections-ft:1 $pg 2>&1)
check lineage_cli grep -q "imported_from" <<<"$out"
k model pull sections-ft:1 --output "$work/pulled.kinf" $pg >/dev/null 2>&1
check pull cmp -s "$work/ft.kinf" "$work/pulled.kinf"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
