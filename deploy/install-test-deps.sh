#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# install-test-deps.sh -- what the tests and benchmarks need beyond install-deps.sh: a JRE and
# Maven, for deploy/kafka.sh (Apache Kafka, fetched from Maven Central into a cache). The demo
# does not need them. Idempotent; needs root (or sudo).
set -euo pipefail

PKGS=(openjdk-17-jre-headless maven)

# Prometheus: promtool checks the /metrics exposition (test_prom), and the server scrapes a
# live worker (kafka_prometheus)
PKGS+=(prometheus)

"$(dirname "$0")/apt-install.sh" "install-test-deps" "${PKGS[@]}"
