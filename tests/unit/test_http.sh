#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_http.sh -- the HTTP server of `kinfer serve` in HTTP-only mode (no Kafka, a model file):
# /healthz, /readyz, 404/405, the bearer token (401 on /v1/classify, probes open, token file),
# POST /v1/classify ("text", "texts", "k"), its errors (400 bad JSON and fields, 413 body,
# texts and text bounds) with JSON error bodies, TLS with a self-signed certificate made here
# by openssl, a clean exit 0 on SIGTERM, and `curl /v1/classify` agreeing with
# `kinfer predict` (label and score) on every line of tests/data/sections-dev.tsv.
# And the default address, 127.0.0.1:8080: served when free; taken, --http-only fails naming
# it while a Kafka worker warns and serves on without HTTP. The whole test runs in a network
# namespace of its own (unshare -n, loopback only), so that port 8080 is this test's alone.
# Needs curl, openssl, python3 and unshare (CI installs them; root). About 15 s optimised, 40 s
# under ASan.
set -uo pipefail
if [ -z "${KINFER_TEST_NETNS:-}" ]; then
  exec unshare -n bash -c 'ip link set lo up && KINFER_TEST_NETNS=1 exec bash "$0"' "$0" ||
    { echo "FAIL: unshare -n (a network namespace of the test's own) is not permitted" >&2; exit 1; }
