#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# install-deps.sh -- apt-install what kinfer needs to build, run, demo and test. The
# benchmarks' comparison packages (fastText, scikit-learn) are in install-bench-deps.sh, which
# the benchmarks run themselves; Apache Kafka's JRE and Maven in install-test-deps.sh.
# Idempotent: does nothing when everything is already installed. Needs root (or sudo).
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git
  librdkafka-dev libavro-dev libopenblas-dev libpq-dev libutf8proc-dev libjansson-dev libssl-dev
  postgresql postgresql-client kcat
  # src/http: the embedded HTTP server (/healthz, /readyz, /metrics, /v1/classify)
  libmicrohttpd-dev
  # src/codec/sr.c: the Schema Registry client (schema.registry.url); openssl makes the TLS
  # test's certificates
  libcurl4-openssl-dev openssl
  # tests/fuzz/run.sh: clang with libFuzzer and the sanitizer runtimes, llvm-symbolizer
  clang libclang-rt-dev llvm
  # the Kafka tests' and the demo's Python clients (reading results, dead letters, Avro)
  python3 python3-confluent-kafka python3-avro
)

"$(dirname "$0")/apt-install.sh" "install-deps" "${PKGS[@]}"
