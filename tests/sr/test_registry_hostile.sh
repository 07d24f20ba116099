#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_registry_hostile.sh -- a registry's answer is input: the Schema Registry client (src/codec/
# sr.c), driven by `kinfer produce --schema-registry` (which fetches the writer schema of
# --schema-id before it writes a record; no broker is reached), against tests/sr/registry.py
# --hostile. Each answer is refused with an error naming the schema id and the cause, and sorted
# into "never" (the record would be dead-lettered) or "not now" (the record would wait):
#   never:   an id the registry does not know (404), a 2 MiB answer (over the 1 MiB bound), a
#            PROTOBUF schema, a schema string that is not Avro, a record without the text field
#   not now: 503, a 200 whose body is not JSON, JSON with a duplicate member, a wrong password
#            (401, with the URL's user:password kept out of the message), an https registry
#            whose certificate is not trusted, nothing listening
# (The trusted https case, schema.registry.ssl.ca.location, is in kafka_schema_registry.)
# About 5 s; needs Debian's python3-avro and openssl.
set -uo pipefail
: "${KINFER_BIN:?KINFER_BIN is not set}"
: "${KINFER_SOURCE_DIR:?KINFER_SOURCE_DIR is not set}"
K=$KINFER_BIN
SRC=$KINFER_SOURCE_DIR
T=$(mktemp -d /tmp/kinfer-sr-test.XXXXXX)
PIDS=()
passed=0
failed=0
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  if [ "$failed" -ne 0 ]; then echo "# logs kept in $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
ok() { passed=$((passed + 1)); echo "ok: $*" >&2; }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

start() { # start NAME ARGS... -- a registry; sets URL
  local name=$1; shift
  "$SRC/tests/sr/registry.sh" "$@" >"$T/$name.out" 2>"$T/$name.log" &
  PIDS+=($!)
  for _ in $(seq 300); do [ -s "$T/$name.out" ] && break; sleep 0.1; done
  URL=$(head -1 "$T/$name.out")
  [ -n "$URL" ] || { fail "registry $name printed no URL"; cat "$T/$name.log" >&2; exit 1; }
}
echo "hello world" >"$T/line"
# fetch URL ID WANT... -- produce must fail, and its message must hold every WANT
fetch() {
  local url=$1 id=$2 what=$3; shift 3
  "$K" produce -q -b 127.0.0.1:9 -t x -f avro-confluent --schema-registry "$url" --schema-id "$id" \
    "$T/line" >"$T/fetch.out" 2>"$T/fetch.err"
  local st=$? w
  if [ "$st" -eq 0 ]; then fail "$what: produce succeeded"; return; fi
  for w in "$@"; do
    if ! grep -qF -- "$w" "$T/fetch.err"; then
      fail "$what: no \"$w\" in: $(head -c 400 "$T/fetch.err")"; return
    fi
  done
  ok "$what"
}

start plain --hostile
fetch "$URL" 12345 "404: never" "schema id 12345 not found in the schema registry (HTTP 404"
fetch "$URL" 900001 "2 MiB answer: never" "schema id 900001: the registry's answer is over 1048576 bytes"
fetch "$URL" 900003 "PROTOBUF: never" "schema id 900003 is a PROTOBUF schema, not Avro"
fetch "$URL" 900004 "not Avro: never" "schema id 900004" "the schema registry's schema: invalid Avro schema"
fetch "$URL" 900006 "no text field: never" "schema id 900006" 'the schema has no field "text"'
fetch "$URL" 900005 "503: not now" "schema id 900005: schema registry unavailable" "HTTP 503"
fetch "$URL" 900002 "not JSON: not now" "schema id 900002: schema registry unavailable" "the answer is not JSON"
fetch "$URL" 900007 "duplicate member: not now" "schema registry unavailable" "duplicate member name"
port=${URL##*:}

start auth --user kinfer:s3cret
fetch "${URL/http:\/\//http://kinfer:wrong@}" 1 "wrong password (401): not now" "schema registry unavailable" "HTTP 401"
if grep -q "kinfer:wrong" "$T/fetch.err"; then fail "the URL's password is in the message"; else ok "the URL's password stays out of the message (***@)"; fi

# https with a self-signed certificate that nobody trusts: refused, not now
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$T/key.pem" -out "$T/cert.pem" >"$T/openssl.log" 2>&1 \
  || { fail "openssl could not make a certificate"; cat "$T/openssl.log" >&2; }
start tls --tls-cert "$T/cert.pem" --tls-key "$T/key.pem"
fetch "$URL" 1 "untrusted https certificate: not now" "schema registry unavailable" "certificate"

# nothing listening (the first registry's port, after it stopped)
kill -TERM "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null
fetch "http://127.0.0.1:$port" 1 "nothing listening: not now" "schema registry unavailable"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
