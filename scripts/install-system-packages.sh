#!/bin/sh
# The test suite's tools that come from Debian rather than PyPI: Chromium (the docs site is
# checked in a real headless browser), docker-compose (the compose file is validated with
# `docker-compose config`; no Docker engine is needed for that) and Prometheus with promtool
# (deploy/prometheus/ is checked and its alerts evaluated by a real Prometheus). Installs only
# what is missing; the prometheus package starts no service where systemd does not run.
# With the argument `compose`, also what `make compose-test` runs the deployment with: podman
# (with runc, netavark and aardvark-dns) and mmdebstrap, which builds its base images.
set -eu
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v docker-compose >/dev/null 2>&1 || missing="$missing docker-compose"
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
if [ "${1:-}" = compose ]; then
    command -v podman >/dev/null 2>&1 || missing="$missing podman"
    command -v runc >/dev/null 2>&1 || missing="$missing runc"
    command -v mmdebstrap >/dev/null 2>&1 || missing="$missing mmdebstrap"
    [ -x /usr/lib/podman/netavark ] || missing="$missing netavark"
    [ -x /usr/lib/podman/aardvark-dns ] || missing="$missing aardvark-dns"
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
    run=""
elif command -v sudo >/dev/null 2>&1; then
    run="sudo"
else
    echo "the tests need the Debian packages:$missing; install them (apt-get install$missing) as root and run it again" >&2
    exit 1
fi
echo "installing Debian packages:$missing"
$run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null \
    || { $run apt-get update -q >/dev/null && $run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null; }
