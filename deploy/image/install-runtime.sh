#!/usr/bin/env bash
# Runtime-stage helper: installs the packages stage-runtime.sh listed, creates the
# unprivileged user the server runs as, and checks that every library resolves.
set -euo pipefail

uid="${1:-10001}"
export DEBIAN_FRONTEND=noninteractive
mapfile -t pkgs < /opt/onereward/runtime-packages.txt
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/log/apt /var/log/dpkg.log
ldconfig

if ! getent group onereward >/dev/null; then groupadd --gid "$uid" onereward; fi
if ! getent passwd onereward >/dev/null; then
  useradd --uid "$uid" --gid "$uid" --home-dir /tmp --no-create-home \
    --shell /usr/sbin/nologin onereward
fi
mkdir -p /models /etc/onereward

missing="$(ldd /opt/onereward/bin/onereward-server | grep 'not found' | grep -v -E 'libcuda\.so|libnvidia-' || true)"
if [[ -n "$missing" ]]; then
  echo "install-runtime: unresolved libraries:" >&2
  echo "$missing" >&2
  exit 1
fi
# Without a GPU at build time a binary that links the driver cannot start; skip it then.
if ! ldd /opt/onereward/bin/onereward-server | grep -q 'not found'; then
  /opt/onereward/bin/onereward-server --help >/dev/null
fi
