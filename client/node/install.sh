#!/bin/sh
# Installs the Node.js client's dependencies (client/node/node_modules) exactly as locked in
# package-lock.json, from the npm registry. Idempotent and quiet when up to date: runs
# `npm ci` only when node_modules is missing or older than package.json/package-lock.json.
# Dev dependencies (express, typescript) are included: the tests need them. Install
# scripts are not run (no dependency needs one).
set -eu

DIR="$(cd "$(dirname "$0")" && pwd)"
cd "$DIR"
STAMP="node_modules/.package-lock.json"   # written by npm at the end of every install

if [ -f "$STAMP" ] && [ ! package-lock.json -nt "$STAMP" ] && [ ! package.json -nt "$STAMP" ]; then
  exit 0
fi
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "client/node/install.sh: $tool not found (scripts/install-deps.sh installs Node.js and npm)" >&2
    exit 1
  fi
done
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
  echo "client/node/install.sh: Node.js $(node --version) is too old (>= 18 needed, see package.json)" >&2
  exit 1
fi
echo "client/node/install.sh: installing Node.js dependencies (npm ci)"
npm ci --no-audit --no-fund --include=dev --ignore-scripts --loglevel=error
touch "$STAMP"
