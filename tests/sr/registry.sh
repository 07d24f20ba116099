#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# registry.sh -- a Schema Registry (the Confluent REST API) on loopback for tests, benchmarks
# and the language examples:
#
#   tests/sr/registry.sh [--port N] [--user USER:PASSWORD] [--tls-cert F --tls-key F]
#                        [--state FILE] [--prefix /apis/ccompat/v7]
#
# prints the registry's base URL as the first line on stdout once it accepts connections (the
# value for schema.registry.url), and serves until SIGTERM or SIGINT. Port 0 (the default):
# any free port. --state keeps the schemas in FILE, so that a registry stopped and started
# again on the same --port keeps its ids (the outage tests do that).
#
# It runs tests/sr/registry.py, an in-memory registry of ours with Confluent's status codes and
# error bodies, for what the real one the tests also run (Apicurio Registry,
# deploy/schema-registry.sh) does not offer cheaply: basic auth, a restart that keeps the ids,
# hostile answers (docs/operations.md). Needs Debian's python3 and python3-avro
# (install-deps.sh).
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$(readlink -f "$0")")/registry.py" "$@"
