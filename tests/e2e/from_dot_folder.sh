#!/bin/sh
# Runs the Node.js suites (client, Express journey, vectors) from a copy of the checkout that
# sits under a folder whose name starts with a dot (<tmp>/.dotdir/checkout), as a checkout in
# ~/.cache/src/... does: nothing may depend on where the repository lives.
#   from_dot_folder.sh NODE SOURCE_DIR   (SESSIONTOKEN_SERVER, SESSIONTOKEN_CLI as for node_e2e)
set -eu
node=$1
src=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sessiontoken-dot.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
dst="$tmp/.dotdir/checkout"
mkdir -p "$dst/client/node" "$dst/tests"
cp -R "$src/proto" "$dst/proto"
cp -R "$src/tests/vectors" "$dst/tests/vectors"
for f in "$src/client/node"/*; do
  case "$(basename "$f")" in
    node_modules) ln -s "$f" "$dst/client/node/node_modules" ;;  # installed deps, read-only
    *) cp -R "$f" "$dst/client/node/" ;;
  esac
done
cd "$dst/client/node"
"$node" --test test/
