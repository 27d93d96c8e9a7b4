#!/usr/bin/env bash
# stage-runtime.sh STAGE_DIR BINARY...
#
# Build-stage helper: works out what the given binaries need at run time and lays it out
# under STAGE_DIR for the runtime stage (`COPY --from=build STAGE_DIR/ /`):
#   - every shared library owned by a Debian/Ubuntu package becomes a line of
#     STAGE_DIR/opt/onereward/runtime-packages.txt (installed by install-runtime.sh);
#   - every library no package owns (the libtorch bundled with a pip/conda PyTorch, its
#     CUDA wheels, anything else) is copied to the same absolute path, so the binaries'
#     RUNPATH still finds it, and its directory is listed in
#     STAGE_DIR/etc/ld.so.conf.d/onereward.conf. libtorch and the CUDA wheels dlopen
#     siblings (cuDNN engines, NVRTC): their whole directories are copied, and with a
#     wheel's torch/lib the nvidia/ tree beside it.
# The CUDA driver (libcuda.so.1, libnvidia-*) is not copied: the NVIDIA container runtime
# mounts the host's into the container.
set -euo pipefail

stage="$1"
shift
mkdir -p "$stage/opt/onereward" "$stage/etc/ld.so.conf.d"

declare -A packages=()
declare -A copy_dirs=()
declare -A copy_dirs_conf=()  # directories of single copied libraries

owner_of() {  # prints the package owning a file (any of its usrmerge/symlink spellings)
  local f="$1" c
  local candidates=("$f" "$(readlink -f "$f")")
  for c in "${candidates[@]}"; do
    case "$c" in
      /usr/lib/*) candidates+=("${c#/usr}") ;;
      /lib/*) candidates+=("/usr$c") ;;
    esac
  done
  for c in "${candidates[@]}"; do
    local line
    if line="$(dpkg-query -S "$c" 2>/dev/null | head -n1)" && [[ -n "$line" ]]; then
      line="${line%%: *}"      # "pkg:arch: /path" -> "pkg:arch"
      echo "${line%%,*}"
      return 0
    fi
  done
  return 1
}

for bin in "$@"; do
  while read -r name arrow path _; do
    [[ "$arrow" == "=>" ]] || continue
    if [[ "$path" == "not" ]]; then
      case "$name" in
        libcuda.so* | libnvidia-*) echo "stage-runtime: $name comes from the host driver" >&2; continue ;;
        *) echo "stage-runtime: $bin needs $name, which is not found" >&2; exit 1 ;;
      esac
    fi
    case "$name" in
      libcuda.so* | libnvidia-*) continue ;;
    esac
    if pkg="$(owner_of "$path")"; then
      packages["${pkg%%:*}"]=1
    else
      real="$(readlink -f "$path")"
      dir="$(dirname "$real")"
      case "$dir" in
        */torch/lib | */nvidia/*/lib)
          # libtorch and the CUDA wheels dlopen siblings: take the whole directory, and
          # with a wheel's torch/lib the nvidia/ tree beside it.
          copy_dirs["$dir"]=1
          if [[ "$dir" == */torch/lib && -d "${dir%/torch/lib}/nvidia" ]]; then
            copy_dirs["${dir%/torch/lib}/nvidia"]=1
          fi
          ;;
        *)
          # Any other unpackaged library: the file and the name it was found by.
          mkdir -p "$stage$dir" "$stage$(dirname "$path")"
          cp -a "$real" "$stage$real"
          [[ "$path" == "$real" ]] || cp -a "$path" "$stage$path"
          copy_dirs_conf["$(dirname "$path")"]=1
          ;;
      esac
    fi
  done < <(ldd "$bin")
done

printf '%s\n' "${!packages[@]}" | sort > "$stage/opt/onereward/runtime-packages.txt"
: > "$stage/etc/ld.so.conf.d/onereward.conf"
for dir in "${!copy_dirs[@]}"; do
  echo "stage-runtime: copying $dir" >&2
  mkdir -p "$stage$(dirname "$dir")"
  cp -a "$dir" "$stage$(dirname "$dir")/"
  if [[ "$(basename "$dir")" != nvidia ]]; then
    echo "$dir" >> "$stage/etc/ld.so.conf.d/onereward.conf"
  fi
done
for dir in "${!copy_dirs_conf[@]}"; do
  echo "$dir" >> "$stage/etc/ld.so.conf.d/onereward.conf"
done
echo "stage-runtime: packages: $(tr '\n' ' ' < "$stage/opt/onereward/runtime-packages.txt")" >&2
