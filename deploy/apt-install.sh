#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# apt-install.sh WHO PKG... -- apt-get install the Debian packages among PKG that are not
# installed yet; nothing (not even `apt-get update`) when all are. WHO names the caller in the
# one line it prints. The install-*deps.sh scripts are lists of packages handed to this one.
# Needs root (or sudo).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: apt-install.sh WHO PKG..." >&2; exit 2; }
who=$1; shift

missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "$who: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
