#!/bin/sh
# Generates the gRPC stubs of client/ruby (protoc + grpc_ruby_plugin, from Debian's
# protobuf-compiler and protobuf-compiler-grpc) into OUT_DIR, with a copy of the shared
# service config: OUT_DIR/sessiontoken/v1/*_pb.rb and OUT_DIR/sessiontoken/service_config.json.
#   client/ruby/generate.sh OUT_DIR       (`rake generate` runs it with OUT_DIR=lib)
# Generated files are never committed.
set -eu
out=$1
here=$(cd "$(dirname "$0")" && pwd)
proto_root=$(cd "$here/../../proto" && pwd)
plugin=$(command -v grpc_ruby_plugin || true)
[ -n "$plugin" ] || { echo "generate.sh: grpc_ruby_plugin not found (Debian: protobuf-compiler-grpc)" >&2; exit 1; }
mkdir -p "$out/sessiontoken"
protoc -I "$proto_root" --ruby_out="$out" --grpc_out="$out" --plugin=protoc-gen-grpc="$plugin" \
  "$proto_root"/sessiontoken/v1/common.proto "$proto_root"/sessiontoken/v1/tokens.proto \
  "$proto_root"/sessiontoken/v1/admin.proto
cp "$proto_root/sessiontoken/v1/service_config.json" "$out/sessiontoken/service_config.json"
