#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# install-deps.sh -- apt-install every build, test, demo and benchmark dependency of kinfer.
# Idempotent: does nothing when everything is already installed. Needs root (or sudo).
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git
  librdkafka-dev libavro-dev libopenblas-dev libpq-dev libutf8proc-dev libjansson-dev libssl-dev
  postgresql postgresql-client kcat
  # tests/fuzz/run.sh: clang with libFuzzer and the sanitizer runtimes, llvm-symbolizer
  clang libclang-rt-dev llvm
  # comparisons in tests/bench: fastText and the Python worker a user would otherwise write
  fasttext python3-fasttext python3 python3-confluent-kafka python3-sklearn python3-avro python3-numpy time
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
