#!/bin/sh
# Installs the deploy tests' npm packages (tests/deploy/node_modules: kubernetes-models,
# js-yaml) exactly as locked in package-lock.json. Idempotent and quiet when up to date.
set -eu
DIR="$(cd "$(dirname "$0")" && pwd)"
cd "$DIR"
STAMP="node_modules/.package-lock.json"
if [ -f "$STAMP" ] && [ ! package-lock.json -nt "$STAMP" ] && [ ! package.json -nt "$STAMP" ]; then
  exit 0
fi
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "tests/deploy/install.sh: $tool not found (scripts/install-deps.sh installs Node.js and npm)" >&2
    exit 1
  fi
done
echo "tests/deploy/install.sh: installing the manifest checks' dependencies (npm ci)"
npm ci --no-audit --no-fund --include=dev --ignore-scripts --loglevel=error
touch "$STAMP"
