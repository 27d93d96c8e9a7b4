#!/usr/bin/env bash
# Renders deploy/k8s's overlays and checks them (check-manifests.js), with the npm
# packages of package-lock.json installed by `npm ci` into BUILD_DIR/npm (once per lock
# file version; the only step that needs the network).
#   run-manifest-tests.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src="${1:?usage: run-manifest-tests.sh SOURCE_DIR BUILD_DIR}"
bin="${2:?usage: run-manifest-tests.sh SOURCE_DIR BUILD_DIR}"
here="$src/tests/deploy"

for tool in node npm "${KUBECTL:-kubectl}"; do
  if ! command -v "$tool" >/dev/null; then
    echo "run-manifest-tests: $tool not found (scripts/setup.sh installs it)" >&2
    exit 1
  fi
done
if ! "${KUBECTL:-kubectl}" kustomize --help >/dev/null 2>&1; then
  echo "run-manifest-tests: '${KUBECTL:-kubectl} kustomize' is not available (kubectl >= 1.14 needed)" >&2
  exit 1
fi

npmdir="$bin/npm"
mkdir -p "$npmdir"
exec 9>"$npmdir/.lock"
flock 9
if [[ ! -d "$npmdir/node_modules" ]] || ! cmp -s "$here/package-lock.json" "$npmdir/package-lock.json"; then
  cp "$here/package.json" "$here/package-lock.json" "$npmdir/"
  rm -rf "$npmdir/node_modules"
  (cd "$npmdir" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
flock -u 9

echo "kubectl: $("${KUBECTL:-kubectl}" version --client 2>/dev/null | head -n1)"
ONEREWARD_SOURCE_DIR="$src" KUSTOMIZE_OUT="$bin/rendered" NODE_PATH="$npmdir/node_modules" \
  node --test "$here/check-manifests.js"
