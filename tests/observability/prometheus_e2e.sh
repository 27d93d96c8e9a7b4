#!/usr/bin/env bash
# End to end with a real Prometheus server: onereward-server on a tiny pipeline, scraped
# every second by Prometheus; fill requests (successful and invalid) sent with
# onereward-client; then Prometheus's HTTP API must report what was sent, promtool must
# accept the live /metrics, and the server's JSON log must hold one line per request.
#
#   prometheus_e2e.sh --server BIN --client BIN --engine BIN --examples DIR
#
# Needs: prometheus and promtool (Debian package prometheus), curl, /usr/bin/python3.
set -euo pipefail

SERVER="" CLIENT="" ENGINE="" EXAMPLES=""
while (($#)); do
  case "$1" in
    --server) SERVER="$2"; shift 2 ;;
    --client) CLIENT="$2"; shift 2 ;;
    --engine) ENGINE="$2"; shift 2 ;;
    --examples) EXAMPLES="$2"; shift 2 ;;
    *) echo "usage: $0 --server BIN --client BIN --engine BIN --examples DIR" >&2; exit 2 ;;
  esac
done
PY=/usr/bin/python3  # the system interpreter (standard library only)

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

for bin in "$SERVER" "$CLIENT" "$ENGINE"; do
  [[ -x "$bin" ]] || fail "not an executable: '$bin'"
done
[[ -f "$EXAMPLES/fill_image.png" && -f "$EXAMPLES/fill_mask.png" ]] || fail "no example images in '$EXAMPLES'"
for tool in prometheus promtool curl; do
  command -v "$tool" >/dev/null || fail "$tool not on PATH (Debian packages: prometheus, curl)"
done
[[ -x "$PY" ]] || fail "$PY missing"

