#!/usr/bin/env bash
# Step-level batching, measured: onereward-server with batching on (--max-batch-rows 16)
# and off (--max-batch-rows 2: one true-CFG job at a time), driven by onereward-client bench.
#
#   scripts/bench-service.sh [BUILD_DIR]      (default: build/)
#
# Writes one JSON report per run and a Markdown table to BUILD_DIR/bench-service/.
# Runs (the docs/benchmarks.md table):
#   tiny pipeline, 64x64 and 256x256, 20 steps, concurrency 1, 4 and 8
#   bench pipeline, 256x256, 4 steps, 8 jobs, concurrency 1 and 4
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
B="${1:-$ROOT/build}"
OUT="$B/bench-service"
ENGINE="$B/engine/tools/onereward-engine"
SERVER="$B/server/onereward-server"
CLIENT="$B/client/onereward-client"
TINY_REQUESTS="${TINY_REQUESTS:-24}"
mkdir -p "$OUT"

model() {  # preset -> pipeline dir
  local dir="$B/$1-pipeline"
  [[ -f "$dir/model_index.json" ]] || "$ENGINE" make-tiny --out "$dir" --preset "$1" --seed 0 >&2
  echo "$dir"
}

SERVER_PID=""
stop_server() {
  if [[ -n "$SERVER_PID" ]]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap stop_server EXIT

start_server() {  # model rows
  rm -f "$OUT/ports.json"
  "$SERVER" --model "$1" --listen 127.0.0.1:0 --metrics-listen "" --max-batch-rows "$2" \
    --queue-capacity 256 --port-file "$OUT/ports.json" --log-level warn >"$OUT/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 600); do
    [[ -f "$OUT/ports.json" ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$OUT/server.log" >&2; exit 1; }
    sleep 0.1
  done
  PORT=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grpc_port"])' "$OUT/ports.json")
}

run() {  # name preset size steps concurrency requests rows
  local name="$1" preset="$2" size="$3" steps="$4" conc="$5" reqs="$6" rows="$7"
  start_server "$(model "$preset")" "$rows"
  echo "== $name: $preset ${size} steps=$steps concurrency=$conc requests=$reqs max-batch-rows=$rows" >&2
  # One untimed request first, so every run starts warm.
  "$CLIENT" bench --target "127.0.0.1:$PORT" --requests 1 --sizes "$size" --steps "$steps" >/dev/null 2>&1
  "$CLIENT" bench --target "127.0.0.1:$PORT" --concurrency "$conc" --requests "$reqs" --sizes "$size" \
    --steps "$steps" --seed 1 --json "$OUT/$name.json" >/dev/null 2>"$OUT/$name.progress"
  stop_server
}

for size in 64x64 256x256; do
  for conc in 1 4 8; do
    for mode in on off; do
      rows=16; [[ $mode == off ]] && rows=2
      run "tiny-$size-c$conc-$mode" tiny "$size" 20 "$conc" "$TINY_REQUESTS" "$rows"
    done
  done
done
for conc in 1 4; do
  for mode in on off; do
    rows=16; [[ $mode == off ]] && rows=2
    run "bench-256x256-c$conc-$mode" bench 256x256 4 "$conc" 8 "$rows"
  done
done

/usr/bin/python3 - "$OUT" <<'PY' | tee "$OUT/table.md"
import json, os, sys
out = sys.argv[1]
rows = []
def load(n):
    with open(os.path.join(out, n + ".json")) as f:
        return json.load(f)
print("| pipeline | size | steps | concurrency | batching | req/s | p50 ms | p90 ms | p99 ms | queue p50 ms | errors | on/off |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
cases = [("tiny", s, 20, c) for s in ("64x64", "256x256") for c in (1, 4, 8)] + [("bench", "256x256", 4, c) for c in (1, 4)]
for preset, size, steps, c in cases:
    r = {m: load("%s-%s-c%d-%s" % (preset, size, c, m)) for m in ("on", "off")}
    for m in ("on", "off"):
        j = r[m]
        tput = j["requests"]["ok"] / j["duration_s"]
        ratio = ""
        if m == "on":
            off = r["off"]["requests"]["ok"] / r["off"]["duration_s"]
            ratio = "%.2fx" % (tput / off if off else float("nan"))
        lat, q = j["latency_ms"], j["queue_wait_ms"]
        print("| %s | %s | %d | %d | %s | %.2f | %.0f | %.0f | %.0f | %.0f | %d | %s |" % (
            preset, size, steps, c, m, tput, lat["p50"], lat["p90"], lat["p99"], q["p50"], j["requests"]["errors"], ratio))
PY
