#!/usr/bin/env bash
# Soak benchmark: the real server (dist/src/server/main.js, under bench/soak/server.mjs, which only
# adds a GC on SIGUSR2 so live tensors can be counted after a collection) over the four demo models (embedding, text generation, image
# classification, object detection) with a fresh DATA_DIR, driven by bench/soak/load.mjs with a
# mix over every route family (tasks, raw and KServe tensors, TEI/OpenAI endpoints, AtomSpace
# reads, writes and deletes, /models, /metrics, ~3% bad requests), while the server's RSS, open
# fds, threads and the addon's live tensors are sampled every second; then an idle period.
# bench/soak/summarize.mjs judges the run (RSS growth after warm-up < 5%, fds flat, no native
# tensor leak, no 5xx) and writes soak.csv, summary.json and soak.png.
#
# Usage: bash bench/soak/run.sh [REQUESTS=100000] [CONCURRENCY=16]
# Settings (environment): RESULTS=bench/soak/results (where the CSV, summary and plot go),
#   IDLE=30 (seconds sampled after the load), WARMUP_FRACTION=0.1, ATOM_CAP=2000 (atoms the
#   driver keeps in the AtomSpace: writes beyond it become deletes), SEED=1, and for the server
#   SNAPSHOT_BYTES=4MiB (so journals rotate during the run), APPROXIMATE_FROM=500 (so the HNSW
#   index is built and kept up to date), RESPONSE_CACHE_SIZE=4MiB; others (INTRA_OP_THREADS,
#   WORKER_THREADS, ...) pass through; SERVER_PRELOAD=/path/to/libjemalloc.so.2 runs the server
#   (only) with that LD_PRELOAD; REVISION names the code in the summary (default: git HEAD).
#   Raw output (samples, server log, data) is in bench/.work/soak/ and a mktemp -d under /tmp.
#   Everything listens on 127.0.0.1 only.
# Exit status: 0 when every goal passed, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."

REQUESTS="${1:-100000}"
CONCURRENCY="${2:-16}"
RESULTS="${RESULTS:-bench/soak/results}"
IDLE="${IDLE:-30}"
WARMUP_FRACTION="${WARMUP_FRACTION:-0.1}"
WORK=bench/.work/soak
mkdir -p "$WORK" "$RESULTS"

# Build what is missing or older than its sources.
addon=native/build/Release/atenspace.node
if [ ! -f "$addon" ] || [ -n "$(find native/src native/binding.gyp -newer "$addon" -print -quit)" ]; then
  npm run build:native
fi
if [ ! -f dist/src/server/main.js ] || [ -n "$(find src -name '*.ts' -newer dist/src/server/main.js -print -quit)" ]; then
  npm run build:ts
fi
# The demo models (tiny, random init; skipped when up to date).
python3 -m exporter demo --out "$WORK/models" >"$WORK/export.log" 2>&1 || { tail -n 20 "$WORK/export.log" >&2; exit 1; }

DATA_DIR="$(mktemp -d /tmp/atenspace-soak.XXXXXX)"
SERVER_PID=""
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 150); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
trap 'stop_server; rm -rf "$DATA_DIR"' EXIT

PRELOAD=()
[ -z "${SERVER_PRELOAD:-}" ] || PRELOAD=(env "LD_PRELOAD=$SERVER_PRELOAD")
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
MODEL_REPOSITORY="$WORK/models" PORT="$PORT" HOST=127.0.0.1 LOG_LEVEL="${LOG_LEVEL:-warn}" DATA_DIR="$DATA_DIR" \
  SNAPSHOT_BYTES="${SNAPSHOT_BYTES:-4MiB}" APPROXIMATE_FROM="${APPROXIMATE_FROM:-500}" \
  RESPONSE_CACHE_SIZE="${RESPONSE_CACHE_SIZE:-4MiB}" "${PRELOAD[@]}" \
  node --expose-gc bench/soak/server.mjs >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for i in $(seq 240); do
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/health/ready" && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "soak: the server exited during start-up:" >&2; tail -n 20 "$WORK/server.log" >&2; exit 1; }
  [ "$i" -lt 240 ] || { echo "soak: server not ready after 2 minutes" >&2; exit 1; }
  sleep 0.5
done
echo "soak: server pid $SERVER_PID on port $PORT, DATA_DIR $DATA_DIR" >&2

status=0
node bench/soak/load.mjs --url "http://127.0.0.1:$PORT" --server-pid "$SERVER_PID" --out "$WORK" \
  --requests "$REQUESTS" --concurrency "$CONCURRENCY" --idle "$IDLE" --atom-cap "${ATOM_CAP:-2000}" --seed "${SEED:-1}" --gc-signal || status=$?
kill -0 "$SERVER_PID" 2>/dev/null || { echo "soak: FAILURE: the server died during the run:" >&2; tail -n 30 "$WORK/server.log" >&2; exit 1; }

# A clean shutdown after the soak is part of it: SIGTERM must drain and exit 0.
kill -TERM "$SERVER_PID"
exit_status=0
wait "$SERVER_PID" || exit_status=$?
SERVER_PID=""
[ "$exit_status" -eq 0 ] || { echo "soak: FAILURE: the server exited with status $exit_status on SIGTERM" >&2; status=1; }
if grep -qiE '"level":(50|60)|FATAL|Segmentation|terminate called' "$WORK/server.log"; then
  echo "soak: the server logged errors (bench/.work/soak/server.log):" >&2
  grep -iE '"level":(50|60)|FATAL|Segmentation|terminate called' "$WORK/server.log" | head -n 5 >&2
fi

REVISION="${REVISION:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$( [ -z "$(git status --porcelain -- src native 2>/dev/null)" ] || echo ' + uncommitted src/native changes')}"
node bench/soak/summarize.mjs "$WORK" "$RESULTS" --warmup-fraction "$WARMUP_FRACTION" \
  --setting "revision $REVISION; $(nproc) CPUs; node $(node -v); concurrency $CONCURRENCY; SNAPSHOT_BYTES=${SNAPSHOT_BYTES:-4MiB} APPROXIMATE_FROM=${APPROXIMATE_FROM:-500} RESPONSE_CACHE_SIZE=${RESPONSE_CACHE_SIZE:-4MiB} ATOM_CAP=${ATOM_CAP:-2000}${SERVER_PRELOAD:+; server LD_PRELOAD=$SERVER_PRELOAD}" || status=1
exit "$status"
