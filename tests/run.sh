#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# run.sh -- THE test command (README, .ci/run): install dependencies, build twice (optimised,
# and with AddressSanitizer + UndefinedBehaviorSanitizer), start a throwaway PostgreSQL, and
# run every ctest test in both builds, then the threaded tests under ThreadSanitizer (a third,
# smaller build), then the fuzzers (clang). Kafka tests start their own
# `kinfer dev-broker` (label kafka) or Apache Kafka (deploy/kafka.sh: labels kafka-real, and
# kafka-fault, the 3-node fault suite, in the optimised build only).
#
#   tests/run.sh            # everything
#   TESTS_LABEL=unit tests/run.sh   # only tests with this ctest label (unit|kafka|kafka-real|kafka-fault|pg)
#   KINFER_SKIP_ASAN=1 tests/run.sh # only the optimised build
#   KINFER_SKIP_FUZZ=1 tests/run.sh # without the libFuzzer targets (tests/fuzz/run.sh)
#   KINFER_SKIP_TSAN=1 tests/run.sh # without the ThreadSanitizer stage (the threaded tests)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

deploy/install-deps.sh
deploy/install-test-deps.sh   # a JRE and Maven for Apache Kafka
deploy/kafka.sh fetch         # once into the cache, before tests start brokers in parallel
deploy/schema-registry.sh fetch # Apicurio Registry (kafka_real_schema_registry), once into the cache
examples/run.sh setup         # the Python, Java and Go examples (kafka_real_examples), once into the cache

jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKINFER_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
if [ -z "${KINFER_SKIP_ASAN:-}" ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DKINFER_SANITIZE=ON -DKINFER_WERROR=ON >/dev/null
  cmake --build build-asan -j"$jobs"
fi

pgdir=$(mktemp -d /tmp/kinfer-test-pg.XXXXXX)
cleanup() { tests/pg/cluster.sh stop "$pgdir" || true; rm -rf "$pgdir"; }
trap cleanup EXIT
eval "$(tests/pg/cluster.sh start "$pgdir")"

label=()
[ -n "${TESTS_LABEL:-}" ] && label=(-L "$TESTS_LABEL")
status=0
ctest --test-dir build --output-on-failure -j"$jobs" "${label[@]}" || status=1
if [ -z "${KINFER_SKIP_ASAN:-}" ]; then
  echo "== the same tests under AddressSanitizer + UndefinedBehaviorSanitizer"
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    ctest --test-dir build-asan --output-on-failure -j"$jobs" "${label[@]}" -LE kafka-fault || status=1
fi
if [ -z "${KINFER_SKIP_TSAN:-}" ] && [ -z "${TESTS_LABEL:-}" ]; then
  # the tests that run threads (pool, mailbox, registry thread, training threads, a worker
  # with worker.threads=2 over the dev broker, PostgreSQL frozen under a worker, a worker whose
  # /metrics Prometheus scrapes on HTTP threads: kafka_prometheus, about 40 s of it) under
  # ThreadSanitizer; librdkafka's C11 threads are made visible by tests/tsan_threads.c and
  # only uninstrumented libraries' internals are suppressed (tests/tsan.supp). Test models are
  # trained by the optimised build; test_pool sweeps fewer sizes (KINFER_TEST_QUICK); OpenBLAS
  # runs one thread per runtime anyway (runtime/blas.c). About 2 minutes with its build.
  echo "== thread tests under ThreadSanitizer"
  t0=$SECONDS
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DKINFER_TSAN=ON -DKINFER_WERROR=ON >/dev/null
  cmake --build build-tsan -j"$jobs" --target kinfer test_worker_api make_test_models test_model_slot \
    test_pool test_batch test_offsets test_model_watch test_train test_prom
  tsan_env=(TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}:suppressions=$root/tests/tsan.supp"
            OPENBLAS_NUM_THREADS=1 KINFER_TEST_QUICK=1 KINFER_TEST_TRAIN_BIN="$root/build/kinfer")
  env "${tsan_env[@]}" ctest --test-dir build-tsan --output-on-failure -j"$jobs" \
    -R '^(test_model_slot|test_pool|test_batch|test_offsets|test_model_watch|test_prom|test_frozen|kafka_roundtrip|kafka_swap|kafka_prometheus)$' || status=1
  # training threads: 3 threads in each of its three threaded stages, and evaluation
  env "${tsan_env[@]}" SUBTESTS=test_thread_create_fails \
    ctest --test-dir build-tsan --output-on-failure -R '^test_train$' || status=1
  echo "== ThreadSanitizer stage: $((SECONDS - t0)) s"
fi
if [ -z "${KINFER_SKIP_FUZZ:-}" ] && [ -z "${TESTS_LABEL:-}" ]; then
  # saved crash inputs replayed, then each libFuzzer target for KINFER_FUZZ_SECONDS (about
  # 5 x 40 s + a clang build: about 5.5 minutes on 2 loaded cores)
  echo "== fuzzing (tests/fuzz/run.sh)"
  bash tests/fuzz/run.sh "${KINFER_FUZZ_SECONDS:-40}" || status=1
fi
exit $status
