#!/bin/sh
# Builds the sessiontoken image offline: the base image from Debian packages (cached, see
# make-base-image.sh), then deploy/container/Containerfile with podman.
#   deploy/container/build.sh [TAG]          -> localhost/sessiontoken:TAG (default: 0.1.0)
# BASE_IMAGE=debian:bookworm-slim deploy/container/build.sh  uses a registry's image instead.
set -eu
. "$(dirname "$0")/podman-env.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TAG=${1:-0.1.0}
BASE_IMAGE=${BASE_IMAGE:-localhost/debian:bookworm-slim}
case "$BASE_IMAGE" in
  localhost/*) sh "$ROOT/deploy/container/make-base-image.sh" "$BASE_IMAGE" ;;
esac
revision=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
start=$(date +%s)
podman build -f "$ROOT/deploy/container/Containerfile" \
  --ignorefile "$ROOT/deploy/container/Containerfile.dockerignore" \
  --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "VERSION=$TAG" \
  --build-arg "REVISION=$revision" --layers -t "localhost/sessiontoken:$TAG" "$ROOT"
echo "build.sh: localhost/sessiontoken:$TAG in $(( $(date +%s) - start )) s," \
  "$(podman image inspect --format '{{.Size}}' "localhost/sessiontoken:$TAG") bytes"
