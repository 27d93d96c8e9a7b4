#!/usr/bin/env bash
# onereward-serve set-up on Debian 12 (run as root).
#
#   scripts/setup.sh            install the Debian packages the project needs (idempotent,
#                               silent when everything is already there)
#   scripts/setup.sh build      + configure and build everything (build/)
#   scripts/setup.sh run        + build, make the embedded tiny pipeline, start onereward-server
#                               on it (127.0.0.1:50051), fill one image through onereward-client
#                               and keep serving until Ctrl-C
#   scripts/setup.sh test       + build and run every test with ctest
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
JOBS="${JOBS:-$(nproc)}"

# Build toolchain and libraries. libopenblas0-pthread replaces the reference BLAS that
# libtorch would otherwise use (about 25x slower matmuls).
PACKAGES=(
  build-essential cmake ccache pkg-config
  libtorch-dev libopenblas0-pthread
  nlohmann-json3-dev libcli11-dev libspdlog-dev
  libicu-dev
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
  libgtest-dev
  # gRPC service, client and metrics
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc prometheus-cpp-dev
)

# Test peers (only for `test`): a real Prometheus (and promtool), Python's grpcio as a
# foreign client, curl; kubectl renders the Kubernetes manifests and Node.js validates them
# against the API schemas (Debian's packages unless the machine has other builds of them).
TEST_PACKAGES=(prometheus python3-grpcio curl)

command -v kubectl >/dev/null 2>&1 || TEST_PACKAGES+=(kubernetes-client)
command -v node >/dev/null 2>&1 || TEST_PACKAGES+=(nodejs npm)

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() {
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD_DIR" -j "$JOBS"
}

tiny_model() {
  local dir="$BUILD_DIR/tiny-pipeline"
  if [[ ! -f "$dir/model_index.json" ]]; then
    "$BUILD_DIR/engine/tools/onereward-engine" make-tiny --out "$dir" --preset tiny --seed 0 >&2
  fi
  echo "$dir"
}

run_main() {
  local model out listen="${ONEREWARD_LISTEN:-127.0.0.1:50051}"
  model="$(tiny_model)"
  out="$BUILD_DIR/out"
  mkdir -p "$out"
  rm -f "$out/ports.json"
  "$BUILD_DIR/server/onereward-server" --model "$model" --listen "$listen" \
    --metrics-listen "${ONEREWARD_METRICS_LISTEN:-127.0.0.1:9464}" --port-file "$out/ports.json" &
  local pid=$!
  trap 'kill -TERM $pid 2>/dev/null; wait $pid' INT TERM
  for _ in $(seq 600); do
    [[ -f "$out/ports.json" ]] && break
    kill -0 "$pid" 2>/dev/null || { echo "setup: the server did not start" >&2; exit 1; }
    sleep 0.1
  done
  local C="$BUILD_DIR/client/onereward-client"
  "$C" fill --target "$listen" --image "$ROOT/examples/fill_image.png" --mask "$ROOT/examples/fill_mask.png" \
    --prompt "a red boat on a calm lake" --steps 8 --seed 42 --out "$out/fill.png"
  cat >&2 <<EOT

onereward-server is serving the embedded tiny pipeline on $listen (metrics: http://${ONEREWARD_METRICS_LISTEN:-127.0.0.1:9464}/metrics).
It just filled examples/fill_image.png -> $out/fill.png. Call it yourself, from another shell:
  $C health --target $listen
  $C info --target $listen
  $C fill --target $listen --image examples/fill_image.png --mask examples/fill_mask.png --prompt "a cat" --steps 20 --out /tmp/fill.png
  $C extend --target $listen --image examples/fill_image.png --extend 32,0,32,0 --steps 20 --out /tmp/extend.png
  $C bench --target $listen --concurrency 4 --requests 16 --steps 20
Ctrl-C stops the server (it drains first).
EOT
  wait "$pid"
}

cmd="${1:-install}"
[[ "$cmd" == test ]] && PACKAGES+=("${TEST_PACKAGES[@]}")
install_packages
case "$cmd" in
  install) ;;
  build) build ;;
  run) build && run_main ;;
  test)
    build
    cd "$BUILD_DIR" && ctest --output-on-failure -j "$JOBS" --timeout 1200
    ;;
  *)
    echo "usage: $0 [install|build|run|test]" >&2
    exit 2
    ;;
esac