WORK="$(mktemp -d /tmp/onereward-prom-e2e.XXXXXX)"
SERVER_PID="" PROM_PID=""
cleanup() {
  local rc=$?
  for pid in "$SERVER_PID" "$PROM_PID"; do
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for pid in "$SERVER_PID" "$PROM_PID"; do
    if [[ -n "$pid" ]]; then
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if ((rc != 0)); then
    echo "--- server log (tail) ---" >&2
    tail -n 40 "$WORK/server.log" >&2 2>/dev/null || true
    echo "--- prometheus log (tail) ---" >&2
    tail -n 20 "$WORK/prometheus.log" >&2 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# 1. Tiny pipeline.
"$ENGINE" make-tiny --out "$WORK/model" --preset tiny --seed 0 >"$WORK/make-tiny.log" 2>&1 ||
  { cat "$WORK/make-tiny.log" >&2; fail "make-tiny"; }

# 2. Server on free ports; the port file appears once it is serving.
"$SERVER" --model "$WORK/model" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
  --port-file "$WORK/ports.json" --log-format json >"$WORK/server.out" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 600); do
  [[ -s "$WORK/ports.json" ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || fail "server exited before serving"
  sleep 0.2
done
[[ -s "$WORK/ports.json" ]] || fail "no port file after 120 s"
read -r GRPC_PORT METRICS_PORT < <("$PY" -c '
import json, sys
p = json.load(open(sys.argv[1]))
print(int(p["grpc_port"]), int(p["metrics_port"]))' "$WORK/ports.json") || fail "bad port file: $(cat "$WORK/ports.json")"
((GRPC_PORT > 0 && METRICS_PORT > 0)) || fail "ports: $(cat "$WORK/ports.json")"
echo "server: grpc 127.0.0.1:$GRPC_PORT, metrics 127.0.0.1:$METRICS_PORT"

# 3. Prometheus scraping the server every second.
PROM_PORT="$(free_port)"
cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: onereward
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ["127.0.0.1:$METRICS_PORT"]
EOF
promtool check config "$WORK/prometheus.yml" >/dev/null || fail "generated prometheus.yml rejected"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$WORK/prometheus.log" 2>&1 &
PROM_PID=$!
PROM="http://127.0.0.1:$PROM_PORT"
for _ in $(seq 150); do
  curl -sf "$PROM/-/ready" >/dev/null 2>&1 && break
  kill -0 "$PROM_PID" 2>/dev/null || fail "prometheus exited"
  sleep 0.2
done
curl -sf "$PROM/-/ready" >/dev/null || fail "prometheus not ready after 30 s"

# Sum of the values of an instant query ("none" when the result is empty).
query() {
  curl -sf -G "$PROM/api/v1/query" --data-urlencode "query=$1" | "$PY" -c '
import json, sys
r = json.load(sys.stdin)
if r.get("status") != "success":
    print("error"); sys.exit(0)
res = r["data"]["result"]
if not res:
    print("none")
else:
    v = sum(float(x["value"][1]) for x in res)
    print(int(v) if v == int(v) else v)'
}

# Polls until `query` equals the expected value (the next scrapes pick changes up).
expect_eq() {
  local expr="$1" want="$2" got=""
  for _ in $(seq 30); do
    got="$(query "$expr" || echo error)"
    [[ "$got" == "$want" ]] && { echo "ok: $expr == $want"; return 0; }
    sleep 1
  done
  fail "$expr = $got, expected $want"
}
expect_gt() {
  local expr="$1" min="$2" got=""
  for _ in $(seq 30); do
    got="$(query "$expr" || echo error)"
    if [[ "$got" != none && "$got" != error ]] && "$PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)' "$got" "$min"; then
      echo "ok: $expr = $got > $min"
      return 0
    fi
    sleep 1
  done
  fail "$expr = $got, expected > $min"
}

expect_eq 'up{job="onereward"}' 1
expect_eq 'onereward_model_ready{job="onereward"}' 1
# Nothing sent yet: the pre-created series read 0.
expect_eq 'sum(onereward_requests_total{task="fill",code="OK"})' 0
expect_eq 'sum(onereward_failures_total{reason="invalid"})' 0

# 4. Requests.
TARGET="127.0.0.1:$GRPC_PORT"
N_OK=0 N_INVALID=0
for prompt in "a boat" "a boat" "a red lighthouse"; do
  out="$WORK/fill_$N_OK.png"
  timeout 300 "$CLIENT" fill --target "$TARGET" --image "$EXAMPLES/fill_image.png" --mask "$EXAMPLES/fill_mask.png" \
    --prompt "$prompt" --steps 4 --out "$out" >"$WORK/client.log" 2>&1 ||
    { cat "$WORK/client.log" >&2; fail "fill '$prompt' failed"; }
  [[ -s "$out" ]] || fail "no output image $out"
  N_OK=$((N_OK + 1))
done
# Invalid: too many steps; fill without a mask.
if timeout 120 "$CLIENT" fill --target "$TARGET" --image "$EXAMPLES/fill_image.png" --mask "$EXAMPLES/fill_mask.png" \
  --prompt "a boat" --steps 1000 --out "$WORK/bad1.png" >"$WORK/client.log" 2>&1; then
  fail "--steps 1000 succeeded"
fi
grep -q INVALID_ARGUMENT "$WORK/client.log" || { cat "$WORK/client.log" >&2; fail "--steps 1000: no INVALID_ARGUMENT"; }
N_INVALID=$((N_INVALID + 1))
if timeout 120 "$CLIENT" fill --target "$TARGET" --image "$EXAMPLES/fill_image.png" \
  --prompt "a boat" --steps 4 --out "$WORK/bad2.png" >"$WORK/client.log" 2>&1; then
  fail "fill without --mask succeeded"
fi
grep -q INVALID_ARGUMENT "$WORK/client.log" || { cat "$WORK/client.log" >&2; fail "fill without mask: no INVALID_ARGUMENT"; }
N_INVALID=$((N_INVALID + 1))
echo "sent: $N_OK successful fills, $N_INVALID invalid"

# 5. What Prometheus scraped.
expect_eq 'sum(onereward_requests_total{task="fill",code="OK"})' "$N_OK"
expect_eq 'sum(onereward_requests_total{code="INVALID_ARGUMENT"})' "$N_INVALID"
expect_eq 'sum(onereward_requests_total)' "$((N_OK + N_INVALID))"
expect_eq 'sum(onereward_failures_total{reason="invalid"})' "$N_INVALID"
expect_eq 'sum(onereward_failures_total)' "$N_INVALID"
expect_eq 'onereward_model_ready{job="onereward"}' 1
expect_gt 'sum(onereward_step_duration_seconds_count)' 0
expect_gt 'sum(onereward_batch_rows_count)' 0
expect_gt 'sum(onereward_queue_wait_seconds_count)' "$((N_OK - 1))"
expect_gt 'sum(onereward_request_duration_seconds_count{task="fill"})' "$((N_OK - 1))"
expect_gt 'sum(onereward_stage_duration_seconds_count{stage="denoise"})' "$((N_OK - 1))"
expect_gt 'sum(onereward_prompt_cache_hits_total) + sum(onereward_prompt_cache_misses_total)' 0
expect_eq 'count(onereward_build_info{version!="unknown"})' 1
# The dashboard's kind of query works on real data.
expect_gt 'histogram_quantile(0.5, sum by (le) (rate(onereward_request_duration_seconds_bucket[1m])))' 0

# 6. promtool on the live exposition.
curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" >"$WORK/metrics.txt" || fail "GET /metrics"
promtool check metrics <"$WORK/metrics.txt" || fail "promtool check metrics rejected /metrics"
echo "ok: promtool check metrics"

# 7. The server's JSON log: every line an object; one request line per request.
"$PY" - "$WORK/server.log" "$N_OK" "$N_INVALID" <<'EOF'
import json, sys
path, n_ok, n_invalid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
requests = []
with open(path, encoding="utf-8") as f:
    for i, line in enumerate(f, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            sys.exit(f"FAIL: server log line {i} is not JSON ({e}): {line[:200]!r}")
        for key in ("ts", "level", "msg"):
            if key not in obj:
                sys.exit(f"FAIL: server log line {i} has no '{key}': {line[:200]!r}")
        if obj["msg"] == "request":
            requests.append(obj)
outcomes = [r.get("outcome") for r in requests]
if len(requests) != n_ok + n_invalid:
    sys.exit(f"FAIL: {len(requests)} request lines, expected {n_ok + n_invalid}: {outcomes}")
if outcomes.count("OK") != n_ok or outcomes.count("INVALID_ARGUMENT") != n_invalid:
    sys.exit(f"FAIL: outcomes {outcomes}, expected {n_ok} OK and {n_invalid} INVALID_ARGUMENT")
for r in requests:
    for key in ("request_id", "task", "size", "steps", "rows", "variant", "adapters", "queue_ms", "total_ms", "outcome"):
        if key not in r:
            sys.exit(f"FAIL: request line without '{key}': {r}")
    if r["outcome"] != "OK" and not r.get("message"):
        sys.exit(f"FAIL: failed request without message: {r}")
    if "prompt" in r or "negative_prompt" in r:
        sys.exit(f"FAIL: prompt logged at info level: {r}")
ok = [r for r in requests if r["outcome"] == "OK"]
if any(r["task"] != "fill" or r["steps"] != 4 for r in ok):
    sys.exit(f"FAIL: unexpected task/steps in {ok}")
if len({r["request_id"] for r in requests}) != len(requests):
    sys.exit("FAIL: request ids repeat")
print(f"ok: server log: {len(requests)} request lines ({n_ok} OK, {n_invalid} INVALID_ARGUMENT)")
EOF
if grep -q "a red lighthouse" "$WORK/server.log"; then
  fail "a prompt appears in the info-level log"
fi

echo "PASS: prometheus_e2e"
