#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_label_checks.sh -- migrations/0003_label_checks.sql against a real PostgreSQL (PG*
# environment, started by tests/run.sh; issue 16): the registry's CHECK on labels agrees with
# kinfer_label_check. An upgrade of a registry holding valid models validates the constraint
# and keeps the models; an upgrade of one holding a bad row (written by the owner before the
# rule existed) still succeeds, with a WARNING naming it, the constraint left NOT VALID; after
# the upgrade a row with a bad label (newline, tab, ESC, C1, U+2028, empty, 257 bytes) is
# refused and a good one (quotes, backslash, accents, spaces, 256 bytes) accepted.
#
# Needs KINFER_BIN and KINFER_MAKE_TEST_MODELS.
set -uo pipefail

: "${KINFER_BIN:?KINFER_BIN must point at the kinfer binary}"
: "${KINFER_MAKE_TEST_MODELS:?KINFER_MAKE_TEST_MODELS must point at make_test_models}"
src=${KINFER_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "== $1: ok" >&2; }
fail() { failed=$((failed + 1)); echo "== $1: FAILED: $2" >&2; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name" "$*"; fi; }

dba=kinfer_t_lbl_a_$$
dbb=kinfer_t_lbl_b_$$
work=$(mktemp -d /tmp/kinfer-label-test.XXXXXX)
cleanup() {
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $dba WITH (FORCE)" >/dev/null 2>&1
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $dbb WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
for d in $dba $dbb; do
  if ! psql -X -q -d postgres -c "CREATE DATABASE $d ENCODING 'UTF8' TEMPLATE template0" >/dev/null; then
    echo "no PostgreSQL (PG* environment): cannot create $d" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
done
sql() { psql -X -qtA -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
"$KINFER_MAKE_TEST_MODELS" "$work" || { echo "0 passed, 1 failed"; exit 1; }

# the registry as it was before 0003: every migration numbered below it
mkdir "$work/old"
for f in "$src"/migrations/[0-9][0-9][0-9][0-9]_*.sql; do
  n=$(basename "$f"); n=${n%%_*}
  [ $((10#$n)) -lt 3 ] && cp "$f" "$work/old/"
done
check old_migrations_present test -f "$work/old/0001_registry.sql" -a ! -f "$work/old/0003_label_checks.sql"
for d in $dba $dbb; do
  "$KINFER_BIN" migrate --pg "dbname=$d" --dir "$work/old" >/dev/null || fail "migrate_old_$d" "exit $?"
  "$KINFER_BIN" model push "$work/train.kinf" --pg "dbname=$d" >/dev/null || fail "push_$d" "exit $?"
done
# b: a row from before the rule, written by the owner (the superuser running this test)
row() { # db, name, labels-array-literal-SQL
  sql "$1" "INSERT INTO kinfer.models (name, version, sha256, size, format, labels, meta, artifact)
            SELECT '$2', 1, encode(sha256(a), 'hex'), octet_length(a), 'f32', $3, '{}', a
              FROM (SELECT convert_to('$2', 'UTF8') AS a) s" 2>&1
}
out=$(row $dbb oldbad "ARRAY['ok', E'two\\nlines']"); check old_bad_row_inserted test -z "$out"

# the upgrade
out=$("$KINFER_BIN" migrate --pg "dbname=$dba" --dir "$src/migrations" 2>&1); rc=$?
check upgrade_valid_registry test "$rc" -eq 0
check upgrade_valid_keeps_models test "$(sql $dba 'SELECT count(*) FROM kinfer.models')" = 1
check upgrade_valid_validated test "$(sql $dba "SELECT convalidated FROM pg_constraint WHERE conname = 'models_labels_valid'")" = t
out=$("$KINFER_BIN" migrate --pg "dbname=$dbb" --dir "$src/migrations" 2>&1); rc=$?
check upgrade_bad_row_succeeds test "$rc" -eq 0
check upgrade_bad_row_keeps_rows test "$(sql $dbb 'SELECT count(*) FROM kinfer.models')" = 2
check upgrade_bad_row_not_validated test "$(sql $dbb "SELECT convalidated FROM pg_constraint WHERE conname = 'models_labels_valid'")" = f

# after: bad labels refused, good ones accepted (the same cases as test_json's)
long256=$(printf 'x%.0s' $(seq 256))
i=0
for lit in "E'two\\nlines'" "E'tab\\there'" "E'\\x1b[31mred'" "E'a\\u0085'" "E'a\\u2028b'" "''" "'${long256}x'"; do
  i=$((i + 1))
  out=$(row $dba "bad$i" "ARRAY['ok', $lit]")
  check "bad_label_$i" grep -q models_labels_valid <<<"$out"
done
out=$(row $dba empty "ARRAY[]::text[]"); check empty_label_set grep -q models_labels_valid <<<"$out"
out=$(row $dba good "ARRAY['a\"b\\c', 'café', 'two words', '$long256']"); check good_labels test -z "$out"
check sql_agrees_with_loader test "$(sql $dba "SELECT kinfer.label_valid(E'a\\x7f')::text || kinfer.label_valid('日本')::text")" = falsetrue

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
