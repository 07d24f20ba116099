#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_schema_registry.sh [standin|apicurio] -- input.format=avro-confluent and
# output.format=avro-confluent with a Schema Registry (schema.registry.url).
#
# standin (the default; ctest kafka_schema_registry, over the dev broker): the registry is
# tests/sr/registry.sh, our in-memory stand-in, with basic auth read from a file; all five parts
# below run (it can be stopped and started again on the same port with the same ids, refuse a
# password, serve https).
#
# apicurio (ctest kafka_real_schema_registry, over Apache Kafka): the registry is a real one,
# Apicurio Registry (deploy/schema-registry.sh: in-memory storage, Confluent-compatible API under
# /apis/ccompat/v7, http and https, no authentication). Parts 2 and 3 run against it, without the
# outage (a restarted in-memory registry forgets its ids, and each start is a JVM start): the
# test registers the writer schemas through Apicurio's API, kinfer fetches them by id over https
# (Apicurio's certificate checked against schema.registry.ssl.ca.location) and classifies,
# registers its result and dead-letter schemas, and the results' ids resolve in Apicurio to those
# schemas; an unknown id is dead-lettered with Apicurio's 404; a worker started again over http
# gets the same ids. Then the last check of part 5.
#
# The parts:
#  1. registry down at start: a worker reading avro-confluent (JSON results) starts, the records
#     whose writer schema it must fetch wait (nothing dead-lettered, nothing committed past
#     them); the registry comes up on the same port and every record gets its result;
#  2. a worker writing avro-confluent registers the result and dead-letter schemas under
#     out-value and dlq-value at start; every result carries the id the registry returns for
#     out-value and decodes with the schema registered under it; a record with an id the
#     registry does not know is dead-lettered (reason undecodable, the registry's 404 in the
#     detail; the dead letter carries dlq-value's id); a worker started again gets the same ids
#     and each subject keeps one version;
#  3. the registry stops mid-stream: records written with a second writer schema (registered
#     before, never fetched yet) wait, and once the registry is back every one is classified:
#     nothing lost, nothing dead-lettered;
#  4. a wrong password: the registry's 401 is "not now" (records wait, the log says why), never
#     a dead letter;
#  5. an https registry, its certificate checked against schema.registry.ssl.ca.location;
#     and a worker writing avro-confluent with the registry down does not start.
SR_KIND=${1:-standin}
case $SR_KIND in standin|apicurio) ;; *) echo "usage: test_schema_registry.sh [standin|apicurio]" >&2; exit 2 ;; esac
real_registry() { [ "$SR_KIND" = apicurio ]; }
. "$(dirname "$0")/lib.sh"

if real_registry; then
  # the JVM starts while the broker does and the model trains; URLs printed once it answers:
  # http, then https with a certificate made here
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$T/key.pem" -out "$T/cert.pem" >"$T/openssl.log" 2>&1 \
    || fail "openssl could not make a certificate"
  "$SRC/deploy/schema-registry.sh" --log "$T/apicurio.log" --tls-cert "$T/cert.pem" --tls-key "$T/key.pem" \
    >"$T/registry.out" 2>"$T/registry.log" &
  REG_PID=$!
  PIDS+=("$REG_PID")
  start_broker in2:1 out2:1 dlq2:1
else
  start_broker in:2 out:1 dlq:1 in2:1 out2:1 dlq2:1 out5:1 dlq5:1
fi
# one epoch: this test is about schemas, not accuracy (it saves ~40 s under ASan)
MODEL=$T/model.kinf
"$KT" train --input "$SRC/tests/data/sections-train.tsv" --output "$MODEL" --epoch 1 >"$T/train.log" 2>&1 ||
  { fail "train a model"; cat "$T/train.log" >&2; finish; }
budget_check "in/out" 600 2 "$OUT_RECORD_BYTES" 1

