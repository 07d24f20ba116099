#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""registry.py -- an in-memory Schema Registry serving the part of the Confluent REST API that
kinfer and the examples use: the tests' stand-in for what the real registry they also run
(Apicurio Registry 3.3.3, deploy/schema-registry.sh, test kafka_real_schema_registry) does not
offer cheaply: basic auth (Apicurio's needs an OpenID Connect server), a restart on the same
port that keeps its ids (Apicurio's in-memory storage forgets them, and each start is a JVM
start), and hostile answers. docs/operations.md says which test uses which.

What it serves (Confluent's status codes and error bodies, content type
application/vnd.schemaregistry.v1+json):
  GET  /schemas/ids/{id}                     {"schema": "..."} | 404 error_code 40403
  POST /subjects/{subject}/versions          {"schema": "...", "schemaType"?: "AVRO"} -> {"id": N}
                                             (the same schema gets the same id in any subject;
                                             an invalid Avro schema: 422 error_code 42201)
  GET  /subjects                             ["subject", ...]
  GET  /subjects/{subject}/versions          [1, 2, ...] | 404 error_code 40401
  GET  /subjects/{subject}/versions/latest   {"subject","version","id","schema"}
under an optional path prefix (--prefix /apis/ccompat/v7 answers as Apicurio does).
Options: --port N (0 = any free port), --user USER:PASSWORD (HTTP basic auth; 401 otherwise),
--tls-cert FILE --tls-key FILE (https), --state FILE (schemas are kept in FILE and loaded from
it, so that a registry stopped and started again on the same --port keeps its ids), --hostile
(schema ids from 900001 answer as a broken or hostile registry would: see HOSTILE).
Prints its base URL as the first line on stdout once it accepts connections, then serves until
SIGTERM or SIGINT.
"""
import argparse
import base64
import json
import os
import signal
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import avro.schema

MAX_BODY = 1 << 20
# --hostile: GET /schemas/ids/{id} for these ids answers so (tests/sr/test_registry_hostile.sh)
HOSTILE = {
    900001: "a 2 MiB body (over kinfer's 1 MiB bound)",
    900002: "200 with a body that is not JSON",
    900003: "a PROTOBUF schema",
    900004: "a schema string that is not Avro",
    900005: "503 Service Unavailable",
    900006: "an Avro record without a text field",
    900007: "JSON with a duplicate member name",
}
CT = "application/vnd.schemaregistry.v1+json"


class State:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.schemas = {}   # id -> schema text (as registered)
        self.by_canon = {}  # canonical text -> id
        self.subjects = {}  # subject -> [id of version 1, 2, ...]
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
            self.schemas = {int(k): v for k, v in d["schemas"].items()}
            self.subjects = d["subjects"]
            for i, s in self.schemas.items():
                self.by_canon[canon(s)] = i

    def save(self):
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"schemas": self.schemas, "subjects": self.subjects}, f)
        os.replace(tmp, self.path)

    def register(self, subject, text):
        with self.lock:
            c = canon(text)
            sid = self.by_canon.get(c)
            if sid is None:
                sid = max(self.schemas, default=0) + 1
                self.schemas[sid] = text
                self.by_canon[c] = sid
            versions = self.subjects.setdefault(subject, [])
            if sid not in versions:
                versions.append(sid)
            self.save()
            return sid


def canon(text):
    return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))


def make_handler(state, prefix, user, hostile):
    want_auth = "Basic " + base64.b64encode(user.encode()).decode() if user else None

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            sys.stderr.write("registry.py: %s %s\n" % (self.address_string(), fmt % args))

        def send(self, status, obj):
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", CT)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def raw(self, status, body):
            self.send_response(status)
            self.send_header("Content-Type", CT)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def hostile(self, sid):
            if sid == 900001:
                self.raw(200, b'{"schema": "' + b"x" * (2 << 20) + b'"}')
            elif sid == 900002:
                self.raw(200, b"<html>gateway error</html>")
            elif sid == 900003:
                self.send(200, {"schema": 'syntax = "proto3";', "schemaType": "PROTOBUF"})
            elif sid == 900004:
                self.send(200, {"schema": "{not avro"})
            elif sid == 900005:
                self.error(503, 50003, "Service Unavailable")
            elif sid == 900006:
                self.send(200, {"schema": json.dumps({"type": "record", "name": "R", "fields": [
                    {"name": "id", "type": "string"}, {"name": "body", "type": "string"}]})})
            elif sid == 900007:
                self.raw(200, b'{"schema": "\\"string\\"", "schema": "\\"int\\""}')

        def error(self, status, code, msg):
            self.send(status, {"error_code": code, "message": msg})

        def route(self):
            if want_auth and self.headers.get("Authorization") != want_auth:
                self.error(401, 40101, "Unauthorized")
                return None
            path = self.path.split("?", 1)[0]
            if prefix:
                if not path.startswith(prefix):
                    self.error(404, 404, "HTTP 404 Not Found")
                    return None
                path = path[len(prefix):]
            return [p for p in path.split("/") if p]

        def do_GET(self):
            parts = self.route()
            if parts is None:
                return
            if parts == []:
                self.send(200, {})
            elif len(parts) == 3 and parts[:2] == ["schemas", "ids"]:
                try:
                    sid = int(parts[2])
                except ValueError:
                    self.error(404, 40403, "Schema not found")
                    return
                s = state.schemas.get(sid)
                if hostile and sid in HOSTILE:
                    self.hostile(sid)
                elif s is None:
                    self.error(404, 40403, "Schema %d not found" % sid)
                else:
                    self.send(200, {"schema": s})
            elif parts == ["subjects"]:
                self.send(200, sorted(state.subjects))
            elif len(parts) >= 3 and parts[0] == "subjects" and parts[2] == "versions":
                v = state.subjects.get(parts[1])
                if v is None:
                    self.error(404, 40401, "Subject '%s' not found." % parts[1])
                elif len(parts) == 3:
                    self.send(200, list(range(1, len(v) + 1)))
                elif len(parts) == 4 and parts[3] == "latest":
                    self.send(200, {"subject": parts[1], "version": len(v), "id": v[-1],
                                    "schema": state.schemas[v[-1]]})
                else:
                    self.error(404, 40402, "Version not found.")
            else:
                self.error(404, 404, "HTTP 404 Not Found")

        def do_POST(self):
            parts = self.route()
            if parts is None:
                return
            n = int(self.headers.get("Content-Length", "0"))
            if n > MAX_BODY:
                self.error(413, 413, "request too large")
                return
            body = self.rfile.read(n)
            if not (len(parts) == 3 and parts[0] == "subjects" and parts[2] == "versions"):
                self.error(404, 404, "HTTP 404 Not Found")
                return
            try:
                req = json.loads(body)
                text = req["schema"]
                if req.get("schemaType", "AVRO") != "AVRO":
                    raise ValueError("only AVRO schemas here")
                avro.schema.parse(text)
            except Exception as e:  # noqa: BLE001 -- any bad input is a 422
                self.error(422, 42201, "Invalid schema: %s" % e)
                return
            self.send(200, {"id": state.register(parts[1], text)})

    return H


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--user", default="")
    ap.add_argument("--tls-cert", default="")
    ap.add_argument("--tls-key", default="")
    ap.add_argument("--state", default="")
    ap.add_argument("--prefix", default="")
    ap.add_argument("--hostile", action="store_true")
    a = ap.parse_args()
    state = State(a.state)
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), make_handler(state, a.prefix.rstrip("/"), a.user, a.hostile))
    srv.daemon_threads = True
    scheme = "http"
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key or None)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        scheme = "https"
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    print("%s://127.0.0.1:%d%s" % (scheme, srv.server_address[1], a.prefix.rstrip("/")), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    srv.server_close()


if __name__ == "__main__":
    main()
