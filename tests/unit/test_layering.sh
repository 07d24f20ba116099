#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_layering.sh -- the module rules of docs/architecture.md, checked against the sources:
#   1. each external library's header is included only from its module's folder;
#   2. abort()/exit() appear only in src/cli, and library code never writes to stdout;
#   3. module dependencies point only down the list below (includes of another module's
#      public header include/kinfer/<m>/ or private header src/<m>/);
#   4. an embedder that only classifies (tests/unit/embed_classify.c, linked with
#      kinfer_runtime alone) needs no library beyond libc, libm, pthread, utf8proc, OpenBLAS
#      and libcrypto, carries no model writer, and answers as `kinfer predict` does.
set -u
cd "${KINFER_SOURCE_DIR:?}"
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $*"; }
nok() { fail=$((fail + 1)); echo "not ok - $*"; }

# ---- the modules, bottom up, and what each may use ----------------------------------------
# (a module not listed here fails rule 3: add it with its place in the order)
declare -A DEPS=(
  [core]=""
  [text]="core"
  [model]="text core"
  [runtime]="model text core"
  [train]="runtime model text core"
  [codec]="core"
  [kafka]="core"
  [registry]="core"
  [http]="core"
  [worker]="http registry kafka codec runtime model text core"
  [cli]="worker http registry kafka codec train runtime model text core"
)
# external headers: a grep -E pattern of the include line -> the one folder that may include it
declare -A OWNER=(
  ['<librdkafka/']=kafka
  ['<avro[.]h>|<avro/']=codec
  ['<jansson[.]h>']=codec
  ['<libpq-fe[.]h>|<libpq/']=registry
  ['<cblas[.]h>|<openblas']=runtime
  ['<utf8proc[.]h>']=text
  ['<openssl/']=core
  ['<microhttpd[.]h>']=http
  ['<mpi[.]h>']=train
  ['<curl/']=codec
)

sources() { find src include -name '*.[ch]' | sort; }
module_of() { # path -> module name
  case "$1" in
    src/*) local p=${1#src/}; echo "${p%%/*}" ;;
    include/kinfer/*) local p=${1#include/kinfer/}; echo "${p%%/*}" ;;
  esac
}

# ---- 0. no source file outside a module folder --------------------------------------------
loose=$(find src include/kinfer -maxdepth 1 -name '*.[ch]' | sort | tr '\n' ' ')
if [ -z "$loose" ]; then ok "every source file lives in a module folder"
else nok "files outside a module folder: $loose"; fi
for d in src/*/; do
  m=$(basename "$d")
  if [ -n "${DEPS[$m]+x}" ]; then ok "module $m is in the dependency list"
  else nok "src/$m is not in the dependency list of tests/unit/test_layering.sh"; fi
done

# ---- 1. external headers --------------------------------------------------------------------
for pat in "${!OWNER[@]}"; do
  own=${OWNER[$pat]}
  bad=$(sources | xargs grep -lE "^#[[:space:]]*include[[:space:]]*($pat)" 2>/dev/null |
        while read -r f; do [ "$(module_of "$f")" = "$own" ] || echo "$f"; done | tr '\n' ' ')
  if [ -z "$bad" ]; then ok "$pat is included only from src/$own"
  else nok "$pat (owned by src/$own) is included by: $bad"; fi
done

# ---- 2. exit/abort and stdout only in the CLI -----------------------------------------------
lib=$(sources | grep -v '^src/cli/')
# shellcheck disable=SC2086
bad=$(grep -nE '\b(exit|_exit|abort|quick_exit)[[:space:]]*\(' $lib | grep -vE ':[[:space:]]*(/?\*|//)' || true)
if [ -z "$bad" ]; then ok "no exit()/abort() outside src/cli"
else nok "exit() or abort() outside src/cli:"; echo "$bad"; fi
# shellcheck disable=SC2086
bad=$(grep -nE '\bprintf\(|\bputs\(|\bputchar\(|fprintf\(stdout|fputs\([^;]*stdout|fwrite\([^;]*stdout' $lib |
      grep -vE ':[[:space:]]*(/?\*|//)' || true)
if [ -z "$bad" ]; then ok "library code never writes to stdout"
else nok "stdout in library code:"; echo "$bad"; fi

# ---- 3. dependencies point down ---------------------------------------------------------------
bad=""
while read -r f; do
  m=$(module_of "$f")
  [ -n "$m" ] || continue
  allowed=" $m ${DEPS[$m]:-} "
  for used in $(grep -oE '^#[[:space:]]*include[[:space:]]*"(kinfer/)?[a-z_]+/' "$f" |
                sed -E 's/.*"(kinfer\/)?//; s/\/$//' | sort -u); do
    [ -n "${DEPS[$used]+x}" ] || continue   # not a module (e.g. a test helper)
    case "$allowed" in *" $used "*) ;; *) bad="$bad $f->$used" ;; esac
  done
done < <(sources)
if [ -z "$bad" ]; then ok "every include points down the module list"
else nok "includes that point up or sideways:$bad"; fi

# ---- 4. the runtime's link line ------------------------------------------------------------
emb=${KINFER_EMBED_CLASSIFY:-}
if [ -z "$emb" ] || [ ! -x "$emb" ]; then
  nok "embed_classify not built (KINFER_EMBED_CLASSIFY=$emb)"
else
  needed=$(readelf -d "$emb" | sed -nE 's/.*\(NEEDED\).*\[(.*)\]/\1/p' | tr '\n' ' ')
  extra=""
  for lib in $needed; do
    case "$lib" in
      libc.so*|libm.so*|libpthread.so*|libutf8proc.so*|libopenblas*.so*|libblas.so*|libcrypto.so*) ;;
      libasan.so*|libubsan.so*|libtsan.so*|libgcc_s.so*|libstdc++.so*|ld-linux*) ;;  # sanitizer runtimes
      *) extra="$extra $lib" ;;
    esac
  done
  if [ -z "$extra" ]; then ok "an embedder needs only: $needed"
  else nok "an embedder that only classifies also needs:$extra"; fi
  writer=$(nm "$emb" 2>/dev/null | grep -E ' [TtWw] (kinfer_model_builder|kinfer_meta_derive|kinfer_model_save)' || true)
  if [ -z "$writer" ]; then ok "the embedder carries no model writer"
  else nok "the embedder links the model writer: $writer"; fi
  # and it is a real runtime: it answers as `kinfer predict` does
  if [ -n "${KINFER_BIN:-}" ]; then
    T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
    head -n 600 tests/data/sections-train.tsv >"$T/train.tsv"
    cut -f2 tests/data/sections-dev.tsv | head -n 50 >"$T/texts.txt"
    if "$KINFER_BIN" train -i "$T/train.tsv" -o "$T/m.kinf" -q >/dev/null 2>"$T/err" &&
       "$emb" "$T/m.kinf" <"$T/texts.txt" >"$T/emb.out" 2>>"$T/err" &&
       "$KINFER_BIN" predict "$T/m.kinf" "$T/texts.txt" >"$T/cli.out" 2>>"$T/err"; then
      if [ -s "$T/emb.out" ] && cmp -s <(cut -f1 "$T/emb.out") <(cut -f1 "$T/cli.out"); then
        ok "the embedder's labels equal kinfer predict's on 50 texts"
      else nok "the embedder disagrees with kinfer predict"; diff <(cut -f1 "$T/emb.out") <(cut -f1 "$T/cli.out") | head; fi
    else nok "embedder check could not run: $(cat "$T/err")"; fi
  fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
