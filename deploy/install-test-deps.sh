#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# install-test-deps.sh -- what the tests and benchmarks need beyond install-deps.sh: a JRE and
# Maven, for deploy/kafka.sh (Apache Kafka, fetched from Maven Central into a cache); OpenMPI,
# for `kinfer train` under mpirun (CMake builds src/train/mpi.c when it finds MPI, and
# tests/unit/test_train_mpi.sh runs mpirun -np 2 and 4). Training in one process, the demo and
# serving do not need them. Idempotent; needs root (or sudo).
set -euo pipefail

PKGS=(openjdk-17-jre-headless maven openmpi-bin libopenmpi-dev)

# Prometheus: promtool checks the /metrics exposition (test_prom), and the server scrapes a
# live worker (kafka_prometheus)
PKGS+=(prometheus)

# the producer/reader examples (tests/kafka/test_examples.sh through examples/run.sh): a venv
# for PyPI's confluent-kafka and fastavro, a JDK (javac) for the Java one, Go for the Go one
# (modules from the Go module proxy); python3-yaml for tests/unit/test_deploy.sh
PKGS+=(python3-venv openjdk-17-jdk-headless golang-go python3-yaml)

# the HTTP tests (test_http, test_http_registry): curl, and openssl for a self-signed
# certificate; test_http runs in a network namespace of its own (unshare from util-linux,
# `ip link set lo up` from iproute2)
PKGS+=(curl openssl iproute2 util-linux)

# the fastText CLI: tests/unit/test_fasttext.sh trains reference .bin/.ftz models and compares
# kinfer import fasttext with fasttext predict-prob on every line
PKGS+=(fasttext)

"$(dirname "$0")/apt-install.sh" "install-test-deps" "${PKGS[@]}"
