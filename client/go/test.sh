#!/bin/sh
# Runs `go test` on client/go offline, from Debian's Go packages (see gopath.sh):
#   client/go/test.sh OUT_DIR [go test arguments...]      e.g. ... sessiontoken/session
# OUT_DIR holds this run's GOPATH; GOCACHE (the compiled grpc-go) is kept in
# OUT_DIR/../cache when not set, so that several runs share it.
set -eu
out=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
cache=${GOCACHE:-}
eval "$("$here/gopath.sh" "$out")"
if [ -n "$cache" ]; then GOCACHE=$cache; else GOCACHE=$(cd "$out/.." && pwd)/cache; fi
export GOCACHE
export SESSIONTOKEN_VECTORS="${SESSIONTOKEN_VECTORS:-$here/../../tests/vectors/native_v1.json}"
cd "$out/src/sessiontoken"
if [ "${1:-}" = "--lint" ]; then  # gofmt and go vet on every package
  bad=$(gofmt -l "$here")
  [ -z "$bad" ] || { echo "gofmt: not formatted: $bad" >&2; exit 1; }
  exec go vet sessiontoken sessiontoken/session sessiontoken/sessiontest
fi
exec go test -count=1 "$@"
