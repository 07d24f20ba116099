#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_layering.sh -- each external library's header is included only where the architecture
# says (docs/architecture.md), and library code never writes to stdout or exits.
set -u
cd "${KINFER_SOURCE_DIR:?}"
pass=0 fail=0
only() { # header allowed-files...
  local h=$1; shift
  local found
  found=$(grep -l "^#include <.*$h>" src/*.c src/*.h src/cli/*.c 2>/dev/null | sort | tr '\n' ' ')
  local want
  want=$(printf '%s\n' "$@" | sort | tr '\n' ' ')
  if [ "$found" = "$want" ]; then pass=$((pass + 1)); echo "ok - $h only in $want"
  else fail=$((fail + 1)); echo "not ok - $h is included by: $found (allowed: $want)"; fi
}
only rdkafka.h src/cli/cmd_dev_broker.c src/consumer.c src/producer.c
only avro.h src/codec_avro.c
only libpq-fe.h src/registry.c
only cblas.h src/blas.c
# library code (src/*.c, not src/cli/) never exits and never prints to stdout
bad=$(grep -nE '\bexit\(|\bprintf\(|\bputs\(|\bputchar\(|fprintf\(stdout|fputs\([^;]*stdout' src/*.c | grep -v '^\s*/\*' || true)
if [ -z "$bad" ]; then pass=$((pass + 1)); echo "ok - no exit()/stdout in library code"
else fail=$((fail + 1)); echo "not ok - exit() or stdout in library code:"; echo "$bad"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
