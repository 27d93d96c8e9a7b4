#!/usr/bin/env bash
# Smoke test of the image scripts/build-image.sh built, without a Docker engine (as root):
# starts the image's entrypoint with `buildah run` (chroot isolation, the host's network)
# as the image's unprivileged user, on the embedded tiny pipeline, and from outside the
# container, with this repository's onereward-client:
#   1. health: the overall service and onereward.v1.ImageFill are SERVING;
#   2. one fill job returns a PNG;
#   3. /metrics reports the model ready and the finished request;
#   4. SIGTERM during a job: the job completes, the server exits 0.
#
#   scripts/test-image.sh [--image NAME] [--client PATH]
#
# Environment: IMAGE (default localhost/onereward-serve:cpu), CLIENT (default
# build/client/onereward-client, built first when missing), BUILDAH_ROOT (as for
# build-image.sh), READY_TIMEOUT (seconds to wait for SERVING, default 300).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGE="${IMAGE:-localhost/onereward-serve:cpu}"
CLIENT="${CLIENT:-$ROOT/build/client/onereward-client}"
READY_TIMEOUT="${READY_TIMEOUT:-300}"
IMAGE_UID=10001

while (($#)); do
  case "$1" in
    --image) IMAGE="$2"; shift 2 ;;
    --client) CLIENT="$2"; shift 2 ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "test-image: unknown argument $1" >&2; exit 2 ;;
  esac
done

log() { printf '[test-image %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

[[ $EUID -eq 0 ]] || die "run as root (buildah's chroot isolation needs it)"
if ! command -v buildah >/dev/null; then
  log "installing buildah"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends buildah >/dev/null
fi
BUILDAH=(buildah --storage-driver vfs)
if [[ -n "${BUILDAH_ROOT:-}" ]]; then
  BUILDAH+=(--root "$BUILDAH_ROOT")
fi
"${BUILDAH[@]}" inspect --type image "$IMAGE" >/dev/null 2>&1 ||
  die "no image $IMAGE in buildah's storage: run scripts/build-image.sh first"

if [[ ! -x "$CLIENT" ]]; then
  log "building onereward-client (not found at $CLIENT)"
  bash "$ROOT/scripts/setup.sh" install
  cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$ROOT/build" -j "$(nproc)" --target onereward-client
  CLIENT="$ROOT/build/client/onereward-client"
fi

t0=$SECONDS
work="$(mktemp -d /tmp/onereward-image-test.XXXXXX)"
# The server writes its port file here (bind-mounted); the image's user must be able to.
mkdir -p "$work/run"
chmod 0777 "$work/run"
ctr=""
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  if [[ -n "$ctr" ]]; then
    "${BUILDAH[@]}" rm "$ctr" >/dev/null 2>&1 || true
  fi
  if [[ "${KEEP_WORK:-0}" != 1 ]]; then rm -rf "$work"; fi
}
trap cleanup EXIT

ctr="$("${BUILDAH[@]}" from --pull=never --name "onereward-test-$$" "$IMAGE")"
log "container $ctr from $IMAGE ($((SECONDS - t0)) s)"
t_start=$SECONDS

# Two free loopback ports (nothing answers on them).
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
}
grpc_port="$(free_port)"
metrics_port="$(free_port)"
while [[ "$metrics_port" == "$grpc_port" ]]; do metrics_port="$(free_port)"; done

# The image's entrypoint with its config file (/etc/onereward/server.json) and the tiny
# pipeline: variables and arguments override the config, as in a deployment. The server
# writes the port file once it is SERVING.
"${BUILDAH[@]}" run --isolation chroot --network host --user "$IMAGE_UID:$IMAGE_UID" \
  --volume "$work/run:/run/onereward-test" \
  --env HOME=/tmp \
  --env ONEREWARD_MODEL=/opt/onereward/models/tiny \
  --env ONEREWARD_DEVICE=cpu \
  --env ONEREWARD_THREADS=2 \
  --env ONEREWARD_DRAIN_GRACE=20 \
  --env ONEREWARD_LOG_FORMAT=text \
  "$ctr" -- /opt/onereward/bin/onereward-entrypoint \
  --listen "127.0.0.1:$grpc_port" --metrics-listen "127.0.0.1:$metrics_port" \
  --port-file /run/onereward-test/ports.json \
  > "$work/server.log" 2>&1 &
runner_pid=$!

