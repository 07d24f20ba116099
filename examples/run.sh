#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run.sh -- fetch, build and run the producer/reader examples (docs/producers.md).
#
#   examples/run.sh setup [python] [java] [go]   fetch and build into the cache (all three when
#                                                none is named); once, reused while the example's
#                                                files and the toolchain are unchanged
#   examples/run.sh python|java|go ARGS...       run one (sets it up first when needed); ARGS are
#                                                the example's: --brokers --input-topic
#                                                --output-topic --schema-id --result-schema-id
#                                                --text-schema --result-schema --texts --n
#                                                --id-prefix --timeout
#
# Cache: ${KINFER_EXAMPLES_CACHE:-${XDG_CACHE_HOME:-~/.cache}/kinfer/examples}, one folder per
# language and content hash (the example's sources and dependency pins, the toolchain version):
#   python  a venv of Debian's python3 with requirements.txt from PyPI (pip)
#   java    the jars of pom.xml from Maven Central (mvn dependency:copy-dependencies), classes
#           compiled with javac (JDK 17)
#   go      the binary, built with the `go` on PATH (Debian's golang-go or newer; go.mod says
#           1.19) with modules from the Go module proxy (GOPATH and GOCACHE inside the cache)
# Needs: python3-venv, openjdk-17-jdk-headless and maven, golang-go
# (deploy/install-test-deps.sh). Setups are serialised by a lock: tests may run side by side.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${KINFER_EXAMPLES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kinfer/examples}
PY=/usr/bin/python3

die() { echo "examples/run.sh: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || die "$1 not found (deploy/install-test-deps.sh installs it)"; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }
# keep_only DIR_PREFIX KEEP -- drop the older builds of one language
keep_only() { local d; for d in "$1"-*; do [ "$d" = "$2" ] || [ ! -e "$d" ] || rm -rf "$d"; done; }

python_dir() { echo "$CACHE/python-$( { $PY --version; cat "$HERE/python/requirements.txt"; } | sha256sum | cut -c1-16)"; }
java_dir() { need javac; echo "$CACHE/java-$( { javac -version 2>&1; cat "$HERE/java/pom.xml" "$HERE"/java/src/main/java/kinfer/example/*.java; } | sha256sum | cut -c1-16)"; }
go_dir() { need go; echo "$CACHE/go-$( { GOTOOLCHAIN=local go version; cat "$HERE"/go/go.mod "$HERE"/go/go.sum "$HERE"/go/*.go; } | sha256sum | cut -c1-16)"; }

setup_python() {
  local d; d=$(python_dir)
  [ -e "$d/.complete" ] && return 0
  local t0=$SECONDS
  $PY -c 'import venv, ensurepip' 2>/dev/null || die "python3 has no venv/ensurepip (install python3-venv)"
  rm -rf "$d"
  $PY -m venv "$d"
  "$d/bin/pip" install -q --disable-pip-version-check --no-input -r "$HERE/python/requirements.txt" >"$CACHE/log.python-pip" 2>&1 ||
    { tail -n 20 "$CACHE/log.python-pip" >&2; rm -rf "$d"; die "pip install failed (log: $CACHE/log.python-pip)"; }
  touch "$d/.complete"
  keep_only "$CACHE/python" "$d"
  echo "examples/run.sh: python venv ready in $((SECONDS - t0)) s ($d)" >&2
}

setup_java() {
  need mvn
  local d; d=$(java_dir)
  [ -e "$d/.complete" ] && return 0
  local t0=$SECONDS
  rm -rf "$d"
  mkdir -p "$d"
  mvn -q -B -f "$HERE/java/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$d/libs" >"$CACHE/log.java-mvn" 2>&1 ||
    { tail -n 20 "$CACHE/log.java-mvn" >&2; rm -rf "$d"; die "mvn could not fetch the dependencies (log: $CACHE/log.java-mvn)"; }
  javac -Xlint:all -Werror --release 17 -d "$d/classes" -cp "$d/libs/*" "$HERE"/java/src/main/java/kinfer/example/*.java ||
    { rm -rf "$d"; die "javac failed"; }
  touch "$d/.complete"
  keep_only "$CACHE/java" "$d"
  echo "examples/run.sh: java example built in $((SECONDS - t0)) s ($d)" >&2
}

go_env() { export GOPATH="$CACHE/gopath" GOCACHE="$CACHE/gocache" GOTOOLCHAIN=local GOFLAGS=-mod=readonly; }

setup_go() {
  local d; d=$(go_dir)
  [ -e "$d/.complete" ] && return 0
  local t0=$SECONDS
  rm -rf "$d"
  mkdir -p "$d"
  go_env
  (cd "$HERE/go" && go build -trimpath -o "$d/kinfer-example" .) >"$CACHE/log.go-build" 2>&1 ||
    { tail -n 20 "$CACHE/log.go-build" >&2; rm -rf "$d"; die "go build failed (log: $CACHE/log.go-build)"; }
  touch "$d/.complete"
  keep_only "$CACHE/go" "$d"
  echo "examples/run.sh: go example built in $((SECONDS - t0)) s ($d)" >&2
}

setup() { # setup LANG... under the lock
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9
  local l
  for l in "$@"; do
    case $l in
      python) setup_python ;;
      java) setup_java ;;
      go) setup_go ;;
      *) die "unknown example $l (python, java, go)" ;;
    esac
  done
  flock -u 9
}

case ${1:-} in
  setup)
    shift
    [ $# -gt 0 ] || set -- python java go
    setup "$@" ;;
  python)
    shift; setup python
    exec "$(python_dir)/bin/python" "$HERE/python/kinfer_example.py" "$@" ;;
  java)
    shift; setup java
    d=$(java_dir)
    exec java -Xmx256m -cp "$d/classes:$d/libs/*" kinfer.example.KinferExample "$@" ;;
  go)
    shift; setup go
    exec "$(go_dir)/kinfer-example" "$@" ;;
  *) sed -n '3,24p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
