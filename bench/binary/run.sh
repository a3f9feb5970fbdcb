#!/usr/bin/env bash
# Binary tensor data extension benchmark (issue 15): service overhead of raw /infer at
# concurrency 1 on a 3-layer BERT (JSON, JSON in + binary out, binary both ways) over the
# in-process forward, and a 16 MiB float32 round trip, JSON vs binary.
#
# Usage: [THREADS=N] bash bench/binary/run.sh [SECONDS]   (SECONDS per latency loop, default 5; THREADS:
# LibTorch intra-op threads for the server and the in-process forward, default LibTorch's)
# Runs under flock /tmp/atenspace-bench.lock so that benchmarks do not overlap. Prints one JSON line.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER="${1:-5}"
WORK=bench/.work/binary
MODELS="$WORK/models"
mkdir -p "$WORK"
[ -f "$MODELS/tiny-bert/model.pt" ] && [ -f "$MODELS/echo/model.pt" ] || python3 bench/binary/make_models.py "$MODELS"
[ dist/bench/binary/measure.js -nt bench/binary/measure.ts ] && [ -f dist/src/server/main.js ] || npm run build:ts >/dev/null

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
env MODEL_REPOSITORY="$MODELS" LOAD_MODELS=all DATA_DIR="$WORK/data" PORT="$port" HOST=127.0.0.1 GRPC_PORT=0 \
  ${THREADS:+INTRA_OP_THREADS=$THREADS} LOG_LEVEL=warn BODY_LIMIT=256MiB MAX_TENSOR_ELEMENTS=100000000 RESPONSE_CACHE_SIZE=0 \
  node dist/src/server/main.js >"$WORK/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && break; sleep 0.2; done
flock /tmp/atenspace-bench.lock node dist/bench/binary/measure.js "$MODELS" "http://127.0.0.1:$port" "$SECONDS_PER" "${THREADS:-0}"
