#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_registry_tls.sh -- kinfer's PostgreSQL connection over TLS: a private cluster with a
# self-signed CA and a server certificate for localhost/127.0.0.1 (tests/pg/cluster.sh start
# DIR --tls); `kinfer migrate` connects with sslmode=verify-full (and the session is TLS), and
# is refused with another CA and with a host name the certificate does not name. About 3 s.
#
# Needs KINFER_BIN (the kinfer binary).
set -uo pipefail

: "${KINFER_BIN:?KINFER_BIN must point at the kinfer binary}"
src=${KINFER_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
export KINFER_MIGRATIONS_DIR=$src/migrations

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "== $1: ok" >&2; }
fail() { failed=$((failed + 1)); echo "== $1: FAILED: $2" >&2; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name" "$*"; fi; }

work=$(mktemp -d /tmp/kinfer-tls-test.XXXXXX)
pgdir=$(mktemp -d /tmp/kinfer-tls-pg.XXXXXX) # its own: cluster.sh hands it to the server's user
cleanup() { "$src/tests/pg/cluster.sh" stop "$pgdir" || true; rm -rf "$work" "$pgdir"; }
trap cleanup EXIT
# the cluster's exports would replace the caller's PG* (another cluster): keep them local
env_out=$("$src/tests/pg/cluster.sh" start "$pgdir" --tls) || { echo "cannot start a TLS cluster" >&2; echo "0 passed, 1 failed"; exit 1; }
eval "$env_out"
: "${KINFER_PG_CA:?cluster.sh --tls printed no KINFER_PG_CA}"
cp "$KINFER_PG_CA" "$work/ca.crt"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=another CA" \
  -keyout "$work/other.key" -out "$work/other.crt" >/dev/null 2>&1
unset PGHOST # each conninfo below names its host
base="port=$PGPORT user=postgres dbname=postgres"

out=$("$KINFER_BIN" migrate --pg "host=localhost $base sslmode=verify-full sslrootcert=$work/ca.crt" 2>&1)
check "verify-full with the cluster's CA (host localhost): migrate applies" \
  grep -q "applied" <<<"$out"
out=$("$KINFER_BIN" migrate --status --pg "host=127.0.0.1 $base sslmode=verify-full sslrootcert=$work/ca.crt" 2>&1)
check "verify-full by IP address (the certificate names 127.0.0.1): status works" \
  grep -q "0002_registry_privileges.sql *applied" <<<"$out"
check "the session is encrypted (pg_stat_ssl)" \
  [ "$(psql -X -At "host=localhost $base sslmode=verify-full sslrootcert=$work/ca.crt" \
        -c "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")" = t ]

out=$("$KINFER_BIN" migrate --status --pg "host=localhost $base sslmode=verify-full sslrootcert=$work/other.crt" 2>&1)
rc=$?
check "another CA: refused (exit $rc)" [ $rc -ne 0 ]
check "another CA: the error says why" grep -qi "certificate verify failed" <<<"$out"

out=$("$KINFER_BIN" migrate --status --pg "host=kinfer-wrong-name hostaddr=127.0.0.1 $base sslmode=verify-full sslrootcert=$work/ca.crt" 2>&1)
rc=$?
check "a host name the certificate does not name: refused (exit $rc)" [ $rc -ne 0 ]
check "wrong name: the error says why" grep -qi "does not match host name" <<<"$out"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
