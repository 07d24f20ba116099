#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# schema-registry.sh -- a real Schema Registry on loopback, for tests and anyone who wants to try
# kinfer's schema.registry.url against one: Apicurio Registry 3.3.3 with its default in-memory
# storage (H2), serving the Confluent-compatible API under /apis/ccompat/v7.
#
#   deploy/schema-registry.sh [--port N] [--log FILE] [--tls-cert FILE --tls-key FILE]
#       fetch Apicurio Registry into the cache if needed, start it on loopback (port N; 0, the
#       default: any free port), print its Confluent-compatible base URL (the value for
#       schema.registry.url, http://127.0.0.1:PORT/apis/ccompat/v7) as the first line on stdout
#       once GET /subjects answers 200, and serve until SIGTERM or SIGINT, or until the process
#       that started it is gone; then stop the JVM (SIGTERM, bounded, then SIGKILL). Schemas
#       live in memory only: a registry started again starts empty. The registry's own log
#       goes to FILE (kept), or to a temporary file removed at the end. With --tls-cert and
#       --tls-key (PEM) it also serves https on a free port, printed as the second line
#       (https://127.0.0.1:PORT/apis/ccompat/v7).
#   deploy/schema-registry.sh fetch       only fill the cache (mvn, Maven Central)
#
# What is fetched: Apicurio publishes on Maven Central, beside the application's classes
# (io.apicurio:apicurio-registry-app:3.3.3, not runnable: the input of Quarkus' build step),
# the built application as io.apicurio:apicurio-registry-app:3.3.3:tar.gz:all (159 MB; a
# Quarkus fast-jar: quarkus-run.jar and lib/). `mvn dependency:copy` fetches it once into
# ${XDG_CACHE_HOME:-~/.cache}/kinfer/apicurio-registry-3.3.3 (KINFER_TEST_SR_CACHE overrides),
# where it is unpacked (168 MB) and reused by every later run.
#
# It is compiled for Java 21 (class file 65): Debian 12's OpenJDK 17 cannot run it. The JVM is
# KINFER_TEST_SR_JAVA if set, else the first of `java` on the PATH and /usr/lib/jvm/*/bin/java
# (newest first) whose version is 21 or more (the machines here carry a Temurin 25 JDK in
# /usr/lib/jvm/temurin-25-jdk-amd64 beside Debian's 17); none: it fails and says so. Heap:
# 384 MiB (KINFER_TEST_SR_HEAP). Start-up takes 15 to 60 s on a loaded 2-core machine.
# Quarkus' management interface (health, metrics) listens on another free loopback port. Not
# configured: authentication (Apicurio's basic auth is OAuth client credentials against an
# OpenID Connect server, which this machine does not run).
set -euo pipefail

SR_VERSION=3.3.3
ARTIFACT=io.apicurio:apicurio-registry-app:$SR_VERSION:tar.gz:all
CACHE=${KINFER_TEST_SR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kinfer/apicurio-registry-$SR_VERSION}
APP=$CACHE/app
HEAP=${KINFER_TEST_SR_HEAP:-384m}
PY=/usr/bin/python3
ME=$(readlink -f "$0")

die() { echo "schema-registry.sh: $*" >&2; exit 1; }

fetch() {
  [ -e "$APP/.complete" ] && return 0
  command -v mvn >/dev/null || die "mvn not found (deploy/install-test-deps.sh installs it)"
  mkdir -p "$CACHE"
  # one fetch at a time: tests may run in parallel and all find an empty cache
  exec 9>"$CACHE/.lock"
  flock 9
  if [ ! -e "$APP/.complete" ]; then
    echo "schema-registry.sh: fetching Apicurio Registry $SR_VERSION into $CACHE (once)" >&2
    rm -rf "$CACHE/dl" "$APP.tmp"
    if ! (cd "$CACHE" && mvn -B dependency:copy -Dartifact="$ARTIFACT" -Dmdep.useBaseVersion=true \
      -DoutputDirectory="$CACHE/dl") >"$CACHE/mvn.log" 2>&1; then
      tail -n 20 "$CACHE/mvn.log" >&2
      die "mvn could not fetch $ARTIFACT (log: $CACHE/mvn.log)"
    fi
    mkdir -p "$APP.tmp"
    tar -xzf "$CACHE"/dl/*.tar.gz -C "$APP.tmp" || die "could not unpack $CACHE/dl"
    [ -f "$APP.tmp/quarkus-run.jar" ] || die "$ARTIFACT has no quarkus-run.jar"
    rm -rf "$APP" "$CACHE/dl"
    mv "$APP.tmp" "$APP"
    touch "$APP/.complete"
  fi
  flock -u 9
}

java_major() { # java_major JAVA -- its feature version (17, 21, 25), nothing if it does not run
  "$1" -version 2>&1 | sed -n '1s/^[^"]*"\([0-9]*\).*/\1/p'
}

