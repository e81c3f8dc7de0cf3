#!/bin/sh
# Installs the Node.js client's dependencies (client/node/node_modules) exactly as locked in
# package-lock.json (dev dependencies express and typescript included: the tests need them).
# Idempotent and quiet when up to date (scripts/npm-ci.sh).
set -eu
DIR="$(cd "$(dirname "$0")" && pwd)"
exec sh "$DIR/../../scripts/npm-ci.sh" "$DIR" "client/node/install.sh"
