#!/usr/bin/env bash
# Build-stage helper: installs what the CMake build needs and prints the CMake arguments
# that select libtorch (to stdout, one per line).
#   - On a PyTorch image (python3 imports torch): the Debian/Ubuntu packages of
#     scripts/setup.sh except Debian's libtorch, and CMAKE_PREFIX_PATH pointing at the
#     bundled libtorch (torch.utils.cmake_prefix_path).
#   - Otherwise (Debian 12): scripts/setup.sh itself.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export DEBIAN_FRONTEND=noninteractive

if command -v python3 >/dev/null && prefix="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null)"; then
  # The package list of setup.sh (one source of truth), less Debian's libtorch.
  eval "$(sed -n '/^PACKAGES=(/,/^)/p' "$root/scripts/setup.sh")"
  pkgs=()
  for p in "${PACKAGES[@]}"; do
    case "$p" in libtorch*) ;; *) pkgs+=("$p") ;; esac
  done
  echo "build-deps: PyTorch at $prefix; installing ${pkgs[*]}" >&2
  apt-get update -qq
  unavailable=()
  for p in "${pkgs[@]}"; do
    apt-cache show "$p" >/dev/null 2>&1 || unavailable+=("$p")
  done
  if ((${#unavailable[@]})); then
    echo "build-deps: not packaged by this base image's distribution: ${unavailable[*]}" >&2
    echo "build-deps: pick a PyTorch devel image on a release that has them" >&2
    exit 1
  fi
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  echo "-DCMAKE_PREFIX_PATH=$prefix"
else
  echo "build-deps: no PyTorch; scripts/setup.sh install" >&2
  apt-get update -qq
  bash "$root/scripts/setup.sh" install >&2
fi
