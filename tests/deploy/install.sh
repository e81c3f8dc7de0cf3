#!/bin/sh
# Installs the deploy tests' npm packages (tests/deploy/node_modules: kubernetes-models,
# js-yaml) exactly as locked in package-lock.json. Idempotent and quiet when up to date
# (scripts/npm-ci.sh).
set -eu
DIR="$(cd "$(dirname "$0")" && pwd)"
exec sh "$DIR/../../scripts/npm-ci.sh" "$DIR" "tests/deploy/install.sh"
