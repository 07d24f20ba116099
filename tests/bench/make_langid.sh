#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make_langid.sh -- a short-text, many-language identification task from Debian's translation
# catalogs: the translated UI strings (msgstr) of the .mo files that a fixed list of Debian
# packages ships, labelled with the catalog's language. Benchmark data for the trainer's
# automatic feature choice (docs/training.md, docs/benchmarks.md); not used by the tests.
#
# Usage: tests/bench/make_langid.sh [OUTDIR]   (default ~/.cache/kinfer/langid)
# Writes OUTDIR/{train,dev,test}.tsv (label<TAB>text) and OUTDIR/README.txt (package versions,
# counts). The packages are fetched with `apt-get download` (no install) into
# ~/.cache/kinfer/langid-debs; the same package versions give the same files (fixed seed).
set -euo pipefail
OUT=${1:-$HOME/.cache/kinfer/langid}
DEBS=$HOME/.cache/kinfer/langid-debs
PKGS="coreutils grep libglib2.0-data libgtk2.0-common libgdk-pixbuf2.0-common at-spi2-common
      libpam-runtime shared-mime-info xdg-user-dirs gsettings-desktop-schemas packagekit"
mkdir -p "$OUT" "$DEBS"
for p in $PKGS; do
        ls "$DEBS/${p}"_*.deb >/dev/null 2>&1 || (cd "$DEBS" && apt-get download "$p")
done
X=$(mktemp -d /tmp/kinfer-langid.XXXXXX)
trap 'rm -rf "$X"' EXIT
for p in $PKGS; do
        f=$(ls "$DEBS/${p}"_*.deb | head -n 1)
        dpkg-deb -x "$f" "$X/root"
        echo "$(basename "$f")"
done >"$X/versions"
/usr/bin/python3 - "$X/root/usr/share/locale" "$OUT" "$X/versions" <<'PY'
import os, random, re, struct, sys

def mo_entries(path):
    """(msgid, msgstr) of a GNU .mo file; plural forms: the first of each."""
    data = open(path, "rb").read()
    if len(data) < 20:
        return
    magic = struct.unpack("<I", data[:4])[0]
    e = "<" if magic == 0x950412DE else ">"
    n, oo, to = struct.unpack(e + "III", data[8:20])
    for i in range(n):
        ol, oa = struct.unpack(e + "II", data[oo + 8 * i : oo + 8 * i + 8])
        tl, ta = struct.unpack(e + "II", data[to + 8 * i : to + 8 * i + 8])
        mid = data[oa : oa + ol].split(b"\0")[0].split(b"\4")[-1]  # drop msgctxt
        mstr = data[ta : ta + tl].split(b"\0")[0]
        try:
            yield mid.decode("utf-8"), mstr.decode("utf-8")
        except UnicodeDecodeError:
            continue
root, out, versions = sys.argv[1], sys.argv[2], sys.argv[3]
MIN_PER_LANG, MAX_PER_LANG, SEED = 300, 800, 20261202
by_lang = {}
for loc in sorted(os.listdir(root)):
    d = os.path.join(root, loc, "LC_MESSAGES")
    if not os.path.isdir(d):
        continue
    # the language: the locale's language code (pt_BR -> pt, sr@latin -> sr)
    lang = re.split(r"[_@.]", loc)[0]
    for mo in sorted(os.listdir(d)):
        if not mo.endswith(".mo"):
            continue
        for msgid, val in mo_entries(os.path.join(d, mo)):
            if not msgid or not val:
                continue  # the header, untranslated entries
            text = " ".join(val.replace("_", "").replace("&", "").split())
            if len(text) < 2 or text == " ".join(msgid.replace("_", "").split()):
                continue  # copied from the English source: not this language's text
            by_lang.setdefault(lang, set()).add(text)
rng = random.Random(SEED)
rows = []
kept = {}
for lang in sorted(by_lang):
    texts = sorted(by_lang[lang])
    if len(texts) < MIN_PER_LANG:
        continue
    rng.shuffle(texts)
    texts = texts[:MAX_PER_LANG]
    kept[lang] = len(texts)
    rows += [(lang, t) for t in texts]
rng.shuffle(rows)
n = len(rows)
cut = {"train": rows[: n * 8 // 10], "dev": rows[n * 8 // 10 : n * 9 // 10], "test": rows[n * 9 // 10 :]}
for name, part in cut.items():
    with open(os.path.join(out, name + ".tsv"), "w", encoding="utf-8") as f:
        for lang, t in part:
            f.write(f"{lang}\t{t}\n")
chars = sum(len(t) for _, t in rows) / max(n, 1)
with open(os.path.join(out, "README.txt"), "w") as f:
    f.write("langid: translated UI strings (msgstr) of Debian packages' .mo catalogs, label = language\n")
    f.write("built by tests/bench/make_langid.sh from:\n" + open(versions).read())
    f.write(f"{len(kept)} languages (>= {MIN_PER_LANG} distinct strings each, at most {MAX_PER_LANG} kept), "
            f"{n} records, mean {chars:.1f} characters; split 80/10/10 with seed {SEED}: "
            f"train {len(cut['train'])}, dev {len(cut['dev'])}, test {len(cut['test'])}\n")
print(open(os.path.join(out, "README.txt")).read(), end="")
PY