find_java() {
  local j v
  if [ -n "${KINFER_TEST_SR_JAVA:-}" ]; then
    v=$(java_major "$KINFER_TEST_SR_JAVA")
    [ -n "$v" ] && [ "$v" -ge 21 ] || die "KINFER_TEST_SR_JAVA=$KINFER_TEST_SR_JAVA is not a Java 21 or newer"
    echo "$KINFER_TEST_SR_JAVA"
    return
  fi
  for j in "$(command -v java || true)" $(ls -d /usr/lib/jvm/*/bin/java 2>/dev/null | sort -rV); do
    [ -x "$j" ] || continue
    v=$(java_major "$j")
    if [ -n "$v" ] && [ "$v" -ge 21 ]; then echo "$j"; return; fi
  done
  die "Apicurio Registry $SR_VERSION needs Java 21 or newer: none found (java on the PATH, /usr/lib/jvm/*; set KINFER_TEST_SR_JAVA)"
}

answers() { # answers URL -- GET URL gives 200
  $PY - "$1" <<'EOF'
import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=5).status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}

serve() {
  local port=0 log="" keep=1 cert="" key="" tls=()
  while [ $# -gt 0 ]; do
    case $1 in
      --port) port=$2; shift 2 ;;
      --log) log=$2; shift 2 ;;
      --tls-cert) cert=$(readlink -f "$2"); shift 2 ;;
      --tls-key) key=$(readlink -f "$2"); shift 2 ;;
      -h|--help) sed -n '3,33p' "$ME" | sed 's/^# \{0,1\}//'; exit 0 ;;
      *) die "unknown argument $1 (--help)" ;;
    esac
  done
  [[ $port =~ ^[0-9]+$ ]] || die "--port must be a number"
  if [ -n "$cert$key" ]; then
    [ -f "$cert" ] && [ -f "$key" ] || die "--tls-cert and --tls-key: two PEM files"
    tls=(-Dquarkus.http.ssl-port=0 -Dquarkus.http.ssl.certificate.files="$cert"
         -Dquarkus.http.ssl.certificate.key-files="$key" -Dquarkus.http.insecure-requests=enabled)
  fi
  fetch
  local java
  java=$(find_java)
  if [ -z "$log" ]; then log=$(mktemp /tmp/kinfer-schema-registry.XXXXXX); keep=0; fi
  # the file exists before the wait below reads it (the JVM's redirection happens in the
  # background child, maybe after the first read: a read of a missing file ended the script)
  : >"$log"
  # its own session, so that a signal to the caller's process group does not reach the JVM
  # before this script has stopped it in order
  setsid "$java" -Xms64m -Xmx"$HEAP" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port" \
    -Dquarkus.management.host=127.0.0.1 -Dquarkus.management.port=0 "${tls[@]}" \
    -Dquarkus.otel.sdk.disabled=true \
    -Dapicurio.storage.kind=sql -Dapicurio.storage.sql.kind=h2 \
    -Dapicurio.datasource.jdbc.initial-size=2 -Dapicurio.datasource.jdbc.min-size=2 \
    -jar "$APP/quarkus-run.jar" >>"$log" 2>&1 </dev/null &
  # globals, not locals: the EXIT trap runs stop_jvm after serve's locals are gone
  JPID=$!
  SR_LOG=$log
  SR_KEEP=$keep
  stopping=0
  stop_jvm() {
    [ "$stopping" -eq 1 ] && return
    stopping=1
    kill -TERM "$JPID" 2>/dev/null || return 0
    local t0=$SECONDS
    while kill -0 "$JPID" 2>/dev/null; do
      [ $((SECONDS - t0)) -ge 20 ] && kill -KILL "$JPID" 2>/dev/null
      sleep 0.1
    done
    if [ "$SR_KEEP" -eq 0 ]; then rm -f "$SR_LOG"; fi
  }
  local jpid=$JPID
  trap 'stop_jvm; exit 0' TERM INT
  trap 'stop_jvm' EXIT

  # port 0: Quarkus binds a free port itself (no race with other tests choosing ports) and
  # logs it: "Listening on: http://127.0.0.1:PORT"
  local p=$port url="" t0=$SECONDS
  until [ -n "$url" ] && answers "$url/subjects"; do
    if [ "$p" -eq 0 ]; then
      p=$(sed -n 's|.*Listening on: http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$log" | head -n 1)
      p=${p:-0}
    fi
    [ "$p" -ne 0 ] && url=http://127.0.0.1:$p/apis/ccompat/v7
    kill -0 "$jpid" 2>/dev/null || { tail -n 40 "$log" >&2; die "Apicurio Registry exited at start"; }
    [ $((SECONDS - t0)) -lt 240 ] || { tail -n 40 "$log" >&2; die "Apicurio Registry did not answer in 240 s (log: $log)"; }
    sleep 0.5
  done
  echo "$url"
  if [ ${#tls[@]} -gt 0 ]; then
    local sp="" i
    for i in $(seq 300); do # the line comes with the listeners; bounded: 30 s
      sp=$(sed -n 's|.*Listening on: .* https://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$log" | head -n 1)
      [ -n "$sp" ] && break
      sleep 0.1
    done
    [ -n "$sp" ] || die "no https port in the log ($log)"
    echo "https://127.0.0.1:$sp/apis/ccompat/v7"
  fi
  echo "schema-registry.sh: Apicurio Registry $SR_VERSION ($("$java" -version 2>&1 | head -1)) up in $((SECONDS - t0)) s at $url, log $log" >&2
  local parent=$PPID
  while kill -0 "$parent" 2>/dev/null && kill -0 "$jpid" 2>/dev/null; do sleep 1 & wait $! || true; done
  kill -0 "$jpid" 2>/dev/null || { tail -n 40 "$log" >&2; die "Apicurio Registry exited"; }
  exit 0
}

case ${1:-} in
  fetch) fetch ;;
  *) serve "$@" ;;
esac
