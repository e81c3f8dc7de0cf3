#!/bin/sh
# Fetches BoringSSL's Debian source package (android-platform-external-boringssl) into
# .cache/boringssl, verified by apt against the signed Debian index. No other download.
# The deb-src entry is derived from the machine's own apt sources; apt state lives in a
# scratch folder, so the machine's apt configuration is never changed.
set -eu

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="$ROOT/.cache/boringssl"
TREE="$CACHE/src-tree"
[ -f "$TREE/android-sources.cmake" ] && exit 0

mkdir -p "$CACHE"
S="$CACHE/apt"
mkdir -p "$S/parts" "$S/lists/partial" "$S/cache/archives/partial"

found=0
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  if grep -q '^Types:.*deb' "$f" && grep -q 'debian' "$f"; then
    sed 's/^Types: deb$/Types: deb-src/' "$f" > "$S/parts/$(basename "$f")"
    found=1
  fi
done
if [ -f /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list; then
  sed -n 's/^deb /deb-src /p' /etc/apt/sources.list > "$S/parts/main.list"
  found=1
fi
if [ "$found" = 0 ]; then
  echo "fetch-boringssl: no Debian apt sources found to derive a deb-src entry from" >&2
  exit 1
fi

O="-o APT::Sandbox::User=root -o Dir::Etc::sourcelist=/dev/null -o Dir::Etc::sourceparts=$S/parts \
   -o Dir::State::Lists=$S/lists -o Dir::Cache=$S/cache -o Debug::NoLocking=1"
echo "fetch-boringssl: downloading Debian source package android-platform-external-boringssl"
# shellcheck disable=SC2086
apt-get $O update -q >/dev/null
cd "$CACHE"
# shellcheck disable=SC2086
apt-get $O source --download-only -q android-platform-external-boringssl >/dev/null
orig="$(ls "$CACHE"/android-platform-external-boringssl_*.orig.tar.* | head -n 1)"
rm -rf "$TREE.tmp" && mkdir -p "$TREE.tmp"
tar -xf "$orig" -C "$TREE.tmp"
# The tarball may or may not have a top-level folder; normalise to TREE.
top="$(find "$TREE.tmp" -maxdepth 2 -name android-sources.cmake -printf '%h\n' | head -n 1)"
if [ -z "$top" ]; then
  echo "fetch-boringssl: android-sources.cmake not found in $orig" >&2
  exit 1
fi
rm -rf "$TREE"
mv "$top" "$TREE"
rm -rf "$TREE.tmp"
echo "fetch-boringssl: BoringSSL source ready in $TREE"
