# Sourced by the scripts in deploy/: podman's configuration for them. Uses
# deploy/container/containers.conf (runc, ulimits) unless CONTAINERS_CONF is already set or
# runc is missing.
if [ -z "${CONTAINERS_CONF:-}" ] && command -v runc >/dev/null 2>&1; then
  CONTAINERS_CONF="$(cd "$(dirname "$0")/.." && pwd)/container/containers.conf"
  export CONTAINERS_CONF
fi
