#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench_mpi.sh -- kinfer train under mpirun on debian-sections (issue 14): for K = 1, 2, 4 ranks
# (one thread each, oversubscribed on this machine, TCP on loopback) and one process without
# MPI: wall time, records/s in the epochs, the bytes each rank sends into the averaging
# collectives per epoch (payload; MPI's ring/tree moves about 2(K-1)/K of it per rank), the
# number of averagings (and how many sent only the touched rows), and dev accuracy.
# Usage: tests/bench/bench_mpi.sh [OUTDIR]   (DATA defaults to ../shared/data/debian-sections;
# BUILD to build-mpi; SYNCS to "2000 250", the --sync-every values)
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-../shared/data/debian-sections}
BUILD=${BUILD:-build-mpi}
SYNCS=${SYNCS:-2000 250}
OUT=${1:-$(mktemp -d /tmp/kinfer-bench-mpi.XXXXXX)}
mkdir -p "$OUT"
deploy/install-test-deps.sh   # OpenMPI
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && cmake --build "$BUILD" -j2 --target kinfer >/dev/null
K=$BUILD/kinfer
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 SOURCE_DATE_EPOCH=1700000000
M=(mpirun --oversubscribe --mca btl tcp,self --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo
   -x SOURCE_DATE_EPOCH)
acc() { $K test "$1" "$DATA/dev.tsv" | awk '$1 == "P@1" {print $2}'; }

echo "# machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# date: $(date -u +%FT%TZ)  kinfer $(git rev-parse --short HEAD 2>/dev/null || echo '?')  $(mpirun --version | head -1)"
echo
echo "| run | sync every | wall s | CPU s (all ranks) | epochs s | records/s (epochs) | MB per rank per epoch | averagings (sparse) | MB per dense averaging | dev accuracy |"
echo "|---|---|---|---|---|---|---|---|---|---|"
T() { /usr/bin/time -f "%e %U %S" -o "$OUT/time" "$@"; read -r w u sy <"$OUT/time"; cpu=$(awk -v u="$u" -v s="$sy" 'BEGIN { print u + s }'); }
T $K train --input "$DATA/train.tsv" --output "$OUT/one.kinf" --threads 1 -q
echo "| one process, 1 thread (no MPI) | - | $w | $cpu | | | 0 | 0 | | $(acc "$OUT/one.kinf") |"
for se in $SYNCS; do
  for np in 1 2 4; do
    T "${M[@]}" -np "$np" $K train --input "$DATA/train.tsv" --output "$OUT/np$np-$se.kinf" --threads 1 \
      --sync-every "$se" 2>"$OUT/np$np-$se.log" || { tail "$OUT/np$np-$se.log"; exit 1; }
    # MPI: K ranks, R records/s in the epochs (Es), N averagings (S sparse), B MB per rank per
    # epoch averaged (all parameters: P MB per averaging)
    sed -n 's/^MPI: [0-9]* ranks, \([0-9]*\) records\/s in the epochs (\([0-9.]*\)s), \([0-9]*\) averagings (\([0-9]*\) sparse), \([0-9.]*\) MB .*all parameters: \([0-9.]*\) MB.*/\1 \2 \3 \4 \5 \6/p' \
      "$OUT/np$np-$se.log" | { read -r rps es n sp mb dense
      echo "| mpirun -np $np | $se | $w | $cpu | $es | $rps | $mb | $n ($sp) | $dense | $(acc "$OUT/np$np-$se.kinf") |"; }
  done
done
