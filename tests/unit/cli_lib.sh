# SPDX-License-Identifier: Apache-2.0
# cli_lib.sh -- sourced by the CLI test scripts: K (the kinfer binary), SRC (the source tree),
# T (a temporary directory removed at exit), ok/no counters, expect, and a closing
# "N passed, N failed" line from finish. Usage: . cli_lib.sh NAME
K=${KINFER_BIN:?KINFER_BIN is set by ctest}
SRC=${KINFER_SOURCE_DIR:?}
T=$(mktemp -d "/tmp/kinfer-${1:-cli}.XXXXXX")
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
no() { fail=$((fail + 1)); echo "not ok - $1"; [ -n "${2:-}" ] && echo "$2" | sed 's/^/#   /'; }
expect() { # name, want-exit, want-stderr-substring, command...
  local name=$1 want=$2 pat=$3; shift 3
  local out rc
  out=$("$@" 2>&1 >/dev/null); rc=$?
  if [ "$rc" -eq "$want" ] && { [ -z "$pat" ] || grep -qF -- "$pat" <<<"$out"; }; then ok "$name"; else no "$name (exit $rc)" "$out"; fi
}
finish() { # a run that checked nothing fails: it could not have failed otherwise
  echo "$pass passed, $fail failed"
  [ "$pass" -gt 0 ] || echo "not ok - no check ran"
  [ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
}
