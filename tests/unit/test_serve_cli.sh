#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_serve_cli.sh -- kinfer serve's configuration handling without a broker: --dump-config
# masks secrets and shows sources, precedence file < -X < environment, unknown keys and bad
# values are errors naming the key (file:line), docs/CONFIGURATION.md is what the table
# generates; --help of serve, produce and dev-broker.
set -uo pipefail
K=${KINFER_BIN:?}
SRC=${KINFER_SOURCE_DIR:?}
T=$(mktemp -d /tmp/kinfer-serve-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
passed=0 failed=0
check() { local what=$1; shift; if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $what" >&2; fi; }

cat >"$T/k.conf" <<'CONF'
# a comment
kafka.bootstrap.servers = 127.0.0.1:9092
input.topic=in
output.topic=out
batch.max.records=64
kafka.sasl.password=hunter2
kafka.ssl.key.password=k3y
pg.conninfo=host=db user=w password=pgsecret
CONF
"$K" serve --config "$T/k.conf" -X batch.max.records=128 -X kafka.linger.ms=3 --dump-config >"$T/dump" 2>&1
check "dump exits 0" [ $? -eq 0 ]
check "-X overrides the file" grep -A1 -q "^# batch.max.records: -X" "$T/dump"
check "-X value" grep -q "^batch.max.records=128$" "$T/dump"
check "kafka.* pass-through listed" grep -q "^kafka.linger.ms=3" "$T/dump"
check "secrets masked" bash -c "! grep -qE 'hunter2|k3y|pgsecret' '$T/dump'"
check "sasl password shown as ******" grep -q "^kafka.sasl.password=\*\*\*\*\*\*" "$T/dump"
check "conninfo password masked, rest kept" grep -q "^pg.conninfo=host=db user=w password=\*\*\*\*\*\*" "$T/dump"
check "source file:line shown" grep -q "^# input.topic: .*k.conf:3" "$T/dump"
check "input.topic value" grep -q "^input.topic=in$" "$T/dump"
"$K" serve --config "$T/dump" --dump-config >"$T/dump-again" 2>&1
check "a dump loads back as a configuration file" [ $? -eq 0 ]
check "and gives the same values" cmp -s <(grep -v '^#' "$T/dump") <(grep -v '^#' "$T/dump-again")
KINFER_BATCH_MAX_RECORDS=512 KINFER_INPUT_TOPIC=a,b "$K" serve --config "$T/k.conf" -X batch.max.records=128 \
  --dump-config >"$T/dump2" 2>&1
check "environment overrides -X" grep -A1 "^# batch.max.records: .*KINFER_BATCH_MAX_RECORDS" "$T/dump2" | grep -q "^batch.max.records=512$"
check "KINFER_INPUT_TOPIC sets input.topic" grep -q "^input.topic=a,b" "$T/dump2"

echo "no.such.key=1" >>"$T/k.conf"
"$K" serve --config "$T/k.conf" >"$T/err" 2>&1
st=$?
check "unknown key: exit 2" [ $st -eq 2 ]
check "unknown key named with file:line" grep -q "k.conf:9: unknown configuration key \"no.such.key\"" "$T/err"
"$K" serve -X batch.max.wait.ms=-1 --dump-config >"$T/err" 2>&1
check "bad value named" grep -q "batch.max.wait.ms" "$T/err"
"$K" serve -X input.topic=in >"$T/err" 2>&1
st=$?
check "missing required key: exit 2" [ $st -eq 2 ]
check "missing required key named" grep -q "kafka.bootstrap.servers is required" "$T/err"
"$K" serve -X kafka.bootstrap.servers=127.0.0.1:1 -X input.topic=in -X output.topic=out \
  -X model.path="$T/no-such-model.kinf" >"$T/err" 2>&1
st=$?
model_err() { [ $st -eq 1 ] && grep -q "no-such-model.kinf" "$T/err"; }
check "unreadable model: exit 1, file named" model_err

# a dead letter carries a whole value of input.max.bytes plus an envelope of at most 65536 bytes:
# a configuration whose producer could not send it is refused before anything starts (exit 2),
# and one that can is accepted (it goes on to the model: exit 1). Default input.max.bytes 917504.
serve_with() {
  "$K" serve -X kafka.bootstrap.servers=127.0.0.1:1 -X input.topic=in -X output.topic=out \
    -X model.path="$T/no-such-model.kinf" "$@" >"$T/err" 2>&1
}
serve_with -X kafka.producer.message.max.bytes=983039
st=$?
check "message.max.bytes one byte short of a dead letter: exit 2" [ $st -eq 2 ]
check "and the message names both values" \
  grep -q "input.max.bytes=917504 does not fit the producer's message.max.bytes=983039" "$T/err"
check "and the largest input.max.bytes that fits" grep -q "at most 917503" "$T/err"
serve_with -X kafka.producer.message.max.bytes=983040
st=$?
check "message.max.bytes that holds a dead letter exactly: accepted" model_err
serve_with -X kafka.message.max.bytes=983039 -X kafka.producer.message.max.bytes=983040
st=$?
check "the producer's scope wins over kafka.message.max.bytes" model_err
serve_with -X kafka.message.max.bytes=983039
st=$?
check "kafka.message.max.bytes applies to the producer too" [ $st -eq 2 ]
serve_with -X input.max.bytes=2000000
st=$?
check "input.max.bytes above librdkafka's default message.max.bytes: exit 2" [ $st -eq 2 ]

"$K" serve --dump-config-doc >"$T/CONFIGURATION.md"
check "docs/CONFIGURATION.md is up to date (kinfer serve --dump-config-doc)" cmp -s "$T/CONFIGURATION.md" "$SRC/docs/CONFIGURATION.md"
for c in serve produce dev-broker; do
  check "$c --help" bash -c "'$K' $c --help | grep -q Usage"
done
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
