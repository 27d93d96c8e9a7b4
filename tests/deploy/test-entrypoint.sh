#!/usr/bin/env bash
# The image's entrypoint turns the config file, ONEREWARD_* variables and arguments into
# onereward-server flags, in that order of precedence (last wins), and ignores other
# variables (Kubernetes service links). A stand-in server prints its arguments.
set -euo pipefail
src="${1:?usage: test-entrypoint.sh SOURCE_DIR}"
entry="$src/deploy/image/entrypoint.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
printf '#!/bin/sh\nfor a in "$@"; do printf "%%s\\n" "$a"; done\n' > "$tmp/server"
chmod +x "$tmp/server"
echo '{"model":"/models/x"}' > "$tmp/server.json"

fail=0
check() {  # check NAME EXPECTED ACTUAL
  if [[ "$2" == "$3" ]]; then
    echo "ok - $1"
  else
    echo "not ok - $1"; echo "  expected: $(tr '\n' ' ' <<<"$2")"; echo "  actual:   $(tr '\n' ' ' <<<"$3")"
    fail=1
  fi
}
run() { env -i PATH="$PATH" ONEREWARD_SERVER_BIN="$tmp/server" "$@"; }

check "no configuration: no flags" "" "$(run bash "$entry")"
check "config file, variables, then arguments" \
"--config
$tmp/server.json
--listen
0.0.0.0:6000
--max-batch-rows
8
--drain-grace
30
--no-base
--variant
onereward=/m/a
--variant
onereward-dynamic=/m/b
--lora
object-removal=/m/l.safetensors
--listen
127.0.0.1:7000" \
"$(run ONEREWARD_CONFIG="$tmp/server.json" ONEREWARD_LISTEN=0.0.0.0:6000 ONEREWARD_MAX_BATCH_ROWS=8 \
  ONEREWARD_DRAIN_GRACE=30 ONEREWARD_NO_BASE=true ONEREWARD_NO_WARMUP=0 \
  ONEREWARD_VARIANTS="onereward=/m/a, onereward-dynamic=/m/b" ONEREWARD_LORAS="object-removal=/m/l.safetensors" \
  ONEREWARD_PORT=tcp://10.0.0.1:50051 ONEREWARD_SERVICE_HOST=10.0.0.1 \
  bash "$entry" --listen 127.0.0.1:7000)"
if run ONEREWARD_NO_BASE=maybe bash "$entry" >/dev/null 2>&1; then
  echo "not ok - a bad boolean is refused"; fail=1
else
  echo "ok - a bad boolean is refused"
fi
exit $fail
