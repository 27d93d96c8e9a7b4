#!/usr/bin/env bash
# Build-stage helper: compiles onereward-server (and onereward-engine, to write the tiny
# pipeline), then lays out STAGE_DIR for the runtime stage: the server, the entrypoint,
# the runtime helper, the default config, the tiny pipeline and the server's libraries
# (stage-runtime.sh).
#   build.sh SOURCE_DIR BUILD_DIR STAGE_DIR CMAKE_ARGS_FILE
# Environment: JOBS (compile jobs), CMAKE_BUILD_TYPE.
set -euo pipefail
src="$1" build="$2" stage="$3" args_file="$4"
here="$src/deploy/image"

mapfile -t torch_args < "$args_file"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}" \
  -DONEREWARD_BUILD_TESTS=OFF "${torch_args[@]}"
cmake --build "$build" -j "${JOBS:-2}" --target onereward-server onereward-engine
if command -v ccache >/dev/null; then ccache --show-stats 2>/dev/null | head -n 8 || true; fi

install -D -m 0755 "$build/server/onereward-server" "$stage/opt/onereward/bin/onereward-server"
install -D -m 0755 "$here/entrypoint.sh" "$stage/opt/onereward/bin/onereward-entrypoint"
install -D -m 0755 "$here/install-runtime.sh" "$stage/opt/onereward/install-runtime.sh"
install -D -m 0644 "$here/server.json" "$stage/etc/onereward/server.json"
"$build/engine/tools/onereward-engine" make-tiny --out "$stage/opt/onereward/models/tiny" \
  --preset tiny --seed 0
chmod -R a+rX "$stage/opt/onereward/models"
"$here/stage-runtime.sh" "$stage" "$build/server/onereward-server"
