#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_docs.sh -- the documented examples, run as written: every ```sh block of README.md and
# docs/*.md that follows a line "<!-- test: NAME ... -->" is extracted and run by bash -e in a
# scratch directory (bash -e: a failing command fails the test; no pipefail, as in a terminal,
# so `... | head` is fine) that holds a `tests` link to the source tree's tests/ and has the kinfer
# under test first on the PATH (as `cmake --install` or the README's PATH line would), then
# its results are checked. One change is made to what is pasted: the dev broker's port 9092
# becomes a free port, so that several runs (both builds, other checkouts) can share the
# machine. Whatever a block leaves running is stopped (it runs in its own process group).
set -u
. "$(dirname "$0")/cli_lib.sh" docs
mkdir -p "$T/bin"
ln -s "$(cd "$(dirname "$K")" && pwd)/$(basename "$K")" "$T/bin/kinfer"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# extract NAME FILE: the block after the marker, without its fences
extract() {
  awk -v name="$1" '
    $0 ~ "^<!-- test: " name "[ >]" { armed = 1; next }
    armed && /^```/ { if (inside) exit; inside = 1; next }
    inside { print }' "$2"
}

run_block() { # NAME FILE: run it in $T/NAME; sets $rc, output in $T/NAME.out/.err
  local name=$1 file=$2 dir=$T/$1 port
  mkdir -p "$dir"; ln -s "$SRC/tests" "$dir/tests"
  extract "$name" "$file" >"$dir/block.sh"
  if [ ! -s "$dir/block.sh" ]; then rc=99; echo "no block marked $name in $file" >"$T/$name.err"; return; fi
  port=$(free_port)
  sed -i -e "s/\b9092\b/$port/g" -e "s/kinfer dev-broker /kinfer dev-broker --port $port /" "$dir/block.sh"
  ( cd "$dir" && PATH="$T/bin:$PATH" exec setsid bash -e block.sh ) >"$T/$name.out" 2>"$T/$name.err" &
  local pid=$!
  # bounded: a block that hangs is stopped after 5 minutes (the quick starts take ~10 s)
  local waited=0
  while kill -0 $pid 2>/dev/null && [ $waited -lt 3000 ]; do sleep 0.1; waited=$((waited + 1)); done
  kill -- -$pid 2>/dev/null
  wait $pid; rc=$?
  kill -KILL -- -$pid 2>/dev/null
  [ $waited -ge 3000 ] && echo "the block ran over 5 minutes" >>"$T/$name.err"
}

# every marked block of README.md and docs/*.md has a check here
marked=$(grep -ho '^<!-- test: [a-z0-9-]*' "$SRC/README.md" "$SRC"/docs/*.md | sed 's/^<!-- test: //' | sort)
[ "$marked" = "$(printf '%s\n' readme-quickstart streaming-quickstart | sort)" ] && ok "marked blocks: $(echo $marked)" || no "marked blocks have no check here" "$marked"

# ---- README.md: train, predict, test, eval, predict --json ----
run_block readme-quickstart "$SRC/README.md"
out=$T/readme-quickstart.out
if [ $rc -eq 0 ]; then ok "README quick start runs"; else no "README quick start (exit $rc)" "$(tail -n 20 "$T/readme-quickstart.err")"; fi
[ -s "$T/readme-quickstart/model.kinf" ] && ok "README: train wrote model.kinf" || no "README: no model.kinf"
[ "$(grep -c $'^[^\t]*\t0\\.[0-9]*\t[^\t]*\t0\\.[0-9]*\t[^\t]*\t0\\.[0-9]*$' "$out")" -eq 3 ] && ok "README: predict ... 3 | head -n 3: three lines of 3 labels" || no "README: predict lines" "$(cat "$out")"
grep -q $'^N\t500$' "$out" && grep -Eq $'^P@1\t0\\.(7|8|9)[0-9]*$' "$out" && grep -Eq $'^R@1\t0\\.(7|8|9)' "$out" && ok "README: test prints N 500, P@1 and R@1 above 0.7" || no "README: test output" "$(cat "$out")"
grep -q $'^accuracy\t' "$out" && grep -q $'^macro_f1\t' "$out" && ok "README: eval prints accuracy and macro_f1" || no "README: eval output" "$(cat "$out")"
tail -n 1 "$out" | python3 -c 'import json, sys; d = json.loads(sys.stdin.read()); assert d["label"] == "python", d' 2>"$T/j.err" && ok "README: predict --json says python for a python module" || no "README: predict --json" "$(tail -n 1 "$out"; cat "$T/j.err")"

# ---- docs/streaming.md: dev broker, train, serve, wait for ready, produce, read 500 results ----
run_block streaming-quickstart "$SRC/docs/streaming.md"
d=$T/streaming-quickstart
if [ $rc -eq 0 ]; then ok "streaming quick start runs (serve and the broker exit 0 on SIGTERM)"; else no "streaming quick start (exit $rc)" "$(tail -n 20 "$T/streaming-quickstart.err"; tail -n 20 "$d/serve.log" 2>/dev/null)"; fi
grep -q "fac=WORKER ready partitions=4 model=model" "$d/serve.log" && ok "serve logged its readiness line" || no "no readiness line" "$(tail -n 20 "$d/serve.log")"
python3 - "$d/results.jsonl" "$SRC/tests/data/sections-dev.tsv" <<'PY' 2>"$T/py.err" && ok "500 JSON results, one per produced record, each with a label and a score" || no "streaming results" "$(cat "$T/py.err")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
n = sum(1 for l in open(sys.argv[2]) if l.strip())
assert len(rows) == n == 500, (len(rows), n)
assert sorted(r["id"] for r in rows) == sorted("r%d" % i for i in range(n)), "ids"
assert all(r["label"] and 0 < r["score"] <= 1 for r in rows)
PY
[ "$(head -n 2 "$d/results.jsonl")" = "$(tail -n 2 "$T/streaming-quickstart.out")" ] && ok "head -n 2 results.jsonl printed two results" || no "the block's output" "$(cat "$T/streaming-quickstart.out")"
# ---- README.md: `cmake --install build` puts everything in standard places ----
build=$(dirname "$K")
if [ -f "$build/cmake_install.cmake" ] && cmake --install "$build" --prefix "$T/prefix" >"$T/install.log" 2>&1; then
  ok "cmake --install --prefix DIR"
  for f in bin/kinfer share/man/man1/kinfer.1 share/kinfer/schemas/text_record.avsc \
           share/kinfer/schemas/classification.avsc share/kinfer/schemas/dead_letter.avsc \
           share/kinfer/migrations/0001_registry.sql lib/systemd/system/kinfer@.service \
           share/kinfer/kinfer.conf.example share/doc/kinfer/README.md share/doc/kinfer/streaming.md; do
    [ -e "$T/prefix/$f" ] || { no "installed $f" "$(find "$T/prefix" -type f | sed "s|$T/prefix/||" | sort)"; continue; }
  done
  ok "installed: kinfer, kinfer.1, schemas, migrations, kinfer@.service, example config, docs"
  "$T/prefix/bin/kinfer" --version | grep -q '^kinfer ' && ok "the installed kinfer runs" || no "the installed kinfer runs"
  [ "$(ls "$T/prefix/share/kinfer/migrations" | wc -l)" -eq "$(ls "$SRC/migrations"/*.sql | wc -l)" ] && ok "every migration installed" || no "migrations installed"
else
  no "cmake --install" "$(cat "$T/install.log" 2>/dev/null)"
fi
finish
