#!/usr/bin/env bash
# Serving benchmark (issue 4): ATenSpace Serve's POST /infer vs in-process forward and vs a
# plain FastAPI + TorchScript server on the same model file, on this machine's CPU.
#
#   1. in-process: the Node binding and Python torch.jit, one call at a time, batch 1..32
#      (INPROC_ROUNDS rounds, half before and half after the servers; each figure's best round)
#   2. ours:       tiny model at concurrency 1 (service overhead), MiniLM-size BERT at 1, 8, 32
#   3. FastAPI:    the same BERT at 1, 8, 32, with a `def` handler (threadpool) and an `async def` one
#
# Writes bench/.work/serving-results.json and prints a Markdown summary (report.py).
# Everything listens on 127.0.0.1 only; servers started here are stopped on exit.
#
# Usage: bash bench/serving/run.sh
# Settings (environment): DURATION=8 WARMUP=2 (seconds per load point), INPROC_SECONDS=3
#   (per in-process batch size), INPROC_ROUNDS=2, THREADS=$(nproc) (intra-op threads for every runtime),
#   INSTANCES=1 MAX_QUEUE_DELAY_MS=0 (our server's batching), CPU_PROF=1 (write a V8 CPU
#   profile of our server under the BERT load to bench/.work/serving/prof/), QUIET_WAIT=60
#   (seconds to wait, before each part, for other processes to leave the CPUs idle). Other
#   server settings (WORKER_THREADS, ...) pass through from the environment.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION="${DURATION:-8}"
WARMUP="${WARMUP:-2}"
INPROC_SECONDS="${INPROC_SECONDS:-3}"
INPROC_ROUNDS="${INPROC_ROUNDS:-2}"
THREADS="${THREADS:-$(nproc)}"
INSTANCES="${INSTANCES:-1}"
MAX_QUEUE_DELAY_MS="${MAX_QUEUE_DELAY_MS:-0}"
CONCURRENCY=(1 8 32)
WORK=bench/.work/serving
MODELS="$WORK/models"
mkdir -p "$WORK"

[ -f "$MODELS/minilm/model.pt" ] && [ -f "$MODELS/tiny/model.pt" ] || python3 bench/serving/make_models.py "$MODELS"
[ dist/bench/serving/node-inprocess.js -nt bench/serving/node-inprocess.ts ] && [ -f dist/src/server/main.js ] || npm run build:ts

