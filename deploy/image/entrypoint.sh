#!/usr/bin/env bash
# Container entrypoint: starts onereward-server with its flags taken, lowest precedence
# first, from
#   1. a JSON config file: $ONEREWARD_CONFIG, else /etc/onereward/server.json when present
#      (keys are the long flag names without dashes, e.g. {"max-batch-rows": 16});
#   2. environment variables ONEREWARD_<FLAG> (listed below; a name's dashes become
#      underscores, upper case), e.g. ONEREWARD_MAX_BATCH_ROWS=16;
#   3. the container's arguments, passed through unchanged.
# ONEREWARD_VARIANTS and ONEREWARD_LORAS hold NAME=PATH items separated by commas or
# spaces (one --variant / --lora each); ONEREWARD_NO_BASE, ONEREWARD_NO_WARMUP and
# ONEREWARD_NO_PREVIEWS take 1/true to set the flag.
# Only the variables named here are read: Kubernetes' service-link variables
# (ONEREWARD_PORT, ONEREWARD_SERVICE_HOST, ...) are ignored.
set -euo pipefail

SERVER="${ONEREWARD_SERVER_BIN:-/opt/onereward/bin/onereward-server}"
args=()

config="${ONEREWARD_CONFIG:-}"
if [[ -z "$config" && -f /etc/onereward/server.json ]]; then
  config=/etc/onereward/server.json
fi
if [[ -n "$config" ]]; then
  args+=(--config "$config")
fi

value_flags=(listen metrics-listen model default-variant device dtype threads
  prompt-cache-mib cpu-buffer-cache-mib queue-capacity max-batch-rows starvation-limit max-pixels max-steps
  max-images max-prompt-bytes max-message-mib min-preview-every drain-grace encode-threads
  port-file log-level log-format)
for flag in "${value_flags[@]}"; do
  var="ONEREWARD_$(tr 'a-z-' 'A-Z_' <<<"$flag")"
  if [[ -n "${!var:-}" ]]; then
    args+=("--$flag" "${!var}")
  fi
done

for flag in no-base no-warmup no-previews; do
  var="ONEREWARD_$(tr 'a-z-' 'A-Z_' <<<"$flag")"
  case "${!var:-}" in
    1 | true | TRUE | yes) args+=("--$flag") ;;
    "" | 0 | false | FALSE | no) ;;
    *) echo "entrypoint: $var must be 1/true or 0/false, not '${!var}'" >&2; exit 2 ;;
  esac
done

split_items() { tr ', ' '\n\n' <<<"$1" | sed '/^$/d'; }
if [[ -n "${ONEREWARD_VARIANTS:-}" ]]; then
  while read -r item; do args+=(--variant "$item"); done < <(split_items "$ONEREWARD_VARIANTS")
fi
if [[ -n "${ONEREWARD_LORAS:-}" ]]; then
  while read -r item; do args+=(--lora "$item"); done < <(split_items "$ONEREWARD_LORAS")
fi

exec "$SERVER" "${args[@]}" "$@"