REG=$SRC/tests/sr/registry.sh
echo "kinfer:s3cret" >"$T/auth"
# the stand-in asks for basic auth; Apicurio runs without authentication
AUTH=("schema.registry.basic.auth.user.info.file=$T/auth")
AUTH_HEADER="Basic $(printf kinfer:s3cret | base64)"
if real_registry; then AUTH=(); AUTH_HEADER=; fi
REG_PORT=
start_registry() { # start_registry -- sets REG_PID and URL; the same port after the first start
  "$REG" --user kinfer:s3cret --state "$T/registry.json" --port "${REG_PORT:-0}" \
    >"$T/registry.out" 2>>"$T/registry.log" &
  REG_PID=$!
  PIDS+=("$REG_PID")
  wait_until 30 test -s "$T/registry.out" || { fail "the registry printed no URL"; finish; }
  URL=$(head -1 "$T/registry.out")
  REG_PORT=${URL##*:}
}
stop_registry() { kill -TERM "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null; : >"$T/registry.out"; }
register() { # register SUBJECT AVSC -- prints the id
  AUTH_HEADER=$AUTH_HEADER $PY - "$URL" "$1" "$2" <<'PYEOF'
import json, os, sys, urllib.request
url, subject, avsc = sys.argv[1:4]
req = urllib.request.Request(url + "/subjects/%s/versions" % subject, method="POST",
                             data=json.dumps({"schema": open(avsc).read()}).encode(),
                             headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
if os.environ.get("AUTH_HEADER"):
    req.add_header("Authorization", os.environ["AUTH_HEADER"])
print(json.load(urllib.request.urlopen(req, timeout=10))["id"])
PYEOF
}
# the records' texts: the first N lines of the dev sample
head -n 300 "$SRC/tests/data/sections-dev.tsv" | cut -f2 >"$T/texts"
mkdir -p "$T/prod" "$T/empty"

# ---- 1. registry down at start (the stand-in only) ----------------------------------------------
if real_registry; then
  registry_printed() { [ "$(wc -l <"$T/registry.out")" -ge 2 ] || ! kill -0 "$REG_PID"; }
  wait_until 300 registry_printed
  URL=$(sed -n 1p "$T/registry.out")
  TLS_URL=$(sed -n 2p "$T/registry.out")
  if [ -z "$TLS_URL" ]; then fail "deploy/schema-registry.sh printed no URLs"; tail -n 30 "$T/registry.log" >&2; finish; fi
  say "$(tail -n 1 "$T/registry.log")"
else
  start_registry
fi
ID1=$(register in-value "$SRC/schemas/text_record.avsc")
ID2=$(register in-value "$SRC/schemas/text_record_v2.avsc")
check "the registry gives two writer schemas two ids ($ID1, $ID2)" test -n "$ID1" -a -n "$ID2" -a "$ID1" != "$ID2"
cp "$SRC/schemas/text_record.avsc" "$T/prod/$ID1.avsc"
cp "$SRC/schemas/text_record_v2.avsc" "$T/prod/$ID2.avsc"
cp "$SRC/schemas/text_record.avsc" "$T/prod/999999.avsc" # an id the registry never gave
if ! real_registry; then
stop_registry

write_conf "$T/w1.conf" input.format=avro-confluent "input.schemas.dir=$T/empty" \
  "schema.registry.url=http://127.0.0.1:$REG_PORT" "schema.registry.basic.auth.user.info.file=$T/auth" \
  schema.registry.backoff.max.ms=1000 schema.registry.timeout.ms=2000 kafka.group.id=g1
start_worker w1 "$T/w1.conf"
W1=$WPID
wait_assigned w1
"$K" produce -q -b "$B" -t in -f avro-confluent --schemas-dir "$T/prod" --schema-id "$ID1" \
  --id-prefix a "$T/texts" || fail "produce the first records"
check "while the registry is down the worker waits for it" \
  wait_until 120 grep -q "waiting for the schema registry" "$T/w1.log"
check "nothing is dead-lettered while the registry is down" test "$($KU count "$B" dlq)" -eq 0
start_registry
check "once the registry is up, all 300 records get a result" test "$(wait_count out 300 180)" -ge 300
check "no dead letter" test "$($KU count "$B" dlq)" -eq 0
check "the schema came from the registry" grep -q "schema_id=$ID1 loaded from the schema registry" "$T/w1.log"
check "w1 exits 0 on SIGTERM" stop_worker "$W1"
check "every input record has exactly one result" \
  bash -c "[ \$($KU results $B out | cut -f2 | sort -u | wc -l) -eq 300 ]"
fi

# ---- 2. avro-confluent output: registered ids; an unknown id -------------------------------------
# (Apicurio: over https, its certificate checked against schema.registry.ssl.ca.location; the
# worker started again at the end of part 3 speaks http)
W2_URL=("schema.registry.url=$URL")
real_registry && W2_URL=("schema.registry.url=$TLS_URL" "schema.registry.ssl.ca.location=$T/cert.pem")
write_conf "$T/w2.conf" input.format=avro-confluent "input.schemas.dir=$T/empty" \
  "${W2_URL[@]}" "${AUTH[@]}" \
  schema.registry.backoff.max.ms=1000 schema.registry.timeout.ms=2000 kafka.group.id=g2 \
  input.topic=in2 output.topic=out2 dlq.topic=dlq2 output.format=avro-confluent
start_worker w2 "$T/w2.conf"
W2=$WPID
wait_assigned w2
"$K" produce -q -b "$B" -t in2 -f avro-confluent --schemas-dir "$T/prod" --schema-id "$ID1" \
  --id-prefix b -n 100 "$T/texts" || fail "produce to in2"
"$K" produce -q -b "$B" -t in2 -f avro-confluent --schemas-dir "$T/prod" --schema-id 999999 \
  --id-prefix u -n 3 "$T/texts" || fail "produce records with an unknown id"
check "100 results" test "$(wait_count out2 100 120)" -ge 100
check "3 dead letters" test "$(wait_count dlq2 3 120)" -ge 3
check "the first writer schema came from the registry" grep -q "schema_id=$ID1 loaded from the schema registry" "$T/w2.log"

# ---- 3. the registry stops mid-stream (Apicurio: it stays up) ----------------------------------
real_registry || stop_registry
"$K" produce -q -b "$B" -t in2 -f avro-confluent --schemas-dir "$T/prod" --schema-id "$ID2" \
  --id-prefix c -n 200 "$T/texts" || fail "produce with the second writer schema"
if ! real_registry; then
  check "with the registry stopped, records of a new writer schema wait" \
    wait_until 120 bash -c "[ \$(grep -c 'waiting for the schema registry' '$T/w2.log') -ge 1 ]"
  check "meanwhile nothing more is dead-lettered" test "$($KU count "$B" dlq2)" -eq 3
  start_registry
fi
check "all 300 records of in2 have a result" test "$(wait_count out2 300 180)" -ge 300
check "the second writer schema came from the registry" grep -q "schema_id=$ID2 loaded from the schema registry" "$T/w2.log"
check "w2 exits 0 on SIGTERM" stop_worker "$W2"

AUTH_HEADER=$AUTH_HEADER $PY - "$B" "$URL" "$SRC/schemas" <<'PYEOF' >"$T/verdict2.txt" 2>&1
import io, json, os, struct, sys, urllib.request
import avro.io, avro.schema
from confluent_kafka import Consumer, TopicPartition
brokers, url, schemas = sys.argv[1:4]
auth = {"Authorization": os.environ["AUTH_HEADER"]} if os.environ.get("AUTH_HEADER") else {}
def get(path):
    # the test's own reads: a connection the registry's server closed without an answer
    # (Quarkus under CI load, once) is read again; an HTTP status is an answer and is kept
    import http.client, time, urllib.error
    for attempt in range(5):
        try:
            return json.load(urllib.request.urlopen(urllib.request.Request(url + path, headers=auth), timeout=10))
        except urllib.error.HTTPError:
            raise
        except (http.client.HTTPException, ConnectionError, urllib.error.URLError):
            if attempt == 4:
                raise
            time.sleep(0.5)
def read(topic):
    c = Consumer({"bootstrap.servers": brokers, "group.id": "verdict", "enable.auto.commit": False,
                  "enable.partition.eof": True})
    c.assign([TopicPartition(topic, 0, 0)])
    out = []
    while True:
        m = c.poll(10)
        if m is None or (m.error() and m.error().code() == -191):
            break
        if not m.error():
            out.append(m.value())
    c.close()
    return out
bad = []
for topic, subject, avsc in (("out2", "out2-value", "classification.avsc"),
                             ("dlq2", "dlq2-value", "dead_letter.avsc")):
    latest = get("/subjects/%s/versions/latest" % subject)
    # what kinfer registered under the subject is its own schema (schemas/), and the id the
    # registry gave it answers with that schema
    mine = avro.schema.parse(open(os.path.join(schemas, avsc)).read()).to_json()
    for what, text in (("latest", latest["schema"]), ("by id", get("/schemas/ids/%d" % latest["id"])["schema"])):
        if avro.schema.parse(text).to_json() != mine:
            bad.append("%s: the registry's schema (%s) is not schemas/%s" % (subject, what, avsc))
    recs = []
    for v in read(topic):
        magic, sid = struct.unpack(">bI", v[:5])
        if magic != 0 or sid != latest["id"]:
            bad.append("%s: framing %d id %d, the registry says %d" % (topic, magic, sid, latest["id"]))
            continue
        # decode with the schema fetched back by id, as any Confluent reader would
        recs.append(avro.io.DatumReader(avro.schema.parse(get("/schemas/ids/%d" % sid)["schema"]))
                    .read(avro.io.BinaryDecoder(io.BytesIO(v[5:]))))
    print("%s: %d records, schema id %d" % (topic, len(recs), latest["id"]))
    if topic == "out2":
        ids = [r["id"] for r in recs]
        want = {"b%d" % i for i in range(100)} | {"c%d" % i for i in range(200)}
        if set(ids) != want:
            bad.append("out2: ids %d distinct, %d missing" % (len(set(ids)), len(want - set(ids))))
        if any(not r["label"] for r in recs):
            bad.append("out2: a result without a label")
    else:
        if len(recs) != 3 or any(r["reason"] != "undecodable" or "999999" not in r["detail"]
                                 or "404" not in r["detail"] for r in recs):
            bad.append("dlq2: %r" % [(r["reason"], r["detail"]) for r in recs])
        else:
            print("dead letter detail: %s" % recs[0]["detail"])
print("\n".join(bad) if bad else "all good")
sys.exit(1 if bad else 0)
PYEOF
st=$?
sed 's/^/#   /' "$T/verdict2.txt" >&2
check "results and dead letters carry the registry's ids and decode with its schemas; the unknown id's dead letters name the 404" test "$st" -eq 0

# a worker started again registers its schemas again: the registry answers with the ids it gave
# before, and each subject keeps one version (a restart does not pile up versions)
reg_ids() { grep -o 'subject=[a-z0-9]*-value registered: schema id [0-9]*' "$T/$1.log" | sort; }
same_ids() { [ "$(reg_ids w2b | wc -l)" -eq 2 ] && [ "$(reg_ids w2b)" = "$(reg_ids w2)" ]; }
one_version() {
  AUTH_HEADER=$AUTH_HEADER $PY - "$URL" out2-value dlq2-value <<'PYEOF'
import json, os, sys, urllib.request
url = sys.argv[1]
auth = {"Authorization": os.environ["AUTH_HEADER"]} if os.environ.get("AUTH_HEADER") else {}
def get(path):  # as in the verdict above: a dropped connection is read again
    import http.client, time, urllib.error
    for attempt in range(5):
        try:
            return json.load(urllib.request.urlopen(urllib.request.Request(url + path, headers=auth), timeout=10))
        except urllib.error.HTTPError:
            raise
        except (http.client.HTTPException, ConnectionError, urllib.error.URLError):
            if attempt == 4:
                raise
            time.sleep(0.5)
for subject in sys.argv[2:]:
    v = get("/subjects/%s/versions" % subject)
    if v != [1]:
        sys.exit("%s: versions %r" % (subject, v))
PYEOF
}
sed "s|^schema.registry.url=.*|schema.registry.url=$URL|; /^schema.registry.ssl.ca.location=/d" "$T/w2.conf" >"$T/w2b.conf"
start_worker w2b "$T/w2b.conf"
W2B=$WPID
check "a worker started again gets the same ids for out2-value and dlq2-value ($(reg_ids w2 | tr '\n' ' '))" \
  wait_until 120 same_ids
check "w2b exits 0 on SIGTERM" stop_worker "$W2B"
check "each subject still has one version" one_version

# ---- 4. a wrong password (the stand-in only: Apicurio runs without authentication) --------------
if ! real_registry; then
echo "kinfer:wrong" >"$T/badauth"
write_conf "$T/w3.conf" input.format=avro-confluent "input.schemas.dir=$T/empty" \
  "schema.registry.url=$URL" "schema.registry.basic.auth.user.info.file=$T/badauth" \
  schema.registry.backoff.max.ms=1000 kafka.group.id=g3 output.topic=out3 dlq.topic=dlq3
start_worker w3 "$T/w3.conf"
W3=$WPID
check "a wrong password makes records wait (401), with the reason in the log" \
  wait_until 120 grep -q "waiting for the schema registry.*HTTP 401" "$T/w3.log"
check "and dead-letters nothing" test "$($KU count "$B" dlq3)" -eq 0
check "w3 exits 0 on SIGTERM" stop_worker "$W3"

# ---- 5. https: the registry's certificate checked against schema.registry.ssl.ca.location -------
# (the stand-in only)
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$T/key.pem" -out "$T/cert.pem" >"$T/openssl.log" 2>&1 \
  || fail "openssl could not make a certificate"
"$REG" --user kinfer:s3cret --state "$T/registry.json" --tls-cert "$T/cert.pem" --tls-key "$T/key.pem" \
  >"$T/tls.out" 2>"$T/tls.log" &
PIDS+=($!)
wait_until 30 test -s "$T/tls.out" || fail "the https registry printed no URL"
TLS_URL=$(head -1 "$T/tls.out")
write_conf "$T/w5.conf" input.format=avro-confluent "input.schemas.dir=$T/empty" \
  "schema.registry.url=$TLS_URL" "schema.registry.basic.auth.user.info.file=$T/auth" \
  "schema.registry.ssl.ca.location=$T/cert.pem" kafka.group.id=g5 output.topic=out5 dlq.topic=dlq5
start_worker w5 "$T/w5.conf"
W5=$WPID
check "over https with the registry's CA, all 300 records of in get a result" test "$(wait_count out5 300 180)" -ge 300
check "w5 exits 0 on SIGTERM" stop_worker "$W5"
fi

# ---- avro-confluent output with the registry down ------------------------------------------------
stop_registry
write_conf "$T/w4.conf" input.format=avro-confluent "input.schemas.dir=$T/empty" \
  "schema.registry.url=$URL" "${AUTH[@]}" \
  schema.registry.backoff.max.ms=200 schema.registry.timeout.ms=500 kafka.group.id=g4 \
  output.format=avro-confluent output.topic=out4 dlq.topic=dlq4
"$K" serve --config "$T/w4.conf" >"$T/w4.out" 2>"$T/w4.log"
st=$?
check "avro-confluent output with the registry down: serve does not start (exit $st)" test "$st" -ne 0
check "and says why" grep -q "schema registry unavailable" "$T/w4.log"
if real_registry; then kept_all in2; else kept_all in in2; fi
finish