SERVER_PID=""
SERVER_LOG=""
# server_alive: fail loudly (exit status, log tail) when the server under test has gone away.
server_alive() {
  kill -0 "$SERVER_PID" 2>/dev/null && return 0
  local status=0
  wait "$SERVER_PID" 2>/dev/null || status=$?
  echo "the server (pid $SERVER_PID) exited with status $status; last lines of $SERVER_LOG:" >&2
  tail -n 20 "$SERVER_LOG" >&2
  SERVER_PID=""
  return 1
}
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
trap stop_server EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_ready URL: poll until it answers 200, for at most 2 minutes, while the server lives.
wait_ready() {
  for _ in $(seq 240); do
    curl -sf -o /dev/null "$1" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited during start-up (see $WORK/*.log)" >&2; return 1; }
    sleep 0.5
  done
  echo "server not ready after 2 minutes: $1" >&2
  return 1
}

# busy_percent: how busy the CPUs are over 2 s (all processes), 0-100.
busy_percent() {
  local a b
  a=($(head -1 /proc/stat)); sleep 2; b=($(head -1 /proc/stat))
  local idle=$(( b[4] + b[5] - a[4] - a[5] )) total=0 i
  for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
  echo $(( 100 - 100 * idle / (total > 0 ? total : 1) ))
}

# wait_quiet: this machine may be shared (tests, builds); wait up to QUIET_WAIT s for idle CPUs.
wait_quiet() {
  local busy deadline=$(( SECONDS + ${QUIET_WAIT:-60} ))
  while busy="$(busy_percent)"; [ "$busy" -gt 20 ] && [ "$SECONDS" -lt "$deadline" ]; do
    echo "waiting for idle CPUs ($busy% busy)" >&2
  done
  [ "$busy" -le 20 ] || echo "warning: CPUs still $busy% busy; figures will be noisy" >&2
}

# load LABEL BODY CONNECTIONS URL [METRICS_URL]: one load point, appended to load.jsonl. A point
# during which other processes used more than a quarter of a core is measured again (twice at most).
load() {
  local attempt other
  for attempt in 1 2 3; do
    wait_quiet
    server_alive || exit 1
    echo "load: $1 $2 concurrency $3 (attempt $attempt)" >&2
    timeout $((DURATION + WARMUP + 90)) node bench/serving/load.mjs --label "$1" --body "$2" --connections "$3" --url "$4" \
      ${5:+--metrics "$5"} --server-pid "$SERVER_PID" --duration "$DURATION" --warmup "$WARMUP" >"$WORK/point.json"
    other="$(python3 -c 'import json, sys; print(int(100 * ((json.load(open(sys.argv[1])).get("cpu_cores") or {}).get("other", 0))))' "$WORK/point.json")"
    [ "$other" -le 25 ] && break
    echo "other processes used $other% of a core during the point; measuring it again" >&2
  done
  cat "$WORK/point.json" >>"$WORK/load.jsonl"
}

cat /proc/loadavg >"$WORK/loadavg-start"
: >"$WORK/load.jsonl"

# 1. In-process ceilings, with no server running: half the rounds before the servers, half after,
#    so that a machine that drifts during the run does not flatter the servers (report.py keeps
#    each figure's best round).
inprocess_round() {
  wait_quiet
  echo "in-process round $1/$INPROC_ROUNDS: Node binding" >&2
  timeout 600 node dist/bench/serving/node-inprocess.js "$MODELS" "$THREADS" "$INPROC_SECONDS" >>"$WORK/inprocess-node.jsonl"
  wait_quiet
  echo "in-process round $1/$INPROC_ROUNDS: Python torch.jit" >&2
  timeout 600 python3 bench/serving/python_inprocess.py "$MODELS" "$THREADS" "$INPROC_SECONDS" >>"$WORK/inprocess-python.jsonl"
}
: >"$WORK/inprocess-node.jsonl"; : >"$WORK/inprocess-python.jsonl"
BEFORE=$(( (INPROC_ROUNDS + 1) / 2 ))
for round in $(seq "$BEFORE"); do inprocess_round "$round"; done

# 2. Our server.
PORT="$(free_port)"
PROF=()
if [ "${CPU_PROF:-0}" = 1 ]; then rm -rf "$WORK/prof"; PROF=(--cpu-prof --cpu-prof-dir="$WORK/prof"); fi
MODEL_REPOSITORY="$MODELS" PORT="$PORT" HOST=127.0.0.1 LOG_LEVEL=warn DEVICE=cpu INTRA_OP_THREADS="$THREADS" \
  INSTANCES="$INSTANCES" MAX_QUEUE_DELAY_MS="$MAX_QUEUE_DELAY_MS" \
  node "${PROF[@]}" dist/src/server/main.js >"$WORK/ours.log" 2>&1 &
SERVER_PID=$!
SERVER_LOG="$WORK/ours.log"
wait_ready "http://127.0.0.1:$PORT/health/ready"
load ours tiny 1 "http://127.0.0.1:$PORT/infer" "http://127.0.0.1:$PORT/metrics"
for c in "${CONCURRENCY[@]}"; do
  load ours minilm "$c" "http://127.0.0.1:$PORT/infer" "http://127.0.0.1:$PORT/metrics"
done
stop_server

# 3. FastAPI + TorchScript, both handler styles.
for mode in sync async; do
  PORT="$(free_port)"
  python3 bench/serving/fastapi_server.py "$MODELS/minilm/model.pt" "$PORT" "$THREADS" "$mode" >"$WORK/fastapi-$mode.log" 2>&1 &
  SERVER_PID=$!
  SERVER_LOG="$WORK/fastapi-$mode.log"
  wait_ready "http://127.0.0.1:$PORT/health"
  for c in "${CONCURRENCY[@]}"; do
    load "fastapi-$mode" minilm "$c" "http://127.0.0.1:$PORT/infer"
  done
  stop_server
done

for round in $(seq $(( BEFORE + 1 )) "$INPROC_ROUNDS"); do inprocess_round "$round"; done

cat /proc/loadavg >"$WORK/loadavg-end"
REVISION="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$( [ -z "$(git status --porcelain -- src native 2>/dev/null)" ] || echo ' + uncommitted src/native changes')"
python3 bench/serving/report.py "$WORK" \
  --setting "revision $REVISION; THREADS=$THREADS INSTANCES=$INSTANCES MAX_QUEUE_DELAY_MS=$MAX_QUEUE_DELAY_MS DURATION=${DURATION}s WARMUP=${WARMUP}s"
