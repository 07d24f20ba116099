#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# install-test-deps.sh -- what the tests and benchmarks need beyond install-deps.sh: a JRE and
# Maven, for deploy/kafka.sh (Apache Kafka, fetched from Maven Central into a cache). The demo
# does not need them. Idempotent; needs root (or sudo).
set -euo pipefail

PKGS=(openjdk-17-jre-headless maven)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
