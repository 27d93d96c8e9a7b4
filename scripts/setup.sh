#!/usr/bin/env bash
# onereward-serve set-up on Debian 12 (run as root).
#
#   scripts/setup.sh            install the Debian packages the project needs (idempotent,
#                               silent when everything is already there)
#   scripts/setup.sh build      + configure and build everything (build/)
#   scripts/setup.sh run        + build, make the embedded tiny pipeline and run one fill
#                               job on it with onereward-engine
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
)

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
  local model out
  model="$(tiny_model)"
  out="$BUILD_DIR/out"
  mkdir -p "$out"
  "$BUILD_DIR/engine/tools/onereward-engine" generate --model "$model" --task fill \
    --image "$ROOT/examples/fill_image.png" --mask "$ROOT/examples/fill_mask.png" \
    --prompt "a red boat on a calm lake" --steps 8 --seed 42 --out "$out/fill.png"
  echo "wrote $out/fill.png"
}

cmd="${1:-install}"
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