# The server process itself (a descendant of `buildah run`), for the SIGTERM at the end.
find_server() {
  local pids=("$runner_pid") p c
  while ((${#pids[@]})); do
    p="${pids[0]}"
    pids=("${pids[@]:1}")
    if [[ "$(cat "/proc/$p/comm" 2>/dev/null)" == onereward-serv* ]]; then
      echo "$p"
      return 0
    fi
    for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do pids+=("$c"); done
  done
  return 1
}

log "waiting for the server (up to ${READY_TIMEOUT} s)"
deadline=$((SECONDS + READY_TIMEOUT))
until [[ -s "$work/run/ports.json" ]]; do
  if ! kill -0 "$runner_pid" 2>/dev/null; then
    tail -n 40 "$work/server.log" >&2
    die "the server exited before serving"
  fi
  ((SECONDS < deadline)) || { tail -n 40 "$work/server.log" >&2; die "not serving after ${READY_TIMEOUT} s"; }
  sleep 1
done
t_ready=$((SECONDS - t_start))
server_pid="$(find_server)" || die "cannot find the server process"
ports="$(tr -d ' \n' < "$work/run/ports.json")"
[[ "$ports" == *"\"grpc_port\":$grpc_port"* ]] || die "port file $ports does not name gRPC port $grpc_port"
target="127.0.0.1:$grpc_port"
log "serving on $target (metrics :$metrics_port) after ${t_ready} s; server pid $server_pid"

# 1. health
"$CLIENT" health --target "$target" || die "overall health is not SERVING"
"$CLIENT" health --target "$target" --service onereward.v1.ImageFill || die "onereward.v1.ImageFill is not SERVING"
log "health: SERVING (overall and onereward.v1.ImageFill)"

# 2. one fill job
t1=$SECONDS
"$CLIENT" fill --target "$target" --image "$ROOT/examples/fill_image.png" \
  --mask "$ROOT/examples/fill_mask.png" --prompt "a red boat on a calm lake" \
  --steps 4 --seed 7 --out "$work/fill.png" || die "the fill job failed"
[[ "$(head -c 8 "$work/fill.png" | od -An -tx1 | tr -d ' \n')" == 89504e470d0a1a0a ]] ||
  die "the fill result is not a PNG"
log "fill: $(stat -c %s "$work/fill.png") bytes of PNG in $((SECONDS - t1)) s"

# 3. metrics
fetch_metrics() {
  if command -v curl >/dev/null; then
    curl -fsS "http://127.0.0.1:$metrics_port/metrics"
  else
    exec 3<>"/dev/tcp/127.0.0.1/$metrics_port"
    printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    cat <&3
    exec 3<&-
  fi
}
metrics="$(fetch_metrics)" || die "cannot read /metrics"
grep -Eq '^onereward_model_ready(\{[^}]*\})? 1' <<<"$metrics" || die "/metrics: onereward_model_ready is not 1"
grep -Eq '^onereward_requests_total\{[^}]*code="OK"[^}]*\} [1-9]' <<<"$metrics" ||
  die "/metrics: no OK request counted"
log "metrics: model ready, the request counted"

# 4. drain on SIGTERM: a job running when SIGTERM arrives still completes, then the
#    server exits 0.
t2=$SECONDS
"$CLIENT" fill --target "$target" --image "$ROOT/examples/fill_image.png" \
  --mask "$ROOT/examples/fill_mask.png" --prompt "a lighthouse" \
  --steps 40 --seed 8 --out "$work/drained.png" > "$work/drained.log" 2>&1 &
job_pid=$!
deadline=$((SECONDS + 120))
until grep -q '^step 1/' "$work/drained.log" 2>/dev/null; do
  kill -0 "$job_pid" 2>/dev/null || { cat "$work/drained.log" >&2; die "the drain job ended before its first step"; }
  ((SECONDS < deadline)) || die "the drain job made no progress"
  sleep 0.2
done
kill -TERM "$server_pid"
job_rc=0
wait "$job_pid" || job_rc=$?
((job_rc == 0)) || { cat "$work/drained.log" >&2; die "the job running at SIGTERM failed ($job_rc)"; }
grep -q '^step 40/40' "$work/drained.log" || die "the job running at SIGTERM did not run all its steps"
rc=0
wait "$runner_pid" || rc=$?
server_pid=""
((rc == 0)) || { tail -n 20 "$work/server.log" >&2; die "the server exited $rc after SIGTERM"; }
log "SIGTERM: the running job finished, the server exited 0 after $((SECONDS - t2)) s"

log "PASS in $((SECONDS - t0)) s (server ready ${t_ready} s after start)"
