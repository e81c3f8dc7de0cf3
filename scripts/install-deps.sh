#!/bin/sh
# Installs the Debian 12 packages sessiontoken needs to build, run and test.
# Idempotent and quiet when everything is already present. Needs root (or sudo).
set -eu

# Go client (client/go): grpc-go needs github.com/golang/protobuf 1.5 (the 1.3 package that apt
# would pick for golang-google-grpc-dev's alternative dependency cannot decode today's
# generated messages), so golang-github-golang-protobuf-1-5-dev is named explicitly.
# HTTP/JSON gateway: GNU libmicrohttpd with its GnuTLS (HTTPS, client certificates); the
# metrics listener keeps prometheus-cpp's civetweb.
# Ruby client (client/ruby): ruby-grpc; Rack, Sinatra, Rails (railties, actionpack) and Puma for
# its end-to-end tests.
PACKAGES="build-essential cmake make pkg-config git xz-utils dpkg-dev bash
  clang libclang-rt-14-dev
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev openssl binutils zlib1g-dev
  libcivetweb-dev libmicrohttpd-dev libgnutls28-dev
  etcd-server etcd-client
  prometheus-cpp-dev prometheus
  python3 python3-grpcio python3-protobuf python3-flask python3-itsdangerous
  python3-cryptography
  golang-go golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev
  protoc-gen-go protoc-gen-go-grpc
  ruby ruby-grpc ruby-google-protobuf ruby-rack ruby-sinatra puma ruby-minitest ruby-railties
  ruby-actionpack
  yamllint python3-yaml
  php-cli php-curl"

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
# Node.js and npm (Express client tests): any existing installation of Node.js >= 18 will do
# (a nodesource nodejs bundles npm and conflicts with Debian's npm package); otherwise
# Debian's (Node.js 18, npm 9: client/node supports and is tested on them).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing="$missing nodejs npm"
fi
# kubectl renders deploy/k8s (tests/deploy): any kubectl will do; otherwise Debian's
# kubernetes-client (kubectl 1.20, whose kustomize the manifests are written for too).
if ! command -v kubectl >/dev/null 2>&1; then
  missing="$missing kubernetes-client"
fi
[ -z "$missing" ] && exit 0

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null
