#!/bin/sh
# Makes the Debian 12 base image without a container registry: debootstrap (minbase) from
# this machine's Debian mirror, imported into podman as IMAGE (default
# localhost/debian:bookworm-slim). Cached: does nothing when IMAGE exists (--force remakes it).
# Needs root (debootstrap), podman and debootstrap. About a minute; ~205 MB.
set -eu
. "$(dirname "$0")/podman-env.sh"
IMAGE=localhost/debian:bookworm-slim
FORCE=0
for a in "$@"; do
  case "$a" in
    --force) FORCE=1 ;;
    *) IMAGE="$a" ;;
  esac
done
if [ "$FORCE" = 0 ] && podman image exists "$IMAGE"; then
  echo "make-base-image: $IMAGE exists (cached; --force to remake it)"
  exit 0
fi
for tool in podman debootstrap; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "make-base-image: $tool is missing (apt-get install podman runc catatonit debootstrap)" >&2
    exit 2
  }
done
# The machine's own Debian mirror (deb822 sources first, then sources.list).
mirror=$(grep -h -m1 -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | head -n 1)
[ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
root=$(mktemp -d "${TMPDIR:-/var/tmp}/sessiontoken-base.XXXXXX")
trap 'rm -rf "$root"' EXIT
echo "make-base-image: debootstrap --variant=minbase bookworm from $mirror"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
  echo "make-base-image: debootstrap failed, see $root.log" >&2
  exit 1
}
rm -f "$root.log"
# As debian:bookworm-slim: no apt lists, no man pages.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
tar -C "$root" -c . | podman import --change 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
echo "make-base-image: $IMAGE ($(podman image inspect --format '{{.Size}}' "$IMAGE") bytes)"
