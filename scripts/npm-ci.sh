#!/bin/sh
# Usage: npm-ci.sh DIR WHAT
# Installs DIR's npm dependencies (DIR/node_modules) exactly as locked in DIR's
# package-lock.json, from the npm registry; WHAT names them in messages. Idempotent and quiet
# when up to date: runs `npm ci` only when node_modules is missing or older than
# package.json/package-lock.json. Dev dependencies are included (the tests need them);
# install scripts are not run (no dependency needs one). Needs Node.js >= 18.
set -eu
DIR="$1"
WHAT="$2"
cd "$DIR"
STAMP="node_modules/.package-lock.json"   # written by npm at the end of every install

if [ -f "$STAMP" ] && [ ! package-lock.json -nt "$STAMP" ] && [ ! package.json -nt "$STAMP" ]; then
  exit 0
fi
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "$WHAT: $tool not found (scripts/install-deps.sh installs Node.js and npm)" >&2
    exit 1
  fi
done
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
  echo "$WHAT: Node.js $(node --version) is too old (>= 18 needed)" >&2
  exit 1
fi
echo "$WHAT: installing dependencies (npm ci)"
npm ci --no-audit --no-fund --include=dev --ignore-scripts --loglevel=error
touch "$STAMP"