fi
K=${KINFER_BIN:?}
SRC=${KINFER_SOURCE_DIR:?}
T=$(mktemp -d /tmp/kinfer-http.XXXXXX)
PIDS=()
cleanup() {
  local p; for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
passed=0 failed=0
check() { local what=$1; shift; if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $what" >&2; fi; }
for tool in curl openssl python3; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is required (deploy/install-test-deps.sh)" >&2; exit 1; }
done

# wait_until SECONDS CMD... -- poll an observable condition, bounded
wait_until() { local end=$((SECONDS + $1)); shift; until "$@"; do [ $SECONDS -ge $end ] && return 1; sleep 0.1; done; }

"$K" train --input "$SRC/tests/data/sections-train.tsv" --output "$T/m.kinf" >"$T/train.log" 2>&1 ||
  { echo "FAIL: train"; cat "$T/train.log"; exit 1; }

# start_http LOG ARGS... -- kinfer serve --http-only on a free port; sets PID and URL
start_http() {
  local log=$1; shift
  "$K" serve --http-only -X model.path="$T/m.kinf" -X http.listen=127.0.0.1:0 "$@" 2>"$log" &
  PID=$!; PIDS+=("$PID")
  if ! wait_until 30 grep -q "serving http" "$log"; then
    echo "FAIL: the server did not start" >&2; cat "$log" >&2; return 1
  fi
  URL=$(grep -o "serving https* on [^ ]*" "$log" | head -1 | awk '{print $2 "://" $4}')
}
# code METHOD PATH [curl args...] -- the status; the body in $T/body
code() { local m=$1 p=$2; shift 2; curl -s -o "$T/body" -w '%{http_code}' -X "$m" "$@" "$URL$p"; }
json_ok() { python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/body"; }
err_is() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["status"]==int(sys.argv[2]) and sys.argv[3] in d["error"] else 1)' "$T/body" "$1" "$2"; }

# ---- plain HTTP, no token -------------------------------------------------------------------
start_http "$T/s1.log" -X http.classify.max.texts=8 -X http.classify.max.text.bytes=100 \
  -X http.max.body.bytes=4096 || exit 1
check "/healthz 200" [ "$(code GET /healthz)" = 200 ]
check "/healthz body" grep -q '"status": "ok"' "$T/body"
check "/readyz becomes 200 once the model is applied" wait_until 30 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' $URL/readyz)\" = 200 ]"
check "unknown path 404 with a JSON body" [ "$(code GET /nope)" = 404 ]
check "404 body" err_is 404 "no route"
check "POST /healthz 405" [ "$(code POST /healthz)" = 405 ]
check "GET /v1/classify 405" [ "$(code GET /v1/classify)" = 405 ]
check "/metrics 200 in HTTP-only mode" [ "$(code GET /metrics)" = 200 ]
check "/metrics names the model (HTTP-only)" grep -q '^kinfer_model_info{name="m",version="0",sha256="' "$T/body"

check "classify text 200" [ "$(code POST /v1/classify -d '{"text": "the linux kernel scheduler and interrupts"}')" = 200 ]
check "classify answer" python3 - "$T/body" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["model"]["name"] == "m" and d["model"]["version"] == 0 and len(d["model"]["sha256"]) == 64
assert d["label"] == "kernel", d
assert 0 < d["score"] <= 1 and d["topk"][0] == {"label": d["label"], "score": d["score"]}
assert len(d["topk"]) == 3  # output.topk
PY
check "classify texts + k" [ "$(code POST /v1/classify -d '{"texts": ["emacs lisp mode for mail", "a game with dragons"], "k": 2}')" = 200 ]
check "texts answer: one result per text, k each" python3 - "$T/body" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
r = d["results"]
assert len(r) == 2 and all(len(x["topk"]) == 2 for x in r), d
assert r[1]["label"] == "games", d
PY
check "bad JSON 400" [ "$(code POST /v1/classify -d '{"text": "x"')" = 400 ]
check "bad JSON body says so" err_is 400 "not valid JSON"
check "not an object 400" [ "$(code POST /v1/classify -d '["x"]')" = 400 ]
check "unknown member 400" [ "$(code POST /v1/classify -d '{"text": "x", "foo": 1}')" = 400 ]
check "text and texts 400" [ "$(code POST /v1/classify -d '{"text": "x", "texts": ["y"]}')" = 400 ]
check "a number for text 400" [ "$(code POST /v1/classify -d '{"text": 5}')" = 400 ]
check "empty texts 400" [ "$(code POST /v1/classify -d '{"texts": []}')" = 400 ]
check "k 0 400" [ "$(code POST /v1/classify -d '{"text": "x", "k": 0}')" = 400 ]
check "k 17 400" [ "$(code POST /v1/classify -d '{"text": "x", "k": 17}')" = 400 ]
check "invalid UTF-8 400" [ "$(printf '{"text": "\xff"}' | code POST /v1/classify --data-binary @-)" = 400 ]
check "9 texts (max 8) 413" [ "$(code POST /v1/classify -d '{"texts": ["a","b","c","d","e","f","g","h","i"]}')" = 413 ]
check "413 body names the key" err_is 413 "http.classify.max.texts"
long=$(printf 'a%.0s' $(seq 101))
check "a 101-byte text (max 100) 413" [ "$(code POST /v1/classify -d "{\"text\": \"$long\"}")" = 413 ]
head -c 5000 /dev/zero | tr '\0' 'x' >"$T/big"
check "a 5000-byte body (max 4096) 413" [ "$(code POST /v1/classify --data-binary @"$T/big")" = 413 ]
check "413 body names http.max.body.bytes" err_is 413 "http.max.body.bytes"
check "chunked 5000-byte body 413" [ "$(code POST /v1/classify -H 'Transfer-Encoding: chunked' --data-binary @"$T/big")" = 413 ]
check "the server still answers after the errors" [ "$(code POST /v1/classify -d '{"text": "kernel"}')" = 200 ]

kill -TERM "$PID"; wait "$PID"; rc=$?
check "SIGTERM: exit 0" [ $rc -eq 0 ]

# ---- bearer token -----------------------------------------------------------------------------
start_http "$T/s2.log" -X http.auth.token=s3cr3t-token || exit 1
check "token: classify without it 401" [ "$(code POST /v1/classify -d '{"text": "x"}')" = 401 ]
check "401 has a JSON body" err_is 401 "bearer token"
check "token: a wrong token 401" [ "$(code POST /v1/classify -H 'Authorization: Bearer s3cr3t-tokem' -d '{"text": "x"}')" = 401 ]
check "token: a prefix of it 401" [ "$(code POST /v1/classify -H 'Authorization: Bearer s3cr3t' -d '{"text": "x"}')" = 401 ]
check "token: the right one 200" wait_until 30 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer s3cr3t-token' -d '{\"text\": \"x\"}' $URL/v1/classify)\" = 200 ]"
check "token: /healthz stays open" [ "$(code GET /healthz)" = 200 ]
check "token: /readyz stays open" [ "$(code GET /readyz)" = 200 ]
# every line of the dev set: curl /v1/classify agrees with kinfer predict, label and score
cut -f2- "$SRC/tests/data/sections-dev.tsv" >"$T/dev.txt"
"$K" predict "$T/m.kinf" "$T/dev.txt" --json >"$T/predict.jsonl" 2>"$T/predict.err"
check "kinfer predict ran" [ "$(wc -l <"$T/predict.jsonl")" = "$(wc -l <"$T/dev.txt")" ]
python3 - "$T/dev.txt" "$T/req" <<'PY'
import json, os, sys
os.makedirs(sys.argv[2], exist_ok=True)
for i, line in enumerate(open(sys.argv[1], encoding="utf-8")):
    with open(os.path.join(sys.argv[2], "%05d.json" % i), "w") as f:
        json.dump({"text": line.rstrip("\r\n")}, f)
PY
# one curl, one connection: a request per line (curl's --next in a config file)
sep=""
for f in "$T"/req/*.json; do
  printf '%surl = "%s/v1/classify"\ndata-binary = "@%s"\nheader = "Authorization: Bearer s3cr3t-token"\n' "$sep" "$URL" "$f"
  sep="next"$'\n'
done >"$T/curl.cfg"
curl -s -K "$T/curl.cfg" >"$T/http.jsonl"
check "curl /v1/classify agrees with kinfer predict on every line (label, score)" python3 - "$T/predict.jsonl" "$T/http.jsonl" <<'PY'
import json, sys
p = [json.loads(l) for l in open(sys.argv[1])]
h = [json.loads(l) for l in open(sys.argv[2])]
assert len(p) == len(h) == 500, (len(p), len(h))
bad = [(i, a, b) for i, (a, b) in enumerate(zip(p, h))
       if a["label"] != b["label"] or abs(a["score"] - b["score"]) > 2e-6]
assert not bad, bad[:5]
PY
check "token: not in the log" bash -c "! grep -q s3cr3t-token '$T/s2.log'"
kill -TERM "$PID"; wait "$PID"
printf 'from-a-file\n' >"$T/token"
start_http "$T/s3.log" -X http.auth.token.file="$T/token" || exit 1
check "token file: its first line is the token" wait_until 30 bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer from-a-file' -d '{\"text\": \"x\"}' $URL/v1/classify)\" = 200 ]"
check "token file: without it 401" [ "$(code POST /v1/classify -d '{"text": "x"}')" = 401 ]
kill -TERM "$PID"; wait "$PID"
"$K" serve --http-only -X model.path="$T/m.kinf" -X http.listen=127.0.0.1:0 -X http.auth.token.file="$T/missing" 2>"$T/s4.log"
rc=$?
check "a missing token file: exit 2 naming it" bash -c "[ $rc -eq 2 ] && grep -q 'missing' '$T/s4.log'"
"$K" serve --http-only -X model.path="$T/m.kinf" -X http.listen= 2>"$T/s5.log"
rc=$?
check "--http-only with an empty http.listen: exit 2" bash -c "[ $rc -eq 2 ] && grep -q 'http.listen' '$T/s5.log'"
"$K" serve --http-only -X model.path="$T/m.kinf" -X http.listen=nohost:x 2>"$T/s6.log"
rc=$?
check "a malformed http.listen: exit 2 naming it" bash -c "[ $rc -eq 2 ] && grep -q 'http.listen' '$T/s6.log'"

# ---- the default address: 127.0.0.1:8080 (this test's own: its network namespace) ----------
# the port is held by a Python listener while kinfer must do without it
check "http.listen defaults to the loopback address" bash -c \
  "'$K' serve --dump-config -X model.path='$T/m.kinf' 2>/dev/null | grep -qx 'http.listen=127.0.0.1:8080'"
python3 - "$T/held" <<'PY' &
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 8080))
s.listen(8)
open(sys.argv[1], "w").write("held\n")
time.sleep(3600)
PY
HOLDER=$!; PIDS+=("$HOLDER")
if check "port 8080 held by this test" wait_until 30 test -s "$T/held"; then
  "$K" serve --http-only -X model.path="$T/m.kinf" 2>"$T/d1.log"
  rc=$?
  check "--http-only on the default address, taken: exit 1 naming it" \
    bash -c "[ $rc -eq 1 ] && grep -q 'http.listen=127.0.0.1:8080: cannot serve' '$T/d1.log'"
  # a Kafka worker does without HTTP on the default address (several workers on one host)
  "$K" dev-broker --port 0 --topic in:1 --topic out:1 >"$T/db.out" 2>"$T/db.err" &
  DB=$!; PIDS+=("$DB")
  wait_until 60 test -s "$T/db.out"
  "$K" serve -X kafka.bootstrap.servers="$(head -1 "$T/db.out")" -X input.topic=in \
    -X output.topic=out -X input.format=json -X model.path="$T/m.kinf" 2>"$T/d2.log" &
  WP=$!; PIDS+=("$WP")
  check "Kafka worker, default address taken: a warning, serving goes on without HTTP" \
    wait_until 60 grep -q 'serving without HTTP' "$T/d2.log"
  check "... and the worker keeps running" kill -0 "$WP"
  kill -TERM "$WP"; wait "$WP"; rc=$?
  check "... and stops with exit 0" [ $rc -eq 0 ]
  kill "$DB" 2>/dev/null; wait "$DB" 2>/dev/null
  kill "$HOLDER"; wait "$HOLDER" 2>/dev/null
  # free again: the default address serves
  "$K" serve --http-only -X model.path="$T/m.kinf" 2>"$T/d3.log" &
  PID=$!; PIDS+=("$PID")
  check "the default address, free: served on 127.0.0.1:8080" \
    wait_until 30 grep -q "serving http on 127.0.0.1:8080" "$T/d3.log"
  check "... /healthz answers there" \
    [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/healthz)" = 200 ]
  kill -TERM "$PID"; wait "$PID"
fi

# ---- TLS with a self-signed certificate ---------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$T/key.pem" -out "$T/cert.pem" >/dev/null 2>&1
check "openssl made a certificate" [ -s "$T/cert.pem" ]
start_http "$T/s7.log" -X http.tls.cert.file="$T/cert.pem" -X http.tls.key.file="$T/key.pem" \
  -X http.auth.token=tls-token || exit 1
check "TLS: the log says https" grep -q "serving https" "$T/s7.log"
check "TLS: /healthz over https, certificate verified" [ "$(curl -s --cacert "$T/cert.pem" -o /dev/null -w '%{http_code}' "$URL/healthz")" = 200 ]
check "TLS: classify over https" wait_until 30 bash -c "[ \"\$(curl -s --cacert '$T/cert.pem' -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer tls-token' -d '{\"text\": \"kernel\"}' $URL/v1/classify)\" = 200 ]"
check "TLS: plain http is not answered" bash -c "! curl -s -m 5 -o /dev/null 'http://${URL#https://}/healthz' || [ \"\$(curl -s -m 5 -o /dev/null -w '%{http_code}' 'http://${URL#https://}/healthz')\" != 200 ]"
check "TLS: an unverified certificate is refused by curl" bash -c "! curl -s -o /dev/null '$URL/healthz'"
kill -TERM "$PID"; wait "$PID"; rc=$?
check "TLS: SIGTERM exit 0" [ $rc -eq 0 ]
"$K" serve --http-only -X model.path="$T/m.kinf" -X http.listen=127.0.0.1:0 -X http.tls.cert.file="$T/cert.pem" 2>"$T/s8.log"
rc=$?
check "a certificate without a key: exit 2" bash -c "[ $rc -eq 2 ] && grep -q 'http.tls.key.file' '$T/s8.log'"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
