#!/usr/bin/env bash
# Builds the CPU container image from the repository's Dockerfile without a Docker engine
# or a registry (Debian 12, as root):
#   1. debootstrap a minimal Debian 12 root file system from this machine's apt mirror and
#      import it into buildah's local storage as the base image;
#   2. `buildah build` the Dockerfile with that image as BASE_IMAGE and RUNTIME_IMAGE.
# buildah runs with the vfs storage driver and chroot isolation, which work without
# overlayfs, user namespaces or a container runtime.
#
#   scripts/build-image.sh [--tag NAME] [--rebuild-base] [--oci-archive FILE]
#
# Environment: IMAGE (default localhost/onereward-serve:cpu), BASE_IMAGE_NAME (default
# localhost/onereward-base:bookworm), MIRROR / SECURITY_MIRROR (default: this machine's
# Debian sources), WORK_DIR (default /var/tmp/onereward-image), JOBS (compile jobs,
# default nproc), BUILDAH_ROOT (buildah storage root; default buildah's own).
# The result stays in buildah's storage: `buildah --storage-driver vfs images`; push it
# with `buildah --storage-driver vfs push IMAGE docker://REGISTRY/...`, or write an OCI
# archive with --oci-archive for `skopeo copy`/`docker load`-style tools.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGE="${IMAGE:-localhost/onereward-serve:cpu}"
BASE_IMAGE_NAME="${BASE_IMAGE_NAME:-localhost/onereward-base:bookworm}"
WORK_DIR="${WORK_DIR:-/var/tmp/onereward-image}"
JOBS="${JOBS:-$(nproc)}"
SUITE=bookworm
REBUILD_BASE=0
OCI_ARCHIVE=""

while (($#)); do
  case "$1" in
    --tag) IMAGE="$2"; shift 2 ;;
    --rebuild-base) REBUILD_BASE=1; shift ;;
    --oci-archive) OCI_ARCHIVE="$2"; shift 2 ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "build-image: unknown argument $1" >&2; exit 2 ;;
  esac
done

log() { printf '[build-image %s] %s\n' "$(date +%T)" "$*" >&2; }

if [[ $EUID -ne 0 ]]; then
  echo "build-image: run as root (debootstrap and buildah's chroot isolation need it)" >&2
  exit 1
fi

# --- tools ---------------------------------------------------------------------------
missing=()
command -v buildah >/dev/null || missing+=(buildah)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

BUILDAH=(buildah --storage-driver vfs)
if [[ -n "${BUILDAH_ROOT:-}" ]]; then
  BUILDAH+=(--root "$BUILDAH_ROOT")
fi

# --- the Debian mirror this machine uses ----------------------------------------------
# First URI of a deb822 stanza (or a one-line entry) whose suites include $1.
mirror_for() {
  local suite="$1" f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    awk -v suite="$suite" '
      function flush() { if (uri != "" && has) { print uri; found = 1; exit } uri = ""; has = 0 }
      /^[[:space:]]*$/ { flush(); next }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) has = 1 }
      END { if (!found) flush() }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    awk -v suite="$suite" '{ sub(/\[[^]]*\]/, "") } $1 == "deb" && $3 == suite { print $2 }' "$f"
  done
}
MIRROR="${MIRROR:-$(mirror_for "$SUITE" | head -n1)}"
SECURITY_MIRROR="${SECURITY_MIRROR:-$(mirror_for "$SUITE-security" | head -n1)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${SECURITY_MIRROR:-http://deb.debian.org/debian-security}"

# --- 1. base image ----------------------------------------------------------------------
t0=$SECONDS
if ((REBUILD_BASE)) || ! "${BUILDAH[@]}" inspect --type image "$BASE_IMAGE_NAME" >/dev/null 2>&1; then
  rootfs="$WORK_DIR/rootfs"
  rm -rf "$rootfs"
  mkdir -p "$WORK_DIR"
  log "debootstrap $SUITE (minbase) from $MIRROR"
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$rootfs" "$MIRROR" \
    > "$WORK_DIR/debootstrap.log" 2>&1 || { tail -n 30 "$WORK_DIR/debootstrap.log" >&2; exit 1; }
  cat > "$rootfs/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
  # Image hygiene: no package caches, no daemons started by maintainer scripts.
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* "$rootfs"/tmp/*
  printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
  chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
  echo 'APT::Install-Recommends "false";' > "$rootfs/etc/apt/apt.conf.d/90onereward-no-recommends"

  log "importing the root file system as $BASE_IMAGE_NAME"
  tar -C "$rootfs" --numeric-owner -cf "$WORK_DIR/rootfs.tar" .
  ctr="$("${BUILDAH[@]}" from scratch)"
  "${BUILDAH[@]}" add "$ctr" "$WORK_DIR/rootfs.tar" / >/dev/null
  "${BUILDAH[@]}" config --cmd /bin/bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --label org.opencontainers.image.title="debian-$SUITE-minbase" "$ctr"
  "${BUILDAH[@]}" commit --rm "$ctr" "$BASE_IMAGE_NAME" >/dev/null
  rm -rf "$rootfs" "$WORK_DIR/rootfs.tar"
  log "base image ready ($((SECONDS - t0)) s)"
else
  log "base image $BASE_IMAGE_NAME present (--rebuild-base to make it again)"
fi

# --- 2. the image -----------------------------------------------------------------------
t1=$SECONDS
log "building $IMAGE from $ROOT/Dockerfile"
"${BUILDAH[@]}" build --isolation chroot --network host --format oci --layers \
  --build-arg BASE_IMAGE="$BASE_IMAGE_NAME" \
  --build-arg RUNTIME_IMAGE="$BASE_IMAGE_NAME" \
  --build-arg JOBS="$JOBS" \
  -f "$ROOT/Dockerfile" -t "$IMAGE" "$ROOT"
log "image built ($((SECONDS - t1)) s)"
"${BUILDAH[@]}" images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$IMAGE" >&2

if [[ -n "$OCI_ARCHIVE" ]]; then
  "${BUILDAH[@]}" push "$IMAGE" "oci-archive:$OCI_ARCHIVE:$IMAGE"
  log "wrote $OCI_ARCHIVE"
fi
log "done in $((SECONDS - t0)) s: $IMAGE"
