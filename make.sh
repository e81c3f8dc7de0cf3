#!/bin/sh
# Bootstrap for a fresh Debian 12 machine: installs the Debian packages the project needs
# (make included), then runs `make` with the given targets, e.g. `./make.sh run`.
set -eu
cd "$(dirname "$0")"
sh scripts/install-deps.sh
exec make --no-print-directory "$@"
